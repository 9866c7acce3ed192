"""The scan gate: an image's scan findings are checked before it is promoted (or deployed) into an
environment with ``max_severity``; findings above it refuse, unless ``--force --reason`` (recorded).

Every ECR scan status is decided (ImageScanStatus: IN_PROGRESS, COMPLETE, FAILED, UNSUPPORTED_IMAGE, ACTIVE, PENDING,
SCAN_ELIGIBILITY_EXPIRED, FINDINGS_UNAVAILABLE, LIMIT_EXCEEDED, IMAGE_ARCHIVED). Findings count only when they are
known to be final: status COMPLETE (basic scanning, enhanced scan on push) or ACTIVE (enhanced continuous scanning)
*and* a completed scan (ECR has been observed answering COMPLETE before enhanced findings exist, aws/aws-sdk#289). A
scan still running, or complete without findings yet, is waited for up to ``scan_wait`` seconds. Anything else
refuses with the registry's advice for its scanning set-up; no image whose findings are not known passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imagectl.errors import ScanGateError
from imagectl.registries._base import Registry, ScanReport

ORDER = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
RUNNING = ("IN_PROGRESS", "PENDING")
FINAL = ("COMPLETE", "ACTIVE")


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
    completed: bool = False
    setup: str | None = None
    advice: str = ""

    @property
    def known(self) -> bool:
        """The findings are final (see the module docstring)."""
        return self.status in FINAL and self.completed

    @property
    def passed(self) -> bool:
        return self.known and not self.above

    def summary(self) -> str:
        if self.known:
            counts = (
                ", ".join(f"{k} {n}" for k, n in sorted(self.counts.items(), key=lambda kv: _rank(kv[0]), reverse=True)) or "no findings"
            )
            verdict = "above" if self.above else "within"
            return f"scan: {counts} ({verdict} max_severity {self.max_severity})"
        pending = " (no findings yet)" if self.status in FINAL else ""
        return f"scan: {self.status.lower().replace('_', ' ')}{pending}{f' ({self.detail})' if self.detail else ''}"

    def json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "max_severity": self.max_severity,
            "status": self.status,
            "counts": self.counts,
            "above": self.above,
            "link": self.link,
            "completed": self.completed,
            "setup": self.setup,
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
    while (report.status in RUNNING or (report.status in FINAL and not report.completed)) and time.monotonic() - started < wait:
        if on_wait:
            on_wait(f"scan of {digest[:19]} in {registry.name} is {report.status.lower()}; waiting (up to {wait:.0f} s)")
        sleep(min(poll, max(0.1, wait - (time.monotonic() - started))))
        report = registry.scan_findings(repository, digest)
    threshold = _rank(max_severity)
    above = {k: n for k, n in report.counts.items() if _rank(k) > threshold and n > 0}
    return ScanCheck(
        registry.name,
        max_severity,
        report.status,
        dict(report.counts),
        above,
        report.link,
        report.detail,
        time.monotonic() - started,
        report.completed,
        report.setup,
        report.advice,
    )


def enforce(result: ScanCheck, environment: str, force: bool, reason: str | None) -> str | None:
    """None when the gate passes; the override to record when forced; ScanGateError otherwise."""
    if result.passed:
        return None
    status = result.status.lower().replace("_", " ")
    where = f" ({result.link})" if result.link else ""
    if result.known:
        found = ", ".join(f"{n} {k}" for k, n in sorted(result.above.items(), key=lambda kv: _rank(kv[0]), reverse=True))
        message = f"the image has {found} finding(s), above {environment}'s max_severity {result.max_severity}"
        hint = f"see {result.link}" if result.link else "see the registry's scan results"
    elif result.status == "UNSUPPORTED":
        message = f"{environment} has max_severity {result.max_severity}, but {result.detail or 'the registry does not scan images'}"
        hint = "use a registry that scans (ECR with scan on push: imagectl registry init), or remove max_severity"
    elif result.status in FINAL:
        message = f"the image's scan reports {status} but its findings are not known yet after {result.waited:.0f} s"
        hint = (result.advice or "try again in a few minutes") + where
    elif result.status in RUNNING:
        message = f"the image's scan is still {status} after {result.waited:.0f} s"
        hint = "try again when it finished (raise scan_wait to wait longer)" + where
    elif result.status == "NOT_FOUND":
        message = f"the image has no scan, so its findings are not known{f' ({result.detail})' if result.detail else ''}"
        hint = (result.advice or "scan it, then try again") + where
    else:
        message = f"the image's scan status is {status}{f' ({result.detail})' if result.detail else ''}, so its findings are not known"
        hint = (result.advice or "see the registry's scan results") + where
    if force and reason:
        return f"scan gate: {message}"
    raise ScanGateError(message, f'{hint}; or pass --force --reason "…" to promote anyway (recorded)')
