"""Every change command at once (issue 21's "done when"): 8 processes run 200 operations — deploy, promote,
rollback, freeze, unfreeze and gc, chosen at random (seeded, printed) — against dev and prd (a release
environment), through registry latency, on plain OCI (the Variable in Airflow 3) and on the ECR harness (the
Variable in Secrets Manager). Afterwards, for each environment:

- 0 lost or duplicated revisions: every revision a process reported as new is recorded as reported, and nothing
  else is recorded;
- no deploy or promote recorded on top of a frozen revision, and every revision keeps its predecessor's freeze
  unless it is an unfreeze;
- release versions distinct and in revision order;
- the Variable at the newest revision's image, and that image in the registry.

Refusals are fine (exit 4 nothing to do / tag gone, 5 changed meanwhile or never ran in dev, 14 frozen); any
other exit code fails the run. ``MIXED_OPS`` and ``MIXED_SEED`` change the size and the draw.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import semver

from imagectl.config import load_config
from imagectl.workspace import Workspace
from tests.fault_proxy import FaultProxy
from tests.integration.airflow_helpers import get_variable
from tests.integration.project import CREDS, host, push_synthetic

pytestmark = pytest.mark.usefixtures("python_stand_in")

PROCESSES = 8
OPERATIONS = int(os.environ.get("MIXED_OPS", "120"))  # the 200: MIXED_OPS=200 (figures in docs/performance.md)
IMAGES = 12
ALLOWED = {0, 4, 5, 14}


def draw(rng: random.Random) -> list[str]:
    kind = rng.choices(["deploy", "promote", "rollback", "freeze", "unfreeze", "gc"], [35, 20, 15, 10, 10, 10])[0]
    env = rng.choice(["dev", "prd"])
    tag = f"DATA-3-{rng.randint(1, IMAGES)}"
    return {
        "deploy": ["deploy", tag, "--env", "dev"],
        "promote": ["promote", tag, "--from", "dev", "--to", "prd", "--yes"],
        "rollback": ["rollback", "--env", env, "--yes", "--reason", "mixed run"],
        "freeze": ["freeze", "--env", env, "--reason", "mixed run"],
        "unfreeze": ["unfreeze", "--env", env, "--reason", "mixed run"],
        "gc": ["gc", "--env", "dev", "--yes"],
    }[kind]


def mixed_run(root: Path, environ: dict[str, str], seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Runs the operations; returns what each reported as a new revision, and every unexpected failure."""
    rng = random.Random(seed)
    operations = [draw(rng) for _ in range(OPERATIONS)]
    shares = [operations[i::PROCESSES] for i in range(PROCESSES)]
    reported: list[dict[str, Any]] = []
    failures: list[str] = []
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def worker(share: list[list[str]]) -> None:
        for args in share:
            proc = subprocess.run(
                [sys.executable, "-m", "imagectl", *args, "--config", str(root / "imagectl.toml"), "-o", "json"],
                env={**os.environ, **CREDS, **environ},
                capture_output=True,
                text=True,
                timeout=600,
            )
            with lock:
                outcome = f"{args[0]}:{proc.returncode}"
                codes[outcome] = codes.get(outcome, 0) + 1
                if proc.returncode not in ALLOWED or "Traceback" in proc.stderr:
                    failures.append(f"{' '.join(args)} → exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
                    continue
                if proc.returncode == 0 and args[0] != "gc":
                    document = json.loads(proc.stdout)
                    if document.get("state") == "new":
                        reported.append(document["revision"])

    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    outcomes = dict(sorted(codes.items()))
    print(f"mixed run (seed {seed}): {OPERATIONS} operations by {PROCESSES} processes in {took:.0f} s; command:exit {outcomes}")
    return reported, failures


def check_environment(workspace: Workspace, name: str, reported: list[dict[str, Any]], variable_value: str | None) -> int:
    env = workspace.env(name)
    revisions = sorted(env.history.newest(1000), key=lambda r: r.revision)
    mine = [r for r in reported if r["environment"] == name]
    by_number = {r.revision: r for r in revisions}
    assert len(by_number) == len(revisions)  # (numbers are slots: unique by construction)
    lost = [
        r
        for r in mine
        if r["revision"] not in by_number or by_number[r["revision"]].time != r["time"] or by_number[r["revision"]].digest != r["digest"]
    ]
    assert not lost, f"{name}: {len(lost)} reported revisions are not recorded as reported: {lost[:2]}"
    assert len(revisions) == len(mine), f"{name}: {len(revisions)} recorded, {len(mine)} reported"
    for revision in revisions:
        before = by_number.get(revision.replaces) if revision.replaces else None
        if before is not None and before.frozen:
            assert not (revision.action in ("deploy", "promote") and not revision.forced), f"{name}: {revision} recorded while frozen"
            assert revision.frozen or revision.action == "unfreeze", f"{name}: revision {revision.revision} lost the freeze"
    releases = [r.release for r in revisions if r.release and r.action == "promote"]
    if releases:
        first_seen = list(dict.fromkeys(releases))
        assert first_seen == sorted(first_seen, key=lambda v: semver.Version.parse(v[1:])), f"{name}: versions out of order {first_seen}"
    if revisions:
        newest = revisions[-1]
        assert variable_value == env.reference(newest.tag, newest.digest), f"{name}: the Variable is {variable_value}, newest is {newest}"
        assert env.registry.existing(env.repository, [newest.digest]), f"{name}: the newest revision's image is gone"
    return len(revisions)


ENVIRONMENTS = """
[environments.dev]
registry = "{registry}"
{dev}
[environments.prd]
registry = "{registry}"
release = true
{prd}
"""


def seed() -> int:
    return int(os.environ.get("MIXED_SEED") or random.SystemRandom().randrange(1_000_000))


def test_mixed_operations_on_plain_oci_through_latency(make_project, oci_registry, airflow3):
    proxy = FaultProxy(oci_registry.url)
    try:
        environments = ENVIRONMENTS.format(
            registry="local",
            dev=f'airflow_url = "{airflow3.url}"\nvariable = "img_mixed_dev"',
            prd=f'airflow_url = "{airflow3.url}"\nvariable = "img_mixed_prd"',
        )
        root = make_project(host(oci_registry), environments=environments)
        config = root / "imagectl.toml"
        config.write_text(config.read_text().replace("insecure = true\n", "insecure = true\nretention = { keep_builds = 8 }\n", 1))
        push_synthetic(root, "dev", [f"DATA-3-{n}" for n in range(1, IMAGES + 1)])
        config.write_text(config.read_text().replace(host(oci_registry), proxy.host))  # from now on through the proxy
        proxy.faults.latency = 0.2
        reported, failures = mixed_run(root, {}, seed())
        proxy.faults.latency = 0.0
        assert not failures, failures[:5]
        workspace = Workspace.from_environ(load_config(config), {**os.environ, **CREDS})
        counts = [
            check_environment(workspace, name, reported, (get_variable(airflow3, f"img_mixed_{name}") or {}).get("value"))
            for name in ("dev", "prd")
        ]
        assert counts[0] > OPERATIONS // 20, counts  # the run did change things
    finally:
        proxy.close()


def test_mixed_operations_on_ecr_through_latency(make_project, aws_env, moto):
    import boto3

    environments = ENVIRONMENTS.format(
        registry="aws",
        dev='variable = "img_mixed_dev"\nvariable_store = "secretsmanager"',
        prd='variable = "img_mixed_prd"\nvariable_store = "secretsmanager"',
    )
    root = make_project("127.0.0.1:1", ecr_host=aws_env.host, environments=environments)
    config = root / "imagectl.toml"
    config.write_text(config.read_text().replace('registry_id = "', 'retention = { keep_builds = 8 }\nregistry_id = "', 1))
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    secrets = boto3.client("secretsmanager", region_name="ap-northeast-2")
    for name in ("img_mixed_dev", "img_mixed_prd"):
        try:
            secrets.create_secret(Name=f"airflow/variables/{name}", SecretString="none yet")
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=f"airflow/variables/{name}", SecretString="none yet")
    created = subprocess.run(
        [sys.executable, "-m", "imagectl", "registry", "init", "--env", "dev", "--config", str(config)], capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    push_synthetic(root, "dev", [f"DATA-3-{n}" for n in range(1, IMAGES + 1)], aws)
    aws_env.limits.latency = 0.1
    reported, failures = mixed_run(root, aws, seed())
    aws_env.limits.latency = 0.0
    assert not failures, failures[:5]
    workspace = Workspace.from_environ(load_config(config), os.environ)
    for name in ("dev", "prd"):
        value = secrets.get_secret_value(SecretId=f"airflow/variables/img_mixed_{name}")["SecretString"]
        check_environment(workspace, name, reported, value)
