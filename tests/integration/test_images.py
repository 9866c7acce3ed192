"""The real images: images/base (Python + dbt + adapter) and images/build (the sample dbt project and
entrypoint.sh), built by imagectl from a locally made Python base, run as containers.

Building the base installs dbt with pip inside the build; on machines behind a TLS-intercepting proxy the host's
CA bundle goes into images/base/certs (the documented way)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import boto3
import docker
import pytest

from tests.conftest import git

ROOT = Path(__file__).resolve().parents[2]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


class DbtRepo:
    """A copy of this repository's sample project and images, built with imagectl into a local registry."""

    DEV = '[environments.dev]\nregistry = "local"\n'

    def __init__(self, root: Path, registry_host: str, python_image: str, environments: str = DEV, namespace: str = "images-test") -> None:
        self.root, self.registry_host = root, registry_host
        shutil.copytree(ROOT / "sample_project", root / "sample_project", ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
        shutil.copytree(ROOT / "images", root / "images", ignore=shutil.ignore_patterns("*.whl", "*.crt", "*.pem"))
        shutil.copy(ROOT / ".dockerignore", root / ".dockerignore")
        if HOST_CA.exists():
            shutil.copy(HOST_CA, root / "images/base/certs/host-ca.crt")
        (root / "imagectl.toml").write_text(f"""
[project]
name = "jaffle-shop"
default_environment = "dev"
[images.base]
context = "images/base"
repository = "{namespace}/dbt-base"
network = "host"
build_args = {{ PYTHON_IMAGE = "{python_image}" }}
[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "{namespace}/dbt-build"
build_args = {{ DBT_PROJECT_PATH = "sample_project", DBT_PARSE_ENV = "DBT_DUCKDB_PATH=/data/jaffle.duckdb" }}
[registries.local]
kind = "oci"
host = "{registry_host}"
insecure = true
{environments}""")
        git(root, "init", "-q", "-b", "feature/DATA-9-images")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "sample project")
        self.number = 0

    def build(self) -> str:
        """imagectl build; returns the build image's digest-pinned reference."""
        from tests.conftest import run_cli

        self.number += 1
        result = run_cli("build", "--config", str(self.root / "imagectl.toml"), "--build-number", str(self.number), "--quiet", "-o", "json")
        assert result.exit_code == 0, result.stderr
        return next(i["reference"] for i in json.loads(result.stdout)["images"] if i["image"] == "build")

    def change(self, path: str, text: str) -> None:
        (self.root / "sample_project" / path).write_text(text)
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", f"change {path}")


@pytest.fixture(scope="module")
def dbt_repo(tmp_path_factory, oci_registry, python_image) -> DbtRepo:
    return DbtRepo(tmp_path_factory.mktemp("dbt-images"), oci_registry.url.removeprefix("http://"), python_image)


@pytest.fixture(scope="module")
def first_image(dbt_repo) -> str:
    return dbt_repo.build()


@pytest.fixture(scope="module")
def s3(moto):
    client = boto3.client(
        "s3", region_name="us-east-1", endpoint_url=moto.url, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    client.create_bucket(Bucket="dbt-state")
    return client


def run(image: str, *args: str, env: dict[str, str] | None = None, volumes: dict | None = None) -> tuple[int, str]:
    client = docker.from_env()
    container = client.containers.run(image, list(args), environment=env or {}, network_mode="host", volumes=volumes or {}, detach=True)
    try:
        code = container.wait(timeout=600)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def s3_env(moto) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_S3": moto.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def models_built(output: str) -> set[str]:
    return set(re.findall(r"OK created sql (?:view|table) model main\.(\w+)", output))


def test_image_is_non_root_with_dbt_and_no_build_tools(first_image):
    code, output = run(first_image, "--help")
    assert code == 0 and "--mode slim|full" in output and "DBT_STATE_URI" in output
    client = docker.from_env()
    out = client.containers.run(
        first_image, ["-c", "id -u; dbt --version; command -v gcc cc || echo no-compiler; command -v git"], entrypoint="bash", remove=True
    ).decode()
    lines = out.splitlines()
    assert lines[0] == "1000"
    assert "1.11.16" in out and "duckdb" in out and "no-compiler" in out and "/usr/bin/git" in out
    labels = client.images.get(first_image).labels
    assert labels["org.opencontainers.image.version"] == "DATA-9-1"


def test_full_build_of_the_sample_project(first_image, tmp_path):
    code, output = run(first_image, "--mode", "full", volumes=warehouse(tmp_path)[1])
    assert code == 0, output
    assert "entrypoint: mode=full; running: dbt build" in output
    assert models_built(output) == {"stg_customers", "stg_orders", "stg_payments", "orders", "customers"}
    assert "Done. PASS=21 WARN=0 ERROR=0" in output


def test_slim_without_manifest_falls_back_to_full(first_image, s3, moto, tmp_path):
    env = {"DBT_MODE": "slim", "DBT_STATE_URI": "s3://dbt-state/nothing-here", **s3_env(moto)}
    code, output = run(first_image, env=env, volumes=warehouse(tmp_path)[1])
    assert code == 0, output
    assert "entrypoint: no manifest.json at s3://dbt-state/nothing-here: running a full build instead" in output
    assert len(models_built(output)) == 5


def warehouse(tmp_path: Path) -> tuple[dict[str, str], dict]:
    """A DuckDB file that outlives containers, as a warehouse does (deferred refs resolve to its relations)."""
    data = tmp_path / "duckdb"
    data.mkdir()
    data.chmod(0o777)
    return {"DBT_DUCKDB_PATH": "/data/jaffle.duckdb"}, {str(data): {"bind": "/data", "mode": "rw"}}


def test_state_round_trip_and_slim_build_of_one_changed_model(dbt_repo, first_image, s3, moto, tmp_path):
    state = "s3://dbt-state/prod"
    db_env, volumes = warehouse(tmp_path)
    env = {**s3_env(moto), **db_env}
    code, output = run(first_image, "--mode", "full", "--upload-state", "--state-uri", state, env=env, volumes=volumes)
    assert code == 0, output
    stored = {o["Key"] for o in s3.list_objects_v2(Bucket="dbt-state", Prefix="prod/")["Contents"]}
    assert stored == {"prod/manifest.json", "prod/run_results.json"}

    dbt_repo.change("models/marts/orders.sql", (dbt_repo.root / "sample_project/models/marts/orders.sql").read_text() + "\n-- changed\n")
    changed = dbt_repo.build()
    code, output = run(changed, "--mode", "slim", "--state-uri", state, env=env, volumes=volumes)
    assert code == 0, output
    assert re.search(r"entrypoint: mode=slim; running: dbt build --defer --state \S+ --select state:modified\+\n", output)
    assert models_built(output) == {"orders", "customers"}  # the changed model and its child, nothing else
    # Slim with nothing changed: nothing to do.
    code, output = run(first_image, "--mode", "slim", "--state-uri", state, env=env, volumes=volumes)
    assert code == 0 and models_built(output) == set()


def test_resource_types_can_be_excluded(first_image, tmp_path):
    env, volumes = warehouse(tmp_path)
    assert run(first_image, "--mode", "full", env=env, volumes=volumes)[0] == 0
    code, output = run(first_image, "--mode", "full", "--exclude-resource-types", "snapshot,seed", env=env, volumes=volumes)
    assert code == 0, output
    assert "--exclude-resource-type snapshot --exclude-resource-type seed" in output
    assert "START seed" not in output and "START snapshot" not in output
    assert len(models_built(output)) == 5
    code, output = run(first_image, "--mode", "full", "--tags", "finance", env=env, volumes=volumes)
    assert code == 0 and models_built(output) == {"orders"}


def test_failing_model_gives_a_non_zero_exit(dbt_repo, tmp_path):
    dbt_repo.change("models/staging/stg_payments.sql", "select id as payment_id, no_such_column from {{ source('raw', 'raw_payments') }}\n")
    broken = dbt_repo.build()
    volumes = warehouse(tmp_path)[1]
    code, output = run(broken, "--mode", "full", volumes=volumes)
    assert code == 1, output
    assert "entrypoint: dbt exited with 1" in output
    code, output = run(broken, "--mode", "full", "--fail-fast", volumes=volumes)
    # dbt-duckdb 1.11 races when fail-fast cancels a worker whose cursor just closed ("Connection already
    # closed!"); dbt then exits 2, not 1. Either way the entrypoint must pass dbt's own non-zero code on.
    assert code in (1, 2) and f"entrypoint: dbt exited with {code}" in output, output
    assert "running: dbt build --fail-fast" in output and "in model stg_payments (models/staging/stg_payments.sql)" in output, output
