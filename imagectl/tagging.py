"""Pure rules for Jira keys, build numbers and image tags (no I/O).

A build's tag is ``<JIRA-KEY>-<BUILD-NUMBER>``, e.g. ``DATA-1234-57``. Tags imagectl writes for its own
bookkeeping use reserved prefixes, so a build tag can never collide with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from imagectl.errors import InputError

# Jira project keys: an upper-case letter, then upper-case letters, digits or underscores (Jira's default rule);
# issue numbers have no leading zero.
JIRA_KEY_RE = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z0-9_]+)-([1-9][0-9]*)(?![0-9])")
_FULL_JIRA_KEY_RE = re.compile(r"[A-Z][A-Z0-9_]+-[1-9][0-9]*")
_BUILD_NUMBER_RE = re.compile(r"[1-9][0-9]*")
# The Docker reference grammar for a tag.
DOCKER_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
BUILD_TAG_RE = re.compile(r"(?P<jira>[A-Z][A-Z0-9_]+-[1-9][0-9]*)-(?P<build>[1-9][0-9]*)")

# Prefixes of tags imagectl manages itself; build tags start with an upper-case Jira key, so they never clash.
CONTEXT_TAG_PREFIX = "ctx-"
RECORD_TAG_PREFIX = "imagectl-build-"
DEPLOYED_TAG_PREFIX = "deployed-"
HISTORY_TAG_PREFIX = "imagectl-history-"
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
            f"'{key}' is not a Jira key",
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
    if not _BUILD_NUMBER_RE.fullmatch(text):
        raise InputError(
            f"'{value}' is not a build number",
            "give a positive whole number without leading zeros (--build-number or bamboo_buildNumber)",
        )
    return int(text)


def validate_tag(tag: str) -> str:
    """Refuse ``latest``, imagectl's reserved prefixes and anything that is not a valid Docker tag."""
    if tag.lower() in RESERVED_TAGS:
        raise InputError(
            f"the tag '{tag}' is refused",
            "imagectl never uses 'latest': images are tagged <JIRA-KEY>-<BUILD-NUMBER>",
        )
    if not DOCKER_TAG_RE.fullmatch(tag):
        raise InputError(
            f"'{tag}' is not a valid Docker tag",
            "tags are 1-128 characters of letters, digits, '_', '.', '-' and may not start with '.' or '-'",
        )
    for prefix in (CONTEXT_TAG_PREFIX, RECORD_TAG_PREFIX, DEPLOYED_TAG_PREFIX, HISTORY_TAG_PREFIX):
        if tag.startswith(prefix):
            raise InputError(f"the tag '{tag}' uses the prefix '{prefix}' that imagectl reserves", "choose another tag")
    return tag


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


def context_tag(context_hash: str) -> str:
    return f"{CONTEXT_TAG_PREFIX}{context_hash}"


def record_tag(tag: str) -> str:
    return f"{RECORD_TAG_PREFIX}{tag}"


def is_bookkeeping_tag(tag: str) -> bool:
    return tag.startswith((CONTEXT_TAG_PREFIX, RECORD_TAG_PREFIX, DEPLOYED_TAG_PREFIX, HISTORY_TAG_PREFIX))
