"""Amazon ECR through its API (boto3): repositories, authorization tokens, listing and manifests.

Everything imagectl reads from ECR goes through the control-plane API (describe_images, batch_get_image,
put_image), so listing thousands of images is a handful of paged calls and no image data is downloaded.
Tag immutability is enforced by ECR itself; imagectl creates repositories with it switched on.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from imagectl.adapters.aws import client
from imagectl.config import RegistryConfig
from imagectl.errors import ConflictError, RegistryError
from imagectl.lifecycle import policy_text
from imagectl.registries._base import MANIFEST_TYPES, Manifest, Registry, RemoteImage, RepositoryChange
from imagectl.registries.oci import OciRegistry

BATCH_GET_LIMIT = 100  # batch_get_image takes at most 100 image ids
PAGE_SIZE = 1000  # describe_images pages at most 1000


class EcrRegistry(Registry):
    kind = "ecr"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._client: Any = None
        self._data_plane: OciRegistry | None = None

    @property
    def ecr(self) -> Any:
        if self._client is None:
            self._client = client("ecr", self.config.region)
        return self._client

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.ecr, operation)(**kwargs)
        except NoCredentialsError:
            raise RegistryError(
                f"no AWS credentials for ECR registry '{self.name}'",
                "configure the AWS credential chain (AWS_PROFILE, instance role, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
            ) from None
        except NoRegionError:
            raise RegistryError(f"no AWS region for ECR registry '{self.name}'", "set region in imagectl.toml") from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {
                "RepositoryNotFoundException",
                "ImageNotFoundException",
                "LifecyclePolicyNotFoundException",
                "ImageAlreadyExistsException",
                "ImageTagAlreadyExistsException",
            }:
                raise
            message = exc.response.get("Error", {}).get("Message", "")
            hint = (
                "the AWS identity needs ecr:* rights on the repository"
                if code in {"AccessDeniedException", "AccessDenied"}
                else "check the AWS account and region"
            )
            raise RegistryError(f"ECR {operation} failed for registry '{self.name}': {code}: {message}", hint) from None
        except BotoCoreError as exc:
            raise RegistryError(
                f"cannot reach ECR for registry '{self.name}': {type(exc).__name__}", "check the network and the AWS endpoint"
            ) from None

    @staticmethod
    def _code(exc: ClientError) -> str:
        return exc.response.get("Error", {}).get("Code", "")

    def docker_auth(self) -> dict[str, str] | None:
        data = self._call("get_authorization_token")["authorizationData"][0]
        user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        return {"username": user, "password": password, "serveraddress": f"https://{self.host}"}

    def plan_repository(self, repository: str) -> list[RepositoryChange]:
        try:
            repo = self._call("describe_repositories", repositoryNames=[repository])["repositories"][0]
        except ClientError as exc:
            if self._code(exc) != "RepositoryNotFoundException":
                raise
            return [
                RepositoryChange(repository, "create", "tag immutability on, scan on push"),
                RepositoryChange(repository, "set-lifecycle-policy", "keep deployed images, expire old builds"),
            ]
        changes = []
        if repo.get("imageTagMutability") != "IMMUTABLE":
            changes.append(RepositoryChange(repository, "set-immutable", f"was {repo.get('imageTagMutability')}"))
        if not repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
            changes.append(RepositoryChange(repository, "set-scan-on-push", "was off"))
        wanted = json.loads(policy_text(self.config.lifecycle))
        try:
            current = json.loads(self._call("get_lifecycle_policy", repositoryName=repository)["lifecyclePolicyText"])
        except ClientError as exc:
            if self._code(exc) != "LifecyclePolicyNotFoundException":
                raise
            current = None
        if current != wanted:
            changes.append(
                RepositoryChange(repository, "set-lifecycle-policy", "missing" if current is None else "differs from imagectl's")
            )
        return changes

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
                self._call("put_image_tag_mutability", repositoryName=change.repository, imageTagMutability="IMMUTABLE")
            elif change.action == "set-scan-on-push":
                self._call(
                    "put_image_scanning_configuration", repositoryName=change.repository, imageScanningConfiguration={"scanOnPush": True}
                )
            elif change.action == "set-lifecycle-policy":
                self._call("put_lifecycle_policy", repositoryName=change.repository, lifecyclePolicyText=policy_text(self.config.lifecycle))

    def _pages(self, operation: str, repository: str) -> Iterator[dict[str, Any]]:
        """Every page of a paged listing of tagged images; nothing when the repository does not exist."""
        token = None
        while True:
            kwargs: dict[str, Any] = {"repositoryName": repository, "filter": {"tagStatus": "TAGGED"}, "maxResults": PAGE_SIZE}
            if token:
                kwargs["nextToken"] = token
            try:
                page = self._call(operation, **kwargs)
            except ClientError as exc:
                if self._code(exc) == "RepositoryNotFoundException":
                    return
                raise
            yield page
            token = page.get("nextToken")
            if not token:
                return

    def list_images(self, repository: str) -> list[RemoteImage]:
        return [
            RemoteImage(
                digest=detail["imageDigest"],
                tags=list(detail.get("imageTags", [])),
                pushed_at=detail.get("imagePushedAt"),
                size=detail.get("imageSizeInBytes"),
            )
            for page in self._pages("describe_images", repository)
            for detail in page.get("imageDetails", [])
        ]

    def list_tags(self, repository: str) -> list[str]:
        return [i["imageTag"] for page in self._pages("list_images", repository) for i in page.get("imageIds", []) if i.get("imageTag")]

    def get_manifests(self, repository: str, refs: list[str]) -> dict[str, Manifest]:
        found: dict[str, Manifest] = {}
        for start in range(0, len(refs), BATCH_GET_LIMIT):
            chunk = refs[start : start + BATCH_GET_LIMIT]
            ids = [{"imageDigest": r} if r.startswith("sha256:") else {"imageTag": r} for r in chunk]
            try:
                response = self._call(
                    "batch_get_image",
                    repositoryName=repository,
                    imageIds=ids,
                    acceptedMediaTypes=list(MANIFEST_TYPES),
                )
            except ClientError as exc:
                if self._code(exc) == "RepositoryNotFoundException":
                    return {}
                raise
            for image in response.get("images", []):
                raw = image["imageManifest"].encode()
                media_type = image.get("imageManifestMediaType") or json.loads(raw).get("mediaType")
                # ECR's digest is the digest of the stored bytes; keep it rather than recomputing.
                manifest = Manifest(raw, media_type, image["imageId"]["imageDigest"])
                for ref in chunk:
                    if ref in (image["imageId"].get("imageTag"), manifest.digest):
                        found[ref] = manifest
        return found

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> bool:
        try:
            kwargs: dict[str, Any] = {} if tag.startswith("sha256:") else {"imageTag": tag}  # by digest: untagged
            self._call(
                "put_image",
                repositoryName=repository,
                imageManifest=manifest.raw.decode(),
                imageManifestMediaType=manifest.media_type,
                imageDigest=manifest.digest,
                **kwargs,
            )
        except ClientError as exc:
            if self._code(exc) not in ("ImageAlreadyExistsException", "ImageTagAlreadyExistsException"):
                raise
            # Decide by what the tag holds now rather than by the error code (ECR and its emulators differ there).
            current = self.get_manifest(repository, tag)
            if current is not None and current.digest == manifest.digest:
                return False
            raise ConflictError(
                f"{self.reference(repository, tag)} already exists with other content",
                "tags are never moved: use a new build number",
            ) from None
        return True

    def delete_manifest(self, repository: str, digest: str) -> None:
        self._call("batch_delete_image", repositoryName=repository, imageIds=[{"imageDigest": digest}])

    # Blobs go through ECR's data plane, which speaks the OCI distribution API with the authorization token.
    @property
    def data_plane(self) -> OciRegistry:
        if self._data_plane is None:
            auth = self.docker_auth() or {}
            self._data_plane = _EcrDataPlane(self.config, (auth.get("username", ""), auth.get("password", "")))
        return self._data_plane

    def has_blob(self, repository: str, digest: str) -> bool:
        return self.data_plane.has_blob(repository, digest)

    def open_blob(self, repository: str, digest: str) -> BinaryIO:
        return self.data_plane.open_blob(repository, digest)

    def put_blob(self, repository: str, digest: str, size: int, stream: BinaryIO) -> None:
        self.data_plane.put_blob(repository, digest, size, stream)


class _EcrDataPlane(OciRegistry):
    def __init__(self, config: RegistryConfig, creds: tuple[str, str]) -> None:
        super().__init__(RegistryConfig(config.name, "oci", config.host, insecure=False))
        self._creds = creds

    def credentials(self) -> tuple[str, str] | None:
        return self._creds
