"""Amazon MWAA through its ``InvokeRestApi`` action, on the MWAA stand-in (tests/mwaa_standin.py: SigV4 checked with
botocore's signer, the documented limits, errors in the documented shapes) in front of a real Airflow 3 that runs this
repository's DAGs (scheduler, dag-processor and api-server; DockerOperator) and reads Variables from AWS Secrets
Manager (moto) under a custom prefix, ``airflow/prd/variables`` — and, separately, a real Airflow 3 api-server with
only ``[workers] secrets_backend`` set.

- dev on the REST flavour and prd on MWAA, one Airflow: deploy, promote, ``trigger --wait`` (the task's image read
  through InvokeRestApi), status, ``ci --wait`` (its run id shortened to fit 64 characters), rollback, freeze;
- a bad signature, a path over 64 characters, an answer over 6 MB, MWAA's 10 s time-out and a missing IAM grant:
  each one line;
- the shadow check, never falsely reassuring: Airflow 3 hides the backend's kwargs, so with the backend's settings
  declared a shadowing secret refuses the deploy (exit 9) before anything is written; without them the output says
  "cannot verify" and how to fix it — and ``trigger --wait`` then exits 12, since the task rendered the secret.

What the stand-in does not prove is in its docstring (IAM policy evaluation, assumed-role credentials, MWAA's
undocumented error shapes for its time-out and size limit, its Airflow 2 environments, networking).
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
from botocore.config import Config

from tests import stack
from tests.fault_proxy import FaultProxy
from tests.integration.airflow_helpers import admin_headers, get_variable, set_variable
from tests.integration.project import Project, host
from tests.integration.test_variable_stores import build_two, container_image, image_id
from tests.mwaa_standin import MwaaStandIn

pytestmark = pytest.mark.usefixtures("python_stand_in")
ROOT = Path(__file__).resolve().parents[2]
SM_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
PREFIX = "airflow/prd/variables"
REGION = "ap-northeast-2"
ENVIRONMENT = "imagectl-prd"
DAGS = {"dbt_build_prd": "img_m_prd", "dbt_build_hidden": "img_m_hidden", "dbt_build_open": "img_m_open"}


@pytest.fixture(scope="module")
def mwaa_airflow(tmp_path_factory, moto):
    """A standalone Airflow 3 reading Variables from Secrets Manager (moto) under airflow/prd/variables first."""
    work = tmp_path_factory.mktemp("mwaa-airflow")
    dags = work / "dags"
    shutil.copytree(ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    airflow = stack.start_airflow(
        work,
        3,
        standalone=True,
        extra_env={
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "DBT_DAG_OPERATOR": "docker",
            "DBT_DAG_DOCKER_NETWORK": "host",
            "DBT_DAG_DOCKER_AUTO_REMOVE": "never",
            "DBT_DAG_IMAGE_VARIABLE": "img_m_dev",
            "DBT_DAG_EXTRA_DAGS": json.dumps(DAGS),  # one Airflow, a DAG per Variable
            "AIRFLOW__SECRETS__BACKEND": SM_BACKEND,
            "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"variables_prefix": PREFIX, "endpoint_url": moto.url, "region_name": REGION}),
            "AIRFLOW__API__EXPOSE_CONFIG": "True",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        },
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if all(
            requests.get(f"{airflow.url}/api/v2/dags/{d}", headers=admin_headers(airflow), timeout=10).status_code == 200
            for d in ("dbt_build", *DAGS)
        ):
            break
        time.sleep(2)
    else:
        airflow.stop()
        stack.unavailable(f"Airflow did not parse the DAGs in time: {airflow.log.read_text()[-2000:]}")
    yield airflow
    for container in docker.from_env().containers.list(all=True, filters={"name": "dbt_build"}):
        container.remove(force=True)
    airflow.stop()


@pytest.fixture(scope="module")
def standin(mwaa_airflow):
    server, lines = stack.start_mwaa(mwaa_airflow, ENVIRONMENT, REGION)
    values = dict(line.split("=", 1) for line in lines)
    yield server, values
    server.close()


@pytest.fixture
def mwaa_env(standin, aws_env, monkeypatch, tmp_path):
    """boto3 reaches the stand-in; the MWAA identity is a profile of its own (the stand-in knows its keys only)."""
    server, values = standin
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", values["AWS_ENDPOINT_URL_MWAA"])
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        f"[mwaa]\naws_access_key_id = {values['MWAA_ACCESS_KEY_ID']}\naws_secret_access_key = {values['MWAA_SECRET_ACCESS_KEY']}\n"
        "[forged]\naws_access_key_id = {}\naws_secret_access_key = not-the-secret\n".format(values["MWAA_ACCESS_KEY_ID"])
        + "[secrets]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    config = tmp_path / "aws-config"
    config.write_text(f"[profile mwaa]\nregion = {REGION}\n[profile forged]\nregion = {REGION}\n[profile secrets]\nregion = {REGION}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return server, values


def mwaa_toml(
    airflow_url: str,
    prd_registry: str,
    prd_variable: str = "img_m_prd",
    prd_dag: str = "dbt_build_prd",
    extra: str = "",
    registry: str = "prd",
) -> str:
    return f"""
[identities.mwaa]
profile = "mwaa"
[identities.forged]
profile = "forged"
[identities.secrets]
profile = "secrets"

[registries.prd]
kind = "oci"
host = "{prd_registry}"
insecure = true

[environments.dev]
registry = "local"
airflow_url = "{airflow_url}"
variable = "img_m_dev"

[environments.prd]
registry = "{registry}"
airflow = "mwaa"
mwaa_environment = "{ENVIRONMENT}"
mwaa_region = "{REGION}"
mwaa_identity = "mwaa"
airflow_url = "{airflow_url}"
variable = "{prd_variable}"
dbt_dag = "{prd_dag}"
release = true
confirm = false
{extra}

[ci]
branches = {{ "feature/*" = "dev", main = "prd" }}
build_environment = "dev"
lightdash_dag = false
"""


DECLARED = f"""secrets_backend = "secretsmanager"
secrets_backend_prefix = "{PREFIX}"
secrets_backend_region = "{REGION}"
secrets_backend_identity = "secrets"
"""


def wait_ok(project: Project, dag: str, run_id: str, env: str, expected: str) -> dict:
    result = project.run("trigger", dag, "--env", env, "--run-id", run_id, "--wait", "--timeout", "300", "-o", "json")
    assert result.exit_code == 0, result.stderr + result.stdout
    document = json.loads(result.stdout)
    assert document["verification"]["ok"] and document["verification"]["rendered"] == expected
    assert container_image(dag, run_id) == image_id(expected)  # the container that ran ran the deployed image
    return document


def test_dev_on_rest_prd_on_mwaa_end_to_end(imagectl, make_project, oci_registry, prd_registry, mwaa_airflow, mwaa_env, moto):
    server, _ = mwaa_env
    root = make_project(host(oci_registry), environments=mwaa_toml(mwaa_airflow.url, host(prd_registry)), branch="feature/DATA-1234-x")
    project = Project(imagectl, root)
    build_two(project)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    first = project.json("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--reason", "weekly release")
    assert first["variable_location"] == f"Airflow Variable img_m_prd (metadata database, MWAA InvokeRestApi, environment {ENVIRONMENT})"
    assert get_variable(mwaa_airflow, "img_m_prd")["value"] == first["variable_value"]  # written through InvokeRestApi
    assert any(n.startswith("cannot verify whether [secrets] backend") for n in first["notes"])  # kwargs hidden, nothing declared
    ran = wait_ok(project, "dbt_build_prd", "mwaa-1", "prd", first["variable_value"])
    assert ran["url"] == f"{mwaa_airflow.url}/dags/dbt_build_prd/runs/mwaa-1"
    status = project.json("status", "--env", "prd")
    last = status["environments"][0]["last_run"]
    assert status["ok"] and last["run_id"] == "mwaa-1" and last["image"] == first["variable_value"] and last["agrees"]

    # ci on main: promotes what dev ran from this commit to prd (MWAA), triggers prd's dbt DAG and waits for it. The
    # CI result key is long: the run id is shortened so /dags/dbt_build_prd/dagRuns/<run id> stays within 64.
    project.json("deploy", "DATA-1234-2", "--env", "dev")
    key = "DATAPLATFORM-DBTRELEASE-JOB1-1234"
    env = {"bamboo_buildNumber": "3", "bamboo_planRepository_branchName": "main", "bamboo_buildResultKey": key}
    result = project.run("ci", "--wait", "--timeout", "300", "--quiet", "-o", "json", env=env)
    assert result.exit_code == 0, result.stderr + result.stdout
    ci = json.loads(result.stdout)
    trigger = ci["triggers"][0]
    assert ci["release"]["revision"]["tag"] == "DATA-1234-2" and ci["release"]["revision"]["action"] == "promote"
    assert trigger["state"] == "success" and trigger["verification"]["ok"], trigger
    assert len(f"/dags/dbt_build_prd/dagRuns/{trigger['run_id']}") <= 64 and trigger["run_id"].startswith("ic__")
    again = project.run("ci", "--wait", "--timeout", "300", "--quiet", "-o", "json", env=env)  # a re-run CI job: the same run id
    assert again.exit_code == 0 and json.loads(again.stdout)["triggers"][0]["run_id"] == trigger["run_id"]

    back = project.json("rollback", "--env", "prd", "--reason", "orders broke")
    assert back["revision"]["tag"] == "DATA-1234-1" and get_variable(mwaa_airflow, "img_m_prd")["value"] == back["variable_value"]
    wait_ok(project, "dbt_build_prd", "mwaa-3", "prd", back["variable_value"])

    frozen = project.json("freeze", "--env", "prd", "--reason", "incident 7")
    assert frozen["revision"]["frozen"]
    refused = project.run("deploy", "DATA-1234-2", "--env", "prd")
    assert refused.exit_code == 14 and refused.stderr.count("\n") == 1
    assert not project.json("unfreeze", "--env", "prd", "--reason", "over")["revision"]["frozen"]
    # Every call went through InvokeRestApi, none refused by MWAA itself, every path within the documented 64.
    mine = [c for c in server.calls if c.access_key == mwaa_env[1]["MWAA_ACCESS_KEY_ID"]]
    assert mine and all(len(c.path) <= 64 and c.code in ("", "RestApiClientException") for c in mine)
    assert {"/dags/~/dagRuns/~/taskInstances/list", "/variables/img_m_prd", "/config"} <= {c.path for c in mine}


def test_each_limit_and_refusal_is_one_line(imagectl, make_project, oci_registry, prd_registry, mwaa_airflow, mwaa_env, tmp_path):
    server, values = mwaa_env
    environments = mwaa_toml(mwaa_airflow.url, host(prd_registry), prd_variable="img_m_limits", registry="local")  # deploy, no promote
    root = make_project(host(oci_registry), environments=environments)
    toml = root / "imagectl.toml"
    text = toml.read_text()
    project = Project(imagectl, root)
    project.build(1)

    # A bad signature: the forged profile has the right key id and a wrong secret.
    toml.write_text(text.replace('mwaa_identity = "mwaa"', 'mwaa_identity = "forged"'))
    forged = project.run("status", "--env", "prd")
    assert forged.exit_code == 10
    assert "AWS did not accept the signed request to MWAA environment imagectl-prd (SignatureDoesNotMatch" in forged.stdout
    assert "not-the-secret" not in forged.stdout + forged.stderr
    toml.write_text(text)

    # A path over 64 characters: refused before anything is sent, naming the id to shorten.
    long_run = "r" * 60
    sent = len(server.calls)
    over = project.run("trigger", "dbt_build_prd", "--env", "prd", "--run-id", long_run)
    assert over.exit_code == 2 and over.stderr.count("\n") == 1
    assert "its path is 88 characters and InvokeRestApi takes at most 64" in over.stderr and "shorter run id" in over.stderr
    assert all(len(c.path) <= 64 for c in server.calls[sent:])

    # An answer over 6 MB: a Variable of 7 MB in Airflow, read through MWAA.
    set_variable(mwaa_airflow, "img_m_limits", "x" * (7 * 1024 * 1024))
    big = project.run("deploy", "DATA-1234-1", "--env", "prd")
    assert big.exit_code == 9 and big.stderr.count("\n") == 1
    assert "the answer to read Variable img_m_limits is larger than InvokeRestApi's 6 MB limit" in big.stderr

    # MWAA's 10 s: Airflow hangs behind the stand-in; the write may or may not have been made, and the line says so.
    proxy = FaultProxy(mwaa_airflow.url)
    slow = MwaaStandIn(region=REGION)
    try:
        slow.add_user(values["MWAA_ACCESS_KEY_ID"], values["MWAA_SECRET_ACCESS_KEY"])
        slow.add_environment(ENVIRONMENT, proxy.url, ("imagectl", stack.AIRFLOW_USERS["imagectl"][1]))
        proxy.faults.hang, proxy.faults.only = True, "/variables/img_m_limits"
        hung = project.run("status", "--env", "prd", env={"AWS_ENDPOINT_URL_MWAA": slow.url})
        assert hung.exit_code == 10
        assert "read Variable img_m_limits did not finish within MWAA's 10 s limit for InvokeRestApi" in hung.stdout
    finally:
        proxy.close()
        slow.close()

    # An identity without airflow:InvokeRestApi on the environment.
    denied_key = "AKIADENIED" + values["MWAA_ACCESS_KEY_ID"][-8:]
    server.add_user(denied_key, "denied-secret", may_invoke=False)
    (tmp_path / "aws-credentials").write_text(
        (tmp_path / "aws-credentials").read_text() + f"[denied]\naws_access_key_id = {denied_key}\naws_secret_access_key = denied-secret\n"
    )
    (tmp_path / "aws-config").write_text((tmp_path / "aws-config").read_text() + f"[profile denied]\nregion = {REGION}\n")
    toml.write_text(text.replace('mwaa_identity = "mwaa"', 'mwaa_identity = "denied"') + '[identities.denied]\nprofile = "denied"\n')
    denied = project.run("deploy", "DATA-1234-1", "--env", "prd")
    assert denied.exit_code == 9 and denied.stderr.count("\n") == 1
    assert "needs airflow:InvokeRestApi on arn:aws:airflow:ap-northeast-2:<account>:environment/imagectl-prd" in denied.stderr
    assert project.json("history", "--env", "prd")["revisions"] == []


def test_the_standin_enforces_the_documented_request_rules(standin):
    """The stand-in itself, called with boto3 directly: what imagectl never sends is still refused as MWAA documents."""
    server, values = standin
    client = boto3.client(
        "mwaa",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=values["MWAA_ACCESS_KEY_ID"],
        aws_secret_access_key=values["MWAA_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
    )

    def code(**arguments) -> str:
        try:
            client.invoke_rest_api(**{"Name": ENVIRONMENT, "Method": "GET", "Path": "/version", **arguments})
        except client.exceptions.ClientError as exc:
            return exc.response["Error"]["Code"]
        return ""

    assert code() == ""
    assert code(Path="/dags/" + "d" * 60) == "ValidationException"  # Path: at most 64 characters
    assert code(Method="HEAD") == "ValidationException"  # Method: GET | PUT | POST | PATCH | DELETE
    assert code(Name="-bad") == "ValidationException"  # Name: [a-zA-Z][0-9a-zA-Z-_]*
    assert code(Name="nowhere") == "ResourceNotFoundException"
    assert code(Path="/variables/nope") == "RestApiClientException"  # Airflow's 404
    other = boto3.client(
        "mwaa",
        region_name="eu-west-1",
        endpoint_url=server.url,
        aws_access_key_id=values["MWAA_ACCESS_KEY_ID"],
        aws_secret_access_key=values["MWAA_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
    )
    try:
        other.invoke_rest_api(Name=ENVIRONMENT, Method="GET", Path="/version")
        raise AssertionError("a request signed for another region was accepted")
    except other.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "SignatureDoesNotMatch"
    unsigned = requests.post(f"{server.url}/restapi/{ENVIRONMENT}", json={"Method": "GET", "Path": "/version"}, timeout=10)
    assert unsigned.status_code == 403 and unsigned.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationToken")


def test_shadow_check_on_hidden_kwargs(imagectl, make_project, oci_registry, prd_registry, mwaa_airflow, mwaa_env):
    """Airflow 3 shows the backend's class and hides its kwargs. Declared settings: the secret under the custom prefix
    refuses the deploy before anything is written. Not declared: "cannot verify", and --wait proves what ran."""
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=f"{PREFIX}/img_m_hidden", SecretString="imagectl-test/python:busybox")
    declared = mwaa_toml(
        mwaa_airflow.url, host(prd_registry), prd_variable="img_m_hidden", prd_dag="dbt_build_hidden", extra=DECLARED, registry="local"
    )
    root = make_project(host(oci_registry), environments=declared)
    project = Project(imagectl, root)
    build_two(project)
    refused = project.run("deploy", "DATA-1234-1", "--env", "prd")
    assert refused.exit_code == 9 and refused.stderr.count("\n") == 1
    assert f"Variable img_m_hidden is shadowed: tasks read Variables from Secrets Manager secret {PREFIX}/img_m_hidden" in refused.stderr
    assert "[secrets] backend" in refused.stderr and 'set variable_store = "secretsmanager"' in refused.stderr
    assert project.json("history", "--env", "prd")["revisions"] == [] and get_variable(mwaa_airflow, "img_m_hidden") is None

    # The same deployment without the declaration: imagectl cannot see the prefix, so it says so — and deploys.
    toml = root / "imagectl.toml"
    original = toml.read_text()
    toml.write_text(original.replace(DECLARED, ""))
    blind = project.run("deploy", "DATA-1234-1", "--env", "prd", "-o", "json")
    assert blind.exit_code == 0, blind.stderr
    notes = json.loads(blind.stdout)["notes"]
    hidden = next(n for n in notes if n.startswith("cannot verify whether [secrets] backend (AWS Secrets Manager) shadows"))
    assert "Airflow hides its kwargs" in hidden and "declare the backend's settings" in hidden and "--wait" in hidden
    assert not any("does not shadow" in n or "does not hold" in n for n in notes)
    ran = project.run("trigger", "dbt_build_hidden", "--env", "prd", "--run-id", "hidden-1", "--wait", "--timeout", "300")
    assert ran.exit_code == 12, ran.stderr + ran.stdout
    assert "rendered imagectl-test/python:busybox, not revision 1's" in ran.stderr

    # Declared, and nothing under the prefix for another key: checked, so nothing is left unverified about the backend.
    toml.write_text(original.replace("img_m_hidden", "img_m_open").replace("dbt_build_hidden", "dbt_build_open"))
    clean = project.json("deploy", "DATA-1234-2", "--env", "prd")
    assert not any("[secrets] backend" in n for n in clean["notes"]), clean["notes"]


@pytest.fixture(scope="module")
def workers_airflow(tmp_path_factory, moto):
    """An Airflow 3 api-server whose only secrets backend is [workers] secrets_backend (what tasks read first)."""
    kwargs = {"variables_prefix": "airflow/wrk/variables", "endpoint_url": moto.url, "region_name": REGION}
    airflow = stack.start_airflow(
        tmp_path_factory.mktemp("workers-airflow"),
        3,
        extra_env={
            "AIRFLOW__WORKERS__SECRETS_BACKEND": SM_BACKEND,
            "AIRFLOW__WORKERS__SECRETS_BACKEND_KWARGS": json.dumps(kwargs),
            "AIRFLOW__API__EXPOSE_CONFIG": "True",
        },
    )
    yield airflow
    airflow.stop()


def test_shadow_check_reads_the_workers_backend(imagectl, make_project, oci_registry, workers_airflow, aws_env):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name="airflow/wrk/variables/img_w", SecretString="elsewhere/image:1")
    environments = f"""
[environments.dev]
registry = "local"
airflow_url = "{workers_airflow.url}"
variable = "img_w"
"""
    root = make_project(host(oci_registry), environments=environments)
    project = Project(imagectl, root)
    build_two(project)
    blind = project.run("deploy", "DATA-1234-1", "-o", "json")
    assert blind.exit_code == 0, blind.stderr
    notes = json.loads(blind.stdout)["notes"]
    assert any(n.startswith("cannot verify whether [workers] secrets_backend (AWS Secrets Manager) shadows") for n in notes), notes
    assert not any("does not shadow" in n or "no secrets backend" in n for n in notes)
    toml = root / "imagectl.toml"
    toml.write_text(toml.read_text() + 'secrets_backend = "secretsmanager"\nsecrets_backend_prefix = "airflow/wrk/variables"\n')
    refused = project.run("deploy", "DATA-1234-2")
    assert refused.exit_code == 9 and "Variable img_w is shadowed" in refused.stderr and "[workers] secrets_backend" in refused.stderr
    assert [r["tag"] for r in project.json("history")["revisions"]] == ["DATA-1234-1"]  # the refused deploy wrote nothing
