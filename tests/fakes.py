"""Small, honest in-memory implementations of imagectl's interfaces, for unit tests of planning rules.

- ``MemoryRegistry``: a Registry. ``atomic=True`` behaves like an immutable ECR repository (claiming a tag is
  one create-if-absent); ``atomic=False`` like a plain OCI registry (tags overwrite; claims go through the same
  splitter code as registries/oci.py, and ``jitter`` sleeps between single reads and writes so threads
  interleave). ``calls`` counts operations, to check that costs stay constant.
- ``MemoryVariable`` (ImageVariable) and ``MemoryRuns`` (Runs): the Airflow side.
These never stand in for the wire: every command is also tested against the real servers in tests/integration.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
import time
from collections import Counter
from typing import Any, BinaryIO

from imagectl.airflow._base import ImageVariable, Reach, Runs
from imagectl.errors import ConflictError
from imagectl.registries._base import (
    Capabilities,
    Claim,
    Manifest,
    Registry,
    RemoteImage,
    RepositoryChange,
    ScanReport,
)
from imagectl.registries.oci import splitter_claim
from imagectl.retention import ecr_lifecycle_policy
from imagectl.settings import RegistryConfig


def image_manifest(seed: str, base_layers: int = 1) -> Manifest:
    """A schema-2 image manifest whose blobs are deterministic fakes (use MemoryRegistry.push to store them)."""
    layers = [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 10 + i,
            "digest": "sha256:" + hashlib.sha256(f"{seed}-{i}".encode()).hexdigest(),
        }
        for i in range(base_layers)
    ]
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 3,
            "digest": "sha256:" + hashlib.sha256(f"cfg-{seed}".encode()).hexdigest(),
        },
        "layers": layers,
    }
    return Manifest.from_bytes(json.dumps(doc, sort_keys=True).encode())


class MemoryRegistry(Registry):
    kind = "memory"

    def __init__(
        self,
        name: str = "mem",
        host: str = "mem.example",
        *,
        atomic: bool = True,
        retention: bool = False,
        scanning: bool = False,
        fanout: int | None = None,
        jitter: float = 0.0,
    ) -> None:
        super().__init__(RegistryConfig(name, "oci", host))
        self.atomic, self.retention, self.scanning = atomic, retention, scanning
        self.fanout = fanout or (100 if atomic else 16)
        self.jitter = jitter
        self.tags: dict[tuple[str, str], str] = {}
        self.manifests: dict[tuple[str, str], Manifest] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.calls: Counter[str] = Counter()
        self.scans: dict[str, ScanReport] = {}
        self.lock = threading.Lock()

    def _pause(self) -> None:
        if self.jitter:
            time.sleep(random.uniform(0, self.jitter))

    # -- what it guarantees
    def capabilities(self, repository: str) -> Capabilities:
        return Capabilities(self.atomic, self.retention, 100 if self.atomic else 1, self.fanout, detailed_listing=self.atomic)

    def claim_marker(self, tag: str) -> str:
        from imagectl.namespaces import door_tag

        return tag if self.atomic else door_tag(tag)

    def claim_tag(self, repository: str, tag: str, manifest: Manifest) -> Claim:
        self.calls["claim_tag"] += 1
        if not self.atomic:
            return splitter_claim(self, repository, tag, manifest)
        with self.lock:
            current = self.tags.get((repository, tag))
            if current is not None:
                return Claim.SAME if current == manifest.digest else Claim.TAKEN
            self._store(repository, tag, manifest)
            return Claim.CLAIMED

    def retention_policy(self) -> dict[str, Any] | None:
        return ecr_lifecycle_policy(self.config.retention) if self.retention else None

    # -- single-tag primitives (the splitter's registers)
    def _store(self, repository: str, tag: str, manifest: Manifest) -> None:
        self.manifests[(repository, manifest.digest)] = manifest
        if not tag.startswith("sha256:"):
            self.tags[(repository, tag)] = manifest.digest

    def _get_manifest(self, repository: str, ref: str) -> Manifest | None:
        self._pause()
        self.calls["get"] += 1
        return self._lookup(repository, ref)

    def _write(self, repository: str, tag: str, manifest: Manifest) -> None:
        self._pause()
        self.calls["put"] += 1
        self._store(repository, tag, manifest)

    def _exists(self, repository: str, ref: str) -> bool:
        return self._get_manifest(repository, ref) is not None

    # -- Registry interface
    def docker_auth(self) -> dict[str, str] | None:
        return None

    def plan_repository(self, repository: str) -> list[RepositoryChange]:
        return []

    def apply_repository(self, changes: Any) -> None:
        return None

    def list_images(self, repository: str) -> list[RemoteImage]:
        self.calls["list"] += 1
        images: dict[str, RemoteImage] = {}
        for (repo, tag), digest in list(self.tags.items()):
            if repo == repository:
                images.setdefault(digest, RemoteImage(digest, [], None, self.manifests[(repo, digest)].size)).tags.append(tag)
        return list(images.values())

    def list_tags(self, repository: str) -> list[str]:
        self.calls["list"] += 1
        return [tag for (repo, tag) in list(self.tags) if repo == repository]

    def _lookup(self, repository: str, ref: str) -> Manifest | None:
        digest = ref if ref.startswith("sha256:") else self.tags.get((repository, ref))
        return self.manifests.get((repository, digest)) if digest else None

    def get_manifests(self, repository: str, refs: list[str]) -> dict[str, Manifest]:
        """One round trip (ECR: one batch call; the distribution API: parallel GETs)."""
        self._pause()
        self.calls["batch_get"] += 1
        self.calls["get"] += len(refs)
        return {ref: found for ref in refs if (found := self._lookup(repository, ref)) is not None}

    def existing(self, repository: str, refs: list[str]) -> set[str]:
        self.calls["probe"] += 1
        return set(self.get_manifests(repository, refs))

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> bool:
        with self.lock:
            current = self._get_manifest(repository, tag)
            if current is not None:
                if current.digest == manifest.digest:
                    return False
                raise ConflictError(f"{repository}:{tag} already exists with digest {current.digest}", "tags are never moved")
            self._write(repository, tag, manifest)
            return True

    def delete_manifest(self, repository: str, digest: str) -> None:
        self.calls["delete"] += 1
        self.manifests.pop((repository, digest), None)
        for key in [k for k, d in self.tags.items() if k[0] == repository and d == digest]:
            del self.tags[key]

    def has_blob(self, repository: str, digest: str) -> bool:
        return (repository, digest) in self.blobs

    def open_blob(self, repository: str, digest: str) -> BinaryIO:
        return io.BytesIO(self.blobs[(repository, digest)])

    def put_blob(self, repository: str, digest: str, size: int, stream: BinaryIO) -> None:
        self.blobs[(repository, digest)] = stream.read()

    def scan_findings(self, repository: str, digest: str) -> ScanReport:
        if not self.scanning:
            return super().scan_findings(repository, digest)
        return self.scans.get(digest, ScanReport("NOT_FOUND"))

    # -- test helpers
    def push(self, repository: str, tag: str, manifest: Manifest) -> Manifest:
        for descriptor in manifest.descriptors():
            self.blobs[(repository, descriptor["digest"])] = b"x" * int(descriptor.get("size", 1))
        self._store(repository, tag, manifest)
        return manifest


class MemoryVariable(ImageVariable):
    def __init__(self, key: str = "dbt_image", value: str | None = None, reach: Reach | None = None) -> None:
        self.key, self.value, self.description, self._reach = key, value, None, reach or Reach()
        self.writes: list[str] = []
        self.facts: dict[str, str] = {}
        self.lock = threading.Lock()

    def location(self) -> str:
        return f"memory Variable {self.key}"

    def read(self) -> str | None:
        return self.value

    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        with self.lock:
            self.value, self.description, self.facts = value, description, facts
            self.writes.append(value)

    def reach(self) -> Reach:
        return self._reach


class MemoryRuns(Runs):
    def __init__(self) -> None:
        self.base_url = "http://airflow.example"
        self.dags: dict[str, dict[str, Any]] = {"dbt_build": {"dag_id": "dbt_build", "is_paused": False}}
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.images: dict[tuple[str, str], str] = {}
        self.counter = 0
        # What a triggered run does: (dag_id, run_id, conf) -> (final state, the image its dbt task rendered); None: the
        # run succeeds and renders nothing.
        self.on_trigger: Any = None

    def dag(self, dag_id: str) -> dict[str, Any]:
        from imagectl.errors import NotFoundError

        if dag_id not in self.dags:
            raise NotFoundError(f"DAG {dag_id} is not known", "check the DAG id")
        return self.dags[dag_id]

    def trigger(self, dag_id: str, run_id: str | None, conf: dict[str, Any]) -> dict[str, Any]:
        self.counter += 1
        run_id = run_id or f"manual__{self.counter}"
        run = {"dag_run_id": run_id, "state": "success", "conf": conf, "start_date": "2099-01-01T00:00:00Z"}
        if self.on_trigger is not None:
            run["state"], self.images[(dag_id, run_id)] = self.on_trigger(dag_id, run_id, conf)
        self.runs[(dag_id, run_id)] = run
        return run

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        from imagectl.errors import NotFoundError

        if (dag_id, run_id) not in self.runs:
            raise NotFoundError(f"run {run_id} of DAG {dag_id} does not exist", "check the run id")
        return self.runs[(dag_id, run_id)]

    def latest_run(self, dag_id: str) -> dict[str, Any] | None:
        runs = [r for (d, _), r in self.runs.items() if d == dag_id]
        return runs[-1] if runs else None

    def rendered_image(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.images.get((dag_id, run_id))

    def run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.base_url}/dags/{dag_id}/runs/{run_id}"
