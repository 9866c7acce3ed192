import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagectl.errors import InputError
from imagectl.tagging import (
    DOCKER_TAG_RE,
    find_jira_keys,
    make_build_tag,
    parse_build_tag,
    validate_build_number,
    validate_jira_key,
    validate_tag,
)

project_keys = st.from_regex(r"[A-Z][A-Z0-9_]{1,9}", fullmatch=True)
numbers = st.integers(min_value=1, max_value=10**7)


@given(project_keys, numbers, numbers)
def test_build_tag_round_trips(project, issue, build):
    tag = make_build_tag(f"{project}-{issue}", build)
    parsed = parse_build_tag(str(tag))
    assert parsed == tag
    assert str(tag) == f"{project}-{issue}-{build}"
    assert DOCKER_TAG_RE.fullmatch(str(tag))


@given(project_keys, numbers, st.sampled_from(["feature/", "bugfix/", "", "hotfix/x-"]), st.sampled_from(["-add-orders", "", "_x", "/sub"]))
def test_key_found_in_branch_names(project, issue, prefix, suffix):
    key = f"{project}-{issue}"
    assert find_jira_keys(f"{prefix}{key}{suffix}")[0] == key


@pytest.mark.parametrize(
    "text, keys",
    [
        ("feature/DATA-1234-add-orders", ["DATA-1234"]),
        ("Merge pull request #12 from org/feature/DATA-77-x", ["DATA-77"]),
        ("DATA-0123 leading zero", []),
        ("data-1234 lower case", []),
        ("XDATA-12 and DATA-13", ["XDATA-12", "DATA-13"]),
        ("D-1 single letter project", []),
        ("DATA-12345678901", ["DATA-12345678901"]),
    ],
)
def test_find_jira_keys(text, keys):
    assert find_jira_keys(text) == keys


def test_allow_list_filters_false_positives():
    assert find_jira_keys("fix UTF-8 handling for DATA-5", ["DATA"]) == ["DATA-5"]
    assert find_jira_keys("fix UTF-8 handling") == ["UTF-8"]  # why the allow-list exists
    with pytest.raises(InputError, match="not allowed"):
        validate_jira_key("UTF-8", ["DATA"])


@pytest.mark.parametrize("bad", ["data-1", "DATA-01", "DATA1", "DATA-", "-1", "1DATA-2", "DATA-1-2"])
def test_invalid_jira_keys_refused(bad):
    with pytest.raises(InputError):
        validate_jira_key(bad)


@pytest.mark.parametrize("bad", ["0", "01", "-3", "x", "", "1.5"])
def test_invalid_build_numbers_refused(bad):
    with pytest.raises(InputError, match="build number"):
        validate_build_number(bad)


@pytest.mark.parametrize("tag", ["latest", "LATEST", "Latest"])
def test_latest_refused(tag):
    with pytest.raises(InputError) as info:
        validate_tag(tag)
    assert "never uses 'latest'" in info.value.one_line()


@pytest.mark.parametrize(
    "tag",
    [".x", "-x", "a" * 129, "a b", "a/b", "a:b", "", "ctx-abc", "deployed-dev-1", "imagectl-build-x"]
    + ["imagectl-", "A.claim", "A.door", "v01.0.0"],
)
def test_bad_tags_refused(tag):
    with pytest.raises(InputError):
        validate_tag(tag)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=140))
def test_validate_tag_agrees_with_docker_grammar(text):
    valid = bool(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", text)) and text.lower() != "latest"
    # imagectl's namespaces (docs/design.md, "What imagectl keeps in a registry"): its own prefixes and register
    # suffixes, and anything that starts like a release version (v1.…, v01.…)
    reserved = (
        text.startswith(("ctx-", "imagectl-", "deployed-")) or text.endswith((".claim", ".door")) or bool(re.match(r"v[0-9]+\.", text))
    )
    if valid and not reserved:
        assert validate_tag(text) == text
    else:
        with pytest.raises(InputError):
            validate_tag(text)
