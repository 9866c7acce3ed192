"""Copy an image registry to registry with its digest unchanged, moving only the blobs the target lacks.

No Docker engine is involved (the on-call laptop may have none): manifests are copied byte for byte, so the
digest is the same in both registries; index manifests (multi-platform) are copied with all their children.
Blobs are checked and copied in parallel (at most ``PARALLEL`` at once), each streamed with a known length.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from imagectl.adapters import http
from imagectl.errors import RegistryError
from imagectl.registries._base import INDEX_TYPES, Manifest, Registry

COPY_ATTEMPTS = 3
PARALLEL = 6


@dataclass
class CopyStats:
    blobs_copied: int = 0
    blobs_present: int = 0
    bytes_copied: int = 0

    def add(self, other: CopyStats) -> None:
        self.blobs_copied += other.blobs_copied
        self.blobs_present += other.blobs_present
        self.bytes_copied += other.bytes_copied

    def json(self) -> dict[str, Any]:
        return {"blobs_copied": self.blobs_copied, "blobs_present": self.blobs_present, "bytes_copied": self.bytes_copied}


def _copy_blob(source: Registry, target: Registry, repository: str, descriptor: dict[str, Any]) -> CopyStats:
    digest, size = descriptor["digest"], int(descriptor.get("size", 0))
    if target.has_blob(repository, digest):
        return CopyStats(blobs_present=1)
    for attempt in range(COPY_ATTEMPTS):  # a streamed upload cannot be retried mid-way: start the blob again
        stream = source.open_blob(repository, digest)
        try:
            target.put_blob(repository, digest, size, stream)
            break
        except RegistryError:
            if attempt == COPY_ATTEMPTS - 1:
                raise
        finally:
            stream.close()
    return CopyStats(blobs_copied=1, bytes_copied=size)


def _copy_blobs(source: Registry, target: Registry, repository: str, manifest: Manifest) -> CopyStats:
    stats = CopyStats()
    descriptors = list({d["digest"]: d for d in manifest.descriptors()}.values())
    if not descriptors:
        return stats
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(descriptors))) as pool:
        for result in http.map_in(pool, lambda d: _copy_blob(source, target, repository, d), descriptors):
            stats.add(result)
    return stats


def copy_manifest(source: Registry, target: Registry, repository: str, manifest: Manifest, tag: str | None) -> CopyStats:
    """Make ``manifest`` (and what it references) exist in ``target``; tag it when ``tag`` is given."""
    stats = CopyStats()
    if manifest.media_type in INDEX_TYPES:
        for child in manifest.doc.get("manifests") or []:
            if not isinstance(child, dict) or not isinstance(child.get("digest"), str):
                continue
            child_manifest = source.get_manifest(repository, child["digest"])
            if child_manifest is not None:
                stats.add(copy_manifest(source, target, repository, child_manifest, None))
    else:
        stats.add(_copy_blobs(source, target, repository, manifest))
    target.put_manifest(repository, tag or manifest.digest, manifest)
    return stats
