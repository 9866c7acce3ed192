"""Airflow's REST API calls (Airflow 3's ``/api/v2`` and Airflow 2's ``/api/v1``), over any transport.

``AirflowRest`` implements _base.py's ``Airflow`` (DAG runs, Variables, configuration) by making the calls; how
they reach Airflow and how they are authenticated is the transport's business (airflow/transport.py), so every
flavour (airflow/flavours.py) shares these calls. ``RestVariable`` is the Variable store that writes the
metadata database through them. Every id is checked against Airflow's own rules before a request and every path
segment is quoted; after a write that got no answer, messages say it may or may not have been made.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from typing import Any
from urllib.parse import quote

from imagectl.airflow._base import Airflow, FlavourContext, ImageVariable, Reach, StoreContext
from imagectl.airflow.flavours import RestSettings
from imagectl.airflow.stores import STORES, RestStoreSettings, store_for_backend
from imagectl.airflow.transport import Answer, Denied, PasswordTransport, TokenTransport, Transport
from imagectl.credentials import Token
from imagectl.errors import AirflowError, ConfigError, NotFoundError
from imagectl.sanitize import visible
from imagectl.tagging import validate_dag_id, validate_run_id, validate_variable_key

MASKED = "***"  # how Airflow's API shows a redacted value


def _segment(value: str) -> str:
    return quote(value, safe="")


class AirflowRest(Airflow):
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.base_url = transport.base_url

    @property
    def api(self) -> str:
        return self.transport.api

    def describe(self) -> str:
        return self.transport.describe()

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Answer:
        return self.transport.call(method, path, what, **kwargs)

    def _object(self, answer: Answer, what: str) -> dict[str, Any]:
        if not isinstance(answer.body, dict):
            raise AirflowError(
                f"{self.transport.where} answered {what} with something that is not JSON (HTTP {answer.status})",
                "check that airflow_url points at the Airflow api-server, not a proxy's page",
            )
        return answer.body

    def _unexpected(self, answer: Answer, what: str) -> AirflowError:
        detail = answer.body.get("detail") if isinstance(answer.body, dict) else None
        text = f": {visible(str(detail))[:200]}" if detail else ""
        return AirflowError(f"{what} gave HTTP {answer.status}{text}", "check the Airflow api-server's logs")

    # -- Variables --------------------------------------------------------------------------------------------

    def get_variable(self, key: str) -> str | None:
        validate_variable_key(key)
        what = f"read Variable {key}"
        answer = self._call("GET", f"/variables/{_segment(key)}", what)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise self._unexpected(answer, what)
        value = self._object(answer, what).get("value")
        if value == MASKED:  # Airflow redacts the value of a Variable whose key names a secret ("token", "secret", …)
            raise AirflowError(
                f"{self.transport.where} shows Variable {key} as '***': its key contains a word Airflow treats as sensitive "
                "(token, secret, password, api_key, … or one in [core] sensitive_var_conn_names), so it hides the value",
                "name the image Variable without such a word (variable in imagectl.toml, DBT_DAG_IMAGE_VARIABLE for the DAG)",
            )
        return value if isinstance(value, str) else ""

    def set_variable(self, key: str, value: str, description: str) -> None:
        """Create or update. Airflow 3 separates the two (PATCH → 404 → POST); Airflow 2's POST upserts. The PATCH has
        no ``update_mask``: Airflow 3 then updates every field of the body (value and description; the key must match)."""
        validate_variable_key(key)
        body = {"key": key, "value": value, "description": description}
        what = f"write Variable {key}"
        if self.api == "v1":
            answer = self._call("POST", "/variables", what, body=body)
            if answer.status not in (200, 201):
                raise self._unexpected(answer, f"writing Variable {key}")
            return
        path = f"/variables/{_segment(key)}"
        answer = self._call("PATCH", path, what, body=body)
        if answer.status == 404:
            answer = self._call("POST", "/variables", what, body=body)
            if answer.status == 409:  # created meanwhile by another writer: update it
                answer = self._call("PATCH", path, what, body=body)
        if answer.status not in (200, 201):
            raise self._unexpected(answer, f"writing Variable {key}")

    def secrets_config(self) -> tuple[dict[str, dict[str, str]] | None, str | None]:
        """The [secrets] and [workers] options when the config API shows them, else (None, why not). Airflow 2 has no
        [workers] section (a 404 for it, after [secrets] was shown, means none)."""
        sections: dict[str, dict[str, str]] = {}
        for section in ("secrets", "workers"):
            what = f"read the [{section}] configuration"
            try:
                answer = self._call("GET", "/config", what, params={"section": section})
            except Denied:  # a 403: [api] expose_config is off (Airflow 2 and 3 answer 403 then), or the role may not
                return None, "the Airflow configuration is not exposed to imagectl ([api] expose_config, or the role)"
            if answer.status == 404 and sections:
                sections[section] = {}
                continue
            if answer.status in (403, 404):
                return None, "the Airflow configuration is not exposed ([api] expose_config = False)"
            if answer.status != 200:
                return None, f"reading the Airflow configuration gave HTTP {answer.status}"
            sections[section] = {}
            for found in self._object(answer, what).get("sections") or []:
                if isinstance(found, dict) and found.get("name") == section:
                    sections[section] = {
                        str(o.get("key")): str(o.get("value"))
                        for o in found.get("options") or []
                        if isinstance(o, dict) and o.get("key") is not None
                    }
        return sections, None

    # -- DAG runs ---------------------------------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any]:
        validate_dag_id(dag_id)
        what = f"read DAG {dag_id}"
        answer = self._call("GET", f"/dags/{_segment(dag_id)}", what)
        if answer.status == 404:
            raise NotFoundError(
                f"DAG {dag_id} is not known to {self.transport.where}", "check the DAG id and that the DAG file parsed without errors"
            )
        if answer.status != 200:
            raise self._unexpected(answer, what)
        return self._object(answer, what)

    def trigger(self, dag_id: str, run_id: str | None, conf: dict[str, Any]) -> dict[str, Any]:
        validate_dag_id(dag_id)
        if run_id:
            validate_run_id(run_id)
        body: dict[str, Any] = {"conf": conf}
        if self.api == "v2":
            body["logical_date"] = None  # required key in v2 (null: now)
        if run_id:
            body["dag_run_id"] = run_id
        what = f"trigger DAG {dag_id}"
        answer = self._call("POST", f"/dags/{_segment(dag_id)}/dagRuns", what, body=body)
        if answer.status == 404:
            raise NotFoundError(
                f"DAG {dag_id} is not known to {self.transport.where}", "check the DAG id and that the DAG file parsed without errors"
            )
        if answer.status == 409 and run_id:
            return self.dag_run(dag_id, run_id)
        if answer.status not in (200, 201):
            raise self._unexpected(answer, f"triggering DAG {dag_id}")
        return self._object(answer, what)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        validate_dag_id(dag_id)
        validate_run_id(run_id)
        what = f"read run {run_id} of DAG {dag_id}"
        answer = self._call("GET", f"/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}", what)
        if answer.status == 404:
            raise NotFoundError(f"run {run_id} of DAG {dag_id} does not exist", "check the run id")
        if answer.status != 200:
            raise self._unexpected(answer, what)
        return self._object(answer, what)

    def latest_run(self, dag_id: str) -> dict[str, Any] | None:
        validate_dag_id(dag_id)
        what = f"list runs of DAG {dag_id}"
        order = "-run_after" if self.api == "v2" else "-execution_date"
        answer = self._call("GET", f"/dags/{_segment(dag_id)}/dagRuns", what, params={"order_by": order, "limit": 1})
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise self._unexpected(answer, what)
        runs = self._object(answer, what).get("dag_runs") or []
        return runs[0] if runs and isinstance(runs[0], dict) else None

    def rendered_image(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        """The batch task-instance list (Airflow 2 and 3) with the ids in the body: its path is 37 characters whatever
        the ids (``/dags/<dag>/dagRuns/<run>/taskInstances/<task>`` is 85 for ci's run ids, over MWAA's 64)."""
        validate_dag_id(dag_id)
        validate_run_id(run_id)
        validate_dag_id(task_id)
        what = f"read task {task_id} of run {run_id}"
        body = {"dag_ids": [dag_id], "dag_run_ids": [run_id], "task_ids": [task_id]}
        answer = self._call("POST", "/dags/~/dagRuns/~/taskInstances/list", what, body=body)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise self._unexpected(answer, what)
        instances = [
            ti
            for ti in self._object(answer, what).get("task_instances") or []
            if isinstance(ti, dict) and (ti.get("dag_id"), ti.get("dag_run_id"), ti.get("task_id")) == (dag_id, run_id, task_id)
        ]
        instances.sort(key=lambda ti: ti.get("map_index") != -1)  # the unmapped task first
        fields = (instances[0].get("rendered_fields") if instances else None) or {}
        image = fields.get("image") if isinstance(fields, dict) else None
        return image if isinstance(image, str) and image else None

    def run_url(self, dag_id: str, run_id: str) -> str:
        if not self.transport.links:
            return self.base_url
        if self.api == "v2":
            return f"{self.base_url}/dags/{_segment(dag_id)}/runs/{_segment(run_id)}"
        return f"{self.base_url}/dags/{_segment(dag_id)}/grid?dag_run_id={_segment(run_id)}"


def open_rest(settings: RestSettings, context: FlavourContext) -> AirflowRest:
    """The ``rest`` flavour: the api-server at airflow_url, with an API token or a username and password from the
    environment (credentials.py says which wins)."""
    if not settings.airflow_url:
        raise ConfigError(
            f"environment '{context.environment}' has no airflow_url in {context.config_path}",
            f"add airflow_url under [environments.{context.environment}]",
        )
    login = context.credentials.airflow(context.environment)
    if isinstance(login, Token):
        return AirflowRest(TokenTransport(settings.airflow_url, context.environment, login, settings.airflow_api, context.timeouts))
    return AirflowRest(PasswordTransport(settings.airflow_url, context.environment, login, settings.airflow_api, context.timeouts))


HIDDEN = "< hidden >"  # how Airflow's config API shows a sensitive option (always, on Airflow 3)
# Backend kwargs that make the Amazon provider's backends read as someone else than the process's AWS chain.
OWN_CREDENTIALS = frozenset(
    {"aws_conn_id", "role_arn", "profile_name", "assume_role_method", "assume_role_kwargs", "aws_access_key_id", "aws_session_token"}
)
WAYS_OUT = (
    "declare the backend's settings for this environment in imagectl.toml (secrets_backend, secrets_backend_prefix, …), "
    "or let trigger --wait / ci --wait prove which image the task ran"
)


class RestVariable(ImageVariable):
    """The Variable in Airflow's metadata database, written through the environment's Airflow."""

    def __init__(self, key: str, settings: RestStoreSettings, context: StoreContext) -> None:
        self.key, self.settings, self.context = key, settings, context

    @property
    def airflow(self) -> Airflow:
        return self.context.airflow()

    def location(self) -> str:
        return f"Airflow Variable {self.key} (metadata database, {self.airflow.describe()})"

    def read(self) -> str | None:
        return self.airflow.get_variable(self.key)

    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        self.airflow.set_variable(self.key, value, description)

    def reach(self) -> Reach:
        """Airflow documents a Variable's lookup as the secrets backend, then ``AIRFLOW_VAR_<KEY>``, then the metadata
        database; on Airflow 3 a ``[workers] secrets_backend`` comes first for tasks. So a REST write is shadowed when
        a backend holds the key. Each configured backend is looked into where imagectl can: with its kwargs when
        Airflow shows them, else with the settings the environment declares (Airflow 3 always hides the kwargs);
        what cannot be looked into is said to be unverified — never "does not shadow"."""
        reach = Reach()
        key, declared = self.key, self.settings
        options, why_not = self.airflow.secrets_config()
        if options is None:
            if declared.secrets_backend:
                store = STORES[declared.secrets_backend]
                _check_backend(key, "the secrets backend imagectl.toml declares", store.backend or "", None, declared, reach, self.context)
                reach.unverified.append(
                    f"imagectl could not read Airflow's configuration ({why_not}), so it checked only the backend imagectl.toml "
                    f"declares for Variable {key}; another backend would go unseen (trigger --wait proves what ran)"
                )
            else:
                reach.unverified.append(f"cannot verify whether a secrets backend shadows Variable {key}: {why_not}; to fix: {WAYS_OUT}")
        else:
            workers, secrets = options.get("workers") or {}, options.get("secrets") or {}
            configured = [
                (where, cls.strip(), kwargs)
                for where, cls, kwargs in (
                    ("[workers] secrets_backend", workers.get("secrets_backend") or "", workers.get("secrets_backend_kwargs")),
                    ("[secrets] backend", secrets.get("backend") or "", secrets.get("backend_kwargs")),
                )
                if cls.strip() and cls.strip() not in ("None", HIDDEN)
            ]
            if not configured:
                reach.verified.append(f"no secrets backend is configured for Variables ({self.airflow.describe()} config API)")
            for where, cls, kwargs in configured:
                _check_backend(key, where, cls, kwargs, declared, reach, self.context)
            hidden = [where for where, _, kwargs in configured if _hidden(kwargs)]
            if len(configured) == 2 and len(hidden) == 2 and declared.secrets_backend:
                reach.unverified.append(
                    "[workers] secrets_backend and [secrets] backend are both set and Airflow hides their kwargs: the one set of "
                    "settings imagectl.toml declares was used for both; if their prefixes differ, one of them went unchecked "
                    "(trigger --wait proves what ran)"
                )
            if (secrets.get("use_cache") or "").lower() == "true":
                ttl = secrets.get("cache_ttl_seconds") or "900"
                reach.delay = (
                    f"Airflow's secrets cache is on ([secrets] use_cache, {ttl} s): DAG parsing may see the old value for up to {ttl} s; "
                    "tasks read Variables uncached, so the dbt task renders the new image on its next run"
                )
        reach.unverified.append(
            f"an AIRFLOW_VAR_{key.upper()} environment variable on the workers would also win over the database; "
            "no API shows it (trigger --wait checks what tasks render)"
        )
        return reach


def _hidden(kwargs_text: str | None) -> bool:
    return kwargs_text is None or kwargs_text.strip() in (HIDDEN, "***")


def _check_backend(
    key: str, where: str, backend: str, kwargs_text: str | None, declared: RestStoreSettings, reach: Reach, context: StoreContext
) -> None:
    """Does the secrets backend ``backend`` (a class path, configured as ``where``) hold ``key``? Looked up with the
    Variable store that writes where that backend reads (airflow/stores.py), with the backend's kwargs when Airflow
    shows them, else with the settings imagectl.toml declares, acting as the declared identity. Raises when it does."""
    store = store_for_backend(backend)
    if store is None:
        reach.unverified.append(
            f"cannot verify whether {where} ({visible(backend)[:120]}) shadows Variable {key}: imagectl cannot look "
            f"inside that backend, and tasks read it before the database; trigger --wait / ci --wait prove which image ran"
        )
        return
    mine = declared.secrets_backend == store.name
    if declared.secrets_backend and not mine:
        reach.unverified.append(
            f'imagectl.toml declares secrets_backend = "{declared.secrets_backend}", but Airflow\'s {where} is {visible(backend)[:120]}'
        )
    if not _hidden(kwargs_text):
        try:
            kwargs = json.loads(kwargs_text or "{}") if (kwargs_text or "").strip() else {}
        except ValueError:
            kwargs = {}
        kwargs = kwargs if isinstance(kwargs, dict) else {}
        own = sorted(set(kwargs) & OWN_CREDENTIALS)
        if own and not (mine and declared.secrets_backend_identity):  # imagectl's credentials may see another account
            reach.unverified.append(
                f"cannot verify whether {where} ({store.backend_label}) shadows Variable {key}: it reads with credentials of its "
                f'own ({", ".join(own)}), which imagectl does not have; to fix: declare secrets_backend = "{store.name}" and '
                "secrets_backend_identity (an identity that may read those secrets), or let trigger --wait / ci --wait prove which "
                "image the task ran"
            )
            return
        settings = store.settings.from_backend_kwargs(kwargs)  # type: ignore[attr-defined]
        if settings is not None and mine and declared.secrets_backend_region and not kwargs.get("region_name"):
            settings = dataclasses.replace(settings, store_region=declared.secrets_backend_region)
        pattern = kwargs.get("variables_lookup_pattern")
        source = f"{where}'s kwargs"
    elif mine:
        settings = declared.store_settings(store)
        pattern = declared.secrets_backend_lookup_pattern
        source = f"the settings imagectl.toml declares for {where}"
    else:
        reach.unverified.append(
            f"cannot verify whether {where} ({store.backend_label}) shadows Variable {key}: Airflow hides its kwargs "
            f"(its prefix, region and credentials); to fix: {WAYS_OUT}"
        )
        return
    if settings is None:
        reach.verified.append(f"{where} looks up no Variables (variables_prefix is null, per {source})")
        return
    if isinstance(pattern, str) and pattern and not re.match(pattern, key, re.IGNORECASE):
        reach.verified.append(f"{where} does not look {key} up (variables_lookup_pattern, per {source})")
        return
    lookup = StoreContext(context.environment, context.timeouts, context.airflow, context.identity if mine else None)
    variable: ImageVariable = getattr(importlib.import_module(store.module), store.cls)(key, settings, lookup)
    try:
        found = variable.read()
    except AirflowError as exc:
        reach.unverified.append(
            f"cannot verify whether {where} shadows Variable {key}: reading {variable.location()} failed: {exc.message}; to fix: {WAYS_OUT}"
        )
        return
    if found is not None:
        raise AirflowError(
            f"Variable {key} is shadowed: tasks read Variables from {variable.location()} ({where}) before the database, and "
            "it holds a value, so a REST write would never reach the dbt task; nothing was changed",
            f'set variable_store = "{store.name}" for this environment in imagectl.toml (or delete that secret)',
        )
    reach.verified.append(f"{variable.location()} does not hold {key}, so {where} does not shadow the database (per {source})")
