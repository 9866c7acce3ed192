"""What an environment is: its registry and build repository, its history, the image Variable its dbt DAG
reads (wherever that lives), its Airflow (DAG runs), and its rules (release versions, confirmation, the scan
gate, notifications).

Commands receive environments built by the workspace (workspace.py), with the credentials resolved once from
the command's environment. The parts open lazily (``status`` of an environment without Airflow credentials still
reads its history); tests pass in-memory parts instead (tests/fakes.py).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from imagectl.airflow._base import FlavourContext, StoreContext
from imagectl.airflow.flavours import FLAVOURS
from imagectl.airflow.stores import STORES
from imagectl.config import Config, EnvironmentConfig
from imagectl.credentials import Credentials
from imagectl.history import History
from imagectl.registries import open_registry
from imagectl.registries._base import Manifest, Registry
from imagectl.registries.kinds import KINDS
from imagectl.settings import Identity

if TYPE_CHECKING:
    from imagectl.airflow._base import Airflow, ImageVariable, Runs


def identity_of(config: Config, settings: Any) -> Identity | None:
    """The [identities.NAME] an extension's settings name in their identity field (settings.setting(identity=True))."""
    if not dataclasses.is_dataclass(settings):
        return None
    name = next((getattr(settings, f.name) for f in dataclasses.fields(settings) if f.metadata.get("identity")), None)
    return config.identity(name)


class Environment:
    def __init__(
        self,
        config: Config,
        name: str,
        credentials: Credentials | None = None,
        *,
        registry: Registry | None = None,
        variable: ImageVariable | None = None,
        runs: Runs | None = None,
    ) -> None:
        self.config = config
        self.settings: EnvironmentConfig = config.environment(name)
        self.name = name
        self.credentials = credentials or Credentials()
        self.registry = registry or open_registry(config.registries[self.settings.registry], self.credentials, config.timeouts)
        self.repository = config.images["build"].repository
        self.history = History(self.registry, self.repository, name)
        self._variable = variable
        self._runs = runs

    @property
    def referrers_go_with_subject(self) -> bool:
        """Whether this environment's registry deletes an image's referrers (its history records) with the image."""
        return KINDS[self.config.registries[self.settings.registry].kind].referrers_go_with_subject

    @property
    def has_airflow(self) -> bool:
        """Whether imagectl.toml says how to reach this environment's Airflow (status skips the last run otherwise)."""
        return self._runs is not None or bool(self.settings.airflow_settings.configured())

    @property
    def runs(self) -> Runs:
        """The environment's Airflow, reached the way its flavour says (a ConfigError when it cannot be)."""
        if self._runs is None:
            flavour = FLAVOURS[self.settings.airflow]
            opener = getattr(importlib.import_module(flavour.module), flavour.opener)
            identity = identity_of(self.config, self.settings.airflow_settings)
            context = FlavourContext(self.name, self.credentials, self.config.timeouts, self.config.path, identity)
            self._runs = opener(self.settings.airflow_settings, context)
        return self._runs

    def _airflow(self) -> Airflow:
        from imagectl.airflow._base import Airflow

        runs = self.runs
        assert isinstance(runs, Airflow)
        return runs

    @property
    def variable(self) -> ImageVariable:
        """The image Variable, in the store the environment's ``variable_store`` names."""
        if self._variable is None:
            store = STORES[self.settings.variable_store]
            cls = getattr(importlib.import_module(store.module), store.cls)
            identity = identity_of(self.config, self.settings.store)
            context = StoreContext(self.name, self.config.timeouts, self._airflow, identity)
            self._variable = cls(self.settings.variable, self.settings.store, context)
        return self._variable

    def image(self, ref: str) -> Manifest | None:
        return self.registry.get_manifest(self.repository, ref)

    def reference(self, tag: str, digest: str) -> str:
        return self.registry.reference(self.repository, tag, digest)
