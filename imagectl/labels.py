"""The labels every image carries (OCI's standard keys plus imagectl's own) and how they read back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OCI = "org.opencontainers.image."
OWN = "io.imagectl."

REVISION = OCI + "revision"
SOURCE = OCI + "source"
CREATED = OCI + "created"
VERSION = OCI + "version"
TITLE = OCI + "title"
JIRA = OWN + "jira"
BUILD_NUMBER = OWN + "build-number"
BRANCH = OWN + "branch"
IMAGE = OWN + "image"
BASE_DIGEST = OWN + "base-digest"
BASE_REF = OWN + "base-ref"
BASE_TAG = OWN + "base-tag"  # the build tag the base image was first built as (a reused base is not re-tagged)
CONTEXT_HASH = OWN + "context-hash"
# Written on records only: when and by whom the tag was pushed, and the tag the base was first built as.
PUSHED_AT = OWN + "pushed-at"
TAGGED_REVISION = OWN + "tagged-revision"  # the commit and build that wrote the tag (differ from labels on reuse)
TAGGED_BUILD = OWN + "tagged-build-number"
REUSED_FROM = OWN + "reused-from"


@dataclass(frozen=True)
class BuildInfo:
    """What one build knows about itself; turned into labels for both images."""

    tag: str
    jira: str
    build_number: int
    commit: str
    branch: str | None
    source: str | None
    created: str  # ISO 8601 UTC
    project: str


def image_labels(
    info: BuildInfo, image: str, *, base_digest: str | None = None, context_hash: str | None = None, base_tag: str | None = None
) -> dict[str, str]:
    labels = {
        REVISION: info.commit,
        CREATED: info.created,
        VERSION: info.tag,
        TITLE: f"{info.project}-{image}",
        JIRA: info.jira,
        BUILD_NUMBER: str(info.build_number),
        IMAGE: image,
    }
    if info.source:
        labels[SOURCE] = info.source
    if info.branch:
        labels[BRANCH] = info.branch
    if base_digest:
        labels[BASE_DIGEST] = base_digest
    if context_hash:
        labels[CONTEXT_HASH] = context_hash
    if base_tag:
        labels[BASE_TAG] = base_tag
    return labels


def own_and_oci(labels: Mapping[str, str]) -> dict[str, str]:
    """Only the labels imagectl reads back (an image may carry many more from its base)."""
    return {k: v for k, v in labels.items() if k.startswith((OCI, OWN))}
