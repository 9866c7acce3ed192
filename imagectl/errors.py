"""One exception family for every failure a user can cause.

Each error carries a one-line message (what was wrong) and a hint (what to do). The CLI prints
``error: <message> — <hint>`` and exits with the class's ``exit_code``; nothing else decides exit codes.
"""

from __future__ import annotations


class ImagectlError(Exception):
    """Base class: a failure the user can understand and act on."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Output worth seeing before the one-line message (e.g. a failed build step's last lines).
        self.details = details

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} — {self.hint}"
        return " ".join(text.split())


class ConfigError(ImagectlError):
    """imagectl.toml is missing, malformed or incomplete."""

    exit_code = 3


class InputError(ImagectlError):
    """A value given on the command line or from CI variables is missing or invalid."""

    exit_code = 2


class NotFoundError(ImagectlError):
    """A tag, image or repository that was asked for does not exist."""

    exit_code = 4


class ConflictError(ImagectlError):
    """The change would move an immutable tag or otherwise contradict what is recorded."""

    exit_code = 5


class RegistryError(ImagectlError):
    """The registry (ECR or OCI) refused or could not be reached."""

    exit_code = 6


class DockerError(ImagectlError):
    """The Docker engine could not be reached or a build/push failed."""

    exit_code = 7


class GitError(ImagectlError):
    """The git repository could not be read."""

    exit_code = 8


class AirflowError(ImagectlError):
    """Airflow could not be reached, refused, or answered unexpectedly."""

    exit_code = 9


# Not an exception: `status` exits with this when an environment's Variable and its history disagree.
EXIT_DRIFT = 10

# Not an exception: `trigger --wait` and `ci --wait` exit with this when the DAG run failed.
EXIT_RUN_FAILED = 11
