"""Rebuild time after a one-model change: split base/build images versus one monolithic Dockerfile.

Run: .venv/bin/python benchmarks/build.py   (after scripts/setup.sh; starts a Docker engine if none runs)

Measured side by side in one run, on the sample dbt project and the real images/ Dockerfiles:
  split, warm agent   imagectl build after a one-model change; base reused from the registry, build image rebuilt
  split, cold agent   the same with no local images (a fresh CI agent): the base is pulled by digest
  monolithic          one Dockerfile that copies the project and installs dbt (the seed's shape), after the
                      same one-model change, with the layer cache of its previous build
  decide              time for imagectl to decide "base reused" (`build --dry-run`: context hash + one registry lookup)
  breakdown           where the warm split rebuild's time goes, from imagectl's build log timed line by line:
                      imagectl before Docker (config, git, base decision, previous image), context upload, the project
                      COPY, `dbt deps`, the build-time dbt parse, Docker's other steps, then push and records
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import IMAGECTL, docker_and_python_image, sh  # noqa: E402
from tests import stack  # noqa: E402

MONOLITHIC = """\
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE}
COPY . /app
RUN set -eu; python3 -m venv /opt/dbt; \\
    if [ -f /app/ca.pem ]; then export PIP_CERT=/app/ca.pem; fi; \\
    /opt/dbt/bin/pip install --no-cache-dir -q -r /app/requirements.txt
WORKDIR /app/sample_project
RUN DBT_DUCKDB_PATH=/tmp/p.duckdb /opt/dbt/bin/dbt parse --quiet --profiles-dir .
"""


def timed(*args: str, **kw) -> float:
    start = time.perf_counter()
    sh(*args, **kw)
    return time.perf_counter() - start


def timed_lines(*args: str, **kw) -> list[tuple[float, str]]:
    """Run a command; every line it writes to stderr, with the seconds since the start when it appeared."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, **kw)
    assert process.stderr is not None
    lines = [(time.perf_counter() - start, line.rstrip()) for line in process.stderr]
    if process.wait() != 0:
        sys.exit("\n".join(line for _, line in lines[-30:]))
    return [(0.0, "start"), *lines, (time.perf_counter() - start, "end")]


PHASES = (  # (phase, the build log line that starts it)
    ("imagectl before Docker", r"^start$"),
    ("context upload, cached steps", r"build: building"),
    ("project COPY", r"Step \d+/\d+ : COPY --chown=dbt:dbt \$\{DBT_PROJECT_PATH\}/ /app/dbt/"),
    ("dbt deps", r"Step \d+/\d+ : RUN .*dbt deps"),
    ("parse stage: copy project and previous parse", r"Step \d+/\d+ : FROM \$\{BASE_IMAGE\} AS parse"),
    ("dbt parse (incremental)", r"Step \d+/\d+ : RUN .*dbt_parse.py"),
    ("final layer", r"Step \d+/\d+ : FROM project$"),
    ("push and records", r"build: pushing|Successfully tagged"),
)


def breakdown(lines: list[tuple[float, str]]) -> list[tuple[str, float]]:
    """Seconds per phase: from the first line of a phase to the first line of the next one found."""
    marks = []
    for phase, pattern in PHASES:
        hit = next((t for t, line in lines if re.search(pattern, line.strip())), None)
        if hit is not None:
            marks.append((phase, hit))
    marks.append(("end", lines[-1][0]))
    return [(phase, marks[i + 1][1] - t) for i, (phase, t) in enumerate(marks[:-1])]


def change_model(project: Path, n: int) -> None:
    path = project / "sample_project/models/marts/orders.sql"
    path.write_text(path.read_text() + f"\n-- change {n}\n")


def main() -> None:
    python_image = docker_and_python_image()
    work = Path(tempfile.mkdtemp(prefix="imagectl-bench-"))
    registry = stack.start_registry(work)
    host = registry.url.removeprefix("http://")
    try:
        project = work / "repo"
        shutil.copytree(ROOT / "sample_project", project / "sample_project", ignore=shutil.ignore_patterns("target", "logs"))
        shutil.copytree(ROOT / "images", project / "images", ignore=shutil.ignore_patterns("*.whl", "extra-ca.crt"))
        shutil.copy(ROOT / ".dockerignore", project / ".dockerignore")
        ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if ca.exists():  # trust what this host trusts (TLS-intercepting proxies)
            shutil.copy(ca, project / "images/base/certs/extra-ca.crt")
        (project / "imagectl.toml").write_text(f"""
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
build_args = {{ DBT_PROJECT_PATH = "sample_project" }}
[registries.local]
kind = "oci"
host = "{host}"
insecure = true
[environments.dev]
registry = "local"
""")
        sh("git", "init", "-q", "-b", "main", cwd=project)
        git = ["git", "-c", "user.email=b@b", "-c", "user.name=b"]
        sh(*git, "add", "-A", cwd=project)
        sh(*git, "commit", "-qm", "init", cwd=project)
        env = {**os.environ, "IMAGECTL_CONFIG": str(project / "imagectl.toml")}
        build = [IMAGECTL, "build", "--jira", "BENCH-1", "--quiet"]

        print("warming up: first build of base and build image ...", flush=True)
        sh(*build, "--build-number", "1", env=env)

        change_model(project, 1)
        warm = timed(*build, "--build-number", "2", env=env)

        decide = min(timed(IMAGECTL, "build", "--jira", "BENCH-1", "--build-number", "3", "--dry-run", env=env) for _ in range(3))

        change_model(project, 5)
        phases = breakdown(timed_lines(IMAGECTL, "build", "--jira", "BENCH-1", "--build-number", "3", env=env))

        # A fresh agent: no local copy of the base or build images.
        for ref in sh("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", f"{host}/bench/*").stdout.split():
            sh("docker", "rmi", "-f", ref)
        change_model(project, 2)
        cold = timed(*build, "--build-number", "4", env=env)

        # The monolithic image: same project and requirements, one Dockerfile.
        mono = work / "mono"
        shutil.copytree(project / "sample_project", mono / "sample_project")
        shutil.copy(ROOT / "images/base/requirements.txt", mono / "requirements.txt")
        if ca.exists():
            shutil.copy(ca, mono / "ca.pem")
        (mono / "Dockerfile").write_text(MONOLITHIC)
        docker_build = [
            "docker",
            "build",
            "-q",
            "--network",
            "host",
            "--build-arg",
            f"PYTHON_IMAGE={python_image}",
            "-t",
            "bench/mono",
            str(mono),
        ]
        print("warming up: first monolithic build ...", flush=True)
        sh(*docker_build)
        change_model(mono, 1)
        monolithic = timed(*docker_build)

        print()
        print(f"{'rebuild after a one-model change':45} {'seconds':>8} {'vs monolithic':>14}")
        for name, value in [
            ("split, warm agent (base reused, local)", warm),
            ("split, cold agent (base pulled by digest)", cold),
            ("monolithic Dockerfile (layer cache warm)", monolithic),
        ]:
            print(f"{name:45} {value:8.1f} {monolithic / value:13.2f}x")
        print(f"{'decide base reused (build --dry-run, best of 3)':45} {decide:8.2f}")
        print()
        print(f"{'where a warm split rebuild goes':45} {'seconds':>8}")
        for phase, seconds in phases:
            print(f"{phase:45} {seconds:8.2f}")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
