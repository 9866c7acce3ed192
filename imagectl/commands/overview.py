"""What the Images page of imagectl's Airflow plugin shows, per environment: the image its Variable points at (tag,
Jira key, commit, when it was built), whether the last dbt run ran it, the freeze, and the newest revisions as
``imagectl history --limit N`` shows them (verification verdicts and rejections included), each Jira key and commit
with a link when ``[jira] url`` and ``[project] commit_url`` are set.

It is ``imagectl status`` and ``imagectl history`` read together (the same core functions, so the page and the
terminal cannot disagree), plus the deployed image's build record. Environments are read side by side; one that
cannot be read is shown with its one-line error, never hiding the others.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from imagectl import labels as L
from imagectl.adapters.http import map_in
from imagectl.commands.history import HistoryView, history
from imagectl.commands.status import EnvironmentStatus, environment_status
from imagectl.config import Config
from imagectl.environment import Environment
from imagectl.errors import ImagectlError
from imagectl.history import Revision
from imagectl.namespaces import record_tag
from imagectl.render import Result, short_digest, v
from imagectl.tag_registry import record_annotations
from imagectl.tagging import parse_build_tag
from imagectl.workspace import Workspace

DEFAULT_LIMIT = 20  # revisions shown per environment (as `imagectl history`)
MAX_LIMIT = 1000


@dataclass
class DeployedImage:
    """The image an environment's Variable points at, as its revision and build record tell."""

    tag: str
    digest: str
    reference: str
    revision: int | None  # the revision whose image the Variable holds (None: one imagectl did not record)
    release: str | None
    jira: str | None
    commit: str | None
    built_at: str | None
    jira_url: str | None = None
    commit_url: str | None = None

    def json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EnvironmentOverview:
    environment: str
    status: EnvironmentStatus | None = None
    history: HistoryView | None = None
    image: DeployedImage | None = None
    error: str | None = None  # the environment could not be read at all (its registry, say)
    config: Config | None = None

    @property
    def frozen(self) -> Revision | None:
        latest = self.status.latest if self.status else None
        return latest if latest is not None and latest.frozen else None

    def revision_links(self, revision: Revision) -> dict[str, str | None]:
        parsed = parse_build_tag(revision.tag)
        jira = parsed.jira if parsed else None
        config = self.config
        return {
            "jira": jira,
            "jira_url": config.jira_link(jira) if config else None,
            "commit_url": config.commit_link(revision.git_sha) if config else None,
        }

    def json(self) -> dict[str, Any]:
        status, view, frozen = self.status, self.history, self.frozen
        revisions = []
        if view is not None:
            full = view.json()["revisions"]
            revisions = [{**row, **self.revision_links(r)} for row, r in zip(full, view.revisions, strict=True)]
        return {
            "environment": self.environment,
            "error": self.error,
            "image": self.image.json() if self.image else None,
            "variable": status.variable if status else None,
            "variable_location": status.variable_location if status else None,
            "variable_value": status.variable_value if status else None,
            "frozen": {"by": frozen.frozen_by, "at": frozen.frozen_at, "reason": frozen.frozen_reason} if frozen else None,
            "last_run": status.last_run.json() if status and status.last_run else None,
            "agree": status.agree if status else False,
            "errors": status.errors if status else [],
            "hint": status.hint if status else None,
            "revisions": revisions,
        }

    def text(self) -> str:
        if self.error:
            return f"{self.environment}: {v(self.error)}"
        lines = [self.status.text() if self.status else self.environment]
        if self.image:
            i = self.image
            built = f"jira {v(i.jira) or '-'}, commit {v(i.commit) or '-'}, built {v(i.built_at) or '-'}"
            lines.append(f"  image     {v(i.tag)} ({short_digest(i.digest)}) {built}")
        if self.history:
            lines.append(self.history.text())
        return "\n".join(lines)


@dataclass
class Overview(Result):
    kind = "images"

    environments: list[EnvironmentOverview]

    def json(self) -> dict[str, Any]:
        return {"environments": [e.json() for e in self.environments]}

    def text(self) -> str:
        return "\n\n".join(e.text() for e in self.environments)


def deployed_image(env: Environment, view: HistoryView | None, status: EnvironmentStatus) -> DeployedImage | None:
    """The Variable's image: the revision it holds (else the latest revision), with its build record's facts."""
    current = next((r for r in view.revisions if r.current), None) if view else None
    revision = current or status.latest
    if revision is None:
        return None
    record = env.registry.get_manifests(env.repository, [record_tag(revision.tag)]).get(record_tag(revision.tag))
    annotations = record_annotations(env.repository, revision.tag, record, revision.digest) or {}
    parsed = parse_build_tag(revision.tag)
    jira = annotations.get(L.JIRA) or (parsed.jira if parsed else None)
    commit = revision.git_sha or annotations.get(L.REVISION)
    return DeployedImage(
        tag=revision.tag,
        digest=revision.digest,
        reference=env.reference(revision.tag, revision.digest),
        revision=revision.revision if current is not None else None,
        release=revision.release,
        jira=jira,
        commit=commit,
        built_at=annotations.get(L.CREATED),
        jira_url=env.config.jira_link(jira),
        commit_url=env.config.commit_link(commit),
    )


def environment_overview(env: Environment, limit: int = DEFAULT_LIMIT) -> EnvironmentOverview:
    """One environment's part of the page; an error that stops the reading is the result's ``error``."""
    result = EnvironmentOverview(env.name, config=env.config)
    try:
        result.history = history(env, limit)
        result.status = environment_status(env, newest=list(result.history.revisions))
        result.image = deployed_image(env, result.history, result.status)
    except ImagectlError as exc:
        result.error = exc.one_line()
    return result


def overview(workspace: Workspace, names: list[str], limit: int = DEFAULT_LIMIT) -> Overview:
    """Every named environment, read side by side (each on its own registry connection)."""
    limit = max(1, min(limit, MAX_LIMIT))
    environments = [workspace.env(name) for name in names]
    if len(environments) <= 1:
        return Overview([environment_overview(env, limit) for env in environments])
    with ThreadPoolExecutor(max_workers=min(8, len(environments)), thread_name_prefix="imagectl-overview") as pool:
        return Overview(map_in(pool, lambda env: environment_overview(env, limit), environments))
