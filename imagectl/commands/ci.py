"""``imagectl ci``: the whole CI build step, planned once as typed steps and then applied step by step.

build → push → deploy (for a release environment: promote the image already built from the same commit in the
build environment when there is one, else build) → trigger the Lightdash sync → trigger a slim dbt build.
The branch decides the environment ([ci] branches in imagectl.toml); any other branch only builds. A frozen
environment stops the run before the deploy (exit 0, "frozen" said plainly), so the CI build is not red for
it. DAG run ids come from the CI's result key, so a re-run CI job does not start a second DAG run. Which CI system
runs it (Bamboo, GitLab CI, GitHub Actions) and which of its variables say what: ci_systems.py.
``--dry-run`` prints the plan; the run executes exactly that plan, each step with the same action (build.py,
deploy.py, promote.py, trigger.py) the command of that name runs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from imagectl.action import Action, Confirmation, Plan
from imagectl.airflow.flavours import FLAVOURS
from imagectl.build_info import ResolvedBuild, resolve_actor, resolve_build, resolve_build_number, resolve_source
from imagectl.ci_systems import detect
from imagectl.commands.build import Build, BuildRequest, BuildResult
from imagectl.commands.deploy import Deploy, DeployRequest
from imagectl.commands.promote import SEARCH_WINDOW, Promote, PromoteRequest
from imagectl.commands.trigger import Trigger, TriggerRequest, TriggerResult, run_id
from imagectl.config import Config
from imagectl.errors import ConfigError
from imagectl.progress import Progress
from imagectl.render import Result, v
from imagectl.rollout import ChangeAction, ChangeResult, frozen_message
from imagectl.sanitize import strip_credentials
from imagectl.workspace import Workspace


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
    verify: bool = False  # this run verifies the deploy before it


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
    ci_system: str | None  # "bamboo", "gitlab", "github"; None: not in a CI system (flags and git)
    sources: dict[str, str]  # where the branch, build number and result key came from (the variable's name)
    environment: str | None
    build_environment: str  # whose registry a build is pushed to
    steps: list[CiStep]
    wait: bool
    frozen: str | None = None  # why the run stops before deploying
    confirm: bool = False  # the environment deployed to asks for confirmation (--yes)
    verify: bool = False  # the slim dbt run after the deploy is its verification (commands/verify.py)
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
                "ci_system",
                "sources",
                "environment",
                "build_environment",
                "wait",
                "frozen",
                "verify",
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
        ci = self.ci_system or "no CI system detected"
        lines.append(f"  read from    {ci}: " + ", ".join(f"{what} from {v(source)}" for what, source in self.sources.items()))
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
    verification: Any = None  # commands/verify.py VerifyResult (--verify)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.triggers) or self.verification is not None

    def exit_code(self) -> int:
        return int(self.verification.exit_code()) if self.verification is not None else 0

    def json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.json(),
            "build": self.build.json() if self.build else None,
            "release": self.release.json() if self.release else None,
            "triggers": [t.json() for t in self.triggers],
            "stopped": self.stopped,
            "ok": self.ok,
            "verification": self.verification.json() if self.verification is not None else None,
        }

    def text(self) -> str:
        parts = []
        if self.build:
            parts.append(self.build.text())
        if self.release:
            parts.append(self.release.text())
        parts += [t.text() for t in self.triggers]
        if self.verification is not None:
            parts.append(self.verification.text())
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


@dataclass(frozen=True)
class CiRequest:
    jira: str | None = None
    build_number: str | None = None
    wait: bool = False
    timeout: int = 3600  # seconds --wait follows a DAG run
    verify: bool | None = None  # the dbt run proves the deploy (None: the environment's [verify] default)


class Ci(Action[CiPlan, CiResult]):
    """Plan every step once; apply them in order with the actions of build, deploy, promote and trigger."""

    def __init__(self, workspace: Workspace, request: CiRequest, progress: Progress) -> None:
        self.workspace, self.request, self.progress = workspace, request, progress

    def plan(self) -> CiPlan:
        ws, request = self.workspace, self.request
        config, environ = ws.config, ws.environ
        number, number_source = resolve_build_number(request.build_number, environ)
        source = resolve_source(config, environ)
        system = detect(environ)
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
        key = system.find("result_key", environ) if system else None
        result_key = key.value if key else tag
        url = system.find("results_url", environ) if system else None
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
                verify = request.verify if request.verify is not None else config.environment(environment).verify.default
                steps += self._deploy_steps(environment, build_env, tag, promote_tag, result_key, verify)
        return CiPlan(
            branch=source.branch,
            commit=source.commit,
            build_number=number,
            tag=tag,
            result_key=result_key,
            results_url=strip_credentials(url.value) if url else None,
            ci_system=system.key if system else None,
            sources={
                "branch": source.branch_source,
                "build number": number_source,
                "result": key.source if key else "the tag (no CI result key)",
            },
            environment=environment,
            build_environment=target_env,
            steps=steps,
            wait=request.wait,
            frozen=frozen,
            confirm=environment is not None and frozen is None and config.environment(environment).confirm,
            resolved=resolved,
            verify=any(isinstance(step, TriggerStep) and step.verify for step in steps),
        )

    def _deploy_steps(
        self, environment: str, build_env: str, tag: str, promote_tag: str | None, result_key: str, verify: bool = False
    ) -> list[CiStep]:
        config, wait = self.workspace.config, self.request.wait or verify
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
                + (", waiting for it and checking the image it ran" if wait else "")
                + ("; it verifies the deploy (a failure rejects the image and rolls back)" if verify else ""),
                environment,
                dag,
                run_id(result_key, dag, max_path),
                {**config.ci.slim_conf, "imagectl_tag": tag, "ci_result": result_key},
                wait,
                verify,
            )
        )
        return steps

    def apply(self, plan: CiPlan) -> CiResult:
        """Run the plan's steps in order; nothing is decided again here."""
        ws, progress = self.workspace, self.progress
        result = CiResult(plan)
        actor = resolve_actor(None, ws.environ)
        system = detect(ws.environ)
        reason = f"{system.name if system else 'CI'} {plan.result_key}" + (f" {plan.results_url}" if plan.results_url else "")
        change: ChangeAction | None = None
        for step in plan.steps:
            if isinstance(step, BuildStep) and step.environment is not None:
                build = Build(ws, BuildRequest(environment=step.environment), progress, resolved=plan.resolved)
                result.build = build.apply(build.plan())
            elif isinstance(step, DeployStep | PromoteStep):
                # --verify: the slim run below is the verification, not a run of the deploy's own
                if isinstance(step, PromoteStep):
                    change = Promote(
                        ws, PromoteRequest(step.from_environment, step.environment, tag=step.tag, reason=reason, actor=actor, verify=False)
                    )
                else:
                    change = Deploy(ws, DeployRequest(step.environment, step.tag, reason=reason, actor=actor, verify=False))
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
                if step.verify and result.release is not None:
                    result.verification = self._verdict(step, triggered, result.release, actor)
                if change is not None and result.release is not None and step.dag_id == ws.config.dbt_dag_for(step.environment):
                    change.notify(result.release, triggered.url)  # the change's notification carries the dbt run's link
        if (
            change is not None
            and result.release is not None
            and not any(t.dag_id == ws.config.dbt_dag_for(t.environment) for t in result.triggers)
        ):
            change.notify(result.release)
        return result

    def _verdict(self, step: TriggerStep, triggered: TriggerResult, release: ChangeResult, actor: str) -> Any:
        """The deploy's verdict from the slim run that followed it (commands/verify.py decides and acts)."""
        from imagectl.commands.verify import RunOutcome, conclude, report_to_jira, spec_for

        env = self.workspace.env(step.environment)
        revision = release.revision or release.plan.current
        if revision is None:
            return None
        rendered = triggered.verification.rendered if triggered.verification is not None else None
        outcome = RunOutcome(triggered.dag_id, triggered.run_id, triggered.state, triggered.url, rendered)
        release.plan.verify = spec_for(env)  # Jira hears of this change with its verdict, not before it
        verdict = conclude(self.workspace, env, revision, spec_for(env), outcome, actor)
        self.progress.say(verdict.text().splitlines()[0])
        report_to_jira(self.workspace, env, verdict)
        return verdict

    def _trigger(self, step: TriggerStep) -> TriggerResult:
        dag_id, progress = step.dag_id, self.progress
        request = TriggerRequest(step.environment, dag_id, step.conf, step.run_id, step.wait, self.request.timeout)
        action = Trigger(self.workspace.env(step.environment), request, on_state=lambda state: progress.say(f"{dag_id}: {state}"))
        triggered = action.apply(action.plan())
        progress.say(f"{dag_id}: {'triggered' if triggered.created else 'already triggered by this CI result'} {triggered.url}")
        return triggered
