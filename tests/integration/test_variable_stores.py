"""Deploys that provably reach the task, on a real Airflow 3 (scheduler + api-server, this repository's DAGs with the
DockerOperator) whose Variables live in a secrets backend pointed at moto:

- Secrets Manager backend: ``variable_store = "secretsmanager"`` → the next run's container runs the deployed
  image; ``rollback`` → the previous one; ``status`` shows the last run's image;
- the same key in Secrets Manager with ``variable_store = "airflow"`` and the backend declared → ``deploy`` refuses
  (the config API shows the backend, imagectl.toml its settings, which Airflow 3 hides), nothing recorded;
- a Variable shadowed by ``AIRFLOW_VAR_…`` on the workers (no API shows it) → ``deploy`` notes what it could not
  verify, and ``trigger --wait`` exits 12 because the task rendered another image;
- the secrets cache on: the output names the delay;
- SSM Parameter Store backend: ``variable_store = "ssm"`` → deploy, run, rollback, run.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import boto3
import docker
import pytest
import requests

from tests import stack
from tests.integration.airflow_helpers import admin_headers
from tests.integration.conftest import commit_change
from tests.integration.project import Project

pytestmark = pytest.mark.usefixtures("python_stand_in")
ROOT = Path(__file__).resolve().parents[2]
SM_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
SSM_BACKEND = "airflow.providers.amazon.aws.secrets.systems_manager.SystemsManagerParameterStoreBackend"
SHADOW_DAG = """
# An Airflow DAG (safe mode scans files that say both words): the dbt DAG again, reading another Variable.
import dataclasses, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import dbt_build
dag = dbt_build.build_dag("dbt_build_shadow", dataclasses.replace(dbt_build.SETTINGS, image_variable="img_shadowed_env"))
"""


def start_backend_airflow(work: Path, moto_url: str, backend: str, variable: str) -> stack.Airflow:
    dags = work / "dags"
    shutil.copytree(ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    (dags / "dbt_build_shadow.py").write_text(SHADOW_DAG)
    airflow = stack.start_airflow(
        work,
        3,
        standalone=True,
        extra_env={
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "DBT_DAG_OPERATOR": "docker",
            "DBT_DAG_DOCKER_NETWORK": "host",
            "DBT_DAG_DOCKER_AUTO_REMOVE": "never",
            "DBT_DAG_IMAGE_VARIABLE": variable,
            "AIRFLOW__SECRETS__BACKEND": backend,
            "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"endpoint_url": moto_url, "region_name": "ap-northeast-2"}),
            "AIRFLOW__SECRETS__USE_CACHE": "True",
            "AIRFLOW__SECRETS__CACHE_TTL_SECONDS": "30",
            "AIRFLOW__API__EXPOSE_CONFIG": "True",
            "AIRFLOW_VAR_IMG_SHADOWED_ENV": "imagectl-test/python:busybox",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "ap-northeast-2",
        },
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ok = all(
            requests.get(f"{airflow.url}/api/v2/dags/{d}", headers=admin_headers(airflow), timeout=10).status_code == 200
            for d in ("dbt_build", "dbt_build_shadow")
        )
        if ok:
            return airflow
        time.sleep(2)
    airflow.stop()
    stack.unavailable(f"Airflow did not parse the DAGs in time: {airflow.log.read_text()[-2000:]}")
    raise AssertionError  # unreachable


def container_image(dag_id: str, run_id: str) -> str:
    return docker.from_env().containers.get(f"{dag_id}-{run_id}").image.id


def image_id(reference: str) -> str:
    repository = reference.split("@")[0].rsplit(":", 1)[0]
    return docker.from_env().images.get(f"{repository}@{reference.split('@')[1]}").id


def environments(airflow_url: str, store: str, variable: str) -> str:
    region = 'store_region = "ap-northeast-2"' if store != "airflow" else ""
    return f"""
[environments.dev]
registry = "local"
airflow_url = "{airflow_url}"
variable = "{variable}"
variable_store = "{store}"
{region}
"""


def build_two(project: Project) -> None:
    for n in (1, 2):
        commit_change(project.root, "models/orders.sql", f"select {n} as id -- {n}\n", f"DATA-1234 change {n}")
        result = project.run("build", "--build-number", str(n), "--quiet")
        assert result.exit_code == 0, result.stderr


def run_and_check(project: Project, run_id: str, expected: str, dag_id: str = "dbt_build", config: str = "imagectl.toml") -> dict:
    result = project.run("trigger", dag_id, "--run-id", run_id, "--wait", "--timeout", "300", "-o", "json", config=config)
    assert result.exit_code == 0, result.stderr + result.stdout
    document = json.loads(result.stdout)
    assert document["verification"]["ok"] and document["verification"]["rendered"] == expected
    assert container_image(dag_id, run_id) == image_id(expected)  # the container that ran ran the deployed image
    return document


@pytest.fixture(scope="module")
def sm_airflow(tmp_path_factory, moto):
    airflow = start_backend_airflow(tmp_path_factory.mktemp("sm-airflow"), moto.url, SM_BACKEND, "img_sm")
    yield airflow
    for container in docker.from_env().containers.list(all=True, filters={"name": "dbt_build"}):
        container.remove(force=True)
    airflow.stop()


def test_secrets_manager_store_reaches_the_task(imagectl, make_project, oci_registry, sm_airflow, aws_env):
    secrets = boto3.client("secretsmanager", region_name="ap-northeast-2")
    root = make_project(oci_registry.url.removeprefix("http://"), environments=environments(sm_airflow.url, "secretsmanager", "img_sm"))
    project = Project(imagectl, root)
    build_two(project)
    missing = project.run("deploy", "DATA-1234-1")
    assert missing.exit_code == 9 and "Secrets Manager secret airflow/variables/img_sm does not exist" in missing.stderr
    assert project.json("history")["revisions"] == []  # nothing recorded as deployed that is not
    first = project.json("deploy", "DATA-1234-1", "--create")
    assert secrets.get_secret_value(SecretId="airflow/variables/img_sm")["SecretString"] == first["variable_value"]
    assert first["variable_location"] == "Secrets Manager secret airflow/variables/img_sm"
    tags = {t["Key"]: t["Value"] for t in secrets.describe_secret(SecretId="airflow/variables/img_sm")["Tags"]}
    assert tags["imagectl:revision"] == "1" and tags["imagectl:tag"] == "DATA-1234-1"
    run_and_check(project, "sm-1", first["variable_value"])
    second = project.json("deploy", "DATA-1234-2")
    run_and_check(project, "sm-2", second["variable_value"])
    back = project.json("rollback", "--reason", "orders broke")
    assert back["revision"]["tag"] == "DATA-1234-1"
    run_and_check(project, "sm-3", back["variable_value"])
    status = project.json("status")
    last = status["environments"][0]["last_run"]
    assert status["ok"] and last["run_id"] == "sm-3" and last["image"] == back["variable_value"] and last["agrees"]


def test_a_rest_write_shadowed_by_the_backend_is_refused(imagectl, make_project, oci_registry, sm_airflow, aws_env):
    """Airflow 3 hides the backend's kwargs: the environment declares the backend (its default prefix) so that imagectl
    can look (tests/integration/test_mwaa.py: a custom prefix, and what is said when nothing is declared)."""
    secrets = boto3.client("secretsmanager", region_name="ap-northeast-2")
    secrets.create_secret(Name="airflow/variables/img_rest_shadowed", SecretString="something/else:1")
    declared = environments(sm_airflow.url, "airflow", "img_rest_shadowed") + 'secrets_backend = "secretsmanager"\n'
    root = make_project(oci_registry.url.removeprefix("http://"), environments=declared)
    project = Project(imagectl, root)
    build_two(project)
    refused = project.run("deploy", "DATA-1234-1")
    assert refused.exit_code == 9
    assert "Variable img_rest_shadowed is shadowed" in refused.stderr and 'variable_store = "secretsmanager"' in refused.stderr
    assert project.json("history")["revisions"] == []


def test_an_undetectable_shadow_is_caught_by_what_actually_ran(imagectl, make_project, oci_registry, sm_airflow, aws_env):
    extra = '\n[ci]\ndbt_dag = "dbt_build_shadow"\n'
    root = make_project(
        oci_registry.url.removeprefix("http://"), environments=environments(sm_airflow.url, "airflow", "img_shadowed_env") + extra
    )
    project = Project(imagectl, root)
    build_two(project)
    done = project.run("deploy", "DATA-1234-1", "-o", "json")
    assert done.exit_code == 0, done.stderr
    notes = json.loads(done.stdout)["notes"]
    assert any("AIRFLOW_VAR_IMG_SHADOWED_ENV" in n for n in notes)  # said what it could not verify
    assert any("secrets cache is on ([secrets] use_cache, 30 s)" in n for n in notes)  # and when the cache would delay
    ran = project.run("trigger", "dbt_build_shadow", "--run-id", "shadow-1", "--wait", "--timeout", "300")
    assert ran.exit_code == 12
    assert "rendered imagectl-test/python:busybox, not revision 1's" in ran.stderr and "AIRFLOW_VAR_" in ran.stderr
    status = project.run("status")
    assert status.exit_code == 10 and "ran ANOTHER image than the Variable holds" in status.stdout


def test_ssm_store_reaches_the_task(imagectl, make_project, oci_registry, tmp_path_factory, moto, aws_env):
    airflow = start_backend_airflow(tmp_path_factory.mktemp("ssm-airflow"), moto.url, SSM_BACKEND, "img_ssm")
    try:
        ssm = boto3.client("ssm", region_name="ap-northeast-2")
        root = make_project(oci_registry.url.removeprefix("http://"), environments=environments(airflow.url, "ssm", "img_ssm"))
        project = Project(imagectl, root)
        build_two(project)
        first = project.json("deploy", "DATA-1234-1", "--create")
        assert first["variable_location"] == "SSM parameter /airflow/variables/img_ssm"
        assert ssm.get_parameter(Name="/airflow/variables/img_ssm")["Parameter"]["Value"] == first["variable_value"]
        run_and_check(project, "ssm-1", first["variable_value"])
        second = project.json("deploy", "DATA-1234-2")
        back = project.json("rollback")
        assert back["revision"]["tag"] == "DATA-1234-1" and second["revision"]["revision"] == 2
        run_and_check(project, "ssm-2", back["variable_value"])
    finally:
        for container in docker.from_env().containers.list(all=True, filters={"name": "dbt_build"}):
            container.remove(force=True)
        airflow.stop()
