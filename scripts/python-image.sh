#!/usr/bin/env bash
# Make a Debian bookworm + Python 3.11 image locally, for machines that cannot pull python:3.11-slim
# (no Docker Hub access). Prints the image name. Skips the work when the image already exists.
#   usage: scripts/python-image.sh [IMAGE]   (default: imagectl-local/python:3.11-bookworm)
set -euo pipefail
image="${1:-imagectl-local/python:3.11-bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "python-image: debootstrap bookworm (about a minute)..." >&2
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
tar -C "$work/rootfs" -c . | docker import - "$image-minbase" >/dev/null
cat >"$work/Dockerfile" <<DOCKERFILE
FROM $image-minbase
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv git ca-certificates \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
DOCKERFILE
echo "python-image: installing python3 and git..." >&2
docker build --network host -q -t "$image" "$work" >/dev/null
docker rmi "$image-minbase" >/dev/null
echo "$image"
