"""Record artifacts: imagectl's metadata, stored in the registry as OCI 1.1 artifacts beside the images.

A record (format 2) is an OCI image manifest with
- ``artifactType`` of imagectl's own (a build record, a history revision, a history segment, a verification
  verdict, a rejection),
- ``config`` and ``layers`` = the OCI *empty descriptor* (the 2-byte blob ``{}``, uploaded once per repository):
  ECR and GCR reject ``"layers": []`` and zero-byte blobs, which is why the image spec added the empty
  descriptor (OCI image spec 1.1, "Guidance for an empty descriptor"); a segment's one layer holds revisions
  as JSON lines instead,
- ``subject`` = the image it describes (none for a segment),
- ``annotations`` = the metadata.
Media types carry no parameters (ECR refuses ``;`` in them).

Records written by 0.1.0 (format 1: the image's own config blob and no layers) are still read. Everything read
is validated as a whole: a record that is not one (wrong types, missing fields, a subject that disagrees
with its annotations) raises ``InvalidRecord``, which readers turn into one warning and skip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagectl.registries._base import DIGEST_RE, EMPTY_DESCRIPTOR, OCI_MANIFEST, Manifest

BUILD_RECORD = "application/vnd.imagectl.record.v2+json"
REVISION_RECORD = "application/vnd.imagectl.revision.v2+json"
SEGMENT_RECORD = "application/vnd.imagectl.segment.v1+json"
SEGMENT_LAYER = "application/vnd.imagectl.revisions.v1+jsonl"
HISTORY_BASE = "application/vnd.imagectl.history-base.v1+json"  # where a 0.1.0 history ends (plain OCI registries)
VERDICT_RECORD = "application/vnd.imagectl.verdict.v1+json"  # how a revision's verification ended
REJECTION_RECORD = "application/vnd.imagectl.rejection.v1+json"  # an image rejected (or its rejection lifted) in an environment
LEGACY_BUILD_RECORD = "application/vnd.imagectl.record.v1+json"  # 0.1.0
LEGACY_REVISION_RECORD = "application/vnd.imagectl.history.v1+json"  # 0.1.0
KNOWN_TYPES = (
    BUILD_RECORD,
    REVISION_RECORD,
    SEGMENT_RECORD,
    HISTORY_BASE,
    VERDICT_RECORD,
    REJECTION_RECORD,
    LEGACY_BUILD_RECORD,
    LEGACY_REVISION_RECORD,
)
_NO_SUBJECT = (SEGMENT_RECORD, HISTORY_BASE)
MAX_ANNOTATIONS = 200
MAX_VALUE = 4096


class InvalidRecord(ValueError):
    """A manifest under an imagectl tag that is not a valid record (the message says why)."""


@dataclass(frozen=True)
class Record:
    artifact_type: str
    subject: str | None  # digest of the image it describes
    annotations: dict[str, str]
    layer: dict[str, Any] | None  # a segment's JSON-lines layer
    digest: str

    @property
    def legacy(self) -> bool:
        return self.artifact_type in (LEGACY_BUILD_RECORD, LEGACY_REVISION_RECORD)


def _dump(doc: dict[str, Any]) -> Manifest:
    return Manifest.from_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(), OCI_MANIFEST)


def make_record(
    subject: Manifest | None, annotations: Mapping[str, str], artifact_type: str, layer: dict[str, Any] | None = None
) -> Manifest:
    """A record artifact, written with ``Registry.put_record`` / ``claim_record`` (which upload the empty blob it
    refers to); a segment's layer blob must be uploaded before it."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_DESCRIPTOR,
        "layers": [layer or EMPTY_DESCRIPTOR],
        "annotations": dict(sorted(annotations.items())),
    }
    if subject is not None:
        doc["subject"] = subject.descriptor()
    return _dump(doc)


def _descriptor(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRecord(f"{what} is not a descriptor")
    digest, size, media = value.get("digest"), value.get("size"), value.get("mediaType")
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise InvalidRecord(f"{what} has no sha256 digest")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidRecord(f"{what} has no size")
    if not isinstance(media, str):
        raise InvalidRecord(f"{what} has no media type")
    return value


def read_record(manifest: Manifest, expected: tuple[str, ...] = KNOWN_TYPES) -> Record:
    """The record in ``manifest``, validated; InvalidRecord when it is not one of the ``expected`` kinds."""
    try:
        doc = json.loads(manifest.raw)
    except ValueError:
        raise InvalidRecord("not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidRecord("not a JSON object")
    artifact_type = doc.get("artifactType")
    if artifact_type not in expected:
        raise InvalidRecord(f"artifactType is {str(artifact_type)[:80]!r}, not an imagectl record of this kind")
    annotations = doc.get("annotations", {})
    if not isinstance(annotations, dict) or len(annotations) > MAX_ANNOTATIONS:
        raise InvalidRecord("annotations are not a map")
    if not all(isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_VALUE for k, v in annotations.items()):
        raise InvalidRecord("annotations are not strings")
    subject = None
    if "subject" in doc:
        subject = _descriptor(doc["subject"], "subject")["digest"]
    elif artifact_type not in _NO_SUBJECT:
        raise InvalidRecord("has no subject")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidRecord("layers is not a list")
    layer = None
    if artifact_type == SEGMENT_RECORD:
        if len(layers) != 1:
            raise InvalidRecord("a segment has exactly one layer")
        layer = _descriptor(layers[0], "the segment's layer")
        if layer.get("mediaType") != SEGMENT_LAYER:
            raise InvalidRecord("the segment's layer is not JSON lines of revisions")
    return Record(artifact_type, subject, dict(annotations), layer, manifest.digest)
