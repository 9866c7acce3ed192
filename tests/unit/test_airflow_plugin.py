"""The Airflow plugin's own logic, without Airflow: the page's data (commands/overview.py), the operations the
imagectl_ops DAG runs (commands/ops.py), the page's HTML (plugin/page.py), the [imagectl] settings and the DAG file's
params. The plugin inside a real Airflow 3, driven by a browser: tests/integration/test_airflow_plugin.py."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from imagectl.commands.ops import ACTIONS, OpsRequest, run_operation
from imagectl.commands.overview import MAX_LIMIT, overview
from imagectl.errors import ConfigError, InputError, NotFoundError
from imagectl.namespaces import record_tag
from imagectl.plugin.page import Urls, link, render_form, render_page, render_refusal, script_json
from imagectl.plugin.settings import ConfigCache, PluginSettings, read
from imagectl.records import BUILD_RECORD, make_record
from imagectl.render import document
from tests.unit.helpers import BASE, Stack, config
from tests.unit.test_planning import deploy, execute, freeze

ROOT = Path(__file__).resolve().parents[2]
URLS = Urls(app="/imagectl", airflow="")
LINKS = '\n[jira]\nurl = "https://jira.example"\nkind = "datacenter"\n'


def links_config():
    """helpers.BASE with [jira] url and [project] commit_url."""
    text = BASE.replace('[project]\nname = "demo"', '[project]\nname = "demo"\ncommit_url = "https://git.example/dbt/commit/{commit}"')
    return config(text=text.replace("[jira]\nprojects", LINKS.strip() + "\nprojects", 1))


@pytest.fixture
def stack():
    s = Stack(links_config())
    for n in range(1, 4):
        image = s.image(f"DATA-1-{n}", "dev")
        s.registries["prd"].push("dbt-build", f"DATA-1-{n}", image)
        annotations = {
            "org.opencontainers.image.revision": f"{n}" * 40,
            "org.opencontainers.image.created": f"2026-11-0{n}T08:00:00Z",
            "io.imagectl.jira": "DATA-1",
        }
        s.registries["prd"].push("dbt-build", record_tag(f"DATA-1-{n}"), make_record(image, annotations, BUILD_RECORD))
    return s


def ops(stack, action, environment="prd", reason="orders broke", actor="analyst", target=None, shown=None):
    request = OpsRequest(action=action, environment=environment, reason=reason, actor=actor, target=target)
    return run_operation(stack, request, (shown if shown is not None else []).append)


# -- the page's data -----------------------------------------------------------------------------------------------


def test_overview_is_status_and_history_with_the_deployed_image_and_links(stack):
    for n in (1, 2, 3):
        deploy(stack, f"DATA-1-{n}", env="prd", reason=f"release {n}")
    stack.runs.on_trigger = lambda *_: ("success", stack.variables["prd"].value)
    stack.runs.trigger("dbt_build", None, {})
    data = document(overview(stack, ["prd"], limit=2))
    (prd,) = data["environments"]
    assert prd["image"] == {
        "tag": "DATA-1-3",
        "digest": stack.registries["prd"].get_manifest("dbt-build", "DATA-1-3").digest,
        "reference": stack.variables["prd"].value,
        "revision": 3,
        "release": "v1.0.2",
        "jira": "DATA-1",
        "commit": "3" * 40,
        "built_at": "2026-11-03T08:00:00Z",
        "jira_url": "https://jira.example/browse/DATA-1",
        "commit_url": "https://git.example/dbt/commit/" + "3" * 40,
    }
    assert prd["last_run"]["verdict"] == "ran the deployed image" and prd["agree"] is True and prd["frozen"] is None
    assert [r["revision"] for r in prd["revisions"]] == [3, 2]  # history --limit 2
    assert prd["revisions"][0]["current"] is True and prd["revisions"][0]["jira_url"] == "https://jira.example/browse/DATA-1"
    assert prd["revisions"][0]["verification"] is None and prd["revisions"][0]["rejected"] is None  # as `history -o json`


def test_links_only_when_configured_and_environments_read_side_by_side():
    s = Stack()
    s.image("DATA-1-1", "dev")
    deploy(s, "DATA-1-1", env="dev")
    data = document(overview(s, ["dev", "prd"], limit=MAX_LIMIT * 10))
    dev, prd = data["environments"]
    assert dev["image"]["jira"] == "DATA-1" and dev["image"]["jira_url"] is None and dev["image"]["commit_url"] is None
    assert dev["revisions"][0]["jira_url"] is None and dev["revisions"][0]["commit_url"] is None
    assert prd["image"] is None and prd["revisions"] == [] and prd["error"] is None


def test_an_environment_that_cannot_be_read_shows_its_error_beside_the_others(stack):
    deploy(stack, "DATA-1-1", env="dev")

    def refuse(*_a, **_k):
        raise NotFoundError("registry prd.example is gone", "check the registry")

    stack.registries["prd"].existing = refuse
    stack.registries["prd"].get_manifests = refuse
    dev, prd = document(overview(stack, ["dev", "prd"]))["environments"]
    assert dev["error"] is None and dev["image"]["tag"] == "DATA-1-1"
    assert prd["error"] == "registry prd.example is gone — check the registry"


# -- what imagectl_ops runs ----------------------------------------------------------------------------------------


def test_rollback_records_the_triggering_user_and_shows_the_plan_first(stack):
    for n in (1, 2):
        deploy(stack, f"DATA-1-{n}", env="prd")
    shown = []
    result = ops(stack, "rollback", shown=shown)
    assert result.revision.revision == 3 and result.revision.tag == "DATA-1-1"
    assert (result.revision.actor, result.revision.reason, result.revision.action) == ("analyst", "orders broke", "rollback")
    assert shown[0].startswith("Plan: rollback DATA-1-1 to prd") and "actor, reason   analyst, orders broke" in shown[0]
    assert shown[1].startswith("prd: revision 3 recorded — rollback DATA-1-1")
    assert stack.variables["prd"].value.endswith(result.revision.digest)  # prd confirms on a terminal; the trigger is the confirmation


def test_rollback_to_a_revision_then_freeze_and_unfreeze(stack):
    for n in (1, 2, 3):
        deploy(stack, f"DATA-1-{n}", env="prd")
    assert ops(stack, "rollback", target="1").revision.tag == "DATA-1-1"
    frozen = ops(stack, "freeze", reason="INC-42")
    assert frozen.revision.frozen and frozen.revision.frozen_by == "analyst" and frozen.revision.tag == "DATA-1-1"
    again = ops(stack, "freeze", reason="INC-42")
    assert again.plan.state == "noop"
    assert not ops(stack, "unfreeze", reason="fixed").revision.frozen


def test_refusals_are_one_line_errors(stack):
    deploy(stack, "DATA-1-1", env="prd")
    with pytest.raises(NotFoundError) as missing:
        ops(stack, "rollback", target="99")
    assert missing.value.one_line() == "prd has no revision 99 — see imagectl history --env prd"
    with pytest.raises(NotFoundError, match="no earlier revision of prd ran another image"):
        ops(stack, "rollback")
    with pytest.raises(NotFoundError, match="dev has no history yet, so there is nothing to freeze"):
        ops(stack, "freeze", environment="dev")
    with pytest.raises(ConfigError, match="environment 'stg' is not defined"):
        ops(stack, "unfreeze", environment="stg")


@pytest.mark.parametrize(
    "params, actor, message",
    [
        (
            {"action": "delete", "environment": "prd", "reason": "x"},
            "a",
            "unknown action 'delete' — choose one of rollback, freeze, unfreeze",
        ),
        ({"action": "rollback", "environment": "prd", "reason": "  "}, "a", "rollback needs a reason"),
        ({"action": "freeze", "environment": "prd", "reason": "x"}, None, "the run has no triggering user"),
        ({"action": "freeze", "environment": "prd", "reason": "x", "target": "3"}, "a", "freeze takes no target"),
        ({"action": "rollback", "environment": "prd", "reason": "x", "target": "latest"}, "a", "the tag 'latest' is refused"),
        ({"action": "rollback", "environment": "Prd!", "reason": "x"}, "a", "'Prd!' is not an environment name"),
        ({"action": "rollback", "environment": "prd", "reason": "x" * 501}, "a", "reason is 501 characters long; at most 500 are kept"),
        ({"action": "rollback", "environment": "prd", "reason": ["x"]}, "a", "the reason must be text"),
    ],
)
def test_the_dag_run_params_are_checked(params, actor, message):
    with pytest.raises(InputError) as refused:
        OpsRequest.from_params(params, actor)
    assert message in refused.value.one_line()


def test_params_as_the_trigger_form_sends_them():
    request = OpsRequest.from_params({"action": "rollback", "environment": "prd", "reason": " why ", "target": ""}, " analyst ")
    assert (request.target, request.reason, request.actor) == (None, "why", "analyst")
    assert OpsRequest.from_params({"action": "rollback", "environment": "prd", "reason": "x", "target": 41}, "a").target == "41"


# -- the page's HTML -----------------------------------------------------------------------------------------------


def test_page_shows_history_and_buttons_only_to_users_who_may_act(stack):
    for n in (1, 2):
        deploy(stack, f"DATA-1-{n}", env="prd", reason="<script>alert(1)</script>")
    data = document(overview(stack, ["prd"]))
    page = render_page(data, user="analyst", can_act=True, urls=URLS, limit=20)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="/imagectl/act?action=rollback&amp;environment=prd"' in page
    assert 'href="/imagectl/act?action=rollback&amp;environment=prd&amp;target=1"' in page  # roll back to revision 1
    assert "/imagectl/act?action=freeze&amp;environment=prd" in page
    assert 'href="https://jira.example/browse/DATA-1" target="_blank"' in page
    assert f'href="https://git.example/dbt/commit/{"2" * 40}"' in page
    viewer = render_page(data, user="viewer", can_act=False, urls=URLS, limit=20)
    assert "/imagectl/act" not in viewer and "which your Airflow role does not allow" in viewer
    assert viewer.count("<tr") == page.count("<tr") == 3  # the same history


def test_frozen_environments_offer_unfreeze_and_say_who_froze_them(stack):
    deploy(stack, "DATA-1-1", env="prd")
    execute(freeze(stack, "prd", "freeze", "oncall", "INC-42 <b>"))
    page = render_page(document(overview(stack, ["prd"])), user="a", can_act=True, urls=URLS, limit=20)
    assert "frozen by oncall since" in page and "INC-42 &lt;b&gt;" in page
    assert "action=unfreeze" in page and "action=freeze&" not in page


def test_page_notices_and_urls_under_a_base_path():
    urls = Urls(app="/airflow/imagectl", airflow="/airflow")
    page = render_page({"environments": [], "warnings": ["bad record <x>"]}, user="u", can_act=True, urls=urls, limit=20, run="manual__1")
    assert "/airflow/dags/imagectl_ops/runs/manual__1" in page and "imagectl-poll" in page  # follows the run until it ends
    assert "warning: bad record &lt;x&gt;" in page
    done = render_page({"environments": []}, user="u", can_act=True, urls=urls, limit=20, run="manual__1", run_state="failed")
    assert "imagectl-poll" not in done and "failed: its log says why" in done
    assert urls.trigger_api == "/airflow/api/v2/dags/imagectl_ops/dagRuns"


def test_links_and_embedded_data_cannot_inject():
    assert link("javascript:alert(1)", "x") == "x" and link("//evil.example/", "x") == "x"
    assert link("/dags/x", "run") == '<a href="/dags/x" target="_top">run</a>'
    assert "</script>" not in script_json({"a": "</script><script>alert(1)</script>"})
    assert json.loads(script_json({"a": "</script>&"})) == {"a": "</script>&"}


def test_the_form_is_the_dag_s_params_prefilled():
    revisions = [
        {"revision": 2, "tag": "DATA-1-2", "action": "deploy", "actor": "ci", "current": True},
        {"revision": 1, "tag": "DATA-1-1", "action": "deploy", "actor": "ci"},
    ]
    form = render_form(
        action="rollback", environment="prd", target="1", environments=["dev", "prd"], revisions=revisions, urls=URLS, user="analyst"
    )
    assert '<option value="rollback" selected>' in form and '<option value="prd" selected>' in form
    assert 'id="target" name="target" list="revisions" value="1"' in form and 'maxlength="500" required' in form
    assert '<option value="1">revision 1: DATA-1-1' in form and 'value="2"' not in form  # the current revision is no target
    assert '"api": "/api/v2/dags/imagectl_ops/dagRuns"' in form and "as <strong>analyst</strong>" in form
    assert set(ACTIONS) == {"rollback", "freeze", "unfreeze"}
    assert "sign in" in render_refusal(401, "Not authenticated", "/auth/login?next=/imagectl/")
    assert "Airflow refused: Forbidden." in render_refusal(403, "Forbidden", "/auth/login")


# -- settings and the DAG file -------------------------------------------------------------------------------------


def test_settings_name_the_config_and_the_environments_this_airflow_runs(tmp_path):
    options = {"config_file": None, "environments": None}
    settings = read(options.get, {}, "/opt/airflow/dags")
    assert settings.config_path == Path("/opt/airflow/dags/imagectl.toml")
    assert read(options.get, {"IMAGECTL_CONFIG": "/etc/imagectl.toml"}, None).config_path == Path("/etc/imagectl.toml")
    options["config_file"] = "/srv/imagectl.toml"
    assert read(options.get, {"IMAGECTL_CONFIG": "/etc/imagectl.toml"}, None).config_path == Path("/srv/imagectl.toml")
    with pytest.raises(ConfigError, match="does not know where its imagectl.toml is"):
        read({}.get, {}, None)
    cfg = config()
    with pytest.raises(ConfigError) as which:
        PluginSettings(Path("x"), None).hosted(cfg)
    assert which.value.one_line().endswith(
        "set [imagectl] environments in Airflow's configuration, e.g. AIRFLOW__IMAGECTL__ENVIRONMENTS=prd"
    )
    assert PluginSettings(Path("x"), " prd , dev").hosted(cfg) == ("dev", "prd")  # imagectl.toml's order
    with pytest.raises(ConfigError, match="names 'stg', which is not under"):
        PluginSettings(Path("x"), "prd,stg").hosted(cfg)
    single = tmp_path / "imagectl.toml"
    single.write_text(BASE.split("[environments.prd]")[0])
    assert PluginSettings(single, None).hosted(ConfigCache().get(single)) == ("dev",)


def test_config_cache_reads_again_when_the_file_changes(tmp_path):
    path = tmp_path / "imagectl.toml"
    path.write_text(BASE)
    cache = ConfigCache()
    first = cache.get(path)
    assert cache.get(path) is first
    path.write_text(BASE.replace('name = "demo"', 'name = "other"'))
    assert cache.get(path).project_name == "other"
    with pytest.raises(ConfigError, match="cannot be read"):
        cache.get(tmp_path / "missing.toml")


def test_commit_url_is_checked():
    text = BASE
    for bad in ('"https://git.example/commit"', '"ftp://git.example/{commit}"', '"https://user:pw@git.example/{commit}"'):
        with pytest.raises(ConfigError, match="commit_url"):
            config(text=text.replace('name = "demo"', f'name = "demo"\ncommit_url = {bad}'))
    cfg = config(text=text.replace('name = "demo"', 'name = "demo"\ncommit_url = "https://git.example/c/{commit}"'))
    assert cfg.commit_link("a" * 40) == "https://git.example/c/" + "a" * 40 and cfg.commit_link("not a sha") is None
    assert cfg.jira_link("DATA-1") is None  # no [jira] url


def test_the_dag_file_s_params_are_the_operations():
    """The DAG file (a template, so read as source: Airflow is not in this venv) offers exactly the operations, the
    reason is required, and it parses without imagectl (its run then says how to install it)."""
    source = (ROOT / "imagectl/templates/dags/imagectl_ops.py").read_text()
    tree = ast.parse(source)
    actions = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "ACTIONS")
    assert ast.literal_eval(actions.value) == list(ACTIONS)
    assert 'dag_id="imagectl_ops"' in source and "schedule=None" in source and "max_active_runs=1" in source
    assert '"reason": Param("", type="string", minLength=1, maxLength=500' in source
    assert "except ImportError" in source and "triggering_user_name" in source
    assert (ROOT / "dags/imagectl_ops.py").read_text() == source  # dags/ is what init writes (test_init checks them all)


def test_no_roll_back_button_for_the_image_that_runs(stack):
    for n in (1, 2):
        deploy(stack, f"DATA-1-{n}", env="prd")
    ops(stack, "rollback")  # revision 3: DATA-1-1 again
    page = render_page(document(overview(stack, ["prd"])), user="a", can_act=True, urls=URLS, limit=20)
    assert "target=2" in page and "target=1" not in page and "target=3" not in page  # revision 1 is the image that runs
