"""``imagectl trigger``: start a DAG run through the environment's Airflow (v2 and v1), print its URL, and with
``--wait`` follow it to the end.

For the dbt DAG, ``--wait`` also checks what actually ran: the image the dbt task rendered in this run (its
rendered ``image`` field, one REST call) must equal, digest-pinned reference for reference, the image of the
environment's latest revision. A mismatch exits 12 and says why it may happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.environment import Environment
from imagectl.errors import ConflictError, NotFoundError, RanOtherImageError, TimeoutError_
from imagectl.render import Result, v

FINAL_STATES = ("success", "failed")


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


def verify_image(config: Config, env: Environment, dag_id: str, run_id: str) -> Verification:
    latest = env.history.latest()
    rendered = env.runs.rendered_image(dag_id, run_id, config.ci.dbt_task)
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


def trigger(
    config: Config,
    credentials: Credentials,
    environment: str,
    dag_id: str,
    conf: dict[str, Any],
    run_id: str | None,
    wait: bool,
    timeout: float = 3600,
    poll: float = 5,
    on_state: Callable[[str], None] | None = None,
    env: Environment | None = None,
    verify: bool = True,
) -> TriggerResult:
    env = env or Environment(config, environment, credentials)
    runs = env.runs
    dag = runs.dag(dag_id)
    if dag.get("is_paused"):
        raise ConflictError(
            f"DAG {dag_id} is paused in {environment}'s Airflow, so a run would not start",
            f"unpause it in the Airflow UI or with: airflow dags unpause {dag_id}",
        )
    existing = None
    if run_id:
        try:
            existing = runs.dag_run(dag_id, run_id)  # a re-run Bamboo job: do not start a second run
        except NotFoundError:
            existing = None
    run = existing or runs.trigger(dag_id, run_id, conf)
    run_id = str(run.get("dag_run_id") or run.get("run_id") or run_id or "")
    state = str(run.get("state") or "queued")
    check = None
    if wait:
        deadline = time.monotonic() + timeout
        last = None
        while state not in FINAL_STATES:
            if time.monotonic() > deadline:
                raise TimeoutError_(
                    f"run {run_id} of {dag_id} did not finish within {timeout:.0f} s (last state: {state})",
                    f"raise --timeout, or follow it in Airflow: {runs.run_url(dag_id, run_id)}",
                )
            time.sleep(poll)
            state = str(runs.dag_run(dag_id, run_id).get("state") or state)
            if on_state and state != last:
                on_state(state)
                last = state
        if verify and dag_id == config.dbt_dag_for(environment):
            check = verify_image(config, env, dag_id, run_id)
    return TriggerResult(environment, dag_id, run_id, state, runs.run_url(dag_id, run_id), existing is None, wait, check)
