"""``imagectl tags list`` and ``imagectl tags show``: read the tag registry of an environment's registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagectl.config import IMAGE_NAMES
from imagectl.environment import Environment
from imagectl.errors import NotFoundError
from imagectl.namespaces import deployed_tag
from imagectl.render import Result, human_size, iso, short_digest, table, v
from imagectl.tag_registry import TagInfo, base_of, list_tags, newest_first_key, show_tag


@dataclass
class TagList(Result):
    kind = "tags"

    environment: str
    registry: str
    rows: list[TagInfo]

    def json(self) -> dict[str, Any]:
        return {"environment": self.environment, "registry": self.registry, "tags": [r.json() for r in self.rows]}

    def text(self) -> str:
        if not self.rows:
            return f"No build tags in registry '{self.registry}' ({self.environment})."
        rows = [
            [
                r.tag,
                r.image + (f" (built as {r.reused_from})" if r.reused_from else ""),
                short_digest(r.digest),
                iso(r.pushed_at) or "-",
                r.jira or "-",
                r.build_number or "-",
                (r.git_sha or "-")[:12],
                human_size(r.size),
            ]
            for r in self.rows
        ]
        return table(["TAG", "IMAGE", "DIGEST", "PUSHED", "JIRA", "BUILD", "COMMIT", "SIZE"], rows)


@dataclass
class TagDetails(Result):
    kind = "tag"

    environment: str
    tag: str
    images: list[TagInfo]

    def json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "tag": self.tag,
            "images": [{**i.json(), "labels": i.labels, "other_tags": i.other_tags} for i in self.images],
        }

    def text(self) -> str:
        blocks = []
        for info in self.images:
            lines = [
                f"{info.image}: {v(info.reference)}",
                f"  digest        {info.digest}",
                f"  pushed        {iso(info.pushed_at) or '-'}",
                f"  jira          {info.jira or '-'}",
                f"  build number  {info.build_number or '-'}",
                f"  commit        {v(info.git_sha) or '-'}",
                f"  branch        {v(info.branch) or '-'}",
                f"  size          {human_size(info.size)}",
            ]
            if info.base_digest:
                lines.append(f"  base digest   {info.base_digest}")
            if info.base_tag:
                lines.append(f"  base tag      {v(info.base_tag)}")
            if info.context_hash:
                lines.append(f"  context hash  {v(info.context_hash)}")
            if info.reused_from:
                lines.append(f"  reused from   {v(info.reused_from)} (inputs unchanged, not rebuilt)")
            lines.append(f"  other tags    {', '.join(v(t) for t in info.other_tags) or '-'}")
            if info.labels:
                lines.append("  labels")
                lines += [f"    {v(k)}={v(val)}" for k, val in sorted(info.labels.items())]
            blocks.append("\n".join(lines))
        return "\n".join(blocks)


def tags_list(env: Environment, image: str | None, jira: str | None, limit: int | None) -> TagList:
    registry, config, environment = env.registry, env.config, env.name
    rows: list[TagInfo] = []
    names = [image] if image else list(IMAGE_NAMES)
    base_repo, build_repo = config.images["base"].repository, config.images["build"].repository
    if jira and "base" in names:
        # Which bases did this ticket's builds use: from the builds' records (bases are not tagged per build).
        builds = list_tags(registry, build_repo, "build", jira=jira, limit=limit)
        if "build" in names:
            rows.extend(builds)
        rows.extend(b for b in (base_of(registry, base_repo, build) for build in builds) if b is not None)
    else:
        for name in names:
            rows.extend(list_tags(registry, config.images[name].repository, name, jira=jira, limit=limit))
    rows.sort(key=newest_first_key, reverse=True)
    return TagList(environment, registry.name, rows[:limit] if limit else rows)


def tags_show(env: Environment, tag: str, image: str | None) -> TagDetails:
    registry, config, environment = env.registry, env.config, env.name
    found = []
    build_repo = config.images["build"].repository
    manifest = registry.get_manifest(build_repo, tag)
    deployed = [deployed_tag(name, manifest.digest) for name in config.environments] if manifest else []
    build = show_tag(registry, build_repo, "build", tag, deployed)
    if (image in (None, "build")) and build is not None:
        found.append(build)
    if image in (None, "base"):
        base = show_tag(registry, config.images["base"].repository, "base", tag)
        if base is None and build is not None:
            base = base_of(registry, config.images["base"].repository, build)  # a reused base: from the build's record
        if base is not None:
            found.append(base)
    if not found:
        raise NotFoundError(
            f"tag {tag} is not in registry '{registry.name}' ({environment})",
            f"list what exists with: imagectl tags list --env {environment}",
        )
    return TagDetails(environment, tag, found)
