from imagectl.commands.history import mark_current
from imagectl.commands.status import rerun_command
from imagectl.history import Revision, deployed_tag, history_tag


def revision(n: int, tag: str, **kw) -> Revision:
    return Revision(
        environment="prd",
        revision=n,
        time="2026-11-24T00:00:00Z",
        action=kw.pop("action", "deploy"),
        tag=tag,
        digest=f"sha256:{n:064x}",
        reference=f"r/x:{tag}@sha256:{n:064x}",
        actor="a",
        **kw,
    )


def test_revision_annotations_round_trip():
    original = revision(42, "DATA-1-2", reason="weekly release", release="v1.4.0", replaces=41, from_environment="dev", git_sha="ab" * 20)
    assert Revision.from_annotations(original.annotations()) == original
    assert Revision.from_annotations({"io.imagectl.history.revision": "x"}) is None
    assert history_tag("prd", 42) == "imagectl-history-prd-000042" and deployed_tag("prd", 7) == "deployed-prd-000007"


def test_current_is_the_revision_the_variable_holds():
    revs = [revision(3, "C"), revision(2, "B"), revision(1, "A")]
    mark_current(revs, revs[1].reference, variable_known=True)
    assert [r.current for r in revs] == [False, True, False]
    mark_current(revs, "elsewhere", variable_known=True)
    assert not any(r.current for r in revs)
    mark_current(revs, None, variable_known=False)  # Airflow unreadable: the latest is marked
    assert [r.current for r in revs] == [True, False, False]


def test_rerun_command_finishes_the_revision():
    assert rerun_command(revision(5, "DATA-1-2")) == "imagectl deploy DATA-1-2 --env prd"
    assert (
        rerun_command(revision(5, "DATA-1-2", action="promote", from_environment="dev")) == "imagectl promote DATA-1-2 --from dev --to prd"
    )
    assert rerun_command(revision(5, "DATA-1-1", action="rollback")) == "imagectl rollback --env prd --to DATA-1-1"
