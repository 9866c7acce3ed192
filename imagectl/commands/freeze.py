"""``imagectl freeze --env prd --reason "…"`` / ``imagectl unfreeze --env prd``.

While frozen, ``deploy``, ``promote`` into the environment and ``ci`` refuse (``ci`` still builds, and stops
before deploying with exit 0); ``rollback`` is allowed. The freeze is a revision in the environment's history
(so every laptop and agent sees it), shown by ``history`` and ``status``; ``--force --reason`` overrides it and
the override is recorded in the revision."""

from __future__ import annotations

from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.environment import Environment
from imagectl.errors import InputError
from imagectl.rollout import HISTORY_WINDOW, Prepared, check_reach, decide_freeze


def plan_freeze(
    config: Config, credentials: Credentials, environment: str, action: str, actor: str, reason: str | None, env: Environment | None = None
) -> Prepared:
    if action == "freeze" and not reason:
        raise InputError("freeze needs --reason", 'say why, e.g. --reason "orders model broke revenue; DATA-1234 investigating"')
    env = env or Environment(config, environment, credentials)
    plan = decide_freeze(
        action,
        settings=env.settings,
        history=env.history.newest(HISTORY_WINDOW),
        actor=actor,
        reason=reason,
        variable_location=env.variable.location(),
        registry=env.registry.name,
        variable_value=env.variable.read(),
    )
    prepared = Prepared(plan, env)
    check_reach(prepared)
    return prepared
