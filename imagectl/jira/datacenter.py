"""Jira Data Center / Server: no Deployments API, so each deployment becomes a remote issue link on each of its
issues, and the gate reads the issues' statuses — both with a personal access token (``Authorization: Bearer``).

``POST {url}/rest/api/2/issue/{key}/remotelink`` creates the link, or updates the one with the same ``globalId``
(https://docs.atlassian.com/software/jira/docs/api/REST/9.12.0/#api/2/issue-createOrUpdateRemoteIssueLink): the
global id is the deployment's identity (pipeline, environment, revision), so a re-run or a verification's verdict
updates the same link instead of adding one.
"""

from __future__ import annotations

from typing import Any

import requests

from imagectl.adapters import http
from imagectl.credentials import Credentials
from imagectl.errors import JiraError
from imagectl.jira._base import Deployment, JiraSite
from imagectl.jira.cloud import _errors, _status
from imagectl.settings import JiraConfig, Timeouts


def remote_link(d: Deployment) -> dict[str, Any]:
    return {
        "globalId": f"imagectl:{d.key()}",
        "application": {"type": "io.imagectl", "name": "imagectl"},
        "relationship": f"deployed to {d.environment_name}"[:255],
        "object": {
            "url": d.url[:2000],
            "title": d.display_name[:255],
            "summary": f"{d.state}: {d.description}"[:255],
            "status": {"resolved": d.state in ("successful", "rolled_back", "failed", "cancelled")},
        },
    }


class DataCenterJira(JiraSite):
    kind = "datacenter"

    def __init__(self, config: JiraConfig, credentials: Credentials, timeouts: Timeouts | None = None) -> None:
        self.config, self.credentials = config, credentials
        base = timeouts or Timeouts()
        self.timeouts = Timeouts(connect=min(base.connect, 5.0), read=min(base.read, 15.0), request=min(base.request, 30.0))
        self.http = http.session(retries=2, backoff=0.5)

    def _headers(self) -> dict[str, str]:
        token = self.credentials.jira("TOKEN")
        if not token:
            raise JiraError("no Jira personal access token", "set IMAGECTL_JIRA_TOKEN (a user who can link and browse the issues)")
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return http.send(self.http, method, url, timeouts=self.timeouts, what=what, **kwargs)
        except requests.RequestException as exc:
            raise JiraError(f"Jira: {what}: {http.explain(exc, self.timeouts)}") from None

    def report(self, deployments: list[Deployment]) -> list[str]:
        headers, warnings = self._headers(), []
        for d in deployments:
            for key in d.issue_keys:
                url = f"{self.config.url}/rest/api/2/issue/{key}/remotelink"
                response = self._send("POST", url, f"linking {key}", json=remote_link(d), headers=headers)
                if response.status_code == 404:
                    warnings.append(f"Jira does not know the issue {key}")
                elif response.status_code in (401, 403):
                    raise JiraError(f"Jira refused the token (HTTP {response.status_code})", "check IMAGECTL_JIRA_TOKEN")
                elif response.status_code not in (200, 201):
                    warnings.append(f"Jira did not link {key} (HTTP {response.status_code}: {_errors(response)})")
        return warnings

    def statuses(self, keys: list[str]) -> dict[str, str | None]:
        headers = self._headers()
        return {
            key: _status(
                self._send(
                    "GET", f"{self.config.url}/rest/api/2/issue/{key}", f"reading {key}", params={"fields": "status"}, headers=headers
                ),
                key,
            )
            for key in keys
        }
