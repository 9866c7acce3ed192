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
    build_args = config.images["build"].build_args
    assert build_args == {"DBT_PROJECT_PATH": "sample_project", "DBT_PARSE_ENV": "DBT_DUCKDB_PATH=/data/jaffle.duckdb"}
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


def test_entrypoint_starts_from_the_parse_made_for_the_run_s_target(tmp_path):
    """The image's parse for the target the run passes is used, with the build's env values as defaults;
    a re-parse by dbt is reported (a stand-in dbt prints what it was given and dbt's own message)."""
    parse = tmp_path / "parse"
    for key in ("_default", "prd"):
        (parse / key).mkdir(parents=True)
        (parse / key / "partial_parse.msgpack").write_bytes(b"x")
    (parse / "env").write_text("DBT_DUCKDB_PATH=/data/jaffle.duckdb\nOTHER=a b\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dbt").write_text(
        '#!/bin/bash\necho "dbt|$DBT_PARTIAL_PARSE_FILE_PATH|$DBT_DUCKDB_PATH|$OTHER"\n'
        '[ -n "${REPARSE:-}" ] && echo "12:00:00  Unable to do partial parsing because profile has changed"\nexit 0\n'
    )
    (bin_dir / "dbt").chmod(0o755)

    def run(*args, **env):
        result = subprocess.run(
            ["bash", str(ROOT / "images/build/entrypoint.sh"), "--mode", "full", *args],
            capture_output=True,
            text=True,
            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "IMAGECTL_PARSE_DIR": str(parse), **env},
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    out = run()
    assert out[0] == "entrypoint: parse: starting from the image's parse for the default target"
    assert f"dbt|{parse}/_default/partial_parse.msgpack|/data/jaffle.duckdb|a b" in out
    assert not any("re-parsed" in line for line in out)
    out = run("--target", "prd", DBT_DUCKDB_PATH="/elsewhere.duckdb")
    assert out[0] == "entrypoint: parse: starting from the image's parse for prd"
    assert f"dbt|{parse}/prd/partial_parse.msgpack|/elsewhere.duckdb|a b" in out  # the caller's value wins
    out = run(DBT_TARGET="ci")
    assert out[0].startswith("entrypoint: parse: the image has no parse for target 'ci'")
    assert "dbt||/data/jaffle.duckdb|a b" in out
    out = run(REPARSE="1")
    assert any(line.startswith("entrypoint: dbt re-parsed the whole project (Unable to do partial parsing because profile") for line in out)
