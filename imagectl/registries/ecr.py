"""Amazon ECR: its registry API (the data plane docker and crane use) plus its control-plane API (boto3).

The split, and why:
- Manifests, tags and blobs are written through the registry API, as ``docker push`` writes them
  (``PutImage`` "is used by the Amazon ECR proxy and is not generally used by customers", API reference).
  A tag on an IMMUTABLE repository is created atomically: ECR answers ``TAG_INVALID`` when it exists, even
  for identical content, so every idempotent path reads the tag back and compares digests.
- Reads of many manifests go through ``BatchGetImage`` (100 per call, the API's limit): finding the newest
  history revision probes 99 tags per call (history.py), which the registry API would need 99 requests for.
  Listings (``DescribeImages``: push times, sizes, every tag) and deletes (``BatchDeleteImage``), repository
  settings, the lifecycle policy, authorization tokens and scan findings are control-plane only.
In ECR both planes are one store; the test harness (tests/ecr_harness.py) is built the same way.

Guarantees are checked, not assumed: before imagectl claims a tag (a history revision, a release version) it
reads the repository's tag mutability. ``IMMUTABLE``, or ``IMMUTABLE_WITH_EXCLUSION`` whose filters spare
imagectl's tags, is required; anything else is refused with the fix (``imagectl registry init``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import requests
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from imagectl.adapters.aws import IdentityError, account_of, client
from imagectl.credentials import Login
from imagectl.errors import ConfigError, ConflictError, RegistryError
from imagectl.namespaces import SEGMENT_SIZE, exclusion_problems
from imagectl.registries._base import MANIFEST_TYPES, Capabilities, Claim, Manifest, Registry, RemoteImage, RepositoryChange, ScanReport
from imagectl.registries.kinds import ecr_account
from imagectl.registries.oci import OciRegistry
from imagectl.retention import ecr_lifecycle_policy
from imagectl.sanitize import visible
from imagectl.settings import RegistryConfig, Timeouts
from imagectl.wildcards import ecr_wildcard

BATCH_GET_LIMIT = 100  # BatchGetImage: imageIds has at most 100 members (API reference)
assert SEGMENT_SIZE <= BATCH_GET_LIMIT  # one probe round (SEGMENT_SIZE - 1 tags) is one BatchGetImage call
PAGE_SIZE = 1000  # DescribeImages / ListImages: maxResults at most 1000 (API reference)
# Control-plane operations that act on the caller's own registry and take no registryId (API reference).
_CALLERS_REGISTRY = {"get_authorization_token", "get_registry_scanning_configuration", "put_registry_scanning_configuration"}
PULL_SID = "imagectl-pull"  # the repository-policy statement registry init owns (pull_accounts); others are never touched
PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
_PASS_THROUGH = {
    "RepositoryNotFoundException",
    "RepositoryAlreadyExistsException",
    "ImageNotFoundException",
    "LifecyclePolicyNotFoundException",
    "RepositoryPolicyNotFoundException",
    "ScanNotFoundException",
    "ImageAlreadyExistsException",
    "ImageTagAlreadyExistsException",
}


class EcrRegistry(Registry):
    kind = "ecr"

    def __init__(self, config: RegistryConfig, login: Login | None = None, timeouts: Timeouts | None = None) -> None:
        super().__init__(config, login, timeouts)
        account = ecr_account(config.host, config.settings)
        if account is None:  # config.py refuses such a registry; a registry built by hand must say its account too
            raise ConfigError(f"ECR registry '{self.name}' ({config.host}) names no AWS account", "set registry_id")
        self.account: str = account
        self._client: Any = None
        self._data_plane: _EcrDataPlane | None = None
        self._repositories: dict[str, dict[str, Any]] = {}
        self._cache: dict[tuple[str, str], Manifest] = {}  # imagectl's own immutable tags, read this process

    @property
    def ecr(self) -> Any:
        if self._client is None:
            self._client = client("ecr", self.config.settings.region, self.timeouts, self.config.identity)
        return self._client

    def _acting_as(self) -> str:
        identity = self.config.identity
        return identity.describe() if identity else "the default AWS credential chain"

    def _call(self, operation: str, expect: str | None = None, **kwargs: Any) -> Any:
        """One control-plane call; ``expect`` names a key the answer must have (an endpoint answering a proxy's
        HTML page parses as an empty answer)."""
        if operation not in _CALLERS_REGISTRY:
            kwargs.setdefault("registryId", self.account)  # every call names its registry: never "the caller's own"
        try:
            response = getattr(self.ecr, operation)(**kwargs)
        except IdentityError as exc:
            exc.message = f"ECR registry '{self.name}' acts as {exc.message}"
            raise
        except NoCredentialsError:
            raise RegistryError(
                f"no AWS credentials for ECR registry '{self.name}'",
                "configure the AWS credential chain (AWS_PROFILE, instance role, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
            ) from None
        except NoRegionError:
            raise RegistryError(f"no AWS region for ECR registry '{self.name}'", "set region in imagectl.toml") from None
        except ClientError as exc:
            code = self._code(exc)
            if code in _PASS_THROUGH:
                raise
            message = visible(exc.response.get("Error", {}).get("Message", ""))[:300]
            raise RegistryError(
                f"ECR {operation} failed for registry '{self.name}': {code}: {message}", self._hint(code, message)
            ) from None
        except BotoCoreError as exc:
            raise RegistryError(
                f"ECR {operation} for registry '{self.name}' failed: {type(exc).__name__}",
                "check the network and the ECR endpoint (AWS_ENDPOINT_URL_ECR)",
            ) from None
        if not isinstance(response, dict) or (expect is not None and expect not in response):
            raise RegistryError(
                f"ECR {operation} for registry '{self.name}' gave an answer without {expect or 'a body'}",
                "check that the ECR endpoint (AWS_ENDPOINT_URL_ECR, region) is ECR's API and not a proxy's page",
            )
        return response

    def _hint(self, code: str, message: str) -> str:
        if code in {"AccessDeniedException", "AccessDenied"}:
            caller = account_of(self.config.identity, self.timeouts, self.config.settings.region)
            if caller is not None and caller != self.account:
                return (
                    f"registry '{self.name}' is in account {self.account} but acts as {self._acting_as()}, in account {caller}: give it an "
                    "identity of its own account ([identities] in imagectl.toml, identity = … under the registry), or grant "
                    f"account {caller} in the repository policy"
                )
            return f"{self._acting_as()} needs the ECR actions imagectl uses on the repository (see the IAM policy in the docs)"
        if code == "LimitExceededException":
            return "an ECR service quota was reached (Service Quotas console, Amazon ECR); imagectl gc --env ENV frees images"
        if code in {"ThrottlingException", "TooManyRequestsException"}:
            return "ECR throttled the request after retries; try again in a minute"
        return "check the AWS account and region"

    @staticmethod
    def _code(exc: ClientError) -> str:
        return str(exc.response.get("Error", {}).get("Code", ""))

    # -- what it guarantees ----------------------------------------------------------------------------------

    def _describe(self, repository: str) -> dict[str, Any] | None:
        if repository not in self._repositories:
            try:
                found = self._call("describe_repositories", "repositories", repositoryNames=[repository]).get("repositories") or []
            except ClientError as exc:
                if self._code(exc) != "RepositoryNotFoundException":
                    raise
                return None
            if not found or not isinstance(found[0], dict):
                return None
            self._repositories[repository] = found[0]
        return self._repositories[repository]

    def _mutability_problem(self, repo: dict[str, Any]) -> str | None:
        """Why the repository's settings let imagectl's tags move, or None when they cannot. Exclusion filters are
        judged against every tag imagectl writes, for any environment name (namespaces.exclusion_problems)."""
        mode = repo.get("imageTagMutability")
        if mode == "IMMUTABLE":
            return None
        if mode == "IMMUTABLE_WITH_EXCLUSION":
            filters = [str(f.get("filter", "")) for f in repo.get("imageTagMutabilityExclusionFilters") or [] if isinstance(f, dict)]
            problems = exclusion_problems(filters)
            return f"its exclusion filter {'; '.join(problems)}, so those tags are mutable" if problems else None
        return f"its tags are {mode or 'of unknown mutability'}"

    def require_immutable(self, repository: str) -> None:
        repo = self._describe(repository)
        if repo is None:
            raise RegistryError(
                f"ECR repository {repository} does not exist in registry '{self.name}'", "create it: imagectl registry init --env ENV"
            )
        problem = self._mutability_problem(repo)
        if problem:
            raise RegistryError(
                f"ECR repository {repository} cannot guarantee that imagectl's records are never overwritten: {problem}",
                "make it immutable with: imagectl registry init --env ENV (nothing was written)",
            )

    def capabilities(self, repository: str) -> Capabilities:
        repo = self._describe(repository)
        atomic = repo is not None and self._mutability_problem(repo) is None
        return Capabilities(
            atomic_tag_create=atomic,
            retention_policy=True,
            batch_read=BATCH_GET_LIMIT,
            probe_fanout=SEGMENT_SIZE,  # the lifecycle policy keeps every SEGMENT_SIZE-th record: the coarse rounds' markers
            detailed_listing=True,
        )

    def claim_marker(self, tag: str) -> str:
        return tag  # on an immutable repository the tag itself is the claim

    def claim_tag(self, repository: str, tag: str, manifest: Manifest) -> Claim:
        self.require_immutable(repository)
        response = self.data_plane._put(repository, tag, manifest)
        if response.status_code in (200, 201):
            self._cache[(repository, tag)] = manifest
            return Claim.CLAIMED
        if self._tag_exists_error(response):
            current = self.get_manifest(repository, tag)
            return Claim.SAME if current is not None and current.digest == manifest.digest else Claim.TAKEN
        raise self.data_plane._unexpected(response, f"writing {repository}:{tag}")

    @staticmethod
    def _tag_exists_error(response: requests.Response) -> bool:
        # ECR's registry API answers TAG_INVALID ("… already exists … cannot be overwritten because the tag is
        # immutable"), also when the content is identical.
        return (
            response.status_code == 400
            and OciRegistry._error_code(response) in ("TAG_INVALID", "MANIFEST_INVALID")
            and ("already exists" in response.text)
        )

    def retention_policy(self) -> dict[str, Any] | None:
        return ecr_lifecycle_policy(self.config.retention)

    def removal_hint(self, repository: str, tag: str) -> str:
        return f"aws ecr batch-delete-image --registry-id {self.account} --repository-name {repository} --image-ids imageTag={tag}"

    # -- repositories ----------------------------------------------------------------------------------------

    def docker_auth(self) -> dict[str, str] | None:
        data = (self._call("get_authorization_token", "authorizationData").get("authorizationData") or [{}])[0]
        try:
            user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        except (KeyError, ValueError, UnicodeDecodeError, TypeError):
            raise RegistryError(f"ECR gave registry '{self.name}' an unreadable authorization token", "check the ECR endpoint") from None
        scheme = "http" if self.config.insecure else "https"
        return {"username": user, "password": password, "serveraddress": f"{scheme}://{self.host}"}

    def plan_repository(self, repository: str) -> list[RepositoryChange]:
        self._repositories.pop(repository, None)
        repo = self._describe(repository)
        if repo is None:
            changes = [
                RepositoryChange(repository, "create", "tag immutability on, scan on push"),
                RepositoryChange(repository, "set-lifecycle-policy", "keep deployed images and history, expire old builds"),
            ]
            if self.config.settings.pull_accounts:
                changes.append(RepositoryChange(repository, "set-repository-policy", self._pull_detail()))
            scan = self._scan_rule_change(repository, created=True)
            return changes + ([scan] if scan else [])
        changes = []
        problem = self._mutability_problem(repo)
        if problem:
            changes.append(RepositoryChange(repository, "set-immutable", problem))
        if not (repo.get("imageScanningConfiguration") or {}).get("scanOnPush"):
            changes.append(RepositoryChange(repository, "set-scan-on-push", "was off"))
        try:
            text = self._call("get_lifecycle_policy", repositoryName=repository).get("lifecyclePolicyText") or "null"
            current = json.loads(text)
        except ClientError as exc:
            if self._code(exc) != "LifecyclePolicyNotFoundException":
                raise
            current = None
        except ValueError:
            current = "unreadable"
        if current != self.retention_policy():
            changes.append(
                RepositoryChange(repository, "set-lifecycle-policy", "missing" if current is None else "differs from imagectl's")
            )
        if self._pull_statement(self._repository_policy(repository)) != self._wanted_pull_statement():
            changes.append(RepositoryChange(repository, "set-repository-policy", self._pull_detail()))
        scan = self._scan_rule_change(repository)
        return changes + ([scan] if scan else [])

    # Cross-account pulls (EKS nodes of another account): one statement of the repository policy, imagectl's own
    # (Sid imagectl-pull); every other statement is kept as it is
    # (https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html).

    def _pull_detail(self) -> str:
        accounts = self.config.settings.pull_accounts
        return (
            f"grant pull to account(s) {', '.join(accounts)} (statement {PULL_SID}; other statements kept)"
            if accounts
            else (f"remove imagectl's statement {PULL_SID} (other statements kept)")
        )

    def _wanted_pull_statement(self) -> dict[str, Any] | None:
        accounts = sorted(self.config.settings.pull_accounts)
        if not accounts:
            return None
        return {
            "Sid": PULL_SID,
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
            "Action": PULL_ACTIONS,
        }

    def _repository_policy(self, repository: str) -> dict[str, Any]:
        try:
            text = self._call("get_repository_policy", repositoryName=repository).get("policyText") or "{}"
        except ClientError as exc:
            if self._code(exc) in ("RepositoryPolicyNotFoundException", "RepositoryNotFoundException"):
                return {}
            raise
        try:
            policy = json.loads(text)
        except ValueError:
            raise RegistryError(
                f"the repository policy of {repository} in registry '{self.name}' is not JSON", "fix it in the ECR console"
            ) from None
        return policy if isinstance(policy, dict) else {}

    @staticmethod
    def _statements(policy: dict[str, Any]) -> list[Any]:
        statements = policy.get("Statement") or []
        return [statements] if isinstance(statements, dict) else list(statements)

    def _pull_statement(self, policy: dict[str, Any]) -> dict[str, Any] | None:
        return next((s for s in self._statements(policy) if isinstance(s, dict) and s.get("Sid") == PULL_SID), None)

    def _set_pull_policy(self, repository: str) -> None:
        policy = self._repository_policy(repository)
        others = [s for s in self._statements(policy) if not (isinstance(s, dict) and s.get("Sid") == PULL_SID)]
        wanted = self._wanted_pull_statement()
        statements = others + ([wanted] if wanted else [])
        if not statements:
            try:
                self._call("delete_repository_policy", repositoryName=repository)
            except ClientError as exc:
                if self._code(exc) != "RepositoryPolicyNotFoundException":
                    raise
            return
        document = {"Version": policy.get("Version", "2012-10-17"), "Statement": statements}
        self._call("set_repository_policy", repositoryName=repository, policyText=json.dumps(document))

    # Scanning: the registry scanning configuration decides (repository-level scan on push is deprecated in its favour,
    # https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning.html). A repository no rule covers under
    # enhanced scanning is added to the registry's scan-on-push rule; every other rule and filter is kept.

    def _scan_rule_change(self, repository: str, created: bool = False) -> RepositoryChange | None:
        setup = self.scan_setup(repository) if not created else None
        if created:
            if account_of(self.config.identity, self.timeouts, self.config.settings.region) not in (self.account, None):
                return None
            configuration = self._call("get_registry_scanning_configuration").get("scanningConfiguration") or {}
            covered = any(
                ecr_wildcard(str(f.get("filter", "")), repository)
                for rule in configuration.get("rules") or []
                for f in rule.get("repositoryFilters") or []
                if isinstance(f, dict)
            )
            setup = "enhanced-none" if configuration.get("scanType") == "ENHANCED" and not covered else None
        if setup != "enhanced-none":
            return None
        return RepositoryChange(repository, "add-scan-rule", "enhanced scanning had no rule for it: added to the scan-on-push rule")

    def _add_scan_rule(self, repository: str) -> None:
        configuration = self._call("get_registry_scanning_configuration").get("scanningConfiguration") or {}
        rules = [dict(r) for r in configuration.get("rules") or [] if isinstance(r, dict)]
        on_push = next((r for r in rules if r.get("scanFrequency") == "SCAN_ON_PUSH"), None)
        if on_push is None:
            on_push = {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": []}
            rules.append(on_push)
        on_push["repositoryFilters"] = [*(on_push.get("repositoryFilters") or []), {"filter": repository, "filterType": "WILDCARD"}]
        self._call("put_registry_scanning_configuration", scanType=configuration.get("scanType") or "ENHANCED", rules=rules)

    def apply_repository(self, changes: Iterable[RepositoryChange]) -> None:
        for change in changes:
            if change.action == "create":
                try:
                    self._call(
                        "create_repository",
                        repositoryName=change.repository,
                        imageTagMutability="IMMUTABLE",
                        imageScanningConfiguration={"scanOnPush": True},
                    )
                except ClientError as exc:  # created meanwhile by a concurrent build: fine
                    if self._code(exc) != "RepositoryAlreadyExistsException":
                        raise
            elif change.action == "set-immutable":
                self._set_immutable(change.repository)
            elif change.action == "set-scan-on-push":
                self._call(
                    "put_image_scanning_configuration", repositoryName=change.repository, imageScanningConfiguration={"scanOnPush": True}
                )
            elif change.action == "set-lifecycle-policy":
                self._call(
                    "put_lifecycle_policy", repositoryName=change.repository, lifecyclePolicyText=json.dumps(self.retention_policy())
                )
            elif change.action == "set-repository-policy":
                self._set_pull_policy(change.repository)
            elif change.action == "add-scan-rule":
                self._add_scan_rule(change.repository)
            self._repositories.pop(change.repository, None)

    def _set_immutable(self, repository: str) -> None:
        """IMMUTABLE, keeping any exclusion filters that spare imagectl's tags (the team's own mutable tags)."""
        repo = self._describe(repository) or {}
        keep = [
            f
            for f in repo.get("imageTagMutabilityExclusionFilters") or []
            if isinstance(f, dict) and not exclusion_problems([str(f.get("filter", ""))])
        ]
        if keep:
            self._call(
                "put_image_tag_mutability",
                repositoryName=repository,
                imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                imageTagMutabilityExclusionFilters=keep,
            )
        else:
            self._call("put_image_tag_mutability", repositoryName=repository, imageTagMutability="IMMUTABLE")

    # -- reading ---------------------------------------------------------------------------------------------

    def _pages(self, operation: str, repository: str) -> Iterator[dict[str, Any]]:
        """Every page of a paged listing of tagged images; nothing when the repository does not exist."""
        token = None
        for _ in range(100_000):
            kwargs: dict[str, Any] = {"repositoryName": repository, "filter": {"tagStatus": "TAGGED"}, "maxResults": PAGE_SIZE}
            if token:
                kwargs["nextToken"] = token
            try:
                page = self._call(operation, "imageDetails" if operation == "describe_images" else "imageIds", **kwargs)
            except ClientError as exc:
                if self._code(exc) == "RepositoryNotFoundException":
                    return
                raise
            yield page
            token = page.get("nextToken")
            if not token:
                return

    def list_images(self, repository: str) -> list[RemoteImage]:
        images = []
        for page in self._pages("describe_images", repository):
            for detail in page.get("imageDetails") or []:
                if isinstance(detail, dict) and isinstance(detail.get("imageDigest"), str):
                    images.append(
                        RemoteImage(
                            digest=detail["imageDigest"],
                            tags=[t for t in detail.get("imageTags") or [] if isinstance(t, str)],
                            pushed_at=detail.get("imagePushedAt"),
                            size=detail.get("imageSizeInBytes"),
                        )
                    )
        return images

    def list_tags(self, repository: str) -> list[str]:
        return [
            i["imageTag"]
            for page in self._pages("list_images", repository)
            for i in page.get("imageIds") or []
            if isinstance(i, dict) and isinstance(i.get("imageTag"), str)
        ]

    def get_manifests(self, repository: str, refs: list[str]) -> dict[str, Manifest]:
        found: dict[str, Manifest] = {}
        wanted = []
        for ref in dict.fromkeys(refs):
            cached = self._cache.get((repository, ref))
            if cached is not None:
                found[ref] = cached
            else:
                wanted.append(ref)
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[start : start + BATCH_GET_LIMIT]
            ids = [{"imageDigest": r} if r.startswith("sha256:") else {"imageTag": r} for r in chunk]
            try:
                response = self._call(
                    "batch_get_image", "images", repositoryName=repository, imageIds=ids, acceptedMediaTypes=list(MANIFEST_TYPES)
                )
            except ClientError as exc:
                if self._code(exc) == "RepositoryNotFoundException":
                    return found
                raise
            for image in response.get("images") or []:
                try:
                    raw = image["imageManifest"].encode()
                    image_id = image["imageId"]
                    manifest = Manifest.from_bytes(raw, image.get("imageManifestMediaType") or None)
                except (KeyError, TypeError, AttributeError, ValueError):
                    continue  # an unreadable entry is treated as missing; callers validate what they read
                if image_id.get("imageDigest") != manifest.digest:
                    # Content addressing: the bytes must have the digest ECR says they have (a swapped answer is refused).
                    raise RegistryError(
                        f"ECR answered {repository}@{str(image_id.get('imageDigest'))[:19]} with a manifest whose digest is "
                        f"{manifest.digest[:19]}",
                        "the registry (or something between) returned other content; nothing was changed",
                    )
                for ref in chunk:
                    if ref == image_id.get("imageTag") or ref == manifest.digest:
                        found[ref] = manifest
                        if ref.startswith(("imagectl-", "v", "deployed-")):  # immutable: safe to remember
                            self._cache[(repository, ref)] = manifest
        return found

    def existing(self, repository: str, refs: list[str]) -> set[str]:
        return set(self.get_manifests(repository, refs))

    # -- writing ---------------------------------------------------------------------------------------------

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> bool:
        self._cache.pop((repository, tag), None)  # read it afresh: a tag remembered here may have been deleted since
        current = self.get_manifest(repository, tag)
        if current is not None:
            if current.digest == manifest.digest:
                return False
            raise ConflictError(
                f"{self.reference(repository, tag)} already exists with digest {current.digest}",
                "tags are never moved: use a new build number",
            )
        response = self.data_plane._put(repository, tag, manifest)
        if response.status_code in (200, 201):
            return True
        if self._tag_exists_error(response):  # written meanwhile (or ECR refusing an identical re-put)
            current = self.get_manifest(repository, tag)
            if current is not None and current.digest == manifest.digest:
                return False
            raise ConflictError(
                f"{self.reference(repository, tag)} already exists with other content", "tags are never moved: use a new build number"
            )
        raise self.data_plane._unexpected(response, f"writing {repository}:{tag}")

    def delete_manifest(self, repository: str, digest: str) -> None:
        self._batch_delete(repository, digest, [{"imageDigest": digest}])

    def delete_tagged(self, repository: str, digest: str, tags: list[str]) -> bool:
        """By tag: "When you remove the last tag from an image, the image is deleted from your repository"
        (BatchDeleteImage, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_BatchDeleteImage.html).
        A tag a concurrent deploy added (its deployed- tag) then keeps the image — and the revision record that
        refers to it, which ECR would delete with the image."""
        if not tags:
            self.delete_manifest(repository, digest)
            return True
        # Each tag with the digest: a tag that names another image by now is left alone (ImageTagDoesNotMatchDigest).
        self._batch_delete(repository, digest, [{"imageDigest": digest, "imageTag": t} for t in tags], "ImageTagDoesNotMatchDigest")
        for tag in tags:
            self._cache.pop((repository, tag), None)
        return not self.existing(repository, [digest])

    def _batch_delete(self, repository: str, digest: str, ids: list[dict[str, str]], *benign: str) -> None:
        """BatchDeleteImage; a failure other than ImageNotFound (or ``benign``) is one line."""
        response = self._call("batch_delete_image", repositoryName=repository, imageIds=ids)
        allowed = ("ImageNotFound", *benign)
        failures = [f for f in response.get("failures") or [] if isinstance(f, dict) and f.get("failureCode") not in allowed]
        if failures:
            raise RegistryError(
                f"ECR refused to delete {repository}@{digest[:19]}: {visible(str(failures[0].get('failureReason')))[:200]}",
                "check the AWS identity's ecr:BatchDeleteImage right",
            )

    # -- blobs (registry API) --------------------------------------------------------------------------------

    @property
    def data_plane(self) -> _EcrDataPlane:
        if self._data_plane is None:
            auth = self.docker_auth() or {}
            self._data_plane = _EcrDataPlane(
                self.config, Login(auth.get("username", ""), auth.get("password", ""), "ECR token"), self.timeouts, self.name
            )
        return self._data_plane

    def has_blob(self, repository: str, digest: str) -> bool:
        return self.data_plane.has_blob(repository, digest)

    def open_blob(self, repository: str, digest: str) -> BinaryIO:
        return self.data_plane.open_blob(repository, digest)

    def put_blob(self, repository: str, digest: str, size: int, stream: BinaryIO) -> None:
        self.data_plane.put_blob(repository, digest, size, stream)

    # -- scanning --------------------------------------------------------------------------------------------

    def scan_setup(self, repository: str) -> str | None:
        """How ECR scans images pushed to ``repository``: the registry scanning configuration's first rule whose
        filter matches it (GetRegistryScanningConfiguration; image-scanning.html), else — basic scanning only — the
        repository's own (deprecated) scanOnPush. None: not scanned. "unknown": the configuration cannot be read
        (it is the caller's registry's, and the caller is in another account)."""
        if account_of(self.config.identity, self.timeouts, self.config.settings.region) not in (self.account, None):
            return "unknown"
        configuration = self._call("get_registry_scanning_configuration").get("scanningConfiguration") or {}
        enhanced = configuration.get("scanType") == "ENHANCED"
        for rule in configuration.get("rules") or []:
            if any(ecr_wildcard(str(f.get("filter", "")), repository) for f in rule.get("repositoryFilters") or [] if isinstance(f, dict)):
                frequency = {"CONTINUOUS_SCAN": "continuous", "SCAN_ON_PUSH": "on-push"}.get(str(rule.get("scanFrequency")), "manual")
                return f"{'enhanced' if enhanced else 'basic'}-{frequency}"
        repo = self._describe(repository) or {}
        if not enhanced and (repo.get("imageScanningConfiguration") or {}).get("scanOnPush"):
            return "basic-on-push"
        return "enhanced-none" if enhanced else "basic-manual"

    def scan_findings(self, repository: str, digest: str) -> ScanReport:
        region = self.config.settings.region
        link = f"https://{region}.console.aws.amazon.com/ecr/repositories/private/{self.account}/{repository}/_/image/{digest}/details?region={region}"
        setup = self.scan_setup(repository)
        try:
            response = self._call("describe_image_scan_findings", repositoryName=repository, imageId={"imageDigest": digest}, maxResults=1)
        except ClientError as exc:
            if self._code(exc) == "ScanNotFoundException":
                return ScanReport(
                    "NOT_FOUND",
                    link=link,
                    detail="no scan of this image",
                    setup=setup,
                    advice=self._advice("NOT_FOUND", setup, repository, digest),
                )
            if self._code(exc) == "ImageNotFoundException":
                return ScanReport("NOT_FOUND", link=link, detail="the image is not in this repository", setup=setup)
            raise
        status = str((response.get("imageScanStatus") or {}).get("status") or "UNKNOWN")
        findings = response.get("imageScanFindings") or {}
        counts = findings.get("findingSeverityCounts") or {}
        clean = {str(k).upper(): int(v) for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}
        detail = str((response.get("imageScanStatus") or {}).get("description") or "")
        # Findings are final only once a scan completed: under enhanced scan on push ECR has been observed answering
        # COMPLETE before any findings exist (aws/aws-sdk#289), with no imageScanCompletedAt.
        completed = bool(findings.get("imageScanCompletedAt"))
        return ScanReport(status, clean, link, visible(detail)[:200], completed, setup, self._advice(status, setup, repository, digest))

    def _advice(self, status: str, setup: str | None, repository: str, digest: str) -> str:
        """What makes the image's findings known, for this registry's scanning set-up (never a command that cannot work)."""
        manual = f"aws ecr start-image-scan --registry-id {self.account} --repository-name {repository} --image-id imageDigest={digest}"
        enhanced = (setup or "").startswith("enhanced")
        if setup == "unknown":
            return (
                f"the scanning configuration of account {self.account} is not readable as {self._acting_as()}: "
                "give the registry its own identity"
            )
        if status == "NOT_FOUND" and setup == "enhanced-none":
            return "enhanced scanning has no rule for this repository: imagectl registry init adds one, then push the image again"
        if status == "NOT_FOUND" and not enhanced:
            return f"scan it: {manual}"
        if status == "LIMIT_EXCEEDED":
            return "basic scanning allows one scan per image every 24 hours: try again later"
        if status == "SCAN_ELIGIBILITY_EXPIRED":
            return (
                "Inspector stopped scanning this image (its ECR re-scan duration lapsed): push it again, or lengthen the duration "
                "in Inspector"
            )
        if status == "IMAGE_ARCHIVED":
            return (
                f"the image is archived: restore it (aws ecr update-image-storage-class --registry-id {self.account} "
                f"--repository-name {repository} …)"
            )
        if status == "UNSUPPORTED_IMAGE":
            return "ECR cannot scan this image (its operating system or media type is not supported)"
        if enhanced:
            return (
                "enhanced scanning is Amazon Inspector's: see the image's coverage (aws inspector2 list-coverage) and wait for "
                f"its findings ({setup})"
            )
        return f"scan it again: {manual}"


class _EcrDataPlane(OciRegistry):
    """ECR's registry API: the distribution API with Basic auth ``AWS:<token>`` (GetAuthorizationToken)."""

    def __init__(self, config: RegistryConfig, login: Login, timeouts: Timeouts, name: str) -> None:
        super().__init__(config, login, timeouts)
        self.name = name

    def _denied_hint(self, response: requests.Response) -> str:
        text = response.text.lower()
        if "tags per image" in text:
            return "ECR allows at most 1,000 tags per image (not adjustable); imagectl adds none per build, so another tool tags this image"
        if "images per repository" in text or "limit" in text:
            return (
                "the repository reached ECR's images-per-repository quota: run imagectl gc --env ENV, or raise the quota in Service Quotas"
            )
        return "the AWS identity needs ecr:PutImage, ecr:InitiateLayerUpload, ecr:UploadLayerPart and ecr:CompleteLayerUpload"

    def _unexpected(self, response: requests.Response, what: str) -> RegistryError:
        error = super()._unexpected(response, what)
        if response.status_code == 429:
            error.hint = "ECR kept throttling after retries; try again in a minute"
        elif "limit" in response.text.lower() or "quota" in response.text.lower():
            error.hint = self._denied_hint(response)
        return error
