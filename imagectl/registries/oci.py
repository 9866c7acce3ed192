"""Any OCI distribution-API registry (Docker's registry, Harbor, GitLab, a local one for the demo and tests).

Credentials come from IMAGECTL_REGISTRY_[<NAME>_]USERNAME/PASSWORD and are sent as Basic auth, or exchanged for a
bearer token when the registry asks for one. Tag immutability is enforced by imagectl itself (the API has no
conditional PUT): a tag is read before it is written, and an existing tag with other content is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO
from urllib.parse import urljoin

import requests

from imagectl.adapters.http import TIMEOUT, session
from imagectl.errors import ConflictError, RegistryError
from imagectl.registries._base import MANIFEST_TYPES, Manifest, Registry, RemoteImage, RepositoryChange

_ACCEPT = ", ".join(MANIFEST_TYPES)
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


class OciRegistry(Registry):
    kind = "oci"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        scheme = "http" if config.insecure else "https"
        self.base_url = f"{scheme}://{config.host}"
        self.http = session()
        self.http_once = session(retries=0)  # for streamed uploads: a stream cannot be rewound for a retry
        self._tokens: dict[str, str] = {}

    # -- HTTP with auth ------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, scope: str, once: bool = False, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + path
        http = self.http_once if once else self.http
        headers = dict(kwargs.pop("headers", {}))
        creds = self.credentials()
        token = self._tokens.get(scope)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = http.request(method, url, headers=headers, auth=None if token else creds, timeout=TIMEOUT, **kwargs)
            if response.status_code == 401 and "bearer" in response.headers.get("WWW-Authenticate", "").lower():
                self._tokens[scope] = self._fetch_token(response.headers["WWW-Authenticate"], scope)
                headers["Authorization"] = f"Bearer {self._tokens[scope]}"
                response = http.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise RegistryError(
                f"cannot reach registry '{self.name}' at {self.base_url}: {type(exc).__name__}",
                "check the registry host in imagectl.toml and that the registry is running",
            ) from None
        if response.status_code == 401:
            raise RegistryError(
                f"registry '{self.name}' ({self.host}) refused the credentials",
                f"set IMAGECTL_REGISTRY_{self.name.upper()}_USERNAME/_PASSWORD (or IMAGECTL_REGISTRY_USERNAME/_PASSWORD)",
            )
        if response.status_code == 403:
            raise RegistryError(
                f"registry '{self.name}' denied {method} {path.split('?')[0]}",
                "the registry user needs push and pull rights on that repository",
            )
        return response

    def _fetch_token(self, challenge: str, scope: str) -> str:
        params = dict(_CHALLENGE_RE.findall(challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise RegistryError(f"registry '{self.name}' sent an auth challenge without a realm", "check the registry's auth set-up")
        params["scope"] = scope
        try:
            response = self.http.get(realm, params=params, auth=self.credentials(), timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise RegistryError(
                f"cannot reach the token service of registry '{self.name}': {type(exc).__name__}", "check the network"
            ) from None
        if response.status_code != 200:
            raise RegistryError(f"registry '{self.name}' refused a token (HTTP {response.status_code})", "check the registry credentials")
        body = response.json()
        return body.get("token") or body.get("access_token") or ""

    @staticmethod
    def _scope(repository: str, push: bool = False) -> str:
        return f"repository:{repository}:{'pull,push' if push else 'pull'}"

    def _unexpected(self, response: requests.Response, what: str) -> RegistryError:
        return RegistryError(f"registry '{self.name}' answered HTTP {response.status_code} to {what}", "check the registry's logs")

    # -- Registry interface ---------------------------------------------------------------------------------------

    def docker_auth(self) -> dict[str, str] | None:
        creds = self.credentials()
        if not creds:
            return None
        return {"username": creds[0], "password": creds[1], "serveraddress": self.host}

    def plan_repository(self, repository: str) -> list[RepositoryChange]:
        return []  # distribution registries create repositories on first push and have no policies to set

    def apply_repository(self, changes: Iterable[RepositoryChange]) -> None:
        return None

    def list_tags(self, repository: str) -> list[str]:
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n=1000"
        while path:
            response = self._request("GET", path, self._scope(repository))
            if response.status_code == 404:
                return []
            if response.status_code != 200:
                raise self._unexpected(response, f"listing tags of {repository}")
            tags.extend(response.json().get("tags") or [])
            link = response.headers.get("Link", "")
            match = re.search(r"<([^>]+)>", link)
            path = urljoin(self.base_url + "/", match.group(1)) if match else None
        return tags

    def _get_manifest(self, repository: str, ref: str) -> Manifest | None:
        response = self._request("GET", f"/v2/{repository}/manifests/{ref}", self._scope(repository), headers={"Accept": _ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unexpected(response, f"reading {repository}:{ref}")
        media_type = response.headers.get("Content-Type", "").split(";")[0] or None
        return Manifest.from_bytes(response.content, media_type)

    def get_manifests(self, repository: str, refs: list[str]) -> dict[str, Manifest]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            manifests = list(pool.map(lambda ref: self._get_manifest(repository, ref), refs))
        return {ref: m for ref, m in zip(refs, manifests, strict=True) if m is not None}

    def list_images(self, repository: str) -> list[RemoteImage]:
        tags = self.list_tags(repository)
        images: dict[str, RemoteImage] = {}
        for tag, manifest in self.get_manifests(repository, tags).items():
            image = images.setdefault(manifest.digest, RemoteImage(digest=manifest.digest, size=manifest.size))
            image.tags.append(tag)
        return list(images.values())

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> bool:
        existing = self._get_manifest(repository, tag)
        if existing is not None:
            if existing.digest == manifest.digest:
                return False
            raise ConflictError(
                f"{self.reference(repository, tag)} already exists with digest {existing.digest}",
                "tags are never moved: use a new build number",
            )
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            self._scope(repository, push=True),
            data=manifest.raw,
            headers={"Content-Type": manifest.media_type},
        )
        if response.status_code not in (200, 201):
            raise self._unexpected(response, f"writing {repository}:{tag}")
        return True

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", self._scope(repository))
        if response.status_code not in (200, 404):
            raise self._unexpected(response, f"checking blob {digest[:19]} in {repository}")
        return response.status_code == 200

    def open_blob(self, repository: str, digest: str) -> BinaryIO:
        response = self._request("GET", f"/v2/{repository}/blobs/{digest}", self._scope(repository), stream=True)
        if response.status_code != 200:
            raise self._unexpected(response, f"reading blob {digest[:19]} from {repository}")
        response.raw.decode_content = False  # blobs are content-addressed: pass the bytes through untouched
        return response.raw

    def put_blob(self, repository: str, digest: str, size: int, stream: BinaryIO) -> None:
        scope = self._scope(repository, push=True)
        start = self._request("POST", f"/v2/{repository}/blobs/uploads/", scope)
        if start.status_code != 202:
            raise self._unexpected(start, f"starting an upload to {repository}")
        location = urljoin(self.base_url + "/", start.headers["Location"])
        separator = "&" if "?" in location else "?"
        done = self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            scope,
            once=True,
            data=_Sized(stream, size),
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status_code not in (201, 204):
            raise self._unexpected(done, f"uploading blob {digest[:19]} to {repository}")

    def delete_manifest(self, repository: str, digest: str) -> None:
        response = self._request("DELETE", f"/v2/{repository}/manifests/{digest}", self._scope(repository, push=True))
        if response.status_code not in (200, 202, 404):
            raise self._unexpected(response, f"deleting {repository}@{digest}")


class _Sized:
    """A stream with a known length, so requests sends Content-Length instead of chunked encoding."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        return self.stream.read(n)
