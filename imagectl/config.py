"""Load and validate ``imagectl.toml``.

The file is found from the working directory upward (or given with ``--config`` / ``IMAGECTL_CONFIG``).
Paths in it are relative to the file. Every problem is reported as one ConfigError naming the key and the file.
Secrets never live here: registry passwords come from the environment, AWS from its credential chain.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagectl.errors import ConfigError
from imagectl.tagging import DOCKER_TAG_RE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

CONFIG_NAME = "imagectl.toml"
IMAGE_NAMES = ("base", "build")
REGISTRY_KINDS = ("ecr", "oci")


@dataclass(frozen=True)
class ImageConfig:
    name: str  # "base" or "build"
    context: Path
    dockerfile: Path
    repository: str
    build_args: dict[str, str] = field(default_factory=dict)
    network_mode: str | None = None


@dataclass(frozen=True)
class LifecycleConfig:
    keep_builds: int = 200
    keep_deployed: bool = True
    untagged_days: int = 7


@dataclass(frozen=True)
class RegistryConfig:
    name: str
    kind: str
    host: str
    region: str | None = None
    insecure: bool = False
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    registry: str
    airflow_url: str | None = None
    variable: str = "dbt_image"
    release: bool = False
    confirm: bool = False
    airflow_api: str = "auto"  # "v2" (Airflow 3), "v1" (Airflow 2) or "auto" (probe)


@dataclass(frozen=True)
class CiConfig:
    """`imagectl ci`: which branch deploys where, and which DAGs it triggers."""

    branches: dict[str, str] = field(default_factory=dict)  # branch name or glob → environment; others: build only
    build_environment: str | None = None  # where main-branch builds look for an image of the same commit to promote
    dbt_dag: str = "dbt_build"
    lightdash_dag: str | None = "lightdash_sync"
    slim_conf: dict[str, str] = field(default_factory=lambda: {"mode": "slim"})


@dataclass(frozen=True)
class Config:
    path: Path
    root: Path
    project_name: str
    source: str | None
    default_environment: str | None
    jira_projects: tuple[str, ...]
    main_branch: str
    images: dict[str, ImageConfig]
    registries: dict[str, RegistryConfig]
    environments: dict[str, EnvironmentConfig]
    ci: CiConfig = field(default_factory=CiConfig)

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(
                f"environment '{name}' is not defined in {self.path}",
                f"defined environments: {known}",
            ) from None

    def registry_for(self, environment: str) -> RegistryConfig:
        return self.registries[self.environment(environment).registry]


def find_config(start: Path) -> Path:
    """The nearest imagectl.toml at or above ``start``."""
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_NAME} found in {start} or any parent directory",
        "run imagectl from your dbt repository, or pass --config PATH (or set IMAGECTL_CONFIG)",
    )


def load_config(path: Path | None = None, cwd: Path | None = None) -> Config:
    path = path if path is not None else find_config((cwd or Path.cwd()).resolve())
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", "check --config / IMAGECTL_CONFIG")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", "fix the syntax at that line") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", "check the file's permissions") from None
    return _Parser(path, data).parse()


class _Parser:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.root = path.parent
        self.data = data

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: '{key}' {problem}", "see the configuration reference in README.md")

    def table(self, data: dict[str, Any], key: str, dotted: str, required: bool = False) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(dotted, "is missing")
            return {}
        if not isinstance(value, dict):
            raise self.fail(dotted, "must be a table")
        return value

    def check_keys(self, data: dict[str, Any], dotted: str, allowed: set[str]) -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.fail(f"{dotted}.{unknown[0]}" if dotted else unknown[0], f"is not a known key (known: {', '.join(sorted(allowed))})")

    def string(self, data: dict[str, Any], key: str, dotted: str, default: str | None = None, required: bool = False) -> str | None:
        value = data.get(key, default)
        if value is None:
            if required:
                raise self.fail(dotted, "is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(dotted, "must be a non-empty string")
        return value

    def boolean(self, data: dict[str, Any], key: str, dotted: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(dotted, "must be true or false")
        return value

    def choice(self, data: dict[str, Any], key: str, dotted: str, choices: tuple[str, ...], default: str) -> str:
        value = data.get(key, default)
        if value not in choices:
            raise self.fail(dotted, f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    def integer(self, data: dict[str, Any], key: str, dotted: str, default: int, minimum: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(dotted, f"must be a whole number ≥ {minimum}")
        return value

    def parse(self) -> Config:
        self.check_keys(self.data, "", {"project", "jira", "git", "images", "registries", "environments", "ci"})
        project = self.table(self.data, "project", "project")
        self.check_keys(project, "project", {"name", "source", "default_environment"})
        jira = self.table(self.data, "jira", "jira")
        self.check_keys(jira, "jira", {"projects"})
        projects = jira.get("projects", [])
        if not isinstance(projects, list) or not all(isinstance(p, str) and p.isupper() for p in projects):
            raise self.fail("jira.projects", 'must be a list of upper-case project keys, e.g. ["DATA"]')
        git = self.table(self.data, "git", "git")
        self.check_keys(git, "git", {"main_branch"})

        registries = self.parse_registries()
        environments = self.parse_environments(registries)
        default_env = self.string(project, "default_environment", "project.default_environment")
        if default_env is not None and default_env not in environments:
            raise self.fail("project.default_environment", f"names '{default_env}', which is not under [environments]")
        return Config(
            path=self.path,
            root=self.root,
            project_name=self.string(project, "name", "project.name", default=self.root.name) or self.root.name,
            source=self.string(project, "source", "project.source"),
            default_environment=default_env,
            jira_projects=tuple(projects),
            main_branch=self.string(git, "main_branch", "git.main_branch", default="main") or "main",
            images=self.parse_images(),
            registries=registries,
            environments=environments,
            ci=self.parse_ci(environments),
        )

    def parse_ci(self, environments: dict[str, EnvironmentConfig]) -> CiConfig:
        ci = self.table(self.data, "ci", "ci")
        self.check_keys(ci, "ci", {"branches", "build_environment", "dbt_dag", "lightdash_dag", "slim_conf"})
        branches = self.table(ci, "branches", "ci.branches")
        for branch, env in branches.items():
            if env not in environments:
                raise self.fail(f"ci.branches.{branch}", f"names '{env}', which is not under [environments]")
        build_env = self.string(ci, "build_environment", "ci.build_environment")
        if build_env is not None and build_env not in environments:
            raise self.fail("ci.build_environment", f"names '{build_env}', which is not under [environments]")
        lightdash = ci.get("lightdash_dag", "lightdash_sync")
        if lightdash is not False and not isinstance(lightdash, str):
            raise self.fail("ci.lightdash_dag", "must be a DAG id, or false to skip the Lightdash sync")
        slim_conf = self.table(ci, "slim_conf", "ci.slim_conf") or {"mode": "slim"}
        return CiConfig(
            branches=dict(branches),
            build_environment=build_env,
            dbt_dag=self.string(ci, "dbt_dag", "ci.dbt_dag", default="dbt_build") or "dbt_build",
            lightdash_dag=lightdash or None,
            slim_conf=dict(slim_conf),
        )

    def parse_images(self) -> dict[str, ImageConfig]:
        images = self.table(self.data, "images", "images", required=True)
        self.check_keys(images, "images", set(IMAGE_NAMES))
        result = {}
        for name in IMAGE_NAMES:
            dotted = f"images.{name}"
            image = self.table(images, name, dotted, required=True)
            self.check_keys(image, dotted, {"context", "dockerfile", "repository", "build_args", "network"})
            context = self.root / (self.string(image, "context", f"{dotted}.context", required=True) or ".")
            if not context.is_dir():
                raise self.fail(f"{dotted}.context", f"points to {context}, which is not a directory")
            dockerfile_value = self.string(image, "dockerfile", f"{dotted}.dockerfile")
            dockerfile = self.root / dockerfile_value if dockerfile_value else context / "Dockerfile"
            if not dockerfile.is_file():
                raise self.fail(f"{dotted}.dockerfile", f"points to {dockerfile}, which does not exist")
            repository = self.string(image, "repository", f"{dotted}.repository", required=True) or ""
            if not _valid_repository(repository):
                raise self.fail(f"{dotted}.repository", "must be a lower-case repository name such as 'dbt-base'")
            build_args = self.table(image, "build_args", f"{dotted}.build_args")
            if not all(isinstance(v, str) for v in build_args.values()):
                raise self.fail(f"{dotted}.build_args", "values must be strings")
            result[name] = ImageConfig(
                name=name,
                context=context.resolve(),
                dockerfile=dockerfile.resolve(),
                repository=repository,
                build_args=dict(build_args),
                network_mode=self.string(image, "network", f"{dotted}.network"),
            )
        if result["base"].repository == result["build"].repository:
            raise self.fail("images.build.repository", "must differ from images.base.repository")
        return result

    def parse_registries(self) -> dict[str, RegistryConfig]:
        registries = self.table(self.data, "registries", "registries", required=True)
        if not registries:
            raise self.fail("registries", "must define at least one registry")
        result = {}
        for name, reg in registries.items():
            dotted = f"registries.{name}"
            if not isinstance(reg, dict):
                raise self.fail(dotted, "must be a table")
            self.check_keys(reg, dotted, {"kind", "host", "region", "insecure", "lifecycle"})
            kind = self.string(reg, "kind", f"{dotted}.kind", required=True)
            if kind not in REGISTRY_KINDS:
                raise self.fail(f"{dotted}.kind", f"must be one of {', '.join(REGISTRY_KINDS)} (got '{kind}')")
            host = self.string(reg, "host", f"{dotted}.host", required=True) or ""
            if "/" in host or "://" in host:
                raise self.fail(f"{dotted}.host", "must be a host[:port] without scheme or path")
            region = self.string(reg, "region", f"{dotted}.region")
            if kind == "ecr" and region is None:
                raise self.fail(f"{dotted}.region", "is required for an ECR registry")
            lifecycle = self.table(reg, "lifecycle", f"{dotted}.lifecycle")
            self.check_keys(lifecycle, f"{dotted}.lifecycle", {"keep_builds", "keep_deployed", "untagged_days"})
            result[name] = RegistryConfig(
                name=name,
                kind=kind,
                host=host,
                region=region,
                insecure=self.boolean(reg, "insecure", f"{dotted}.insecure", False),
                lifecycle=LifecycleConfig(
                    keep_builds=self.integer(lifecycle, "keep_builds", f"{dotted}.lifecycle.keep_builds", 200, 1),
                    keep_deployed=self.boolean(lifecycle, "keep_deployed", f"{dotted}.lifecycle.keep_deployed", True),
                    untagged_days=self.integer(lifecycle, "untagged_days", f"{dotted}.lifecycle.untagged_days", 7, 1),
                ),
            )
        return result

    def parse_environments(self, registries: dict[str, RegistryConfig]) -> dict[str, EnvironmentConfig]:
        environments = self.table(self.data, "environments", "environments", required=True)
        if not environments:
            raise self.fail("environments", "must define at least one environment")
        result = {}
        for name, env in environments.items():
            dotted = f"environments.{name}"
            if not isinstance(env, dict):
                raise self.fail(dotted, "must be a table")
            if not DOCKER_TAG_RE.fullmatch(name) or not name.islower():
                raise self.fail(dotted, "name must be lower-case letters, digits, '-' or '_'")
            self.check_keys(env, dotted, {"registry", "airflow_url", "airflow_api", "variable", "release", "confirm"})
            registry = self.string(env, "registry", f"{dotted}.registry", required=True) or ""
            if registry not in registries:
                raise self.fail(f"{dotted}.registry", f"names '{registry}', which is not under [registries]")
            release = self.boolean(env, "release", f"{dotted}.release", name == "prd")
            result[name] = EnvironmentConfig(
                name=name,
                registry=registry,
                airflow_url=self.string(env, "airflow_url", f"{dotted}.airflow_url"),
                variable=self.string(env, "variable", f"{dotted}.variable", default="dbt_image") or "dbt_image",
                release=release,
                confirm=self.boolean(env, "confirm", f"{dotted}.confirm", release),
                airflow_api=self.choice(env, "airflow_api", f"{dotted}.airflow_api", ("auto", "v2", "v1"), "auto"),
            )
            if result[name].airflow_url and "://" not in (result[name].airflow_url or ""):
                raise self.fail(f"{dotted}.airflow_url", "must be a URL such as http://airflow.internal:8080")
        return result


def _valid_repository(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*", name))
