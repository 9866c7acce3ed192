"""The AirflowPlugin: the "Images" page in Airflow 3's UI (``pip install imagectl[airflow]`` registers it through the
``airflow.plugins`` entry point; docs/airflow-plugin.md).

The page and its data endpoints are a FastAPI app (app.py) mounted at ``/imagectl``, shown in the UI's navigation
as an external view; actions are runs of the ``imagectl_ops`` DAG (tasks.py), so Airflow's permissions decide who
may act. Airflow loads plugins in every process (scheduler, workers, DAG processor): the app is made only where it
is asked for (the api-server), so nothing else imports FastAPI or the api-server's modules. Airflow 2 has no
FastAPI apps: there the plugin registers nothing and says so once.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from imagectl import __version__

log = logging.getLogger(__name__)

ICON = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='%23495057' "
    "stroke-width='2' stroke-linecap='round' stroke-linejoin='round'><path d='M21 16V8a2 2 0 0 0-1-1.73l-7-4a2 2 0 0 0-2 0l-7 "
    "4A2 2 0 0 0 3 8v8a2 2 0 0 0 1 1.73l7 4a2 2 0 0 0 2 0l7-4A2 2 0 0 0 21 16z'/><path d='M3.3 7 12 12l8.7-5M12 22V12'/></svg>"
)


def _airflow_major() -> int:
    import airflow

    try:
        return int(str(airflow.__version__).split(".")[0])
    except ValueError:
        return 0


def _base_path() -> str:
    """Airflow's base path ([api] base_url's path; "" at the root): the page's link in the navigation is under it."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


@cache
def _app() -> Any:
    from imagectl.plugin.app import create_app

    return create_app()


class ImagectlPlugin(AirflowPlugin):
    name = "imagectl"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:
        if _airflow_major() < 3:
            log.warning(
                "imagectl %s: the Images page needs Airflow 3 (this is Airflow %s); nothing was added", __version__, _airflow_major()
            )
            return []
        from imagectl.plugin.app import PREFIX

        return [{"app": _app(), "url_prefix": PREFIX, "name": "imagectl"}]

    @property
    def external_views(self) -> list[dict[str, Any]]:
        if _airflow_major() < 3:
            return []
        return [
            {
                "name": "Images",
                "href": f"{_base_path()}/imagectl/",  # app.PREFIX (app.py is not imported outside the api-server)
                "url_route": "imagectl",
                "destination": "nav",
                "nav_top_level": True,
                "icon": ICON,
            }
        ]
