"""The ECR lifecycle policy imagectl puts on its repositories (pure: builds the JSON document).

ECR evaluates rules by priority and an image matched by a higher-priority rule can never be expired by a lower
one, so "keep" rules are expire-rules with a count no repository reaches. Tag namespaces (see tagging.py):
- ``deployed-<env>-<revision>``: every image an environment ever ran (kept while keep_deployed is on);
- ``v<major>.<minor>.<patch>``: release versions (kept with deployed images);
- ``imagectl-history-…``: the deployment history records (always kept; they are tiny);
- ``imagectl-build-…``: per-tag build records (expire with the builds they describe);
- ``<JIRA-KEY>-<BUILD>`` and ``ctx-<hash>``: build tags, the newest ``keep_builds`` kept;
- untagged: expired after ``untagged_days``.
"""

from __future__ import annotations

import json
from typing import Any

from imagectl.config import LifecycleConfig
from imagectl.tagging import DEPLOYED_TAG_PREFIX, HISTORY_TAG_PREFIX, RECORD_TAG_PREFIX

KEEP_FOREVER = 100000  # above ECR's per-repository image quota, so the rule never expires anything


def _rule(priority: int, description: str, selection: dict[str, Any]) -> dict[str, Any]:
    return {"rulePriority": priority, "description": description, "selection": selection, "action": {"type": "expire"}}


def _count(tag_key: str, tags: list[str], count: int) -> dict[str, Any]:
    return {"tagStatus": "tagged", tag_key: tags, "countType": "imageCountMoreThan", "countNumber": count}


def lifecycle_policy(config: LifecycleConfig) -> dict[str, Any]:
    rules = []
    if config.keep_deployed:
        rules.append(
            _rule(1, "imagectl: keep every image an environment has run", _count("tagPrefixList", [DEPLOYED_TAG_PREFIX], KEEP_FOREVER))
        )
        rules.append(_rule(2, "imagectl: keep release versions", _count("tagPatternList", ["v*.*.*"], KEEP_FOREVER)))
    rules.append(_rule(3, "imagectl: keep deployment history records", _count("tagPrefixList", [HISTORY_TAG_PREFIX], KEEP_FOREVER)))
    rules.append(_rule(10, "imagectl: expire old build records", _count("tagPrefixList", [RECORD_TAG_PREFIX], config.keep_builds)))
    rules.append(_rule(20, "imagectl: expire old build images", _count("tagPatternList", ["*-*"], config.keep_builds)))
    rules.append(
        _rule(
            30,
            "imagectl: expire untagged images",
            {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": config.untagged_days},
        )
    )
    return {"rules": rules}


def policy_text(config: LifecycleConfig) -> str:
    return json.dumps(lifecycle_policy(config), sort_keys=True, separators=(",", ":"))
