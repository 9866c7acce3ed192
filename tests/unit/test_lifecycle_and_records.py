import json

from imagectl.config import LifecycleConfig
from imagectl.lifecycle import KEEP_FOREVER, lifecycle_policy
from imagectl.records import make_record, read_record
from imagectl.registries import Manifest


def test_keep_rules_outrank_expiry_rules():
    rules = lifecycle_policy(LifecycleConfig(keep_builds=50, keep_deployed=True, untagged_days=3))["rules"]
    priorities = [r["rulePriority"] for r in rules]
    assert priorities == sorted(priorities) and len(set(priorities)) == len(priorities)
    by_desc = {r["description"]: r for r in rules}
    deployed = by_desc["imagectl: keep every image an environment has run"]["selection"]
    builds = by_desc["imagectl: expire old build images"]["selection"]
    assert deployed == {
        "tagStatus": "tagged",
        "tagPrefixList": ["deployed-"],
        "countType": "imageCountMoreThan",
        "countNumber": KEEP_FOREVER,
    }
    assert builds["tagPatternList"] == ["*-*"] and builds["countNumber"] == 50
    assert deployed and rules[0]["rulePriority"] < next(r for r in rules if r["selection"].get("tagPatternList") == ["*-*"])["rulePriority"]
    assert rules[-1]["selection"] == {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3}


def test_deployed_images_can_be_left_to_expire():
    rules = lifecycle_policy(LifecycleConfig(keep_deployed=False))["rules"]
    assert not any(r["selection"].get("tagPrefixList") == ["deployed-"] for r in rules)


def test_record_round_trip():
    image = Manifest.from_bytes(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 10, "digest": "sha256:" + "a" * 64},
                "layers": [{"mediaType": "x", "size": 5, "digest": "sha256:" + "b" * 64}],
            }
        ).encode()
    )
    record = make_record(image, {"io.imagectl.jira": "DATA-1"})
    subject, annotations = read_record(record)
    assert subject == image.digest
    assert annotations == {"io.imagectl.jira": "DATA-1"}
    assert record.doc["config"] == image.doc["config"] and record.doc["layers"] == []
    assert read_record(image) == (None, {})
    assert make_record(image, {"io.imagectl.jira": "DATA-1"}).digest == record.digest  # deterministic bytes
