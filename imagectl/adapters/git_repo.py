"""The git repository the build runs in (gitpython): commit, branch, remote and recent commit messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import git

from imagectl.errors import GitError


@dataclass(frozen=True)
class GitState:
    commit: str
    branch: str | None  # None on a detached HEAD (CI checkouts often are)
    remote_url: str | None
    dirty: bool


def _strip_credentials(url: str) -> str:
    """Never put a token from a remote URL into a label."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class GitRepo:
    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(f"{path} is not inside a git repository", "run imagectl from your dbt repository's checkout") from None

    def state(self) -> GitState:
        try:
            commit = self.repo.head.commit.hexsha
        except ValueError:
            raise GitError("the git repository has no commits yet", "commit something first") from None
        try:
            branch: str | None = self.repo.active_branch.name
        except TypeError:
            branch = None
        remote_url = None
        if self.repo.remotes:
            remote = self.repo.remotes["origin"] if "origin" in [r.name for r in self.repo.remotes] else self.repo.remotes[0]
            remote_url = _strip_credentials(next(iter(remote.urls), "")) or None
        return GitState(commit=commit, branch=branch, remote_url=remote_url, dirty=self.repo.is_dirty(untracked_files=False))

    def messages_since(self, main_branch: str) -> list[str]:
        """Commit messages on HEAD since it left ``main_branch``, newest first.

        On the main branch itself this is the HEAD commit's message: a merge commit there names the merged branch."""
        main_ref = None
        for candidate in (main_branch, f"origin/{main_branch}"):
            try:
                self.repo.rev_parse(candidate)
                main_ref = candidate
                break
            except (git.BadName, ValueError):
                continue
        try:
            head = self.repo.head.commit
        except ValueError:
            return []
        if main_ref is None:
            return [head.message]
        commits = list(self.repo.iter_commits(f"{main_ref}..HEAD", max_count=200))
        if not commits:
            return [head.message]
        return [c.message for c in commits]
