"""The scripts in scripts/ and .ci/run: the Debian mirror is found from any apt layout, and no script fails silently.

Every script is run for real, with a step broken by a stand-in for one command it calls (first on PATH: apt-get,
debootstrap, docker, a python without venv) or by a path it cannot write, and must print one line naming the step
that failed. Scripts that cd into the repository run from a copy of scripts/ in a temporary directory, so nothing
here touches this checkout's virtualenvs or the machine's packages.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON_IMAGE = ROOT / "scripts/python-image.sh"

# Mirror host names are RFC 2606 examples: the repository names no real mirror.
MAIN = "http://main.example/debian"
OTHER = "http://other.example/debian"
SECURITY = "http://security.example/debian-security"

DEB822 = f"""\
Types: deb
# a comment inside a stanza
URIs: {SECURITY}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {MAIN}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
ONE_LINE = f"""\
# deb {OTHER}/commented bookworm main
deb-src {OTHER}/sources-only bookworm main
deb {SECURITY} bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {OTHER} bookworm main contrib
"""
# Third-party sources that are not a Debian mirror: a bookworm suite without main, a suite of their own.
THIRD_PARTY = {
    "sources.list.d/docker.sources": "Types: deb\nURIs: https://docker.example/linux/debian\nSuites: bookworm\nComponents: stable\n",
    "sources.list.d/nodesource.sources": "Types: deb\nURIs: https://node.example/node_20.x\nSuites: nodistro\nComponents: main\n",
    "sources.list.d/cloud.list.disabled": f"deb {OTHER}/disabled bookworm main\n",
}
BOOKWORM = "ID=debian\nVERSION_CODENAME=bookworm\n"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def find_mirror(tmp_path: Path, apt: dict[str, str], os_release: str = BOOKWORM, **env: str) -> subprocess.CompletedProcess:
    apt_dir = write_tree(tmp_path / "apt", apt)
    (apt_dir / "sources.list.d").mkdir(parents=True, exist_ok=True)
    (tmp_path / "os-release").write_text(os_release)
    return subprocess.run(
        ["bash", str(PYTHON_IMAGE), "--mirror"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "IMAGECTL_APT_DIR": str(apt_dir), "IMAGECTL_OS_RELEASE": str(tmp_path / "os-release"), **env},
    )


@pytest.mark.parametrize(
    "apt, expected",
    [
        pytest.param({"sources.list.d/debian.sources": DEB822, **THIRD_PARTY}, MAIN, id="deb822-only"),
        pytest.param({"sources.list": ONE_LINE, **THIRD_PARTY}, OTHER, id="list-only"),
        pytest.param({"sources.list.d/debian.list": ONE_LINE}, OTHER, id="list-in-sources.list.d-only"),
        # apt reads sources.list first, then sources.list.d in file-name order whatever the format.
        pytest.param({"sources.list": ONE_LINE, "sources.list.d/debian.sources": DEB822}, OTHER, id="both"),
        pytest.param({"sources.list.d/a.sources": DEB822, "sources.list.d/b.list": ONE_LINE}, MAIN, id="both-in-sources.list.d"),
        pytest.param({"sources.list.d/a.list": ONE_LINE, "sources.list.d/b.sources": DEB822}, OTHER, id="both-list-first"),
        pytest.param(
            {
                "sources.list.d/debian.sources": "Types: deb deb-src\nURIs: http://a.example/d\n  http://b.example/d\nSuites: bookworm\n"
                "Components: main\n"
            },
            "http://a.example/d",
            id="deb822-folded-uris",
        ),
        pytest.param(
            {"sources.list.d/debian.sources": f"Enabled: no\nTypes: deb\nURIs: {OTHER}\nSuites: bookworm\nComponents: main\n\n{DEB822}"},
            MAIN,
            id="deb822-disabled-stanza-skipped",
        ),
    ],
)
def test_mirror_found_from_any_apt_layout(tmp_path, apt, expected):
    result = find_mirror(tmp_path, apt)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected + "\n", "")


def test_mirror_of_another_debian_release_is_used_on_a_debian_host(tmp_path):
    trixie = "Types: deb\nURIs: http://trixie.example/debian\nSuites: trixie trixie-updates\nComponents: main\n"
    result = find_mirror(tmp_path, {"sources.list.d/debian.sources": trixie}, 'ID=debian\nVERSION_CODENAME="trixie"\n')
    assert result.stdout == "http://trixie.example/debian\n"
    # Not on another distribution: its own release's mirror serves no bookworm.
    result = find_mirror(tmp_path, {"sources.list.d/debian.sources": trixie}, "ID=ubuntu\nVERSION_CODENAME=trixie\n")
    assert result.returncode == 1


@pytest.mark.parametrize(
    "apt",
    [
        pytest.param({}, id="no-sources"),
        pytest.param(THIRD_PARTY, id="third-party-only"),
        pytest.param({"sources.list": f"deb {SECURITY} bookworm-security main\ndeb-src {OTHER} bookworm main\n"}, id="security-src-only"),
    ],
)
def test_no_mirror_is_one_clear_line(tmp_path, apt):
    result = find_mirror(tmp_path, apt)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"scripts/python-image.sh: step 'find a Debian mirror' failed: no Debian mirror found in {tmp_path / 'apt'} (no sources.list, "
        "sources.list.d/*.list or *.sources entry of type deb with suite bookworm and component main) — "
        "set DEBIAN_MIRROR=<a Debian mirror URL>\n"
    )


def test_debian_mirror_variable_wins(tmp_path):
    result = find_mirror(tmp_path, {}, DEBIAN_MIRROR="http://given.example/debian")
    assert result.stdout == "http://given.example/debian\n"


# --- a broken step says which step it was ---------------------------------------------------------------------


def shims(directory: Path, **commands: str) -> Path:
    """Stand-ins, first on PATH, for the commands a script calls (each a bash body)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in commands.items():
        path = directory / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return directory


def run(script: Path, tmp_path: Path, bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), **env},
    )


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def copy_of_scripts(tmp_path: Path) -> Path:
    """scripts/ and .ci/ in a directory of their own: scripts that cd to the repository work there."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", root / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".ci", root / ".ci")
    return root


DOCKER_WITHOUT_THE_IMAGE = 'case "$1" in info) exit 0 ;; image) echo "Error: No such image: $3" >&2; exit 1 ;; *) exit 1 ;; esac'


def test_python_image_debootstrap_failure(tmp_path):
    bin_dir = shims(
        tmp_path / "bin",
        docker=DOCKER_WITHOUT_THE_IMAGE,
        debootstrap='echo "E: Failed getting release file $4/dists/bookworm/Release"; exit 1',
    )
    apt = write_tree(tmp_path / "apt", {"sources.list.d/debian.sources": DEB822})
    result = run(PYTHON_IMAGE, tmp_path, bin_dir, "imagectl-test/python:never", IMAGECTL_APT_DIR=str(apt))
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"E: Failed getting release file {MAIN}/dists/bookworm/Release" in result.stderr  # debootstrap's own reason
    assert last_line(result) == (
        f"scripts/python-image.sh: step 'debootstrap' failed: debootstrap bookworm from {MAIN} failed (the last lines of its log "
        "are above; it needs root) — check that the mirror serves bookworm, or set DEBIAN_MIRROR=<a Debian mirror URL>"
    )


def test_python_image_without_a_docker_engine(tmp_path):
    bin_dir = shims(tmp_path / "bin", docker="exit 1")
    result = run(PYTHON_IMAGE, tmp_path, bin_dir, DEBIAN_MIRROR=MAIN)
    assert (result.returncode, last_line(result)) == (
        1,
        "scripts/python-image.sh: step 'reach the Docker engine' failed: no Docker engine answers — start one (as root: "
        "scripts/start-docker.sh)",
    )


def test_python_image_install_step_failure(tmp_path):
    """The step the cached image used to hide: the docker build that installs python3 into the bootstrapped system."""
    bin_dir = shims(
        tmp_path / "bin",
        docker=DOCKER_WITHOUT_THE_IMAGE.replace(
            "*) exit 1", 'import) cat >/dev/null; exit 0 ;; build) echo "E: Unable to locate package python3-venv"; exit 100 ;; *) exit 1'
        ),
        debootstrap='mkdir -p "$3/etc" && echo bootstrapped >"$3/etc/debian_version"',
    )
    result = run(PYTHON_IMAGE, tmp_path, bin_dir, "imagectl-test/python:never", DEBIAN_MIRROR=MAIN)
    assert result.returncode == 1
    assert "E: Unable to locate package python3-venv" in result.stderr
    assert last_line(result) == (
        "scripts/python-image.sh: step 'install python3 and git' failed: docker build of imagectl-test/python:never failed "
        f"(the last lines of its log are above) — check that the container reaches {MAIN}"
    )


def test_start_docker_failure(tmp_path):
    bin_dir = shims(tmp_path / "bin", docker="exit 1", id="echo 0")
    (tmp_path / "a-file").write_text("")
    result = run(ROOT / "scripts/start-docker.sh", tmp_path, bin_dir, IMAGECTL_STACK_DIR=str(tmp_path / "a-file/stack"))
    assert result.returncode == 1
    assert re.fullmatch(
        r"scripts/start-docker\.sh: step 'start dockerd' failed \(exit 1\) at line \d+: mkdir -p \"\$dir\" — "
        r"is dockerd installed \(scripts/setup\.sh installs docker\.io\)\?",
        last_line(result),
    ), result.stderr
    bin_dir = shims(tmp_path / "bin", id="echo 1000")
    assert last_line(run(ROOT / "scripts/start-docker.sh", tmp_path, bin_dir)) == (
        "scripts/start-docker.sh: step 'look for a running engine' failed: no Docker engine is running and starting one "
        "needs root — run this as root, or start Docker"
    )


def broken_python(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """apt-get records what it was asked and changes nothing; the python has no venv module (Debian without python3-venv)."""
    bin_dir = shims(
        tmp_path / "bin",
        **{
            "apt-get": f'echo "apt-get $*" >>{tmp_path}/apt-get.log',
            "sudo": 'exec "$@"',
            "python3-without-venv": 'echo "/usr/bin/python3: No module named venv" >&2; exit 1',
        },
    )
    return bin_dir, {"PYTHON": str(bin_dir / "python3-without-venv")}


SETUP_VENV_FAILED = re.compile(
    r"scripts/setup\.sh: step 'imagectl's virtualenv \(\.venv\)' failed \(exit 1\) at line \d+: \"\$PYTHON\" -m venv \.venv — "
    r"is python3-venv installed\? Remove \.venv and re-run if it is broken"
)


def test_setup_failure(tmp_path):
    root = copy_of_scripts(tmp_path)
    bin_dir, env = broken_python(tmp_path)
    result = run(root / "scripts/setup.sh", tmp_path, bin_dir, **env)
    assert result.returncode == 1
    assert "No module named venv" in result.stderr
    assert SETUP_VENV_FAILED.fullmatch(last_line(result)), result.stderr
    assert "python3-venv" in (tmp_path / "apt-get.log").read_text()  # a python without venv asks apt for it
    assert not (root / ".venv").exists()


@pytest.mark.parametrize(
    "script, step",
    [
        ("scripts/demo.sh", "setup"),
        ("scripts/test.sh", "setup"),
        (".ci/run", "test"),
    ],
)
def test_scripts_that_run_other_scripts_name_their_step(tmp_path, script, step):
    root = copy_of_scripts(tmp_path)
    bin_dir, env = broken_python(tmp_path)
    result = run(root / script, tmp_path, bin_dir, **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert re.fullmatch(rf"{re.escape(script)}: step '{step}' failed \(exit 1\) at line \d+: .+ — .+", lines[-1]), result.stderr
    assert any(SETUP_VENV_FAILED.fullmatch(line) for line in lines), result.stderr  # and the step below it said why


def test_ci_starts_from_fresh_virtualenvs(tmp_path):
    root = copy_of_scripts(tmp_path)
    (root / ".venv/bin").mkdir(parents=True)
    (root / ".venv-airflow3").mkdir()
    bin_dir, env = broken_python(tmp_path)
    result = run(root / ".ci/run", tmp_path, bin_dir, **env)
    assert result.returncode == 1
    assert not (root / ".venv").exists() and not (root / ".venv-airflow3").exists()
    # In CI every system package goes through apt-get, present or not.
    assert "python3-venv" in (tmp_path / "apt-get.log").read_text() and "docker.io" in (tmp_path / "apt-get.log").read_text()
    (root / ".venv/bin").mkdir(parents=True)
    run(root / ".ci/run", tmp_path, bin_dir, IMAGECTL_CI_KEEP_VENVS="1", **env)
    assert (root / ".venv/bin").exists()


# --- lib.sh: the shared failure line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            'step "copy" "check the disk"\ncp /nonexistent/a /tmp/b',
            r"step 'copy' failed \(exit 1\) at line 7: cp /nonexistent/a /tmp/b — check the disk",
        ),
        ('step "read"\ngrep -h x /nonexistent | sort', r"step 'read' failed \(exit 2\) at line 7: sort \(pipeline exit statuses: 2 0\)"),
        ('step "compute"\nf() { false; }\nx="$(f)"', r"step 'compute' failed \(exit 1\) at line 8: x=\"\$\(f\)\""),
        ('step "expand"\necho "$never_set"', r"step 'expand' failed \(exit 1\)"),
        ('step "explicit"\nexit 3', r"step 'explicit' failed \(exit 3\)"),
        ('step "signal"\nkill -TERM $$\nsleep 5', r"step 'signal' failed \(exit 143\): terminated"),
    ],
    ids=["command", "pipeline", "substitution", "unset-variable", "exit", "signal"],
)
def test_every_failure_names_its_step_once(tmp_path, body, expected):
    root = copy_of_scripts(tmp_path)
    script = root / "scripts/broken.sh"
    header = '#!/usr/bin/env bash\nset -euo pipefail\n. "$(dirname "$0")/lib.sh"\ncleanup() { echo cleaned >&2; }\non_exit cleanup\n'
    script.write_text(header + body + "\n")
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("scripts/broken.sh: ")]
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(rf"scripts/broken\.sh: {expected}", lines[0]), result.stderr
    assert result.stderr.strip().splitlines()[-1] == lines[0]  # the last line, after the cleanup's output
    assert "cleaned" in result.stderr


def test_every_script_uses_the_shared_failure_line():
    scripts = [*sorted((ROOT / "scripts").glob("*.sh")), ROOT / ".ci/run"]
    missing = [str(path.relative_to(ROOT)) for path in scripts if path.name != "lib.sh" and 'lib.sh"\n' not in path.read_text()]
    assert not missing, f"{missing} do not source scripts/lib.sh: source it, so a failure names its step"
    assert all(os.access(path, os.X_OK) for path in scripts if path.name != "lib.sh")
