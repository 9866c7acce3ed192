"""Decide what a build is: Jira key, build number, tag, commit, branch — from flags, CI variables and git.

Order for the Jira key: ``--jira``; the branch name (Bamboo's branch variable first, else the checked-out branch);
the commit messages since the branch left main (on main, the merge commit names the merged branch).
The build number comes from ``--build-number`` or ``bamboo_buildNumber``; there is no silent default.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagectl.clock import now_text
from imagectl.config import Config
from imagectl.errors import GitError, InputError
from imagectl.labels import BuildInfo
from imagectl.sanitize import MAX_ACTOR, check_free_text, strip_credentials, visible
from imagectl.tagging import find_jira_keys, make_build_tag, validate_build_number, validate_jira_key, validate_tag

if TYPE_CHECKING:
    from imagectl.adapters.git_repo import GitRepo

BAMBOO_BUILD_NUMBER = "bamboo_buildNumber"
BAMBOO_BRANCH = "bamboo_planRepository_branchName"
BAMBOO_REVISION = "bamboo_planRepository_revision"
BAMBOO_REPOSITORY_URL = "bamboo_planRepository_repositoryUrl"
BAMBOO_USER = "bamboo_ManualBuildTriggerReason_userName"
_COMMIT_RE = re.compile(r"[0-9a-f]{7,64}")


@dataclass(frozen=True)
class ResolvedBuild:
    info: BuildInfo
    jira_source: str  # where the Jira key came from, shown in the plan
    build_number_source: str


def resolve_actor(flag: str | None, environ: Mapping[str, str]) -> str:
    """--actor, else the Bamboo user who triggered the build, else the OS user."""
    if flag is not None:
        return check_free_text(flag, "actor", MAX_ACTOR) or "unknown"
    if environ.get(BAMBOO_USER):
        return environ[BAMBOO_USER][:MAX_ACTOR]
    try:
        return getpass.getuser()[:MAX_ACTOR]
    except (KeyError, OSError):
        return "unknown"


def resolve_jira(config: Config, flag: str | None, branch: str | None, branch_source: str, messages: list[str]) -> tuple[str, str]:
    if flag:
        return validate_jira_key(flag, config.jira_projects), "--jira"
    if branch:
        keys = find_jira_keys(branch, config.jira_projects)
        if keys:
            return keys[0], f"branch {branch} ({branch_source})"
    for message in messages:
        keys = find_jira_keys(message, config.jira_projects)
        if keys:
            first = (message.strip().splitlines() or [""])[0]
            return keys[0], f"commit message '{visible(first)[:60]}'"
    allowed = f" of project {'/'.join(config.jira_projects)}" if config.jira_projects else ""
    raise InputError(
        f"no Jira key{allowed} found in --jira, the branch name ({branch or 'none'}) or the commit messages since {config.main_branch}",
        "pass --jira DATA-1234, or name the branch like feature/DATA-1234-description",
    )


@dataclass(frozen=True)
class Source:
    """Where the build comes from: branch and commit (Bamboo's variables first, else the checkout)."""

    branch: str | None
    branch_source: str
    commit: str
    remote_url: str | None
    repo: GitRepo | None


def resolve_build_number(flag: str | None, environ: Mapping[str, str]) -> tuple[int, str]:
    if flag is not None:
        return validate_build_number(flag), "--build-number"
    if environ.get(BAMBOO_BUILD_NUMBER):
        return validate_build_number(environ[BAMBOO_BUILD_NUMBER]), BAMBOO_BUILD_NUMBER
    raise InputError("no build number given", f"pass --build-number N (Bamboo sets {BAMBOO_BUILD_NUMBER})")


def resolve_source(config: Config, environ: Mapping[str, str]) -> Source:
    from imagectl.adapters.git_repo import GitRepo  # gitpython loads lazily: not needed for --help or tags

    repo: GitRepo | None
    try:
        repo = GitRepo(config.root)
        state = repo.state()
    except GitError:
        if not environ.get(BAMBOO_REVISION):
            raise
        repo, state = None, None
    bamboo_branch = environ.get(BAMBOO_BRANCH)
    commit = (environ.get(BAMBOO_REVISION) or (state.commit if state else "")).strip().lower()
    if not _COMMIT_RE.fullmatch(commit):
        raise InputError(f"'{visible(commit)[:60]}' is not a commit id", f"check {BAMBOO_REVISION} (a git commit SHA)")
    return Source(
        branch=bamboo_branch or (state.branch if state else None),
        branch_source=BAMBOO_BRANCH if bamboo_branch else "git",
        commit=commit,
        remote_url=state.remote_url if state else None,
        repo=repo,
    )


def resolve_build(
    config: Config,
    *,
    jira: str | None,
    build_number: str | None,
    tag: str | None,
    environ: Mapping[str, str],
    source: Source | None = None,
) -> ResolvedBuild:
    number, number_source = resolve_build_number(build_number, environ)
    if tag is not None:
        validate_tag(tag)
    source = source or resolve_source(config, environ)
    branch = source.branch
    # Only read history when the flag and the branch did not settle it: it is the slowest source.
    messages: list[str] = []
    if not jira and not (branch and find_jira_keys(branch, config.jira_projects)) and source.repo is not None:
        messages = source.repo.messages_since(config.main_branch)
    key, jira_source = resolve_jira(config, jira, branch, source.branch_source, messages)

    info = BuildInfo(
        tag=tag or str(make_build_tag(key, number)),
        jira=key,
        build_number=number,
        commit=source.commit,
        branch=branch,
        source=strip_credentials(config.source or environ.get(BAMBOO_REPOSITORY_URL) or source.remote_url),
        created=now_text(),
        project=config.project_name,
    )
    return ResolvedBuild(info=info, jira_source=jira_source, build_number_source=number_source)
