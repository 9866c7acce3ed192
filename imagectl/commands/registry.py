"""``imagectl registry init``: create the environment's repositories as imagectl wants them (plan, then apply)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from imagectl.config import IMAGE_NAMES, Config
from imagectl.lifecycle import lifecycle_policy
from imagectl.registries import Registry, RepositoryChange, open_registry


@dataclass
class RegistryInit:
    environment: str
    registry: str
    kind: str
    repositories: list[str]
    changes: list[RepositoryChange]
    applied: bool
    lifecycle_policy: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["changes"] = [asdict(c) for c in self.changes]
        return data


def registry_init(config: Config, environment: str, dry_run: bool, registry: Registry | None = None) -> RegistryInit:
    reg_config = config.registry_for(environment)
    registry = registry or open_registry(reg_config)
    repositories = [config.images[name].repository for name in IMAGE_NAMES]
    changes = [change for repo in repositories for change in registry.plan_repository(repo)]
    if not dry_run:
        registry.apply_repository(changes)
    return RegistryInit(
        environment=environment,
        registry=registry.name,
        kind=registry.kind,
        repositories=repositories,
        changes=changes,
        applied=not dry_run,
        lifecycle_policy=lifecycle_policy(reg_config.lifecycle) if registry.kind == "ecr" else None,
    )
