#!/usr/bin/env bash
# Make a Debian bookworm + Python 3.11 image locally, for machines that cannot pull python:3.11-slim
# (no Docker Hub access). Prints the image name. Skips the work when the image already exists.
#   usage: scripts/python-image.sh [IMAGE]   (default: imagectl-local/python:3.11-bookworm)
set -euo pipefail
image="${1:-imagectl-local/python:3.11-bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi
# The Debian mirror: DEBIAN_MIRROR, else the one this machine's apt uses (a Debian host), never a name of ours.
apt_mirror() {
  grep -hE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -n 1
  grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | awk '{print $1}' | grep -v -- '-security' | head -n 1
}
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ] && grep -qx 'ID=debian' /etc/os-release 2>/dev/null; then
  mirror="$(apt_mirror | head -n 1)"
fi
if [ -z "$mirror" ]; then
  echo "python-image: no Debian mirror found in /etc/apt (this host is not Debian?): set DEBIAN_MIRROR=<a Debian mirror URL>" >&2
  exit 1
fi
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
