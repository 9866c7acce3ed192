"""Settings of the dbt DAGs, in one place, read from the Airflow deployment's environment at parse time.

Nothing here reads an Airflow Variable or Connection at parse time: the image comes from the Variable by
templating when a task runs, Lightdash credentials from a Connection when its task runs.

| environment variable            | default              | meaning                                                  |
|---------------------------------|----------------------|----------------------------------------------------------|
| DBT_DAG_OPERATOR                | kubernetes           | kubernetes (KubernetesPodOperator, production) or docker |
| DBT_DAG_IMAGE_VARIABLE          | dbt_image            | the Variable imagectl deploys into                       |
| DBT_DAG_EXTRA_DAGS              | (none)               | JSON {"dag_id": "Variable"}: one more dbt DAG per entry,  |
|                                 |                      | for one Airflow serving several environments (set each   |
|                                 |                      | environment's dbt_dag in imagectl.toml to its DAG)       |
| DBT_DAG_SCHEDULE                | 0 8 * * *            | when the daily full build runs (cron)                    |
| DBT_DAG_TIMEZONE                | Asia/Seoul           | time zone of that schedule                               |
| DBT_DAG_TARGET                  | (profile's default)  | dbt target unless a run's conf names one                 |
| DBT_DAG_STATE_URI               | (none)               | s3://bucket/prefix or path of the production manifest    |
| DBT_DAG_SLIM_EXCLUDE_TYPES      | (none)               | resource types a slim build skips, e.g. snapshot,seed    |
| DBT_DAG_EXTRA_ENV               | (none)               | JSON object of more env vars for the container           |
| DBT_DAG_K8S_NAMESPACE           | data                 | KubernetesPodOperator namespace                          |
| DBT_DAG_K8S_SERVICE_ACCOUNT     | dbt                  | service account (IRSA role for S3 state, warehouse)      |
| DBT_DAG_K8S_IMAGE_PULL_POLICY   | IfNotPresent         | digest-pinned images never change, so this is safe      |
| DBT_DAG_K8S_CPU / _MEMORY       | 1 / 2Gi              | requests; DBT_DAG_K8S_CPU_LIMIT / _MEMORY_LIMIT: limits   |
| DBT_DAG_DOCKER_URL              | unix://var/run/docker.sock | DockerOperator's engine                             |
| DBT_DAG_DOCKER_NETWORK          | bridge               | DockerOperator network mode (host for a local stack)     |
| DBT_DAG_DOCKER_MOUNTS           | (none)               | host:container[,host:container] bind mounts              |
| DBT_DAG_DOCKER_AUTO_REMOVE      | success              | never / success / force                                  |
| DBT_DAG_LIGHTDASH_CONN_ID       | lightdash_default    | Connection with Lightdash's URL, API key, project        |
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    operator: str = "kubernetes"
    image_variable: str = "dbt_image"
    extra_dags: dict[str, str] = field(default_factory=dict)  # DAG id → the Variable that DAG reads
    schedule: str = "0 8 * * *"
    timezone: str = "Asia/Seoul"
    target: str = ""
    state_uri: str = ""
    slim_exclude_types: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    k8s_namespace: str = "data"
    k8s_service_account: str = "dbt"
    k8s_image_pull_policy: str = "IfNotPresent"
    k8s_cpu: str = "1"
    k8s_memory: str = "2Gi"
    k8s_cpu_limit: str = ""
    k8s_memory_limit: str = ""
    docker_url: str = "unix://var/run/docker.sock"
    docker_network: str = "bridge"
    docker_mounts: tuple[tuple[str, str], ...] = ()
    docker_auto_remove: str = "success"
    lightdash_conn_id: str = "lightdash_default"


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    def get(name: str, default: str) -> str:
        return environ.get(f"DBT_DAG_{name}", default) or default

    operator = get("OPERATOR", "kubernetes")
    if operator not in ("kubernetes", "docker"):
        raise ValueError(f"DBT_DAG_OPERATOR must be kubernetes or docker, not {operator!r}")
    mounts = tuple(
        tuple(part.split(":", 1))  # type: ignore[misc]
        for part in get("DOCKER_MOUNTS", "").split(",")
        if ":" in part
    )
    extra_dags = json.loads(get("EXTRA_DAGS", "{}"))
    if not isinstance(extra_dags, dict) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,250}", k) and isinstance(v, str) and re.fullmatch(r"[A-Za-z_]\w{0,249}", v)
        for k, v in extra_dags.items()
    ):
        raise ValueError('DBT_DAG_EXTRA_DAGS must be a JSON object of DAG id → Variable key, e.g. {"dbt_build_prd": "dbt_image_prd"}')
    return Settings(
        operator=operator,
        image_variable=get("IMAGE_VARIABLE", "dbt_image"),
        extra_dags=extra_dags,
        schedule=get("SCHEDULE", "0 8 * * *"),
        timezone=get("TIMEZONE", "Asia/Seoul"),
        target=get("TARGET", ""),
        state_uri=get("STATE_URI", ""),
        slim_exclude_types=get("SLIM_EXCLUDE_TYPES", ""),
        extra_env=json.loads(get("EXTRA_ENV", "{}")),
        k8s_namespace=get("K8S_NAMESPACE", "data"),
        k8s_service_account=get("K8S_SERVICE_ACCOUNT", "dbt"),
        k8s_image_pull_policy=get("K8S_IMAGE_PULL_POLICY", "IfNotPresent"),
        k8s_cpu=get("K8S_CPU", "1"),
        k8s_memory=get("K8S_MEMORY", "2Gi"),
        k8s_cpu_limit=get("K8S_CPU_LIMIT", ""),
        k8s_memory_limit=get("K8S_MEMORY_LIMIT", ""),
        docker_url=get("DOCKER_URL", "unix://var/run/docker.sock"),
        docker_network=get("DOCKER_NETWORK", "bridge"),
        docker_mounts=mounts,  # type: ignore[arg-type]
        docker_auto_remove=get("DOCKER_AUTO_REMOVE", "success"),
        lightdash_conn_id=get("LIGHTDASH_CONN_ID", "lightdash_default"),
    )
