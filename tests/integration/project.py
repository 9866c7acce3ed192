"""What the command-level integration tests share: Airflow credentials, a registry's host, and ``Project``, a dbt
repository made by the ``make_project`` fixture and driven through imagectl's click entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from imagectl.config import load_config
from imagectl.registries._base import Manifest, Registry
from imagectl.workspace import Workspace
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


def push_synthetic(root: Path, env_name: str, tags: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """Push small distinct images as ``tags`` into ``env_name``'s build repository through imagectl's own registry
    client (real blobs and manifests, no Docker build): for tests about claims and races, where what an image
    holds does not matter and 16 docker builds would. Returns tag → digest."""
    workspace = Workspace.from_environ(load_config(root / "imagectl.toml"), {**os.environ, **(environ or {})})
    env = workspace.env(env_name)
    digests = {}
    for tag in tags:
        manifest = synthetic_image(env.registry, env.repository, f"{tag} in {root}")
        env.registry.put_manifest(env.repository, tag, manifest)
        digests[tag] = manifest.digest
    return digests


def synthetic_image(registry: Registry, repository: str, name: str) -> Manifest:
    """A small image of its own content (``name``): its blobs uploaded, the manifest returned untagged."""
    layer = registry.put_small_blob(repository, f"layer of {name}".encode())
    config = registry.put_small_blob(repository, json.dumps({"architecture": "amd64", "os": "linux", "tag": name}).encode())
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
    }
    return Manifest.from_bytes(json.dumps(document, sort_keys=True).encode())
