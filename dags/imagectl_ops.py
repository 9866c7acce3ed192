"""imagectl_ops: roll back, freeze or unfreeze an environment from Airflow (the actions of imagectl's Images page).

Triggered from the Images page (its buttons open a form prefilled with these params) or from this DAG's own trigger
form, so Airflow's permissions on this DAG decide who may act. The task runs imagectl's own rollback / freeze /
unfreeze with this Airflow's identity (the worker's role on EKS, the execution role on MWAA), records the Airflow
user who triggered the run as the actor, logs the plan and the result, and fails the run with imagectl's one-line
message when the action is refused. It needs imagectl in Airflow's environment (pip install "imagectl[airflow]") and
imagectl.toml beside the DAGs (or [imagectl] config_file); docs/airflow-plugin.md says how.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, get_current_context, task

ACTIONS = ["rollback", "freeze", "unfreeze"]


def environment_names() -> list[str]:
    """The environments this Airflow runs ([imagectl] environments in imagectl.toml's order), read at parse time from
    the file alone; none when imagectl is missing or misconfigured (the task then says why, in one line)."""
    try:
        from imagectl.plugin.settings import environment_names as names

        return names()
    except Exception:  # noqa: BLE001 - the DAG must still parse: its run reports the problem
        return []


ENVIRONMENTS = environment_names()
CHOICES = {"enum": ENVIRONMENTS} if ENVIRONMENTS else {"minLength": 1}

with DAG(
    dag_id="imagectl_ops",
    description="Roll back, freeze or unfreeze an environment's dbt image (imagectl); the triggering user is recorded",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["imagectl"],
    params={
        "action": Param("rollback", type="string", enum=ACTIONS, description="rollback, freeze or unfreeze"),
        "environment": Param(
            ENVIRONMENTS[0] if len(ENVIRONMENTS) == 1 else None,
            type="string",
            description="the environment to act on (one this Airflow runs)",
            **CHOICES,
        ),
        "target": Param(
            None,
            type=["null", "string"],
            description="rollback only: a revision number (41) or a tag (DATA-1234-57, v1.4.0); empty: the previous image",
        ),
        "reason": Param("", type="string", minLength=1, maxLength=500, description="why (kept in the history; required)"),
    },
) as dag:

    @task(retries=0)
    def operate() -> None:
        from airflow.exceptions import AirflowFailException

        context = get_current_context()
        try:
            from imagectl.plugin.tasks import run_task
        except ImportError:
            raise AirflowFailException(
                'imagectl is not installed in this Airflow\'s environment — pip install "imagectl[airflow]" (docs/airflow-plugin.md)'
            ) from None
        run_task(context["params"], context["dag_run"].triggering_user_name)

    operate()
