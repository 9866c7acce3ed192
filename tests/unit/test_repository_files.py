"""The files this repository ships are valid: its imagectl.toml and the entrypoint's shell syntax."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from imagectl.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_is_valid():
    config = load_config(ROOT / "imagectl.toml")
    assert config.images["build"].build_args == {"DBT_PROJECT_PATH": "sample_project"}
    assert config.environments["prd"].release and config.environments["prd"].confirm
    assert {r.kind for r in config.registries.values()} == {"ecr"}
    assert config.registries["prd"].retention.keep_builds == 100


def test_entrypoint_shell_syntax():
    subprocess.run(["bash", "-n", str(ROOT / "images/build/entrypoint.sh")], check=True)


def test_shell_scripts_shellcheck_clean():
    """In CI a missing shellcheck fails the run (scripts/setup.sh installs it): a check that skips is no check."""
    if not shutil.which("shellcheck"):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("shellcheck is not installed (scripts/setup.sh installs it)", pytrace=False)
        pytest.skip("shellcheck not installed (scripts/setup.sh installs it)")
    scripts = [ROOT / "images/build/entrypoint.sh", *sorted((ROOT / "scripts").glob("*.sh")), ROOT / ".ci/run"]
    subprocess.run(["shellcheck", "-x", *map(str, scripts)], check=True, cwd=ROOT)


def test_entrypoint_dry_run_builds_the_dbt_command(tmp_path):
    def run(*args, **env):
        result = subprocess.run(
            ["bash", str(ROOT / "images/build/entrypoint.sh"), "--dry-run", *args],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **env},
            cwd=tmp_path,
        )
        lines = (result.stdout + result.stderr).strip().splitlines()
        return result.returncode, lines[-1] if lines else ""

    assert run("--mode", "full") == (0, "entrypoint: mode=full; running: dbt build")
    assert run("--mode", "full", "--tags", "finance,daily", "--exclude-resource-types", "snapshot,seed", "--threads", "8") == (
        0,
        "entrypoint: mode=full; running: dbt build --select tag:finance tag:daily --exclude-resource-type snapshot "
        "--exclude-resource-type seed --threads 8",
    )
    # Environment variables work too; flags win over them.
    assert (
        run(DBT_MODE="full", DBT_SELECT="orders+", DBT_TARGET="prd")[1]
        == "entrypoint: mode=full; running: dbt build --select orders+ --target prd"
    )
    assert run("--target", "dev", DBT_MODE="full", DBT_TARGET="prd")[1] == "entrypoint: mode=full; running: dbt build --target dev"
    # Slim without state falls back to full, and says so.
    code, last = run("--mode", "slim")
    assert (code, last) == (0, "entrypoint: mode=full; running: dbt build")
    assert run("--mode", "fast")[0] == 2
