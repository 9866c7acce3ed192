"""Every boto3 client comes from here: standard retry mode (throttling retried with backoff, bounded), the
configured timeouts, and boto3's own credential chain and endpoint resolution (``AWS_ENDPOINT_URL_ECR``,
``AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``AWS_ENDPOINT_URL_SSM``, ``AWS_ENDPOINT_URL`` are honoured by botocore)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from imagectl.adapters.http import timeout_for
from imagectl.settings import Timeouts


def client(service: str, region: str | None, timeouts: Timeouts | None = None) -> Any:
    connect, read = timeout_for(timeouts)
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=connect,
        read_timeout=read,
        user_agent_extra="imagectl",
    )
    return boto3.session.Session().client(service, region_name=region, config=config)
