"""Each extension point is one module and one table line: a registry kind, a Variable store and an Airflow flavour
are registered here, by this test module alone, and commands run through them end to end (click included).

The throwaway extensions keep their state in this process (a "shelf", a "notebook", a "loft"), so nothing here
stands in for a real system: what is proven is the seam — settings read from imagectl.toml by the extension's own
dataclass, the extension opened from its table line, and every command reaching it only through the interfaces.
"""

import json
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

from imagectl.airflow._base import Airflow, FlavourContext, ImageVariable, StoreContext
from imagectl.airflow.flavours import FLAVOURS, Flavour
from imagectl.airflow.stores import STORES, Store
from imagectl.cli import cli
from imagectl.namespaces import record_tag
from imagectl.records import BUILD_RECORD, make_record
from imagectl.registries.kinds import KINDS, Kind
from imagectl.settings import setting
from tests.fakes import MemoryRegistry, MemoryRuns, image_manifest

SHELVES: dict[str, MemoryRegistry] = {}
NOTEBOOK: dict[str, str] = {}
LOFTS: dict[str, "LoftAirflow"] = {}


# -- a registry kind ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ShelfSettings:
    shelf: str = setting(required=True, what="a shelf name")


class ShelfRegistry(MemoryRegistry):
    """Images on a named shelf of this process; everything else is tests/fakes.py's MemoryRegistry."""

    def __init__(self, config: Any, login: Any = None, timeouts: Any = None) -> None:
        super().__init__(config.name, config.host)
        shelf = SHELVES.setdefault(config.settings.shelf, MemoryRegistry(config.name, config.host))
        self.tags, self.manifests, self.blobs = shelf.tags, shelf.manifests, shelf.blobs


# -- a Variable store ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NotebookSettings:
    page: str = setting("p1")

    @classmethod
    def from_backend_kwargs(cls, kwargs: dict[str, Any]) -> "NotebookSettings":
        return cls(page=kwargs.get("page", "p1"))


class NotebookVariable(ImageVariable):
    def __init__(self, key: str, settings: NotebookSettings, context: StoreContext) -> None:
        self.key, self.name = key, f"{settings.page}/{key}"

    def location(self) -> str:
        return f"notebook page {self.name}"

    def read(self) -> str | None:
        return NOTEBOOK.get(self.name)

    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        NOTEBOOK[self.name] = value


NOTEBOOK_BACKEND = "tests.unit.test_extensions.NotebookBackend"


# -- an Airflow flavour -------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LoftSettings:
    loft: str | None = setting(None)

    def configured(self) -> bool:
        return self.loft is not None


class LoftAirflow(MemoryRuns, Airflow):
    """An Airflow in this process: MemoryRuns' DAG runs, plus Variables and a configuration."""

    def __init__(self) -> None:
        super().__init__()
        self.variables: dict[str, str] = {}
        self.secrets: dict[str, str] = {}

    def describe(self) -> str:
        return "the loft"

    def get_variable(self, key: str) -> str | None:
        return self.variables.get(key)

    def set_variable(self, key: str, value: str, description: str) -> None:
        self.variables[key] = value

    def secrets_config(self) -> tuple[dict[str, dict[str, str]] | None, str | None]:
        return {"secrets": dict(self.secrets), "workers": {}}, None


def open_loft(settings: LoftSettings, context: FlavourContext) -> LoftAirflow:
    assert settings.loft is not None
    return LOFTS.setdefault(settings.loft, LoftAirflow())


# -- the tests ------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """The three table lines, as a new extension would add them (and nothing else)."""
    monkeypatch.setitem(KINDS, "shelf", Kind("shelf", __name__, "ShelfRegistry", ShelfSettings))
    monkeypatch.setitem(STORES, "notebook", Store("notebook", __name__, "NotebookVariable", NotebookSettings, backend=NOTEBOOK_BACKEND))
    monkeypatch.setitem(FLAVOURS, "loft", Flavour("loft", __name__, "open_loft", LoftSettings))
    SHELVES.clear()
    NOTEBOOK.clear()
    LOFTS.clear()


def project(tmp_path, environment: str) -> str:
    path = tmp_path / "imagectl.toml"
    path.write_text(
        f"""
[project]
name = "demo"
[jira]
projects = ["DATA"]
[images.base]
repository = "dbt-base"
[images.build]
repository = "dbt-build"
[registries.shelf]
kind = "shelf"
host = "shelf.example"
shelf = "a"
[environments.dev]
registry = "shelf"
{environment}
"""
    )
    return str(path)


def push(tag: str) -> str:
    shelf = SHELVES.setdefault("a", MemoryRegistry("shelf", "shelf.example"))
    image = shelf.push("dbt-build", tag, image_manifest(tag))
    shelf.push("dbt-build", record_tag(tag), make_record(image, {"org.opencontainers.image.revision": "a" * 40}, BUILD_RECORD))
    return image.digest


def imagectl(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_a_registry_kind_is_one_module_and_one_table_line(tmp_path):
    config = project(tmp_path, "")
    push("DATA-1-1")
    listed = imagectl("tags", "list", "--config", config, "-o", "json")
    assert listed.exit_code == 0, listed.output
    assert [row["tag"] for row in json.loads(listed.stdout)["tags"]] == ["DATA-1-1"]
    # The kind's own settings are its keys of [registries.NAME], checked by its dataclass.
    (tmp_path / "imagectl.toml").write_text((tmp_path / "imagectl.toml").read_text().replace('shelf = "a"\n', ""))
    missing = imagectl("tags", "list", "--config", config)
    assert missing.exit_code == 3 and "'registries.shelf.shelf' is missing (a shelf name)" in missing.stderr


def test_a_variable_store_is_one_module_and_one_table_line(tmp_path):
    config = project(tmp_path, 'variable_store = "notebook"\npage = "p7"')
    digest = push("DATA-1-1")
    deployed = imagectl("deploy", "DATA-1-1", "--config", config, "-o", "json")
    assert deployed.exit_code == 0, deployed.output
    assert NOTEBOOK["p7/dbt_image"] == f"shelf.example/dbt-build:DATA-1-1@{digest}"
    assert json.loads(deployed.stdout)["variable_location"] == "notebook page p7/dbt_image"
    history = json.loads(imagectl("history", "--config", config, "-o", "json").stdout)
    assert history["revisions"][0]["current"] is True
    # Another store's key is refused for this store.
    wrong = imagectl("history", "--config", project(tmp_path, 'variable_store = "notebook"\nstore_region = "x"'))
    assert wrong.exit_code == 3 and 'does not apply to variable_store = "notebook"' in wrong.stderr


def test_an_airflow_flavour_is_one_module_and_one_table_line(tmp_path):
    config = project(tmp_path, 'airflow = "loft"\nloft = "l1"')
    digest = push("DATA-1-1")
    deployed = imagectl("deploy", "DATA-1-1", "--config", config)
    assert deployed.exit_code == 0, deployed.output
    loft = LOFTS["l1"]
    reference = f"shelf.example/dbt-build:DATA-1-1@{digest}"
    assert loft.variables["dbt_image"] == reference  # the default store (the metadata database) through the flavour
    loft.images[("dbt_build", "run-1")] = reference
    triggered = imagectl("trigger", "dbt_build", "--config", config, "--run-id", "run-1", "--wait", "-o", "json")
    assert triggered.exit_code == 0, triggered.output
    assert json.loads(triggered.stdout)["verification"]["ok"] is True
    status = imagectl("status", "--config", config, "-o", "json")
    assert status.exit_code == 0 and json.loads(status.stdout)["environments"][0]["last_run"]["verdict"] == "ran the deployed image"
    # A store's table line names the secrets backend that reads it: a deployment whose Airflow reads Variables from
    # that backend, where the key has a value, shadows a database write — refused before anything changes.
    loft.secrets = {"backend": NOTEBOOK_BACKEND, "backend_kwargs": '{"page": "p2"}'}
    NOTEBOOK["p2/dbt_image"] = "elsewhere/image@sha256:" + "0" * 64
    push("DATA-1-2")
    shadowed = imagectl("deploy", "DATA-1-2", "--config", config)
    assert shadowed.exit_code == 9 and "shadowed" in shadowed.stderr and "notebook page p2/dbt_image" in shadowed.stderr
    assert loft.variables["dbt_image"] == reference
