#!/usr/bin/env bash
# The README's main job on a local stack. Sets up, starts a Docker engine, two local OCI registries (dev and
# prd) and Airflow 3 (scheduler + dag-processor + api-server, with this repository's DAGs on the DockerOperator),
# all on 127.0.0.1 and stopped on exit, then tells the whole story in a copy of the sample dbt repository:
#   imagectl ci (Bamboo's step: build → push → deploy dev → trigger a slim dbt build, which runs in that image)
#   → the daily full build stores the production state → a model changes → imagectl ci again (slim: only that
#   model and its children) → promote to prd (copied across registries, v1.0.0) → what a rollback would undo
#   (diff) → roll dev back and freeze it → the next run runs the previous image → ci does not deploy over a
#   freeze → unfreeze → history and status.
#   usage: scripts/demo.sh [--ecr]
#   --ecr: dev and prd are ECR registries in two AWS accounts (the ECR harness, tests/ecr_harness.py, on moto), each
#   with its own identity: dev an IAM user's keys (a profile), prd a role assumed from another profile.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root="$(pwd)"
ecr=false
case "${1:-}" in
  --ecr) ecr=true ;;
  "") ;;
  *) fail "unknown option ${1}: the only option is --ecr" ;;
esac
step "setup" "its own line above says which of its steps failed"
./scripts/setup.sh
step "start the Docker engine" "its own line above says why"
./scripts/start-docker.sh
export PATH="$root/.venv/bin:$PATH"
step "make the local Python image" "its own line above says why"
python_image="$(./scripts/python-image.sh)"

# The DAG runs' containers are kept (auto_remove never) so `ran` can show what ran. The engine may be shared with
# other runs (tests, another checkout), so only this demo's are removed: a previous demo's by name, this one's by
# the image (from this demo's registries).
remove_containers() {  # $1: a regular expression on the container's name; $2, $3: image prefixes
  docker ps -a --filter name=dbt_build --format '{{.ID}} {{.Names}} {{.Image}}' \
    | awk -v names="$1" -v a="${2:-}" -v b="${3:-}" \
      '$2 ~ names || (a != "" && index($3, a) == 1) || (b != "/" && b != "" && index($3, b) == 1) { print $1 }' \
    | xargs -r docker rm -f >/dev/null
}
step "remove a previous demo's containers"
remove_containers '^dbt_build(_prd)?-(imagectl__DATA-DBT-[0-9]+__dbt_build(_prd)?|daily-full-1|first-release|after-rollback)$'

step "copy the sample dbt repository"
stack="$root/.stack/demo"
rm -rf "$stack" && mkdir -p "$stack/warehouse" "$stack/state"
chmod 777 "$stack/warehouse" "$stack/state"   # the dbt container runs as uid 1000

# A dbt repository of its own: the sample project, the images, and an imagectl.toml for the local stack.
repo="$stack/repo"
mkdir -p "$repo"
cp -r sample_project images .dockerignore "$repo/"
rm -rf "$repo/sample_project/target" "$repo/sample_project/logs"
# Behind a TLS-intercepting proxy pip needs the proxy's CA: the documented way is a bundle in images/base/certs/.
# The demo trusts what this host trusts (IMAGECTL_EXTRA_CA= empty to skip).
extra_ca="${IMAGECTL_EXTRA_CA-/etc/ssl/certs/ca-certificates.crt}"
if [ -n "$extra_ca" ] && [ -f "$extra_ca" ]; then cp "$extra_ca" "$repo/images/base/certs/extra-ca.crt"; fi

step "start the local servers" "their logs are under $stack/servers"
registries=(--registries 2)
mkdir -p "$stack/docker" && echo '{}' >"$stack/docker/config.json"
if $ecr; then
  # The DAG runs pull prd's images from its ECR: Airflow's Docker client reads the registry logins from
  # $stack/docker (on EKS, the kubelet's ECR credential provider does this with the node's role).
  registries=(--registries 0 --ecr-accounts 2)
fi
echo "demo: starting the registries and Airflow 3 (standalone) on 127.0.0.1 ..."
.venv/bin/python -m tests.stack --workdir "$stack/servers" "${registries[@]}" --airflow 3 --standalone \
  --airflow-env "DOCKER_CONFIG=$stack/docker" \
  --airflow-env "AIRFLOW__CORE__DAGS_FOLDER=$root/dags" \
  --airflow-env DBT_DAG_OPERATOR=docker --airflow-env DBT_DAG_DOCKER_NETWORK=host \
  --airflow-env DBT_DAG_DOCKER_AUTO_REMOVE=never --airflow-env DBT_DAG_IMAGE_VARIABLE=dbt_image_dev \
  --airflow-env 'DBT_DAG_EXTRA_DAGS={"dbt_build_prd": "dbt_image_prd"}' \
  --airflow-env "DBT_DAG_DOCKER_MOUNTS=$stack/warehouse:/data,$stack/state:/state" \
  --airflow-env DBT_DAG_STATE_URI=/state --airflow-env 'DBT_DAG_EXTRA_ENV={"DBT_DUCKDB_PATH": "/data/jaffle.duckdb"}' \
  --env-file "$stack/servers.env" &
stack_pid=$!
cleanup() {
  kill "$stack_pid" 2>/dev/null || true
  wait "$stack_pid" 2>/dev/null || true
  if [ -n "${registry_one:-}" ]; then remove_containers '^$' "$registry_one/" "${registry_two:-}/"; fi
}
on_exit cleanup
for _ in $(seq 1 360); do
  if [ -s "$stack/servers.env" ]; then break; fi
  kill -0 "$stack_pid" 2>/dev/null || fail "the local servers did not start (the reason is above; logs: $stack/servers)"
  sleep 0.5
done
[ -s "$stack/servers.env" ] || fail "the local servers did not start within 180 s (logs: $stack/servers)"
# shellcheck disable=SC1091
. "$stack/servers.env"
export IMAGECTL_AIRFLOW_USERNAME="$AIRFLOW_USER" IMAGECTL_AIRFLOW_PASSWORD="$AIRFLOW_PASSWORD"

if $ecr; then
  step "give each account its identity" "see $stack/aws"
  # Profiles as a CI agent would have them: dev's IAM user keys, and keys that may assume prd's role. Nothing in
  # the default chain: every call must use its registry's own identity.
  mkdir -p "$stack/aws"
  cat >"$stack/aws/credentials" <<AWS
[dev]
aws_access_key_id = $ECR_1_ACCESS_KEY_ID
aws_secret_access_key = $ECR_1_SECRET_ACCESS_KEY
[release]
aws_access_key_id = $AWS_BASE_ACCESS_KEY_ID
aws_secret_access_key = $AWS_BASE_SECRET_ACCESS_KEY
AWS
  : >"$stack/aws/config"
  export AWS_SHARED_CREDENTIALS_FILE="$stack/aws/credentials" AWS_CONFIG_FILE="$stack/aws/config" AWS_EC2_METADATA_DISABLED=true
  export AWS_ENDPOINT_URL_ECR AWS_ENDPOINT_URL_STS AWS_REGION AWS_DEFAULT_REGION="$AWS_REGION" ECR_1_HOST ECR_2_HOST ECR_2_ROLE_ARN
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
  registry_one="$ECR_1_HOST" registry_two="$ECR_2_HOST"
  registries_toml="[identities.dev]
profile = \"dev\"
[identities.prd]
profile = \"release\"
role_arn = \"$ECR_2_ROLE_ARN\"
session_name = \"imagectl-demo\"
[registries.dev]
kind = \"ecr\"
host = \"$ECR_1_HOST\"
registry_id = \"$ECR_1_ACCOUNT\"
region = \"$AWS_REGION\"
insecure = true
identity = \"dev\"
[registries.prd]
kind = \"ecr\"
host = \"$ECR_2_HOST\"
registry_id = \"$ECR_2_ACCOUNT\"
region = \"$AWS_REGION\"
insecure = true
identity = \"prd\""
else
  registry_one="$REGISTRY_1" registry_two="$REGISTRY_2"
  registries_toml="[registries.dev]
kind = \"oci\"
host = \"$REGISTRY_1\"
insecure = true
[registries.prd]
kind = \"oci\"
host = \"$REGISTRY_2\"
insecure = true"
fi

step "write the repository's imagectl.toml and commit it"
cat >"$repo/imagectl.toml" <<TOML
[project]
name = "jaffle-shop"
default_environment = "dev"
[jira]
projects = ["DATA"]
[images.base]
context = "images/base"
repository = "dbt-base"
network = "host"
build_args = { PYTHON_IMAGE = "$python_image" }
[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "dbt-build"
# DBT_PARSE_ENV: the values runs have for the env vars the profile reads, so the parse made at build time is
# the one runs use (see images/build/dbt_parse.py). Never secrets: build arguments are in the image history.
build_args = { DBT_PROJECT_PATH = "sample_project", DBT_PARSE_ENV = "DBT_DUCKDB_PATH=/data/jaffle.duckdb" }
$registries_toml
[environments.dev]
registry = "dev"
airflow_url = "$AIRFLOW_URL"
variable = "dbt_image_dev"
[environments.prd]
registry = "prd"
airflow_url = "$AIRFLOW_URL"
variable = "dbt_image_prd"
dbt_dag = "dbt_build_prd"   # one Airflow serves both environments here: prd's DAG reads prd's Variable
release = true
[ci]
branches = { "feature/*" = "dev" }
build_environment = "dev"
lightdash_dag = false   # no Lightdash on the local stack
TOML
git() { command git -C "$repo" -c user.email=demo@imagectl -c user.name=demo "$@"; }
git init -q -b feature/DATA-1-orders
git add -A && git commit -qm "DATA-1 sample project"
export IMAGECTL_CONFIG="$repo/imagectl.toml"
step "wait for Airflow to parse the DAGs" "see $stack/servers for Airflow's logs"
echo "demo: waiting for Airflow to parse the DAGs ..."
deadline=$((SECONDS + 300))
until curl -fs -H "Authorization: Bearer $(curl -fs -X POST -H 'Content-Type: application/json' \
      -d "{\"username\":\"$AIRFLOW_USER\",\"password\":\"$AIRFLOW_PASSWORD\"}" "$AIRFLOW_URL/auth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')" \
      "$AIRFLOW_URL/api/v2/dags/dbt_build" >/dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || fail "Airflow did not list the DAG dbt_build within 300 s (its logs: $stack/servers)"
  sleep 2
done

chapter() {  # a heading, and the step a failure is reported under
  step "$*"
  printf '\n\033[1m== %s\033[0m\n' "$*"
}
ran() {  # what a DAG run really ran: the container's image and the entrypoint's lines (DAG id: $2, default dbt_build)
  local name="${2:-dbt_build}-${1//[:+]/-}"
  echo "   container $name ran image $(docker inspect -f '{{.Image}}' "$name" | cut -c1-19)"
  docker logs "$name" 2>&1 | grep -E '^entrypoint:|OK created' | sed 's/^/   /'
}
bamboo() { env bamboo_buildNumber="$1" bamboo_planRepository_branchName=feature/DATA-1-orders bamboo_buildResultKey="DATA-DBT-$1" "${@:2}"; }

if $ecr; then
  chapter "imagectl registry init --env dev, then --env prd   (each in its own account, as its own identity)"
  imagectl registry init --env dev
  imagectl registry init --env prd
  step "log the DAG runs' Docker client in to both registries" "see $stack/docker/config.json"
  .venv/bin/python scripts/ecr-docker-login.py "$stack/docker/config.json" "dev=$ECR_1_HOST" "release=$ECR_2_HOST@$ECR_2_ROLE_ARN"
fi
chapter "imagectl ci --dry-run   (what Bamboo's step will do)"
bamboo 1 imagectl ci --dry-run
chapter "imagectl ci --wait   (build → push → deploy dev → slim dbt build; no state yet, so a full build)"
bamboo 1 imagectl ci --wait --quiet
ran imagectl__DATA-DBT-1__dbt_build
chapter "imagectl trigger dbt_build --conf '{\"mode\": \"full\", \"upload_state\": true}' --wait   (the daily 08:00 full build)"
imagectl trigger dbt_build --conf '{"mode": "full", "upload_state": true}' --run-id daily-full-1 --wait
chapter "a model changes: imagectl ci --wait again   (slim: only orders and its children)"
printf '\n-- DATA-1: count refunds separately\n' >>"$repo/sample_project/models/marts/orders.sql"
git commit -qam "DATA-1 tweak orders"
bamboo 2 imagectl ci --wait --quiet
ran imagectl__DATA-DBT-2__dbt_build
chapter "imagectl promote DATA-1-2 --from dev --to prd --yes --reason 'weekly release'"
imagectl promote DATA-1-2 --from dev --to prd --yes --reason "weekly release"
chapter "imagectl trigger dbt_build_prd --env prd --wait   (prd's DAG runs the promoted image)"
imagectl trigger dbt_build_prd --env prd --run-id first-release --wait
ran first-release dbt_build_prd
chapter "imagectl diff --env dev   (what a rollback would undo: commits, Jira keys, dbt files)"
imagectl diff --env dev
chapter "imagectl rollback --env dev --freeze --reason 'orders change broke revenue'; the next run runs the previous image"
imagectl rollback --env dev --freeze --reason "orders change broke revenue"
imagectl trigger dbt_build --run-id after-rollback --wait
ran after-rollback
chapter "while dev is frozen, Bamboo's step builds but does not deploy over the rollback"
bamboo 3 imagectl ci --dry-run
chapter "imagectl unfreeze --env dev --reason 'fix merged'"
imagectl unfreeze --env dev --reason "fix merged"
chapter "imagectl tags list"
imagectl tags list
chapter "imagectl history --env dev"
imagectl history --env dev
chapter "imagectl history --env prd"
imagectl history --env prd
chapter "imagectl status"
imagectl status
chapter "done; the servers and containers the demo started are stopped now (data: $stack)"
