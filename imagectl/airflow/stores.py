"""The table of Variable stores: where an environment's image Variable is written, one line per store.

``airflow`` writes the Variable through the environment's Airflow (its metadata database); ``secretsmanager`` and
``ssm`` write it where Airflow's Amazon provider secrets backends read it, for deployments whose Variables live
there (a write to the database would be shadowed). Each line names the store's class, its settings dataclass
(keys of ``[environments.NAME]``; settings.py says how they are read) and the Airflow secrets backend that reads
it, so the shadow check (airflow/rest.py) can look inside any deployment backend imagectl can write to.
Adding a store is one module under airflow/ and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagectl.settings import setting


def _prefix(value: Any) -> str:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise ValueError('must be a string without spaces ("" for none)')
    return value


@dataclass(frozen=True, kw_only=True)
class NoSettings:
    @classmethod
    def from_backend_kwargs(cls, kwargs: dict[str, Any]) -> NoSettings | None:
        return cls()


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


STORES: dict[str, Store] = {
    "airflow": Store("airflow", "imagectl.airflow.rest", "RestVariable"),
    "secretsmanager": Store(
        "secretsmanager",
        "imagectl.airflow.secretsmanager",
        "SecretsManagerVariable",
        SecretsManagerSettings,
        backend="airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend",
    ),
    "ssm": Store(
        "ssm",
        "imagectl.airflow.ssm",
        "SsmVariable",
        SsmSettings,
        backend="airflow.providers.amazon.aws.secrets.systems_manager.SystemsManagerParameterStoreBackend",
    ),
}


def store_for_backend(backend: str) -> Store | None:
    """The store whose values the Airflow secrets backend ``backend`` (a class path) reads, if imagectl has one."""
    return next((s for s in STORES.values() if s.backend == backend), None)
