"""A small HTTP proxy for tests that puts faults between imagectl and a real server (a registry, Airflow):
latency, a hang, an error status, a non-JSON page, a connection dropped mid-body. The mode can change while a
test runs; every request is counted."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


@dataclass
class Faults:
    latency: float = 0.0  # each request waits uniform(0, latency) seconds before it is forwarded
    hang: bool = False  # accept the request and never answer (until the proxy closes)
    status: int | None = None  # answer this status instead of forwarding
    html: bool = False  # answer 200 with an HTML page instead of forwarding
    drop_mid_body: bool = False  # forward, send the headers and half the body, then close the connection
    only: str | None = None  # apply the faults only to paths containing this (None: all)
    methods: tuple[str, ...] = ()  # apply the faults only to these methods (empty: all)


class Hold:
    """Holds the first request matching ``method`` and ``path`` (a substring) until ``release()``: the request has
    reached the proxy (``arrived`` is set) but not the server — the window a claim-time race lives in."""

    def __init__(self, method: str, path: str) -> None:
        self.method, self.path = method, path
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._taken = False
        self._lock = threading.Lock()

    def matches(self, request: BaseHTTPRequestHandler) -> bool:
        with self._lock:
            if self._taken or request.command != self.method or self.path not in request.path:
                return False
            self._taken = True
            return True

    def release(self) -> None:
        self._released.set()

    def wait(self) -> None:
        self.arrived.set()
        self._released.wait(300)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.hold: Hold | None = None
        self._closing = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def forward(self) -> None:
                proxy.handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.hold is not None:
            self.hold.release()
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    def _applies(self, request: BaseHTTPRequestHandler) -> bool:
        f = self.faults
        return (f.only is None or f.only in request.path) and (not f.methods or request.command in f.methods)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        self.requests[request.command] += 1
        hold = self.hold
        if hold is not None and hold.matches(request):
            hold.wait()
        faults = self.faults if self._applies(request) else Faults()
        if faults.latency:
            time.sleep(random.uniform(0, faults.latency))
        if faults.hang:
            self._closing.wait(600)
            return
        if faults.status is not None or faults.html:
            status = faults.status or 200
            page = b"<html><body>proxy says no</body></html>"
            request.send_response(status)
            request.send_header("Content-Type", "text/html")
            request.send_header("Content-Length", str(len(page)))
            request.end_headers()
            if request.command != "HEAD":
                request.wfile.write(page)
            return
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length", "connection", "transfer-encoding")
        }
        try:
            upstream = requests.request(
                request.command,
                self.upstream + request.path,
                data=body or None,
                headers=headers,
                timeout=120,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException:
            request.send_response(502)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        payload = b"" if request.command == "HEAD" else upstream.raw.read(decode_content=False)
        request.send_response(upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            if key.lower() == "location":
                value = value.replace(self.upstream, self.url)
            request.send_header(key, value)
        length_header = upstream.headers.get("Content-Length", "0") if request.command == "HEAD" else str(len(payload))
        request.send_header("Content-Length", length_header)
        request.end_headers()
        if faults.drop_mid_body and payload:
            request.wfile.write(payload[: max(1, len(payload) // 2)])
            request.wfile.flush()
            request.close_connection = True
            try:
                request.connection.shutdown(2)
            except OSError:
                pass
            return
        if payload:
            request.wfile.write(payload)
