#!/usr/bin/env bash
# Start a Docker engine if none answers (needs root). Prints nothing when one is already running.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "start-docker: no Docker engine running and starting one needs root" >&2; exit 1; fi
mkdir -p "${IMAGECTL_STACK_DIR:-/tmp/imagectl-stack}"
log="${IMAGECTL_STACK_DIR:-/tmp/imagectl-stack}/dockerd.log"
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { echo "start-docker: dockerd started (log: $log)"; exit 0; }
  sleep 1
done
echo "start-docker: dockerd did not start; last lines of $log:" >&2; tail -20 "$log" >&2; exit 1
