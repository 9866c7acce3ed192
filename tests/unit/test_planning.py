"""Every planning rule of deploy, promote, rollback, freeze, the scan gate and ci, in milliseconds on in-memory
registries and Variables (tests/fakes.py). The wire is tested against real servers in tests/integration."""

import pytest

from imagectl.commands.ci import Ci, CiRequest, environment_for, run_id
from imagectl.commands.deploy import Deploy, DeployRequest
from imagectl.commands.freeze import Freeze, FreezeRequest
from imagectl.commands.history import history, mark_current
from imagectl.commands.promote import Promote, PromoteRequest
from imagectl.commands.rollback import Rollback, RollbackRequest
from imagectl.commands.status import environment_status, rerun_command
from imagectl.errors import AirflowError, ConflictError, FrozenError, InputError, NotFoundError, ScanGateError
from imagectl.history import Revision
from imagectl.progress import Progress
from imagectl.registries._base import ScanReport
from imagectl.rollout import next_release, write_variable
from tests.unit.helpers import Stack, config


class Planned:
    """An action and the plan it made (what the CLI's dry run shows); ``execute`` applies and notifies it."""

    def __init__(self, action):
        self.action, self.plan = action, action.plan()


def execute(planned):
    result = planned.action.apply(planned.plan)
    planned.action.notify(result)
    return result


def deploy(stack, tag, env="dev", **kw):
    kw.setdefault("actor", "me")
    return execute(Planned(Deploy(stack, DeployRequest(env, tag, **kw))))


def promote(stack, tag, **kw):
    args = {"tag": tag, "from_env": "dev", "to_env": "prd", "actor": "me"}
    args.update(kw)
    return Planned(Promote(stack, PromoteRequest(**args)))


def rollback(stack, env="dev", to=None, **kw):
    kw.setdefault("actor", "me")
    return Planned(Rollback(stack, RollbackRequest(env, to, **kw)))


def freeze(stack, env, action, actor, reason):
    return Planned(Freeze(stack, FreezeRequest(env, action, reason=reason, actor=actor)))


def plan_ci(stack, environ, wait):
    stack.environ = environ
    return Ci(stack, CiRequest(wait=wait), Progress(quiet=True)).plan()


@pytest.fixture
def stack():
    s = Stack()
    for n in range(1, 5):
        s.image(f"DATA-1-{n}")
    return s


def test_deploy_new_noop_and_complete(stack):
    first = deploy(stack, "DATA-1-1")
    assert (first.plan.state, first.revision.revision) == ("new", 1)
    assert stack.variables["dev"].value == first.revision.reference and first.revision.reference.endswith("@" + first.revision.digest)
    assert stack.variables["dev"].facts["imagectl:revision"] == "1"
    again = deploy(stack, "DATA-1-1")
    assert again.plan.state == "noop" and again.text() == "dev already runs DATA-1-1 (revision 1); nothing recorded"
    stack.variables["dev"].value = "elsewhere"  # the write of revision 1 never happened (Airflow was down)
    finished = deploy(stack, "DATA-1-1")
    assert (finished.plan.state, finished.revision.revision) == ("complete", 1)
    assert stack.variables["dev"].value == first.revision.reference


def test_deploy_of_a_missing_tag_changes_nothing(stack):
    with pytest.raises(NotFoundError, match="does not exist in registry 'dev'"):
        deploy(stack, "DATA-9-9")
    assert stack.variables["dev"].writes == []


def test_releases_bump_the_highest_version_and_ignore_garbage():
    def rev(n, release):
        return Revision(
            "prd", n, "2026-01-01T00:00:00Z", "promote", "T", "sha256:" + "0" * 64, "r@sha256:" + "0" * 64, "a", release=release
        )

    assert next_release([], "patch") == "v1.0.0"
    history = [rev(3, "v1.0.0"), rev(2, "v1.2.3"), rev(1, "v01.0.0")]  # a rollback to v1.0.0 is newest; v01.0.0 does not parse
    assert next_release(history, "patch") == "v1.2.4"
    assert next_release(history, "minor") == "v1.3.0" and next_release(history, "major") == "v2.0.0"


def test_promote_copies_across_registries_and_releases(stack):
    deploy(stack, "DATA-1-1")
    deploy(stack, "DATA-1-2")
    first = execute(promote(stack, "DATA-1-1"))
    second = execute(promote(stack, "DATA-1-2", reason="weekly"))
    assert (first.revision.release, second.revision.release) == ("v1.0.0", "v1.0.1")
    assert first.copied.blobs_copied == 2 and second.copied.blobs_copied == 2
    prd = stack.registries["prd"]
    assert prd.tags[("dbt-build", "v1.0.1")] == second.revision.digest and prd.tags[("dbt-build", "DATA-1-2")] == second.revision.digest
    assert first.revision.from_environment == "dev"
    # Promoting the same image again records nothing; a rollback keeps the version the image had.
    assert execute(promote(stack, "DATA-1-2")).plan.state == "noop"
    back = execute(rollback(stack, "prd"))
    assert (back.revision.tag, back.revision.release) == ("DATA-1-1", "v1.0.0")


def test_promote_rules(stack):
    with pytest.raises(ConflictError, match="DATA-1-3 has never run in dev"):
        promote(stack, "DATA-1-3")
    forced = promote(stack, "DATA-1-3", force=True, reason="hotfix")
    assert forced.plan.forced == "never ran in dev"
    with pytest.raises(InputError, match="exactly one of"):
        promote(stack, "DATA-1-3", jira="DATA-1")
    with pytest.raises(InputError, match="both 'dev'"):
        promote(stack, "DATA-1-3", to_env="dev")
    deploy(stack, "DATA-1-1")
    deploy(stack, "DATA-1-2")
    assert promote(stack, None, jira="DATA-1").plan.tag == "DATA-1-2"  # the newest build of the ticket dev ran
    with pytest.raises(NotFoundError, match="no build of DATA-7"):
        promote(stack, None, jira="DATA-7")


def test_a_release_version_is_decided_with_its_revision_and_burns_nothing_when_a_step_fails(stack):
    """The version is decided when the revision is claimed and recorded in it; its tag is written after. A drop at the
    history claim burns no version; a drop after the record leaves the version recorded, its tag missing (status
    says so), and the rerun finishes it with the same version."""
    deploy(stack, "DATA-1-1")
    prd = stack.registries["prd"]
    original_claim, original_put = prd.claim_tag, prd.put_manifest

    def drop_at_the_history(repository, tag, manifest):
        if tag.startswith("imagectl-history-"):
            raise ConnectionError("registry dropped")
        return original_claim(repository, tag, manifest)

    prd.claim_tag = drop_at_the_history
    with pytest.raises(ConnectionError):
        execute(promote(stack, "DATA-1-1"))
    prd.claim_tag = original_claim
    status = environment_status(stack.env("prd"))
    assert status.latest is None and status.untagged_release is None and status.agree and not prd.existing("dbt-build", ["v1.0.0"])

    def drop_at_the_version_tag(repository, tag, manifest):
        if tag == "v1.0.0":
            raise ConnectionError("registry dropped")
        return original_put(repository, tag, manifest)

    prd.put_manifest = drop_at_the_version_tag
    with pytest.raises(ConnectionError):
        execute(promote(stack, "DATA-1-1"))
    prd.put_manifest = original_put
    status = environment_status(stack.env("prd"))
    assert status.untagged_release == "v1.0.0" and not status.agree and "imagectl promote DATA-1-1 --from dev --to prd" in status.hint
    rerun = execute(promote(stack, "DATA-1-1"))
    assert rerun.revision.release == "v1.0.0" and rerun.revision.revision == 1 and prd.existing("dbt-build", ["v1.0.0"])
    assert environment_status(stack.env("prd")).agree


def test_rollback_targets(stack):
    for n in (1, 2, 2, 3):
        deploy(stack, f"DATA-1-{n}")
    stack.variables["dev"].value = stack.env("dev").history.latest().reference
    plan = rollback(stack).plan
    assert (plan.tag, plan.state) == ("DATA-1-2", "new")  # the newest earlier revision with another image
    assert rollback(stack, to="1").plan.tag == "DATA-1-1"
    assert rollback(stack, to="DATA-1-4").plan.tag == "DATA-1-4"
    with pytest.raises(NotFoundError, match="dev has no revision 99"):
        rollback(stack, to="99")
    stack.registries["dev"].delete_manifest("dbt-build", stack.env("dev").image("DATA-1-1").digest)
    with pytest.raises(NotFoundError, match="no longer exists in registry 'dev'; nothing was changed"):
        rollback(stack, to="1")


def test_freeze_blocks_deploy_and_promote_not_rollback(stack):
    deploy(stack, "DATA-1-1")
    deploy(stack, "DATA-1-2")
    with pytest.raises(InputError, match="freeze needs --reason"):
        freeze(stack, "dev", "freeze", "oncall", None)
    frozen = execute(freeze(stack, "dev", "freeze", "oncall", "INC-42"))
    assert frozen.revision.action == "freeze" and frozen.revision.frozen and frozen.revision.frozen_by == "oncall"
    assert execute(freeze(stack, "dev", "freeze", "x", "again")).plan.state == "noop"
    with pytest.raises(FrozenError, match="dev is frozen by oncall since .*: INC-42"):
        deploy(stack, "DATA-1-3")
    forced = deploy(stack, "DATA-1-3", force=True, reason="hotfix approved")
    assert forced.revision.forced.startswith("freeze: dev is frozen by oncall") and forced.revision.frozen  # still frozen
    back = execute(rollback(stack))
    assert back.revision.action == "rollback" and back.revision.frozen
    thawed = execute(freeze(stack, "dev", "unfreeze", "oncall", "fixed"))
    assert not thawed.revision.frozen
    assert deploy(stack, "DATA-1-4").revision.frozen is False


def test_rollback_freeze_does_both(stack):
    deploy(stack, "DATA-1-1")
    deploy(stack, "DATA-1-2")
    done = execute(rollback(stack, freeze=True, reason="orders broke"))
    assert (done.revision.tag, done.revision.frozen, done.revision.frozen_reason) == ("DATA-1-1", True, "orders broke")
    assert history(stack.env("dev"), 5).frozen is not None


def test_scan_gate():
    cfg = config('\nmax_severity = "HIGH"\nscan_wait = 0\n')
    stack = Stack(cfg, scanning=True)
    image = stack.image("DATA-1-1")
    deploy(stack, "DATA-1-1")
    dev = stack.registries["dev"]
    dev.scans[image.digest] = ScanReport("COMPLETE", {"CRITICAL": 2, "HIGH": 5}, "https://console/scan", completed=True)
    with pytest.raises(ScanGateError, match="2 CRITICAL finding") as info:
        promote(stack, "DATA-1-1")
    assert "https://console/scan" in info.value.one_line()
    forced = promote(stack, "DATA-1-1", force=True, reason="accepted risk INC-1")
    assert "scan gate" in forced.plan.forced and forced.plan.scan["above"] == {"CRITICAL": 2}
    dev.scans[image.digest] = ScanReport("COMPLETE", {"HIGH": 5, "LOW": 1}, completed=True)
    assert promote(stack, "DATA-1-1").plan.scan["passed"] is True
    dev.scans[image.digest] = ScanReport("IN_PROGRESS")
    with pytest.raises(ScanGateError, match="still in progress"):
        promote(stack, "DATA-1-1")
    no_scans = Stack(cfg)
    no_scans.image("DATA-1-1")
    deploy(no_scans, "DATA-1-1")
    with pytest.raises(ScanGateError, match="does not scan images"):
        promote(no_scans, "DATA-1-1")


def test_shadowed_variable_refuses_before_anything_changes(stack):
    from imagectl.airflow._base import Reach

    def shadowed():
        raise AirflowError("Variable dbt_image is shadowed", "set variable_store")

    stack.variables["dev"].reach = shadowed
    with pytest.raises(AirflowError, match="shadowed"):
        deploy(stack, "DATA-1-1")
    assert stack.env("dev").history.latest() is None and stack.variables["dev"].writes == []
    stack.variables["dev"].reach = lambda: Reach(unverified=["could not check the secrets backend"], delay="cache 60 s")
    done = deploy(stack, "DATA-1-1")
    assert done.plan.reach == ["could not check the secrets backend", "cache 60 s"] and "note: cache 60 s" in done.text()


def test_variable_converges_to_the_newest_revision(stack):
    deploy(stack, "DATA-1-1")
    env = stack.env("dev")
    two = deploy(stack, "DATA-1-2").revision
    three = deploy(stack, "DATA-1-3").revision
    variable = stack.variables["dev"]
    original = variable.write

    def slower_writer_lands_after(value, description, facts, create):  # revision 2's writer writes after revision 3's
        original(value, description, facts, create)
        if len(variable.writes) == 4:
            original(two.reference, "", {}, False)

    variable.write = slower_writer_lands_after
    assert write_variable(env, three, False) == three.reference
    variable.write = lambda *a: original("elsewhere", "", {}, False)
    with pytest.raises(AirflowError, match="reads back as 'elsewhere'"):
        write_variable(env, three, False)


def test_status_and_history_marks(stack):
    deploy(stack, "DATA-1-1")
    deploy(stack, "DATA-1-2")
    ok = environment_status(stack.env("dev"))
    assert ok.agree and ok.latest.revision == 2
    stack.variables["dev"].value = "somewhere/else:latest"
    drift = environment_status(stack.env("dev"))
    assert not drift.agree and drift.hint.endswith("finish it with: imagectl deploy DATA-1-2 --env dev")
    revisions = stack.env("dev").history.newest(5)
    mark_current(revisions, revisions[1].reference, True)
    assert [r.current for r in revisions] == [False, True]
    assert rerun_command(revisions[0]) == "imagectl deploy DATA-1-2 --env dev"


def test_status_flags_a_run_that_rendered_another_image(stack):
    done = deploy(stack, "DATA-1-1")
    run = stack.runs.trigger("dbt_build", "r1", {})
    stack.runs.images[("dbt_build", "r1")] = "dev.example/dbt-build:OLD@sha256:" + "f" * 64
    status = environment_status(stack.env("dev"))
    assert not status.agree and status.last_run.verdict == "ran ANOTHER image than the Variable holds" and "shadow" in status.hint
    stack.runs.images[("dbt_build", "r1")] = done.revision.reference
    assert environment_status(stack.env("dev")).last_run.agrees and run["dag_run_id"] == "r1"


def test_ci_plan_steps_and_frozen_stop():
    cfg = config('\n[ci]\nbranches = { "feature/*" = "dev", main = "prd" }\nbuild_environment = "dev"\nlightdash_dag = false\n')
    stack = Stack(cfg)
    environ = {
        "bamboo_buildNumber": "7",
        "bamboo_planRepository_branchName": "feature/DATA-5-x",
        "bamboo_buildResultKey": "DATA-DBT-7",
        "bamboo_planRepository_revision": "a" * 40,
    }
    plan = plan_ci(stack, environ, wait=True)
    assert [s.step for s in plan.steps] == ["build", "deploy", "trigger"]
    assert plan.tag == "DATA-5-7" and plan.steps[2].run_id == "imagectl__DATA-DBT-7__dbt_build" and plan.steps[2].conf["mode"] == "slim"
    image = stack.image("DATA-5-7")
    from imagectl.namespaces import record_tag
    from imagectl.records import BUILD_RECORD, make_record

    stack.registries["dev"].ensure_empty_blob("dbt-build")
    stack.registries["dev"].push(
        "dbt-build", record_tag("DATA-5-7"), make_record(image, {"org.opencontainers.image.revision": "a" * 40}, BUILD_RECORD)
    )
    deploy(stack, "DATA-5-7")
    execute(freeze(stack, "dev", "freeze", "oncall", "INC-1"))
    frozen = plan_ci(stack, environ, wait=True)
    assert [s.step for s in frozen.steps] == ["build", "stop"] and "frozen by oncall" in frozen.frozen
    # main promotes what dev ran from the same commit (no Jira key needed)
    main = {**environ, "bamboo_planRepository_branchName": "main"}
    promote_plan = plan_ci(stack, main, wait=False)
    assert promote_plan.steps[0].decision.startswith("skipped: dev ran DATA-5-7")


def test_branch_to_environment():
    cfg = config('\n[ci]\nbranches = { dev = "dev", main = "prd", "release/*" = "prd" }\nbuild_environment = "dev"\n')
    assert environment_for(cfg, "dev") == "dev" and environment_for(cfg, "release/2026.11") == "prd"
    assert environment_for(cfg, "feature/DATA-1-x") is None and environment_for(cfg, None) is None
    assert run_id("DATA-DBT-CI-57", "dbt_build") == "imagectl__DATA-DBT-CI-57__dbt_build"
    assert run_id("evil/../x y", "dbt_build") == "imagectl__evil_.._x_y__dbt_build"


def test_the_previous_build_seeds_the_build_time_parse_only_when_the_dockerfile_takes_it(tmp_path):
    """The build image's PREVIOUS_IMAGE, digest-pinned: the ticket's previous build, else the environment's current
    image; none for a Dockerfile that does not declare ARG PREVIOUS_IMAGE (passing it would only warn)."""
    from imagectl.commands.build import previous_build_image
    from imagectl.labels import BuildInfo

    dockerfile = tmp_path / "images/build/Dockerfile"
    dockerfile.parent.mkdir(parents=True)
    dockerfile.write_text("ARG BASE_IMAGE\nARG PREVIOUS_IMAGE=${BASE_IMAGE}\nFROM ${BASE_IMAGE}\n")
    s = Stack(config(path=tmp_path / "imagectl.toml"))
    registry = s.registries["dev"]
    assert previous_build_image(s.config, "dev", registry) is None  # nothing deployed yet
    image = s.image("DATA-1-1")
    deploy(s, "DATA-1-1")
    assert previous_build_image(s.config, "dev", registry) == f"dev.example/dbt-build@{image.digest}"
    assert previous_build_image(s.config, "prd", s.registries["prd"]) is None
    # The ticket's previous build is closer to this build's code than what the environment runs.
    other = s.image("DATA-7-4")
    info = BuildInfo("DATA-7-6", "DATA-7", 6, "c" * 40, "feature/DATA-7", None, "2026-11-25T00:00:00Z", "demo")
    assert previous_build_image(s.config, "dev", registry, info) == f"dev.example/dbt-build@{other.digest}"
    far = BuildInfo("DATA-7-9", "DATA-7", 9, "c" * 40, "feature/DATA-7", None, "2026-11-25T00:00:00Z", "demo")
    assert previous_build_image(s.config, "dev", registry, far) == f"dev.example/dbt-build@{image.digest}"  # 3 back at most
    dockerfile.write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    assert previous_build_image(s.config, "dev", registry) is None


def test_a_ci_build_seeds_its_dbt_parse_from_the_ticket_s_previous_build(tmp_path, monkeypatch):
    """ci builds with the same action as build: the build image's PREVIOUS_IMAGE is the ticket's previous build
    (0.2.0's ci passed no build info, so it fell back to the environment's image)."""
    import imagectl.commands.build as build_module

    for path in ("images/base/Dockerfile", "images/build/Dockerfile"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("ARG BASE_IMAGE\nARG PREVIOUS_IMAGE=${BASE_IMAGE}\nFROM ${BASE_IMAGE}\n")
    cfg = config(
        '\n[ci]\nbranches = { "feature/*" = "dev" }\nbuild_environment = "dev"\nlightdash_dag = false\n', path=tmp_path / "imagectl.toml"
    )
    stack = Stack(cfg)
    deployed = stack.image("DATA-9-1")  # what dev runs
    deploy(stack, "DATA-9-1")
    previous = stack.image("DATA-5-6")  # the ticket's previous build
    built = []

    def fake_apply_build(config, plan, docker, progress, registry):
        built.append(plan)
        stack.image(plan.tag)
        return build_module.BuildResult(images=[], plan=plan)

    monkeypatch.setattr(build_module, "apply_build", fake_apply_build)
    monkeypatch.setattr("imagectl.adapters.docker_engine.DockerEngine", lambda: None)  # (a unit test needs no engine)
    environ = {
        "bamboo_buildNumber": "7",
        "bamboo_planRepository_branchName": "feature/DATA-5-x",
        "bamboo_buildResultKey": "DATA-DBT-7",
        "bamboo_planRepository_revision": "b" * 40,
    }
    ci = Ci(stack, CiRequest(), Progress(quiet=True))
    stack.environ = environ
    result = ci.apply(ci.plan())
    assert [p.tag for p in built] == ["DATA-5-7"]
    assert built[0].previous_image == f"dev.example/dbt-build@{previous.digest}" != f"dev.example/dbt-build@{deployed.digest}"
    assert result.release.revision.tag == "DATA-5-7"
