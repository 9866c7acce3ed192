"""Changing which image an environment runs: the plan (data only) and its apply, shared by deploy, promote,
rollback, freeze and unfreeze (the commands under commands/ decide *what*; this module decides *how*).

Order of apply, chosen so that any single failure leaves a state ``status`` reports truthfully and re-running
the same command completes it without a second revision:

1. (promote across registries) copy the image and its build record to the target registry;
2. (release environments) claim the next version tag (``v1.4.0``) on the image — a re-run claims the same
   version again for the same image, so a failure after this step burns no version;
3. claim the next revision in the environment's history (the audit record comes first: the Variable never
   changes without one); the command exits 0 only after reading its own record back at its own number;
4. tag the image ``deployed-<env>-<digest>`` (kept by the retention rules; one tag per image and environment);
5. write the image Variable (digest-pinned reference; revision, tag and actor in its description);
6. read it back, then read the history: if a newer revision was recorded meanwhile, make the Variable hold
   that one's image (the Variable ends at the newest revision, whatever order concurrent writers finish in).

If 4–6 fail, the history's latest revision names an image the Variable does not hold: ``status`` shows that
drift, and the same command run again finds the revision already recorded and only finishes steps 4–6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import semver

from imagectl.action import Action, Confirmation, Plan
from imagectl.clock import now_text
from imagectl.config import EnvironmentConfig
from imagectl.errors import AirflowError, ConflictError, FrozenError, ImagectlError, NotFoundError, RegistryError, RejectedError
from imagectl.history import Decide, Revision
from imagectl.image_copy import CopyStats, copy_manifest
from imagectl.namespaces import RELEASE_RE, deployed_tag, record_tag
from imagectl.registries._base import Manifest
from imagectl.render import Result, v
from imagectl.report import warn
from imagectl.verdicts import rejection

if TYPE_CHECKING:
    from imagectl.environment import Environment

HISTORY_WINDOW = 50  # revisions a plan reads: enough for every rule, the same at 10 and at 100,000 revisions


@dataclass
class ChangePlan(Plan):
    """What a change will do, and why. Data only: apply() receives the live environments."""

    kind = "plan"

    action: str  # deploy | promote | rollback | freeze | unfreeze
    environment: str
    registry: str
    variable: str
    variable_location: str
    tag: str
    digest: str
    reference: str
    state: str  # "new" (a new revision), "complete" (finish the latest revision), "noop"
    why: str
    actor: str
    reason: str | None
    current: Revision | None
    variable_value: str | None
    release: str | None = None
    release_is_new: bool = False
    bump: str = "patch"
    from_environment: str | None = None
    copy_from_registry: str | None = None
    git_sha: str | None = None
    confirm_required: bool = False
    freeze: bool = False  # the environment is frozen after this change (freeze, rollback --freeze)
    forced: str | None = None  # what --force --reason overrides (recorded in the revision)
    force: bool = False  # --force --reason given: a freeze found when the change is claimed is overridden too
    implicit_target: bool = False  # a rollback to "the previous image": refused if the environment changed meanwhile
    create_variable: bool = False
    scan: dict[str, Any] | None = None
    diff: Any = None  # (rollback) what it would undo: a diff.Diff
    reach: list[str] = field(default_factory=list)  # what could not be verified about tasks seeing the write
    verify: Any = None  # then verify it (commands/verify.py VerifySpec), or None
    rejected: str | None = None  # the image is rejected in the environment (overridden by --force --reason: see forced)

    def json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "environment": self.environment,
            "registry": self.registry,
            "variable": self.variable,
            "variable_location": self.variable_location,
            "state": self.state,
            "why": self.why,
            "tag": self.tag,
            "digest": self.digest,
            "reference": self.reference,
            "release": self.release,
            "release_is_new": self.release_is_new,
            "from_environment": self.from_environment,
            "copy_from_registry": self.copy_from_registry,
            "git_sha": self.git_sha,
            "actor": self.actor,
            "reason": self.reason,
            "current_revision": self.current.to_json() if self.current else None,
            "variable_value": self.variable_value,
            "confirm_required": self.confirm_required,
            "freeze": self.freeze,
            "forced": self.forced,
            "scan": self.scan,
            "diff": self.diff.json() if self.diff is not None else None,
            "notes": self.reach,
            "verify": self.verify.json() if self.verify is not None else None,
            "rejected": self.rejected,
        }

    def text(self) -> str:
        lines = [f"Plan: {self.action} {v(self.tag)} to {self.environment} ({v(self.why)})"]
        if self.from_environment:
            lines.append(
                f"  from            {self.from_environment}"
                + (f" (copy from registry {self.copy_from_registry})" if self.copy_from_registry else "")
            )
        lines.append(f"  image           {v(self.reference)}")
        if self.release:
            lines.append(f"  release         {self.release}{' (new)' if self.release_is_new else ''}")
        lines.append(
            f"  Variable        {v(self.variable_location)} = {v(self.variable_value) if self.variable_value is not None else '(not set)'}"
        )
        if self.current:
            lines.append(f"  current         revision {self.current.revision}: {v(self.current.tag)}")
        lines.append(f"  actor, reason   {v(self.actor)}, {v(self.reason) or '-'}")
        if self.freeze:
            lines.append(f"  afterwards      {self.environment} is frozen")
        if self.forced:
            lines.append(f"  forced          {v(self.forced)}")
        if self.scan:
            lines.append(f"  scan            {self.scan.get('summary', '')}")
        for note in self.reach:
            lines.append(f"  note            {v(note)}")
        if self.verify is not None and self.state != "noop":
            lines.append(f"  then verify     {self.verify.describe()}")
        if self.diff is not None:
            lines.append("  what this undoes:")
            lines += ["    " + line for line in self.diff.text().splitlines()]
        if self.confirm_required and self.state != "noop":
            lines.append(f"  {self.environment} asks for confirmation (--yes to skip)")
        return "\n".join(lines)

    def confirmation(self) -> Confirmation | None:
        if self.state == "noop" or not self.confirm_required:
            return None
        return Confirmation(self.environment, self.question(), self.diff.text() if self.diff is not None else None)

    def add_forced(self, what: str) -> None:
        """Record one more rule that --force --reason overrides (a freeze, the scan gate, an image that never ran)."""
        self.forced = f"{self.forced}; {what}" if self.forced else what

    def question(self) -> str:
        before = v(self.current.tag) if self.current else "nothing"
        return f"{self.action} {self.environment}: {before} → {v(self.tag)}{f' ({self.release})' if self.release else ''}?"


@dataclass
class ChangeResult(Result):
    kind = "change"

    plan: ChangePlan
    revision: Revision | None
    variable_value: str | None
    copied: CopyStats | None = None
    verification: Any = None  # commands/verify.py VerifyResult, when the change was verified

    def exit_code(self) -> int:
        return int(self.verification.exit_code()) if self.verification is not None else 0

    def json(self) -> dict[str, Any]:
        return {
            "action": self.plan.action,
            "environment": self.plan.environment,
            "state": self.plan.state,
            "revision": self.revision.to_json() if self.revision else None,
            "variable": self.plan.variable,
            "variable_location": self.plan.variable_location,
            "variable_value": self.variable_value,
            "copied": self.copied.json() if self.copied else None,
            "notes": self.plan.reach,
            "verification": self.verification.json() if self.verification is not None else None,
        }

    def text(self) -> str:
        text = self._change_text()
        return f"{text}\n{self.verification.text()}" if self.verification is not None else text

    def _change_text(self) -> str:
        plan, revision = self.plan, self.revision
        if plan.state == "noop":
            return v(plan.why)
        assert revision is not None
        head = "finished" if plan.state == "complete" else "recorded"
        lines = [
            f"{plan.environment}: revision {revision.revision} {head} — {revision.action} {v(revision.tag)}"
            + (f" ({revision.release})" if revision.release else "")
            + (" — frozen" if revision.frozen else ""),
            f"  Variable {v(plan.variable_location)} = {v(self.variable_value)}",
        ]
        if self.copied:
            from imagectl.render import human_size

            c = self.copied
            lines.append(
                f"  copied from {plan.copy_from_registry}: {c.blobs_copied} blobs, {human_size(c.bytes_copied)} "
                f"({c.blobs_present} already there)"
            )
        if revision.forced:
            lines.append(f"  forced: {v(revision.forced)}")
        lines += [f"  note: {v(n)}" for n in plan.reach]
        return "\n".join(lines)


# -- planning (pure) ------------------------------------------------------------------------------------------


def bumped(version: semver.Version, bump: str) -> str:
    """The release tag after ``version``: ``bump`` is major, minor or patch."""
    return "v" + str({"major": version.bump_major, "minor": version.bump_minor, "patch": version.bump_patch}[bump]())


def next_release(history: list[Revision], bump: str) -> str:
    """The next version after the highest release in ``history`` (releases that do not parse are ignored)."""
    versions = [semver.Version.parse(r.release[1:]) for r in history if r.release and RELEASE_RE.fullmatch(r.release)]
    return bumped(max(versions), bump) if versions else "v1.0.0"


def decide_in(
    env: Environment,
    action: str,
    tag: str,
    digest: str,
    *,
    actor: str,
    reason: str | None,
    history: list[Revision] | None = None,
    variable_value: str | None = None,
    bump: str = "patch",
    force: bool = False,
    freeze: bool = False,
) -> ChangePlan:
    """``decide`` for a live environment: its settings, registry, Variable and (unless given) newest revisions."""
    return decide(
        action,
        settings=env.settings,
        registry=env.registry.name,
        variable_location=env.variable.location(),
        tag=tag,
        digest=digest,
        reference=env.reference(tag, digest),
        actor=actor,
        reason=reason,
        history=env.history.newest(HISTORY_WINDOW) if history is None else history,
        variable_value=env.variable.read() if variable_value is None else variable_value,
        bump=bump,
        force=force,
        freeze=freeze,
    )


def frozen_message(current: Revision) -> str:
    since = f" since {current.frozen_at}" if current.frozen_at else ""
    why = f": {v(current.frozen_reason)}" if current.frozen_reason else ""
    return f"{current.environment} is frozen by {v(current.frozen_by) or 'someone'}{since}{why}"


def decide(
    action: str,
    *,
    settings: EnvironmentConfig,
    registry: str,
    variable_location: str,
    tag: str,
    digest: str,
    reference: str,
    actor: str,
    reason: str | None,
    history: list[Revision],
    variable_value: str | None,
    bump: str = "patch",
    force: bool = False,
    freeze: bool = False,
) -> ChangePlan:
    """The plan for changing ``settings.name`` to the image ``digest`` (pure: everything it needs is passed in)."""
    current = history[0] if history else None
    plan = ChangePlan(
        action=action,
        environment=settings.name,
        registry=registry,
        variable=settings.variable,
        variable_location=variable_location,
        tag=tag,
        digest=digest,
        reference=reference,
        state="new",
        why="",
        actor=actor,
        reason=reason,
        current=current,
        variable_value=variable_value,
        confirm_required=settings.confirm,
        bump=bump,
        freeze=freeze,
        force=force and bool(reason),
    )
    if current is not None and current.digest == digest:
        plan.tag, plan.reference, plan.release = current.tag, current.reference, current.release
        wants_freeze = freeze and not current.frozen
        if variable_value == current.reference and not wants_freeze:
            plan.state, plan.why = "noop", f"{settings.name} already runs {current.tag} (revision {current.revision}); nothing recorded"
            return plan
        if variable_value != current.reference:
            plan.state = "complete"
            plan.why = f"revision {current.revision} is recorded but the Variable does not hold it yet: finishing it"
            return plan
    if current is not None and current.frozen and action in ("deploy", "promote"):
        if not (force and reason):
            raise FrozenError(frozen_message(current), f'imagectl unfreeze --env {settings.name}, or pass --force --reason "…" (recorded)')
        plan.add_forced(f"freeze: {frozen_message(current)}")
    number = current.revision + 1 if current else 1
    plan.why = (
        f"revision {number}: {current.tag if current else 'nothing'} → {tag}" if current else f"revision 1: first image of {settings.name}"
    )
    if settings.release:
        earlier = next((r.release for r in history if r.digest == digest and r.release), None)
        if earlier:
            plan.release = earlier
        elif action not in ("rollback", "freeze", "unfreeze"):
            plan.release, plan.release_is_new = next_release(history, bump), True
    return plan


def decide_freeze(
    action: str,
    *,
    settings: EnvironmentConfig,
    history: list[Revision],
    actor: str,
    reason: str | None,
    variable_location: str,
    registry: str,
    variable_value: str | None,
) -> ChangePlan:
    """freeze / unfreeze: a revision that keeps the current image and changes the freeze state."""
    current = history[0] if history else None
    if current is None:
        raise NotFoundError(
            f"{settings.name} has no history yet, so there is nothing to {action}",
            f"deploy first: imagectl deploy TAG --env {settings.name}",
        )
    plan = decide(
        action,
        settings=settings,
        registry=registry,
        variable_location=variable_location,
        tag=current.tag,
        digest=current.digest,
        reference=current.reference,
        actor=actor,
        reason=reason,
        history=[],  # a freeze never finishes or no-ops another revision
        variable_value=variable_value,
    )
    plan.current, plan.release, plan.release_is_new = current, current.release, False
    plan.confirm_required = False
    if action == "freeze":
        plan.freeze = True
        if current.frozen:
            plan.state, plan.why = "noop", f"{frozen_message(current)} already; nothing recorded"
        else:
            plan.why = f"revision {current.revision + 1}: {settings.name} stays at {current.tag} and is frozen"
    else:
        if not current.frozen:
            plan.state, plan.why = "noop", f"{settings.name} is not frozen; nothing recorded"
        else:
            plan.why = f"revision {current.revision + 1}: {settings.name} stays at {current.tag} and is unfrozen"
    return plan


# -- applying -------------------------------------------------------------------------------------------------


def description(revision: Revision) -> str:
    return (
        f"imagectl revision {revision.revision}: {revision.action} {revision.tag}"
        + (f" ({revision.release})" if revision.release else "")
        + f" by {revision.actor} at {revision.time}"
        + (f" — {revision.reason}" if revision.reason else "")
    )[:1000]


def facts(revision: Revision) -> dict[str, str]:
    out = {
        "imagectl:revision": str(revision.revision),
        "imagectl:action": revision.action,
        "imagectl:tag": revision.tag,
        "imagectl:digest": revision.digest,
        "imagectl:actor": revision.actor,
        "imagectl:time": revision.time,
    }
    if revision.release:
        out["imagectl:release"] = revision.release
    return out


def write_variable(env: Environment, revision: Revision, create: bool) -> str | None:
    """Write the Variable for ``revision``, then make sure it ends at the newest revision.

    Two writers may record revisions N and N+1 and write the Variable in the opposite order; so after each
    write the writer reads the Variable back, then the history. The Variable is read first so that a newer
    revision recorded after the history read is its own writer's to write. Done when the Variable shows the
    newest revision's image (ours, or a newer writer's that got there after us); otherwise write that image.
    The value written is always made here, from this registry, repository, tag and digest — never a record's
    own ``reference`` field, which anyone with push rights could have forged."""
    target = revision
    value = None
    for _ in range(10):
        wanted = env.reference(target.tag, target.digest)
        env.variable.write(wanted, description(target), facts(target), create)
        value = env.variable.read()
        latest = env.history.latest()
        if latest is not None and latest.revision > target.revision:
            target = latest
        if value == env.reference(target.tag, target.digest):
            return value
    raise AirflowError(
        f"{env.variable.location()} reads back as {v(value)[:200]!r}, not revision {target.revision}'s image",
        "something else keeps writing it; find the other writer",
    )


def refuse_rejected(env: Environment, digest: str, tag: str) -> None:
    found = rejection(env, digest)
    if found is not None:
        raise RejectedError(
            f"{v(tag)} is rejected in {env.name}: {v(found.reason)} ({v(found.actor)}, {found.time}); nothing was recorded",
            f'imagectl unreject {v(tag)} --env {env.name} --reason "…" lifts it, or pass --force --reason "…" (recorded)',
        )


def check_rejected(env: Environment, plan: ChangePlan, force: bool) -> None:
    """Deploy and promote refuse an image the environment rejected, unless --force --reason (then recorded)."""
    if plan.state == "noop" or plan.action not in ("deploy", "promote"):
        return
    found = rejection(env, plan.digest)
    if found is None:
        return
    plan.rejected = found.summary()
    if not force:
        refuse_rejected(env, plan.digest, plan.tag)
    plan.add_forced(f"rejected: {found.reason}")


def decide_at_claim(plan: ChangePlan, env: Environment) -> Decide:
    """Every rule that depends on the newest revision, decided for the slot being claimed (History.append): the
    plan's view may be stale by then (a concurrent freeze, deploy or release)."""

    def decide(draft: Revision, below: Revision | None) -> Revision | None:
        if plan.action in ("freeze", "unfreeze"):
            if below is None:
                raise NotFoundError(f"{env.name} has no history to {plan.action}", f"deploy first: imagectl deploy TAG --env {env.name}")
            # A freeze keeps the image of the revision it follows — whatever was deployed since it was planned.
            draft.tag, draft.digest, draft.release, draft.git_sha = below.tag, below.digest, below.release, below.git_sha
            draft.reference = env.reference(below.tag, below.digest)
            if below.frozen == (plan.action == "freeze"):
                return below  # already so: nothing recorded
        else:
            if below is not None and below.digest == draft.digest and (below.frozen or not plan.freeze):
                return below  # the same change is already the newest revision (a concurrent run of it): nothing recorded
            if below is not None and below.frozen and plan.action in ("deploy", "promote") and not plan.force:
                raise FrozenError(
                    f"{frozen_message(below)} (revision {below.revision}); nothing was recorded",
                    f'imagectl unfreeze --env {env.name}, or pass --force --reason "…" (recorded)',
                )
            if plan.action in ("deploy", "promote") and not plan.force:
                refuse_rejected(env, draft.digest, draft.tag)  # rejected meanwhile (a failed verification elsewhere)
            if below is not None and below.frozen and plan.action in ("deploy", "promote"):
                if not plan.forced or "freeze" not in plan.forced:
                    plan.add_forced(f"freeze: {frozen_message(below)}")
                draft.forced = plan.forced
            current = plan.current.revision if plan.current else None
            if plan.implicit_target and (below.revision if below else None) != current:
                raise ConflictError(
                    f"{env.name} changed since the rollback was planned (now revision {below.revision if below else 0}"
                    f"{f': {below.tag}' if below else ''}); nothing was recorded",
                    "run the rollback again: it shows what it would undo now",
                )
        _inherit_freeze(plan, draft, below)
        if env.settings.release:
            _decide_release(plan, env, draft, below)
        return None

    return decide


def _inherit_freeze(plan: ChangePlan, draft: Revision, below: Revision | None) -> None:
    """The freeze state a new revision records: the plan's (freeze / unfreeze / --freeze), else its predecessor's."""
    if plan.action == "unfreeze":
        draft.frozen, draft.frozen_by, draft.frozen_at, draft.frozen_reason = False, None, None, None
    elif plan.freeze:
        draft.frozen, draft.frozen_by, draft.frozen_at, draft.frozen_reason = True, plan.actor, draft.time, plan.reason
    elif below is not None and below.frozen:
        draft.frozen = True
        draft.frozen_by, draft.frozen_at, draft.frozen_reason = below.frozen_by, below.frozen_at, below.frozen_reason
    else:
        draft.frozen = False


def _decide_release(plan: ChangePlan, env: Environment, draft: Revision, below: Revision | None) -> None:
    """Release versions follow the revision order: a new release is the one after the highest so far, which every
    revision carries (``release_high``), so concurrent promotes get distinct versions with no gap. A version tag
    that already names another image (0.1.0 claimed versions before recording; or a forged tag) is stepped over."""
    high = below.release_high if below is not None and below.release_high else _legacy_high(env, draft.revision)
    if plan.action in ("deploy", "promote") and (plan.release_is_new or not draft.release):
        version = bumped(semver.Version.parse(high[1:]), plan.bump) if high else "v1.0.0"
        for _ in range(100):
            taken = env.registry.get_manifest(env.repository, version)
            if taken is None or taken.digest == draft.digest:
                break
            warn(f"the tag {version} in {env.repository} already names another image; the release takes the next version")
            version = bumped(semver.Version.parse(version[1:]), "patch")
        draft.release = version
    draft.release_high = max([r for r in (high, draft.release) if r], key=lambda r: semver.Version.parse(r[1:]), default=None)


def _legacy_high(env: Environment, number: int) -> str | None:
    """The highest release among the newest revisions below ``number`` (records written before release_high)."""
    versions = [r.release for r in env.history.newest_below(number, HISTORY_WINDOW) if r.release and RELEASE_RE.fullmatch(r.release)]
    return max(versions, key=lambda r: semver.Version.parse(r[1:])) if versions else None


def apply(plan: ChangePlan, target: Environment, source: Environment | None = None) -> ChangeResult:
    if plan.state == "noop":
        return ChangeResult(plan, plan.current, plan.variable_value)
    holder = source if plan.copy_from_registry and source is not None else target
    manifest = holder.image(plan.digest)
    if manifest is None:
        raise NotFoundError(
            f"the image {plan.digest[:19]} is no longer in registry '{holder.registry.name}'; nothing was changed", "run the plan again"
        )
    copied = None
    if plan.state == "complete":
        revision = plan.current
        assert revision is not None
    else:
        if plan.copy_from_registry and source is not None:
            copied = copy_manifest(source.registry, target.registry, target.repository, manifest, plan.tag)
            _copy_build_record(source, target, plan.tag, manifest)
        draft = Revision(
            environment=target.name,
            revision=0,
            time=now_text(),
            action=plan.action,
            tag=plan.tag,
            digest=plan.digest,
            reference=target.reference(plan.tag, plan.digest),
            actor=plan.actor,
            reason=plan.reason,
            release=None if plan.release_is_new else plan.release,
            from_environment=plan.from_environment,
            git_sha=plan.git_sha,
            forced=plan.forced,
        )
        revision = target.history.append(draft, manifest, decide_at_claim(plan, target))
        if revision is not draft:  # the change was already the newest revision when it came to be claimed
            plan.state, plan.why = "complete", f"revision {revision.revision} already is this change: nothing new recorded"
        plan.release = revision.release
    if revision.digest != manifest.digest:
        manifest = target.image(revision.digest) or manifest
    try:
        if plan.action not in ("freeze", "unfreeze"):
            _mark_deployed(target, manifest)
        if revision.release and target.settings.release:
            _tag_release(target, revision.release, manifest)
        value = write_variable(target, revision, plan.create_variable)
        _still_there(target, manifest)
    except ImagectlError as exc:
        exc.message = f"revision {revision.revision} of {target.name} is recorded, but: {exc.message}"
        exc.hint = f"{exc.hint}; then re-run the same command to finish it (imagectl status --env {target.name} shows the state)"
        raise
    if target.referrers_go_with_subject:  # (only a record this process claimed is checked)
        target.history.keep_recorded(revision.revision)  # (a ConflictError here: the revision was lost, say so)
    revision.current = value == target.reference(revision.tag, revision.digest)
    return ChangeResult(plan, revision, value, copied)


def _tag_release(env: Environment, version: str, manifest: Manifest) -> None:
    """The version tag on the released image (after its revision is recorded: the record decides the version)."""
    try:
        env.registry.put_manifest(env.repository, version, manifest)
    except ConflictError:
        warn(f"the tag {version} in {env.repository} names another image; the release is recorded in the history only")


def _still_there(env: Environment, manifest: Manifest) -> None:
    """The image the Variable now points at must exist: a concurrent gc may have deleted it between its last check
    and its delete. gc checks again after deleting (commands/gc.py); this side checks after writing the Variable —
    so whichever of the two acts last sees the other, and puts the image back (its manifest, byte for byte). Where
    the registry deletes an image's referrers with it, the revision's record went too: only the writer can put that
    back (history.keep_recorded, called after this)."""
    if env.registry.existing(env.repository, [manifest.digest]):
        return
    warn(f"{manifest.digest[:19]} was deleted from {env.repository} while it was deployed (a concurrent gc?); putting it back")
    try:
        env.registry.put_manifest(env.repository, deployed_tag(env.name, manifest.digest), manifest)
    except ImagectlError as exc:
        raise RegistryError(
            f"the deployed image {manifest.digest[:19]} was deleted from {env.repository} and could not be put back ({exc.one_line()})",
            f"roll back to an image that exists: imagectl rollback --env {env.name}",
        ) from None


def _mark_deployed(env: Environment, manifest: Manifest) -> None:
    """Tag the image so the retention rules keep it (idempotent; one tag per image and environment)."""
    try:
        env.registry.put_manifest(env.repository, deployed_tag(env.name, manifest.digest), manifest)
    except ConflictError:
        warn(
            f"{deployed_tag(env.name, manifest.digest)} already names another image in {env.repository}; "
            "the image stays untagged for retention"
        )


def _copy_build_record(source: Environment, target: Environment, tag: str, manifest: Manifest) -> None:
    from imagectl.records import InvalidRecord, read_record

    record = source.registry.get_manifest(source.repository, record_tag(tag))
    if record is None:
        return
    try:
        parsed = read_record(record)
    except InvalidRecord:
        return
    if parsed.subject != manifest.digest:
        return
    try:
        if parsed.legacy:
            copy_manifest(source.registry, target.registry, target.repository, record, None)  # its config is the image's
        target.registry.put_record(target.repository, record_tag(tag), record)
    except ImagectlError as exc:
        warn(f"the build record of {tag} was not copied to registry '{target.registry.name}' ({exc.one_line()})")


# -- the change actions' shared part -----------------------------------------------------------------------------


class ChangeAction(Action[ChangePlan, ChangeResult]):
    """deploy, promote, rollback, freeze, unfreeze: the subclass's ``plan()`` decides *what*; applying it
    (the order in this module's docstring) and notifying are the same for all of them."""

    target: Environment
    source: Environment | None = None

    def apply(self, plan: ChangePlan) -> ChangeResult:
        return apply(plan, self.target, self.source)

    def notify(self, result: ChangeResult, run_url: str | None = None) -> None:
        """Webhooks hear of a new revision; Jira of a new or finished one (a re-run replaces what Jira holds). A change
        that is verified is reported to Jira with its verdict instead (commands/verify.py)."""
        plan = result.plan
        if result.revision is None or plan.state == "noop":
            return
        if plan.verify is None:
            from imagectl import jira_report

            jira_report.report_change(self.target, plan.action, plan.current, result.revision, run_url)
        if plan.state != "new" or not self.target.settings.notify:
            return
        from imagectl.notify import Event, send

        send(self.target.config, self.target.credentials, Event(plan.action, self.target.name, plan.current, result.revision, run_url))

    def check_reach(self, plan: ChangePlan) -> None:
        """Will tasks see the Variable write? Raises when certainly not (a shadowing secrets backend); notes what is unknown."""
        if plan.state == "noop":
            return
        self.target.variable.preflight(plan.create_variable)
        if plan.action not in ("freeze", "unfreeze"):
            plan.reach = self.target.variable.reach().notes()

    def gate_scan(self, plan: ChangePlan, force: bool, on_wait: Any = None) -> None:
        """The target environment's scan gate, on the registry that holds the image now."""
        settings = self.target.settings
        if plan.state != "new" or not settings.max_severity or plan.action not in ("deploy", "promote"):
            return
        from imagectl import scan_gate

        holder = self.source if self.source is not None and plan.copy_from_registry else self.target
        result = scan_gate.check(
            holder.registry, holder.repository, plan.digest, settings.max_severity, settings.scan_wait, on_wait=on_wait
        )
        plan.scan = {**result.json(), "summary": result.summary()}
        forced = scan_gate.enforce(result, settings.name, force, plan.reason)
        if forced:
            plan.add_forced(forced)
