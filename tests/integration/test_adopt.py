"""A team adopts imagectl from its package: the wheel (built from the sdist) installed into a fresh virtualenv
outside this repository, ``imagectl init`` in two new dbt repositories, and their pipelines on the local stack.

- DuckDB, GitLab CI: ``init --ci gitlab``; the generated .gitlab-ci.yml's job runs for real with gitlab-ci-local
  (shell executor): build → push → deploy → the dbt DAG run, which ran the image just deployed.
- PostgreSQL (a real server), GitHub Actions' variables: ``init --ci github`` → ci → the daily full build stores the
  production state (schema analytics) → a model changes → the slim build runs only it and its child, in the CI
  schema, reading its unchanged parents from the production schema (--defer) → rollback → the next run runs the
  previous image.

Airflow 3 (standalone, DockerOperator) runs the DAG files init wrote. One base image is pip-installed (PostgreSQL's);
the DuckDB base is the same build as test_images' (same requirements, Dockerfile and CA), so the engine's layer
cache serves it when that module ran first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import docker
import pytest
import requests

from tests import stack
from tests.conftest import git
from tests.integration.airflow_helpers import admin_headers, get_variable

ROOT = Path(__file__).resolve().parents[2]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
GITLAB_CI_LOCAL = ROOT / "tests/tools/node_modules/.bin/gitlab-ci-local"
USER, PASSWORD = "imagectl", stack.AIRFLOW_USERS["imagectl"][1]
CREDS = {"IMAGECTL_AIRFLOW_USERNAME": USER, "IMAGECTL_AIRFLOW_PASSWORD": PASSWORD}

DUCKDB_PROFILE = """shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('DBT_DUCKDB_PATH', '/tmp/shop.duckdb') }}"
"""
POSTGRES_OUTPUT = """
      type: postgres
      host: "{{ env_var('PG_HOST') }}"
      port: "{{ env_var('PG_PORT') | int }}"
      user: "{{ env_var('PG_USER') }}"
      password: "{{ env_var('DBT_ENV_SECRET_PG_PASSWORD', '') }}"
      dbname: warehouse
      threads: 2"""
POSTGRES_PROFILE = f"""shop:
  target: "{{{{ env_var('DBT_TARGET', 'prod') }}}}"
  outputs:
    prod:{POSTGRES_OUTPUT}
      schema: analytics
    ci:{POSTGRES_OUTPUT}
      schema: ci
"""
MODELS = {
    "models/staging/_sources.yml": "version: 2\nsources:\n  - name: raw\n    schema: raw\n"
    "    tables:\n      - name: customers\n      - name: orders\n",
    "models/staging/stg_customers.sql": "select id as customer_id, name from {{ source('raw', 'customers') }}\n",
    "models/staging/stg_orders.sql": "select id as order_id, customer_id, amount from {{ source('raw', 'orders') }}\n",
    "models/marts/orders.sql": "select o.order_id, o.amount, c.name\nfrom {{ ref('stg_orders') }} o\n"
    "join {{ ref('stg_customers') }} c using (customer_id)\n",
    "models/marts/customers.sql": "select name, count(*) as orders, sum(amount) as total from {{ ref('orders') }} group by name\n",
}
PROJECT = "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\nmodels:\n  shop:\n    +materialized: view\n"


def timed(label: str, started: float) -> None:
    print(f"test_adopt: {label} in {time.monotonic() - started:.0f} s", file=sys.stderr)


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("adopt")


@pytest.fixture(scope="module")
def installed(work) -> Path:
    """sdist → wheel (python -m build builds the wheel from the sdist), installed into a fresh venv: not editable."""
    started = time.monotonic()
    dist = work / "dist"
    built = run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], work, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    sdist, wheel = next(dist.glob("imagectl-*.tar.gz")), next(dist.glob("imagectl-*.whl"))
    with tarfile.open(sdist) as tar:
        assert any(n.endswith("imagectl/templates/images/build/entrypoint.sh") for n in tar.getnames())
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    assert {
        "imagectl/templates/dags/dbt_build.py",
        "imagectl/templates/ci/gitlab-ci.yml",
        "imagectl/templates/images/base/gitignore",
    } <= names
    venv = work / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], work, dict(os.environ)).returncode == 0
    pip = run([str(venv / "bin/python"), "-m", "pip", "install", "-q", str(wheel)], work, dict(os.environ))
    assert pip.returncode == 0, pip.stderr[-3000:]
    where = run([str(venv / "bin/python"), "-c", "import imagectl; print(imagectl.__file__)"], work, dict(os.environ))
    assert where.stdout.startswith(str(venv)), where.stdout  # the installed copy, not this checkout
    timed("wheel built from the sdist and installed in a fresh venv", started)
    return venv / "bin/imagectl"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """What a CI job's shell has: no AWS, no imagectl settings, no other CI system's variables."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "DOCKER_CONFIG", "DOCKER_HOST")}
    return {**keep, "HOME": str(home), **extra}


def new_repo(root: Path, profile: str, models: dict[str, str], branch: str) -> Path:
    for path, text in {"dbt_project.yml": PROJECT, "profiles.yml": profile, **models}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "init", "-q", "-b", branch)
    git(root, "remote", "add", "origin", "https://git.example/data/shop.git")
    return root


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


def trust_host_ca(root: Path) -> None:
    """Behind a TLS-intercepting proxy pip needs its CA: the documented way is a bundle in images/base/certs/."""
    if HOST_CA.exists():
        shutil.copy(HOST_CA, root / "images/base/certs/host-ca.crt")


class Stack:
    def __init__(self, work: Path, airflow: stack.Airflow, registry: str, postgres: stack.Postgres, imagectl: Path) -> None:
        self.work, self.airflow, self.registry, self.postgres, self.imagectl = work, airflow, registry, postgres, imagectl

    def cli(self, repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run([str(self.imagectl), *args], repo, clean_env(self.work / "home", **CREDS, **(env or {})))

    def json(self, repo: Path, *args: str, env: dict[str, str] | None = None) -> dict:
        result = self.cli(repo, *args, "-o", "json", env=env)
        assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def adopted(work, installed, oci_registry, postgres, python_image):
    """Both repositories made and init-ed with the installed wheel; Airflow 3 runs the DAG files init wrote."""
    registry = oci_registry.url.removeprefix("http://")
    (work / "home").mkdir()
    for sub in ("duckdb", "state"):
        (work / sub).mkdir()
        (work / sub).chmod(0o777)  # the dbt container runs as uid 1000
    postgres.sql(
        "create schema raw; create table raw.customers (id int, name text); create table raw.orders (id int, customer_id int, amount int);"
        "insert into raw.customers values (1, 'ann'), (2, 'bo'); insert into raw.orders values (10, 1, 5), (11, 1, 7), (12, 2, 3);"
    )
    started = time.monotonic()
    airflow: stack.Airflow | None = None
    port = stack.free_port()
    try:
        # PostgreSQL: profile in the repository, GitHub Actions.
        pg = new_repo(work / "pg", POSTGRES_PROFILE, MODELS, "feature/DATA-7-orders")
        base = ["--registry", f"dev={registry}", "--repository-prefix", "adopt-"]
        init = [
            "init", "--ci", "github", *base, "--airflow", f"dev=http://127.0.0.1:{port}",
            "--parse-env", "PG_HOST=127.0.0.1", "--parse-env", f"PG_PORT={postgres.port}", "--parse-env", f"PG_USER={postgres.user}",
            "--branch", "feature/*=dev", "--jira-project", "DATA",
            "--set", "environments.dev.variable=dbt_image_pg", "--set", "environments.dev.dbt_dag=dbt_build_pg",
            "--set", "ci.lightdash_dag=false", "--set", "ci.slim_conf.mode=slim", "--set", "ci.slim_conf.target=ci",
            "--set", f"images.base.build_args.PYTHON_IMAGE={python_image}",
        ]  # fmt: skip
        made = run([str(installed), *init], pg, clean_env(work / "home"))
        assert made.returncode == 0, made.stderr + made.stdout
        assert "dbt-postgres==1.11.0" in (pg / "images/base/requirements.txt").read_text()
        trust_host_ca(pg)
        airflow = stack.start_airflow(
            work,
            3,
            port=port,
            standalone=True,
            extra_env={
                "AIRFLOW__CORE__DAGS_FOLDER": str(pg / "dags"),  # the DAG files init wrote from the wheel's templates
                "DBT_DAG_OPERATOR": "docker",
                "DBT_DAG_DOCKER_NETWORK": "host",
                "DBT_DAG_DOCKER_AUTO_REMOVE": "never",
                "DBT_DAG_DOCKER_MOUNTS": f"{work / 'duckdb'}:/data,{work / 'state'}:/state",
                "DBT_DAG_EXTRA_DAGS": json.dumps({"dbt_build_pg": "dbt_image_pg"}),
                "DBT_DAG_STATE_URI": "/state",
                "DBT_DAG_EXTRA_ENV": json.dumps(
                    {
                        "DBT_DUCKDB_PATH": "/data/shop.duckdb",
                        "PG_HOST": "127.0.0.1",
                        "PG_PORT": str(postgres.port),
                        "PG_USER": postgres.user,
                        "DBT_ENV_SECRET_PG_PASSWORD": postgres.password,
                    }
                ),
            },
        )
        commit(pg, "DATA-7 the shop's dbt project, adopting imagectl")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # the dag-processor parses the DAG files first
            found = requests.get(f"{airflow.url}/api/v2/dags/dbt_build_pg", headers=admin_headers(airflow), timeout=10)
            if found.status_code == 200:
                break
            time.sleep(2)
        else:
            stack.unavailable(f"Airflow did not parse the DAGs init wrote: {airflow.log.read_text()[-2000:]}")
        timed("repositories made and Airflow up", started)
        yield Stack(work, airflow, registry, postgres, installed)
    finally:
        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"name": "dbt_build"}):
            if container.attrs["Config"]["Image"].startswith(f"{registry}/adopt-"):
                container.remove(force=True)
        if airflow is not None:
            airflow.stop()


def github(number: int, sha: str, branch: str = "feature/DATA-7-orders") -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_NUMBER": str(number),
        "GITHUB_RUN_ID": str(7000 + number),
        "GITHUB_REPOSITORY_ID": "42",
        "GITHUB_REF_NAME": branch,
        "GITHUB_SHA": sha,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "data/shop",
        "GITHUB_ACTOR": "kim",
    }


def container(run_id: str, dag: str) -> docker.models.containers.Container:
    return docker.from_env().containers.get(f"{dag}-" + run_id.replace(":", "-").replace("+", "-"))


def built_in(logs: str, schema: str) -> set[str]:
    return set(re.findall(rf"OK created sql (?:view|table) model {schema}\.(\w+)", logs))


def image_id(reference: str) -> str:
    repository = reference.split("@")[0].rsplit(":", 1)[0]
    return docker.from_env().images.get(f"{repository}@{reference.split('@')[1]}").id


def test_postgres_slim_build_defers_to_the_production_schema_then_rollback(adopted):
    s, pg = adopted, adopted.work / "pg"
    started = time.monotonic()
    # 1. The first push: build (the one pip install in a container), push, deploy, slim dbt build (no state yet: full).
    first = s.json(pg, "ci", "--wait", "--timeout", "900", "--quiet", env=github(1, git(pg, "rev-parse", "HEAD")))
    plan = first["plan"]
    assert (plan["ci_system"], plan["tag"], plan["result_key"]) == ("github", "DATA-7-1", "github-42-7001")
    assert plan["results_url"] == "https://github.example/data/shop/actions/runs/7001"
    assert plan["sources"] == {
        "branch": "GITHUB_REF_NAME",
        "build number": "GITHUB_RUN_NUMBER",
        "result": "github-GITHUB_REPOSITORY_ID-GITHUB_RUN_ID",
    }
    revision = first["release"]["revision"]
    assert (
        revision["actor"] == "kim"
        and revision["reason"] == "GitHub Actions github-42-7001 https://github.example/data/shop/actions/runs/7001"
    )
    (run_one,) = [t for t in first["triggers"] if t["dag_id"] == "dbt_build_pg"]
    assert run_one["run_id"] == "imagectl__github-42-7001__dbt_build_pg" and run_one["state"] == "success"
    deployed_one = first["release"]["variable_value"]
    assert get_variable(s.airflow, "dbt_image_pg")["value"] == deployed_one
    assert container(run_one["run_id"], "dbt_build_pg").image.id == image_id(deployed_one)
    timed("first ci (base with dbt-postgres, build image, deploy, dbt run)", started)

    # 2. The daily full build, in production (target prod: schema analytics), stores the production state.
    full = s.json(
        pg,
        "trigger",
        "dbt_build_pg",
        "--conf",
        '{"mode": "full", "upload_state": true, "target": "prod"}',
        "--run-id",
        "daily-full",
        "--wait",
        "--timeout",
        "600",
    )
    assert full["state"] == "success"
    assert built_in(container("daily-full", "dbt_build_pg").logs().decode(), "analytics") == {
        "stg_customers",
        "stg_orders",
        "orders",
        "customers",
    }
    assert (s.work / "state/manifest.json").is_file()
    s.postgres.sql("drop schema ci cascade")  # CI schemas are per build: the next one starts empty

    # 3. A model changes: ci again → slim, in the CI schema, only the model and its child.
    orders = pg / "models/marts/orders.sql"
    orders.write_text(orders.read_text().replace("o.amount,", "o.amount, o.amount * 2 as amount_doubled,"))
    sha = commit(pg, "DATA-7 orders: doubled amounts")
    second = s.json(pg, "ci", "--wait", "--timeout", "900", "--quiet", env=github(2, sha))
    (run_two,) = [t for t in second["triggers"] if t["dag_id"] == "dbt_build_pg"]
    assert run_two["state"] == "success" and second["release"]["revision"]["tag"] == "DATA-7-2"
    ran = container(run_two["run_id"], "dbt_build_pg")
    logs = ran.logs().decode()
    assert re.search(r"mode=slim; running: dbt build --defer --state \S+ --select state:modified\+ --target ci", logs), logs[-3000:]
    assert built_in(logs, "ci") == {"orders", "customers"} and built_in(logs, "analytics") == set()
    assert ran.image.id == image_id(second["release"]["variable_value"])
    # What the slim run made, read from the warehouse: only those two relations in the CI schema; the changed model
    # reads its unchanged parents from the production schema, its child reads the changed model.
    assert set(s.postgres.sql("select table_name from information_schema.tables where table_schema = 'ci'").split()) == {
        "orders",
        "customers",
    }
    reads = s.postgres.sql(
        "select view_name || '<-' || table_schema || '.' || table_name from information_schema.view_table_usage "
        "where view_schema = 'ci' order by 1"
    ).split()
    assert reads == ["customers<-ci.orders", "orders<-analytics.stg_customers", "orders<-analytics.stg_orders"]
    assert s.postgres.sql("select total from ci.customers where name = 'ann'") == "12"
    timed("full build, then the slim ci", started)

    # 4. On call: roll back; the next run runs the previous image.
    rolled = s.json(pg, "rollback", "--env", "dev", "--reason", "orders change broke revenue")
    assert rolled["revision"]["tag"] == "DATA-7-1"
    after = s.json(pg, "trigger", "dbt_build_pg", "--run-id", "after-rollback", "--conf", '{"target": "ci"}', "--wait", "--timeout", "600")
    assert after["state"] == "success" and after["verification"]["ok"] is True
    assert container("after-rollback", "dbt_build_pg").image.id == image_id(deployed_one)
    timed("the PostgreSQL pipeline", started)


def test_duckdb_repository_s_gitlab_job_runs_with_gitlab_ci_local(adopted, python_image):
    """The generated .gitlab-ci.yml's job, run by gitlab-ci-local's shell executor, does the whole ci step."""
    if not GITLAB_CI_LOCAL.exists() or not shutil.which("rsync"):
        stack.unavailable("gitlab-ci-local (npm ci in tests/tools) or rsync is not installed (run scripts/setup.sh)")
    s, started = adopted, time.monotonic()
    duck = new_repo(s.work / "duck", DUCKDB_PROFILE, {"models/orders.sql": "select 1 as id\n"}, "feature/DATA-8-duckdb")
    init = [
        "init", "--ci", "gitlab", "--registry", f"dev={s.registry}", "--airflow", f"dev={s.airflow.url}",
        "--repository-prefix", "adopt-duck-", "--branch", "feature/*=dev", "--set", "ci.lightdash_dag=false",
        "--set", "ci.slim_conf.mode=full", "--set", f"images.base.build_args.PYTHON_IMAGE={python_image}",
    ]  # fmt: skip
    made = s.cli(duck, *init)
    assert made.returncode == 0, made.stderr + made.stdout
    assert (duck / ".gitlab-ci.yml").is_file() and "dbt-duckdb==1.11.1" in (duck / "images/base/requirements.txt").read_text()
    # The same images/base as this repository's (test_images builds it): the engine's layer cache has its pip install.
    assert (duck / "images/base/requirements.txt").read_bytes() == (ROOT / "images/base/requirements.txt").read_bytes()
    trust_host_ca(duck)
    check = s.cli(duck, "init", "--check")
    assert check.returncode == 0 and "Every copy is the installed imagectl's template." in check.stdout, check.stdout
    sha = commit(duck, "DATA-8 adopt imagectl")

    # gitlab-ci-local marks its runs GITLAB_CI=false and numbers pipelines from 0: a GitLab server says true and 1…
    variables = {"GITLAB_CI": "true", "CI_PIPELINE_IID": "3", "GITLAB_USER_LOGIN": "lee", "IMAGECTL": str(s.imagectl), **CREDS}
    command = [
        str(GITLAB_CI_LOCAL),
        "--no-color",
        *[a for k, val in variables.items() for a in ("--variable", f"{k}={val}")],
        "imagectl ci",
    ]
    job = run(command, duck, clean_env(s.work / "home"), timeout=900)
    output = job.stdout + job.stderr
    assert job.returncode == 0 and "PASS" in output and "imagectl ci" in output, output[-5000:]
    assert "dbt_build: success" in output or "dbt_build: triggered" in output, output[-3000:]
    history = s.json(duck, "history", "--env", "dev")
    (revision,) = history["revisions"]
    assert (revision["tag"], revision["git_sha"], revision["actor"]) == ("DATA-8-3", sha, "lee")
    assert revision["reason"].startswith("GitLab CI gitlab-data-shop-")
    status = s.cli(duck, "status", "--env", "dev")
    assert status.returncode == 0 and "ran the deployed image" in status.stdout, status.stdout

    # After an upgrade of imagectl: a copy an older imagectl wrote, whose template has changed since, is reported
    # with how to take it, and --update takes it.
    record = json.loads((duck / ".imagectl-init.json").read_text())
    older = b"#!/usr/bin/env bash\necho an older imagectl's entrypoint\n"
    (duck / "images/build/entrypoint.sh").write_bytes(older)
    record["files"]["images/build/entrypoint.sh"] = "sha256:" + hashlib.sha256(older).hexdigest()
    (duck / ".imagectl-init.json").write_text(json.dumps(record))
    check = s.cli(duck, "init", "--check")
    assert check.returncode == 10, check.stdout + check.stderr
    assert "template changed images/build/entrypoint.sh  — unchanged here since init wrote it" in check.stdout
    assert s.cli(duck, "init", "--update").returncode == 0 and s.cli(duck, "init", "--check").returncode == 0
    timed("the DuckDB repository's GitLab job", started)
