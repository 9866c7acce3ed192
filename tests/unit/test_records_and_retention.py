"""Record artifacts (OCI 1.1, ECR-acceptable) and the retention rules (ECR policy and gc decisions from one source)."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from imagectl.records import BUILD_RECORD, LEGACY_BUILD_RECORD, SEGMENT_LAYER, SEGMENT_RECORD, InvalidRecord, make_record, read_record
from imagectl.registries._base import EMPTY_DESCRIPTOR, EMPTY_DIGEST, Manifest
from imagectl.retention import KEEP_FOREVER, Entry, RetentionConfig, decide, ecr_lifecycle_policy, rules
from tests.fakes import image_manifest


def test_record_is_an_oci_1_1_artifact_ecr_accepts():
    image = image_manifest("a")
    record = make_record(image, {"io.imagectl.jira": "DATA-1"}, BUILD_RECORD)
    doc = record.doc
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json" and doc["artifactType"] == BUILD_RECORD
    assert doc["config"] == EMPTY_DESCRIPTOR and doc["layers"] == [EMPTY_DESCRIPTOR]  # never "layers": []
    assert EMPTY_DESCRIPTOR["size"] == 2 and EMPTY_DIGEST == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert doc["subject"] == {"mediaType": image.media_type, "digest": image.digest, "size": len(image.raw)}
    assert ";" not in json.dumps([doc["mediaType"], doc["artifactType"], doc["config"]["mediaType"]])
    parsed = read_record(record)
    assert (parsed.subject, parsed.annotations, parsed.legacy) == (image.digest, {"io.imagectl.jira": "DATA-1"}, False)
    assert make_record(image, {"io.imagectl.jira": "DATA-1"}, BUILD_RECORD).digest == record.digest  # deterministic bytes


def test_legacy_records_still_read():
    image = image_manifest("b")
    legacy = Manifest.from_bytes(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": LEGACY_BUILD_RECORD,
                "config": image.doc["config"],
                "layers": [],
                "subject": image.descriptor(),
                "annotations": {"k": "v"},
            }
        ).encode()
    )
    parsed = read_record(legacy)
    assert parsed.legacy and parsed.subject == image.digest and parsed.annotations == {"k": "v"}


@pytest.mark.parametrize(
    "doc, why",
    [
        ("[]", "not a JSON object"),
        ('{"artifactType": "application/x"}', "artifactType"),
        (json.dumps({"artifactType": BUILD_RECORD, "subject": "sha256:" + "0" * 64, "layers": []}), "subject is not a descriptor"),
        (json.dumps({"artifactType": BUILD_RECORD, "layers": []}), "has no subject"),
        (
            json.dumps({"artifactType": BUILD_RECORD, "subject": {"digest": "x", "size": 1, "mediaType": "m"}, "layers": []}),
            "no sha256 digest",
        ),
        (json.dumps({"artifactType": BUILD_RECORD, "annotations": {"a": 1}, "layers": []}), "not strings"),
        (json.dumps({"artifactType": SEGMENT_RECORD, "layers": [EMPTY_DESCRIPTOR]}), "JSON lines"),
    ],
)
def test_invalid_records_are_refused_with_a_reason(doc, why):
    with pytest.raises(InvalidRecord, match=why):
        read_record(Manifest(doc.encode(), "application/vnd.oci.image.manifest.v1+json", "sha256:" + "1" * 64))


def test_segment_record():
    layer = {"mediaType": SEGMENT_LAYER, "digest": "sha256:" + "2" * 64, "size": 10}
    parsed = read_record(make_record(None, {"n": "1"}, SEGMENT_RECORD, layer))
    assert parsed.subject is None and parsed.layer == layer


def test_policy_keep_rules_outrank_expiry_rules():
    policy = ecr_lifecycle_policy(RetentionConfig(keep_builds=50, untagged_days=3, build_tag_prefixes=("DATA-",)))
    priorities = [r["rulePriority"] for r in policy["rules"]]
    assert priorities == sorted(priorities) and len(set(priorities)) == len(priorities)
    by = {r["description"]: r["selection"] for r in policy["rules"]}
    assert by["imagectl: keep every image an environment has run"] == {
        "tagStatus": "tagged",
        "tagPrefixList": ["deployed-"],
        "countType": "imageCountMoreThan",
        "countNumber": KEEP_FOREVER,
    }
    assert by["imagectl: keep every 100th history record (the lookup's markers)"]["tagPatternList"] == ["imagectl-history-*00"]
    assert by["imagectl: expire old build images (DATA-…)"] == {
        "tagStatus": "tagged",
        "tagPrefixList": ["DATA-"],
        "countType": "imageCountMoreThan",
        "countNumber": 50,
    }
    # No rule that counts builds selects imagectl's own tags: ECR counts every image a rule selects in its window.
    for prefix in RetentionConfig().build_tag_prefixes:
        assert not any(
            t.startswith(prefix) for t in ("imagectl-build-X", "imagectl-history-prd-000001", "deployed-prd-x", "ctx-1", "v1.0.0")
        )
    assert policy["rules"][-1]["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 3,
    }
    # Every rule has exactly one pattern or prefix: ECR selects images matching *all* of a rule's patterns.
    assert all(len(r["selection"].get("tagPatternList", r["selection"].get("tagPrefixList", [1]))) == 1 for r in policy["rules"])
    assert not any(r.tag_prefix == "deployed-" for r in rules(RetentionConfig(keep_deployed=False)))


def test_decide_keeps_exactly_what_the_policy_keeps():
    now = datetime(2026, 11, 25, tzinfo=timezone.utc)

    def at(i: int) -> datetime:
        return now - timedelta(hours=i)

    entries = [Entry(f"sha256:b{i:063d}", [f"DATA-1-{100 - i}"], at(i)) for i in range(10)]  # 10 builds, newest first
    entries.append(Entry("sha256:" + "d" * 64, ["DATA-1-1", "deployed-prd-dddddddddddd"], at(50)))  # old but deployed
    entries.append(Entry("sha256:" + "e" * 64, ["v1.0.0"], at(60)))
    entries.append(Entry("sha256:" + "f" * 64, [], at(24 * 8)))  # untagged, 8 days
    entries.append(Entry("sha256:" + "9" * 64, ["DATA-1-0"], at(70), protected="prd's Variable points at it"))
    decisions = {d.digest: d for d in decide(entries, RetentionConfig(keep_builds=3, untagged_days=7), now)}
    kept = {d.tags[0] if d.tags else "untagged" for d in decisions.values() if d.keep}
    assert kept == {"DATA-1-100", "DATA-1-99", "DATA-1-98", "DATA-1-1", "v1.0.0", "DATA-1-0"}
    assert decisions["sha256:" + "f" * 64].rule == "imagectl: expire untagged images" and not decisions["sha256:" + "f" * 64].keep
    protected = decisions["sha256:" + "9" * 64]
    assert protected.keep and protected.rule == "prd's Variable points at it" and "the policy would expire it" in protected.notes[0]
    # The deployed image is counted by the build rule (ECR "sees" it) but never expired by it.
    assert decisions["sha256:" + "d" * 64].rule == "imagectl: keep every image an environment has run"
