"""One exception family for every failure a user can cause, and every exit code imagectl uses.

Each error carries a one-line message (what was wrong) and a hint (what to do). The CLI prints
``error: <message> — <hint>`` and exits with the class's ``exit_code``; nothing else decides exit codes.
The table at the bottom is the README's exit-code table.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Every exit code imagectl uses (README, "Exit codes")."""

    OK = 0
    FAILED = 1  # a bug in imagectl: please report it (never used on purpose)
    INPUT = 2
    CONFIG = 3
    NOT_FOUND = 4
    CONFLICT = 5
    REGISTRY = 6
    DOCKER = 7
    GIT = 8
    AIRFLOW = 9
    DRIFT = 10
    RUN_FAILED = 11
    RAN_OTHER_IMAGE = 12
    ABORTED = 13
    FROZEN = 14
    SCAN_GATE = 15
    TIMEOUT = 16
    REJECTED = 17
    VERIFY_ROLLED_BACK = 18
    VERIFY_NOT_ROLLED_BACK = 19
    VERIFY_FAILED = 20
    JIRA_GATE = 21


class ImagectlError(Exception):
    """Base class: a failure the user can understand and act on."""

    exit_code: Exit = Exit.FAILED

    def __init__(self, message: str, hint: str = "", details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Output worth seeing before the one-line message (e.g. a failed build step's last lines).
        self.details = details

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} — {self.hint}"
        return " ".join(text.split())


class InputError(ImagectlError):
    """A value given on the command line or from CI variables is missing or invalid."""

    exit_code = Exit.INPUT


class ConfigError(ImagectlError):
    """imagectl.toml is missing, malformed or incomplete."""

    exit_code = Exit.CONFIG


class NotFoundError(ImagectlError):
    """A tag, image, revision or DAG that was asked for does not exist."""

    exit_code = Exit.NOT_FOUND


class ConflictError(ImagectlError):
    """The change would move an immutable tag or otherwise contradict what is recorded."""

    exit_code = Exit.CONFLICT


class RegistryError(ImagectlError):
    """The registry (ECR or OCI) refused, could not be reached, or cannot give a guarantee imagectl needs."""

    exit_code = Exit.REGISTRY


class DockerError(ImagectlError):
    """The Docker engine could not be reached or a build/push failed."""

    exit_code = Exit.DOCKER


class GitError(ImagectlError):
    """The git repository could not be read."""

    exit_code = Exit.GIT


class AirflowError(ImagectlError):
    """Airflow (or the Variable store it reads from) could not be reached, refused, or answered unexpectedly."""

    exit_code = Exit.AIRFLOW


class RanOtherImageError(ImagectlError):
    """The DAG run's task rendered another image than the one imagectl deployed."""

    exit_code = Exit.RAN_OTHER_IMAGE


class AbortedError(ImagectlError):
    """The user answered no at the confirmation prompt."""

    exit_code = Exit.ABORTED


class FrozenError(ImagectlError):
    """The environment is frozen: deploy, promote and ci refuse until it is unfrozen."""

    exit_code = Exit.FROZEN


class ScanGateError(ImagectlError):
    """The image's scan findings are above the environment's max_severity, or could not be checked."""

    exit_code = Exit.SCAN_GATE


class RejectedError(ImagectlError):
    """The image is rejected in the target environment (a failed verification, or imagectl reject)."""

    exit_code = Exit.REJECTED


class VerifyFailedError(ImagectlError):
    """A deploy's verification failed; ``exit_code`` says whether the automatic rollback happened (set per case)."""

    exit_code = Exit.VERIFY_FAILED

    def __init__(self, message: str, hint: str = "", exit_code: Exit = Exit.VERIFY_FAILED) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code


class JiraError(ImagectlError):
    """Jira could not be reached, or refused imagectl's credentials or request (a warning when reporting)."""

    exit_code = Exit.JIRA_GATE


class JiraGateError(ImagectlError):
    """Promoting into the environment needs its Jira issues in named statuses, and one is not (or Jira cannot say)."""

    exit_code = Exit.JIRA_GATE


class TimeoutError_(ImagectlError):  # noqa: N801 - the builtin name is taken
    """The command's time budget (or --timeout of --wait) ran out."""

    exit_code = Exit.TIMEOUT


EXIT_CODES: dict[Exit, str] = {
    Exit.OK: "done",
    Exit.FAILED: "a bug in imagectl (an unexpected error): please report it with the command you ran",
    Exit.INPUT: "bad input (an option, a missing Jira key or build number, an empty --env)",
    Exit.CONFIG: "configuration problem (imagectl.toml, or a missing credential variable)",
    Exit.NOT_FOUND: "not found (tag, image, revision, DAG)",
    Exit.CONFLICT: (
        "conflict (a tag exists with other content; an image never ran where promote takes it from; "
        "what a rollback would undo changed meanwhile)"
    ),
    Exit.REGISTRY: "registry refused, unreachable, over a quota, or without a guarantee imagectl needs",
    Exit.DOCKER: "Docker engine unreachable, or a build/push failed",
    Exit.GIT: "git repository unreadable",
    Exit.AIRFLOW: "Airflow or the Variable store unreachable, refused, or shadowed by a secrets backend",
    Exit.DRIFT: "status: an environment's Variable, history or last run disagree, its image is missing, or could not be read; "
    "init --check: a copy lacks a change of the installed imagectl's templates",
    Exit.RUN_FAILED: "trigger --wait / ci --wait: the DAG run failed",
    Exit.RAN_OTHER_IMAGE: "trigger --wait / ci --wait: the run's task rendered another image than the one deployed",
    Exit.ABORTED: "answered no at the confirmation prompt; nothing was changed",
    Exit.FROZEN: (
        "the environment is frozen (imagectl unfreeze, or --force --reason) — decided when the revision is claimed, "
        "so also when a freeze landed after the plan"
    ),
    Exit.SCAN_GATE: "the scan gate refused the promotion (findings above max_severity, or not checkable)",
    Exit.TIMEOUT: "the command's time budget or --wait --timeout ran out; the message says what is known",
    Exit.REJECTED: "the image is rejected in this environment (a failed verification, or imagectl reject): unreject, or --force --reason",
    Exit.VERIFY_ROLLED_BACK: "verification failed; the environment went back to its newest verified revision, the image is rejected",
    Exit.VERIFY_NOT_ROLLED_BACK: "verification failed and the automatic rollback did not happen (the output says why): roll back by hand",
    Exit.VERIFY_FAILED: 'verification failed; the environment only reports (verify.on_failure = "report"): nothing was rolled back',
    Exit.JIRA_GATE: "the Jira gate refused: an associated issue is not in a required status (or Jira could not say)",
}
