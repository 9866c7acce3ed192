"""Hostile servers on the wire (issue 21, causes 1, 6, 7, 8 and 9): small real HTTP servers on 127.0.0.1 that
redirect to another host, drip their answers, swap manifests, nest JSON 30,000 deep or echo credentials back —
against each of imagectl's clients (Airflow, the registry, webhooks) and through the CLI."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from imagectl import report
from imagectl.adapters import http
from imagectl.airflow.transport import PasswordTransport
from imagectl.credentials import Credentials, Login
from imagectl.errors import AirflowError, RegistryError
from imagectl.registries.kinds import HttpSettings
from imagectl.registries.oci import OciRegistry
from imagectl.settings import RegistryConfig, Timeouts

Handler = Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes] | None]


class Server:
    """A scripted HTTP server: ``route(method, path) -> (status, headers, body)``; every request is recorded."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[dict[str, Any]] = []
        server = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
                path = self.path.split("?")[0]
                handler = server.routes.get((self.command, path)) or server.routes.get((self.command, "*"))
                answer = handler(self, body) if handler else (404, {}, b'{"detail": "not found"}')
                if answer is None:
                    return  # the handler answered itself
                status, headers, payload = answer
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = do_DELETE = handle_one

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.host = self.url.removeprefix("http://")
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def on(self, method: str, path: str, handler: Handler | tuple[int, dict[str, str], bytes]) -> None:
        self.routes[(method, path)] = handler if callable(handler) else (lambda _r, _b, a=handler: a)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    """``a``, the server imagectl is told about, and ``b``, another host (another port is another origin)."""
    a, b = Server(), Server()
    b.on("GET", "*", (200, {}, b'{"stolen": true}'))
    b.on("POST", "*", (200, {}, b'{"access_token": "from-b"}'))
    b.on("PATCH", "*", (200, {}, b"{}"))
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def warnings() -> list[str]:
    said: list[str] = []
    report.start(said.append)
    return said


def redirect(to: str, status: int = 307) -> tuple[int, dict[str, str], bytes]:
    return status, {"Location": to}, b""


def airflow3(server: Server) -> None:
    server.on("GET", "/api/v2/monitor/health", (200, {}, b'{"metadatabase": {"status": "healthy"}}'))


# -- cause 1: no credential follows a redirect to another host ------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
def test_the_airflow_password_never_follows_a_redirect_to_another_host(servers, status):
    a, b = servers
    airflow3(a)
    a.on("POST", "/auth/token", redirect(f"{b.url}/auth/token", status))
    transport = PasswordTransport(a.url, "dev", Login("imagectl", "CANARY-pw-1"))
    with pytest.raises(AirflowError, match="redirect to another host") as caught:
        transport.call("GET", "/variables/x", "reading x")
    assert not b.seen and "CANARY" not in str(caught.value)


def test_a_same_origin_redirect_is_followed(servers):
    a, _ = servers
    airflow3(a)
    a.on("POST", "/auth/token", redirect("/auth/token2"))
    a.on("POST", "/auth/token2", (201, {}, b'{"access_token": "jwt"}'))
    a.on("GET", "/api/v2/variables/x", (200, {}, b'{"key": "x", "value": "1"}'))
    answer = PasswordTransport(a.url, "dev", Login("imagectl", "pw")).call("GET", "/variables/x", "reading x")
    assert answer.body["value"] == "1" and a.seen[-1]["headers"]["Authorization"] == "Bearer jwt"


def test_a_variable_write_redirected_to_another_host_is_not_sent(servers):
    a, b = servers
    airflow3(a)
    a.on("POST", "/auth/token", (201, {}, b'{"access_token": "jwt-CANARY"}'))
    a.on("PATCH", "/api/v2/variables/x", redirect(f"{b.url}/api/v2/variables/x"))
    with pytest.raises(AirflowError, match="redirect to another host"):
        PasswordTransport(a.url, "dev", Login("imagectl", "pw")).call("PATCH", "/variables/x", "writing x", body={"value": "v"})
    assert not b.seen


def basic_registry(a: Server, user: str, password: str) -> None:
    """``a`` refuses requests without this Basic login (as a registry does with a Basic challenge)."""
    wanted = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def gate(inner: Handler) -> Handler:
        def handler(request: BaseHTTPRequestHandler, body: bytes) -> Any:
            if request.headers.get("Authorization") != wanted:
                return 401, {"WWW-Authenticate": 'Basic realm="registry"'}, b'{"errors": [{"code": "UNAUTHORIZED"}]}'
            return inner(request, body)

        return handler

    a.gate = gate  # type: ignore[attr-defined]
    a.on("GET", "/v2/", gate(lambda r, b: (200, {}, b"{}")))


def registry_of(a: Server, login: Login | None = None, timeouts: Timeouts | None = None) -> OciRegistry:
    return OciRegistry(RegistryConfig("hostile", "oci", a.host, HttpSettings(insecure=True)), login, timeouts)


def test_registry_credentials_never_follow_a_manifest_redirect_and_blob_redirects_go_without_them(servers):
    a, b = servers
    basic_registry(a, "robot", "CANARY-reg-2")
    gate = a.gate  # type: ignore[attr-defined]
    a.on("GET", "/v2/r/manifests/t", gate(lambda r, _b: redirect(f"{b.url}/v2/r/manifests/t")))
    a.on("GET", "/v2/r/blobs/sha256:" + "0" * 64, gate(lambda r, _b: redirect(f"{b.url}/storage/blob?signed=1")))
    registry = registry_of(a, Login("robot", "CANARY-reg-2"))
    with pytest.raises(RegistryError, match="redirect to another host"):
        registry.get_manifest("r", "t")
    assert not b.seen
    assert registry.open_blob("r", "sha256:" + "0" * 64).read() == b'{"stolen": true}'  # storage on another host: followed
    assert b.seen and all("Authorization" not in s["headers"] and "CANARY" not in json.dumps(s["headers"]) for s in b.seen)


def test_a_token_realm_on_another_host_over_http_gets_no_password(servers):
    a, b = servers
    a.on("GET", "/v2/", (401, {"WWW-Authenticate": f'Bearer realm="{b.url}/token",service="x"'}, b"{}"))
    a.on(
        "GET",
        "/v2/r/manifests/t",
        (401, {"WWW-Authenticate": f'Bearer realm="{b.url}/token",service="x",scope="repository:r:pull"'}, b"{}"),
    )
    with pytest.raises(RegistryError):
        registry_of(a, Login("robot", "CANARY-reg-3")).get_manifest("r", "t")
    assert all("CANARY" not in json.dumps(s["headers"]) for s in b.seen)


def test_a_webhook_redirected_to_another_host_is_not_followed(servers, warnings, tmp_path):
    from imagectl.notify import send
    from tests.unit.helpers import config

    a, b = servers
    a.on("POST", "/hook", redirect(f"{b.url}/hook"))
    settings = config('\n[webhooks.team]\nformat = "json"\n', text=_with_notify())
    event = _event()
    delivered = send(settings, Credentials({"IMAGECTL_WEBHOOK_TEAM_URL": f"{a.url}/hook"}), event)
    assert delivered == 0 and not b.seen and any("redirect to another host" in w for w in warnings)


def _with_notify() -> str:
    from tests.unit.helpers import BASE

    return BASE.replace('[environments.dev]\nregistry = "dev"\n', '[environments.dev]\nregistry = "dev"\nnotify = ["team"]\n')


def _event() -> Any:
    from imagectl.history import Revision
    from imagectl.notify import Event

    revision = Revision(
        environment="dev",
        revision=1,
        time="2026-11-24T00:00:00Z",
        action="deploy",
        tag="DATA-1-1",
        digest="sha256:" + "1" * 64,
        reference="r",
        actor="me",
    )
    return Event(action="deploy", environment="dev", after=revision, before=None)


# -- cause 6: a deadline on every request ------------------------------------------------------------------------


def drip(request: BaseHTTPRequestHandler, _body: bytes) -> None:
    """200, then one byte of the body every 0.3 s: never a read time-out, never an end."""
    request.send_response(200)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", "1000")
    request.end_headers()
    try:
        for _ in range(1000):
            request.wfile.write(b" ")
            request.wfile.flush()
            time.sleep(0.3)
    except OSError:
        pass


def test_a_dripping_server_is_given_up_on_at_the_requests_deadline(servers):
    a, _ = servers
    airflow3(a)
    a.on("POST", "/auth/token", drip)
    a.on("GET", "/v2/r/manifests/t", drip)
    limits = Timeouts(connect=1, read=2, request=2)
    started = time.monotonic()
    with pytest.raises(AirflowError, match="deadline"):
        PasswordTransport(a.url, "dev", Login("u", "p"), timeouts=limits).call("GET", "/variables/x", "reading x")
    with pytest.raises(RegistryError, match="deadline"):
        registry_of(a, timeouts=limits).get_manifest("r", "t")
    assert time.monotonic() - started < 12  # two deadlines of 2 s (and a retry each at most), not 300 s of drip


# -- cause 7: unchecked bytes -----------------------------------------------------------------------------------


def test_a_manifest_fetched_by_digest_must_have_that_digest(servers):
    a, _ = servers
    doc = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}, "layers": []}).encode()
    asked = "sha256:" + "a" * 64
    a.on("GET", f"/v2/r/manifests/{asked}", (200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, doc))
    a.on("GET", "/v2/", (200, {}, b"{}"))
    with pytest.raises(RegistryError, match="digest"):
        registry_of(a).get_manifest("r", asked)


def test_json_nested_thirty_thousand_deep_is_refused_in_one_line(servers):
    a, _ = servers
    airflow3(a)
    a.on("POST", "/auth/token", (201, {}, b'{"access_token": "jwt"}'))
    a.on("GET", "/api/v2/variables/x", (200, {}, b"[" * 30000 + b"]" * 30000))
    answer = PasswordTransport(a.url, "dev", Login("u", "p")).call("GET", "/variables/x", "reading x")
    assert answer.body is None  # not JSON imagectl accepts: the caller says so in its own words


# -- cause 8 / 9: what servers echo, and the login's characters ---------------------------------------------------


def test_secrets_a_server_echoes_back_are_redacted_in_every_output(servers, imagectl, tmp_path):
    a, _ = servers
    airflow3(a)
    a.on("POST", "/auth/token", (201, {}, b'{"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.c2lnbmF0dXJlQ0FOQVJZ"}'))

    def echo(request: BaseHTTPRequestHandler, _body: bytes) -> Any:
        detail = f"bad request from {request.headers.get('Authorization')} Basic {base64.b64encode(b'imagectl:CANARY-pw-4').decode()}"
        detail += " aws_session_token=IQoJb3JpZ2luX2VjEKCANARYCANARYCANARYCANARYCANARY AKIAIOSFODNN7CANARY1"
        return 500, {}, json.dumps({"detail": detail}).encode()

    a.on("GET", "*", echo)
    config = tmp_path / "imagectl.toml"
    config.write_text(
        f"""
[project]
name = "demo"
[images.base]
context = "images/base"
repository = "dbt-base"
[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "dbt-build"
[registries.local]
kind = "oci"
host = "{a.host}"
insecure = true
[environments.dev]
registry = "local"
airflow_url = "{a.url}"
"""
    )
    env = {"IMAGECTL_AIRFLOW_USERNAME": "imagectl", "IMAGECTL_AIRFLOW_PASSWORD": "CANARY-pw-4"}
    for args in (["variable", "show", "--env", "dev"], ["status", "--env", "dev"], ["status", "--env", "dev", "-o", "json"]):
        result = imagectl(*args, "--config", str(config), env=env)
        assert result.exit_code != 0 and "Traceback" not in result.stderr
        both = result.stdout + result.stderr
        assert "CANARY" not in both and base64.b64encode(b"imagectl:CANARY-pw-4").decode() not in both, both


def test_a_login_http_basic_cannot_carry_is_one_clear_line(servers):
    a, _ = servers
    a.on("GET", "/api/v2/monitor/health", (404, {}, b"{}"))
    a.on("GET", "/api/v1/health", (200, {}, b'{"metadatabase": {"status": "healthy"}}'))
    with pytest.raises(AirflowError, match="Latin-1"):
        PasswordTransport(a.url, "dev", Login("пользователь€", "pw")).call("GET", "/variables/x", "reading x")


def test_tls_failures_and_a_missing_ca_bundle_say_so(servers, monkeypatch):
    a, _ = servers
    airflow3(a)
    with pytest.raises(AirflowError, match="TLS failed"):
        PasswordTransport(a.url.replace("http://", "https://"), "dev", Login("u", "p")).call("GET", "/variables/x", "reading x")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    with pytest.raises(AirflowError, match="REQUESTS_CA_BUNDLE"):
        PasswordTransport(a.url.replace("http://", "https://"), "dev", Login("u", "p")).call("GET", "/variables/x", "reading x")


def test_an_empty_aws_region_is_a_config_error(monkeypatch):
    from imagectl.adapters import aws
    from imagectl.errors import ConfigError

    monkeypatch.setenv("AWS_DEFAULT_REGION", "")
    with pytest.raises(ConfigError, match="AWS_DEFAULT_REGION"):
        aws.client("secretsmanager", None)


def test_http_send_refuses_an_offsite_redirect_for_a_post_even_when_offsite_is_allowed(servers):
    a, b = servers
    a.on("POST", "/x", redirect(f"{b.url}/x"))
    with pytest.raises(http.OffsiteRedirect):
        http.send(http.session(retries=0), "POST", f"{a.url}/x", timeouts=None, what="x", offsite_redirects=True, json={"p": "CANARY"})
    assert not b.seen
