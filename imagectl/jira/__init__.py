"""Jira, as imagectl reports to it (an outside system: knows nothing of registries, history or Airflow).

``open_site(config, credentials, timeouts)`` gives the site's client: Jira Cloud (the Deployments API, OAuth 2.0
client credentials) or Jira Data Center / Server (remote issue links and a personal access token). jira_report.py
decides what to report; these modules only speak the APIs.
"""

from __future__ import annotations

from imagectl.credentials import Credentials
from imagectl.jira._base import Deployment, JiraSite
from imagectl.settings import JiraConfig, Timeouts

__all__ = ["Deployment", "JiraSite", "open_site"]


def open_site(config: JiraConfig, credentials: Credentials, timeouts: Timeouts | None = None) -> JiraSite:
    if config.kind == "datacenter":
        from imagectl.jira.datacenter import DataCenterJira

        return DataCenterJira(config, credentials, timeouts)
    from imagectl.jira.cloud import CloudJira

    return CloudJira(config, credentials, timeouts)
