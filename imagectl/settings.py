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
