"""How fast the Images page (imagectl's Airflow plugin) loads: 10 vs 1,000 revisions in an environment.

Run: .venv/bin/python benchmarks/images_page.py   (after scripts/setup.sh; starts a local OCI registry behind a
counting proxy, moto_server and the ECR harness, and a real Airflow 3 api-server with imagectl installed into its
environment as tests/plugin_env.py installs it; no Docker engine needed; about 3 minutes)

Environments, each with its Variable set by a real `imagectl deploy` (the newest revision) and one dbt DAG run:
- ``small`` (10 revisions) and ``big`` (1,000 revisions, every one claimed by imagectl's own History.append) on a
  plain OCI registry: the page's registry requests are counted;
- ``ecr`` (1,000 revisions as the format keeps them on ECR, seeded as benchmarks/registry.py does) on the ECR
  harness.

Measured through Airflow's api-server (no scheduler: the dbt DAG's one run stays queued), as a signed-in viewer,
median and slowest of 15 after one warm-up request, with the registry requests one load makes, side by side:
one environment's data (``GET /imagectl/api/environments/NAME``, what `history --limit 20` plus `status` read) at
10 and 1,000 revisions on OCI, the ratio, and 1,000 on ECR; the same with ``?limit=100``; and the whole page
(``GET /imagectl/``: the three environments at once), the figure the issue asks to keep under 1 s.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from benchmarks.registry import REPO, push_image, seed_ecr_history, tiny_image  # noqa: E402
from imagectl.clock import now_text  # noqa: E402
from imagectl.credentials import Credentials  # noqa: E402
from imagectl.history import History, Revision  # noqa: E402
from imagectl.registries import open_registry  # noqa: E402
from imagectl.registries.kinds import EcrSettings, HttpSettings  # noqa: E402
from imagectl.settings import RegistryConfig  # noqa: E402
from tests import stack  # noqa: E402
from tests.ecr_harness import ACCOUNT, EcrHarness  # noqa: E402
from tests.fault_proxy import FaultProxy  # noqa: E402
from tests.plugin_env import plugin_overlay  # noqa: E402

IMAGECTL = [sys.executable, "-m", "imagectl"]  # this tree's imagectl (PYTHONPATH below), whichever the venv installed
SIZES = {"small": 10, "big": 1_000}
REPEATS = 15


def config_text(oci_host: str, ecr_host: str, airflow_url: str) -> str:
    envs = "".join(
        f'[environments.{name}]\nregistry = "{registry}"\nairflow_url = "{airflow_url}"\nvariable = "bench_{name}"\ndbt_dag = "bench_dag"\n'
        for name, registry in (("small", "oci"), ("big", "oci"), ("ecr", "ecr"))
    )
    return f"""
[jira]
projects = ["DATA"]
[images.base]
context = "ctx"
repository = "bench/dbt-base"
[images.build]
context = "ctx"
repository = "{REPO}"
[registries.oci]
kind = "oci"
host = "{oci_host}"
insecure = true
[registries.ecr]
kind = "ecr"
host = "{ecr_host}"
region = "ap-northeast-2"
insecure = true
registry_id = "{ACCOUNT}"
{envs}"""


BENCH_DAG = """
from datetime import datetime
from airflow.sdk import DAG, task
with DAG("bench_dag", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    @task
    def dbt_build():
        return None
    dbt_build()
"""


def cli(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([*IMAGECTL, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"benchmark step failed: imagectl {' '.join(args)}\n{result.stderr[-3000:]}")


def record_oci_history(proxy_host: str, registry_url: str, count: int, env: str) -> None:
    """``count - 1`` revisions claimed one by one through History.append (the last comes from `imagectl deploy`)."""
    oci = open_registry(RegistryConfig("oci", "oci", registry_url.removeprefix("http://"), HttpSettings(insecure=True)), Credentials())
    blobs, image = tiny_image()
    push_image(oci, blobs, image, "DATA-1-1")
    push_image(oci, *tiny_image("two"), "DATA-9999-1")
    history = History(oci, REPO, env)
    for n in range(count - 1):
        tag = "DATA-1-1"
        draft = Revision(
            env, 0, now_text(), "deploy", tag, image.digest, f"{proxy_host}/{REPO}:{tag}@{image.digest}", "bench", reason=f"r{n}"
        )
        history.append(draft, image)


def timed(url: str, auth: dict[str, str], calls) -> tuple[float, float, float]:
    """Median and slowest seconds of REPEATS loads, and the registry requests one load makes (``calls()`` counts)."""
    requests.get(url, headers=auth, timeout=60).raise_for_status()  # warm-up (a fresh worker, registry connections)
    before = calls()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        answer = requests.get(url, headers=auth, timeout=60)
        times.append(time.perf_counter() - start)
        answer.raise_for_status()
    return statistics.median(times), max(times), (calls() - before) / REPEATS


def cell(figures: tuple[float, float, float]) -> str:
    median, slowest, per_load = figures
    return f"{median:.3f} s ({slowest:.3f}) {per_load:4.0f} req"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagectl-bench-page-"))
    (work / "ctx").mkdir()
    servers: list = []
    closers: list = []
    try:
        print("installing imagectl[airflow] beside Airflow's pins ...", flush=True)
        overlay = plugin_overlay(work / "install")
        registry = stack.start_registry(work)
        servers.append(registry)
        proxy = FaultProxy(registry.url)
        closers.append(proxy.close)
        moto = stack.start_moto(work)
        servers.append(moto)
        backing = stack.start_registry(work)
        servers.append(backing)
        harness = EcrHarness(moto.url, backing.url)
        closers.append(harness.close)
        aws = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "ap-northeast-2",
            "AWS_ENDPOINT_URL_ECR": harness.url,
            "AWS_ENDPOINT_URL_STS": moto.url,
        }
        os.environ.update(aws)
        port = stack.free_port()
        config = work / "imagectl.toml"
        config.write_text(config_text(proxy.host, harness.host, f"http://127.0.0.1:{port}"))
        dags = work / "dags"
        dags.mkdir()
        (dags / "bench_dag.py").write_text(BENCH_DAG)
        airflow = stack.start_airflow(
            work,
            3,
            port=port,
            extra_env={
                **aws,
                "PYTHONPATH": str(overlay.path),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__IMAGECTL__CONFIG_FILE": str(config),
                "AIRFLOW__IMAGECTL__ENVIRONMENTS": "small,big,ecr",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            },
        )
        servers.append(airflow)
        # No dag-processor runs (it would compete for the CPU): serialize the dbt DAG once so a run can be queued.
        subprocess.run([str(stack.airflow_binary(3)), "dags", "reserialize"], env=airflow.env, check=True, capture_output=True, timeout=300)
        cli_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("IMAGECTL_")},
            "IMAGECTL_CONFIG": str(config),
            "IMAGECTL_AIRFLOW_USERNAME": "imagectl",
            "IMAGECTL_AIRFLOW_PASSWORD": stack.AIRFLOW_USERS["imagectl"][1],
            "PYTHONPATH": str(ROOT),
        }
        for name, count in SIZES.items():
            print(f"OCI: recording {count:,} revisions of {name} ...", flush=True)
            started = time.perf_counter()
            record_oci_history(proxy.host, registry.url, count, name)
            cli(cli_env, "deploy", "DATA-9999-1", "--env", name)
            print(f"   {time.perf_counter() - started:.0f} s", flush=True)
        print("ECR: seeding 1,000 revisions of ecr ...", flush=True)
        cli(cli_env, "registry", "init", "--env", "ecr")
        ecr = open_registry(
            RegistryConfig("ecr", "ecr", harness.host, EcrSettings(region="ap-northeast-2", insecure=True, registry_id=ACCOUNT)),
            Credentials(),
        )
        blobs, image = tiny_image()
        ecr.ensure_empty_blob(REPO)
        push_image(ecr, blobs, image, "DATA-1-1")
        push_image(ecr, *tiny_image("two"), "DATA-9999-1")
        seed_ecr_history(harness, ecr, image, "ecr", 999)
        cli(cli_env, "deploy", "DATA-9999-1", "--env", "ecr")
        cli(cli_env, "trigger", "bench_dag", "--env", "small")  # the dbt DAG's last run (one DAG for the three)

        auth = {
            "Authorization": "Bearer "
            + requests.post(
                f"{airflow.url}/auth/token", json={"username": "viewer", "password": stack.AIRFLOW_USERS["viewer"][1]}, timeout=10
            ).json()["access_token"]
        }
        check = requests.get(f"{airflow.url}/imagectl/api/environments", headers=auth, timeout=60).json()
        shown = {e["environment"]: (e["error"], e["revisions"][0]["revision"] if e["revisions"] else None) for e in check["environments"]}
        assert shown == {"small": (None, 10), "big": (None, 1000), "ecr": (None, 1000)}, shown

        def calls() -> int:
            return sum(proxy.requests.values()) + sum(harness.calls.values())

        def measure(path: str) -> tuple[float, float, float]:
            return timed(airflow.url + path, auth, calls)

        print()
        print(f"The Images page through Airflow's api-server: median (slowest of {REPEATS}), registry requests per load")
        heads = ("10 revisions, OCI", "1,000 revisions, OCI", "1,000 / 10", "1,000 revisions, ECR")
        print(f"   {'':34} {heads[0]:>26} {heads[1]:>26} {heads[2]:>10} {heads[3]:>26}")
        for limit in (20, 100):
            small, big, ecr_figures = (measure(f"/imagectl/api/environments/{name}?limit={limit}") for name in ("small", "big", "ecr"))
            label = f"one environment's data, --limit {limit}"
            ratio = f"{big[0] / small[0]:.2f}x"
            print(f"   {label:34} {cell(small):>26} {cell(big):>26} {ratio:>10} {cell(ecr_figures):>26}", flush=True)
        for limit in (20, 100):
            median, slowest, per_load = measure(f"/imagectl/?limit={limit}")
            label = f"the whole page, --limit {limit} (small + big + ecr)"
            print(f"   {label:50} {median:.3f} s (slowest {slowest:.3f} s), {per_load:.0f} req; {median:.2f} of the 1 s budget", flush=True)
        page = requests.get(f"{airflow.url}/imagectl/", headers=auth, timeout=60)
        added = ", ".join(f"{k} {v}" for k, v in overlay.added.items())
        print(f"page size {len(page.content) / 1000:.0f} kB; the plugin's install added {added}")
    finally:
        for close in [*(s.stop for s in reversed(servers)), *closers]:
            close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
