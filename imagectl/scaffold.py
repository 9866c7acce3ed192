"""The files ``imagectl init`` writes into a dbt repository, from the templates shipped in the package
(``imagectl/templates/``), and how the repository's copies compare with them.

Two kinds of file:
- **copies** (images/, dags/, the CI pipeline): the templates, rendered with the repository's answers (the dbt
  project's folder, dbt-core and adapter pins, the CI system). ``init --check`` compares them with the installed
  imagectl's templates, so a team learns after an upgrade which ones changed and how to take them.
- **the team's own** (``imagectl.toml``, ``.dockerignore``): written once, then edited by the team; never checked.

``.imagectl-init.json`` records the answers and a hash of each copy as written. With it, ``--check`` tells a
template that changed since (safe to take: ``init --update``) from a change the team made (theirs to keep).
Placeholders in templates are ``@@name@@``; a name no answer fills is a bug, found by the tests.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from imagectl import __version__
from imagectl.ci_systems import BY_KEY
from imagectl.errors import ConfigError

RECORD = ".imagectl-init.json"
_PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")


@dataclass(frozen=True)
class Template:
    source: str  # under imagectl/templates/
    target: str  # in the repository
    executable: bool = False


COPIES: tuple[Template, ...] = (
    Template("images/base/Dockerfile", "images/base/Dockerfile"),
    Template("images/base/requirements.txt", "images/base/requirements.txt"),
    Template("images/base/gitignore", "images/base/.gitignore"),
    Template("images/base/certs/README.md", "images/base/certs/README.md"),
    Template("images/base/wheels/README.md", "images/base/wheels/README.md"),
    Template("images/build/Dockerfile", "images/build/Dockerfile"),
    Template("images/build/entrypoint.sh", "images/build/entrypoint.sh", executable=True),
    Template("images/build/dbt_parse.py", "images/build/dbt_parse.py"),
    Template("images/build/dbt_state.py", "images/build/dbt_state.py", executable=True),
    Template("dags/dbt_build.py", "dags/dbt_build.py"),
    Template("dags/dbt_settings.py", "dags/dbt_settings.py"),
    Template("dags/lightdash_sync.py", "dags/lightdash_sync.py"),
    Template("dags/lightdash_api.py", "dags/lightdash_api.py"),
    Template("dags/imagectl_ops.py", "dags/imagectl_ops.py"),
)


@dataclass(frozen=True)
class Answers:
    """What the templates are rendered with; recorded, so --check renders the same way later."""

    project_path: str  # the dbt project's folder in the repository ("." at its root)
    dbt_core: str
    adapters: tuple[str, ...]  # pip requirements, e.g. ("dbt-postgres==1.11.0",)
    ci: str | None  # a key of ci_systems.SYSTEMS, or None: no pipeline file

    def values(self) -> dict[str, str]:
        return {
            "project_path": self.project_path,
            "dbt_core": self.dbt_core,
            "adapters": "\n".join(self.adapters),
            "imagectl_version": __version__,
        }

    @classmethod
    def from_json(cls, data: Any) -> Answers:
        return cls(str(data["project_path"]), str(data["dbt_core"]), tuple(str(a) for a in data["adapters"]), data.get("ci"))


def templates(ci: str | None) -> list[Template]:
    """The copies init writes: images, DAGs and (with --ci) the CI system's pipeline."""
    found = list(COPIES)
    if ci is not None:
        system = BY_KEY[ci]
        found.append(Template(system.pipeline_template, system.pipeline_path))
    return found


def template_text(source: str) -> str:
    return (resources.files("imagectl") / "templates" / source).read_text(encoding="utf-8")


def render(template: Template, answers: Answers) -> bytes:
    values = answers.values()

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"template {template.source} has a placeholder no answer fills: {match.group(0)}")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, template_text(template.source)).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Record:
    imagectl: str  # the version that last wrote it
    answers: Answers
    files: dict[str, str | None] = field(default_factory=dict)  # copy → digest of what init wrote (None: not init's)

    def dump(self) -> bytes:
        answers = {**asdict(self.answers), "adapters": list(self.answers.adapters)}
        data = {"imagectl": self.imagectl, "answers": answers, "files": dict(sorted(self.files.items()))}
        return (json.dumps(data, indent=2) + "\n").encode()

    @classmethod
    def load(cls, root: Path) -> Record | None:
        path = root / RECORD
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            files = data.get("files") or {}
            if not isinstance(files, dict):
                raise TypeError("files")
            return cls(str(data["imagectl"]), Answers.from_json(data["answers"]), {str(k): v for k, v in files.items()})
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path} is not a record imagectl init wrote ({exc})", "restore it from git, or delete it and run imagectl init"
            ) from None


# -- how a repository's copy compares with the template ------------------------------------------------------------

CURRENT, MISSING, TEMPLATE_CHANGED, CHANGED_HERE, BOTH_CHANGED, DIFFERS = (
    "current",
    "missing",
    "template changed",
    "changed here",
    "both changed",
    "differs",
)
DRIFT = (MISSING, TEMPLATE_CHANGED, BOTH_CHANGED, DIFFERS)  # the installed templates have something the repository lacks
HINTS = {
    CURRENT: "",
    MISSING: "imagectl init writes it",
    TEMPLATE_CHANGED: "unchanged here since init wrote it: take the new template with imagectl init --update",
    CHANGED_HERE: "yours: the template is what init wrote; nothing to take",
    BOTH_CHANGED: "the template changed and so did this copy: merge by hand (imagectl init --check --diff shows both)",
    DIFFERS: "init did not write this copy: compare (imagectl init --check --diff) and take the template with imagectl init --force",
}


@dataclass
class FileState:
    path: str
    status: str
    rendered: bytes = field(repr=False)
    current: bytes | None = field(default=None, repr=False)

    @property
    def drift(self) -> bool:
        return self.status in DRIFT

    def diff(self) -> str:
        """The repository's copy → the installed template, unified."""
        before = (self.current or b"").decode(errors="replace").splitlines(keepends=True)
        after = self.rendered.decode(errors="replace").splitlines(keepends=True)
        return "".join(difflib.unified_diff(before, after, f"a/{self.path} (repository)", f"b/{self.path} (imagectl {__version__})"))


def compare(root: Path, template: Template, answers: Answers, record: Record | None) -> FileState:
    rendered = render(template, answers)
    path = root / template.target
    if not path.is_file():
        return FileState(template.target, MISSING, rendered)
    current = path.read_bytes()
    if current == rendered:
        return FileState(template.target, CURRENT, rendered, current)
    written = record.files.get(template.target) if record else None
    if written is None:
        status = DIFFERS
    elif written == digest(current):
        status = TEMPLATE_CHANGED
    elif written == digest(rendered):
        status = CHANGED_HERE
    else:
        status = BOTH_CHANGED
    return FileState(template.target, status, rendered, current)


# -- imagectl.toml and .dockerignore: the team's own, written once -------------------------------------------------


def dockerignore(project_path: str) -> str:
    """The build image's context is the repository: send the dbt project and images/build, nothing else."""
    head = "# The build image's context is the repository root: send only the dbt project and the build image's files.\n"
    if project_path == ".":
        return head + "".join(
            f"{p}\n"
            for p in (".git/", "target/", "dbt_packages/", "logs/", ".venv*/", "images/base/", "dags/", ".imagectl*/", ".gitlab-ci-local/")
        )
    return head + f"*\n!{project_path}/\n!images/build/\n{project_path}/target/\n{project_path}/dbt_packages/\n{project_path}/logs/\n"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"no TOML for {type(value).__name__}")


SECTION_COMMENTS = {
    "images.base": "# The base image: Python, git, dbt-core and the adapter (images/base/requirements.txt), rebuilt when they change.",
    "images.build": "# DBT_PARSE_ENV: the values runs have for the env vars the profile reads, so the image's dbt parse is the one runs\n"
    "# use (images/build/dbt_parse.py). Never secrets: build arguments are visible in the image history.",
    "ci": "# imagectl ci: which branch deploys to which environment (others only build); see docs/ci.md.",
}


def config_toml(data: dict[str, Any]) -> str:
    """imagectl.toml from its tables: [project], [images.base], [registries.dev], … in that order."""
    lines = [
        '# imagectl configuration, written by imagectl init (the reference: docs/operations.md, "Configuration reference").',
        "# Secrets never live here: registry and Airflow logins come from the environment.",
    ]
    for top, table in data.items():
        nested = top in ("images", "identities", "registries", "environments", "webhooks")
        for name, section in table.items() if nested else [(None, table)]:
            dotted = f"{top}.{_key(name)}" if name else top
            lines.append("")
            if dotted in SECTION_COMMENTS:
                lines.append(SECTION_COMMENTS[dotted])
            lines.append(f"[{dotted}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in section.items()]
    return "\n".join(lines) + "\n"
