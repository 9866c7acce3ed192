"""Copy an image registry to registry with its digest unchanged, moving only the blobs the target lacks.

No Docker engine is involved (the on-call laptop may have none): manifests are copied byte for byte, so the
digest is the same in both registries; index manifests (multi-platform) are copied with all their children.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagectl.errors import RegistryError
from imagectl.registries import Manifest, Registry
from imagectl.registries._base import DOCKER_LIST, OCI_INDEX

COPY_ATTEMPTS = 3


@dataclass
class CopyStats:
    blobs_copied: int = 0
    blobs_present: int = 0
    bytes_copied: int = 0

    def add(self, other: CopyStats) -> None:
        self.blobs_copied += other.blobs_copied
        self.blobs_present += other.blobs_present
        self.bytes_copied += other.bytes_copied


def _copy_blobs(source: Registry, target: Registry, repository: str, manifest: Manifest) -> CopyStats:
    stats = CopyStats()
    doc = manifest.doc
    descriptors = ([doc["config"]] if "config" in doc else []) + list(doc.get("layers", []))
    for descriptor in descriptors:
        digest, size = descriptor["digest"], int(descriptor.get("size", 0))
        if target.has_blob(repository, digest):
            stats.blobs_present += 1
            continue
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
        stats.blobs_copied += 1
        stats.bytes_copied += size
    return stats


def copy_manifest(source: Registry, target: Registry, repository: str, manifest: Manifest, tag: str | None) -> CopyStats:
    """Make ``manifest`` (and what it references) exist in ``target``; tag it when ``tag`` is given."""
    stats = CopyStats()
    if manifest.media_type in (OCI_INDEX, DOCKER_LIST):
        for child in manifest.doc.get("manifests", []):
            child_manifest = source.get_manifest(repository, child["digest"])
            if child_manifest is not None:
                stats.add(copy_manifest(source, target, repository, child_manifest, None))
    else:
        stats.add(_copy_blobs(source, target, repository, manifest))
    target.put_manifest(repository, tag or manifest.digest, manifest)
    return stats
