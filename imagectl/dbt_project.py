"""What ``imagectl init`` learns from a dbt repository: where the dbt project is, its profile, the adapter(s) the
profile's targets use (pinned to dbt-core's minor version), and the environment variables its parse needs.

The profile is looked for where the image will read it first (the project directory), then where dbt itself
looks: ``--profiles-dir``, ``DBT_PROFILES_DIR``, ``~/.dbt``. Only the adapter types, target names and the names of
the environment variables it reads are taken from it — never a value: a profile outside the repository may hold
passwords.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagectl.errors import ConfigError, InputError, NotFoundError

DBT_CORE = "1.11.16"  # what images/base installs; dbt-core 1.12 cannot be installed on locked-down agents yet
# Profile type → the adapter package, pinned to dbt-core's minor version. Exact pins for the adapters this project's
# tests install and run; the newest 1.11 patch (~=) for the others.
ADAPTERS = {
    "duckdb": "dbt-duckdb==1.11.1",
    "postgres": "dbt-postgres==1.11.0",
    "redshift": "dbt-redshift~=1.11.0",
    "snowflake": "dbt-snowflake~=1.11.0",
    "bigquery": "dbt-bigquery~=1.11.0",
    "databricks": "dbt-databricks~=1.11.0",
    "spark": "dbt-spark~=1.11.0",
    "trino": "dbt-trino~=1.11.0",
}
SKIPPED_DIRS = {".git", "dbt_packages", "target", "logs", "node_modules", "site-packages", "__pycache__"}
_ENV_VAR = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]\s*(,)?""")
_SECRET = re.compile(r"^DBT_ENV_SECRET_|PASSWORD|SECRET|TOKEN|PRIVATE_KEY|KEYFILE", re.I)
_REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*(==|~=|>=)\s*[0-9][A-Za-z0-9.*+!-]*")


@dataclass(frozen=True)
class DbtProject:
    root: Path  # the repository
    path: str  # the dbt project's directory, relative to the repository ("." at its root)
    name: str
    profile_name: str
    profile_file: Path | None  # None: no profiles.yml defines the profile
    targets: dict[str, str]  # target name → adapter type
    default_target: str | None
    required_env: tuple[str, ...]  # env vars the profile and dbt_project.yml read with no default

    @property
    def profile_in_repository(self) -> bool:
        return self.profile_file is not None and self.profile_file.parent.resolve() == (self.root / self.path).resolve()

    def adapter_types(self) -> list[str]:
        """The default target's type first, then any other type another target uses."""
        first = self.targets.get(self.default_target or "") or next(iter(self.targets.values()), None)
        rest = sorted(set(self.targets.values()) - {first})
        return ([first] if first else []) + rest


def repository_root(start: Path) -> Path:
    """The git work tree containing ``start`` (a ``.git`` directory or file), else ``start`` itself."""
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return start


def find_project(root: Path, project_dir: str | None = None) -> Path:
    """The directory of the repository's dbt project: ``project_dir``, else the only dbt_project.yml found."""
    if project_dir is not None:
        path = (root / project_dir).resolve()
        if not (path / "dbt_project.yml").is_file():
            raise NotFoundError(f"no dbt_project.yml in {path}", "pass --project-dir with the folder that holds dbt_project.yml")
        return path
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS and not d.startswith(".venv") and d != "venv")
        if "dbt_project.yml" in files:
            found.append(Path(directory))
            subdirs[:] = []  # a dbt project's own folders hold no other project
    if not found:
        raise NotFoundError(f"no dbt_project.yml in {root} or its folders", "run imagectl init in a dbt repository, or pass --project-dir")
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in found[:5])
        raise InputError(f"{len(found)} dbt projects in {root} ({names})", "pass --project-dir with the one the images are for")
    return found[0]


def _yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {' '.join(str(exc).split())[:200]}", "fix the file (it must be YAML)") from None


def profile_candidates(project: Path, profiles_dir: str | None, environ: Mapping[str, str]) -> list[Path]:
    candidates = [Path(profiles_dir)] if profiles_dir else []
    candidates.append(project)
    if environ.get("DBT_PROFILES_DIR"):
        candidates.append(Path(environ["DBT_PROFILES_DIR"]))
    home = environ.get("HOME")
    if home:
        candidates.append(Path(home) / ".dbt")
    return [c / "profiles.yml" for c in candidates]


def read_project(root: Path, project_dir: str | None, profiles_dir: str | None, environ: Mapping[str, str]) -> DbtProject:
    project = find_project(root, project_dir)
    settings = _yaml(project / "dbt_project.yml")
    if not isinstance(settings, dict) or not isinstance(settings.get("name"), str):
        raise ConfigError(f"{project / 'dbt_project.yml'} has no project name", "is it a dbt project file?")
    profile_name = settings.get("profile") or settings["name"]
    if not isinstance(profile_name, str):
        raise ConfigError(f"{project / 'dbt_project.yml'}: 'profile' must be a name", "fix dbt_project.yml")
    required = set(_required_env((project / "dbt_project.yml").read_text(encoding="utf-8")))
    for candidate in profile_candidates(project, profiles_dir, environ):
        if not candidate.is_file():
            continue
        profiles = _yaml(candidate)
        if not isinstance(profiles, dict) or not isinstance(profiles.get(profile_name), dict):
            continue
        profile = profiles[profile_name]
        outputs = profile.get("outputs")
        if not isinstance(outputs, dict) or not outputs:
            raise ConfigError(f"{candidate}: profile '{profile_name}' has no outputs", "fix profiles.yml")
        targets = {}
        for target, output in outputs.items():
            if not isinstance(output, dict) or not isinstance(output.get("type"), str):
                raise ConfigError(f"{candidate}: target '{target}' of profile '{profile_name}' has no type", "fix profiles.yml")
            targets[str(target)] = output["type"]
            required |= {name for text in _strings(output) for name in _required_env(text)}
        return DbtProject(
            root=root,
            path=_relative(project, root),
            name=settings["name"],
            profile_name=profile_name,
            profile_file=candidate,
            targets=targets,
            default_target=_default_target(profile.get("target"), targets),
            required_env=tuple(sorted(required)),
        )
    where = ", ".join(str(c) for c in profile_candidates(project, profiles_dir, environ))
    raise NotFoundError(
        f"profile '{profile_name}' (dbt_project.yml's profile) is in no profiles.yml ({where})",
        "add profiles.yml beside dbt_project.yml (secrets from env_var()), or pass --profiles-dir",
    )


def _relative(project: Path, root: Path) -> str:
    relative = project.resolve().relative_to(root.resolve())
    return relative.as_posix() if relative.parts else "."


def _strings(value: Any) -> list[str]:
    """Every string in a YAML value (the profile's fields, nested ones too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _default_target(value: Any, targets: dict[str, str]) -> str | None:
    """The profile's target: a name, or a Jinja expression whose default (env_var('X', 'dev') or 'dev') names one."""
    if isinstance(value, str) and value in targets:
        return value
    if isinstance(value, str):
        for name in re.findall(r"""['"]([A-Za-z0-9_.-]+)['"]""", value):
            if name in targets:
                return name
    return None


def _required_env(text: str) -> list[str]:
    """The env vars a text reads through env_var() with no default (rendering fails without them)."""
    return [name for name, comma in _ENV_VAR.findall(text) if not comma]


def is_secret(name: str) -> bool:
    return bool(_SECRET.search(name))


def adapter_requirements(project: DbtProject, overrides: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The pip requirements of the adapters the profile's targets use (or --adapter's), pinned."""
    for requirement in overrides:
        if not _REQUIREMENT.fullmatch(requirement.strip()):
            raise InputError(f"--adapter '{requirement[:60]}' is not PACKAGE==VERSION", "e.g. --adapter dbt-postgres==1.11.0")
    if overrides:
        return tuple(r.strip() for r in overrides)
    unknown = [t for t in project.adapter_types() if t not in ADAPTERS]
    if unknown:
        raise InputError(
            f"the profile's target type '{unknown[0]}' is not an adapter imagectl knows ({', '.join(sorted(ADAPTERS))})",
            f"pass --adapter PACKAGE==VERSION (the adapter for {unknown[0]}, at dbt-core {DBT_CORE.rsplit('.', 1)[0]})",
        )
    return tuple(ADAPTERS[t] for t in project.adapter_types())
