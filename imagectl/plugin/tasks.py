"""The task of the ``imagectl_ops`` DAG (dags/imagectl_ops.py, written by ``imagectl init``): one rollback, freeze or
unfreeze, as the Airflow user who triggered the run, with this worker's identity.

The run's log shows the plan, then the result (or ``error: <what was wrong — what to do>``); a refusal fails the run
with that one line and no retry. The Variable of an environment with ``variable_store = "airflow"`` is written
through the Task SDK (inside.TaskVariable); registries and other stores are reached as imagectl always does, with
the worker's credentials (IMAGECTL_REGISTRY_…, the AWS credential chain, ``[identities]``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from imagectl import report
from imagectl.adapters.http import start_budget
from imagectl.commands.ops import DAG_ID, OpsRequest, run_operation
from imagectl.credentials import Credentials
from imagectl.errors import ConfigError, ImagectlError
from imagectl.plugin.inside import AirflowWorkspace, TaskVariable
from imagectl.plugin.settings import ConfigCache, from_airflow
from imagectl.sanitize import redact_secrets, visible

log = logging.getLogger("imagectl")


def operate(params: Mapping[str, Any], triggering_user: str | None, show: Callable[[str], None] | None = None) -> str:
    """Run the operation a DAG run's params ask for; returns the result's text. Raises ImagectlError when refused."""
    out = show or _log
    report.start(lambda text: out(f"warning: {text}"))
    settings = from_airflow()
    config = ConfigCache().get(settings.config_path)
    start_budget(config.timeouts.command)
    request = OpsRequest.from_params(params, triggering_user)
    hosted = settings.hosted(config)
    if request.environment not in hosted:
        raise ConfigError(
            f"this Airflow does not run environment '{request.environment}' (it runs {', '.join(hosted)}); nothing was changed",
            f"trigger {DAG_ID} in the Airflow that runs {request.environment}",
        )
    out(f"{DAG_ID}: {request.action} {request.environment} by {request.actor} — {request.reason}")
    workspace = AirflowWorkspace(config, os.environ, variable=TaskVariable, runs=None)
    result = run_operation(workspace, request, out)
    return _redact(result.text())


def run_task(params: Mapping[str, Any], triggering_user: str | None) -> str:
    """The DAG's task: ``operate``, failing the run with imagectl's one line (no retry) when it refuses."""
    from airflow.exceptions import AirflowFailException

    try:
        return operate(params, triggering_user)
    except ImagectlError as exc:
        line = _redact(exc.one_line())
        _log(f"error: {line}")
        raise AirflowFailException(line) from None


def _redact(text: str) -> str:
    return visible(redact_secrets(Credentials.from_environ(os.environ).redact(text)))


def _log(text: str) -> None:
    for line in _redact(text).splitlines() or [""]:
        log.info("%s", line)
