"""imagectl against ECR as documented: the harness (tests/ecr_harness.py) serves both of ECR's planes from one
store — moto for repositories, mutability, lifecycle and tokens; a real distribution registry for manifests and
blobs — and enforces ECR's rules: immutable tags (also for identical content), no empty layers, no zero-byte
blobs, no media-type parameters, tags per image and images per repository."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests

from imagectl.errors import ConflictError
from imagectl.registries._base import EMPTY_BLOB, Claim, Manifest
from imagectl.registries.ecr import EcrRegistry
from imagectl.registries.kinds import EcrSettings
from imagectl.retention import RetentionConfig, ecr_lifecycle_policy
from imagectl.settings import RegistryConfig
from tests import stack
from tests.ecr_harness import DEFAULT_ACCOUNT, Scan
from tests.integration.airflow_helpers import get_variable
from tests.integration.conftest import commit_change
from tests.integration.project import synthetic_image

pytestmark = pytest.mark.usefixtures("python_stand_in")
CREDS = {"IMAGECTL_AIRFLOW_USERNAME": "imagectl", "IMAGECTL_AIRFLOW_PASSWORD": stack.AIRFLOW_USERS["imagectl"][1]}


def ecr_client():
    return boto3.client("ecr", region_name="ap-northeast-2")


def repos_of(root: Path) -> tuple[str, str]:
    lines = (root / "imagectl.toml").read_text().splitlines()
    return next(x.split('"')[1] for x in lines if "dbt-base" in x), next(x.split('"')[1] for x in lines if "dbt-build" in x)


def ecr_project(make_project, ecr, airflow_url: str | None = None, variable: str = "img_ecr", extra_env: str = "") -> Path:
    airflow = f"airflow_url = {json.dumps(airflow_url)}" if airflow_url else ""
    env = f'\n[environments.ecr]\nregistry = "aws"\n{airflow}\nvariable = "{variable}"\n{extra_env}'
    return make_project("127.0.0.1:1", environments=env, ecr_host=ecr.host)


def run(imagectl, root: Path, *args: str, env: dict[str, str] | None = None):
    return imagectl(*args, "--config", str(root / "imagectl.toml"), env={**CREDS, **(env or {})})


def registry(ecr) -> EcrRegistry:
    return EcrRegistry(
        RegistryConfig("aws", "ecr", ecr.host, EcrSettings(region="ap-northeast-2", insecure=True, registry_id=DEFAULT_ACCOUNT))
    )


def test_registry_init_creates_immutable_repositories_with_the_retention_policy(imagectl, make_project, aws_env):
    root = ecr_project(make_project, aws_env)
    base, build = repos_of(root)
    client = ecr_client()
    planned = run(imagectl, root, "registry", "init", "--dry-run", "-o", "json")
    assert planned.exit_code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    retention = RetentionConfig(build_tag_prefixes=("DATA-", "OPS-"))  # one build rule per [jira] projects key
    assert plan["applied"] is False and plan["retention_policy"] == ecr_lifecycle_policy(retention)
    assert [(c["repository"], c["action"]) for c in plan["changes"]] == [
        (base, "create"),
        (base, "set-lifecycle-policy"),
        (build, "create"),
        (build, "set-lifecycle-policy"),
    ]
    with pytest.raises(client.exceptions.RepositoryNotFoundException):
        client.describe_repositories(repositoryNames=[base])

    done = run(imagectl, root, "registry", "init")
    assert done.exit_code == 0, done.stderr
    assert f"  done: create {base} (tag immutability on, scan on push)" in done.stdout
    for repo in (base, build):
        described = client.describe_repositories(repositoryNames=[repo])["repositories"][0]
        assert described["imageTagMutability"] == "IMMUTABLE" and described["imageScanningConfiguration"]["scanOnPush"] is True
        assert json.loads(client.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"]) == ecr_lifecycle_policy(retention)
    assert "nothing to change" in run(imagectl, root, "registry", "init").stdout

    # Made mutable by hand, or given an exclusion filter that covers imagectl's tags: put right; a team's own filter stays.
    client.put_image_tag_mutability(repositoryName=base, imageTagMutability="MUTABLE")
    client.put_image_tag_mutability(
        repositoryName=build,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[
            {"filter": "imagectl-*", "filterType": "WILDCARD"},
            {"filter": "latest*", "filterType": "WILDCARD"},
        ],
    )
    fixed = json.loads(run(imagectl, root, "registry", "init", "-o", "json").stdout)
    assert [(c["repository"], c["action"]) for c in fixed["changes"]] == [(base, "set-immutable"), (build, "set-immutable")]
    assert client.describe_repositories(repositoryNames=[base])["repositories"][0]["imageTagMutability"] == "IMMUTABLE"
    after = client.describe_repositories(repositoryNames=[build])["repositories"][0]
    assert after["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert [f["filter"] for f in after["imageTagMutabilityExclusionFilters"]] == ["latest*"]


def test_build_push_and_records_through_ecrs_rules(imagectl, make_project, aws_env):
    root = ecr_project(make_project, aws_env)
    result = run(imagectl, root, "build", "--build-number", "4", "-o", "json")
    assert result.exit_code == 0, result.stderr
    images = {i["image"]: i for i in json.loads(result.stdout)["images"]}
    shown = json.loads(run(imagectl, root, "tags", "show", "DATA-1234-4", "-o", "json").stdout)["images"]
    assert {i["image"] for i in shown} == {"base", "build"} and all(len(i["git_sha"]) == 40 for i in shown)
    base, build = repos_of(root)
    details = ecr_client().describe_images(repositoryName=build, imageIds=[{"imageTag": "imagectl-build-DATA-1234-4"}])["imageDetails"][0]
    assert details["artifactMediaType"] == "application/vnd.imagectl.record.v2+json"
    # A second build on unchanged inputs adds no tag to the base image.
    commit_change(root, "models/orders.sql", "select 9 as id\n", "DATA-1234 change")
    assert run(imagectl, root, "build", "--build-number", "5").exit_code == 0
    base_tags = ecr_client().describe_images(repositoryName=base, imageIds=[{"imageDigest": images["base"]["digest"]}])["imageDetails"][0][
        "imageTags"
    ]
    assert sorted(t for t in base_tags if not t.startswith("ctx-")) == ["DATA-1234-4"]


def test_the_harness_enforces_ecrs_documented_rules(aws_env):
    ecr = aws_env
    ecr_client().create_repository(repositoryName="rules/x", imageTagMutability="IMMUTABLE")
    reg = registry(ecr)
    auth = reg.docker_auth()
    http = requests.Session()
    http.auth = (auth["username"], auth["password"])
    assert requests.get(f"{ecr.url}/v2/", timeout=5).status_code == 401  # Basic AWS:<token> only
    assert http.get(f"{ecr.url}/v2/", timeout=5).status_code == 200
    start = http.post(f"{ecr.url}/v2/rules/x/blobs/uploads/", timeout=5)
    empty = http.put(start.headers["Location"] + "&digest=sha256:" + hashlib.sha256(b"").hexdigest(), data=b"", timeout=5)
    assert empty.status_code == 400 and empty.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"  # zero-byte blob
    reg.ensure_empty_blob("rules/x")

    def put(doc: dict, media: str = "application/vnd.oci.image.manifest.v1+json", tag: str = "t1"):
        return http.put(f"{ecr.url}/v2/rules/x/manifests/{tag}", data=json.dumps(doc), headers={"Content-Type": media}, timeout=5)

    empty_descriptor = {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:" + hashlib.sha256(EMPTY_BLOB).hexdigest(),
        "size": 2,
    }
    no_layers = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": empty_descriptor, "layers": []}
    assert "at least 1 layer" in put(no_layers).json()["errors"][0]["message"]
    parameter = {**no_layers, "layers": [empty_descriptor], "artifactType": "application/x+json;version=1", "subject": empty_descriptor}
    # ECR answers an unacceptable manifest with 405 UNSUPPORTED (observed: opcr-io/policy#149, chainguard-dev/apko#450).
    assert put(parameter).status_code == 405 and put(parameter).json()["errors"][0]["code"] == "UNSUPPORTED"
    assert put(no_layers, media="application/vnd.oci.image.manifest.v1+json;charset=utf-8").status_code == 405
    good = {**no_layers, "layers": [empty_descriptor], "artifactType": "application/vnd.test+json"}
    assert put(good).status_code == 201
    again = put(good)  # identical content to an existing immutable tag: refused too
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "TAG_INVALID"
    manifest = Manifest.from_bytes(json.dumps(good).encode())
    assert reg.put_manifest("rules/x", "t1", manifest) is False  # imagectl's idempotent path expects exactly that
    assert reg.claim_tag("rules/x", "t1", manifest) is Claim.SAME
    other = Manifest.from_bytes(json.dumps({**good, "annotations": {"x": "y"}}).encode())
    assert reg.claim_tag("rules/x", "t1", other) is Claim.TAKEN
    with pytest.raises(ConflictError, match="already exists with digest") as info:
        reg.put_manifest("rules/x", "t1", other)
    assert "tags are never moved" in info.value.one_line()


def test_history_refused_on_a_mutable_repository(imagectl, make_project, aws_env, airflow3):
    root = ecr_project(make_project, aws_env, airflow3.url, "img_ecr_mutable")
    _, build = repos_of(root)
    assert run(imagectl, root, "build", "--build-number", "1").exit_code == 0
    ecr_client().put_image_tag_mutability(repositoryName=build, imageTagMutability="MUTABLE")
    result = run(imagectl, root, "deploy", "DATA-1234-1")
    assert result.exit_code == 6, result.stderr
    assert (
        "cannot guarantee that imagectl's records are never overwritten" in result.stderr
        and "imagectl registry init --env" in result.stderr
    )
    assert json.loads(run(imagectl, root, "history", "-o", "json").stdout)["revisions"] == []
    assert get_variable(airflow3, "img_ecr_mutable") is None


def test_deploy_rollback_history_and_quotas_on_ecr(imagectl, make_project, aws_env, airflow3):
    ecr = aws_env
    root = ecr_project(make_project, ecr, airflow3.url, "img_ecr_round")
    base, build = repos_of(root)
    for n in (1, 2, 3):
        commit_change(root, "models/orders.sql", f"select {n} as id -- build {n}\n", f"DATA-1234 change {n}")
        assert run(imagectl, root, "build", "--build-number", str(n), "--quiet").exit_code == 0
    for n in (1, 2, 3):
        assert run(imagectl, root, "deploy", f"DATA-1234-{n}").exit_code == 0
    ecr.limits.throttle_puts = 2  # PutImage throttled twice: retried with backoff
    rolled = json.loads(run(imagectl, root, "rollback", "--reason", "broke", "-o", "json").stdout)
    assert rolled["revision"]["revision"] == 4 and rolled["revision"]["tag"] == "DATA-1234-2"
    history = json.loads(run(imagectl, root, "history", "-o", "json").stdout)["revisions"]
    assert [(h["revision"], h["tag"], h["current"]) for h in history] == [
        (4, "DATA-1234-2", True),
        (3, "DATA-1234-3", False),
        (2, "DATA-1234-2", False),
        (1, "DATA-1234-1", False),
    ]
    # The deployed tag is one per image and environment: DATA-1234-2 ran twice and has one.
    tags = ecr_client().describe_images(repositoryName=build, imageIds=[{"imageTag": "DATA-1234-2"}])["imageDetails"][0]["imageTags"]
    assert len([t for t in tags if t.startswith("deployed-ecr-")]) == 1

    # Images per repository at a lowered quota: one line naming it, exit 6, nothing half-written.
    count = len(ecr.repos[build].images)
    ecr.limits.images_per_repository = count
    full = run(imagectl, root, "deploy", "DATA-1234-1")
    assert full.exit_code == 6 and "images per repository" in full.stderr and full.stderr.count("\n") == 1
    assert json.loads(run(imagectl, root, "history", "-o", "json").stdout)["revisions"][0]["revision"] == 4
    assert get_variable(airflow3, "img_ecr_round")["value"] == rolled["revision"]["reference"]
    ecr.limits.images_per_repository = 10_000

    # Tags per image at a lowered quota: builds on one base never add tags to it, so they keep working.
    ecr.limits.tags_per_image = 3
    for n in (4, 5, 6):
        commit_change(root, "models/orders.sql", f"select {n} as id -- build {n}\n", f"DATA-1234 change {n}")
        result = run(imagectl, root, "build", "--build-number", str(n), "--quiet")
        assert result.exit_code == 0, result.stderr


def test_tags_list_pages_through_more_than_a_page(imagectl, make_project, aws_env):
    root = ecr_project(make_project, aws_env)
    _, build = repos_of(root)
    ecr_client().create_repository(repositoryName=build, imageTagMutability="IMMUTABLE")
    reg = registry(aws_env)
    config = reg.put_small_blob(build, b'{"architecture":"amd64","os":"linux"}')
    layer = reg.put_small_blob(build, b"layer-bytes")
    total = 1150

    def seed(i: int) -> None:
        doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **layer}],
            "i": i,
        }
        reg.put_manifest(build, f"DATA-{i % 10 + 1}-{i + 1}", Manifest.from_bytes(json.dumps(doc).encode()))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(seed, range(total)))
    everything = json.loads(run(imagectl, root, "tags", "list", "--image", "build", "--limit", "5000", "-o", "json").stdout)["tags"]
    assert len(everything) == total and len({r["digest"] for r in everything}) == total  # more than one DescribeImages page
    times = [r["pushed_at"] for r in everything]
    assert times == sorted(times, reverse=True)
    one_ticket = json.loads(
        run(imagectl, root, "tags", "list", "--image", "build", "--jira", "DATA-7", "--limit", "5000", "-o", "json").stdout
    )["tags"]
    assert len(one_ticket) == total // 10 and {r["jira"] for r in one_ticket} == {"DATA-7"}
    aws_env.reset_stats()
    limited = run(imagectl, root, "tags", "list", "--image", "build", "--limit", "3")
    assert len(limited.stdout.splitlines()) == 4
    stats = aws_env.stats()
    assert stats["api DescribeImages"] == 2 and stats["api BatchGetImage"] == 1  # records read only for the rows shown


def test_missing_aws_credentials_is_one_clear_line(imagectl, make_project, ecr, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", ecr.url)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    root = ecr_project(make_project, ecr)
    result = run(imagectl, root, "tags", "list")
    assert result.exit_code == 6
    assert result.stderr.startswith("error: no AWS credentials for ECR registry 'aws'") and result.stderr.count("\n") == 1


def test_an_ecr_endpoint_answering_html_is_one_line(imagectl, make_project, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Html(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"<html><body>Proxy login</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        root = make_project("127.0.0.1:1", environments='\n[environments.ecr]\nregistry = "aws"\n')
        result = run(imagectl, root, "tags", "list")
        assert result.exit_code == 6 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    finally:
        server.shutdown()


def test_scan_gate_with_ecr_findings(imagectl, make_project, aws_env, airflow3, moto):
    """Promotion into an environment with max_severity checks ECR's scan findings (the harness's scans)."""
    root = make_project(
        "127.0.0.1:1",
        ecr_host=aws_env.host,
        environments=f"""
[environments.dev]
registry = "aws"
airflow_url = "{airflow3.url}"
variable = "img_scan_dev"
[environments.prd]
registry = "aws"
airflow_url = "{airflow3.url}"
variable = "img_scan_prd"
release = true
max_severity = "HIGH"
scan_wait = 0
""",
    )
    assert run(imagectl, root, "registry", "init", "--env", "dev").exit_code == 0
    assert run(imagectl, root, "build", "--build-number", "1", "--env", "dev", "--quiet").exit_code == 0
    deployed = json.loads(run(imagectl, root, "deploy", "DATA-1234-1", "--env", "dev", "-o", "json").stdout)
    _, build = repos_of(root)
    aws_env.set_scan(DEFAULT_ACCOUNT, build, deployed["revision"]["digest"], Scan("COMPLETE", {"CRITICAL": 1, "HIGH": 3}))
    refused = run(imagectl, root, "promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes")
    assert refused.exit_code == 15 and "1 CRITICAL finding(s), above prd's max_severity HIGH" in refused.stderr
    assert "console.aws.amazon.com/ecr/repositories/private/" in refused.stderr
    forced = json.loads(
        run(
            imagectl,
            root,
            "promote",
            "DATA-1234-1",
            "--from",
            "dev",
            "--to",
            "prd",
            "--yes",
            "--force",
            "--reason",
            "accepted INC-9",
            "-o",
            "json",
        ).stdout
    )
    assert forced["revision"]["forced"].startswith("scan gate: the image has 1 CRITICAL")


def test_sixteen_concurrent_deploys_through_the_harness(imagectl, make_project, aws_env, airflow3):
    """16 deploy processes × 2 rounds on ECR (more rounds in test_concurrency.py): 0 lost, 0 duplicated."""
    root = ecr_project(make_project, aws_env, airflow3.url, "img_ecr_concurrent")
    _, build = repos_of(root)
    ecr_client().create_repository(repositoryName=build, imageTagMutability="IMMUTABLE")
    reg = registry(aws_env)
    config = reg.put_small_blob(build, b'{"os":"linux"}')
    tags = [f"DATA-77-{n}" for n in range(1, 17)]
    for n, tag in enumerate(tags):
        doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **reg.put_small_blob(build, f"l{n}".encode())}],
        }
        reg.put_manifest(build, tag, Manifest.from_bytes(json.dumps(doc).encode()))
    env = {**os.environ, **CREDS}
    seen = []
    for _ in range(2):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "imagectl", "deploy", tag, "--env", "ecr", "--config", str(root / "imagectl.toml"), "-o", "json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tag in tags
        ]
        outputs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
        seen += [json.loads(o[0])["revision"] for o in outputs if json.loads(o[0])["state"] == "new"]
    history = json.loads(run(imagectl, root, "history", "--limit", "100", "-o", "json").stdout)["revisions"]
    numbers = [h["revision"] for h in history]
    assert len(numbers) == len(set(numbers)) == len(seen)  # 0 duplicated
    assert {(r["revision"], r["digest"]) for r in seen} <= {(h["revision"], h["digest"]) for h in history}  # 0 lost
    assert get_variable(airflow3, "img_ecr_concurrent")["value"] == history[0]["reference"]


def test_gc_deletes_by_tag_so_a_tag_added_meanwhile_keeps_the_image_and_its_records(aws_env):
    """ECR removes an image with its last tag, and deletes its referrers with it. gc deletes by the tags it planned
    with: an image a concurrent deploy tagged (deployed-) meanwhile stays, with the revision record that refers to
    it; an image nobody tagged goes, its records with it; a tag that names another image by now is left alone."""
    from imagectl.records import REVISION_RECORD, make_record

    ecr_client().create_repository(repositoryName="gc/x", imageTagMutability="IMMUTABLE")
    reg = registry(aws_env)
    reg.ensure_empty_blob("gc/x")

    def image(name: str) -> Manifest:
        manifest = synthetic_image(reg, "gc/x", name)
        reg.put_manifest("gc/x", f"DATA-1-{name}", manifest)
        return manifest

    kept, gone = image("1"), image("2")
    for n, subject in ((1, kept), (2, gone)):
        reg.put_record("gc/x", f"imagectl-history-dev-{n:06d}", make_record(subject, {"n": str(n)}, REVISION_RECORD))
    reg.put_manifest("gc/x", f"deployed-dev-{kept.digest[7:19]}", kept)  # a deploy tagged it after gc planned

    assert reg.delete_tagged("gc/x", kept.digest, ["DATA-1-1"]) is False
    assert reg.existing("gc/x", [kept.digest, "imagectl-history-dev-000001"]) == {kept.digest, "imagectl-history-dev-000001"}
    assert "DATA-1-1" not in reg.existing("gc/x", ["DATA-1-1"])  # only gc's tag went (gc puts it back: commands/gc.py)

    assert reg.delete_tagged("gc/x", gone.digest, ["DATA-1-2"]) is True
    assert reg.existing("gc/x", [gone.digest, "imagectl-history-dev-000002"]) == set()  # the record went with it

    other = image("3")
    assert reg.delete_tagged("gc/x", kept.digest, ["DATA-1-3"]) is False  # DATA-1-3 names another image: untouched
    assert reg.existing("gc/x", ["DATA-1-3"]) == {"DATA-1-3"} and reg.get_manifest("gc/x", "DATA-1-3").digest == other.digest
