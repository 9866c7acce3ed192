"""``imagectl registry init``: make the environment's repositories as imagectl needs them (plan, then apply):
created, tags immutable, scanned on push, the retention policy in place — for registries that have such
settings; for others there is nothing to do, and the result says so."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from imagectl.config import IMAGE_NAMES, Config
from imagectl.credentials import Credentials
from imagectl.registries import open_registry
from imagectl.registries._base import Registry, RepositoryChange
from imagectl.render import Result


@dataclass
class RegistryInit(Result):
    kind = "registry-init"

    environment: str
    registry: str
    repositories: list[str]
    changes: list[RepositoryChange]
    applied: bool
    retention_policy: dict[str, Any] | None

    def json(self) -> dict[str, Any]:
        data = asdict(self)
        data["changes"] = [asdict(c) for c in self.changes]
        return data

    def text(self) -> str:
        lines = [f"Registry {self.registry} for environment {self.environment}: {', '.join(self.repositories)}"]
        if not self.changes:
            lines.append(
                "  nothing to change: repositories are as imagectl wants them"
                if self.retention_policy is not None
                else "  nothing to do: this registry creates repositories on first push and has no settings imagectl manages"
            )
        for change in self.changes:
            lines.append(f"  {'done' if self.applied else 'would'}: {change.action} {change.repository} ({change.detail})")
        if not self.applied:
            lines.append("Nothing was changed (--dry-run).")
        return "\n".join(lines)


def registry_init(
    config: Config, credentials: Credentials, environment: str, dry_run: bool, registry: Registry | None = None
) -> RegistryInit:
    reg_config = config.registry_for(environment)
    registry = registry or open_registry(reg_config, credentials.registry(reg_config.name), config.timeouts)
    repositories = [config.images[name].repository for name in IMAGE_NAMES]
    changes = [change for repo in repositories for change in registry.plan_repository(repo)]
    if not dry_run:
        registry.apply_repository(changes)
    return RegistryInit(environment, registry.name, repositories, changes, not dry_run, registry.retention_policy())
