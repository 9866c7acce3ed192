"""Slim versus full dbt build on a generated 300-model project, in the real build image, side by side.

Run: .venv/bin/python benchmarks/dbt_slim.py [--models 300]   (after scripts/setup.sh; starts a Docker engine if none runs;
builds the real images/ with the generated project in place of the sample project)

Measured in one run:
  full build            all models (and their tests), state stored for slim builds
  slim build            after one mid-graph model changed: state:modified+ deferring to that state
  build image rebuild   `imagectl build` after that one-model change, base image reused from the registry
The seed system's figures for comparison: full 206 s, slim 78 s (2.65x).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from benchmarks._common import IMAGECTL, docker_and_python_image, sh  # noqa: E402
from benchmarks.generate_project import children_closure, generate  # noqa: E402
from tests import stack  # noqa: E402


def run_dbt(image: str, args: list[str], volumes: dict) -> tuple[float, str]:
    client = docker.from_env()
    start = time.perf_counter()
    container = client.containers.run(image, args, environment={"DBT_DUCKDB_PATH": "/data/bench.duckdb"}, volumes=volumes, detach=True)
    code = container.wait(timeout=3600)["StatusCode"]
    seconds = time.perf_counter() - start
    logs = container.logs().decode()
    container.remove(force=True)
    if code != 0:
        sys.exit(f"dbt {' '.join(args)} exited {code}:\n{logs[-3000:]}")
    return seconds, logs


def models_run(logs: str) -> set[str]:
    return set(re.findall(r"OK created sql table model main\.(\w+)", logs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=300)
    args = parser.parse_args()
    python_image = docker_and_python_image()
    work = Path(tempfile.mkdtemp(prefix="imagectl-bench-slim-"))
    registry = stack.start_registry(work)
    try:
        repo = work / "repo"
        parents = generate(args.models, repo / "synthetic")
        shutil.copytree(ROOT / "images", repo / "images", ignore=shutil.ignore_patterns("*.whl", "*.crt", "*.pem"))
        ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if ca.exists():
            shutil.copy(ca, repo / "images/base/certs/host-ca.crt")
        (repo / ".dockerignore").write_text("*\n!synthetic/\n!images/build/\n")
        (repo / "imagectl.toml").write_text(f"""
[project]
name = "bench"
default_environment = "dev"
[images.base]
context = "images/base"
repository = "bench/dbt-base"
network = "host"
build_args = {{ PYTHON_IMAGE = "{python_image}" }}
[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "bench/dbt-build"
build_args = {{ DBT_PROJECT_PATH = "synthetic" }}
[registries.local]
kind = "oci"
host = "{registry.url.removeprefix("http://")}"
insecure = true
[environments.dev]
registry = "local"
""")
        git = ["git", "-c", "user.email=b@b", "-c", "user.name=b"]
        sh("git", "init", "-q", "-b", "main", cwd=repo)
        sh(*git, "add", "-A", cwd=repo)
        sh(*git, "commit", "-qm", "init", cwd=repo)
        env = {**os.environ, "IMAGECTL_CONFIG": str(repo / "imagectl.toml")}
        print(f"building images for {args.models} models ...", flush=True)
        sh(IMAGECTL, "build", "--jira", "BENCH-1", "--build-number", "1", "--quiet", env=env)
        image_one = f"{registry.url.removeprefix('http://')}/bench/dbt-build:BENCH-1-1"

        for name in ("data", "state"):
            (work / name).mkdir()
            (work / name).chmod(0o777)
        volumes = {str(work / "data"): {"bind": "/data", "mode": "rw"}, str(work / "state"): {"bind": "/state", "mode": "rw"}}
        print("full build ...", flush=True)
        full_seconds, full_logs = run_dbt(image_one, ["--mode", "full", "--state-uri", "/state", "--upload-state"], volumes)

        # Change one model in the middle of the graph (layer 2 of 6).
        mid = sorted(m for m in parents if m.startswith("m02_"))[len([m for m in parents if m.startswith("m02_")]) // 2]
        path = repo / "synthetic/models" / f"{mid}.sql"
        path.write_text(path.read_text().replace("as value", "as value -- changed", 1))
        sh(*git, "commit", "-qam", "change one model", cwd=repo)
        start = time.perf_counter()
        sh(IMAGECTL, "build", "--jira", "BENCH-1", "--build-number", "2", "--quiet", env=env)
        rebuild_seconds = time.perf_counter() - start
        image_two = image_one.replace("BENCH-1-1", "BENCH-1-2")

        print("slim build ...", flush=True)
        slim_seconds, slim_logs = run_dbt(image_two, ["--mode", "slim", "--state-uri", "/state"], volumes)
        full_models, slim_models = models_run(full_logs), models_run(slim_logs)
        expected = children_closure(parents, mid)
        assert slim_models == expected, f"slim built {len(slim_models)} models, state:modified+ of {mid} is {len(expected)}"

        print()
        print(f"{args.models}-model project, one change at {mid} (layer 2 of 6)")
        print(f"{'':28} {'models':>7} {'seconds':>8}")
        print(f"{'full build':28} {len(full_models):7d} {full_seconds:8.1f}")
        print(f"{'slim build':28} {len(slim_models):7d} {slim_seconds:8.1f}")
        ratios = f"{len(full_models) / len(slim_models):6.2f}x {full_seconds / slim_seconds:7.2f}x"
        print(f"{'ratio full / slim':28} {ratios}   (seed: 206 s / 78 s = 2.65x)")
        print(f"{'build image rebuild (base reused)':34} {rebuild_seconds:8.1f} s")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
