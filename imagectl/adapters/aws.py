"""Every boto3 client comes from here: standard retry mode, timeouts, and boto3's own endpoint resolution
(``AWS_ENDPOINT_URL_ECR`` / ``AWS_ENDPOINT_URL`` are honoured by botocore itself)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=60,
    user_agent_extra="imagectl",
)


def client(service: str, region: str | None) -> Any:
    return boto3.session.Session().client(service, region_name=region, config=_CONFIG)
