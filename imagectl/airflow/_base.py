"""What a deploy needs from the Airflow side of an environment, as two small interfaces.

- ``ImageVariable``: the Variable the dbt DAG renders its image from, wherever the deployment reads it (the
  metadata database through the REST API, or a secrets backend): read it, write it, say where it is, and say
  what could stop tasks from seeing a write (shadowing by a secrets backend, caches).
- ``Runs``: trigger and follow a DAG run, and read the image a run's task actually rendered;
- ``Airflow``: what an Airflow flavour opens (airflow/flavours.py): ``Runs``, plus the Variables and configuration
  that the metadata-database Variable store and the shadow check use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagectl.credentials import Credentials
from imagectl.settings import Identity, Timeouts


@dataclass
class Reach:
    """What imagectl found out about whether tasks will see a write of the image Variable."""

    verified: list[str] = field(default_factory=list)  # checks that passed
    unverified: list[str] = field(default_factory=list)  # what could not be checked, and why
    delay: str | None = None  # when tasks will see it, if not at once

    def notes(self) -> list[str]:
        return [*self.unverified, *([self.delay] if self.delay else [])]


class ImageVariable(ABC):
    """Where the dbt DAG reads its image from."""

    key: str

    @abstractmethod
    def location(self) -> str:
        """Where the value lives, for people: 'Airflow Variable dbt_image (REST /api/v2)', a secret name, …"""

    @abstractmethod
    def read(self) -> str | None:
        """The stored value (None when it does not exist)."""

    @abstractmethod
    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        """Store ``value``; ``facts`` (revision, tag, actor, …) go where the store keeps metadata. A store that
        would have to create the value refuses unless ``create`` (the REST Variable is always created)."""

    def preflight(self, create: bool) -> None:  # noqa: B027 - most stores have nothing to check
        """Refuse before anything is recorded when a write could not succeed (a store that must be created first)."""

    def reach(self) -> Reach:
        """Check, where possible, that tasks read this value (and raise when they certainly do not)."""
        return Reach()


class Runs(ABC):
    """DAG runs of the environment's Airflow."""

    base_url: str

    @abstractmethod
    def dag(self, dag_id: str) -> dict[str, Any]: ...

    @abstractmethod
    def trigger(self, dag_id: str, run_id: str | None, conf: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]: ...

    @abstractmethod
    def latest_run(self, dag_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def rendered_image(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        """The ``image`` field the task rendered in that run (None before it rendered)."""

    @abstractmethod
    def run_url(self, dag_id: str, run_id: str) -> str: ...


class Airflow(Runs):
    """An environment's Airflow, as a flavour reaches it."""

    @abstractmethod
    def describe(self) -> str:
        """How it is reached, for people: 'REST /api/v2', 'MWAA InvokeRestApi', …"""

    @abstractmethod
    def get_variable(self, key: str) -> str | None: ...

    @abstractmethod
    def set_variable(self, key: str, value: str, description: str) -> None: ...

    @abstractmethod
    def secrets_config(self) -> tuple[dict[str, dict[str, str]] | None, str | None]:
        """({"secrets": [secrets] options, "workers": [workers] options}, None) when Airflow shows its configuration
        ("workers" is empty where the section does not exist, as on Airflow 2), else (None, why not)."""


@dataclass(frozen=True)
class FlavourContext:
    """What a flavour's opener is given besides its settings."""

    environment: str
    credentials: Credentials
    timeouts: Timeouts
    config_path: Path
    identity: Identity | None = None  # the AWS identity the flavour acts as (its settings' identity field, e.g. MWAA's)


@dataclass(frozen=True)
class StoreContext:
    """What a Variable store is given besides its key and settings: the environment's Airflow, opened on first use."""

    environment: str
    timeouts: Timeouts
    airflow: Callable[[], Airflow]
    identity: Identity | None = None  # the AWS identity the store acts as (its settings' identity field)
