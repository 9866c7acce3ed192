"""Deploys that verify themselves (issue 24), on in-memory registries, Variables and DAG runs: the verdict is a
record of its own; a failure rejects the image and rolls back to the newest *verified* revision; rejected images
are refused until lifted; the exit code tells the outcomes apart. The real thing (a dbt run that fails in a real
Airflow) is tests/integration/test_pipeline.py; Jira's side is tests/integration/test_jira.py."""

from __future__ import annotations

import pytest

from imagectl import report
from imagectl.commands.deploy import Deploy, DeployRequest
from imagectl.commands.history import history
from imagectl.commands.reject import Reject, RejectRequest
from imagectl.commands.status import environment_status
from imagectl.commands.verify import Verify, VerifyRequest
from imagectl.errors import Exit, RejectedError
from tests.unit.helpers import Stack, config
from tests.unit.test_planning import Planned, execute, promote

FAILING: set[str] = set()


@pytest.fixture
def stack():
    report.start(lambda text: None)
    s = Stack(config("\n[environments.dev.verify]\ntimeout = 60\n"))
    for n in range(1, 6):
        s.image(f"DATA-1-{n}")
        s.image(f"DATA-1-{n}", env="prd")

    def run(dag_id, run_id, conf):
        rendered = s.variables["dev"].value
        return ("failed" if any(rendered and rendered.split("@")[0].endswith(t) for t in FAILING) else "success"), rendered

    s.runs.on_trigger = run
    FAILING.clear()
    yield s
    FAILING.clear()


def deploy(stack, tag, verify=None, **kw):
    return execute(Planned(Deploy(stack, DeployRequest("dev", tag, actor="me", verify=verify, **kw))))


def test_a_verified_deploy_records_its_verdict(stack):
    result = deploy(stack, "DATA-1-1", verify=True)
    assert result.exit_code() == Exit.OK and result.verification.verdict.verified
    assert result.verification.verdict.run_id == "imagectl__verify-dev-1__dbt_build"
    view = history(stack.env("dev"), 10)
    assert view._verified(view.revisions[0]) == "yes" and view.json()["revisions"][0]["verification"]["result"] == "verified"
    assert environment_status(stack.env("dev")).verification.verified
    again = execute(Planned(Verify(stack, VerifyRequest("dev"))))
    assert again.reused and again.verdict.verified  # read back, not run again


def test_a_failed_verification_rejects_and_rolls_back_to_the_newest_verified_revision(stack):
    deploy(stack, "DATA-1-1", verify=True)  # revision 1, verified
    deploy(stack, "DATA-1-2")  # revision 2, never verified: not a rollback target
    FAILING.add("DATA-1-3")
    result = deploy(stack, "DATA-1-3", verify=True)  # revision 3 fails
    check = result.verification
    assert result.exit_code() == Exit.VERIFY_ROLLED_BACK and not check.verdict.verified
    assert check.rollback_target.revision == 1 and check.rollback.revision.tag == "DATA-1-1"
    back = check.rollback.revision
    assert back.action == "rollback" and "verification of revision 3 failed" in back.reason and back.revision == 4
    assert stack.variables["dev"].value.split("@")[0].endswith("DATA-1-1")
    assert check.rejection is not None and check.rejection.revision == 3
    with pytest.raises(RejectedError, match="rejected in dev"):
        deploy(stack, "DATA-1-3")
    forced = deploy(stack, "DATA-1-3", force=True, reason="the warehouse was down, not the image")
    assert "rejected" in forced.revision.forced
    view = history(stack.env("dev"), 10)
    assert "DATA-1-3 is rejected in dev" in view.text() and view.json()["revisions"][2]["verification"]["result"] == "failed"


def test_with_no_verified_revision_the_failure_is_not_rolled_back_and_says_so(stack):
    deploy(stack, "DATA-1-1")
    FAILING.add("DATA-1-2")
    result = deploy(stack, "DATA-1-2", verify=True)
    assert result.exit_code() == Exit.VERIFY_NOT_ROLLED_BACK
    assert "no verified revision" in result.verification.rollback_error and result.verification.rejection is not None
    assert stack.variables["dev"].value.split("@")[0].endswith("DATA-1-2")  # left where it is, for a person to decide


def test_an_environment_that_only_reports_changes_nothing_on_failure():
    report.start(lambda text: None)
    s = Stack(config('\n[environments.dev.verify]\non_failure = "report"\ndefault = true\n'))
    s.image("DATA-1-1")
    s.runs.on_trigger = lambda dag, run, conf: ("failed", s.variables["dev"].value)
    result = execute(Planned(Deploy(s, DeployRequest("dev", "DATA-1-1", actor="me"))))  # verified by default
    assert result.exit_code() == Exit.VERIFY_FAILED and result.verification.rejection is None and result.verification.rollback is None


def test_a_run_of_another_image_fails_the_verification(stack):
    deploy(stack, "DATA-1-1", verify=True)
    stack.runs.on_trigger = lambda dag, run, conf: ("success", "elsewhere/x@sha256:" + "0" * 64)  # a shadowing backend
    result = deploy(stack, "DATA-1-2", verify=True)
    assert not result.verification.verdict.verified and "rendered elsewhere/x" in result.verification.verdict.detail
    assert result.exit_code() == Exit.VERIFY_ROLLED_BACK


def test_a_run_that_rendered_a_newer_revision_supersedes_instead_of_judging(stack):
    deploy(stack, "DATA-1-1")
    planned = Planned(Deploy(stack, DeployRequest("dev", "DATA-1-2", actor="me", verify=True)))

    def newer_lands_first(dag, run, conf):
        deploy(stack, "DATA-1-3")  # someone deploys while the run starts
        return "success", stack.variables["dev"].value

    stack.runs.on_trigger = newer_lands_first
    result = execute(planned)
    assert result.verification.superseded_by == 3 and result.verification.verdict is None and result.exit_code() == Exit.OK


def test_reject_and_unreject_by_hand_append_records(stack):
    deploy(stack, "DATA-1-1")
    done = execute(Planned(Reject(stack, RejectRequest("dev", "DATA-1-2", "reject", "INC-9", actor="oncall"))))
    assert done.record.number == 1 and done.record.rejected
    again = execute(Planned(Reject(stack, RejectRequest("dev", "DATA-1-2", "reject", "INC-9", actor="oncall"))))
    assert again.record is None and "already rejected" in again.text()
    with pytest.raises(RejectedError):
        deploy(stack, "DATA-1-2")
    lifted = execute(Planned(Reject(stack, RejectRequest("dev", "DATA-1-2", "lift", "not the image", actor="oncall"))))
    assert lifted.record.number == 2 and not lifted.record.rejected
    assert deploy(stack, "DATA-1-2").revision.tag == "DATA-1-2"


def test_a_rejected_image_in_dev_is_not_promoted(stack):
    deploy(stack, "DATA-1-1")
    execute(Planned(Reject(stack, RejectRequest("dev", "DATA-1-1", "reject", "failed in dev", actor="oncall"))))
    with pytest.raises(RejectedError):
        promote(stack, "DATA-1-1")


def test_a_deploy_claimed_after_its_image_was_rejected_refuses(stack):
    deploy(stack, "DATA-1-1")
    planned = Planned(Deploy(stack, DeployRequest("dev", "DATA-1-2", actor="me")))  # planned before the rejection
    execute(Planned(Reject(stack, RejectRequest("dev", "DATA-1-2", "reject", "INC-9", actor="oncall"))))
    with pytest.raises(RejectedError, match="nothing was recorded"):
        execute(planned)
    assert [r.tag for r in history(stack.env("dev"), 10).revisions] == ["DATA-1-1"]


def test_a_forged_rejection_can_only_refuse(stack):
    from imagectl.namespaces import rejection_tag
    from imagectl.records import REJECTION_RECORD, make_record

    deploy(stack, "DATA-1-1")
    registry = stack.registries["dev"]
    image = registry.get_manifest("dbt-build", "DATA-1-2")
    junk = make_record(image, {"io.imagectl.rejection.environment": "prd"}, REJECTION_RECORD)  # invalid for dev
    registry.ensure_empty_blob("dbt-build")
    registry.push("dbt-build", rejection_tag("dev", image.digest, 1), junk)
    assert deploy(stack, "DATA-1-2").revision.tag == "DATA-1-2"  # an invalid record does not reject


def test_by_schedule_waits_for_the_first_run_that_started_after_the_deploy(stack):
    import threading

    deploy(stack, "DATA-1-1")
    revision = history(stack.env("dev"), 1).revisions[0]
    runs = stack.runs
    runs.runs[("dbt_build", "scheduled__before")] = {
        "dag_run_id": "scheduled__before",
        "state": "success",
        "start_date": "2000-01-01T08:00:00Z",
    }
    runs.images[("dbt_build", "scheduled__before")] = "old/image@sha256:" + "1" * 64  # predates the deploy: not judged

    def the_next_morning():
        runs.runs[("dbt_build", "scheduled__next")] = {
            "dag_run_id": "scheduled__next",
            "state": "success",
            "start_date": "2099-01-01T08:00:00Z",
        }
        runs.images[("dbt_build", "scheduled__next")] = stack.variables["dev"].value

    threading.Timer(0.2, the_next_morning).start()
    result = execute(Planned(Verify(stack, VerifyRequest("dev", by="schedule"), poll=0.05)))
    assert result.verdict.verified and result.verdict.run_id == "scheduled__next" and result.revision.revision == revision.revision
