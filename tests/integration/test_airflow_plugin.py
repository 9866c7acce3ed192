"""The Images page as people use it: a real Airflow 3 (standalone: its scheduler really runs DAGs) with imagectl
installed into its environment under Airflow's pins (tests/plugin_env.py), this repository's dags/ (dbt_build with
the DockerOperator, one DAG per environment, and imagectl_ops), two OCI registries, and Debian's Chromium driven
by Selenium.

- An analyst signs in, opens Images, sees dev's and prd's history, presses Rollback on prd, gives a reason and
  triggers imagectl_ops: the page follows the run and shows the new revision with the analyst as actor; the next
  dbt run of prd runs the previous image (the container that ran is inspected).
- Who may act is Airflow's decision: a viewer reads the page without buttons, and the form's endpoint and Airflow's
  trigger API both refuse the viewer; anonymous requests to the page and its data endpoints get 401 and no data.
- A refused action fails the run with imagectl's one line; the run log shows the plan and the result.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests import stack
from tests.conftest import git, run_cli
from tests.integration.conftest import BASE_DOCKERFILE, BUILD_DOCKERFILE, commit_change
from tests.plugin_env import plugin_overlay

ROOT = Path(__file__).resolve().parents[2]
USERS = {"imagectl": ("admin", "imagectl-test-pass"), "viewer": ("viewer", "viewer-test-pass"), "analyst": ("user", "analyst-test-pass")}
CREDS = {"IMAGECTL_AIRFLOW_USERNAME": "imagectl", "IMAGECTL_AIRFLOW_PASSWORD": USERS["imagectl"][1]}
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
OPS = "imagectl_ops"


def token(airflow: stack.Airflow, user: str) -> str:
    answer = requests.post(f"{airflow.url}/auth/token", json={"username": user, "password": USERS[user][1]}, timeout=10)
    answer.raise_for_status()
    return answer.json()["access_token"]


def headers(airflow: stack.Airflow, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(airflow, user)}"}


class Deployment:
    """The running Airflow, the dbt repository imagectl works in, and the imagectl CLI against both."""

    def __init__(self, airflow: stack.Airflow, repo: Path, overlay) -> None:
        self.airflow, self.repo, self.overlay = airflow, repo, overlay
        self.config = str(repo / "imagectl.toml")

    def imagectl(self, *args: str, ok: bool = True):
        cwd = os.getcwd()
        os.chdir(self.repo)
        try:
            result = run_cli(*args, "--config", self.config, env=CREDS)
        finally:
            os.chdir(cwd)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def trigger_ops(self, user: str, conf: dict) -> str:
        answer = requests.post(
            f"{self.airflow.url}/api/v2/dags/{OPS}/dagRuns",
            json={"logical_date": None, "conf": conf},
            headers=headers(self.airflow, user),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        url = f"{self.airflow.url}/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
        while time.monotonic() < deadline:
            run = requests.get(url, headers=headers(self.airflow, "imagectl"), timeout=10).json()
            if run.get("state") in ("success", "failed"):
                return run
            time.sleep(2)
        raise AssertionError(f"run {run_id} of {dag_id} did not finish in {timeout:.0f} s: {run}")

    def log(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        url = f"{self.airflow.url}/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/1"
        answer = requests.get(url, headers={**headers(self.airflow, "imagectl"), "Accept": "application/json"}, timeout=10)
        answer.raise_for_status()
        return [str(line.get("event", "")) for line in answer.json()["content"] if isinstance(line, dict)]

    def data(self, user: str = "viewer", environment: str | None = None) -> dict:
        path = f"/imagectl/api/environments/{environment}" if environment else "/imagectl/api/environments"
        answer = requests.get(self.airflow.url + path, headers=headers(self.airflow, user), timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()


def make_repo(root: Path, dev_host: str, prd_host: str, airflow_url: str, base_image: str) -> Path:
    (root / "images/base").mkdir(parents=True)
    (root / "images/build").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "images/base/Dockerfile").write_text(BASE_DOCKERFILE)
    (root / "images/base/requirements.txt").write_text("dbt-core==1.11.16\ndbt-duckdb==1.11.1\n")
    (root / "images/build/Dockerfile").write_text(BUILD_DOCKERFILE)
    (root / "models/orders.sql").write_text("select 1 as id\n")
    (root / "imagectl.toml").write_text(f"""
[project]
name = "shop"
default_environment = "dev"
commit_url = "https://git.example/shop/commit/{{commit}}"

[jira]
projects = ["DATA"]
url = "https://jira.example"
kind = "datacenter"

[images.base]
context = "images/base"
repository = "plugin/dbt-base"
build_args = {{ PYTHON_IMAGE = "{base_image}" }}

[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "plugin/dbt-build"

[registries.dev]
kind = "oci"
host = "{dev_host}"
insecure = true

[registries.prd]
kind = "oci"
host = "{prd_host}"
insecure = true

[environments.dev]
registry = "dev"
airflow_url = "{airflow_url}"
variable = "dbt_image_dev"

[environments.prd]
registry = "prd"
airflow_url = "{airflow_url}"
variable = "dbt_image_prd"
dbt_dag = "dbt_build_prd"
release = true
""")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    git(root, "checkout", "-qb", "feature/DATA-1-orders")
    return root


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, oci_registry, prd_registry, python_stand_in):
    work = tmp_path_factory.mktemp("plugin")
    started = time.monotonic()
    overlay = plugin_overlay(work / "install")
    print(f"\nimagectl[airflow] installed beside Airflow's pins ({overlay.constraints_source}) in {time.monotonic() - started:.0f} s")
    port = stack.free_port()
    passwords = work / "passwords.json"
    passwords.write_text(json.dumps({user: password for user, (_, password) in USERS.items()}))
    hosts = [server.url.removeprefix("http://") for server in (oci_registry, prd_registry)]
    repo = make_repo(work / "shop", *hosts, f"http://127.0.0.1:{port}", python_stand_in)
    airflow = stack.start_airflow(
        work,
        3,
        port=port,
        standalone=True,
        extra_env={
            "PYTHONPATH": str(overlay.path),  # what pip install "imagectl[airflow]" added to Airflow's environment
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__IMAGECTL__CONFIG_FILE": str(repo / "imagectl.toml"),
            "AIRFLOW__IMAGECTL__ENVIRONMENTS": "dev,prd",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{role}" for u, (role, _) in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "DBT_DAG_OPERATOR": "docker",
            "DBT_DAG_DOCKER_NETWORK": "host",
            "DBT_DAG_DOCKER_AUTO_REMOVE": "never",
            "DBT_DAG_IMAGE_VARIABLE": "dbt_image_dev",
            "DBT_DAG_EXTRA_DAGS": json.dumps({"dbt_build_prd": "dbt_image_prd"}),
        },
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # the dag-processor parses the DAG files first
            found = [
                requests.get(f"{airflow.url}/api/v2/dags/{d}", headers=headers(airflow, "imagectl"), timeout=10)
                for d in (OPS, "dbt_build_prd")
            ]
            if all(f.status_code == 200 for f in found):
                break
            time.sleep(2)
        else:
            stack.unavailable(f"Airflow did not parse dags/ in time: {airflow.log.read_text()[-3000:]}")
        deployment = Deployment(airflow, repo, overlay)
        # Two builds, each deployed to dev and promoted to prd (released v1.0.0, v1.0.1); prd's dbt DAG runs the second.
        for n in (1, 2):
            if n > 1:
                commit_change(repo, "models/orders.sql", f"select {n} as id\n", f"DATA-1 orders v{n}")
            deployment.imagectl("build", "--build-number", str(n), "--quiet")
            deployment.imagectl("deploy", f"DATA-1-{n}", "--env", "dev", "--reason", f"build {n}")
            deployment.imagectl("promote", f"DATA-1-{n}", "--from", "dev", "--to", "prd", "--reason", f"release {n}", "--yes")
        deployment.imagectl("trigger", "dbt_build", "--env", "dev", "--run-id", "dev-build-2", "--wait", "--timeout", "300")
        deployment.imagectl("trigger", "dbt_build_prd", "--env", "prd", "--run-id", "before-rollback", "--wait", "--timeout", "300")
        yield deployment
    finally:
        import docker

        for container in docker.from_env().containers.list(all=True, filters={"name": "dbt_build"}):
            container.remove(force=True)
        airflow.stop()


# -- a browser -----------------------------------------------------------------------------------------------------


@pytest.fixture
def browser():
    """Debian's Chromium, headless, through its own chromedriver (nothing is downloaded)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        stack.unavailable("Chromium is not installed (scripts/setup.sh installs chromium and chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        stack.unavailable("selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1480,1100", "--lang=en-US"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start is an unavailable server
        stack.unavailable(f"Chromium did not start: {exc}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait(driver, css: str, timeout: float = 30, within=None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(within or driver, timeout).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))
    return (within or driver).find_element(By.CSS_SELECTOR, css)


def sign_in(driver, airflow: stack.Airflow, user: str) -> None:
    driver.get(f"{airflow.url}/auth/login?next=/")
    wait(driver, "input[name=username]").send_keys(user)
    wait(driver, "input[name=password]").send_keys(USERS[user][1])
    wait(driver, "button[type=submit]").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not driver.get_cookie("_token"):
        time.sleep(0.2)
    assert driver.get_cookie("_token"), f"{user} could not sign in: {driver.page_source[:500]}"


def open_images(driver, airflow: stack.Airflow) -> None:
    """The Images entry of Airflow's navigation: the page in a frame of the UI."""
    from selenium.webdriver.common.by import By

    driver.get(f"{airflow.url}/")
    wait(driver, "a[href$='/plugin/imagectl'], a[href*='plugin/imagectl']", 60).click()
    frame = wait(driver, "iframe", 30)
    driver.switch_to.frame(frame)
    wait(driver, "section.env[data-environment=prd]", 60)
    assert driver.find_element(By.CSS_SELECTOR, "h1").text == "Images"


def screenshot(driver, name: str) -> None:
    """Kept with the test's output; IMAGES_PAGE_SCREENSHOTS=docs saves the README's pictures."""
    target = os.environ.get("IMAGES_PAGE_SCREENSHOTS")
    if target:
        driver.switch_to.default_content()
        driver.save_screenshot(str(Path(target) / name))


def rows(section) -> list[dict[str, str]]:
    from selenium.webdriver.common.by import By

    cells = ("revision", "time", "action", "tag", "release", "jira", "commit", "verified", "actor", "reason")
    found = []
    for row in section.find_elements(By.CSS_SELECTOR, "tbody tr"):
        values = [td.text for td in row.find_elements(By.CSS_SELECTOR, "td")]
        found.append(dict(zip(cells, values, strict=False)))
    return found


# -- the tests -----------------------------------------------------------------------------------------------------


def test_installs_beside_airflow_s_pins_and_loads(deployment):
    overlay = deployment.overlay
    assert not overlay.pinned, f"distributions Airflow pins would change: {overlay.pinned}"
    assert set(overlay.added) >= {"imagectl"} and not {"apache-airflow", "apache-airflow-core", "fastapi"} & set(overlay.added)
    admin = headers(deployment.airflow, "imagectl")
    plugins = requests.get(f"{deployment.airflow.url}/api/v2/plugins", headers=admin, timeout=10).json()["plugins"]
    mine = next(p for p in plugins if p["name"] == "imagectl")
    assert mine["fastapi_apps"][0]["url_prefix"] == "/imagectl" and mine["external_views"][0]["url_route"] == "imagectl"
    assert "imagectl==" in mine["source"]  # the entry point of the installed distribution
    errors = requests.get(f"{deployment.airflow.url}/api/v2/plugins/importErrors", headers=admin, timeout=10).json()
    assert errors["total_entries"] == 0, errors
    dag_errors = requests.get(f"{deployment.airflow.url}/api/v2/importErrors", headers=admin, timeout=10).json()
    assert dag_errors["total_entries"] == 0, dag_errors
    params = requests.get(f"{deployment.airflow.url}/api/v2/dags/{OPS}/details", headers=admin, timeout=10).json()["params"]
    assert params["action"]["schema"]["enum"] == ["rollback", "freeze", "unfreeze"]
    assert params["environment"]["schema"]["enum"] == ["dev", "prd"]  # [imagectl] environments, in imagectl.toml's order
    assert params["reason"]["schema"]["minLength"] == 1


def test_anonymous_requests_get_no_page_and_no_data(deployment):
    url = deployment.airflow.url
    paths = ["/imagectl/", "/imagectl/api/environments", "/imagectl/api/environments/prd", "/imagectl/act?action=rollback&environment=prd"]
    for path in paths:
        for extra in ({}, {"Authorization": "Bearer not-a-token"}, {"Cookie": "_token=forged.jwt.value"}):
            answer = requests.get(url + path, headers=extra, timeout=10, allow_redirects=False)
            assert answer.status_code in (401, 403), (path, extra, answer.status_code)
            assert "DATA-1" not in answer.text and "dbt_image" not in answer.text, (path, answer.text[:300])
    page = requests.get(url + "/imagectl/", timeout=10)
    assert page.status_code == 401 and "Sign in to Airflow to see this page" in page.text and "/auth/login" in page.text


def test_a_viewer_reads_but_cannot_act(deployment, browser):
    airflow = deployment.airflow
    data = deployment.data("viewer")
    assert [e["environment"] for e in data["environments"]] == ["dev", "prd"]
    viewer = headers(airflow, "viewer")
    form = requests.get(f"{airflow.url}/imagectl/act?action=rollback&environment=prd", headers=viewer, timeout=10)
    assert form.status_code == 403 and "reason" not in form.text  # the plugin's own endpoint refuses
    trigger = requests.post(
        f"{airflow.url}/api/v2/dags/{OPS}/dagRuns",
        json={"logical_date": None, "conf": {"action": "rollback", "environment": "prd", "reason": "no"}},
        headers=viewer,
        timeout=10,
    )
    assert trigger.status_code == 403  # and so does Airflow
    sign_in(browser, airflow, "viewer")
    open_images(browser, airflow)
    from selenium.webdriver.common.by import By

    assert not browser.find_elements(By.CSS_SELECTOR, "a[data-action], a.button.small")
    assert "which your Airflow role does not allow" in browser.page_source
    browser.get(f"{airflow.url}/imagectl/act?action=freeze&environment=prd")
    assert "Airflow refused" in browser.page_source and not browser.find_elements(By.ID, "ops-form")


def test_an_analyst_rolls_back_prd_from_the_page_and_the_next_run_uses_the_previous_image(deployment, browser):
    from selenium.webdriver.common.by import By

    airflow = deployment.airflow
    before = deployment.data("viewer", "prd")["environment"]
    assert before["image"]["tag"] == "DATA-1-2" and before["last_run"]["verdict"] == "ran the deployed image"
    sign_in(browser, airflow, "analyst")
    open_images(browser, airflow)
    dev = browser.find_element(By.CSS_SELECTOR, "section[data-environment=dev]")
    prd = browser.find_element(By.CSS_SELECTOR, "section[data-environment=prd]")
    assert [r["tag"] for r in rows(dev)] == ["DATA-1-2", "DATA-1-1"]
    assert [(r["revision"], r["tag"], r["release"], r["action"]) for r in rows(prd)] == [
        ("* 2", "DATA-1-2", "v1.0.1", "promote"),
        ("1", "DATA-1-1", "v1.0.0", "promote"),
    ]
    assert "✔ ran the deployed image" in prd.text and "before-rollback" in prd.text
    assert prd.find_element(By.LINK_TEXT, "DATA-1").get_attribute("href").startswith("https://jira.example/browse/DATA-1")
    commit = git(deployment.repo, "rev-parse", "HEAD")
    assert prd.find_element(By.PARTIAL_LINK_TEXT, commit[:12]).get_attribute("href") == f"https://git.example/shop/commit/{commit}"
    screenshot(browser, "images-page.png")
    browser.switch_to.default_content()
    browser.switch_to.frame(wait(browser, "iframe"))

    # Rollback on prd: the form opens prefilled; the reason is required.
    browser.find_element(By.CSS_SELECTOR, "section[data-environment=prd] a[data-action=rollback]").click()
    form = wait(browser, "#ops-form")
    assert form.find_element(By.ID, "action").get_attribute("value") == "rollback"
    assert form.find_element(By.ID, "environment").get_attribute("value") == "prd"
    form.find_element(By.ID, "reason").send_keys("orders v2 double-counts revenue; DATA-1 investigating")
    screenshot(browser, "images-rollback-form.png")
    browser.switch_to.default_content()
    browser.switch_to.frame(wait(browser, "iframe"))
    browser.find_element(By.ID, "trigger").click()

    # The page follows the run, then shows prd's new revision with the analyst as actor.
    notice = wait(browser, "#run-notice[data-state=success], #run-notice[data-state=failed]", 240)
    run_id = notice.get_attribute("data-run")
    assert notice.get_attribute("data-state") == "success", deployment.log(OPS, run_id, "operate")
    prd = wait(browser, "section[data-environment=prd]")
    newest = rows(prd)[0]
    assert (newest["revision"], newest["action"], newest["tag"], newest["actor"]) == ("* 3", "rollback", "DATA-1-1", "analyst")
    assert newest["reason"] == "orders v2 double-counts revenue; DATA-1 investigating" and newest["release"] == "v1.0.0"
    log = "\n".join(deployment.log(OPS, run_id, "operate"))
    assert "imagectl_ops: rollback prd by analyst" in log and "Plan: rollback DATA-1-1 to prd (revision 3: DATA-1-2 → DATA-1-1)" in log
    assert "prd: revision 3 recorded — rollback DATA-1-1 (v1.0.0)" in log

    # The next dbt run of prd runs the previous image: the container that ran it is DATA-1-1's image.
    deployment.imagectl("trigger", "dbt_build_prd", "--env", "prd", "--run-id", "after-rollback", "--wait", "--timeout", "300")
    import docker

    client = docker.from_env()
    ran = client.containers.get("dbt_build_prd-after-rollback")
    reference = deployment.data("viewer", "prd")["environment"]["variable_value"]
    assert reference.split("@")[0].endswith(":DATA-1-1")
    assert ran.image.id == client.images.get(reference.split(":DATA-1-1")[0] + "@" + reference.split("@")[1]).id
    browser.refresh()
    browser.switch_to.default_content()
    open_images(browser, airflow)
    prd = browser.find_element(By.CSS_SELECTOR, "section[data-environment=prd]")
    assert "after-rollback" in prd.text and "✔ ran the deployed image" in prd.text
    screenshot(browser, "images-after-rollback.png")


def test_freeze_and_unfreeze_as_the_triggering_user_and_a_refusal_fails_the_run(deployment):
    frozen = deployment.trigger_ops("analyst", {"action": "freeze", "environment": "dev", "reason": "INC-7: revenue is off"})
    assert deployment.wait_run(OPS, frozen)["state"] == "success"
    dev = deployment.data("viewer", "dev")["environment"]
    assert dev["frozen"]["by"] == "analyst" and dev["frozen"]["reason"] == "INC-7: revenue is off"
    assert deployment.imagectl("deploy", "DATA-1-1", "--env", "dev", ok=False).exit_code == 14  # the CLI sees the freeze
    unfrozen = deployment.trigger_ops("analyst", {"action": "unfreeze", "environment": "dev", "reason": "fixed"})
    assert deployment.wait_run(OPS, unfrozen)["state"] == "success"
    assert deployment.data("viewer", "dev")["environment"]["frozen"] is None

    refused = deployment.trigger_ops("analyst", {"action": "rollback", "environment": "prd", "target": "99", "reason": "wrong number"})
    run = deployment.wait_run(OPS, refused)
    assert run["state"] == "failed"
    log = deployment.log(OPS, refused, "operate")
    assert "error: prd has no revision 99 — see imagectl history --env prd" in log
    assert not any("Traceback" in line for line in log if "error:" in line)
    history = deployment.imagectl("history", "--env", "prd", "-o", "json").stdout
    assert [r["revision"] for r in json.loads(history)["revisions"]][0] == 3  # nothing was recorded


def test_the_page_reads_history_with_a_limit(deployment):
    one = deployment.data("viewer", "dev")["environment"]
    assert len(one["revisions"]) >= 2
    limited = requests.get(
        f"{deployment.airflow.url}/imagectl/api/environments/dev?limit=1", headers=headers(deployment.airflow, "viewer"), timeout=10
    ).json()["environment"]
    assert len(limited["revisions"]) == 1 and limited["revisions"][0]["revision"] == one["revisions"][0]["revision"]
    unknown = requests.get(
        f"{deployment.airflow.url}/imagectl/api/environments/stg", headers=headers(deployment.airflow, "viewer"), timeout=10
    )
    assert unknown.status_code == 404 and "does not run environment 'stg'" in unknown.text
    too_many = requests.get(
        f"{deployment.airflow.url}/imagectl/api/environments?limit=100000", headers=headers(deployment.airflow, "viewer"), timeout=10
    )
    assert too_many.status_code == 422
