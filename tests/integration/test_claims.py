"""Decisions taken where the change is claimed, not when it was planned (issue 21, causes 2–4), on the real
registry and Airflow: one command is held by a proxy at its claim (the request that starts it) while another runs
to the end; then the held one goes on and must decide on what is there now.

Pairs: deploy/freeze, freeze/deploy, deploy/deploy (one revision), promote/rollback; gc/deploy in both orders
(the image the Variable points at exists afterwards); 16 concurrent promotes into a release environment (distinct,
gap-free versions in revision order) on plain OCI and on the ECR harness.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import semver

from imagectl.registries.kinds import HttpSettings
from imagectl.registries.oci import OciRegistry
from imagectl.settings import RegistryConfig
from tests.fault_proxy import FaultProxy, Hold
from tests.integration.airflow_helpers import get_variable
from tests.integration.project import CREDS, Project, host, push_synthetic

TAGS = ["DATA-1-1", "DATA-1-2", "DATA-1-3"]


def environments(airflow_url: str, var: str, dev_config: str = "") -> str:
    return f"""
[environments.dev]
registry = "local"
airflow_url = "{airflow_url}"
variable = "{var}_dev"
{dev_config}
[environments.prd]
registry = "local"
airflow_url = "{airflow_url}"
variable = "{var}_prd"
release = true
"""


class Held:
    """An imagectl command run through the proxy, stopped at the first request matching ``method`` and ``path``."""

    def __init__(self, proxy: FaultProxy, root: Path, method: str, path: str, *args: str) -> None:
        self.hold = proxy.hold = Hold(method, path)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imagectl", *args, "--config", str(root / "proxied.toml"), "-o", "json"],
            env={**os.environ, **CREDS},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if not self.hold.arrived.wait(120):
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"the held command never reached {method} {path}: exit {self.proc.returncode}\n{err}")

    def finish(self) -> tuple[int, dict, str]:
        self.hold.release()
        out, err = self.proc.communicate(timeout=300)
        assert "Traceback" not in err, err
        return self.proc.returncode, (json.loads(out) if out.strip() else {}), err


@pytest.fixture
def claims(make_project, oci_registry, airflow3, request):
    """A project with dev and prd (a release environment) on the local registry, three images, and a second
    config (proxied.toml) that reaches the registry through a proxy that can hold one request."""
    proxy = FaultProxy(oci_registry.url)
    var = "img_claims_" + request.node.name[5:30]
    root = make_project(host(oci_registry), environments=environments(airflow3.url, var, getattr(request, "param", "")))
    (root / "proxied.toml").write_text((root / "imagectl.toml").read_text().replace(host(oci_registry), proxy.host))
    project = Project(None, root)
    digests = push_synthetic(root, "dev", TAGS)
    yield root, project.repo, proxy, digests, var
    proxy.close()


def run(imagectl, root: Path, *args: str, config: str = "imagectl.toml") -> tuple[int, dict, str]:
    result = imagectl(*args, "--config", str(root / config), "-o", "json", env=CREDS)
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, (json.loads(result.stdout) if result.stdout.strip() else {}), result.stderr


def history(imagectl, root: Path, env: str) -> list[dict]:
    code, doc, err = run(imagectl, root, "history", "--env", env, "--limit", "100")
    assert code == 0, err
    return doc["revisions"]


def claim_of(repo: str, env: str) -> str:
    return f"/v2/{repo}/manifests/imagectl-history-{env}-"


def test_a_deploy_that_finds_a_freeze_at_its_claim_refuses_and_records_nothing(imagectl, claims, airflow3):
    root, repo, proxy, digests, var = claims
    assert run(imagectl, root, "deploy", "DATA-1-1", "--env", "dev")[0] == 0
    held = Held(proxy, root, "PUT", claim_of(repo, "dev"), "deploy", "DATA-1-2", "--env", "dev")  # planned: not frozen
    assert run(imagectl, root, "freeze", "--env", "dev", "--reason", "incident")[0] == 0
    code, _, err = held.finish()
    assert code == 14 and "frozen" in err and "nothing was recorded" in err, err
    revisions = history(imagectl, root, "dev")
    assert [(r["action"], r["digest"]) for r in revisions] == [("freeze", digests["DATA-1-1"]), ("deploy", digests["DATA-1-1"])]
    assert get_variable(airflow3, f"{var}_dev")["value"].endswith(digests["DATA-1-1"])


def test_a_freeze_keeps_the_image_deployed_after_it_was_planned(imagectl, claims, airflow3):
    root, repo, proxy, digests, var = claims
    assert run(imagectl, root, "deploy", "DATA-1-1", "--env", "dev")[0] == 0
    held = Held(proxy, root, "PUT", claim_of(repo, "dev"), "freeze", "--env", "dev", "--reason", "incident")  # planned on 1
    assert run(imagectl, root, "deploy", "DATA-1-2", "--env", "dev")[0] == 0
    code, doc, err = held.finish()
    assert code == 0, err
    assert doc["revision"]["action"] == "freeze" and doc["revision"]["digest"] == digests["DATA-1-2"]  # not rolled back
    assert [r["revision"] for r in history(imagectl, root, "dev")] == [3, 2, 1]
    assert get_variable(airflow3, f"{var}_dev")["value"].endswith(digests["DATA-1-2"])


def test_the_same_deploy_twice_at_once_records_one_revision(imagectl, claims, airflow3):
    root, repo, proxy, digests, var = claims
    assert run(imagectl, root, "deploy", "DATA-1-1", "--env", "dev")[0] == 0
    held = Held(proxy, root, "PUT", claim_of(repo, "dev"), "deploy", "DATA-1-2", "--env", "dev")
    code, first, err = run(imagectl, root, "deploy", "DATA-1-2", "--env", "dev")
    assert code == 0 and first["state"] == "new", err
    code, second, err = held.finish()
    assert code == 0 and second["state"] == "complete" and second["revision"]["revision"] == first["revision"]["revision"], err
    assert [r["tag"] for r in history(imagectl, root, "dev")] == ["DATA-1-2", "DATA-1-1"]


def test_a_rollback_planned_before_a_promote_refuses_instead_of_undoing_it(imagectl, claims, airflow3):
    root, repo, proxy, digests, var = claims
    for tag in TAGS:
        assert run(imagectl, root, "deploy", tag, "--env", "dev")[0] == 0
    for tag in TAGS[:2]:
        code, _, err = run(imagectl, root, "promote", tag, "--from", "dev", "--to", "prd", "--yes")
        assert code == 0, err
    # planned: undo revision 2 (DATA-1-2), back to revision 1
    held = Held(proxy, root, "PUT", claim_of(repo, "prd"), "rollback", "--env", "prd", "--yes", "--reason", "broken")
    assert run(imagectl, root, "promote", "DATA-1-3", "--from", "dev", "--to", "prd", "--yes")[0] == 0
    code, _, err = held.finish()
    assert code == 5 and "changed since the rollback was planned" in err, err
    revisions = history(imagectl, root, "prd")
    assert [r["tag"] for r in revisions] == ["DATA-1-3", "DATA-1-2", "DATA-1-1"]
    assert [r["release"] for r in revisions] == ["v1.0.2", "v1.0.1", "v1.0.0"]
    assert get_variable(airflow3, f"{var}_prd")["value"].endswith(digests["DATA-1-3"])


@pytest.fixture
def gc_project(claims):
    """``claims`` with a retention that expires every build image but the newest (unless something uses it)."""
    root, repo, proxy, digests, var = claims
    for name in ("imagectl.toml", "proxied.toml"):
        path = root / name
        path.write_text(path.read_text().replace("insecure = true\n", "insecure = true\nretention = { keep_builds = 1 }\n", 1))
    return claims


def present(registry_host: str, repo: str, digest: str) -> bool:
    registry = OciRegistry(RegistryConfig("local", "oci", registry_host, HttpSettings(insecure=True)))
    return bool(registry.existing(repo, [digest]))


def test_gc_that_deletes_an_image_a_deploy_just_started_using_puts_it_back(imagectl, gc_project, oci_registry, airflow3):
    root, repo, proxy, digests, var = gc_project
    assert run(imagectl, root, "deploy", "DATA-1-3", "--env", "dev")[0] == 0
    code, plan, err = run(imagectl, root, "gc", "--env", "dev")
    doomed = {i["digest"] for i in plan["images"] if not i["keep"]}
    assert digests["DATA-1-1"] in doomed, plan  # the rules expire it: older than the newest build, never deployed
    # gc has checked DATA-1-1 one last time and sent its delete: held there while DATA-1-1 is deployed
    held = Held(proxy, root, "DELETE", f"/manifests/{digests['DATA-1-1']}", "gc", "--env", "dev", "--yes")
    assert run(imagectl, root, "deploy", "DATA-1-1", "--env", "dev")[0] == 0
    code, result, err = held.finish()
    assert code == 0, err
    item = next(i for i in result["images"] if i["digest"] == digests["DATA-1-1"])
    assert not item["deleted"] and "put back" in item["note"], item
    value = get_variable(airflow3, f"{var}_dev")["value"]
    assert value.endswith(digests["DATA-1-1"]) and present(host(oci_registry), repo, digests["DATA-1-1"])
    assert run(imagectl, root, "status", "--env", "dev")[0] == 0


def test_a_deploy_held_while_gc_deletes_its_image_puts_it_back_itself(imagectl, gc_project, oci_registry, airflow3):
    root, repo, proxy, digests, var = gc_project
    assert run(imagectl, root, "deploy", "DATA-1-3", "--env", "dev")[0] == 0
    # the deploy has found DATA-1-1 and is about to claim its revision: gc runs to the end meanwhile
    held = Held(proxy, root, "PUT", claim_of(repo, "dev"), "deploy", "DATA-1-1", "--env", "dev")
    code, result, err = run(imagectl, root, "gc", "--env", "dev", "--yes")
    assert code == 0 and any(i["deleted"] and i["digest"] == digests["DATA-1-1"] for i in result["images"]), result
    assert not present(host(oci_registry), repo, digests["DATA-1-1"])
    code, _, err = held.finish()
    assert code == 0, err
    assert present(host(oci_registry), repo, digests["DATA-1-1"])  # deployed, so tagged deployed-dev-…: back
    assert get_variable(airflow3, f"{var}_dev")["value"].endswith(digests["DATA-1-1"])
    code, status, err = run(imagectl, root, "status", "--env", "dev", config="proxied.toml")  # it wrote the proxy's address
    assert code == 0, err


def test_status_says_when_the_variables_image_is_gone(imagectl, claims, oci_registry):
    root, repo, proxy, digests, var = claims
    assert run(imagectl, root, "deploy", "DATA-1-2", "--env", "dev")[0] == 0
    registry = OciRegistry(RegistryConfig("local", "oci", host(oci_registry), HttpSettings(insecure=True)))
    registry.delete_manifest(repo, digests["DATA-1-2"])  # deleted by something else
    code, status, err = run(imagectl, root, "status", "--env", "dev")
    assert code == 10 and status["environments"][0]["image_missing"], (status, err)


def promote_all_at_once(root: Path, tags: list[str], environ: dict[str, str]) -> list[tuple[int, dict, str]]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imagectl",
                "promote",
                tag,
                "--from",
                "dev",
                "--to",
                "prd",
                "--yes",
                "--config",
                str(root / "imagectl.toml"),
            ]
            + ["-o", "json"],
            env={**os.environ, **CREDS, **environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        results.append((proc.returncode, json.loads(out) if out.strip() else {}, err))
    return results


def check_releases(imagectl, root: Path, results: list[tuple[int, dict, str]], env: dict[str, str] | None = None) -> None:
    failed = [err for code, _, err in results if code != 0]
    assert not failed, failed[:3]
    versions = [doc["revision"]["release"] for _, doc, _ in results]
    result = imagectl(
        "history", "--env", "prd", "--limit", "100", "--config", str(root / "imagectl.toml"), "-o", "json", env={**CREDS, **(env or {})}
    )
    revisions = sorted(json.loads(result.stdout)["revisions"], key=lambda r: r["revision"])
    assert len(revisions) == len(results) and len(set(versions)) == len(versions)
    in_order = [r["release"] for r in revisions]  # versions follow the revision order, one patch step each
    assert in_order == [f"v1.0.{n}" for n in range(len(results))], in_order
    assert sorted(versions, key=lambda v: semver.Version.parse(v[1:])) == in_order


def test_sixteen_concurrent_promotes_get_distinct_gap_free_versions_on_plain_oci(imagectl, make_project, oci_registry, airflow3):
    root = make_project(host(oci_registry), environments=environments(airflow3.url, "img_release16"))
    tags = [f"DATA-2-{n}" for n in range(1, 17)]
    push_synthetic(root, "dev", tags)
    for tag in tags:
        assert run(imagectl, root, "deploy", tag, "--env", "dev")[0] == 0
    started = time.monotonic()
    check_releases(imagectl, root, promote_all_at_once(root, tags, {}))
    print(f"16 concurrent promotes on plain OCI: {time.monotonic() - started:.1f} s")


def test_sixteen_concurrent_promotes_get_distinct_gap_free_versions_on_ecr(imagectl, make_project, aws_env, moto):
    import boto3

    root = make_project(
        "127.0.0.1:1",
        ecr_host=aws_env.host,
        environments='\n[environments.dev]\nregistry = "aws"\nvariable = "img16_dev"\nvariable_store = "secretsmanager"\n'
        '[environments.prd]\nregistry = "aws"\nvariable = "img16_prd"\nvariable_store = "secretsmanager"\nrelease = true\n',
    )
    secrets = boto3.client("secretsmanager", region_name="ap-northeast-2")
    for name in ("img16_dev", "img16_prd"):
        secrets.create_secret(Name=f"airflow/variables/{name}", SecretString="none yet")
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    created = imagectl("registry", "init", "--env", "dev", "--config", str(root / "imagectl.toml"), env=aws)
    assert created.exit_code == 0, created.stderr
    tags = [f"DATA-2-{n}" for n in range(1, 17)]
    push_synthetic(root, "dev", tags, aws)
    for tag in tags:
        result = imagectl("deploy", tag, "--env", "dev", "--config", str(root / "imagectl.toml"), env=aws)
        assert result.exit_code == 0, result.stderr
    check_releases(imagectl, root, promote_all_at_once(root, tags, aws), aws)
