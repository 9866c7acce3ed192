"""Hostile registry content, hostile servers and secrets, against the real local stack (registry, Airflow 3):
nothing breaks an environment, leaks a secret, or exits 0 on a loss; every failure is one line and its code."""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import time

import pytest

from imagectl.namespaces import door_tag, history_tag, legacy_base_tag, record_tag, segment_tag
from imagectl.records import REVISION_RECORD, make_record
from imagectl.registries._base import Manifest
from imagectl.registries.kinds import HttpSettings
from imagectl.registries.oci import OciRegistry
from imagectl.settings import RegistryConfig
from tests import stack
from tests.conftest import git
from tests.fault_proxy import FaultProxy
from tests.integration.airflow_helpers import get_variable
from tests.integration.conftest import commit_change
from tests.integration.project import CREDS, Project, host

pytestmark = pytest.mark.usefixtures("python_stand_in")


def two_envs(dev_registry: str, airflow_url: str, var: str, prd_registry: str | None = None) -> str:
    prd = f'[registries.prd]\nkind = "oci"\nhost = "{prd_registry}"\ninsecure = true\n' if prd_registry else ""
    return f"""
{prd}
[environments.dev]
registry = "local"
airflow_url = "{airflow_url}"
variable = "{var}_dev"
[environments.prd]
registry = "{"prd" if prd_registry else "local"}"
airflow_url = "{airflow_url}"
variable = "{var}_prd"
release = true
"""


def assert_one_line(result, code: int | None = None) -> None:
    assert "Traceback" not in result.stderr and result.exit_code != 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1
    if code is not None:
        assert result.exit_code == code, result.stderr


def test_forged_records_in_every_namespace_are_skipped_never_counted(imagectl, make_project, oci_registry, prd_registry, airflow3):
    root = make_project(host(oci_registry), environments=two_envs(host(oci_registry), airflow3.url, "img_forged", host(prd_registry)))
    project = Project(imagectl, root)
    for n in (1, 2, 3):
        project.build(n)
    for n in (1, 2, 3):
        project.json("deploy", f"DATA-1234-{n}", "--env", "dev")
    registry = OciRegistry(RegistryConfig("local", "oci", host(oci_registry), HttpSettings(insecure=True)))
    image = registry.get_manifest(project.repo, "DATA-1234-1")
    registry.ensure_empty_blob(project.repo)

    def forge(tag: str, doc: dict | bytes) -> None:
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        registry._write(project.repo, tag, Manifest(raw, "application/vnd.oci.image.manifest.v1+json", "sha256:" + "0" * 64))

    subject_string = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": REVISION_RECORD,
        "config": image.doc["config"],
        "layers": image.doc["layers"],
        "subject": "sha256:x",
        "annotations": {},
    }
    # Inside the claimed prefix: revision 2's record replaced by one whose subject is a string; slot 4 claimed (its door
    # closed) by a record that names another environment and number. Far above it: a foreign manifest at 99.
    forge(history_tag("dev", 2), subject_string)
    lying = json.loads(
        make_record(image, {"io.imagectl.history.environment": "prd", "io.imagectl.history.revision": "7"}, REVISION_RECORD).raw
    )
    forge(history_tag("dev", 4), lying)
    forge(door_tag(history_tag("dev", 4)), lying)
    registry._write(project.repo, history_tag("dev", 99), image)
    registry._write(project.repo, door_tag(history_tag("dev", 99)), image)
    base = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": image.doc["config"],
        "layers": image.doc["layers"],
    }
    forge(
        record_tag("DATA-1234-2"), {**base, "artifactType": "application/vnd.imagectl.record.v2+json", "subject": image.descriptor()}
    )  # about 1
    forge(segment_tag("dev", 1), {**base, "artifactType": "application/vnd.imagectl.segment.v1+json"})  # its layer is not JSON lines
    forge(
        legacy_base_tag("dev"),
        {
            **base,
            "artifactType": "application/vnd.imagectl.history-base.v1+json",
            "annotations": {"io.imagectl.history.legacy-last": "abc"},
        },
    )
    history = project.run("history", "--env", "dev", "-o", "json")
    assert_one_line(history, 0)
    assert [r["revision"] for r in json.loads(history.stdout)["revisions"]] == [3, 1]
    assert "imagectl-history-dev-000002" in history.stderr and "imagectl-history-dev-000004" in history.stderr
    assert "names environment 'prd'" in history.stderr and history.stderr.count("warning:") == 2
    for args in (["status", "--env", "dev"], ["tags", "list"], ["tags", "show", "DATA-1234-2"], ["diff", "--env", "dev"]):
        assert_one_line(project.run(*args), 0)
    back = project.json("rollback", "--env", "dev")
    assert (
        back["revision"]["revision"] == 5 and back["revision"]["tag"] == "DATA-1234-1"
    )  # after the newest valid (4 is taken): no jump to 100
    assert project.json("deploy", "DATA-1234-3", "--env", "dev")["revision"]["revision"] == 6
    promoted = project.json("promote", "DATA-1234-3", "--from", "dev", "--to", "prd", "--yes")
    assert promoted["revision"]["release"] == "v1.0.0"


def test_a_release_like_build_tag_is_refused_and_garbage_versions_ignored(imagectl, make_project, oci_registry, airflow3):
    root = make_project(host(oci_registry), environments=two_envs(host(oci_registry), airflow3.url, "img_versions"))
    project = Project(imagectl, root)
    refused = project.run("build", "--build-number", "1", "--tag", "v01.0.0")
    assert refused.exit_code == 2 and "release versions" in refused.stderr
    project.build(1)
    registry = OciRegistry(RegistryConfig("local", "oci", host(oci_registry), HttpSettings(insecure=True)))
    registry._write(project.repo, "v01.0.0", registry.get_manifest(project.repo, "DATA-1234-1"))  # pushed by something else
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    assert project.json("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes", "--dry-run")["release"] == "v1.0.0"
    assert project.json("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes")["revision"]["release"] == "v1.0.0"


def test_secret_canaries_never_appear_anywhere(imagectl, make_project, auth_registry, airflow3, tmp_path):
    """Distinctive secrets in every credential variable and in URLs from every source; none may appear in output,
    labels, records, the Airflow Variable or its description, or any file imagectl writes."""
    server, user, password = auth_registry
    canaries = {
        "registry": password,
        "airflow": stack.AIRFLOW_USERS["imagectl"][1],
        "remote": "CANARY-remote-token-8841",
        "bamboo": "CANARY-bamboo-token-5521",
        "webhook": "CANARY-webhook-9911",
        "config": "CANARY-config-7733",
    }
    root = make_project(host(server), environments=two_envs(host(server), airflow3.url, "img_canary"))
    config = root / "imagectl.toml"
    config.write_text(
        config.read_text().replace("[project]\n", f'[project]\nsource = "https://deploy:{canaries["config"]}@git.example.com/dbt.git"\n')
    )
    git(root, "remote", "add", "origin", f"https://x-token:{canaries['remote']}@git.example.com/dbt.git")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "DATA-1234 config")
    env = {
        "IMAGECTL_REGISTRY_USERNAME": user,
        "IMAGECTL_REGISTRY_PASSWORD": password,
        "bamboo_planRepository_repositoryUrl": f"https://bamboo:{canaries['bamboo']}@git.example.com/dbt.git",
        "IMAGECTL_WEBHOOK_OPS_URL": f"http://127.0.0.1:9/hook/{canaries['webhook']}",
    }
    project = Project(imagectl, root)
    outputs = []
    for n in (1, 2):
        commit_change(root, "models/orders.sql", f"select {n}\n", f"DATA-1234 {n}")
        for output in ("text", "json"):
            result = project.run("build", "--build-number", str(n) if output == "text" else str(n + 10), "-o", output, env=env)
            outputs.append(result)
    commands = [
        ["deploy", "DATA-1234-1", "--env", "dev"],
        ["deploy", "DATA-1234-2", "--env", "dev"],
        ["history", "--env", "dev"],
        ["status"],
        ["tags", "list"],
        ["tags", "show", "DATA-1234-1"],
        ["rollback", "--env", "dev", "--dry-run"],
        ["diff", "--env", "dev"],
        ["promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--dry-run"],
        ["deploy", "NOPE-1-1", "--env", "dev"],
        ["build", "--build-number", "1", "--dry-run"],
    ]
    for args in commands:
        for output in ("text", "json"):
            outputs.append(project.run(*args, "-o", output, env=env))
    wrong = {**env, "IMAGECTL_REGISTRY_PASSWORD": "CANARY-wrong-password-3310", "IMAGECTL_AIRFLOW_PASSWORD": "CANARY-wrong-airflow-4420"}
    for args in (["tags", "list"], ["deploy", "DATA-1234-1", "--env", "dev"], ["status"]):
        outputs.append(project.run(*args, env=wrong))
    canaries["wrong"], canaries["wrong-airflow"] = "CANARY-wrong-password-3310", "CANARY-wrong-airflow-4420"
    blob = "\n".join(r.stdout + r.stderr for r in outputs)
    registry = OciRegistry(RegistryConfig("local", "oci", host(server), HttpSettings(insecure=True)), None)
    registry.login = __import__("imagectl.credentials", fromlist=["Login"]).Login(user, password)
    for tag in registry.list_tags(project.repo):
        manifest = registry.get_manifest(project.repo, tag)
        blob += manifest.raw.decode(errors="replace")
        config_digest = (manifest.doc.get("config") or {}).get("digest")
        if config_digest:
            blob += registry.read_blob(project.repo, config_digest).decode(errors="replace")
    variable = get_variable(airflow3, "img_canary_dev") or {}
    blob += json.dumps(variable)
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.name != "imagectl.toml":  # the user's own file holds the config canary
            blob += path.read_text(errors="replace")
    blob += (
        "".join(p.read_text(errors="replace") for p in (tmp_path / "docker-config").rglob("*") if p.is_file())
        if (tmp_path / "docker-config").exists()
        else ""
    )
    leaked = {name: secret for name, secret in canaries.items() if secret in blob}
    assert not leaked, leaked
    assert "git.example.com/dbt.git" in blob  # the URLs themselves are kept, without their credentials


def test_servers_that_misbehave_give_one_line_and_the_right_code(imagectl, make_project, oci_registry, airflow3):
    airflow_proxy, registry_proxy = FaultProxy(airflow3.url), FaultProxy(oci_registry.url)
    try:
        root = make_project(host(oci_registry), environments=two_envs(host(oci_registry), airflow_proxy.url, "img_faults"))
        project = Project(imagectl, root)
        project.build(1)
        project.build(2)
        first = project.run("deploy", "DATA-1234-1", "--env", "dev")
        assert first.exit_code == 0, first.stderr
        config = root / "imagectl.toml"
        config.write_text(config.read_text().replace(host(oci_registry), registry_proxy.host) + "\n[timeouts]\nread = 2\ncommand = 60\n")

        airflow_proxy.faults.html = True  # a proxy's login page instead of Airflow
        for args in (["deploy", "DATA-1234-2", "--env", "dev"], ["trigger", "dbt_build", "--env", "dev"]):
            assert_one_line(project.run(*args), 9)
        assert_one_line(project.run("status", "--env", "dev"), 10)
        airflow_proxy.faults = type(airflow_proxy.faults)()

        registry_proxy.faults.html = True
        for args in (["deploy", "DATA-1234-2", "--env", "dev"], ["tags", "list"], ["history", "--env", "dev"]):
            assert_one_line(project.run(*args), 6)
        registry_proxy.faults = type(registry_proxy.faults)(status=500)
        assert_one_line(project.run("history", "--env", "dev"), 6)
        registry_proxy.faults = type(registry_proxy.faults)(drop_mid_body=True, only="/manifests/")
        assert_one_line(project.run("history", "--env", "dev"))
        registry_proxy.faults = type(registry_proxy.faults)()

        # A hung Airflow: the read time-out (2 s) bounds the wait, and the message says what is not known.
        airflow_proxy.faults.hang, airflow_proxy.faults.methods = True, ("PATCH", "POST")
        airflow_proxy.faults.only = "/variables"
        started = time.monotonic()
        hung = project.run("deploy", "DATA-1234-2", "--env", "dev")
        assert time.monotonic() - started < 30
        assert_one_line(hung, 9)
        assert "no answer within 2 s" in hung.stderr and "may or may not have made the change" in hung.stderr
        assert "revision 2 of dev is recorded" in hung.stderr
        airflow_proxy.faults = type(airflow_proxy.faults)()

        # The registry host pointed at Airflow's API: one line, exit 6.
        config.write_text(config.read_text().replace(registry_proxy.host, airflow3.url.removeprefix("http://")))
        assert_one_line(project.run("history", "--env", "dev"), 6)
    finally:
        airflow_proxy.close()
        registry_proxy.close()


def _pty_run(args: list[str], answer: bytes, env: dict[str, str]) -> tuple[int, str]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: imagectl on a real terminal
        os.execvpe(sys.executable, [sys.executable, "-m", "imagectl", *args], env)
    output = b""
    answered = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"[y/N]" in output:
                os.write(fd, answer + b"\n")
                answered = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_confirmation_on_a_real_terminal(imagectl, make_project, oci_registry, airflow3):
    root = make_project(host(oci_registry), environments=two_envs(host(oci_registry), airflow3.url, "img_pty"))
    project = Project(imagectl, root)
    project.build(1)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    env = {**os.environ, **CREDS}
    args = ["promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--config", str(root / "imagectl.toml")]
    code, output = _pty_run(args, b"n", env)
    assert code == 13 and "promote prd: nothing → DATA-1234-1 (v1.0.0)? [y/N]" in output and "not confirmed: nothing was changed" in output
    assert get_variable(airflow3, "img_pty_prd") is None
    code, output = _pty_run(args, b"y", env)
    assert code == 0 and "prd: revision 1 recorded — promote DATA-1234-1 (v1.0.0)" in output
    assert get_variable(airflow3, "img_pty_prd")["value"].endswith(project.json("history", "--env", "prd")["revisions"][0]["digest"])
    # A rollback at the prompt shows what it would undo before asking.
    project.build(2)
    project.json("deploy", "DATA-1234-2", "--env", "dev")
    assert _pty_run([*args[:1], "DATA-1234-2", *args[2:]], b"y", env)[0] == 0
    code, output = _pty_run(["rollback", "--env", "prd", "--reason", "pty check", "--config", str(root / "imagectl.toml")], b"n", env)
    assert code == 13 and "rollback prd: DATA-1234-2 → DATA-1234-1" in output, output
    lines = output.splitlines()
    assert any(line.startswith("from ") and "DATA-1234-2" in line for line in lines), output
    assert any(line.startswith("to ") and "DATA-1234-1" in line for line in lines), output


def test_path_injection_is_refused_before_any_request(imagectl, make_project, oci_registry, airflow3):
    root = make_project(host(oci_registry), environments=two_envs(host(oci_registry), airflow3.url, "img_paths"))
    project = Project(imagectl, root)
    result = project.run("trigger", "../variables/img_paths_dev", "--env", "dev")
    assert result.exit_code == 2 and "is not a DAG id" in result.stderr
    config = root / "imagectl.toml"
    config.write_text(config.read_text().replace('variable = "img_paths_dev"', 'variable = "../dags/x"'))
    bad = project.run("history", "--env", "dev")
    assert bad.exit_code == 3 and "'environments.dev.variable' must be a Variable key" in bad.stderr
