"""Changing which image an environment runs: deploy, promote and rollback share one plan and one apply.

Order of apply, chosen so that any single failure leaves a state ``status`` reports truthfully and re-running
the same command completes it without a second revision:

1. (promote across registries) copy the image, its build tag and build record to the target registry;
2. (release environments) claim the next version tag (``v1.4.0``) on the image;
3. append the revision to the environment's history in the registry (the audit record comes first: a
   Variable is never changed without one);
4. tag the image ``deployed-<env>-<revision>`` (kept by the lifecycle policy);
5. write the Airflow Variable (digest-pinned reference; revision, tag and actor in its description);
6. read the Variable back and compare.

If 4–6 fail, the history's latest revision names an image the Variable does not hold: ``status`` shows that
drift, and the same command run again finds the revision already recorded and only finishes steps 4–6.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import semver

from imagectl import labels as L
from imagectl.config import Config
from imagectl.errors import AirflowError, ConfigError, ConflictError, ImagectlError, InputError, NotFoundError
from imagectl.history import History, Revision
from imagectl.image_copy import CopyStats, copy_manifest
from imagectl.records import read_record
from imagectl.registries import Manifest, Registry, open_registry
from imagectl.tagging import parse_build_tag, record_tag

RELEASE_TAG_RE = re.compile(r"v(\d+\.\d+\.\d+)")
BUMPS = ("major", "minor", "patch")
BAMBOO_USER = "bamboo_ManualBuildTriggerReason_userName"


def resolve_actor(flag: str | None, environ: Mapping[str, str]) -> str:
    """--actor, else the Bamboo user who triggered the build, else the OS user."""
    if flag:
        return flag
    if environ.get(BAMBOO_USER):
        return environ[BAMBOO_USER]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Environment:
    """An environment's registry, build repository, history and Airflow Variable, opened lazily."""

    def __init__(self, config: Config, name: str, registry: Registry | None = None) -> None:
        self.config = config
        self.settings = config.environment(name)
        self.name = name
        self.registry = registry or open_registry(config.registry_for(name))
        self.repository = config.images["build"].repository
        self.history = History(self.registry, self.repository, name)
        self._airflow: Any = None

    @property
    def airflow(self) -> Any:
        if self._airflow is None:
            if not self.settings.airflow_url:
                raise ConfigError(
                    f"environment '{self.name}' has no airflow_url in {self.config.path}",
                    f"add airflow_url under [environments.{self.name}]",
                )
            from imagectl.adapters.airflow import AirflowClient  # requests loads only when Airflow is used

            self._airflow = AirflowClient(self.settings.airflow_url, self.name, self.settings.airflow_api)
        return self._airflow

    def variable_value(self) -> str | None:
        variable = self.airflow.get_variable(self.settings.variable)
        return variable.value if variable else None

    def image(self, ref: str) -> Manifest | None:
        return self.registry.get_manifest(self.repository, ref)

    def reference(self, tag: str, digest: str) -> str:
        return self.registry.reference(self.repository, tag, digest)


@dataclass
class ReleasePlan:
    action: str  # deploy | promote | rollback
    environment: str
    registry: str
    variable: str
    tag: str
    digest: str
    reference: str
    state: str  # "new" (a new revision), "complete" (finish the latest revision), "noop"
    why: str
    actor: str
    reason: str | None
    current: Revision | None
    variable_value: str | None
    release: str | None = None
    release_is_new: bool = False
    from_environment: str | None = None
    copy_from_registry: str | None = None
    git_sha: str | None = None
    confirm_required: bool = False
    # Not part of the printed plan: what apply needs.
    target: Environment | None = field(default=None, repr=False)
    source: Environment | None = field(default=None, repr=False)
    manifest: Manifest | None = field(default=None, repr=False)
    bump: str = "patch"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "environment": self.environment,
            "registry": self.registry,
            "variable": self.variable,
            "state": self.state,
            "why": self.why,
            "tag": self.tag,
            "digest": self.digest,
            "reference": self.reference,
            "release": self.release,
            "release_is_new": self.release_is_new,
            "from_environment": self.from_environment,
            "copy_from_registry": self.copy_from_registry,
            "git_sha": self.git_sha,
            "actor": self.actor,
            "reason": self.reason,
            "current_revision": self.current.to_json() if self.current else None,
            "variable_value": self.variable_value,
            "confirm_required": self.confirm_required,
        }


@dataclass
class ReleaseResult:
    plan: ReleasePlan
    revision: Revision | None
    variable_value: str | None
    copied: CopyStats | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.plan.action,
            "environment": self.plan.environment,
            "state": self.plan.state,
            "revision": self.revision.to_json() if self.revision else None,
            "variable": self.plan.variable,
            "variable_value": self.variable_value,
            "copied": vars(self.copied) if self.copied else None,
        }


# -- planning -------------------------------------------------------------------------------------------------


def _git_sha(env: Environment, tag: str, manifest: Manifest) -> str | None:
    record = env.registry.get_manifest(env.repository, record_tag(tag))
    if record is None:
        return None
    subject, annotations = read_record(record)
    return annotations.get(L.REVISION) if subject == manifest.digest else None


def _next_release(env: Environment, bump: str) -> str:
    versions = [semver.Version.parse(m.group(1)) for t in env.registry.list_tags(env.repository) if (m := RELEASE_TAG_RE.fullmatch(t))]
    if not versions:
        return "v1.0.0"
    newest = max(versions)
    return "v" + str({"major": newest.bump_major, "minor": newest.bump_minor, "patch": newest.bump_patch}[bump]())


def _decide(
    action: str,
    env: Environment,
    tag: str,
    manifest: Manifest,
    actor: str,
    reason: str | None,
    *,
    history: list[Revision] | None = None,
    bump: str = "patch",
) -> ReleasePlan:
    history = history if history is not None else env.history.newest()
    current = history[0] if history else None
    variable_value = env.variable_value()
    reference = env.reference(tag, manifest.digest)
    plan = ReleasePlan(
        action=action,
        environment=env.name,
        registry=env.registry.name,
        variable=env.settings.variable,
        tag=tag,
        digest=manifest.digest,
        reference=reference,
        state="new",
        why="",
        actor=actor,
        reason=reason,
        current=current,
        variable_value=variable_value,
        confirm_required=env.settings.confirm,
        target=env,
        manifest=manifest,
        bump=bump,
    )
    if current is not None and current.digest == manifest.digest:
        plan.tag, plan.reference, plan.release = current.tag, current.reference, current.release
        if variable_value == current.reference:
            plan.state, plan.why = "noop", f"{env.name} already runs {current.tag} (revision {current.revision}); nothing recorded"
        else:
            plan.state = "complete"
            plan.why = f"revision {current.revision} is recorded but the Variable does not hold it yet: finishing it"
        return plan
    plan.why = (
        f"revision {current.revision + 1 if current else 1}: {current.tag if current else 'nothing'} → {tag}"
        if current
        else f"revision 1: first image of {env.name}"
    )
    if env.settings.release:
        earlier = next((r.release for r in history if r.digest == manifest.digest and r.release), None)
        if earlier:
            plan.release = earlier
        elif action != "rollback":
            plan.release, plan.release_is_new = _next_release(env, bump), True
    return plan


def plan_deploy(config: Config, environment: str, tag: str, actor: str, reason: str | None, bump: str = "patch") -> ReleasePlan:
    env = Environment(config, environment)
    manifest = env.image(tag)
    if manifest is None:
        raise NotFoundError(
            f"{env.reference(tag, '').rstrip('@')} does not exist in registry '{env.registry.name}'",
            f"build it first, or list what exists: imagectl tags list --env {environment}",
        )
    plan = _decide("deploy", env, tag, manifest, actor, reason, bump=bump)
    plan.git_sha = _git_sha(env, tag, manifest)
    return plan


def plan_promote(
    config: Config,
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
) -> ReleasePlan:
    if from_env == to_env:
        raise InputError(f"--from and --to are both '{from_env}'", "promote moves an image between two environments")
    if sum(x is not None for x in (tag, jira, git_sha)) != 1:
        raise InputError(
            "promote needs exactly one of TAG, --jira KEY or --git-sha SHA", "e.g. imagectl promote DATA-1234-57 --from dev --to prd"
        )
    if force and not reason:
        raise InputError("--force needs --reason", "say why an image the source environment never ran is promoted")
    source = Environment(config, from_env)
    target = Environment(config, to_env)
    ran = source.history.newest()
    chosen: Revision | None = None
    if jira is not None:
        chosen = next((r for r in ran if (p := parse_build_tag(r.tag)) and p.jira == jira), None)
        if chosen is None:
            raise NotFoundError(f"no build of {jira} has been deployed in {from_env}", f"see imagectl history --env {from_env}")
        tag = chosen.tag
    elif git_sha is not None:
        chosen = next((r for r in ran if r.git_sha and r.git_sha.startswith(git_sha)), None)
        if chosen is None:
            raise NotFoundError(
                f"no image built from commit {git_sha} has been deployed in {from_env}", f"see imagectl history --env {from_env}"
            )
        tag = chosen.tag
    assert tag is not None
    manifest = source.image(tag)
    if manifest is None:
        raise NotFoundError(
            f"{tag} does not exist in {from_env}'s registry '{source.registry.name}'", f"imagectl tags list --env {from_env}"
        )
    if not any(r.digest == manifest.digest for r in ran) and not force:
        raise ConflictError(
            f"{tag} has never run in {from_env}, so it is not promoted",
            f'deploy it to {from_env} first, or pass --force --reason "..." to promote it anyway',
        )
    sha = chosen.git_sha if chosen else _git_sha(source, tag, manifest)
    same_registry = source.registry.name == target.registry.name
    plan = _decide("promote", target, tag, manifest, actor, reason, bump=bump)
    plan.from_environment, plan.source, plan.git_sha = from_env, source, sha
    if not same_registry and plan.state == "new":
        plan.copy_from_registry = source.registry.name
    return plan


def plan_rollback(config: Config, environment: str, to: str | None, actor: str, reason: str | None) -> ReleasePlan:
    env = Environment(config, environment)
    history = env.history.newest()
    if not history:
        raise NotFoundError(
            f"{environment} has no history to roll back", f"deploy something first: imagectl deploy TAG --env {environment}"
        )
    current = history[0]
    if to is None:
        variable_value = env.variable_value()
        if variable_value != current.reference and current.action == "rollback":
            target_revision = current  # the same rollback, run again after a failure: finish it
        else:
            target_revision = next((r for r in history[1:] if r.digest != current.digest), None)
            if target_revision is None:
                raise NotFoundError(f"no earlier revision of {environment} ran another image", "name a target with --to REVISION|TAG")
        tag, digest, how = target_revision.tag, target_revision.digest, f"revision {target_revision.revision}"
    elif to.isdigit():
        target_revision = next((r for r in history if r.revision == int(to)), None)
        if target_revision is None:
            raise NotFoundError(f"{environment} has no revision {to}", f"see imagectl history --env {environment}")
        tag, digest, how = target_revision.tag, target_revision.digest, f"revision {to}"
    else:
        manifest = env.image(to)
        if manifest is None:
            raise NotFoundError(
                f"{to} does not exist in {environment}'s registry '{env.registry.name}'; nothing was changed",
                f"see imagectl history --env {environment}",
            )
        tag, digest, how = to, manifest.digest, f"tag {to}"
    manifest = env.image(digest)
    if manifest is None:
        raise NotFoundError(
            f"the image of {how} ({tag}@{digest[:19]}) no longer exists in registry '{env.registry.name}'; nothing was changed",
            "choose another target with --to REVISION|TAG",
        )
    plan = _decide("rollback", env, tag, manifest, actor, reason, history=history)
    plan.git_sha = next((r.git_sha for r in history if r.digest == digest and r.git_sha), None)
    return plan


# -- applying -------------------------------------------------------------------------------------------------


def _description(revision: Revision) -> str:
    return (
        f"imagectl revision {revision.revision}: {revision.action} {revision.tag}"
        + (f" ({revision.release})" if revision.release else "")
        + f" by {revision.actor} at {revision.time}"
        + (f" — {revision.reason}" if revision.reason else "")
    )


def _write_variable(env: Environment, revision: Revision) -> str | None:
    """Write the Variable for ``revision``, then make sure it ends at the newest revision.

    Two writers may record revisions N and N+1 and write the Variable in the opposite order; so after each
    write the writer reads the Variable back, then the history. The Variable is read first so that a newer
    revision recorded after the history read is its own writer's to write. The write is done when the Variable
    shows the newest revision's image (ours, or a newer writer's that got there after us); otherwise the writer
    writes that image (again, when a slower writer's older image landed after ours).
    """
    target = revision
    value = None
    for _ in range(10):
        env.airflow.set_variable(env.settings.variable, target.reference, _description(target))
        value = env.variable_value()
        latest = env.history.latest()
        if latest is not None and latest.revision > target.revision:
            target = latest
        if value == target.reference:
            return value
    raise AirflowError(
        f"Variable {env.settings.variable} reads back as {value!r}, not revision {target.revision}'s image",
        "something else keeps writing that Variable; find the other writer",
    )


def _claim_release(env: Environment, manifest: Manifest, version: str, bump: str) -> str:
    for _ in range(10):
        try:
            env.registry.put_manifest(env.repository, version, manifest)
            return version
        except ConflictError:
            version = _next_release(env, bump)  # another release took that version meanwhile
    raise ConflictError(f"could not claim a release version in {env.name}", "try again")


def apply(plan: ReleasePlan) -> ReleaseResult:
    env = plan.target
    assert env is not None and plan.manifest is not None
    if plan.state == "noop":
        return ReleaseResult(plan, plan.current, plan.variable_value)
    copied = None
    if plan.state == "complete":
        revision = plan.current
        assert revision is not None
    else:
        if plan.copy_from_registry and plan.source is not None:
            copied = copy_manifest(plan.source.registry, env.registry, env.repository, plan.manifest, plan.tag)
            record = plan.source.registry.get_manifest(env.repository, record_tag(plan.tag))
            if record is not None:
                env.registry.put_manifest(env.repository, record_tag(plan.tag), record)
        elif plan.action == "promote":
            env.registry.put_manifest(env.repository, plan.tag, plan.manifest)  # shared registry: the tag is already there
        if plan.release and plan.release_is_new:
            plan.release = _claim_release(env, plan.manifest, plan.release, plan.bump)
        revision = env.history.append(
            Revision(
                environment=env.name,
                revision=0,
                time=_now(),
                action=plan.action,
                tag=plan.tag,
                digest=plan.digest,
                reference=plan.reference,
                actor=plan.actor,
                reason=plan.reason,
                release=plan.release,
                from_environment=plan.from_environment,
                git_sha=plan.git_sha,
            ),
            plan.manifest,
        )
    try:
        env.history.mark_deployed(revision, plan.manifest)
        value = _write_variable(env, revision)
    except ImagectlError as exc:
        exc.message = f"revision {revision.revision} of {env.name} is recorded, but: {exc.message}"
        exc.hint = f"{exc.hint}; then re-run the same command to finish it (imagectl status --env {env.name} shows the state)"
        raise
    revision.current = value == revision.reference
    return ReleaseResult(plan, revision, value, copied)
