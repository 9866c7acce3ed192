"""imagectl against ECR's API served by moto_server (control plane only: moto has no image data plane)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from imagectl.config import LifecycleConfig, RegistryConfig
from imagectl.errors import ConflictError
from imagectl.lifecycle import lifecycle_policy
from imagectl.records import make_record
from imagectl.registries import Manifest
from imagectl.registries.ecr import EcrRegistry


def ecr_client():
    return boto3.client("ecr", region_name="ap-northeast-2")


def fake_image(seed: str) -> Manifest:
    """A schema-2 manifest as docker would push it (moto stores manifests; it has no blobs to check)."""
    layer = hashlib.sha256(seed.encode()).hexdigest()
    return Manifest.from_bytes(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 1000,
                    "digest": "sha256:" + hashlib.sha256(b"cfg" + seed.encode()).hexdigest(),
                },
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2000, "digest": "sha256:" + layer}],
            },
            sort_keys=True,
        ).encode()
    )


def put(client, repository: str, tag: str, manifest: Manifest) -> None:
    client.put_image(
        repositoryName=repository,
        imageManifest=manifest.raw.decode(),
        imageTag=tag,
        imageManifestMediaType=manifest.media_type,
        imageDigest=manifest.digest,
    )


def test_registry_init_creates_immutable_repositories_with_lifecycle(imagectl, make_project, aws_env):
    root = make_project("127.0.0.1:1")
    config = str(root / "imagectl.toml")
    repos = [line.split('"')[1] for line in (root / "imagectl.toml").read_text().splitlines() if "repository =" in line]
    client = ecr_client()

    planned = imagectl("registry", "init", "--config", config, "--env", "ecr", "--dry-run", "-o", "json")
    assert planned.exit_code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["applied"] is False
    assert [(c["repository"], c["action"]) for c in plan["changes"]] == [
        (repos[0], "create"),
        (repos[0], "set-lifecycle-policy"),
        (repos[1], "create"),
        (repos[1], "set-lifecycle-policy"),
    ]
    with pytest.raises(client.exceptions.RepositoryNotFoundException):
        client.describe_repositories(repositoryNames=[repos[0]])

    done = imagectl("registry", "init", "--config", config, "--env", "ecr")
    assert done.exit_code == 0, done.stderr
    assert f"  done: create {repos[0]} (tag immutability on, scan on push)" in done.stdout
    for repo in repos:
        described = client.describe_repositories(repositoryNames=[repo])["repositories"][0]
        assert described["imageTagMutability"] == "IMMUTABLE"
        assert described["imageScanningConfiguration"]["scanOnPush"] is True
        policy = json.loads(client.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"])
        assert policy == lifecycle_policy(LifecycleConfig())

    again = imagectl("registry", "init", "--config", config, "--env", "ecr")
    assert "nothing to change" in again.stdout

    # A repository someone made mutable by hand is put right.
    client.put_image_tag_mutability(repositoryName=repos[0], imageTagMutability="MUTABLE")
    fixed = json.loads(imagectl("registry", "init", "--config", config, "--env", "ecr", "-o", "json").stdout)
    assert [c["action"] for c in fixed["changes"]] == ["set-immutable"]
    assert client.describe_repositories(repositoryNames=[repos[0]])["repositories"][0]["imageTagMutability"] == "IMMUTABLE"


def test_tags_are_never_moved_on_ecr(aws_env):
    registry = EcrRegistry(RegistryConfig("aws", "ecr", "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com", "ap-northeast-2"))
    registry.ensure_repository("immut/dbt-build")
    first, other = fake_image("one"), fake_image("two")
    assert registry.put_manifest("immut/dbt-build", "DATA-1-1", first) is True
    assert registry.put_manifest("immut/dbt-build", "DATA-1-1", first) is False  # same content: no-op
    with pytest.raises(ConflictError) as info:
        registry.put_manifest("immut/dbt-build", "DATA-1-1", other)
    assert "tags are never moved" in info.value.one_line()
    assert registry.get_manifest("immut/dbt-build", "DATA-1-1").digest == first.digest


def test_tags_list_pages_through_2500_images(imagectl, make_project, aws_env):
    root = make_project("127.0.0.1:1")
    config = str(root / "imagectl.toml")
    repo = next(line.split('"')[1] for line in (root / "imagectl.toml").read_text().splitlines() if "dbt-build" in line)
    client = ecr_client()
    client.create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
    total = 2500

    def seed(i: int) -> None:
        manifest = fake_image(f"img-{i}")
        tag = f"DATA-{i % 10 + 1}-{i + 1}"
        put(client, repo, tag, manifest)
        if i % 100 == 0:  # some carry imagectl's build record
            record = make_record(
                manifest, {"org.opencontainers.image.revision": f"{i:040x}", "io.imagectl.pushed-at": "2026-01-01T00:00:00Z"}
            )
            put(client, repo, f"imagectl-build-{tag}", record)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(seed, range(total)))

    everything = imagectl("tags", "list", "--config", config, "--env", "ecr", "--image", "build", "--limit", "5000", "-o", "json")
    assert everything.exit_code == 0, everything.stderr
    rows = json.loads(everything.stdout)
    assert len(rows) == total  # more than two describe_images pages of 1000
    assert len({r["digest"] for r in rows}) == total
    assert not any(r["tag"].startswith("imagectl-") for r in rows)
    times = [r["pushed_at"] for r in rows]
    assert times == sorted(times, reverse=True)
    with_sha = {r["tag"]: r["git_sha"] for r in rows if r["git_sha"]}
    assert len(with_sha) == total // 100 and with_sha["DATA-1-1"] == f"{0:040x}"

    one_ticket = json.loads(
        imagectl(
            "tags", "list", "--config", config, "--env", "ecr", "--image", "build", "--jira", "DATA-7", "--limit", "5000", "-o", "json"
        ).stdout
    )
    assert len(one_ticket) == total // 10 and {r["jira"] for r in one_ticket} == {"DATA-7"}
    limited = imagectl("tags", "list", "--config", config, "--env", "ecr", "--image", "build", "--limit", "3")
    assert len(limited.stdout.splitlines()) == 4

    shown = json.loads(imagectl("tags", "show", "DATA-1-1", "--config", config, "--env", "ecr", "--image", "build", "-o", "json").stdout)
    assert shown[0]["git_sha"] == f"{0:040x}" and shown[0]["other_tags"] == []


def test_build_plan_against_ecr(imagectl, make_project, aws_env):
    root = make_project("127.0.0.1:1")
    result = imagectl("build", "--config", str(root / "imagectl.toml"), "--env", "ecr", "--build-number", "4", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["registry_kind"] == "ecr"
    assert [c["action"] for c in plan["repository_changes"]] == ["create", "set-lifecycle-policy"] * 2
    assert [i["action"] for i in plan["images"]] == ["build", "build"]
    assert plan["images"][0]["reference"].startswith("123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/")
    existing = {r["repositoryName"] for r in ecr_client().describe_repositories()["repositories"]}
    assert not existing & {i["repository"] for i in plan["images"]}  # a dry run creates nothing


def test_missing_aws_credentials_is_one_clear_line(imagectl, make_project, moto, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto.url)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    root = make_project("127.0.0.1:1")
    result = imagectl("tags", "list", "--config", str(root / "imagectl.toml"), "--env", "ecr")
    assert result.exit_code == 6
    assert result.stderr.startswith("error: no AWS credentials for ECR registry 'aws'")
    assert result.stderr.count("\n") == 1
