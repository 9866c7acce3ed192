"""The small interface every registry kind implements, the types it speaks in, and what a kind can guarantee.

Callers never test the kind. They ask ``capabilities`` (can tags be created atomically, does the registry
enforce a retention policy itself, how many manifests one read returns, can it delete, does it scan) and use
the primitives below; each kind implements the primitives the best way its API allows.
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, ClassVar

from imagectl.credentials import Login
from imagectl.errors import RegistryError
from imagectl.safejson import parse_json
from imagectl.settings import RegistryConfig, Timeouts

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
# The OCI 1.1 empty descriptor: the 2-byte blob "{}", for artifacts that need no config or layer content.
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_BLOB).hexdigest()
EMPTY_DESCRIPTOR = {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": len(EMPTY_BLOB)}
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as stored: its bytes decide its digest."""

    raw: bytes
    media_type: str
    digest: str

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str | None = None) -> Manifest:
        """Raises ValueError when ``raw`` is not a JSON object of sane size and depth (callers turn that into their own error)."""
        doc = parse_json(raw, 4 << 20)
        if not isinstance(doc, dict):
            raise ValueError("a manifest must be a JSON object")
        declared = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else None
        return cls(raw, media_type or declared or OCI_MANIFEST, "sha256:" + hashlib.sha256(raw).hexdigest())

    @property
    def doc(self) -> dict[str, Any]:
        doc = json.loads(self.raw)
        return doc if isinstance(doc, dict) else {}

    def descriptors(self) -> list[dict[str, Any]]:
        """The config and layer descriptors (the blobs this manifest needs), well-formed ones only."""
        doc = self.doc
        layers = doc.get("layers")
        parts = ([doc["config"]] if isinstance(doc.get("config"), dict) else []) + [
            d for d in (layers if isinstance(layers, list) else []) if isinstance(d, dict)
        ]
        return [d for d in parts if isinstance(d.get("digest"), str) and DIGEST_RE.fullmatch(d["digest"])]

    @property
    def size(self) -> int:
        """Bytes of config and layers as stored (compressed), the registry's notion of image size."""
        return sum(int(d.get("size", 0)) for d in self.descriptors() if isinstance(d.get("size", 0), int)) + len(self.raw)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.raw)}


@dataclass
class RemoteImage:
    digest: str
    tags: list[str] = field(default_factory=list)
    pushed_at: datetime | None = None
    size: int | None = None


@dataclass(frozen=True)
class RepositoryChange:
    """One change ``registry init`` makes (or would make, in a plan)."""

    repository: str
    action: str  # "create", "set-immutable", "set-scan-on-push", "set-lifecycle-policy", …
    detail: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What a registry guarantees; imagectl's behaviour follows from these, never from the kind's name."""

    atomic_tag_create: bool  # creating an existing tag fails: a tag can be claimed in one write
    retention_policy: bool  # the registry expires images itself (ECR lifecycle): old history lives in segments
    batch_read: int  # manifests one read call returns (ECR batch_get_image: 100; a distribution GET: 1)
    probe_fanout: int  # tags checked per round when looking for the newest history record
    detailed_listing: bool  # list_images gives every image's tags and push time in a few calls (ECR DescribeImages)


class Claim(enum.Enum):
    CLAIMED = "claimed"  # the tag is ours now
    SAME = "same"  # the tag already held exactly this manifest (a re-run)
    TAKEN = "taken"  # another writer has (or is getting) the tag


@dataclass(frozen=True)
class ScanReport:
    """What a registry knows of an image's scan (ECR's ImageScanStatus values, or NOT_FOUND / UNSUPPORTED)."""

    status: str  # COMPLETE, ACTIVE, IN_PROGRESS, PENDING, FAILED, UNSUPPORTED_IMAGE, …; NOT_FOUND; UNSUPPORTED (no scanning)
    counts: dict[str, int] = field(default_factory=dict)  # severity → findings
    link: str | None = None
    detail: str = ""
    completed: bool = False  # the findings are final: a scan completed (ECR: imageScanCompletedAt is present)
    setup: str | None = None  # how the image is scanned: "basic-on-push", "basic-manual", "enhanced-on-push", "enhanced-continuous"
    advice: str = ""  # what would make its findings known, for this registry's scanning set-up


class Registry(ABC):
    """A registry imagectl pushes to and keeps its records in."""

    kind: ClassVar[str]

    def __init__(self, config: RegistryConfig, login: Login | None = None, timeouts: Timeouts | None = None) -> None:
        self.config = config
        self.name = config.name
        self.host = config.host
        self.login = login
        self.timeouts = timeouts or Timeouts()
        self._empty_blob_repos: set[str] = set()  # repositories known to hold the empty blob (this process)

    def reference(self, repository: str, tag: str | None = None, digest: str | None = None) -> str:
        ref = f"{self.host}/{repository}"
        if tag:
            ref += f":{tag}"
        if digest:
            ref += f"@{digest}"
        return ref

    # -- what it guarantees ----------------------------------------------------------------------------------

    @abstractmethod
    def capabilities(self, repository: str) -> Capabilities:
        """What this registry guarantees for ``repository`` (ECR: depends on the repository's tag mutability).
        A kind with ``retention_policy`` must probe with ``probe_fanout = namespaces.SEGMENT_SIZE``: the policy keeps
        every SEGMENT_SIZE-th history record, and the probe's coarse rounds look at exactly those."""

    @abstractmethod
    def claim_marker(self, tag: str) -> str:
        """The tag whose existence shows that ``tag`` was claimed (won or not): the history lookup probes these."""

    @abstractmethod
    def claim_tag(self, repository: str, tag: str, manifest: Manifest) -> Claim:
        """Create ``tag`` for ``manifest`` unless any other writer has or gets it: of concurrent claimers at
        most one gets CLAIMED. Raises RegistryError when the registry cannot give that guarantee right now."""

    def removal_hint(self, repository: str, tag: str) -> str:
        """How a person removes a tag imagectl did not write (it never deletes what it cannot vouch for itself)."""
        return (
            f"delete {self.reference(repository, tag)} with the registry's own tools "
            f"(distribution: DELETE /v2/{repository}/manifests/<digest>)"
        )

    def retention_policy(self) -> dict[str, Any] | None:
        """The retention policy the registry enforces itself, or None when it has none (gc is the only cleaner)."""
        return None

    # -- repositories ----------------------------------------------------------------------------------------

    @abstractmethod
    def docker_auth(self) -> dict[str, str] | None:
        """auth_config for one Docker push/pull; never written to ~/.docker/config.json."""

    @abstractmethod
    def plan_repository(self, repository: str) -> list[RepositoryChange]:
        """What ``registry init`` would change; empty when the repository is as imagectl wants it."""

    @abstractmethod
    def apply_repository(self, changes: Iterable[RepositoryChange]) -> None:
        """Make the changes a plan listed."""

    # -- reading ---------------------------------------------------------------------------------------------

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
    def existing(self, repository: str, refs: list[str]) -> set[str]:
        """Which of the given tags or digests exist, as cheaply as the API allows."""

    # -- writing ---------------------------------------------------------------------------------------------

    @abstractmethod
    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> bool:
        """Tag ``manifest`` as ``tag``. True if written, False if the tag already held it.

        Raises ConflictError if the tag exists with other content: tags are never moved."""

    @abstractmethod
    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest (and so every tag on it)."""

    def delete_tagged(self, repository: str, digest: str, tags: list[str]) -> bool:
        """Delete an image that gc knows by these tags; False if it stays because it gained another tag meanwhile.
        Here: by digest (the distribution API deletes manifests, not tags). A registry that removes an image only
        with its last tag (ECR) overrides this, so a tag a concurrent deploy just added keeps the image."""
        self.delete_manifest(repository, digest)
        return True

    # -- blobs, for copying an image registry to registry and for artifacts ----------------------------------

    @abstractmethod
    def has_blob(self, repository: str, digest: str) -> bool: ...

    @abstractmethod
    def open_blob(self, repository: str, digest: str) -> BinaryIO:
        """A stream of the blob's bytes (the caller closes it)."""

    @abstractmethod
    def put_blob(self, repository: str, digest: str, size: int, stream: BinaryIO) -> None: ...

    def read_blob(self, repository: str, digest: str, limit: int = 8 << 20) -> bytes:
        """A small blob's bytes, checked against its digest (records' layers, image configs)."""
        stream = self.open_blob(repository, digest)
        try:
            data = stream.read(limit + 1)
        finally:
            stream.close()
        if len(data) > limit:
            raise RegistryError(f"blob {digest[:19]} in {repository} is larger than {limit} bytes", "it is not one imagectl wrote")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"blob {digest[:19]} in {repository} does not match its digest", "the registry returned other content")
        return data

    def put_small_blob(self, repository: str, data: bytes) -> dict[str, Any]:
        """Upload ``data`` unless present; returns its descriptor (media type left to the caller)."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(repository, digest):
            self.put_blob(repository, digest, len(data), io.BytesIO(data))
        return {"digest": digest, "size": len(data)}

    def put_record(self, repository: str, tag: str, record: Manifest) -> bool:
        """``put_manifest`` for a record artifact (records.py), uploading the empty blob it refers to first."""
        self._blobs_for(repository, record)
        return self.put_manifest(repository, tag, record)

    def claim_record(self, repository: str, tag: str, record: Manifest) -> Claim:
        """``claim_tag`` for a record artifact, uploading the empty blob it refers to first."""
        self._blobs_for(repository, record)
        return self.claim_tag(repository, tag, record)

    def _blobs_for(self, repository: str, record: Manifest) -> None:
        if any(d["digest"] == EMPTY_DIGEST for d in record.descriptors()):
            self.ensure_empty_blob(repository)

    def ensure_empty_blob(self, repository: str) -> None:
        """The OCI empty blob ``{}`` that record artifacts use as config and layer (uploaded once per repository)."""
        if repository not in self._empty_blob_repos:
            self.put_small_blob(repository, EMPTY_BLOB)
            self._empty_blob_repos.add(repository)

    # -- scanning --------------------------------------------------------------------------------------------

    def scan_findings(self, repository: str, digest: str) -> ScanReport:
        return ScanReport("UNSUPPORTED", detail=f"registry '{self.name}' ({self.kind}) does not scan images")
