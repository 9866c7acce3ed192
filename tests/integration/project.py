"""What the command-level integration tests share: Airflow credentials, a registry's host, and ``Project``, a dbt
repository made by the ``make_project`` fixture and driven through imagectl's click entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests import stack
from tests.integration.conftest import commit_change

CREDS = {"IMAGECTL_AIRFLOW_USERNAME": "imagectl", "IMAGECTL_AIRFLOW_PASSWORD": stack.AIRFLOW_USERS["imagectl"][1]}


def host(server: Any) -> str:
    return server.url.removeprefix("http://")


class Project:
    def __init__(self, imagectl: Any, root: Path, variable_prefix: str = "") -> None:
        self.imagectl, self.root, self.var = imagectl, root, variable_prefix
        self.config = str(root / "imagectl.toml")
        lines = (root / "imagectl.toml").read_text().splitlines()
        self.repo = next((x.split('"')[1] for x in lines if "dbt-build" in x), "")
        self.base_repo = next((x.split('"')[1] for x in lines if "dbt-base" in x), "")

    def run(self, *args: str, env: dict[str, str] | None = None, config: str | None = None) -> Any:
        path = str(self.root / config) if config else self.config
        return self.imagectl(*args, "--config", path, env={**CREDS, **(env or {})})

    def json(self, *args: str, env: dict[str, str] | None = None, config: str | None = None) -> Any:
        result = self.run(*args, "-o", "json", env=env, config=config)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    def build(self, n: int, message: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Commit a change to the model and build; returns the build image's entry of the result."""
        commit_change(self.root, "models/orders.sql", f"select {n} as id -- {n}\n", message or f"DATA-1234 change {n}")
        images = self.json("build", "--build-number", str(n), "--quiet", env=env)["images"]
        return next(i for i in images if i["image"] == "build")
