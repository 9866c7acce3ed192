"""Airflow's REST API: Airflow 3 (``/api/v2``, JWT from ``/auth/token``) and Airflow 2 (``/api/v1``, basic auth).

Implements both interfaces of _base.py: ``AirflowRest`` for DAG runs and the metadata-database Variable
(``RestVariable``). The login is resolved once (credentials.py) and never printed. Every id is checked
against Airflow's own rules before a request and every path segment is quoted. Every call has timeouts and
bounded retries (adapters/http.py); after a write that got no answer, messages say it may or may not have
been made, since imagectl cannot know.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import requests

from imagectl.adapters import http
from imagectl.airflow._base import ImageVariable, Reach, Runs
from imagectl.config import Timeouts
from imagectl.credentials import Credentials, Login
from imagectl.errors import AirflowError, ConfigError, NotFoundError
from imagectl.sanitize import visible
from imagectl.tagging import validate_dag_id, validate_run_id, validate_variable_key

SECRETS_MANAGER_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
SSM_BACKEND = "airflow.providers.amazon.aws.secrets.systems_manager.SystemsManagerParameterStoreBackend"


def _segment(value: str) -> str:
    return quote(value, safe="")


class AirflowRest(Runs):
    def __init__(self, base_url: str, environment: str, login: Login, api: str = "auto", timeouts: Timeouts | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.environment = environment
        self.timeouts = timeouts or Timeouts()
        self.http = http.session(retries=3, backoff=0.5)
        self._api = None if api == "auto" else api
        self._token: str | None = None
        self._login_data = login

    # -- transport --------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return http.send(self.http, method, self.base_url + path, timeouts=self.timeouts, what=what, **kwargs)
        except requests.RequestException as exc:
            cause = http.explain(exc, self.timeouts)
            writing = method in ("POST", "PATCH", "PUT", "DELETE")
            if writing and http.is_read_timeout(exc):
                known = "the request was sent, so Airflow may or may not have made the change"
            elif writing:
                known = "the change was not made"
            else:
                known = "nothing was changed in Airflow"
            raise AirflowError(
                f"Airflow for '{self.environment}' at {self.base_url}: {cause} ({what}); {known}",
                "check airflow_url in imagectl.toml and that the Airflow api-server is up",
            ) from None

    def _json(self, response: requests.Response, what: str) -> dict[str, Any]:
        body = http.json_body(response)
        if not isinstance(body, dict):
            raise AirflowError(
                f"Airflow at {self.base_url} answered {what} with something that is not JSON (HTTP {response.status_code})",
                "check that airflow_url points at the Airflow api-server, not a proxy's page",
            )
        return body

    @property
    def api(self) -> str:
        """v2 (Airflow 3) or v1 (Airflow 2), probed once on the unauthenticated health endpoints."""
        if self._api is None:
            v2 = self._send("GET", "/api/v2/monitor/health", "the health check")
            v1 = self._send("GET", "/api/v1/health", "the health check") if v2.status_code != 200 else None
            if v2.status_code == 200 and isinstance(http.json_body(v2), dict):
                self._api = "v2"
            elif v1 is not None and v1.status_code == 200 and isinstance(http.json_body(v1), dict):
                self._api = "v1"
            elif v2.status_code >= 500 or (v1 is not None and v1.status_code >= 500):
                status = max(v2.status_code, v1.status_code if v1 is not None else 0)
                raise AirflowError(
                    f"Airflow for '{self.environment}' at {self.base_url} is not answering (HTTP {status})",
                    "check that the Airflow api-server is up; nothing was changed in Airflow",
                )
            else:
                raise AirflowError(
                    f"{self.base_url} does not look like an Airflow 2 or 3 api-server",
                    'check airflow_url, or set airflow_api = "v2" or "v1" in imagectl.toml',
                )
        return self._api

    def _login(self) -> str:
        login = self._login_data
        response = self._send("POST", "/auth/token", "logging in", json={"username": login.username, "password": login.password})
        if response.status_code not in (200, 201):
            specific, shared = Credentials.airflow_variables(self.environment)
            raise AirflowError(
                f"Airflow at {self.base_url} refused to log in user '{visible(login.username)}' (HTTP {response.status_code})",
                f"check {login.source or specific}USERNAME and {login.source or specific}PASSWORD (or {shared}USERNAME/_PASSWORD)",
            )
        token = self._json(response, "logging in").get("access_token")
        if not isinstance(token, str) or not token:
            raise AirflowError(f"Airflow at {self.base_url} answered the login without a token", "check the Airflow version (airflow_api)")
        return token

    def request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        login = self._login_data
        headers = dict(kwargs.pop("headers", {}))
        if self.api == "v1":
            response = self._send(method, path, what, auth=(login.username, login.password), headers=headers, **kwargs)
        else:
            if self._token is None:
                self._token = self._login()
            response = self._send(method, path, what, headers={**headers, "Authorization": f"Bearer {self._token}"}, **kwargs)
            if response.status_code in (401, 403):  # an expired token (Airflow 3 answers 403 to one): log in again, once
                self._token = self._login()
                response = self._send(method, path, what, headers={**headers, "Authorization": f"Bearer {self._token}"}, **kwargs)
        user = visible(login.username)
        if response.status_code == 401:
            raise AirflowError(f"Airflow rejected user '{user}' for {what}", "check the Airflow credentials in the environment")
        if response.status_code == 403:
            role = "op (or admin)" if "Variable" in what else "user"
            raise AirflowError(f"Airflow user '{user}' may not {what}", f"the Airflow user needs role {role}")
        if response.status_code >= 500:
            raise AirflowError(f"Airflow answered HTTP {response.status_code} to {what}", "check the Airflow api-server's logs")
        return response

    @property
    def prefix(self) -> str:
        return f"/api/{self.api}"

    def _unexpected(self, response: requests.Response, what: str) -> AirflowError:
        body = http.json_body(response)
        detail = body.get("detail") if isinstance(body, dict) else None
        text = f": {visible(str(detail))[:200]}" if detail else ""
        return AirflowError(f"{what} gave HTTP {response.status_code}{text}", "check the Airflow api-server's logs")

    # -- Variables --------------------------------------------------------------------------------------------

    def get_variable(self, key: str) -> str | None:
        validate_variable_key(key)
        what = f"read Variable {key}"
        response = self.request("GET", f"{self.prefix}/variables/{_segment(key)}", what)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unexpected(response, what)
        body = self._json(response, what)
        value = body.get("value")
        return value if isinstance(value, str) else ""

    def set_variable(self, key: str, value: str, description: str) -> None:
        """Create or update. Airflow 3 separates the two (PATCH → 404 → POST); Airflow 2's POST upserts."""
        validate_variable_key(key)
        body = {"key": key, "value": value, "description": description}
        what = f"write Variable {key}"
        if self.api == "v1":
            response = self.request("POST", f"{self.prefix}/variables", what, json=body)
            if response.status_code not in (200, 201):
                raise self._unexpected(response, f"writing Variable {key}")
            return
        params = [("update_mask", "value"), ("update_mask", "description")]
        path = f"{self.prefix}/variables/{_segment(key)}"
        response = self.request("PATCH", path, what, params=params, json=body)
        if response.status_code == 404:
            response = self.request("POST", f"{self.prefix}/variables", what, json=body)
            if response.status_code == 409:  # created meanwhile by another writer: update it
                response = self.request("PATCH", path, what, params=params, json=body)
        if response.status_code not in (200, 201):
            raise self._unexpected(response, f"writing Variable {key}")

    def secrets_config(self) -> tuple[dict[str, str] | None, str | None]:
        """([secrets] options, None) when the config API shows them, else (None, why not)."""
        what = "read the [secrets] configuration"
        try:
            response = self.request(
                "GET", f"{self.prefix}/config", what, params={"section": "secrets"}, headers={"Accept": "application/json"}
            )
        except AirflowError as exc:
            if "may not" in exc.message:
                return None, "the Airflow configuration is not exposed to this user ([api] expose_config)"
            raise
        if response.status_code in (403, 404):
            return None, "the Airflow configuration is not exposed ([api] expose_config = False)"
        if response.status_code != 200:
            return None, f"reading the Airflow configuration gave HTTP {response.status_code}"
        body = self._json(response, what)
        for section in body.get("sections") or []:
            if isinstance(section, dict) and section.get("name") == "secrets":
                return {
                    str(o.get("key")): str(o.get("value"))
                    for o in section.get("options") or []
                    if isinstance(o, dict) and o.get("key") is not None
                }, None
        return {}, None

    # -- DAG runs ---------------------------------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any]:
        validate_dag_id(dag_id)
        what = f"read DAG {dag_id}"
        response = self.request("GET", f"{self.prefix}/dags/{_segment(dag_id)}", what)
        if response.status_code == 404:
            raise NotFoundError(
                f"DAG {dag_id} is not known to Airflow at {self.base_url}", "check the DAG id and that the DAG file parsed without errors"
            )
        if response.status_code != 200:
            raise self._unexpected(response, what)
        return self._json(response, what)

    def trigger(self, dag_id: str, run_id: str | None, conf: dict[str, Any]) -> dict[str, Any]:
        validate_dag_id(dag_id)
        if run_id:
            validate_run_id(run_id)
        body: dict[str, Any] = {"conf": conf}
        if self.api == "v2":
            body["logical_date"] = None  # required key in v2 (null: now)
        if run_id:
            body["dag_run_id"] = run_id
        what = f"trigger DAG {dag_id}"
        response = self.request("POST", f"{self.prefix}/dags/{_segment(dag_id)}/dagRuns", what, json=body)
        if response.status_code == 404:
            raise NotFoundError(
                f"DAG {dag_id} is not known to Airflow at {self.base_url}", "check the DAG id and that the DAG file parsed without errors"
            )
        if response.status_code == 409 and run_id:
            return self.dag_run(dag_id, run_id)
        if response.status_code not in (200, 201):
            raise self._unexpected(response, f"triggering DAG {dag_id}")
        return self._json(response, what)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        validate_dag_id(dag_id)
        validate_run_id(run_id)
        what = f"read run {run_id} of DAG {dag_id}"
        response = self.request("GET", f"{self.prefix}/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}", what)
        if response.status_code == 404:
            raise NotFoundError(f"run {run_id} of DAG {dag_id} does not exist", "check the run id")
        if response.status_code != 200:
            raise self._unexpected(response, what)
        return self._json(response, what)

    def latest_run(self, dag_id: str) -> dict[str, Any] | None:
        validate_dag_id(dag_id)
        what = f"list runs of DAG {dag_id}"
        order = "-run_after" if self.api == "v2" else "-execution_date"
        response = self.request("GET", f"{self.prefix}/dags/{_segment(dag_id)}/dagRuns", what, params={"order_by": order, "limit": 1})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unexpected(response, what)
        runs = self._json(response, what).get("dag_runs") or []
        return runs[0] if runs and isinstance(runs[0], dict) else None

    def rendered_image(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        validate_dag_id(dag_id)
        validate_run_id(run_id)
        validate_dag_id(task_id)
        what = f"read task {task_id} of run {run_id}"
        path = f"{self.prefix}/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}/taskInstances/{_segment(task_id)}"
        response = self.request("GET", path, what)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unexpected(response, what)
        fields = self._json(response, what).get("rendered_fields") or {}
        image = fields.get("image") if isinstance(fields, dict) else None
        return image if isinstance(image, str) and image else None

    def run_url(self, dag_id: str, run_id: str) -> str:
        if self.api == "v2":
            return f"{self.base_url}/dags/{_segment(dag_id)}/runs/{_segment(run_id)}"
        return f"{self.base_url}/dags/{_segment(dag_id)}/grid?dag_run_id={_segment(run_id)}"


class RestVariable(ImageVariable):
    """The Variable in Airflow's metadata database, written through the REST API."""

    def __init__(self, airflow: AirflowRest, key: str, store_settings: Any = None) -> None:
        self.airflow, self.key = airflow, key

    def location(self) -> str:
        return f"Airflow Variable {self.key} (metadata database, REST /api/{self.airflow.api})"

    def read(self) -> str | None:
        return self.airflow.get_variable(self.key)

    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        self.airflow.set_variable(self.key, value, description)

    def reach(self) -> Reach:
        """Airflow reads a Variable from its secrets backend first, then AIRFLOW_VAR_<KEY>, then the database: a
        REST write is shadowed if the backend holds the key. Checked where the config API allows."""
        reach = Reach()
        options, why_not = self.airflow.secrets_config()
        if options is None:
            reach.unverified.append(
                f"could not check whether a secrets backend shadows Variable {self.key}: {why_not}; "
                "trigger --wait checks the image the task actually rendered"
            )
            return reach
        backend = (options.get("backend") or "").strip()
        if backend and backend not in ("None", "< hidden >"):
            reach = _check_backend(self.key, backend, options.get("backend_kwargs") or "", reach)
        else:
            reach.verified.append(f"no secrets backend is configured for Variables (Airflow {self.airflow.api} config API)")
        reach.unverified.append(
            f"an AIRFLOW_VAR_{self.key.upper()} environment variable on the workers would also win over the database; "
            "no API shows it (trigger --wait checks what tasks render)"
        )
        if (options.get("use_cache") or "").lower() == "true":
            ttl = options.get("cache_ttl_seconds") or "900"
            reach.delay = (
                f"Airflow's secrets cache is on ([secrets] use_cache, {ttl} s): DAG parsing may see the old value for up to {ttl} s; "
                "tasks read Variables uncached, so the dbt task renders the new image on its next run"
            )
        return reach


def _check_backend(key: str, backend: str, kwargs_text: str, reach: Reach) -> Reach:
    """Does the deployment's secrets backend hold ``key``? Amazon's two backends are checked with boto3."""
    if backend not in (SECRETS_MANAGER_BACKEND, SSM_BACKEND):
        reach.unverified.append(
            f"Airflow reads Variables from {visible(backend)[:120]} before its database; imagectl cannot look inside it, "
            f"so a value for {key} there would shadow this write (trigger --wait checks what tasks render)"
        )
        return reach
    try:
        kwargs = json.loads(kwargs_text) if kwargs_text and kwargs_text != "< hidden >" else {}
        if not isinstance(kwargs, dict):
            kwargs = {}
    except ValueError:
        kwargs = {}
    assumed = (
        "" if kwargs_text and kwargs_text != "< hidden >" else " (its backend_kwargs are hidden: the backend's default prefix is assumed)"
    )
    if backend == SECRETS_MANAGER_BACKEND:
        from imagectl.airflow.secretsmanager import SecretsManagerVariable as Store

        prefix, sep = kwargs.get("variables_prefix", "airflow/variables"), kwargs.get("sep", "/")
        store: Any = Store(key, prefix, sep, kwargs.get("region_name"))
    else:
        from imagectl.airflow.ssm import SsmVariable as Store  # type: ignore[assignment]

        prefix = kwargs.get("variables_prefix", "/airflow/variables")
        store = Store(key, prefix, "/", kwargs.get("region_name"))
    if prefix is None:
        reach.verified.append(f"the secrets backend does not look up Variables (variables_prefix is null){assumed}")
        return reach
    pattern = kwargs.get("variables_lookup_pattern")
    if isinstance(pattern, str):
        if not re.match(pattern, key, re.IGNORECASE):
            reach.verified.append(f"the secrets backend does not look {key} up (variables_lookup_pattern){assumed}")
            return reach
    try:
        found = store.read()
    except AirflowError as exc:
        reach.unverified.append(f"could not check {store.location()} for a value shadowing Variable {key}: {exc.message}{assumed}")
        return reach
    if found is not None:
        raise AirflowError(
            f"Variable {key} is shadowed: the deployment reads Variables from {store.location()} first, and it holds a value, "
            "so a REST write would never reach the dbt task; nothing was changed",
            f'set variable_store = "{"secretsmanager" if backend == SECRETS_MANAGER_BACKEND else "ssm"}" '
            "for this environment in imagectl.toml "
            "(or delete that secret)",
        )
    reach.verified.append(f"{store.location()} does not hold {key}, so it does not shadow the database{assumed}")
    return reach


def open_rest(
    base_url: str | None, environment: str, credentials: Credentials, api: str, timeouts: Timeouts, config_path: Any
) -> AirflowRest:
    if not base_url:
        raise ConfigError(
            f"environment '{environment}' has no airflow_url in {config_path}", f"add airflow_url under [environments.{environment}]"
        )
    return AirflowRest(base_url, environment, credentials.airflow(environment), api, timeouts)
