"""The tag registry: what each tag in a repository is (ticket, build, commit, base digest), read from the
registry's own listing plus imagectl's record manifests, and written as records after each push."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from imagectl import labels as L
from imagectl.records import make_record, read_record
from imagectl.registries import Manifest, Registry
from imagectl.tagging import is_bookkeeping_tag, parse_build_tag, record_tag


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
    context_hash: str | None = None
    reused_from: str | None = None  # a base image reused by this build: the tag it was first built as
    labels: dict[str, str] = field(default_factory=dict)
    other_tags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
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
            "context_hash": self.context_hash,
            "reused_from": self.reused_from,
        }


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


_RECORD_ONLY = (L.PUSHED_AT, L.REUSED_FROM, L.TAGGED_REVISION, L.TAGGED_BUILD)


def write_record(
    registry: Registry,
    repository: str,
    tag: str,
    image: Manifest,
    image_labels: dict[str, str],
    info: L.BuildInfo,
    reused_from: str | None = None,
) -> bool:
    """Record what ``tag`` is: the image's labels, plus when and by which build the tag was written."""
    annotations = {k: v for k, v in L.own_and_oci(image_labels).items() if k not in _RECORD_ONLY}
    annotations[L.PUSHED_AT] = iso(datetime.now(timezone.utc)) or ""
    annotations[L.TAGGED_REVISION] = info.commit
    annotations[L.TAGGED_BUILD] = str(info.build_number)
    if reused_from:
        annotations[L.REUSED_FROM] = reused_from
    return registry.put_manifest(repository, record_tag(tag), make_record(image, annotations))


def _apply_record(info: TagInfo, annotations: dict[str, str]) -> None:
    info.labels = {k: v for k, v in annotations.items() if k not in _RECORD_ONLY}
    info.reused_from = annotations.get(L.REUSED_FROM)
    info.git_sha = annotations.get(L.REVISION) or info.git_sha
    info.branch = annotations.get(L.BRANCH)
    info.base_digest = annotations.get(L.BASE_DIGEST)
    info.context_hash = annotations.get(L.CONTEXT_HASH)
    if info.pushed_at is None:
        info.pushed_at = parse_iso(annotations.get(L.PUSHED_AT))


def newest_first_key(info: TagInfo) -> tuple[float, int]:
    return (info.pushed_at.timestamp() if info.pushed_at else float("-inf"), info.build_number or 0)


def list_tags(registry: Registry, repository: str, image: str, *, jira: str | None = None, limit: int | None = None) -> list[TagInfo]:
    """Build tags in ``repository``, newest first. Records are fetched only for the rows returned when the
    registry knows push times (ECR), so listing thousands of images costs a few paged calls."""
    remote = registry.list_images(repository)
    rows: list[TagInfo] = []
    for entry in remote:
        user_tags = [t for t in entry.tags if not is_bookkeeping_tag(t)]
        for tag in user_tags:
            parsed = parse_build_tag(tag)
            if jira and (parsed is None or parsed.jira != jira):
                continue
            rows.append(
                TagInfo(
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
            )
    times_known = all(r.pushed_at is not None for r in rows)
    if times_known:
        rows.sort(key=newest_first_key, reverse=True)
        rows = rows[:limit] if limit else rows
    records = registry.get_manifests(repository, [record_tag(r.tag) for r in rows])
    for row in rows:
        record = records.get(record_tag(row.tag))
        if record is not None:
            subject, annotations = read_record(record)
            if subject == row.digest:
                _apply_record(row, annotations)
    if not times_known:
        rows.sort(key=newest_first_key, reverse=True)
        rows = rows[:limit] if limit else rows
    return rows


def show_tag(registry: Registry, repository: str, image: str, tag: str) -> TagInfo | None:
    manifests = registry.get_manifests(repository, [tag, record_tag(tag)])
    manifest = manifests.get(tag)
    if manifest is None:
        return None
    parsed = parse_build_tag(tag)
    info = TagInfo(
        tag=tag,
        image=image,
        repository=repository,
        registry=registry.name,
        reference=registry.reference(repository, tag, manifest.digest),
        digest=manifest.digest,
        size=manifest.size,
        jira=parsed.jira if parsed else None,
        build_number=parsed.build_number if parsed else None,
    )
    record = manifests.get(record_tag(tag))
    if record is not None:
        subject, annotations = read_record(record)
        if subject == manifest.digest:
            _apply_record(info, annotations)
    for entry in registry.list_images(repository):
        if entry.digest == manifest.digest:
            info.other_tags = sorted(t for t in entry.tags if t != tag)
            if entry.pushed_at is not None:
                info.pushed_at = entry.pushed_at
            if entry.size is not None:
                info.size = entry.size
    return info
