"""Write docs/cli.md, the command reference, from the commands' own --help (the click tree of imagectl.cli:cli).

    .venv/bin/python scripts/cli_reference.py --write     # regenerate docs/cli.md
    .venv/bin/python scripts/cli_reference.py             # print it instead

tests/unit/test_docs.py fails when docs/cli.md differs from what this prints. The help is rendered at a fixed
width, so the file does not depend on the terminal it was made in.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs/cli.md"
WIDTH = 108  # what click renders on a wide terminal with imagectl's max_content_width (110)
COMMAND = ".venv/bin/python scripts/cli_reference.py --write"


def walk(command: click.Command, parent: click.Context | None = None, name: str = "imagectl") -> Iterator[click.Context]:
    """Every command's context, depth first, in the order its group's --help lists them."""
    ctx = command.context_class(command, parent=parent, info_name=name, terminal_width=WIDTH, **command.context_settings)
    yield ctx
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, ctx, sub_name)


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading (tests/unit/test_docs.py resolves links with the same rule)."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def render() -> str:
    sys.path.insert(0, str(ROOT))
    from imagectl.cli import cli

    contexts = list(walk(cli))
    lines = [
        "# Command reference",
        "",
        "<!-- Generated from each command's --help by scripts/cli_reference.py: do not edit by hand. -->",
        f"Generated from each command's `--help`; after changing a command, regenerate it with `{COMMAND}`",
        "(`tests/unit/test_docs.py` fails while this file is stale). Exit codes and the JSON documents are in",
        "[operations.md](operations.md).",
        "",
    ]
    for ctx in contexts:
        path = ctx.command_path
        depth = "  " * (path.count(" ") - 1) if " " in path else ""
        lines.append(f"{depth}- [`{path}`](#{anchor(path)})")
    for ctx in contexts:
        lines += ["", f"## {ctx.command_path}", "", "```text", ctx.command.get_help(ctx).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {OUTPUT.relative_to(ROOT)} instead of printing it")
    args = parser.parse_args()
    text = render()
    if args.write:
        OUTPUT.parent.mkdir(exist_ok=True)
        OUTPUT.write_text(text)
        print(f"cli_reference: wrote {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
