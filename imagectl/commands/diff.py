"""``imagectl diff [A] [B] --env ENV``: what changes between two images of an environment — by default what a
rollback would undo (the current image vs the rollback target).

A and B are revisions or tags. Each image's commit comes from its revision record, its build record, or its
labels. Inside the dbt repository (gitpython) the summary lists the commits between the two, the Jira keys in
them and the dbt files changed under the project path; outside it, the two images' labels alone.
"""

from __future__ import annotations

from imagectl.environment import Environment
from imagectl.errors import NotFoundError
from imagectl.image_diff import Diff, Side, diff_images
from imagectl.rollout import HISTORY_WINDOW
from imagectl.targets import image_of, rollback_target

__all__ = ["Diff", "Side", "diff", "diff_images"]


def diff(env: Environment, a: str | None, b: str | None) -> Diff:
    environment, config = env.name, env.config
    history = env.history.newest(HISTORY_WINDOW)
    if (a is None or b is None) and not history:
        raise NotFoundError(f"{environment} has no history to compare", "name two tags: imagectl diff TAG_A TAG_B --env ENV")
    if a is None:
        current = history[0]
        side_a = Side.of(f"revision {current.revision} (current)", current.tag, current.digest, current.git_sha)
    else:
        tag, digest, sha, how = image_of(env, history, a)
        side_a = Side.of(how, tag, digest, sha)
    if b is None:
        tag, digest, how = rollback_target(env, history, None, history[0].reference)
        sha = next((r.git_sha for r in history if r.digest == digest and r.git_sha), None)
        side_b = Side.of(f"{how} (rollback target)", tag, digest, sha)
    else:
        tag, digest, sha, how = image_of(env, history, b)
        side_b = Side.of(how, tag, digest, sha)
    return diff_images(config, env, side_a, side_b)
