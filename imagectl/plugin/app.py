"""The Images page and its data endpoints: a FastAPI app that Airflow 3's api-server mounts at ``/imagectl``.

| route | returns | needs |
|---|---|---|
| ``GET /imagectl/`` | the Images page (HTML) | a signed-in Airflow user who may read the ``imagectl_ops`` DAG |
| ``GET /imagectl/api/environments`` | the page's data: every environment this Airflow runs (JSON) | the same |
| ``GET /imagectl/api/environments/{name}`` | one environment (JSON) | the same |
| ``GET /imagectl/act?action=…&environment=…`` | the operations form, prefilled (HTML) | a user who may trigger ``imagectl_ops`` |

Who the user is and what they may do is Airflow's answer, through its own dependencies (``get_user``: the bearer
token or the UI's session cookie; ``requires_access_dag``; the configured auth manager): anonymous requests get 401,
users without the permission 403. The form triggers the DAG through Airflow's REST API as the same user, so Airflow
checks again. The data is ``imagectl status`` and ``imagectl history`` (commands/overview.py), read with this
deployment's identity; ``?limit=N`` is ``history --limit N``.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from imagectl import report
from imagectl.adapters.http import start_budget
from imagectl.commands.history import history
from imagectl.commands.ops import ACTIONS, DAG_ID
from imagectl.commands.overview import DEFAULT_LIMIT, MAX_LIMIT, overview
from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.errors import ImagectlError, InputError
from imagectl.plugin.inside import AirflowWorkspace, MetadataRuns, ServerVariable
from imagectl.plugin.page import Urls, render_form, render_page, render_refusal
from imagectl.plugin.settings import ConfigCache, from_airflow
from imagectl.registries._base import Registry
from imagectl.render import document
from imagectl.sanitize import redact_secrets
from imagectl.tagging import validate_revision_or_tag

PREFIX = "/imagectl"
PAGE_BUDGET = 30  # seconds a page request may spend on the registry and the Variable store
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]  # history --limit (module level: the routes' annotations are resolved by name)
_configs = ConfigCache()
# The registries opened for the configuration last read, and each environment's last history slot seen (a lower
# bound that only grows: the next load's lookup starts from it).
_opened: list[tuple[Config, dict[str, Registry], dict[str, int]]] = []


def _urls(request: Request) -> Urls:
    root = str(request.scope.get("root_path") or "").rstrip("/")
    app = root if root.endswith(PREFIX) else f"{root}{PREFIX}"
    return Urls(app=app, airflow=app[: -len(PREFIX)])


def _workspace(request: Request) -> tuple[AirflowWorkspace, tuple[str, ...]]:
    """This request's workspace: imagectl.toml (read again when it changes), the environments this Airflow runs,
    registries shared between requests."""
    settings = from_airflow()
    config = _configs.get(settings.config_path)
    hosted = settings.hosted(config)
    if not _opened or _opened[0][0] is not config:
        _opened[:] = [(config, {}, {})]
    runs = MetadataRuns(_urls(request).airflow)
    _, registries, last_slots = _opened[0]
    return AirflowWorkspace(config, os.environ, variable=ServerVariable, runs=runs, registries=registries, last_slots=last_slots), hosted


def _redact(text: str) -> str:
    return Credentials.from_environ(os.environ).redact(redact_secrets(text))


def _user_name(user: Any) -> str:
    return str(user.get_name() if hasattr(user, "get_name") else user)


def _may_trigger(user: Any) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    details = DagDetails(id=DAG_ID)
    return bool(get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN, details=details, user=user))


def _data(request: Request, names: list[str] | None, limit: int) -> dict[str, Any]:
    """The data document (as ``imagectl … -o json``): ``{"schema": 1, "kind": "images", "environments": […], "warnings": […]}``."""
    report.start()
    start_budget(PAGE_BUDGET)
    workspace, hosted = _workspace(request)
    if names is not None:
        unknown = [n for n in names if n not in hosted]
        if unknown:
            raise HTTPException(404, f"this Airflow does not run environment '{unknown[0][:40]}' (it runs {', '.join(hosted)})")
    result = overview(workspace, list(names if names is not None else hosted), limit)
    workspace.remember_last_slots()
    return document(result, report.collected())


def _error(exc: ImagectlError) -> JSONResponse:
    return JSONResponse({"detail": _redact(exc.one_line())}, status_code=503 if not isinstance(exc, InputError) else 400)


def create_app() -> FastAPI:
    app = FastAPI(title="imagectl", docs_url=None, redoc_url=None, openapi_url=None)
    may_read = [Depends(requires_access_dag("GET", param_dag_id=DAG_ID))]
    may_trigger = [Depends(requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=DAG_ID))]

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Any:
        """Browsers get a page saying what to do; API clients get Airflow's JSON."""
        if request.url.path.rstrip("/").endswith((PREFIX, f"{PREFIX}/act")) and exc.status_code in (401, 403):
            from airflow.api_fastapi.app import get_auth_manager

            page = _urls(request).page
            try:
                login = get_auth_manager().get_url_login(next_url=page)
            except TypeError:
                login = get_auth_manager().get_url_login()
            return HTMLResponse(render_refusal(exc.status_code, str(exc.detail), login), status_code=exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.get("/", response_class=HTMLResponse, dependencies=may_read)
    def page(request: Request, user: GetUserDep, limit: Limit = DEFAULT_LIMIT, run: str | None = None, state: str | None = None) -> Any:
        can_act, name, urls = _may_trigger(user), _user_name(user), _urls(request)
        try:
            data = _data(request, None, limit)
        except ImagectlError as exc:
            html = render_page({}, user=name, can_act=False, urls=urls, limit=limit, error=exc.one_line())
            return HTMLResponse(_redact(html), status_code=503)
        html = render_page(data, user=name, can_act=can_act, urls=urls, limit=limit, run=run, run_state=state)
        return HTMLResponse(_redact(html))

    @app.get("/api/environments", dependencies=may_read)
    def environments(request: Request, limit: Limit = DEFAULT_LIMIT) -> Any:
        try:
            return JSONResponse(_json(_data(request, None, limit)))
        except ImagectlError as exc:
            return _error(exc)

    @app.get("/api/environments/{environment}", dependencies=may_read)
    def environment(request: Request, environment: str, limit: Limit = DEFAULT_LIMIT) -> Any:
        try:
            data = _data(request, [environment], limit)
        except ImagectlError as exc:
            return _error(exc)
        return JSONResponse(_json({**data, "environment": data["environments"][0], "environments": None}))

    @app.get("/act", response_class=HTMLResponse, dependencies=may_trigger)
    def act(request: Request, user: GetUserDep, action: str, environment: str, target: str | None = None) -> Any:
        if action not in ACTIONS:
            raise HTTPException(400, f"unknown action '{action[:40]}': one of {', '.join(ACTIONS)}")
        try:
            start_budget(PAGE_BUDGET)
            report.start()
            if target:
                validate_revision_or_tag(target)
            workspace, hosted = _workspace(request)
            if environment not in hosted:
                raise HTTPException(404, f"this Airflow does not run environment '{environment[:40]}' (it runs {', '.join(hosted)})")
            revisions = [r.to_json() for r in history(workspace.env(environment), DEFAULT_LIMIT).revisions] if action == "rollback" else []
        except ImagectlError as exc:
            return HTMLResponse(_redact(render_refusal(400, exc.one_line(), "")), status_code=400)
        html = render_form(
            action=action,
            environment=environment,
            target=target if action == "rollback" else None,
            environments=list(hosted),
            revisions=revisions,
            urls=_urls(request),
            user=_user_name(user),
        )
        return HTMLResponse(_redact(html))

    return app


def _json(data: dict[str, Any]) -> Any:
    """The document as it is sent: known secrets redacted (as in the CLI's JSON output)."""
    return json.loads(_redact(json.dumps(data, default=str)))
