"""Shell completion (bash, zsh, fish through click's mechanism): environment names from imagectl.toml, tags and
revision numbers from the registry. Enable it once per shell (README, "Shell completion"), e.g. for bash:
``eval "$(_IMAGECTL_COMPLETE=bash_source imagectl)"``. Completion never prints an error: if the config or the
registry cannot be read, it offers nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

COMPLETION_BUDGET = 5.0  # seconds a registry lookup may take while the user waits at the prompt


def _config(ctx: click.Context) -> Any:
    from imagectl.config import load_config

    root = ctx.find_root()
    path = ctx.params.get("config_path") or root.params.get("config_path") or os.environ.get("IMAGECTL_CONFIG")
    return load_config(Path(path) if path else None)


def _environment(ctx: click.Context, config: Any) -> str | None:
    name = ctx.params.get("environment") or ctx.params.get("to_env") or os.environ.get("IMAGECTL_ENV") or config.default_environment
    return name if name in config.environments else None


def complete_environments(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    try:
        config = _config(ctx)
    except Exception:  # noqa: BLE001 - completion offers nothing rather than fail
        return []
    return [
        CompletionItem(name, help=f"registry {env.registry}")
        for name, env in sorted(config.environments.items())
        if name.startswith(incomplete)
    ]


def complete_tags(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    try:
        from imagectl.adapters.http import start_budget
        from imagectl.commands.tags import tags_list
        from imagectl.workspace import Workspace

        config = _config(ctx)
        name = ctx.params.get("from_env") or _environment(ctx, config)
        if name is None:
            return []
        start_budget(COMPLETION_BUDGET)
        rows = tags_list(Workspace.from_environ(config, os.environ).env(name), "build", None, 50).rows
    except Exception:  # noqa: BLE001
        return []
    return [CompletionItem(r.tag, help=(r.git_sha or "")[:12]) for r in rows if r.tag.startswith(incomplete)]


def complete_revisions(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    try:
        from imagectl.adapters.http import start_budget
        from imagectl.workspace import Workspace

        config = _config(ctx)
        name = _environment(ctx, config)
        if name is None:
            return []
        start_budget(COMPLETION_BUDGET)
        revisions = Workspace.from_environ(config, os.environ).env(name).history.newest(30)
    except Exception:  # noqa: BLE001
        return []
    items = [
        CompletionItem(str(r.revision), help=f"{r.action} {r.tag} {r.time}") for r in revisions if str(r.revision).startswith(incomplete)
    ]
    items += [CompletionItem(r.tag, help=f"revision {r.revision}") for r in revisions if r.tag.startswith(incomplete) and incomplete]
    return items
