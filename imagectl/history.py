"""Each environment's deployment history, kept in its registry as record artifacts.

Revision N of environment E is the tag ``imagectl-history-E-<N:06d>`` in the build image's repository: a
record (records.py) whose subject is the image deployed and whose annotations hold the revision (time,
action, tag, digest, release, actor, reason, the revision it replaced, the environment's freeze state).

**Claiming revision N is claiming that tag** (``Registry.claim_tag``): on ECR the repository's tag
immutability makes it one atomic write; on a plain OCI registry a splitter on two registers beside the tag
(registries/oci.py) lets exactly one of any number of concurrent writers have it, with no pause and no
timing assumption. A writer that loses takes N+1. No record is ever overwritten, none is lost, and a
command exits 0 only after reading its own record back at its own number.

**Finding the newest revision costs the same at 10 and at 1,000,000 revisions**, and no tag listing: the
slots claimed so far are a prefix 1…L (every writer claims the slot after one it saw claimed), so L is found
by probing ``claim_marker`` tags in a fixed number of rounds — 3 rounds of 99 tags on ECR (one
``BatchGetImage`` each), 5 rounds of 15 parallel HEADs elsewhere. On ECR the lifecycle policy keeps every
100th record forever (retention.py), so the probe's coarse rounds always find their markers.

**100,000 revisions fit ECR's quotas** (10,000 images per repository by default): single records are kept
for the newest ``keep_history_records`` revisions; every block of 100 is also written as one *segment*
artifact (its layer holds the block's revisions as JSON lines), by the writer of the block's last revision
(and checked again halfway through the next block). 100,000 revisions cost 1,000 segments + 1,000 markers +
the newest singles. On registries that expire nothing (plain OCI), singles are never removed and segments
are not needed.

**0.1.0's history is read as it is**: its records use the same tags (format 1); on ECR the probe finds them
directly and the first new writer compacts them into segments once; on plain OCI registries, where 0.1.0
claimed no doors, the first new writer records where 0.1.0's history ends (``…-legacy``) and numbering
continues after it. Do not run 0.1.0 and this version against one plain OCI registry at the same time.

Records that are not valid (hostile or broken content) are skipped with one warning naming the tag; they
never count, never crash a command and are never overwritten.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from imagectl.errors import ConflictError, NotFoundError, RegistryError
from imagectl.namespaces import RELEASE_RE, SEGMENT_SIZE, history_tag, legacy_base_tag, segment_of, segment_tag
from imagectl.records import (
    HISTORY_BASE,
    LEGACY_REVISION_RECORD,
    REVISION_RECORD,
    SEGMENT_LAYER,
    SEGMENT_RECORD,
    InvalidRecord,
    make_record,
    read_record,
)
from imagectl.registries._base import DIGEST_RE, Claim, Manifest, Registry
from imagectl.report import warn
from imagectl.tagging import DOCKER_TAG_RE, ENVIRONMENT_RE

ACTIONS = ("deploy", "promote", "rollback", "freeze", "unfreeze")
# decide(draft, predecessor) -> an existing revision that already is this change, or None (see History.append)
Decide = Callable[["Revision", "Revision | None"], "Revision | None"]
_P = "io.imagectl.history."
NONCE = "io.imagectl.nonce"
LEGACY_LAST = "io.imagectl.history.legacy-last"
CLAIM_ATTEMPTS = 60
MAX_GAP = 64  # slots a writer may step over (lost in races) between a revision and the one it replaces, unchecked
NEAR = 400  # how far below a slot a writer looks for the revision it follows
FORGED_SPAN = 300  # slots without one valid record below the probe's top: that top is forged
MAX_FORGED_TOPS = 8  # forged tops left out before the lookup gives up and says so
SETTLE_SECONDS = 0.3  # how long a writer waits for a claimed slot below its own to show its record (plain OCI; see _bypassed)
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SHA_RE = re.compile(r"[0-9a-f]{7,40}")
_INT_RE = re.compile(r"[0-9]{1,12}")


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
    frozen: bool = False  # the environment's freeze state after this revision
    frozen_by: str | None = None
    frozen_at: str | None = None
    frozen_reason: str | None = None
    forced: str | None = None  # what --force overrode (a freeze, the scan gate, an image that never ran)
    release_high: str | None = None  # the highest release version of the environment up to this revision (release environments)
    # Not stored: how the reader sees it.
    current: bool = False
    image_present: bool | None = None

    _NOT_STORED = ("current", "image_present")

    def annotations(self) -> dict[str, str]:
        data = {k: v for k, v in asdict(self).items() if k not in self._NOT_STORED}
        data["frozen"] = "true" if self.frozen else None
        return {_P + k: str(v) for k, v in data.items() if v is not None}

    @classmethod
    def from_annotations(cls, annotations: dict[str, str], *, environment: str, number: int, subject: str | None) -> Revision:
        """The revision in a record's annotations, checked against the tag it was read from; InvalidRecord if not."""
        values = {k[len(_P) :]: v for k, v in annotations.items() if k.startswith(_P)}

        def text(key: str, required: bool = True, limit: int = 600) -> str | None:
            value = values.get(key)
            if value is None:
                if required:
                    raise InvalidRecord(f"has no {key}")
                return None
            if not isinstance(value, str) or len(value) > limit:
                raise InvalidRecord(f"{key} is not a string of at most {limit} characters")
            return value

        def integer(key: str, required: bool = True) -> int | None:
            value = text(key, required, 12)
            if value is None:
                return None
            if not _INT_RE.fullmatch(value):
                raise InvalidRecord(f"{key} is not a whole number")
            return int(value)

        env = text("environment")
        if env != environment:
            raise InvalidRecord(f"names environment {env!r}, not {environment!r}")
        if integer("revision") != number:
            raise InvalidRecord(f"names revision {values.get('revision')!r}, not {number}")
        action = text("action")
        if action not in ACTIONS:
            raise InvalidRecord(f"has an unknown action {action!r}")
        moment = text("time")
        if not _TIME_RE.fullmatch(moment or ""):
            raise InvalidRecord("has no UTC time")
        try:
            datetime.strptime(moment or "", "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise InvalidRecord("has an impossible time") from None
        tag = text("tag", limit=128) or ""
        if not DOCKER_TAG_RE.fullmatch(tag):
            raise InvalidRecord("has no valid tag")
        digest = text("digest", limit=71) or ""
        if not DIGEST_RE.fullmatch(digest):
            raise InvalidRecord("has no valid digest")
        if subject is not None and subject != digest:
            raise InvalidRecord("its subject is another image than its digest")
        reference = text("reference", limit=400) or ""
        if not reference.endswith("@" + digest):
            raise InvalidRecord("its reference is not pinned to its digest")
        release = text("release", required=False, limit=40)
        if release is not None and not RELEASE_RE.fullmatch(release):
            raise InvalidRecord("has a release that is not a version")
        release_high = text("release_high", required=False, limit=40)
        if release_high is not None and not RELEASE_RE.fullmatch(release_high):
            raise InvalidRecord("has a release_high that is not a version")
        from_environment = text("from_environment", required=False, limit=40)
        if from_environment is not None and not ENVIRONMENT_RE.fullmatch(from_environment):
            raise InvalidRecord("names a from_environment that is not an environment name")
        replaces = integer("replaces", required=False)
        if replaces is not None and replaces >= number:
            raise InvalidRecord("replaces a later revision")
        git_sha = text("git_sha", required=False, limit=40)
        if git_sha is not None and not _SHA_RE.fullmatch(git_sha):
            raise InvalidRecord("has a git_sha that is not a commit")
        frozen = text("frozen", required=False, limit=5)
        if frozen not in (None, "true", "True"):
            raise InvalidRecord("has a frozen flag that is not true")
        return cls(
            environment=environment,
            revision=number,
            time=moment or "",
            action=action or "",
            tag=tag,
            digest=digest,
            reference=reference,
            actor=text("actor", limit=200) or "",
            reason=text("reason", required=False),
            release=release,
            replaces=replaces,
            from_environment=from_environment,
            git_sha=git_sha,
            frozen=frozen is not None,
            frozen_by=text("frozen_by", required=False, limit=200),
            frozen_at=text("frozen_at", required=False, limit=40),
            frozen_reason=text("frozen_reason", required=False),
            forced=text("forced", required=False),
            release_high=release_high,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


MAX_SLOT = 10**9  # more revisions than any history will have: a registry claiming more is forged or broken


def find_last(exists: Callable[[list[int]], set[int]], lo: int, fanout: int, levels: int) -> int:
    """The largest n ≥ lo with exists(n), for a prefix-closed ``exists`` known true at lo (or lo = 0).

    One ``exists`` call per level, each with fanout-1 candidates; the first round widens (adds a level) only
    when its top candidate exists, so the number of calls is the same for every history up to fanout**levels.
    Widening stops at ``MAX_SLOT``: a registry that says every tag exists gets a RegistryError, not a hang."""
    step = fanout ** (levels - 1)
    top = True
    while True:
        candidates = [lo + step * i for i in range(1, fanout)]
        found = exists(candidates)
        best = max((c for c in candidates if c in found), default=lo)
        if top and best == candidates[-1]:
            if best >= MAX_SLOT:
                raise RegistryError(
                    f"the registry says history slots beyond {MAX_SLOT:,} exist (revision tags up to {best:,})",
                    "it answers 'exists' to tags nobody wrote, or someone forged them: check the registry (nothing was changed)",
                )
            step *= fanout  # more revisions than this many levels reach: one level more (rare, and only once per decade)
            continue
        top = False
        lo = best
        if step == 1:
            return lo
        step //= fanout


class History:
    """One environment's revisions in one registry repository."""

    def __init__(self, registry: Registry, repository: str, environment: str) -> None:
        self.registry = registry
        self.repository = repository
        self.environment = environment
        self._caps: Any = None
        self._invalid: set[int] = set()  # slots whose record is not valid (skipped, warned about once)
        self._cache: dict[int, Revision | None] = {}
        self._legacy: set[int] = set()  # cached slots whose record 0.1.0 wrote (format 1)
        self._last_seen = 0  # the highest slot seen claimed in this process (slots only ever grow)
        self._legacy_last: int | None = None
        self._from_segment: set[int] = set()  # cached revisions read from a segment (their single record expired)
        self._claimed: dict[int, Manifest] = {}  # records this process claimed, byte for byte (see keep_recorded)

    @property
    def caps(self) -> Any:
        if self._caps is None:
            self._caps = self.registry.capabilities(self.repository)
        return self._caps

    # -- finding the newest slot -------------------------------------------------------------------------------

    def _levels(self, fanout: int) -> int:
        levels, capacity = 1, fanout
        while capacity < 1_000_000:
            levels, capacity = levels + 1, capacity * fanout
        return levels

    def _existing(self, name: Callable[[int], str], numbers: list[int], claimed: bool = False) -> set[int]:
        """Which of ``numbers`` have the tag ``name(n)``. Looking for the newest revision, slots known to hold no
        valid record never count; looking for a free slot (``claimed``), every existing tag does — a forged door is
        still a door nobody can claim."""
        names = {name(n): n for n in numbers if claimed or n not in self._invalid}
        return {names[found] for found in self.registry.existing(self.repository, list(names))}

    def _probe(self, name: Callable[[int], str], lo: int) -> int:
        fanout = max(2, self.caps.probe_fanout)
        return find_last(lambda numbers: self._existing(name, numbers), lo, fanout, self._levels(fanout))

    def _legacy_base(self) -> int:
        """Where 0.1.0's history ends, on registries where new writers claim doors (0 when there is none). Checked
        against what it must agree with: the revision it names is a 0.1.0 record, and the one after it is not."""
        if self._legacy_last is not None:
            return self._legacy_last
        tag = legacy_base_tag(self.environment)
        manifest = self.registry.get_manifest(self.repository, tag)
        value = 0
        if manifest is not None:
            try:
                text = read_record(manifest, (HISTORY_BASE,)).annotations.get(LEGACY_LAST, "")
                value = int(text) if _INT_RE.fullmatch(text) else 0
            except InvalidRecord as exc:
                warn(f"{tag} is not an imagectl record ({exc}); ignored")
            if value and not (self._is_legacy(value) and not self._is_legacy(value + 1)):
                warn(
                    f"{tag} names revision {value} as the end of a 0.1.0 history, but that is not one; ignored "
                    f"(remove the tag once nothing else is wrong: it is not imagectl's)"
                )
                value = 0
        self._legacy_last = value
        return value

    @property
    def last_seen(self) -> int:
        """The highest slot this object has seen claimed (0: none yet)."""
        return self._last_seen

    def start_from(self, last_seen: int) -> None:
        """Take a slot an earlier read saw claimed as a lower bound of the last one (slots only ever grow): the next
        lookup probes one round above it instead of every level from 0. The Images page keeps it between loads."""
        self._last_seen = max(self._last_seen, last_seen)

    def last_slot(self) -> int:
        """The highest revision number claimed so far (won or not, valid or not): the next claim is after it.

        Once a slot is known to exist (an earlier lookup or claim in this command), one round above it is
        enough unless all of that round exists too."""
        name = self._slot_name
        if self._last_seen:
            last = self._gallop(name, self._last_seen)
        elif self.caps.atomic_tag_create:
            last = self._probe(name, 0)
        else:
            last = self._probe(name, self._legacy_base())
            if last == 0:  # nothing claimed by this version: a 0.1.0 history (records, no doors), or none
                last = self._probe(lambda n: history_tag(self.environment, n), 0)
        self._last_seen = max(self._last_seen, last)
        return last

    def _slot_name(self, number: int) -> str:
        return self.registry.claim_marker(history_tag(self.environment, number))

    def _gallop(self, name: Callable[[int], str], lo: int) -> int:
        fanout = max(2, self.caps.probe_fanout)
        best = max(self._existing(name, [lo + i for i in range(1, fanout)]), default=lo)
        return best if best < lo + fanout - 1 else self._probe(name, best)

    def _next_free(self, lo: int) -> int:
        """The first slot above ``lo`` nobody has claimed: every existing tag counts, forged or not (a forged door is
        still a door), and a run of them is stepped over in a bounded number of rounds."""
        fanout = max(2, self.caps.probe_fanout)
        window = [lo + i for i in range(1, fanout)]
        taken = self._existing(self._slot_name, window, claimed=True)
        free = [n for n in window if n not in taken]
        if free:
            return free[0]
        return (
            find_last(lambda numbers: self._existing(self._slot_name, numbers, claimed=True), window[-1], fanout, self._levels(fanout)) + 1
        )

    # -- reading ---------------------------------------------------------------------------------------------

    def _parse(self, number: int, manifest: Manifest) -> Revision:
        record = read_record(manifest, (REVISION_RECORD, LEGACY_REVISION_RECORD))
        revision = Revision.from_annotations(record.annotations, environment=self.environment, number=number, subject=record.subject)
        if record.legacy:
            self._legacy.add(number)
        return revision

    def _read(self, numbers: list[int]) -> dict[int, Revision]:
        """Valid revisions among ``numbers`` (missing and invalid ones absent; invalid ones warned about)."""
        wanted = [n for n in numbers if n not in self._cache and n not in self._invalid and n >= 1]
        if wanted:
            tags = {history_tag(self.environment, n): n for n in wanted}
            manifests = self.registry.get_manifests(self.repository, list(tags))
            for tag, number in tags.items():
                manifest = manifests.get(tag)
                if manifest is None:
                    continue  # not written (a slot lost in a race, or expired: see segments)
                try:
                    self._cache[number] = self._parse(number, manifest)
                except InvalidRecord as exc:
                    self._invalid.add(number)
                    warn(f"{tag} in {self.repository} is not a valid revision record ({exc}); it is skipped")
            missing = [n for n in wanted if n not in self._cache and n not in self._invalid]
            if missing and self.caps.retention_policy:
                self._read_segments(missing)
        return {n: self._cache[n] for n in numbers if self._cache.get(n) is not None}  # type: ignore[misc]

    def _read_segments(self, numbers: list[int]) -> None:
        """Revisions whose single records expired, from their segment — checked against every single record of the
        same block still readable: a segment that disagrees with one is not imagectl's, and none of it counts."""
        for segment in sorted({segment_of(n) for n in numbers}):
            revisions = self.read_segment(segment)
            first = (segment - 1) * SEGMENT_SIZE + 1
            singles = self._read_singles(list(range(first, first + SEGMENT_SIZE)))
            disagree = [r.revision for r in revisions if r.revision in singles and singles[r.revision].annotations() != r.annotations()]
            if disagree:
                warn(
                    f"{segment_tag(self.environment, segment)} in {self.repository} disagrees with the records of revision(s) "
                    f"{', '.join(map(str, disagree[:5]))}; it is skipped (it is not imagectl's: remove it)"
                )
                continue
            for revision in revisions:
                if revision.revision not in self._cache:
                    self._cache[revision.revision] = revision
                    self._from_segment.add(revision.revision)

    def _read_singles(self, numbers: list[int]) -> dict[int, Revision]:
        """The single records among ``numbers`` that can be read (no segments)."""
        found = {n: r for n in numbers if (r := self._cache.get(n)) is not None and n not in self._from_segment}
        wanted = [n for n in numbers if n not in found and n not in self._invalid and n not in self._cache]
        if wanted:
            tags = {history_tag(self.environment, n): n for n in wanted}
            for tag, manifest in self.registry.get_manifests(self.repository, list(tags)).items():
                try:
                    found[tags[tag]] = self._parse(tags[tag], manifest)
                except InvalidRecord:
                    continue
        return found

    def read_segment(self, segment: int) -> list[Revision]:
        tag = segment_tag(self.environment, segment)
        manifest = self.registry.get_manifest(self.repository, tag)
        if manifest is None:
            return []
        try:
            record = read_record(manifest, (SEGMENT_RECORD,))
            assert record.layer is not None
            data = self.registry.read_blob(self.repository, record.layer["digest"])
        except (InvalidRecord, RegistryError) as exc:
            warn(f"{tag} in {self.repository} is not a readable segment ({exc}); its revisions are skipped")
            return []
        revisions = []
        first = (segment - 1) * SEGMENT_SIZE + 1
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                entry = json.loads(line)
                number = int(entry["revision"])
                if not first <= number < first + SEGMENT_SIZE:
                    raise InvalidRecord("a revision outside the segment")
                revisions.append(Revision.from_annotations(entry["annotations"], environment=self.environment, number=number, subject=None))
            except (ValueError, KeyError, TypeError, InvalidRecord) as exc:
                warn(f"a line of {tag} is not a valid revision ({exc}); it is skipped")
        return revisions

    def newest(self, limit: int = 20) -> list[Revision]:
        """The newest ``limit`` valid revisions, newest first (constant cost in the history's length).

        The newest one must be plausible (``_implausible``): a forged tag at a probe marker, however valid it
        looks, cannot make the history jump past the real one or hide it. Such slots are left out, each named in a
        warning, and the lookup starts again below them (a bounded number of times)."""
        for _ in range(MAX_FORGED_TOPS + 1):
            last = self.last_slot()
            found: dict[int, Revision] = {}
            top = last
            while top > 0 and len(found) < limit:
                window = max(limit - len(found) + 10, min(self.caps.batch_read, 100))
                numbers = list(range(top, max(0, top - window), -1))
                found.update(self._read(numbers))
                top = numbers[-1] - 1
                if not found and top < last - FORGED_SPAN:
                    break  # this many slots without one valid record: the top of the prefix is forged
            newest = max(found) if found else None
            if newest is None and (top <= 0 or last == 0):
                return []
            problem = self._implausible(found[newest]) if newest is not None else f"no valid record in the {FORGED_SPAN} slots below it"
            if problem is None:
                return [found[n] for n in sorted(found, reverse=True)][:limit]
            forged = newest if newest is not None else last
            warn(
                f"{history_tag(self.environment, forged)} in {self.repository} is not a revision imagectl wrote ({problem}); "
                f"it is left out — remove it: {self.registry.removal_hint(self.repository, history_tag(self.environment, forged))}"
            )
            self._invalid.update(range(max(1, (newest or last) - (0 if newest else FORGED_SPAN)), last + 1))
            self._last_seen = 0
        raise RegistryError(
            f"more than {MAX_FORGED_TOPS} forged revision tags sit on top of {self.environment}'s history in {self.repository}",
            "someone with push rights wrote them: remove the tags the warnings above name, and restrict push rights (nothing was changed)",
        )

    def _implausible(self, revision: Revision) -> str | None:
        """Why ``revision`` cannot be the newest one imagectl wrote, or None. A writer claims the slot after the
        newest valid revision, stepping over claimed slots only (lost in races, or forged doors): so a real newest
        revision sits at most MAX_GAP slots above the nearest valid one below it, or every slot between is claimed.
        A forged tag far above the history cannot be, however valid it looks. (Its ``replaces`` is not relied on:
        the record it names may have been damaged since. 0.1.0's records are taken as they are.)"""
        if revision.revision in self._legacy or revision.revision == 1:
            return None
        if revision.replaces is not None and revision.replaces >= revision.revision:
            return f"it says it replaces revision {revision.replaces}, which is not below it"
        under = self.newest_below(revision.revision, 1)
        if not under:
            if revision.revision <= MAX_GAP:
                return None
            return f"no valid revision is within {NEAR} slots below it"
        if revision.replaces is None:
            return f"it replaces nothing, but revision {under[0].revision} is below it"
        gap = range(under[0].revision + 1, revision.revision)
        if len(gap) >= MAX_GAP and len(self._existing(self._slot_name, list(gap), claimed=True)) < len(gap):
            return f"the newest valid revision below it is {under[0].revision}, {len(gap) + 1} slots lower, over slots nobody claimed"
        return None

    def latest(self) -> Revision | None:
        newest = self.newest(1)
        return newest[0] if newest else None

    def get(self, number: int) -> Revision | None:
        return self._read([number]).get(number)

    # -- writing ---------------------------------------------------------------------------------------------

    def append(self, draft: Revision, image: Manifest, decide: Decide | None = None) -> Revision:
        """Claim the next revision for ``draft``; its number and ``replaces`` are filled in here.

        ``decide(draft, predecessor)`` is called for the slot about to be claimed, with the revision that will be
        right below it — so every rule that depends on the newest revision (a freeze, "already there", the next
        release version, the image a freeze keeps) is decided where the change is claimed, not when it was planned.
        It may fill the draft (a new subject image is fetched here), raise to record nothing, or return an existing
        revision that already is this change: then nothing is claimed and that revision is returned. On a plain OCI
        registry a slot below ours that is claimed but not yet written is waited for (up to SETTLE_SECONDS) before
        deciding, and after our claim the slots above are checked: a writer that decided without seeing our
        revision makes us decide again on top of it."""
        base = 0 if self.caps.atomic_tag_create else self._legacy_base()
        latest = self.latest()
        if latest is None and not self.caps.atomic_tag_create and base == 0:
            base = self._probe(lambda n: history_tag(self.environment, n), 0)  # a 0.1.0 history whose records are all invalid
        # After the newest *valid* revision (taken slots above it are stepped over): a forged tag far above
        # can never make the history jump.
        number = max(latest.revision if latest else 0, base) + 1
        if not self.caps.atomic_tag_create and base == 0 and latest is not None and self._is_legacy(latest.revision):
            self._write_legacy_base(latest.revision)
        for attempt in range(CLAIM_ATTEMPTS):
            predecessor = self._settled_below(number)
            draft.revision = number
            draft.replaces = predecessor.revision if predecessor else None
            if decide is not None:
                existing = decide(draft, predecessor)
                if existing is not None:
                    return existing
            if draft.digest != image.digest:  # the decision changed the subject (a freeze keeps the image it follows)
                subject = self.registry.get_manifest(self.repository, draft.digest)
                if subject is None:
                    raise NotFoundError(
                        f"the image {draft.digest[:19]} of revision {draft.replaces} is not in the registry", "nothing was changed"
                    )
                image = subject
            annotations = draft.annotations()
            annotations[NONCE] = uuid.uuid4().hex  # two identical drafts still differ: one claim each
            record = make_record(image, annotations, REVISION_RECORD)
            started = time.monotonic()
            outcome = self.registry.claim_record(self.repository, history_tag(self.environment, number), record)
            elapsed = time.monotonic() - started
            # SAME: the slot holds exactly this record — our own claim, whose answer was lost and whose retry found it
            # there (the nonce makes every draft unique, so no other writer can have written it).
            if outcome in (Claim.CLAIMED, Claim.SAME):
                self._cache[number] = self._verify(number, record)
                self._claimed[number] = record
                self._last_seen = max(self._last_seen, number)
                bypassed = self._bypassed(number) if decide is not None else None
                if bypassed is None:
                    self._maintain_segments(number, predecessor)
                    return draft
                warn(
                    f"revision {number} of {self.environment} was recorded, but revision {bypassed.revision} above it was decided "
                    f"without seeing it; deciding again on top of that"
                )
                number = self._next_free(bypassed.revision)
                continue
            # Another writer has this slot: take the first free one after it (one round above it; a forged tag far
            # above is never seen from here, so it cannot make the history jump).
            self._last_seen = max(self._last_seen, number)
            number = self._next_free(number)
            # Writers that keep colliding on the same slot spread out: random exponential backoff in units of one
            # claim's duration (a splitter round can end with no winner when every claimer overwrote the register).
            time.sleep(random.uniform(0, min(elapsed * 2 ** min(attempt + 1, 6), 10.0)))
        raise ConflictError(
            f"could not claim a revision in {self.environment}'s history after {CLAIM_ATTEMPTS} attempts",
            "too many concurrent writers; nothing was recorded, try again",
        )

    def keep_recorded(self, number: int) -> bool:
        """Put the record this process claimed for ``number`` back if it is gone; True if it was put back.

        A registry that deletes an image's referrers with the image (ECR) takes a revision's record along when a
        concurrent gc deletes its image, even if gc then puts the image back. Only the writer holds the record's
        bytes, so the writer checks after its Variable write. If another change has claimed the freed slot
        meanwhile, the revision is lost: a ConflictError says so (the caller must not report it as recorded)."""
        record = self._claimed.get(number)
        if record is None:
            return False
        tag = history_tag(self.environment, number)
        there = self.registry.get_manifests(self.repository, [tag]).get(tag)
        if there is not None and there.digest == record.digest:
            return False
        if there is None:
            warn(f"{tag} was deleted from {self.repository} with its image (a concurrent gc?); putting it back")
        self._cache.pop(number, None)
        if there is not None or self.registry.claim_record(self.repository, tag, record) not in (Claim.CLAIMED, Claim.SAME):
            raise ConflictError(
                f"revision {number} of {self.environment} was deleted with its image by a concurrent gc, and another change has "
                "taken its slot since",
                "nothing of this change is recorded: run the same command again",
            )
        return True

    def _settled_below(self, number: int) -> Revision | None:
        """The revision right below slot ``number``. On a plain OCI registry a claim (the door) and its record (the
        tag) are two writes: a claimed slot below ours without its record is most likely being written now, so
        wait for it a little before deciding on what is below it (an atomic registry has no such window)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            below = next(iter(self.newest_below(number, 1)), None)
            if self.caps.atomic_tag_create:
                return below
            gap = [n for n in range((below.revision if below else 0) + 1, number) if n not in self._invalid]
            pending = self._existing(self._slot_name, gap, claimed=True) if gap else set()
            if not pending or time.monotonic() > deadline:
                return below  # (a door whose record never comes: a slot no claimer won)
            time.sleep(0.05)
            for n in pending:
                self._cache.pop(n, None)

    def _bypassed(self, number: int) -> Revision | None:
        """A revision just above ``number`` that was decided without seeing it (it replaces one below ``number``),
        or None. Only possible on plain OCI registries, when our record was written later than SETTLE_SECONDS
        after our claim."""
        if self.caps.atomic_tag_create:
            return None
        above = self._read(list(range(number + 1, number + 1 + MAX_GAP)))
        late = [r for r in above.values() if r.replaces is not None and r.replaces < number]
        return min(late, key=lambda r: r.revision) if late else None

    def newest_below(self, number: int, limit: int) -> list[Revision]:
        found: dict[int, Revision] = {}
        top = number - 1
        while top > 0 and len(found) < limit and top > number - NEAR:
            numbers = list(range(top, max(0, top - 20), -1))
            found.update(self._read(numbers))
            top = numbers[-1] - 1
        return [found[n] for n in sorted(found, reverse=True)][:limit]

    def _verify(self, number: int, record: Manifest) -> Revision:
        tag = history_tag(self.environment, number)
        self._cache.pop(number, None)
        written = self.registry.get_manifests(self.repository, [tag]).get(tag)
        if written is None or written.digest != record.digest:
            raise RegistryError(
                f"revision {number} of {self.environment} does not read back as the record imagectl just claimed",
                "something other than imagectl writes this repository's history tags; restrict push rights and run imagectl status",
            )
        return self._parse(number, written)

    def _write_legacy_base(self, last: int) -> None:
        base = make_record(None, {LEGACY_LAST: str(last)}, HISTORY_BASE)
        try:
            self.registry.put_record(self.repository, legacy_base_tag(self.environment), base)
        except ConflictError:
            pass  # another writer recorded it first (the same 0.1.0 history, so the same number)

    # -- segments ------------------------------------------------------------------------------------------------

    def _maintain_segments(self, number: int, predecessor: Revision | None) -> None:
        """Write the segment a finished block needs; on ECR, also once for a 0.1.0 history. Best effort: a
        failure here leaves the revision recorded and is retried by the next writers."""
        if not self.caps.retention_policy:
            return
        try:
            if number % SEGMENT_SIZE == 0:
                self.write_segment(segment_of(number))
            elif number % SEGMENT_SIZE == SEGMENT_SIZE // 2 and number > SEGMENT_SIZE:
                self.write_segment(segment_of(number) - 1, only_if_missing=True)
            if predecessor is not None and predecessor.revision >= SEGMENT_SIZE and self._is_legacy(predecessor.revision):
                for segment in range(1, segment_of(predecessor.revision)):
                    self.write_segment(segment, only_if_missing=True)
        except RegistryError as exc:
            warn(
                f"the history segment for revisions up to {number} of {self.environment} was not written "
                f"({exc.one_line()}); the next writers retry"
            )

    def _is_legacy(self, number: int) -> bool:
        if self._cache.get(number) is not None:  # read as a single record (or from a segment, which 0.1.0 never wrote)
            return number in self._legacy
        manifest = self.registry.get_manifest(self.repository, history_tag(self.environment, number))
        try:
            return manifest is not None and read_record(manifest).legacy
        except InvalidRecord:
            return False

    def write_segment(self, segment: int, only_if_missing: bool = False) -> bool:
        tag = segment_tag(self.environment, segment)
        if only_if_missing and self.registry.existing(self.repository, [tag]):
            return False
        first = (segment - 1) * SEGMENT_SIZE + 1
        revisions = self._read(list(range(first, first + SEGMENT_SIZE)))
        if not revisions:
            return False
        lines = [
            json.dumps({"revision": n, "annotations": revisions[n].annotations()}, sort_keys=True, separators=(",", ":"))
            for n in sorted(revisions)
        ]
        data = ("\n".join(lines) + "\n").encode()
        layer = {"mediaType": SEGMENT_LAYER, **self.registry.put_small_blob(self.repository, data)}
        record = make_record(
            None, {"io.imagectl.segment.environment": self.environment, "io.imagectl.segment.number": str(segment)}, SEGMENT_RECORD, layer
        )
        try:
            return self.registry.put_record(self.repository, tag, record)
        except ConflictError:
            return False  # written meanwhile by another writer (from the same records)
