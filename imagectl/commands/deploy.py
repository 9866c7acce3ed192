"""``imagectl deploy TAG --env ENV``: point the environment's image Variable at TAG (digest-pinned), recording a
revision. Re-deploying what runs records nothing; a frozen environment refuses unless ``--force --reason``."""

from __future__ import annotations

from dataclasses import dataclass

from imagectl.build_info import resolve_actor
from imagectl.errors import InputError, NotFoundError
from imagectl.rollout import ChangeAction, ChangePlan, decide_in
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

    def __post_init__(self) -> None:
        require_reason(self.force, self.reason)


class Deploy(ChangeAction):
    def __init__(self, workspace: Workspace, request: DeployRequest) -> None:
        self.request = request
        self.target = workspace.env(request.environment)
        self.actor = resolve_actor(request.actor, workspace.environ)

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
        self.gate_scan(plan, request.force)
        self.check_reach(plan)
        return plan
