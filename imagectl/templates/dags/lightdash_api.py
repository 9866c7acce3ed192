"""Lightdash's refresh call, built from an Airflow Connection's fields (pure: no Airflow import, unit-tested)."""

from __future__ import annotations

DEFAULT_PATH = "/api/v1/projects/{project_uuid}/refresh"


def refresh_request(host: str, api_key: str, extra: dict) -> tuple[str, dict[str, str]]:
    """The URL and headers of Lightdash's "refresh dbt project" call."""
    project = extra.get("project_uuid")
    if not host or not api_key or not project:
        raise ValueError("the Lightdash connection needs host, password (API key) and extra.project_uuid")
    base = host if "://" in host else f"https://{host}"
    path = extra.get("refresh_path", DEFAULT_PATH).format(project_uuid=project)
    return base.rstrip("/") + path, {"Authorization": f"ApiKey {api_key}", "Content-Type": "application/json"}
