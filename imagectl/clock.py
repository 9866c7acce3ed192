"""The one clock: UTC time as imagectl writes it everywhere (labels, records, history)."""

from __future__ import annotations

from datetime import datetime, timezone


def now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
