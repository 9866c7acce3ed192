from pathlib import Path

import pytest

from imagectl.config import find_config, load_config
from imagectl.errors import ConfigError

VALID = """
[project]
name = "demo"
default_environment = "dev"
[jira]
projects = ["DATA"]
[images.base]
context = "images/base"
repository = "dbt-base"
build_args = { PYTHON_IMAGE = "python:3.11-slim" }
[images.build]
context = "."
dockerfile = "images/build/Dockerfile"
repository = "dbt-build"
[registries.dev]
kind = "ecr"
host = "111111111111.dkr.ecr.ap-northeast-2.amazonaws.com"
region = "ap-northeast-2"
[registries.local]
kind = "oci"
host = "127.0.0.1:5000"
insecure = true
[environments.dev]
registry = "dev"
[environments.prd]
registry = "local"
"""


def write_project(root: Path, text: str = VALID) -> Path:
    (root / "images/base").mkdir(parents=True)
    (root / "images/build").mkdir(parents=True)
    (root / "images/base/Dockerfile").write_text("FROM scratch\n")
    (root / "images/build/Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    path = root / "imagectl.toml"
    path.write_text(text)
    return path


def test_valid_config(tmp_path):
    path = write_project(tmp_path)
    config = load_config(path)
    assert config.images["base"].context == (tmp_path / "images/base").resolve()
    assert config.images["base"].dockerfile == (tmp_path / "images/base/Dockerfile").resolve()
    assert config.images["build"].dockerfile == (tmp_path / "images/build/Dockerfile").resolve()
    assert config.images["base"].build_args == {"PYTHON_IMAGE": "python:3.11-slim"}
    assert config.registries["dev"].kind == "ecr" and config.registries["local"].insecure
    assert config.jira_projects == ("DATA",)
    assert config.environments["prd"].release and config.environments["prd"].confirm
    assert not config.environments["dev"].release
    assert config.registry_for("prd").name == "local"
    assert config.dbt_dag_for("prd") == config.dbt_dag_for("dev") == "dbt_build"  # [ci] dbt_dag unless the env names its own


def test_an_environment_names_its_own_dbt_dag(tmp_path):
    """One Airflow for dev and prd: each environment's runs are those of its own DAG, reading its own Variable."""
    config = load_config(write_project(tmp_path, VALID.replace('registry = "local"', 'registry = "local"\ndbt_dag = "dbt_build_prd"')))
    assert (config.dbt_dag_for("dev"), config.dbt_dag_for("prd")) == ("dbt_build", "dbt_build_prd")


def test_found_from_subdirectory(tmp_path):
    path = write_project(tmp_path)
    sub = tmp_path / "models" / "staging"
    sub.mkdir(parents=True)
    assert find_config(sub) == path
    assert load_config(cwd=sub).path == path.resolve()


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="no imagectl.toml found") as info:
        find_config(tmp_path)
    assert "--config" in info.value.one_line()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.replace('kind = "ecr"', 'kind = "gcr"'), "'registries.dev.kind' must be one of ecr, oci"),
        (lambda t: t.replace('region = "ap-northeast-2"\n', ""), "'registries.dev.region' is missing"),
        (lambda t: t.replace('repository = "dbt-base"\n', ""), "'images.base.repository' is missing"),
        (lambda t: t.replace('registry = "dev"', 'registry = "nope"'), "'environments.dev.registry' names 'nope'"),
        (lambda t: t.replace("[jira]", "[jira]\ntypo = 1"), "'jira.typo' is not a known key"),
        (lambda t: t.replace('repository = "dbt-build"', 'repository = "dbt-base"'), "must differ"),
        (lambda t: t.replace("insecure = true", 'insecure = "yes"'), "'registries.local.insecure' must be true or false"),
        (lambda t: t.replace('default_environment = "dev"', 'default_environment = "qa"'), "'project.default_environment' names 'qa'"),
        (lambda t: t + "\n[oops", "is not valid TOML"),
        (lambda t: t.replace('registry = "local"', 'registry = "local"\ndbt_dag = "../x"'), "'environments.prd.dbt_dag' must be"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, change, message):
    path = write_project(tmp_path, change(VALID))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in info.value.one_line()
    assert str(path) in info.value.one_line()
    assert "\n" not in info.value.one_line()


def test_build_paths_are_checked_only_by_commands_that_build(tmp_path):
    """An on-call laptop has imagectl.toml but not the dbt repository: loading works, building says what is missing."""
    path = tmp_path / "imagectl.toml"
    path.write_text(VALID)
    config = load_config(path)
    with pytest.raises(ConfigError, match="'images.base.context' points to .* which is not a directory"):
        config.images["base"].check_build_paths()


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda t: t.replace('host = "127.0.0.1:5000"', 'host = "user:pass@127.0.0.1:5000"'),
            "'registries.local.host' must be host[:port] only",
        ),
        (
            lambda t: t.replace('host = "127.0.0.1:5000"', 'host = "https://127.0.0.1:5000"'),
            "'registries.local.host' must be host[:port] only",
        ),
        (
            lambda t: t.replace('host = "127.0.0.1:5000"', 'host = "127.0.0.1:5000/path"'),
            "'registries.local.host' must be host[:port] only",
        ),
        (lambda t: t + '\n[ci]\nbranches = { dev = ["dev"] }\n', "'ci.branches' must be a table of environment names"),
        (lambda t: t.replace("[environments.prd]", "[environments." + "p" * 115 + "]"), "name must be 1-32 lower-case"),
        (
            lambda t: t.replace('registry = "local"', 'registry = "local"\nvariable_store = "vault"'),
            "'environments.prd.variable_store' must be one of",
        ),
        (
            lambda t: t.replace('registry = "local"', 'registry = "local"\nvariables_prefix = "x"'),
            'does not apply to variable_store = "airflow"',
        ),
        (
            lambda t: t.replace('registry = "local"', 'registry = "local"\nairflow_url = "http://u:p@airflow:8080"'),
            "must not contain credentials",
        ),
        (
            lambda t: t.replace('registry = "local"', 'registry = "local"\nmax_severity = "SEVERE"'),
            "'environments.prd.max_severity' must be one of",
        ),
        (lambda t: t.replace('registry = "local"', 'registry = "local"\nnotify = ["ops"]'), "names 'ops', which is not under [webhooks]"),
        (
            lambda t: t.replace('registry = "local"', 'registry = "local"\nvariable = "../x"'),
            "'environments.prd.variable' must be a Variable key",
        ),
        (lambda t: t + "\n[timeouts]\nread = 0\n", "'timeouts.read' must be a number"),
    ],
)
def test_hostile_config_values_name_the_key(tmp_path, change, message):
    path = tmp_path / "imagectl.toml"
    path.write_text(change(VALID))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in info.value.one_line()


def test_non_utf8_config_is_one_config_error(tmp_path):
    path = tmp_path / "imagectl.toml"
    path.write_bytes(VALID.encode() + b"\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="is not UTF-8"):
        load_config(path)


def test_stores_and_single_environment_default(tmp_path):
    text = VALID.replace('default_environment = "dev"\n', "").replace(
        '[environments.dev]\nregistry = "dev"\n',
        '[environments.dev]\nregistry = "dev"\nvariable_store = "secretsmanager"\nstore_region = "eu-west-1"\n',
    )
    path = tmp_path / "imagectl.toml"
    path.write_text(text)
    config = load_config(path)
    dev = config.environments["dev"]
    assert (dev.variable_store, dev.store.variables_prefix, dev.store.variables_sep, dev.store.store_region) == (
        "secretsmanager",
        "airflow/variables",
        "/",
        "eu-west-1",
    )
    assert config.default_environment is None  # two environments: no guess
    single = text.split("[environments.prd]")[0]
    path.write_text(single)
    assert load_config(path).default_environment == "dev"
