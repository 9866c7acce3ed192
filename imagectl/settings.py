"""The settings types every layer shares, and how an extension declares its own (pure; imports nothing above it).

config.py parses ``imagectl.toml`` into these; registries, Variable stores and Airflow flavours receive them.
An extension (a registry kind, a Variable store, an Airflow flavour) declares its settings as a frozen,
keyword-only dataclass; config.py reads each field from the extension's TOML table by the field's name and type
(``str``, ``bool``, ``int``, ``float``, ``tuple[str, ...]``, each optionally ``| None``), checked with ``setting()``
metadata. Nothing else has to know an extension's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imagectl.retention import RetentionConfig


def setting(
    default: Any = None,
    *,
    required: bool = False,
    identity: bool = False,
    choices: tuple[str, ...] = (),
    check: Callable[[Any], Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    what: str = "",
) -> Any:
    """A settings field: ``check(value)`` returns the value to keep or raises ValueError with what is wrong;
    ``what`` describes a valid value for the error message; ``identity``: the value names an ``[identities.NAME]``
    table (config.py checks that it exists)."""
    meta = {
        "required": required,
        "identity": identity,
        "choices": choices,
        "check": check,
        "minimum": minimum,
        "maximum": maximum,
        "what": what,
    }
    if isinstance(default, tuple | list | dict):
        value = default
        return field(default_factory=lambda: value, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0  # seconds to open a connection
    read: float = 30.0  # seconds to wait for the next bytes of an answer
    request: float = 300.0  # seconds one request may take in all, however slowly its answer comes (a blob upload included)
    command: float = 600.0  # the whole command's budget for network calls (not builds or --wait)


@dataclass(frozen=True)
class Identity:
    """An AWS identity from ``[identities.NAME]``: a named profile, a role to assume (from the profile, else from
    the default credential chain), or both. A registry, a Variable store or an Airflow flavour names the identity it
    acts as; none named: the default credential chain."""

    name: str
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    session_name: str = "imagectl"

    def describe(self) -> str:
        what = [f"role {self.role_arn}"] if self.role_arn else []
        what += [f"profile {self.profile}"] if self.profile else []
        return f"identity '{self.name}' ({', '.join(what) or 'the default credential chain'})"


@dataclass(frozen=True)
class RegistryConfig:
    """One ``[registries.NAME]`` table: what every kind has, and the kind's own ``settings`` (registries/kinds.py)."""

    name: str
    kind: str
    host: str
    settings: Any = None  # the kind's settings dataclass
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    identity: Identity | None = None  # the AWS identity it acts as (kinds whose settings name one)

    @property
    def insecure(self) -> bool:
        """Plain HTTP instead of HTTPS (a loopback registry); every kind that speaks HTTP has this setting."""
        return bool(getattr(self.settings, "insecure", False))


def _run_conf(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > 50:
        raise ValueError('must be a table of at most 50 keys, e.g. { mode = "slim" }')
    if not all(isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in value.items()):
        raise ValueError("values must be strings, numbers or booleans (it becomes the run's conf)")
    return dict(value)


@dataclass(frozen=True, kw_only=True)
class VerifySettings:
    """``[environments.NAME.verify]``: how a deploy into the environment proves itself (commands/verify.py)."""

    default: bool = setting(False, what="true: deploy, promote and ci verify without --verify (--no-verify skips)")
    by: str = setting("trigger", choices=("trigger", "schedule"), what="trigger a dbt run, or wait for the next scheduled one")
    on_failure: str = setting("rollback", choices=("rollback", "report"), what="roll back and reject, or only report")
    timeout: int = setting(7200, minimum=60, maximum=172_800, what="seconds to wait for the run")
    conf: dict[str, Any] = setting({}, check=_run_conf, what="the conf of a triggered verification run")


JIRA_ENVIRONMENT_TYPES = ("unmapped", "development", "testing", "staging", "production")


@dataclass(frozen=True, kw_only=True)
class JiraEnvironmentSettings:
    """``[environments.NAME.jira]``: how Jira sees the environment, and its gate."""

    environment_type: str | None = setting(None, choices=JIRA_ENVIRONMENT_TYPES, what="Jira's environment type")
    environment_id: str | None = setting(None, what="Jira's id for the environment (default: its name)")
    require_status: tuple[str, ...] = setting((), what='Jira status names a promotion needs its issues in, e.g. ["Done"]')


@dataclass(frozen=True)
class JiraConfig:
    """``[jira]``: the project keys in tags and commits, and (optionally) the Jira that hears of every deploy."""

    projects: tuple[str, ...] = ()
    url: str | None = None  # the site: https://example.atlassian.net, or a Data Center base URL
    kind: str = "cloud"  # cloud (Deployments API, OAuth 2.0 client credentials) | datacenter (remote links, a token)
    cloud_id: str | None = None  # Jira Cloud: https://<site>/_edge/tenant_info
    api_url: str = "https://api.atlassian.com"  # Jira Cloud's API gateway (where the token and deployments go)
    pipeline: str | None = None  # the pipeline id Jira groups deployments by (default: [project] name)

    @property
    def configured(self) -> bool:
        return self.url is not None
