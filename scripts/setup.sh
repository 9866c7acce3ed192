#!/usr/bin/env bash
# Install everything imagectl's demo and tests need on a fresh Debian/Ubuntu machine (idempotent):
#   system: Docker engine, an OCI registry (distribution), busybox-static, htpasswd, debootstrap
#   python: a virtualenv in .venv with imagectl and its test dependencies
# Run as root (or with sudo available). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need_apt+=(busybox-static)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v git >/dev/null || need_apt+=(git)
command -v file >/dev/null || need_apt+=(file)
# The repository-files test lints the shell scripts with shellcheck; skopeo: the promote benchmark compares against it.
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
command -v skopeo >/dev/null || need_apt+=(skopeo)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

# Airflow runs in virtualenvs of its own (its dependencies must not meet imagectl's): Airflow 3 for the demo
# and tests, Airflow 2 for the tests of the /api/v1 path (IMAGECTL_SETUP_AIRFLOW2=1).
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
pids=()
# Airflow 3 with the providers the DAGs use (KubernetesPodOperator in production, DockerOperator locally).
install_airflow 3 apache-airflow==3.3.2 apache-airflow-providers-docker==4.6.1 apache-airflow-providers-cncf-kubernetes==10.25.0 \
  apache-airflow-providers-amazon==9.39.0 &
pids+=($!)
if [ "${IMAGECTL_SETUP_AIRFLOW2:-0}" = 1 ]; then install_airflow 2 apache-airflow==2.11.2 & pids+=($!); fi
for pid in "${pids[@]}"; do wait "$pid"; done
echo "setup: done ($(.venv/bin/imagectl --version))"
