"""What a Jira site is told about one deployment, and what every site client offers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

STATES = ("pending", "in_progress", "cancelled", "failed", "rolled_back", "successful", "unknown")


@dataclass(frozen=True)
class Deployment:
    """One revision of one environment, as Jira sees it: (pipeline, environment, sequence) is its identity; a later
    report with a higher ``update_sequence`` replaces an earlier one (a re-run, a verification's verdict)."""

    pipeline_id: str
    pipeline_name: str
    pipeline_url: str
    environment_id: str
    environment_name: str
    environment_type: str
    sequence: int  # the revision number
    update_sequence: int  # grows with every report of the same deployment
    state: str
    display_name: str  # "prd revision 12: DATA-1234-57"
    description: str
    url: str  # the DAG run, or the pipeline's URL
    last_updated: str  # ISO 8601
    label: str  # the tag (and release)
    issue_keys: tuple[str, ...] = field(default_factory=tuple)

    def key(self) -> str:
        return f"{self.pipeline_id}/{self.environment_id}/{self.sequence}"


class JiraSite(ABC):
    kind: str

    @abstractmethod
    def report(self, deployments: list[Deployment]) -> list[str]:
        """Send the deployments; returns warnings (keys Jira does not know, a rejected deployment). Raises JiraError
        when the site cannot be reached or refuses the credentials."""

    @abstractmethod
    def statuses(self, keys: list[str]) -> dict[str, str | None]:
        """Each issue's status name (None: no such issue, or not visible to these credentials)."""
