"""Real servers for the integration tests, on 127.0.0.1 and free ports, started and stopped by the test run.

In CI (CI=true) a server that cannot start fails the run with the reason; elsewhere the tests that need it skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"integration server unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {tail}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            pass
        time.sleep(0.2)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s: {tail}")


class Server:
    def __init__(self, name: str, proc: subprocess.Popen, log: Path, url: str) -> None:
        self.name, self.proc, self.log, self.url = name, proc, log, url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def docker_ping() -> bool:
    import docker

    try:
        docker.from_env(timeout=5).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


def start_dockerd(workdir: Path) -> Server | None:
    """Use a running engine if there is one (returns None); else start dockerd, which needs root."""
    if docker_ping():
        return None
    dockerd = shutil.which("dockerd")
    if not dockerd:
        unavailable("no Docker engine running and dockerd is not installed (run scripts/setup.sh)")
    if os.geteuid() != 0:
        unavailable("no Docker engine running and starting dockerd needs root")
    log = workdir / "dockerd.log"
    proc = subprocess.Popen([dockerd], stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_for(docker_ping, 60, "dockerd", proc, log)
    except RuntimeError as exc:
        proc.kill()
        unavailable(str(exc))
    return Server("dockerd", proc, log, "unix:///var/run/docker.sock")


def start_registry(workdir: Path, htpasswd: Path | None = None) -> Server:
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if not binary:
        unavailable("docker-registry is not installed (run scripts/setup.sh)")
    port = free_port()
    root = workdir / f"registry-{port}"
    root.mkdir(parents=True)
    auth = ""
    if htpasswd:
        auth = f"auth:\n  htpasswd:\n    realm: imagectl-test\n    path: {htpasswd}\n"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = root / "registry.log"
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(url + "/v2/", timeout=2).status_code in (200, 401), 30, "docker-registry", proc, log)
    except RuntimeError as exc:
        proc.kill()
        unavailable(str(exc))
    return Server("registry", proc, log, url)


def start_moto(workdir: Path) -> Server:
    own = Path(sys.executable).parent / "moto_server"  # the one installed with the test dependencies
    binary = str(own) if own.exists() else shutil.which("moto_server") or str(own)
    if not Path(binary).exists():
        unavailable("moto_server is not installed (pip install -e '.[test]')")
    port = free_port()
    log = workdir / f"moto-{port}.log"
    proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(url + "/moto-api/", timeout=2).status_code == 200, 30, "moto_server", proc, log)
    except RuntimeError as exc:
        proc.kill()
        unavailable(str(exc))
    return Server("moto", proc, log, url)


class Postgres(Server):
    """A PostgreSQL server of its own (Debian's package): database ``warehouse``, user ``dbt`` with a password."""

    def __init__(self, proc: subprocess.Popen, log: Path, port: int, data: Path, bindir: Path, password: str) -> None:
        super().__init__("postgres", proc, log, f"postgresql://dbt@127.0.0.1:{port}/warehouse")
        self.port, self.data, self.bindir, self.password = port, data, bindir, password
        self.user, self.database = "dbt", "warehouse"

    def sql(self, statement: str) -> str:
        """Run SQL with psql over TCP, as a client would; the rows, unaligned, '|' between columns."""
        result = subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", self.database]
            + ["-v", "ON_ERROR_STOP=1", "-XAtq", "-c", statement],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def stop(self) -> None:
        super().stop()  # SIGTERM: PostgreSQL's smart shutdown; the test session's clients are gone by now
        shutil.rmtree(self.data, ignore_errors=True)


def postgres_bindir() -> Path | None:
    """Debian keeps the server's programs in /usr/lib/postgresql/<version>/bin, not on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def start_postgres() -> Postgres:
    """initdb and postgres on a free 127.0.0.1 port, password authentication over TCP. PostgreSQL refuses to run as
    root, so as root the server runs as the package's `postgres` user, in a directory of its own."""
    import pwd
    import secrets
    import tempfile

    bindir = postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL is not installed (run scripts/setup.sh: Debian's postgresql package)")
    run_as = None
    if os.geteuid() == 0:
        try:
            run_as = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run PostgreSQL as (Debian's postgresql package makes it)")
    data = Path(tempfile.mkdtemp(prefix="imagectl-postgres-"))
    password = secrets.token_hex(12)
    (data / "pwfile").write_text(password + "\n")
    if run_as is not None:
        for path in (data, data / "pwfile"):
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
    user = run_as.pw_name if run_as else None
    initdb = subprocess.run(
        [str(bindir / "initdb"), "-D", str(data / "db"), "-U", "dbt", f"--pwfile={data / 'pwfile'}", "-E", "UTF8", "--no-sync"]
        + ["--auth-local=trust", "--auth-host=scram-sha-256"],
        capture_output=True,
        text=True,
        timeout=120,
        user=user,
    )
    if initdb.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        unavailable(f"initdb failed: {initdb.stderr.strip()[-1500:]}")
    port = free_port()
    log = data / "postgres.log"
    settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(data), "fsync": "off", "full_page_writes": "off"}
    command = [str(bindir / "postgres"), "-D", str(data / "db"), "-p", str(port)]
    command += [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
    with log.open("w") as out:
        if run_as is not None:
            os.chown(log, run_as.pw_uid, run_as.pw_gid)
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, user=user)
    server = Postgres(proc, log, port, data, bindir, password)
    try:
        ready = [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"]
        wait_for(lambda: subprocess.run(ready, timeout=5).returncode == 0, 60, "postgres", proc, log)
        server.database = "postgres"
        server.sql("CREATE DATABASE warehouse")
        server.database = "warehouse"
    except RuntimeError as exc:
        server.stop()
        unavailable(str(exc))
    return server


ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_USERS = {"imagectl": ("admin", "imagectl-test-pass"), "viewer": ("viewer", "viewer-test-pass")}


def airflow_binary(major: int) -> Path:
    path = Path(os.environ.get(f"IMAGECTL_TEST_AIRFLOW{major}_VENV", ROOT / f".venv-airflow{major}")) / "bin" / "airflow"
    if not path.exists():
        unavailable(f"Airflow {major} is not installed at {path} (run scripts/setup.sh)")
    return path


def airflow_env(home: Path, major: int, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "IMAGECTL_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
    )
    if major >= 3:
        import json

        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({user: password for user, (_, password) in AIRFLOW_USERS.items()}))
        env.update(
            {
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{role}" for u, (role, _) in AIRFLOW_USERS.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            }
        )
    else:
        env.update(
            {
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
                "AIRFLOW__WEBSERVER__SECRET_KEY": "imagectl-tests",
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
            }
        )
    env.update(extra or {})
    return env


class Airflow(Server):
    def __init__(self, proc: subprocess.Popen, log: Path, url: str, home: Path, major: int, env: dict[str, str]) -> None:
        super().__init__(f"airflow{major}", proc, log, url)
        self.home, self.major, self.env = home, major, env

    def stop(self) -> None:
        # api-server / webserver run worker processes: stop the whole group.
        import signal

        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)


def start_airflow(
    workdir: Path,
    major: int,
    port: int | None = None,
    home: Path | None = None,
    standalone: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Airflow:
    """A real Airflow api-server (3) or webserver (2) with a fresh SQLite DB; users from AIRFLOW_USERS.

    standalone (Airflow 3): scheduler, dag-processor, triggerer and api-server together, so DAGs really run."""
    binary = airflow_binary(major)
    port = port or free_port()
    home = home or workdir / f"airflow{major}-{port}"
    (home / "dags").mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, major, port, extra_env)
    env["PATH"] = f"{binary.parent}{os.pathsep}{env.get('PATH', '')}"  # standalone starts its parts as `airflow …`
    if standalone:
        env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
        env.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
        env.setdefault("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "5")
        env.setdefault("AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC", "2")
        env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    log = home / "server.log"
    if not (home / "airflow.db").exists():
        migrate = subprocess.run([str(binary), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
        if migrate.returncode != 0:
            unavailable(f"airflow {major} db migrate failed: {migrate.stderr[-1500:]}")
        if major == 2:
            # Roles other than Admin/Public exist only after the permissions sync.
            subprocess.run([str(binary), "sync-perm"], env=env, check=True, capture_output=True, timeout=300)
            for user, (role, password) in AIRFLOW_USERS.items():
                role_name = {"admin": "Admin", "viewer": "Viewer"}[role]
                subprocess.run(
                    [
                        str(binary),
                        "users",
                        "create",
                        "-u",
                        user,
                        "-p",
                        password,
                        "-r",
                        role_name,
                        "-e",
                        f"{user}@example.com",
                        "-f",
                        user,
                        "-l",
                        "test",
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
    if standalone:
        command = [str(binary), "standalone"]
    elif major >= 3:
        command = [str(binary), "api-server", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [str(binary), "webserver", "--hostname", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(command, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    health = "/api/v2/monitor/health" if major >= 3 else "/api/v1/health"
    server = Airflow(proc, log, url, home, major, env)
    try:
        wait_for(lambda: requests.get(url + health, timeout=3).status_code == 200, 180, f"airflow {major}", proc, log)
    except RuntimeError as exc:
        server.stop()
        unavailable(str(exc))
    return server


def serve(argv: list[str] | None = None) -> int:
    """Start local servers for the demo, write their addresses to an env file, and stop them on SIGTERM/SIGINT.

    python -m tests.stack --workdir DIR --registries N [--ecr-accounts N]
                          [--airflow 3 [--standalone] [--airflow-env K=V ...] [--mwaa]] --env-file FILE

    --ecr-accounts N starts moto and the ECR harness (tests/ecr_harness.py) with one ECR per AWS account
    (111111111111, 222222222222, …) and writes, per account n: ECR_n_ACCOUNT, ECR_n_HOST (its registry API),
    ECR_n_ACCESS_KEY_ID / ECR_n_SECRET_ACCESS_KEY (an IAM user's keys in that account: "plain" credentials) and
    ECR_n_ROLE_ARN (a role there that AWS_BASE_ACCESS_KEY_ID / AWS_BASE_SECRET_ACCESS_KEY may assume); plus
    AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_STS and AWS_REGION for the AWS SDKs.

    --mwaa starts the MWAA InvokeRestApi stand-in (tests/mwaa_standin.py) in front of that Airflow 3 and writes
    AWS_ENDPOINT_URL_MWAA and AWS_DISABLE_HOST_PREFIX_INJECTION (for boto3), MWAA_ENVIRONMENT, MWAA_REGION, MWAA_ARN,
    and MWAA_ACCESS_KEY_ID / MWAA_SECRET_ACCESS_KEY (the IAM user it lets call airflow:InvokeRestApi on it).
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m tests.stack")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--registries", type=int, default=1)
    parser.add_argument("--ecr-accounts", type=int, default=0, help="moto and the ECR harness with this many AWS accounts")
    parser.add_argument("--airflow", type=int, choices=(2, 3))
    parser.add_argument("--standalone", action="store_true", help="scheduler, dag-processor and api-server: DAGs run")
    parser.add_argument("--airflow-env", action="append", default=[], metavar="KEY=VALUE", help="environment of Airflow")
    parser.add_argument("--mwaa", action="store_true", help="the MWAA InvokeRestApi stand-in in front of Airflow 3")
    parser.add_argument("--env-file", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.mwaa and args.airflow != 3:
        parser.error("--mwaa needs --airflow 3 (the stand-in maps InvokeRestApi onto Airflow 3's /api/v2)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        lines = []
        for n in range(1, args.registries + 1):
            server = start_registry(args.workdir)
            servers.append(server)
            lines.append(f"REGISTRY_{n}={server.url.removeprefix('http://')}")
        if args.ecr_accounts:
            lines += _start_ecr(args.workdir, args.ecr_accounts, servers)
        if args.airflow:
            extra = dict(item.split("=", 1) for item in args.airflow_env)
            airflow = start_airflow(args.workdir, args.airflow, standalone=args.standalone, extra_env=extra)
            servers.append(airflow)
            user, (_, password) = "imagectl", AIRFLOW_USERS["imagectl"]
            lines += [f"AIRFLOW_URL={airflow.url}", f"AIRFLOW_USER={user}", f"AIRFLOW_PASSWORD={password}"]
            if args.mwaa:
                standin, mwaa_lines = start_mwaa(airflow)
                servers.append(_Closing(standin))
                lines += mwaa_lines
        args.env_file.write_text("\n".join(lines) + "\n")
        while not stopping:
            time.sleep(0.5)
    except BaseException as exc:  # pytest's skip/fail outcomes included: report and stop what started
        if not stopping:
            print(f"stack: {exc}", file=sys.stderr)
            return 1
    finally:
        for server in reversed(servers):
            server.stop()
    return 0


class _Harness(Server):
    def __init__(self, harness: object) -> None:
        self.harness = harness

    def stop(self) -> None:
        self.harness.close()  # type: ignore[attr-defined]


_Closing = _Harness  # anything with close(), stopped with the stack

MWAA_ENVIRONMENT, MWAA_REGION = "imagectl-prd", "ap-northeast-2"


def start_mwaa(airflow: Airflow, name: str = MWAA_ENVIRONMENT, region: str = MWAA_REGION) -> tuple[object, list[str]]:
    """The MWAA InvokeRestApi stand-in in front of ``airflow`` (as its Admin user), with one IAM user allowed to call
    it; returns the stand-in and the env-file lines that reach it."""
    import secrets

    from tests.mwaa_standin import MwaaStandIn

    standin = MwaaStandIn(region=region)
    access_key, secret_key = "AKIAMWAA" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30)
    standin.add_user(access_key, secret_key)
    standin.add_environment(name, airflow.url, ("imagectl", AIRFLOW_USERS["imagectl"][1]))
    lines = [
        f"AWS_ENDPOINT_URL_MWAA={standin.url}",
        "AWS_DISABLE_HOST_PREFIX_INJECTION=true",
        f"MWAA_ENVIRONMENT={name}",
        f"MWAA_REGION={region}",
        f"MWAA_ARN={standin.arn(name)}",
        f"MWAA_ACCESS_KEY_ID={access_key}",
        f"MWAA_SECRET_ACCESS_KEY={secret_key}",
    ]
    return standin, lines


def _start_ecr(workdir: Path, count: int, servers: list[Server]) -> list[str]:
    from tests.ecr_harness import EcrHarness

    moto = start_moto(workdir)
    servers.append(moto)
    backing = start_registry(workdir)
    servers.append(backing)
    accounts = tuple(str(n) * 12 for n in range(1, count + 1))
    harness = EcrHarness(moto.url, backing.url, accounts=accounts)
    servers.append(_Harness(harness))
    lines = [
        f"AWS_ENDPOINT_URL_ECR={harness.url}",
        f"AWS_ENDPOINT_URL_STS={moto.url}",
        "AWS_REGION=ap-northeast-2",
        "AWS_BASE_ACCESS_KEY_ID=testing",
        "AWS_BASE_SECRET_ACCESS_KEY=testing",
    ]
    for n, account in enumerate(accounts, start=1):
        keys = harness.user_credentials(account)
        lines += [
            f"ECR_{n}_ACCOUNT={account}",
            f"ECR_{n}_HOST={harness.account(account).host}",
            f"ECR_{n}_ACCESS_KEY_ID={keys['aws_access_key_id']}",
            f"ECR_{n}_SECRET_ACCESS_KEY={keys['aws_secret_access_key']}",
            f"ECR_{n}_ROLE_ARN=arn:aws:iam::{account}:role/imagectl",
        ]
    return lines


if __name__ == "__main__":
    sys.exit(serve())
