"""``imagectl init``: adopt imagectl in an existing dbt repository, and ``init --check``: compare the repository's
copies with the installed imagectl's templates.

init finds the dbt project and its profile (dbt_project.py), pins the adapter, and writes imagectl.toml (from the
options, or asked on a terminal: every environment needs its registry and its Airflow; nothing is left to fill in
later), images/base, images/build, the DAGs and the CI pipeline (scaffold.py). It runs where no imagectl.toml exists
yet, so it loads none. A file that exists is never overwritten without --force (--update: only the copies unchanged
since init wrote them); a second run changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagectl import __version__
from imagectl.action import Action, Plan
from imagectl.ci_systems import BY_KEY
from imagectl.config import CONFIG_NAME, parse_config
from imagectl.dbt_project import DBT_CORE, DbtProject, adapter_requirements, is_secret, read_project, repository_root
from imagectl.errors import ConfigError, InputError
from imagectl.render import Result, v
from imagectl.scaffold import (
    CURRENT,
    RECORD,
    Answers,
    FileState,
    Record,
    compare,
    config_toml,
    digest,
    dockerignore,
    templates,
)

Ask = Callable[[str], str]  # a question on the terminal → the answer
_ECR_HOST = re.compile(r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_LOOPBACK = re.compile(r"(127\.[0-9.]+|localhost)(:[0-9]+)?")


@dataclass(frozen=True)
class InitRequest:
    directory: Path  # where init was run: the repository is the git work tree around it
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    project_dir: str | None = None
    profiles_dir: str | None = None
    ci: str | None = None  # a key of ci_systems.SYSTEMS
    registry: tuple[tuple[str, str], ...] = ()  # environment → registry host
    airflow: tuple[tuple[str, str], ...] = ()  # environment → Airflow URL
    branch: tuple[tuple[str, str], ...] = ()  # branch or glob → environment ([ci] branches)
    jira_project: tuple[str, ...] = ()
    adapter: tuple[str, ...] = ()  # pip requirements instead of the profile's adapters
    parse_env: tuple[tuple[str, str], ...] = ()  # DBT_PARSE_ENV values
    repository_prefix: str = ""
    set: tuple[tuple[str, str], ...] = ()  # any imagectl.toml key, dotted
    force: bool = False
    update: bool = False


@dataclass
class FileChange:
    path: str
    action: str  # create, unchanged, overwrite, update, keep
    why: str = ""
    content: bytes = field(default=b"", repr=False)
    executable: bool = False


@dataclass
class InitPlan(Plan):
    kind = "init"
    dry_run_note = "Nothing was written (--dry-run)."

    root: str
    project_path: str
    profile: str
    profile_file: str | None
    targets: dict[str, str]
    adapters: list[str]
    dbt_core: str
    ci: str | None
    files: list[FileChange]
    notes: list[str]
    applied: bool = False
    record: bytes | None = field(default=None, repr=False)  # .imagectl-init.json to write (None: unchanged)

    def json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "project_path": self.project_path,
            "profile": self.profile,
            "profile_file": self.profile_file,
            "targets": self.targets,
            "adapters": self.adapters,
            "dbt_core": self.dbt_core,
            "ci": self.ci,
            "files": [{"path": f.path, "action": f.action, **({"why": f.why} if f.why else {})} for f in self.files],
            "notes": self.notes,
            "applied": self.applied,
        }

    def text(self) -> str:
        targets = ", ".join(f"{name} ({kind})" for name, kind in self.targets.items())
        lines = [
            f"imagectl init in {v(self.root)}: dbt project {v(self.project_path)}, profile {v(self.profile)} "
            f"({v(self.profile_file) or 'not found'}; targets {v(targets)})",
            f"  pins       dbt-core=={self.dbt_core}, {', '.join(self.adapters)}",
        ]
        verbs = {"create": "wrote", "overwrite": "overwrote", "update": "updated"} if self.applied else {}
        for change in self.files:
            action = verbs.get(change.action, change.action)
            lines.append(f"  {action:10} {v(change.path)}" + (f"  ({v(change.why)})" if change.why else ""))
        lines += [f"  note: {v(note)}" for note in self.notes]
        if self.applied:
            written = sum(1 for f in self.files if f.action in ("create", "overwrite", "update"))
            lines.append(
                f"{written} file(s) written. Next: commit them; imagectl registry init --env <env>; imagectl ci --dry-run "
                "(docs/adopting.md)"
                if written
                else "Nothing to write: the repository has every file."
            )
        return "\n".join(lines)


class Init(Action[InitPlan, InitPlan]):
    def __init__(self, request: InitRequest, ask: Ask | None = None) -> None:
        self.request, self.ask = request, ask

    def plan(self) -> InitPlan:
        request = self.request
        if request.ci is not None and request.ci not in BY_KEY:
            raise InputError(f"--ci {request.ci} is not a CI system imagectl knows", f"one of {', '.join(sorted(BY_KEY))}")
        root = repository_root(request.directory.resolve())
        project = read_project(root, request.project_dir, request.profiles_dir, request.environ)
        answers = Answers(project.path, DBT_CORE, adapter_requirements(project, request.adapter), request.ci)
        record = Record.load(root)
        notes = self._notes(project)
        files = [self._copy(root, t, answers, record) for t in templates(request.ci)]
        owned: list[FileChange] = []
        for name, content in ((CONFIG_NAME, None), (".dockerignore", dockerignore(project.path).encode())):
            path = root / name
            if path.exists() and content is not None and path.read_bytes() == content:
                owned.append(FileChange(name, "unchanged"))
            elif path.exists() and not request.force:
                owned.append(FileChange(name, "keep", "exists: the team's own; --force overwrites it"))
            else:
                content = content if content is not None else self._config(root, project, answers).encode()
                owned.append(FileChange(name, "overwrite" if path.exists() else "create", content=content))
        files = owned + files
        new_record = Record(__version__ if record is None else record.imagectl, answers, dict(record.files) if record else {})
        for change in files:
            if change.path in (CONFIG_NAME, ".dockerignore"):
                continue
            if change.action in ("create", "overwrite", "update", "unchanged"):
                new_record.files[change.path] = digest(change.content)
            else:
                new_record.files.setdefault(change.path, None)
        if any(f.action in ("create", "overwrite", "update") for f in files if f.path not in (CONFIG_NAME, ".dockerignore")):
            new_record.imagectl = __version__
        dumped = new_record.dump()
        old = (root / RECORD).read_bytes() if (root / RECORD).is_file() else None
        if dumped != old:
            files.append(FileChange(RECORD, "create" if old is None else "update", "what init wrote: commit it", dumped))
        else:
            files.append(FileChange(RECORD, "unchanged"))
        return InitPlan(
            root=str(root),
            project_path=project.path,
            profile=project.profile_name,
            profile_file=str(project.profile_file) if project.profile_file else None,
            targets=project.targets,
            adapters=list(answers.adapters),
            dbt_core=answers.dbt_core,
            ci=request.ci,
            files=files,
            notes=notes,
            record=dumped if dumped != old else None,
        )

    def _copy(self, root: Path, template: Any, answers: Answers, record: Record | None) -> FileChange:
        state = compare(root, template, answers, record)
        content, target = state.rendered, template.target
        if state.status == CURRENT:
            return FileChange(target, "unchanged", content=content, executable=template.executable)
        if state.status == "missing":
            return FileChange(target, "create", content=content, executable=template.executable)
        if self.request.force:
            return FileChange(target, "overwrite", state.status, content, template.executable)
        if self.request.update and state.status == "template changed":
            return FileChange(target, "update", "the template changed; this copy did not", content, template.executable)
        return FileChange(target, "keep", f"{state.status}: --force overwrites it; imagectl init --check --diff shows how")

    def _notes(self, project: DbtProject) -> list[str]:
        notes = []
        if not project.profile_in_repository:
            notes.append(
                f"the profile is in {project.profile_file}, outside the dbt project: the build image reads profiles.yml from "
                f"{project.path}/ — add one there that reads every secret with env_var()"
            )
        return notes

    def _config(self, root: Path, project: DbtProject, answers: Answers) -> str:
        """imagectl.toml from the options (or the terminal's answers), checked as imagectl will read it."""
        request = self.request
        registries, airflows = dict(request.registry), dict(request.airflow)
        if not registries and not airflows:
            if self.ask is None:
                raise InputError(
                    f"no environments to write into {CONFIG_NAME}",
                    "pass --registry ENV=HOST and --airflow ENV=URL for each environment (e.g. dev and prd)",
                )
            names = [n.strip() for n in self.ask("Environments (comma-separated)").split(",") if n.strip()]
            registries = {name: "" for name in names}
        for name in sorted(set(registries) | set(airflows)):
            for values, what, example in (
                (registries, "registry host", "111111111111.dkr.ecr.eu-west-1.amazonaws.com"),
                (airflows, "Airflow URL", "http://airflow.internal:8080"),
            ):
                if not values.get(name):
                    if self.ask is None:
                        flag = "--registry" if values is registries else "--airflow"
                        raise InputError(f"environment {name} has no {what}", f"pass {flag} {name}={example.split()[0]}")
                    values[name] = self.ask(f"{what[0].upper()}{what[1:]} of {name} (e.g. {example})").strip()
        parse_env = self._parse_env(project)
        data = _config_data(project, request, registries, airflows, parse_env)
        for dotted, raw in request.set:
            _set(data, dotted, raw)
        try:
            parse_config(root / CONFIG_NAME, data)
        except ConfigError as exc:
            raise InputError(f"the options make an {CONFIG_NAME} imagectl would refuse: {exc.message}", exc.hint) from None
        return config_toml(data)

    def _parse_env(self, project: DbtProject) -> dict[str, str]:
        """DBT_PARSE_ENV: a value for every env var the profile reads with no default (the image's dbt parse renders it)."""
        given = dict(self.request.parse_env)
        for name in given:
            if is_secret(name):
                raise InputError(
                    f"--parse-env {name}: looks like a secret, and build arguments are visible in the image history",
                    f"give {name} a default in profiles.yml instead: env_var('{name}', '')",
                )
        missing = [name for name in project.required_env if name not in given]
        secret = [name for name in missing if is_secret(name)]
        if secret:
            raise InputError(
                f"the profile reads {', '.join(secret)} with no default: the image's build-time dbt parse would fail without it",
                f"give it a default in profiles.yml, e.g. env_var('{secret[0]}', ''): dbt does not need secrets to parse",
            )
        for name in missing:
            if self.ask is None:
                raise InputError(
                    f"the profile reads {', '.join(missing)} with no default: the image's build-time dbt parse needs a value",
                    f"pass --parse-env {missing[0]}=VALUE for each (the value runs will have; not a secret)",
                )
            given[name] = self.ask(f"Value of {name} for the image's dbt parse (the value runs have; not a secret)")
        return given

    def apply(self, plan: InitPlan) -> InitPlan:
        root = Path(plan.root)
        for change in plan.files:
            if change.action not in ("create", "overwrite", "update"):
                continue
            path = root / change.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(change.content)
            if change.executable:
                path.chmod(0o755)
        plan.applied = True
        return plan


def _config_data(
    project: DbtProject, request: InitRequest, registries: dict[str, str], airflows: dict[str, str], parse_env: dict[str, str]
) -> dict[str, Any]:
    names = sorted(registries, key=lambda n: (n != "dev", n))  # dev first: the default environment
    prefix = request.repository_prefix
    build_args = {"DBT_PROJECT_PATH": project.path}
    if parse_env:
        import shlex

        build_args["DBT_PARSE_ENV"] = " ".join(f"{k}={shlex.quote(val)}" for k, val in sorted(parse_env.items()))
    data: dict[str, Any] = {
        "project": {"name": project.name.replace("_", "-").lower(), "default_environment": names[0]},
        "jira": {"projects": list(request.jira_project)} if request.jira_project else None,
        "images": {
            "base": {"context": "images/base", "repository": f"{prefix}dbt-base", "network": "host"},
            "build": {
                "context": ".",
                "dockerfile": "images/build/Dockerfile",
                "repository": f"{prefix}dbt-build",
                "build_args": build_args,
            },
        },
        "registries": {},
        "environments": {},
        "ci": {},
    }
    if data["jira"] is None:
        del data["jira"]
    for name in names:
        host = registries[name]
        registry: dict[str, Any] = {"kind": "oci", "host": host}
        ecr = _ECR_HOST.fullmatch(host)
        if ecr:
            registry = {"kind": "ecr", "host": host, "region": ecr.group("region")}
        elif _LOOPBACK.fullmatch(host):
            registry["insecure"] = True  # a registry on this machine speaks plain HTTP
        data["registries"][name] = registry
        data["environments"][name] = {"registry": name, "airflow_url": airflows[name]}
    branches = dict(request.branch)
    if not branches:
        release = "prd" if "prd" in names else names[-1]
        branches = {"main": release}
        if names[0] != release:
            branches["feature/*"] = names[0]
    data["ci"] = {"branches": branches, "build_environment": names[0]}
    return data


def _set(data: dict[str, Any], dotted: str, raw: str) -> None:
    """--set a.b.c=VALUE: VALUE is read as TOML when it is a TOML value (true, 3, "x", [..]), else as a string."""
    from imagectl.config import tomllib

    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    keys = dotted.split(".")
    if not all(keys):
        raise InputError(f"--set {dotted}: not a dotted key", "e.g. --set environments.dev.variable=dbt_image_dev")
    table = data
    for key in keys[:-1]:
        table = table.setdefault(key, {})
        if not isinstance(table, dict):
            raise InputError(f"--set {dotted}: {key} is not a table", "set a key inside a table, e.g. ci.slim_conf.target=ci")
    table[keys[-1]] = value


# -- init --check --------------------------------------------------------------------------------------------------


@dataclass
class CheckResult(Result):
    kind = "init-check"

    root: str
    written_by: str | None
    files: list[FileState]
    with_diff: bool = False

    @property
    def ok(self) -> bool:
        return not any(f.drift for f in self.files)

    def json(self) -> dict[str, Any]:
        from imagectl.scaffold import HINTS

        return {
            "root": self.root,
            "imagectl": __version__,
            "written_by": self.written_by,
            "files": [{"path": f.path, "status": f.status, "hint": HINTS[f.status]} for f in self.files],
            "ok": self.ok,
        }

    def text(self) -> str:
        from imagectl.scaffold import HINTS

        lines = [
            f"Templates of imagectl {__version__} against {v(self.root)}"
            + (f" (written by imagectl {v(self.written_by)})" if self.written_by else " (no record of imagectl init)")
        ]
        for state in self.files:
            lines.append(f"  {state.status:16} {v(state.path)}" + (f"  — {HINTS[state.status]}" if HINTS[state.status] else ""))
        lines.append(
            "Every copy is the installed imagectl's template."
            if all(f.status == "current" for f in self.files)
            else "No template changed that this repository lacks."
            if self.ok
            else "Some copies lack the installed imagectl's templates (above: how to take them)."
        )
        if self.with_diff:
            lines += [f.diff().rstrip("\n") for f in self.files if f.status != CURRENT and f.current is not None]
        return "\n".join(lines)


def check(request: InitRequest, with_diff: bool = False) -> CheckResult:
    """The repository's copies against the installed templates, rendered with the recorded answers (else detected)."""
    root = repository_root(request.directory.resolve())
    record = Record.load(root)
    if record is not None:
        answers = record.answers
    else:
        project = read_project(root, request.project_dir, request.profiles_dir, request.environ)
        ci = request.ci or next((key for key, system in BY_KEY.items() if (root / system.pipeline_path).is_file()), None)
        answers = Answers(project.path, DBT_CORE, adapter_requirements(project, request.adapter), ci)
    states = [compare(root, t, answers, record) for t in templates(answers.ci)]
    return CheckResult(str(root), record.imagectl if record else None, states, with_diff)
