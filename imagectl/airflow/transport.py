"""How a request reaches an Airflow REST API, apart from what it asks (airflow/rest.py makes the calls).

A ``Transport`` carries one REST call (method, path under ``/api/vN``, query, JSON body) and answers its HTTP status
and JSON body; it owns authentication and what a refusal means. ``PasswordTransport`` talks to the api-server
directly: Airflow 3 (``/api/v2``, a JWT from ``POST /auth/token``) or Airflow 2 (``/api/v1``, basic auth; Airflow 2
needs ``[api] auth_backends`` to include ``airflow.api.auth.backend.basic_auth``, its default is session only).
Every request has the command's deadline and bounded retries (adapters/http.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import requests

from imagectl.adapters import http
from imagectl.credentials import Credentials, Login
from imagectl.errors import AirflowError
from imagectl.sanitize import visible
from imagectl.settings import Timeouts


@dataclass
class Answer:
    """An Airflow API answer: the HTTP status and the JSON body (None when the body is not JSON)."""

    status: int
    body: Any


class Transport(ABC):
    """One Airflow REST API, reached one way."""

    base_url: str  # where people open the Airflow UI (run links)
    environment: str

    @property
    @abstractmethod
    def api(self) -> str:
        """ "v2" (Airflow 3) or "v1" (Airflow 2)."""

    @abstractmethod
    def call(self, method: str, path: str, what: str, *, params: Any = None, body: Any = None) -> Answer:
        """``path`` is under the API root (``/variables/x``); refusals of the login raise AirflowError here."""

    def describe(self) -> str:
        return f"REST /api/{self.api}"


def not_reached(environment: str, base_url: str, cause: str, what: str, method: str, timed_out: bool) -> AirflowError:
    """The one message for a request that got no usable answer, saying whether a write may have happened."""
    writing = method in ("POST", "PATCH", "PUT", "DELETE")
    if writing and timed_out:
        known = "the request was sent, so Airflow may or may not have made the change"
    elif writing:
        known = "the change was not made"
    else:
        known = "nothing was changed in Airflow"
    return AirflowError(
        f"Airflow for '{environment}' at {base_url}: {cause} ({what}); {known}",
        "check airflow_url in imagectl.toml and that the Airflow api-server is up",
    )


class PasswordTransport(Transport):
    """The api-server itself, with a username and password from the environment (credentials.py)."""

    def __init__(self, base_url: str, environment: str, login: Login, api: str = "auto", timeouts: Timeouts | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.environment = environment
        self.timeouts = timeouts or Timeouts()
        self.http = http.session(retries=3, backoff=0.5)
        self._api = None if api == "auto" else api
        self._token: str | None = None
        self._login_data = login

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return http.send(self.http, method, self.base_url + path, timeouts=self.timeouts, what=what, **kwargs)
        except requests.RequestException as exc:
            raise not_reached(
                self.environment, self.base_url, http.explain(exc, self.timeouts), what, method, http.is_read_timeout(exc)
            ) from None

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
        body = http.json_body(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AirflowError(f"Airflow at {self.base_url} answered the login without a token", "check the Airflow version (airflow_api)")
        return token

    def call(self, method: str, path: str, what: str, *, params: Any = None, body: Any = None) -> Answer:
        login = self._login_data
        url = f"/api/{self.api}{path}"
        kwargs: dict[str, Any] = {"params": params, "headers": {"Accept": "application/json"}}
        if body is not None:
            kwargs["json"] = body
        if self.api == "v1":
            response = self._send(method, url, what, auth=(login.username, login.password), **kwargs)
        else:
            if self._token is None:
                self._token = self._login()
            kwargs["headers"]["Authorization"] = f"Bearer {self._token}"
            response = self._send(method, url, what, **kwargs)
            if response.status_code in (401, 403):  # an expired token (Airflow 3 answers 403 to one): log in again, once
                self._token = self._login()
                kwargs["headers"]["Authorization"] = f"Bearer {self._token}"
                response = self._send(method, url, what, **kwargs)
        user = visible(login.username)
        if response.status_code == 401:
            hint = "check the Airflow credentials in the environment"
            if self.api == "v1":
                hint += (
                    "; Airflow 2 accepts passwords on its REST API only with [api] auth_backends including "
                    "airflow.api.auth.backend.basic_auth (its default is session)"
                )
            raise AirflowError(f"Airflow rejected user '{user}' for {what}", hint)
        if response.status_code == 403:
            role = "op (or admin)" if "Variable" in what or "configuration" in what else "user"
            raise AirflowError(f"Airflow user '{user}' may not {what}", f"the Airflow user needs role {role}")
        if response.status_code >= 500:
            raise AirflowError(f"Airflow answered HTTP {response.status_code} to {what}", "check the Airflow api-server's logs")
        return Answer(response.status_code, http.json_body(response))
