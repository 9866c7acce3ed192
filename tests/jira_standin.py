"""A stand-in for the Jira APIs imagectl calls, on 127.0.0.1, enforcing what Atlassian documents (each rule cites
its page). What it does not prove: Jira's asynchronous processing (accepted data shows at once here), the real
OAuth token's scopes and lifetime beyond "expires", issue permissions beyond "exists or not", Jira's UI.

Jira Cloud
- ``POST /oauth/token``: the client-credentials grant for on-premises integrations: JSON body with
  ``audience = api.atlassian.com``, ``grant_type = client_credentials``, ``client_id``, ``client_secret``; answers
  ``access_token``, ``expires_in``, ``token_type``
  (https://developer.atlassian.com/cloud/jira/software/integrate-jsw-cloud-with-onpremises-tools/).
- ``POST /jira/deployments/0.1/cloud/{cloudId}/bulk`` (https://developer.atlassian.com/cloud/jira/software/rest/api-group-deployments/):
  a Bearer token; the body's ``deployments`` each with the required fields and types below; ``state`` and
  ``environment.type`` from their enums; strings within their documented lengths; at most 500 associated values
  per deployment; stored by (pipeline id, environment id, deploymentSequenceNumber), replaced only by a higher
  ``updateSequenceNumber`` (a lower one is not a failure); answers 202 with ``acceptedDeployments``,
  ``rejectedDeployments`` (a deployment whose only issue keys are unknown) and ``unknownIssueKeys``; 400 with
  ``errorMessages`` for a body that breaks the schema; 401 without a valid token; 429 with ``Retry-After`` when
  rate limited (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/).
- ``GET /rest/api/3/issue/{key}?fields=status`` with Basic (email, API token): the issue's ``fields.status.name``;
  404 for an issue that does not exist (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/).

Jira Data Center
- ``POST /rest/api/2/issue/{key}/remotelink``: creates the link, or updates the one with the same ``globalId``
  (201 created, 200 updated), ``object.url`` and ``object.title`` required; ``GET /rest/api/2/issue/{key}``; a
  personal access token as ``Authorization: Bearer``
  (https://docs.atlassian.com/software/jira/docs/api/REST/9.12.0/#api/2/issue-createOrUpdateRemoteIssueLink,
  https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATES = ("unknown", "pending", "in_progress", "cancelled", "failed", "rolled_back", "successful")
ENVIRONMENT_TYPES = ("unmapped", "development", "testing", "staging", "production")
ASSOCIATION_TYPES = ("issueKeys", "issueIdOrKeys", "serviceIdOrKeys", "commit", "repository")
MAX_ASSOCIATED = 500


class Invalid(Exception):
    pass


def _string(doc: dict[str, Any], key: str, limit: int, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise Invalid(f"{where}.{key} is required and must be a string")
    if len(value) > limit:
        raise Invalid(f"{where}.{key} must be at most {limit} characters")
    return value


def _integer(doc: dict[str, Any], key: str, where: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(f"{where}.{key} is required and must be a non-negative integer (int64)")
    return value


def validate_deployment(d: Any, i: int) -> dict[str, Any]:
    """One deployment against the documented schema; raises Invalid naming the field."""
    where = f"deployments[{i}]"
    if not isinstance(d, dict):
        raise Invalid(f"{where} must be an object")
    _integer(d, "deploymentSequenceNumber", where)
    _integer(d, "updateSequenceNumber", where)
    _string(d, "displayName", 255, where)
    _string(d, "url", 2000, where)
    _string(d, "description", 255, where)
    last = _string(d, "lastUpdated", 64, where)
    try:
        datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{where}.lastUpdated must be an ISO 8601 date-time") from None
    if "label" in d:
        _string(d, "label", 255, where)
    if d.get("state") not in STATES:
        raise Invalid(f"{where}.state must be one of {', '.join(STATES)}")
    pipeline, environment = d.get("pipeline"), d.get("environment")
    if not isinstance(pipeline, dict) or not isinstance(environment, dict):
        raise Invalid(f"{where}.pipeline and .environment are required objects")
    _string(pipeline, "id", 255, where + ".pipeline")
    _string(pipeline, "displayName", 255, where + ".pipeline")
    url = _string(pipeline, "url", 2000, where + ".pipeline")
    if not re.match(r"https?://", url):
        raise Invalid(f"{where}.pipeline.url must be a URL")
    _string(environment, "id", 255, where + ".environment")
    _string(environment, "displayName", 255, where + ".environment")
    if environment.get("type") not in ENVIRONMENT_TYPES:
        raise Invalid(f"{where}.environment.type must be one of {', '.join(ENVIRONMENT_TYPES)}")
    associations = d.get("associations")
    if not isinstance(associations, list) or not associations:
        raise Invalid(f"{where}.associations must list at least one association")
    total = 0
    for a in associations:
        if not isinstance(a, dict) or a.get("associationType") not in ASSOCIATION_TYPES or not isinstance(a.get("values"), list):
            raise Invalid(f"{where}.associations: each needs an associationType of {', '.join(ASSOCIATION_TYPES)} and values")
        total += len(a["values"])
    if total > MAX_ASSOCIATED:
        raise Invalid(f"{where}: at most {MAX_ASSOCIATED} associated values in all")
    return d


@dataclass
class JiraStandIn:
    client_id: str = "imagectl-client"
    client_secret: str = field(default_factory=lambda: "CANARY-jira-secret-" + secrets.token_hex(4))
    cloud_id: str = "1324a887-45db-1bf4-1e99-ef0ff456d421"
    user: str = "bot@example.com"
    api_token: str = field(default_factory=lambda: "CANARY-jira-api-" + secrets.token_hex(4))
    pat: str = field(default_factory=lambda: "CANARY-jira-pat-" + secrets.token_hex(4))
    issues: dict[str, str] = field(default_factory=dict)  # key → status name
    throttle: int = 0  # answer this many deployment submissions with 429 first
    down: bool = False  # answer every request 503
    deployments: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    submissions: list[dict[str, Any]] = field(default_factory=list)  # every accepted deployment, in order
    links: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (issue, globalId) → link
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                standin.requests.append((self.command, self.path))
                status, headers, answer = standin.answer(self.command, self.path, dict(self.headers), body)
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self, kind: str = "cloud") -> dict[str, str]:
        if kind == "datacenter":
            return {"IMAGECTL_JIRA_TOKEN": self.pat}
        return {
            "IMAGECTL_JIRA_CLIENT_ID": self.client_id,
            "IMAGECTL_JIRA_CLIENT_SECRET": self.client_secret,
            "IMAGECTL_JIRA_USER": self.user,
            "IMAGECTL_JIRA_API_TOKEN": self.api_token,
        }

    def stored(self, environment: str) -> dict[int, dict[str, Any]]:
        """The deployments Jira holds for an environment: sequence number → the latest accepted data."""
        return {seq: d for (_, env, seq), d in self.deployments.items() if env == environment}

    # -- routing -------------------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        if self.down:
            return 503, {}, {"errorMessages": ["Service unavailable"]}
        url = urlsplit(path)
        route = url.path
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            return 400, {}, {"errorMessages": ["The request body is not JSON"]}
        if method == "POST" and route == "/oauth/token":
            return self._token(doc)
        m = re.fullmatch(r"/jira/deployments/0\.1/cloud/([^/]+)/bulk", route)
        if method == "POST" and m:
            return self._bulk(m.group(1), headers, doc)
        m = re.fullmatch(r"/rest/api/(2|3)/issue/([A-Z][A-Z0-9_]+-[0-9]+)", route)
        if method == "GET" and m:
            return self._issue(m.group(1), m.group(2), headers, parse_qs(url.query))
        m = re.fullmatch(r"/rest/api/2/issue/([A-Z][A-Z0-9_]+-[0-9]+)/remotelink", route)
        if method == "POST" and m:
            return self._remote_link(m.group(1), headers, doc)
        return 404, {}, {"errorMessages": [f"no route {method} {route}"]}

    def _token(self, doc: Any) -> tuple[int, dict[str, str], Any]:
        if not isinstance(doc, dict) or doc.get("grant_type") != "client_credentials" or doc.get("audience") != "api.atlassian.com":
            why = "grant_type client_credentials and audience api.atlassian.com"
            return 400, {}, {"error": "invalid_request", "error_description": why}
        if doc.get("client_id") != self.client_id or doc.get("client_secret") != self.client_secret:
            return 401, {}, {"error": "access_denied", "error_description": "Unauthorized"}
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        return 200, {}, {"access_token": token, "expires_in": 900, "token_type": "Bearer", "scope": "manage:jira-data-provider"}

    def _bulk(self, cloud_id: str, headers: dict[str, str], doc: Any) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
            return 401, {}, {"code": 401, "message": "Unauthorized"}
        if cloud_id != self.cloud_id:
            return 404, {}, {"errorMessages": ["No site with this cloud id"]}
        if self.throttle > 0:
            self.throttle -= 1
            return 429, {"Retry-After": "1"}, {"errorMessages": ["Rate limit exceeded"]}
        if not isinstance(doc, dict) or not isinstance(doc.get("deployments"), list) or not doc["deployments"]:
            return 400, {}, {"errorMessages": ["deployments must be a non-empty list"]}
        try:
            deployments = [validate_deployment(d, i) for i, d in enumerate(doc["deployments"])]
        except Invalid as exc:
            return 400, {}, {"errorMessages": [str(exc)]}
        accepted, rejected, unknown = [], [], []
        with self._lock:
            for d in deployments:
                key = {
                    "pipelineId": d["pipeline"]["id"],
                    "environmentId": d["environment"]["id"],
                    "deploymentSequenceNumber": d["deploymentSequenceNumber"],
                }
                keys = [v for a in d["associations"] if a["associationType"] in ("issueKeys", "issueIdOrKeys") for v in a["values"]]
                missing = [k for k in keys if k not in self.issues]
                unknown += missing
                if keys and len(missing) == len(keys):
                    rejected.append({"key": key, "errors": [{"message": "All associated issue keys are unknown"}]})
                    continue
                accepted.append(key)
                slot = (key["pipelineId"], key["environmentId"], key["deploymentSequenceNumber"])
                held = self.deployments.get(slot)
                if held is None or held["updateSequenceNumber"] < d["updateSequenceNumber"]:
                    self.deployments[slot] = d
                self.submissions.append(d)
        return 202, {}, {"acceptedDeployments": accepted, "rejectedDeployments": rejected, "unknownIssueKeys": sorted(set(unknown))}

    def _authorised(self, api: str, headers: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:] == self.pat
        if auth.startswith("Basic "):
            user, _, token = base64.b64decode(auth[6:]).decode(errors="replace").partition(":")
            return api == "3" and (user, token) == (self.user, self.api_token)
        return False

    def _issue(self, api: str, key: str, headers: dict[str, str], query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        if not self._authorised(api, headers):
            return 401, {}, {"errorMessages": ["You are not authenticated. Authentication required to perform this operation."]}
        if key not in self.issues:
            return 404, {}, {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
        return 200, {}, {"key": key, "fields": {"status": {"name": self.issues[key]}}}

    def _remote_link(self, key: str, headers: dict[str, str], doc: Any) -> tuple[int, dict[str, str], Any]:
        if not self._authorised("2", headers):
            return 401, {}, {"errorMessages": ["You are not authenticated."]}
        if key not in self.issues:
            return 404, {}, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}
        obj = doc.get("object") if isinstance(doc, dict) else None
        if not isinstance(obj, dict) or not obj.get("url") or not obj.get("title"):
            return 400, {}, {"errorMessages": [], "errors": {"object": "object.url and object.title are required"}}
        global_id = doc.get("globalId") or secrets.token_hex(8)
        existed = (key, global_id) in self.links
        self.links[(key, global_id)] = doc
        number = len(self.links)
        return (200 if existed else 201), {}, {"id": number, "self": f"{self.url}/rest/api/2/issue/{key}/remotelink/{number}"}
