"""Shared click options and parameter types: domain values are checked while parsing, before any work."""

from __future__ import annotations

from typing import Any

import click

from imagectl.errors import InputError
from imagectl.tagging import validate_build_number, validate_jira_key, validate_tag


class _DomainType(click.ParamType):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.check(value)
        except InputError as exc:
            self.fail(exc.one_line(), param, ctx)

    def check(self, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


class JiraKeyType(_DomainType):
    name = "JIRA-KEY"

    def check(self, value: Any) -> str:
        return validate_jira_key(str(value))


class BuildNumberType(_DomainType):
    name = "N"

    def check(self, value: Any) -> str:
        return str(validate_build_number(value))


class TagType(_DomainType):
    name = "TAG"

    def check(self, value: Any) -> str:
        return validate_tag(str(value))


class BuildArgType(click.ParamType):
    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            self.fail(f"'{value}' is not KEY=VALUE", param, ctx)
        return key, val


JIRA_KEY = JiraKeyType()
BUILD_NUMBER = BuildNumberType()
TAG = TagType()
BUILD_ARG = BuildArgType()
IMAGE = click.Choice(["base", "build"])


def config_option(f: Any) -> Any:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=str),
        envvar="IMAGECTL_CONFIG",
        help="Path to imagectl.toml (default: found from the working directory upward). Env: IMAGECTL_CONFIG.",
    )(f)


def env_option(f: Any) -> Any:
    return click.option(
        "--env",
        "environment",
        metavar="ENV",
        envvar="IMAGECTL_ENV",
        help="Environment from imagectl.toml (default: [project] default_environment). Env: IMAGECTL_ENV.",
    )(f)


def output_option(f: Any) -> Any:
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format; json is stable and documented in the README.",
    )(f)


def dry_run_option(f: Any) -> Any:
    return click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")(f)


def reason_option(f: Any) -> Any:
    return click.option("--reason", help="Why (kept in the history and the Variable's description).")(f)


def actor_option(f: Any) -> Any:
    return click.option("--actor", help="Who (default: Bamboo's triggering user, else the OS user).")(f)


def yes_option(f: Any) -> Any:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (environments with confirm = true).")(f)


class RevisionOrTagType(click.ParamType):
    name = "REVISION|TAG"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text.isdigit():
            if int(text) < 1:
                self.fail("revisions start at 1", param, ctx)
            return str(int(text))
        try:
            return validate_tag(text)
        except InputError as exc:
            self.fail(exc.one_line(), param, ctx)


class GitShaType(click.ParamType):
    name = "SHA"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).lower()
        if not (7 <= len(text) <= 40) or any(c not in "0123456789abcdef" for c in text):
            self.fail(f"'{value}' is not a commit SHA (7 to 40 hex characters)", param, ctx)
        return text


REVISION_OR_TAG = RevisionOrTagType()
GIT_SHA = GitShaType()


def wait_options(f: Any) -> Any:
    f = click.option("--timeout", type=click.IntRange(min=1), default=3600, show_default=True, help="Seconds --wait waits.")(f)
    return click.option("--wait", is_flag=True, help="Follow the DAG run; exit 11 if it fails.")(f)
