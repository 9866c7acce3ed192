"""Jira Cloud: the Deployments API with OAuth 2.0 client credentials, and the REST API for the gate.

- Token: ``POST {api_url}/oauth/token`` with ``grant_type=client_credentials``, the client id and secret an admin
  created under *Settings → Apps → OAuth credentials* with the Deployments permission, and
  ``audience=api.atlassian.com`` (https://developer.atlassian.com/cloud/jira/software/integrate-jsw-cloud-with-onpremises-tools/).
- Deployments: ``POST {api_url}/jira/deployments/0.1/cloud/{cloud_id}/bulk`` with ``{"deployments": [...]}``;
  Jira keys a deployment by pipeline id, environment id and ``deploymentSequenceNumber`` and replaces stored data
  when the ``updateSequenceNumber`` is higher; the answer (202) lists accepted and rejected deployments and unknown
  issue keys (https://developer.atlassian.com/cloud/jira/software/rest/api-group-deployments/).
- The gate reads ``GET {url}/rest/api/3/issue/{key}?fields=status`` on the site with a user's API token (Basic);
  the OAuth credentials above only reach the DevOps APIs.
"""

from __future__ import annotations

from typing import Any

import requests

from imagectl.adapters import http
from imagectl.credentials import Credentials
from imagectl.errors import JiraError
from imagectl.jira._base import Deployment, JiraSite
from imagectl.sanitize import visible
from imagectl.settings import JiraConfig, Timeouts

MAX_KEYS = 500  # issue keys per deployment, counted across its associations (the Deployments API's limit)


def deployment_json(d: Deployment) -> dict[str, Any]:
    return {
        "schemaVersion": "1.0",
        "deploymentSequenceNumber": d.sequence,
        "updateSequenceNumber": d.update_sequence,
        "associations": [{"associationType": "issueIdOrKeys", "values": list(d.issue_keys[:MAX_KEYS])}],
        "displayName": d.display_name[:255],
        "url": d.url[:2000],
        "description": d.description[:255],
        "lastUpdated": d.last_updated,
        "label": d.label[:255],
        "state": d.state,
        "pipeline": {"id": d.pipeline_id[:255], "displayName": d.pipeline_name[:255], "url": d.pipeline_url[:2000]},
        "environment": {"id": d.environment_id[:255], "displayName": d.environment_name[:255], "type": d.environment_type},
    }


class CloudJira(JiraSite):
    kind = "cloud"

    def __init__(self, config: JiraConfig, credentials: Credentials, timeouts: Timeouts | None = None) -> None:
        self.config, self.credentials = config, credentials
        base = timeouts or Timeouts()
        self.timeouts = Timeouts(connect=min(base.connect, 5.0), read=min(base.read, 15.0), request=min(base.request, 30.0))
        self.http = http.session(retries=2, backoff=0.5)
        self._token: str | None = None

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return http.send(self.http, method, url, timeouts=self.timeouts, what=what, **kwargs)
        except requests.RequestException as exc:
            raise JiraError(f"Jira Cloud: {what}: {http.explain(exc, self.timeouts)}") from None

    def _login(self) -> str:
        client_id, secret = self.credentials.jira("CLIENT_ID"), self.credentials.jira("CLIENT_SECRET")
        if not client_id or not secret:
            raise JiraError(
                "no Jira Cloud OAuth credentials",
                "set IMAGECTL_JIRA_CLIENT_ID and IMAGECTL_JIRA_CLIENT_SECRET (Settings → Apps → OAuth credentials)",
            )
        body = {"audience": "api.atlassian.com", "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        response = self._send("POST", f"{self.config.api_url}/oauth/token", "getting a token", json=body)
        token = (http.json_body(response) or {}).get("access_token") if response.status_code == 200 else None
        if not isinstance(token, str) or not token:
            raise JiraError(
                f"Jira Cloud refused the OAuth credentials (HTTP {response.status_code})",
                "check IMAGECTL_JIRA_CLIENT_ID / IMAGECTL_JIRA_CLIENT_SECRET and that they have the Deployments permission",
            )
        return token

    def report(self, deployments: list[Deployment]) -> list[str]:
        url = f"{self.config.api_url}/jira/deployments/0.1/cloud/{self.config.cloud_id}/bulk"
        body = {"deployments": [deployment_json(d) for d in deployments]}
        for attempt in range(2):
            if self._token is None:
                self._token = self._login()
            response = self._send("POST", url, "sending deployments", json=body, headers={"Authorization": f"Bearer {self._token}"})
            if response.status_code in (401, 403) and attempt == 0:
                self._token = None  # expired: a new token, once
                continue
            break
        if response.status_code == 429:
            raise JiraError(f"Jira Cloud is rate-limiting (HTTP 429, Retry-After {visible(response.headers.get('Retry-After', '?'))[:20]})")
        if response.status_code not in (200, 202):
            raise JiraError(f"Jira Cloud refused the deployments (HTTP {response.status_code}): {_errors(response)}")
        answer = http.json_body(response) or {}
        warnings = []
        for rejected in answer.get("rejectedDeployments") or []:
            messages = "; ".join(str(e.get("message", ""))[:200] for e in (rejected.get("errors") or []) if isinstance(e, dict))
            warnings.append(f"Jira rejected deployment {visible(str(rejected.get('key', '')))[:200]}: {visible(messages)}")
        unknown = [str(k) for k in answer.get("unknownIssueKeys") or []][:20]
        if unknown:
            warnings.append(f"Jira does not know the issue keys {visible(', '.join(unknown))}")
        return warnings

    def statuses(self, keys: list[str]) -> dict[str, str | None]:
        user, token = self.credentials.jira("USER"), self.credentials.jira("API_TOKEN")
        if not user or not token:
            raise JiraError(
                "no Jira Cloud API token for the gate",
                "set IMAGECTL_JIRA_USER and IMAGECTL_JIRA_API_TOKEN (a user who can browse the issues)",
            )
        found: dict[str, str | None] = {}
        for key in keys:
            response = self._send(
                "GET", f"{self.config.url}/rest/api/3/issue/{key}", f"reading {key}", params={"fields": "status"}, auth=(user, token)
            )
            found[key] = _status(response, key)
        return found


def _status(response: requests.Response, key: str) -> str | None:
    if response.status_code == 404:
        return None
    if response.status_code in (401, 403):
        raise JiraError(f"Jira refused to show {key} (HTTP {response.status_code})", "check the gate's Jira credentials")
    if response.status_code != 200:
        raise JiraError(f"Jira answered HTTP {response.status_code} for {key}: {_errors(response)}")
    body = http.json_body(response)
    status = ((body or {}).get("fields") or {}).get("status") if isinstance(body, dict) else None
    name = status.get("name") if isinstance(status, dict) else None
    return visible(name)[:100] if isinstance(name, str) else None


def _errors(response: requests.Response) -> str:
    body = http.json_body(response)
    if isinstance(body, dict):
        messages = body.get("errorMessages") or body.get("errors") or body.get("message") or ""
        return visible(str(messages))[:300]
    return "no JSON answer"
