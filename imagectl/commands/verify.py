"""``imagectl verify --env ENV [--revision N]``, and the verification ``deploy``, ``promote`` and ``ci`` run with
``--verify`` (or when ``[environments.NAME.verify] default = true``).

A dbt run proves the deployed image: it rendered that image (digest-pinned, as the Variable holds it) and
succeeded. The run is triggered (``by = "trigger"``, run id ``imagectl__verify-<env>-<N>__<dag>``, so a re-run
follows the same run), or is the DAG's next run that starts after the deploy (``by = "schedule"``). The verdict
is recorded against the revision (verdicts.py); a second verification of the same revision reads it back.

On failure, with ``on_failure = "rollback"`` (the default): the image is **rejected** in the environment (deploy,
promote and ci refuse it until ``imagectl unreject``), then the environment goes back to its newest **verified**
revision — not merely the previous one — as a new revision whose reason names the failed run. The rollback is
claimed only on top of the failed revision itself: if anything else landed meanwhile, it is not rolled back
(exit 19, and the message says so). Exit codes: 0 verified, 18 failed and rolled back, 19 failed and not rolled
back, 20 failed with ``on_failure = "report"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from imagectl.action import Action, Plan
from imagectl.build_info import resolve_actor
from imagectl.clock import now_text
from imagectl.commands.trigger import FINAL_STATES, Trigger, TriggerRequest, run_id
from imagectl.environment import Environment
from imagectl.errors import Exit, ImagectlError, InputError, NotFoundError, TimeoutError_
from imagectl.history import Revision
from imagectl.render import Result, parse_iso, v
from imagectl.rollout import HISTORY_WINDOW
from imagectl.settings import VerifySettings
from imagectl.verdicts import Rejection, Verdict, newest_verified, read_verdicts, record_rejection, write_verdict
from imagectl.workspace import Workspace

STARTED_AFTER = timedelta(seconds=5)  # a scheduled run must start this long after the revision to have read its Variable


@dataclass(frozen=True)
class VerifySpec:
    """How one verification runs (from the environment's settings, overridden by the command)."""

    by: str
    on_failure: str
    timeout: int
    dag_id: str
    conf: dict[str, Any]

    def describe(self) -> str:
        how = f"trigger {self.dag_id}" if self.by == "trigger" else f"wait for the next scheduled run of {self.dag_id}"
        then = "reject the image and roll back to the newest verified revision" if self.on_failure == "rollback" else "report it"
        return f"{how} (up to {self.timeout} s) and check it ran this image and succeeded; on failure {then}"

    def json(self) -> dict[str, Any]:
        return {"by": self.by, "on_failure": self.on_failure, "timeout": self.timeout, "dag_id": self.dag_id, "conf": self.conf}


def spec_for(env: Environment, by: str | None = None, timeout: int | None = None) -> VerifySpec:
    settings: VerifySettings = env.settings.verify
    return VerifySpec(
        by=by or settings.by,
        on_failure=settings.on_failure,
        timeout=timeout or settings.timeout,
        dag_id=env.config.dbt_dag_for(env.name),
        conf=dict(settings.conf),
    )


def wanted(env: Environment, flag: bool | None) -> bool:
    """--verify / --no-verify, else the environment's default."""
    return env.settings.verify.default if flag is None else flag


@dataclass
class RunOutcome:
    dag_id: str
    run_id: str
    state: str
    url: str
    rendered: str | None


@dataclass
class VerifyResult(Result):
    kind = "verification"

    environment: str
    revision: Revision
    spec: VerifySpec
    verdict: Verdict | None = None
    reused: bool = False  # the revision had a verdict already: read back, nothing run
    superseded_by: int | None = None  # a newer revision's image ran: this one cannot be judged any more
    rejection: Rejection | None = None
    rollback: Any = None  # the automatic rollback's ChangeResult
    rollback_target: Revision | None = None
    rollback_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is None or self.verdict.verified

    def exit_code(self) -> Exit:
        if self.ok:
            return Exit.OK
        if self.spec.on_failure == "report":
            return Exit.VERIFY_FAILED
        return Exit.VERIFY_ROLLED_BACK if self.rollback is not None and self.rollback_error is None else Exit.VERIFY_NOT_ROLLED_BACK

    def json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "revision": self.revision.revision,
            "tag": self.revision.tag,
            "result": self.verdict.result if self.verdict else ("superseded" if self.superseded_by else "not verified"),
            "verdict": self.verdict.json() if self.verdict else None,
            "reused": self.reused,
            "superseded_by": self.superseded_by,
            "rejection": self.rejection.json() if self.rejection else None,
            "rolled_back_to": self.rollback_target.revision if self.rollback_target else None,
            "rollback": self.rollback.json() if self.rollback is not None else None,
            "rollback_error": self.rollback_error,
            "spec": self.spec.json(),
        }

    def text(self) -> str:
        r = self.revision
        head = f"{self.environment}: revision {r.revision} ({v(r.tag)})"
        if self.verdict is None:
            return f"{head}: not verified — revision {self.superseded_by}'s image ran meanwhile (it supersedes this one)"
        verdict = self.verdict
        lines = [f"{head} {verdict.result.upper()}{' (recorded before)' if self.reused else ''} — {v(verdict.summary())}"]
        if verdict.run_url:
            lines.append(f"  run: {v(verdict.run_url)}")
        if self.rejection is not None:
            lines.append(
                f"  {v(r.tag)} is now rejected in {self.environment} (imagectl unreject {v(r.tag)} --env {self.environment} lifts it)"
            )
        if self.rollback is not None and self.rollback.revision is not None:
            back = self.rollback.revision
            lines.append(
                f"  rolled back to revision {self.rollback_target.revision if self.rollback_target else '?'}'s image "
                f"({v(back.tag)}, verified) as revision {back.revision}"
            )
        if self.rollback_error:
            lines.append(f"  NOT rolled back: {v(self.rollback_error)}")
        if not verdict.verified and self.spec.on_failure == "report":
            lines.append('  (on_failure = "report": nothing was rolled back)')
        return "\n".join(lines)


@dataclass
class VerifyPlan(Plan):
    kind = "verify-plan"
    dry_run_note = "Nothing was triggered or recorded (--dry-run)."

    environment: str
    revision: Revision
    spec: VerifySpec
    run_id: str | None
    existing: Verdict | None
    fallback: Revision | None  # where a failure would roll back to (as things are now)

    def json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "revision": self.revision.revision,
            "tag": self.revision.tag,
            "spec": self.spec.json(),
            "run_id": self.run_id,
            "existing": self.existing.json() if self.existing else None,
            "rollback_target": self.fallback.revision if self.fallback else None,
        }

    def text(self) -> str:
        if self.existing is not None:
            return (
                f"revision {self.revision.revision} of {self.environment} is {self.existing.result} already: {v(self.existing.summary())}"
            )
        lines = [f"Plan: verify revision {self.revision.revision} of {self.environment} ({v(self.revision.tag)}): {self.spec.describe()}"]
        if self.spec.on_failure == "rollback":
            where = (
                f"revision {self.fallback.revision} ({v(self.fallback.tag)})"
                if self.fallback
                else "none verified yet: a failure would not be rolled back"
            )
            lines.append(f"  newest verified revision before it: {where}")
        return "\n".join(lines)


@dataclass(frozen=True)
class VerifyRequest:
    environment: str
    revision: int | None = None  # default: the newest
    actor: str | None = None
    by: str | None = None  # trigger | schedule (default: the environment's)
    timeout: int | None = None

    def __post_init__(self) -> None:
        if self.by is not None and self.by not in ("trigger", "schedule"):
            raise InputError(f"--by {self.by!r} is not trigger or schedule")


def verify_run_id(env: Environment, revision: int, dag_id: str) -> str:
    """The verification run's id (kept within the paths the environment's Airflow allows: MWAA's 64 characters)."""
    from imagectl.airflow.flavours import FLAVOURS

    return run_id(f"verify-{env.name}-{revision}", dag_id, FLAVOURS[env.settings.airflow].max_path)


def plan_for(env: Environment, revision: Revision, spec: VerifySpec, history: list[Revision] | None = None) -> VerifyPlan:
    existing = read_verdicts(env, [revision.revision]).get(revision.revision)
    fallback = None
    if existing is None and spec.on_failure == "rollback":
        found = newest_verified(
            env, history if history is not None else env.history.newest(HISTORY_WINDOW), revision.revision, revision.digest
        )
        fallback = found[0] if found else None
    run_id = verify_run_id(env, revision.revision, spec.dag_id) if spec.by == "trigger" else None
    return VerifyPlan(env.name, revision, spec, run_id, existing, fallback)


class Verify(Action[VerifyPlan, VerifyResult]):
    def __init__(
        self, workspace: Workspace, request: VerifyRequest, on_state: Callable[[str], None] | None = None, poll: float = 5
    ) -> None:
        self.workspace, self.request, self.on_state, self.poll = workspace, request, on_state, poll
        self.env = workspace.env(request.environment)
        self.actor = resolve_actor(request.actor, workspace.environ)

    def plan(self) -> VerifyPlan:
        env, request = self.env, self.request
        history = env.history.newest(HISTORY_WINDOW)
        if request.revision is None:
            if not history:
                raise NotFoundError(f"{env.name} has no revision to verify", f"deploy first: imagectl deploy TAG --env {env.name}")
            revision = history[0]
        else:
            found = env.history.get(request.revision)
            if found is None:
                raise NotFoundError(f"{env.name} has no revision {request.revision}", f"imagectl history --env {env.name}")
            revision = found
        return plan_for(env, revision, spec_for(env, request.by, request.timeout), history)

    def apply(self, plan: VerifyPlan) -> VerifyResult:
        return carry_out(self.workspace, self.env, plan, self.actor, self.on_state, self.poll)

    def notify(self, result: VerifyResult, run_url: str | None = None) -> None:
        report_to_jira(self.workspace, self.env, result)


def carry_out(
    workspace: Workspace, env: Environment, plan: VerifyPlan, actor: str, on_state: Callable[[str], None] | None = None, poll: float = 5
) -> VerifyResult:
    """Run the verification a plan describes (or read back its verdict), record it, and act on a failure."""
    if plan.existing is not None:
        return VerifyResult(env.name, plan.revision, plan.spec, plan.existing, reused=True)
    if plan.spec.by == "trigger":
        outcome = _triggered(env, plan, on_state, poll)
    else:
        outcome = _scheduled(env, plan, on_state, poll)
    return conclude(workspace, env, plan.revision, plan.spec, outcome, actor)


def after_change(
    workspace: Workspace, env: Environment, change: Any, actor: str, on_state: Callable[[str], None] | None = None, poll: float = 5
) -> VerifyResult | None:
    """The verification a deploy or promote asked for (``change`` is its ChangeResult), once the Variable points at
    its revision; a re-run of the same deploy verifies the revision it finds (or reads its verdict back)."""
    spec: VerifySpec | None = change.plan.verify
    revision = change.revision or change.plan.current
    if spec is None or revision is None:
        return None
    if change.variable_value != env.reference(revision.tag, revision.digest):
        return None  # the Variable is not at this revision: there is nothing of it to verify (the result says why)
    return carry_out(workspace, env, plan_for(env, revision, spec), actor, on_state, poll)


def _triggered(env: Environment, plan: VerifyPlan, on_state: Callable[[str], None] | None, poll: float) -> RunOutcome:
    request = TriggerRequest(env.name, plan.spec.dag_id, plan.spec.conf, plan.run_id, wait=True, timeout=plan.spec.timeout)
    action = Trigger(env, request, on_state=on_state, poll=poll)
    result = action.apply(action.plan())
    rendered = env.runs.rendered_image(result.dag_id, result.run_id, env.config.ci.dbt_task)
    return RunOutcome(result.dag_id, result.run_id, result.state, result.url, rendered)


def _scheduled(env: Environment, plan: VerifyPlan, on_state: Callable[[str], None] | None, poll: float) -> RunOutcome:
    """The DAG's first run that started after the revision (and so read its Variable), followed to its end."""
    dag_id, runs = plan.spec.dag_id, env.runs
    since = parse_iso(plan.revision.time)
    deadline = time.monotonic() + plan.spec.timeout
    last = None
    while True:
        run = runs.latest_run(dag_id)
        started = parse_iso(str(run.get("start_date") or "")) if run else None
        if run is not None and started is not None and since is not None and started >= since + STARTED_AFTER:
            run_id = str(run.get("dag_run_id") or run.get("run_id") or "")
            state = str(run.get("state") or "")
            if state != last and on_state:
                on_state(f"{run_id}: {state}")
                last = state
            if state in FINAL_STATES:
                rendered = runs.rendered_image(dag_id, run_id, env.config.ci.dbt_task)
                return RunOutcome(dag_id, run_id, state, runs.run_url(dag_id, run_id), rendered)
        if time.monotonic() > deadline:
            raise TimeoutError_(
                f"no run of {dag_id} in {env.name} started after revision {plan.revision.revision} "
                f"and finished within {plan.spec.timeout} s",
                f"verify it later: imagectl verify --env {env.name} --revision {plan.revision.revision}",
            )
        time.sleep(poll)


def conclude(workspace: Workspace, env: Environment, revision: Revision, spec: VerifySpec, outcome: RunOutcome, actor: str) -> VerifyResult:
    """Judge a finished run, record the verdict, and on a failure reject the image and roll back (per ``spec``)."""
    result = VerifyResult(env.name, revision, spec)
    expected = env.reference(revision.tag, revision.digest)
    if outcome.rendered != expected:
        newer = [r for r in env.history.newest(HISTORY_WINDOW) if r.revision > revision.revision]
        match = next((r for r in newer if env.reference(r.tag, r.digest) == outcome.rendered), None)
        if match is not None:
            result.superseded_by = match.revision
            return result
    if outcome.state == "success" and outcome.rendered == expected:
        detail = None
    elif outcome.rendered != expected:
        detail = f"the run's task rendered {outcome.rendered or 'no image'}, not this revision's image"
    else:
        detail = f"the run ended {outcome.state}"
    image = env.image(revision.digest)
    if image is None:
        raise NotFoundError(f"the image of revision {revision.revision} is gone from {env.repository}", "nothing was recorded")
    verdict = Verdict(
        environment=env.name,
        revision=revision.revision,
        result="verified" if detail is None else "failed",
        digest=revision.digest,
        time=now_text(),
        actor=actor,
        dag_id=outcome.dag_id,
        run_id=outcome.run_id,
        run_state=outcome.state,
        rendered=outcome.rendered,
        run_url=outcome.url,
        detail=detail,
    )
    result.verdict = write_verdict(env, verdict, image)
    result.reused = result.verdict is not verdict
    if result.verdict.verified or spec.on_failure == "report":
        return result
    why = f"verification of revision {revision.revision} failed: run {outcome.run_id} of {outcome.dag_id} ({result.verdict.detail})"
    result.rejection = record_rejection(
        env, image, "reject", time=now_text(), actor=actor, reason=why, revision=revision.revision, run_url=outcome.url
    )
    _roll_back(workspace, env, revision, result, actor, why)
    return result


def _roll_back(workspace: Workspace, env: Environment, failed: Revision, result: VerifyResult, actor: str, why: str) -> None:
    from imagectl.commands.rollback import Rollback, RollbackRequest

    found = newest_verified(env, env.history.newest(HISTORY_WINDOW), failed.revision, failed.digest)
    if found is None:
        result.rollback_error = f"{env.name} has no verified revision before revision {failed.revision} to go back to"
        return
    result.rollback_target = found[0]
    try:
        action = Rollback(workspace, RollbackRequest(env.name, to=str(found[0].revision), reason=f"automatic: {why}", actor=actor))
        plan = action.plan()
        if plan.current is None or plan.current.revision != failed.revision:
            now = plan.current.revision if plan.current else 0
            result.rollback_error = f"{env.name} changed since (now revision {now}); a rollback would undo that too"
            return
        plan.implicit_target = True  # claimed only right on top of the failed revision (rollout.decide_at_claim)
        result.rollback = action.apply(plan)
        action.notify(result.rollback)
    except ImagectlError as exc:
        result.rollback_error = exc.one_line()


def report_to_jira(workspace: Workspace, env: Environment, result: VerifyResult) -> None:
    """The verdict as the revision's Jira deployment (the automatic rollback reported itself); never raises."""
    from imagectl import jira_report

    if not jira_report.enabled(env):
        return
    before = env.history.get(result.revision.replaces) if result.revision.replaces else None
    if result.verdict is None:  # superseded: the change itself went through
        jira_report.report_change(env, result.revision.action, before, result.revision)
    else:
        jira_report.report_verdict(env, result.revision, before, result.verdict)
