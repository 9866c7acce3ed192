"""imagectl build / tags against a real Docker engine and a real local OCI registry."""

from __future__ import annotations

import json

import docker
import pytest
import requests

from tests.conftest import git
from tests.integration.conftest import commit_change

pytestmark = pytest.mark.usefixtures("python_stand_in")


def host(server) -> str:
    return server.url.removeprefix("http://")


def registry_tags(server, repository: str) -> list[str]:
    response = requests.get(f"{server.url}/v2/{repository}/tags/list", timeout=5)
    return [] if response.status_code == 404 else sorted(response.json().get("tags") or [])


def build(imagectl, root, *args):
    return imagectl("build", "--config", str(root / "imagectl.toml"), *args)


def prefix(root) -> str:
    return next(line.split('"')[1] for line in (root / "imagectl.toml").read_text().splitlines() if "dbt-base" in line).rsplit("/", 1)[0]


def test_second_build_reuses_base_and_rebuilds_build(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    first = build(imagectl, root, "--build-number", "57", "-o", "json")
    assert first.exit_code == 0, first.stderr
    images = {i["image"]: i for i in json.loads(first.stdout)["images"]}
    assert {k: (v["tag"], v["reused"], v["pushed"]) for k, v in images.items()} == {
        "base": ("DATA-1234-57", False, True),
        "build": ("DATA-1234-57", False, True),
    }

    commit_change(root, "models/orders.sql", "select 2 as id\n", "DATA-1234 change orders")
    second = build(imagectl, root, "--build-number", "58")
    assert second.exit_code == 0, second.stderr
    assert "base: reusing" in second.stderr and "inputs unchanged" in second.stderr
    assert "build: building" in second.stderr and "base: building" not in second.stderr

    again = json.loads(imagectl("tags", "list", "--config", str(root / "imagectl.toml"), "-o", "json").stdout)["tags"]
    by_key = {(r["image"], r["tag"]): r for r in again}
    assert by_key[("build", "DATA-1234-58")]["digest"] != images["build"]["digest"]
    assert [r["tag"] for r in again if r["image"] == "build"] == ["DATA-1234-58", "DATA-1234-57"]  # newest first
    assert set(registry_tags(oci_registry, f"{prefix(root)}/dbt-build")) >= {"DATA-1234-57", "DATA-1234-58"}
    assert "latest" not in registry_tags(oci_registry, f"{prefix(root)}/dbt-build")
    # The reused base collects no tag per build (ECR allows 1,000 tags per image): it keeps its own build's tag
    # and its context tag; which base DATA-1234-58 used is in that build's record.
    base_tags = registry_tags(oci_registry, f"{prefix(root)}/dbt-base")
    assert "DATA-1234-58" not in base_tags and "DATA-1234-57" in base_tags
    used = json.loads(
        imagectl("tags", "show", "DATA-1234-58", "--image", "base", "--config", str(root / "imagectl.toml"), "-o", "json").stdout
    )
    assert used["images"][0]["digest"] == images["base"]["digest"] and used["images"][0]["reused_from"] == "DATA-1234-57"
    bases = json.loads(
        imagectl("tags", "list", "--image", "base", "--jira", "DATA-1234", "--config", str(root / "imagectl.toml"), "-o", "json").stdout
    )["tags"]
    assert {(r["tag"], r["digest"]) for r in bases} == {
        ("DATA-1234-58", images["base"]["digest"]),
        ("DATA-1234-57", images["base"]["digest"]),
    }

    # The build image is FROM the base by digest, and says so in its labels.
    labels = docker.from_env().images.get(by_key[("build", "DATA-1234-58")]["reference"].split("@")[0]).labels
    assert labels["io.imagectl.base-digest"] == images["base"]["digest"]
    assert labels["io.imagectl.base-ref"].endswith("@" + images["base"]["digest"])


def test_labels_read_back(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    commit = git(root, "rev-parse", "HEAD")
    assert build(imagectl, root, "--build-number", "3").exit_code == 0
    shown = imagectl("tags", "show", "DATA-1234-3", "--config", str(root / "imagectl.toml"), "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    by_image = {i["image"]: i for i in json.loads(shown.stdout)["images"]}
    base, image = by_image["base"], by_image["build"]
    for info in (base, image):
        assert info["git_sha"] == commit
        assert info["jira"] == "DATA-1234" and info["build_number"] == 3
        assert info["branch"] == "feature/DATA-1234-add-orders"
        labels = info["labels"]
        assert labels["org.opencontainers.image.revision"] == commit
        assert labels["org.opencontainers.image.version"] == "DATA-1234-3"
        assert labels["org.opencontainers.image.created"].endswith("Z")
        assert labels["org.opencontainers.image.title"] == f"demo-{info['image']}"
    assert image["base_digest"] == base["digest"]
    assert base["context_hash"] and any(t.startswith("ctx-") for t in base["other_tags"])
    # The labels are on the image itself too, not only in imagectl's records (plus what Docker inherits from the base).
    real = docker.from_env().images.get(image["reference"].split("@")[0]).labels
    assert image["labels"].items() <= real.items()
    text = imagectl("tags", "show", "DATA-1234-3", "--config", str(root / "imagectl.toml"), "--image", "build")
    assert f"  commit        {commit}" in text.stdout
    assert f"  base digest   {base['digest']}" in text.stdout


def test_latest_refused_with_nothing_pushed(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    result = build(imagectl, root, "--build-number", "1", "--tag", "latest")
    assert result.exit_code == 2
    assert "the tag 'latest' is refused" in result.output
    assert registry_tags(oci_registry, f"{prefix(root)}/dbt-base") == []
    assert registry_tags(oci_registry, f"{prefix(root)}/dbt-build") == []


def test_missing_jira_key_and_build_number_refused(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry), branch="cleanup")
    no_key = build(imagectl, root, "--build-number", "1")
    assert no_key.exit_code == 2
    assert no_key.stderr.startswith("error: no Jira key of project DATA/OPS found")
    assert "pass --jira DATA-1234" in no_key.stderr and no_key.stderr.count("\n") == 1
    no_number = build(imagectl, root, "--jira", "DATA-1")
    assert no_number.exit_code == 2
    assert no_number.stderr == (
        "error: no build number given — pass --build-number N (GitLab CI sets CI_PIPELINE_IID, GitHub Actions sets GITHUB_RUN_NUMBER, "
        "Bamboo sets bamboo_buildNumber)\n"
    )
    assert registry_tags(oci_registry, f"{prefix(root)}/dbt-base") == []


def test_bamboo_variables_drive_the_build(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry), branch="detached-work")
    env = {"bamboo_buildNumber": "91", "bamboo_planRepository_branchName": "feature/OPS-77-speedup"}
    result = build(imagectl, root, "-o", "json", "--dry-run")
    assert result.exit_code == 2  # no key in the git branch, no number
    result = imagectl("build", "--config", str(root / "imagectl.toml"), "--dry-run", "-o", "json", env=env)
    plan = json.loads(result.stdout)
    assert plan["tag"] == "OPS-77-91" and plan["jira_source"].startswith("branch feature/OPS-77-speedup")


def test_existing_tag_with_other_content_refused(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    assert build(imagectl, root, "--build-number", "5").exit_code == 0
    before = registry_tags(oci_registry, f"{prefix(root)}/dbt-build")

    # Re-running the same build (same commit, same number, e.g. a Bamboo re-run) converges without rebuilding.
    rerun = build(imagectl, root, "--build-number", "5", "-o", "json")
    assert rerun.exit_code == 0, rerun.stderr
    assert all(i["reused"] and not i["pushed"] for i in json.loads(rerun.stdout)["images"])

    commit_change(root, "models/orders.sql", "select 3 as id\n")
    clash = build(imagectl, root, "--build-number", "5")
    assert clash.exit_code == 5
    assert "dbt-build:DATA-1234-5 already exists" in clash.stderr and "tags are never moved" in clash.stderr
    assert "building" not in clash.stderr  # refused before anything was built
    assert registry_tags(oci_registry, f"{prefix(root)}/dbt-build") == before


def test_dry_run_prints_plan_and_pushes_nothing(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    text = build(imagectl, root, "--build-number", "8", "--dry-run")
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Plan for DATA-1234-8 (Jira DATA-1234 from branch feature/DATA-1234-add-orders (git); build 8; commit ")
    assert lines[1] == f"Registry local ({host(oci_registry)}), environment dev"
    assert lines[3].split() == [
        "base",
        "build",
        f"{host(oci_registry)}/{prefix(root)}/dbt-base:DATA-1234-8",
        "no",
        "image",
        "with",
        "context",
        lines[3].split()[7],
        "in",
        "local",
    ]
    assert lines[-1] == "Nothing was built or pushed (--dry-run)."
    plan = json.loads(build(imagectl, root, "--build-number", "8", "--dry-run", "-o", "json").stdout)
    assert [(i["image"], i["action"]) for i in plan["images"]] == [("base", "build"), ("build", "build")]
    assert registry_tags(oci_registry, f"{prefix(root)}/dbt-base") == []

    # Once the base exists, the plan says it will be reused.
    assert build(imagectl, root, "--build-number", "8").exit_code == 0
    plan = json.loads(build(imagectl, root, "--build-number", "9", "--dry-run", "-o", "json").stdout)
    assert [(i["image"], i["action"]) for i in plan["images"]] == [("base", "reuse"), ("build", "build")]
    assert "DATA-1234-9" not in registry_tags(oci_registry, f"{prefix(root)}/dbt-base")


def test_no_push_builds_locally_only(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    result = build(imagectl, root, "--build-number", "11", "--no-push", "-o", "json")
    assert result.exit_code == 0, result.stderr
    images = json.loads(result.stdout)["images"]
    assert [(i["image"], i["pushed"], i["digest"]) for i in images] == [("base", False, None), ("build", False, None)]
    assert registry_tags(oci_registry, f"{prefix(root)}/dbt-base") == []
    labels = docker.from_env().images.get(images[1]["reference"]).labels
    assert labels["org.opencontainers.image.version"] == "DATA-1234-11"
    assert labels["io.imagectl.base-ref"] == images[0]["reference"]


def test_failed_build_shows_failing_step_and_exits_non_zero(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    (root / "images/build/Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo dbt-deps-went-wrong && exit 3\n")
    commit_change(root, "models/orders.sql", "select 4\n")
    result = build(imagectl, root, "--build-number", "12")
    assert result.exit_code == 7
    assert "dbt-deps-went-wrong" in result.stderr
    assert "error: docker build of" in result.stderr and "returned a non-zero code: 3" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines().count("  dbt-deps-went-wrong") == 1  # streamed once, not repeated in the error
    assert registry_tags(oci_registry, f"{prefix(root)}/dbt-build") == []
    quiet = build(imagectl, root, "--build-number", "12", "--quiet")
    assert quiet.exit_code == 7
    lines = quiet.stderr.splitlines()
    assert "  dbt-deps-went-wrong" in lines[:-1]  # the step's output, above the error line
    assert lines[-1].startswith("error: docker build of") and lines[-1].endswith("fix the failing step shown above")


def test_build_only_the_build_image_uses_existing_base(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    assert build(imagectl, root, "base", "--build-number", "20").exit_code == 0
    assert registry_tags(oci_registry, f"{prefix(root)}/dbt-build") == []
    result = build(imagectl, root, "build", "--build-number", "21", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert [i["image"] for i in json.loads(result.stdout)["images"]] == ["build"]
    info = json.loads(imagectl("tags", "show", "DATA-1234-21", "--config", str(root / "imagectl.toml"), "-o", "json").stdout)
    base = json.loads(imagectl("tags", "show", "DATA-1234-20", "--config", str(root / "imagectl.toml"), "-o", "json").stdout)
    assert info["images"][0]["base_digest"] == base["images"][0]["digest"] and info["images"][0]["base_tag"] == "DATA-1234-20"


def test_tags_list_filters_by_jira_with_stable_json(imagectl, make_project, oci_registry):
    root = make_project(host(oci_registry))
    assert build(imagectl, root, "--build-number", "1").exit_code == 0
    assert build(imagectl, root, "--build-number", "2", "--jira", "OPS-9").exit_code == 0
    rows = json.loads(imagectl("tags", "list", "--config", str(root / "imagectl.toml"), "--jira", "OPS-9", "-o", "json").stdout)["tags"]
    assert {(r["image"], r["tag"]) for r in rows} == {("base", "OPS-9-2"), ("build", "OPS-9-2")}
    for row in rows:
        assert {"tag", "image", "digest", "jira", "build_number", "git_sha", "pushed_at"} <= set(row)
        assert row["jira"] == "OPS-9" and row["build_number"] == 2 and len(row["git_sha"]) == 40
        assert row["pushed_at"].endswith("Z") and row["digest"].startswith("sha256:")
    text = imagectl("tags", "list", "--config", str(root / "imagectl.toml"), "--image", "build", "--limit", "1")
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["TAG", "IMAGE", "DIGEST", "PUSHED", "JIRA", "BUILD", "COMMIT", "SIZE"]
    assert len(lines) == 2 and lines[1].startswith("OPS-9-2  build")


def test_registry_credentials_from_environment_only(imagectl, make_project, auth_registry, tmp_path):
    server, user, password = auth_registry
    root = make_project(host(server))
    denied = build(imagectl, root, "--build-number", "1")
    assert denied.exit_code == 6
    assert "refused the credentials" in denied.stderr and "IMAGECTL_REGISTRY_LOCAL_USERNAME" in denied.stderr
    env = {"IMAGECTL_REGISTRY_LOCAL_USERNAME": user, "IMAGECTL_REGISTRY_LOCAL_PASSWORD": password}
    result = imagectl("build", "--config", str(root / "imagectl.toml"), "--build-number", "1", env=env)
    assert result.exit_code == 0, result.stderr
    assert password not in result.stdout + result.stderr
    assert not (tmp_path / "docker-config" / "config.json").exists()  # never written to the docker config
    listed = imagectl("tags", "list", "--config", str(root / "imagectl.toml"), "-o", "json", env=env)
    assert len(json.loads(listed.stdout)["tags"]) == 2
