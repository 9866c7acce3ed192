"""Airflow's REST API: Variables (and DAG runs), for Airflow 3 (``/api/v2``, JWT) and Airflow 2 (``/api/v1``, basic auth).

Credentials come from IMAGECTL_AIRFLOW_<ENV>_USERNAME/_PASSWORD, else IMAGECTL_AIRFLOW_USERNAME/_PASSWORD; they are
never printed or put in an error message. Every call has a timeout; connection errors and 5xx are retried with backoff
(adapters/http.py); 401/403/404 are explained.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import requests

from imagectl.adapters.http import TIMEOUT, session
from imagectl.errors import AirflowError, ConfigError, NotFoundError


@dataclass(frozen=True)
class Variable:
    key: str
    value: str
    description: str | None


def credentials(environment: str) -> tuple[str, str]:
    specific = f"IMAGECTL_AIRFLOW_{environment.upper().replace('-', '_')}_"
    for prefix in (specific, "IMAGECTL_AIRFLOW_"):
        user, password = os.environ.get(prefix + "USERNAME"), os.environ.get(prefix + "PASSWORD")
        if user and password:
            return user, password
    raise ConfigError(
        f"no Airflow credentials for environment '{environment}'",
        f"set {specific}USERNAME/_PASSWORD (or IMAGECTL_AIRFLOW_USERNAME/_PASSWORD)",
    )


class AirflowClient:
    def __init__(self, base_url: str, environment: str, api: str = "auto") -> None:
        self.base_url = base_url.rstrip("/")
        self.environment = environment
        self.http = session(retries=3, backoff=0.5)
        self._api = None if api == "auto" else api
        self._token: str | None = None
        self._user, self._password = credentials(environment)

    # -- transport --------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.request(method, self.base_url + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise AirflowError(
                f"cannot reach Airflow for '{self.environment}' at {self.base_url}: {type(exc).__name__}",
                "check airflow_url in imagectl.toml and that the Airflow api-server is up; nothing was changed in Airflow",
            ) from None

    @property
    def api(self) -> str:
        """v2 (Airflow 3) or v1 (Airflow 2), probed once on the unauthenticated health endpoints."""
        if self._api is None:
            v2 = self._send("GET", "/api/v2/monitor/health").status_code
            v1 = self._send("GET", "/api/v1/health").status_code if v2 != 200 else 0
            if v2 == 200:
                self._api = "v2"
            elif v1 == 200:
                self._api = "v1"
            elif v2 >= 500 or v1 >= 500:
                raise AirflowError(
                    f"Airflow for '{self.environment}' at {self.base_url} is not answering (HTTP {max(v1, v2)})",
                    "check that the Airflow api-server is up; nothing was changed in Airflow",
                )
            else:
                raise AirflowError(
                    f"{self.base_url} does not look like an Airflow 2 or 3 api-server",
                    'check airflow_url, or set airflow_api = "v2" or "v1" in imagectl.toml',
                )
        return self._api

    def _login(self) -> str:
        response = self._send("POST", "/auth/token", json={"username": self._user, "password": self._password})
        if response.status_code not in (200, 201):
            raise AirflowError(
                f"Airflow at {self.base_url} refused to log in user '{self._user}' (HTTP {response.status_code})",
                f"check IMAGECTL_AIRFLOW_{self.environment.upper()}_USERNAME/_PASSWORD",
            )
        return response.json()["access_token"]

    def request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        if self.api == "v1":
            response = self._send(method, path, auth=(self._user, self._password), **kwargs)
        else:
            if self._token is None:
                self._token = self._login()
            response = self._send(method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
            if response.status_code in (401, 403):  # expired token (Airflow 3 answers 403 to one): log in again, once
                self._token = self._login()
                response = self._send(method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
        if response.status_code == 401:
            raise AirflowError(f"Airflow rejected user '{self._user}' for {what}", "check the Airflow credentials in the environment")
        if response.status_code == 403:
            role = "op (or admin)" if "ariable" in what else "user"
            raise AirflowError(f"Airflow user '{self._user}' may not {what}", f"the Airflow user needs role {role}")
        if response.status_code >= 500:
            raise AirflowError(f"Airflow answered HTTP {response.status_code} to {what}", "check the Airflow api-server's logs")
        return response

    @property
    def prefix(self) -> str:
        return f"/api/{self.api}"

    # -- Variables --------------------------------------------------------------------------------------------

    def get_variable(self, key: str) -> Variable | None:
        response = self.request("GET", f"{self.prefix}/variables/{key}", f"read Variable {key}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AirflowError(f"reading Variable {key} gave HTTP {response.status_code}", "check the Airflow api-server's logs")
        body = response.json()
        return Variable(body["key"], body.get("value") or "", body.get("description"))

    def set_variable(self, key: str, value: str, description: str) -> None:
        """Create or update. Airflow 3 separates the two (PATCH → 404 → POST); Airflow 2's POST upserts."""
        body = {"key": key, "value": value, "description": description}
        what = f"write Variable {key}"
        if self.api == "v1":
            response = self.request("POST", f"{self.prefix}/variables", what, json=body)
            if response.status_code not in (200, 201):
                raise AirflowError(f"writing Variable {key} gave HTTP {response.status_code}", "check the Airflow api-server's logs")
            return
        params = [("update_mask", "value"), ("update_mask", "description")]
        response = self.request("PATCH", f"{self.prefix}/variables/{key}", what, params=params, json=body)
        if response.status_code == 404:
            response = self.request("POST", f"{self.prefix}/variables", what, json=body)
            if response.status_code == 409:  # created meanwhile by another writer: update it
                response = self.request("PATCH", f"{self.prefix}/variables/{key}", what, params=params, json=body)
        if response.status_code not in (200, 201):
            raise AirflowError(
                f"writing Variable {key} gave HTTP {response.status_code}: {response.text[:200]}", "check the Airflow api-server's logs"
            )

    # -- DAG runs ---------------------------------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any]:
        response = self.request("GET", f"{self.prefix}/dags/{dag_id}", f"read DAG {dag_id}")
        if response.status_code == 404:
            raise NotFoundError(
                f"DAG {dag_id} is not known to Airflow at {self.base_url}", "check the DAG id and that the DAG file parsed without errors"
            )
        return response.json()

    def trigger(self, dag_id: str, run_id: str | None, conf: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"conf": conf}
        if self.api == "v2":
            body["logical_date"] = None  # required key in v2 (null: now)
        if run_id:
            body["dag_run_id"] = run_id
        response = self.request("POST", f"{self.prefix}/dags/{dag_id}/dagRuns", f"trigger DAG {dag_id}", json=body)
        if response.status_code == 404:
            raise NotFoundError(
                f"DAG {dag_id} is not known to Airflow at {self.base_url}", "check the DAG id and that the DAG file parsed without errors"
            )
        if response.status_code == 409:
            return self.dag_run(dag_id, run_id or "")
        if response.status_code not in (200, 201):
            raise AirflowError(
                f"triggering DAG {dag_id} gave HTTP {response.status_code}: {response.text[:200]}", "check the Airflow api-server's logs"
            )
        return response.json()

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        response = self.request("GET", f"{self.prefix}/dags/{dag_id}/dagRuns/{run_id}", f"read run {run_id} of DAG {dag_id}")
        if response.status_code == 404:
            raise NotFoundError(f"run {run_id} of DAG {dag_id} does not exist", "check the run id")
        return response.json()
