"""What every benchmark needs: run a step or stop with its output, and a Docker engine + local Python image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGECTL = str(ROOT / ".venv/bin/imagectl")


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.exit(f"benchmark step failed: {' '.join(args)}\n{result.stderr[-3000:]}")
    return result


def start_docker() -> None:
    """Start a Docker engine if none runs, as the demo does."""
    sh(str(ROOT / "scripts/start-docker.sh"))


def docker_and_python_image() -> str:
    """A running Docker engine and the locally made Python base image (public images cannot be pulled here)."""
    start_docker()
    return sh(str(ROOT / "scripts/python-image.sh")).stdout.strip()
