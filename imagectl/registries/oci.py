"""Any OCI distribution-API registry (Docker's registry, Harbor, GitLab, a local one for the demo and tests).

Credentials (registries' logins, resolved once in credentials.py) are sent as Basic auth, or exchanged for a
bearer token when the registry asks for one.

What the distribution API does not give, and what imagectl does instead:
- no conditional write (a PUT to a tag overwrites it; distribution 2.8 even rewrites the tag's link file in
  place, so a reader can briefly see it empty — the registry answers 500 then, which is retried): tags are
  never moved because imagectl reads a tag before writing it, and a tag that must go to exactly one writer
  (a history revision, a release version) is *claimed* with a splitter (Moir & Anderson, 1995) on two
  registers beside it, ``<tag>.claim`` and ``<tag>.door``. The splitter lets at most one of any number of
  concurrent writers win, with reads and writes alone and no timing assumption; a slot whose door closed
  without a winner is simply skipped. It needs tag reads to see completed writes (true of distribution on a
  filesystem or S3, Harbor, GitLab; not of a caching proxy in front of them).
- no ordered or paged tag listing in distribution 2.8 (``n`` and ``last`` are ignored): the history finds
  its newest revision by probing the claim doors (history.py), never by listing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Protocol, cast
from urllib.parse import quote, urljoin, urlsplit

import requests

from imagectl.adapters import http
from imagectl.credentials import Credentials, Login
from imagectl.errors import ConflictError, RegistryError
from imagectl.namespaces import claim_tag, door_tag
from imagectl.registries._base import (
    EMPTY_DESCRIPTOR,
    MANIFEST_TYPES,
    OCI_MANIFEST,
    Capabilities,
    Claim,
    Manifest,
    Registry,
    RemoteImage,
    RepositoryChange,
)
from imagectl.sanitize import visible
from imagectl.settings import RegistryConfig, Timeouts

_ACCEPT = ", ".join(MANIFEST_TYPES)
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
PARALLEL = 16
MAX_MANIFEST = 4 << 20  # the distribution spec's recommended manifest size limit (4 MiB)
DOOR_ARTIFACT = "application/vnd.imagectl.door.v1+json"


def door_manifest() -> Manifest:
    """The one manifest every door tag points at: an empty OCI 1.1 artifact."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": DOOR_ARTIFACT,
        "config": EMPTY_DESCRIPTOR,
        "layers": [EMPTY_DESCRIPTOR],
    }
    return Manifest.from_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(), OCI_MANIFEST)


class Registers(Protocol):
    """What the splitter needs: reading, writing (overwriting) and checking single tags."""

    name: str

    def _get_manifest(self, repository: str, ref: str) -> Manifest | None: ...

    def _write(self, repository: str, tag: str, manifest: Manifest) -> None: ...

    def _exists(self, repository: str, ref: str) -> bool: ...

    def ensure_empty_blob(self, repository: str) -> None: ...


def splitter_claim(registers: Registers, repository: str, tag: str, manifest: Manifest) -> Claim:
    """Claim ``tag`` with a splitter (Moir & Anderson, 1995) on ``<tag>.claim`` (X) and ``<tag>.door`` (Y):
    write X := mine; if the door is closed, lose; close the door; win iff X still holds mine. Only the winner
    writes ``tag`` itself.

    Of any number of concurrent claimers at most one wins: two winners would each have read X unchanged after
    closing the door, so the later one's write of X came after the earlier one had closed the door, and the
    later one would then have found it closed. A slot can end with no winner (the door closed, X overwritten by
    a late claimer); callers move on to the next one. ``manifest`` must differ between claimers that want
    different outcomes (revision records carry a nonce)."""
    current = registers._get_manifest(repository, tag)
    if current is not None:
        return Claim.SAME if current.digest == manifest.digest else Claim.TAKEN
    registers.ensure_empty_blob(repository)
    register, door = claim_tag(tag), door_tag(tag)
    registers._write(repository, register, manifest)
    if registers._exists(repository, door):
        return Claim.TAKEN
    registers._write(repository, door, door_manifest())
    holder = registers._get_manifest(repository, register)
    if holder is None or holder.digest != manifest.digest:
        return Claim.TAKEN
    registers._write(repository, tag, manifest)
    written = registers._get_manifest(repository, tag)
    if written is None or written.digest != manifest.digest:
        raise RegistryError(
            f"registry '{registers.name}' does not show {repository}:{tag} as written after imagectl won its claim",
            "something other than imagectl writes imagectl's tags in this repository; restrict push rights",
        )
    return Claim.CLAIMED


class OciRegistry(Registry):
    kind = "oci"

    def __init__(self, config: RegistryConfig, login: Login | None = None, timeouts: Timeouts | None = None) -> None:
        super().__init__(config, login, timeouts)
        scheme = "http" if config.insecure else "https"
        self.base_url = f"{scheme}://{config.host}"
        self.http = http.session()
        self.http_once = http.session(retries=0, blocksize=1 << 20)  # streamed uploads: a stream cannot be rewound for a retry
        self._tokens: dict[str, str] = {}
        self._threads: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        """One pool per registry for its parallel reads: starting threads per call cost more than the reads."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix=f"oci-{self.name}")
        return self._threads

    def capabilities(self, repository: str) -> Capabilities:
        return Capabilities(atomic_tag_create=False, retention_policy=False, batch_read=1, probe_fanout=PARALLEL, detailed_listing=False)

    # -- HTTP with auth ------------------------------------------------------------------------------------------

    def _credentials(self) -> tuple[str, str] | None:
        return (self.login.username, self.login.password) if self.login else None

    def _login_hint(self) -> str:
        specific, shared = Credentials.registry_variables(self.name)
        return f"set {specific}USERNAME and {specific}PASSWORD (or {shared}USERNAME and {shared}PASSWORD)"

    def _request(self, method: str, path: str, scope: str, once: bool = False, what: str = "", **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + path
        session = self.http_once if once else self.http
        headers = dict(kwargs.pop("headers", {}))
        what = what or f"{method} {path.split('?')[0]}"
        token = self._tokens.get(scope)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = http.send(
                session,
                method,
                url,
                timeouts=self.timeouts,
                what=what,
                headers=headers,
                auth=None if token else self._credentials(),
                **kwargs,
            )
            if response.status_code == 401 and "bearer" in response.headers.get("WWW-Authenticate", "").lower():
                self._tokens[scope] = self._fetch_token(response.headers["WWW-Authenticate"], scope)
                headers["Authorization"] = f"Bearer {self._tokens[scope]}"
                response = http.send(session, method, url, timeouts=self.timeouts, what=what, headers=headers, **kwargs)
        except requests.RequestException as exc:
            raise RegistryError(
                f"registry '{self.name}' at {self.base_url}: {http.explain(exc, self.timeouts)} ({what})",
                "check the registry host in imagectl.toml and that the registry is running",
            ) from None
        if response.status_code == 401:
            raise RegistryError(f"registry '{self.name}' ({self.host}) refused the credentials", self._login_hint())
        if response.status_code == 403:
            raise RegistryError(f"registry '{self.name}' denied {what}{self._error_text(response)}", self._denied_hint(response))
        return response

    def _denied_hint(self, response: requests.Response) -> str:
        return "the registry user needs push and pull rights on that repository"

    def _fetch_token(self, challenge: str, scope: str) -> str:
        params = dict(_CHALLENGE_RE.findall(challenge))
        realm = params.pop("realm", None)
        if not realm or not realm.startswith(("http://", "https://")):
            raise RegistryError(f"registry '{self.name}' sent an auth challenge without a usable realm", "check the registry's auth set-up")
        if not self._realm_allowed(realm):
            raise RegistryError(
                f"registry '{self.name}' asks for its login to be sent to {visible(urlsplit(realm).netloc)[:80]}, outside its own domain "
                "(or over plain HTTP); imagectl does not send it there",
                "check that the registry host in imagectl.toml is the registry you mean",
            )
        params["scope"] = scope
        try:
            response = http.send(self.http, "GET", realm, timeouts=self.timeouts, what="a token", params=params, auth=self._credentials())
        except requests.RequestException as exc:
            raise RegistryError(
                f"the token service of registry '{self.name}': {http.explain(exc, self.timeouts)}", "check the network"
            ) from None
        if response.status_code != 200:
            raise RegistryError(f"registry '{self.name}' refused a token (HTTP {response.status_code})", self._login_hint())
        body = http.json_body(response)
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"registry '{self.name}' answered the token request without a token", "check the registry's auth set-up")
        return token

    def _realm_allowed(self, realm: str) -> bool:
        """The token service a registry names may be on another host of the registry's own domain (GitLab:
        registry.gitlab.com → gitlab.com; Docker Hub: registry-1.docker.io → auth.docker.io), never elsewhere,
        and over HTTPS unless the registry itself is plain HTTP."""
        parts = urlsplit(realm)
        if parts.scheme != "https" and not self.config.insecure:
            return False
        mine, theirs = (urlsplit(self.base_url).hostname or ""), (parts.hostname or "")
        if mine == theirs:
            return True
        if any(c.isalpha() for c in mine) and any(c.isalpha() for c in theirs):  # names, not IP addresses
            return mine.split(".")[-2:] == theirs.split(".")[-2:] and len(mine.split(".")) >= 2
        return False

    @staticmethod
    def _scope(repository: str, push: bool = False) -> str:
        return f"repository:{repository}:{'pull,push' if push else 'pull'}"

    @staticmethod
    def _error_text(response: requests.Response) -> str:
        """': CODE message' from a distribution error body, shown safely and short; '' when there is none."""
        body = http.json_body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code, message = str(errors[0].get("code", "")), str(errors[0].get("message", ""))
            return f": {visible(code)[:40]} {visible(message)[:200]}".rstrip()
        return ""

    @staticmethod
    def _error_code(response: requests.Response) -> str:
        body = http.json_body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code", ""))
        return ""

    def _unexpected(self, response: requests.Response, what: str) -> RegistryError:
        return RegistryError(
            f"registry '{self.name}' answered HTTP {response.status_code} to {what}{self._error_text(response)}",
            "check the registry's logs",
        )

    @staticmethod
    def _path(repository: str, kind: str, ref: str) -> str:
        return f"/v2/{repository}/{kind}/{quote(ref, safe=':')}"

    # -- Registry interface ---------------------------------------------------------------------------------------

    def docker_auth(self) -> dict[str, str] | None:
        creds = self._credentials()
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
        seen_pages = 0
        while path and seen_pages < 10_000:
            seen_pages += 1
            response = self._request("GET", path, self._scope(repository), what=f"listing tags of {repository}")
            if response.status_code == 404:
                return []
            if response.status_code != 200:
                raise self._unexpected(response, f"listing tags of {repository}")
            body = http.json_body(response)
            if not isinstance(body, dict) or not isinstance(body.get("tags") or [], list):
                raise RegistryError(
                    f"registry '{self.name}' answered the tag listing of {repository} with something that is not a tag list",
                    "check that host points at a registry",
                )
            tags.extend(t for t in (body.get("tags") or []) if isinstance(t, str))
            match = re.search(r"<([^>]+)>", response.headers.get("Link", ""))
            path = urljoin(self.base_url + "/", match.group(1)) if match else None
            if path and not path.startswith(self.base_url):
                path = None  # never follow a Link to another host with our credentials
        return tags

    def _get_manifest(self, repository: str, ref: str) -> Manifest | None:
        what = f"reading {repository}:{ref}" if not ref.startswith("sha256:") else f"reading {repository}@{ref[:19]}"
        response = self._request(
            "GET", self._path(repository, "manifests", ref), self._scope(repository), headers={"Accept": _ACCEPT}, what=what
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unexpected(response, what)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip() or None
        if len(response.content) > MAX_MANIFEST:
            raise RegistryError(f"registry '{self.name}' answered {what} with more than {MAX_MANIFEST} bytes", "it is not a manifest")
        try:
            manifest = Manifest.from_bytes(response.content, media_type)
        except ValueError:
            raise RegistryError(
                f"registry '{self.name}' answered {what} with something that is not a manifest", "check that host points at a registry"
            ) from None
        if ref.startswith("sha256:") and manifest.digest != ref:
            # Content addressing: what comes back for a digest must have that digest (a swapped answer is refused).
            raise RegistryError(
                f"registry '{self.name}' answered {what} with a manifest whose digest is {manifest.digest[:19]}",
                "the registry (or something between) returned other content; nothing was changed",
            )
        return manifest

    def get_manifests(self, repository: str, refs: list[str]) -> dict[str, Manifest]:
        refs = list(dict.fromkeys(refs))
        if len(refs) <= 1:
            found = [self._get_manifest(repository, ref) for ref in refs]
        else:
            found = http.map_in(self._pool(), lambda ref: self._get_manifest(repository, ref), refs)
        return {ref: m for ref, m in zip(refs, found, strict=True) if m is not None}

    def _exists(self, repository: str, ref: str) -> bool:
        response = self._request(
            "HEAD",
            self._path(repository, "manifests", ref),
            self._scope(repository),
            headers={"Accept": _ACCEPT},
            what=f"checking {repository}:{ref}",
        )
        if response.status_code not in (200, 404):
            raise self._unexpected(response, f"checking {repository}:{ref}")
        return response.status_code == 200

    def existing(self, repository: str, refs: list[str]) -> set[str]:
        refs = list(dict.fromkeys(refs))
        if len(refs) <= 1:
            return {ref for ref in refs if self._exists(repository, ref)}
        flags = http.map_in(self._pool(), lambda ref: self._exists(repository, ref), refs)
        return {ref for ref, there in zip(refs, flags, strict=True) if there}

    def list_images(self, repository: str) -> list[RemoteImage]:
        tags = self.list_tags(repository)
        images: dict[str, RemoteImage] = {}
        for tag, manifest in self.get_manifests(repository, tags).items():
            image = images.setdefault(manifest.digest, RemoteImage(digest=manifest.digest, size=manifest.size))
            image.tags.append(tag)
        return list(images.values())

    def _put(self, repository: str, tag: str, manifest: Manifest) -> requests.Response:
        return self._request(
            "PUT",
            self._path(repository, "manifests", tag),
            self._scope(repository, push=True),
            data=manifest.raw,
            headers={"Content-Type": manifest.media_type},
            what=f"writing {repository}:{tag}",
        )

    def _write(self, repository: str, tag: str, manifest: Manifest) -> None:
        response = self._put(repository, tag, manifest)
        if response.status_code not in (200, 201):
            raise self._unexpected(response, f"writing {repository}:{tag}")

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> bool:
        existing = self._get_manifest(repository, tag)
        if existing is not None:
            if existing.digest == manifest.digest:
                return False
            raise ConflictError(
                f"{self.reference(repository, tag)} already exists with digest {existing.digest}",
                "tags are never moved: use a new build number",
            )
        self._write(repository, tag, manifest)
        return True

    # -- claims: a splitter on <tag>.claim and <tag>.door --------------------------------------------------------

    def claim_marker(self, tag: str) -> str:
        return door_tag(tag)

    def claim_tag(self, repository: str, tag: str, manifest: Manifest) -> Claim:
        return splitter_claim(self, repository, tag, manifest)

    # -- blobs -----------------------------------------------------------------------------------------------------

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self._request(
            "HEAD", self._path(repository, "blobs", digest), self._scope(repository), what=f"checking blob {digest[:19]}"
        )
        if response.status_code not in (200, 404):
            raise self._unexpected(response, f"checking blob {digest[:19]} in {repository}")
        return response.status_code == 200

    def open_blob(self, repository: str, digest: str) -> BinaryIO:
        # A registry may redirect a blob download to storage on another host (ECR: a pre-signed S3 URL): followed,
        # with no credentials (adapters/http.py).
        response = self._request(
            "GET",
            self._path(repository, "blobs", digest),
            self._scope(repository),
            stream=True,
            offsite_redirects=True,
            what=f"reading blob {digest[:19]}",
        )
        if response.status_code != 200:
            raise self._unexpected(response, f"reading blob {digest[:19]} from {repository}")
        response.raw.decode_content = False  # blobs are content-addressed: pass the bytes through untouched
        return cast(BinaryIO, response.raw)

    def put_blob(self, repository: str, digest: str, size: int, stream: BinaryIO) -> None:
        scope = self._scope(repository, push=True)
        start = self._request("POST", f"/v2/{repository}/blobs/uploads/", scope, what=f"starting an upload to {repository}")
        if start.status_code != 202 or "Location" not in start.headers:
            raise self._unexpected(start, f"starting an upload to {repository}")
        location = urljoin(self.base_url + "/", start.headers["Location"])
        if not location.startswith(self.base_url):
            raise RegistryError(f"registry '{self.name}' sent an upload location on another host", "check the registry's configuration")
        separator = "&" if "?" in location else "?"
        done = self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            scope,
            once=True,
            data=_Sized(stream, size),
            headers={"Content-Type": "application/octet-stream"},
            what=f"uploading blob {digest[:19]}",
        )
        if done.status_code not in (201, 204):
            raise self._unexpected(done, f"uploading blob {digest[:19]} to {repository}")

    def delete_manifest(self, repository: str, digest: str) -> None:
        response = self._request(
            "DELETE",
            self._path(repository, "manifests", digest),
            self._scope(repository, push=True),
            what=f"deleting {repository}@{digest[:19]}",
        )
        if response.status_code == 405:
            raise RegistryError(
                f"registry '{self.name}' does not allow deleting manifests", "enable deletes (distribution: storage.delete.enabled: true)"
            )
        if response.status_code not in (200, 202, 404):
            raise self._unexpected(response, f"deleting {repository}@{digest[:19]}")


class _Sized:
    """A stream with a known length, so requests sends Content-Length instead of chunked encoding."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        return self.stream.read(n)
