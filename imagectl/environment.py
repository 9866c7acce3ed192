"""What an environment is: its registry and build repository, its history, the image Variable its dbt DAG
reads (wherever that lives), its Airflow (DAG runs), and its rules (release versions, confirmation, the scan
gate, notifications).

Every command that works on an environment opens it here, with the credentials resolved once from the
command's environment. The parts open lazily (``status`` of an environment without Airflow credentials still
reads its history); tests pass in-memory parts instead (tests/fakes.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from imagectl.airflow.stores import STORES
from imagectl.config import Config, EnvironmentConfig
from imagectl.credentials import Credentials
from imagectl.history import History
from imagectl.registries import open_registry
from imagectl.registries._base import Manifest, Registry

if TYPE_CHECKING:
    from imagectl.airflow._base import ImageVariable, Runs


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
        reg_config = config.registries[self.settings.registry]
        self.registry = registry or open_registry(reg_config, self.credentials.registry(reg_config.name), config.timeouts)
        self.repository = config.images["build"].repository
        self.history = History(self.registry, self.repository, name)
        self._variable = variable
        self._runs = runs

    @property
    def runs(self) -> Runs:
        """The environment's Airflow REST API (a ConfigError when it has no airflow_url or no login)."""
        if self._runs is None:
            from imagectl.airflow.rest import open_rest

            self._runs = open_rest(
                self.settings.airflow_url, self.name, self.credentials, self.settings.airflow_api, self.config.timeouts, self.config.path
            )
        return self._runs

    @property
    def variable(self) -> ImageVariable:
        """The image Variable, in the store the environment's ``variable_store`` names."""
        if self._variable is None:
            store = STORES[self.settings.variable_store]
            cls = getattr(importlib.import_module(store.module), store.cls)
            if store.name == "airflow":
                self._variable = cls(self.runs, self.settings.variable)
            else:
                s = self.settings
                self._variable = cls(s.variable, s.variables_prefix, s.variables_sep, s.store_region, self.config.timeouts)
        return self._variable

    def image(self, ref: str) -> Manifest | None:
        return self.registry.get_manifest(self.repository, ref)

    def reference(self, tag: str, digest: str) -> str:
        return self.registry.reference(self.repository, tag, digest)


def open_environment(config: Config, name: str, credentials: Credentials) -> Environment:
    return Environment(config, name, credentials)
