"""``imagectl rollback --env ENV [--to REVISION|TAG] [--freeze]``: point the environment back at an earlier image.
A rollback is a new revision, never a deletion; it is allowed in a frozen environment; ``--freeze`` freezes
the environment in the same revision (so the next merge's ``imagectl ci`` does not deploy over it)."""

from __future__ import annotations

from dataclasses import dataclass

from imagectl.build_info import resolve_actor
from imagectl.errors import InputError, NotFoundError
from imagectl.rollout import HISTORY_WINDOW, ChangeAction, ChangePlan, decide_in
from imagectl.targets import rollback_target
from imagectl.workspace import Workspace


@dataclass(frozen=True)
class RollbackRequest:
    environment: str
    to: str | None = None  # a revision number or a tag; None: the previous image
    freeze: bool = False
    reason: str | None = None
    actor: str | None = None
    create: bool = False
    with_diff: bool = False  # also work out what it undoes (shown with the plan and at the confirmation prompt)

    def __post_init__(self) -> None:
        if self.freeze and not self.reason:
            raise InputError("--freeze needs --reason", "say why the environment is frozen; it is shown to whoever tries to deploy")


class Rollback(ChangeAction):
    def __init__(self, workspace: Workspace, request: RollbackRequest) -> None:
        self.request = request
        self.target = workspace.env(request.environment)
        self.actor = resolve_actor(request.actor, workspace.environ)

    def plan(self) -> ChangePlan:
        env, request = self.target, self.request
        history = env.history.newest(HISTORY_WINDOW)
        if not history:
            raise NotFoundError(f"{env.name} has no history to roll back", f"deploy something first: imagectl deploy TAG --env {env.name}")
        value = env.variable.read()
        tag, digest, how = rollback_target(env, history, request.to, value)
        if env.image(digest) is None:
            raise NotFoundError(
                f"the image of {how} ({tag}@{digest[:19]}) no longer exists in registry '{env.registry.name}'; nothing was changed",
                "choose another target with --to REVISION|TAG",
            )
        plan = decide_in(
            env,
            "rollback",
            tag,
            digest,
            actor=self.actor,
            reason=request.reason,
            history=history,
            variable_value=value,
            freeze=request.freeze,
        )
        plan.git_sha = next((r.git_sha for r in history if r.digest == digest and r.git_sha), None)
        plan.implicit_target = request.to is None
        plan.create_variable = request.create
        if request.with_diff and plan.state == "new":
            from imagectl.commands.diff import Side, diff_images

            current = history[0]
            plan.diff = diff_images(
                env.config,
                env,
                Side.of(f"revision {current.revision}", current.tag, current.digest, current.git_sha),
                Side.of(how, tag, digest, plan.git_sha),
            )
        self.check_reach(plan)
        return plan
