"""imagectl installed into Airflow 3's environment the way a team installs it there — ``pip install "imagectl[airflow]"``
under Airflow's pins — without touching the shared ``.venv-airflow3`` that other tests use.

1. The wheel is built from the sdist (as test_adopt builds it: what PyPI would serve).
2. Airflow's pins: the constraints file named by ``IMAGECTL_AIRFLOW_CONSTRAINTS`` (Airflow publishes one per version
   and Python, ``constraints-<airflow>/constraints-<python>.txt``), else every distribution installed in the Airflow
   venv at its installed version (``pip freeze``: the pins a deployment actually runs with, a superset of what the
   constraints file pins for them; the published file is not reachable from machines without GitHub).
3. ``pip install --dry-run --report`` of ``imagectl[airflow]`` into the Airflow venv under those pins: pip resolves
   against what is installed and changes nothing. The report lists what the install adds; the check is that it
   changes no pinned distribution (Airflow above all) and only adds distributions nothing pins.
4. Exactly those distributions are installed (``--no-deps``) into a directory of their own, which the Airflow
   processes get as ``PYTHONPATH``: Airflow then runs with the environment that install would have made, and
   discovers the plugin through its ``airflow.plugins`` entry point as it would in a deployment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests import stack

ROOT = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Overlay:
    path: Path  # PYTHONPATH for the Airflow processes
    wheel: Path
    constraints: Path
    constraints_source: str
    added: dict[str, str] = field(default_factory=dict)  # distribution -> version the install adds
    pinned: dict[str, str] = field(default_factory=dict)  # distribution -> version Airflow's pins hold


def _run(args: list[str], what: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a step in ``cwd``. The Airflow venv's pip gets no PYTHONPATH and runs outside any source tree: a source
    tree's ``imagectl.egg-info`` on its path would pass for an installed imagectl."""
    environ = env or {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=cwd, env=environ)
    if result.returncode != 0:
        raise AssertionError(f"{what} failed (exit {result.returncode}): {(result.stderr or result.stdout)[-3000:]}")
    return result


def airflow_python() -> Path:
    return stack.airflow_binary(3).parent / "python"


def pins(work: Path) -> tuple[Path, str]:
    """Airflow's pins as a pip constraints file, and where they came from."""
    named = os.environ.get("IMAGECTL_AIRFLOW_CONSTRAINTS")
    if named:
        return Path(named), f"IMAGECTL_AIRFLOW_CONSTRAINTS ({named})"
    frozen = _run([str(airflow_python()), "-m", "pip", "freeze", "--all"], "pip freeze of the Airflow venv", work).stdout
    lines = [line for line in frozen.splitlines() if "==" in line and not line.startswith(("-e ", "#"))]
    path = work / "airflow-pins.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, f"pip freeze of {airflow_python().parent.parent} ({len(lines)} distributions)"


def build_wheel(work: Path) -> Path:
    dist = work / "dist"
    environ = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], "building imagectl's wheel", work, environ)
    return next(dist.glob("imagectl-*.whl"))


def plugin_overlay(work: Path) -> Overlay:
    """imagectl[airflow] for the Airflow 3 venv, checked against Airflow's pins (an AssertionError names what would change)."""
    work.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(work)
    constraints, source = pins(work)
    lines = [line.split(";")[0].strip() for line in constraints.read_text().splitlines() if "==" in line and not line.startswith("#")]
    pinned = {_canonical(name): version for name, version in (line.split("==", 1) for line in lines)}
    report_path = work / "pip-report.json"
    requirement = f"imagectl[airflow] @ {wheel.resolve().as_uri()}"
    dry_run = ["install", "--dry-run", "--quiet", "--report", str(report_path), "-c", str(constraints), requirement]
    _run(
        [str(airflow_python()), "-m", "pip", *dry_run], f"pip install --dry-run of imagectl[airflow] under Airflow's pins ({source})", work
    )
    report = json.loads(report_path.read_text())
    added = {_canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in report.get("install", [])}
    changed = {name: (pinned[name], version) for name, version in added.items() if name in pinned and pinned[name].split("+")[0] != version}
    assert not changed, f"installing imagectl[airflow] would change pinned distributions: {changed}"
    assert not {"apache-airflow", "apache-airflow-core"} & set(added), f"installing imagectl[airflow] would reinstall Airflow: {added}"
    assert "imagectl" in added, f"pip would not install imagectl: {added}"
    overlay = work / "site"
    others = [f"{name}=={version}" for name, version in added.items() if name != "imagectl"]
    install = ["install", "--quiet", "--no-deps", "--target", str(overlay), str(wheel), *others]
    _run([str(airflow_python()), "-m", "pip", *install], "installing what the report lists into the overlay", work)
    return Overlay(overlay, wheel, constraints, source, added, {n: pinned[n] for n in added if n in pinned})
