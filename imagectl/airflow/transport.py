"""How a request reaches an Airflow REST API, apart from what it asks (airflow/rest.py makes the calls).

A ``Transport`` carries one REST call (method, path under ``/api/vN``, query, JSON body) and answers its HTTP status
and JSON body; it owns authentication and what a refusal means. Two reach the api-server directly: Airflow 3
(``/api/v2``) or Airflow 2 (``/api/v1``):

- ``PasswordTransport``: a username and password (Airflow 3: a JWT from ``POST /auth/token``, renewed once when
  refused; Airflow 2: basic auth, which needs ``[api] auth_backends`` to include
  ``airflow.api.auth.backend.basic_auth`` — its default is session only, and a stock Airflow 2.11 then answers 403
  to every password, as it does to a wrong one and to a missing role, so its refusals name all three);
- ``TokenTransport``: an API token from the environment (deployments behind SSO), sent as a bearer token; a
  refused token cannot be renewed here, so a 401 says it expired or was refused.

MWAA's transport (airflow/mwaa.py) reaches the API through AWS instead. Every request has the command's deadline
and bounded retries (adapters/http.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import requests

from imagectl.adapters import http
from imagectl.credentials import Credentials, Login, Token
from imagectl.errors import AirflowError
from imagectl.sanitize import visible
from imagectl.settings import Timeouts


class Denied(AirflowError):
    """Airflow answered 403 to a call: the caller is known (or, on Airflow 2, may be) but may not make it."""


@dataclass
class Answer:
    """An Airflow API answer: the HTTP status and the JSON body (None when the body is not JSON)."""

    status: int
    body: Any


class Transport(ABC):
    """One Airflow REST API, reached one way."""

    base_url: str  # where people open the Airflow UI (run links)
    environment: str
    max_path: int | None = None  # the longest path (under the API root) the transport can carry; None: no limit
    links: bool = True  # base_url opens the Airflow UI, so run links can be made from it

    @property
    def where(self) -> str:
        """The Airflow, for messages: 'Airflow at http://…', 'Airflow of MWAA environment prd (eu-west-1)'."""
        return f"Airflow at {self.base_url}"

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


class ApiServerTransport(Transport):
    """The api-server itself, over HTTP; subclasses say how a request is authenticated and what a refusal means."""

    def __init__(self, base_url: str, environment: str, api: str = "auto", timeouts: Timeouts | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.environment = environment
        self.timeouts = timeouts or Timeouts()
        self.http = http.session(retries=3, backoff=0.5)
        self._api = None if api == "auto" else api

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

    def _authorized(self, method: str, url: str, what: str, kwargs: dict[str, Any]) -> requests.Response:
        """Send with this transport's credentials (and renew them once if it can)."""
        raise NotImplementedError

    def _refused(self, response: requests.Response, what: str) -> AirflowError:
        """The error for a 401: the credentials were not accepted."""
        raise NotImplementedError

    def _denied(self, response: requests.Response, what: str) -> Denied:
        """The error for a 403: the credentials were accepted, the role does not allow ``what``."""
        raise NotImplementedError

    def call(self, method: str, path: str, what: str, *, params: Any = None, body: Any = None) -> Answer:
        url = f"/api/{self.api}{path}"
        kwargs: dict[str, Any] = {"params": params, "headers": {"Accept": "application/json"}}
        if body is not None:
            kwargs["json"] = body
        response = self._authorized(method, url, what, kwargs)
        if response.status_code == 401:
            raise self._refused(response, what)
        if response.status_code == 403:
            raise self._denied(response, what)
        if response.status_code >= 500:
            raise AirflowError(f"Airflow answered HTTP {response.status_code} to {what}", "check the Airflow api-server's logs")
        return Answer(response.status_code, http.json_body(response))


def needed_role(what: str) -> str:
    return "op (or admin)" if "Variable" in what or "configuration" in what else "user"


AUTH_BACKENDS_HINT = (
    "Airflow 2 accepts passwords on its REST API only with [api] auth_backends including "
    "airflow.api.auth.backend.basic_auth (its default is session only, and then it refuses every password)"
)


class PasswordTransport(ApiServerTransport):
    """The api-server with a username and password from the environment (credentials.py)."""

    def __init__(self, base_url: str, environment: str, login: Login, api: str = "auto", timeouts: Timeouts | None = None) -> None:
        super().__init__(base_url, environment, api, timeouts)
        self._token: str | None = None
        self._login_data = login

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

    def _authorized(self, method: str, url: str, what: str, kwargs: dict[str, Any]) -> requests.Response:
        login = self._login_data
        if self.api == "v1":
            return self._send(method, url, what, auth=(login.username, login.password), **kwargs)
        if self._token is None:
            self._token = self._login()
        kwargs["headers"]["Authorization"] = f"Bearer {self._token}"
        response = self._send(method, url, what, **kwargs)
        if response.status_code in (401, 403):  # an expired token (401; 403 on older Airflow 3): log in again, once
            self._token = self._login()
            kwargs["headers"]["Authorization"] = f"Bearer {self._token}"
            response = self._send(method, url, what, **kwargs)
        return response

    def _refused(self, response: requests.Response, what: str) -> AirflowError:
        hint = "check the Airflow credentials in the environment"
        if self.api == "v1":
            hint += "; " + AUTH_BACKENDS_HINT
        return AirflowError(f"Airflow rejected user '{visible(self._login_data.username)}' for {what}", hint)

    def _denied(self, response: requests.Response, what: str) -> Denied:
        user = visible(self._login_data.username)
        if self.api == "v1":  # Airflow 2 answers 403 alike to a wrong password, a missing auth backend and a missing role
            return Denied(
                f"Airflow 2 at {self.base_url} refused user '{user}' for {what} (HTTP 403)",
                f"{AUTH_BACKENDS_HINT}; otherwise check the password, and that the user has role {needed_role(what)}",
            )
        return Denied(f"Airflow user '{user}' may not {what}", f"the Airflow user needs role {needed_role(what)}")


class TokenTransport(ApiServerTransport):
    """The api-server with an API token from the environment (``IMAGECTL_AIRFLOW_<ENV>_TOKEN``, SSO deployments)."""

    def __init__(self, base_url: str, environment: str, token: Token, api: str = "auto", timeouts: Timeouts | None = None) -> None:
        super().__init__(base_url, environment, api, timeouts)
        self._token = token

    def _authorized(self, method: str, url: str, what: str, kwargs: dict[str, Any]) -> requests.Response:
        kwargs["headers"]["Authorization"] = f"Bearer {self._token.value}"
        return self._send(method, url, what, **kwargs)

    def _refused(self, response: requests.Response, what: str) -> AirflowError:
        hint = f"get a new API token for this Airflow and set {self._token.source}"
        if self.api == "v1":
            hint += (
                "; Airflow 2 reads a bearer token only with an [api] auth_backends entry that accepts it (your SSO's "
                "backend; its default is session only)"
            )
        return AirflowError(
            f"Airflow at {self.base_url} refused the token from {self._token.source} for {what} (HTTP 401): it has expired or is not valid",
            hint,
        )

    def _denied(self, response: requests.Response, what: str) -> Denied:
        body = http.json_body(response)
        detail = str(body.get("detail") or "") if isinstance(body, dict) else ""
        if self.api == "v1":  # Airflow 2 answers 403 alike to a token it cannot read and to a missing role
            return Denied(
                f"Airflow 2 at {self.base_url} refused the token from {self._token.source} for {what} (HTTP 403)",
                "Airflow 2 reads a bearer token only with an [api] auth_backends entry that accepts it (your SSO's backend; its "
                f"default is session only); otherwise get a new token, and check that its user has role {needed_role(what)}",
            )
        if "token" in detail.lower():  # Airflow 3 answers 403 "Invalid JWT token" to a token it cannot read
            return Denied(
                f"Airflow at {self.base_url} refused the token from {self._token.source} for {what} (HTTP 403: {visible(detail)[:80]})",
                f"get a new API token for this Airflow and set {self._token.source}",
            )
        return Denied(
            f"the Airflow user of the token from {self._token.source} may not {what}",
            f"the token's Airflow user needs role {needed_role(what)}",
        )
