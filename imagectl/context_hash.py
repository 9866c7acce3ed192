"""Content hash of an image's inputs: the files Docker would send (honouring .dockerignore), the Dockerfile
and the build arguments that Dockerfile declares. Equal hash → the base image need not be rebuilt."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

_ARG_RE = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE | re.IGNORECASE)


def declared_args(dockerfile_text: str) -> set[str]:
    """Names of the ARGs a Dockerfile declares; only these can change what it builds."""
    return set(_ARG_RE.findall(dockerfile_text))


def _dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(context: Path, dockerfile: Path) -> list[str]:
    """Relative paths of the regular files and links Docker would put in the build context, sorted."""
    # Docker's own .dockerignore matcher, so the hash covers exactly the files the engine receives.
    # Imported here to keep the docker SDK out of `imagectl --help`.
    from docker.utils.build import exclude_paths

    try:
        rel_dockerfile = str(dockerfile.relative_to(context))
    except ValueError:
        rel_dockerfile = None
    included = exclude_paths(str(context), _dockerignore(context), rel_dockerfile)
    return sorted(p for p in included if not (context / p).is_dir() or (context / p).is_symlink())


def context_hash(context: Path, dockerfile: Path, build_args: Mapping[str, str]) -> str:
    """sha256 hex over (path, executable bit, content) of each context file, the Dockerfile and relevant args."""
    digest = hashlib.sha256()
    dockerfile_text = dockerfile.read_text(encoding="utf-8")
    digest.update(b"dockerfile\0" + dockerfile_text.encode() + b"\0")
    used = declared_args(dockerfile_text)
    for key in sorted(k for k in build_args if k in used):
        digest.update(f"arg\0{key}={build_args[key]}\0".encode())
    for rel in context_files(context, dockerfile):
        path = context / rel
        digest.update(b"file\0" + rel.replace(os.sep, "/").encode() + b"\0")
        if path.is_symlink():
            digest.update(b"link\0" + os.readlink(path).encode() + b"\0")
            continue
        digest.update(b"x\0" if os.access(path, os.X_OK) else b"-\0")
        file_digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                file_digest.update(chunk)
        digest.update(file_digest.digest())
    return digest.hexdigest()
