"""``imagectl gc --env ENV [--yes]``: delete what the retention rules expire, on any registry.

The decisions come from retention.py — the same rules as the ECR lifecycle policy, so the two cannot disagree —
plus protections no policy can express. Never deleted: what any environment's Variable points at, the images
of every environment's recent revisions, any image with a ``deployed-`` tag or a release version, history
records, segments and claim registers, and the base of any kept build image. Without ``--yes`` it only shows
what it would delete and why (per image: the rule). With ``--yes`` it checks each image again just before
deleting it (a concurrent deploy may have started using it) and keeps it if anything now refers to it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from imagectl import labels as L
from imagectl import namespaces as ns
from imagectl.action import Action, Plan
from imagectl.adapters import http
from imagectl.environment import Environment
from imagectl.errors import ImagectlError
from imagectl.records import InvalidRecord, Record, read_record
from imagectl.registries._base import Manifest, Registry
from imagectl.render import iso, parse_iso, short_digest, table, v
from imagectl.report import warn
from imagectl.retention import Decision, Entry, decide
from imagectl.workspace import Workspace

RECENT = 50  # revisions per environment whose images are always kept


@dataclass
class GcItem:
    repository: str
    digest: str
    tags: list[str]
    keep: bool
    rule: str
    pushed_at: datetime | None = None
    deleted: bool = False
    note: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": self.tags,
            "keep": self.keep,
            "rule": self.rule,
            "pushed_at": iso(self.pushed_at),
            "deleted": self.deleted,
            "note": self.note,
        }


@dataclass
class GcResult(Plan):
    """What the rules expire (the plan, shown without --yes), and after --yes what was deleted."""

    kind = "gc"
    dry_run_note = "Nothing was deleted (pass --yes to delete these)."

    environment: str
    registry: str
    applied: bool
    items: list[GcItem] = field(default_factory=list)

    @property
    def to_delete(self) -> list[GcItem]:
        return [i for i in self.items if not i.keep]

    def json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "registry": self.registry,
            "applied": self.applied,
            "kept": sum(1 for i in self.items if i.keep),
            "expired": len(self.to_delete),
            "deleted": sum(1 for i in self.items if i.deleted),
            "images": [i.json() for i in self.items],
        }

    def text(self) -> str:
        doomed = self.to_delete
        lines = [f"gc of registry {self.registry} ({self.environment}): {len(self.items)} images, {len(doomed)} expired by the rules"]
        if doomed:
            rows = [
                [
                    i.repository,
                    short_digest(i.digest),
                    ", ".join(i.tags)[:60] or "(untagged)",
                    iso(i.pushed_at) or "-",
                    v(i.rule),
                    "deleted" if i.deleted else (i.note or ("would delete" if not self.applied else "kept")),
                ]
                for i in doomed
            ]
            lines.append(table(["REPOSITORY", "DIGEST", "TAGS", "PUSHED", "RULE", "RESULT"], rows))
        if self.applied:
            lines.append(f"Deleted {sum(1 for i in self.items if i.deleted)} images.")
        return "\n".join(lines)


def _listing(registry: Registry, repository: str) -> tuple[list[Entry], dict[str, Record]]:
    """Every tagged image with its tags and (where the registry does not say) a push time from its record;
    and the valid build records, by tag (read once: the rules for records and bases use them too)."""
    images = registry.list_images(repository)
    tags = [t for image in images for t in image.tags]
    wanted = sorted({ns.record_tag(t) for t in tags if not ns.is_bookkeeping(t)} | {t for t in tags if t.startswith(ns.RECORD_PREFIX)})
    records: dict[str, Record] = {}
    for tag, manifest in (registry.get_manifests(repository, wanted) if wanted else {}).items():
        try:
            records[tag] = read_record(manifest)
        except InvalidRecord:
            continue
    times: dict[str, datetime | None] = {}
    for record in records.values():
        moment = parse_iso(record.annotations.get(L.PUSHED_AT) or record.annotations.get("io.imagectl.history.time"))
        times[record.digest] = times.get(record.digest) or moment
        if record.subject:
            times[record.subject] = times.get(record.subject) or moment
    entries = [
        Entry(image.digest, sorted(image.tags), image.pushed_at or times.get(image.digest), order=_build_number(image.tags))
        for image in images
    ]
    return entries, records


def _build_number(tags: list[str]) -> int:
    from imagectl.tagging import parse_build_tag

    numbers = [p.build_number for t in tags if (p := parse_build_tag(t.removeprefix(ns.RECORD_PREFIX)))]
    return max(numbers, default=0)


def _protected_digests(workspace: Workspace, registry_name: str) -> dict[str, str]:
    """digest → why it must stay, from every environment that keeps its images in this registry."""
    protected: dict[str, str] = {}
    for name, settings in workspace.config.environments.items():
        if settings.registry != registry_name:
            continue
        env = workspace.env(name)
        for revision in env.history.newest(RECENT):
            protected.setdefault(revision.digest, f"{name} ran it (revision {revision.revision})")
        try:
            value = env.variable.read()
        except ImagectlError as exc:
            warn(f"{name}'s Variable could not be read ({exc.one_line()}); its recent revisions are kept instead")
            continue
        if value and "@" in value:
            protected[value.rsplit("@", 1)[1]] = f"{name}'s Variable points at it"
    return protected


def _bookkeeping_reason(tags: list[str]) -> str | None:
    for tag in tags:
        if tag.startswith((ns.HISTORY_PREFIX, ns.SEGMENT_PREFIX)) or tag.endswith((ns.CLAIM_SUFFIX, ns.DOOR_SUFFIX)):
            return "history record (never deleted)"
        if tag.startswith((ns.VERDICT_PREFIX, ns.REJECTION_PREFIX)):
            return "verification record (never deleted by gc)"
    return None


@dataclass(frozen=True)
class GcRequest:
    environment: str


class Gc(Action[GcResult, GcResult]):
    """The plan is what the rules expire; applying it (``gc --yes``) deletes, checking each image again first."""

    def __init__(self, workspace: Workspace, request: GcRequest) -> None:
        self.workspace = workspace
        self.env = workspace.env(request.environment)

    def plan(self) -> GcResult:
        env, config = self.env, self.workspace.config
        retention = config.registries[env.settings.registry].retention
        protected = _protected_digests(self.workspace, env.settings.registry)
        result = GcResult(env.name, env.registry.name, False)
        build_repo, base_repo = config.images["build"].repository, config.images["base"].repository
        kept_bases: set[str] = set()
        for repository in (build_repo, base_repo):
            entries, records = _listing(env.registry, repository)
            for entry in entries:
                entry.protected = protected.get(entry.digest) or _bookkeeping_reason(entry.tags)
                if repository == base_repo and entry.digest in kept_bases:
                    entry.protected = entry.protected or "the base of a kept build image"
            decisions = decide(entries, retention)
            _keep_records_of_kept_images(decisions, records)
            if repository == build_repo:
                kept_bases = _bases_of_kept(decisions, records)
            result.items += [
                GcItem(repository, d.digest, d.tags, d.keep, d.rule, d.pushed_at, note="; ".join(d.notes) or None) for d in decisions
            ]
        return result

    def apply(self, plan: GcResult) -> GcResult:
        plan.applied = True
        _delete(self.workspace, self.env, plan)
        return plan


def _keep_records_of_kept_images(decisions: list[Decision], records: dict[str, Record]) -> None:
    """A build record stays as long as its image does (the lifecycle policy cannot express that; gc can)."""
    kept = {d.digest for d in decisions if d.keep}
    subject_of = {record.digest: record.subject for record in records.values()}
    for decision in decisions:
        if not decision.keep and subject_of.get(decision.digest) in kept:
            decision.notes.append(f"the policy would expire it ({decision.rule})")
            decision.keep, decision.rule = True, "the record of a kept image"


def _bases_of_kept(decisions: list[Decision], records: dict[str, Record]) -> set[str]:
    kept_tags = {t for d in decisions if d.keep for t in d.tags}
    bases = {records[ns.record_tag(t)].annotations.get(L.BASE_DIGEST) for t in kept_tags if ns.record_tag(t) in records}
    return {b for b in bases if b}


class _Recheck:
    """Just before each delete: is the image in use after all? The deployed tags are checked every time (a deploy
    tags the image right after recording its revision); every environment's history and Variable are read again
    every few deletes (a deploy that recorded but has not tagged yet shows there)."""

    EVERY = 8

    def __init__(self, workspace: Workspace, env: Environment) -> None:
        self.workspace, self.config, self.env = workspace, workspace.config, env
        self.protected: dict[str, str] = {}
        self.count = 0

    def why_keep(self, item: GcItem) -> str | None:
        if self.count % self.EVERY == 0:
            self.protected = _protected_digests(self.workspace, self.env.settings.registry)
        self.count += 1
        if item.digest in self.protected:
            return self.protected[item.digest]
        current = self.env.registry.get_manifests(item.repository, [t for t in item.tags if not ns.is_bookkeeping(t)])
        if any(m.digest != item.digest for m in current.values()):
            return "its tag moved meanwhile"
        # Last, right before the delete: a deploy tags its image before writing its Variable, so the shorter this
        # window, the less a whole deploy can fit in it (its record would go with the image on ECR; see _delete).
        names = [
            ns.deployed_tag(name, item.digest) for name, s in self.config.environments.items() if s.registry == self.env.settings.registry
        ]
        if self.env.registry.existing(item.repository, names):
            return "deployed meanwhile"
        return None


def _delete(workspace: Workspace, env: Environment, result: GcResult) -> None:
    """Delete in batches; after each batch, look at every environment's history and Variable again and put back any
    image a deploy started using meanwhile. A deploy writes its Variable and then checks that its image exists
    (rollout._still_there); gc deletes and then checks the Variables: whichever acts last sees the other, so a
    delete and a concurrent deploy cannot both succeed with the deployed image gone.

    Where the registry deletes an image's referrers with it (ECR), a deploy's revision record would go too; gc
    cannot put that back (it never had the record's bytes). So on ECR gc deletes by the tags it planned with
    (``delete_tagged``): ECR removes an image only with its last tag, and a deploy tags its image (deployed-) before
    writing its Variable. A deploy tagged before the delete keeps its image and record; one that tags after it
    finds the image or its record gone in its check after the Variable write and puts both back
    (rollout._still_there, history.keep_recorded). gc still warns if a Variable it restored has no revision."""
    registry = env.registry
    recheck = _Recheck(workspace, env)
    doomed = result.to_delete
    for start in range(0, len(doomed), _Recheck.EVERY):
        batch: list[tuple[GcItem, Manifest]] = []
        for item in doomed[start : start + _Recheck.EVERY]:
            manifest = registry.get_manifest(item.repository, item.digest)  # its bytes, to put it back if need be
            if manifest is None:
                item.note = "already gone"
                continue
            why = recheck.why_keep(item)
            if why:
                item.keep, item.note = True, f"kept: {why}"
                continue
            try:
                if not registry.delete_tagged(item.repository, item.digest, list(item.tags)):
                    _retag(registry, item, manifest)  # a tag added meanwhile kept it: it keeps its own tags too
                    continue
                item.deleted = True
                batch.append((item, manifest))
            except ImagectlError as exc:
                item.note = f"not deleted: {exc.one_line()}"
                warn(f"{item.repository}@{item.digest[:19]} was not deleted: {exc.one_line()}")
        if batch:
            _put_back_what_is_in_use(workspace, env, batch)
    # Records of deleted images go with them (their subject is gone).
    deleted = {(i.repository, t) for i in result.items if i.deleted for t in i.tags if not ns.is_bookkeeping(t)}
    records = [(repo, ns.record_tag(tag)) for repo, tag in deleted]
    with ThreadPoolExecutor(max_workers=8) as pool:
        http.map_in(pool, lambda rt: _delete_record(registry, *rt), records)


def _put_back_what_is_in_use(workspace: Workspace, env: Environment, batch: list[tuple[GcItem, Manifest]]) -> None:
    in_use = _protected_digests(workspace, env.settings.registry)
    users = [name for name, settings in workspace.config.environments.items() if settings.registry == env.settings.registry]
    for item, manifest in batch:
        why = in_use.get(item.digest)
        if why is None:
            continue
        # Its own tags, and the deployed- tag of each environment using it (the delete removed the one a concurrent
        # deploy wrote; without it the registry's retention policy would expire the image again).
        tags = [*item.tags, *(ns.deployed_tag(name, item.digest) for name in users if why.startswith((f"{name} ", f"{name}'s ")))]
        try:
            for tag in dict.fromkeys(tags) or [manifest.digest]:
                env.registry.put_manifest(item.repository, tag, manifest)
            item.deleted, item.keep, item.note = False, True, f"kept: {why} (deployed while gc ran: put back)"
            if env.referrers_go_with_subject:
                _warn_if_record_went(workspace, item, why)
        except ImagectlError as exc:
            item.note = f"deleted while {why}, and could not be put back: {exc.one_line()}"
            warn(f"{item.repository}@{item.digest[:19]} is in use ({why}) and could not be put back: {exc.one_line()}")


def _retag(registry: Registry, item: GcItem, manifest: Manifest) -> None:
    item.keep, item.note = True, "kept: it gained a tag while gc ran (a concurrent deploy?)"
    try:
        for tag in item.tags:
            registry.put_manifest(item.repository, tag, manifest)
    except ImagectlError as exc:
        item.note = f"{item.note}; its tags could not all be put back: {exc.one_line()}"
        warn(f"{item.repository}@{item.digest[:19]} is kept, but its tags could not all be put back: {exc.one_line()}")


def _warn_if_record_went(workspace: Workspace, item: GcItem, why: str) -> None:
    """The image is back; was the revision that deployed it deleted with it, past the deploy's own check?"""
    for name in workspace.config.environments:
        if why.startswith(f"{name}'s Variable"):
            newest = workspace.env(name).history.latest()
            if newest is None or newest.digest != item.digest:
                warn(
                    f"{name}'s Variable points at {item.digest[:19]}, put back in {item.repository}, but no current revision "
                    f"records it: a deploy's record may have been deleted with the image — run imagectl status --env {name}"
                )


def _delete_record(registry: Registry, repository: str, tag: str) -> None:
    manifest = registry.get_manifest(repository, tag)
    if manifest is not None:
        try:
            registry.delete_manifest(repository, manifest.digest)
        except ImagectlError as exc:
            warn(f"the record {tag} was not deleted: {exc.one_line()}")
