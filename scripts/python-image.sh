#!/usr/bin/env bash
# Make a Debian bookworm + Python 3.11 image locally, for machines that cannot pull python:3.11-slim
# (no Docker Hub access). Prints the image name. Skips the work when the image already exists; CI builds it
# under a name of its own on every run (tests/integration/conftest.py), so the path below is always exercised.
#   usage: scripts/python-image.sh [IMAGE]   (default: imagectl-local/python:3.11-bookworm)
#          scripts/python-image.sh --mirror  (print the Debian mirror it would use, and stop)
# The Debian mirror: DEBIAN_MIRROR, else the one this machine's apt uses, never a name of ours: the first source
# (in apt's order: sources.list, then sources.list.d/*.list and *.sources, one-line or deb822 format) of type
# deb with suite bookworm and component main; on a Debian host of another release, one with that release's suite.
# IMAGECTL_APT_DIR (default /etc/apt) and IMAGECTL_OS_RELEASE (default /etc/os-release) say where to look.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

apt_dir="${IMAGECTL_APT_DIR:-/etc/apt}"
os_release="${IMAGECTL_OS_RELEASE:-/etc/os-release}"

# Every enabled `deb` source as "URI SUITE COMPONENT...", one line per URI and suite, in the order apt reads them.
apt_sources() {
  local files=() f
  if [ -f "$apt_dir/sources.list" ]; then files+=("$apt_dir/sources.list"); fi
  if [ -d "$apt_dir/sources.list.d" ]; then  # apt reads them in file-name order, whatever their format
    while IFS= read -r f; do files+=("$f"); done < <(
      find "$apt_dir/sources.list.d" -maxdepth 1 -type f \( -name '*.list' -o -name '*.sources' \) | LC_ALL=C sort
    )
  fi
  if [ "${#files[@]}" -eq 0 ]; then return 0; fi
  awk '
    function trim(s) { sub(/^[[:space:]]+/, "", s); sub(/[[:space:]]+$/, "", s); return s }
    function flush(   nt, types, is_deb, i, j, nu, uris, ns, suites) {
      if (have && tolower(field["enabled"]) !~ /^(no|false|0)$/) {
        nt = split(field["types"], types, " ")
        is_deb = 0
        for (i = 1; i <= nt; i++) if (types[i] == "deb") is_deb = 1
        if (is_deb) {
          nu = split(field["uris"], uris, " ")
          ns = split(field["suites"], suites, " ")
          for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print uris[i], suites[j], field["components"]
        }
      }
      split("", field); have = 0; key = ""
    }
    FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
    deb822 {
      if ($0 ~ /^[[:space:]]*#/) next
      if ($0 ~ /^[[:space:]]*$/) { flush(); next }
      if ($0 ~ /^[[:space:]]/) { if (key != "") field[key] = field[key] " " trim($0); next }
      i = index($0, ":")
      if (i == 0) next
      key = tolower(trim(substr($0, 1, i - 1)))
      field[key] = trim(substr($0, i + 1))
      have = 1
      next
    }
    {
      line = $0
      sub(/#.*/, "", line)
      line = trim(line)
      if (line !~ /^deb[[:space:]]/) next
      line = trim(substr(line, 4))
      if (substr(line, 1, 1) == "[") line = trim(substr(line, index(line, "]") + 1))
      n = split(line, w, " ")
      if (n < 2) next
      out = w[1] " " w[2]
      for (i = 3; i <= n; i++) out = out " " w[i]
      print out
    }
    END { flush() }
  ' "${files[@]}"
}

# The first source that serves bookworm's main component (else, on a Debian host, its own release's).
find_mirror() {
  local codename=""
  if grep -qx 'ID=debian' "$os_release" 2>/dev/null; then
    codename="$(sed -n 's/^VERSION_CODENAME=//p' "$os_release" | tr -d '"')"
  fi
  apt_sources | awk -v codename="$codename" '
    $1 !~ /^(https?|file):/ { next }
    { main = 0; for (i = 3; i <= NF; i++) if ($i == "main") main = 1 }
    !main { next }
    $2 == "bookworm" && bookworm == "" { bookworm = $1 }
    codename != "" && ($2 == codename || $2 ~ /^(stable|oldstable|testing|unstable|sid)$/) && other == "" { other = $1 }
    END { if (bookworm != "") print bookworm; else if (other != "") print other }
  '
}

step "find a Debian mirror"
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then mirror="$(find_mirror)"; fi
if [ -z "$mirror" ]; then
  fail "no Debian mirror found in $apt_dir (no sources.list, sources.list.d/*.list or *.sources entry of type deb" \
    "with suite bookworm and component main) — set DEBIAN_MIRROR=<a Debian mirror URL>"
fi
if [ "${1:-}" = "--mirror" ]; then echo "$mirror"; exit 0; fi

image="${1:-imagectl-local/python:3.11-bookworm}"
step "reach the Docker engine"
docker info >/dev/null 2>&1 || fail "no Docker engine answers — start one (as root: scripts/start-docker.sh)"
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi

work="$(mktemp -d)"
cleanup() {
  rm -rf "$work"
  docker image rm "$image-minbase" >/dev/null 2>&1 || true
}
on_exit cleanup

step "debootstrap"
echo "python-image: debootstrap bookworm from $mirror (about a minute)..." >&2
if ! debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  fail "debootstrap bookworm from $mirror failed (the last lines of its log are above; it needs root)" \
    "— check that the mirror serves bookworm, or set DEBIAN_MIRROR=<a Debian mirror URL>"
fi

step "import the root filesystem" "is there room for it in Docker's data directory (docker system df)?"
tar -C "$work/rootfs" -c . | docker import - "$image-minbase" >/dev/null
rm -rf "$work/rootfs"

step "install python3 and git"
mkdir "$work/context"
cat >"$work/context/Dockerfile" <<DOCKERFILE
FROM $image-minbase
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv git ca-certificates \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
DOCKERFILE
echo "python-image: installing python3 and git..." >&2
if ! docker build --network host -t "$image" "$work/context" >"$work/build.log" 2>&1; then
  tail -20 "$work/build.log" >&2
  fail "docker build of $image failed (the last lines of its log are above) — check that the container reaches $mirror"
fi
echo "$image"
