"""``imagectl ci``: the whole Bamboo build-plan step, planned once as typed steps and then applied step by step.

build → push → deploy (for a release environment: promote the image already built from the same commit in the
build environment when there is one, else build) → trigger the Lightdash sync → trigger a slim dbt build.
The branch decides the environment ([ci] branches in imagectl.toml); any other branch only builds. A frozen
environment stops the run before the deploy (exit 0, "frozen" said plainly), so Bamboo's build is not red for
it. DAG run ids come from Bamboo's result key, so a re-run Bamboo job does not start a second DAG run.
``--dry-run`` prints the plan; the run executes exactly that plan.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from imagectl.build_info import ResolvedBuild, resolve_actor, resolve_build, resolve_build_number, resolve_source
from imagectl.commands.build import BuildResult, apply_build, plan_build, previous_build_image
from imagectl.commands.deploy import plan_deploy
from imagectl.commands.promote import SEARCH_WINDOW, plan_promote
from imagectl.commands.trigger import TriggerResult, trigger
from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.environment import Environment
from imagectl.errors import ConfigError, InputError
from imagectl.progress import Progress
from imagectl.render import Result, v
from imagectl.rollout import ChangeResult, apply, frozen_message, notify_change

BAMBOO_RESULT_KEY = "bamboo_buildResultKey"
BAMBOO_RESULTS_URL = "bamboo_buildResultsUrl"


@dataclass
class CiStep:
    step: str  # build | deploy | promote | stop | trigger
    decision: str  # what and why, for people
    environment: str | None = None
    tag: str | None = None
    from_environment: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    conf: dict[str, Any] | None = None
    wait: bool = False


@dataclass
class CiPlan(Result):
    kind = "ci-plan"

    branch: str | None
    commit: str
    build_number: int
    tag: str
    result_key: str
    results_url: str | None
    environment: str | None
    build_environment: str  # whose registry a build is pushed to
    steps: list[CiStep]
    wait: bool
    frozen: str | None = None  # why the run stops before deploying
    resolved: ResolvedBuild | None = field(default=None, repr=False)  # what a build step builds (not printed)

    def json(self) -> dict[str, Any]:
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
                "wait",
                "frozen",
            )
        }
        data["steps"] = [{k: val for k, val in asdict(s).items() if val not in (None, False) or k == "step"} for s in self.steps]
        return data

    def text(self) -> str:
        lines = [
            f"CI plan for {v(self.tag)}: branch {v(self.branch) or '(detached)'}, commit {self.commit[:12]}, "
            f"build {self.build_number}, result {v(self.result_key)}",
            f"  environment  {self.environment or 'none (build only)'}",
        ]
        lines += [f"  {i}. {step.step:8} {v(step.decision)}" for i, step in enumerate(self.steps, start=1)]
        lines.append("Nothing was built, pushed, deployed or triggered (--dry-run).")
        return "\n".join(lines)


@dataclass
class CiResult(Result):
    kind = "ci"

    plan: CiPlan
    build: BuildResult | None = None
    release: ChangeResult | None = None
    triggers: list[TriggerResult] = field(default_factory=list)
    stopped: str | None = None

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.triggers)

    def json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.json(),
            "build": self.build.json() if self.build else None,
            "release": self.release.json() if self.release else None,
            "triggers": [t.json() for t in self.triggers],
            "stopped": self.stopped,
            "ok": self.ok,
        }

    def text(self) -> str:
        parts = []
        if self.build:
            parts.append(self.build.text())
        if self.release:
            parts.append(self.release.text())
        parts += [t.text() for t in self.triggers]
        if self.stopped:
            parts.append(v(self.stopped))
        elif self.plan.environment is None:
            parts.append(f"branch {v(self.plan.branch) or '(detached)'} deploys nowhere: built and pushed only")
        return "\n".join(parts)


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
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in result_key)[:150]
    return f"imagectl__{safe}__{dag_id}"


def plan_ci(
    config: Config,
    credentials: Credentials,
    *,
    jira: str | None,
    build_number: str | None,
    environ: Mapping[str, str],
    wait: bool,
    open_env: Callable[[str], Environment] | None = None,
) -> CiPlan:
    """Decide every step, once."""
    open_env = open_env or (lambda name: Environment(config, name, credentials))
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
        ran = open_env(build_env).history.newest(SEARCH_WINDOW)
        same_commit = next((r for r in ran if r.git_sha == source.commit), None)
        if same_commit is not None:
            promote_tag = same_commit.tag
            steps.append(CiStep("build", f"skipped: {build_env} ran {same_commit.tag}, built from this commit ({source.commit[:12]})"))
    # A Jira key is needed only to name a new build: a promotion of what dev ran goes ahead without one.
    resolved = (
        None if promote_tag else resolve_build(config, jira=jira, build_number=build_number, tag=None, environ=environ, source=source)
    )
    tag = promote_tag or (resolved.info.tag if resolved else "")
    result_key = environ.get(BAMBOO_RESULT_KEY) or tag
    if resolved is not None:
        steps.append(
            CiStep("build", f"build and push {tag} ({resolved.jira_source}) to {target_env}'s registry", environment=target_env, tag=tag)
        )
    frozen = None
    if environment is None:
        steps.append(CiStep("stop", f"no deploy: branch {source.branch or '(detached)'} maps to no environment ([ci] branches)"))
    else:
        latest = open_env(environment).history.latest()
        if latest is not None and latest.frozen:
            frozen = f"{frozen_message(latest)}: built and pushed, not deployed (imagectl unfreeze --env {environment} to resume)"
            steps.append(CiStep("stop", frozen, environment=environment))
        else:
            if promote_tag:
                steps.append(
                    CiStep(
                        "promote",
                        f"promote {tag} from {build_env} to {environment}",
                        environment=environment,
                        tag=tag,
                        from_environment=build_env,
                    )
                )
            else:
                steps.append(CiStep("deploy", f"deploy {tag} to {environment}", environment=environment, tag=tag))
            if config.ci.lightdash_dag:
                dag = config.ci.lightdash_dag
                steps.append(
                    CiStep(
                        "trigger",
                        f"{dag} in {environment} (run id {run_id(result_key, dag)})",
                        environment=environment,
                        dag_id=dag,
                        run_id=run_id(result_key, dag),
                        conf={"imagectl_tag": tag},
                    )
                )
            dag = config.dbt_dag_for(environment)
            conf = {**config.ci.slim_conf, "imagectl_tag": tag, "bamboo_result": result_key}
            steps.append(
                CiStep(
                    "trigger",
                    f"{dag} in {environment} with conf {config.ci.slim_conf} (run id {run_id(result_key, dag)})"
                    + (", waiting for it and checking the image it ran" if wait else ""),
                    environment=environment,
                    dag_id=dag,
                    run_id=run_id(result_key, dag),
                    conf=conf,
                    wait=wait,
                )
            )
    return CiPlan(
        branch=source.branch,
        commit=source.commit,
        build_number=number,
        tag=tag,
        result_key=result_key,
        results_url=environ.get(BAMBOO_RESULTS_URL),
        environment=environment,
        build_environment=target_env,
        steps=steps,
        wait=wait,
        frozen=frozen,
        resolved=resolved,
    )


def apply_ci(
    config: Config,
    credentials: Credentials,
    plan: CiPlan,
    *,
    environ: Mapping[str, str],
    yes: bool,
    progress: Progress,
    timeout: float = 3600,
) -> CiResult:
    """Run the plan's steps in order; nothing is decided again here."""
    result = CiResult(plan)
    actor = resolve_actor(None, environ)
    reason = f"Bamboo {plan.result_key}" + (f" {plan.results_url}" if plan.results_url else "")
    prepared = None
    for step in plan.steps:
        if step.step == "build" and step.environment is not None:
            assert plan.resolved is not None
            from imagectl.adapters.docker_engine import DockerEngine
            from imagectl.registries import open_registry

            reg_config = config.registry_for(step.environment)
            registry = open_registry(reg_config, credentials.registry(reg_config.name), config.timeouts)
            build_plan = plan_build(
                config,
                step.environment,
                None,
                plan.resolved.info,
                plan.resolved.jira_source,
                extra_build_args={},
                push=True,
                registry=registry,
                previous_image=previous_build_image(config, step.environment, registry),
            )
            result.build = apply_build(config, build_plan, DockerEngine(), progress, registry=registry)
        elif step.step in ("deploy", "promote"):
            assert step.environment and step.tag
            if config.environment(step.environment).confirm and not yes:
                raise InputError(f"{step.environment} requires confirmation", "pass --yes in the Bamboo task for this branch")
            if step.step == "promote":
                prepared = plan_promote(
                    config,
                    credentials,
                    tag=step.tag,
                    jira=None,
                    git_sha=None,
                    from_env=step.from_environment or plan.build_environment,
                    to_env=step.environment,
                    bump="patch",
                    force=False,
                    actor=actor,
                    reason=reason,
                )
            else:
                prepared = plan_deploy(config, credentials, step.environment, step.tag, actor, reason)
            progress.say(f"{prepared.plan.action}: {prepared.plan.why}")
            for note in prepared.plan.reach:
                progress.say(f"note: {note}")
            result.release = apply(prepared.plan, prepared.target, prepared.source)
        elif step.step == "stop":
            result.stopped = step.decision
            progress.say(step.decision)
        elif step.step == "trigger" and step.environment and step.dag_id:
            dag_id = step.dag_id
            triggered = trigger(
                config,
                credentials,
                step.environment,
                dag_id,
                step.conf or {},
                step.run_id,
                wait=step.wait,
                timeout=timeout,
                on_state=lambda state, d=dag_id: progress.say(f"{d}: {state}"),
            )
            progress.say(f"{dag_id}: {'triggered' if triggered.created else 'already triggered by this Bamboo result'} {triggered.url}")
            result.triggers.append(triggered)
            new_release = result.release is not None and result.release.plan.state == "new"
            if dag_id == config.dbt_dag_for(step.environment) and prepared is not None and new_release:
                notify_change(prepared, result.release, triggered.url)
    if (
        prepared is not None
        and result.release is not None
        and result.release.plan.state == "new"
        and not any(t.dag_id == config.dbt_dag_for(t.environment) for t in result.triggers)
    ):
        notify_change(prepared, result.release)
    return result
