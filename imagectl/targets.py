"""Which image a name points at in an environment: a revision number or a tag (``--to``, ``diff A B``), and the
image a plain ``rollback`` goes back to. Shared by rollback and diff."""

from __future__ import annotations

from imagectl.environment import Environment
from imagectl.errors import NotFoundError
from imagectl.history import Revision


def rollback_target(env: Environment, history: list[Revision], to: str | None, variable_value: str | None) -> tuple[str, str, str]:
    """(tag, digest, how) of the image a rollback goes to (pure in ``history`` except for --to N / TAG lookups)."""
    current = history[0]
    if to is None:
        if variable_value != current.reference and current.action == "rollback":
            target = current  # the same rollback, run again after a failure: finish it
        else:
            earlier = next((r for r in history[1:] if r.digest != current.digest), None)
            if earlier is None:
                raise NotFoundError(f"no earlier revision of {env.name} ran another image", "name a target with --to REVISION|TAG")
            target = earlier
        return target.tag, target.digest, f"revision {target.revision}"
    tag, digest, _, how = image_of(env, history, to)
    return tag, digest, how


def image_of(env: Environment, history: list[Revision], ref: str) -> tuple[str, str, str | None, str]:
    """(tag, digest, git_sha, how) of ``ref`` in the environment: a revision number (from ``history`` when it is
    there, else looked up) or a tag in its registry (commit unknown here)."""
    if ref.isdigit():
        number = int(ref)
        found = next((r for r in history if r.revision == number), None) or env.history.get(number)
        if found is None:
            raise NotFoundError(f"{env.name} has no revision {number}", f"see imagectl history --env {env.name}")
        return found.tag, found.digest, found.git_sha, f"revision {number}"
    manifest = env.image(ref)
    if manifest is None:
        raise NotFoundError(
            f"{ref} does not exist in {env.name}'s registry '{env.registry.name}'; nothing was changed",
            f"see imagectl tags list --env {env.name}",
        )
    return ref, manifest.digest, None, f"tag {ref}"
