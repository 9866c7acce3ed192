"""The Docker engine (Docker SDK for Python): build with the classic builder, push and pull.

Credentials are handed to each push/pull call (X-Registry-Auth) and never written to ~/.docker/config.json.
Progress events are passed to a callback; the caller decides how to show them.
"""

from __future__ import annotations

import errno
import tempfile
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from imagectl.errors import DockerError

Event = dict[str, Any]
OnEvent = Callable[[Event], None]


class DockerEngine:
    def __init__(self, timeout: int = 600) -> None:
        try:
            self.client = docker.from_env(timeout=timeout)
            self.client.ping()
        except DockerException as exc:
            raise DockerError(
                f"cannot reach the Docker engine: {_short(exc)}",
                "start Docker (or set DOCKER_HOST), or use --dry-run to see the plan without building",
            ) from None

    def build(
        self,
        *,
        context: Path,
        dockerfile: Path,
        tag: str,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
        network_mode: str | None,
        on_event: OnEvent,
    ) -> str:
        """Build and return the image id. A failed step raises DockerError with that step's last output lines."""
        tail: deque[str] = deque(maxlen=30)
        image_id = None
        try:
            stream = self.client.api.build(
                path=str(context),
                dockerfile=str(dockerfile),
                tag=tag,
                buildargs=dict(build_args),
                labels=dict(labels),
                network_mode=network_mode,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for event in stream:
                on_event(event)
                if "stream" in event:
                    tail.extend(line for line in event["stream"].splitlines() if line.strip())
                if "aux" in event and isinstance(event["aux"], dict) and "ID" in event["aux"]:
                    image_id = event["aux"]["ID"]
                if "error" in event or "errorDetail" in event:
                    message = event.get("error") or event["errorDetail"].get("message", "")
                    raise DockerError(
                        f"docker build of {tag} failed: {message.strip()}",
                        "fix the failing step shown above",
                        details="\n".join(f"  {line}" for line in tail),
                    )
        except APIError as exc:
            raise DockerError(f"docker build of {tag} failed: {_short(exc)}", "check the Dockerfile and build context") from None
        except OSError as exc:  # the SDK packs the build context into a temporary file first
            if exc.errno == errno.ENOSPC:
                raise DockerError(
                    f"no space left to pack the build context of {tag} ({exc.filename or tempfile.gettempdir()})",
                    "free space there, or point TMPDIR at a filesystem with room",
                ) from None
            raise DockerError(f"the build context of {tag} could not be read: {exc.strerror}", "check the context's files") from None
        if image_id is None:
            image_id = self.client.images.get(tag).id
        return image_id

    def push(self, reference: str, tag: str, auth: dict[str, str] | None, on_event: OnEvent) -> str:
        """Push ``reference:tag`` and return the registry's manifest digest."""
        digest = None
        try:
            for event in self.client.api.push(reference, tag=tag, auth_config=auth, stream=True, decode=True):
                on_event(event)
                if "error" in event or "errorDetail" in event:
                    message = event.get("error") or event["errorDetail"].get("message", "")
                    raise DockerError(f"docker push of {reference}:{tag} failed: {message.strip()}", _push_hint(message))
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = aux["Digest"]
        except APIError as exc:
            raise DockerError(f"docker push of {reference}:{tag} failed: {_short(exc)}", _push_hint(str(exc))) from None
        if not digest:
            raise DockerError(f"docker push of {reference}:{tag} reported no digest", "check the registry")
        return digest

    def pull(self, reference: str, digest: str, auth: dict[str, str] | None, on_event: OnEvent) -> None:
        try:
            for event in self.client.api.pull(reference, tag=digest, auth_config=auth, stream=True, decode=True):
                on_event(event)
                if "error" in event:
                    raise DockerError(f"docker pull of {reference}@{digest} failed: {event['error']}", "check the registry and credentials")
        except APIError as exc:
            raise DockerError(f"docker pull of {reference}@{digest} failed: {_short(exc)}", "check the registry and credentials") from None

    def has_image(self, reference: str) -> bool:
        try:
            self.client.images.get(reference)
            return True
        except ImageNotFound:
            return False
        except APIError:
            return False


def _short(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())[:300]


def _push_hint(message: str) -> str:
    lowered = message.lower()
    if "unauthorized" in lowered or "authentication" in lowered or "denied" in lowered:
        return "check the registry credentials (IMAGECTL_REGISTRY_*_USERNAME/_PASSWORD, or the AWS credential chain for ECR)"
    if "immutable" in lowered or "already exists" in lowered:
        return "tags are never moved: use a new build number"
    return "check that the registry is reachable from the Docker engine"
