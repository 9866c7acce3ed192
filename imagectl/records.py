"""Record manifests: small OCI manifests that hold imagectl's metadata in their annotations.

A record reuses the config descriptor of the image it describes (a blob already in the repository), has no
layers, and points at that image with ``subject``. So it can be written with the registry's manifest API alone
(ECR's put_image, the distribution PUT) and read back in batches (ECR's batch_get_image takes 100 at a time)
without downloading any image data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from imagectl.registries._base import OCI_MANIFEST, Manifest

RECORD_ARTIFACT_TYPE = "application/vnd.imagectl.record.v1+json"


def make_record(image: Manifest, annotations: Mapping[str, str], artifact_type: str = RECORD_ARTIFACT_TYPE) -> Manifest:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": image.doc["config"],
        "layers": [],
        "subject": {"mediaType": image.media_type, "digest": image.digest, "size": len(image.raw)},
        "annotations": dict(sorted(annotations.items())),
    }
    return Manifest.from_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(), OCI_MANIFEST)


def read_record(manifest: Manifest) -> tuple[str | None, dict[str, str]]:
    """(subject digest, annotations) of a record; (None, {}) for anything that is not one."""
    doc = manifest.doc
    if doc.get("artifactType") != RECORD_ARTIFACT_TYPE and not str(doc.get("artifactType", "")).startswith("application/vnd.imagectl."):
        return None, {}
    return doc.get("subject", {}).get("digest"), dict(doc.get("annotations", {}))
