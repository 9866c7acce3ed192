"""dev and prd as users run them: two AWS accounts, two ECR registries, each with its own identity (issue 20).

dev (account 111111111111) acts as an IAM user's keys from a profile; prd (account 222222222222) as a role assumed
from another profile, with an external id. The default credential chain holds nothing, so any call made without
the registry's own identity fails. The ECR harness answers for each account and refuses a call on another
account's registry unless its repository policy grants it (tests/ecr_harness.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests

from imagectl import scan_gate
from imagectl.adapters import aws
from imagectl.errors import RegistryError, ScanGateError
from imagectl.registries._base import Manifest
from imagectl.registries.ecr import EcrRegistry
from imagectl.registries.kinds import EcrSettings
from imagectl.settings import Identity, RegistryConfig
from tests import stack
from tests.ecr_harness import Scan
from tests.integration.airflow_helpers import get_variable
from tests.integration.conftest import DEV_ACCOUNT, PRD_ACCOUNT

pytestmark = pytest.mark.usefixtures("python_stand_in")
CREDS = {"IMAGECTL_AIRFLOW_USERNAME": "imagectl", "IMAGECTL_AIRFLOW_PASSWORD": stack.AIRFLOW_USERS["imagectl"][1]}
PRD_ROLE = f"arn:aws:iam::{PRD_ACCOUNT}:role/imagectl-release"


@pytest.fixture
def two_accounts(aws_env, moto, tmp_path, monkeypatch):
    """Profiles on disk (dev's IAM user keys; ci's keys that may assume prd's role); nothing in the default chain."""
    ecr = aws_env
    dev_keys = ecr.user_credentials(DEV_ACCOUNT)
    ci_keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's default account
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[dev-user]\n"
        f"aws_access_key_id = {dev_keys['aws_access_key_id']}\naws_secret_access_key = {dev_keys['aws_secret_access_key']}\n"
        "[ci]\n"
        f"aws_access_key_id = {ci_keys['aws_access_key_id']}\naws_secret_access_key = {ci_keys['aws_secret_access_key']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config-none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    ecr.reset_stats()
    return ecr


def toml(ecr, airflow_url: str, prefix: str, prd_extra: str = "") -> str:
    return f"""
[project]
name = "demo"
default_environment = "dev"
[jira]
projects = ["DATA"]
[images.base]
context = "images/base"
repository = "{prefix}/dbt-base"
build_args = {{ PYTHON_IMAGE = "imagectl-test/python:busybox" }}
[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "{prefix}/dbt-build"

[identities.dev]
profile = "dev-user"
[identities.prd]
profile = "ci"
role_arn = "{PRD_ROLE}"
external_id = "imagectl-prd"
session_name = "imagectl-release"

[registries.dev]
kind = "ecr"
host = "{ecr.account(DEV_ACCOUNT).host}"
registry_id = "{DEV_ACCOUNT}"
region = "ap-northeast-2"
insecure = true
identity = "dev"
[registries.prd]
kind = "ecr"
host = "{ecr.account(PRD_ACCOUNT).host}"
registry_id = "{PRD_ACCOUNT}"
region = "ap-northeast-2"
insecure = true
identity = "prd"
pull_accounts = ["333333333333"]

[environments.dev]
registry = "dev"
airflow_url = "{airflow_url}"
variable = "img_{prefix}_dev"
[environments.prd]
registry = "prd"
airflow_url = "{airflow_url}"
variable = "img_{prefix}_prd"
release = true
{prd_extra}
"""


@pytest.fixture
def project(make_project, two_accounts, airflow3, request):
    def make(prd_extra: str = "") -> Path:
        root = make_project("127.0.0.1:1")
        prefix = "x" + request.node.name.lower().replace("_", "")[:24]
        (root / "imagectl.toml").write_text(toml(two_accounts, airflow3.url, prefix, prd_extra))
        return root

    return make


def run(imagectl, root: Path, *args: str):
    return imagectl(*args, "--config", str(root / "imagectl.toml"), env=CREDS)


def as_account(ecr, account: str):
    return boto3.client("ecr", region_name="ap-northeast-2", endpoint_url=ecr.url, **ecr.accounts[account].credentials)


def test_dev_and_prd_in_two_accounts_each_with_its_own_identity(imagectl, project, two_accounts, airflow3):
    ecr = two_accounts
    root = project()
    build_repo = [line.split('"')[1] for line in (root / "imagectl.toml").read_text().splitlines() if "dbt-build" in line][0]
    # prd's repository policy already has a statement of the team's own: registry init must keep it.
    prd_admin = as_account(ecr, PRD_ACCOUNT)
    prd_admin.create_repository(repositoryName=build_repo, imageTagMutability="IMMUTABLE")
    team = {
        "Sid": "team-audit",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444444444444:root"},
        "Action": ["ecr:DescribeImages"],
    }
    prd_admin.set_repository_policy(repositoryName=build_repo, policyText=json.dumps({"Version": "2012-10-17", "Statement": [team]}))

    planned = json.loads(run(imagectl, root, "registry", "init", "--env", "prd", "--dry-run", "-o", "json").stdout)
    assert "set-repository-policy" in [c["action"] for c in planned["changes"] if c["repository"] == build_repo], planned
    for env in ("dev", "prd"):
        done = run(imagectl, root, "registry", "init", "--env", env)
        assert done.exit_code == 0, done.stderr
    statements = json.loads(prd_admin.get_repository_policy(repositoryName=build_repo)["policyText"])["Statement"]
    assert {s["Sid"] for s in statements} == {"team-audit", "imagectl-pull"}
    pull = next(s for s in statements if s["Sid"] == "imagectl-pull")
    assert pull["Principal"]["AWS"] == ["arn:aws:iam::333333333333:root"] and "ecr:BatchGetImage" in pull["Action"]
    assert "nothing to change" in run(imagectl, root, "registry", "init", "--env", "prd").stdout

    built = run(imagectl, root, "build", "--build-number", "1", "--quiet")
    assert built.exit_code == 0, built.stderr
    assert run(imagectl, root, "deploy", "DATA-1234-1").exit_code == 0
    ecr.reset_stats()
    promoted = run(imagectl, root, "promote", "DATA-1234-1", "--from", "dev", "--to", "prd", "--yes", "-o", "json")
    assert promoted.exit_code == 0, promoted.stderr
    copied = json.loads(promoted.stdout)
    assert copied["copied"]["blobs_copied"] >= 1 and copied["revision"]["release"] == "v1.0.0"
    # Blobs were read through ECR's redirect to S3, and no credential went with them to the other host.
    assert ecr.calls["s3 GET"] >= 1 and ecr.calls["s3 credentials received"] == 0
    prd_image = copied["revision"]["reference"]
    assert prd_image.startswith(ecr.account(PRD_ACCOUNT).host)
    assert get_variable(airflow3, copied["variable"])["value"] == prd_image

    # A second build, promoted, then rolled back in prd; history and status of both accounts.
    (root / "models/orders.sql").write_text("select 2 as id\n")
    from tests.conftest import git

    git(root, "commit", "-qam", "DATA-1234 second")
    assert run(imagectl, root, "build", "--build-number", "2", "--quiet").exit_code == 0
    assert run(imagectl, root, "deploy", "DATA-1234-2").exit_code == 0
    assert run(imagectl, root, "promote", "DATA-1234-2", "--from", "dev", "--to", "prd", "--yes").exit_code == 0
    rolled = json.loads(run(imagectl, root, "rollback", "--env", "prd", "--yes", "--reason", "broke", "-o", "json").stdout)
    assert rolled["revision"]["tag"] == "DATA-1234-1" and rolled["revision"]["release"] == "v1.0.0"
    history = json.loads(run(imagectl, root, "history", "--env", "prd", "-o", "json").stdout)["revisions"]
    assert [(h["revision"], h["tag"], h["current"]) for h in history] == [
        (3, "DATA-1234-1", True),
        (2, "DATA-1234-2", False),
        (1, "DATA-1234-1", False),
    ]
    status = run(imagectl, root, "status", "-o", "json")
    assert json.loads(status.stdout)["ok"] is True, status.stdout
    gc = json.loads(run(imagectl, root, "gc", "--env", "prd", "-o", "json").stdout)
    assert gc["expired"] == 0 and gc["kept"] >= 2

    # Every control-plane call named its registry, and was made by that registry's own account.
    calls = [c for c in ecr.control_calls if c.operation != "GetAuthorizationToken"]
    assert calls, "no control-plane calls were seen"
    wrong = [c for c in calls if c.registry_id is None and c.operation not in ("GetRegistryScanningConfiguration",) or c.caller != c.target]
    assert not wrong, wrong[:5]
    assert {c.target for c in calls} == {DEV_ACCOUNT, PRD_ACCOUNT}


def test_promote_without_prd_s_identity_says_which_and_changes_nothing(imagectl, project, two_accounts, airflow3, tmp_path, monkeypatch):
    root = project()
    for env in ("dev", "prd"):
        assert run(imagectl, root, "registry", "init", "--env", env).exit_code == 0
    assert run(imagectl, root, "build", "--build-number", "3", "--quiet").exit_code == 0
    assert run(imagectl, root, "deploy", "DATA-1234-3").exit_code == 0
    before = run(imagectl, root, "history", "--env", "prd", "-o", "json").stdout
    # The ci profile (which assumes prd's role) is gone from this machine.
    credentials = Path(str(tmp_path / "aws-credentials"))
    credentials.write_text(credentials.read_text().split("[ci]")[0])
    aws._sessions.clear()
    refused = run(imagectl, root, "promote", "DATA-1234-3", "--from", "dev", "--to", "prd", "--yes")
    assert refused.exit_code == 3, refused.stderr
    assert "ECR registry 'prd' acts as identity 'prd'" in refused.stderr and "profile 'ci' is not configured" in refused.stderr
    assert refused.stderr.count("\n") == 1
    credentials.write_text(credentials.read_text() + "[ci]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    assert run(imagectl, root, "history", "--env", "prd", "-o", "json").stdout == before
    # A registry given another account's identity is told so, with the fix.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    text = (root / "imagectl.toml").read_text().replace('identity = "prd"', 'identity = "dev"')
    (root / "imagectl.toml").write_text(text)
    crossed = run(imagectl, root, "history", "--env", "prd")
    assert crossed.exit_code == 6 and f"is in account {PRD_ACCOUNT} but acts as identity 'dev'" in crossed.stderr, crossed.stderr


def registry(ecr, account: str, identity: Identity | None) -> EcrRegistry:
    settings = EcrSettings(region="ap-northeast-2", insecure=True, registry_id=account)
    return EcrRegistry(RegistryConfig(f"r{account[:3]}", "ecr", ecr.account(account).host, settings, identity=identity))


def test_the_scan_gate_decides_every_documented_status_in_every_scanning_configuration(two_accounts):
    """ImageScanStatus: IN_PROGRESS | COMPLETE | FAILED | UNSUPPORTED_IMAGE | ACTIVE | PENDING | SCAN_ELIGIBILITY_EXPIRED |
    FINDINGS_UNAVAILABLE | LIMIT_EXCEEDED | IMAGE_ARCHIVED (API reference), and no scan at all; under basic scanning,
    enhanced scan on push and enhanced continuous scanning. Only final findings pass."""
    ecr = two_accounts
    identity = Identity("prd", profile="ci", role_arn=PRD_ROLE, external_id="imagectl-prd")
    reg = registry(ecr, PRD_ACCOUNT, identity)
    admin = as_account(ecr, PRD_ACCOUNT)
    repo = "gate/dbt-build"
    admin.create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
    config = reg.put_small_blob(repo, b'{"architecture":"amd64","os":"linux"}')
    layer = reg.put_small_blob(repo, b"layer")
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **layer}],
    }
    image = Manifest.from_bytes(json.dumps(doc).encode())
    reg.put_manifest(repo, "DATA-1-1", image)
    setups = {
        "basic-on-push": (
            "BASIC",
            [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "gate/*", "filterType": "WILDCARD"}]}],
        ),
        "enhanced-on-push": (
            "ENHANCED",
            [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "gate/*", "filterType": "WILDCARD"}]}],
        ),
        "enhanced-continuous": (
            "ENHANCED",
            [{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}],
        ),
    }
    cases = [
        # status, completed, counts → passes?
        ("COMPLETE", True, {"LOW": 2}, True),
        ("ACTIVE", True, {"MEDIUM": 1}, True),
        ("COMPLETE", True, {"CRITICAL": 1}, False),
        ("COMPLETE", False, {}, False),  # aws/aws-sdk#289: COMPLETE before any findings exist
        ("ACTIVE", False, {}, False),
        ("IN_PROGRESS", False, {}, False),
        ("PENDING", False, {}, False),
        ("FAILED", False, {}, False),
        ("UNSUPPORTED_IMAGE", False, {}, False),
        ("SCAN_ELIGIBILITY_EXPIRED", False, {}, False),
        ("FINDINGS_UNAVAILABLE", False, {}, False),
        ("LIMIT_EXCEEDED", False, {}, False),
        ("IMAGE_ARCHIVED", False, {}, False),
        (None, False, {}, False),  # no scan at all
    ]
    for setup, (scan_type, rules) in setups.items():
        admin.put_registry_scanning_configuration(scanType=scan_type, rules=rules)
        for status, completed, counts, passes in cases:
            key = (PRD_ACCOUNT, repo, image.digest)
            ecr.scans.pop(key, None)
            if status is not None:
                ecr.set_scan(PRD_ACCOUNT, repo, image.digest, Scan(status, counts, completed, enhanced=scan_type == "ENHANCED"))
            result = scan_gate.check(reg, repo, image.digest, "HIGH", wait=0)
            assert result.setup == setup, (setup, result.setup)
            if passes:
                assert scan_gate.enforce(result, "prd", False, None) is None, (setup, status)
                continue
            with pytest.raises(ScanGateError) as refused:
                scan_gate.enforce(result, "prd", False, None)
            line = refused.value.one_line()
            assert "--force --reason" in line, line
            if setup.startswith("enhanced"):
                assert "start-image-scan" not in line, (setup, status, line)  # no manual scans under enhanced scanning
            if status is None and setup == "basic-on-push":
                assert "aws ecr start-image-scan --registry-id 222222222222" in line


def test_a_claim_whose_answer_is_lost_records_one_revision(imagectl, project, two_accounts):
    ecr = two_accounts
    root = project()
    assert run(imagectl, root, "registry", "init", "--env", "dev").exit_code == 0
    assert run(imagectl, root, "build", "--build-number", "4", "--quiet").exit_code == 0
    ecr.limits.drop_answers, ecr.limits.drop_prefix = 1, "imagectl-history-dev-"
    deployed = run(imagectl, root, "deploy", "DATA-1234-4", "-o", "json")
    assert deployed.exit_code == 0, deployed.stderr
    assert ecr.limits.drop_answers == 0  # the harness committed the claim and dropped its answer
    history = json.loads(run(imagectl, root, "history", "-o", "json").stdout)["revisions"]
    assert [h["revision"] for h in history] == [1]


def test_an_exclusion_filter_over_any_imagectl_namespace_is_refused(imagectl, project, two_accounts):
    root = project()
    repo = [line.split('"')[1] for line in (root / "imagectl.toml").read_text().splitlines() if "dbt-build" in line][0]
    assert run(imagectl, root, "registry", "init", "--env", "dev").exit_code == 0
    assert run(imagectl, root, "build", "--build-number", "5", "--quiet").exit_code == 0
    dev_admin = as_account(two_accounts, DEV_ACCOUNT)
    filters = [{"filter": "imagectl-history-stg-*", "filterType": "WILDCARD"}, {"filter": "latest*", "filterType": "WILDCARD"}]
    dev_admin.put_image_tag_mutability(
        repositoryName=repo, imageTagMutability="IMMUTABLE_WITH_EXCLUSION", imageTagMutabilityExclusionFilters=filters
    )
    refused = run(imagectl, root, "deploy", "DATA-1234-5")
    assert refused.exit_code == 6 and "'imagectl-history-stg-*' matches imagectl's history records" in refused.stderr, refused.stderr
    fixed = run(imagectl, root, "registry", "init", "--env", "dev")
    assert fixed.exit_code == 0 and "set-immutable" in fixed.stdout
    after = dev_admin.describe_repositories(repositoryNames=[repo])["repositories"][0]
    assert [f["filter"] for f in after["imageTagMutabilityExclusionFilters"]] == ["latest*"]  # the team's own filter stays
    assert run(imagectl, root, "deploy", "DATA-1234-5").exit_code == 0


def test_lifecycle_policies_are_validated_and_history_survives_expiry(imagectl, project, two_accounts):
    """PutLifecyclePolicy refuses what AWS documents as invalid (moto accepts all of it); imagectl's own policy passes,
    and running it — with ECR deleting an expired image's referrers — keeps every history record."""
    ecr = two_accounts
    admin = as_account(ecr, DEV_ACCOUNT)
    admin.create_repository(repositoryName="rules/lifecycle")
    rule = {
        "rulePriority": 1,
        "selection": {"tagStatus": "tagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countNumber": 1},
        "action": {"type": "expire"},
    }
    untagged = {
        "rulePriority": 2,
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
        "action": {"type": "expire"},
    }
    invalid = {
        "prefix and pattern in one rule": [{**rule, "selection": {**rule["selection"], "tagPatternList": ["a*"]}}],
        "more than 4 wildcards": [{**rule, "selection": {**rule["selection"], "tagPrefixList": None, "tagPatternList": ["a*b*c*d*e*f"]}}],
        "two untagged rules": [untagged, {**untagged, "rulePriority": 3}],
        "duplicate priorities": [rule, {**untagged, "rulePriority": 1}],
        "tagged with no list": [{**rule, "selection": {**rule["selection"], "tagPrefixList": None}}],
        "any not last": [
            {**rule, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}},
            {**untagged, "rulePriority": 5},
        ],
        "sinceImagePushed without countUnit": [{**untagged, "selection": {**untagged["selection"], "countUnit": None}}],
    }
    for what, rules in invalid.items():
        cleaned = [{**r, "selection": {k: v for k, v in r["selection"].items() if v is not None}} for r in rules]
        with pytest.raises(admin.exceptions.InvalidParameterException):
            admin.put_lifecycle_policy(repositoryName="rules/lifecycle", lifecyclePolicyText=json.dumps({"rules": cleaned}))
            pytest.fail(f"accepted: {what}")
    root = project()
    repo = [line.split('"')[1] for line in (root / "imagectl.toml").read_text().splitlines() if "dbt-build" in line][0]
    text = (root / "imagectl.toml").read_text().replace('identity = "dev"', 'identity = "dev"\nretention = { keep_builds = 1 }')
    (root / "imagectl.toml").write_text(text)
    assert run(imagectl, root, "registry", "init", "--env", "dev").exit_code == 0  # imagectl's own policy passes validation
    for n in (6, 7, 8):
        (root / "models/orders.sql").write_text(f"select {n} as id\n")
        from tests.conftest import git

        git(root, "commit", "-qam", f"DATA-1234 change {n}")
        assert run(imagectl, root, "build", "--build-number", str(n), "--quiet").exit_code == 0
        assert run(imagectl, root, "deploy", f"DATA-1234-{n}").exit_code == 0
    for n in (9, 10):  # built, never deployed: keep_builds = 1 keeps only the newest of them
        (root / "models/orders.sql").write_text(f"select {n} as id\n")
        git(root, "commit", "-qam", f"DATA-1234 change {n}")
        assert run(imagectl, root, "build", "--build-number", str(n), "--quiet").exit_code == 0
    tags = ecr.account(DEV_ACCOUNT).repo(repo).tags
    nine = tags["DATA-1234-9"]
    deleted = ecr.expire(repo, DEV_ACCOUNT)
    assert nine in deleted and "DATA-1234-9" not in tags and "DATA-1234-10" in tags
    assert "imagectl-build-DATA-1234-9" not in tags  # its record went with it: ECR deletes an image's referrers
    history = json.loads(run(imagectl, root, "history", "-o", "json").stdout)["revisions"]
    assert [h["revision"] for h in history] == [3, 2, 1] and all(h["image_present"] for h in history)


def test_ecr_s_tag_listing_refuses_n_above_1000(two_accounts):
    ecr = two_accounts
    identity = Identity("dev", profile="dev-user")
    reg = registry(ecr, DEV_ACCOUNT, identity)
    as_account(ecr, DEV_ACCOUNT).create_repository(repositoryName="rules/tags")
    auth = reg.docker_auth()
    answer = requests.get(
        f"{ecr.account(DEV_ACCOUNT).url}/v2/rules/tags/tags/list?n=1001", auth=(auth["username"], auth["password"]), timeout=5
    )
    assert answer.status_code == 400 and "less than or equal to 1000" in answer.json()["errors"][0]["message"]
    with pytest.raises(RegistryError):  # another account's registry, with no repository policy granting it
        registry(ecr, PRD_ACCOUNT, identity).list_tags("rules/tags")


def test_a_variable_store_acts_as_its_own_identity(two_accounts, moto, tmp_path, monkeypatch):
    """prd's Variable lives in prd's Secrets Manager: the store assumes prd's role, so the secret is written in account
    222222222222 (and not in the account of the credentials it started from)."""
    from imagectl.config import parse_config
    from imagectl.workspace import Workspace
    from tests.unit.helpers import BASE, tomllib

    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.url)
    text = BASE.replace(
        '[environments.prd]\nregistry = "prd"\n',
        '[environments.prd]\nregistry = "prd"\nvariable_store = "secretsmanager"\nstore_region = "ap-northeast-2"\n'
        'store_identity = "prd"\nvariables_prefix = "airflow/prd/variables"\n',
    )
    text += f'\n[identities.prd]\nprofile = "ci"\nrole_arn = "{PRD_ROLE}"\nexternal_id = "imagectl-prd"\n'
    env = Workspace(parse_config(tmp_path / "imagectl.toml", tomllib.loads(text))).env("prd")
    env.variable.write("prd.example/dbt-build:DATA-1-1@sha256:" + "1" * 64, "revision 1", {"imagectl:revision": "1"}, create=True)
    assert env.variable.read().endswith("1" * 64)

    def secrets(credentials):
        client = boto3.client("secretsmanager", region_name="ap-northeast-2", endpoint_url=moto.url, **credentials)
        return [s["Name"] for s in client.list_secrets()["SecretList"]]

    assert "airflow/prd/variables/dbt_image" in secrets(two_accounts.accounts[PRD_ACCOUNT].credentials)
    assert "airflow/prd/variables/dbt_image" not in secrets({"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
