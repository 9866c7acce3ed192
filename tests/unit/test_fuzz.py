"""Property-based fuzzing of the pure parts: whatever comes in, the answer is a result or a clean ImagectlError
(or InvalidRecord, which readers turn into a warning) — never another exception."""

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagectl.config import load_config, parse_config
from imagectl.errors import ImagectlError
from imagectl.history import Revision
from imagectl.records import InvalidRecord, read_record
from imagectl.registries._base import Manifest
from imagectl.render import table
from imagectl.rollout import ChangePlan, next_release
from imagectl.tagging import (
    parse_build_tag,
    validate_build_number,
    validate_dag_id,
    validate_environment_name,
    validate_jira_key,
    validate_run_id,
    validate_tag,
    validate_tag_reference,
    validate_variable_key,
)
from tests.unit.helpers import BASE

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=40))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20
)
KNOWN = ["project", "jira", "git", "images", "registries", "environments", "ci", "webhooks", "timeouts"]
keys = st.one_of(
    st.sampled_from(KNOWN + ["kind", "host", "registry", "repository", "base", "build", "dev", "prd", "branches"]), st.text(max_size=10)
)
toml_like = st.recursive(
    st.one_of(st.booleans(), st.integers(-5, 10**6), st.text(max_size=30), st.lists(st.text(max_size=8), max_size=3)),
    lambda inner: st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
SAFE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SAFE
@given(st.dictionaries(st.sampled_from(KNOWN), toml_like, max_size=6))
def test_config_is_a_result_or_a_config_error(data):
    try:
        parse_config(Path("/repo/imagectl.toml"), data)
    except ImagectlError:
        pass


@SAFE
@given(st.binary(max_size=300))
def test_config_bytes_are_a_result_or_a_config_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "imagectl.toml"
    path.write_bytes(BASE.encode() + raw)
    try:
        load_config(path)
    except ImagectlError:
        pass


@SAFE
@given(st.text(max_size=140))
def test_every_validator_answers_or_says_why(text):
    for check in (
        validate_tag,
        validate_tag_reference,
        validate_jira_key,
        validate_build_number,
        validate_environment_name,
        validate_dag_id,
        validate_run_id,
        validate_variable_key,
    ):
        try:
            check(text)
        except ImagectlError as exc:
            assert "\n" not in exc.one_line()
    parse_build_tag(text)


@SAFE
@given(st.lists(st.text(max_size=12), max_size=6), st.sampled_from(["major", "minor", "patch"]))
def test_next_release_ignores_what_does_not_parse(releases, bump):
    revisions = [
        Revision("prd", n + 1, "2026-01-01T00:00:00Z", "promote", "T", "sha256:" + "0" * 64, "r@sha256:" + "0" * 64, "a", release=r or None)
        for n, r in enumerate(releases)
    ]
    assert next_release(revisions, bump).startswith("v")


@SAFE
@given(json_values)
def test_record_parsing_never_crashes(doc):
    raw = json.dumps(doc).encode()
    try:
        manifest = Manifest.from_bytes(raw)
    except ValueError:
        return  # not a JSON object: registries refuse it before records are read
    try:
        record = read_record(manifest)
        Revision.from_annotations(record.annotations, environment="prd", number=1, subject=record.subject)
    except InvalidRecord:
        pass


@SAFE
@given(st.dictionaries(st.text(max_size=40), st.text(max_size=80), max_size=20), st.integers(1, 10**7))
def test_revision_annotations_never_crash(annotations, number):
    try:
        Revision.from_annotations(
            {"io.imagectl.history." + k: v for k, v in annotations.items()}, environment="prd", number=number, subject=None
        )
    except InvalidRecord:
        pass


@SAFE
@given(st.text(), st.text())
def test_text_output_never_carries_a_control_character(reason, actor):
    plan = ChangePlan(
        "deploy", "prd", "r", "dbt_image", "loc", "DATA-1-1", "sha256:" + "0" * 64, "r@sha256:x", "new", "why", actor, reason, None, reason
    )
    shown = plan.text() + table(["A", "B"], [[reason, actor]])
    for line in shown.splitlines():
        assert not any(ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 for c in line), repr(line)
        assert "\u2028" not in line and "\u202e" not in line
