"""``imagectl rollback --env ENV [--to REVISION|TAG] [--freeze]``: point the environment back at an earlier image.
A rollback is a new revision, never a deletion; it is allowed in a frozen environment; ``--freeze`` freezes
the environment in the same revision (so the next merge's ``imagectl ci`` does not deploy over it)."""

from __future__ import annotations

from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.environment import Environment
from imagectl.errors import NotFoundError
from imagectl.history import Revision
from imagectl.rollout import HISTORY_WINDOW, Prepared, check_reach, decide_in


def rollback_target(env: Environment, history: list[Revision], to: str | None, variable_value: str | None) -> tuple[str, str, str]:
    """(tag, digest, how) of the image a rollback goes to (pure in ``history`` except for --to N / TAG lookups)."""
    current = history[0]
    if to is None:
        if variable_value != current.reference and current.action == "rollback":
            target = current  # the same rollback, run again after a failure: finish it
        else:
            target = next((r for r in history[1:] if r.digest != current.digest), None)  # type: ignore[assignment]
            if target is None:
                raise NotFoundError(f"no earlier revision of {env.name} ran another image", "name a target with --to REVISION|TAG")
        return target.tag, target.digest, f"revision {target.revision}"
    tag, digest, _, how = image_of(env, history, to)
    return tag, digest, how


def image_of(env: Environment, history: list[Revision], ref: str) -> tuple[str, str, str | None, str]:
    """(tag, digest, git_sha, how) of ``ref`` in the environment: a revision number (from ``history`` when it is
    there, else looked up) or a tag in its registry (commit unknown here)."""
    if ref.isdigit():
        number = int(ref)
        found = next((r for r in history if r.revision == number), None) or env.history.get(number)
        if found is None:
            raise NotFoundError(f"{env.name} has no revision {number}", f"see imagectl history --env {env.name}")
        return found.tag, found.digest, found.git_sha, f"revision {number}"
    manifest = env.image(ref)
    if manifest is None:
        raise NotFoundError(
            f"{ref} does not exist in {env.name}'s registry '{env.registry.name}'; nothing was changed",
            f"see imagectl tags list --env {env.name}",
        )
    return ref, manifest.digest, None, f"tag {ref}"


def plan_rollback(
    config: Config,
    credentials: Credentials,
    environment: str,
    to: str | None,
    actor: str,
    reason: str | None,
    *,
    freeze: bool = False,
    create: bool = False,
    with_diff: bool = False,
    env: Environment | None = None,
) -> Prepared:
    env = env or Environment(config, environment, credentials)
    history = env.history.newest(HISTORY_WINDOW)
    if not history:
        raise NotFoundError(
            f"{environment} has no history to roll back", f"deploy something first: imagectl deploy TAG --env {environment}"
        )
    value = env.variable.read()
    tag, digest, how = rollback_target(env, history, to, value)
    if env.image(digest) is None:
        raise NotFoundError(
            f"the image of {how} ({tag}@{digest[:19]}) no longer exists in registry '{env.registry.name}'; nothing was changed",
            "choose another target with --to REVISION|TAG",
        )
    plan = decide_in(env, "rollback", tag, digest, actor=actor, reason=reason, history=history, variable_value=value, freeze=freeze)
    plan.git_sha = next((r.git_sha for r in history if r.digest == digest and r.git_sha), None)
    plan.create_variable = create
    if with_diff and plan.state == "new":
        from imagectl.commands.diff import Side, diff_images

        current = history[0]
        plan.diff = diff_images(
            config,
            env,
            Side.of(f"revision {current.revision}", current.tag, current.digest, current.git_sha),
            Side.of(how, tag, digest, plan.git_sha),
        )
    prepared = Prepared(plan, env)
    check_reach(prepared)
    return prepared
