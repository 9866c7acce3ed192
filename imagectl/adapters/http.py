"""HTTP for every client (registries, Airflow, webhooks): timeouts, bounded retries, one time budget per command.

- Each request has a connect and a read timeout ([timeouts] connect / read in imagectl.toml, 5 s and 30 s).
- Connection errors, 429 and 5xx answers are retried with exponential backoff, a bounded number of times
  (``Retry-After`` is honoured, capped); a read time-out is retried once at most, since a hung server makes
  every attempt wait the full read time-out.
- The whole command shares one budget ([timeouts] command, 600 s; ``IMAGECTL_TIMEOUT``): no request starts
  after it ran out, and none waits past it. Builds and ``--wait`` have their own limits.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from imagectl.errors import TimeoutError_
from imagectl.settings import Timeouts

T = TypeVar("T")
R = TypeVar("R")

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("imagectl_deadline", default=None)
_budget: contextvars.ContextVar[float | None] = contextvars.ContextVar("imagectl_budget", default=None)


def start_budget(seconds: float) -> None:
    """Start the command's time budget for network calls (the CLI calls this once per command)."""
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
        backoff_factor=backoff,
        backoff_max=5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # registry PUTs are idempotent by digest; Variable writes set a value, so retrying is safe
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    http = requests.Session()
    if blocksize:
        adapter: HTTPAdapter = _BlockAdapter(blocksize, max_retries=retry, pool_connections=4, pool_maxsize=pool)
    else:
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def send(http: requests.Session, method: str, url: str, *, timeouts: Timeouts | None, what: str, **kwargs: Any) -> requests.Response:
    """One request within the command's budget; requests' own exceptions propagate for the caller to explain."""
    check_budget(what)
    return http.request(method, url, timeout=timeout_for(timeouts), **kwargs)


def explain(exc: requests.RequestException, timeouts: Timeouts | None) -> str:
    """A short, secret-free description of a transport failure, saying what is and is not known."""
    read = timeouts.read if timeouts else 30.0
    if isinstance(exc, requests.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, requests.ReadTimeout):
        return f"no answer within {read:g} s"
    if isinstance(exc, requests.exceptions.RetryError):
        return "kept answering with errors"
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
    return isinstance(exc, requests.ReadTimeout) or "read timed out" in str(exc).lower()


def json_body(response: requests.Response) -> Any:
    """The JSON body, or None when the answer is not JSON (a proxy's HTML page, a truncated body)."""
    try:
        return response.json()
    except (ValueError, requests.exceptions.RequestException):
        return None
