"""Helpers for tests that talk to a real Airflow: read Variables, and stop Airflow at an exact moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.stack import AIRFLOW_USERS


def admin_headers(airflow) -> dict[str, str]:
    user, (_, password) = "imagectl", AIRFLOW_USERS["imagectl"]
    if airflow.major == 2:
        import base64

        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    token = requests.post(airflow.url + "/auth/token", json={"username": user, "password": password}, timeout=10).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def get_variable(airflow, key: str) -> dict | None:
    api = "v2" if airflow.major >= 3 else "v1"
    response = requests.get(f"{airflow.url}/api/{api}/variables/{key}", headers=admin_headers(airflow), timeout=10)
    return None if response.status_code == 404 else response.json()


def set_variable(airflow, key: str, value: str) -> None:
    api = "v2" if airflow.major >= 3 else "v1"
    headers = admin_headers(airflow)
    response = requests.patch(f"{airflow.url}/api/{api}/variables/{key}", json={"key": key, "value": value}, headers=headers, timeout=10)
    if response.status_code == 404:
        requests.post(
            f"{airflow.url}/api/{api}/variables", json={"key": key, "value": value}, headers=headers, timeout=10
        ).raise_for_status()


class StopOnWrite:
    """An HTTP pass-through in front of a real Airflow that runs ``on_write`` (e.g. stopping Airflow) the first
    time a Variable is written, before forwarding that write: the write then meets a stopped server."""

    def __init__(self, upstream: str, on_write: Callable[[], None]) -> None:
        self.upstream = upstream
        self.on_write: Callable[[], None] | None = on_write
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                if self.command in ("PATCH", "POST") and "/variables" in self.path and proxy.on_write:
                    hook, proxy.on_write = proxy.on_write, None
                    hook()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                try:
                    upstream = requests.request(self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=10)
                except requests.RequestException:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(upstream.status_code)
                for key in ("Content-Type",):
                    if key in upstream.headers:
                        self.send_header(key, upstream.headers[key])
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RecordingServer:
    """Stands in for an external HTTP API (Lightdash's) that the tests cannot reach: answers 200 and records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[bytes] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                recorder.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0) or 0)))
                recorder.requests.append(("POST", self.path, dict(self.headers)))
                body = b'{"status": "ok", "results": {"jobUuid": "test"}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
