"""What Jira hears about each change — deploy, promote, rollback, and a verification's verdict — and the Jira gate.

One Jira deployment per revision: pipeline = ``[jira] pipeline`` (default: the project's name), environment =
the environment's Jira id and type, ``deploymentSequenceNumber`` = the revision. ``updateSequenceNumber`` is the
report's time in milliseconds, so a re-run of the same command, or the verdict that follows a deploy, replaces what
Jira holds instead of adding a deployment. Issue keys: the image's own key plus every key in the commits between
the environment's previous image and this one (image_diff.py; commits are known inside the dbt repository). A
rollback is reported as ``rolled_back`` with the keys it undoes. Jira down or refusing is one warning — never a
failed change; credentials only from the environment (credentials.py), never printed.

The gate (``[environments.NAME.jira] require_status``): promoting into the environment needs every associated
issue in one of the named statuses; otherwise it is refused (exit 21) with each issue and its status, unless
``--force --reason`` (recorded). A Jira that cannot answer refuses too: a gate that opens when Jira is down is no
gate.
"""

from __future__ import annotations

import time

from imagectl.clock import now_text
from imagectl.environment import Environment
from imagectl.errors import ImagectlError, JiraError, JiraGateError
from imagectl.history import Revision
from imagectl.image_diff import Side, diff_images
from imagectl.jira import Deployment, open_site
from imagectl.report import warn
from imagectl.tagging import parse_build_tag
from imagectl.verdicts import Verdict

DEPLOYING = ("deploy", "promote")


def enabled(env: Environment) -> bool:
    return env.config.jira.configured


def issue_keys(env: Environment, before: Revision | None, after: Revision, undone: bool = False) -> list[str]:
    """The image's own key, then the keys of the commits between ``before``'s image and ``after``'s (``undone``: only
    those going from ``before`` to ``after`` removes — what a rollback undoes — and ``before``'s own key)."""
    own = parse_build_tag((before if undone and before else after).tag)
    keys = [own.jira] if own else []
    if before is not None and before.digest != after.digest:
        try:
            diff = diff_images(
                env.config,
                env,
                Side.of(f"revision {before.revision}", before.tag, before.digest, before.git_sha),
                Side.of(f"revision {after.revision}", after.tag, after.digest, after.git_sha),
            )
            keys += diff.keys_removed if undone else diff.keys_added
        except ImagectlError as exc:
            warn(f"the Jira keys between {before.tag} and {after.tag} are not known ({exc.one_line()}); only the image's own is reported")
    projects = env.config.jira_projects
    return [k for k in dict.fromkeys(keys) if not projects or k.split("-", 1)[0] in projects]


def _deployment(env: Environment, revision: Revision, state: str, keys: list[str], url: str | None, what: str) -> Deployment:
    config = env.config
    pipeline = config.jira.pipeline or config.project_name
    home = config.source or config.jira.url or "https://imagectl.invalid"
    if home.startswith("git@"):
        home = config.jira.url or "https://imagectl.invalid"
    label = revision.tag + (f" ({revision.release})" if revision.release else "")
    return Deployment(
        pipeline_id=pipeline,
        pipeline_name=pipeline,
        pipeline_url=home,
        environment_id=env.settings.jira.environment_id or env.name,
        environment_name=env.name,
        environment_type=env.settings.jira_environment_type,
        sequence=revision.revision,
        update_sequence=int(time.time() * 1000),
        state=state,
        display_name=f"{env.name} revision {revision.revision}: {label}",
        description=f"{what} by {revision.actor}" + (f": {revision.reason}" if revision.reason else ""),
        url=url or home,
        last_updated=now_text(),
        label=label,
        issue_keys=tuple(keys),
    )


def _send(env: Environment, deployment: Deployment) -> None:
    if not deployment.issue_keys:
        warn(f"{deployment.display_name}: no Jira issue keys to report it to")
        return
    try:
        site = open_site(env.config.jira, env.credentials, env.config.timeouts)
        for warning in site.report([deployment]):
            warn(warning)
    except JiraError as exc:
        warn(f"Jira was not told about {deployment.display_name}: {exc.one_line()}")
    except Exception as exc:  # noqa: BLE001 - a report never fails the change
        warn(f"Jira was not told about {deployment.display_name}: {type(exc).__name__}")


def report_change(
    env: Environment, action: str, before: Revision | None, after: Revision, url: str | None = None, verifying: bool = False
) -> None:
    """A recorded (or finished) revision; a deploy about to be verified is reported in progress."""
    if not enabled(env) or action not in (*DEPLOYING, "rollback"):
        return
    if action == "rollback":
        keys = issue_keys(env, before, after, undone=True)
        state = "rolled_back"
    else:
        keys = issue_keys(env, before, after)
        state = "in_progress" if verifying else "successful"
    _send(env, _deployment(env, after, state, keys, url, action))


def report_verdict(env: Environment, revision: Revision, before: Revision | None, verdict: Verdict) -> None:
    """The verdict of a revision's verification: the same Jira deployment, now successful or failed."""
    if not enabled(env):
        return
    keys = issue_keys(env, before, revision)
    _send(env, _deployment(env, revision, "successful" if verdict.verified else "failed", keys, verdict.run_url, revision.action))


def gate(env: Environment, before: Revision | None, after: Revision, force: bool) -> str | None:
    """The environment's Jira gate for promoting ``after`` on top of ``before``: None when it passes (or there is
    none); the text recorded as forced when ``force``; JiraGateError otherwise."""
    required = env.settings.jira.require_status
    if not required:
        return None
    if not enabled(env):
        raise JiraGateError(f"{env.name} requires Jira statuses {', '.join(required)}, but [jira] url is not set", "configure [jira]")
    keys = issue_keys(env, before, after)
    try:
        statuses = open_site(env.config.jira, env.credentials, env.config.timeouts).statuses(keys) if keys else {}
    except JiraError as exc:
        problem = f"Jira could not say whether the issues are {' or '.join(required)} ({exc.one_line()})"
    else:
        wrong = {k: s for k, s in statuses.items() if s not in required}
        if keys and not wrong:
            return None
        problem = (
            "; ".join(f"{k} is {s or 'not found'}" for k, s in wrong.items()) + f" (needed: {' or '.join(required)})"
            if keys
            else "no Jira issue is associated with this image"
        )
    if force:
        return f"Jira gate: {problem}"
    raise JiraGateError(
        f"promoting {after.tag} into {env.name} needs its Jira issues done: {problem}",
        'move them on in Jira, or --force --reason "…" (recorded)',
    )
