"""What is kept, in one set of rules (pure): the ECR lifecycle policy and ``imagectl gc`` both come from here.

The rules follow ECR's lifecycle-policy semantics, so that gc on any registry decides what ECR would
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html):
- rules are applied in priority order, lowest first;
- a rule selects the tagged images that have a tag matching its one prefix or wildcard pattern (a rule with
  several patterns selects only images matching all of them, so imagectl never uses more than one per rule);
- a count rule expires the selected images beyond the newest N, by push time; an image selected by a
  higher-priority rule is never expired by a lower one ("keep" rules are count rules with a count no
  repository reaches), though lower rules still count it;
- untagged images expire some days after their push.

gc adds protections no lifecycle policy can express (what any environment's Variable points at, the bases
of kept build images, history and its segments), so it may keep more than the policy, never less.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from imagectl import namespaces as ns
from imagectl.wildcards import ecr_wildcard

KEEP_FOREVER = 1_000_000  # above any images-per-repository quota ECR grants, so the rule never expires anything


@dataclass(frozen=True)
class RetentionConfig:
    keep_builds: int = 200  # build images (and their records) kept, newest first
    keep_deployed: bool = True  # every image an environment ran, and release versions
    keep_bases: int = 10  # base images (ctx-…) kept, newest first
    keep_history_records: int = 1000  # single history records kept on ECR (older ones live in segments)
    untagged_days: int = 7
    # Build tags start with a Jira project key; imagectl's own tags never start with an upper-case letter. One count
    # rule per prefix ([jira] projects, else every letter), because ECR counts, in a rule's window, every image its
    # selection matches — a "*-*" rule would count records and history too and keep far fewer builds than asked.
    build_tag_prefixes: tuple[str, ...] = tuple(f"{chr(c)}" for c in range(ord("A"), ord("Z") + 1))


@dataclass(frozen=True)
class Rule:
    priority: int
    description: str
    tag_prefix: str | None = None
    tag_pattern: str | None = None
    untagged: bool = False
    keep: int | None = None  # count rules: the newest `keep` selected images are kept
    days: int | None = None  # untagged rule: expire after `days`

    def selects(self, tags: Iterable[str]) -> bool:
        tags = list(tags)
        if self.untagged:
            return not tags
        if self.tag_prefix is not None:
            return any(t.startswith(self.tag_prefix) for t in tags)
        if self.tag_pattern is not None:
            return any(ecr_wildcard(self.tag_pattern, t) for t in tags)
        return False

    def ecr(self) -> dict[str, Any]:
        if self.untagged:
            selection: dict[str, Any] = {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": self.days,
            }
        else:
            key = "tagPrefixList" if self.tag_prefix is not None else "tagPatternList"
            value = self.tag_prefix if self.tag_prefix is not None else self.tag_pattern
            selection = {"tagStatus": "tagged", key: [value], "countType": "imageCountMoreThan", "countNumber": self.keep}
        return {"rulePriority": self.priority, "description": self.description, "selection": selection, "action": {"type": "expire"}}


def rules(config: RetentionConfig) -> list[Rule]:
    out = []
    if config.keep_deployed:
        out.append(Rule(1, "imagectl: keep every image an environment has run", tag_prefix=ns.DEPLOYED_PREFIX, keep=KEEP_FOREVER))
        out.append(Rule(2, "imagectl: keep release versions", tag_pattern="v*.*.*", keep=KEEP_FOREVER))
    out += [
        Rule(
            3,
            f"imagectl: keep every {ns.SEGMENT_SIZE}th history record (the lookup's markers)",
            tag_pattern=ns.marker_pattern(),
            keep=KEEP_FOREVER,
        ),
        Rule(4, "imagectl: keep history segments", tag_prefix=ns.SEGMENT_PREFIX, keep=KEEP_FOREVER),
        Rule(
            5,
            "imagectl: keep the newest single history records (older ones are in segments)",
            tag_prefix=ns.HISTORY_PREFIX,
            keep=config.keep_history_records,
        ),
        Rule(
            6,
            "imagectl: keep every rejection (an image refused by an environment, and its lifting)",
            tag_prefix=ns.REJECTION_PREFIX,
            keep=KEEP_FOREVER,
        ),
        Rule(7, "imagectl: keep the newest verification verdicts", tag_prefix=ns.VERDICT_PREFIX, keep=config.keep_history_records),
        Rule(
            9, "imagectl: keep the records of the newest base images", tag_prefix=ns.record_tag(ns.CONTEXT_PREFIX), keep=config.keep_bases
        ),
        Rule(10, "imagectl: expire old build records", tag_prefix=ns.RECORD_PREFIX, keep=config.keep_builds),
        Rule(11, "imagectl: keep the newest base images", tag_prefix=ns.CONTEXT_PREFIX, keep=config.keep_bases),
    ]
    for offset, prefix in enumerate(config.build_tag_prefixes):
        out.append(Rule(20 + offset, f"imagectl: expire old build images ({prefix}…)", tag_prefix=prefix, keep=config.keep_builds))
    out.append(Rule(100, "imagectl: expire untagged images", untagged=True, days=config.untagged_days))
    return out


def ecr_lifecycle_policy(config: RetentionConfig) -> dict[str, Any]:
    return {"rules": [rule.ecr() for rule in rules(config)]}


@dataclass
class Entry:
    """One image in a repository, as gc sees it."""

    digest: str
    tags: list[str]
    pushed_at: datetime | None
    protected: str | None = None  # why gc must keep it whatever the rules say (None: the rules decide)
    order: int = 0  # breaks ties between equal push times (the build number: it only grows)


@dataclass
class Decision:
    digest: str
    tags: list[str]
    keep: bool
    rule: str  # the rule (or protection) that decided
    pushed_at: datetime | None = None
    notes: list[str] = field(default_factory=list)


def decide(entries: list[Entry], config: RetentionConfig, now: datetime | None = None) -> list[Decision]:
    """What the rules keep and expire, per image, in the order of ``entries``."""
    now = now or datetime.now(timezone.utc)
    oldest = datetime.min.replace(tzinfo=timezone.utc)

    def pushed(entry: Entry) -> tuple[datetime, int]:
        moment = entry.pushed_at or oldest
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc), entry.order)

    decided: dict[str, Decision] = {}
    matched: set[str] = set()  # selected by a higher-priority rule: no lower rule may expire it
    for rule in rules(config):
        selected = sorted((e for e in entries if rule.selects(e.tags)), key=pushed, reverse=True)
        for position, entry in enumerate(selected):
            if entry.digest in matched:
                continue
            if rule.untagged:
                expire = rule.days is not None and now - pushed(entry)[0] > timedelta(days=rule.days)
            else:
                expire = rule.keep is not None and position >= rule.keep
            decided[entry.digest] = Decision(entry.digest, entry.tags, not expire, rule.description, entry.pushed_at)
        matched.update(e.digest for e in selected)
    out = []
    for entry in entries:
        decision = decided.get(entry.digest) or Decision(entry.digest, entry.tags, True, "no rule selects it", entry.pushed_at)
        if not decision.keep and entry.protected:
            decision.notes.append(f"the policy would expire it ({decision.rule})")
            decision.keep, decision.rule = True, entry.protected
        out.append(decision)
    return out
