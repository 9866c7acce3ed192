"""The small interface every registry kind implements, and the types it speaks in."""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from imagectl.config import RegistryConfig

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST)


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as stored: its bytes decide its digest."""

    raw: bytes
    media_type: str
    digest: str

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str | None = None) -> Manifest:
        doc = json.loads(raw)
        return cls(raw, media_type or doc.get("mediaType") or OCI_MANIFEST, "sha256:" + hashlib.sha256(raw).hexdigest())

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def size(self) -> int:
        """Bytes of config and layers as stored (compressed), the registry's notion of image size."""
        doc = self.doc
        parts = [doc.get("config", {})] + list(doc.get("layers", []))
        return sum(int(p.get("size", 0)) for p in parts) + len(self.raw)


@dataclass
class RemoteImage:
    digest: str
    tags: list[str] = field(default_factory=list)
    pushed_at: datetime | None = None
    size: int | None = None


@dataclass(frozen=True)
class RepositoryChange:
    """One change ``ensure_repository`` makes (or would make, in a plan)."""

    repository: str
    action: str  # "create", "set-immutable", "set-scan-on-push", "set-lifecycle-policy"
    detail: str = ""


class Registry(ABC):
    """A registry imagectl pushes to and keeps its records in."""

    kind: str

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self.name = config.name
        self.host = config.host

    def reference(self, repository: str, tag: str | None = None, digest: str | None = None) -> str:
        ref = f"{self.host}/{repository}"
        if tag:
            ref += f":{tag}"
        if digest:
            ref += f"@{digest}"
        return ref

    def credentials(self) -> tuple[str, str] | None:
        """Username/password from the environment: per registry first, then the shared pair."""
        specific = f"IMAGECTL_REGISTRY_{self.name.upper().replace('-', '_')}_"
        for prefix in (specific, "IMAGECTL_REGISTRY_"):
            user, password = os.environ.get(prefix + "USERNAME"), os.environ.get(prefix + "PASSWORD")
            if user and password:
                return user, password
        return None

    @abstractmethod
    def docker_auth(self) -> dict[str, str] | None:
        """auth_config for one Docker push/pull; never written to ~/.docker/config.json."""

    @abstractmethod
    def plan_repository(self, repository: str) -> list[RepositoryChange]:
        """What ``ensure_repository`` would change; empty when the repository is as imagectl wants it."""

    @abstractmethod
    def apply_repository(self, changes: Iterable[RepositoryChange]) -> None:
        """Make the changes a plan listed."""

    def ensure_repository(self, repository: str) -> list[RepositoryChange]:
        changes = self.plan_repository(repository)
        self.apply_repository(changes)
        return changes

    @abstractmethod
    def list_images(self, repository: str) -> list[RemoteImage]:
        """Every tagged manifest in the repository, with all its tags; [] when the repository does not exist."""

    @abstractmethod
    def list_tags(self, repository: str) -> list[str]:
        """Every tag in the repository (names only: the cheapest listing); [] when it does not exist."""

    @abstractmethod
    def get_manifests(self, repository: str, refs: list[str]) -> dict[str, Manifest]:
        """Manifests of the given tags or ``sha256:`` digests (missing ones are absent), in as few calls as the API allows."""

    def get_manifest(self, repository: str, ref: str) -> Manifest | None:
        return self.get_manifests(repository, [ref]).get(ref)

    @abstractmethod
    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest (and so every tag on it)."""

    # Blobs, for copying an image registry to registry without a Docker engine.
    @abstractmethod
    def has_blob(self, repository: str, digest: str) -> bool: ...

    @abstractmethod
    def open_blob(self, repository: str, digest: str) -> BinaryIO:
        """A stream of the blob's bytes (the caller closes it)."""

    @abstractmethod
    def put_blob(self, repository: str, digest: str, size: int, stream: BinaryIO) -> None: ...

    @abstractmethod
    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> bool:
        """Tag ``manifest`` as ``tag``. True if written, False if the tag already held it.

        Raises ConflictError if the tag exists with other content: tags are never moved."""
