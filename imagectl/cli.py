"""The click layer: parse options, call one core function, render its result. Nothing else lives here."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from imagectl import __version__
from imagectl.errors import EXIT_DRIFT, EXIT_RUN_FAILED, ConfigError, ImagectlError, InputError
from imagectl.options import (
    BUILD_ARG,
    BUILD_NUMBER,
    GIT_SHA,
    IMAGE,
    JIRA_KEY,
    REVISION_OR_TAG,
    TAG,
    actor_option,
    config_option,
    dry_run_option,
    env_option,
    output_option,
    reason_option,
    wait_options,
    yes_option,
)


class ImagectlGroup(click.Group):
    """Turns every ImagectlError into one line on stderr and its exit code (the only place that decides them)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImagectlError as exc:
            if exc.details:
                click.echo(exc.details.rstrip("\n"), err=True)
            click.echo(f"error: {exc.one_line()}", err=True)
            ctx.exit(exc.exit_code)


def _config(config_path: str | None) -> Any:
    from imagectl.config import load_config

    return load_config(Path(config_path) if config_path else None)


def _environment(config: Any, flag: str | None) -> str:
    """flag (or IMAGECTL_ENV, via click) > [project] default_environment; no silent guess beyond that."""
    name = flag or config.default_environment
    if not name:
        raise ConfigError(
            "no environment given",
            f"pass --env ({', '.join(sorted(config.environments))}) or set [project] default_environment in {config.path}",
        )
    config.environment(name)
    return name


@click.group(cls=ImagectlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="imagectl")
def cli() -> None:
    """Build, tag, push and roll back the dbt images that Airflow runs.

    Images are tagged <JIRA-KEY>-<BUILD-NUMBER> (never 'latest'); imagectl.toml at the root of the dbt
    repository names the images, registries and environments.
    """


@cli.command()
@click.argument("which", required=False, type=IMAGE)
@config_option
@env_option
@click.option("--jira", type=JIRA_KEY, help="Jira key (default: from the branch name, then the commit messages since main).")
@click.option("--build-number", type=BUILD_NUMBER, help="CI build number (default: $bamboo_buildNumber).")
@click.option("--tag", type=TAG, help="Use this tag instead of <JIRA-KEY>-<BUILD-NUMBER>.")
@click.option("--build-arg", "build_args", type=BUILD_ARG, multiple=True, help="Docker build argument KEY=VALUE (repeatable).")
@click.option("--no-push", is_flag=True, help="Build locally and push nothing.")
@dry_run_option
@output_option
@click.option("--quiet", "-q", is_flag=True, help="No build or push progress on stderr.")
def build(
    which: str | None,
    config_path: str | None,
    environment: str | None,
    jira: str | None,
    build_number: str | None,
    tag: str | None,
    build_args: tuple[tuple[str, str], ...],
    no_push: bool,
    dry_run: bool,
    output: str,
    quiet: bool,
) -> None:
    """Build the base and build images (or just WHICH: base|build), tag and push them.

    The base image is reused when its inputs are unchanged; the build image is built FROM the base by digest.
    """
    from imagectl.commands.build import build as run_build
    from imagectl.progress import Progress
    from imagectl.render import render

    config = _config(config_path)
    result = run_build(
        config,
        _environment(config, environment),
        which,
        jira=jira,
        build_number=build_number,
        tag=tag,
        extra_build_args=dict(build_args),
        push=not no_push,
        dry_run=dry_run,
        environ=os.environ,
        progress=Progress(quiet=quiet),
    )
    render(result, output)


@cli.group()
def tags() -> None:
    """Read the tag registry: what each tag is (ticket, build, commit, base digest)."""


@tags.command("list")
@config_option
@env_option
@click.option("--image", type=IMAGE, help="Only base or only build images (default: both).")
@click.option("--jira", type=JIRA_KEY, help="Only tags of this Jira key.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many rows.")
@output_option
def tags_list(config_path: str | None, environment: str | None, image: str | None, jira: str | None, limit: int, output: str) -> None:
    """List build tags, newest first."""
    from imagectl.commands.tags import tags_list as run
    from imagectl.render import render

    config = _config(config_path)
    render(run(config, _environment(config, environment), image, jira, limit), output)


@tags.command("show")
@click.argument("tag", type=TAG)
@config_option
@env_option
@click.option("--image", type=IMAGE, help="Only the base or only the build image (default: both).")
@output_option
def tags_show(tag: str, config_path: str | None, environment: str | None, image: str | None, output: str) -> None:
    """Everything known about TAG: labels, base digest, other tags on the same digest."""
    from imagectl.commands.tags import tags_show as run
    from imagectl.render import render

    config = _config(config_path)
    render(run(config, _environment(config, environment), tag, image), output)


@cli.group()
def registry() -> None:
    """Manage the registries imagectl pushes to."""


@registry.command("init")
@config_option
@env_option
@dry_run_option
@output_option
def registry_init(config_path: str | None, environment: str | None, dry_run: bool, output: str) -> None:
    """Create the environment's repositories: tag immutability, scan on push, lifecycle policy (ECR)."""
    from imagectl.commands.registry import registry_init as run
    from imagectl.render import render

    config = _config(config_path)
    render(run(config, _environment(config, environment), dry_run), output)


def _release(plan: Any, dry_run: bool, yes: bool, output: str) -> None:
    """Print the plan (--dry-run), or ask when the environment wants it, then apply and print the result."""
    from imagectl.release import apply
    from imagectl.render import render

    if dry_run:
        render(plan, output)
        return
    if plan.state != "noop" and plan.confirm_required and not yes:
        if not sys.stdin.isatty():
            raise InputError(f"{plan.environment} requires confirmation and there is no terminal to ask on", "pass --yes")
        before = plan.current.tag if plan.current else "nothing"
        click.confirm(
            f"{plan.action} {plan.environment}: {before} → {plan.tag}{f' ({plan.release})' if plan.release else ''}?", abort=True, err=True
        )
    render(apply(plan), output)


@cli.command()
@click.argument("tag", type=TAG)
@config_option
@env_option
@reason_option
@actor_option
@yes_option
@dry_run_option
@output_option
def deploy(
    tag: str, config_path: str | None, environment: str | None, reason: str | None, actor: str | None, yes: bool, dry_run: bool, output: str
) -> None:
    """Point the environment's Airflow Variable at TAG (digest-pinned), recording a revision."""
    from imagectl.release import plan_deploy, resolve_actor

    config = _config(config_path)
    _release(plan_deploy(config, _environment(config, environment), tag, resolve_actor(actor, os.environ), reason), dry_run, yes, output)


@cli.command()
@click.argument("tag", type=TAG, required=False)
@click.option("--jira", type=JIRA_KEY, help="Instead of TAG: the newest build of this ticket the source environment ran.")
@click.option("--git-sha", type=GIT_SHA, help="Instead of TAG: the image built from this commit that the source environment ran.")
@click.option("--from", "from_env", required=True, metavar="ENV", help="Source environment (e.g. dev).")
@click.option("--to", "to_env", required=True, metavar="ENV", help="Target environment (e.g. prd).")
@click.option(
    "--bump",
    type=click.Choice(["major", "minor", "patch"]),
    default="patch",
    show_default=True,
    help="Release version bump in a release environment.",
)
@click.option("--force", is_flag=True, help="Promote an image the source environment never ran (needs --reason).")
@config_option
@reason_option
@actor_option
@yes_option
@dry_run_option
@output_option
def promote(
    tag: str | None,
    jira: str | None,
    git_sha: str | None,
    from_env: str,
    to_env: str,
    bump: str,
    force: bool,
    config_path: str | None,
    reason: str | None,
    actor: str | None,
    yes: bool,
    dry_run: bool,
    output: str,
) -> None:
    """Promote an image the source environment ran to the target environment (copying it across registries)."""
    from imagectl.release import plan_promote, resolve_actor

    config = _config(config_path)
    config.environment(from_env)
    config.environment(to_env)
    plan = plan_promote(
        config,
        tag=tag,
        jira=jira,
        git_sha=git_sha,
        from_env=from_env,
        to_env=to_env,
        bump=bump,
        force=force,
        actor=resolve_actor(actor, os.environ),
        reason=reason,
    )
    _release(plan, dry_run, yes, output)


@cli.command()
@click.option("--to", "to", type=REVISION_OR_TAG, help="A revision number or a tag (default: the previous image).")
@config_option
@env_option
@reason_option
@actor_option
@yes_option
@dry_run_option
@output_option
def rollback(
    to: str | None,
    config_path: str | None,
    environment: str | None,
    reason: str | None,
    actor: str | None,
    yes: bool,
    dry_run: bool,
    output: str,
) -> None:
    """Point the environment back at an earlier image; recorded as a new revision, nothing is deleted."""
    from imagectl.release import plan_rollback, resolve_actor

    config = _config(config_path)
    _release(plan_rollback(config, _environment(config, environment), to, resolve_actor(actor, os.environ), reason), dry_run, yes, output)


@cli.command()
@config_option
@env_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many revisions.")
@output_option
def history(config_path: str | None, environment: str | None, limit: int, output: str) -> None:
    """The environment's revisions, newest first; the one its Variable holds is marked."""
    from imagectl.commands.history import history as run
    from imagectl.render import render

    config = _config(config_path)
    render(run(config, _environment(config, environment), limit), output)


@cli.command()
@config_option
@click.option("--env", "environment", metavar="ENV", envvar="IMAGECTL_ENV", help="One environment (default: all).")
@output_option
@click.pass_context
def status(ctx: click.Context, config_path: str | None, environment: str | None, output: str) -> None:
    """Where every environment stands: the Variable, the latest revision, whether they agree (exit 10 if not)."""
    from imagectl.commands.status import status as run
    from imagectl.render import render

    config = _config(config_path)
    if environment:
        config.environment(environment)
    result = run(config, environment)
    render(result, output)
    if not result.ok:
        ctx.exit(EXIT_DRIFT)


class JsonObjectType(click.ParamType):
    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        import json

        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not valid JSON: {exc}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail('must be a JSON object, e.g. \'{"mode": "full"}\'', param, ctx)
        return parsed


@cli.command()
@click.argument("dag_id")
@config_option
@env_option
@click.option("--conf", type=JsonObjectType(), default="{}", help="The run's conf, a JSON object.")
@click.option("--run-id", help="Run id (default: Airflow's). A run with this id that exists already is not started again.")
@wait_options
@output_option
@click.pass_context
def trigger(
    ctx: click.Context,
    dag_id: str,
    config_path: str | None,
    environment: str | None,
    conf: dict[str, Any],
    run_id: str | None,
    wait: bool,
    timeout: int,
    output: str,
) -> None:
    """Trigger DAG_ID in the environment's Airflow and print the run's URL."""
    from imagectl.commands.trigger import trigger as run
    from imagectl.render import render

    config = _config(config_path)
    result = run(
        config,
        _environment(config, environment),
        dag_id,
        conf,
        run_id,
        wait,
        timeout=timeout,
        on_state=lambda state: click.echo(f"{dag_id}: {state}", err=True),
    )
    render(result, output)
    if not result.ok:
        ctx.exit(EXIT_RUN_FAILED)


@cli.command()
@config_option
@click.option("--jira", type=JIRA_KEY, help="Jira key (default: from the branch name, then the commit messages).")
@click.option("--build-number", type=BUILD_NUMBER, help="Default: $bamboo_buildNumber.")
@wait_options
@yes_option
@dry_run_option
@output_option
@click.option("--quiet", "-q", is_flag=True, help="No build or push progress on stderr.")
@click.pass_context
def ci(
    ctx: click.Context,
    config_path: str | None,
    jira: str | None,
    build_number: str | None,
    wait: bool,
    timeout: int,
    yes: bool,
    dry_run: bool,
    output: str,
    quiet: bool,
) -> None:
    """The Bamboo build-plan step: build, push, deploy (or promote), trigger Lightdash and a slim dbt build."""
    from imagectl.commands.ci import run_ci
    from imagectl.progress import Progress
    from imagectl.render import render

    config = _config(config_path)
    result = run_ci(
        config,
        jira=jira,
        build_number=build_number,
        environ=os.environ,
        wait=wait,
        yes=yes,
        dry_run=dry_run,
        progress=Progress(quiet=quiet),
        timeout=timeout,
    )
    render(result, output)
    if not dry_run and not result.ok:
        ctx.exit(EXIT_RUN_FAILED)


def main() -> None:
    cli(prog_name="imagectl")
