"""Concurrent deploys on real registries, as separate processes: 0 lost, 0 duplicated, the Variable at the newest.

- 16 processes × ROUNDS rounds on the local distribution registry (claims by splitter, no pause);
- 16 processes × ROUNDS rounds on ECR as documented (the harness; claims by immutable tags), the Variable in
  Secrets Manager (moto);
- 8 processes through a proxy adding 0–0.8 s of latency to every registry request (0.1.0 lost 2 of 8 there).
A process that exits 0 must have its own record at its own revision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests import stack
from tests.fault_proxy import FaultProxy
from tests.integration.airflow_helpers import get_variable
from tests.integration.project import push_synthetic

# Each round is 16 contending processes; 5 rounds keep the suite within its time on a 2-core machine (the 20-round
# run took 12–14 min per registry there). CONCURRENCY_ROUNDS=20 runs the long one (figures in docs/performance.md).
ROUNDS = int(os.environ.get("CONCURRENCY_ROUNDS", "5"))
CREDS = {"IMAGECTL_AIRFLOW_USERNAME": "imagectl", "IMAGECTL_AIRFLOW_PASSWORD": stack.AIRFLOW_USERS["imagectl"][1]}


def build_images(imagectl, root: Path, count: int, environ: dict[str, str] | None = None) -> None:
    """``count`` images of distinct content as DATA-1234-1…count, pushed through imagectl's registry client (what
    an image holds does not matter to claims, and 16 docker builds would take minutes; test_images builds for real)."""
    push_synthetic(root, "dev", [f"DATA-1234-{n}" for n in range(1, count + 1)], environ)


def rounds(root: Path, env_name: str, count: int, processes: int, extra_env: dict[str, str] | None = None) -> list[dict]:
    """``count`` rounds of ``processes`` concurrent deploys; returns every revision a process reported as new."""
    env = {**os.environ, **CREDS, **(extra_env or {})}
    reported = []
    for r in range(count):
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "imagectl",
                    "deploy",
                    f"DATA-1234-{(i + r) % processes + 1}",
                    "--env",
                    env_name,
                    "--config",
                    str(root / "imagectl.toml"),
                    "-o",
                    "json",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(processes)
        ]
        outputs = [p.communicate(timeout=600) for p in procs]
        failed = [o[1] for p, o in zip(procs, outputs, strict=True) if p.returncode != 0]
        assert not failed, failed[:3]
        for out, _ in outputs:
            document = json.loads(out)
            if document["state"] == "new":
                reported.append(document["revision"])
    return reported


def check(imagectl, root: Path, env_name: str, reported: list[dict]) -> list[dict]:
    history = json.loads(
        imagectl("history", "--env", env_name, "--limit", "1000", "--config", str(root / "imagectl.toml"), "-o", "json", env=CREDS).stdout
    )["revisions"]
    numbers = [h["revision"] for h in history]
    assert len(numbers) == len(set(numbers)), "a revision number appears twice"
    by_number = {h["revision"]: h for h in history}
    lost = [
        r
        for r in reported
        if by_number.get(r["revision"], {}).get("time") != r["time"] or by_number[r["revision"]]["digest"] != r["digest"]
    ]
    assert not lost, f"{len(lost)} reported revisions are not recorded as reported"  # 0 lost
    assert len(history) == len(reported)  # nothing recorded that no process reported
    return history


def test_sixteen_concurrent_deploys_round_after_round_on_the_distribution_registry(imagectl, make_project, oci_registry, airflow3):
    root = make_project(
        oci_registry.url.removeprefix("http://"),
        environments=f'\n[environments.dev]\nregistry = "local"\nairflow_url = "{airflow3.url}"\nvariable = "img_sixteen_oci"\n',
    )
    build_images(imagectl, root, 16)
    reported = rounds(root, "dev", ROUNDS, 16)
    history = check(imagectl, root, "dev", reported)
    assert len(reported) >= ROUNDS  # at least one new revision per round
    assert get_variable(airflow3, "img_sixteen_oci")["value"] == history[0]["reference"]  # the Variable at the newest


def test_sixteen_concurrent_deploys_round_after_round_on_ecr(imagectl, make_project, aws_env, moto):
    import boto3

    root = make_project(
        "127.0.0.1:1",
        ecr_host=aws_env.host,
        environments='\n[environments.dev]\nregistry = "aws"\nvariable = "img_sixteen_ecr"\nvariable_store = "secretsmanager"\n',
    )
    aws = {k: os.environ[k] for k in os.environ if k.startswith("AWS_")}
    created = imagectl("registry", "init", "--env", "dev", "--config", str(root / "imagectl.toml"))
    assert created.exit_code == 0, created.stderr
    build_images(imagectl, root, 16, aws)
    secrets = boto3.client("secretsmanager", region_name="ap-northeast-2")
    secrets.create_secret(Name="airflow/variables/img_sixteen_ecr", SecretString="none yet")
    reported = rounds(root, "dev", ROUNDS, 16, aws)
    history = check(imagectl, root, "dev", reported)
    assert secrets.get_secret_value(SecretId="airflow/variables/img_sixteen_ecr")["SecretString"] == history[0]["reference"]


def test_eight_concurrent_deploys_with_registry_latency(imagectl, make_project, oci_registry, airflow3):
    proxy = FaultProxy(oci_registry.url)
    try:
        root = make_project(
            oci_registry.url.removeprefix("http://"),
            environments=f'\n[environments.dev]\nregistry = "local"\nairflow_url = "{airflow3.url}"\nvariable = "img_latency"\n',
        )
        build_images(imagectl, root, 8)
        config = root / "imagectl.toml"  # from now on every registry request goes through the proxy
        config.write_text(config.read_text().replace(oci_registry.url.removeprefix("http://"), proxy.host))
        proxy.faults.latency = 0.8
        reported = rounds(root, "dev", 2, 8)
        proxy.faults.latency = 0.0
        history = check(imagectl, root, "dev", reported)
        assert get_variable(airflow3, "img_latency")["value"] == history[0]["reference"]
    finally:
        proxy.close()
