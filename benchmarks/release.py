"""Release benchmarks, measured side by side in one run on a local stack (Docker engine, two OCI registries,
a real Airflow 3 api-server).

Run: .venv/bin/python benchmarks/release.py   (after scripts/setup.sh; starts a Docker engine if none runs)

1. Wall time of `imagectl rollback` for a ~10 MB and a ~500 MB image: a rollback re-points the Airflow
   Variable and records a revision; it must not depend on image size.
2. A cross-registry `imagectl promote` when the target registry already has the base layers, next to
   `docker pull` + `docker tag` + `docker push` of the same image (from an engine without it, as on an
   on-call laptop): bytes moved and wall time.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from benchmarks._common import start_docker  # noqa: E402
from tests import stack  # noqa: E402

IMAGECTL = [str(ROOT / ".venv/bin/imagectl")]


def context_tar(dockerfile: str, files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def build(client: docker.DockerClient, tag: str, base: str, payload_mb: int, marker: str) -> None:
    files = {"payload.bin": os.urandom(payload_mb * 1_000_000), "marker": marker.encode()}
    dockerfile = f"FROM {base}\nCOPY payload.bin /payload.bin\nCOPY marker /marker\n"
    client.images.build(fileobj=context_tar(dockerfile, files), custom_context=True, tag=tag, rm=True)


def push(client: docker.DockerClient, ref: str) -> int:
    """Push; returns the bytes of the layers it uploaded (from the engine's own progress events)."""
    repository, tag = ref.rsplit(":", 1)
    totals: dict[str, int] = {}
    for event in client.api.push(repository, tag=tag, stream=True, decode=True):
        if "error" in event:
            raise RuntimeError(event["error"])
        if event.get("status") == "Pushing" and event.get("progressDetail", {}).get("total"):
            totals[event["id"]] = max(totals.get(event["id"], 0), event["progressDetail"]["total"])
    return sum(totals.values())


def imagectl(config: Path, env: dict[str, str], *args: str) -> dict:
    result = subprocess.run([*IMAGECTL, *args, "--config", str(config), "-o", "json"], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"imagectl {' '.join(args)} failed: {result.stderr}")
    return json.loads(result.stdout)


def layer_bytes(registry_url: str, repository: str, tag: str) -> int:
    import requests

    manifest = requests.get(
        f"{registry_url}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=30,
    ).json()
    return sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]


def main() -> None:
    start_docker()
    work = Path(tempfile.mkdtemp(prefix="imagectl-bench-release-"))
    client = docker.from_env(timeout=600)
    dev = stack.start_registry(work)
    prd = stack.start_registry(work)
    airflow = stack.start_airflow(work, 3)
    servers = [dev, prd, airflow]
    try:
        base_image = "imagectl-bench/busybox:1"
        busybox = Path("/bin/busybox").read_bytes()
        client.images.build(
            fileobj=context_tar("FROM scratch\nCOPY busybox /bin/busybox\n", {"busybox": busybox}),
            custom_context=True,
            tag=base_image,
            rm=True,
        )
        dev_host, prd_host = (s.url.removeprefix("http://") for s in (dev, prd))
        config = work / "imagectl.toml"
        (work / "ctx").mkdir()
        (work / "ctx/Dockerfile").write_text("FROM scratch\n")
        config.write_text(f"""
[images.base]
context = "ctx"
repository = "bench/base"
[images.build]
context = "ctx"
repository = "bench/build"
[registries.dev]
kind = "oci"
host = "{dev_host}"
insecure = true
[registries.prd]
kind = "oci"
host = "{prd_host}"
insecure = true
[environments.dev]
registry = "dev"
airflow_url = "{airflow.url}"
variable = "bench_dev"
[environments.prd]
registry = "prd"
airflow_url = "{airflow.url}"
variable = "bench_prd"
release = true
confirm = false
""")
        env = {**os.environ, "IMAGECTL_AIRFLOW_USERNAME": "imagectl", "IMAGECTL_AIRFLOW_PASSWORD": stack.AIRFLOW_USERS["imagectl"][1]}

        # 1. rollback time by image size
        rollback_times = {}
        for size in (10, 500):
            for n in (1, 2):
                ref = f"{dev_host}/bench/build:SIZE-{size}-{n}"
                build(client, ref, base_image, size, f"{size}-{n}")
                push(client, ref)
                imagectl(config, env, "deploy", f"SIZE-{size}-{n}", "--env", "dev")
            times = []
            for _ in range(3):  # roll back and forth between the two images of this size
                start = time.perf_counter()
                imagectl(config, env, "rollback", "--env", "dev", "--reason", "benchmark")
                times.append(time.perf_counter() - start)
            rollback_times[size] = statistics.median(times)

        # 2. promote across registries when the target already has the base layers: the second build of a
        #    ticket, after its first build was promoted (which brought the base layers into prd).
        big_base = f"{dev_host}/bench/base:BASE-1-1"
        build(client, big_base, base_image, 200, "base")
        push(client, big_base)
        for n in (1, 2):
            build(client, f"{dev_host}/bench/build:APP-1-{n}", big_base, 2, f"app-{n}")
            push(client, f"{dev_host}/bench/build:APP-1-{n}")
            imagectl(config, env, "deploy", f"APP-1-{n}", "--env", "dev")
        imagectl(config, env, "promote", "APP-1-1", "--from", "dev", "--to", "prd", "--yes")
        image_bytes = layer_bytes(dev.url, "bench/build", "APP-1-2")

        start = time.perf_counter()
        promoted = imagectl(config, env, "promote", "APP-1-2", "--from", "dev", "--to", "prd", "--yes")
        promote_seconds = time.perf_counter() - start
        promote_bytes = promoted["copied"]["bytes_copied"]

        # The docker route, from an engine that does not have the image (an on-call laptop).
        app = f"{dev_host}/bench/build:APP-1-2"
        for image in client.images.list(name=f"{dev_host}/bench/*"):
            client.images.remove(image.id, force=True)
        docker_target = f"{prd_host}/bench/build:APP-1-2-docker"
        start = time.perf_counter()
        client.images.pull(app)
        client.images.get(app).tag(docker_target)
        pushed_bytes = push(client, docker_target)
        docker_seconds = time.perf_counter() - start
        docker_bytes = image_bytes + pushed_bytes  # the pull downloads every layer; the push uploads what prd lacks

        print()
        print(f"{'rollback (median of 3)':40} {'seconds':>8}")
        for size, seconds in rollback_times.items():
            print(f"{f'~{size} MB image':40} {seconds:8.2f}")
        print(f"{'ratio 500 MB / 10 MB':40} {rollback_times[500] / rollback_times[10]:8.2f}x")
        print()
        print(f"{'promote dev → prd (prd has the base)':40} {'MB moved':>9} {'seconds':>8}")
        print(f"{'imagectl promote (registry to registry)':40} {promote_bytes / 1e6:9.1f} {promote_seconds:8.2f}")
        print(f"{'docker pull + tag + push':40} {docker_bytes / 1e6:9.1f} {docker_seconds:8.2f}")
        print(f"{'ratio docker / imagectl':40} {docker_bytes / max(promote_bytes, 1):8.0f}x {docker_seconds / promote_seconds:7.1f}x")
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
