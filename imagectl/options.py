"""Shared click options and parameter types: domain values are checked while parsing, before any work.

Precedence everywhere: flag > environment variable > imagectl.toml > default. Empty values are bad input,
never a silent fallback (``--env ""`` and ``IMAGECTL_ENV=""`` both exit 2). Shell completion for environment
names comes from imagectl.toml, for tags and revisions from the registry (completion.py).
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from imagectl.errors import InputError
from imagectl.sanitize import MAX_ACTOR, MAX_REASON, check_free_text, visible
from imagectl.tagging import (
    validate_build_number,
    validate_dag_id,
    validate_environment_name,
    validate_jira_key,
    validate_run_id,
    validate_tag,
    validate_tag_reference,
)


class _DomainType(click.ParamType):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.check(str(value))
        except InputError as exc:
            self.fail(exc.one_line(), param, ctx)

    def check(self, value: str) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


class JiraKeyType(_DomainType):
    name = "JIRA-KEY"

    def check(self, value: str) -> str:
        return validate_jira_key(value)


class BuildNumberType(_DomainType):
    name = "N"

    def check(self, value: str) -> str:
        return str(validate_build_number(value))


class NewTagType(_DomainType):
    """A tag for a new build (no reserved namespaces, no release versions)."""

    name = "TAG"

    def check(self, value: str) -> str:
        return validate_tag(value)


class TagType(_DomainType):
    """An existing image's tag: a build tag or a release version."""

    name = "TAG"

    def check(self, value: str) -> str:
        return validate_tag_reference(value)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from imagectl.completion import complete_tags

        return complete_tags(ctx, incomplete)


class EnvironmentType(_DomainType):
    name = "ENV"

    def check(self, value: str) -> str:
        return validate_environment_name(value)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from imagectl.completion import complete_environments

        return complete_environments(ctx, incomplete)


class DagIdType(_DomainType):
    name = "DAG_ID"

    def check(self, value: str) -> str:
        return validate_dag_id(value)


class RunIdType(_DomainType):
    name = "RUN_ID"

    def check(self, value: str) -> str:
        return validate_run_id(value)


class RevisionOrTagType(click.ParamType):
    name = "REVISION|TAG"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text.isascii() and text.isdigit():
            if int(text) < 1:
                self.fail("revisions start at 1", param, ctx)
            return str(int(text))
        try:
            return validate_tag_reference(text)
        except InputError as exc:
            self.fail(exc.one_line(), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from imagectl.completion import complete_revisions

        return complete_revisions(ctx, incomplete)


class GitShaType(click.ParamType):
    name = "SHA"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).lower()
        if not (7 <= len(text) <= 40) or any(c not in "0123456789abcdef" for c in text):
            self.fail(f"'{visible(str(value))[:50]}' is not a commit SHA (7 to 40 hex characters)", param, ctx)
        return text


class BuildArgType(click.ParamType):
    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep or not key or not key.replace("_", "a").isascii() or not key.replace("_", "a").isalnum():
            self.fail(f"'{visible(str(value))[:60]}' is not KEY=VALUE", param, ctx)
        return key, val


class JsonObjectType(click.ParamType):
    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not valid JSON: {exc}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail('must be a JSON object, e.g. \'{"mode": "full"}\'', param, ctx)
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


JIRA_KEY = JiraKeyType()
BUILD_NUMBER = BuildNumberType()
NEW_TAG = NewTagType()
TAG = TagType()
ENV = EnvironmentType()
DAG_ID = DagIdType()
RUN_ID = RunIdType()
BUILD_ARG = BuildArgType()
JSON_OBJECT = JsonObjectType()
REVISION_OR_TAG = RevisionOrTagType()
GIT_SHA = GitShaType()
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
    return click.option("--actor", type=ACTOR, help="Who (default: Bamboo's triggering user, else the OS user).")(f)


def yes_option(f: Any) -> Any:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (environments with confirm = true).")(f)


def force_option(f: Any) -> Any:
    return click.option(
        "--force", is_flag=True, help="Override a freeze, the scan gate or (promote) the never-ran rule; needs --reason, recorded."
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
