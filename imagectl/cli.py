"""The click layer: parse options, call one core function, render its result. Nothing else lives here.

The core never imports click; this module never imports boto3, docker or git (the SDKs load inside the core, only
when a command needs them, so ``--help`` and ``--version`` touch nothing outside the process).
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from imagectl import __version__, report
from imagectl.ci_systems import BY_KEY as CI_SYSTEMS
from imagectl.errors import EXIT_CODES, AbortedError, Exit, ImagectlError, InputError
from imagectl.options import (
    ASSIGNMENT,
    BUILD_ARG,
    BUILD_NUMBER,
    BUMP,
    DAG_ID,
    ENV,
    GIT_SHA,
    IMAGE,
    JIRA_KEY,
    JSON_OBJECT,
    NEW_TAG,
    REASON,
    REVISION_OR_TAG,
    RUN_ID,
    TAG,
    actor_option,
    config_option,
    create_option,
    dry_run_option,
    env_option,
    environment_from,
    force_option,
    output_option,
    reason_option,
    verify_option,
    wait_options,
    yes_option,
)
from imagectl.render import Result, to_json

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class ImagectlGroup(click.Group):
    """Turns every error into one line on stderr and its exit code (the only place that decides them)."""

    def invoke(self, ctx: click.Context) -> Any:
        report.start(lambda text: click.echo(f"warning: {_redact(text)}", err=True))
        try:
            return super().invoke(ctx)
        except ImagectlError as exc:
            if exc.details:
                click.echo("\n".join(_redact(line) for line in exc.details.rstrip("\n").splitlines()), err=True)
            click.echo(f"error: {_redact(exc.one_line())}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted — run imagectl status to see what was changed", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - a bug: one line, never a traceback with secrets in it
            if os.environ.get("IMAGECTL_DEBUG") == "1":
                traceback.print_exc()
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            click.echo(
                f"error: imagectl failed unexpectedly ({_redact(message)}) — please report it; IMAGECTL_DEBUG=1 shows details", err=True
            )
            ctx.exit(Exit.FAILED)


def _redact(text: str) -> str:
    from imagectl.credentials import Credentials
    from imagectl.sanitize import redact_secrets, visible

    return visible(redact_secrets(Credentials.from_environ(os.environ).redact(text)))


def _redact_output(text: str) -> str:
    """Credentials a server echoed back never reach the terminal (control characters were escaped by the renderer)."""
    from imagectl.credentials import Credentials
    from imagectl.sanitize import redact_secrets

    return redact_secrets(Credentials.from_environ(os.environ).redact(text))


class Session:
    """What every command needs from the command line: the workspace (config, credentials and environment
    variables, resolved once), the chosen environment, and how to show and confirm. It takes its own options out
    of the command's options; the rest are the command's request."""

    def __init__(self, options: dict[str, Any], *, needs_environment: bool = True) -> None:
        from imagectl.adapters.http import start_budget
        from imagectl.config import load_config
        from imagectl.errors import ConfigError
        from imagectl.workspace import Workspace

        config_path = options.pop("config_path", None)
        flag_environment = options.pop("environment", None)
        self.output: str = options.pop("output", "text")
        self.dry_run: bool = options.pop("dry_run", False)
        self.yes: bool = options.pop("yes", False)
        if config_path is None and "IMAGECTL_CONFIG" in os.environ:
            config_path = os.environ["IMAGECTL_CONFIG"]
            if not config_path:
                raise InputError("IMAGECTL_CONFIG is empty", "unset it or give the path of imagectl.toml")
        if config_path == "":
            raise InputError("--config is empty", "give the path of imagectl.toml")
        config = load_config(Path(config_path) if config_path else None)
        self.workspace = Workspace.from_environ(config, os.environ)
        budget = config.timeouts.command
        if os.environ.get("IMAGECTL_TIMEOUT"):
            try:
                budget = float(os.environ["IMAGECTL_TIMEOUT"])
            except ValueError:
                budget = math.nan
            if not (math.isfinite(budget) and 1 <= budget <= 86_400):
                raise InputError("IMAGECTL_TIMEOUT must be a number of seconds from 1 to 86400", "e.g. IMAGECTL_TIMEOUT=300")
        start_budget(budget)
        chosen = environment_from(flag_environment, os.environ)
        if chosen is None and needs_environment:
            chosen = config.default_environment
            if chosen is None:
                raise ConfigError(
                    "no environment given",
                    f"pass --env ({', '.join(sorted(config.environments))}) or set [project] default_environment in {config.path}",
                )
        if chosen is not None:
            config.environment(chosen)
        self.environment: str = chosen or ""

    def emit(self, result: Result) -> None:
        if self.output == "json":
            click.echo(to_json(result, report.collected()))
        else:
            click.echo(_redact_output(result.text()))

    def change(self, action: Any, *, dry_run: bool | None = None) -> Any:
        """Run a changing command (action.py): its dry run, or confirmation, apply and notify; then show the result."""
        from imagectl.action import run

        result = run(action, dry_run=self.dry_run if dry_run is None else dry_run, confirm=confirm_on_terminal(self.yes))
        self.emit(result)
        code = result.exit_code()
        if code:
            click.get_current_context().exit(code)  # the result itself is a failure (a verification that failed)
        return result


def confirm_on_terminal(yes: bool) -> Any:
    """The confirmation a change asks for in an environment with confirm = true (exit 13 when answered no)."""

    def confirm(asked: Any) -> None:
        if yes:
            return
        if not sys.stdin.isatty():
            raise InputError(f"{asked.environment} requires confirmation and there is no terminal to ask on", "pass --yes")
        if asked.preview:  # what the change undoes or adds, before the question
            click.echo(asked.preview, err=True)
        if not click.confirm(asked.question, default=False, err=True):
            raise AbortedError(f"not confirmed: nothing was changed in {asked.environment}", "answer y to go ahead, or pass --yes")

    return confirm


@click.group(cls=ImagectlGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="imagectl")
def cli() -> None:
    """Build, tag, push and roll back the dbt images that Airflow runs.

    Images are tagged <JIRA-KEY>-<BUILD-NUMBER> (never 'latest'); imagectl.toml at the root of the dbt
    repository names the images, registries and environments.

    \b
    Examples:
      imagectl ci --wait                                   # the CI step (Bamboo, GitLab CI, GitHub Actions)
      imagectl rollback --env prd --reason "orders broke"  # on call: the previous image
      imagectl status                                      # where every environment stands
    """


@cli.command()
@click.option("--ci", type=click.Choice(sorted(CI_SYSTEMS)), help="Also write this CI system's pipeline file.")
@click.option("--registry", type=ASSIGNMENT, multiple=True, metavar="ENV=HOST", help="An environment's registry (repeatable).")
@click.option("--airflow", type=ASSIGNMENT, multiple=True, metavar="ENV=URL", help="An environment's Airflow api-server (repeatable).")
@click.option("--branch", type=ASSIGNMENT, multiple=True, metavar="BRANCH=ENV", help="[ci] branches: a branch or glob → environment.")
@click.option("--jira-project", multiple=True, metavar="KEY", help="[jira] projects: allowed Jira project keys (repeatable).")
@click.option("--adapter", multiple=True, metavar="PACKAGE==VERSION", help="Instead of the profile's adapter(s) (repeatable).")
@click.option(
    "--parse-env", type=ASSIGNMENT, multiple=True, metavar="NAME=VALUE", help="DBT_PARSE_ENV: values of env vars the profile needs."
)
@click.option("--repository-prefix", default="", metavar="PREFIX", help="Repository names: PREFIXdbt-base, PREFIXdbt-build.")
@click.option("--set", "set", type=ASSIGNMENT, multiple=True, metavar="KEY=VALUE", help="Any imagectl.toml key, dotted (repeatable).")
@click.option("--project-dir", metavar="DIR", help="The dbt project's folder (default: the only dbt_project.yml found).")
@click.option("--profiles-dir", metavar="DIR", help="Where profiles.yml is (default: the project, DBT_PROFILES_DIR, ~/.dbt).")
@click.option("--force", is_flag=True, help="Overwrite files that exist and differ.")
@click.option("--update", is_flag=True, help="Overwrite only the copies whose template changed and that are unchanged here.")
@click.option("--check", is_flag=True, help="Compare the repository's copies with the installed templates; exit 10 if one lacks a change.")
@click.option("--diff", is_flag=True, help="With --check: show each difference.")
@dry_run_option
@output_option
@click.pass_context
def init(ctx: click.Context, **options: Any) -> None:
    """Adopt imagectl in this dbt repository: imagectl.toml, images/, dags/ and the CI pipeline, from the templates.

    Finds dbt_project.yml and the profile, pins the adapter to dbt-core's minor version, and writes only what is
    missing (--force: also what differs). --check tells which copies differ from this imagectl's templates.

    \b
    Examples:
      imagectl init --ci gitlab --registry dev=111111111111.dkr.ecr.eu-west-1.amazonaws.com --airflow dev=http://airflow:8080
      imagectl init --dry-run                    # what it would write
      imagectl init --check --diff               # after upgrading imagectl: which templates changed
    """
    from imagectl.action import run
    from imagectl.commands.init import Init, InitRequest, check

    output, dry_run = options.pop("output"), options.pop("dry_run")
    checking, with_diff = options.pop("check"), options.pop("diff")
    request = InitRequest(directory=Path.cwd(), environ=dict(os.environ), **options)
    if checking:
        result: Result = check(request, with_diff)
    else:
        ask = (lambda question: click.prompt(question, err=True)) if sys.stdin.isatty() else None
        result = run(Init(request, ask), dry_run=dry_run)
    click.echo(to_json(result, report.collected()) if output == "json" else result.text())
    if checking and not result.ok:  # type: ignore[attr-defined]
        ctx.exit(Exit.DRIFT)


@cli.command()
@click.argument("which", required=False, type=IMAGE)
@config_option
@env_option
@click.option("--jira", type=JIRA_KEY, help="Jira key (default: from the branch name, then the commit messages since main).")
@click.option("--build-number", type=BUILD_NUMBER, help="CI build number (default: the CI system's, e.g. $bamboo_buildNumber).")
@click.option("--tag", type=NEW_TAG, help="Use this tag instead of <JIRA-KEY>-<BUILD-NUMBER>.")
@click.option("--build-arg", "build_args", type=BUILD_ARG, multiple=True, help="Docker build argument KEY=VALUE (repeatable).")
@click.option("--no-push", is_flag=True, help="Build locally and push nothing.")
@dry_run_option
@output_option
@click.option("--quiet", "-q", is_flag=True, help="No build or push progress on stderr.")
def build(**options: Any) -> None:
    """Build the base and build images (or just WHICH: base|build), tag and push them.

    The base image is reused when its inputs are unchanged; the build image is built FROM the base by digest.

    \b
    Examples:
      imagectl build --build-number 57              # tag from the branch: DATA-1234-57
      imagectl build --dry-run                      # what would be built, reused or pushed, and why
      imagectl build build --no-push --jira DATA-1 --build-number 1
    """
    from imagectl.commands.build import Build, BuildRequest
    from imagectl.progress import Progress

    progress = Progress(quiet=options.pop("quiet"))
    session = Session(options)
    session.change(Build(session.workspace, BuildRequest(environment=session.environment, **options), progress))


@cli.group(context_settings=CONTEXT)
def tags() -> None:
    """Read the tag registry: what each tag is (ticket, build, commit, base).

    \b
    Examples:
      imagectl tags list --jira DATA-1234
      imagectl tags show DATA-1234-57
    """


@tags.command("list")
@config_option
@env_option
@click.option("--image", type=IMAGE, help="Only base or only build images (default: both).")
@click.option("--jira", type=JIRA_KEY, help="Only builds of this Jira key (with --image base: the bases they used).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many rows.")
@output_option
def tags_list(**options: Any) -> None:
    """List build tags, newest first.

    \b
    Examples:
      imagectl tags list                                # the newest 20 of both images
      imagectl tags list --jira DATA-1234 --image base  # which bases DATA-1234's builds used
      imagectl tags list --limit 200 -o json
    """
    from imagectl.commands.tags import tags_list as run

    session = Session(options)
    session.emit(run(session.workspace.env(session.environment), **options))


@tags.command("show")
@click.argument("tag", type=TAG)
@config_option
@env_option
@click.option("--image", type=IMAGE, help="Only the base or only the build image (default: both).")
@output_option
def tags_show(**options: Any) -> None:
    """Everything known about TAG: labels, commit, the base it used, other tags on the same digest.

    \b
    Examples:
      imagectl tags show DATA-1234-57
      imagectl tags show DATA-1234-57 --image base   # the base this build used
      imagectl tags show v1.4.0 --env prd -o json
    """
    from imagectl.commands.tags import tags_show as run

    session = Session(options)
    session.emit(run(session.workspace.env(session.environment), **options))


@cli.group(context_settings=CONTEXT)
def registry() -> None:
    """Manage the registries imagectl pushes to.

    \b
    Examples:
      imagectl registry init --env prd --dry-run
    """


@registry.command("init")
@config_option
@env_option
@dry_run_option
@output_option
def registry_init(**options: Any) -> None:
    """Create or fix the environment's repositories: tag immutability, scan on push, retention policy (where the registry has them).

    \b
    Examples:
      imagectl registry init --env dev
      imagectl registry init --env prd --dry-run   # what it would change
    """
    from imagectl.commands.registry import InitRegistry, RegistryInitRequest

    session = Session(options)
    session.change(InitRegistry(session.workspace, RegistryInitRequest(session.environment)))


@cli.command()
@click.argument("tag", type=TAG)
@config_option
@env_option
@reason_option
@actor_option
@force_option
@create_option
@verify_option
@yes_option
@dry_run_option
@output_option
def deploy(**options: Any) -> None:
    """Point the environment's image Variable at TAG (digest-pinned), recording a revision.

    \b
    Examples:
      imagectl deploy DATA-1234-57 --env dev
      imagectl deploy DATA-1234-57 --env dev --dry-run
      imagectl deploy DATA-1234-57 --env dev --verify    # then a dbt run proves it, or it is rolled back
      imagectl deploy v1.4.0 --env prd --reason "re-deploy after the outage" --yes
    """
    from imagectl.commands.deploy import Deploy, DeployRequest

    session = Session(options)
    session.change(Deploy(session.workspace, DeployRequest(environment=session.environment, **options), on_state=_progress))


@cli.command()
@click.argument("tag", type=TAG, required=False)
@click.option("--jira", type=JIRA_KEY, help="Instead of TAG: the newest build of this ticket the source environment ran.")
@click.option("--git-sha", type=GIT_SHA, help="Instead of TAG: the image built from this commit that the source environment ran.")
@click.option("--from", "from_env", required=True, type=ENV, help="Source environment (e.g. dev).")
@click.option("--to", "to_env", required=True, type=ENV, help="Target environment (e.g. prd).")
@click.option("--bump", type=BUMP, default="patch", show_default=True, help="Release version bump in a release environment.")
@force_option
@create_option
@verify_option
@config_option
@reason_option
@actor_option
@yes_option
@dry_run_option
@output_option
def promote(**options: Any) -> None:
    """Promote an image the source environment ran to the target environment (copied across registries).

    \b
    Examples:
      imagectl promote DATA-1234-57 --from dev --to prd --reason "weekly release"
      imagectl promote --jira DATA-1234 --from dev --to prd --bump minor --yes
      imagectl promote --git-sha 3f2a9c1 --from dev --to prd --dry-run
    """
    from imagectl.commands.promote import Promote, PromoteRequest

    session = Session(options, needs_environment=False)
    session.change(Promote(session.workspace, PromoteRequest(**options), on_state=_progress))


@cli.command()
@click.option("--to", "to", type=REVISION_OR_TAG, help="A revision number or a tag (default: the previous image).")
@click.option("--freeze", is_flag=True, help="Also freeze the environment, so ci does not deploy over the rollback.")
@config_option
@env_option
@reason_option
@actor_option
@create_option
@yes_option
@dry_run_option
@output_option
def rollback(**options: Any) -> None:
    """Point the environment back at an earlier image; a new revision, nothing is deleted (allowed while frozen).

    \b
    Examples:
      imagectl rollback --env prd --reason "orders model broke revenue" --freeze
      imagectl rollback --env prd --to 41            # a revision; --to DATA-1200-33: a tag
      imagectl rollback --env prd --dry-run          # the plan and what it would undo
    """
    from imagectl.commands.rollback import Rollback, RollbackRequest

    session = Session(options)
    # What the rollback undoes is shown with the plan and at the confirmation prompt (a terminal without --yes).
    with_diff = session.dry_run or (not session.yes and sys.stdin.isatty())
    session.change(Rollback(session.workspace, RollbackRequest(environment=session.environment, with_diff=with_diff, **options)))


@cli.command()
@config_option
@env_option
@reason_option
@actor_option
@dry_run_option
@output_option
def freeze(**options: Any) -> None:
    """Freeze the environment: deploy, promote and ci refuse until unfreeze (rollback still works).

    \b
    Examples:
      imagectl freeze --env prd --reason "revenue incident INC-42; on call investigating"
      imagectl history --env prd                     # shows who froze it, when and why
    """
    _freeze("freeze", options)


@cli.command()
@config_option
@env_option
@reason_option
@actor_option
@dry_run_option
@output_option
def unfreeze(**options: Any) -> None:
    """Unfreeze the environment: deploy, promote and ci work again.

    \b
    Examples:
      imagectl unfreeze --env prd --reason "INC-42 resolved"
    """
    _freeze("unfreeze", options)


def _progress(state: str) -> None:
    click.echo(f"verification: {state}", err=True)


@cli.command()
@config_option
@env_option
@click.option("--revision", type=click.IntRange(min=1), help="The revision to verify (default: the newest).")
@click.option("--by", type=click.Choice(["trigger", "schedule"]), help="Trigger a dbt run, or wait for the next scheduled one.")
@click.option("--timeout", type=click.IntRange(min=60, max=172_800), help="Seconds to wait for the run (default: [verify] timeout).")
@actor_option
@dry_run_option
@output_option
def verify(**options: Any) -> None:
    """Prove a revision with a dbt run and record the verdict; on failure reject its image and roll back.

    The run must render the revision's image and succeed. A failure rejects the image in the environment and
    rolls back to the newest verified revision (unless [verify] on_failure = "report"). Exit 0 verified, 18
    failed and rolled back, 19 failed and not rolled back, 20 failed (report only).

    \b
    Examples:
      imagectl verify --env dev                          # the newest revision, by the environment's [verify] by
      imagectl verify --env prd --by schedule            # wait for the 08:00 run and judge it
      imagectl verify --env prd --revision 41 -o json    # a revision's verdict (read back if recorded)
    """
    from imagectl.commands.verify import Verify, VerifyRequest

    session = Session(options)
    session.change(Verify(session.workspace, VerifyRequest(environment=session.environment, **options), on_state=_progress))


@cli.command()
@click.argument("tag", type=TAG)
@config_option
@env_option
@click.option("--reason", type=REASON, required=True, help="Why the environment must not run it (recorded).")
@actor_option
@dry_run_option
@output_option
def reject(**options: Any) -> None:
    """Reject an image in an environment: deploy, promote and ci refuse it there (exit 17) until unreject.

    A failed verification rejects its image by itself; this is the same by hand.

    \b
    Examples:
      imagectl reject DATA-1234-57 --env prd --reason "INC-42: wrong revenue numbers"
    """
    _reject("reject", options)


@cli.command()
@click.argument("tag", type=TAG)
@config_option
@env_option
@click.option("--reason", type=REASON, required=True, help="Why it may run again (recorded).")
@actor_option
@dry_run_option
@output_option
def unreject(**options: Any) -> None:
    """Lift an image's rejection in an environment (the rejection stays in its record, with this lifting after it).

    \b
    Examples:
      imagectl unreject DATA-1234-57 --env dev --reason "the failure was the warehouse, not the image"
    """
    _reject("lift", options)


def _reject(action: str, options: dict[str, Any]) -> None:
    from imagectl.commands.reject import Reject, RejectRequest

    session = Session(options)
    session.change(Reject(session.workspace, RejectRequest(environment=session.environment, action=action, **options)))


def _freeze(action: str, options: dict[str, Any]) -> None:
    from imagectl.commands.freeze import Freeze, FreezeRequest

    session = Session(options)
    session.change(Freeze(session.workspace, FreezeRequest(environment=session.environment, action=action, **options)))


@cli.command()
@config_option
@env_option
@click.option("--limit", type=click.IntRange(min=1, max=100_000), default=20, show_default=True, help="At most this many revisions.")
@output_option
def history(**options: Any) -> None:
    """The environment's revisions, newest first; the one its Variable holds is marked *.

    \b
    Examples:
      imagectl history --env prd
      imagectl history --env dev --limit 200 -o json
    """
    from imagectl.commands.history import history as run

    session = Session(options)
    session.emit(run(session.workspace.env(session.environment), **options))


@cli.command()
@config_option
@click.option("--env", "environment", type=ENV, help="One environment (default: all).")
@output_option
@click.pass_context
def status(ctx: click.Context, **options: Any) -> None:
    """Where every environment stands: Variable, latest revision, last dbt run's image; exit 10 if they disagree.

    \b
    Examples:
      imagectl status
      imagectl status --env prd -o json
    """
    from imagectl.commands.status import status as run

    session = Session(options, needs_environment=False)
    result = run(session.workspace, session.environment or None)
    session.emit(result)
    if not result.ok:
        ctx.exit(Exit.DRIFT)


@cli.command()
@click.argument("a", required=False, type=REVISION_OR_TAG)
@click.argument("b", required=False, type=REVISION_OR_TAG)
@config_option
@env_option
@output_option
def diff(**options: Any) -> None:
    """What changes between two images (revisions or tags): commits, Jira keys, dbt files. Default: current vs the rollback target.

    \b
    Examples:
      imagectl diff --env prd                   # what a rollback would undo
      imagectl diff 41 43 --env prd             # two revisions
      imagectl diff DATA-1-7 DATA-1-9 --env dev
    """
    from imagectl.commands.diff import diff as run

    session = Session(options)
    session.emit(run(session.workspace.env(session.environment), **options))


@cli.command()
@click.argument("dag_id", type=DAG_ID)
@config_option
@env_option
@click.option("--conf", type=JSON_OBJECT, default="{}", help="The run's conf, a JSON object.")
@click.option("--run-id", type=RUN_ID, help="Run id (default: Airflow's). A run with this id that exists already is not started again.")
@wait_options
@dry_run_option
@output_option
@click.pass_context
def trigger(ctx: click.Context, **options: Any) -> None:
    """Trigger DAG_ID in the environment's Airflow and print the run's URL.

    With --wait on the dbt DAG, also checks the image the run's task actually rendered (exit 12 if it is not
    the deployed one).

    \b
    Examples:
      imagectl trigger dbt_build --conf '{"mode": "full"}' --wait
      imagectl trigger dbt_build --conf '{"select": "orders+"}' --env prd
      imagectl trigger lightdash_sync --run-id refresh-after-fix
    """
    from imagectl.commands.trigger import Trigger, TriggerRequest, raise_if_other_image

    session = Session(options)
    request = TriggerRequest(environment=session.environment, **options)
    on_state = lambda state: click.echo(f"{request.dag_id}: {state}", err=True)  # noqa: E731
    result = session.change(Trigger(session.workspace.env(session.environment), request, on_state=on_state))
    if session.dry_run:
        return
    raise_if_other_image(result.verification, session.environment, request.dag_id)
    if not result.ok:
        ctx.exit(Exit.RUN_FAILED)


@cli.command()
@config_option
@click.option("--jira", type=JIRA_KEY, help="Jira key (default: from the branch name, then the commit messages).")
@click.option(
    "--build-number", type=BUILD_NUMBER, help="Default: the CI system's ($bamboo_buildNumber, $CI_PIPELINE_IID, $GITHUB_RUN_NUMBER)."
)
@wait_options
@verify_option
@yes_option
@dry_run_option
@output_option
@click.option("--quiet", "-q", is_flag=True, help="No build or push progress on stderr.")
@click.pass_context
def ci(ctx: click.Context, **options: Any) -> None:
    """The CI step (Bamboo, GitLab CI, GitHub Actions): build, push, deploy (or promote), trigger Lightdash and a slim dbt build.

    \b
    Examples:
      imagectl ci --wait                 # in CI: the system's own variables say branch, build and result
      imagectl ci --dry-run              # every decision, nothing done
      imagectl ci --wait --yes           # on main, whose environment (prd) asks for confirmation
    """
    from imagectl.commands.ci import Ci, CiRequest
    from imagectl.commands.trigger import raise_if_other_image
    from imagectl.progress import Progress

    progress = Progress(quiet=options.pop("quiet"))
    session = Session(options, needs_environment=False)
    result = session.change(Ci(session.workspace, CiRequest(**options), progress))
    if session.dry_run:
        return
    for triggered in result.triggers:
        raise_if_other_image(triggered.verification, triggered.environment, triggered.dag_id)
    if not result.ok:
        ctx.exit(Exit.RUN_FAILED)


@cli.command()
@config_option
@env_option
@click.option("--yes", "-y", is_flag=True, help="Delete (without it, gc only shows what it would delete).")
@output_option
def gc(**options: Any) -> None:
    """Delete what the retention rules expire (the same rules as the ECR lifecycle policy), keeping everything in use.

    \b
    Examples:
      imagectl gc --env dev             # what would be deleted, and by which rule
      imagectl gc --env dev --yes
    """
    from imagectl.commands.gc import Gc, GcRequest

    session = Session(options)
    session.change(Gc(session.workspace, GcRequest(session.environment)), dry_run=not session.yes)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script (environments from imagectl.toml, tags and revisions from the registry).

    \b
    Examples:
      eval "$(imagectl completion bash)"          # in ~/.bashrc
      imagectl completion fish > ~/.config/fish/completions/imagectl.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "imagectl", "_IMAGECTL_COMPLETE").source())


@cli.command("exit-codes")
def exit_codes() -> None:
    """List imagectl's exit codes and what each means.

    \b
    Examples:
      imagectl exit-codes
    """
    for code, meaning in sorted(EXIT_CODES.items()):
        click.echo(f"{int(code):>3}  {meaning}")


def main() -> None:
    cli(prog_name="imagectl")
