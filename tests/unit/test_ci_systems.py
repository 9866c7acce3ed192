"""imagectl ci on Bamboo, GitLab CI and GitHub Actions: each system detected from its own variables, and the same
plan from each — tag, environment, DAG run ids, where each value came from — with credentials stripped from URLs."""

import pytest

from imagectl.build_info import resolve_actor, resolve_build_number
from imagectl.ci_systems import SYSTEMS, detect
from imagectl.commands.ci import Ci, CiRequest
from imagectl.errors import InputError
from imagectl.progress import Progress
from tests.unit.helpers import Stack, config

SHA = "c" * 40
BAMBOO = {
    "bamboo_buildNumber": "7",
    "bamboo_planRepository_branchName": "feature/DATA-5-x",
    "bamboo_planRepository_revision": SHA,
    "bamboo_buildResultKey": "DATA-DBT-7",
    "bamboo_buildResultsUrl": "https://bamboo.example/browse/DATA-DBT-7",
    "bamboo_ManualBuildTriggerReason_userName": "kim",
}
GITLAB = {
    "GITLAB_CI": "true",
    "CI_PIPELINE_IID": "7",
    "CI_PIPELINE_ID": "90210",
    "CI_PROJECT_PATH_SLUG": "data-dbt",
    "CI_COMMIT_BRANCH": "feature/DATA-5-x",
    "CI_COMMIT_SHA": SHA,
    "CI_PROJECT_URL": "https://gitlab.example/data/dbt",
    "GITLAB_USER_LOGIN": "kim",
    "CI_PIPELINE_URL": "https://ci-token:glpat-SECRET@gitlab.example/data/dbt/-/pipelines/90210",
}
GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_RUN_NUMBER": "7",
    "GITHUB_RUN_ID": "5550001",
    "GITHUB_REPOSITORY_ID": "42",
    "GITHUB_REF_NAME": "feature/DATA-5-x",
    "GITHUB_HEAD_REF": "",
    "GITHUB_SHA": SHA,
    "GITHUB_SERVER_URL": "https://github.example",
    "GITHUB_REPOSITORY": "data/dbt",
    "GITHUB_ACTOR": "kim",
}
CI = '\n[ci]\nbranches = { "feature/*" = "dev", main = "prd" }\nbuild_environment = "dev"\nlightdash_dag = false\n'


def plan(environ, jira=None):
    stack = Stack(config(CI), environ=environ)
    return Ci(stack, CiRequest(jira=jira, wait=True), Progress(quiet=True)).plan()


@pytest.mark.parametrize(
    "environ, system, result_key, url",
    [
        (BAMBOO, "bamboo", "DATA-DBT-7", "https://bamboo.example/browse/DATA-DBT-7"),
        (GITLAB, "gitlab", "gitlab-data-dbt-90210", "https://gitlab.example/data/dbt/-/pipelines/90210"),
        (GITHUB, "github", "github-42-5550001", "https://github.example/data/dbt/actions/runs/5550001"),
    ],
    ids=["bamboo", "gitlab", "github"],
)
def test_each_ci_system_plans_the_same_build_deploy_and_trigger(environ, system, result_key, url):
    planned = plan(environ)
    assert planned.ci_system == system
    assert (planned.tag, planned.branch, planned.commit, planned.build_number) == ("DATA-5-7", "feature/DATA-5-x", SHA, 7)
    assert [s.step for s in planned.steps] == ["build", "deploy", "trigger"]
    assert planned.environment == "dev"
    assert planned.result_key == result_key and planned.steps[2].run_id == f"imagectl__{result_key}__dbt_build"
    assert planned.steps[2].conf == {"mode": "slim", "imagectl_tag": "DATA-5-7", "ci_result": result_key}
    assert planned.results_url == url  # GitLab's token in the URL is gone
    assert "SECRET" not in planned.text() and "SECRET" not in str(planned.json())
    assert resolve_actor(None, environ) == "kim"


def test_the_plan_says_which_variable_each_value_came_from():
    lines = plan(GITLAB).text().splitlines()
    assert lines[-1] == (
        "  read from    gitlab: branch from CI_COMMIT_BRANCH, build number from CI_PIPELINE_IID, "
        "result from gitlab-CI_PROJECT_PATH_SLUG-CI_PIPELINE_ID"
    )
    assert "(branch feature/DATA-5-x (CI_COMMIT_BRANCH))" in lines[2]
    github = plan(GITHUB).json()["sources"]
    assert github == {
        "branch": "GITHUB_REF_NAME",
        "build number": "GITHUB_RUN_NUMBER",
        "result": "github-GITHUB_REPOSITORY_ID-GITHUB_RUN_ID",
    }
    assert plan(BAMBOO).json()["sources"]["branch"] == "bamboo_planRepository_branchName"


def test_merge_request_and_pull_request_runs_take_the_source_branch():
    mr = {k: v for k, v in GITLAB.items() if k != "CI_COMMIT_BRANCH"} | {"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/DATA-8-mr"}
    assert (plan(mr).branch, plan(mr).tag, plan(mr).sources["branch"]) == (
        "feature/DATA-8-mr",
        "DATA-8-7",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    )
    pr = GITHUB | {"GITHUB_HEAD_REF": "feature/DATA-9-pr", "GITHUB_REF_NAME": "12/merge"}
    assert (plan(pr).branch, plan(pr).tag) == ("feature/DATA-9-pr", "DATA-9-7")


def test_main_deploys_to_prd_from_each_system():
    assert plan(GITLAB | {"CI_COMMIT_BRANCH": "main"}, jira="DATA-5").environment == "prd"
    assert plan(GITHUB | {"GITHUB_REF_NAME": "main"}, jira="DATA-5").environment == "prd"


def test_detection():
    assert [detect(e).key for e in (BAMBOO, GITLAB, GITHUB)] == ["bamboo", "gitlab", "github"]
    assert detect({}) is None and detect({"GITLAB_CI": "false", "GITHUB_ACTIONS": ""}) is None
    # A GitLab runner that also carries a stray bamboo_ variable is GitLab.
    assert detect(GITLAB | {"bamboo_buildNumber": "3"}).key == "gitlab"
    assert {s.key for s in SYSTEMS} == {"bamboo", "gitlab", "github"}


def test_the_missing_build_number_names_the_system_s_variable():
    with pytest.raises(InputError) as gitlab:
        resolve_build_number(None, {"GITLAB_CI": "true"})
    assert gitlab.value.one_line() == "no build number given — pass --build-number N (GitLab CI sets CI_PIPELINE_IID)"
    with pytest.raises(InputError) as nowhere:
        resolve_build_number(None, {})
    assert "Bamboo sets bamboo_buildNumber" in nowhere.value.one_line() and "GITHUB_RUN_NUMBER" in nowhere.value.one_line()
    assert resolve_build_number(None, GITHUB) == (7, "GITHUB_RUN_NUMBER")
