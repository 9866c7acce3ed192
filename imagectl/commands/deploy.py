"""``imagectl deploy TAG --env ENV``: point the environment's image Variable at TAG (digest-pinned), recording a
revision. Re-deploying what runs records nothing; a frozen environment refuses unless ``--force --reason``."""

from __future__ import annotations

from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.environment import Environment
from imagectl.errors import NotFoundError
from imagectl.rollout import Prepared, check_reach, decide_in, gate_scan
from imagectl.tag_registry import build_commit


def plan_deploy(
    config: Config,
    credentials: Credentials,
    environment: str,
    tag: str,
    actor: str,
    reason: str | None,
    *,
    force: bool = False,
    create: bool = False,
    bump: str = "patch",
    env: Environment | None = None,
) -> Prepared:
    env = env or Environment(config, environment, credentials)
    manifest = env.image(tag)
    if manifest is None:
        raise NotFoundError(
            f"{env.reference(tag, '').rstrip('@')} does not exist in registry '{env.registry.name}'",
            f"build it first, or list what exists: imagectl tags list --env {environment}",
        )
    plan = decide_in(env, "deploy", tag, manifest.digest, actor=actor, reason=reason, bump=bump, force=force)
    plan.git_sha = build_commit(env.registry, env.repository, tag, manifest.digest)
    plan.create_variable = create
    prepared = Prepared(plan, env)
    gate_scan(prepared, force)
    check_reach(prepared)
    return prepared
