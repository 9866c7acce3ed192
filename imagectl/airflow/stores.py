"""The table of Variable stores: where an environment's image Variable is written, one line per store.

``airflow`` writes the Variable through the environment's Airflow (its metadata database); ``secretsmanager`` and
``ssm`` write it where Airflow's Amazon provider secrets backends read it, for deployments whose Variables live
there (a write to the database would be shadowed). Each line names the store's class, its settings dataclass
(keys of ``[environments.NAME]``; settings.py says how they are read) and the Airflow secrets backend that reads
it, so the shadow check (airflow/rest.py) can look inside any deployment backend imagectl can write to. Airflow 3
hides a backend's kwargs, so an ``airflow`` environment may declare the settings of the backend its Airflow reads
Variables from (``RestStoreSettings``: ``secrets_backend = "secretsmanager"``, its prefix, separator, lookup
pattern, region and identity), and the shadow check looks the key up with them.
Adding a store is one module under airflow/ and one line here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from imagectl.settings import setting


def _prefix(value: Any) -> str:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise ValueError('must be a string without spaces ("" for none)')
    return value


def _regex(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a regular expression (the backend's variables_lookup_pattern)")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression ({exc})") from None
    return value


@dataclass(frozen=True, kw_only=True)
class NoSettings:
    @classmethod
    def from_backend_kwargs(cls, kwargs: dict[str, Any]) -> NoSettings | None:
        return cls()


@dataclass(frozen=True, kw_only=True)
class RestStoreSettings:
    """The ``airflow`` store (the metadata database): optionally, the secrets backend its Airflow reads Variables from
    first, as declared by the team — the shadow check's settings when Airflow hides the backend's kwargs."""

    secrets_backend: str | None = setting(None, choices=("secretsmanager", "ssm"))  # the store its backend reads
    secrets_backend_prefix: str | None = setting(None, check=_prefix)  # its variables_prefix (default: the backend's)
    secrets_backend_sep: str | None = setting(None)  # secretsmanager: its sep (default "/")
    secrets_backend_lookup_pattern: str | None = setting(None, check=_regex)  # its variables_lookup_pattern
    secrets_backend_region: str | None = setting(None, what="an AWS region")  # its region_name
    secrets_backend_identity: str | None = setting(None, identity=True, what="a name under [identities]")  # who may read it

    def problem(self) -> tuple[str, str] | None:
        """(key, what is wrong) when the declaration is incomplete; config.py reports it."""
        if self.secrets_backend is None:
            given = next((f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None), None)
            if given is not None:
                return given, 'needs secrets_backend ("secretsmanager" or "ssm"): which backend these settings describe'
        if self.secrets_backend == "ssm" and self.secrets_backend_sep is not None:
            return "secrets_backend_sep", 'applies only to secrets_backend = "secretsmanager" (SSM joins with "/")'
        return None

    def store_settings(self, store: Store) -> Any:
        """The declared backend as the settings of the store that reads and writes where it reads."""
        values = {
            "variables_prefix": self.secrets_backend_prefix,
            "variables_sep": self.secrets_backend_sep,
            "store_region": self.secrets_backend_region,
            "store_identity": self.secrets_backend_identity,
        }
        names = {f.name for f in dataclasses.fields(store.settings)}
        return store.settings(**{k: v for k, v in values.items() if k in names and v is not None})


@dataclass(frozen=True, kw_only=True)
class SecretsManagerSettings:
    """SecretsManagerBackend's defaults: variables_prefix "airflow/variables", sep "/"."""

    variables_prefix: str = setting("airflow/variables", check=_prefix)
    variables_sep: str = setting("/")
    store_region: str | None = setting(None, what="an AWS region")
    store_identity: str | None = setting(None, identity=True, what="a name under [identities]")

    @classmethod
    def from_backend_kwargs(cls, kwargs: dict[str, Any]) -> SecretsManagerSettings | None:
        """The settings that Airflow's backend_kwargs give the backend; None when it looks up no Variables."""
        prefix = kwargs.get("variables_prefix", "airflow/variables")
        if prefix is None:
            return None
        return cls(variables_prefix=str(prefix), variables_sep=str(kwargs.get("sep", "/")), store_region=kwargs.get("region_name"))


@dataclass(frozen=True, kw_only=True)
class SsmSettings:
    """SystemsManagerParameterStoreBackend's default: variables_prefix "/airflow/variables" (always "/"-joined)."""

    variables_prefix: str = setting("/airflow/variables", check=_prefix)
    store_region: str | None = setting(None, what="an AWS region")
    store_identity: str | None = setting(None, identity=True, what="a name under [identities]")

    @classmethod
    def from_backend_kwargs(cls, kwargs: dict[str, Any]) -> SsmSettings | None:
        prefix = kwargs.get("variables_prefix", "/airflow/variables")
        if prefix is None:
            return None
        return cls(variables_prefix=str(prefix), store_region=kwargs.get("region_name"))


@dataclass(frozen=True)
class Store:
    name: str
    module: str  # imported only when the store is opened
    cls: str
    settings: type = NoSettings
    backend: str | None = None  # the Airflow secrets backend class that reads Variables from this store
    label: str = ""  # what the backend reads, for people

    @property
    def backend_label(self) -> str:
        return self.label or self.name


STORES: dict[str, Store] = {
    "airflow": Store("airflow", "imagectl.airflow.rest", "RestVariable", RestStoreSettings, label="Airflow's metadata database"),
    "secretsmanager": Store(
        "secretsmanager",
        "imagectl.airflow.secretsmanager",
        "SecretsManagerVariable",
        SecretsManagerSettings,
        backend="airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend",
        label="AWS Secrets Manager",
    ),
    "ssm": Store(
        "ssm",
        "imagectl.airflow.ssm",
        "SsmVariable",
        SsmSettings,
        backend="airflow.providers.amazon.aws.secrets.systems_manager.SystemsManagerParameterStoreBackend",
        label="SSM Parameter Store",
    ),
}


def store_for_backend(backend: str) -> Store | None:
    """The store whose values the Airflow secrets backend ``backend`` (a class path) reads, if imagectl has one."""
    return next((s for s in STORES.values() if s.backend == backend), None)
