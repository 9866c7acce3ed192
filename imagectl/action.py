"""The one way a command changes something: plan, then (unless --dry-run) confirm, apply and notify.

Every changing command (build, registry init, deploy, promote, rollback, freeze, unfreeze, gc, ci) is an
``Action`` built from its request: ``plan()`` reads what it needs and decides, returning data only; ``apply(plan)``
makes exactly that change; ``notify(result)`` tells the webhooks. ``run`` is the only place that renders a dry run,
asks for confirmation, applies and notifies — ``ci`` composes the same actions' ``plan``/``apply``/``notify``
instead of re-implementing them. Decisions that depend on shared state (the newest revision, a freeze) are taken
again where the change is claimed (rollout.py), not only here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from imagectl.render import DryRun, Result


@dataclass(frozen=True)
class Confirmation:
    """What a plan asks before it is applied (environments with ``confirm = true``)."""

    environment: str
    question: str
    preview: str | None = None  # shown before the question (e.g. what a rollback undoes)


class Plan(Result):
    """A change's plan: data only, rendered as the dry run."""

    def confirmation(self) -> Confirmation | None:
        """The question to ask before applying, or None when the plan needs no confirmation."""
        return None


PlanT = TypeVar("PlanT", bound=Plan)
ResultT = TypeVar("ResultT", bound=Result)
Confirm = Callable[[Confirmation], None]  # raises to stop (AbortedError, or InputError without a terminal)
Show = Callable[[Plan], None]  # shows the plan before it is applied (the operations DAG's run log)


class Action(ABC, Generic[PlanT, ResultT]):
    @abstractmethod
    def plan(self) -> PlanT: ...

    @abstractmethod
    def apply(self, plan: PlanT) -> ResultT: ...

    def notify(self, result: ResultT, run_url: str | None = None) -> None:  # noqa: B027 - most actions notify nobody
        """After a successful apply; never raises (a notification never fails a change)."""


def run(action: Action[PlanT, ResultT], *, dry_run: bool = False, confirm: Confirm | None = None, show: Show | None = None) -> Result:
    """Plan; then the dry run, or confirmation (when the plan asks for it), apply and notify. ``show`` sees the plan
    before it is applied (where no terminal asks, e.g. a DAG run's log); ``confirm=None`` asks nobody."""
    plan = action.plan()
    if dry_run:
        return DryRun(plan)
    if show is not None:
        show(plan)
    asked = plan.confirmation()
    if asked is not None and confirm is not None:
        confirm(asked)
    result = action.apply(plan)
    action.notify(result)
    return result
