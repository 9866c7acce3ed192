"""Shared click options and parameter types: domain values are checked while parsing, before any work.

Precedence everywhere: flag > environment variable > imagectl.toml > default. Empty values are bad input,
never a silent fallback (``--env ""`` and ``IMAGECTL_ENV=""`` both exit 2). Shell completion for environment
names comes from imagectl.toml, for tags and revisions from the registry (completion.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from imagectl.errors import InputError
from imagectl.safejson import parse_json
from imagectl.sanitize import MAX_ACTOR, MAX_REASON, check_free_text, visible
from imagectl.tagging import (
    validate_build_number,
    validate_dag_id,
    validate_environment_name,
    validate_jira_key,
    validate_revision_or_tag,
    validate_run_id,
    validate_tag,
    validate_tag_reference,
)


def _complete(name: str) -> Callable[[click.Context, str], list[Any]]:
    """A completion function of completion.py, imported only when the shell asks (it may read the registry)."""

    def complete(ctx: click.Context, incomplete: str) -> list[Any]:
        from imagectl import completion

        return getattr(completion, name)(ctx, incomplete)

    return complete


class DomainType(click.ParamType):
    """A parameter checked by one of tagging.py's validators while parsing (an InputError becomes click's usage error)."""

    def __init__(self, name: str, check: Callable[[str], Any], complete: str | None = None) -> None:
        self.name, self.check = name, check
        self.complete = _complete(complete) if complete else None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple | dict):
            return value
        try:
            return self.check(str(value))
        except InputError as exc:
            self.fail(exc.one_line(), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        return self.complete(ctx, incomplete) if self.complete else []


def git_sha(value: str) -> str:
    text = value.lower()
    if not (7 <= len(text) <= 40) or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"'{visible(value)[:50]}' is not a commit SHA (7 to 40 hex characters)")
    return text


def build_arg(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key or not key.replace("_", "a").isascii() or not key.replace("_", "a").isalnum():
        raise InputError(f"'{visible(value)[:60]}' is not KEY=VALUE")
    return key, val


def assignment(value: str) -> tuple[str, str]:
    """NAME=VALUE where NAME may be dotted or a glob (init's --registry, --set, --branch …); VALUE may be empty."""
    key, sep, val = value.partition("=")
    if not sep or not key.strip() or any(ord(c) < 32 for c in value):
        raise InputError(f"'{visible(value)[:60]}' is not NAME=VALUE")
    return key.strip(), val.strip()


def json_object(value: str) -> dict[str, Any]:
    try:
        parsed = parse_json(value, 64 << 10, 16)
    except ValueError as exc:
        raise InputError(f"not valid JSON: {visible(str(exc))[:120]}") from None
    if not isinstance(parsed, dict):
        raise InputError('must be a JSON object, e.g. \'{"mode": "full"}\'')
    return parsed


class FreeTextType(click.ParamType):
    """A reason or an actor: kept as given (JSON shows it raw), length-limited, no NUL."""

    def __init__(self, what: str, limit: int) -> None:
        self.what, self.limit, self.name = what, limit, what.upper()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_free_text(str(value), self.what, self.limit) or ""
        except InputError as exc:
            self.fail(exc.one_line(), param, ctx)


JIRA_KEY = DomainType("JIRA-KEY", validate_jira_key)
BUILD_NUMBER = DomainType("N", lambda value: str(validate_build_number(value)))
NEW_TAG = DomainType("TAG", validate_tag)  # a tag for a new build (no reserved namespaces, no release versions)
TAG = DomainType("TAG", validate_tag_reference, complete="complete_tags")  # an existing image's tag or a release version
ENV = DomainType("ENV", validate_environment_name, complete="complete_environments")
DAG_ID = DomainType("DAG_ID", validate_dag_id)
RUN_ID = DomainType("RUN_ID", validate_run_id)
BUILD_ARG = DomainType("KEY=VALUE", build_arg)
JSON_OBJECT = DomainType("JSON", json_object)
ASSIGNMENT = DomainType("NAME=VALUE", assignment)
REVISION_OR_TAG = DomainType("REVISION|TAG", validate_revision_or_tag, complete="complete_revisions")
GIT_SHA = DomainType("SHA", git_sha)
REASON = FreeTextType("reason", MAX_REASON)
ACTOR = FreeTextType("actor", MAX_ACTOR)
IMAGE = click.Choice(["base", "build"])
BUMP = click.Choice(["major", "minor", "patch"])


def environment_from(flag: str | None, environ: dict[str, str] | os._Environ[str]) -> str | None:
    """--env, else IMAGECTL_ENV; an empty value of either is bad input (click would silently ignore it)."""
    if flag is not None:
        return validate_environment_name(flag)
    if "IMAGECTL_ENV" in environ:
        return validate_environment_name(environ["IMAGECTL_ENV"])
    return None


def config_option(f: Any) -> Any:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=str),
        help="Path to imagectl.toml (default: found from the working directory upward). Env: IMAGECTL_CONFIG.",
    )(f)


def env_option(f: Any) -> Any:
    return click.option(
        "--env",
        "environment",
        metavar="ENV",
        shell_complete=ENV.shell_complete,
        help="Environment from imagectl.toml (default: IMAGECTL_ENV, else [project] default_environment, else the only one).",
    )(f)


def output_option(f: Any) -> Any:
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help='Output format; json is one object {"schema": 1, "kind": …} documented in the README.',
    )(f)


def dry_run_option(f: Any) -> Any:
    return click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")(f)


def reason_option(f: Any) -> Any:
    return click.option(
        "--reason", type=REASON, help=f"Why (kept in the history and the Variable's description; ≤ {MAX_REASON} characters)."
    )(f)


def actor_option(f: Any) -> Any:
    return click.option("--actor", type=ACTOR, help="Who (default: the CI system's triggering user, else the OS user).")(f)


def yes_option(f: Any) -> Any:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (environments with confirm = true).")(f)


def force_option(f: Any) -> Any:
    return click.option(
        "--force",
        is_flag=True,
        help="Override a freeze, a rejection, the scan gate, the Jira gate or (promote) the never-ran rule; needs --reason, recorded.",
    )(f)


def verify_option(f: Any) -> Any:
    return click.option(
        "--verify/--no-verify",
        default=None,
        help="After the change, prove it with a dbt run; on failure reject the image and roll back to the newest verified "
        "revision (exit 18). Default: the environment's [verify] default.",
    )(f)


def create_option(f: Any) -> Any:
    return click.option(
        "--create", is_flag=True, help="Create the Variable's secret or parameter if it does not exist (secretsmanager/ssm stores)."
    )(f)


def wait_options(f: Any) -> Any:
    f = click.option(
        "--timeout", type=click.IntRange(min=1), default=3600, show_default=True, help="Seconds --wait waits (exit 16 after)."
    )(f)
    return click.option("--wait", is_flag=True, help="Follow the DAG run; exit 11 if it fails, 12 if it ran another image than deployed.")(
        f
    )
