#!/usr/bin/env bash
# Start a Docker engine if none answers (needs root). Prints nothing when one is already running.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

step "look for a running engine"
if docker info >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then fail "no Docker engine is running and starting one needs root — run this as root, or start Docker"; fi

step "start dockerd" "is dockerd installed (scripts/setup.sh installs docker.io)?"
dir="${IMAGECTL_STACK_DIR:-/tmp/imagectl-stack}"
mkdir -p "$dir"
log="$dir/dockerd.log"
nohup dockerd >"$log" 2>&1 &

step "wait for dockerd"
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "start-docker: dockerd started (log: $log)"; exit 0; fi
  sleep 1
done
echo "start-docker: the last lines of $log:" >&2
tail -20 "$log" >&2
fail "dockerd did not answer within 60 s (its log's last lines are above)"
