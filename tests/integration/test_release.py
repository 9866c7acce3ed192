"""deploy / promote / rollback / history / status through the CLI, against a real Airflow 3 api-server,
two real OCI registries (dev and prd, so promotion crosses registries), moto's ECR and a real Airflow 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests import stack
from tests.integration.airflow_helpers import StopOnWrite, get_variable, set_variable
from tests.integration.project import CREDS, Project, host

pytestmark = pytest.mark.usefixtures("python_stand_in")


def environments(dev_url: str, prd_url: str, var: str, dev_registry: str = "local", extra_env: str = "") -> str:
    return f"""
[environments.dev]
registry = "{dev_registry}"
airflow_url = "{dev_url}"
variable = "{var}_dev"

[environments.prd]
registry = "prd"
airflow_url = "{prd_url}"
variable = "{var}_prd"
release = true
{extra_env}"""


@pytest.fixture
def project(imagectl, make_project, oci_registry, prd_registry, airflow3, request):
    var = "img_" + request.node.name[5:30].replace("-", "_")
    extra = f'[registries.prd]\nkind = "oci"\nhost = "{host(prd_registry)}"\ninsecure = true\n'
    root = make_project(host(oci_registry), environments=environments(airflow3.url, airflow3.url, var), extra=extra)
    return Project(imagectl, root, var)


def registry_tags(server, repository: str) -> list[str]:
    response = requests.get(f"{server.url}/v2/{repository}/tags/list", timeout=5)
    return [] if response.status_code == 404 else sorted(response.json().get("tags") or [])


def repo_of(project: Project) -> str:
    return next(line.split('"')[1] for line in Path(project.config).read_text().splitlines() if "dbt-build" in line)


def test_deploy_promote_rollback_history_round_trip(project, airflow3, oci_registry, prd_registry):
    one, two = project.build(1), project.build(2)
    assert project.json("deploy", "DATA-1234-1", "--env", "dev", "--reason", "first")["revision"]["revision"] == 1
    dev = project.json("deploy", "DATA-1234-2", "--env", "dev", "--actor", "bamboo")
    assert dev["revision"]["revision"] == 2 and dev["revision"]["replaces"] == 1
    pinned_two = f"{host(oci_registry)}/{repo_of(project)}:DATA-1234-2@{two['digest']}"
    assert dev["variable_value"] == pinned_two
    variable = get_variable(airflow3, f"{project.var}_dev")
    assert variable["value"] == pinned_two
    assert variable["description"].startswith("imagectl revision 2: deploy DATA-1234-2 by bamboo at ")

    # Re-deploying what runs already records nothing.
    again = project.run("deploy", "DATA-1234-2", "--env", "dev")
    assert again.exit_code == 0 and again.stdout.startswith("dev already runs DATA-1234-2 (revision 2); nothing recorded")

    # Promote both to prd (another registry): copied with the digest unchanged, released as v1.0.0 and v1.0.1.
    first = project.json("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes", "--reason", "weekly release")
    assert first["revision"]["release"] == "v1.0.0" and first["copied"]["blobs_copied"] >= 1
    second = project.json("promote", "DATA-1234-2", "--from", "dev", "--to", "prd", "--yes", "--reason", "weekly release")
    assert second["revision"]["release"] == "v1.0.1"
    assert second["copied"]["blobs_present"] >= 1  # the base layers were there already: only new blobs moved
    prd_pinned_two = f"{host(prd_registry)}/{repo_of(project)}:DATA-1234-2@{two['digest']}"
    assert get_variable(airflow3, f"{project.var}_prd")["value"] == prd_pinned_two
    assert {"DATA-1234-1", "DATA-1234-2", "v1.0.0", "v1.0.1"} <= set(registry_tags(prd_registry, repo_of(project)))

    # On call: roll prd back to the previous image.
    rolled = project.json("rollback", "--env", "prd", "--yes", "--reason", "orders model broke revenue")
    assert rolled["revision"]["action"] == "rollback" and rolled["revision"]["tag"] == "DATA-1234-1"
    assert rolled["revision"]["release"] == "v1.0.0"  # the release it had
    assert get_variable(airflow3, f"{project.var}_prd")["value"] == f"{host(prd_registry)}/{repo_of(project)}:DATA-1234-1@{one['digest']}"

    history = project.json("history", "--env", "prd")["revisions"]
    assert [(h["revision"], h["action"], h["tag"], h["release"], h["current"]) for h in history] == [
        (3, "rollback", "DATA-1234-1", "v1.0.0", True),
        (2, "promote", "DATA-1234-2", "v1.0.1", False),
        (1, "promote", "DATA-1234-1", "v1.0.0", False),
    ]
    for entry in history:
        assert {"revision", "time", "action", "tag", "digest", "release", "actor", "reason", "current"} <= set(entry)
        assert entry["time"].endswith("Z") and entry["digest"].startswith("sha256:")
    assert history[0]["reason"] == "orders model broke revenue" and history[0]["replaces"] == 2
    assert history[1]["from_environment"] == "dev"

    text = project.run("history", "--env", "prd").stdout.splitlines()
    assert text[0].split() == ["REV", "TIME", "ACTION", "TAG", "RELEASE", "VERIFIED", "DIGEST", "ACTOR", "REASON"]
    assert text[1].startswith("*  3") and "rollback  DATA-1234-1  v1.0.0" in text[1]

    status = project.run("status")
    assert status.exit_code == 0, status.stdout
    assert "dev: ok" in status.stdout and "prd: ok" in status.stdout
    assert "latest    revision 3: DATA-1234-1 (v1.0.0)" in status.stdout
    # Every image an environment ran carries a tag the lifecycle policy keeps.
    deployed = {f"deployed-prd-{d.split(':')[1][:12]}" for d in (one["digest"], two["digest"])}
    assert deployed <= set(registry_tags(prd_registry, repo_of(project)))


def test_rollback_to_a_revision_and_to_a_tag(project, airflow3):
    project.build(1), project.build(2), project.build(3)
    for n in (1, 2, 3):
        project.json("deploy", f"DATA-1234-{n}", "--env", "dev")
    to_rev = project.json("rollback", "--env", "dev", "--to", "1")
    assert (to_rev["revision"]["revision"], to_rev["revision"]["tag"]) == (4, "DATA-1234-1")
    to_tag = project.json("rollback", "--env", "dev", "--to", "DATA-1234-2")
    assert (to_tag["revision"]["revision"], to_tag["revision"]["tag"]) == (5, "DATA-1234-2")
    assert get_variable(airflow3, f"{project.var}_dev")["value"].split(":")[-2].endswith("DATA-1234-2@sha256")
    missing = project.run("rollback", "--env", "dev", "--to", "99")
    assert missing.exit_code == 4 and "dev has no revision 99" in missing.stderr


def test_rollback_refused_when_the_target_image_was_deleted(project, airflow3, oci_registry):
    one = project.build(1)
    project.build(2)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    project.json("deploy", "DATA-1234-2", "--env", "dev")
    before_var = get_variable(airflow3, f"{project.var}_dev")["value"]
    requests.delete(f"{oci_registry.url}/v2/{repo_of(project)}/manifests/{one['digest']}", timeout=5).raise_for_status()
    result = project.run("rollback", "--env", "dev")
    assert result.exit_code == 4
    assert "no longer exists in registry 'local'; nothing was changed" in result.stderr
    assert [h["revision"] for h in project.json("history", "--env", "dev")["revisions"]] == [2, 1]
    assert get_variable(airflow3, f"{project.var}_dev")["value"] == before_var


def test_promotion_refused_for_an_image_dev_never_ran(project):
    project.build(1)
    refused = project.run("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes")
    assert refused.exit_code == 5
    assert "DATA-1234-1 has never run in dev (its newest 200 revisions), so it is not promoted" in refused.stderr
    no_reason = project.run("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes", "--force")
    assert no_reason.exit_code == 2 and "--force needs --reason" in no_reason.stderr
    assert project.json("history", "--env", "prd")["revisions"] == []
    forced = project.json("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes", "--force", "--reason", "hotfix")
    assert forced["revision"]["revision"] == 1


def test_promote_by_jira_key_and_by_git_sha(project):
    project.build(1)
    commit_two = None
    two = project.build(2)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    project.json("deploy", "DATA-1234-2", "--env", "dev")
    by_jira = project.json("promote", "--jira", "DATA-1234", "--from", "dev", "--to", "prd", "--yes")
    assert by_jira["revision"]["tag"] == "DATA-1234-2"  # the newest build of the ticket that dev ran
    shown = project.json("tags", "show", "DATA-1234-1", "--image", "build")
    commit_one = shown["images"][0]["git_sha"]
    by_sha = project.json("promote", "--git-sha", commit_one[:10], "--from", "dev", "--to", "prd", "--yes")
    assert by_sha["revision"]["tag"] == "DATA-1234-1" and by_sha["revision"]["git_sha"] == commit_one
    assert commit_two is None and two["digest"]


def test_confirmation_refused_without_a_terminal(project):
    project.build(1)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    result = project.run("promote", "DATA-1234-1", "--from", "dev", "--to", "prd")
    assert result.exit_code == 2
    assert result.stderr == "error: prd requires confirmation and there is no terminal to ask on — pass --yes\n"
    assert project.json("history", "--env", "prd")["revisions"] == []


def test_dry_run_writes_nothing(project, airflow3, oci_registry, prd_registry):
    project.build(1)
    project.build(2)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    dev_tags, prd_tags = registry_tags(oci_registry, repo_of(project)), registry_tags(prd_registry, repo_of(project))
    dev_var = get_variable(airflow3, f"{project.var}_dev")

    plan = project.json("deploy", "DATA-1234-2", "--env", "dev", "--dry-run")
    assert (plan["state"], plan["tag"], plan["current_revision"]["revision"]) == ("new", "DATA-1234-2", 1)
    text = project.run("deploy", "DATA-1234-2", "--env", "dev", "--dry-run").stdout.splitlines()
    assert text[0] == "Plan: deploy DATA-1234-2 to dev (revision 2: DATA-1234-1 → DATA-1234-2)"
    assert text[-1] == "Nothing was changed (--dry-run)."
    promote = project.json("promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--dry-run")
    assert (promote["release"], promote["copy_from_registry"], promote["confirm_required"]) == ("v1.0.0", "local", True)
    project.json("deploy", "DATA-1234-2", "--env", "dev")
    dev_tags, dev_var = registry_tags(oci_registry, repo_of(project)), get_variable(airflow3, f"{project.var}_dev")
    rollback = project.json("rollback", "--env", "dev", "--dry-run")
    assert rollback["tag"] == "DATA-1234-1"

    assert registry_tags(oci_registry, repo_of(project)) == dev_tags
    assert registry_tags(prd_registry, repo_of(project)) == prd_tags
    assert get_variable(airflow3, f"{project.var}_dev") == dev_var
    assert get_variable(airflow3, f"{project.var}_prd") is None


def test_airflow_stopped_midway_then_status_shows_drift_and_rerun_converges(
    imagectl, make_project, oci_registry, prd_registry, stack_dir, tmp_path
):
    airflow = stack.start_airflow(tmp_path, 3)
    proxy = StopOnWrite(airflow.url, airflow.stop)
    try:
        var = "img_midway"
        extra = f'[registries.prd]\nkind = "oci"\nhost = "{host(prd_registry)}"\ninsecure = true\n'
        root = make_project(host(oci_registry), environments=environments(proxy.url, proxy.url, var), extra=extra)
        project = Project(imagectl, root, var)
        project.build(1)
        # The proxy stops the real Airflow at the moment imagectl writes the Variable.
        failed = project.run("deploy", "DATA-1234-1", "--env", "dev")
        assert failed.exit_code == 9
        line = failed.stderr.strip()
        # In front of Airflow (as an ingress would be), the proxy answers 502 once Airflow is down; imagectl retried.
        assert line.startswith(f"error: revision 1 of dev is recorded, but: Airflow answered HTTP 502 to write Variable {var}_dev")
        assert "re-run the same command to finish it" in line and "\n" not in line
        assert CREDS["IMAGECTL_AIRFLOW_PASSWORD"] not in failed.stderr

        # Airflow is down: status says it cannot read the Variable (non-zero), the registry still has the record.
        down = project.run("status", "--env", "dev")
        assert down.exit_code == 10 and "dev: UNKNOWN" in down.stdout and "is not answering (HTTP 502)" in down.stdout

        airflow = stack.start_airflow(tmp_path, 3, port=int(airflow.url.rsplit(":", 1)[1]), home=airflow.home)
        drift = project.run("status", "--env", "dev", "-o", "json")
        assert drift.exit_code == 10
        state = json.loads(drift.stdout)["environments"][0]
        assert state["agree"] is False and state["latest_revision"]["revision"] == 1 and state["variable_value"] is None
        assert state["hint"].endswith("finish it with: imagectl deploy DATA-1234-1 --env dev")

        rerun = project.json("deploy", "DATA-1234-1", "--env", "dev")
        assert rerun["state"] == "complete" and rerun["revision"]["revision"] == 1
        assert [h["revision"] for h in project.json("history", "--env", "dev")["revisions"]] == [1]  # no duplicate revision
        assert project.run("status", "--env", "dev").exit_code == 0
    finally:
        proxy.close()
        airflow.stop()


def test_status_reports_a_variable_changed_by_hand(project, airflow3):
    project.build(1)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    set_variable(airflow3, f"{project.var}_dev", "somewhere/else:latest")
    result = project.run("status", "--env", "dev")
    assert result.exit_code == 10
    assert "dev: DRIFT" in result.stdout
    assert (
        "the Variable holds an image imagectl did not record, not revision 1: finish it with: imagectl deploy DATA-1234-1 --env dev"
        in result.stdout
    )


def test_airflow_errors_are_explained_without_secrets(project, airflow3):
    project.build(1)
    wrong = project.run("deploy", "DATA-1234-1", "--env", "dev", env={"IMAGECTL_AIRFLOW_PASSWORD": "not-the-password"})
    assert wrong.exit_code == 9 and "refused to log in user 'imagectl'" in wrong.stderr and "not-the-password" not in wrong.stderr
    viewer = {"IMAGECTL_AIRFLOW_DEV_USERNAME": "viewer", "IMAGECTL_AIRFLOW_DEV_PASSWORD": stack.AIRFLOW_USERS["viewer"][1]}
    denied = project.run("deploy", "DATA-1234-1", "--env", "dev", env=viewer)
    assert denied.exit_code == 9
    assert (
        denied.stderr
        == "error: Airflow user 'viewer' may not read Variable " + f"{project.var}_dev — the Airflow user needs role op (or admin)\n"
    )
    assert project.json("history", "--env", "dev")["revisions"] == []  # nothing recorded when Airflow refuses at plan time


def test_airflow_2_api(imagectl, make_project, oci_registry, airflow2):
    var = "img_airflow2"
    root = make_project(
        host(oci_registry),
        environments=f"""
[environments.dev]
registry = "local"
airflow_url = "{airflow2.url}"
variable = "{var}"
""",
    )
    project = Project(imagectl, root, var)
    project.build(1)
    project.build(2)
    project.json("deploy", "DATA-1234-1", "--env", "dev")
    result = project.json("deploy", "DATA-1234-2", "--env", "dev")  # update of an existing Variable through /api/v1
    assert get_variable(airflow2, var)["value"] == result["variable_value"]
    assert get_variable(airflow2, var)["description"].startswith("imagectl revision 2: deploy DATA-1234-2")
    project.json("rollback", "--env", "dev")
    assert project.run("status").exit_code == 0


def _token(airflow, **claims) -> str:
    """A token Airflow 3 issues to the admin user; with ``claims``, the same token re-signed with the server's own
    secret after changing them (how an expired token is made here: Airflow itself then answers 401 "Token Expired")."""
    import base64
    import hashlib
    import hmac

    token = requests.post(
        f"{airflow.url}/auth/token", json={"username": "imagectl", "password": stack.AIRFLOW_USERS["imagectl"][1]}, timeout=10
    ).json()["access_token"]
    if not claims:
        return token
    header, payload, _ = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(claims)
    encoded = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    secret = next(
        line.split("=", 1)[1].strip() for line in (airflow.home / "airflow.cfg").read_text().splitlines() if line.startswith("jwt_secret =")
    )
    signature = hmac.new(secret.encode(), f"{header}.{encoded}".encode(), hashlib.sha512).digest()
    return f"{header}.{encoded}." + base64.urlsafe_b64encode(signature).decode().rstrip("=")


NO_PASSWORD = {"IMAGECTL_AIRFLOW_USERNAME": "", "IMAGECTL_AIRFLOW_PASSWORD": ""}


def test_sso_logins_and_their_refusals(project, airflow3):
    """Deployments behind SSO issue API tokens: IMAGECTL_AIRFLOW_<ENV>_TOKEN, never printed. (The test's name makes the
    Variable's key: one with "token" or "bearer" in it would be masked by Airflow, which the next test shows.)"""
    project.build(1)
    token = _token(airflow3)
    done = project.run("deploy", "DATA-1234-1", "--env", "dev", "-o", "json", env={**NO_PASSWORD, "IMAGECTL_AIRFLOW_DEV_TOKEN": token})
    assert done.exit_code == 0, done.stderr
    assert get_variable(airflow3, f"{project.var}_dev")["value"] == json.loads(done.stdout)["variable_value"]
    bogus = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ4In0.not-a-signature-at-all"
    refused = project.run("status", "--env", "dev", env={**NO_PASSWORD, "IMAGECTL_AIRFLOW_TOKEN": bogus})
    assert refused.exit_code == 10 and "refused the token from IMAGECTL_AIRFLOW_TOKEN" in refused.stdout
    assert "get a new API token for this Airflow and set IMAGECTL_AIRFLOW_TOKEN" in refused.stdout
    expired = _token(airflow3, exp=1_000_000_000, iat=999_990_000, nbf=999_990_000)
    late = project.run("deploy", "DATA-1234-1", "--env", "dev", env={**NO_PASSWORD, "IMAGECTL_AIRFLOW_DEV_TOKEN": expired})
    assert late.exit_code == 9 and late.stderr.count("\n") == 1
    assert (
        "refused the token from IMAGECTL_AIRFLOW_DEV_TOKEN for read Variable" in late.stderr and "(HTTP 401): it has expired" in late.stderr
    )
    for result in (done, refused, late):
        assert token not in result.output and bogus not in result.output and expired not in result.output


def test_a_variable_key_airflow_treats_as_a_secret_is_explained(imagectl, make_project, oci_registry, airflow3):
    root = make_project(host(oci_registry), environments=f'[environments.dev]\nregistry = "local"\nairflow_url = "{airflow3.url}"\n')
    (root / "imagectl.toml").write_text(
        (root / "imagectl.toml").read_text().replace("[environments.dev]", '[environments.dev]\nvariable = "dbt_image_token"')
    )
    project = Project(imagectl, root)
    project.build(1)
    set_variable(airflow3, "dbt_image_token", "anything")
    masked = project.run("deploy", "DATA-1234-1")
    assert masked.exit_code == 9 and masked.stderr.count("\n") == 1
    assert "shows Variable dbt_image_token as '***': its key contains a word Airflow treats as sensitive" in masked.stderr


def airflow2_project(imagectl, make_project, oci_registry, url: str, var: str) -> Project:
    environments = f'[environments.dev]\nregistry = "local"\nairflow_url = "{url}"\nvariable = "{var}"\n'
    project = Project(imagectl, make_project(host(oci_registry), environments=environments), var)
    project.build(1)
    return project


def test_airflow_2_refusals_explain_auth_backends(imagectl, make_project, oci_registry, airflow2):
    """Airflow 2.11 answers 403 alike to a wrong password, a missing auth backend and a missing role: all three are named."""
    project = airflow2_project(imagectl, make_project, oci_registry, airflow2.url, "img_airflow2_refused")
    wrong = project.run("deploy", "DATA-1234-1", env={"IMAGECTL_AIRFLOW_PASSWORD": "not-the-password"})
    assert wrong.exit_code == 9 and wrong.stderr.count("\n") == 1
    assert "Airflow 2 at " in wrong.stderr and "refused user 'imagectl' for read Variable img_airflow2_refused (HTTP 403)" in wrong.stderr
    assert "[api] auth_backends including airflow.api.auth.backend.basic_auth (its default is session only" in wrong.stderr
    assert "check the password, and that the user has role op (or admin)" in wrong.stderr
    token = project.run("deploy", "DATA-1234-1", env={**NO_PASSWORD, "IMAGECTL_AIRFLOW_TOKEN": "a-token-airflow-2-cannot-read"})
    assert token.exit_code == 9 and "refused the token from IMAGECTL_AIRFLOW_TOKEN" in token.stderr
    assert "Airflow 2 reads a bearer token only with an [api] auth_backends entry that accepts it" in token.stderr
    assert "not-the-password" not in wrong.output and "a-token-airflow-2-cannot-read" not in token.output


def test_a_stock_airflow_2_refuses_every_password_and_says_why(imagectl, make_project, oci_registry, airflow2, tmp_path):
    """[api] auth_backends at its default (session only), the right password: refused, and the line says why."""
    import shutil

    home = tmp_path / "stock-airflow2"
    home.mkdir()
    shutil.copy(airflow2.home / "airflow.db", home / "airflow.db")  # the same users, a webserver of its own
    stock = stack.start_airflow(tmp_path, 2, home=home, extra_env={"AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.session"})
    try:
        project = airflow2_project(imagectl, make_project, oci_registry, stock.url, "img_airflow2_stock")
        refused = project.run("deploy", "DATA-1234-1")
        assert refused.exit_code == 9 and refused.stderr.count("\n") == 1
        assert "auth_backends including airflow.api.auth.backend.basic_auth (its default is session only" in refused.stderr
    finally:
        stock.stop()
