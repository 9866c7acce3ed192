"""The git repository the build runs in (gitpython): commit, branch, remote, commit messages, and what changed
between two commits (for ``imagectl diff``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from imagectl.errors import GitError
from imagectl.sanitize import strip_credentials


@dataclass(frozen=True)
class GitState:
    commit: str
    branch: str | None  # None on a detached HEAD (CI checkouts often are)
    remote_url: str | None


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str
    time: str


class GitRepo:
    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(f"{path} is not inside a git repository", "run imagectl from your dbt repository's checkout") from None
        self.root = Path(self.repo.working_tree_dir or path)

    def _refused(self) -> None:
        """git refuses a repository owned by another user ("dubious ownership", CVE-2022-24765): say so, not "no
        commits" (GitPython's own reading fails with a ValueError then)."""
        try:
            self.repo.git.rev_parse("--git-dir")
        except git.GitCommandError as exc:
            if "dubious ownership" in str(exc):
                raise GitError(
                    f'git refuses to read {self.root}: it is owned by another user ("dubious ownership")',
                    f"if you trust it: git config --global --add safe.directory {self.root}",
                ) from None

    def state(self) -> GitState:
        try:
            commit = self.repo.head.commit.hexsha
        except (ValueError, git.GitCommandError, OSError):  # OSError: git's batch reader quit (it refused the repository)
            self._refused()
            raise GitError("the git repository has no commits yet", "commit something first") from None
        try:
            branch: str | None = self.repo.active_branch.name
        except TypeError:
            branch = None
        remote_url = None
        if self.repo.remotes:
            names = [r.name for r in self.repo.remotes]
            remote = self.repo.remotes["origin"] if "origin" in names else self.repo.remotes[0]
            remote_url = strip_credentials(next(iter(remote.urls), "")) or None
        return GitState(commit=commit, branch=branch, remote_url=remote_url)

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
            return [str(head.message)]
        commits = list(self.repo.iter_commits(f"{main_ref}..HEAD", max_count=200))
        if not commits:
            return [str(head.message)]
        return [str(c.message) for c in commits]

    def has_commit(self, sha: str) -> bool:
        try:
            self.repo.commit(sha)
            return True
        except (git.BadName, ValueError, git.GitCommandError):
            return False

    def commits_between(self, old: str, new: str, limit: int = 500) -> list[Commit]:
        """Commits reachable from ``new`` but not from ``old``, newest first."""
        try:
            found = list(self.repo.iter_commits(f"{old}..{new}", max_count=limit))
        except (git.GitCommandError, ValueError) as exc:
            raise GitError(
                f"git cannot list the commits between {old[:12]} and {new[:12]}",
                f"fetch the repository's history ({exc.__class__.__name__})",
            ) from None
        return [
            Commit(
                c.hexsha,
                str(c.message).strip().splitlines()[0] if str(c.message).strip() else "",
                str(c.author.name),
                c.committed_datetime.isoformat(),
            )
            for c in found
        ]

    def changed_files(self, old: str, new: str, under: str) -> list[str]:
        """Paths changed between two commits, below ``under`` (relative to the repository root)."""
        try:
            output = self.repo.git.diff("--name-only", old, new, "--", under or ".")
        except git.GitCommandError:
            raise GitError(f"git cannot compare {old[:12]} and {new[:12]}", "fetch the repository's history") from None
        return [line for line in output.splitlines() if line]
