from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from imagectl.cli import cli

SCRUBBED_PREFIXES = ("AWS_", "IMAGECTL_", "bamboo_", "DOCKER_CONFIG")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's AWS, imagectl or Bamboo settings; docker's config dir is a throw-away one."""
    for key in list(os.environ):
        if key.startswith(SCRUBBED_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def imagectl():
    return run_cli


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=test@imagectl", "-c", "user.name=test", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Iterator[Path]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "initial")
    yield repo
