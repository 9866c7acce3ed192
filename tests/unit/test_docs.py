"""The documentation: README stays a short front door, every relative link resolves, docs/cli.md is current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = ".venv/bin/python scripts/cli_reference.py --write"

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML_LINK = re.compile(r"""<(?:a|img)\s[^>]*(?:href|src)=["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text as rendered, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    result |= set(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", path.read_text()))
    return result


def links(text: str) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", text))
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text) + HTML_LINK.findall(text)


def broken_links(path: Path) -> list[str]:
    """Every relative link of a Markdown file whose file or #anchor does not exist, as 'target: why'."""
    problems = []
    for target in links(path.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, …: not ours to check here
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{target}: {resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved} does not exist")
        elif fragment:
            if resolved.suffix != ".md":
                problems.append(f"{target}: an #anchor into a file that is not Markdown")
            elif fragment not in anchors(resolved):
                problems.append(f"{target}: {resolved.relative_to(ROOT)} has no heading with anchor #{fragment}")
    return problems


def test_the_documents_exist():
    names = {str(path.relative_to(ROOT)) for path in documents()}
    assert {"README.md", "CONTRIBUTING.md", "docs/cli.md", "docs/operations.md", "docs/design.md", "docs/ci.md"} <= names


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    problems = broken_links(path)
    if problems:
        pytest.fail(f"{path.relative_to(ROOT)}: broken links — fix the target or the heading: " + "; ".join(problems), pytrace=False)


def test_the_link_check_finds_broken_links(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("# A: the `first` one\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n[ok](docs/a.md) [ok](docs/a.md#a-the-first-one) [ok](docs/a.md#twice-1) [ok](#top) [ok](https://x.example/y)\n"
        "`[not a link](nowhere.md)`\n```\n[not a link](nowhere.md)\n```\n"
        "[missing](docs/b.md) [bad anchor](docs/a.md#twice-2) [bad local](#nothing)\n[ref]: docs/c.md\n"
    )
    assert broken_links(page) == [
        "docs/b.md: docs/b.md does not exist",
        "docs/a.md#twice-2: docs/a.md has no heading with anchor #twice-2",
        "#nothing: README.md has no heading with anchor #nothing",
        "docs/c.md: docs/c.md does not exist",
    ]


def test_readme_is_a_short_front_door():
    text = (ROOT / "README.md").read_text()
    lines = text.count("\n")
    assert lines <= 200, f"README.md has {lines} lines: keep it a front door (at most 200) and move details into docs/"
    assert "## The two commands" in text
    assert "On a fresh Debian/Ubuntu machine, as root" in text
    assert "./scripts/demo.sh" in text and "./scripts/test.sh" in text


def test_cli_reference_is_current():
    """docs/cli.md is scripts/cli_reference.py's output: the commands' own --help, never kept by hand beside it."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts/cli_reference.py")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    current = (ROOT / "docs/cli.md").read_text() if (ROOT / "docs/cli.md").exists() else ""
    if result.stdout != current:
        pytest.fail(f"docs/cli.md is stale (it differs from the commands' --help): regenerate it with `{REGENERATE}`", pytrace=False)


def test_cli_reference_covers_every_command():
    from imagectl.cli import cli

    text = (ROOT / "docs/cli.md").read_text()

    def paths(group, prefix):
        for name, command in group.commands.items():
            yield f"{prefix} {name}"
            if hasattr(command, "commands"):
                yield from paths(command, f"{prefix} {name}")

    missing = [path for path in paths(cli, "imagectl") if f"\n## {path}\n" not in text or f"Usage: {path} " not in text]
    assert not missing, f"docs/cli.md lacks {missing}: regenerate it with `{REGENERATE}`"
