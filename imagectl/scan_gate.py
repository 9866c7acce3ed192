"""The scan gate: an image's scan findings are checked before it is promoted (or deployed) into an
environment with ``max_severity``; findings above it refuse, unless ``--force --reason`` (recorded).

A scan still running is waited for up to ``scan_wait`` seconds. A registry that does not scan cannot pass the
gate: it refuses and says what to configure, rather than letting an unchecked image through silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imagectl.errors import ScanGateError
from imagectl.registries._base import Registry, ScanReport

ORDER = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
RUNNING = ("IN_PROGRESS", "PENDING", "SCAN_ELIGIBILITY_EXPIRED_PENDING")


@dataclass
class ScanCheck:
    registry: str
    max_severity: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    above: dict[str, int] = field(default_factory=dict)
    link: str | None = None
    detail: str = ""
    waited: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "COMPLETE" and not self.above

    def summary(self) -> str:
        if self.status == "COMPLETE":
            counts = (
                ", ".join(f"{k} {n}" for k, n in sorted(self.counts.items(), key=lambda kv: _rank(kv[0]), reverse=True)) or "no findings"
            )
            verdict = "above" if self.above else "within"
            return f"scan: {counts} ({verdict} max_severity {self.max_severity})"
        return f"scan: {self.status.lower().replace('_', ' ')}{f' ({self.detail})' if self.detail else ''}"

    def json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "max_severity": self.max_severity,
            "status": self.status,
            "counts": self.counts,
            "above": self.above,
            "link": self.link,
            "passed": self.passed,
            "waited_seconds": round(self.waited, 1),
        }


def _rank(severity: str) -> int:
    return ORDER.index(severity) if severity in ORDER else -1


def check(
    registry: Registry,
    repository: str,
    digest: str,
    max_severity: str,
    wait: float,
    poll: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[str], None] | None = None,
) -> ScanCheck:
    started = time.monotonic()
    report: ScanReport = registry.scan_findings(repository, digest)
    while report.status in RUNNING and time.monotonic() - started < wait:
        if on_wait:
            on_wait(f"scan of {digest[:19]} in {registry.name} is {report.status.lower()}; waiting (up to {wait:.0f} s)")
        sleep(min(poll, max(0.1, wait - (time.monotonic() - started))))
        report = registry.scan_findings(repository, digest)
    threshold = _rank(max_severity)
    above = {k: n for k, n in report.counts.items() if _rank(k) > threshold and n > 0}
    return ScanCheck(
        registry.name, max_severity, report.status, dict(report.counts), above, report.link, report.detail, time.monotonic() - started
    )


def enforce(result: ScanCheck, environment: str, force: bool, reason: str | None) -> str | None:
    """None when the gate passes; the override to record when forced; ScanGateError otherwise."""
    if result.passed:
        return None
    if result.status == "COMPLETE":
        found = ", ".join(f"{n} {k}" for k, n in sorted(result.above.items(), key=lambda kv: _rank(kv[0]), reverse=True))
        message = f"the image has {found} finding(s), above {environment}'s max_severity {result.max_severity}"
        hint = f"see {result.link}" if result.link else "see the registry's scan results"
    elif result.status == "UNSUPPORTED":
        message = f"{environment} has max_severity {result.max_severity}, but {result.detail or 'the registry does not scan images'}"
        hint = "use a registry that scans (ECR with scan on push: imagectl registry init), or remove max_severity"
    elif result.status in RUNNING:
        message = f"the image's scan is still {result.status.lower().replace('_', ' ')} after {result.waited:.0f} s"
        hint = "try again when it finished" + (f" ({result.link})" if result.link else "")
    else:
        message = f"the image's scan could not be read: {result.status.lower()}{f' ({result.detail})' if result.detail else ''}"
        hint = "start a scan (aws ecr start-image-scan) and try again" + (f"; {result.link}" if result.link else "")
    if force and reason:
        return f"scan gate: {message}"
    raise ScanGateError(message, f'{hint}; or pass --force --reason "…" to promote anyway (recorded)')
