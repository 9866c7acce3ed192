"""``imagectl history``: an environment's revisions, newest first, the one its Variable holds marked current."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagectl.config import Config
from imagectl.errors import ImagectlError
from imagectl.history import Revision
from imagectl.release import Environment


@dataclass
class HistoryView:
    environment: str
    revisions: list[Revision]
    variable_value: str | None
    variable_error: str | None

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.revisions]


def mark_current(revisions: list[Revision], variable_value: str | None, variable_known: bool) -> None:
    """Current = the newest revision whose reference the Variable holds (the latest one if Airflow is unreadable)."""
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


def history(config: Config, environment: str, limit: int | None) -> HistoryView:
    env = Environment(config, environment)
    revisions = env.history.newest(limit)
    value, error = None, None
    try:
        value = env.variable_value()
    except ImagectlError as exc:
        error = exc.one_line()
    mark_current(revisions, value, error is None)
    return HistoryView(environment, revisions, value, error)
