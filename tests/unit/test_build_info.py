"""Jira key and build number resolution, against real git repositories made in tmp."""

import pytest

from imagectl.build_info import resolve_build
from imagectl.config import load_config
from imagectl.errors import InputError
from tests.conftest import git
from tests.unit.test_config import VALID, write_project


@pytest.fixture
def project(git_repo):
    write_project(git_repo, VALID.replace('projects = ["DATA"]', 'projects = ["DATA", "OPS"]'))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "add project")
    return git_repo


def resolve(repo, environ=None, **kw):
    kw = {"jira": None, "build_number": "7", "tag": None, **kw}
    return resolve_build(load_config(repo / "imagectl.toml"), environ=environ or {}, **kw)


def test_flag_wins(project):
    git(project, "checkout", "-qb", "feature/DATA-1-x")
    r = resolve(project, jira="OPS-9")
    assert (r.info.jira, r.jira_source, r.info.tag) == ("OPS-9", "--jira", "OPS-9-7")


def test_bamboo_branch_before_git_branch(project):
    git(project, "checkout", "-qb", "feature/DATA-1-x")
    r = resolve(project, {"bamboo_planRepository_branchName": "feature/OPS-22-y", "bamboo_buildNumber": "57"}, build_number=None)
    assert r.info.tag == "OPS-22-57"
    assert r.info.branch == "feature/OPS-22-y"
    assert "bamboo_planRepository_branchName" in r.jira_source
    assert r.build_number_source == "bamboo_buildNumber"


def test_git_branch(project):
    git(project, "checkout", "-qb", "feature/DATA-1234-add-orders")
    r = resolve(project)
    assert r.info.tag == "DATA-1234-7" and r.info.branch == "feature/DATA-1234-add-orders"
    assert r.info.commit == git(project, "rev-parse", "HEAD")


def test_commit_messages_since_main(project):
    git(project, "checkout", "-qb", "cleanup")
    (project / "a").write_text("a")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "OPS-5 tidy up")
    (project / "b").write_text("b")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "more, see DATA-6")
    assert resolve(project).info.jira == "DATA-6"  # newest commit first


def test_commits_on_main_before_the_branch_do_not_count(project):
    (project / "a").write_text("a")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "DATA-99 old work on main")
    git(project, "checkout", "-qb", "cleanup")
    (project / "b").write_text("b")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "no key here")
    with pytest.raises(InputError) as info:
        resolve(project)
    assert "pass --jira" in info.value.one_line()


def test_merge_commit_on_main_names_the_branch(project):
    git(project, "checkout", "-qb", "feature/DATA-42-orders")
    (project / "a").write_text("a")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "work")
    git(project, "checkout", "-q", "main")
    git(project, "merge", "-q", "--no-ff", "feature/DATA-42-orders", "-m", "Merge branch 'feature/DATA-42-orders'")
    r = resolve(project)
    assert r.info.jira == "DATA-42" and r.info.branch == "main"


def test_allow_list_skips_other_projects(project):
    git(project, "checkout", "-qb", "feature/UTF-8-DATA-3")
    assert resolve(project).info.jira == "DATA-3"


def test_no_key_anywhere(project):
    git(project, "checkout", "-qb", "cleanup")
    with pytest.raises(InputError) as info:
        resolve(project)
    assert "no Jira key of project DATA/OPS found" in info.value.one_line()


def test_build_number_required(project):
    git(project, "checkout", "-qb", "feature/DATA-1-x")
    with pytest.raises(InputError) as info:
        resolve(project, build_number=None)
    assert "--build-number" in info.value.one_line() and "bamboo_buildNumber" in info.value.one_line()
    with pytest.raises(InputError):
        resolve(project, {"bamboo_buildNumber": "007"}, build_number=None)


def test_remote_credentials_never_reach_labels(project):
    git(project, "remote", "add", "origin", "https://user:s3cret@bitbucket.example.com/data/dbt.git")
    git(project, "checkout", "-qb", "feature/DATA-1-x")
    assert resolve(project).info.source == "https://bitbucket.example.com/data/dbt.git"
