"""The history's rules, on in-memory registries: claims (atomic and splitter), constant-cost lookups, hostile
records, 0.1.0 records, segments."""

import json
import random
import threading
import uuid

import pytest

from imagectl import report
from imagectl.history import History, Revision, find_last
from imagectl.namespaces import door_tag, history_tag, legacy_base_tag, segment_tag
from imagectl.records import LEGACY_REVISION_RECORD, REVISION_RECORD, make_record
from imagectl.registries._base import Manifest
from tests.fakes import MemoryRegistry, image_manifest

REPO = "dbt-build"


def draft(tag: str, image: Manifest, env: str = "prd", **kw) -> Revision:
    return Revision(
        environment=env,
        revision=0,
        time="2026-11-24T00:00:00Z",
        action=kw.pop("action", "deploy"),
        tag=tag,
        digest=image.digest,
        reference=f"r/x:{tag}@{image.digest}",
        actor="a",
        **kw,
    )


def seed(
    registry: MemoryRegistry, env: str, count: int, start: int = 1, legacy: bool = False, image: Manifest | None = None, cheap: bool = True
) -> Manifest:
    """Write ``count`` revisions straight into the registry, as the format defines (claims included). Below the
    newest 100, only the tags' existence matters to a lookup of the newest 20: they share one placeholder record."""
    image = image or registry.push(REPO, "DATA-1-1", image_manifest("seed"))
    placeholder = make_record(image, {"placeholder": "1"}, REVISION_RECORD)
    for n in range(start, start + count - 100 if cheap else start):
        registry.tags[(REPO, history_tag(env, n))] = placeholder.digest
        if not registry.atomic and not legacy:
            registry.tags[(REPO, door_tag(history_tag(env, n)))] = placeholder.digest
    registry.manifests[(REPO, placeholder.digest)] = placeholder
    for n in range(max(start, start + count - 100) if cheap else start, start + count):
        revision = draft("DATA-1-1", image, env)
        revision.revision = n
        revision.replaces = n - 1 if n > 1 else None  # as every writer records it
        annotations = revision.annotations()
        annotations["io.imagectl.nonce"] = uuid.uuid4().hex
        record = make_record(image, annotations, LEGACY_REVISION_RECORD if legacy else REVISION_RECORD)
        registry._store(REPO, history_tag(env, n), record)
        if not registry.atomic and not legacy:
            registry._store(REPO, door_tag(history_tag(env, n)), record)
    return image


@pytest.mark.parametrize("atomic", [True, False], ids=["ecr-like", "plain-oci"])
def test_appends_are_numbered_and_read_back(atomic):
    registry = MemoryRegistry(atomic=atomic)
    history = History(registry, REPO, "prd")
    images = [registry.push(REPO, f"DATA-1-{n}", image_manifest(str(n))) for n in range(1, 4)]
    got = [history.append(draft(f"DATA-1-{n + 1}", image, release=f"v1.0.{n}"), image) for n, image in enumerate(images)]
    assert [r.revision for r in got] == [1, 2, 3] and [r.replaces for r in got] == [None, 1, 2]
    fresh = History(registry, REPO, "prd").newest(10)
    assert [(r.revision, r.tag, r.release) for r in fresh] == [
        (3, "DATA-1-3", "v1.0.2"),
        (2, "DATA-1-2", "v1.0.1"),
        (1, "DATA-1-1", "v1.0.0"),
    ]
    assert Revision.from_annotations(got[0].annotations(), environment="prd", number=1, subject=images[0].digest) == fresh[-1]


@pytest.mark.parametrize("atomic", [True, False], ids=["ecr-like", "plain-oci"])
def test_concurrent_writers_lose_and_duplicate_nothing(atomic):
    """12 writers × 6 appends each, interleaved at every single read and write: every writer's revision is its
    own, numbers are unique, nothing is lost (slots where nobody won are simply skipped). The real registries
    get 16 processes × several rounds in tests/integration."""
    registry = MemoryRegistry(atomic=atomic, jitter=0.0002)
    image = registry.push(REPO, "DATA-1-1", image_manifest("c"))
    results: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(6):
                me = f"w{w}-{i}"
                revision = History(registry, REPO, "prd").append(draft("DATA-1-1", image, reason=me), image)
                results.append((me, revision.revision))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    numbers = [n for _, n in results]
    assert len(results) == 72 and len(set(numbers)) == 72  # 0 duplicated
    recorded = {r.revision: r.reason for r in History(registry, REPO, "prd").newest(1000)}
    assert all(recorded[n] == me for me, n in results)  # 0 lost: each writer's record is at its own number
    assert set(recorded) == set(numbers)


@pytest.mark.parametrize("atomic, fanout", [(True, 100), (False, 16)], ids=["ecr-like", "plain-oci"])
def test_lookup_cost_is_the_same_at_10_and_100000_revisions(atomic, fanout):
    costs = []
    for count in (10, 1000, 100_000):
        registry = MemoryRegistry(atomic=atomic)
        seed(registry, "prd", count)
        for n in range(30):  # 20 vs 10,000 build tags must not matter either: they are never listed
            registry.push(REPO, f"DATA-9-{n}", image_manifest(f"b{n}"))
        registry.calls.clear()
        newest = History(registry, REPO, "prd").newest(20)
        assert [r.revision for r in newest] == list(range(count, count - 20, -1)) if count >= 20 else list(range(count, 0, -1))
        costs.append(registry.calls["probe"])
    assert costs[0] == costs[1] == costs[2], costs
    assert registry.calls["list"] == 0


def test_find_last_finds_any_prefix_in_a_fixed_number_of_rounds():
    for fanout, levels in ((100, 3), (16, 5)):
        for last in [0, 1, 2, 15, 16, 99, 100, 101, 4095, 65535, 980_000] + random.sample(range(1, 980_000), 30):
            rounds = []

            def exists(numbers, last=last, rounds=rounds):
                rounds.append(len(numbers))
                return {n for n in numbers if n <= last}

            assert find_last(exists, 0, fanout, levels) == last
            assert len(rounds) == levels and max(rounds) == fanout - 1


def test_a_history_beyond_the_levels_widens_once():
    calls = []
    assert find_last(lambda ns: calls.append(1) or {n for n in ns if n <= 1234}, 0, 4, 2) == 1234
    assert len(calls) > 2


def test_hostile_records_are_skipped_never_counted_never_crash(capsys):
    report.start(lambda text: print("warning:", text))
    registry = MemoryRegistry(atomic=True)
    image = seed(registry, "prd", 5)
    # a record at 150 whose subject is a string; a foreign manifest at 99; a record naming another environment at 6
    bad_subject = json.dumps({"artifactType": REVISION_RECORD, "subject": "sha256:x", "layers": []}).encode()
    registry._store(REPO, history_tag("prd", 150), Manifest.from_bytes(bad_subject))
    registry._store(REPO, history_tag("prd", 99), image_manifest("foreign"))
    other = draft("DATA-1-1", image, env="dev")
    other.revision = 6
    registry._store(REPO, history_tag("prd", 6), make_record(image, other.annotations(), REVISION_RECORD))
    history = History(registry, REPO, "prd")
    assert [r.revision for r in history.newest(20)] == [5, 4, 3, 2, 1]
    out = capsys.readouterr().out
    assert "imagectl-history-prd-000099" in out and "imagectl-history-prd-000006" in out and "names environment 'dev'" in out
    appended = history.append(draft("DATA-1-1", image), image)
    assert appended.revision == 7  # the next after the newest valid one, stepping over the occupied slot 6 — not 100
    assert History(registry, REPO, "prd").latest().revision == 7


def test_legacy_records_read_and_numbering_continues_on_plain_oci():
    registry = MemoryRegistry(atomic=False)
    image = seed(registry, "prd", 12, legacy=True)
    history = History(registry, REPO, "prd")
    assert [r.revision for r in history.newest(3)] == [12, 11, 10]
    assert history.append(draft("DATA-1-1", image), image).revision == 13
    assert registry.tags.get((REPO, legacy_base_tag("prd")))  # where 0.1.0's history ends, for the door lookup
    fresh = History(registry, REPO, "prd")
    assert fresh.last_slot() == 13 and [r.revision for r in fresh.newest(20)][:3] == [13, 12, 11]
    assert len(fresh.newest(20)) == 13


def test_segments_keep_every_revision_readable_after_singles_expire():
    registry = MemoryRegistry(atomic=True, retention=True)
    image = registry.push(REPO, "DATA-1-1", image_manifest("s"))
    history = History(registry, REPO, "prd")
    for _ in range(250):
        history.append(draft("DATA-1-1", image), image)
    assert (REPO, segment_tag("prd", 1)) in registry.tags and (REPO, segment_tag("prd", 2)) in registry.tags
    # the lifecycle policy expires old singles but keeps every 100th (the lookup's markers)
    for n in range(1, 201):
        if n % 100:
            registry.tags.pop((REPO, history_tag("prd", n)))
    fresh = History(registry, REPO, "prd")
    everything = fresh.newest(1000)
    assert [r.revision for r in everything] == list(range(250, 0, -1))
    assert fresh.get(42).revision == 42


def test_appending_after_a_0_1_0_history_on_ecr_compacts_it_into_segments():
    registry = MemoryRegistry(atomic=True, retention=True)
    image = seed(registry, "prd", 230, legacy=True, cheap=False)
    History(registry, REPO, "prd").append(draft("DATA-1-1", image), image)
    assert (REPO, segment_tag("prd", 1)) in registry.tags and (REPO, segment_tag("prd", 2)) in registry.tags


def test_a_record_deleted_with_its_image_is_put_back_by_its_writer_or_reported_lost():
    """ECR deletes an image's referrers with it: a gc racing a deploy takes the revision's record along. The
    writer, who alone holds the record's bytes, puts it back; if another change took the freed slot, it says so."""
    from imagectl.errors import ConflictError

    registry = MemoryRegistry(atomic=True)
    history = History(registry, REPO, "dev")
    one, two = (registry.push(REPO, f"DATA-1-{n}", image_manifest(str(n))) for n in (1, 2))
    first = history.append(draft("DATA-1-1", one, "dev"), one)
    assert history.keep_recorded(first.revision) is False  # still there: nothing to do
    del registry.tags[(REPO, history_tag("dev", 1))]  # the cascade
    assert History(registry, REPO, "dev").newest(5) == []
    assert history.keep_recorded(1) is True
    assert [r.tag for r in History(registry, REPO, "dev").newest(5)] == ["DATA-1-1"]

    second = history.append(draft("DATA-1-2", two, "dev"), two)
    del registry.tags[(REPO, history_tag("dev", second.revision))]
    other = History(registry, REPO, "dev").append(draft("DATA-1-1", one, "dev", action="rollback"), one)
    assert other.revision == second.revision  # the freed slot, taken by another change
    with pytest.raises(ConflictError, match="another change has taken its slot"):
        history.keep_recorded(second.revision)
    assert History(registry, REPO, "dev").newest(1)[0].action == "rollback"


@pytest.mark.parametrize("atomic", [True, False], ids=["ecr-like", "plain-oci"])
def test_a_last_slot_seen_by_an_earlier_read_makes_the_next_lookup_one_round(atomic):
    """The Images page keeps each environment's last slot between loads: slots only grow, so it is a lower bound,
    and the lookup probes one round above it; what it finds is what a fresh lookup finds."""
    registry = MemoryRegistry(atomic=atomic)
    image = seed(registry, "prd", 300)
    first = History(registry, REPO, "prd")
    assert first.newest(1)[0].revision == 300
    seen = first.last_seen
    three_more(registry, image)  # more revisions since
    registry.calls.clear()
    fresh = [r.revision for r in History(registry, REPO, "prd").newest(5)]
    full = registry.calls["probe"] + registry.calls["get"]
    registry.calls.clear()
    hinted = History(registry, REPO, "prd")
    hinted.start_from(seen)
    assert [r.revision for r in hinted.newest(5)] == fresh == [303, 302, 301, 300, 299]
    assert registry.calls["probe"] + registry.calls["get"] < full


def three_more(registry: MemoryRegistry, image: Manifest) -> None:
    writer = History(registry, REPO, "prd")
    for _ in range(3):
        writer.append(draft("DATA-1-1", image), image)
