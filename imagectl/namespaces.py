"""The tag namespaces imagectl writes in a repository, in one place (pure).

| namespace        | tags                                   | on which image                    |
|------------------|----------------------------------------|-----------------------------------|
| build            | ``DATA-1234-57``                       | base (the build that made it), build |
| context          | ``ctx-<sha256>``                       | base: its inputs' hash            |
| build record     | ``imagectl-build-<tag>``               | a record artifact about ``<tag>``   |
| history          | ``imagectl-history-<env>-<N:06d>``     | a record artifact: revision N     |
| segment          | ``imagectl-segment-<env>-<k:06d>``     | revisions 100(k-1)+1 … 100k as JSON lines |
| claim registers  | ``<claimed tag>.claim`` / ``.door``    | how plain OCI registries claim a tag (see registries/oci.py) |
| legacy base      | ``imagectl-history-<env>-legacy``      | where 0.1.0's history ends (plain OCI registries) |
| deployed         | ``deployed-<env>-<digest[:12]>``       | every image an environment ran (0.1.0: ``deployed-<env>-<N:06d>``) |
| release          | ``v<major>.<minor>.<patch>``           | an image released in a release environment |
| verdict          | ``imagectl-verdict-<env>-<N:06d>``     | a record artifact: how revision N's verification ended |
| rejection        | ``imagectl-rejection-<env>-<d12>-<k:03d>`` | a record artifact: the k-th rejection (or lifting) of image d12 |

Build tags may not use any of these (``validate_tag`` refuses them), so nothing a user builds can collide.
retention.py decides from these which images are kept.
"""

from __future__ import annotations

import re
import string

from imagectl.wildcards import DIGITS, HEX, LOWER, TAG_CHARS, Part, chars, literal, meets

CONTEXT_PREFIX = "ctx-"
RECORD_PREFIX = "imagectl-build-"
HISTORY_PREFIX = "imagectl-history-"
SEGMENT_PREFIX = "imagectl-segment-"
VERDICT_PREFIX = "imagectl-verdict-"
REJECTION_PREFIX = "imagectl-rejection-"
DEPLOYED_PREFIX = "deployed-"
OWN_PREFIX = "imagectl-"  # every bookkeeping tag of imagectl's own starts with this (or one of the above)
CLAIM_SUFFIX = ".claim"
DOOR_SUFFIX = ".door"

RESERVED_PREFIXES = (CONTEXT_PREFIX, OWN_PREFIX, DEPLOYED_PREFIX)
RESERVED_SUFFIXES = (CLAIM_SUFFIX, DOOR_SUFFIX)
# Release versions: v1.2.3. Any tag that starts like one (v1., v01.…) is reserved, so a build tag such as
# v01.0.0 can never be mistaken for a release and break the next version's computation.
RELEASE_RE = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
RELEASE_LIKE_RE = re.compile(r"v[0-9]+\.")
REVISION_WIDTH = 6
# Revisions per segment, and the spacing of the history lookup's markers: every SEGMENT_SIZE-th revision's record is
# kept forever (retention.py, from marker_pattern()), and a registry that expires records probes SEGMENT_SIZE - 1
# tags per round (registries/_base.py, Capabilities.probe_fanout), so its coarse rounds land on markers only.
SEGMENT_SIZE = 100
_MARKER_ZEROS = len(str(SEGMENT_SIZE)) - 1
assert SEGMENT_SIZE == 10**_MARKER_ZEROS  # the marker pattern is "ends in that many zeros"


def history_tag(environment: str, revision: int) -> str:
    return f"{HISTORY_PREFIX}{environment}-{revision:0{REVISION_WIDTH}d}"


def marker_pattern() -> str:
    """An ECR tag pattern matching the history tags of every SEGMENT_SIZE-th revision, in every environment."""
    return f"{HISTORY_PREFIX}*{'0' * _MARKER_ZEROS}"


def legacy_base_tag(environment: str) -> str:
    return f"{HISTORY_PREFIX}{environment}-legacy"


def segment_tag(environment: str, segment: int) -> str:
    return f"{SEGMENT_PREFIX}{environment}-{segment:0{REVISION_WIDTH}d}"


def segment_of(revision: int) -> int:
    return (revision - 1) // SEGMENT_SIZE + 1


def deployed_tag(environment: str, digest: str) -> str:
    """One tag per image and environment (never one per deploy: ECR allows 1,000 tags per image)."""
    return f"{DEPLOYED_PREFIX}{environment}-{digest.split(':', 1)[-1][:12]}"


def verdict_tag(environment: str, revision: int) -> str:
    return f"{VERDICT_PREFIX}{environment}-{revision:0{REVISION_WIDTH}d}"


def rejection_tag(environment: str, digest: str, number: int) -> str:
    return f"{REJECTION_PREFIX}{environment}-{digest.split(':', 1)[-1][:12]}-{number:03d}"


def context_tag(context_hash: str) -> str:
    return f"{CONTEXT_PREFIX}{context_hash}"


def record_tag(tag: str) -> str:
    return f"{RECORD_PREFIX}{tag}"


def claim_tag(tag: str) -> str:
    return tag + CLAIM_SUFFIX


def door_tag(tag: str) -> str:
    return tag + DOOR_SUFFIX


def is_release(tag: str) -> bool:
    return RELEASE_RE.fullmatch(tag) is not None


def is_bookkeeping(tag: str) -> bool:
    """A tag imagectl writes for itself (not a build tag or a release version)."""
    return tag.startswith(RESERVED_PREFIXES) or tag.endswith(RESERVED_SUFFIXES)


def reserved_reason(tag: str) -> str | None:
    """Why ``tag`` may not be used as a build tag, or None."""
    for prefix in RESERVED_PREFIXES:
        if tag.startswith(prefix):
            return f"the prefix '{prefix}' is imagectl's"
    for suffix in RESERVED_SUFFIXES:
        if tag.endswith(suffix):
            return f"the suffix '{suffix}' is imagectl's"
    if RELEASE_LIKE_RE.match(tag):
        return "tags like v1.2… are release versions, which imagectl assigns"
    return None


def _namespaces() -> dict[str, tuple[Part, ...]]:
    """Every tag imagectl writes on ECR (or relies on never moving), for every environment name, as languages
    wildcards.meets() can test a pattern against."""
    env = chars(LOWER, 1, 1) + chars(LOWER + DIGITS + "_-", 0, 31)
    number = chars(DIGITS, REVISION_WIDTH, None)
    return {
        "history records": literal(HISTORY_PREFIX) + env + literal("-") + number,
        "history segments": literal(SEGMENT_PREFIX) + env + literal("-") + number,
        "verification verdicts": literal(VERDICT_PREFIX) + env + literal("-") + number,
        "rejections": literal(REJECTION_PREFIX) + env + literal("-") + chars(HEX, 12, 12) + literal("-") + chars(DIGITS, 3, None),
        "deployed tags": literal(DEPLOYED_PREFIX) + env + literal("-") + chars(HEX, 6, 12),
        "build records": literal(RECORD_PREFIX) + chars(TAG_CHARS.replace(".", "").replace("-", ""), 1, 1) + chars(TAG_CHARS, 0, 112),
        "base context tags": literal(CONTEXT_PREFIX) + chars(HEX, 64, 64),
        "release versions": literal("v")
        + chars(DIGITS, 1, None)
        + literal(".")
        + chars(DIGITS, 1, None)
        + literal(".")
        + chars(DIGITS, 1, None),
        "build tags": chars(string.ascii_uppercase, 1, 1)
        + chars(string.ascii_uppercase + DIGITS + "_", 1, None)
        + literal("-")
        + chars(DIGITS, 1, None)
        + literal("-")
        + chars(DIGITS, 1, None),
    }


NAMESPACES = _namespaces()


def exclusion_problems(filters: list[str]) -> list[str]:
    """For each tag-mutability exclusion filter that would make any tag imagectl writes mutable, why (with an
    example tag it matches); [] when none does."""
    problems = []
    for pattern in filters:
        for name, language in NAMESPACES.items():
            example = meets(pattern, language)
            if example is not None:
                problems.append(f"'{pattern}' matches imagectl's {name} (e.g. {example})")
                break
    return problems
