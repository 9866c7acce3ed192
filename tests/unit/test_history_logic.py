import pytest

from imagectl.commands.history import mark_current
from imagectl.commands.status import rerun_command
from imagectl.errors import AirflowError
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


class RacingEnvironment:
    """The parts of release.Environment that _write_variable uses, with another writer acting after each write."""

    def __init__(self, revisions: list[Revision], race) -> None:
        self.revisions, self.race, self.value, self.writes = revisions, race, None, []
        self.settings = type("S", (), {"variable": "dbt_image"})()
        self.airflow = self
        self.history = self

    def set_variable(self, name: str, value: str, description: str) -> None:
        self.value = value
        self.writes.append(value)
        self.race(self)

    def latest(self) -> Revision:
        return max(self.revisions, key=lambda r: r.revision)

    def variable_value(self) -> str | None:
        return self.value


def test_variable_write_accepts_a_newer_writer_and_overwrites_a_slower_one():
    from imagectl.release import _write_variable

    three, four, two = revision(3, "C"), revision(4, "D"), revision(2, "B")

    def newer(env):  # revision 4 is recorded and written after our write, before our read-back
        if len(env.writes) == 1 and four not in env.revisions:
            env.revisions.append(four)
            env.value = four.reference

    env = RacingEnvironment([two, three], newer)
    assert _write_variable(env, three) == four.reference and env.writes == [three.reference]

    def seen(env):  # revision 4 is recorded but not yet written when we check: we write it ourselves
        if len(env.writes) == 1 and four not in env.revisions:
            env.revisions.append(four)

    env = RacingEnvironment([two, three], seen)
    assert _write_variable(env, three) == four.reference and env.writes == [three.reference, four.reference]

    def slower(env):  # the writer of revision 2 lands its write after ours, once
        if len(env.writes) == 1:
            env.value = two.reference

    env = RacingEnvironment([two, three], slower)
    assert _write_variable(env, three) == three.reference and env.writes == [three.reference, three.reference]

    def stubborn(env):  # something outside imagectl rewrites the Variable every time
        env.value = "elsewhere"

    with pytest.raises(AirflowError, match="reads back as 'elsewhere'"):
        _write_variable(RacingEnvironment([three], stubborn), three)
