"""``imagectl status``: per environment, what its image Variable holds, the latest revision, the image the latest
dbt run actually rendered, whether they agree and, if not, what to run. Exits 10 when any environment
disagrees or could not be read."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from imagectl.environment import Environment
from imagectl.errors import ImagectlError
from imagectl.history import Revision
from imagectl.registries._base import DIGEST_RE
from imagectl.render import Result, parse_iso, v
from imagectl.rollout import HISTORY_WINDOW, frozen_message
from imagectl.verdicts import read_verdicts, rejection
from imagectl.workspace import Workspace


@dataclass
class LastRun:
    dag_id: str
    run_id: str
    state: str
    started: str | None
    image: str | None
    url: str
    verdict: str  # "ran the deployed image", "predates revision N", "ran another image", "not rendered yet"
    agrees: bool

    def json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state,
            "started": self.started,
            "image": self.image,
            "url": self.url,
            "verdict": self.verdict,
            "agrees": self.agrees,
        }


@dataclass
class EnvironmentStatus:
    environment: str
    registry: str
    variable: str
    variable_location: str | None
    variable_value: str | None
    latest: Revision | None
    agree: bool
    hint: str | None
    errors: list[str] = field(default_factory=list)
    last_run: LastRun | None = None
    untagged_release: str | None = None  # the latest revision's release version whose tag is missing
    image_missing: bool = False  # the image the Variable points at is not in the registry
    verification: Any = None  # the latest revision's verdict (verdicts.Verdict), if it was verified
    rejected: Any = None  # the latest revision's image's rejection here (verdicts.Rejection), if any

    def json(self) -> dict[str, Any]:
        latest = self.latest
        return {
            "environment": self.environment,
            "registry": self.registry,
            "variable": self.variable,
            "variable_location": self.variable_location,
            "variable_value": self.variable_value,
            "latest_revision": latest.to_json() if latest else None,
            "frozen": bool(latest and latest.frozen),
            "last_run": self.last_run.json() if self.last_run else None,
            "untagged_release": self.untagged_release,
            "image_missing": self.image_missing,
            "verification": self.verification.json() if self.verification else None,
            "rejected": self.rejected.json() if self.rejected else None,
            "agree": self.agree,
            "errors": self.errors,
            "hint": self.hint,
        }

    def text(self) -> str:
        e = self
        latest = (
            f"revision {e.latest.revision}: {v(e.latest.tag)}" + (f" ({e.latest.release})" if e.latest.release else "")
            if e.latest
            else "none"
        )
        state = "ok" if e.agree else ("UNKNOWN" if e.errors else "DRIFT")
        shown = (
            "(unreadable)"
            if any(err.startswith("variable") for err in e.errors)
            else (v(e.variable_value) if e.variable_value is not None else "(not set)")
        )
        lines = [f"{e.environment}: {state}", f"  Variable  {v(e.variable_location or e.variable)} = {shown}", f"  latest    {latest}"]
        if e.latest:
            lines.append(
                f"            {e.latest.action} by {v(e.latest.actor)} at {e.latest.time}"
                + (f" — {v(e.latest.reason)}" if e.latest.reason else "")
            )
            if e.latest.frozen:
                lines.append(f"  frozen    {frozen_message(e.latest)}")
        if e.last_run:
            r = e.last_run
            lines.append(
                f"  last run  {r.dag_id} {v(r.run_id)} ({r.state}): {r.verdict}" + (f" — {v(r.image)}" if r.image and not r.agrees else "")
            )
        if e.untagged_release:
            lines.append(f"  release   {e.untagged_release} is recorded, but its version tag is missing (an interrupted promote?)")
        if e.image_missing:
            lines.append("  image     the image the Variable points at is NOT in the registry (deleted?): the next run cannot start")
        if e.latest is not None:
            verdict = e.verification
            lines.append(f"  verified  {v(verdict.summary()) if verdict else 'not verified'}")
        if e.rejected:
            lines.append(f"  REJECTED  {v(e.rejected.summary())}")
        for error in e.errors:
            lines.append(f"  error     {v(error)}")
        if e.hint:
            lines.append(f"  to do     {v(e.hint)}")
        return "\n".join(lines)


@dataclass
class StatusView(Result):
    kind = "status"

    environments: list[EnvironmentStatus]

    @property
    def ok(self) -> bool:
        return all(e.agree for e in self.environments)

    def json(self) -> dict[str, Any]:
        return {"ok": self.ok, "environments": [e.json() for e in self.environments]}

    def text(self) -> str:
        return "\n".join(e.text() for e in self.environments)


def rerun_command(revision: Revision, environments: Collection[str] = ()) -> str:
    """The command that, run again, finishes ``revision``. Only checked values go into it: the tag and environment
    names were validated when the record was read, and a from_environment must be one of imagectl.toml's."""
    if revision.action == "promote" and revision.from_environment and revision.from_environment in environments:
        return f"imagectl promote {revision.tag} --from {revision.from_environment} --to {revision.environment}"
    if revision.action == "rollback":
        return f"imagectl rollback --env {revision.environment} --to {revision.tag}"
    # deploy, and freeze/unfreeze too: a deploy of the recorded image finishes its revision whatever the freeze state
    return f"imagectl deploy {revision.tag} --env {revision.environment}"


def _last_run(env: Environment, latest: Revision | None, value: str | None) -> LastRun | None:
    dag_id, task_id = env.config.dbt_dag_for(env.name), env.config.ci.dbt_task
    run = env.runs.latest_run(dag_id)
    if run is None:
        return None
    run_id = str(run.get("dag_run_id") or run.get("run_id") or "")
    if not run_id:
        return None
    image = env.runs.rendered_image(dag_id, run_id, task_id)
    started = run.get("start_date") or run.get("run_after") or run.get("queued_at") or run.get("execution_date")
    url = env.runs.run_url(dag_id, run_id)
    state = str(run.get("state") or "?")
    if image is None:
        return LastRun(dag_id, run_id, state, started, None, url, "has not rendered its image yet", True)
    expected = value or (latest.reference if latest else None)
    if image == expected:
        return LastRun(dag_id, run_id, state, started, image, url, "ran the deployed image", True)
    run_time, revision_time = parse_iso(str(started) if started else None), parse_iso(latest.time if latest else None)
    if latest is not None and run_time is not None and revision_time is not None and run_time < revision_time:
        return LastRun(dag_id, run_id, state, started, image, url, f"predates revision {latest.revision}", True)
    return LastRun(dag_id, run_id, state, started, image, url, "ran ANOTHER image than the Variable holds", False)


def environment_status(env: Environment, newest: list[Revision] | None = None) -> EnvironmentStatus:
    """``newest``: the newest revisions, newest first, when the caller has just read them (the Images page reads
    the history first; reading it again would cost a second lookup of the newest slot)."""
    name, config = env.name, env.config
    status = EnvironmentStatus(name, env.registry.name, env.settings.variable, None, None, None, False, None)
    history: list[Revision] = []
    try:
        history = newest if newest is not None else env.history.newest(HISTORY_WINDOW)
        status.latest = history[0] if history else None
    except ImagectlError as exc:
        status.errors.append(f"registry: {exc.one_line()}")
    try:
        status.variable_location = env.variable.location()
        status.variable_value = env.variable.read()
    except ImagectlError as exc:
        status.errors.append(f"variable: {exc.one_line()}")
    if env.has_airflow and not status.errors:
        try:
            status.last_run = _last_run(env, status.latest, status.variable_value)
        except ImagectlError as exc:
            status.errors.append(f"airflow: {exc.one_line()}")
    latest, value = status.latest, status.variable_value
    expected = env.reference(latest.tag, latest.digest) if latest else None  # never a record's own reference field
    if not status.errors:
        try:
            if env.settings.release and latest is not None and latest.release:
                status.untagged_release = _untagged_release(env, latest)
            pinned = value.rsplit("@", 1)[1] if value and "@" in value else None
            status.image_missing = (
                pinned is not None and DIGEST_RE.fullmatch(pinned) is not None and not env.registry.existing(env.repository, [pinned])
            )
            if latest is not None:
                status.verification = read_verdicts(env, [latest.revision]).get(latest.revision)
                status.rejected = rejection(env, latest.digest)
        except ImagectlError as exc:
            status.errors.append(f"registry: {exc.one_line()}")
    run_ok = status.last_run is None or status.last_run.agrees
    status.agree = (
        not status.errors
        and run_ok
        and not status.untagged_release
        and not status.image_missing
        and ((latest is None and value is None) or (latest is not None and value == expected))
    )
    if status.errors:
        status.hint = "fix the error above and run imagectl status again"
    elif latest is None and value is not None:
        status.hint = f"the Variable was set outside imagectl; record it with: imagectl deploy TAG --env {name}"
    elif latest is not None and value != expected:
        older = next((r for r in history if env.reference(r.tag, r.digest) == value), None)
        holds = f"revision {older.revision}'s image" if older else "an image imagectl did not record"
        status.hint = (
            f"the Variable holds {holds}, not revision {latest.revision}: finish it with: {rerun_command(latest, config.environments)}"
        )
    elif status.image_missing:
        status.hint = f"roll back to an image that exists: imagectl rollback --env {name}"
    elif not run_ok:
        status.hint = (
            "the latest dbt run rendered another image than the Variable holds: a secrets backend or AIRFLOW_VAR_ setting "
            "may shadow it, or the DAG reads another Variable (see docs: variable_store; one Airflow for several "
            "environments needs a DAG per environment: DBT_DAG_EXTRA_DAGS and environments.<name>.dbt_dag); "
            f"check with imagectl trigger {config.dbt_dag_for(name)} --env {name} --wait"
        )
    elif status.untagged_release and latest is not None:
        status.hint = f"finish it (the version is already decided by its record): {rerun_command(latest, config.environments)}"
    return status


def _untagged_release(env: Environment, latest: Revision) -> str | None:
    """The latest revision's release version when its tag is missing (a promote interrupted after its record)."""
    assert latest.release is not None
    tagged = env.registry.get_manifest(env.repository, latest.release)
    return None if tagged is not None and tagged.digest == latest.digest else latest.release


def status(workspace: Workspace, environment: str | None) -> StatusView:
    names = [environment] if environment else sorted(workspace.config.environments)
    return StatusView([environment_status(workspace.env(name)) for name in names])
