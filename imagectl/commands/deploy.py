"""``imagectl deploy TAG --env ENV``: point the environment's image Variable at TAG (digest-pinned), recording a
revision. Re-deploying what runs records nothing; a frozen environment refuses unless ``--force --reason``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from imagectl.build_info import resolve_actor
from imagectl.errors import InputError, NotFoundError
from imagectl.rollout import ChangeAction, ChangePlan, ChangeResult, check_rejected, decide_in
from imagectl.tag_registry import build_commit
from imagectl.workspace import Workspace


def require_reason(force: bool, reason: str | None) -> None:
    if force and not reason:
        raise InputError("--force needs --reason", "say why the usual rules are overridden; it is recorded")


@dataclass(frozen=True)
class DeployRequest:
    environment: str
    tag: str
    reason: str | None = None
    actor: str | None = None  # default: the CI's triggering user, else the OS user
    force: bool = False
    create: bool = False
    verify: bool | None = None  # --verify / --no-verify; None: the environment's [verify] default

    def __post_init__(self) -> None:
        require_reason(self.force, self.reason)


class VerifiedChange(ChangeAction):
    """A deploy or promote that, when asked to, verifies itself after the Variable write (commands/verify.py)."""

    workspace: Workspace
    actor: str
    on_state: Callable[[str], None] | None = None

    def want_verification(self, plan: ChangePlan, flag: bool | None) -> None:
        from imagectl.commands.verify import spec_for, wanted

        if wanted(self.target, flag):
            plan.verify = spec_for(self.target)

    def apply(self, plan: ChangePlan) -> ChangeResult:
        result = super().apply(plan)
        if plan.verify is not None:
            from imagectl.commands.verify import after_change

            result.verification = after_change(self.workspace, self.target, result, self.actor, self.on_state)
        return result

    def notify(self, result: ChangeResult, run_url: str | None = None) -> None:
        verified = result.verification
        super().notify(result, run_url or (verified.verdict.run_url if verified is not None and verified.verdict else None))
        if verified is not None:
            from imagectl.commands.verify import report_to_jira

            report_to_jira(self.workspace, self.target, verified)
        elif result.plan.verify is not None and result.revision is not None:  # not verified after all (the result says why)
            from imagectl import jira_report

            jira_report.report_change(self.target, result.plan.action, result.plan.current, result.revision, run_url)


class Deploy(VerifiedChange):
    def __init__(self, workspace: Workspace, request: DeployRequest, on_state: Callable[[str], None] | None = None) -> None:
        self.request = request
        self.workspace = workspace
        self.target = workspace.env(request.environment)
        self.actor = resolve_actor(request.actor, workspace.environ)
        self.on_state = on_state

    def plan(self) -> ChangePlan:
        env, request = self.target, self.request
        manifest = env.image(request.tag)
        if manifest is None:
            raise NotFoundError(
                f"{env.reference(request.tag, '').rstrip('@')} does not exist in registry '{env.registry.name}'",
                f"build it first, or list what exists: imagectl tags list --env {env.name}",
            )
        plan = decide_in(env, "deploy", request.tag, manifest.digest, actor=self.actor, reason=request.reason, force=request.force)
        plan.git_sha = build_commit(env.registry, env.repository, request.tag, manifest.digest)
        plan.create_variable = request.create
        check_rejected(env, plan, request.force)
        self.want_verification(plan, request.verify)
        self.gate_scan(plan, request.force)
        self.check_reach(plan)
        return plan
