"""``imagectl reject TAG --env ENV --reason …`` / ``imagectl unreject TAG --env ENV --reason …``: refuse an image in
an environment (deploy, promote and ci exit 17 on it), or lift that. Both append a record (verdicts.py): the
image's rejections and liftings stay readable in order, with who, when and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagectl.action import Action, Plan
from imagectl.build_info import resolve_actor
from imagectl.clock import now_text
from imagectl.errors import NotFoundError
from imagectl.render import Result, v
from imagectl.verdicts import Rejection, record_rejection, rejection_state
from imagectl.workspace import Workspace


@dataclass(frozen=True)
class RejectRequest:
    environment: str
    tag: str
    action: str  # reject | lift
    reason: str
    actor: str | None = None


@dataclass
class RejectPlan(Plan):
    kind = "reject-plan"

    environment: str
    tag: str
    digest: str
    action: str
    state: Rejection | None  # the image's current record (None: never rejected here)
    reason: str
    actor: str

    @property
    def needed(self) -> bool:
        rejected = self.state is not None and self.state.rejected
        return rejected != (self.action == "reject")

    def json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "tag": self.tag,
            "digest": self.digest,
            "action": self.action,
            "needed": self.needed,
            "current": self.state.json() if self.state else None,
            "reason": self.reason,
            "actor": self.actor,
        }

    def text(self) -> str:
        verb = "reject" if self.action == "reject" else "lift the rejection of"
        if not self.needed:
            return f"{v(self.tag)} is {'already' if self.action == 'reject' else 'not'} rejected in {self.environment}: nothing to do"
        return f"Plan: {verb} {v(self.tag)} ({self.digest[:19]}) in {self.environment} — {v(self.reason)} ({v(self.actor)})"


@dataclass
class RejectResult(Result):
    kind = "rejection"

    plan: RejectPlan
    record: Rejection | None

    def json(self) -> dict[str, Any]:
        return {**self.plan.json(), "record": self.record.json() if self.record else None}

    def text(self) -> str:
        if self.record is None:
            return self.plan.text()
        if self.record.rejected:
            return f"{v(self.plan.tag)} is rejected in {self.plan.environment}: deploy, promote and ci refuse it (exit 17)"
        return f"{v(self.plan.tag)} may run in {self.plan.environment} again (its rejection is lifted)"


class Reject(Action[RejectPlan, RejectResult]):
    def __init__(self, workspace: Workspace, request: RejectRequest) -> None:
        self.request = request
        self.env = workspace.env(request.environment)
        self.actor = resolve_actor(request.actor, workspace.environ)

    def plan(self) -> RejectPlan:
        env, request = self.env, self.request
        manifest = env.image(request.tag)
        if manifest is None:
            raise NotFoundError(f"{request.tag} does not exist in registry '{env.registry.name}'", f"imagectl tags list --env {env.name}")
        state = rejection_state(env, manifest.digest)
        return RejectPlan(env.name, request.tag, manifest.digest, request.action, state, request.reason, self.actor)

    def apply(self, plan: RejectPlan) -> RejectResult:
        if not plan.needed:
            return RejectResult(plan, None)
        image = self.env.image(plan.digest)
        if image is None:
            raise NotFoundError(f"{plan.tag} is no longer in registry '{self.env.registry.name}'", "nothing was recorded")
        record = record_rejection(self.env, image, plan.action, time=now_text(), actor=plan.actor, reason=plan.reason)
        return RejectResult(plan, record)
