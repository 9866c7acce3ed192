"""Release benchmarks, measured side by side in one run on a local stack (Docker engine, two OCI registries,
a real Airflow 3 api-server).

Run: .venv/bin/python benchmarks/release.py   (after scripts/setup.sh; starts a Docker engine if none runs)

1. Wall time of `imagectl rollback` for a ~10 MB and a ~500 MB image: a rollback re-points the Airflow
   Variable and records a revision; it must not depend on image size.
2. `imagectl promote` dev -> prd next to `skopeo copy` of the same image between two other empty registries
   (skopeo does the copy only; imagectl also plans, records the revision and writes the Variable, whose cost is
   measured alone and shown beside it):
     a. the target registry is empty (a ~250 MB image: 248 MB base + 2 MB app, as the issue measured)
     b. the target already has the base (the ticket's next build): only the app layer moves
     c. the same registry (an environment on dev's registry): no blob moves
   and `docker pull` + `docker tag` + `docker push` of case b (from an engine without the image, as on an
   on-call laptop).
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
[environments.qa]
registry = "dev"
airflow_url = "{airflow.url}"
variable = "bench_qa"
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

        # 2. promote: imagectl (plan, copy, record, Variable) next to skopeo (copy only) into registries that
        #    start equally empty; case b is the ticket's second build, after the first brought the base over.
        skopeo_dst = stack.start_registry(work)
        servers.append(skopeo_dst)
        skopeo_host = skopeo_dst.url.removeprefix("http://")
        big_base = f"{dev_host}/bench/base:BASE-1-1"
        build(client, big_base, base_image, 248, "base")
        push(client, big_base)
        for n in (1, 2):
            build(client, f"{dev_host}/bench/build:APP-1-{n}", big_base, 2, f"app-{n}")
            push(client, f"{dev_host}/bench/build:APP-1-{n}")
            imagectl(config, env, "deploy", f"APP-1-{n}", "--env", "dev")
        image_bytes = layer_bytes(dev.url, "bench/build", "APP-1-1")

        def skopeo(tag: str) -> float:
            start = time.perf_counter()
            subprocess.run(
                [
                    "skopeo",
                    "copy",
                    "-q",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    f"docker://{dev_host}/bench/build:{tag}",
                    f"docker://{skopeo_host}/bench/build:{tag}",
                ],
                check=True,
                capture_output=True,
                env={**os.environ, "HOME": str(work)},  # no blob-info cache from elsewhere
            )
            return time.perf_counter() - start

        def promote(tag: str, to: str) -> tuple[float, dict]:
            start = time.perf_counter()
            result = imagectl(config, env, "promote", tag, "--from", "dev", "--to", to, "--yes")
            return time.perf_counter() - start, result

        promote_rows = []
        for case, tag in (("a. target empty", "APP-1-1"), ("b. target has the base", "APP-1-2")):
            seconds, result = promote(tag, "prd")
            promote_rows.append((case, result["copied"]["bytes_copied"], seconds, skopeo(tag)))
        same = [promote(tag, "qa") for tag in ("APP-1-2", "APP-1-1", "APP-1-2")]  # three real changes: a median
        same_seconds = statistics.median(seconds for seconds, _ in same)
        same_bytes = max((result.get("copied") or {}).get("bytes_copied", 0) for _, result in same)

        # What the Variable write alone costs (the same REST calls promote makes), median of 5.
        sys.path.insert(0, str(ROOT))
        from imagectl.airflow._base import StoreContext  # noqa: E402
        from imagectl.airflow.rest import AirflowRest, RestVariable  # noqa: E402
        from imagectl.airflow.stores import NoSettings  # noqa: E402
        from imagectl.airflow.transport import PasswordTransport  # noqa: E402
        from imagectl.credentials import Login  # noqa: E402
        from imagectl.settings import Timeouts  # noqa: E402

        rest = AirflowRest(PasswordTransport(airflow.url, "prd", Login("imagectl", stack.AIRFLOW_USERS["imagectl"][1])))
        variable = RestVariable("bench_prd", NoSettings(), StoreContext("prd", Timeouts(), lambda: rest))
        stored = variable.read() or ""
        write_times = []
        for _ in range(5):
            start = time.perf_counter()
            variable.write(stored, "imagectl benchmark: the same value again", {}, False)
            variable.read()
            write_times.append(time.perf_counter() - start)
        variable_seconds = statistics.median(write_times)

        # The docker route for case b, from an engine that does not have the image (an on-call laptop).
        app = f"{dev_host}/bench/build:APP-1-2"
        for image in client.images.list(name=f"{dev_host}/bench/*"):
            client.images.remove(image.id, force=True)
        docker_target = f"{prd_host}/bench/build:APP-1-2-docker"
        start = time.perf_counter()
        client.images.pull(app)
        client.images.get(app).tag(docker_target)
        pushed_bytes = push(client, docker_target)
        docker_seconds = time.perf_counter() - start
        docker_bytes = layer_bytes(dev.url, "bench/build", "APP-1-2") + pushed_bytes

        print()
        print(f"{'rollback (median of 3)':40} {'seconds':>8}")
        for size, seconds in rollback_times.items():
            print(f"{f'~{size} MB image':40} {seconds:8.2f}")
        print(f"{'ratio 500 MB / 10 MB':40} {rollback_times[500] / rollback_times[10]:8.2f}x")
        print()
        print(f"promote dev -> prd ({image_bytes / 1e6:.0f} MB image)")
        print(f"{'case':28} {'MB moved':>9} {'imagectl s':>11} {'skopeo s':>9} {'imagectl / (skopeo + Variable)':>31}")
        for case, moved, seconds, skopeo_seconds in promote_rows:
            print(
                f"{case:28} {moved / 1e6:9.1f} {seconds:11.2f} {skopeo_seconds:9.2f} {seconds / (skopeo_seconds + variable_seconds):30.2f}x"
            )
        print(f"{'c. same registry (median of 3)':28} {same_bytes / 1e6:9.1f} {same_seconds:11.2f} {'-':>9}")
        print(f"{'Variable write + read-back (median of 5)':40} {variable_seconds:8.2f} s")
        print(f"{'docker pull + tag + push (case b)':28} {docker_bytes / 1e6:9.1f} {docker_seconds:11.2f}")
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
