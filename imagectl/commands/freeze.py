"""``imagectl freeze --env prd --reason "…"`` / ``imagectl unfreeze --env prd``.

While frozen, ``deploy``, ``promote`` into the environment and ``ci`` refuse (``ci`` still builds, and stops
before deploying with exit 0); ``rollback`` is allowed. The freeze is a revision in the environment's history
(so every laptop and agent sees it), shown by ``history`` and ``status``; ``--force --reason`` overrides it and
the override is recorded in the revision."""

from __future__ import annotations

from dataclasses import dataclass

from imagectl.build_info import resolve_actor
from imagectl.errors import InputError
from imagectl.rollout import HISTORY_WINDOW, ChangeAction, ChangePlan, decide_freeze
from imagectl.workspace import Workspace


@dataclass(frozen=True)
class FreezeRequest:
    environment: str
    action: str  # "freeze" or "unfreeze"
    reason: str | None = None
    actor: str | None = None

    def __post_init__(self) -> None:
        if self.action == "freeze" and not self.reason:
            raise InputError("freeze needs --reason", 'say why, e.g. --reason "orders model broke revenue; DATA-1234 investigating"')


class Freeze(ChangeAction):
    def __init__(self, workspace: Workspace, request: FreezeRequest) -> None:
        self.request = request
        self.target = workspace.env(request.environment)
        self.actor = resolve_actor(request.actor, workspace.environ)

    def plan(self) -> ChangePlan:
        env = self.target
        plan = decide_freeze(
            self.request.action,
            settings=env.settings,
            history=env.history.newest(HISTORY_WINDOW),
            actor=self.actor,
            reason=self.request.reason,
            variable_location=env.variable.location(),
            registry=env.registry.name,
            variable_value=env.variable.read(),
        )
        self.check_reach(plan)
        return plan
