"""Output: every command returns a ``Result`` that renders itself as text and as JSON; this module prints it.

``--output json`` prints one object per command, always ``{"schema": 1, "kind": …, …, "warnings": […]}``, so
scripts can rely on its shape (README, "JSON output"). Text output shows every string that came from outside
(reasons, actors, registry content) through ``sanitize.visible``: control characters cannot reach a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

from imagectl.sanitize import redact_secrets, visible

SCHEMA = 1


class Result:
    """A command's result. Subclasses set ``kind`` and implement ``json`` and ``text``."""

    kind: ClassVar[str] = "result"
    dry_run_note: ClassVar[str] = "Nothing was changed (--dry-run)."  # the last line of this plan's dry run

    def json(self) -> dict[str, Any]:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def json_kind(self) -> str:
        return self.kind

    def exit_code(self) -> int:
        """The exit code this result ends the command with (0 unless the result itself is a failure)."""
        return 0


class DryRun(Result):
    """A plan shown instead of applied (``--dry-run``): its own JSON, its text and the plan's dry-run line."""

    def __init__(self, plan: Result) -> None:
        self.plan = plan

    def json_kind(self) -> str:
        return self.plan.kind

    def json(self) -> dict[str, Any]:
        return self.plan.json()

    def text(self) -> str:
        return f"{self.plan.text()}\n{self.plan.dry_run_note}"


def document(result: Result, warnings: Sequence[str] = ()) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": result.json_kind(), **result.json(), "warnings": list(warnings)}


def to_json(result: Result, warnings: Sequence[str] = ()) -> str:
    return redact_secrets(json.dumps(document(result, warnings), indent=2, sort_keys=False, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# -- helpers shared by the text renderers -------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if c is None else visible(str(c))) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    return "\n".join(lines)


def short_digest(digest: str | None) -> str:
    return digest[:19] if digest else "-"


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(size)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def v(text: Any) -> str:
    """Shorthand: an outside string made safe for a terminal (and with any credential a server echoed redacted)."""
    return visible(redact_secrets("" if text is None else str(text)))
