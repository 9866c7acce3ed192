"""The table of registry kinds: one line per kind, used both to validate ``imagectl.toml`` and to open a registry.

Adding a kind (Google Artifact Registry, Harbor with its own API, …) is one module with a class implementing
registries/_base.py's ``Registry`` and one line here naming it, its settings dataclass (settings.py says how a
settings dataclass is read from the ``[registries.NAME]`` table) and, when it needs one, a check of the whole
table. Nothing outside registries/ looks at the kind: callers ask a registry what it can guarantee
(``Registry.capabilities``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagectl.settings import setting

# An ECR registry's host names its account and region: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html).
ECR_HOST_RE = re.compile(r"(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
ACCOUNT_RE = re.compile(r"[0-9]{12}")


def _account(value: Any) -> str:
    if not isinstance(value, str) or not ACCOUNT_RE.fullmatch(value):
        raise ValueError("must be a 12-digit AWS account id")
    return value


def _accounts(value: Any) -> tuple[str, ...]:
    return tuple(_account(v) for v in value)


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    insecure: bool = setting(False)  # plain HTTP (a registry on loopback); never for a real registry


@dataclass(frozen=True, kw_only=True)
class EcrSettings(HttpSettings):
    region: str = setting(required=True, what="an AWS region such as eu-west-1")
    # The registry's AWS account: from the host (<account>.dkr.ecr.<region>.amazonaws.com), else this setting (a host
    # that is not ECR's own name: a proxy, a VPC endpoint alias, the test harness).
    registry_id: str | None = setting(None, check=_account, what="a 12-digit AWS account id")
    identity: str | None = setting(None, identity=True, what="a name under [identities]")
    # Accounts whose principals may pull (EKS nodes in another account): registry init grants them in the repository policy.
    pull_accounts: tuple[str, ...] = setting((), check=_accounts, what="12-digit AWS account ids")


def ecr_account(host: str, settings: EcrSettings) -> str | None:
    match = ECR_HOST_RE.fullmatch(host.split(":")[0])
    return settings.registry_id or (match.group("account") if match else None)


def _check_ecr(host: str, settings: EcrSettings) -> str | None:
    match = ECR_HOST_RE.fullmatch(host.split(":")[0])
    if match is None and settings.registry_id is None:
        return "does not name an AWS account: use <account>.dkr.ecr.<region>.amazonaws.com, or set registry_id"
    if match is not None and settings.registry_id is not None and settings.registry_id != match.group("account"):
        return f"names account {match.group('account')}, but registry_id is {settings.registry_id}"
    return None


@dataclass(frozen=True)
class Kind:
    name: str
    module: str  # imported only when a registry of this kind is opened (keeps boto3 out of --help)
    cls: str
    settings: type = HttpSettings  # its keys in [registries.NAME], besides kind, host and retention
    check: Callable[[str, Any], str | None] | None = None  # (host, settings) → what is wrong with the host, or None
    # The registry deletes an image's referrers with it (ECR: an expired image takes its artifacts along), so
    # the retention rules must keep every image a history record points at (retention.keep_deployed).
    referrers_go_with_subject: bool = False


KINDS: dict[str, Kind] = {
    "ecr": Kind("ecr", "imagectl.registries.ecr", "EcrRegistry", EcrSettings, _check_ecr, referrers_go_with_subject=True),
    "oci": Kind("oci", "imagectl.registries.oci", "OciRegistry", HttpSettings),
}
