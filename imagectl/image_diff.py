"""What changes between two images of an environment: the commits between them (inside the dbt repository, with
gitpython), the Jira keys in those commits and the dbt files changed; outside the repository, their labels alone.
Used by ``imagectl diff``, by rollback's confirmation and by the Jira report of each change."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagectl import labels as L
from imagectl.config import Config
from imagectl.environment import Environment
from imagectl.errors import GitError
from imagectl.render import Result, v
from imagectl.tag_registry import build_commit
from imagectl.tagging import find_jira_keys, parse_build_tag


@dataclass
class Side:
    label: str  # "revision 12", "tag DATA-1-2"
    tag: str
    digest: str
    git_sha: str | None
    jira: str | None

    @classmethod
    def of(cls, label: str, tag: str, digest: str, git_sha: str | None) -> Side:
        parsed = parse_build_tag(tag)
        return cls(label, tag, digest, git_sha, parsed.jira if parsed else None)

    def json(self) -> dict[str, Any]:
        return {"label": self.label, "tag": self.tag, "digest": self.digest, "git_sha": self.git_sha, "jira": self.jira}


@dataclass
class Diff(Result):
    kind = "diff"

    environment: str
    a: Side  # from (the current image, for a rollback)
    b: Side  # to
    in_repository: bool = False
    commits_removed: list[dict[str, str]] = field(default_factory=list)  # in A, not in B: what going to B undoes
    commits_added: list[dict[str, str]] = field(default_factory=list)  # in B, not in A
    jira_keys: list[str] = field(default_factory=list)
    keys_removed: list[str] = field(default_factory=list)  # the Jira keys of the commits going from A to B undoes
    keys_added: list[str] = field(default_factory=list)
    dbt_files: list[str] = field(default_factory=list)
    note: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "from": self.a.json(),
            "to": self.b.json(),
            "in_repository": self.in_repository,
            "commits_removed": self.commits_removed,
            "commits_added": self.commits_added,
            "jira_keys": self.jira_keys,
            "dbt_files": self.dbt_files,
            "note": self.note,
        }

    def text(self) -> str:
        def side(s: Side) -> str:
            return f"{s.label}: {v(s.tag)} ({s.digest[:19]}, commit {(s.git_sha or '?')[:12]})"

        lines = [f"from {side(self.a)}", f"to   {side(self.b)}"]
        if self.note:
            lines.append(v(self.note))
        if self.in_repository:
            if self.commits_removed:
                lines.append(f"commits undone ({len(self.commits_removed)}):")
                lines += [f"  {c['sha'][:12]} {v(c['subject'])[:100]}" for c in self.commits_removed[:30]]
                if len(self.commits_removed) > 30:
                    lines.append(f"  … and {len(self.commits_removed) - 30} more")
            if self.commits_added:
                lines.append(f"commits added ({len(self.commits_added)}):")
                lines += [f"  {c['sha'][:12]} {v(c['subject'])[:100]}" for c in self.commits_added[:30]]
            if not self.commits_removed and not self.commits_added:
                lines.append("no commits between them (same commit)")
            lines.append(f"Jira keys: {', '.join(self.jira_keys) or '-'}")
            lines.append(f"dbt files changed: {len(self.dbt_files)}")
            lines += [f"  {v(f)}" for f in self.dbt_files[:40]]
        return "\n".join(lines)


def _repo(config: Config) -> Any:
    from imagectl.adapters.git_repo import GitRepo

    try:
        return GitRepo(config.root)
    except GitError:
        return None


def diff_images(config: Config, env: Environment, a: Side, b: Side) -> Diff:
    """What changes from image ``a`` to image ``b``; a side's unknown commit is taken from its build record or labels."""
    for side in (a, b):
        side.git_sha = side.git_sha or build_commit(env.registry, env.repository, side.tag, side.digest) or _label_commit(env, side.digest)
    a_sha, b_sha = a.git_sha, b.git_sha
    diff = Diff(env.name, a, b)
    if not a_sha or not b_sha:
        diff.note = "the commit of one image is unknown (no record or label): labels only"
        return diff
    repo = _repo(config)
    if repo is None:
        diff.note = "not inside the dbt repository: labels only (run imagectl diff from a checkout for commits and files)"
        return diff
    missing = [s for s in (a_sha, b_sha) if not repo.has_commit(s)]
    if missing:
        diff.note = f"commit {missing[0][:12]} is not in this checkout (git fetch): labels only"
        return diff
    removed = repo.commits_between(b_sha, a_sha)
    added = repo.commits_between(a_sha, b_sha)
    diff.in_repository = True
    diff.commits_removed = [{"sha": c.sha, "subject": c.subject, "author": c.author, "time": c.time} for c in removed]
    diff.commits_added = [{"sha": c.sha, "subject": c.subject, "author": c.author, "time": c.time} for c in added]

    def keys(commits: list[Any]) -> list[str]:
        found: list[str] = []
        for commit in commits:
            found += [k for k in find_jira_keys(commit.subject, config.jira_projects) if k not in found]
        return found

    diff.keys_removed, diff.keys_added = keys(removed), keys(added)
    diff.jira_keys = list(dict.fromkeys(diff.keys_removed + diff.keys_added))
    project = (
        str((config.root / config.dbt_project_path).resolve().relative_to(repo.root.resolve()))
        if _inside(config.root / config.dbt_project_path, repo.root)
        else "."
    )
    diff.dbt_files = repo.changed_files(a_sha, b_sha, "" if project == "." else project)
    return diff


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _label_commit(env: Environment, digest: str) -> str | None:
    """The revision label from the image's config blob (images built outside imagectl's records)."""
    manifest = env.image(digest)
    if manifest is None:
        return None
    config_digest = (manifest.doc.get("config") or {}).get("digest")
    if not isinstance(config_digest, str):
        return None
    try:
        config = json.loads(env.registry.read_blob(env.repository, config_digest, limit=4 << 20))
    except Exception:  # noqa: BLE001 - labels are a fallback only
        return None
    labels = ((config.get("config") or {}).get("Labels") or {}) if isinstance(config, dict) else {}
    value = labels.get(L.REVISION) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else None
