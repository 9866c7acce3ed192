"""``imagectl ci``: the whole CI build step, planned once as typed steps and then applied step by step.

build → push → deploy (for a release environment: promote the image already built from the same commit in the
build environment when there is one, else build) → trigger the Lightdash sync → trigger a slim dbt build.
The branch decides the environment ([ci] branches in imagectl.toml); any other branch only builds. A frozen
environment stops the run before the deploy (exit 0, "frozen" said plainly), so the CI build is not red for
it. DAG run ids come from the CI's result key, so a re-run CI job does not start a second DAG run.
``--dry-run`` prints the plan; the run executes exactly that plan, each step with the same action (build.py,
deploy.py, promote.py, trigger.py) the command of that name runs.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from imagectl.action import Action, Confirmation, Plan
from imagectl.airflow.flavours import FLAVOURS
from imagectl.build_info import ResolvedBuild, resolve_actor, resolve_build, resolve_build_number, resolve_source
from imagectl.commands.build import Build, BuildRequest, BuildResult
from imagectl.commands.deploy import Deploy, DeployRequest
from imagectl.commands.promote import SEARCH_WINDOW, Promote, PromoteRequest
from imagectl.commands.trigger import Trigger, TriggerRequest, TriggerResult
from imagectl.config import Config
from imagectl.errors import ConfigError
from imagectl.progress import Progress
from imagectl.render import Result, v
from imagectl.rollout import ChangeAction, ChangeResult, frozen_message
from imagectl.sanitize import strip_credentials
from imagectl.workspace import Workspace

BAMBOO_RESULT_KEY = "bamboo_buildResultKey"
BAMBOO_RESULTS_URL = "bamboo_buildResultsUrl"


@dataclass
class CiStep:
    """One step of the plan: ``decision`` says what and why, for people."""

    step: ClassVar[str]
    decision: str

    def json(self) -> dict[str, Any]:
        return {"step": self.step, **{k: val for k, val in asdict(self).items() if val not in (None, False)}}


@dataclass
class BuildStep(CiStep):
    step = "build"
    environment: str | None = None  # None: the build is skipped (decision says why)
    tag: str | None = None


@dataclass
class DeployStep(CiStep):
    step = "deploy"
    environment: str = ""
    tag: str = ""


@dataclass
class PromoteStep(CiStep):
    step = "promote"
    environment: str = ""
    tag: str = ""
    from_environment: str = ""


@dataclass
class StopStep(CiStep):
    step = "stop"
    environment: str | None = None


@dataclass
class TriggerStep(CiStep):
    step = "trigger"
    environment: str = ""
    dag_id: str = ""
    run_id: str = ""
    conf: dict[str, Any] = field(default_factory=dict)
    wait: bool = False


@dataclass
class CiPlan(Plan):
    kind = "ci-plan"
    dry_run_note = "Nothing was built, pushed, deployed or triggered (--dry-run)."

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
    confirm: bool = False  # the environment deployed to asks for confirmation (--yes)
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
        data["steps"] = [s.json() for s in self.steps]
        return data

    def text(self) -> str:
        lines = [
            f"CI plan for {v(self.tag)}: branch {v(self.branch) or '(detached)'}, commit {self.commit[:12]}, "
            f"build {self.build_number}, result {v(self.result_key)}",
            f"  environment  {self.environment or 'none (build only)'}",
        ]
        lines += [f"  {i}. {step.step:8} {v(step.decision)}" for i, step in enumerate(self.steps, start=1)]
        return "\n".join(lines)

    def confirmation(self) -> Confirmation | None:
        change = next((s for s in self.steps if isinstance(s, DeployStep | PromoteStep)), None)
        if change is None or not self.confirm:
            return None
        return Confirmation(change.environment, f"ci: {change.decision}?")


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


def run_id(result_key: str, dag_id: str, max_path: int | None = None) -> str:
    """The DAG run id for a CI result: the same result key gives the same id, so a re-run job finds its run.

    Where the environment's Airflow limits request paths (MWAA: 64 characters, and ``/dags/<dag>/dagRuns/<run>`` is
    read while waiting), the id is shortened to fit: first without the DAG's id (a run id is per DAG anyway), then
    the key cut short with a hash of the whole key added (still the same id for the same key)."""
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in result_key)[:150]
    full = f"imagectl__{safe}__{dag_id}"
    if max_path is None:
        return full
    budget = max_path - len(f"/dags/{dag_id}/dagRuns/")
    for candidate in (full, f"imagectl__{safe}"):
        if len(candidate) <= budget:
            return candidate
    digest = hashlib.sha256(safe.encode()).hexdigest()[:10]
    keep = budget - len("ic____") - len(digest)
    return f"ic__{safe[:keep]}__{digest}" if keep > 0 else f"ic__{digest}"  # a DAG id too long for any id: refused when called


@dataclass(frozen=True)
class CiRequest:
    jira: str | None = None
    build_number: str | None = None
    wait: bool = False
    timeout: int = 3600  # seconds --wait follows a DAG run


class Ci(Action[CiPlan, CiResult]):
    """Plan every step once; apply them in order with the actions of build, deploy, promote and trigger."""

    def __init__(self, workspace: Workspace, request: CiRequest, progress: Progress) -> None:
        self.workspace, self.request, self.progress = workspace, request, progress

    def plan(self) -> CiPlan:
        ws, request = self.workspace, self.request
        config, environ = ws.config, ws.environ
        number, _ = resolve_build_number(request.build_number, environ)
        source = resolve_source(config, environ)
        environment = environment_for(config, source.branch)
        build_env = config.ci.build_environment or config.default_environment
        if build_env is None:
            raise ConfigError(f"no build environment in {config.path}", "set [ci] build_environment or [project] default_environment")
        steps: list[CiStep] = []
        promote_tag = None
        target_env = environment or build_env
        if environment is not None and environment != build_env and config.environment(environment).release:
            ran = ws.env(build_env).history.newest(SEARCH_WINDOW)
            same_commit = next((r for r in ran if r.git_sha == source.commit), None)
            if same_commit is not None:
                promote_tag = same_commit.tag
                steps.append(BuildStep(f"skipped: {build_env} ran {same_commit.tag}, built from this commit ({source.commit[:12]})"))
        # A Jira key is needed only to name a new build: a promotion of what dev ran goes ahead without one.
        resolved = (
            None
            if promote_tag
            else resolve_build(config, jira=request.jira, build_number=request.build_number, tag=None, environ=environ, source=source)
        )
        tag = promote_tag or (resolved.info.tag if resolved else "")
        result_key = environ.get(BAMBOO_RESULT_KEY) or tag
        if resolved is not None:
            steps.append(BuildStep(f"build and push {tag} ({resolved.jira_source}) to {target_env}'s registry", target_env, tag))
        frozen = None
        if environment is None:
            steps.append(StopStep(f"no deploy: branch {source.branch or '(detached)'} maps to no environment ([ci] branches)"))
        else:
            latest = ws.env(environment).history.latest()
            if latest is not None and latest.frozen:
                frozen = f"{frozen_message(latest)}: built and pushed, not deployed (imagectl unfreeze --env {environment} to resume)"
                steps.append(StopStep(frozen, environment))
            else:
                steps += self._deploy_steps(environment, build_env, tag, promote_tag, result_key)
        return CiPlan(
            branch=source.branch,
            commit=source.commit,
            build_number=number,
            tag=tag,
            result_key=result_key,
            results_url=strip_credentials(environ.get(BAMBOO_RESULTS_URL)),  # it can carry user:token@
            environment=environment,
            build_environment=target_env,
            steps=steps,
            wait=request.wait,
            frozen=frozen,
            confirm=environment is not None and frozen is None and config.environment(environment).confirm,
            resolved=resolved,
        )

    def _deploy_steps(self, environment: str, build_env: str, tag: str, promote_tag: str | None, result_key: str) -> list[CiStep]:
        config, wait = self.workspace.config, self.request.wait
        max_path = FLAVOURS[config.environment(environment).airflow].max_path
        steps: list[CiStep] = []
        if promote_tag:
            steps.append(PromoteStep(f"promote {tag} from {build_env} to {environment}", environment, tag, build_env))
        else:
            steps.append(DeployStep(f"deploy {tag} to {environment}", environment, tag))
        if config.ci.lightdash_dag:
            dag = config.ci.lightdash_dag
            steps.append(
                TriggerStep(
                    f"{dag} in {environment} (run id {run_id(result_key, dag, max_path)})",
                    environment,
                    dag,
                    run_id(result_key, dag, max_path),
                    {"imagectl_tag": tag},
                )
            )
        dag = config.dbt_dag_for(environment)
        steps.append(
            TriggerStep(
                f"{dag} in {environment} with conf {config.ci.slim_conf} (run id {run_id(result_key, dag, max_path)})"
                + (", waiting for it and checking the image it ran" if wait else ""),
                environment,
                dag,
                run_id(result_key, dag, max_path),
                {**config.ci.slim_conf, "imagectl_tag": tag, "bamboo_result": result_key},
                wait,
            )
        )
        return steps

    def apply(self, plan: CiPlan) -> CiResult:
        """Run the plan's steps in order; nothing is decided again here."""
        ws, progress = self.workspace, self.progress
        result = CiResult(plan)
        actor = resolve_actor(None, ws.environ)
        reason = f"Bamboo {plan.result_key}" + (f" {plan.results_url}" if plan.results_url else "")
        change: ChangeAction | None = None
        for step in plan.steps:
            if isinstance(step, BuildStep) and step.environment is not None:
                build = Build(ws, BuildRequest(environment=step.environment), progress, resolved=plan.resolved)
                result.build = build.apply(build.plan())
            elif isinstance(step, DeployStep | PromoteStep):
                if isinstance(step, PromoteStep):
                    change = Promote(ws, PromoteRequest(step.from_environment, step.environment, tag=step.tag, reason=reason, actor=actor))
                else:
                    change = Deploy(ws, DeployRequest(step.environment, step.tag, reason=reason, actor=actor))
                change_plan = change.plan()
                progress.say(f"{change_plan.action}: {change_plan.why}")
                for note in change_plan.reach:
                    progress.say(f"note: {note}")
                result.release = change.apply(change_plan)
            elif isinstance(step, StopStep):
                result.stopped = step.decision
                progress.say(step.decision)
            elif isinstance(step, TriggerStep):
                triggered = self._trigger(step)
                result.triggers.append(triggered)
                if change is not None and result.release is not None and step.dag_id == ws.config.dbt_dag_for(step.environment):
                    change.notify(result.release, triggered.url)  # the change's notification carries the dbt run's link
        if (
            change is not None
            and result.release is not None
            and not any(t.dag_id == ws.config.dbt_dag_for(t.environment) for t in result.triggers)
        ):
            change.notify(result.release)
        return result

    def _trigger(self, step: TriggerStep) -> TriggerResult:
        dag_id, progress = step.dag_id, self.progress
        request = TriggerRequest(step.environment, dag_id, step.conf, step.run_id, step.wait, self.request.timeout)
        action = Trigger(self.workspace.env(step.environment), request, on_state=lambda state: progress.say(f"{dag_id}: {state}"))
        triggered = action.apply(action.plan())
        progress.say(f"{dag_id}: {'triggered' if triggered.created else 'already triggered by this CI result'} {triggered.url}")
        return triggered
