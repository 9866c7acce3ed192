"""dbt_build: run dbt in the image imagectl deployed (the Variable), slim when triggered, full every morning.

- Triggered runs (imagectl ci / trigger, the UI) build in slim mode by default; their conf may set `mode`
  (slim|full), `select`, `exclude`, `selector`, `tags`, `resource_types`, `exclude_resource_types`, `target`,
  `threads`, `fail_fast` and `upload_state`.
- The scheduled run (dbt_settings: DBT_DAG_SCHEDULE in DBT_DAG_TIMEZONE, 08:00 Asia/Seoul by default) is a full
  build that stores the new production manifest (the state slim builds defer to).
- The image is `{{ var.value.<DBT_DAG_IMAGE_VARIABLE> }}`, rendered when the task runs: a deploy or rollback
  changes what the next run runs, with no DAG change.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG
from airflow.timetables.trigger import CronTriggerTimetable

# dbt_settings.py lives beside the DAG files; Airflow 3 does not put the DAGs folder on sys.path.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
import dbt_settings  # noqa: E402

SETTINGS = dbt_settings.load()

# Jinja, rendered per run: scheduled runs are full builds; triggered runs default to slim.
SCHEDULED = "dag_run.run_type == 'scheduled'"
CONF = "(dag_run.conf or {})"


def conf(key: str, default: str = "") -> str:
    return "{{ " + f"{CONF}.get('{key}', '{default}')" + " }}"


def container_env(settings: dbt_settings.Settings) -> dict[str, str]:
    env = {
        "DBT_MODE": "{{ 'full' if " + SCHEDULED + " else " + f"{CONF}.get('mode', 'slim')" + " }}",
        "DBT_SELECT": conf("select"),
        "DBT_EXCLUDE": conf("exclude"),
        "DBT_SELECTOR": conf("selector"),
        "DBT_TAGS": conf("tags"),
        "DBT_RESOURCE_TYPES": conf("resource_types"),
        # Slim builds skip DBT_DAG_SLIM_EXCLUDE_TYPES (e.g. snapshot,seed) unless the conf says otherwise.
        "DBT_EXCLUDE_RESOURCE_TYPES": "{{ "
        + f"{CONF}.get('exclude_resource_types', '' if {SCHEDULED} or {CONF}.get('mode', 'slim') == 'full' "
        + f"else '{settings.slim_exclude_types}')"
        + " }}",
        "DBT_TARGET": conf("target", settings.target),
        "DBT_THREADS": conf("threads"),
        "DBT_FAIL_FAST": "{{ '1' if " + f"{CONF}.get('fail_fast') else '0'" + " }}",
        "DBT_STATE_URI": settings.state_uri,
        "DBT_UPLOAD_STATE": "{{ '1' if " + SCHEDULED + f" or {CONF}.get('upload_state') else '0'" + " }}",
        "IMAGECTL_RUN_ID": "{{ run_id }}",
    }
    env.update(settings.extra_env)
    return env


def image_template(settings: dbt_settings.Settings) -> str:
    return "{{ var.value." + settings.image_variable + " }}"


def dbt_task(settings: dbt_settings.Settings):
    if settings.operator == "docker":
        from airflow.providers.docker.operators.docker import DockerOperator
        from docker.types import Mount

        return DockerOperator(
            task_id="dbt_build",
            image=image_template(settings),
            environment=container_env(settings),
            docker_url=settings.docker_url,
            network_mode=settings.docker_network,
            mounts=[Mount(target=target, source=source, type="bind") for source, target in settings.docker_mounts],
            # A name per run, so what actually ran can be inspected (docker inspect) when auto_remove is "never".
            container_name="{{ dag.dag_id }}-{{ run_id | replace(':', '-') | replace('+', '-') }}",
            auto_remove=settings.docker_auto_remove,
            mount_tmp_dir=False,
            force_pull=False,
        )
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    limits = {k: v for k, v in (("cpu", settings.k8s_cpu_limit), ("memory", settings.k8s_memory_limit)) if v}
    return KubernetesPodOperator(
        task_id="dbt_build",
        name="dbt-build",
        image=image_template(settings),
        env_vars=container_env(settings),
        namespace=settings.k8s_namespace,
        service_account_name=settings.k8s_service_account,
        image_pull_policy=settings.k8s_image_pull_policy,
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": settings.k8s_cpu, "memory": settings.k8s_memory}, limits=limits or None
        ),
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
    )


def build_dag(dag_id: str, settings: dbt_settings.Settings) -> DAG:
    """One dbt DAG; a deployment with several dbt projects (or Variables) builds one per project."""
    with DAG(
        dag_id=dag_id,
        description="dbt build in the image imagectl deployed: slim when triggered, full daily",
        schedule=CronTriggerTimetable(settings.schedule, timezone=settings.timezone),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["dbt", "imagectl"],
    ) as dag:
        dbt_task(settings)
    return dag


dag = build_dag("dbt_build", SETTINGS)
# One Airflow serving several environments: a DAG per environment, each reading that environment's Variable.
for _dag_id, _variable in SETTINGS.extra_dags.items():
    globals()[f"dag_{_dag_id}"] = build_dag(_dag_id, dataclasses.replace(SETTINGS, image_variable=_variable))
