"""One renderer: every command returns a typed result, printed here as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from imagectl.commands.build import BuildPlan, BuildResult
from imagectl.commands.registry import RegistryInit
from imagectl.commands.tags import TagDetails, TagList
from imagectl.tag_registry import TagInfo, iso


def render(result: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=False))
        return
    for kind, text in _TEXT.items():
        if isinstance(result, kind):
            click.echo(text(result))
            return
    raise TypeError(f"no text renderer for {type(result).__name__}")  # a programming error, not a user's


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    return "\n".join(lines)


def short_digest(digest: str | None) -> str:
    return digest[:19] if digest else "-"


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return str(size)


def _plan(plan: BuildPlan) -> str:
    lines = [
        f"Plan for {plan.tag} (Jira {plan.jira} from {plan.jira_source}; build {plan.build_number}; "
        f"commit {plan.commit[:12] or '-'} on {plan.branch or 'detached HEAD'})",
        f"Registry {plan.registry} ({plan.registry_kind}, {plan.registry_host}), environment {plan.environment}",
    ]
    for change in plan.repository_changes:
        lines.append(f"  repository {change.repository}: {change.action} ({change.detail})")
    rows = [
        [p.image, p.action, p.reference, p.reason + (f" → {short_digest(p.existing_digest)}" if p.existing_digest else "")]
        for p in plan.images
    ]
    lines.append(table(["IMAGE", "ACTION", "REFERENCE", "WHY"], rows))
    lines.append("Push: " + ("yes" if plan.push else "no (--no-push)"))
    lines.append("Nothing was built or pushed (--dry-run).")
    return "\n".join(lines)


def _build(result: BuildResult) -> str:
    rows = []
    for image in result.images:
        state = "reused" if image.reused else "built"
        state += (
            ", pushed"
            if image.pushed
            else (", already in registry" if image.note == "already pushed" else ("" if image.reused else ", not pushed"))
        )
        rows.append([image.image, image.tag, state, image.digest or "-", image.reference])
    return table(["IMAGE", "TAG", "RESULT", "DIGEST", "REFERENCE"], rows)


def _tag_list(result: TagList) -> str:
    if not result.rows:
        return f"No build tags in registry '{result.registry}' ({result.environment})."
    rows = [
        [
            r.tag,
            r.image,
            short_digest(r.digest),
            iso(r.pushed_at) or "-",
            r.jira or "-",
            r.build_number or "-",
            (r.git_sha or "-")[:12],
            human_size(r.size),
        ]
        for r in result.rows
    ]
    return table(["TAG", "IMAGE", "DIGEST", "PUSHED", "JIRA", "BUILD", "COMMIT", "SIZE"], rows)


def _tag_info(info: TagInfo) -> str:
    lines = [
        f"{info.image}: {info.reference}",
        f"  digest        {info.digest}",
        f"  pushed        {iso(info.pushed_at) or '-'}",
        f"  jira          {info.jira or '-'}",
        f"  build number  {info.build_number or '-'}",
        f"  commit        {info.git_sha or '-'}",
        f"  branch        {info.branch or '-'}",
        f"  size          {human_size(info.size)}",
    ]
    if info.base_digest:
        lines.append(f"  base digest   {info.base_digest}")
    if info.context_hash:
        lines.append(f"  context hash  {info.context_hash}")
    if info.reused_from:
        lines.append(f"  reused from   {info.reused_from} (inputs unchanged, not rebuilt)")
    lines.append(f"  other tags    {', '.join(info.other_tags) or '-'}")
    if info.labels:
        lines.append("  labels")
        lines += [f"    {k}={v}" for k, v in sorted(info.labels.items())]
    return "\n".join(lines)


def _tag_details(result: TagDetails) -> str:
    return "\n".join(_tag_info(i) for i in result.images)


def _registry_init(result: RegistryInit) -> str:
    lines = [f"Registry {result.registry} ({result.kind}) for environment {result.environment}: {', '.join(result.repositories)}"]
    if not result.changes:
        lines.append(
            "  nothing to change: repositories are as imagectl wants them"
            if result.kind == "ecr"
            else "  nothing to do: OCI registries create repositories on first push"
        )
    for change in result.changes:
        lines.append(f"  {'done' if result.applied else 'would'}: {change.action} {change.repository} ({change.detail})")
    if not result.applied:
        lines.append("Nothing was changed (--dry-run).")
    return "\n".join(lines)


_TEXT = {
    BuildPlan: _plan,
    BuildResult: _build,
    TagList: _tag_list,
    TagDetails: _tag_details,
    RegistryInit: _registry_init,
}
