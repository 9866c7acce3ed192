"""Warnings: things a command skipped or could not verify, said once each and never fatal.

The core calls ``warn``; the CLI shows each one on stderr as ``warning: …`` when it happens and adds the list to
``--output json`` documents. Messages pass through ``sanitize.visible`` (they may quote registry content).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from imagectl.sanitize import visible

_seen: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("imagectl_warnings", default=None)
_sink: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("imagectl_warning_sink", default=None)


def start(sink: Callable[[str], None] | None = None) -> None:
    _seen.set([])
    _sink.set(sink)


def warn(message: str) -> None:
    text = " ".join(visible(message).split())
    seen = _seen.get()
    if seen is None:
        seen = []
        _seen.set(seen)
    if text in seen:
        return
    seen.append(text)
    sink = _sink.get()
    if sink is not None:
        sink(text)


def collected() -> list[str]:
    return list(_seen.get() or [])
