"""The pipeline end to end on the real stack: Docker engine, OCI registry, moto's S3 (dbt state), and Airflow 3
running scheduler + dag-processor + api-server (standalone) with this repository's DAGs, DockerOperator variant.

`imagectl ci` on a dev branch → the DAG run uses the image just deployed and dbt builds the sample project; a
second `ci` after a model change runs a slim build of that model and its children; `imagectl rollback` → the next
run runs the previous image (checked on the container that actually ran, not on the Variable)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import docker
import pytest
import requests

from tests import stack
from tests.conftest import run_cli
from tests.integration.airflow_helpers import RecordingServer, admin_headers, get_variable
from tests.integration.test_images import ROOT, DbtRepo, models_built

CREDS = {"IMAGECTL_AIRFLOW_USERNAME": "imagectl", "IMAGECTL_AIRFLOW_PASSWORD": stack.AIRFLOW_USERS["imagectl"][1]}
BRANCH = "feature/DATA-9-images"


def dagbag(operator: str, tmp_path: Path, **settings: str) -> dict:
    """Load dags/ into a DagBag inside the Airflow 3 virtualenv (where the providers are)."""
    probe = (
        "import json\nfrom airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r})\n"
        "out = {'errors': {k: str(v) for k, v in bag.import_errors.items()}, 'dags': {}}\n"
        "for d in bag.dags.values():\n"
        "    tt = d.timetable\n"
        "    out['dags'][d.dag_id] = {'timetable': type(tt).__name__, 'cron': getattr(tt, '_expression', None),\n"
        "        'timezone': str(getattr(tt, '_timezone', None)), 'tasks': {t.task_id: [type(t).__name__, getattr(t, 'image', None)]\n"
        "        for t in d.tasks}}\n"
        "print('RESULT' + json.dumps(out))\n"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "DBT_DAG_OPERATOR": operator, "PATH": "/usr/bin:/bin"}
    env.update({f"DBT_DAG_{k.upper()}": v for k, v in settings.items()})
    result = subprocess.run(
        [str(stack.airflow_binary(3).parent / "python"), "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, result.stderr[-3000:]
    return json.loads(line[len("RESULT") :])


@pytest.mark.parametrize("operator, task_type", [("kubernetes", "KubernetesPodOperator"), ("docker", "DockerOperator")])
def test_dags_load_with_the_documented_schedule(operator, task_type, tmp_path):
    bag = dagbag(operator, tmp_path)
    assert bag["errors"] == {}
    dbt = bag["dags"]["dbt_build"]
    assert (dbt["timetable"], dbt["cron"], dbt["timezone"]) == ("CronTriggerTimetable", "0 8 * * *", "Asia/Seoul")
    assert dbt["tasks"]["dbt_build"] == [task_type, "{{ var.value.dbt_image }}"]  # templated, never Variable.get at parse time
    assert bag["dags"]["lightdash_sync"]["timetable"] == "NullTimetable"


def test_one_airflow_for_two_environments_gets_a_dag_per_variable(tmp_path):
    bag = dagbag("docker", tmp_path, extra_dags=json.dumps({"dbt_build_prd": "dbt_image_prd"}))
    assert bag["errors"] == {}
    assert bag["dags"]["dbt_build"]["tasks"]["dbt_build"][1] == "{{ var.value.dbt_image }}"
    assert bag["dags"]["dbt_build_prd"]["tasks"]["dbt_build"][1] == "{{ var.value.dbt_image_prd }}"
    assert bag["dags"]["dbt_build_prd"]["cron"] == "0 8 * * *"
    (tmp_path / "bad").mkdir()
    bad = dagbag("docker", tmp_path / "bad", extra_dags=json.dumps({"dbt_build_prd": "{{ 7 * 7 }}"}))
    assert any("DBT_DAG_EXTRA_DAGS" in error for error in bad["errors"].values())


class Pipeline:
    def __init__(self, repo: DbtRepo, airflow: stack.Airflow, lightdash: RecordingServer, config: str) -> None:
        self.repo, self.airflow, self.lightdash, self.config = repo, airflow, lightdash, config

    def imagectl(self, *args: str, env: dict[str, str] | None = None):
        return run_cli(*args, "--config", self.config, env={**CREDS, **(env or {})})

    def ci(self, number: int, result_key: str, branch: str = BRANCH, *flags: str, wait: bool = True):
        env = {
            "bamboo_buildNumber": str(number),
            "bamboo_planRepository_branchName": branch,
            "bamboo_buildResultKey": result_key,
            "bamboo_buildResultsUrl": f"https://bamboo.example.com/browse/{result_key}",
        }
        waiting = ("--wait", "--timeout", "600") if wait else ()
        result = self.imagectl("ci", *waiting, "--quiet", "-o", "json", *flags, env=env)
        assert result.exit_code == 0, result.stderr + result.stdout
        return json.loads(result.stdout)

    def container(self, run_id: str):
        return docker.from_env().containers.get("dbt_build-" + run_id.replace(":", "-").replace("+", "-"))

    def task_instance(self, run_id: str) -> dict:
        url = f"{self.airflow.url}/api/v2/dags/dbt_build/dagRuns/{run_id}/taskInstances/dbt_build"
        return requests.get(url, headers=admin_headers(self.airflow), timeout=10).json()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, oci_registry, prd_registry, moto, python_image):
    work = tmp_path_factory.mktemp("pipeline")
    import boto3

    boto3.client(
        "s3", region_name="us-east-1", endpoint_url=moto.url, aws_access_key_id="testing", aws_secret_access_key="testing"
    ).create_bucket(Bucket="dbt-e2e")
    warehouse = work / "warehouse"
    warehouse.mkdir()
    warehouse.chmod(0o777)
    lightdash = RecordingServer()
    port = stack.free_port()
    container_env = {
        "AWS_ENDPOINT_URL_S3": moto.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DBT_DUCKDB_PATH": "/data/jaffle.duckdb",
    }
    airflow = stack.start_airflow(
        work,
        3,
        port=port,
        standalone=True,
        extra_env={
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "DBT_DAG_OPERATOR": "docker",
            "DBT_DAG_DOCKER_NETWORK": "host",
            "DBT_DAG_DOCKER_AUTO_REMOVE": "never",
            "DBT_DAG_DOCKER_MOUNTS": f"{warehouse}:/data",
            "DBT_DAG_IMAGE_VARIABLE": "dbt_image_dev",
            "DBT_DAG_EXTRA_DAGS": json.dumps({"dbt_build_prd": "dbt_image_prd"}),  # one Airflow, a DAG per environment
            "DBT_DAG_STATE_URI": "s3://dbt-e2e/prod",
            "DBT_DAG_EXTRA_ENV": json.dumps(container_env),
            "AIRFLOW_CONN_LIGHTDASH_DEFAULT": json.dumps(
                {"conn_type": "http", "host": lightdash.url, "password": "ld-api-key", "extra": {"project_uuid": "3fa85f64-5717"}}
            ),
        },
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # the dag-processor parses the DAG files first
            if requests.get(f"{airflow.url}/api/v2/dags/dbt_build", headers=admin_headers(airflow), timeout=10).status_code == 200:
                break
            time.sleep(2)
        else:
            stack.unavailable(f"Airflow did not parse dags/ in time: {airflow.log.read_text()[-2000:]}")
        environments = f"""
[environments.dev]
registry = "local"
airflow_url = "{airflow.url}"
variable = "dbt_image_dev"

[registries.prd]
kind = "oci"
host = "{prd_registry.url.removeprefix("http://")}"
insecure = true

[environments.prd]
registry = "prd"
airflow_url = "{airflow.url}"
variable = "dbt_image_prd"
dbt_dag = "dbt_build_prd"
release = true

[ci]
branches = {{ "feature/*" = "dev", main = "prd" }}
build_environment = "dev"
"""
        # Repositories of its own: the session's registry already holds test_images' DATA-9 tags.
        repo = DbtRepo(work / "repo", oci_registry.url.removeprefix("http://"), python_image, environments, "pipeline-test")
        yield Pipeline(repo, airflow, lightdash, str(repo.root / "imagectl.toml"))
    finally:
        for container in docker.from_env().containers.list(all=True, filters={"name": "dbt_build"}):
            container.remove(force=True)
        airflow.stop()
        lightdash.close()


def image_id(reference: str) -> str:
    repository = reference.split("@")[0].rsplit(":", 1)[0]
    return docker.from_env().images.get(f"{repository}@{reference.split('@')[1]}").id


def test_ci_deploys_and_runs_then_slim_then_rollback(pipeline):
    # 1. First push of the branch: build, push, deploy dev, trigger Lightdash and a slim dbt build (no state yet: full).
    first = pipeline.ci(1, "DBT-E2E-1")
    steps = [t["dag_id"] for t in first["triggers"]]
    assert steps == ["lightdash_sync", "dbt_build"] and all(t["state"] == "success" for t in first["triggers"][1:])
    deployed_one = first["release"]["variable_value"]
    assert get_variable(pipeline.airflow, "dbt_image_dev")["value"] == deployed_one
    run_one = first["triggers"][1]["run_id"]
    assert run_one == "imagectl__DBT-E2E-1__dbt_build"
    ran = pipeline.container(run_one)
    assert ran.image.id == image_id(deployed_one)  # the image that actually ran is the one just deployed
    logs = ran.logs().decode()
    assert "running a full build instead" in logs and len(models_built(logs)) == 5
    rendered = pipeline.task_instance(run_one)["rendered_fields"]
    assert rendered["image"] == deployed_one
    assert rendered["environment"]["DBT_MODE"] == "slim"

    # The daily full build (simulated by a trigger with the scheduled run's settings) stores the production state.
    full = run_cli(
        "trigger",
        "dbt_build",
        "--config",
        pipeline.config,
        "--conf",
        '{"mode": "full", "upload_state": true}',
        "--run-id",
        "daily-full-1",
        "--wait",
        "--timeout",
        "600",
        "-o",
        "json",
        env=CREDS,
    )
    assert full.exit_code == 0 and json.loads(full.stdout)["state"] == "success", full.stderr

    # 2. A model changes: ci again → slim build of just that model and its children.
    orders = pipeline.repo.root / "sample_project/models/marts/orders.sql"
    pipeline.repo.change("models/marts/orders.sql", orders.read_text() + "\n-- DATA-9 tweak\n")
    second = pipeline.ci(2, "DBT-E2E-2")
    run_two = second["triggers"][1]["run_id"]
    logs = pipeline.container(run_two).logs().decode()
    assert re.search(r"mode=slim; running: dbt build --defer --state \S+ --select state:modified\+", logs)
    assert models_built(logs) == {"orders", "customers"}
    assert pipeline.container(run_two).image.id == image_id(second["release"]["variable_value"])

    # A re-run Bamboo job (same result key) does not start a second DAG run.
    again = pipeline.ci(2, "DBT-E2E-2")
    assert [t["created"] for t in again["triggers"]] == [False, False]

    # 3. On call: roll back; the next run runs the previous image.
    rolled = run_cli("rollback", "--env", "dev", "--config", pipeline.config, "-o", "json", env=CREDS)
    assert rolled.exit_code == 0, rolled.stderr
    assert json.loads(rolled.stdout)["revision"]["tag"] == "DATA-9-1"
    after = run_cli(
        "trigger",
        "dbt_build",
        "--config",
        pipeline.config,
        "--run-id",
        "after-rollback",
        "--wait",
        "--timeout",
        "600",
        "-o",
        "json",
        env=CREDS,
    )
    assert after.exit_code == 0, after.stderr
    assert pipeline.container("after-rollback").image.id == image_id(deployed_one)

    # Lightdash was asked to refresh the project, with the API key from the Airflow connection.
    posts = [(path, headers.get("Authorization")) for _, path, headers in pipeline.lightdash.requests]
    assert ("/api/v1/projects/3fa85f64-5717/refresh", "ApiKey ld-api-key") in posts


def test_trigger_explains_unknown_and_paused_dags(pipeline):
    unknown = run_cli("trigger", "no_such_dag", "--config", pipeline.config, env=CREDS)
    assert unknown.exit_code == 4 and "DAG no_such_dag is not known" in unknown.stderr
    headers = admin_headers(pipeline.airflow)
    requests.patch(
        f"{pipeline.airflow.url}/api/v2/dags/lightdash_sync", json={"is_paused": True}, headers=headers, timeout=10
    ).raise_for_status()
    try:
        paused = run_cli("trigger", "lightdash_sync", "--config", pipeline.config, env=CREDS)
        assert paused.exit_code == 5
        assert "DAG lightdash_sync is paused" in paused.stderr and "airflow dags unpause lightdash_sync" in paused.stderr
    finally:
        requests.patch(f"{pipeline.airflow.url}/api/v2/dags/lightdash_sync", json={"is_paused": False}, headers=headers, timeout=10)


def test_ci_dry_run_prints_every_decision(pipeline):
    env = {**CREDS, "bamboo_buildNumber": "99", "bamboo_planRepository_branchName": BRANCH, "bamboo_buildResultKey": "DBT-E2E-99"}
    result = run_cli("ci", "--config", pipeline.config, "--dry-run", env=env)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("CI plan for DATA-9-99: branch feature/DATA-9-images, commit ")
    assert lines[1] == "  environment  dev"
    assert re.match(r"  1\. build    build and push DATA-9-99 \(branch feature/DATA-9-images .*\) to dev's registry", lines[2])
    assert lines[3] == "  2. deploy   deploy DATA-9-99 to dev"
    assert lines[4] == "  3. trigger  lightdash_sync in dev (run id imagectl__DBT-E2E-99__lightdash_sync)"
    assert lines[5] == "  4. trigger  dbt_build in dev with conf {'mode': 'slim'} (run id imagectl__DBT-E2E-99__dbt_build)"
    assert lines[-1] == "Nothing was built, pushed, deployed or triggered (--dry-run)."
    other = {**env, "bamboo_planRepository_branchName": "experiment/DATA-9-x"}
    plan = json.loads(run_cli("ci", "--config", pipeline.config, "--dry-run", "-o", "json", env=other).stdout)
    assert plan["kind"] == "ci-plan" and plan["environment"] is None and [s["step"] for s in plan["steps"]] == ["build", "stop"]
    assert plan["steps"][1]["decision"].startswith("no deploy: branch experiment/DATA-9-x maps to no environment")


def test_ci_on_main_promotes_what_dev_ran_from_the_same_commit(pipeline, prd_registry):
    # dev ran an image of the current commit (a feature-branch ci), then the same commit reaches main.
    pipeline.repo.change(
        "models/marts/customers.sql", (pipeline.repo.root / "sample_project/models/marts/customers.sql").read_text() + "\n-- DATA-9\n"
    )
    dev = pipeline.ci(10, "DBT-E2E-10")
    dev_tag = dev["plan"]["tag"]
    env = {**CREDS, "bamboo_buildNumber": "11", "bamboo_planRepository_branchName": "main", "bamboo_buildResultKey": "DBT-E2E-11"}
    dry = run_cli("ci", "--config", pipeline.config, "--dry-run", "-o", "json", env=env)
    assert dry.exit_code == 0, dry.stderr
    plan = json.loads(dry.stdout)
    promote = next(s for s in plan["steps"] if s["step"] == "promote")
    assert (plan["environment"], promote["from_environment"], promote["tag"]) == ("prd", "dev", dev_tag)
    assert plan["steps"][0]["decision"].startswith(f"skipped: dev ran {dev_tag}, built from this commit")
    refused = run_cli("ci", "--config", pipeline.config, env=env)
    assert refused.exit_code == 2 and "prd requires confirmation" in refused.stderr  # Bamboo passes --yes on main
    # This one Airflow serves both environments, with a DAG each (DBT_DAG_EXTRA_DAGS; prd's dbt_dag names its own).
    result = pipeline.ci(11, "DBT-E2E-11", "main", "--yes")
    assert result["build"] is None  # nothing rebuilt: the image dev ran is promoted
    assert (result["release"]["revision"]["action"], result["release"]["revision"]["tag"]) == ("promote", dev_tag)
    assert result["release"]["revision"]["release"] == "v1.0.0"
    assert result["release"]["variable_value"].startswith(prd_registry.url.removeprefix("http://"))
    assert result["release"]["variable_value"].endswith(dev["release"]["variable_value"].split("@")[1])  # same digest
    run = next(t for t in result["triggers"] if t["dag_id"] == "dbt_build_prd")
    assert run["state"] == "success" and run["verification"]["ok"] is True  # prd's run ran prd's revision
    status = pipeline.imagectl("status", "--env", "prd")
    assert status.exit_code == 0 and "ran the deployed image" in status.stdout, status.stdout
    # The DAG of another environment is not taken for prd's: dbt_build reads dev's Variable, and its run is not
    # checked against prd's history; checking it under prd's own DAG id is.
    other = pipeline.imagectl("trigger", "dbt_build", "--env", "prd", "--run-id", "not-prd", "--wait", "--timeout", "600")
    assert other.exit_code == 0 and "image:" not in other.stdout, other.stdout


def test_ci_verify_rolls_back_a_failing_image_to_the_newest_verified_and_rejects_it(pipeline):
    """Issue 24 on the real stack: a ci whose dbt run succeeds records "verified"; the next one breaks a model, its
    run fails, and dev goes back to the verified image (not merely the previous one), which the next run runs; the
    failed image is rejected, so a re-run of that ci refuses (exit 17)."""
    orders = pipeline.repo.root / "sample_project/models/marts/orders.sql"
    good_sql = orders.read_text()
    pipeline.repo.change("models/marts/orders.sql", good_sql + "\n-- DATA-9 verified\n")
    good = pipeline.ci(30, "DBT-E2E-30", BRANCH, "--verify")
    assert good["verification"]["result"] == "verified", good["verification"]
    good_revision = good["release"]["revision"]["revision"]

    pipeline.repo.change("models/marts/orders.sql", "select cast('not a number' as integer) as order_id -- DATA-9 broken\n")
    env = {
        "bamboo_buildNumber": "31",
        "bamboo_planRepository_branchName": BRANCH,
        "bamboo_buildResultKey": "DBT-E2E-31",
    }
    failed = pipeline.imagectl("ci", "--wait", "--timeout", "600", "--verify", "--quiet", "-o", "json", env=env)
    assert failed.exit_code == 18, failed.stderr + failed.stdout
    document = json.loads(failed.stdout)
    verification = document["verification"]
    assert verification["result"] == "failed" and verification["rolled_back_to"] == good_revision
    assert verification["rejection"]["revision"] == document["release"]["revision"]["revision"]
    rollback = verification["rollback"]["revision"]
    assert rollback["action"] == "rollback" and "verification of revision" in rollback["reason"] and "DBT-E2E-31" in rollback["reason"]
    assert get_variable(pipeline.airflow, "dbt_image_dev")["value"] == good["release"]["variable_value"]

    history = json.loads(pipeline.imagectl("history", "--env", "dev", "-o", "json").stdout)["revisions"]
    assert history[0]["tag"] == good["plan"]["tag"] and history[1]["verification"]["result"] == "failed"
    assert history[1]["rejected"] is not None and "run imagectl__DBT-E2E-31__dbt_build" in history[1]["rejected"]["reason"]
    status = json.loads(pipeline.imagectl("status", "--env", "dev", "-o", "json").stdout)["environments"][0]
    assert status["rejected"] is None and status["latest_revision"]["action"] == "rollback"

    again = pipeline.imagectl("ci", "--wait", "--timeout", "600", "--verify", "--quiet", env=env)  # Bamboo re-runs the job
    assert again.exit_code == 17 and "is rejected in dev" in again.stderr, again.stderr
    after = pipeline.imagectl("trigger", "dbt_build", "--run-id", "after-verify", "--wait", "--timeout", "600")
    assert after.exit_code == 0 and pipeline.container("after-verify").image.id == image_id(good["release"]["variable_value"])
    pipeline.repo.change("models/marts/orders.sql", good_sql)
