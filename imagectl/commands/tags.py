"""``imagectl tags list`` and ``imagectl tags show``: read the tag registry of an environment's registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagectl.config import IMAGE_NAMES, Config
from imagectl.errors import NotFoundError
from imagectl.registries import Registry, open_registry
from imagectl.tag_registry import TagInfo, list_tags, newest_first_key, show_tag


@dataclass
class TagList:
    environment: str
    registry: str
    rows: list[TagInfo]

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.rows]


@dataclass
class TagDetails:
    environment: str
    tag: str
    images: list[TagInfo]

    def to_json(self) -> list[dict[str, Any]]:
        return [{**i.to_json(), "labels": i.labels, "other_tags": i.other_tags} for i in self.images]


def tags_list(
    config: Config, environment: str, image: str | None, jira: str | None, limit: int | None, registry: Registry | None = None
) -> TagList:
    registry = registry or open_registry(config.registry_for(environment))
    rows: list[TagInfo] = []
    for name in [image] if image else list(IMAGE_NAMES):
        rows.extend(list_tags(registry, config.images[name].repository, name, jira=jira, limit=limit))
    rows.sort(key=newest_first_key, reverse=True)
    return TagList(environment, registry.name, rows[:limit] if limit else rows)


def tags_show(config: Config, environment: str, tag: str, image: str | None, registry: Registry | None = None) -> TagDetails:
    registry = registry or open_registry(config.registry_for(environment))
    found = []
    for name in [image] if image else list(IMAGE_NAMES):
        info = show_tag(registry, config.images[name].repository, name, tag)
        if info is not None:
            found.append(info)
    if not found:
        raise NotFoundError(
            f"tag {tag} is not in registry '{registry.name}' ({environment})",
            f"list what exists with: imagectl tags list --env {environment}",
        )
    return TagDetails(environment, tag, found)
