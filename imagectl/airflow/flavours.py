"""The table of Airflow flavours: how imagectl reaches an environment's Airflow, one line per flavour.

A flavour is the way in — its transport (how a request is authenticated and carried) and its settings; the
Airflow REST calls themselves (Variables, DAG runs, task instances, configuration) are the same for every
flavour (airflow/rest.py). ``rest`` reaches the api-server directly (a password or an API token from the
environment); ``mwaa`` reaches Amazon MWAA's Airflow through the MWAA ``InvokeRestApi`` action with an AWS identity
(airflow/mwaa.py). Adding a flavour is one module that provides ``open(settings, context) -> Airflow`` and one line
here with its settings dataclass (keys of ``[environments.NAME]``; settings.py says how they are read) and, when
its way in limits the length of a request's path, that limit (config.py and ``imagectl ci`` keep ids within it).
"""

from __future__ import annotations

import re
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


_MWAA_NAME_RE = re.compile(r"[a-zA-Z][0-9a-zA-Z_-]{0,79}")  # MWAA's EnvironmentName: 1-80 characters
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")


def check_mwaa_name(value: Any) -> str:
    if not isinstance(value, str) or not _MWAA_NAME_RE.fullmatch(value):
        raise ValueError("must be an MWAA environment name: 1-80 letters, digits, '-' or '_', starting with a letter")
    return value


def check_region(value: Any) -> str:
    if not isinstance(value, str) or not _REGION_RE.fullmatch(value):
        raise ValueError("must be an AWS region such as eu-west-1")
    return value


@dataclass(frozen=True, kw_only=True)
class MwaaSettings:
    """Amazon MWAA: every Airflow REST call goes through the MWAA ``InvokeRestApi`` action, signed as an AWS identity."""

    mwaa_environment: str = setting(required=True, check=check_mwaa_name, what="the MWAA environment's name")
    mwaa_region: str | None = setting(None, check=check_region)  # default: the AWS chain's region
    mwaa_identity: str | None = setting(None, identity=True, what="a name under [identities]")
    airflow_url: str | None = setting(None, check=check_url)  # the Airflow UI, for run links only (optional)
    airflow_api: str = setting("auto", choices=("auto", "v2", "v1"))  # v2: Airflow 3, v1: Airflow 2, auto: GET /version

    def configured(self) -> bool:
        return True


@dataclass(frozen=True)
class Flavour:
    name: str
    module: str  # imported only when the environment's Airflow is opened
    opener: str  # a function (settings, context) -> airflow._base.Airflow
    settings: type
    max_path: int | None = None  # the longest request path (under the API root) this way in can carry


MWAA_MAX_PATH = 64  # InvokeRestApi's Path: https://docs.aws.amazon.com/mwaa/latest/API/API_InvokeRestApi.html

FLAVOURS: dict[str, Flavour] = {
    "rest": Flavour("rest", "imagectl.airflow.rest", "open_rest", RestSettings),
    "mwaa": Flavour("mwaa", "imagectl.airflow.mwaa", "open_mwaa", MwaaSettings, max_path=MWAA_MAX_PATH),
}
