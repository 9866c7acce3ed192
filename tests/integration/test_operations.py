"""Operating releases on the real local stack: freeze, gc (the same rules as the ECR policy), diff, notifications and
shell completion."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from imagectl import labels as L
from imagectl.labels import BuildInfo
from imagectl.registries._base import Manifest
from imagectl.registries.kinds import HttpSettings
from imagectl.registries.oci import OciRegistry
from imagectl.settings import RegistryConfig
from imagectl.tag_registry import write_record
from tests.integration.airflow_helpers import RecordingServer, get_variable
from tests.integration.conftest import commit_change
from tests.integration.project import CREDS, Project, host

pytestmark = pytest.mark.usefixtures("python_stand_in")


def environments(registry_host: str, airflow_url: str, var: str, extra_prd: str = "", extra: str = "") -> str:
    return f"""
[environments.dev]
registry = "local"
airflow_url = "{airflow_url}"
variable = "{var}_dev"
[environments.prd]
registry = "local"
airflow_url = "{airflow_url}"
variable = "{var}_prd"
release = true
{extra_prd}
{extra}"""


def test_freeze_stops_deploys_and_ci_but_not_rollback(imagectl, make_project, oci_registry, airflow3):
    ci = '\n[ci]\nbranches = { "feature/*" = "dev" }\nbuild_environment = "dev"\nlightdash_dag = false\n'
    root = make_project(host(oci_registry), environments=environments(host(oci_registry), airflow3.url, "img_freeze", extra=ci))
    project = Project(imagectl, root)
    for n in (1, 2, 3):
        project.build(n)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    project.json("deploy", "DATA-1234-2", "--env", "dev")
    frozen = project.json("rollback", "--env", "dev", "--freeze", "--reason", "orders broke revenue", "--actor", "oncall")
    assert frozen["revision"]["frozen"] and frozen["revision"]["tag"] == "DATA-1234-1"
    refused = project.run("deploy", "DATA-1234-3", "--env", "dev")
    assert refused.exit_code == 14
    assert (
        "dev is frozen by oncall since" in refused.stderr and ": orders broke revenue" in refused.stderr and refused.stderr.count("\n") == 1
    )
    history = project.run("history", "--env", "dev")
    assert "dev is frozen by oncall" in history.stdout
    status = project.json("status", "--env", "dev")
    assert (
        status["environments"][0]["frozen"] is True and "frozen    dev is frozen by oncall" in project.run("status", "--env", "dev").stdout
    )
    # ci on the frozen environment builds, then stops before deploying, exit 0 with a clear line.
    env = {"bamboo_buildNumber": "4", "bamboo_planRepository_branchName": "feature/DATA-1234-x", "bamboo_buildResultKey": "F-4"}
    commit_change(root, "models/orders.sql", "select 4\n", "DATA-1234 four")
    ran = project.run("ci", "--quiet", env=env)
    assert ran.exit_code == 0, ran.stderr
    assert "dev is frozen by oncall" in ran.stdout and "built and pushed, not deployed" in ran.stdout
    assert project.json("history", "--env", "dev")["revisions"][0]["revision"] == 3
    forced = project.json("deploy", "DATA-1234-3", "--env", "dev", "--force", "--reason", "fix approved by lead")
    assert forced["revision"]["forced"].startswith("freeze: dev is frozen by oncall") and forced["revision"]["frozen"]
    thawed = project.json("unfreeze", "--env", "dev", "--reason", "fixed")
    assert thawed["revision"]["action"] == "unfreeze" and not thawed["revision"]["frozen"]
    assert project.json("deploy", "DATA-1234-4", "--env", "dev")["revision"]["revision"] == 6


def test_diff_says_what_a_rollback_would_undo(imagectl, make_project, oci_registry, airflow3, tmp_path):
    root = make_project(host(oci_registry), environments=environments(host(oci_registry), airflow3.url, "img_diff"))
    project = Project(imagectl, root)
    project.build(1, "DATA-1234 first")
    project.build(2, "DATA-77 orders gets refunds")
    for n in (1, 2):
        project.json("deploy", f"DATA-1234-{n}", "--env", "dev")
    diff = project.json("diff", "--env", "dev")
    assert diff["kind"] == "diff" and diff["from"]["tag"] == "DATA-1234-2" and diff["to"]["tag"] == "DATA-1234-1"
    assert [c["subject"] for c in diff["commits_removed"]] == ["DATA-77 orders gets refunds"] and diff["commits_added"] == []
    assert "DATA-77" in diff["jira_keys"] and diff["dbt_files"] == ["models/orders.sql"]
    plan = project.run("rollback", "--env", "dev", "--dry-run")
    assert "what this undoes:" in plan.stdout and "DATA-77 orders gets refunds" in plan.stdout
    # On an on-call laptop with only imagectl.toml (no checkout): the labels alone.
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    shutil.copy(root / "imagectl.toml", laptop / "imagectl.toml")
    outside = imagectl("diff", "--env", "dev", "--config", str(laptop / "imagectl.toml"), "-o", "json", env=CREDS)
    assert outside.exit_code == 0, outside.stderr
    assert json.loads(outside.stdout)["in_repository"] is False and "labels only" in json.loads(outside.stdout)["note"]
    assert imagectl("history", "--env", "dev", "--config", str(laptop / "imagectl.toml"), env=CREDS).exit_code == 0  # no dbt repo needed


def test_notifications_one_per_change_and_never_fatal(imagectl, make_project, oci_registry, airflow3):
    receiver = RecordingServer()
    try:
        hooks = '\nnotify = ["ops", "audit"]\n[webhooks.ops]\nformat = "slack"\n[webhooks.audit]\nformat = "json"\n'
        root = make_project(host(oci_registry), environments=environments(host(oci_registry), airflow3.url, "img_notify", extra_prd=hooks))
        project = Project(imagectl, root)
        project.build(1)
        project.build(2)
        env = {"IMAGECTL_WEBHOOK_OPS_URL": f"{receiver.url}/slack/T000/B000/secret", "IMAGECTL_WEBHOOK_AUDIT_URL": f"{receiver.url}/audit"}
        for n in (1, 2):
            project.json("deploy", f"DATA-1234-{n}", "--env", "dev", env=env)
        project.json("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes", "--reason", "weekly", env=env)
        project.json("promote", "DATA-1234-2", "--from", "dev", "--to", "prd", "--yes", env=env)
        project.json("rollback", "--env", "prd", "--yes", "--reason", "broke", env=env)
        project.json("freeze", "--env", "prd", "--reason", "incident", env=env)
        paths = [p for _, p, _ in receiver.requests]
        assert paths.count("/slack/T000/B000/secret") == 4 and paths.count("/audit") == 4  # dev has no webhooks
        slack = [json.loads(b) for (_, p, _), b in zip(receiver.requests, receiver.bodies, strict=True) if p.startswith("/slack")]
        assert (
            slack[0]["text"].startswith("imagectl: promote prd: nothing → DATA-1234-1 (v1.0.0), revision 1, by ")
            and "weekly" in slack[0]["text"]
        )
        assert "blocks" in slack[0]
        events = [json.loads(b) for (_, p, _), b in zip(receiver.requests, receiver.bodies, strict=True) if p == "/audit"]
        assert [e["action"] for e in events] == ["promote", "promote", "rollback", "freeze"]
        assert events[2]["from"]["release"] == "v1.0.1" and events[2]["to"]["release"] == "v1.0.0" and events[2]["reason"] == "broke"
        assert events[0]["schema"] == 1 and events[0]["kind"] == "event"
        # A webhook that fails never fails the change: one warning line, without the URL.
        broken = {"IMAGECTL_WEBHOOK_OPS_URL": "http://127.0.0.1:9/hook/secret-path", "IMAGECTL_WEBHOOK_AUDIT_URL": f"{receiver.url}/audit"}
        done = project.run("unfreeze", "--env", "prd", "--reason", "over", env=broken)
        assert done.exit_code == 0 and "warning: webhook ops was not notified: connection refused" in done.stderr
        assert "secret-path" not in done.stderr + done.stdout
    finally:
        receiver.close()


def test_gc_keeps_exactly_what_the_rules_keep(imagectl, make_project, oci_registry, airflow3):
    keep = "\n[registries.local.retention]\nkeep_builds = 20\nkeep_bases = 2\n"
    root = make_project(host(oci_registry), environments=environments(host(oci_registry), airflow3.url, "img_gc"), extra=keep)
    config = root / "imagectl.toml"
    project = Project(imagectl, root)
    project.build(1)  # one real build: its base and build images
    registry = OciRegistry(RegistryConfig("local", "oci", host(oci_registry), HttpSettings(insecure=True)))
    base_digest = registry.get_manifest(project.base_repo, "DATA-1234-1").digest
    shared_config = registry.put_small_blob(project.repo, b'{"os":"linux"}')
    total = 200
    for n in range(2, total + 2):  # 200 more builds, written as a build writes them (image + build record)
        layer = registry.put_small_blob(project.repo, f"layer-{n}".encode())
        doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **shared_config},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **layer}],
        }
        image = Manifest.from_bytes(json.dumps(doc).encode())
        registry.put_manifest(project.repo, f"DATA-9-{n}", image)
        info = BuildInfo(f"DATA-9-{n}", "DATA-9", n, "a" * 40, "main", None, "2026-01-01T00:00:00Z", "demo")
        write_record(registry, project.repo, f"DATA-9-{n}", image, {**L.image_labels(info, "build", base_digest=base_digest)}, info)
    for n in (5, 6):
        project.json("deploy", f"DATA-9-{n}", "--env", "dev")  # old builds that ran: kept
    project.json("promote", "DATA-9-5", "--from", "dev", "--to", "prd", "--yes")  # a release: kept
    project.json("deploy", "DATA-9-7", "--env", "dev")  # the Variable points at it: kept
    plan = project.json("gc", "--env", "dev")
    build_items = [i for i in plan["images"] if i["repository"] == project.repo]
    kept_builds = {t for i in build_items if i["keep"] for t in i["tags"] if t.startswith(("DATA-9-", "DATA-1234-"))}
    newest = {f"DATA-9-{n}" for n in range(total + 1, total + 1 - 20, -1)}
    assert kept_builds == newest | {"DATA-9-5", "DATA-9-6", "DATA-9-7"}
    assert all(i["keep"] for i in build_items if any(t.startswith(("imagectl-history-", "deployed-")) for t in i["tags"]))
    base_items = [i for i in plan["images"] if i["repository"] == project.base_repo]
    assert all(i["keep"] for i in base_items)  # the base of kept build images
    assert plan["applied"] is False and plan["expired"] > 150

    # A deploy of an image gc would delete, racing gc --yes: the deploy never loses its image.
    victim = "DATA-9-10"
    env = {**os.environ, **CREDS}
    gc_proc = subprocess.Popen(
        [sys.executable, "-m", "imagectl", "gc", "--env", "dev", "--yes", "--config", str(config), "-o", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deploy = threading.Thread(target=lambda: project.json("deploy", victim, "--env", "dev"))
    deploy.start()
    deploy.join()
    out, err = gc_proc.communicate(timeout=600)
    assert gc_proc.returncode == 0, err
    deployed = project.json("history", "--env", "dev")["revisions"][0]
    assert deployed["tag"] == victim and registry.get_manifest(project.repo, deployed["digest"]) is not None
    assert get_variable(airflow3, "img_gc_dev")["value"] == deployed["reference"]
    after = set(registry.list_tags(project.repo))
    assert {f"DATA-9-{n}" for n in (5, 6, 7)} | newest <= after and "DATA-9-3" not in after
    assert json.loads(project.run("history", "--env", "dev", "-o", "json").stdout)["revisions"]  # history intact


def test_shell_completion_offers_environments_and_tags(make_project, oci_registry, airflow3):
    root = make_project(host(oci_registry), environments=environments(host(oci_registry), airflow3.url, "img_complete"))
    imagectl = str(Path(sys.executable).parent / "imagectl")
    env = {**os.environ, **CREDS, "_IMAGECTL_COMPLETE": "bash_complete", "COMP_WORDS": "imagectl history --env ", "COMP_CWORD": "3"}
    env["IMAGECTL_CONFIG"] = str(root / "imagectl.toml")
    out = subprocess.run([imagectl, "history", "--env", ""], env=env, capture_output=True, text=True)
    assert "plain,dev" in out.stdout and "plain,prd" in out.stdout
    commit_change(root, "models/orders.sql", "select 1\n", "DATA-1234 x")
    subprocess.run(
        [imagectl, "build", "--build-number", "1", "--quiet", "--config", str(root / "imagectl.toml")],
        env={**os.environ, **CREDS},
        check=True,
    )
    env.update({"COMP_WORDS": "imagectl deploy DA", "COMP_CWORD": "2"})
    out = subprocess.run([imagectl, "deploy", "DA"], env=env, capture_output=True, text=True)
    assert "plain,DATA-1234-1" in out.stdout
