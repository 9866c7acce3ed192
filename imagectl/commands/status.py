"""``imagectl status``: per environment, what the Variable holds, the latest revision, and whether they agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagectl.config import Config
from imagectl.errors import ImagectlError
from imagectl.history import Revision
from imagectl.release import Environment


@dataclass
class EnvironmentStatus:
    environment: str
    registry: str
    variable: str
    variable_value: str | None
    variable_error: str | None
    latest: Revision | None
    agree: bool
    hint: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "registry": self.registry,
            "variable": self.variable,
            "variable_value": self.variable_value,
            "variable_error": self.variable_error,
            "latest_revision": self.latest.to_json() if self.latest else None,
            "agree": self.agree,
            "hint": self.hint,
        }


@dataclass
class StatusView:
    environments: list[EnvironmentStatus]

    @property
    def ok(self) -> bool:
        return all(e.agree for e in self.environments)

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.environments]


def rerun_command(revision: Revision) -> str:
    """The command that, run again, finishes ``revision``."""
    if revision.action == "promote" and revision.from_environment:
        return f"imagectl promote {revision.tag} --from {revision.from_environment} --to {revision.environment}"
    if revision.action == "rollback":
        return f"imagectl rollback --env {revision.environment} --to {revision.tag}"
    return f"imagectl deploy {revision.tag} --env {revision.environment}"


def environment_status(config: Config, name: str) -> EnvironmentStatus:
    env = Environment(config, name)
    value, error, latest, hint = None, None, None, None
    try:
        history = env.history.newest()
        latest = history[0] if history else None
    except ImagectlError as exc:
        history, error = [], f"registry: {exc.one_line()}"
    if error is None:
        try:
            value = env.variable_value()
        except ImagectlError as exc:
            error = f"airflow: {exc.one_line()}"
    agree = error is None and latest is not None and value == latest.reference
    if error is not None:
        hint = "fix the error above and run imagectl status again"
    elif latest is None and value is None:
        agree, hint = True, None  # nothing deployed yet, nothing to disagree about
    elif latest is None:
        hint = f"the Variable was set outside imagectl; record it with: imagectl deploy TAG --env {name}"
    elif not agree:
        older = next((r for r in history if r.reference == value), None)
        holds = f"revision {older.revision}'s image" if older else "an image imagectl did not record"
        hint = f"the Variable holds {holds}, not revision {latest.revision}: finish it with: {rerun_command(latest)}"
    return EnvironmentStatus(name, env.registry.name, env.settings.variable, value, error, latest, agree, hint)


def status(config: Config, environment: str | None) -> StatusView:
    names = [environment] if environment else sorted(config.environments)
    return StatusView([environment_status(config, name) for name in names])
