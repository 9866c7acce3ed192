"""Each environment's deployment history, kept in its registry as record manifests.

Revision N of environment E is the tag ``imagectl-history-E-<N:06d>`` in the build image's repository: a record
manifest (records.py) whose subject is the image that was deployed and whose annotations hold the revision
(time, action, tag, digest, release, actor, reason, the revision it replaced). Claiming revision N is creating
that tag:

- ECR: the repository's tag immutability makes creating a tag atomic: of two writers, exactly one succeeds and
  the other re-reads and takes N+1. No record is overwritten.
- plain OCI registries have no conditional write. imagectl reads the tag before writing it, and re-reads it after
  a pause; a writer that finds another's record there takes N+1. This closes the race unless a second writer's
  read and write are further apart than that pause (see README).

The image itself also gets the tag ``deployed-E-<N:06d>``, which the ECR lifecycle policy keeps, so a rollback
target is never expired away. Reading the latest revision costs one tag listing; reading K revisions adds one
batch_get_image per 100 on ECR (K parallel GETs on OCI registries).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from imagectl.errors import ConflictError
from imagectl.records import make_record, read_record
from imagectl.registries import Manifest, Registry
from imagectl.tagging import DEPLOYED_TAG_PREFIX, HISTORY_TAG_PREFIX

HISTORY_ARTIFACT = "application/vnd.imagectl.history.v1+json"
_P = "io.imagectl.history."
CLAIM_ATTEMPTS = 30
OCI_VERIFY_PAUSE = 0.3  # seconds between writing a revision on a plain OCI registry and checking it is still ours
ACTIONS = ("deploy", "promote", "rollback")


@dataclass
class Revision:
    environment: str
    revision: int
    time: str
    action: str
    tag: str
    digest: str
    reference: str  # digest-pinned: <registry>/<repository>:<tag>@sha256:…
    actor: str
    reason: str | None = None
    release: str | None = None
    replaces: int | None = None
    from_environment: str | None = None
    git_sha: str | None = None
    current: bool = False

    def annotations(self) -> dict[str, str]:
        data = asdict(self)
        data.pop("current")
        return {_P + k: str(v) for k, v in data.items() if v is not None}

    @classmethod
    def from_annotations(cls, annotations: dict[str, str]) -> Revision | None:
        values = {k[len(_P) :]: v for k, v in annotations.items() if k.startswith(_P)}
        try:
            return cls(
                environment=values["environment"],
                revision=int(values["revision"]),
                time=values["time"],
                action=values["action"],
                tag=values["tag"],
                digest=values["digest"],
                reference=values["reference"],
                actor=values["actor"],
                reason=values.get("reason"),
                release=values.get("release"),
                replaces=int(values["replaces"]) if values.get("replaces") else None,
                from_environment=values.get("from_environment"),
                git_sha=values.get("git_sha"),
            )
        except (KeyError, ValueError):
            return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def history_tag(environment: str, revision: int) -> str:
    return f"{HISTORY_TAG_PREFIX}{environment}-{revision:06d}"


def deployed_tag(environment: str, revision: int) -> str:
    return f"{DEPLOYED_TAG_PREFIX}{environment}-{revision:06d}"


class History:
    def __init__(self, registry: Registry, repository: str, environment: str) -> None:
        self.registry = registry
        self.repository = repository
        self.environment = environment
        self._pattern = re.compile(re.escape(f"{HISTORY_TAG_PREFIX}{environment}-") + r"(\d{6,})")

    def numbers(self) -> list[int]:
        """Revision numbers, ascending (one tag listing)."""
        found = (self._pattern.fullmatch(t) for t in self.registry.list_tags(self.repository))
        return sorted(int(m.group(1)) for m in found if m)

    def read(self, numbers: list[int]) -> list[Revision]:
        tags = [history_tag(self.environment, n) for n in numbers]
        manifests = self.registry.get_manifests(self.repository, tags)
        revisions = []
        for tag in tags:
            manifest = manifests.get(tag)
            if manifest is None:
                continue
            subject, annotations = read_record(manifest)
            revision = Revision.from_annotations(annotations)
            if revision is not None and subject == revision.digest:
                revisions.append(revision)
        return sorted(revisions, key=lambda r: r.revision, reverse=True)

    def newest(self, limit: int | None = None) -> list[Revision]:
        """The newest ``limit`` revisions (all when None), newest first."""
        numbers = self.numbers()
        return self.read(numbers[-limit:] if limit else numbers)

    def latest(self) -> Revision | None:
        newest = self.newest(1)
        return newest[0] if newest else None

    def get(self, number: int) -> Revision | None:
        found = self.read([number])
        return found[0] if found else None

    def append(self, draft: Revision, image: Manifest) -> Revision:
        """Claim the next revision number for ``draft`` (its number and ``replaces`` are filled in here)."""
        for _ in range(CLAIM_ATTEMPTS):
            numbers = self.numbers()
            draft.revision = (numbers[-1] if numbers else 0) + 1
            draft.replaces = numbers[-1] if numbers else None
            annotations = draft.annotations()
            annotations["io.imagectl.nonce"] = uuid.uuid4().hex  # two identical drafts still differ
            record = make_record(image, annotations, artifact_type=HISTORY_ARTIFACT)
            tag = history_tag(self.environment, draft.revision)
            try:
                self.registry.put_manifest(self.repository, tag, record)
            except ConflictError:
                continue  # another writer took this number: read again and take the next
            if self.registry.kind != "ecr":
                time.sleep(OCI_VERIFY_PAUSE)
                current = self.registry.get_manifest(self.repository, tag)
                if current is None or current.digest != record.digest:
                    continue
            return draft
        raise ConflictError(
            f"could not claim a revision in {self.environment}'s history after {CLAIM_ATTEMPTS} attempts",
            "too many concurrent writers; try again",
        )

    def mark_deployed(self, revision: Revision, image: Manifest) -> None:
        """Tag the image so the lifecycle policy keeps it (idempotent)."""
        self.registry.put_manifest(self.repository, deployed_tag(self.environment, revision.revision), image)
