"""What one command works in: the loaded configuration, the credentials resolved once from its environment, and
the environments it opens — each opened once, and environments on one registry sharing one client.

The CLI builds a Workspace from its flags and environment; commands receive it (or the environments it opened)
and never open anything themselves. Tests subclass it to hand out in-memory environments (tests/unit/helpers.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.environment import Environment
from imagectl.registries import open_registry
from imagectl.registries._base import Registry


@dataclass
class Workspace:
    config: Config
    credentials: Credentials = field(default_factory=Credentials)
    environ: Mapping[str, str] = field(default_factory=dict)
    _environments: dict[str, Environment] = field(default_factory=dict, repr=False)
    _registries: dict[str, Registry] = field(default_factory=dict, repr=False)

    @classmethod
    def from_environ(cls, config: Config, environ: Mapping[str, str]) -> Workspace:
        return cls(config, Credentials.from_environ(environ), dict(environ))

    def registry(self, name: str) -> Registry:
        """The registry ``[registries.NAME]``, opened once."""
        if name not in self._registries:
            self._registries[name] = open_registry(self.config.registries[name], self.credentials, self.config.timeouts)
        return self._registries[name]

    def env(self, name: str) -> Environment:
        """The environment ``[environments.NAME]`` (a ConfigError naming the defined ones when it is not defined)."""
        if name not in self._environments:
            settings = self.config.environment(name)
            self._environments[name] = Environment(self.config, name, self.credentials, registry=self.registry(settings.registry))
        return self._environments[name]
