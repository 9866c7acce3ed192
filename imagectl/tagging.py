"""Pure rules for Jira keys, build numbers, image tags and the names imagectl checks before any request.

A build's tag is ``<JIRA-KEY>-<BUILD-NUMBER>``, e.g. ``DATA-1234-57``. Tags imagectl writes for its own
bookkeeping live in reserved namespaces (namespaces.py), so a build tag can never collide with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from imagectl.errors import InputError
from imagectl.namespaces import is_bookkeeping, reserved_reason

# Jira project keys: an upper-case letter, then upper-case letters, digits or underscores (Jira's default rule);
# issue numbers have no leading zero.
JIRA_KEY_RE = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z0-9_]+)-([1-9][0-9]*)(?![0-9])")
_FULL_JIRA_KEY_RE = re.compile(r"[A-Z][A-Z0-9_]+-[1-9][0-9]*")
_BUILD_NUMBER_RE = re.compile(r"[1-9][0-9]{0,17}")
# The Docker reference grammar for a tag.
DOCKER_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
BUILD_TAG_RE = re.compile(r"(?P<jira>[A-Z][A-Z0-9_]+-[1-9][0-9]*)-(?P<build>[1-9][0-9]*)")
# Environment names: also part of tags (imagectl-history-<env>-…), variable names and Airflow ids.
ENVIRONMENT_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# Airflow's own rule for DAG ids and run ids (KEY_REGEX in airflow.utils.helpers): letters, digits, _ . -
AIRFLOW_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,250}")
AIRFLOW_RUN_ID_RE = re.compile(r"[A-Za-z0-9_.:+~-]{1,250}")
# Airflow Variable keys (and Secrets Manager / SSM names built from them): no path separators or spaces.
VARIABLE_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,200}")
RESERVED_TAGS = frozenset({"latest"})


@dataclass(frozen=True)
class BuildTag:
    jira: str
    build_number: int

    def __str__(self) -> str:
        return f"{self.jira}-{self.build_number}"


def validate_jira_key(key: str, allowed_projects: Iterable[str] = ()) -> str:
    """Return ``key`` if it is a well-formed Jira key (and in the allow-list, when one is set)."""
    if not _FULL_JIRA_KEY_RE.fullmatch(key):
        raise InputError(
            f"'{_short(key)}' is not a Jira key",
            "use an upper-case project key and an issue number without leading zeros, e.g. DATA-1234",
        )
    allowed = sorted(set(allowed_projects))
    if allowed and key.split("-", 1)[0] not in allowed:
        raise InputError(
            f"Jira project '{key.split('-', 1)[0]}' is not allowed",
            f"allowed projects ([jira] projects in imagectl.toml): {', '.join(allowed)}",
        )
    return key


def find_jira_keys(text: str, allowed_projects: Iterable[str] = ()) -> list[str]:
    """All Jira keys in ``text``, in order of appearance, filtered by the allow-list when one is set."""
    allowed = set(allowed_projects)
    keys = [f"{m.group(1)}-{m.group(2)}" for m in JIRA_KEY_RE.finditer(text)]
    return [k for k in keys if not allowed or k.split("-", 1)[0] in allowed]


def validate_build_number(value: str | int) -> int:
    text = str(value).strip()
    if not text.isascii() or not _BUILD_NUMBER_RE.fullmatch(text):
        raise InputError(
            f"'{_short(str(value))}' is not a build number",
            "give a positive whole number without leading zeros (--build-number or bamboo_buildNumber)",
        )
    return int(text)


def validate_tag(tag: str) -> str:
    """Refuse ``latest``, imagectl's reserved namespaces and anything that is not a valid Docker tag."""
    if tag.lower() in RESERVED_TAGS:
        raise InputError(
            f"the tag '{tag}' is refused",
            "imagectl never uses 'latest': images are tagged <JIRA-KEY>-<BUILD-NUMBER>",
        )
    if not tag.isascii() or not DOCKER_TAG_RE.fullmatch(tag):
        raise InputError(
            f"'{_short(tag)}' is not a valid Docker tag",
            "tags are 1-128 characters of letters, digits, '_', '.', '-' and may not start with '.' or '-'",
        )
    reason = reserved_reason(tag)
    if reason:
        raise InputError(f"the tag '{_short(tag)}' is refused: {reason}", "choose another tag, e.g. <JIRA-KEY>-<BUILD-NUMBER>")
    return tag


def validate_revision_or_tag(text: str) -> str:
    """A revision number (``41``) or a tag naming an existing image (rollback --to, diff A B, the operations DAG)."""
    if text.isascii() and text.isdigit():
        if int(text) < 1:
            raise InputError("revisions start at 1")
        return str(int(text))
    return validate_tag_reference(text)


def validate_tag_reference(tag: str) -> str:
    """A tag given to read an existing image (deploy TAG, rollback --to TAG): build tags and release versions."""
    if tag.lower() in RESERVED_TAGS:
        raise InputError(f"the tag '{tag}' is refused", "imagectl never uses 'latest': name a build tag or a release version")
    if not tag.isascii() or not DOCKER_TAG_RE.fullmatch(tag):
        raise InputError(f"'{_short(tag)}' is not a valid Docker tag", "give a build tag such as DATA-1234-57 or a release such as v1.4.0")
    if is_bookkeeping(tag):
        raise InputError(
            f"'{tag}' is one of imagectl's bookkeeping tags", "give a build tag such as DATA-1234-57 or a release such as v1.4.0"
        )
    return tag


def validate_environment_name(name: str) -> str:
    if not name:
        raise InputError("the environment name is empty", "pass --env NAME (or unset IMAGECTL_ENV to use the default)")
    if not name.isascii() or not ENVIRONMENT_RE.fullmatch(name):
        raise InputError(
            f"'{_short(name)}' is not an environment name",
            "environment names are 1-32 lower-case letters, digits, '-' or '_', starting with a letter",
        )
    return name


def validate_dag_id(dag_id: str) -> str:
    if not dag_id.isascii() or not AIRFLOW_ID_RE.fullmatch(dag_id) or dag_id in (".", ".."):
        raise InputError(
            f"'{_short(dag_id)}' is not a DAG id",
            "Airflow DAG ids are letters, digits, '_', '.' and '-' (no '/'), at most 250 characters",
        )
    return dag_id


def validate_run_id(run_id: str) -> str:
    if not run_id.isascii() or not AIRFLOW_RUN_ID_RE.fullmatch(run_id) or run_id in (".", ".."):
        raise InputError(
            f"'{_short(run_id)}' is not a run id",
            "run ids are letters, digits and _ . : + ~ - (no '/' or spaces), at most 250 characters",
        )
    return run_id


def validate_variable_key(key: str) -> str:
    if not key.isascii() or not VARIABLE_KEY_RE.fullmatch(key) or key in (".", ".."):
        raise InputError(
            f"'{_short(key)}' is not a usable Variable key",
            "Variable keys are letters, digits, '_', '.' and '-' (no '/' or spaces), at most 200 characters",
        )
    return key


def parse_build_tag(tag: str) -> BuildTag | None:
    """``DATA-1234-57`` → BuildTag('DATA-1234', 57); None for any other tag."""
    m = BUILD_TAG_RE.fullmatch(tag)
    if not m:
        return None
    return BuildTag(m.group("jira"), int(m.group("build")))


def make_build_tag(jira: str, build_number: int) -> BuildTag:
    tag = BuildTag(jira, build_number)
    validate_tag(str(tag))
    return tag


def _short(text: str, limit: int = 60) -> str:
    from imagectl.sanitize import visible

    shown = visible(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
