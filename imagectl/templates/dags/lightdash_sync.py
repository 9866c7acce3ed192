"""lightdash_sync: ask Lightdash to refresh the project from dbt after a deploy (imagectl ci triggers it).

Lightdash's URL, API key (personal access token) and project come from the Airflow Connection named by
DBT_DAG_LIGHTDASH_CONN_ID (default lightdash_default): host = Lightdash's base URL, password = API key,
extra = {"project_uuid": "...", "refresh_path": "/api/v1/projects/{project_uuid}/refresh" (optional)}.
Nothing is read from code or at parse time.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task

# dbt_settings.py lives beside the DAG files; Airflow 3 does not put the DAGs folder on sys.path.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
import dbt_settings  # noqa: E402
from lightdash_api import refresh_request  # noqa: E402

SETTINGS = dbt_settings.load()


with DAG(
    dag_id="lightdash_sync",
    description="Refresh the Lightdash project from dbt",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["lightdash", "imagectl"],
) as dag:

    @task(retries=2)
    def refresh() -> str:
        import json

        import requests
        from airflow.sdk import Connection

        connection = Connection.get(SETTINGS.lightdash_conn_id)
        extra = json.loads(connection.extra or "{}")
        host = connection.host if not connection.port else f"{connection.host}:{connection.port}"
        if connection.schema and "://" not in host:
            host = f"{connection.schema}://{host}"
        url, headers = refresh_request(host, connection.password or "", extra)
        response = requests.post(url, headers=headers, timeout=(5, 60))
        response.raise_for_status()
        return response.text[:500]

    refresh()
