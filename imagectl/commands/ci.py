"""``imagectl ci``: the whole Bamboo build-plan step.

build → push → deploy (for a release environment: promote the image already built from the same commit in the
build environment when there is one, else build) → trigger the Lightdash sync → trigger a slim dbt build.
The branch decides the environment ([ci] branches in imagectl.toml); any other branch only builds.
DAG run ids come from Bamboo's result key, so a re-run Bamboo job does not start a second DAG run.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imagectl.build_info import ResolvedBuild, resolve_build, resolve_build_number, resolve_source
from imagectl.commands.build import BuildResult, apply_build, plan_build
from imagectl.commands.trigger import TriggerResult, trigger
from imagectl.config import Config
from imagectl.errors import ConfigError, InputError
from imagectl.progress import Progress
from imagectl.registries import open_registry
from imagectl.release import Environment, ReleaseResult, apply, plan_deploy, plan_promote, resolve_actor

BAMBOO_RESULT_KEY = "bamboo_buildResultKey"
BAMBOO_RESULTS_URL = "bamboo_buildResultsUrl"


@dataclass
class CiStep:
    step: str  # build | deploy | promote | trigger
    decision: str


@dataclass
class CiPlan:
    branch: str | None
    commit: str
    build_number: int
    tag: str
    result_key: str
    results_url: str | None
    environment: str | None
    build_environment: str  # whose registry a build is pushed to
    promote_from: str | None  # release environments: the environment that ran an image of the same commit
    promote_tag: str | None
    steps: list[CiStep]
    wait: bool

    def to_json(self) -> dict[str, Any]:
        data = {
            k: getattr(self, k)
            for k in (
                "branch",
                "commit",
                "build_number",
                "tag",
                "result_key",
                "results_url",
                "environment",
                "build_environment",
                "promote_from",
                "promote_tag",
                "wait",
            )
        }
        data["steps"] = [vars(s) for s in self.steps]
        return data


@dataclass
class CiResult:
    plan: CiPlan
    build: BuildResult | None = None
    release: ReleaseResult | None = None
    triggers: list[TriggerResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.triggers)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "build": self.build.to_json() if self.build else None,
            "release": self.release.to_json() if self.release else None,
            "triggers": [t.to_json() for t in self.triggers],
            "ok": self.ok,
        }


def environment_for(config: Config, branch: str | None) -> str | None:
    if not branch:
        return None
    if branch in config.ci.branches:
        return config.ci.branches[branch]
    for pattern, environment in config.ci.branches.items():
        if fnmatch.fnmatchcase(branch, pattern):
            return environment
    return None


def run_id(result_key: str, dag_id: str) -> str:
    return f"imagectl__{result_key}__{dag_id}"


def plan_ci(
    config: Config, *, jira: str | None, build_number: str | None, environ: Mapping[str, str], wait: bool
) -> tuple[CiPlan, ResolvedBuild | None]:
    """Decide every step. The returned build is None when nothing is built (a release promotes what dev ran)."""
    number, _ = resolve_build_number(build_number, environ)
    source = resolve_source(config, environ)
    environment = environment_for(config, source.branch)
    build_env = config.ci.build_environment or config.default_environment
    if build_env is None:
        raise ConfigError(f"no build environment in {config.path}", "set [ci] build_environment or [project] default_environment")
    steps: list[CiStep] = []
    promote_tag = None
    target_env = environment or build_env
    if environment is not None and environment != build_env and config.environment(environment).release:
        ran = Environment(config, build_env).history.newest()
        same_commit = next((r for r in ran if r.git_sha == source.commit), None)
        if same_commit is not None:
            promote_tag = same_commit.tag
            steps.append(CiStep("build", f"skipped: {build_env} ran {same_commit.tag}, built from this commit ({source.commit[:12]})"))
            steps.append(CiStep("promote", f"promote {same_commit.tag} from {build_env} to {environment}"))
    # A Jira key is needed only to name a new build: a promotion of what dev ran goes ahead without one.
    resolved = None
    if promote_tag is None:
        resolved = resolve_build(config, jira=jira, build_number=build_number, tag=None, environ=environ, source=source)
    tag = promote_tag or (resolved.info.tag if resolved else "")
    result_key = environ.get(BAMBOO_RESULT_KEY) or tag
    if resolved is not None:
        steps.append(CiStep("build", f"build and push {tag} ({resolved.jira_source}) to {target_env}'s registry"))
        if environment is not None:
            steps.append(CiStep("deploy", f"deploy {tag} to {environment}"))
    if environment is None:
        steps.append(CiStep("deploy", f"skipped: branch {source.branch or '(detached)'} maps to no environment ([ci] branches)"))
    else:
        if config.ci.lightdash_dag:
            steps.append(
                CiStep("trigger", f"{config.ci.lightdash_dag} in {environment} (run id {run_id(result_key, config.ci.lightdash_dag)})")
            )
        steps.append(
            CiStep(
                "trigger",
                f"{config.ci.dbt_dag} in {environment} with conf {config.ci.slim_conf} "
                f"(run id {run_id(result_key, config.ci.dbt_dag)}){', waiting for it' if wait else ''}",
            )
        )
    plan = CiPlan(
        branch=source.branch,
        commit=source.commit,
        build_number=number,
        tag=tag,
        result_key=result_key,
        results_url=environ.get(BAMBOO_RESULTS_URL),
        environment=environment,
        build_environment=target_env,
        promote_from=build_env if promote_tag else None,
        promote_tag=promote_tag,
        steps=steps,
        wait=wait,
    )
    return plan, resolved


def run_ci(
    config: Config,
    *,
    jira: str | None,
    build_number: str | None,
    environ: Mapping[str, str],
    wait: bool,
    yes: bool,
    dry_run: bool,
    progress: Progress,
    timeout: float = 3600,
) -> CiPlan | CiResult:
    plan, resolved = plan_ci(config, jira=jira, build_number=build_number, environ=environ, wait=wait)
    if dry_run:
        return plan
    result = CiResult(plan)
    actor = resolve_actor(None, environ)
    reason = f"Bamboo {plan.result_key}" + (f" {plan.results_url}" if plan.results_url else "")
    if plan.environment is not None and config.environment(plan.environment).confirm and not yes:
        raise InputError(f"{plan.environment} requires confirmation", "pass --yes in the Bamboo task for this branch")
    if resolved is not None:
        registry = open_registry(config.registry_for(plan.build_environment))
        build_plan = plan_build(
            config, plan.build_environment, None, resolved.info, resolved.jira_source, extra_build_args={}, push=True, registry=registry
        )
        from imagectl.adapters.docker_engine import DockerEngine

        result.build = apply_build(config, build_plan, DockerEngine(), progress, registry=registry)
    if plan.environment is None:
        return result
    if plan.promote_tag is not None:
        release_plan = plan_promote(
            config,
            tag=plan.promote_tag,
            jira=None,
            git_sha=None,
            from_env=plan.promote_from or plan.build_environment,
            to_env=plan.environment,
            bump="patch",
            force=False,
            actor=actor,
            reason=reason,
        )
    else:
        release_plan = plan_deploy(config, plan.environment, plan.tag, actor, reason)
    progress.say(f"{release_plan.action}: {release_plan.why}")
    result.release = apply(release_plan)
    dags = ([config.ci.lightdash_dag] if config.ci.lightdash_dag else []) + [config.ci.dbt_dag]
    for dag_id in dags:
        is_dbt = dag_id == config.ci.dbt_dag
        conf = {**config.ci.slim_conf, "imagectl_tag": plan.tag, "bamboo_result": plan.result_key} if is_dbt else {"imagectl_tag": plan.tag}
        triggered = trigger(
            config,
            plan.environment,
            dag_id,
            conf,
            run_id(plan.result_key, dag_id),
            wait=wait and is_dbt,
            timeout=timeout,
            on_state=lambda state, d=dag_id: progress.say(f"{d}: {state}"),
        )
        progress.say(f"{dag_id}: {'triggered' if triggered.created else 'already triggered by this Bamboo result'} {triggered.url}")
        result.triggers.append(triggered)
    return result
