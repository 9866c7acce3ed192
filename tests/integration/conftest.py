"""Session-wide real servers: Docker engine, OCI registries, moto's ECR — on 127.0.0.1, stopped at the end."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import stack
from tests.conftest import git
from tests.ecr_harness import DEFAULT_ACCOUNT, EcrHarness, Limits

DEV_ACCOUNT, PRD_ACCOUNT = "111111111111", "222222222222"  # dev and prd in accounts of their own (test_ecr_accounts.py)

PYTHON_STAND_IN = "imagectl-test/python:busybox"

BASE_DOCKERFILE = """\
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
COPY requirements.txt /opt/requirements.txt
RUN echo "would install: $(cat /opt/requirements.txt)"
"""
BUILD_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY models /app/models
RUN ls /app/models
CMD ["/bin/sh", "-c", "echo imagectl-test-image ran"]
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def docker_engine(stack_dir: Path) -> Iterator[None]:
    server = stack.start_dockerd(stack_dir)
    yield
    if server:
        server.stop()


@pytest.fixture(scope="session")
def python_stand_in(docker_engine: None, stack_dir: Path) -> str:
    """A tiny local image standing in for python:3.11 (public registries cannot be pulled here)."""
    import docker

    busybox = shutil.which("busybox")
    if not busybox:
        stack.unavailable("busybox (Debian busybox-static) is not installed (run scripts/setup.sh)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(busybox, arcname="busybox")
        dockerfile = b'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    # nocache: rebuilt from busybox every session, never from an earlier session's layers (it takes < 1 s).
    docker.from_env().images.build(fileobj=buffer, custom_context=True, tag=PYTHON_STAND_IN, rm=True, nocache=True)
    return PYTHON_STAND_IN


@pytest.fixture(scope="session")
def oci_registry(stack_dir: Path) -> Iterator[stack.Server]:
    server = stack.start_registry(stack_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_registry(stack_dir: Path) -> Iterator[tuple[stack.Server, str, str]]:
    htpasswd = shutil.which("htpasswd")
    if not htpasswd:
        stack.unavailable("htpasswd (apache2-utils) is not installed (run scripts/setup.sh)")
    user, password = "ci-pusher", "pa55-word-for-tests"
    path = stack_dir / "htpasswd"
    path.write_text(subprocess.run([htpasswd, "-Bbn", user, password], check=True, capture_output=True, text=True).stdout)
    server = stack.start_registry(stack_dir, htpasswd=path)
    yield server, user, password
    server.stop()


@pytest.fixture(scope="session")
def moto(stack_dir: Path) -> Iterator[stack.Server]:
    server = stack.start_moto(stack_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ecr(stack_dir: Path, moto: stack.Server) -> Iterator[EcrHarness]:
    """ECR as documented: moto's control plane and a real distribution registry behind the harness (tests/ecr_harness.py)."""
    backing = stack.start_registry(stack_dir)
    harness = EcrHarness(moto.url, backing.url, accounts=(DEFAULT_ACCOUNT, DEV_ACCOUNT, PRD_ACCOUNT))
    yield harness
    harness.close()
    backing.stop()


@pytest.fixture
def aws_env(ecr: EcrHarness, moto: stack.Server, monkeypatch: pytest.MonkeyPatch) -> EcrHarness:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", ecr.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto.url)
    saved = Limits(**vars(ecr.limits))
    yield ecr
    ecr.limits.__dict__.update(vars(saved))


DEFAULT_ENVIRONMENTS = """
[environments.dev]
registry = "local"

[environments.ecr]
registry = "aws"
"""


def project_toml(
    registry_host: str,
    *,
    repo_prefix: str,
    environments: str = DEFAULT_ENVIRONMENTS,
    extra: str = "",
    ecr_host: str = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com",
) -> str:
    default = 'default_environment = "dev"' if "[environments.dev]" in environments else ""
    return f"""
[project]
name = "demo"
{default}

[jira]
projects = ["DATA", "OPS"]

[images.base]
context = "images/base"
repository = "{repo_prefix}/dbt-base"
build_args = {{ PYTHON_IMAGE = "{PYTHON_STAND_IN}" }}

[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "{repo_prefix}/dbt-build"

[registries.local]
kind = "oci"
host = "{registry_host}"
insecure = true

[registries.aws]
kind = "ecr"
host = "{ecr_host}"
region = "ap-northeast-2"
insecure = {"true" if ecr_host.startswith("127.") else "false"}
{f'registry_id = "{DEFAULT_ACCOUNT}"' if ecr_host.startswith("127.") else ""}
{extra}
{environments}"""


@pytest.fixture
def make_project(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., Path]:
    counter = iter(range(1000))

    def make(
        registry_host: str,
        branch: str = "feature/DATA-1234-add-orders",
        environments: str = DEFAULT_ENVIRONMENTS,
        extra: str = "",
        ecr_host: str = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com",
    ) -> Path:
        root = tmp_path / f"dbt-{next(counter)}"
        (root / "images/base").mkdir(parents=True)
        (root / "images/build").mkdir(parents=True)
        (root / "models").mkdir()
        (root / "images/base/Dockerfile").write_text(BASE_DOCKERFILE)
        (root / "images/base/requirements.txt").write_text("dbt-core==1.11.16\ndbt-duckdb==1.11.1\n")
        (root / "images/build/Dockerfile").write_text(BUILD_DOCKERFILE)
        (root / "models/orders.sql").write_text("select 1 as id\n")
        # A unique repository prefix per test keeps tests independent on the shared session registry.
        prefix = "t" + request.node.name.lower().replace("[", "-").replace("]", "").replace("_", "-")[:40].strip("-")
        (root / "imagectl.toml").write_text(
            project_toml(registry_host, repo_prefix=prefix, environments=environments, extra=extra, ecr_host=ecr_host)
        )
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "initial")
        git(root, "checkout", "-qb", branch)
        return root

    return make


def commit_change(root: Path, path: str, text: str, message: str = "change") -> str:
    (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture(scope="session")
def airflow3(stack_dir: Path) -> Iterator[stack.Airflow]:
    server = stack.start_airflow(stack_dir, 3)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow2(stack_dir: Path) -> Iterator[stack.Airflow]:
    server = stack.start_airflow(stack_dir, 2)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prd_registry(stack_dir: Path) -> Iterator[stack.Server]:
    """A second OCI registry, so dev → prd promotion crosses registries."""
    server = stack.start_registry(stack_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def python_image(docker_engine: None) -> Iterator[str]:
    """A Debian + Python 3.11 image made locally (scripts/python-image.sh): public images cannot be pulled here.

    Elsewhere the script's cached image is reused. In CI it is built afresh under a name of this session's own
    and removed at the end, so an image left by an earlier run can never hide a broken install step.
    """
    script = Path(__file__).resolve().parents[2] / "scripts/python-image.sh"
    name = f"imagectl-ci/python:{uuid.uuid4().hex[:12]}" if stack.IN_CI else None
    result = subprocess.run([str(script), *([name] if name else [])], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        stack.unavailable(f"could not make the local Python image: {result.stderr.strip()[-1500:] or f'exit {result.returncode}'}")
    image = result.stdout.strip()
    yield image
    if name:
        subprocess.run(["docker", "image", "rm", "--force", image], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def postgres() -> Iterator[stack.Postgres]:
    """A real PostgreSQL server (the dbt tests' server warehouse), on a free 127.0.0.1 port."""
    server = stack.start_postgres()
    yield server
    server.stop()
