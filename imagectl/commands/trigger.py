"""``imagectl trigger``: start a DAG run through the environment's Airflow (v2 and v1), print its URL, and with
``--wait`` follow it to the end.

For the dbt DAG, ``--wait`` also checks what actually ran: the image the dbt task rendered in this run (its
rendered ``image`` field, one REST call) must equal, digest-pinned reference for reference, the image of the
environment's latest revision. A mismatch exits 12 and says why it may happen."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imagectl.action import Action, Plan
from imagectl.environment import Environment
from imagectl.errors import ConflictError, NotFoundError, RanOtherImageError, TimeoutError_
from imagectl.render import Result, v

FINAL_STATES = ("success", "failed")


def run_id(result_key: str, dag_id: str, max_path: int | None = None) -> str:
    """The DAG run id imagectl gives a run it triggers for a key (a CI result, a verification): the same key gives
    the same id, so a re-run follows that run instead of starting a second one.

    Where the environment's Airflow limits request paths (MWAA: 64 characters, and ``/dags/<dag>/dagRuns/<run>`` is
    read while waiting), the id is shortened to fit: first without the DAG's id (a run id is per DAG anyway), then
    the key cut short with a hash of the whole key added (still the same id for the same key)."""
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in result_key)[:150]
    full = f"imagectl__{safe}__{dag_id}"
    if max_path is None:
        return full
    budget = max_path - len(f"/dags/{dag_id}/dagRuns/")
    for candidate in (full, f"imagectl__{safe}"):
        if len(candidate) <= budget:
            return candidate
    digest = hashlib.sha256(safe.encode()).hexdigest()[:10]
    keep = budget - len("ic____") - len(digest)
    return f"ic__{safe[:keep]}__{digest}" if keep > 0 else f"ic__{digest}"  # a DAG id too long for any id: refused when called


@dataclass
class Verification:
    expected: str | None  # the latest revision's reference
    rendered: str | None  # what the task rendered
    revision: int | None

    @property
    def ok(self) -> bool:
        return self.expected is None or self.rendered == self.expected

    def json(self) -> dict[str, Any]:
        return {"expected": self.expected, "rendered": self.rendered, "revision": self.revision, "ok": self.ok}


@dataclass
class TriggerResult(Result):
    kind = "trigger"

    environment: str
    dag_id: str
    run_id: str
    state: str
    url: str
    created: bool  # False: a run with this id existed already (a re-run Bamboo job)
    waited: bool
    verification: Verification | None = None

    @property
    def ok(self) -> bool:
        return self.state != "failed"

    def json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("environment", "dag_id", "run_id", "state", "url", "created", "waited")}
        data["verification"] = self.verification.json() if self.verification else None
        return data

    def text(self) -> str:
        how = "triggered" if self.created else "exists already (not triggered again)"
        lines = [f"{self.dag_id} run {v(self.run_id)} {how} in {self.environment}: {self.state}", f"  {self.url}"]
        check = self.verification
        if check is not None:
            if check.expected is None:
                lines.append("  image: not checked (the environment has no revision yet)")
            elif check.ok:
                lines.append(f"  image: ran revision {check.revision}'s image, as deployed")
            else:
                lines.append(
                    f"  image: the task rendered {v(check.rendered) or 'nothing'}, not revision {check.revision}'s {v(check.expected)}"
                )
        return "\n".join(lines)


def verify_image(env: Environment, dag_id: str, run_id: str) -> Verification:
    latest = env.history.latest()
    rendered = env.runs.rendered_image(dag_id, run_id, env.config.ci.dbt_task)
    return Verification(latest.reference if latest else None, rendered, latest.revision if latest else None)


def raise_if_other_image(check: Verification | None, env_name: str, dag_id: str) -> None:
    if check is None or check.ok:
        return
    raise RanOtherImageError(
        f"run of {dag_id} in {env_name} rendered {v(check.rendered) or 'no image'}, not revision {check.revision}'s {v(check.expected)}",
        "the Variable is shadowed (a secrets backend, or AIRFLOW_VAR_ on the workers: set variable_store), "
        "or the DAG reads another Variable (DBT_DAG_IMAGE_VARIABLE vs variable in imagectl.toml; one Airflow for "
        "several environments: a DAG each, DBT_DAG_EXTRA_DAGS and environments.<name>.dbt_dag)",
    )


@dataclass
class TriggerPlan(Plan):
    kind = "trigger-plan"
    dry_run_note = "Nothing was triggered (--dry-run)."

    environment: str
    dag_id: str
    run_id: str | None
    conf: dict[str, Any]
    existing: dict[str, Any] | None  # a run with this run id exists already: it is followed, not started again
    wait: bool

    def json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("environment", "dag_id", "run_id", "conf", "wait")}
        data["exists"] = self.existing is not None
        return data

    def text(self) -> str:
        what = "follow the existing run" if self.existing is not None else "trigger a run"
        return (
            f"Plan: {what} of {self.dag_id} in {self.environment}"
            + (f" (run id {v(self.run_id)})" if self.run_id else "")
            + f" with conf {v(json.dumps(self.conf))}"
            + (", then wait for it" if self.wait else "")
        )


@dataclass(frozen=True)
class TriggerRequest:
    environment: str
    dag_id: str
    conf: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    wait: bool = False
    timeout: int = 3600


class Trigger(Action[TriggerPlan, TriggerResult]):
    """Trigger (or find, by run id) a DAG run; with ``wait``, follow it and, for the dbt DAG, check its image."""

    def __init__(self, env: Environment, request: TriggerRequest, on_state: Callable[[str], None] | None = None, poll: float = 5) -> None:
        self.env, self.request, self.on_state, self.poll = env, request, on_state, poll

    def plan(self) -> TriggerPlan:
        env, request = self.env, self.request
        dag = env.runs.dag(request.dag_id)
        if dag.get("is_paused"):
            raise ConflictError(
                f"DAG {request.dag_id} is paused in {env.name}'s Airflow, so a run would not start",
                f"unpause it in the Airflow UI or with: airflow dags unpause {request.dag_id}",
            )
        existing = None
        if request.run_id:
            try:
                existing = env.runs.dag_run(request.dag_id, request.run_id)  # a re-run CI job: do not start a second run
            except NotFoundError:
                existing = None
        return TriggerPlan(env.name, request.dag_id, request.run_id, dict(request.conf), existing, request.wait)

    def apply(self, plan: TriggerPlan) -> TriggerResult:
        env, runs = self.env, self.env.runs
        dag_id = plan.dag_id
        run = plan.existing or runs.trigger(dag_id, plan.run_id, plan.conf)
        run_id = str(run.get("dag_run_id") or run.get("run_id") or plan.run_id or "")
        state = str(run.get("state") or "queued")
        check = None
        if plan.wait:
            deadline = time.monotonic() + self.request.timeout
            last = None
            while state not in FINAL_STATES:
                if time.monotonic() > deadline:
                    raise TimeoutError_(
                        f"run {run_id} of {dag_id} did not finish within {self.request.timeout:.0f} s (last state: {state})",
                        f"raise --timeout, or follow it in Airflow: {runs.run_url(dag_id, run_id)}",
                    )
                time.sleep(self.poll)
                state = str(runs.dag_run(dag_id, run_id).get("state") or state)
                if self.on_state and state != last:
                    self.on_state(state)
                    last = state
            if dag_id == env.config.dbt_dag_for(env.name):
                check = verify_image(env, dag_id, run_id)
        return TriggerResult(env.name, dag_id, run_id, state, runs.run_url(dag_id, run_id), plan.existing is None, plan.wait, check)
