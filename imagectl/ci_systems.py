"""The CI systems ``imagectl ci`` and ``build`` read, one table line each: how a system is detected and which of its
variables say the build number, branch, commit, repository, actor, result key and result URL.

A value is a list of formats over environment variables, ``"{GITHUB_SERVER_URL}/{GITHUB_REPOSITORY}"``: the first
whose variables are all set (and not empty) wins, and its format, without braces, is what the plan shows as the
value's source ("from GITHUB_RUN_NUMBER"). Adding a CI system is one ``CiSystem`` in ``SYSTEMS`` and its pipeline
template in ``imagectl/templates/ci/`` (which ``imagectl init --ci <key>`` writes).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Found:
    value: str
    source: str  # the variable(s) it came from, e.g. "CI_PIPELINE_IID"


@dataclass(frozen=True)
class CiSystem:
    key: str  # --ci of imagectl init, and the name in run confs ("gitlab")
    name: str  # for people ("GitLab CI")
    detect: tuple[tuple[str, str | None], ...]  # (variable, value): set to that value (None: set at all; "x_*": any x_…)
    build_number: tuple[str, ...]
    branch: tuple[str, ...]
    revision: tuple[str, ...]
    repository_url: tuple[str, ...]
    actor: tuple[str, ...]
    result_key: tuple[str, ...]  # unique per build and stable when a job is re-run: the DAG run ids come from it
    results_url: tuple[str, ...]
    pipeline_template: str  # under imagectl/templates/
    pipeline_path: str  # where imagectl init writes it in the repository

    def detected(self, environ: Mapping[str, str]) -> bool:
        for name, value in self.detect:
            if name.endswith("*"):
                if any(key.startswith(name[:-1]) and environ[key] for key in environ):
                    return True
            elif environ.get(name) and (value is None or environ[name] == value):
                return True
        return False

    def find(self, field: str, environ: Mapping[str, str]) -> Found | None:
        """The first of the field's formats whose variables are all set, rendered; None when none is."""
        for fmt in getattr(self, field):
            names = _FIELD.findall(fmt)
            if all(environ.get(name, "").strip() for name in names):
                value = string.Formatter().vformat(fmt, (), {name: environ[name].strip() for name in names})
                return Found(value, fmt.replace("{", "").replace("}", ""))
        return None

    def variables(self, field: str) -> str:
        """The field's variables, for a hint ("CI_PIPELINE_IID")."""
        return " or ".join(fmt.replace("{", "").replace("}", "") for fmt in getattr(self, field))


SYSTEMS: tuple[CiSystem, ...] = (
    # GitLab and GitHub set a variable that says so; checked first, as a runner may also carry other systems' variables.
    CiSystem(
        key="gitlab",
        name="GitLab CI",
        detect=(("GITLAB_CI", "true"),),
        build_number=("{CI_PIPELINE_IID}",),
        # A merge-request pipeline has no CI_COMMIT_BRANCH: the branch is the merge request's source branch.
        branch=("{CI_COMMIT_BRANCH}", "{CI_MERGE_REQUEST_SOURCE_BRANCH_NAME}"),
        revision=("{CI_COMMIT_SHA}",),
        repository_url=("{CI_PROJECT_URL}",),
        actor=("{GITLAB_USER_LOGIN}",),
        result_key=("gitlab-{CI_PROJECT_PATH_SLUG}-{CI_PIPELINE_ID}", "gitlab-{CI_PIPELINE_ID}"),  # a retried job keeps it
        results_url=("{CI_PIPELINE_URL}",),
        pipeline_template="ci/gitlab-ci.yml",
        pipeline_path=".gitlab-ci.yml",
    ),
    CiSystem(
        key="github",
        name="GitHub Actions",
        detect=(("GITHUB_ACTIONS", "true"),),
        build_number=("{GITHUB_RUN_NUMBER}",),
        # A pull request's run: GITHUB_HEAD_REF is its source branch (GITHUB_REF_NAME would be "<n>/merge").
        branch=("{GITHUB_HEAD_REF}", "{GITHUB_REF_NAME}"),
        revision=("{GITHUB_SHA}",),
        repository_url=("{GITHUB_SERVER_URL}/{GITHUB_REPOSITORY}",),
        actor=("{GITHUB_ACTOR}",),
        result_key=("github-{GITHUB_REPOSITORY_ID}-{GITHUB_RUN_ID}", "github-{GITHUB_RUN_ID}"),  # "re-run jobs" keeps the run id
        results_url=("{GITHUB_SERVER_URL}/{GITHUB_REPOSITORY}/actions/runs/{GITHUB_RUN_ID}",),
        pipeline_template="ci/github-workflow.yml",
        pipeline_path=".github/workflows/imagectl.yml",
    ),
    CiSystem(
        key="bamboo",
        name="Bamboo",
        detect=(("bamboo_*", None),),  # Bamboo exports its variables to the script task, all prefixed bamboo_
        build_number=("{bamboo_buildNumber}",),
        branch=("{bamboo_planRepository_branchName}",),
        revision=("{bamboo_planRepository_revision}",),
        repository_url=("{bamboo_planRepository_repositoryUrl}",),
        actor=("{bamboo_ManualBuildTriggerReason_userName}",),
        result_key=("{bamboo_buildResultKey}",),
        results_url=("{bamboo_buildResultsUrl}",),
        pipeline_template="ci/bamboo.yaml",
        pipeline_path="bamboo-specs/bamboo.yaml",
    ),
)
BY_KEY = {system.key: system for system in SYSTEMS}


def detect(environ: Mapping[str, str]) -> CiSystem | None:
    """The CI system this process runs in, or None (a laptop: flags and git only)."""
    return next((system for system in SYSTEMS if system.detected(environ)), None)


def build_number_hint() -> str:
    return ", ".join(f"{s.name} sets {s.variables('build_number')}" for s in SYSTEMS)
