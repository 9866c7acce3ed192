"""Every boto3 client comes from here: standard retry mode (throttling retried with backoff, bounded), the
configured timeouts, boto3's own endpoint resolution (``AWS_ENDPOINT_URL_ECR``, ``AWS_ENDPOINT_URL_SECRETS_MANAGER``,
``AWS_ENDPOINT_URL_SSM``, ``AWS_ENDPOINT_URL_STS``, ``AWS_ENDPOINT_URL`` are honoured by botocore), and one session
per AWS identity (settings.Identity: a profile, a role to assume, or the default credential chain).

A role is assumed once per identity and process, with credentials that botocore refreshes before they expire (a
``ci --wait`` can outlast the hour an assumed role lasts); the first assumption happens here, eagerly, so that a
refused role is reported as the identity's problem and not as the first API call's.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from imagectl.adapters.http import timeout_for
from imagectl.errors import ConfigError
from imagectl.sanitize import visible
from imagectl.settings import Identity, Timeouts

_sessions: dict[tuple[Identity, tuple[str, ...]], boto3.session.Session] = {}
_lock = threading.Lock()
# What the base credentials of an assumed role come from: a cached role session is reused only while these are unchanged.
_BASE_VARIABLES = (
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
)


class IdentityError(ConfigError):
    """An identity of imagectl.toml cannot be used (its profile is missing, its role cannot be assumed)."""


def _config(timeouts: Timeouts | None) -> Config:
    connect, read = timeout_for(timeouts)
    return Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=connect, read_timeout=read, user_agent_extra="imagectl")


def _base(identity: Identity) -> boto3.session.Session:
    try:
        return boto3.session.Session(profile_name=identity.profile) if identity.profile else boto3.session.Session()
    except ProfileNotFound:
        raise IdentityError(
            f"{identity.describe()}: the AWS profile '{visible(identity.profile or '')}' is not configured on this machine",
            "add it to ~/.aws/config (or AWS_CONFIG_FILE), or change [identities] in imagectl.toml",
        ) from None


def _assumed(identity: Identity, timeouts: Timeouts | None, region: str | None) -> boto3.session.Session:
    base = _base(identity)
    # STS in the region of the client that needs the credentials (regional endpoints are AWS's recommendation),
    # else the global endpoint's region.
    sts = base.client("sts", region_name=region or base.region_name or "us-east-1", config=_config(timeouts))
    arguments: dict[str, Any] = {"RoleArn": identity.role_arn, "RoleSessionName": identity.session_name}
    if identity.external_id:
        arguments["ExternalId"] = identity.external_id

    def fetch() -> dict[str, str]:
        credentials = sts.assume_role(**arguments)["Credentials"]
        expiry = credentials["Expiration"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else str(expiry),
        }

    try:
        first = fetch()
    except NoCredentialsError:
        raise IdentityError(
            f"{identity.describe()}: no AWS credentials to assume the role with",
            "configure the credential chain (or a profile in [identities]) that may call sts:AssumeRole on it",
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise IdentityError(
            f"{identity.describe()}: the role could not be assumed: {visible(str(error.get('Code', '')))}: "
            f"{visible(str(error.get('Message', '')))[:200]}",
            "the calling identity needs sts:AssumeRole on it, and the role's trust policy must allow the caller (and the external id)",
        ) from None
    except BotoCoreError as exc:
        raise IdentityError(
            f"{identity.describe()}: assuming the role failed: {type(exc).__name__}", "check the network and the STS endpoint"
        ) from None
    credentials = RefreshableCredentials.create_from_metadata(metadata=first, refresh_using=fetch, method="sts-assume-role")
    core = botocore.session.Session()
    core._credentials = credentials  # noqa: SLF001 - botocore's documented way to give a session refreshable credentials
    return boto3.session.Session(botocore_session=core)


def session(identity: Identity | None, timeouts: Timeouts | None = None, region: str | None = None) -> boto3.session.Session:
    """The session acting as ``identity``: a role is assumed once per process (and refreshed); a profile or the
    default chain is read afresh (cheap, and it follows the environment it runs in)."""
    if identity is None:
        return boto3.session.Session()
    if not identity.role_arn:
        return _base(identity)
    key = (identity, tuple(os.environ.get(name, "") for name in _BASE_VARIABLES))
    with _lock:
        if key not in _sessions:
            _sessions[key] = _assumed(identity, timeouts, region)
        return _sessions[key]


def client(service: str, region: str | None, timeouts: Timeouts | None = None, identity: Identity | None = None) -> Any:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        if name in os.environ and not os.environ[name].strip() and not region:
            raise ConfigError(f"{name} is set but empty", "unset it, or set it to an AWS region such as eu-west-1")
    return session(identity, timeouts, region).client(service, region_name=region, config=_config(timeouts))


def account_of(identity: Identity | None, timeouts: Timeouts | None = None, region: str | None = None) -> str | None:
    """The AWS account ``identity`` acts in (STS GetCallerIdentity), or None when it cannot be told."""
    try:
        return str(client("sts", region or "us-east-1", timeouts, identity).get_caller_identity()["Account"])
    except (BotoCoreError, ClientError, KeyError):
        return None
