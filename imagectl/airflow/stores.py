"""The table of Variable stores: where an environment's image Variable is written, one line per store.

``airflow`` writes the Variable through Airflow's REST API (its metadata database); ``secretsmanager`` and
``ssm`` write it where Airflow's Amazon provider secrets backends read it, for deployments whose Variables live
there (a REST write would be shadowed). Adding a store is one module under airflow/ and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Store:
    name: str
    module: str
    cls: str
    allowed: tuple[str, ...] = ()  # [environments.X] keys this store reads
    default_prefix: str | None = None


STORES: dict[str, Store] = {
    "airflow": Store("airflow", "imagectl.airflow.rest", "RestVariable"),
    # SecretsManagerBackend's defaults: variables_prefix "airflow/variables", sep "/"
    "secretsmanager": Store(
        "secretsmanager",
        "imagectl.airflow.secretsmanager",
        "SecretsManagerVariable",
        allowed=("variables_prefix", "variables_sep", "store_region"),
        default_prefix="airflow/variables",
    ),
    # SystemsManagerParameterStoreBackend's default: variables_prefix "/airflow/variables" (always "/"-joined)
    "ssm": Store(
        "ssm", "imagectl.airflow.ssm", "SsmVariable", allowed=("variables_prefix", "store_region"), default_prefix="/airflow/variables"
    ),
}
