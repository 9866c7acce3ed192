"""One renderer: every command returns a typed result, printed here as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from imagectl.commands.build import BuildPlan, BuildResult
from imagectl.commands.ci import CiPlan, CiResult
from imagectl.commands.history import HistoryView
from imagectl.commands.registry import RegistryInit
from imagectl.commands.status import StatusView
from imagectl.commands.tags import TagDetails, TagList
from imagectl.commands.trigger import TriggerResult
from imagectl.release import ReleasePlan, ReleaseResult
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


def _release_plan(plan: ReleasePlan) -> str:
    lines = [f"Plan: {plan.action} {plan.tag} to {plan.environment} ({plan.why})"]
    if plan.from_environment:
        lines.append(
            f"  from            {plan.from_environment}"
            + (f" (copy from registry {plan.copy_from_registry})" if plan.copy_from_registry else "")
        )
    lines.append(f"  image           {plan.reference}")
    if plan.release:
        lines.append(f"  release         {plan.release}{' (new)' if plan.release_is_new else ''}")
    lines.append(f"  Variable        {plan.variable} = {plan.variable_value or '(not set)'}")
    if plan.current:
        lines.append(f"  current         revision {plan.current.revision}: {plan.current.tag}")
    lines.append(f"  actor, reason   {plan.actor}, {plan.reason or '-'}")
    if plan.confirm_required and plan.state != "noop":
        lines.append(f"  {plan.environment} asks for confirmation (--yes to skip)")
    lines.append("Nothing was changed (--dry-run).")
    return "\n".join(lines)


def _release_result(result: ReleaseResult) -> str:
    plan, revision = result.plan, result.revision
    if plan.state == "noop":
        return plan.why
    assert revision is not None
    head = "finished" if plan.state == "complete" else "recorded"
    lines = [
        f"{plan.environment}: revision {revision.revision} {head} — {revision.action} {revision.tag}"
        + (f" ({revision.release})" if revision.release else ""),
        f"  Variable {plan.variable} = {result.variable_value}",
    ]
    if result.copied:
        c = result.copied
        copied = f"{c.blobs_copied} blobs, {human_size(c.bytes_copied)} ({c.blobs_present} already there)"
        lines.append(f"  copied from {plan.copy_from_registry}: {copied}")
    return "\n".join(lines)


def _history(view: HistoryView) -> str:
    if not view.revisions:
        return f"{view.environment} has no revisions yet."
    rows = [
        ["*" if r.current else "", r.revision, r.time, r.action, r.tag, r.release or "-", short_digest(r.digest), r.actor, r.reason or "-"]
        for r in view.revisions
    ]
    text = table(["", "REV", "TIME", "ACTION", "TAG", "RELEASE", "DIGEST", "ACTOR", "REASON"], rows)
    if view.variable_error:
        text += f"\n(Variable unreadable, latest revision marked: {view.variable_error})"
    elif not any(r.current for r in view.revisions):
        text += f"\n(the Variable holds none of these: {view.variable_value or 'not set'})"
    return text


def _status(view: StatusView) -> str:
    blocks = []
    for e in view.environments:
        latest = (
            f"revision {e.latest.revision}: {e.latest.tag}" + (f" ({e.latest.release})" if e.latest.release else "") if e.latest else "none"
        )
        lines = [
            f"{e.environment}: {'ok' if e.agree else 'DRIFT' if not e.variable_error else 'UNKNOWN'}",
            f"  Variable  {e.variable} = {e.variable_value or '(not set)'}",
            f"  latest    {latest}",
        ]
        if e.latest:
            lines.append(
                f"            {e.latest.action} by {e.latest.actor} at {e.latest.time}"
                + (f" — {e.latest.reason}" if e.latest.reason else "")
            )
        if e.variable_error:
            lines.append(f"  error     {e.variable_error}")
        if e.hint:
            lines.append(f"  to do     {e.hint}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _trigger(result: TriggerResult) -> str:
    how = "triggered" if result.created else "exists already (not triggered again)"
    return f"{result.dag_id} run {result.run_id} {how} in {result.environment}: {result.state}\n  {result.url}"


def _ci_plan(plan: CiPlan) -> str:
    lines = [
        f"CI plan for {plan.tag}: branch {plan.branch or '(detached)'}, commit {plan.commit[:12]}, build {plan.build_number}, "
        f"result {plan.result_key}",
        f"  environment  {plan.environment or 'none (build only)'}",
    ]
    lines += [f"  {i}. {step.step:8} {step.decision}" for i, step in enumerate(plan.steps, start=1)]
    lines.append("Nothing was built, pushed, deployed or triggered (--dry-run).")
    return "\n".join(lines)


def _ci_result(result: CiResult) -> str:
    parts = []
    if result.build:
        parts.append(_build(result.build))
    if result.release:
        parts.append(_release_result(result.release))
    parts += [_trigger(t) for t in result.triggers]
    if result.plan.environment is None:
        parts.append(f"branch {result.plan.branch or '(detached)'} deploys nowhere: built and pushed only")
    return "\n".join(parts)


_TEXT = {
    BuildPlan: _plan,
    BuildResult: _build,
    TagList: _tag_list,
    TagDetails: _tag_details,
    RegistryInit: _registry_init,
    ReleasePlan: _release_plan,
    ReleaseResult: _release_result,
    HistoryView: _history,
    StatusView: _status,
    TriggerResult: _trigger,
    CiPlan: _ci_plan,
    CiResult: _ci_result,
}
