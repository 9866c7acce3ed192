"""Jira hears of every deploy (issue 24), against the Jira stand-in (tests/jira_standin.py, which validates each
request against Atlassian's documented schema) and the real local stack (registry, Airflow 3, images built from
commits that name issues): one Jira deployment per revision, re-runs replace it, a rollback reports the keys it
undoes as rolled_back, the gate refuses an issue not Done, and Jira down or refusing is one warning, never a
failed deploy. Data Center: one remote link per issue and revision, updated in place."""

from __future__ import annotations

import json

import pytest

from tests.integration.airflow_helpers import admin_headers
from tests.integration.project import Project, host
from tests.jira_standin import JiraStandIn

pytestmark = pytest.mark.usefixtures("python_stand_in")


@pytest.fixture
def jira():
    standin = JiraStandIn(issues={"DATA-1234": "Done", "OPS-7": "In Progress", "DATA-55": "Done"})
    yield standin
    standin.close()


def environments(airflow_url: str, var: str) -> str:
    return f"""
[environments.dev]
registry = "local"
airflow_url = "{airflow_url}"
variable = "{var}_dev"
[environments.prd]
registry = "local"
airflow_url = "{airflow_url}"
variable = "{var}_prd"
release = true
[environments.prd.jira]
require_status = ["Done"]
"""


def jira_table(standin: JiraStandIn, kind: str = "cloud") -> str:
    cloud = f'cloud_id = "{standin.cloud_id}"\napi_url = "{standin.url}"\n' if kind == "cloud" else ""
    return f'\n[jira]\nprojects = ["DATA", "OPS"]\nurl = "{standin.url}"\nkind = "{kind}"\n{cloud}pipeline = "dbt-demo"\n'


def make(make_project, oci_registry, airflow3, standin: JiraStandIn, var: str, kind: str = "cloud") -> Project:
    root = make_project(host(oci_registry), environments=environments(airflow3.url, var))
    config = root / "imagectl.toml"
    # [jira] replaces the fixture's own table (projects only)
    text = config.read_text().replace('[jira]\nprojects = ["DATA", "OPS"]\n', jira_table(standin, kind))
    config.write_text(text)
    return Project(None, root)


def lose_variable(airflow, key: str) -> None:
    """As if a deploy's Variable write never happened: the re-run finishes the same revision."""
    import requests

    response = requests.patch(
        f"{airflow.url}/api/v2/variables/{key}", json={"key": key, "value": "lost"}, headers=admin_headers(airflow), timeout=10
    )
    response.raise_for_status()


def run(imagectl, project: Project, standin: JiraStandIn, *args: str, kind: str = "cloud"):
    from tests.integration.project import CREDS

    result = imagectl(*args, "--config", project.config, "-o", "json", env={**CREDS, **standin.env(kind)})
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_every_revision_is_one_jira_deployment_and_rollbacks_report_what_they_undo(imagectl, make_project, oci_registry, airflow3, jira):
    project = make(make_project, oci_registry, airflow3, jira, "img_jira")
    project.imagectl = imagectl
    project.build(1, "DATA-1234 first orders model")
    project.build(2, "OPS-7 rename a column; DATA-55 fix the total")
    assert run(imagectl, project, jira, "deploy", "DATA-1234-1", "--env", "dev").exit_code == 0
    assert run(imagectl, project, jira, "deploy", "DATA-1234-2", "--env", "dev").exit_code == 0
    dev = jira.stored("dev")
    assert sorted(dev) == [1, 2]
    first, second = dev[1], dev[2]
    assert first["state"] == "successful" and first["environment"] == {"id": "dev", "displayName": "dev", "type": "development"}
    assert first["pipeline"]["id"] == "dbt-demo" and first["associations"][0]["values"] == ["DATA-1234"]
    assert second["associations"][0]["values"] == ["DATA-1234", "OPS-7", "DATA-55"]  # its own key, then the commits' since revision 1

    # A re-run that finishes the same revision (its Variable write was lost) replaces, never adds.
    requests_before = len(jira.submissions)
    lose_variable(airflow3, "img_jira_dev")
    again = run(imagectl, project, jira, "deploy", "DATA-1234-2", "--env", "dev")
    assert again.exit_code == 0 and json.loads(again.stdout)["state"] == "complete"
    assert len(jira.submissions) == requests_before + 1 and sorted(jira.stored("dev")) == [1, 2]
    assert jira.stored("dev")[2]["updateSequenceNumber"] > second["updateSequenceNumber"]

    rolled = run(imagectl, project, jira, "rollback", "--env", "dev", "--reason", "wrong totals")
    assert rolled.exit_code == 0, rolled.stderr
    back = jira.stored("dev")[3]
    assert back["state"] == "rolled_back" and back["associations"][0]["values"] == ["DATA-1234", "OPS-7", "DATA-55"]
    assert "wrong totals" in back["description"]


def test_the_gate_refuses_an_issue_not_done_and_force_is_recorded(imagectl, make_project, oci_registry, airflow3, jira):
    project = make(make_project, oci_registry, airflow3, jira, "img_gate")
    project.imagectl = imagectl
    project.build(1, "DATA-1234 first")
    project.build(2, "OPS-7 half done")
    for tag in ("DATA-1234-1", "DATA-1234-2"):
        assert run(imagectl, project, jira, "deploy", tag, "--env", "dev").exit_code == 0
    assert run(imagectl, project, jira, "promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes").exit_code == 0
    refused = run(imagectl, project, jira, "promote", "DATA-1234-2", "--from", "dev", "--to", "prd", "--yes")
    assert refused.exit_code == 21 and "OPS-7 is In Progress" in refused.stderr and "needed: Done" in refused.stderr, refused.stderr
    assert sorted(jira.stored("prd")) == [1]
    forced = run(
        imagectl, project, jira, "promote", "DATA-1234-2", "--from", "dev", "--to", "prd", "--yes", "--force", "--reason", "hotfix"
    )
    assert forced.exit_code == 0 and "Jira gate: OPS-7 is In Progress" in json.loads(forced.stdout)["revision"]["forced"]
    prd = jira.stored("prd")[2]
    assert prd["environment"]["type"] == "production" and prd["label"] == "DATA-1234-2 (v1.0.1)"
    jira.issues["OPS-7"] = "Done"
    project.build(3, "OPS-7 finished")
    assert run(imagectl, project, jira, "deploy", "DATA-1234-3", "--env", "dev").exit_code == 0
    assert run(imagectl, project, jira, "promote", "DATA-1234-3", "--from", "dev", "--to", "prd", "--yes").exit_code == 0


def test_jira_down_refusing_or_limiting_is_one_warning_never_a_failed_deploy(imagectl, make_project, oci_registry, airflow3, jira):
    project = make(make_project, oci_registry, airflow3, jira, "img_jiradown")
    project.imagectl = imagectl
    for n in (1, 2, 3, 4):
        project.build(n, f"DATA-1234 change {n}")
    jira.down = True
    down = run(imagectl, project, jira, "deploy", "DATA-1234-1", "--env", "dev")
    assert down.exit_code == 0 and "Jira was not told about dev revision 1" in down.stderr
    jira.down = False
    wrong = {**jira.env(), "IMAGECTL_JIRA_CLIENT_SECRET": "CANARY-not-the-secret"}
    from tests.integration.project import CREDS

    refused = imagectl("deploy", "DATA-1234-2", "--env", "dev", "--config", project.config, env={**CREDS, **wrong})
    assert refused.exit_code == 0 and "refused the OAuth credentials" in refused.stderr
    assert "CANARY" not in refused.stderr + refused.stdout
    jira.throttle = 10  # more 429s than the bounded retries
    limited = run(imagectl, project, jira, "deploy", "DATA-1234-3", "--env", "dev")
    assert limited.exit_code == 0 and "Jira was not told" in limited.stderr
    jira.throttle = 1  # one 429 with Retry-After: retried, then accepted
    assert run(imagectl, project, jira, "deploy", "DATA-1234-4", "--env", "dev").exit_code == 0
    assert sorted(jira.stored("dev")) == [4]
    jira.issues.clear()  # keys Jira does not know: the deployment is rejected, said in one warning
    unknown = run(imagectl, project, jira, "rollback", "--env", "dev", "--reason", "x")
    assert unknown.exit_code == 0 and "Jira does not know the issue keys DATA-1234" in unknown.stderr


def test_data_center_gets_one_remote_link_per_issue_and_revision(imagectl, make_project, oci_registry, airflow3, jira):
    project = make(make_project, oci_registry, airflow3, jira, "img_jiradc", kind="datacenter")
    project.imagectl = imagectl
    project.build(1, "DATA-1234 first")
    assert run(imagectl, project, jira, "deploy", "DATA-1234-1", "--env", "dev", kind="datacenter").exit_code == 0
    links = dict(jira.links)
    assert list(links) == [("DATA-1234", "imagectl:dbt-demo/dev/1")]
    link = links[("DATA-1234", "imagectl:dbt-demo/dev/1")]
    assert link["object"]["title"] == "dev revision 1: DATA-1234-1" and link["object"]["summary"].startswith("successful")
    lose_variable(airflow3, "img_jiradc_dev")
    assert run(imagectl, project, jira, "deploy", "DATA-1234-1", "--env", "dev", kind="datacenter").exit_code == 0
    assert len(jira.links) == 1  # the same link, updated
    gate = run(imagectl, project, jira, "promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes", kind="datacenter")
    assert gate.exit_code == 0, gate.stderr  # DATA-1234 is Done: the Data Center gate reads it with the token
