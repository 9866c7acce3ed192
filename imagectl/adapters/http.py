"""HTTP for every client (registries, Airflow, webhooks): deadlines, bounded retries, one time budget per command,
and a redirect policy that never sends a credential to a host it was not meant for.

- Each request has a connect and a read timeout ([timeouts] connect / read, 5 s and 30 s) **and a deadline**: the
  whole exchange — connecting, every retry, the headers and (unless streamed) the body — ends by
  ``min([timeouts] request, what remains of the command's budget)``, however slowly a server drips its answer. A
  streamed body is read with ``read_within`` against the same kind of deadline.
- Connection errors, 429 and 5xx answers are retried with exponential backoff, a bounded number of times
  (``Retry-After`` is honoured, capped); a read time-out is retried once at most.
- The whole command shares one budget ([timeouts] command, 600 s; ``IMAGECTL_TIMEOUT``).
- **Redirects** are followed here, never by ``requests``: to the same origin (scheme, host and port) with the
  request's credentials; to another origin only when the caller allows it for a GET or HEAD (an ECR layer download
  is redirected to a pre-signed S3 URL), and then with no credentials at all; otherwise refused with
  ``OffsiteRedirect``. At most ``MAX_REDIRECTS`` hops.
"""

from __future__ import annotations

import contextvars
import functools
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from imagectl.errors import TimeoutError_
from imagectl.safejson import parse_json
from imagectl.settings import Timeouts

T = TypeVar("T")
R = TypeVar("R")

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("imagectl_deadline", default=None)
_budget: contextvars.ContextVar[float | None] = contextvars.ContextVar("imagectl_budget", default=None)


class OffsiteRedirect(requests.RequestException):
    """A server answered with a redirect to another origin where the request's credentials must not go."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class UnsendableCredentials(requests.RequestException):
    """A login with characters HTTP Basic authentication cannot carry (it is Latin-1 only)."""


class MissingCaBundle(requests.RequestException):
    """REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) names a CA bundle file that does not exist."""


class DeadlineExceeded(requests.Timeout):
    """The request's deadline passed before its answer was complete."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:.0f} s")
        self.seconds = seconds


def start_budget(seconds: float) -> None:
    """Start the command's time budget for network calls (the CLI calls this once per command)."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("the time budget must be a positive number of seconds")
    _budget.set(seconds)
    _deadline.set(time.monotonic() + seconds)


def remaining() -> float | None:
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def check_budget(what: str) -> None:
    left = remaining()
    if left is not None and left <= 0:
        raise TimeoutError_(
            f"the command's time budget of {_budget.get():.0f} s ran out before {what}",
            "raise [timeouts] command in imagectl.toml (or IMAGECTL_TIMEOUT), or check what is slow",
        )


def timeout_for(timeouts: Timeouts | None) -> tuple[float, float]:
    connect, read = (timeouts.connect, timeouts.read) if timeouts else (5.0, 30.0)
    left = remaining()
    if left is not None:
        connect, read = min(connect, max(left, 0.1)), min(read, max(left, 0.1))
    return connect, read


def deadline_for(timeouts: Timeouts | None) -> float:
    """Seconds the next request may take in all: the per-request deadline, capped by the command's budget."""
    total = timeouts.request if timeouts else Timeouts().request
    left = remaining()
    return max(0.1, min(total, left)) if left is not None else total


def map_in(pool: Executor, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``pool.map`` that carries the command's budget into the worker threads (context variables do not follow
    a task into a thread by themselves)."""
    futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
    return [f.result() for f in futures]


class _BlockAdapter(HTTPAdapter):
    """Reads and sends bodies in blocks of ``blocksize`` bytes (urllib3's default, 16 KiB, costs a Python call per
    16 KiB: a quarter of a 250 MB copy's time)."""

    def __init__(self, blocksize: int, **kwargs: Any) -> None:
        self.blocksize = blocksize
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = self.blocksize
        super().init_poolmanager(*args, **kwargs)


def session(retries: int = 4, backoff: float = 0.3, pool: int = 32, blocksize: int | None = None) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=min(retries, 1),
        status=retries,
        redirect=0,  # redirects are this module's (see send), never urllib3's
        backoff_factor=backoff,
        backoff_max=5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # registry PUTs are idempotent by digest; Variable writes set a value, so retrying is safe
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    http = requests.Session()
    http.trust_env = True  # proxies and REQUESTS_CA_BUNDLE from the environment; never netrc credentials (see _strip)
    if blocksize:
        adapter: HTTPAdapter = _BlockAdapter(blocksize, max_retries=retry, pool_connections=4, pool_maxsize=pool)
    else:
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def same_origin(a: str, b: str) -> bool:
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.hostname, x.port or _port(x.scheme)) == (y.scheme, y.hostname, y.port or _port(y.scheme))


def _port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _within(seconds: float, call: Callable[[], R]) -> R:
    """``call()`` in a thread of its own, given up on after ``seconds`` (a server that drips its answer a byte at a
    time never trips a read time-out). The abandoned thread ends when its socket does; nothing waits for it."""
    box: dict[str, Any] = {}
    context = contextvars.copy_context()

    def run() -> None:
        try:
            box["value"] = context.run(call)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as it is
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True, name="imagectl-request")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise DeadlineExceeded(seconds)
    if "error" in box:
        raise box["error"]
    return box["value"]


def send(
    http: requests.Session,
    method: str,
    url: str,
    *,
    timeouts: Timeouts | None,
    what: str,
    offsite_redirects: bool = False,
    **kwargs: Any,
) -> requests.Response:
    """One request within its deadline and the command's budget, following redirects as the module docstring says;
    requests' own exceptions (and ``OffsiteRedirect``, ``DeadlineExceeded``) propagate for the caller to explain."""
    check_budget(what)
    seconds = deadline_for(timeouts)
    started = time.monotonic()
    stream = bool(kwargs.pop("stream", False))
    kwargs.pop("allow_redirects", None)

    def exchange(current_method: str, target: str, arguments: dict[str, Any]) -> requests.Response:
        try:
            response = http.request(current_method, target, timeout=timeout_for(timeouts), allow_redirects=False, stream=True, **arguments)
        except UnicodeEncodeError:
            raise UnsendableCredentials() from None  # HTTP Basic auth carries Latin-1 only
        except OSError as exc:
            if "CA certificate bundle" in str(exc):
                raise MissingCaBundle() from None
            raise
        if not stream and response.status_code not in REDIRECTS:
            response.content  # noqa: B018 - the body is part of the answer the deadline covers
        return response

    current_method, target, arguments = method, url, dict(kwargs)
    for _ in range(MAX_REDIRECTS + 1):
        left = seconds - (time.monotonic() - started)
        if left <= 0:
            raise DeadlineExceeded(seconds)
        response = _within(left, functools.partial(exchange, current_method, target, arguments))
        if response.status_code not in REDIRECTS or "Location" not in response.headers:
            return response
        response.close()
        location = urljoin(target, response.headers["Location"])
        if urlsplit(location).scheme not in ("http", "https"):
            raise OffsiteRedirect(location)
        if response.status_code == 303 or (response.status_code in (301, 302) and current_method == "POST"):
            current_method = "GET"  # as browsers and requests do; the body is not sent again
            arguments = {k: v for k, v in arguments.items() if k not in ("data", "json", "files")}
        elif _body_is_stream(arguments):
            raise OffsiteRedirect(location)  # a streamed body cannot be sent twice
        if not same_origin(target, location):
            if not (offsite_redirects and current_method in ("GET", "HEAD")):
                raise OffsiteRedirect(location)
            arguments = _strip(arguments)
            http = requests.Session()  # nothing of the original session (its cookies) goes along
        target = location
    raise OffsiteRedirect(target)


def _body_is_stream(arguments: dict[str, Any]) -> bool:
    data = arguments.get("data")
    return data is not None and not isinstance(data, bytes | str | dict | list | tuple)


def _strip(arguments: dict[str, Any]) -> dict[str, Any]:
    """The request without credentials: no auth, no Authorization, Cookie or Proxy-Authorization header."""
    secret = ("authorization", "cookie", "proxy-authorization")
    headers = {k: v for k, v in (arguments.get("headers") or {}).items() if k.lower() not in secret}
    return {**{k: v for k, v in arguments.items() if k not in ("auth", "headers", "cookies")}, "headers": headers, "auth": _NoAuth()}


class _NoAuth(requests.auth.AuthBase):
    """Explicitly no credentials (requests would otherwise look up ~/.netrc for the new host)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


def read_within(stream: BinaryIO, limit: int, what: str, timeouts: Timeouts | None = None) -> bytes:
    """A streamed body's bytes, at most ``limit`` + 1 (the caller checks the size), within a request's deadline."""
    seconds = deadline_for(timeouts)
    return _within(seconds, lambda: stream.read(limit + 1))


def explain(exc: requests.RequestException, timeouts: Timeouts | None) -> str:
    """A short, secret-free description of a transport failure, saying what is and is not known."""
    read = timeouts.read if timeouts else 30.0
    if isinstance(exc, OffsiteRedirect):
        host = urlsplit(exc.location).netloc or exc.location[:80]
        return f"answered with a redirect to another host ({host}); imagectl does not send its credentials there"
    if isinstance(exc, UnsendableCredentials):
        return "the login has characters HTTP Basic authentication cannot send (only Latin-1): change the user name or password"
    if isinstance(exc, MissingCaBundle):
        return "REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) names a CA bundle file that does not exist: fix or unset it"
    if isinstance(exc, DeadlineExceeded):
        return f"no complete answer within {exc.seconds:.0f} s (the request's deadline)"
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc).lower()
        if "certificate verify failed" in text:
            return "TLS failed: the server's certificate is not trusted (REQUESTS_CA_BUNDLE names the CA bundle to trust)"
        return "TLS failed (the server's TLS set-up, or a proxy in between)"
    if isinstance(exc, requests.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, requests.ReadTimeout):
        return f"no answer within {read:g} s"
    if isinstance(exc, requests.exceptions.RetryError):
        return "kept answering with errors"
    if isinstance(exc, requests.exceptions.InvalidHeader | requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return "the request could not be made (an invalid header or URL: check the credentials' characters and the host)"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc).lower()
        if "read timed out" in text:
            return f"no answer within {read:g} s"
        if "refused" in text:
            return "connection refused"
        if "name or service not known" in text or "nodename nor servname" in text or "failed to resolve" in text:
            return "host name not found"
        if "remotedisconnected" in text or "connection aborted" in text or "reset by peer" in text:
            return "the connection was dropped"
        return "cannot connect"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return "the connection was dropped mid-answer"
    return type(exc).__name__


def is_read_timeout(exc: requests.RequestException) -> bool:
    return isinstance(exc, requests.ReadTimeout | DeadlineExceeded) or "read timed out" in str(exc).lower()


def json_body(response: requests.Response) -> Any:
    """The JSON body, or None when the answer is not JSON (a proxy's HTML page, a truncated body, a hostile document
    too large or too deeply nested)."""
    try:
        return parse_json(response.content)
    except (ValueError, requests.exceptions.RequestException):
        return None
