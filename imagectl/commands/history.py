"""``imagectl history``: an environment's revisions, newest first; the one its Variable holds is marked current,
revisions whose image is gone from the registry are marked, and so is the freeze state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imagectl.environment import Environment
from imagectl.errors import ImagectlError
from imagectl.history import Revision
from imagectl.render import Result, short_digest, table, v
from imagectl.rollout import frozen_message


@dataclass
class HistoryView(Result):
    kind = "history"

    environment: str
    variable: str
    variable_location: str | None
    variable_value: str | None
    variable_error: str | None
    revisions: list[Revision] = field(default_factory=list)

    @property
    def frozen(self) -> Revision | None:
        return self.revisions[0] if self.revisions and self.revisions[0].frozen else None

    def json(self) -> dict[str, Any]:
        frozen = self.frozen
        return {
            "environment": self.environment,
            "variable": self.variable,
            "variable_location": self.variable_location,
            "variable_value": self.variable_value,
            "variable_error": self.variable_error,
            "frozen": {"by": frozen.frozen_by, "at": frozen.frozen_at, "reason": frozen.frozen_reason} if frozen else None,
            "revisions": [r.to_json() for r in self.revisions],
        }

    def text(self) -> str:
        if not self.revisions:
            return f"{self.environment} has no revisions yet."
        rows = [
            [
                "*" if r.current else "",
                r.revision,
                r.time,
                r.action,
                r.tag + (" (image deleted)" if r.image_present is False else ""),
                r.release or "-",
                short_digest(r.digest),
                r.actor,
                (r.reason or "-") + (f" [forced: {r.forced}]" if r.forced else ""),
            ]
            for r in self.revisions
        ]
        text = table(["", "REV", "TIME", "ACTION", "TAG", "RELEASE", "DIGEST", "ACTOR", "REASON"], rows)
        if self.frozen:
            text += f"\n{frozen_message(self.frozen)} (deploy, promote and ci refuse; imagectl unfreeze --env {self.environment})"
        if self.variable_error:
            text += f"\n(Variable unreadable, latest revision marked: {v(self.variable_error)})"
        elif not any(r.current for r in self.revisions):
            text += f"\n(the Variable holds none of these: {v(self.variable_value) or 'not set'})"
        return text


def mark_current(revisions: list[Revision], variable_value: str | None, variable_known: bool) -> None:
    """Current = the newest revision whose reference the Variable holds (the latest one if the Variable is unreadable)."""
    for revision in revisions:
        revision.current = False
    if not revisions:
        return
    if not variable_known:
        revisions[0].current = True
        return
    match = next((r for r in revisions if r.reference == variable_value), None)
    if match is not None:
        match.current = True


def history(env: Environment, limit: int) -> HistoryView:
    revisions = env.history.newest(limit)
    present = env.registry.existing(env.repository, sorted({r.digest for r in revisions})) if revisions else set()
    for revision in revisions:
        revision.image_present = revision.digest in present
    value, error, location = None, None, None
    try:
        location = env.variable.location()
        value = env.variable.read()
    except ImagectlError as exc:
        error = exc.one_line()
    mark_current(revisions, value, error is None)
    return HistoryView(env.name, env.settings.variable, location, value, error, revisions)
