"""``imagectl trigger``: start a DAG run through the same Airflow client as the release commands (v2 and v1),
print its URL, and with ``--wait`` follow it to the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagectl.config import Config
from imagectl.errors import ConflictError, InputError, NotFoundError
from imagectl.release import Environment

FINAL_STATES = ("success", "failed")


@dataclass
class TriggerResult:
    environment: str
    dag_id: str
    run_id: str
    state: str
    url: str
    created: bool  # False: a run with this id existed already (a re-run Bamboo job)
    waited: bool

    @property
    def ok(self) -> bool:
        return self.state != "failed"

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("environment", "dag_id", "run_id", "state", "url", "created", "waited")}


def run_url(airflow: Any, dag_id: str, run_id: str) -> str:
    if airflow.api == "v2":
        return f"{airflow.base_url}/dags/{dag_id}/runs/{run_id}"
    return f"{airflow.base_url}/dags/{dag_id}/grid?dag_run_id={run_id}"


def trigger(
    config: Config,
    environment: str,
    dag_id: str,
    conf: dict[str, Any],
    run_id: str | None,
    wait: bool,
    timeout: float = 3600,
    poll: float = 5,
    on_state: Callable[[str], None] | None = None,
) -> TriggerResult:
    airflow = Environment(config, environment).airflow
    dag = airflow.dag(dag_id)
    if dag.get("is_paused"):
        raise ConflictError(
            f"DAG {dag_id} is paused in {environment}'s Airflow, so a run would not start",
            f"unpause it in the Airflow UI or with: airflow dags unpause {dag_id}",
        )
    existing = None
    if run_id:
        try:
            existing = airflow.dag_run(dag_id, run_id)  # a re-run Bamboo job: do not start a second run
        except NotFoundError:
            existing = None
    run = existing or airflow.trigger(dag_id, run_id, conf)
    run_id = run.get("dag_run_id") or run.get("run_id") or run_id or ""
    state = run.get("state") or "queued"
    if wait:
        deadline = time.monotonic() + timeout
        last = None
        while state not in FINAL_STATES:
            if time.monotonic() > deadline:
                raise InputError(
                    f"run {run_id} of {dag_id} did not finish within {timeout:.0f} s (state {state})",
                    "raise --timeout, or follow it in Airflow",
                )
            time.sleep(poll)
            state = airflow.dag_run(dag_id, run_id).get("state") or state
            if on_state and state != last:
                on_state(state)
                last = state
    return TriggerResult(environment, dag_id, run_id, state, run_url(airflow, dag_id, run_id), existing is None, wait)
