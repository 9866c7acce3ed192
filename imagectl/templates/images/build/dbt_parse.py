#!/usr/bin/env python3
"""Parse the dbt project at image build time, once per profile target, so runs start from a finished parse.

usage: dbt_parse.py OUT_DIR [PREVIOUS_DIR]

dbt reuses a saved parse (partial_parse.msgpack) only when what it hashes matches the run's: the CLI vars,
--profile and --target as passed, the dbt version, the profile's connection info (its rendered values: a DuckDB
path, a Snowflake account...), the env vars dbt_project.yml reads and each dbt_project.yml. So this writes one
parse per key the entrypoint may use:
  OUT_DIR/_default/partial_parse.msgpack   no --target (the profile's own default target)
  OUT_DIR/<target>/partial_parse.msgpack   --target <target>, for each target in DBT_PARSE_TARGETS (default:
                                           every output of the project's profile in profiles.yml)
with the environment in DBT_PARSE_ENV ("NAME=value NAME=value", shell quoting) set, and writes that environment
to OUT_DIR/env so the entrypoint gives runs the same values unless the caller sets them. DBT_PARSE_ENV must not
hold secrets (build arguments are visible in the image history); dbt does not hash passwords or tokens.

PREVIOUS_DIR holds the previous build's OUT_DIR (copied from that image): each parse starts from it, so only the
changed files are parsed again. One Python process runs every parse: dbt's import cost is paid once.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT = "_default"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TARGET = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def parse_env(text: str) -> dict[str, str]:
    env = {}
    for item in shlex.split(text):
        name, sep, value = item.partition("=")
        if not sep or not NAME.fullmatch(name) or "\n" in value:
            sys.exit(f"dbt_parse: DBT_PARSE_ENV item {item!r} is not NAME=value")
        env[name] = value
    return env


def profile_targets(project_dir: Path) -> list[str]:
    """Every output of the project's profile, read from profiles.yml (none when it is not in the image)."""
    import yaml

    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    profiles_dir = Path(os.environ.get("DBT_PROFILES_DIR", str(project_dir)))
    path = profiles_dir / "profiles.yml"
    if not path.is_file():
        return []
    profile = (yaml.safe_load(path.read_text()) or {}).get(project.get("profile", ""), {}) or {}
    return sorted(name for name in (profile.get("outputs") or {}) if isinstance(name, str))


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.splitlines()[2])
    out = Path(sys.argv[1])
    previous = Path(sys.argv[2]) if len(sys.argv) == 3 else None
    project_dir = Path.cwd()
    env = parse_env(os.environ.get("DBT_PARSE_ENV", ""))
    os.environ.update(env)
    os.environ.pop("DBT_TARGET", None)  # the entrypoint passes a target as --target; parse the same way
    listed = os.environ.get("DBT_PARSE_TARGETS", "").split()
    targets = listed or profile_targets(project_dir)
    for target in targets:
        if not TARGET.fullmatch(target):
            sys.exit(f"dbt_parse: target name {target!r} is not a plain name")

    from dbt.cli.main import dbtRunner

    reasons: list[str] = []

    def listen(event: Any) -> None:  # dbt's EventMsg
        if event.info.name == "UnableToPartialParse":
            reasons.append(event.data.reason)

    runner = dbtRunner(callbacks=[listen])
    out.mkdir(parents=True, exist_ok=True)
    saved = project_dir / "target" / "partial_parse.msgpack"
    for key in [DEFAULT, *targets]:
        start = time.perf_counter()
        reasons.clear()
        seed = previous / key / "partial_parse.msgpack" if previous else None
        if seed and seed.is_file():
            os.environ["DBT_PARTIAL_PARSE_FILE_PATH"] = str(seed)
        else:
            os.environ.pop("DBT_PARTIAL_PARSE_FILE_PATH", None)
            saved.unlink(missing_ok=True)
        args = ["parse", "--quiet"] + ([] if key == DEFAULT else ["--target", key])
        result = runner.invoke(args)
        if not result.success:
            sys.exit(f"dbt_parse: dbt parse {' '.join(args[2:])} failed: {result.exception or 'see the output above'}")
        (out / key).mkdir(exist_ok=True)
        shutil.move(str(saved), out / key / "partial_parse.msgpack")
        how = "in full (" + "; ".join(reasons) + ")" if reasons else "incrementally from the previous build"
        print(f"dbt_parse: {key}: parsed {how} in {time.perf_counter() - start:.1f} s", flush=True)
    (out / "env").write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    (out / "targets").write_text("".join(f"{key}\n" for key in [DEFAULT, *targets]))


if __name__ == "__main__":
    main()
