"""``imagectl registry init``: make the environment's repositories as imagectl needs them (plan, then apply):
created, tags immutable, scanned on push, the retention policy in place — for registries that have such
settings; for others there is nothing to do, and the result says so."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from imagectl.action import Action, Plan
from imagectl.config import IMAGE_NAMES
from imagectl.registries._base import RepositoryChange
from imagectl.workspace import Workspace


@dataclass
class RegistryInit(Plan):
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
        return "\n".join(lines)


@dataclass(frozen=True)
class RegistryInitRequest:
    environment: str


class InitRegistry(Action[RegistryInit, RegistryInit]):
    def __init__(self, workspace: Workspace, request: RegistryInitRequest) -> None:
        self.env = workspace.env(request.environment)
        self.repositories = [workspace.config.images[name].repository for name in IMAGE_NAMES]

    def plan(self) -> RegistryInit:
        registry = self.env.registry
        changes = [change for repo in self.repositories for change in registry.plan_repository(repo)]
        return RegistryInit(self.env.name, registry.name, self.repositories, changes, False, registry.retention_policy())

    def apply(self, plan: RegistryInit) -> RegistryInit:
        self.env.registry.apply_repository(plan.changes)
        plan.applied = True
        return plan
