"""``imagectl promote (TAG | --jira KEY | --git-sha SHA) --from dev --to prd``: promote an image the source
environment ran. Across registries the image is copied with its digest unchanged (only missing blobs move);
within one registry nothing is copied. A release environment gives it the next version."""

from __future__ import annotations

from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.environment import Environment
from imagectl.errors import ConflictError, InputError, NotFoundError
from imagectl.history import Revision
from imagectl.namespaces import deployed_tag
from imagectl.rollout import HISTORY_WINDOW, Prepared, check_reach, decide_in, gate_scan
from imagectl.tag_registry import build_commit
from imagectl.tagging import parse_build_tag

SEARCH_WINDOW = 200  # how far back --jira and --git-sha look in the source's history


def _chosen(source: Environment, ran: list[Revision], jira: str | None, git_sha: str | None, from_env: str) -> Revision | None:
    if jira is not None:
        chosen = next((r for r in ran if (p := parse_build_tag(r.tag)) and p.jira == jira), None)
        if chosen is None:
            raise NotFoundError(
                f"no build of {jira} was deployed in {from_env} (newest {SEARCH_WINDOW} revisions)",
                f"see imagectl history --env {from_env}",
            )
        return chosen
    if git_sha is not None:
        chosen = next((r for r in ran if r.git_sha and r.git_sha.startswith(git_sha)), None)
        if chosen is None:
            raise NotFoundError(
                f"no image built from commit {git_sha} was deployed in {from_env} (newest {SEARCH_WINDOW} revisions)",
                f"see imagectl history --env {from_env}",
            )
        return chosen
    return None


def plan_promote(
    config: Config,
    credentials: Credentials,
    *,
    tag: str | None,
    jira: str | None,
    git_sha: str | None,
    from_env: str,
    to_env: str,
    bump: str,
    force: bool,
    actor: str,
    reason: str | None,
    create: bool = False,
    source: Environment | None = None,
    target: Environment | None = None,
) -> Prepared:
    if from_env == to_env:
        raise InputError(f"--from and --to are both '{from_env}'", "promote moves an image between two environments")
    if sum(x is not None for x in (tag, jira, git_sha)) != 1:
        raise InputError(
            "promote needs exactly one of TAG, --jira KEY or --git-sha SHA", "e.g. imagectl promote DATA-1234-57 --from dev --to prd"
        )
    if force and not reason:
        raise InputError("--force needs --reason", "say why the usual rules are overridden; it is recorded")
    source = source or Environment(config, from_env, credentials)
    target = target or Environment(config, to_env, credentials)
    ran = source.history.newest(SEARCH_WINDOW) if (jira or git_sha) else None
    chosen = _chosen(source, ran, jira, git_sha, from_env) if ran is not None else None
    tag = chosen.tag if chosen else tag
    assert tag is not None
    manifest = source.image(tag)
    if manifest is None:
        raise NotFoundError(
            f"{tag} does not exist in {from_env}'s registry '{source.registry.name}'", f"imagectl tags list --env {from_env}"
        )
    forced = None
    # Every deploy tags the image deployed-<env>-<digest>: one read. The history is read only without that tag
    # (an image 0.1.0 deployed: it tagged by revision number).
    ran_there = bool(source.registry.existing(source.repository, [deployed_tag(from_env, manifest.digest)]))
    if not ran_there:
        ran = ran if ran is not None else source.history.newest(HISTORY_WINDOW)
        ran_there = any(r.digest == manifest.digest for r in ran)
    if not ran_there:
        if not force:
            raise ConflictError(
                f"{tag} has never run in {from_env}, so it is not promoted",
                f'deploy it to {from_env} first, or pass --force --reason "..." to promote it anyway',
            )
        forced = f"never ran in {from_env}"
    plan = decide_in(target, "promote", tag, manifest.digest, actor=actor, reason=reason, bump=bump, force=force)
    if forced:
        plan.add_forced(forced)
    plan.from_environment = from_env
    plan.git_sha = chosen.git_sha if chosen else build_commit(source.registry, source.repository, tag, manifest.digest)
    plan.create_variable = create
    if source.registry.name != target.registry.name and plan.state == "new":
        plan.copy_from_registry = source.registry.name
    prepared = Prepared(plan, target, source)
    gate_scan(prepared, force)
    check_reach(prepared)
    return prepared
