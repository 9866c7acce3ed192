"""What the operations DAG (``imagectl_ops``, written by ``imagectl init``) does: one rollback, freeze or unfreeze of
one environment, by the Airflow user who triggered the run — the same actions as ``imagectl rollback``, ``freeze``
and ``unfreeze``, planned, shown, applied and notified by ``action.run``. The trigger is the confirmation (Airflow's
permissions decide who may trigger), so nothing asks; the plan is shown before it is applied (the run's log)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from imagectl.action import Plan, run
from imagectl.commands.freeze import Freeze, FreezeRequest
from imagectl.commands.rollback import Rollback, RollbackRequest
from imagectl.errors import InputError
from imagectl.render import Result
from imagectl.rollout import ChangeAction
from imagectl.sanitize import MAX_ACTOR, MAX_REASON, check_free_text
from imagectl.tagging import validate_environment_name, validate_revision_or_tag
from imagectl.workspace import Workspace

DAG_ID = "imagectl_ops"
ACTIONS = ("rollback", "freeze", "unfreeze")


@dataclass(frozen=True)
class OpsRequest:
    action: str
    environment: str
    reason: str
    actor: str
    target: str | None = None  # rollback only: a revision number or a tag (None: the previous image)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise InputError(f"unknown action '{self.action[:40]}'", f"choose one of {', '.join(ACTIONS)}")
        validate_environment_name(self.environment)
        if not (self.reason or "").strip():
            raise InputError(f"{self.action} needs a reason", "say why: it is kept in the history and shown to whoever comes next")
        check_free_text(self.reason, "reason", MAX_REASON)
        if not (self.actor or "").strip():
            raise InputError(
                "the run has no triggering user to record as the actor", f"trigger {DAG_ID} from the Airflow UI or its REST API"
            )
        check_free_text(self.actor, "actor", MAX_ACTOR)
        if self.target is not None:
            if self.action != "rollback":
                raise InputError(f"{self.action} takes no target", "leave the target empty (only a rollback goes to a revision or tag)")
            validate_revision_or_tag(self.target)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], actor: str | None) -> OpsRequest:
        """The request a DAG run's params make (an empty target is none)."""

        def text(name: str) -> str | None:
            value = params.get(name)
            if value is None:
                return None
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise InputError(f"the {name} must be text", f"trigger {DAG_ID} again with a text {name}")
            return str(value).strip() or None

        return cls(
            action=text("action") or "",
            environment=text("environment") or "",
            reason=text("reason") or "",
            actor=(actor or "").strip(),
            target=text("target"),
        )


def operation(workspace: Workspace, request: OpsRequest) -> ChangeAction:
    """The action a request names (its environment opened from the workspace)."""
    if request.action == "rollback":
        return Rollback(
            workspace, RollbackRequest(environment=request.environment, to=request.target, reason=request.reason, actor=request.actor)
        )
    return Freeze(
        workspace, FreezeRequest(environment=request.environment, action=request.action, reason=request.reason, actor=request.actor)
    )


def run_operation(workspace: Workspace, request: OpsRequest, show: Callable[[str], None]) -> Result:
    """Plan, show the plan, apply and notify; ``show`` gets the plan's and the result's text. A refusal raises the
    action's ImagectlError (one line: what was wrong and what to do)."""

    def show_plan(plan: Plan) -> None:
        show(plan.text())

    result = run(operation(workspace, request), show=show_plan)
    show(result.text())
    return result
