"""``imagectl promote (TAG | --jira KEY | --git-sha SHA) --from dev --to prd``: promote an image the source
environment ran. Across registries the image is copied with its digest unchanged (only missing blobs move);
within one registry nothing is copied. A release environment gives it the next version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from imagectl.build_info import resolve_actor
from imagectl.commands.deploy import VerifiedChange, require_reason
from imagectl.errors import ConflictError, InputError, NotFoundError
from imagectl.history import Revision
from imagectl.namespaces import deployed_tag
from imagectl.rollout import HISTORY_WINDOW, ChangePlan, check_rejected, decide_in
from imagectl.tag_registry import build_commit
from imagectl.tagging import parse_build_tag
from imagectl.workspace import Workspace

SEARCH_WINDOW = 200  # how far back --jira and --git-sha look in the source's history


@dataclass(frozen=True)
class PromoteRequest:
    from_env: str
    to_env: str
    tag: str | None = None  # exactly one of tag, jira, git_sha
    jira: str | None = None
    git_sha: str | None = None
    bump: str = "patch"
    reason: str | None = None
    actor: str | None = None
    force: bool = False
    create: bool = False
    verify: bool | None = None  # --verify / --no-verify; None: the target environment's [verify] default

    def __post_init__(self) -> None:
        if self.from_env == self.to_env:
            raise InputError(f"--from and --to are both '{self.from_env}'", "promote moves an image between two environments")
        if sum(x is not None for x in (self.tag, self.jira, self.git_sha)) != 1:
            raise InputError(
                "promote needs exactly one of TAG, --jira KEY or --git-sha SHA", "e.g. imagectl promote DATA-1234-57 --from dev --to prd"
            )
        require_reason(self.force, self.reason)


def _chosen(ran: list[Revision], jira: str | None, git_sha: str | None, from_env: str) -> Revision | None:
    if jira is not None:
        chosen = next((r for r in ran if (p := parse_build_tag(r.tag)) and p.jira == jira), None)
        if chosen is None:
            raise NotFoundError(
                f"no build of {jira} was deployed in {from_env} (newest {SEARCH_WINDOW} revisions)",
                f"see imagectl history --env {from_env}",
            )
        return chosen
    if git_sha is not None:
        chosen = next((r for r in ran if r.git_sha and r.git_sha.startswith(git_sha)), None)
        if chosen is None:
            raise NotFoundError(
                f"no image built from commit {git_sha} was deployed in {from_env} (newest {SEARCH_WINDOW} revisions)",
                f"see imagectl history --env {from_env}",
            )
        return chosen
    return None


class Promote(VerifiedChange):
    def __init__(self, workspace: Workspace, request: PromoteRequest, on_state: Callable[[str], None] | None = None) -> None:
        self.request = request
        self.workspace = workspace
        self.on_state = on_state
        self.origin = workspace.env(request.from_env)
        self.source = self.origin
        self.target = workspace.env(request.to_env)
        self.actor = resolve_actor(request.actor, workspace.environ)

    def plan(self) -> ChangePlan:
        source, target, request = self.origin, self.target, self.request
        ran = source.history.newest(SEARCH_WINDOW) if (request.jira or request.git_sha) else None
        chosen = _chosen(ran, request.jira, request.git_sha, source.name) if ran is not None else None
        tag = chosen.tag if chosen else request.tag
        assert tag is not None
        manifest = source.image(tag)
        if manifest is None:
            raise NotFoundError(
                f"{tag} does not exist in {source.name}'s registry '{source.registry.name}'", f"imagectl tags list --env {source.name}"
            )
        forced = None
        # The source's history is the proof that the image ran there (a deployed- tag is only a hint: anyone with push
        # rights can write one). The newest revisions first; further back only when the tag says it ran.
        ran = ran if ran is not None else source.history.newest(HISTORY_WINDOW)
        ran_there = any(r.digest == manifest.digest for r in ran)
        if not ran_there and len(ran) == HISTORY_WINDOW:
            if source.registry.existing(source.repository, [deployed_tag(source.name, manifest.digest)]):
                ran_there = any(r.digest == manifest.digest for r in source.history.newest(SEARCH_WINDOW))
        if not ran_there:
            if not request.force:
                raise ConflictError(
                    f"{tag} has never run in {source.name} (its newest {SEARCH_WINDOW} revisions), so it is not promoted",
                    f'deploy it to {source.name} first, or pass --force --reason "..." to promote it anyway',
                )
            forced = f"never ran in {source.name}"
        plan = decide_in(
            target, "promote", tag, manifest.digest, actor=self.actor, reason=request.reason, bump=request.bump, force=request.force
        )
        if forced:
            plan.add_forced(forced)
        plan.from_environment = source.name
        plan.git_sha = chosen.git_sha if chosen else build_commit(source.registry, source.repository, tag, manifest.digest)
        plan.create_variable = request.create
        if source.registry.name != target.registry.name and plan.state == "new":
            plan.copy_from_registry = source.registry.name
        check_rejected(source, plan, request.force)  # rejected where it ran: it failed there
        check_rejected(target, plan, request.force)
        if plan.state == "new":
            from imagectl import jira_report
            from imagectl.clock import now_text

            coming = Revision(
                environment=target.name,
                revision=0,
                time=now_text(),
                action="promote",
                tag=plan.tag,
                digest=plan.digest,
                reference=plan.reference,
                actor=plan.actor,
                git_sha=plan.git_sha,
            )
            gated = jira_report.gate(target, plan.current, coming, request.force)
            if gated:
                plan.add_forced(gated)
        self.want_verification(plan, request.verify)
        self.gate_scan(plan, request.force)
        self.check_reach(plan)
        return plan
