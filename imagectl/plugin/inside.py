"""imagectl's environments as seen from inside an Airflow 3 deployment: no Airflow login, no REST round trip.

- **In the api-server** (the Images page): DAG runs and rendered task fields come from Airflow's metadata database
  (``MetadataRuns``), and the image Variable is read the way Airflow resolves it (``ServerVariable``: its secrets
  backend, ``AIRFLOW_VAR_…``, then the database). The page never writes.
- **In a task** (the ``imagectl_ops`` DAG): an Airflow 3 task cannot use the database; the Variable is read and
  written through the Task SDK (``TaskVariable``), i.e. Airflow's execution API with the task's own short-lived
  token, so no credential is stored anywhere. What the task reads back is what the dbt task will render.

Environments whose ``variable_store`` is ``secretsmanager`` or ``ssm`` keep their store (AWS, as the worker's or
api-server's identity: IRSA on EKS, the execution role on MWAA); the registries are reached as in the CLI
(``IMAGECTL_REGISTRY_…`` or the AWS credential chain, ``[identities]``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from imagectl.airflow._base import ImageVariable, Reach, Runs
from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.environment import Environment
from imagectl.errors import AirflowError, NotFoundError
from imagectl.registries._base import Registry
from imagectl.sanitize import visible
from imagectl.tagging import validate_variable_key
from imagectl.workspace import Workspace


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class MetadataRuns(Runs):
    """DAG runs read from the metadata database of the Airflow this code runs in (the api-server). Read only: the
    page triggers nothing (actions are runs of imagectl_ops, triggered through Airflow's own API)."""

    def __init__(self, base_path: str) -> None:
        self.base_url = base_path  # links are paths in this Airflow's UI ("" at the root)

    def _one(self, statement: Any) -> Any:
        from airflow.utils.session import create_session

        with create_session() as session:
            found = session.scalars(statement).first()
            if found is not None:
                session.expunge(found)
            return found

    def dag(self, dag_id: str) -> dict[str, Any]:
        from airflow.models.dag import DagModel
        from sqlalchemy import select

        found = self._one(select(DagModel).where(DagModel.dag_id == dag_id))
        if found is None:
            raise NotFoundError(
                f"DAG {dag_id} is not known to this Airflow", "check the DAG id and that the DAG file parsed without errors"
            )
        return {"dag_id": found.dag_id, "is_paused": bool(found.is_paused)}

    def trigger(self, dag_id: str, run_id: str | None, conf: dict[str, Any]) -> dict[str, Any]:
        raise AirflowError("the Images page triggers no DAG run itself", f"trigger {dag_id} in Airflow (its permissions decide who may)")

    def _run(self, run: Any) -> dict[str, Any]:
        state = run.state.value if hasattr(run.state, "value") else run.state
        return {
            "dag_run_id": run.run_id,
            "state": str(state) if state is not None else None,
            "start_date": _iso(run.start_date),
            "run_after": _iso(run.run_after),
            "queued_at": _iso(run.queued_at),
        }

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        from airflow.models.dagrun import DagRun
        from sqlalchemy import select

        found = self._one(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if found is None:
            raise NotFoundError(f"run {run_id} of DAG {dag_id} does not exist", "check the run id")
        return self._run(found)

    def latest_run(self, dag_id: str) -> dict[str, Any] | None:
        from airflow.models.dagrun import DagRun
        from sqlalchemy import select

        found = self._one(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(1))
        return self._run(found) if found is not None else None

    def rendered_image(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
        from sqlalchemy import select

        found = self._one(
            select(Rendered).where(
                Rendered.dag_id == dag_id, Rendered.run_id == run_id, Rendered.task_id == task_id, Rendered.map_index == -1
            )
        )
        fields = found.rendered_fields if found is not None else None
        image = fields.get("image") if isinstance(fields, dict) else None
        return image if isinstance(image, str) and image else None

    def run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.base_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


class ServerVariable(ImageVariable):
    """The image Variable as this Airflow resolves it (secrets backend, AIRFLOW_VAR_…, database): the api-server's
    view, read only."""

    def __init__(self, key: str) -> None:
        self.key = validate_variable_key(key)

    def location(self) -> str:
        return f"Airflow Variable {self.key} (this Airflow)"

    def read(self) -> str | None:
        from airflow.models.variable import Variable

        try:
            value = Variable.get(self.key, default_var=None)
        except Exception as exc:  # noqa: BLE001 - a secrets backend's failure, in one line
            raise AirflowError(f"reading Variable {self.key} failed: {visible(str(exc))[:200]}", "check the api-server's log") from None
        return None if value is None else str(value)

    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        raise AirflowError("the Images page changes no Variable", "trigger imagectl_ops to roll back or freeze")


class TaskVariable(ImageVariable):
    """The image Variable written from inside a task through the Task SDK (Airflow's execution API, the task's own
    token). Read back the way the dbt task renders it: ``AIRFLOW_VAR_…``, the secrets backend, then the database."""

    def __init__(self, key: str) -> None:
        self.key = validate_variable_key(key)

    def location(self) -> str:
        return f"Airflow Variable {self.key} (metadata database, Task SDK)"

    def read(self) -> str | None:
        from airflow.sdk import Variable
        from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType

        try:
            value = Variable.get(self.key)
        except AirflowRuntimeError as exc:
            if exc.error.error == ErrorType.VARIABLE_NOT_FOUND:
                return None
            raise AirflowError(f"reading Variable {self.key} failed: {visible(str(exc))[:200]}", "check the task's log") from None
        return None if value is None else str(value)

    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        from airflow.sdk import Variable

        try:
            Variable.set(self.key, value, description=description)
        except Exception as exc:  # noqa: BLE001 - the execution API refused: one line
            raise AirflowError(f"writing Variable {self.key} failed: {visible(str(exc))[:200]}", "check the task's log") from None

    def reach(self) -> Reach:
        """A value in ``AIRFLOW_VAR_<KEY>`` or the deployment's secrets backend wins over the database: refuse before
        anything is recorded, as the REST store does."""
        reach = Reach()
        if os.environ.get(f"AIRFLOW_VAR_{self.key.upper()}") is not None:
            raise AirflowError(
                f"Variable {self.key} is shadowed by AIRFLOW_VAR_{self.key.upper()} on the workers, so a write would never reach "
                "the dbt task; nothing was changed",
                f"remove AIRFLOW_VAR_{self.key.upper()} from the workers' environment",
            )
        from airflow.sdk.execution_time.secrets.execution_api import ExecutionAPISecretsBackend
        from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

        for backend in ensure_secrets_backend_loaded():
            if isinstance(backend, ExecutionAPISecretsBackend) or type(backend).__name__ == "EnvironmentVariablesBackend":
                continue
            name = type(backend).__name__
            try:
                found = backend.get_variable(key=self.key)
            except Exception as exc:  # noqa: BLE001 - an unreadable backend is a note, as in the REST store
                reach.unverified.append(f"could not check the secrets backend {name} for Variable {self.key}: {visible(str(exc))[:160]}")
                continue
            if found is not None:
                raise AirflowError(
                    f"Variable {self.key} is shadowed: the workers read it from the secrets backend {name} first, and it holds a "
                    "value, so a write to the database would never reach the dbt task; nothing was changed",
                    'set variable_store for this environment in imagectl.toml to the backend\'s store (e.g. "secretsmanager")',
                )
            reach.verified.append(f"the secrets backend {name} does not hold {self.key}")
        return reach


class AirflowWorkspace(Workspace):
    """A workspace whose environments use this Airflow from the inside (``variable``: ``ServerVariable`` or
    ``TaskVariable`` for ``variable_store = "airflow"``; ``runs``: ``MetadataRuns`` in the api-server, none in a
    task). Registries are opened once per configuration and shared (``registries``)."""

    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        *,
        variable: type[ServerVariable] | type[TaskVariable],
        runs: Runs | None,
        registries: dict[str, Registry] | None = None,
        last_slots: dict[str, int] | None = None,
    ) -> None:
        super().__init__(config, Credentials.from_environ(environ), dict(environ))
        if registries is not None:
            self._registries = registries
        self.variable_class, self.metadata_runs = variable, runs
        self.last_slots = last_slots if last_slots is not None else {}  # environment → its last slot, seen by an earlier load

    def env(self, name: str) -> Environment:
        if name not in self._environments:
            settings = self.config.environment(name)
            variable = self.variable_class(settings.variable) if settings.variable_store == "airflow" else None
            self._environments[name] = Environment(
                self.config, name, self.credentials, registry=self.registry(settings.registry), variable=variable, runs=self.metadata_runs
            )
            self._environments[name].history.start_from(self.last_slots.get(name, 0))
        return self._environments[name]

    def remember_last_slots(self) -> None:
        """Keep each read environment's last slot for the next load (one probe round instead of a full lookup)."""
        for name, env in self._environments.items():
            self.last_slots[name] = max(self.last_slots.get(name, 0), env.history.last_seen)
