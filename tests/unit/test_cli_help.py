import subprocess
import sys

import click
import pytest

from imagectl.cli import cli
from imagectl.errors import EXIT_CODES, Exit


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path, command", list(all_commands(cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help_with_examples(imagectl, path, command):
    assert command.help, f"{' '.join(path)} has no help text"
    result = imagectl(*path, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output
    examples = result.output.split("Examples:", 1)
    assert len(examples) == 2, f"{' '.join(path)} --help has no examples"
    lines = [line.strip() for line in examples[1].splitlines() if line.strip().startswith(("imagectl", "eval"))]
    assert 1 <= len(lines) <= 4 and all("imagectl" in line for line in lines)


def test_help_and_version_touch_nothing_external(tmp_path):
    """--help works anywhere (no config) and never imports the SDKs of outside systems (start-up stays fast)."""
    code = (
        "import sys; from imagectl.cli import cli\n"
        "for args in (['--help'], ['--version'], ['build', '--help'], ['deploy', '--help'], ['status', '--help']):\n"
        "    try:\n        cli(args, prog_name='imagectl')\n    except SystemExit as e:\n        assert e.code == 0\n"
        "bad = [m for m in ('boto3', 'botocore', 'docker', 'git', 'requests', 'semver', 'urllib3') if m in sys.modules]\n"
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


@pytest.mark.parametrize(
    "args, message",
    [
        (["trigger", "../variables/dbt_image"], "is not a DAG id"),
        (["rollback", "--to", "²"], "is not a valid Docker tag"),
        (["rollback", "--to", "0"], "revisions start at 1"),
        (["deploy", "latest"], "the tag 'latest' is refused"),
        (["deploy", "imagectl-history-prd-000001"], "bookkeeping tags"),
        (["build", "--tag", "v01.0.0"], "release versions"),
        (["deploy", "DATA-1-1", "--reason", "x" * 501], "at most 500"),
        (["promote", "DATA-1-1", "--from", "dev", "--to", "P" * 40], "is not an environment name"),
    ],
)
def test_hostile_arguments_are_bad_input(imagectl, tmp_path, args, message):
    result = imagectl(*args, "--config", str(tmp_path / "none.toml"))
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_empty_environment_is_bad_input(imagectl, tmp_path):
    (tmp_path / "imagectl.toml").write_text(
        '[images.base]\nrepository = "b"\n[images.build]\nrepository = "c"\n[registries.r]\nkind = "oci"\nhost = "127.0.0.1:1"\n'
        '[environments.dev]\nregistry = "r"\n'
    )
    config = str(tmp_path / "imagectl.toml")
    flag = imagectl("history", "--env", "", "--config", config)
    assert (
        flag.exit_code == 2
        and flag.stderr == "error: the environment name is empty — pass --env NAME (or unset IMAGECTL_ENV to use the default)\n"
    )
    variable = imagectl("history", "--config", config, env={"IMAGECTL_ENV": ""})
    assert variable.exit_code == 2 and "the environment name is empty" in variable.stderr


def test_missing_config_is_one_line(imagectl, tmp_path):
    result = imagectl("tags", "list", "--config", str(tmp_path / "none.toml"))
    assert result.exit_code == 3
    assert result.stderr == f"error: config file {tmp_path / 'none.toml'} does not exist — check --config / IMAGECTL_CONFIG\n"


def test_exit_codes_are_documented(imagectl):
    listed = imagectl("exit-codes").output
    assert all(f"{int(code):>3}  {meaning}" in listed for code, meaning in EXIT_CODES.items())
    assert set(EXIT_CODES) == set(Exit)
    codes = [int(line.split()[0]) for line in listed.splitlines()]
    assert codes == sorted(codes)  # in order, as people look them up


def test_shell_completion_script(imagectl):
    assert "_IMAGECTL_COMPLETE" in imagectl("completion", "bash").output
    assert "complete" in imagectl("completion", "fish").output
