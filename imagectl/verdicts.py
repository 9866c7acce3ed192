"""How verifications ended, and which images an environment refuses: records beside the history, never edits.

- **Verdict** ``imagectl-verdict-<env>-<N:06d>``: how revision N's verification ended (verified or failed), the
  DAG run that decided and what its dbt task rendered. One per revision: the first one written stands, and a
  re-run of the same verification reads it back instead of deciding again.
- **Rejection** ``imagectl-rejection-<env>-<digest[:12]>-<k:03d>``: the k-th time an image was rejected in an
  environment, or its rejection lifted (``action``). The highest k is the image's state. Each k is claimed like a
  revision (``Registry.claim_record``), so two writers never write the same one and the sequence stays auditable.

Both are records with the image as their subject (records.py), validated as a whole when read; an invalid one is
warned about and ignored — a forged rejection can only make imagectl refuse an image (which ``unreject``, or
``--force --reason``, overrides, recorded), never let one through.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from imagectl.environment import Environment
from imagectl.errors import ConflictError, RegistryError
from imagectl.history import Revision
from imagectl.namespaces import rejection_tag, verdict_tag
from imagectl.records import REJECTION_RECORD, VERDICT_RECORD, InvalidRecord, make_record, read_record
from imagectl.registries._base import Claim, Manifest
from imagectl.report import warn

_V = "io.imagectl.verdict."
_R = "io.imagectl.rejection."
RESULTS = ("verified", "failed")
REJECTION_PROBE = 16  # rejection records looked for per round (an image is rejected and lifted a handful of times)


@dataclass
class Verdict:
    environment: str
    revision: int
    result: str  # verified | failed
    digest: str
    time: str
    actor: str
    dag_id: str
    run_id: str
    run_state: str
    rendered: str | None  # the image the run's dbt task rendered
    run_url: str | None = None
    detail: str | None = None  # why it failed, in one line

    @property
    def verified(self) -> bool:
        return self.result == "verified"

    def annotations(self) -> dict[str, str]:
        return {_V + k: str(v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_record(cls, manifest: Manifest, environment: str, revision: int) -> Verdict:
        record = read_record(manifest, (VERDICT_RECORD,))
        a = record.annotations

        def text(key: str, required: bool = True) -> str | None:
            value = a.get(_V + key)
            if value is None and required:
                raise InvalidRecord(f"has no {key}")
            return value[:600] if value is not None else None

        if text("environment") != environment or text("revision") != str(revision):
            raise InvalidRecord(f"is about another revision ({text('environment')} {text('revision')})")
        result = text("result")
        if result not in RESULTS:
            raise InvalidRecord("has no result")
        if text("digest") != record.subject:
            raise InvalidRecord("names another image than its subject")
        return cls(
            environment=environment,
            revision=revision,
            result=result or "",
            digest=record.subject or "",
            time=text("time") or "",
            actor=text("actor") or "",
            dag_id=text("dag_id") or "",
            run_id=text("run_id") or "",
            run_state=text("run_state") or "",
            rendered=text("rendered", required=False),
            run_url=text("run_url", required=False),
            detail=text("detail", required=False),
        )

    def json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        how = f"run {self.run_id} of {self.dag_id}: {self.run_state}"
        return f"{self.result} ({how}{f'; {self.detail}' if self.detail else ''})"


@dataclass
class Rejection:
    environment: str
    digest: str
    number: int  # its place in the image's sequence of rejections and liftings
    action: str  # reject | lift
    time: str
    actor: str
    reason: str
    revision: int | None = None  # the revision whose verification failed (None: rejected by hand)
    run_url: str | None = None

    @property
    def rejected(self) -> bool:
        return self.action == "reject"

    def annotations(self) -> dict[str, str]:
        return {_R + k: str(v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_record(cls, manifest: Manifest, environment: str, number: int) -> Rejection:
        record = read_record(manifest, (REJECTION_RECORD,))
        a = record.annotations
        action = a.get(_R + "action")
        if a.get(_R + "environment") != environment or a.get(_R + "number") != str(number) or action not in ("reject", "lift"):
            raise InvalidRecord("is not this environment's rejection record")
        if a.get(_R + "digest") != record.subject:
            raise InvalidRecord("names another image than its subject")
        revision = a.get(_R + "revision")
        return cls(
            environment=environment,
            digest=record.subject or "",
            number=number,
            action=action,
            time=a.get(_R + "time", "")[:40],
            actor=a.get(_R + "actor", "")[:100],
            reason=a.get(_R + "reason", "")[:600],
            revision=int(revision) if revision and revision.isdigit() and len(revision) < 12 else None,
            run_url=a.get(_R + "run_url"),
        )

    def json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return f"rejected in {self.environment} by {self.actor} at {self.time}: {self.reason}"


# -- verdicts ----------------------------------------------------------------------------------------------------


def read_verdicts(env: Environment, numbers: list[int]) -> dict[int, Verdict]:
    """The verdicts of these revisions that exist and are valid (one batched read)."""
    tags = {verdict_tag(env.name, n): n for n in numbers}
    found = env.registry.get_manifests(env.repository, list(tags)) if tags else {}
    verdicts = {}
    for tag, manifest in found.items():
        try:
            verdicts[tags[tag]] = Verdict.from_record(manifest, env.name, tags[tag])
        except InvalidRecord as exc:
            warn(f"{tag} in {env.repository} is not a valid verdict ({exc}); it is ignored")
    return verdicts


def write_verdict(env: Environment, verdict: Verdict, image: Manifest) -> Verdict:
    """Record ``verdict``; if its revision already has one, that one stands and is returned."""
    record = make_record(image, verdict.annotations(), VERDICT_RECORD)
    try:
        env.registry.put_record(env.repository, verdict_tag(env.name, verdict.revision), record)
        return verdict
    except ConflictError:
        existing = read_verdicts(env, [verdict.revision]).get(verdict.revision)
        if existing is None:
            raise RegistryError(
                f"{verdict_tag(env.name, verdict.revision)} exists but is not a valid verdict",
                "something other than imagectl wrote it; remove it with the registry's own tools",
            ) from None
        return existing


def newest_verified(env: Environment, history: list[Revision], below: int, not_digest: str) -> tuple[Revision, Verdict] | None:
    """The newest revision below ``below`` whose verification succeeded and whose image is not ``not_digest``."""
    candidates = [r for r in history if r.revision < below and r.digest != not_digest]
    verdicts = read_verdicts(env, [r.revision for r in candidates])
    for revision in candidates:  # newest first
        verdict = verdicts.get(revision.revision)
        if verdict is not None and verdict.verified and verdict.digest == revision.digest:
            return revision, verdict
    return None


# -- rejections ----------------------------------------------------------------------------------------------------


def _numbers(env: Environment, digest: str) -> list[int]:
    """The rejection records that exist for ``digest`` (their numbers, ascending)."""
    found: list[int] = []
    start = 1
    while True:
        tags = {rejection_tag(env.name, digest, n): n for n in range(start, start + REJECTION_PROBE)}
        present = sorted(tags[t] for t in env.registry.existing(env.repository, list(tags)))
        found += present
        if len(present) < REJECTION_PROBE or start > 900:
            return found
        start += REJECTION_PROBE


def rejection(env: Environment, digest: str) -> Rejection | None:
    """The image's current rejection in ``env`` (None: never rejected, or the newest record lifts it)."""
    state = rejection_state(env, digest)
    return state if state is not None and state.rejected else None


def rejection_state(env: Environment, digest: str) -> Rejection | None:
    """The newest valid rejection record of the image in ``env`` (a rejection or a lifting), or None."""
    for number in reversed(_numbers(env, digest)):
        tag = rejection_tag(env.name, digest, number)
        manifest = env.registry.get_manifest(env.repository, tag)
        if manifest is None:
            continue
        try:
            return Rejection.from_record(manifest, env.name, number)
        except InvalidRecord as exc:
            warn(f"{tag} in {env.repository} is not a valid rejection record ({exc}); it is ignored")
    return None


def rejections(env: Environment, digests: list[str]) -> dict[str, Rejection]:
    """The current rejections among ``digests`` (for history and status): one existence check for them all first."""
    firsts = {rejection_tag(env.name, d, 1): d for d in dict.fromkeys(digests)}
    ever = [firsts[t] for t in env.registry.existing(env.repository, list(firsts))] if firsts else []
    current = {d: rejection(env, d) for d in ever}
    return {d: r for d, r in current.items() if r is not None}


def record_rejection(
    env: Environment,
    image: Manifest,
    action: str,
    *,
    time: str,
    actor: str,
    reason: str,
    revision: int | None = None,
    run_url: str | None = None,
) -> Rejection:
    """Append a rejection or a lifting to the image's sequence in ``env`` (claimed: concurrent writers each get their
    own number). A no-op when the image is already in that state: the current record is returned."""
    for _ in range(20):
        state = rejection_state(env, image.digest)
        if state is not None and state.action == action or state is None and action == "lift":
            if state is None:
                raise ConflictError(f"{image.digest[:19]} is not rejected in {env.name}", "nothing to lift")
            return state
        existing = _numbers(env, image.digest)
        number = (existing[-1] if existing else 0) + 1
        entry = Rejection(env.name, image.digest, number, action, time, actor, reason, revision, run_url)
        record = make_record(image, entry.annotations(), REJECTION_RECORD)
        if env.registry.claim_record(env.repository, rejection_tag(env.name, image.digest, number), record) in (Claim.CLAIMED, Claim.SAME):
            return entry
    raise ConflictError(f"could not record the {action} of {image.digest[:19]} in {env.name}", "too many concurrent writers; try again")
