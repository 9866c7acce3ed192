import subprocess
import sys

import click
import pytest

from imagectl.cli import cli


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path, command", list(all_commands(cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help(imagectl, path, command):
    assert command.help, f"{' '.join(path)} has no help text"
    result = imagectl(*path, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_help_touches_nothing_external(tmp_path):
    """--help works anywhere (no config) and never imports the SDKs of outside systems."""
    code = (
        "import sys; from imagectl.cli import cli\n"
        "try:\n    cli(['build', '--help'], prog_name='imagectl')\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "bad = [m for m in ('boto3', 'botocore', 'docker', 'git', 'requests') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True)


def test_version(imagectl):
    from imagectl import __version__

    assert imagectl("--version").output == f"imagectl, version {__version__}\n"


def test_entry_point_module(tmp_path):
    result = subprocess.run([sys.executable, "-m", "imagectl", "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("imagectl, version")


def test_invalid_values_refused_at_parse_time(imagectl, tmp_path):
    result = imagectl("build", "--jira", "data-1", "--config", str(tmp_path / "none.toml"))
    assert result.exit_code == 2
    assert "is not a Jira key" in result.output


def test_missing_config_is_one_line(imagectl, tmp_path):
    result = imagectl("tags", "list", "--config", str(tmp_path / "none.toml"))
    assert result.exit_code == 3
    assert result.stderr == f"error: config file {tmp_path / 'none.toml'} does not exist — check --config / IMAGECTL_CONFIG\n"
