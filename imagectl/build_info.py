"""Decide what a build is: Jira key, build number, tag, commit, branch — from flags, CI variables and git.

Order for the Jira key: ``--jira``; the branch name (the CI system's branch variable first, else the checked-out
branch); the commit messages since the branch left main (on main, the merge commit names the merged branch).
The build number comes from ``--build-number`` or the CI system's (``bamboo_buildNumber``, ``CI_PIPELINE_IID``,
``GITHUB_RUN_NUMBER``: ci_systems.py, which also detects the system); there is no silent default.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagectl.ci_systems import build_number_hint, detect
from imagectl.clock import now_text
from imagectl.config import Config
from imagectl.errors import GitError, InputError
from imagectl.labels import BuildInfo
from imagectl.sanitize import MAX_ACTOR, check_free_text, strip_credentials, visible
from imagectl.tagging import find_jira_keys, make_build_tag, validate_build_number, validate_jira_key, validate_tag

if TYPE_CHECKING:
    from imagectl.adapters.git_repo import GitRepo

_COMMIT_RE = re.compile(r"[0-9a-f]{7,64}")


@dataclass(frozen=True)
class ResolvedBuild:
    info: BuildInfo
    jira_source: str  # where the Jira key came from, shown in the plan
    build_number_source: str


def resolve_actor(flag: str | None, environ: Mapping[str, str]) -> str:
    """--actor, else the CI system's user who triggered the build, else the OS user."""
    if flag is not None:
        return check_free_text(flag, "actor", MAX_ACTOR) or "unknown"
    system = detect(environ)
    found = system.find("actor", environ) if system else None
    if found:
        return found.value[:MAX_ACTOR]
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
    """Where the build comes from: branch and commit (the CI system's variables first, else the checkout)."""

    branch: str | None
    branch_source: str
    commit: str
    remote_url: str | None
    repo: GitRepo | None


def resolve_build_number(flag: str | None, environ: Mapping[str, str]) -> tuple[int, str]:
    if flag is not None:
        return validate_build_number(flag), "--build-number"
    system = detect(environ)
    found = system.find("build_number", environ) if system else None
    if found:
        return validate_build_number(found.value), found.source
    sets = f"{system.name} sets {system.variables('build_number')}" if system else build_number_hint()
    raise InputError("no build number given", f"pass --build-number N ({sets})")


def resolve_source(config: Config, environ: Mapping[str, str]) -> Source:
    from imagectl.adapters.git_repo import GitRepo  # gitpython loads lazily: not needed for --help or tags

    repo: GitRepo | None
    system = detect(environ)
    revision = system.find("revision", environ) if system else None
    try:
        repo = GitRepo(config.root)
        state = repo.state()
    except GitError:
        if revision is None:
            raise
        repo, state = None, None
    branch = system.find("branch", environ) if system else None
    commit = (revision.value if revision else (state.commit if state else "")).strip().lower()
    if not _COMMIT_RE.fullmatch(commit):
        raise InputError(
            f"'{visible(commit)[:60]}' is not a commit id", f"check {revision.source if revision else 'the checkout'} (a git commit SHA)"
        )
    return Source(
        branch=branch.value if branch else (state.branch if state else None),
        branch_source=branch.source if branch else "git",
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
        source=strip_credentials(config.source or _ci_value("repository_url", environ) or source.remote_url),
        created=now_text(),
        project=config.project_name,
    )
    return ResolvedBuild(info=info, jira_source=jira_source, build_number_source=number_source)


def _ci_value(field: str, environ: Mapping[str, str]) -> str | None:
    system = detect(environ)
    found = system.find(field, environ) if system else None
    return found.value if found else None
