"""Slim versus full dbt builds on generated projects, in the real build image, side by side in one run.

Run: .venv/bin/python benchmarks/dbt_slim.py [--models 300 3000] [--latency-ms 500]
(after scripts/setup.sh; starts a Docker engine if none runs; builds the real images/ with each generated
project in place of the sample project, into a local registry)

For each project size, measured container start to exit (docker create + start + wait):
  full build              every model and test; the manifest is stored as the state slim builds defer to
  slim, nothing changed   the fixed cost of a slim run (median of 3): dbt start-up, the image's parse, selection
  slim, one change        after one model in layer 2 of 6 changed: state:modified+ (checked against the graph)
  build image rebuild     `imagectl build` after that change (base reused; parse incremental from the previous image)
Floors, measured once: an empty container (`true`) and `dbt --version` in the image.
With --latency-ms, a 300-model project whose models each wait that long in a pre-hook (a warehouse's latency;
see generate_project.py) is measured full and slim too: the seed system's case (full 206 s, slim 78 s, 2.65x).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
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

GIT = ["git", "-c", "user.email=b@b", "-c", "user.name=b"]


def run_container(image: str, args: list[str], volumes: dict, env: dict | None = None, entrypoint: str | None = None) -> tuple[float, str]:
    client = docker.from_env(timeout=600)
    start = time.perf_counter()
    container = client.containers.run(image, args, entrypoint=entrypoint, environment=env or {}, volumes=volumes, detach=True)
    code = container.wait(timeout=7200)["StatusCode"]
    seconds = time.perf_counter() - start
    logs = container.logs().decode()
    container.remove(force=True)
    if code != 0:
        sys.exit(f"{' '.join(args)} exited {code}:\n{logs[-3000:]}")
    return seconds, logs


def models_run(logs: str) -> set[str]:
    return set(re.findall(r"OK created sql table model main\.(\w+)", logs))


class Project:
    """A generated dbt project in its own git repository, built by imagectl into the local registry."""

    def __init__(self, work: Path, name: str, models: int, latency_ms: int, python_image: str, registry_host: str) -> None:
        self.root = work / name
        self.parents = generate(models, self.root / "synthetic", latency_ms=latency_ms)
        shutil.copytree(ROOT / "images", self.root / "images", ignore=shutil.ignore_patterns("*.whl", "*.crt", "*.pem"))
        ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if ca.exists():  # trust what this host trusts (TLS-intercepting proxies)
            shutil.copy(ca, self.root / "images/base/certs/host-ca.crt")
        (self.root / ".dockerignore").write_text("*\n!synthetic/\n!images/build/\n")
        (self.root / "imagectl.toml").write_text(f"""
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
repository = "bench/{name}"
build_args = {{ DBT_PROJECT_PATH = "synthetic", DBT_PARSE_ENV = "DBT_DUCKDB_PATH=/data/{name}.duckdb" }}
[registries.local]
kind = "oci"
host = "{registry_host}"
insecure = true
[environments.dev]
registry = "local"
""")
        self.registry_host, self.name = registry_host, name
        sh("git", "init", "-q", "-b", "main", cwd=self.root)
        sh(*GIT, "add", "-A", cwd=self.root)
        sh(*GIT, "commit", "-qm", "init", cwd=self.root)
        self.env = {**os.environ, "IMAGECTL_CONFIG": str(self.root / "imagectl.toml")}
        self.number = 0
        # A model's code travels in the plugin's directory when it has one.
        self.run_env = {"PYTHONPATH": "/app/dbt"} if latency_ms else {}

    def build(self) -> tuple[str, float]:
        self.number += 1
        start = time.perf_counter()
        sh(IMAGECTL, "build", "--jira", "BENCH-1", "--build-number", str(self.number), "--quiet", env=self.env)
        return f"{self.registry_host}/bench/{self.name}:BENCH-1-{self.number}", time.perf_counter() - start

    def change_mid_model(self) -> str:
        layer2 = sorted(m for m in self.parents if m.startswith("m02_"))
        mid = layer2[len(layer2) // 2]
        path = self.root / "synthetic/models" / f"{mid}.sql"
        path.write_text(path.read_text().replace("as value", "as value -- changed", 1))
        sh(*GIT, "commit", "-qam", "change one model", cwd=self.root)
        return mid


def measure(project: Project, work: Path, repeats: int) -> dict:
    volumes = {}
    for name in ("data", "state"):
        (work / project.name / name).mkdir()
        (work / project.name / name).chmod(0o777)
        volumes[str(work / project.name / name)] = {"bind": f"/{name}", "mode": "rw"}
    image_one, _ = project.build()
    print(f"  {project.name}: full build ...", flush=True)
    full, full_logs = run_container(image_one, ["--mode", "full", "--state-uri", "/state", "--upload-state"], volumes, project.run_env)
    slim = ["--mode", "slim", "--state-uri", "/state"]
    nothing = [run_container(image_one, slim, volumes, project.run_env) for _ in range(repeats)]
    for _, logs in nothing:
        assert "re-parsed" not in logs and models_run(logs) == set(), logs[-2000:]
    mid = project.change_mid_model()
    image_two, rebuild = project.build()
    print(f"  {project.name}: slim build ...", flush=True)
    changed, changed_logs = run_container(image_two, slim, volumes, project.run_env)
    expected = children_closure(project.parents, mid)
    assert "re-parsed" not in changed_logs, changed_logs[-2000:]
    assert models_run(changed_logs) == expected, f"slim built {models_run(changed_logs)}, state:modified+ of {mid} is {expected}"
    return {
        "image": image_two,
        "full": full,
        "full_models": len(models_run(full_logs)),
        "nothing": statistics.median(s for s, _ in nothing),
        "slim": changed,
        "slim_models": len(expected),
        "rebuild": rebuild,
    }


def row(name: str, r: dict) -> str:
    return (
        f"{name:26} {r['full']:7.1f} {r['full_models']:7d} {r['slim']:7.1f} {r['slim_models']:7d} "
        f"{r['full'] / r['slim']:8.1f}x {r['nothing']:17.2f} {r['rebuild']:9.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--latency-ms", type=int, default=500, help="per-model latency case (0: skip it)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    python_image = docker_and_python_image()
    work = Path(tempfile.mkdtemp(prefix="imagectl-bench-slim-"))
    registry = stack.start_registry(work)
    host = registry.url.removeprefix("http://")
    try:
        results = {}
        cases = [(f"p{n}", n, 0) for n in args.models]
        if args.latency_ms:
            cases.append((f"p300-latency{args.latency_ms}", 300, args.latency_ms))
        header = f"{'project':26} {'full s':>7} {'models':>7} {'slim s':>7} {'models':>7} {'full/slim':>9}"
        header += f" {'no-change slim s':>17} {'rebuild s':>9}"
        for name, models, latency in cases:
            print(f"{name}: {models} models, per-model latency {latency} ms", flush=True)
            results[name] = measure(Project(work, name, models, latency, python_image, host), work, args.repeats)
            print(header + "\n" + row(name, results[name]), flush=True)  # as it comes: a later failure loses nothing
        image = next(iter(results.values()))["image"]
        empty = statistics.median(run_container(image, [], {}, entrypoint="true")[0] for _ in range(args.repeats))
        dbt_version = statistics.median(run_container(image, ["--version"], {}, entrypoint="dbt")[0] for _ in range(args.repeats))

        print()
        print(header)
        for name, r in results.items():
            print(row(name, r))
        print(f"floors: empty container {empty:.2f} s; `dbt --version` in the image {dbt_version:.2f} s")
        print("seed system (per-model warehouse latency): full 206 s, slim 78 s = 2.65x")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
