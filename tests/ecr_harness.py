"""A test harness that holds imagectl to Amazon ECR's *documented* rules, on 127.0.0.1.

No ECR runs here, and moto has no ECR data plane. The harness is both of ECR's planes, as one store:
- the **registry API** (``/v2/…``, what ``docker push`` and imagectl's manifest and blob writes use), served from
  a real local distribution registry behind it;
- the **control-plane API** (``POST /`` with ``X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.*``): the
  image operations (BatchGetImage, DescribeImages, ListImages, BatchDeleteImage, PutImage) are answered from the
  same store; everything else (repositories, tag mutability and its exclusion filters, scanning configuration,
  lifecycle policies, authorization tokens, scan findings) is forwarded to moto, the control-plane emulator.
  Every image pushed is mirrored into moto (and scanned there when the repository scans on push), so moto's
  configurable scan findings apply to it.

Each rule below names the AWS (or OCI) documentation it comes from. What the harness does NOT prove: real IAM
and resource policies, real scanning, when the lifecycle policy actually expires images (it stores the policy;
gc is tested instead), encryption, replication, pull-through caches, real quotas' values (limits are lowered
per test), and the exact bytes of undocumented error answers (see the comments at each).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[2:]
ACCOUNT = "123456789012"


@dataclass
class Limits:
    """ECR service quotas (https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html): images per
    repository, 10,000 by default (adjustable); tags per image, 1,000 (not adjustable; "Adding tag … exceeds the
    maximum allowed number of tags per image which is '1000'"). Tests lower both so the quota paths run in seconds."""

    tags_per_image: int = 1000
    images_per_repository: int = 10_000
    throttle_puts: int = 0  # answer this many manifest PUTs with 429 first (ECR throttles PutImage: service quotas, rate of PutImage)


@dataclass
class Repo:
    tags: dict[str, str] = field(default_factory=dict)  # tag → digest
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # digest → {pushed_at, size, media_type}
    lock: threading.Lock = field(default_factory=threading.Lock)


class HarnessError(Exception):
    def __init__(self, status: int, code: str, message: str, aws_type: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.aws_type = status, code, message, aws_type


class EcrHarness:
    def __init__(self, moto_url: str, registry_url: str, region: str = "ap-northeast-2", limits: Limits | None = None) -> None:
        self.moto_url, self.registry_url, self.region = moto_url.rstrip("/"), registry_url.rstrip("/"), region
        self.limits = limits or Limits()
        self.repos: dict[str, Repo] = {}
        self.uploads: dict[str, int] = {}  # upload session → bytes received
        self.calls: Counter[str] = Counter()
        self.http = requests.Session()
        self.lock = threading.Lock()
        harness = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                harness.handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.host}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the control plane's repository facts (moto) ---------------------------------------------------------------

    def _moto(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = self.http.post(
            self.moto_url + "/",
            data=json.dumps(body),
            headers={
                "X-Amz-Target": TARGET_PREFIX + operation,
                "Content-Type": "application/x-amz-json-1.1",
                "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{self.region}/ecr/aws4_request, "
                "SignedHeaders=host, Signature=x",
            },
            timeout=30,
        )
        return response.status_code, (response.json() if response.content else {})

    def repository(self, name: str) -> dict[str, Any] | None:
        status, body = self._moto("DescribeRepositories", {"repositoryNames": [name]})
        if status != 200:
            return None
        found = body.get("repositories") or []
        return found[0] if found else None

    def expected_password(self) -> str:
        if getattr(self, "_password", None):
            return self._password
        _, body = self._moto("GetAuthorizationToken", {})
        token = body["authorizationData"][0]["authorizationToken"]
        self._password: str = base64.b64decode(token).decode().split(":", 1)[1]
        return self._password

    def _repo(self, name: str) -> Repo:
        with self.lock:
            return self.repos.setdefault(name, Repo())

    @staticmethod
    def _wildcard(pattern: str, tag: str) -> bool:
        return fnmatch.fnmatchcase(tag, pattern.replace("[", "[[]").replace("?", "[?]"))

    def tag_is_immutable(self, repo: dict[str, Any], tag: str) -> bool:
        """Image tag mutability (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html;
        PutImageTagMutability API): IMMUTABLE refuses every existing tag; *_WITH_EXCLUSION flips it for tags matching
        one of up to 5 wildcard filters."""
        mode = repo.get("imageTagMutability", "MUTABLE")
        filters = [f.get("filter", "") for f in repo.get("imageTagMutabilityExclusionFilters") or []]
        excluded = any(self._wildcard(f, tag) for f in filters)
        if mode == "IMMUTABLE":
            return True
        if mode == "IMMUTABLE_WITH_EXCLUSION":
            return not excluded
        if mode == "MUTABLE_WITH_EXCLUSION":
            return excluded
        return False

    # -- rules for a manifest (both planes) ---------------------------------------------------------------------

    def check_manifest(self, name: str, raw: bytes, content_type: str) -> tuple[dict[str, Any], str]:
        # Media types with parameters are refused (aws/containers-roadmap#2306: "application/…+json;version=0.2").
        if ";" in content_type:
            raise HarnessError(
                400,
                "MANIFEST_INVALID",
                f"Invalid parameter at 'imageManifestMediaType': '{content_type}' is not supported",
                "InvalidParameterException",
            )
        if content_type not in MANIFEST_TYPES:
            raise HarnessError(400, "MANIFEST_INVALID", f"unsupported manifest media type '{content_type}'", "InvalidParameterException")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise HarnessError(
                400,
                "MANIFEST_INVALID",
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'",
                "InvalidParameterException",
            ) from None
        # A manifest without a top-level mediaType is "Invalid JSON syntax" (containers/image#584; the PutImage API
        # reference: "If you push an image manifest that does not contain the mediaType field, you must specify
        # the imageManifestMediaType"; on the registry API there is no such field).
        if not isinstance(doc, dict) or doc.get("mediaType") != content_type:
            raise HarnessError(
                400,
                "MANIFEST_INVALID",
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'",
                "InvalidParameterException",
            )
        descriptors: list[dict[str, Any]] = []
        if content_type in INDEX_TYPES:
            children = doc.get("manifests") or []
            repo = self._repo(name)
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
                    400,
                    "MANIFEST_INVALID",
                    "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Image has to have at least 1 layer'",
                    "InvalidParameterException",
                )
            descriptors = [doc.get("config") or {}, *layers]
            if doc.get("subject") is not None:
                descriptors_types = [doc.get("artifactType")]
            else:
                descriptors_types = []
            for media in [d.get("mediaType", "") for d in descriptors] + [t for t in descriptors_types if t]:
                if ";" in str(media):  # aws/containers-roadmap#2306
                    raise HarnessError(
                        400, "MANIFEST_INVALID", f"Invalid parameter: media type '{media}' is not supported", "InvalidParameterException"
                    )
            for descriptor in descriptors:
                digest = descriptor.get("digest", "")
                if not self._blob_exists(name, digest):  # PutImage: LayersNotFoundException
                    raise HarnessError(
                        400, "BLOB_UNKNOWN", f"Layer {digest} does not exist in the '{name}' repository", "LayersNotFoundException"
                    )
        return doc, "sha256:" + hashlib.sha256(raw).hexdigest()

    def _blob_exists(self, name: str, digest: str) -> bool:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", str(digest)):
            return False
        return self.http.head(f"{self.registry_url}/v2/{name}/blobs/{digest}", timeout=30).status_code == 200

    def put_manifest(self, name: str, reference: str, raw: bytes, content_type: str) -> str:
        repo_facts = self.repository(name)
        if repo_facts is None:
            raise HarnessError(
                404,
                "NAME_UNKNOWN",
                f"The repository with name '{name}' does not exist in the registry with id '{ACCOUNT}'",
                "RepositoryNotFoundException",
            )
        doc, digest = self.check_manifest(name, raw, content_type)
        repo = self._repo(name)
        with repo.lock:  # ECR creates a tag atomically: of two writers of one immutable tag, one gets an error
            tag = None if reference.startswith("sha256:") else reference
            if tag is not None and tag in repo.tags and self.tag_is_immutable(repo_facts, tag):
                # Registry API answer (observed, e.g. osscontainertools/kaniko#204): TAG_INVALID, also for identical content.
                raise HarnessError(
                    400,
                    "TAG_INVALID",
                    f"The image tag '{tag}' already exists in the '{name}' repository "
                    "and cannot be overwritten because the tag is immutable.",
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
                        f"Adding tag '{tag}' to an image in the repository with name '{name}' in registry with id '{ACCOUNT}' exceeds the "
                        f"maximum allowed number of tags per image which is '{self.limits.tags_per_image}'",
                        "LimitExceededException",
                    )
            response = self.http.put(
                f"{self.registry_url}/v2/{name}/manifests/{reference}", data=raw, headers={"Content-Type": content_type}, timeout=60
            )
            if response.status_code not in (200, 201):
                raise HarnessError(response.status_code, "MANIFEST_INVALID", f"backing registry: {response.text[:200]}")
            size = len(raw) + sum(int(d.get("size", 0)) for d in ([doc.get("config") or {}] + list(doc.get("layers") or [])))
            repo.images.setdefault(
                digest, {"pushed_at": time.time(), "size": size, "media_type": content_type, "artifact_type": doc.get("artifactType")}
            )
            if tag is not None:
                repo.tags[tag] = digest
        self._mirror(name, raw, content_type, digest, tag, repo_facts)
        return digest

    def _mirror(self, name: str, raw: bytes, content_type: str, digest: str, tag: str | None, repo_facts: dict[str, Any]) -> None:
        """Into moto, so that its scan-findings API knows the image (and scans it when the repository scans on push)."""
        body: dict[str, Any] = {
            "repositoryName": name,
            "imageManifest": raw.decode(),
            "imageManifestMediaType": content_type,
            "imageDigest": digest,
        }
        if tag:
            body["imageTag"] = tag
        self._moto("PutImage", body)
        if (repo_facts.get("imageScanningConfiguration") or {}).get("scanOnPush"):
            self._moto("StartImageScan", {"repositoryName": name, "imageId": {"imageDigest": digest}})

    def delete_image(self, name: str, digest: str) -> bool:
        repo = self._repo(name)
        with repo.lock:
            if digest not in repo.images:
                return False
            self.http.delete(f"{self.registry_url}/v2/{name}/manifests/{digest}", timeout=30)
            del repo.images[digest]
            for tag in [t for t, d in repo.tags.items() if d == digest]:
                del repo.tags[tag]
        self._moto("BatchDeleteImage", {"repositoryName": name, "imageIds": [{"imageDigest": digest}]})
        return True

    # -- HTTP ------------------------------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        try:
            if request.command == "POST" and request.path == "/":
                self.control_plane(request)
            elif request.path.startswith("/v2"):
                self.data_plane(request)
            else:
                self._send(request, 404, b"{}")
        except HarnessError as exc:
            if request.path == "/" and request.command == "POST":
                body = json.dumps({"__type": exc.aws_type or exc.code, "message": exc.message}).encode()
                self._send(
                    request,
                    400 if exc.status != 429 else 400,
                    body,
                    {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": exc.aws_type or exc.code},
                )
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

    # -- the registry API ----------------------------------------------------------------------------------------

    def _authorized(self, request: BaseHTTPRequestHandler) -> bool:
        """``docker login -u AWS -p <token>``: Basic auth with user AWS and the GetAuthorizationToken password
        (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html)."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, password = base64.b64decode(header[6:]).decode().split(":", 1)
        except (ValueError, UnicodeDecodeError):
            return False
        return user == "AWS" and password == self.expected_password()

    def data_plane(self, request: BaseHTTPRequestHandler) -> None:
        body = self._body(request) if request.command in ("PUT", "POST", "PATCH") else b""
        if not self._authorized(request):
            self._send(
                request,
                401,
                b'{"errors":[{"code":"DENIED","message":"Not Authorized"}]}',
                {"WWW-Authenticate": f'Basic realm="https://{self.host}/",service="ecr.amazonaws.com"'},
            )
            return
        path = request.path.split("?", 1)[0]
        if path in ("/v2", "/v2/"):
            self._send(request, 200, b"{}")
            return
        match = re.fullmatch(r"/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<ref>.*)", path)
        if not match:
            self._forward(request, body)
            return
        name, kind, ref = match.group("name"), match.group("kind"), match.group("ref")
        self.calls[f"registry {request.command} {kind}"] += 1
        if self.repository(name) is None:
            raise HarnessError(404, "NAME_UNKNOWN", f"The repository with name '{name}' does not exist in the registry with id '{ACCOUNT}'")
        if kind == "manifests" and request.command == "PUT":
            digest = self.put_manifest(name, ref, body, request.headers.get("Content-Type", "").strip())
            self._send(request, 201, b"", {"Docker-Content-Digest": digest, "Location": f"/v2/{name}/manifests/{digest}"})
            return
        if kind == "manifests" and request.command == "DELETE":
            self.delete_image(name, ref) if ref.startswith("sha256:") else None
            self._send(request, 202, b"")
            return
        if kind == "blobs" and ref.startswith("uploads"):
            self._upload(request, name, ref, body)
            return
        self._forward(request, body)

    def _upload(self, request: BaseHTTPRequestHandler, name: str, ref: str, body: bytes) -> None:
        session = ref[len("uploads/") :].strip("/")
        if request.command == "PATCH":
            self.uploads[session] = self.uploads.get(session, 0) + len(body)
        if request.command == "PUT":
            total = self.uploads.pop(session, 0) + len(body)
            if total == 0:
                # CompleteLayerUpload: EmptyUploadException, "The upload … cannot be completed because it does not have
                # any parts" (ECR rejects zero-byte blobs; devcontainers/cli#814).
                raise HarnessError(
                    400, "BLOB_UPLOAD_INVALID", "The upload cannot be completed because it does not have any parts", "EmptyUploadException"
                )
        self._forward(request, body)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "authorization", "content-length", "transfer-encoding", "connection")
        }
        response = self.http.request(
            request.command,
            self.registry_url + request.path,
            data=body or None,
            headers=headers,
            stream=True,
            allow_redirects=False,
            timeout=300,
        )
        request.send_response(response.status_code)
        payload = b"" if request.command == "HEAD" else response.raw.read(decode_content=False)
        for key, value in response.headers.items():
            if key.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            if key.lower() == "location":
                value = value.replace(self.registry_url, self.url)
            request.send_header(key, value)
        length = response.headers.get("Content-Length") if request.command == "HEAD" else str(len(payload))
        request.send_header("Content-Length", length or "0")
        request.end_headers()
        if payload:
            request.wfile.write(payload)

    # -- the control-plane API -------------------------------------------------------------------------------------

    def control_plane(self, request: BaseHTTPRequestHandler) -> None:
        body = self._body(request)
        operation = request.headers.get("X-Amz-Target", "").removeprefix(TARGET_PREFIX)
        self.calls[f"api {operation}"] += 1
        params = json.loads(body or b"{}")
        handler = getattr(self, f"api_{operation}", None)
        if handler is None:  # repositories, mutability, scanning configuration, lifecycle, tokens, scan findings: moto's
            response = self.http.post(
                self.moto_url + "/", data=body, headers={k: v for k, v in request.headers.items() if k.lower() != "host"}, timeout=60
            )
            self._send(
                request,
                response.status_code,
                response.content,
                {"Content-Type": response.headers.get("Content-Type", "application/x-amz-json-1.1")},
            )
            return
        result = handler(params)
        self._send(request, 200, json.dumps(result, default=str).encode(), {"Content-Type": "application/x-amz-json-1.1"})

    def _repo_or_raise(self, params: dict[str, Any]) -> tuple[str, Repo]:
        name = params.get("repositoryName", "")
        if self.repository(name) is None:
            raise HarnessError(
                400,
                "RepositoryNotFoundException",
                f"The repository with name '{name}' does not exist in the registry with id '{ACCOUNT}'",
                "RepositoryNotFoundException",
            )
        return name, self._repo(name)

    def _find(self, repo: Repo, image_id: dict[str, str]) -> str | None:
        digest = image_id.get("imageDigest")
        tag = image_id.get("imageTag")
        if tag is not None:
            found = repo.tags.get(tag)
            return found if digest is None or found == digest else None
        return digest if digest in repo.images else None

    def api_BatchGetImage(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - the API's own name
        name, repo = self._repo_or_raise(params)
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
                f"{self.registry_url}/v2/{name}/manifests/{digest}", headers={"Accept": ", ".join(MANIFEST_TYPES)}, timeout=30
            )
            images.append(
                {
                    "registryId": ACCOUNT,
                    "repositoryName": name,
                    "imageId": {"imageDigest": digest, **({"imageTag": image_id["imageTag"]} if "imageTag" in image_id else {})},
                    "imageManifest": raw.text,
                    "imageManifestMediaType": repo.images[digest]["media_type"],
                }
            )
        return {"images": images, "failures": failures}

    def _details(self, name: str, repo: Repo, digest: str) -> dict[str, Any]:
        info = repo.images[digest]
        detail = {
            "registryId": ACCOUNT,
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

    def _page(self, items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
        size = min(int(params.get("maxResults") or 100), 1000)  # DescribeImages/ListImages: maxResults 1–1000
        start = int(params.get("nextToken") or 0)
        end = start + size
        return items[start:end], (str(end) if end < len(items) else None)

    def api_DescribeImages(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name, repo = self._repo_or_raise(params)
        if params.get("imageIds"):
            digests = []
            for image_id in params["imageIds"]:
                digest = self._find(repo, image_id)
                if digest is None:  # DescribeImages fails as a whole for an image that is not there
                    raise HarnessError(
                        400, "ImageNotFoundException", f"The image with imageId {image_id} does not exist", "ImageNotFoundException"
                    )
                digests.append(digest)
            return {"imageDetails": [self._details(name, repo, d) for d in digests]}
        tagged = (params.get("filter") or {}).get("tagStatus")
        digests = sorted(repo.images, key=lambda d: repo.images[d]["pushed_at"])
        if tagged == "TAGGED":
            digests = [d for d in digests if d in repo.tags.values()]
        page, token = self._page(digests, params)
        result: dict[str, Any] = {"imageDetails": [self._details(name, repo, d) for d in page]}
        if token:
            result["nextToken"] = token
        return result

    def api_ListImages(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        _, repo = self._repo_or_raise(params)
        ids = [{"imageDigest": d, "imageTag": t} for t, d in sorted(repo.tags.items())]
        page, token = self._page(ids, params)
        result: dict[str, Any] = {"imageIds": page}
        if token:
            result["nextToken"] = token
        return result

    def api_BatchDeleteImage(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name, repo = self._repo_or_raise(params)
        deleted, failures = [], []
        for image_id in params.get("imageIds") or []:
            digest = self._find(repo, image_id)
            if digest is None or not self.delete_image(name, digest):
                failures.append({"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"})
            else:
                deleted.append({"imageDigest": digest})
        return {"imageIds": deleted, "failures": failures}

    def api_PutImage(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name, _ = self._repo_or_raise(params)
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
        repo = self._repo(name)
        if tag and repo.tags.get(tag) == digest:
            # PutImage: ImageAlreadyExistsException, "The specified image has already been pushed, and there were no
            # changes to the manifest or image tag after the last push."
            raise HarnessError(400, "ImageAlreadyExistsException", "Image already exists", "ImageAlreadyExistsException")
        try:
            self.put_manifest(name, tag or digest, raw, content_type or "")
        except HarnessError as exc:
            if exc.code == "TAG_INVALID":
                raise HarnessError(400, "ImageTagAlreadyExistsException", exc.message, "ImageTagAlreadyExistsException") from None
            raise HarnessError(400, exc.aws_type or exc.code, exc.message, exc.aws_type) from None
        return {
            "image": {
                "registryId": ACCOUNT,
                "repositoryName": name,
                "imageId": {"imageDigest": digest, **({"imageTag": tag} if tag else {})},
            }
        }

    # -- for tests ---------------------------------------------------------------------------------------------------

    def stats(self) -> Counter[str]:
        return Counter(self.calls)

    def reset_stats(self) -> None:
        self.calls.clear()

    @staticmethod
    def now() -> str:
        return datetime.now(timezone.utc).isoformat()
