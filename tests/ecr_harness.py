"""A test harness that holds imagectl to Amazon ECR's *documented* rules, on 127.0.0.1: one ECR per AWS account.

No ECR runs here, and moto has no ECR data plane. The harness is both of ECR's planes, per account:
- the **registry API** (``/v2/…``: what ``docker push`` and imagectl's manifest and blob writes use): one HTTP
  server per account — a registry's host names its account (``<account>.dkr.ecr.<region>.amazonaws.com``; here a
  127.0.0.1 port per account, and imagectl.toml names the account with ``registry_id``) — served from a real local
  distribution registry behind it (one backing repository namespace per account);
- the **control-plane API** (``POST /`` with ``X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.*``, on any of the
  ports, like the one regional endpoint): the caller's account comes from its credentials (moto's STS: keys of an
  IAM user, or of an assumed role, belong to that account); the registry acted on is ``registryId`` — "If you do
  not specify a registry, the default registry is assumed" (API reference, every operation) — and a call on
  another account's repository is allowed only when that repository's policy grants the caller's account the
  action, as cross-account access is documented (resource-based policies; registry-level operations cannot be
  done across accounts). Image operations, scanning and authorization tokens are answered by the harness;
  repositories, mutability, repository policies, registry scanning configuration and lifecycle policies are
  kept in moto, in the target account (forwarded with that account's own credentials: moto itself ignores
  ``registryId``).

Each rule cites its source beside it. Where a rule comes from ECR's observed answers rather than its documentation
(error codes and bodies of the registry API, the referrer cascade), the comment says so and names the report.

What the harness does NOT prove: IAM identity policies and policy conditions (a repository policy is evaluated by
Effect, Principal account and Action only), real scanning and Inspector, when a lifecycle policy runs (tests call
``expire``), encryption, replication, pull-through caches, real quotas' values (lowered per test), token expiry,
and the exact bytes of undocumented answers.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import requests

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[2:]
IMAGE_CONFIG_TYPES = ("application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json")
DEFAULT_ACCOUNT = "123456789012"  # moto's account for credentials it does not know (e.g. "testing")
ACCOUNT = DEFAULT_ACCOUNT

# Operations on the registry as a whole: the caller's own registry only (no resource policy grants them to others;
# cross-account replication and pull-through cache use registry policies for ReplicateImage/CreateRepository only —
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions.html).
REGISTRY_LEVEL = {
    "GetAuthorizationToken",
    "CreateRepository",
    "DescribeRegistry",
    "GetRegistryScanningConfiguration",
    "PutRegistryScanningConfiguration",
    "GetRegistryPolicy",
    "PutRegistryPolicy",
    "DeleteRegistryPolicy",
}
# Registry API requests and the ECR action a repository policy must grant for each
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html: pull = BatchGetImage,
# GetDownloadUrlForLayer, BatchCheckLayerAvailability; push adds PutImage and the three layer-upload actions).
DATA_PLANE_ACTIONS = {
    ("GET", "manifests"): "ecr:BatchGetImage",
    ("HEAD", "manifests"): "ecr:BatchGetImage",
    ("GET", "blobs"): "ecr:GetDownloadUrlForLayer",
    ("HEAD", "blobs"): "ecr:BatchCheckLayerAvailability",
    ("PUT", "manifests"): "ecr:PutImage",
    ("DELETE", "manifests"): "ecr:BatchDeleteImage",
    ("GET", "tags"): "ecr:ListImages",
    ("POST", "uploads"): "ecr:InitiateLayerUpload",
    ("PATCH", "uploads"): "ecr:UploadLayerPart",
    ("PUT", "uploads"): "ecr:CompleteLayerUpload",
}


@dataclass
class Limits:
    """ECR service quotas (https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html): images per
    repository, 10,000 by default (adjustable); tags per image, 1,000 (not adjustable; "Adding tag … exceeds the
    maximum allowed number of tags per image which is '1000'"). Tests lower both so the quota paths run in seconds.
    Faults: ``throttle_puts`` answers that many manifest PUTs with 429 first; ``drop_answers`` commits that many
    manifest PUTs whose tag starts with ``drop_prefix`` and then closes the connection without an answer."""

    tags_per_image: int = 1000
    images_per_repository: int = 10_000
    throttle_puts: int = 0
    drop_answers: int = 0
    drop_prefix: str = ""
    latency: float = 0.0  # every request (both planes) waits uniform(0, latency) s first: a far-away region


@dataclass
class Repo:
    tags: dict[str, str] = field(default_factory=dict)  # tag → digest
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # digest → {pushed_at, size, media_type, subject, …}
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Scan:
    """What DescribeImageScanFindings answers for one image. ``completed``: the findings are final
    (``imageScanCompletedAt`` is present); under enhanced scan on push ECR has been observed answering COMPLETE
    before any findings exist (aws/aws-sdk#289): ``completed=False`` models that."""

    status: str
    counts: dict[str, int] = field(default_factory=dict)
    completed: bool = True
    enhanced: bool = False
    description: str = ""
    started: float = field(default_factory=time.time)


@dataclass
class ControlCall:
    operation: str
    caller: str
    registry_id: str | None  # as sent (None: not sent)
    target: str


class HarnessError(Exception):
    def __init__(self, status: int, code: str, message: str, aws_type: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.aws_type = status, code, message, aws_type


class DropAnswer(Exception):
    """Close the connection without answering (the request was carried out)."""


def ecr_wildcard(pattern: str, text: str) -> bool:
    """ECR's filters and tag patterns: '*' matches any characters, nothing else is special."""
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]").replace("?", "[?]"))


class Account:
    def __init__(self, harness: EcrHarness, account_id: str, credentials: dict[str, str]) -> None:
        self.id, self.credentials = account_id, credentials
        self.repos: dict[str, Repo] = {}
        self.lock = threading.Lock()
        self.server = harness.serve(lambda request: harness.handle(request, self))
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.host}"

    def repo(self, name: str) -> Repo:
        with self.lock:
            return self.repos.setdefault(name, Repo())


class EcrHarness:
    def __init__(
        self,
        moto_url: str,
        registry_url: str,
        region: str = "ap-northeast-2",
        limits: Limits | None = None,
        accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,),
    ) -> None:
        self.moto_url, self.registry_url, self.region = moto_url.rstrip("/"), registry_url.rstrip("/"), region
        self.limits = limits or Limits()
        self.calls: Counter[str] = Counter()
        self.control_calls: list[ControlCall] = []
        self.http = requests.Session()
        self.lock = threading.Lock()
        self._callers: dict[str, str] = {}  # access key id → account (from moto's STS)
        self._user_keys: dict[tuple[str, str], dict[str, str]] = {}
        self._tokens: dict[str, str] = {}  # registry-API password → the account it was issued to
        self.uploads: dict[str, int] = {}  # upload session → bytes received
        self.scans: dict[tuple[str, str, str], Scan] = {}  # (account, repository, digest) → scan
        self.scan_results: dict[str, Scan] = {}  # digest → what the next scan of it finds (tests set this)
        self._servers: list[ThreadingHTTPServer] = []
        self._s3_key = secrets.token_bytes(16)
        self.s3 = self.serve(self.handle_s3)
        self.s3_url = f"http://127.0.0.1:{self.s3.server_address[1]}"
        self.accounts: dict[str, Account] = {}
        for account in accounts:
            self.accounts[account] = Account(self, account, self._admin_credentials(account))
        first = self.accounts[accounts[0]]
        self.host, self.url = first.host, first.url

    # -- servers -------------------------------------------------------------------------------------------------

    def serve(self, handle: Any) -> ThreadingHTTPServer:
        harness = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                if harness.limits.latency:
                    time.sleep(random.uniform(0, harness.limits.latency))
                try:
                    handle(self)
                except DropAnswer:
                    self.close_connection = True
                    self.connection.shutdown(2)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        return server

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def account(self, account_id: str) -> Account:
        return self.accounts[account_id]

    # -- identities (moto's STS and IAM) ------------------------------------------------------------------------------

    def _client(self, service: str, credentials: dict[str, str]) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.moto_url, **credentials)

    def _admin_credentials(self, account: str) -> dict[str, str]:
        """Credentials acting in ``account``: moto's default keys for its default account, else an assumed role there."""
        base = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        if account == DEFAULT_ACCOUNT:
            return base
        assumed = self._client("sts", base).assume_role(RoleArn=f"arn:aws:iam::{account}:role/ecr-harness-admin", RoleSessionName="harness")
        c = assumed["Credentials"]
        return {
            "aws_access_key_id": c["AccessKeyId"],
            "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"],
        }

    def user_credentials(self, account: str, user: str = "imagectl") -> dict[str, str]:
        """Long-lived keys of an IAM user in ``account`` ("plain" credentials, as a profile would hold them)."""
        if (account, user) in self._user_keys:
            return self._user_keys[(account, user)]
        iam = self._client("iam", self.accounts[account].credentials)
        try:
            iam.create_user(UserName=user)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self._user_keys[(account, user)] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        return self._user_keys[(account, user)]

    def caller_of(self, request: BaseHTTPRequestHandler) -> str:
        """The account whose credentials signed a control-plane request (SigV4 ``Credential=<access key>/…``)."""
        match = re.search(r"Credential=([^/,\s]+)/", request.headers.get("Authorization", ""))
        if not match:
            raise HarnessError(
                400, "MissingAuthenticationTokenException", "Missing Authentication Token", "MissingAuthenticationTokenException"
            )
        key = match.group(1)
        if key not in self._callers:
            identity = self._client("sts", {"aws_access_key_id": key, "aws_secret_access_key": "x"}).get_caller_identity()
            self._callers[key] = identity["Account"]
        return self._callers[key]

    # -- moto (the control plane's repository facts), in a given account ----------------------------------------------

    def _moto(self, operation: str, body: dict[str, Any], account: str) -> tuple[int, dict[str, Any]]:
        credentials = self.accounts[account].credentials
        headers = {
            "X-Amz-Target": TARGET_PREFIX + operation,
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={credentials['aws_access_key_id']}/20260101/{self.region}/ecr/aws4_request, "
            "SignedHeaders=host, Signature=x",
        }
        if credentials.get("aws_session_token"):
            headers["X-Amz-Security-Token"] = credentials["aws_session_token"]
        response = self.http.post(self.moto_url + "/", data=json.dumps(body), headers=headers, timeout=30)
        return response.status_code, (response.json() if response.content else {})

    def repository(self, name: str, account: str = DEFAULT_ACCOUNT) -> dict[str, Any] | None:
        status, body = self._moto("DescribeRepositories", {"repositoryNames": [name]}, account)
        if status != 200:
            return None
        found = body.get("repositories") or []
        return found[0] if found else None

    def policy(self, name: str, account: str) -> dict[str, Any]:
        status, body = self._moto("GetRepositoryPolicy", {"repositoryName": name}, account)
        if status != 200:
            return {}
        try:
            return json.loads(body.get("policyText") or "{}")
        except ValueError:
            return {}

    def scanning_configuration(self, account: str) -> dict[str, Any]:
        _, body = self._moto("GetRegistryScanningConfiguration", {}, account)
        return body.get("scanningConfiguration") or {"scanType": "BASIC", "rules": []}

    # -- access across accounts ---------------------------------------------------------------------------------------

    def allowed(self, caller: str, account: str, repository: str, action: str) -> bool:
        """Does ``repository``'s policy in ``account`` grant ``caller``'s account ``action``? Deny wins over Allow
        (IAM policy evaluation logic, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
        Principals are matched at account granularity; Conditions are not evaluated (see the module docstring)."""
        if caller == account:
            return True
        statements = self.policy(repository, account).get("Statement") or []
        if isinstance(statements, dict):
            statements = [statements]
        decision = False
        for statement in statements:
            if not isinstance(statement, dict) or not self._principal(statement.get("Principal"), caller):
                continue
            actions = statement.get("Action") or []
            actions = [actions] if isinstance(actions, str) else actions
            if not any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in actions):
                continue
            if statement.get("Effect") == "Deny":
                return False
            decision = decision or statement.get("Effect") == "Allow"
        return decision

    @staticmethod
    def _principal(principal: Any, caller: str) -> bool:
        if principal == "*":
            return True
        values = principal.get("AWS") if isinstance(principal, dict) else None
        values = [values] if isinstance(values, str) else values or []
        return any(v == "*" or v == caller or re.fullmatch(rf"arn:aws:iam::{caller}:\S+", str(v)) for v in values)

    def _denied(self, caller: str, account: str, repository: str | None, action: str) -> HarnessError:
        resource = f"arn:aws:ecr:{self.region}:{account}:" + (f"repository/{repository}" if repository else "registry")
        return HarnessError(
            400,
            "AccessDeniedException",
            f"User: arn:aws:sts::{caller}:assumed-role/caller is not authorized to perform: {action} on resource: {resource} "
            f"because no resource-based policy allows the {action} action",
            "AccessDeniedException",
        )

    # -- rules for a manifest (both planes) ---------------------------------------------------------------------------

    def check_manifest(self, account: Account, name: str, raw: bytes, content_type: str) -> tuple[dict[str, Any], str]:
        # The registry API answers an unacceptable manifest with 405 UNSUPPORTED (observed: opcr-io/policy#149, a PUT
        # answered "405 Method Not Allowed" {"errors":[{"code":"UNSUPPORTED","message":"Invalid parameter at
        # 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'"}]}; chainguard-dev/apko#450).
        # Media types with parameters are refused (aws/containers-roadmap#2306: "application/…+json;version=0.2").
        if ";" in content_type:
            raise HarnessError(
                405,
                "UNSUPPORTED",
                f"Invalid parameter at 'imageManifestMediaType': '{content_type}' is not supported",
                "InvalidParameterException",
            )
        if content_type not in MANIFEST_TYPES:
            raise HarnessError(405, "UNSUPPORTED", f'Unsupported manifest type: "{content_type}"', "InvalidParameterException")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise HarnessError(
                405,
                "UNSUPPORTED",
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'",
                "InvalidParameterException",
            ) from None
        # A manifest without a top-level mediaType is "Invalid JSON syntax" (containers/image#584; the PutImage API
        # reference: "If you push an image manifest that does not contain the mediaType field, you must specify
        # the imageManifestMediaType"; on the registry API there is no such field).
        if not isinstance(doc, dict) or doc.get("mediaType") != content_type:
            raise HarnessError(
                405,
                "UNSUPPORTED",
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'",
                "InvalidParameterException",
            )
        repo = account.repo(name)
        if content_type in INDEX_TYPES:
            children = doc.get("manifests") or []
            missing = [c.get("digest") for c in children if c.get("digest") not in repo.images]
            if missing:  # PutImage: ReferencedImagesNotFoundException ("The manifest list is referencing an image that does not exist")
                raise HarnessError(
                    400, "MANIFEST_BLOB_UNKNOWN", f"referenced image {missing[0]} not found", "ReferencedImagesNotFoundException"
                )
        else:
            layers = doc.get("layers")
            # "Image has to have at least 1 layer" (werf/werf#2544; the OCI image spec 1.1 added the empty descriptor for this).
            if not isinstance(layers, list) or not layers:
                raise HarnessError(
                    405,
                    "UNSUPPORTED",
                    "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Image has to have at least 1 layer'",
                    "InvalidParameterException",
                )
            descriptors = [doc.get("config") or {}, *layers]
            for media in [d.get("mediaType", "") for d in descriptors] + ([doc.get("artifactType")] if doc.get("subject") else []):
                if ";" in str(media):  # aws/containers-roadmap#2306
                    raise HarnessError(
                        405, "UNSUPPORTED", f"Invalid parameter: media type '{media}' is not supported", "InvalidParameterException"
                    )
            for descriptor in descriptors:
                digest = descriptor.get("digest", "")
                if not self._blob_exists(account, name, digest):  # PutImage: LayersNotFoundException
                    raise HarnessError(
                        400, "BLOB_UNKNOWN", f"Layer {digest} does not exist in the '{name}' repository", "LayersNotFoundException"
                    )
        return doc, "sha256:" + hashlib.sha256(raw).hexdigest()

    def _backing(self, account: Account | str, name: str) -> str:
        account_id = account if isinstance(account, str) else account.id
        return f"{self.registry_url}/v2/a{account_id}/{name}"

    def _blob_exists(self, account: Account, name: str, digest: str) -> bool:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", str(digest)):
            return False
        return self.http.head(f"{self._backing(account, name)}/blobs/{digest}", timeout=30).status_code == 200

    def _repo_facts(self, account: Account, name: str) -> dict[str, Any]:
        facts = self.repository(name, account.id)
        if facts is None:
            raise HarnessError(
                404,
                "NAME_UNKNOWN",
                f"The repository with name '{name}' does not exist in the registry with id '{account.id}'",
                "RepositoryNotFoundException",
            )
        return facts

    def tag_is_immutable(self, repo: dict[str, Any], tag: str) -> bool:
        """Image tag mutability (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html;
        PutImageTagMutability API): IMMUTABLE refuses every existing tag; *_WITH_EXCLUSION flips it for tags matching
        one of up to 5 wildcard filters."""
        mode = repo.get("imageTagMutability", "MUTABLE")
        filters = [f.get("filter", "") for f in repo.get("imageTagMutabilityExclusionFilters") or []]
        excluded = any(ecr_wildcard(f, tag) for f in filters)
        if mode == "IMMUTABLE":
            return True
        if mode == "IMMUTABLE_WITH_EXCLUSION":
            return not excluded
        if mode == "MUTABLE_WITH_EXCLUSION":
            return excluded
        return False

    def put_manifest(self, name: str, reference: str, raw: bytes, content_type: str, account: Account | None = None) -> str:
        account = account or self.accounts[DEFAULT_ACCOUNT]
        repo_facts = self._repo_facts(account, name)
        doc, digest = self.check_manifest(account, name, raw, content_type)
        repo = account.repo(name)
        with repo.lock:  # ECR creates a tag atomically: of two writers of one immutable tag, one gets an error
            tag = None if reference.startswith("sha256:") else reference
            if tag is not None and tag in repo.tags and self.tag_is_immutable(repo_facts, tag):
                # Registry API answer (observed, e.g. osscontainertools/kaniko#204): TAG_INVALID, also for identical content.
                raise HarnessError(
                    400,
                    "TAG_INVALID",
                    f"The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten because "
                    "the tag is immutable.",
                    "ImageTagAlreadyExistsException",
                )
            if self.limits.throttle_puts > 0:
                self.limits.throttle_puts -= 1
                raise HarnessError(429, "TOOMANYREQUESTS", "Rate exceeded", "ThrottlingException")
            new_image = digest not in repo.images
            if new_image and len(repo.images) >= self.limits.images_per_repository:
                # Service quota "Images per repository". ECR documents the quota, not the registry API's answer to it;
                # the harness answers like the tags-per-image quota below.
                raise HarnessError(
                    403,
                    "DENIED",
                    f"Adding an image to the repository '{name}' exceeds the maximum allowed number of images per repository which is "
                    f"'{self.limits.images_per_repository}' (service quota: Images per repository)",
                    "LimitExceededException",
                )
            if tag is not None:
                tags_on_image = sum(1 for d in repo.tags.values() if d == digest) + (0 if repo.tags.get(tag) == digest else 1)
                if tags_on_image > self.limits.tags_per_image:
                    raise HarnessError(
                        403,
                        "DENIED",
                        f"Adding tag '{tag}' to an image in the repository with name '{name}' in registry with id "
                        f"'{account.id}' exceeds the "
                        f"maximum allowed number of tags per image which is '{self.limits.tags_per_image}'",
                        "LimitExceededException",
                    )
            response = self.http.put(
                f"{self._backing(account, name)}/manifests/{reference}", data=raw, headers={"Content-Type": content_type}, timeout=60
            )
            if response.status_code not in (200, 201):
                raise HarnessError(response.status_code, "MANIFEST_INVALID", f"backing registry: {response.text[:200]}")
            size = len(raw) + sum(int(d.get("size", 0)) for d in ([doc.get("config") or {}] + list(doc.get("layers") or [])))
            subject = doc.get("subject") if isinstance(doc.get("subject"), dict) else None
            repo.images.setdefault(
                digest,
                {
                    "pushed_at": time.time(),
                    "size": size,
                    "media_type": content_type,
                    "artifact_type": doc.get("artifactType"),
                    "subject": subject.get("digest") if subject else None,
                    "config_type": (doc.get("config") or {}).get("mediaType"),
                },
            )
            if tag is not None:
                repo.tags[tag] = digest
        if new_image:
            self._scan_on_push(account, name, digest, repo_facts)
        return digest

    def delete_image(self, name: str, digest: str, account: Account | None = None) -> list[str]:
        """Delete an image and, with it, every artifact whose subject it is (recursively): the digests deleted.
        Deleting a subject also deletes its referrers (as reported in issue 20 of this project; ECR documents
        deleting referrers with oras, https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-artifact-delete.html,
        not the cascade itself — modelled because a lifecycle rule that expires an image must not be assumed to
        leave its records behind)."""
        account = account or self.accounts[DEFAULT_ACCOUNT]
        repo = account.repo(name)
        with repo.lock:
            if digest not in repo.images:
                return []
            doomed, queue = [], [digest]
            while queue:
                current = queue.pop()
                if current in doomed or current not in repo.images:
                    continue
                doomed.append(current)
                queue += [d for d, info in repo.images.items() if info.get("subject") == current]
            for gone in doomed:
                self.http.delete(f"{self._backing(account, name)}/manifests/{gone}", timeout=30)
                del repo.images[gone]
                for tag in [t for t, d in repo.tags.items() if d == gone]:
                    del repo.tags[tag]
                self.scans.pop((account.id, name, gone), None)
        return doomed

    # -- scanning -------------------------------------------------------------------------------------------------------

    def _scanning_for(self, account: Account, name: str, repo_facts: dict[str, Any]) -> str | None:
        """How ECR scans pushes to ``name``: the registry scanning configuration's rules
        (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning.html; PutRegistryScanningConfiguration),
        and, under basic scanning only, the deprecated repository-level scanOnPush."""
        config = self.scanning_configuration(account.id)
        enhanced = config.get("scanType") == "ENHANCED"
        for rule in config.get("rules") or []:
            if any(ecr_wildcard(f.get("filter", ""), name) for f in rule.get("repositoryFilters") or []):
                frequency = rule.get("scanFrequency")
                if enhanced and frequency == "CONTINUOUS_SCAN":
                    return "enhanced-continuous"
                if frequency == "SCAN_ON_PUSH":
                    return "enhanced-on-push" if enhanced else "basic-on-push"
        if not enhanced and (repo_facts.get("imageScanningConfiguration") or {}).get("scanOnPush"):
            return "basic-on-push"
        return None

    def _scan_on_push(self, account: Account, name: str, digest: str, repo_facts: dict[str, Any]) -> None:
        info = account.repo(name).images[digest]
        how = self._scanning_for(account, name, repo_facts)
        if how is None:
            return
        if info.get("config_type") not in IMAGE_CONFIG_TYPES:
            self.scans[(account.id, name, digest)] = Scan(
                "UNSUPPORTED_IMAGE", completed=False, description="The image is not supported for scanning."
            )
            return
        planned = self.scan_results.get(digest)
        if planned is not None:
            self.scans[(account.id, name, digest)] = Scan(**{**vars(planned), "started": time.time()})
            return
        status = "ACTIVE" if how == "enhanced-continuous" else "COMPLETE"
        self.scans[(account.id, name, digest)] = Scan(status, enhanced=how.startswith("enhanced"))

    def set_scan(self, account: str, name: str, digest: str, scan: Scan) -> None:
        self.scans[(account, name, digest)] = scan

    # -- lifecycle policies ---------------------------------------------------------------------------------------------

    @staticmethod
    def validate_lifecycle_policy(text: str) -> None:
        """PutLifecyclePolicy's documented rules (https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html
        and LifecyclePolicies.html); moto accepts all of these."""

        def invalid(reason: str) -> HarnessError:
            return HarnessError(
                400,
                "InvalidParameterException",
                f"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: '{reason}'",
                "InvalidParameterException",
            )

        try:
            policy = json.loads(text)
        except ValueError:
            raise invalid("Lifecycle policy validation failure: invalid JSON") from None
        rules = policy.get("rules") if isinstance(policy, dict) else None
        if not isinstance(rules, list) or not rules:
            raise invalid("Lifecycle policy must have at least one rule")
        priorities = [r.get("rulePriority") for r in rules if isinstance(r, dict)]
        if len(priorities) != len(rules) or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in priorities):
            raise invalid("rulePriority is required: a whole number of at least 1")
        if len(set(priorities)) != len(priorities):  # "you must give them each a unique value for rulePriority"
            raise invalid("Lifecycle policy rules must have unique rulePriority values")
        untagged = 0
        for rule in rules:
            selection = rule.get("selection") or {}
            status = selection.get("tagStatus")
            prefixes, patterns = selection.get("tagPrefixList"), selection.get("tagPatternList")
            if status not in ("tagged", "untagged", "any"):
                raise invalid("tagStatus must be tagged, untagged or any")
            if status == "tagged" and not (
                prefixes or patterns
            ):  # "If you specify tagged, then you must also specify a tagPrefixList value or a tagPatternList value"
                raise invalid("tagPrefixList or tagPatternList is required when tagStatus is tagged")
            if status != "tagged" and (prefixes or patterns):  # "If you specify untagged, then you must omit both"
                raise invalid("tagPrefixList and tagPatternList apply only to tagStatus tagged")
            if prefixes and patterns:  # tagPrefixList "Required: yes, if tagStatus is set to tagged and tagPatternList isn't specified"
                raise invalid("a rule cannot have both tagPrefixList and tagPatternList")
            for pattern in patterns or []:
                if str(pattern).count("*") > 4:  # "You can use up to four wildcards (*) per string"
                    raise invalid(f"tag pattern {pattern} has more than 4 wildcards")
            if status == "untagged":
                untagged += 1
            if status == "any" and rule.get("rulePriority") != max(priorities):  # "must have the highest value for rulePriority"
                raise invalid("a rule with tagStatus any must have the highest rulePriority")
            count_type, unit = selection.get("countType"), selection.get("countUnit")
            if count_type == "sinceImagePushed" and unit != "days":  # countUnit "Required: yes, only if countType is sinceImagePushed"
                raise invalid("countUnit days is required with countType sinceImagePushed")
            if count_type == "imageCountMoreThan" and unit is not None:  # "…you should not specify countUnit"
                raise invalid("countUnit must not be set with countType imageCountMoreThan")
            if count_type not in ("imageCountMoreThan", "sinceImagePushed"):
                raise invalid("countType must be imageCountMoreThan or sinceImagePushed")
            number = selection.get("countNumber")
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise invalid("countNumber must be a positive whole number")
            if (rule.get("action") or {}).get("type") != "expire":
                raise invalid("action type must be expire")
        if untagged > 1:  # LifecyclePolicies.html: "Only one rule is allowed to select untagged images."
            raise invalid("Only one rule is allowed to select untagged images")

    def expire(self, name: str, account: str = DEFAULT_ACCOUNT, now: float | None = None) -> list[str]:
        """Run the repository's lifecycle policy once, as ECR evaluates it (LifecyclePolicies.html, "How lifecycle
        policies work"): rules in rulePriority order; an image selected by a rule is never expired by a rule of lower
        priority; imageCountMoreThan keeps the newest countNumber selected images by push time; sinceImagePushed
        expires those older than countNumber days. Expired images are deleted with their referrers. Returns the
        digests deleted."""
        status, body = self._moto("GetLifecyclePolicy", {"repositoryName": name}, account)
        if status != 200:
            return []
        policy = json.loads(body.get("lifecyclePolicyText") or "{}")
        target = self.accounts[account]
        repo = target.repo(name)
        now = now or time.time()
        tags_of: dict[str, list[str]] = {d: [] for d in repo.images}
        for tag, digest in repo.tags.items():
            tags_of.setdefault(digest, []).append(tag)
        matched: set[str] = set()
        expired: list[str] = []
        for rule in sorted(policy.get("rules") or [], key=lambda r: r["rulePriority"]):
            selection = rule["selection"]
            chosen = [d for d, tags in tags_of.items() if self._selects(selection, tags)]
            chosen.sort(key=lambda d: repo.images[d]["pushed_at"], reverse=True)
            for position, digest in enumerate(chosen):
                if digest in matched:
                    continue
                if selection["countType"] == "imageCountMoreThan":
                    doomed = position >= selection["countNumber"]
                else:
                    doomed = now - repo.images[digest]["pushed_at"] > selection["countNumber"] * 86_400
                if doomed:
                    expired.append(digest)
            matched.update(chosen)
        deleted: list[str] = []
        for digest in expired:
            deleted += self.delete_image(name, digest, target)
        return deleted

    @staticmethod
    def _selects(selection: dict[str, Any], tags: list[str]) -> bool:
        status = selection["tagStatus"]
        if status == "any":
            return True
        if status == "untagged":
            return not tags
        if not tags:
            return False
        if selection.get("tagPrefixList"):  # any of the prefixes ("a tag prefix list of prod … selects")
            return all(any(t.startswith(p) for t in tags) for p in selection["tagPrefixList"])
        return all(
            any(ecr_wildcard(p, t) for t in tags) for p in selection.get("tagPatternList") or []
        )  # "only images with all specified tags"

    # -- HTTP -----------------------------------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, account: Account) -> None:
        try:
            if request.command == "POST" and request.path == "/":
                self.control_plane(request)
            elif request.path.startswith("/v2"):
                self.data_plane(request, account)
            else:
                self._send(request, 404, b"{}")
        except HarnessError as exc:
            if request.path == "/" and request.command == "POST":
                body = json.dumps({"__type": exc.aws_type or exc.code, "message": exc.message}).encode()
                self._send(request, 400, body, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": exc.aws_type or exc.code})
            else:
                self._send(request, exc.status, json.dumps({"errors": [{"code": exc.code, "message": exc.message}]}).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        request.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for key, value in headers.items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)

    def _body(self, request: BaseHTTPRequestHandler) -> bytes:
        length = int(request.headers.get("Content-Length") or 0)
        if length:
            return request.rfile.read(length)
        if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(request.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    request.rfile.readline()
                    break
                chunks.append(request.rfile.read(size))
                request.rfile.readline()
            return b"".join(chunks)
        return b""

    # -- the registry API ---------------------------------------------------------------------------------------------

    def _caller_of_token(self, request: BaseHTTPRequestHandler) -> str | None:
        """``docker login -u AWS -p <token>``: Basic auth with user AWS and a GetAuthorizationToken password
        (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html: "The authorization token is valid
        for 12 hours" and can be used for any registry the IAM principal has access to)."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, password = base64.b64decode(header[6:]).decode().split(":", 1)
        except (ValueError, UnicodeDecodeError):
            return None
        return self._tokens.get(password) if user == "AWS" else None

    def data_plane(self, request: BaseHTTPRequestHandler, account: Account) -> None:
        body = self._body(request) if request.command in ("PUT", "POST", "PATCH") else b""
        caller = self._caller_of_token(request)
        if caller is None:
            self._send(
                request,
                401,
                b'{"errors":[{"code":"DENIED","message":"Not Authorized"}]}',
                {"WWW-Authenticate": f'Basic realm="https://{account.host}/",service="ecr.amazonaws.com"'},
            )
            return
        split = urlsplit(request.path)
        path = split.path
        if path in ("/v2", "/v2/"):
            self._send(request, 200, b"{}")
            return
        match = re.fullmatch(r"/v2/(?P<name>.+)/(?P<kind>tags)/(?P<ref>list)", path) or re.fullmatch(
            r"/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+|uploads/.*)", path
        )
        if not match:
            raise HarnessError(404, "NAME_UNKNOWN", "unknown path")
        name, kind, ref = match.group("name"), match.group("kind"), match.group("ref")
        action_kind = "uploads" if kind == "blobs" and ref.startswith("uploads") else kind
        self.calls[f"registry {request.command} {kind}"] += 1
        action = DATA_PLANE_ACTIONS.get((request.command, action_kind), "ecr:BatchGetImage")
        if not self.allowed(caller, account.id, name, action):
            raise HarnessError(403, "DENIED", self._denied(caller, account.id, name, action).message)
        self._repo_facts(account, name)
        if kind == "manifests" and request.command == "PUT":
            digest = self.put_manifest(name, ref, body, request.headers.get("Content-Type", "").strip(), account)
            if self.limits.drop_answers > 0 and ref.startswith(self.limits.drop_prefix):
                self.limits.drop_answers -= 1
                raise DropAnswer()
            self._send(request, 201, b"", {"Docker-Content-Digest": digest, "Location": f"/v2/{name}/manifests/{digest}"})
            return
        if kind == "manifests" and request.command in ("GET", "HEAD") and not ref.startswith("sha256:"):
            if ref not in account.repo(name).tags:  # a tag BatchDeleteImage removed (the backing registry still has it)
                raise HarnessError(404, "MANIFEST_UNKNOWN", f"manifest unknown: {ref}")
        if kind == "manifests" and request.command == "DELETE":
            if ref.startswith("sha256:"):
                self.delete_image(name, ref, account)
            self._send(request, 202, b"")
            return
        if kind == "tags":
            self._tags_list(request, account, name, parse_qs(split.query))
            return
        if kind == "blobs" and ref.startswith("uploads"):
            self._upload(request, account, name, ref, body)
            return
        if kind == "blobs" and request.command == "GET":
            # Layer downloads are redirected to a pre-signed S3 URL on another host (GetDownloadUrlForLayer: "Retrieves
            # the pre-signed Amazon S3 download URL corresponding to an image layer"; docker follows the redirect).
            if not self._blob_exists(account, name, ref):
                raise HarnessError(404, "BLOB_UNKNOWN", f"blob {ref} unknown")
            expires = str(int(time.time()) + 3600)
            key = f"a{account.id}/{name}/{ref}"
            signature = hmac.new(self._s3_key, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()
            location = (
                f"{self.s3_url}/ecr-layers/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={expires}&X-Amz-Signature={signature}"
            )
            self._send(request, 307, b"", {"Location": location})
            return
        self._forward(request, account, body)

    def _tags_list(self, request: BaseHTTPRequestHandler, account: Account, name: str, query: dict[str, list[str]]) -> None:
        """Tag listing: ECR pages it with Link headers (genuinetools/reg#206: 100 per page by default) and refuses
        ``n`` above 1,000 (observed: google/go-containerregistry#681, renovatebot/renovate#3800 — "UNSUPPORTED:
        Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal
        to 1000'"; the HTTP status is not documented)."""
        size = int((query.get("n") or ["100"])[0])
        if size > 1000:
            raise HarnessError(
                400,
                "UNSUPPORTED",
                "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'",
            )
        tags = sorted(account.repo(name).tags)
        last = (query.get("last") or [""])[0]
        page = [t for t in tags if t > last][:size]
        headers = {}
        if page and page[-1] != tags[-1]:
            headers["Link"] = f'</v2/{name}/tags/list?n={size}&last={page[-1]}>; rel="next"'
        self._send(request, 200, json.dumps({"name": name, "tags": page}).encode(), headers)

    def _upload(self, request: BaseHTTPRequestHandler, account: Account, name: str, ref: str, body: bytes) -> None:
        session = ref[len("uploads/") :].strip("/")
        with self.lock:
            if request.command == "PATCH":
                self.uploads[session] = self.uploads.get(session, 0) + len(body)
            if request.command == "PUT" and self.uploads.pop(session, 0) + len(body) == 0:
                # CompleteLayerUpload: EmptyUploadException, "The upload … cannot be completed because it does not have
                # any parts" (ECR rejects zero-byte blobs; devcontainers/cli#814).
                raise HarnessError(
                    400, "BLOB_UPLOAD_INVALID", "The upload cannot be completed because it does not have any parts", "EmptyUploadException"
                )
        self._forward(request, account, body)

    def _forward(self, request: BaseHTTPRequestHandler, account: Account, body: bytes) -> None:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "authorization", "content-length", "transfer-encoding", "connection")
        }
        path = request.path.replace("/v2/", f"/v2/a{account.id}/", 1)
        response = self.http.request(
            request.command, self.registry_url + path, data=body or None, headers=headers, stream=True, allow_redirects=False, timeout=300
        )
        request.send_response(response.status_code)
        payload = b"" if request.command == "HEAD" else response.raw.read(decode_content=False)
        for key, value in response.headers.items():
            if key.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            if key.lower() == "location":
                value = value.replace(self.registry_url, account.url).replace(f"/v2/a{account.id}/", "/v2/")
            request.send_header(key, value)
        length = response.headers.get("Content-Length") if request.command == "HEAD" else str(len(payload))
        request.send_header("Content-Length", length or "0")
        request.end_headers()
        if payload:
            request.wfile.write(payload)

    # -- the pre-signed S3 download URL ------------------------------------------------------------------------------------

    def handle_s3(self, request: BaseHTTPRequestHandler) -> None:
        """S3 refuses a request that carries both a pre-signed query and an Authorization header ("Only one auth
        mechanism allowed", InvalidArgument: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html)
        — so a client that sends the registry's credentials on to the redirect's host fails here, as it would on S3."""
        split = urlsplit(request.path)
        query = parse_qs(split.query)
        self.calls["s3 GET"] += 1
        if request.headers.get("Authorization"):
            self.calls["s3 credentials received"] += 1
            body = (
                b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                b"parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>"
            )
            self._send(request, 400, body, {"Content-Type": "application/xml"})
            return
        key = split.path.removeprefix("/ecr-layers/")
        expires = (query.get("X-Amz-Expires") or ["0"])[0]
        expected = hmac.new(self._s3_key, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()
        if (query.get("X-Amz-Signature") or [""])[0] != expected or int(expires) < time.time():
            self._send(request, 403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"})
            return
        repository, digest = key.rsplit("/", 1)
        response = self.http.get(f"{self.registry_url}/v2/{repository}/blobs/{digest}", timeout=300)
        self._send(request, response.status_code, response.content, {"Content-Type": "application/octet-stream"})

    # -- the control-plane API ----------------------------------------------------------------------------------------------

    def control_plane(self, request: BaseHTTPRequestHandler) -> None:
        body = self._body(request)
        operation = request.headers.get("X-Amz-Target", "").removeprefix(TARGET_PREFIX)
        self.calls[f"api {operation}"] += 1
        params = json.loads(body or b"{}")
        caller = self.caller_of(request)
        target = str(params.get("registryId") or caller)
        self.control_calls.append(ControlCall(operation, caller, params.get("registryId"), target))
        if target not in self.accounts:
            raise self._denied(caller, target, params.get("repositoryName"), f"ecr:{operation}")
        if target != caller and operation != "GetAuthorizationToken":
            repository = params.get("repositoryName")
            if operation in REGISTRY_LEVEL or not repository or not self.allowed(caller, target, repository, f"ecr:{operation}"):
                raise self._denied(caller, target, repository, f"ecr:{operation}")
        handler = getattr(self, f"api_{operation}", None)
        if handler is None:  # repositories, mutability, policies, scanning configuration, lifecycle: moto's, in the target account
            forward = {k: v for k, v in params.items() if k != "registryId"}
            status, answer = self._moto(operation, forward, target)
            self._send(request, status, json.dumps(answer).encode(), {"Content-Type": "application/x-amz-json-1.1"})
            return
        result = handler(self.accounts[target], params, caller)
        self._send(request, 200, json.dumps(result, default=str).encode(), {"Content-Type": "application/x-amz-json-1.1"})

    def api_GetAuthorizationToken(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        """A token for the caller, usable on any registry the caller may access (registryIds is deprecated)."""
        password = f"{caller}-{secrets.token_hex(16)}"
        self._tokens[password] = caller
        token = base64.b64encode(f"AWS:{password}".encode()).decode()
        return {
            "authorizationData": [
                {"authorizationToken": token, "expiresAt": time.time() + 43_200, "proxyEndpoint": self.accounts[caller].url}
            ]
        }

    def api_PutLifecyclePolicy(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        self._repo_or_raise(account, params)
        self.validate_lifecycle_policy(params.get("lifecyclePolicyText") or "")
        forward = {k: v for k, v in params.items() if k != "registryId"}
        status, answer = self._moto("PutLifecyclePolicy", forward, account.id)
        if status != 200:
            raise HarnessError(400, str(answer.get("__type")), str(answer.get("message")), str(answer.get("__type")))
        return answer

    def _repo_or_raise(self, account: Account, params: dict[str, Any]) -> tuple[str, Repo]:
        name = params.get("repositoryName", "")
        if self.repository(name, account.id) is None:
            raise HarnessError(
                400,
                "RepositoryNotFoundException",
                f"The repository with name '{name}' does not exist in the registry with id '{account.id}'",
                "RepositoryNotFoundException",
            )
        return name, account.repo(name)

    @staticmethod
    def _find(repo: Repo, image_id: dict[str, str]) -> str | None:
        digest = image_id.get("imageDigest")
        tag = image_id.get("imageTag")
        if tag is not None:
            found = repo.tags.get(tag)
            return found if digest is None or found == digest else None
        return digest if digest in repo.images else None

    def api_BatchGetImage(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        name, repo = self._repo_or_raise(account, params)
        ids = params.get("imageIds") or []
        if len(ids) > 100:  # API reference: imageIds, "Array Members: Minimum number of 1 item. Maximum number of 100 items."
            raise HarnessError(400, "InvalidParameterException", "imageIds has more than 100 members", "InvalidParameterException")
        images, failures = [], []
        for image_id in ids:
            digest = self._find(repo, image_id)
            if digest is None:
                failures.append({"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"})
                continue
            raw = self.http.get(
                f"{self._backing(account, name)}/manifests/{digest}", headers={"Accept": ", ".join(MANIFEST_TYPES)}, timeout=30
            )
            info = repo.images.get(digest)
            if raw.status_code == 404 or info is None:  # deleted since _find (a concurrent BatchDeleteImage)
                failures.append({"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"})
                continue
            raw.raise_for_status()
            images.append(
                {
                    "registryId": account.id,
                    "repositoryName": name,
                    "imageId": {"imageDigest": digest, **({"imageTag": image_id["imageTag"]} if "imageTag" in image_id else {})},
                    "imageManifest": raw.text,
                    "imageManifestMediaType": info["media_type"],
                }
            )
        return {"images": images, "failures": failures}

    def _details(self, account: Account, name: str, repo: Repo, digest: str) -> dict[str, Any]:
        info = repo.images[digest]
        detail = {
            "registryId": account.id,
            "repositoryName": name,
            "imageDigest": digest,
            "imageTags": sorted(t for t, d in repo.tags.items() if d == digest),
            "imageSizeInBytes": info["size"],
            "imagePushedAt": info["pushed_at"],
            "imageManifestMediaType": info["media_type"],
        }
        if info.get("artifact_type"):
            detail["artifactMediaType"] = info["artifact_type"]
        return detail

    @staticmethod
    def _page(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
        size = min(int(params.get("maxResults") or 100), 1000)  # DescribeImages/ListImages: maxResults 1–1000
        start = int(params.get("nextToken") or 0)
        end = start + size
        return items[start:end], (str(end) if end < len(items) else None)

    def api_DescribeImages(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        name, repo = self._repo_or_raise(account, params)
        if params.get("imageIds"):
            digests = []
            for image_id in params["imageIds"]:
                digest = self._find(repo, image_id)
                if digest is None:  # DescribeImages fails as a whole for an image that is not there
                    raise HarnessError(
                        400, "ImageNotFoundException", f"The image with imageId {image_id} does not exist", "ImageNotFoundException"
                    )
                digests.append(digest)
            return {"imageDetails": [self._details(account, name, repo, d) for d in digests]}
        tagged = (params.get("filter") or {}).get("tagStatus")
        digests = sorted(repo.images, key=lambda d: repo.images[d]["pushed_at"])
        if tagged == "TAGGED":
            digests = [d for d in digests if d in repo.tags.values()]
        page, token = self._page(digests, params)
        result: dict[str, Any] = {"imageDetails": [self._details(account, name, repo, d) for d in page]}
        if token:
            result["nextToken"] = token
        return result

    def api_ListImages(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        _, repo = self._repo_or_raise(account, params)
        ids = [{"imageDigest": d, "imageTag": t} for t, d in sorted(repo.tags.items())]
        page, token = self._page(ids, params)
        result: dict[str, Any] = {"imageIds": page}
        if token:
            result["nextToken"] = token
        return result

    def api_BatchDeleteImage(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        """"You can remove a tag from an image by specifying the image's tag in your request. When you remove the last
        tag from an image, the image is deleted from your repository. You can completely delete an image (and all of
        its tags) by specifying the image's digest" (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/
        API_BatchDeleteImage.html); a tag given with a digest it does not name fails with ImageTagDoesNotMatchDigest
        (ImageFailure.failureCode, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageFailure.html)."""
        name, repo = self._repo_or_raise(account, params)
        deleted, failures = [], []
        for image_id in params.get("imageIds") or []:
            tag = image_id.get("imageTag")
            if tag is not None:
                with repo.lock:
                    current = repo.tags.get(tag)
                    others = [t for t, d in repo.tags.items() if d == current and t != tag]
                    if current is not None and image_id.get("imageDigest") not in (None, current):
                        failures.append(
                            {"imageId": image_id, "failureCode": "ImageTagDoesNotMatchDigest", "failureReason": "Invalid tag for digest"}
                        )
                        continue
                    if current is not None and others:  # only the tag goes: the image keeps its other tags
                        del repo.tags[tag]
                        deleted.append({"imageDigest": current, "imageTag": tag})
                        continue
            digest = self._find(repo, image_id)
            gone = self.delete_image(name, digest, account) if digest else []
            if not gone:
                failures.append({"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"})
            else:
                deleted += [{"imageDigest": d} for d in gone]
        return {"imageIds": deleted, "failures": failures}

    def api_PutImage(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        name, _ = self._repo_or_raise(account, params)
        raw = params.get("imageManifest", "").encode()
        content_type = params.get("imageManifestMediaType") or (json.loads(raw or b"{}").get("mediaType") if raw else "")
        tag = params.get("imageTag")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if params.get("imageDigest") and params["imageDigest"] != digest:  # PutImage: ImageDigestDoesNotMatchException
            raise HarnessError(
                400,
                "ImageDigestDoesNotMatchException",
                "The specified image digest does not match the digest that Amazon ECR calculated",
                "ImageDigestDoesNotMatchException",
            )
        repo = account.repo(name)
        if tag and repo.tags.get(tag) == digest:
            # PutImage: ImageAlreadyExistsException, "The specified image has already been pushed, and there were no
            # changes to the manifest or image tag after the last push."
            raise HarnessError(400, "ImageAlreadyExistsException", "Image already exists", "ImageAlreadyExistsException")
        try:
            self.put_manifest(name, tag or digest, raw, content_type or "", account)
        except HarnessError as exc:
            if exc.code == "TAG_INVALID":
                raise HarnessError(400, "ImageTagAlreadyExistsException", exc.message, "ImageTagAlreadyExistsException") from None
            raise HarnessError(400, exc.aws_type or exc.code, exc.message, exc.aws_type) from None
        return {
            "image": {
                "registryId": account.id,
                "repositoryName": name,
                "imageId": {"imageDigest": digest, **({"imageTag": tag} if tag else {})},
            }
        }

    def api_DescribeImageScanFindings(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        """DescribeImageScanFindings (API reference): ImageNotFoundException for an image that is not there;
        ScanNotFoundException when it has no scan; else the status and, once a scan completed, the time and counts
        (``imageScanCompletedAt``, ``findingSeverityCounts``; enhanced scans list ``enhancedFindings``)."""
        name, repo = self._repo_or_raise(account, params)
        digest = self._find(repo, params.get("imageId") or {})
        if digest is None:
            raise HarnessError(
                400, "ImageNotFoundException", "The image requested does not exist in the specified repository.", "ImageNotFoundException"
            )
        scan = self.scans.get((account.id, name, digest))
        if scan is None:
            raise HarnessError(
                400,
                "ScanNotFoundException",
                f"Image scan does not exist for the image with '{{imageDigest:'{digest}', imageTag:'null'}}' in the repository with name "
                f"'{name}' in the registry with id '{account.id}'",
                "ScanNotFoundException",
            )
        findings: dict[str, Any] = {"findings": []}
        if scan.completed:
            findings["imageScanCompletedAt"] = datetime.fromtimestamp(scan.started, timezone.utc).isoformat()
            findings["vulnerabilitySourceUpdatedAt"] = findings["imageScanCompletedAt"]
            if scan.counts:
                findings["findingSeverityCounts"] = dict(scan.counts)
            if scan.enhanced:
                findings["enhancedFindings"] = [
                    {"severity": severity, "type": "PACKAGE_VULNERABILITY", "status": "ACTIVE"}
                    for severity, count in scan.counts.items()
                    for _ in range(count)
                ]
        return {
            "registryId": account.id,
            "repositoryName": name,
            "imageId": {"imageDigest": digest},
            "imageScanStatus": {"status": scan.status, "description": scan.description or _STATUS_TEXT.get(scan.status, "")},
            "imageScanFindings": findings,
        }

    def api_StartImageScan(self, account: Account, params: dict[str, Any], caller: str) -> dict[str, Any]:  # noqa: N802
        """StartImageScan: basic scanning only, once per image per 24 hours (LimitExceededException, "The scan quota
        per image has been exceeded"; image-scanning-basic.html). Under enhanced scanning there are no manual scans
        (image-scanning-enhanced.html: Inspector scans on push and continuously); the exact error is not documented."""
        name, repo = self._repo_or_raise(account, params)
        digest = self._find(repo, params.get("imageId") or {})
        if digest is None:
            raise HarnessError(
                400, "ImageNotFoundException", "The image requested does not exist in the specified repository.", "ImageNotFoundException"
            )
        if self.scanning_configuration(account.id).get("scanType") == "ENHANCED":
            raise HarnessError(
                400, "ValidationException", "Manual scans are not supported when enhanced scanning is turned on.", "ValidationException"
            )
        previous = self.scans.get((account.id, name, digest))
        if previous is not None and time.time() - previous.started < 86_400:
            raise HarnessError(
                400, "LimitExceededException", "The scan quota per image has been exceeded. Wait and try again.", "LimitExceededException"
            )
        planned = self.scan_results.get(digest)
        self.scans[(account.id, name, digest)] = Scan(**{**vars(planned), "started": time.time()}) if planned else Scan("COMPLETE")
        return {
            "registryId": account.id,
            "repositoryName": name,
            "imageId": {"imageDigest": digest},
            "imageScanStatus": {"status": "IN_PROGRESS"},
        }

    # -- for tests ------------------------------------------------------------------------------------------------------

    @property
    def repos(self) -> dict[str, Repo]:
        return self.accounts[DEFAULT_ACCOUNT].repos if DEFAULT_ACCOUNT in self.accounts else next(iter(self.accounts.values())).repos

    def _repo(self, name: str) -> Repo:
        return next(iter(self.accounts.values())).repo(name)

    def stats(self) -> Counter[str]:
        return Counter(self.calls)

    def reset_stats(self) -> None:
        self.calls.clear()
        self.control_calls.clear()

    @staticmethod
    def now() -> str:
        return datetime.now(timezone.utc).isoformat()


_STATUS_TEXT = {
    "COMPLETE": "The scan was completed successfully.",
    "ACTIVE": "Continuous scan is selected for image.",
    "IN_PROGRESS": "The scan is in progress.",
    "PENDING": "The scan is pending.",
    "FAILED": "The scan failed.",
    "UNSUPPORTED_IMAGE": "The image is not supported for scanning.",
    "SCAN_ELIGIBILITY_EXPIRED": "The configured scan duration has lapsed for this image.",
    "FINDINGS_UNAVAILABLE": "Findings are not available for this image.",
    "LIMIT_EXCEEDED": "The scan quota per image has been exceeded.",
    "IMAGE_ARCHIVED": "The image is archived.",
}
