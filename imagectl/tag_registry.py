"""The tag registry: what each tag is (ticket, build, commit, base), kept as build records in the registry.

After pushing tag T, imagectl writes the record ``imagectl-build-T`` (records.py): subject = the image, annotations
= the image's labels plus when and by which build the tag was written. A base image carries only the tag of
the build that made it and its content-hash tag (``ctx-…``); a build that reuses it records which base it used
(the build image's ``io.imagectl.base-digest`` and ``base-tag``), so "which base did DATA-1234-57 use" is
answered from the build's record without a tag per build on the base (ECR allows 1,000 tags per image).

Listings read only what they show: tags are ordered by what the listing itself tells (ECR: push times;
elsewhere: the build number in the tag, which only grows), and records are fetched for the rows shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from imagectl import labels as L
from imagectl.namespaces import context_tag, is_bookkeeping, is_release, record_tag
from imagectl.records import BUILD_RECORD, LEGACY_BUILD_RECORD, InvalidRecord, make_record, read_record
from imagectl.registries._base import Manifest, Registry, RemoteImage
from imagectl.render import iso, parse_iso
from imagectl.report import warn
from imagectl.tagging import parse_build_tag

_RECORD_ONLY = (L.PUSHED_AT, L.REUSED_FROM, L.TAGGED_REVISION, L.TAGGED_BUILD)


@dataclass
class TagInfo:
    tag: str
    image: str  # "base" or "build"
    repository: str
    registry: str
    reference: str
    digest: str
    pushed_at: datetime | None = None
    size: int | None = None
    jira: str | None = None
    build_number: int | None = None
    git_sha: str | None = None
    branch: str | None = None
    base_digest: str | None = None
    base_tag: str | None = None
    context_hash: str | None = None
    reused_from: str | None = None  # a base image: the build tag it was first built as, when this row is another build's use of it
    labels: dict[str, str] = field(default_factory=dict)
    other_tags: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "image": self.image,
            "repository": self.repository,
            "registry": self.registry,
            "reference": self.reference,
            "digest": self.digest,
            "jira": self.jira,
            "build_number": self.build_number,
            "git_sha": self.git_sha,
            "branch": self.branch,
            "pushed_at": iso(self.pushed_at),
            "size": self.size,
            "base_digest": self.base_digest,
            "base_tag": self.base_tag,
            "context_hash": self.context_hash,
            "reused_from": self.reused_from,
        }


def write_record(registry: Registry, repository: str, tag: str, image: Manifest, image_labels: dict[str, str], info: L.BuildInfo) -> bool:
    """Record what ``tag`` is: the image's labels, plus when and by which build the tag was written."""
    annotations = {k: v for k, v in L.own_and_oci(image_labels).items() if k not in _RECORD_ONLY}
    annotations[L.PUSHED_AT] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # ordering needs more than seconds
    annotations[L.TAGGED_REVISION] = info.commit
    annotations[L.TAGGED_BUILD] = str(info.build_number)
    return registry.put_record(repository, record_tag(tag), make_record(image, annotations, BUILD_RECORD))


def record_annotations(repository: str, tag: str, record: Manifest | None, digest: str) -> dict[str, str] | None:
    """The annotations of ``tag``'s build record if it is a valid record about ``digest`` (else None, warned)."""
    if record is None:
        return None
    try:
        parsed = read_record(record, (BUILD_RECORD, LEGACY_BUILD_RECORD))
    except InvalidRecord as exc:
        warn(f"{record_tag(tag)} in {repository} is not a valid build record ({exc}); ignored")
        return None
    if parsed.subject != digest:
        return None  # a record about another image (the tag's image was replaced outside imagectl)
    return parsed.annotations


def build_commit(registry: Registry, repository: str, tag: str, digest: str) -> str | None:
    found = registry.get_manifests(repository, [record_tag(tag)])
    annotations = record_annotations(repository, tag, found.get(record_tag(tag)), digest)
    return annotations.get(L.REVISION) if annotations else None


def _apply_record(info: TagInfo, annotations: dict[str, str]) -> None:
    info.labels = {k: v for k, v in annotations.items() if k not in _RECORD_ONLY}
    info.git_sha = annotations.get(L.REVISION) or info.git_sha
    info.branch = annotations.get(L.BRANCH)
    info.base_digest = annotations.get(L.BASE_DIGEST)
    info.base_tag = annotations.get(L.BASE_TAG)
    info.context_hash = annotations.get(L.CONTEXT_HASH)
    if annotations.get(L.REUSED_FROM):  # 0.1.0 re-tagged reused bases and said so
        info.reused_from = annotations[L.REUSED_FROM]
    if info.pushed_at is None:
        info.pushed_at = parse_iso(annotations.get(L.PUSHED_AT))


def newest_first_key(info: TagInfo) -> tuple[float, int]:
    moment = info.pushed_at
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment.timestamp() if moment else float("-inf"), info.build_number or 0)


def _row(registry: Registry, repository: str, image: str, tag: str, entry: RemoteImage) -> TagInfo:
    parsed = parse_build_tag(tag)
    return TagInfo(
        tag=tag,
        image=image,
        repository=repository,
        registry=registry.name,
        reference=registry.reference(repository, tag, entry.digest),
        digest=entry.digest,
        pushed_at=entry.pushed_at,
        size=entry.size,
        jira=parsed.jira if parsed else None,
        build_number=parsed.build_number if parsed else None,
        other_tags=sorted(t for t in entry.tags if t != tag),
    )


def _listed(tag: str, jira: str | None) -> bool:
    """A build tag (not imagectl's own, not a release version), of ticket ``jira`` when one is given."""
    if is_bookkeeping(tag) or is_release(tag):
        return False
    parsed = parse_build_tag(tag) if jira else None
    return not jira or (parsed is not None and parsed.jira == jira)


def list_tags(registry: Registry, repository: str, image: str, *, jira: str | None = None, limit: int | None = None) -> list[TagInfo]:
    """Build tags in ``repository``, newest first, reading records only for the rows returned."""
    if registry.capabilities(repository).detailed_listing:  # push times and digests in the listing: order by push time
        rows = [
            _row(registry, repository, image, tag, entry)
            for entry in registry.list_images(repository)
            for tag in entry.tags
            if _listed(tag, jira)
        ]
        rows.sort(key=newest_first_key, reverse=True)
        rows = rows[:limit] if limit else rows
    else:  # names only (distribution): order by build number, then read the rows shown
        names = [t for t in registry.list_tags(repository) if _listed(t, jira)]
        numbers = {t: p.build_number if (p := parse_build_tag(t)) else 0 for t in names}
        names.sort(key=lambda t: (numbers[t], t), reverse=True)
        names = names[:limit] if limit else names
        manifests = registry.get_manifests(repository, names)
        rows = [
            _row(registry, repository, image, t, RemoteImage(manifests[t].digest, [t], None, manifests[t].size))
            for t in names
            if t in manifests
        ]
    records = registry.get_manifests(repository, [record_tag(r.tag) for r in rows])
    for row in rows:
        annotations = record_annotations(repository, row.tag, records.get(record_tag(row.tag)), row.digest)
        if annotations:
            _apply_record(row, annotations)
    rows.sort(key=newest_first_key, reverse=True)
    return rows


def show_tag(registry: Registry, repository: str, image: str, tag: str, candidates: list[str] | None = None) -> TagInfo | None:
    """Everything known about ``tag``. Other tags on the same image come from the registry's listing when it is
    cheap (ECR), else from the tags the image could have: its context tag and ``candidates`` (deployed tags)."""
    manifests = registry.get_manifests(repository, [tag, record_tag(tag)])
    manifest = manifests.get(tag)
    if manifest is None:
        return None
    info = _row(registry, repository, image, tag, RemoteImage(manifest.digest, [tag], None, manifest.size))
    annotations = record_annotations(repository, tag, manifests.get(record_tag(tag)), manifest.digest)
    if annotations:
        _apply_record(info, annotations)
    if registry.capabilities(repository).detailed_listing:  # a cheap reverse lookup of the image's other tags
        for entry in registry.list_images(repository):
            if entry.digest == manifest.digest:
                info.other_tags = sorted(t for t in entry.tags if t != tag)
                info.pushed_at = entry.pushed_at or info.pushed_at
                info.size = entry.size or info.size
    else:
        names = [*(candidates or []), *([context_tag(info.context_hash)] if info.context_hash else [])]
        found = registry.get_manifests(repository, names) if names else {}
        info.other_tags = sorted(t for t, m in found.items() if m.digest == manifest.digest and t != tag)
    return info


def base_of(registry: Registry, base_repository: str, build: TagInfo) -> TagInfo | None:
    """The base image a build used (from the build's record), as a row of the base repository."""
    if not build.base_digest:
        return None
    base_tag = build.base_tag
    candidates = [base_tag] if base_tag else []
    manifests = registry.get_manifests(base_repository, [build.base_digest, *candidates, *[record_tag(t) for t in candidates]])
    manifest = manifests.get(build.base_digest)
    if manifest is None:
        return None
    name = base_tag if base_tag and manifests.get(base_tag) and manifests[base_tag].digest == manifest.digest else build.tag
    info = _row(registry, base_repository, "base", name, RemoteImage(manifest.digest, [], None, manifest.size))
    if base_tag:
        annotations = record_annotations(base_repository, base_tag, manifests.get(record_tag(base_tag)), manifest.digest)
        if annotations:
            _apply_record(info, annotations)
    info.tag, info.jira, info.build_number = build.tag, build.jira, build.build_number  # this row: the base as that build used it
    info.reused_from = base_tag if base_tag and base_tag != build.tag else None
    info.reference = registry.reference(base_repository, digest=manifest.digest)
    return info


def context_image(registry: Registry, repository: str, context_hash: str) -> tuple[Manifest | None, dict[str, str] | None]:
    """The base image built from ``context_hash`` and its record's annotations (the labels it was built with)."""
    tag = context_tag(context_hash)
    found = registry.get_manifests(repository, [tag, record_tag(tag)])
    manifest = found.get(tag)
    if manifest is None:
        return None, None
    return manifest, record_annotations(repository, tag, found.get(record_tag(tag)), manifest.digest)
