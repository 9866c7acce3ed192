"""Config and environments for unit tests: everything in memory (tests/fakes.py), nothing on the network."""

from __future__ import annotations

import sys
from pathlib import Path

from imagectl.config import Config, parse_config
from imagectl.environment import Environment
from imagectl.workspace import Workspace
from tests.fakes import MemoryRegistry, MemoryRuns, MemoryVariable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BASE = """
[project]
name = "demo"
default_environment = "dev"
[jira]
projects = ["DATA"]
[images.base]
context = "images/base"
repository = "dbt-base"
[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "dbt-build"
[registries.dev]
kind = "oci"
host = "dev.example"
[registries.prd]
kind = "oci"
host = "prd.example"
[environments.dev]
registry = "dev"
airflow_url = "http://airflow.example"
[environments.prd]
registry = "prd"
airflow_url = "http://airflow.example"
release = true
"""


def config(extra: str = "", text: str = BASE, path: Path = Path("/repo/imagectl.toml")) -> Config:
    return parse_config(path, tomllib.loads(text + extra))


class Stack(Workspace):
    """A workspace whose dev and prd environments are on in-memory registries, Variables and Airflow."""

    def __init__(self, cfg: Config | None = None, *, atomic: bool = True, shared: bool = False, environ=None, **registry_kw) -> None:
        super().__init__(cfg or config(), environ=environ or {})
        self.registries = {"dev": MemoryRegistry("dev", "dev.example", atomic=atomic, **registry_kw)}
        self.registries["prd"] = self.registries["dev"] if shared else MemoryRegistry("prd", "prd.example", atomic=atomic, **registry_kw)
        self.variables = {name: MemoryVariable(s.variable) for name, s in self.config.environments.items()}
        self.runs = MemoryRuns()

    def env(self, name: str) -> Environment:
        registry = self.registries[self.config.environment(name).registry]
        return Environment(self.config, name, registry=registry, variable=self.variables[name], runs=self.runs)

    def image(self, tag: str, env: str = "dev", seed: str | None = None):
        from tests.fakes import image_manifest

        return self.registries[self.config.environments[env].registry].push("dbt-build", tag, image_manifest(seed or tag))
