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
from imagectl.verdicts import Rejection, Verdict, read_verdicts, rejections

JUDGED = 100  # the newest revisions whose verdicts and rejections are read (older ones show "-")


@dataclass
class HistoryView(Result):
    kind = "history"

    environment: str
    variable: str
    variable_location: str | None
    variable_value: str | None
    variable_error: str | None
    revisions: list[Revision] = field(default_factory=list)
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    rejected: dict[str, Rejection] = field(default_factory=dict)  # digest → its current rejection here

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
            "revisions": [self._revision_json(r) for r in self.revisions],
        }

    def _revision_json(self, r: Revision) -> dict[str, Any]:
        verdict, rejection = self.verdicts.get(r.revision), self.rejected.get(r.digest)
        return {**r.to_json(), "verification": verdict.json() if verdict else None, "rejected": rejection.json() if rejection else None}

    def _verified(self, r: Revision) -> str:
        verdict = self.verdicts.get(r.revision)
        return "-" if verdict is None else ("yes" if verdict.verified else "FAILED")

    def text(self) -> str:
        if not self.revisions:
            return f"{self.environment} has no revisions yet."
        rows = [
            [
                "*" if r.current else "",
                r.revision,
                r.time,
                r.action,
                r.tag + (" (image deleted)" if r.image_present is False else "") + (" (rejected)" if r.digest in self.rejected else ""),
                r.release or "-",
                self._verified(r),
                short_digest(r.digest),
                r.actor,
                (r.reason or "-") + (f" [forced: {r.forced}]" if r.forced else ""),
            ]
            for r in self.revisions
        ]
        text = table(["", "REV", "TIME", "ACTION", "TAG", "RELEASE", "VERIFIED", "DIGEST", "ACTOR", "REASON"], rows)
        for digest, rejection in self.rejected.items():
            tag = next(r.tag for r in self.revisions if r.digest == digest)
            text += f"\n{v(tag)} is rejected in {self.environment}: {v(rejection.reason)} ({v(rejection.actor)}, {rejection.time})"
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
    judged = revisions[:JUDGED]
    verdicts = read_verdicts(env, [r.revision for r in judged]) if judged else {}
    rejected = rejections(env, [r.digest for r in judged]) if judged else {}
    return HistoryView(env.name, env.settings.variable, location, value, error, revisions, verdicts, rejected)
