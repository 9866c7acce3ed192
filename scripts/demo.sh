#!/usr/bin/env bash
# The README's main job on a local stack: set up, start a Docker engine and a local OCI registry, build the
# base and build images of the sample dbt project, push them, build again (base reused), show the tag
# registry, and run a dbt build of the sample project inside the build image.
# Everything runs on 127.0.0.1; the registry started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
./scripts/setup.sh
./scripts/start-docker.sh
export PATH="$root/.venv/bin:$PATH"

python_image="$(./scripts/python-image.sh)"

# Behind a TLS-intercepting proxy pip needs the proxy's CA: the documented way is a bundle in images/base/certs/.
# The demo trusts what this host trusts (IMAGECTL_EXTRA_CA= empty to skip).
extra_ca="${IMAGECTL_EXTRA_CA-/etc/ssl/certs/ca-certificates.crt}"
if [ -n "$extra_ca" ] && [ -f "$extra_ca" ]; then cp "$extra_ca" images/base/certs/extra-ca.crt; fi

stack="$root/.stack/demo"
rm -rf "$stack" && mkdir -p "$stack"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$stack/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $stack/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$stack/registry.yml" >"$stack/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done

# The demo's config: the repository's imagectl.toml with the local registry and the local Python image.
cat >"$stack/imagectl.toml" <<TOML
[project]
name = "jaffle-shop"
default_environment = "dev"
[jira]
projects = ["DATA"]
[images.base]
context = "../../images/base"
repository = "dbt-base"
network = "host"
build_args = { PYTHON_IMAGE = "$python_image" }
[images.build]
context = "../.."
dockerfile = "../../images/build/Dockerfile"
repository = "dbt-build"
build_args = { DBT_PROJECT_PATH = "sample_project" }
[registries.local]
kind = "oci"
host = "127.0.0.1:$port"
insecure = true
[environments.dev]
registry = "local"
TOML
export IMAGECTL_CONFIG="$stack/imagectl.toml"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "imagectl build --jira DATA-1 --build-number 1   (first build: base and build image)"
imagectl build --jira DATA-1 --build-number 1
step "imagectl build --jira DATA-1 --build-number 2   (inputs of the base unchanged: reused)"
imagectl build --jira DATA-1 --build-number 2 --quiet
step "imagectl tags list"
imagectl tags list
step "imagectl tags show DATA-1-2 --image build"
imagectl tags show DATA-1-2 --image build
step "dbt build of the sample project inside 127.0.0.1:$port/dbt-build:DATA-1-2 (full mode)"
docker run --rm "127.0.0.1:$port/dbt-build:DATA-1-2" --mode full
step "done: images pushed to 127.0.0.1:$port (stopped now); the registry's data is in $stack/registry"
