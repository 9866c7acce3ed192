"""Real servers for the integration tests, on 127.0.0.1 and free ports, started and stopped by the test run.

In CI (CI=true) a server that cannot start fails the run with the reason; elsewhere the tests that need it skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"integration server unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {tail}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            pass
        time.sleep(0.2)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s: {tail}")


class Server:
    def __init__(self, name: str, proc: subprocess.Popen, log: Path, url: str) -> None:
        self.name, self.proc, self.log, self.url = name, proc, log, url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def docker_ping() -> bool:
    import docker

    try:
        docker.from_env(timeout=5).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


def start_dockerd(workdir: Path) -> Server | None:
    """Use a running engine if there is one (returns None); else start dockerd, which needs root."""
    if docker_ping():
        return None
    dockerd = shutil.which("dockerd")
    if not dockerd:
        unavailable("no Docker engine running and dockerd is not installed (run scripts/setup-stack.sh)")
    if os.geteuid() != 0:
        unavailable("no Docker engine running and starting dockerd needs root")
    log = workdir / "dockerd.log"
    proc = subprocess.Popen([dockerd], stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_for(docker_ping, 60, "dockerd", proc, log)
    except RuntimeError as exc:
        proc.kill()
        unavailable(str(exc))
    return Server("dockerd", proc, log, "unix:///var/run/docker.sock")


def start_registry(workdir: Path, htpasswd: Path | None = None) -> Server:
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if not binary:
        unavailable("docker-registry is not installed (run scripts/setup-stack.sh)")
    port = free_port()
    root = workdir / f"registry-{port}"
    root.mkdir(parents=True)
    auth = ""
    if htpasswd:
        auth = f"auth:\n  htpasswd:\n    realm: imagectl-test\n    path: {htpasswd}\n"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = root / "registry.log"
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(url + "/v2/", timeout=2).status_code in (200, 401), 30, "docker-registry", proc, log)
    except RuntimeError as exc:
        proc.kill()
        unavailable(str(exc))
    return Server("registry", proc, log, url)


def start_moto(workdir: Path) -> Server:
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(binary).exists():
        unavailable("moto_server is not installed (pip install -e '.[test]')")
    port = free_port()
    log = workdir / f"moto-{port}.log"
    proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(url + "/moto-api/", timeout=2).status_code == 200, 30, "moto_server", proc, log)
    except RuntimeError as exc:
        proc.kill()
        unavailable(str(exc))
    return Server("moto", proc, log, url)
