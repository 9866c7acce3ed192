"""The table of Airflow flavours: how imagectl reaches an environment's Airflow, one line per flavour.

A flavour is the way in — its transport (how a request is authenticated and carried) and its settings; the
Airflow REST calls themselves (Variables, DAG runs, task instances, configuration) are the same for every
flavour (airflow/rest.py). ``rest`` reaches the api-server directly. Adding a flavour is one module that
provides ``open(settings, context) -> Airflow`` and one line here with its settings dataclass (keys of
``[environments.NAME]``; settings.py says how they are read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from imagectl.settings import setting


def check_url(value: Any) -> str:
    """An http(s) base URL without credentials, query or fragment (logins come from the environment)."""
    if not isinstance(value, str):
        raise ValueError("must be a URL such as http://airflow.internal:8080")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("must be a URL such as http://airflow.internal:8080") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be a URL such as http://airflow.internal:8080")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials (set IMAGECTL_AIRFLOW_<ENV>_USERNAME/_PASSWORD)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return value.rstrip("/")


@dataclass(frozen=True, kw_only=True)
class RestSettings:
    airflow_url: str | None = setting(None, check=check_url)
    airflow_api: str = setting("auto", choices=("auto", "v2", "v1"))  # v2: Airflow 3, v1: Airflow 2, auto: probe

    def configured(self) -> bool:
        return self.airflow_url is not None


@dataclass(frozen=True)
class Flavour:
    name: str
    module: str  # imported only when the environment's Airflow is opened
    opener: str  # a function (settings, context) -> airflow._base.Airflow
    settings: type


FLAVOURS: dict[str, Flavour] = {
    "rest": Flavour("rest", "imagectl.airflow.rest", "open_rest", RestSettings),
}
