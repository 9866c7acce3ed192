#!/usr/bin/env bash
# The README's main job on a local stack. Sets up, starts a Docker engine, two local OCI registries (dev and
# prd) and a real Airflow 3 api-server (all on 127.0.0.1, stopped on exit), then:
#   build (base + build image of the sample dbt project) → build again (base reused) → tags →
#   deploy to dev → promote to prd (copied across registries, released v1.0.0/v1.0.1) → roll prd back →
#   history and status → a dbt build of the sample project inside the image prd now runs.
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
echo "demo: starting two registries and Airflow 3 on 127.0.0.1 ..."
.venv/bin/python -m tests.stack --workdir "$stack/servers" --registries 2 --airflow 3 --env-file "$stack/servers.env" &
stack_pid=$!
trap 'kill $stack_pid 2>/dev/null || true; wait $stack_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  [ -s "$stack/servers.env" ] && break
  kill -0 "$stack_pid" 2>/dev/null || { echo "demo: the local servers did not start" >&2; exit 1; }
  sleep 0.5
done
# shellcheck disable=SC1091
. "$stack/servers.env"
export IMAGECTL_AIRFLOW_USERNAME="$AIRFLOW_USER" IMAGECTL_AIRFLOW_PASSWORD="$AIRFLOW_PASSWORD"

# The demo's config: the repository's imagectl.toml with local registries, a local Airflow and the local Python image.
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
[registries.dev]
kind = "oci"
host = "$REGISTRY_1"
insecure = true
[registries.prd]
kind = "oci"
host = "$REGISTRY_2"
insecure = true
[environments.dev]
registry = "dev"
airflow_url = "$AIRFLOW_URL"
variable = "dbt_image_dev"
[environments.prd]
registry = "prd"
airflow_url = "$AIRFLOW_URL"
variable = "dbt_image_prd"
release = true
TOML
export IMAGECTL_CONFIG="$stack/imagectl.toml"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "imagectl build --jira DATA-1 --build-number 1   (base and build image)"
imagectl build --jira DATA-1 --build-number 1
step "imagectl build --jira DATA-2 --build-number 2 --quiet   (base inputs unchanged: reused)"
imagectl build --jira DATA-2 --build-number 2 --quiet
step "imagectl tags list"
imagectl tags list
step "imagectl deploy DATA-1-1 --env dev; imagectl deploy DATA-2-2 --env dev"
imagectl deploy DATA-1-1 --env dev --reason "first image"
imagectl deploy DATA-2-2 --env dev --reason "orders model"
step "imagectl promote --jira DATA-1 --from dev --to prd --yes; imagectl promote DATA-2-2 --from dev --to prd --yes"
imagectl promote --jira DATA-1 --from dev --to prd --yes --reason "weekly release"
imagectl promote DATA-2-2 --from dev --to prd --yes --reason "weekly release"
step "imagectl rollback --env prd --yes --reason 'orders model broke revenue'"
imagectl rollback --env prd --yes --reason "orders model broke revenue"
step "imagectl history --env prd"
imagectl history --env prd
step "imagectl status"
imagectl status
image="$(imagectl status --env prd -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["variable_value"])')"
step "dbt build of the sample project in the image prd runs now: $image"
docker run --rm "$image" --mode full
step "done; the servers started for the demo are stopped now (their data: $stack)"
