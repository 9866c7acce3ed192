"""Slim builds start from the parse baked into the image and still select exactly what dbt selects.

The build image carries dbt's parse of its project per target (images/build/dbt_parse.py), made incrementally
from the previous build image's parse. For each kind of change (a model, a macro, a seed, a source, a
dbt_project.yml var, an env var a model reads) the slim run of the changed image must (1) start from that parse
without dbt throwing it away and (2) build exactly the nodes that dbt's own ``state:modified+`` selects on a
fresh parse (``dbt ls --no-partial-parse`` in the same image with the same environment).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker
import pytest

from imagectl import labels as L
from tests.conftest import git
from tests.integration.test_images import DbtRepo

pytestmark = pytest.mark.usefixtures("docker_engine")

DUCKDB = "/data/jaffle.duckdb"
BUILD_TYPES = ["model", "seed", "snapshot", "test"]

# What the sample project gains for this test: a macro, a var and an env var that decide what models are.
ADDITIONS = {
    "macros/cents_to_dollars.sql": "{% macro cents_to_dollars(column) %}{{ column }} / 100.0{% endmacro %}\n",
    "models/staging/stg_payments.sql": (
        "select id as payment_id, order_id, payment_method, {{ cents_to_dollars('amount') }} as amount\n"
        "from {{ source('raw', 'raw_payments') }}\n"
    ),
    "models/staging/stg_customers.sql": (
        "{{ config(materialized=env_var('JAFFLE_CUSTOMERS_MATERIALIZED', 'view')) }}\n"
        "select id as customer_id, first_name, last_name, country_code from {{ source('raw', 'raw_customers') }}\n"
    ),
}
FRESHNESS = "\n        loaded_at_field: order_date\n        freshness: {warn_after: {count: 1000, period: day}}"
ORDERS_CONFIG = "{{ config(materialized=var('orders_materialized', 'table')) }}\n"


def edit(root: Path, path: str, old: str, new: str) -> None:
    file = root / "sample_project" / path
    text = file.read_text()
    assert old in text, f"{old!r} not in {path}"
    file.write_text(text.replace(old, new, 1))


CHANGES = {
    "model": lambda root: edit(root, "models/marts/orders.sql", "o.status,", "o.status, -- changed\n"),
    "macro": lambda root: edit(root, "macros/cents_to_dollars.sql", "/ 100.0", "/ 100.00"),
    "seed": lambda root: edit(root, "seeds/order_statuses.csv", "Order shipped", "Order on its way"),
    "source": lambda root: edit(root, "models/staging/_sources.yml", "      - name: raw_orders", "      - name: raw_orders" + FRESHNESS),
    "var": lambda root: edit(root, "dbt_project.yml", "clean-targets:", "vars:\n  orders_materialized: view\nclean-targets:"),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, oci_registry, python_image) -> DbtRepo:
    host = oci_registry.url.removeprefix("http://")
    repo = DbtRepo(tmp_path_factory.mktemp("slim-parse"), host, python_image, namespace="slim-parse-test")
    for path, text in ADDITIONS.items():
        (repo.root / "sample_project" / path).parent.mkdir(parents=True, exist_ok=True)
        (repo.root / "sample_project" / path).write_text(text)
    orders = repo.root / "sample_project/models/marts/orders.sql"
    orders.write_text(ORDERS_CONFIG + orders.read_text().replace('{{ config(tags=["finance"]) }}\n', ""))
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-qm", "macro, var and env var for the slim tests")
    return repo


@pytest.fixture(scope="module")
def first(repo) -> str:
    return repo.build()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("slim-parse-run")
    made = {}
    for name in ("data", "state", "out"):
        (root / name).mkdir()
        (root / name).chmod(0o777)
        made[name] = root / name
    return made


def run(image: str, args: list[str], dirs: dict[str, Path], env: dict | None = None, entrypoint: str | None = None) -> tuple[int, str]:
    client = docker.from_env()
    volumes = {str(path): {"bind": f"/{name}", "mode": "rw"} for name, path in dirs.items()}
    container = client.containers.run(image, args, entrypoint=entrypoint, environment=env or {}, volumes=volumes, detach=True)
    try:
        code = container.wait(timeout=600)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def state(first, dirs) -> None:
    code, output = run(first, ["--mode", "full", "--state-uri", "/state", "--upload-state"], dirs)
    assert code == 0, output
    assert "entrypoint: parse: starting from the image's parse for the default target" in output
    assert "re-parsed" not in output, output


def build_after(repo: DbtRepo, first: str, change) -> tuple[str, str]:
    """Build the image of the project with ``change`` applied, seeded by the first image's parse; then undo it."""
    client = docker.from_env(timeout=600)
    base = client.images.get(first).labels[L.BASE_REF]
    change(repo.root)
    log = []
    try:
        args = {
            "BASE_IMAGE": base,
            "PREVIOUS_IMAGE": first,
            "DBT_PROJECT_PATH": "sample_project",
            "DBT_PARSE_ENV": f"DBT_DUCKDB_PATH={DUCKDB}",
        }
        image_id = None
        for event in client.api.build(
            path=str(repo.root), dockerfile="images/build/Dockerfile", buildargs=args, rm=True, forcerm=True, decode=True
        ):
            assert "error" not in event, event
            log.append(event.get("stream", ""))
            if isinstance(event.get("aux"), dict) and "ID" in event["aux"]:
                image_id = event["aux"]["ID"]
        assert image_id, "".join(log)
        return image_id, "".join(log)
    finally:
        subprocess.run(["git", "checkout", "--", "."], cwd=repo.root, check=True)


def slim_selection(image: str, dirs: dict[str, Path], case: str, env: dict[str, str]) -> set[str]:
    """What the slim run of ``image`` built, from its run_results.json; asserts it started from the image's parse."""
    code, output = run(
        image, ["--mode", "slim", "--state-uri", "/state"], dirs, {**env, "DBT_TARGET_PATH": f"/out/{case}", "DBT_WRITE_JSON": "true"}
    )
    assert code == 0, output
    assert "entrypoint: parse: starting from the image's parse for the default target" in output
    assert "Unable to do partial parsing" not in output and "re-parsed" not in output, output
    if "Nothing to do." in output:
        return set()
    results = json.loads((dirs["out"] / case / "run_results.json").read_text())["results"]
    return {r["unique_id"] for r in results}


def dbt_selection(image: str, dirs: dict[str, Path], env: dict[str, str]) -> set[str]:
    """What dbt's own state:modified+ selects on a fresh parse, for the node types ``dbt build`` runs."""
    types = [arg for t in BUILD_TYPES for arg in ("--resource-type", t)]
    args = ["ls", "--no-partial-parse", "--select", "state:modified+", "--state", "/state", *types, "--output", "json"]
    args += ["--output-keys", "unique_id", "--quiet", "--target-path", "/tmp/ls"]
    code, output = run(image, args, dirs, {"DBT_DUCKDB_PATH": DUCKDB, **env}, entrypoint="dbt")
    assert code == 0, output
    return {json.loads(line)["unique_id"] for line in output.splitlines() if line.startswith("{")}


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_slim_after_a_change_selects_what_dbt_selects(repo, first, dirs, state, kind):
    image, log = build_after(repo, first, CHANGES[kind])
    if kind != "var":  # a dbt_project.yml change makes dbt parse everything again, at build time
        assert "dbt_parse: _default: parsed incrementally from the previous build" in log, log
    selected = slim_selection(image, dirs, kind, {})
    expected = dbt_selection(image, dirs, {})
    assert expected, f"the {kind} change should modify something"
    assert selected == expected


def test_slim_after_an_env_var_change_selects_what_dbt_selects(first, dirs, state):
    env = {"JAFFLE_CUSTOMERS_MATERIALIZED": "table"}
    selected = slim_selection(first, dirs, "env", env)
    expected = dbt_selection(first, dirs, env)
    assert "model.jaffle_shop.stg_customers" in expected
    assert selected == expected


def test_slim_with_nothing_changed_builds_nothing(first, dirs, state):
    assert slim_selection(first, dirs, "nothing", {}) == set()


def test_slim_writes_no_json_artifacts_unless_asked(first, dirs, state):
    code, output = run(first, ["--mode", "slim", "--state-uri", "/state"], dirs, {"DBT_TARGET_PATH": "/out/quiet"})
    assert code == 0, output
    assert "entrypoint: slim: dbt's JSON artifacts are not written (DBT_WRITE_JSON=true keeps them)" in output
    assert not (dirs["out"] / "quiet" / "manifest.json").exists() and not (dirs["out"] / "quiet" / "run_results.json").exists()
