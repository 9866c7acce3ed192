"""Load and validate ``imagectl.toml``.

The file is found from the working directory upward (or given with ``--config`` / ``IMAGECTL_CONFIG``).
Paths in it are relative to the file. Every problem is reported as one ConfigError naming the key and the file.
Secrets never live here: registry and Airflow logins and webhook URLs come from the environment, AWS from its
credential chain. An on-call laptop needs only this file: the build paths ([images.*] context, dockerfile)
are checked by the commands that build, not when the file is loaded.
"""

from __future__ import annotations

import dataclasses
import re
import stat
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagectl.airflow.flavours import FLAVOURS
from imagectl.airflow.stores import STORES
from imagectl.errors import ConfigError
from imagectl.registries.kinds import KINDS
from imagectl.retention import RetentionConfig
from imagectl.settings import Identity, JiraConfig, JiraEnvironmentSettings, RegistryConfig, Timeouts, VerifySettings
from imagectl.tagging import ENVIRONMENT_RE, VARIABLE_KEY_RE, validate_dag_id

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

CONFIG_NAME = "imagectl.toml"
MAX_CONFIG_BYTES = 1 << 20
IMAGE_NAMES = ("base", "build")
SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
WEBHOOK_FORMATS = ("slack", "json")
_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::[0-9]{1,5})?"
)
_REPOSITORY_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class ImageConfig:
    name: str  # "base" or "build"
    repository: str
    context: Path
    dockerfile: Path
    build_args: dict[str, str] = field(default_factory=dict)
    network_mode: str | None = None
    config_path: Path | None = None

    def check_build_paths(self) -> None:
        """The context and Dockerfile exist (only commands that build need them)."""
        where = f"{self.config_path}: " if self.config_path else ""
        if not self.context.is_dir():
            raise ConfigError(
                f"{where}'images.{self.name}.context' points to {self.context}, which is not a directory",
                "run imagectl build from the dbt repository, or fix the path",
            )
        if not self.dockerfile.is_file():
            raise ConfigError(f"{where}'images.{self.name}.dockerfile' points to {self.dockerfile}, which does not exist", "fix the path")


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    registry: str
    variable: str = "dbt_image"
    release: bool = False
    confirm: bool = False
    airflow: str = "rest"  # the Airflow flavour (airflow/flavours.py)
    airflow_settings: Any = None  # the flavour's settings dataclass
    variable_store: str = "airflow"  # the Variable store (airflow/stores.py)
    store: Any = None  # the store's settings dataclass
    max_severity: str | None = None  # scan gate for promotions into this environment
    scan_wait: int = 300  # seconds the scan gate waits for a scan still running
    notify: tuple[str, ...] = ()
    dbt_dag: str | None = None  # the dbt DAG that reads this environment's Variable; None: [ci] dbt_dag
    verify: VerifySettings = field(default_factory=VerifySettings)
    jira: JiraEnvironmentSettings = field(default_factory=JiraEnvironmentSettings)

    @property
    def jira_environment_type(self) -> str:
        return self.jira.environment_type or ("production" if self.release else "development")


@dataclass(frozen=True)
class CiConfig:
    """`imagectl ci`: which branch deploys where, and which DAGs it triggers."""

    branches: dict[str, str] = field(default_factory=dict)  # branch name or glob → environment; others: build only
    build_environment: str | None = None  # where main-branch builds look for an image of the same commit to promote
    dbt_dag: str = "dbt_build"
    dbt_task: str = "dbt_build"  # the task whose rendered image `--wait` and `status` check
    lightdash_dag: str | None = "lightdash_sync"
    slim_conf: dict[str, Any] = field(default_factory=lambda: {"mode": "slim"})


@dataclass(frozen=True)
class WebhookConfig:
    name: str
    format: str  # "slack" (incoming-webhook JSON) or "json" (imagectl's own event document)


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
    webhooks: dict[str, WebhookConfig] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    identities: dict[str, Identity] = field(default_factory=dict)
    jira: JiraConfig = field(default_factory=JiraConfig)
    commit_url: str | None = None  # [project] commit_url: a commit's web page, "{commit}" standing for its SHA

    def commit_link(self, sha: str | None) -> str | None:
        """The web page of commit ``sha`` when [project] commit_url is set (the Images page links commits to it)."""
        if not self.commit_url or not sha or not _COMMIT_RE.fullmatch(sha):
            return None
        return self.commit_url.replace("{commit}", sha)

    def jira_link(self, key: str | None) -> str | None:
        """The Jira issue's page when [jira] url is set."""
        if not self.jira.url or not key or not _JIRA_KEY_RE.fullmatch(key):
            return None
        return f"{self.jira.url}/browse/{key}"

    def identity(self, name: str | None) -> Identity | None:
        """The [identities.NAME] an extension's settings name (None: the default AWS credential chain)."""
        return self.identities[name] if name else None

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            from imagectl.sanitize import visible

            raise ConfigError(
                f"environment '{visible(name)[:40]}' is not defined in {self.path}", f"defined environments: {known}"
            ) from None

    def registry_for(self, environment: str) -> RegistryConfig:
        return self.registries[self.environment(environment).registry]

    def dbt_dag_for(self, environment: str) -> str:
        """The dbt DAG whose runs use this environment's Variable (its own `dbt_dag`, else [ci] dbt_dag)."""
        return self.environment(environment).dbt_dag or self.ci.dbt_dag

    @property
    def dbt_project_path(self) -> str:
        """Where the dbt project lives in the repository (the build image's DBT_PROJECT_PATH)."""
        return self.images["build"].build_args.get("DBT_PROJECT_PATH", ".")


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
    try:
        path = path.resolve()
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block, /dev/zero would never end
            raise ConfigError(f"config file {path} is not a regular file", "pass the path of imagectl.toml itself")
        if status.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes", "pass the path of imagectl.toml itself")
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory", "pass the path of imagectl.toml itself") from None
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", "check --config / IMAGECTL_CONFIG") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", "check the file's permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})", "save imagectl.toml as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", "fix the syntax at that line") from None
    return parse_config(path, data)


class _Table:
    """A TOML table with typed getters that name the dotted key and the file in every error."""

    def __init__(self, path: Path, data: Any, dotted: str) -> None:
        self.path, self.dotted = path, dotted
        if not isinstance(data, dict):
            raise self.fail(dotted, "must be a table")
        self.data: dict[str, Any] = data

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: '{key}' {problem}", "see the configuration reference in README.md")

    def key(self, name: str) -> str:
        return f"{self.dotted}.{name}" if self.dotted else name

    def only(self, allowed: set[str] | tuple[str, ...]) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise self.fail(self.key(unknown[0]), f"is not a known key (known: {', '.join(sorted(allowed))})")

    def table(self, name: str, required: bool = False) -> _Table:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(self.key(name), "is missing")
            value = {}
        return _Table(self.path, value, self.key(name))

    def string(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.data.get(name, default)
        if value is None:
            if required:
                raise self.fail(self.key(name), "is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(self.key(name), "must be a non-empty string")
        if any(ord(c) < 32 for c in value):
            raise self.fail(self.key(name), "must not contain control characters")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(self.key(name), "must be true or false")
        return value

    def choice(self, name: str, choices: tuple[str, ...] | list[str], default: str | None) -> str | None:
        value = self.data.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or value not in choices:
            raise self.fail(self.key(name), f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int = 10**9) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(self.key(name), f"must be a whole number from {minimum} to {maximum}")
        return value

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
            raise self.fail(self.key(name), f"must be a number from {minimum:g} to {maximum:g}")
        return float(value)

    def strings(self, name: str, check: re.Pattern[str] | None = None, what: str = "strings") -> tuple[str, ...]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and (check is None or check.fullmatch(v)) for v in value):
            raise self.fail(self.key(name), f"must be a list of {what}")
        return tuple(value)

    def string_map(self, name: str, what: str = "string values") -> dict[str, str]:
        table = self.table(name)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in table.data.items()):
            raise self.fail(self.key(name), f"must be a table of {what}")
        return dict(table.data)


def parse_config(path: Path, data: dict[str, Any]) -> Config:
    top = _Table(path, data, "")
    top.only({"project", "jira", "git", "images", "identities", "registries", "environments", "ci", "webhooks", "timeouts"})
    project = top.table("project")
    project.only({"name", "source", "default_environment", "commit_url"})
    jira = top.table("jira")
    jira.only({"projects", "url", "kind", "cloud_id", "api_url", "pipeline"})
    git = top.table("git")
    git.only({"main_branch"})
    webhooks = _webhooks(top.table("webhooks"))
    jira_projects = jira.strings("projects", re.compile(r"[A-Z][A-Z0-9_]+"), 'upper-case project keys, e.g. ["DATA"]')
    identities = _identities(top.table("identities"))
    registries = _registries(top.table("registries", required=True), jira_projects, identities)
    environments = _environments(top.table("environments", required=True), registries, webhooks, identities)
    default_env = project.string("default_environment")
    if default_env is not None and default_env not in environments:
        raise project.fail("project.default_environment", f"names '{default_env}', which is not under [environments]")
    if default_env is None and len(environments) == 1:
        default_env = next(iter(environments))  # one environment: --env is not needed
    source = project.string("source")
    if source is not None:
        from imagectl.sanitize import strip_credentials

        source = strip_credentials(source)
    root = path.parent
    return Config(
        path=path,
        root=root,
        project_name=project.string("name", default=root.name) or root.name,
        source=source,
        commit_url=_commit_url(project),
        default_environment=default_env,
        jira_projects=jira_projects,
        jira=_jira(jira, jira_projects),
        main_branch=git.string("main_branch", default="main") or "main",
        images=_images(top.table("images", required=True), root),
        registries=registries,
        environments=environments,
        identities=identities,
        ci=_ci(top.table("ci"), environments),
        webhooks=webhooks,
        timeouts=_timeouts(top.table("timeouts")),
    )


_CLOUD_ID_RE = re.compile(r"[0-9a-fA-F-]{8,64}")
_COMMIT_RE = re.compile(r"[0-9a-f]{7,64}")
_JIRA_KEY_RE = re.compile(r"[A-Z][A-Z0-9_]+-[0-9]+")


def _commit_url(project: _Table) -> str | None:
    """[project] commit_url: an http(s) URL without credentials in which "{commit}" stands for the SHA."""
    value = project.string("commit_url")
    if value is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value.replace("{commit}", "0"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password or "{commit}" not in value:
        raise project.fail(
            project.key("commit_url"),
            'must be an http(s) URL without credentials containing {commit}, e.g. "https://git.example/org/dbt/commit/{commit}"',
        )
    return value


_PIPELINE_RE = re.compile(r"[A-Za-z0-9._:/-]{1,255}")


def _jira_url(table: _Table, name: str, default: str | None = None) -> str | None:
    value = table.string(name, default=default)
    if value is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback) or not parts.hostname or parts.username:
        raise table.fail(table.key(name), "must be an https:// URL without credentials (http only on 127.0.0.1)")
    return value.rstrip("/")


def _jira(jira: _Table, projects: tuple[str, ...]) -> JiraConfig:
    url = _jira_url(jira, "url")
    kind = jira.choice("kind", ["cloud", "datacenter"], "cloud") or "cloud"
    cloud_id = jira.string("cloud_id")
    if cloud_id is not None and not _CLOUD_ID_RE.fullmatch(cloud_id):
        raise jira.fail(jira.key("cloud_id"), "must be the site's cloud id (https://<site>/_edge/tenant_info)")
    if url is not None and kind == "cloud" and cloud_id is None:
        raise jira.fail(jira.key("cloud_id"), 'is needed with kind = "cloud" (find it at https://<site>/_edge/tenant_info)')
    pipeline = jira.string("pipeline")
    if pipeline is not None and not _PIPELINE_RE.fullmatch(pipeline):
        raise jira.fail(jira.key("pipeline"), "must be 1-255 letters, digits or . _ : / -")
    return JiraConfig(
        projects=projects,
        url=url,
        kind=kind,
        cloud_id=cloud_id,
        api_url=_jira_url(jira, "api_url", "https://api.atlassian.com") or "https://api.atlassian.com",
        pipeline=pipeline,
    )


def _images(images: _Table, root: Path) -> dict[str, ImageConfig]:
    images.only(set(IMAGE_NAMES))
    result = {}
    for name in IMAGE_NAMES:
        image = images.table(name, required=True)
        image.only({"context", "dockerfile", "repository", "build_args", "network"})
        repository = image.string("repository", required=True) or ""
        if not _REPOSITORY_RE.fullmatch(repository) or len(repository) > 200:
            raise image.fail(image.key("repository"), "must be a lower-case repository name such as 'dbt-base'")
        context = root / (image.string("context", default=".") or ".")
        dockerfile_value = image.string("dockerfile")
        dockerfile = root / dockerfile_value if dockerfile_value else context / "Dockerfile"
        result[name] = ImageConfig(
            name=name,
            repository=repository,
            context=context.resolve(),
            dockerfile=dockerfile.resolve(),
            build_args=image.string_map("build_args", 'string values, e.g. { PYTHON_IMAGE = "python:3.11" }'),
            network_mode=image.string("network"),
            config_path=images.path,
        )
    if result["base"].repository == result["build"].repository:
        raise images.fail("images.build.repository", "must differ from images.base.repository")
    return result


def _retention(registry: _Table, projects: tuple[str, ...] = ()) -> RetentionConfig:
    if "retention" in registry.data and "lifecycle" in registry.data:
        raise registry.fail(registry.key("lifecycle"), "is the old name of retention: keep only [retention]")
    table = registry.table("retention" if "retention" in registry.data else "lifecycle")
    table.only({"keep_builds", "keep_deployed", "keep_bases", "keep_history_records", "untagged_days"})
    return RetentionConfig(
        keep_builds=table.integer("keep_builds", 200, 1, 100_000),
        keep_deployed=table.boolean("keep_deployed", True),
        keep_bases=table.integer("keep_bases", 10, 1, 100_000),
        keep_history_records=table.integer("keep_history_records", 1000, 200, 100_000),
        untagged_days=table.integer("untagged_days", 7, 1, 3650),
        **({"build_tag_prefixes": tuple(f"{p}-" for p in projects)} if projects else {}),
    )


def read_settings(cls: type, table: _Table, identities: dict[str, Identity] | None = None) -> Any:
    """An extension's settings dataclass (settings.py) read from ``table`` field by field, each checked by its type
    and ``setting()`` metadata; every error names the key and the file."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta, key = f.metadata, table.key(f.name)
        kind = hints[f.name]
        optional = isinstance(kind, types.UnionType) and type(None) in typing.get_args(kind)
        base = next((a for a in typing.get_args(kind) if a is not type(None)), kind) if optional else kind
        if f.name not in table.data:
            if meta.get("required"):
                what = f" ({meta['what']})" if meta.get("what") else ""
                raise table.fail(key, f"is missing{what}")
            continue
        raw = table.data[f.name]
        if base is bool:
            value: Any = table.boolean(f.name, False)
        elif base is int:
            value = table.integer(f.name, 0, int(meta.get("minimum") or 0), int(meta.get("maximum") or 10**9))
        elif base is float:
            value = table.number(f.name, 0.0, float(meta.get("minimum") or 0), float(meta.get("maximum") or 10**9))
        elif typing.get_origin(base) is tuple:
            value = table.strings(f.name, what=meta.get("what") or "strings")
        elif meta.get("choices"):
            value = table.choice(f.name, list(meta["choices"]), None)
        elif meta.get("check") is not None:
            if isinstance(raw, str) and any(ord(c) < 32 for c in raw):
                raise table.fail(key, "must not contain control characters")
            value = raw
        else:
            value = table.string(f.name)
        if meta.get("check") is not None:
            try:
                value = meta["check"](value)
            except ValueError as exc:
                raise table.fail(key, str(exc)) from None
        if meta.get("identity") and value not in (identities or {}):
            known = ", ".join(sorted(identities or {})) or "none"
            raise table.fail(key, f"names identity '{value}', which is not under [identities] (defined: {known})")
        values[f.name] = value
    settings = cls(**values)
    problem = settings.problem() if hasattr(settings, "problem") else None  # a check across the extension's keys
    if problem:
        raise table.fail(table.key(problem[0]), problem[1])
    return settings


_ROLE_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")
_SESSION_NAME_RE = re.compile(r"[\w+=,.@-]{2,64}")  # STS AssumeRole RoleSessionName


def _identities(table: _Table) -> dict[str, Identity]:
    """[identities.NAME]: profile and/or role_arn (+ external_id, session_name). Secrets never live here."""
    result = {}
    for name in table.data:
        identity = table.table(name)
        if not _NAME_RE.fullmatch(name):
            raise identity.fail(identity.dotted, "name must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter")
        identity.only({"profile", "role_arn", "external_id", "session_name"})
        profile, role_arn = identity.string("profile"), identity.string("role_arn")
        if profile is None and role_arn is None:
            raise identity.fail(identity.dotted, "needs profile or role_arn (or both: the role assumed from the profile)")
        if role_arn is not None and not _ROLE_ARN_RE.fullmatch(role_arn):
            raise identity.fail(identity.key("role_arn"), "must be an IAM role ARN such as arn:aws:iam::222222222222:role/imagectl")
        external_id = identity.string("external_id")
        if external_id is not None and role_arn is None:
            raise identity.fail(identity.key("external_id"), "applies only with role_arn")
        session_name = identity.string("session_name", default="imagectl") or "imagectl"
        if not _SESSION_NAME_RE.fullmatch(session_name):
            raise identity.fail(identity.key("session_name"), "must be 2-64 characters of letters, digits and +=,.@_-")
        result[name] = Identity(name, profile, role_arn, external_id, session_name)
    return result


def settings_keys(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _registries(
    registries: _Table, projects: tuple[str, ...] = (), identities: dict[str, Identity] | None = None
) -> dict[str, RegistryConfig]:
    if not registries.data:
        raise registries.fail("registries", "must define at least one registry")
    result = {}
    for name in registries.data:
        reg = registries.table(name)
        if not _NAME_RE.fullmatch(name):
            raise reg.fail(reg.dotted, "name must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter")
        kind_name = reg.choice("kind", sorted(KINDS), None)
        if kind_name is None:
            raise reg.fail(reg.key("kind"), f"is missing (one of {', '.join(sorted(KINDS))})")
        kind = KINDS[kind_name]
        reg.only({"kind", "host", "retention", "lifecycle", *settings_keys(kind.settings)})
        host = reg.string("host", required=True) or ""
        if "@" in host or "://" in host or "/" in host or not _HOST_RE.fullmatch(host):
            raise reg.fail(
                reg.key("host"),
                "must be host[:port] only, e.g. 111111111111.dkr.ecr.eu-west-1.amazonaws.com or 127.0.0.1:5000 "
                "(no scheme, path or credentials; logins come from the environment)",
            )
        settings = read_settings(kind.settings, reg, identities)
        problem = kind.check(host, settings) if kind.check else None
        if problem:
            raise reg.fail(reg.key("host"), problem)
        retention = _retention(reg, projects)
        if kind.referrers_go_with_subject and not retention.keep_deployed:
            raise reg.fail(
                reg.key("retention.keep_deployed"),
                f"cannot be false for a {kind_name} registry: it deletes an image's referrers with the image, so expiring a deployed "
                "image would delete the history records that point at it",
            )
        identity = getattr(settings, "identity", None)
        result[name] = RegistryConfig(
            name=name,
            kind=kind_name,
            host=host,
            settings=settings,
            retention=retention,
            identity=(identities or {}).get(identity) if identity else None,
        )
    return result


_ENVIRONMENT_KEYS = {
    "registry",
    "airflow",
    "variable",
    "release",
    "confirm",
    "variable_store",
    "max_severity",
    "scan_wait",
    "notify",
    "dbt_dag",
    "verify",
    "jira",
}


def _environments(
    environments: _Table,
    registries: dict[str, RegistryConfig],
    webhooks: dict[str, WebhookConfig],
    identities: dict[str, Identity] | None = None,
) -> dict[str, EnvironmentConfig]:
    if not environments.data:
        raise environments.fail("environments", "must define at least one environment")
    result = {}
    store_keys = {k for store in STORES.values() for k in settings_keys(store.settings)}
    flavour_keys = {k for flavour in FLAVOURS.values() for k in settings_keys(flavour.settings)}
    for name in environments.data:
        env = environments.table(name)
        if not ENVIRONMENT_RE.fullmatch(name):
            raise env.fail(env.dotted, "name must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter")
        env.only(_ENVIRONMENT_KEYS | store_keys | flavour_keys)
        registry = env.string("registry", required=True) or ""
        if registry not in registries:
            raise env.fail(env.key("registry"), f"names '{registry}', which is not under [registries]")
        store_name = env.choice("variable_store", sorted(STORES), "airflow") or "airflow"
        store = STORES[store_name]
        for key in sorted(store_keys - settings_keys(store.settings)):
            if key in env.data:
                raise env.fail(env.key(key), f'does not apply to variable_store = "{store_name}"')
        flavour_name = env.choice("airflow", sorted(FLAVOURS), "rest") or "rest"
        flavour = FLAVOURS[flavour_name]
        for key in sorted(flavour_keys - settings_keys(flavour.settings)):
            if key in env.data:
                raise env.fail(env.key(key), f'does not apply to airflow = "{flavour_name}"')
        variable = env.string("variable", default="dbt_image") or "dbt_image"
        if not VARIABLE_KEY_RE.fullmatch(variable):
            raise env.fail(env.key("variable"), "must be a Variable key of letters, digits, '_', '.' or '-'")
        if flavour.max_path and len("/variables/" + variable) > flavour.max_path:
            raise env.fail(
                env.key("variable"),
                f'must be at most {flavour.max_path - len("/variables/")} characters with airflow = "{flavour_name}" '
                f"(its requests' paths are at most {flavour.max_path} characters, and the key is in the path)",
            )
        release = env.boolean("release", name == "prd")
        notify = env.strings("notify", what="webhook names from [webhooks]")
        dbt_dag = env.string("dbt_dag")
        if dbt_dag is not None:
            try:
                validate_dag_id(dbt_dag)
            except Exception:  # noqa: BLE001 - re-raised as a config error naming the key
                raise env.fail(env.key("dbt_dag"), "must be an Airflow DAG id of letters, digits, '_', '.' or '-'") from None
            if flavour.max_path and len(f"/dags/{dbt_dag}/dagRuns") > flavour.max_path:
                raise env.fail(
                    env.key("dbt_dag"),
                    f'must be at most {flavour.max_path - len("/dags//dagRuns")} characters with airflow = "{flavour_name}" '
                    f"(its requests' paths are at most {flavour.max_path} characters, and the DAG id is in the path)",
                )
        for hook in notify:
            if hook not in webhooks:
                raise env.fail(env.key("notify"), f"names '{hook}', which is not under [webhooks]")
        result[name] = EnvironmentConfig(
            name=name,
            registry=registry,
            variable=variable,
            release=release,
            confirm=env.boolean("confirm", release),
            airflow=flavour_name,
            airflow_settings=read_settings(flavour.settings, env, identities),
            variable_store=store_name,
            store=read_settings(store.settings, env, identities),
            max_severity=env.choice("max_severity", SEVERITIES, None),
            scan_wait=env.integer("scan_wait", 300, 0, 86_400),
            notify=notify,
            dbt_dag=dbt_dag,
            verify=_settings_table(env, "verify", VerifySettings),
            jira=_settings_table(env, "jira", JiraEnvironmentSettings),
        )
    return result


def _settings_table(env: _Table, name: str, cls: type) -> Any:
    table = env.table(name)
    table.only(settings_keys(cls))
    return read_settings(cls, table)


def _ci(ci: _Table, environments: dict[str, EnvironmentConfig]) -> CiConfig:
    ci.only({"branches", "build_environment", "dbt_dag", "dbt_task", "lightdash_dag", "slim_conf"})
    branches = ci.string_map("branches", 'environment names, e.g. { main = "prd", "feature/*" = "dev" }')
    for branch, env in branches.items():
        if env not in environments:
            raise ci.fail(f"ci.branches.{branch}", f"names '{env}', which is not under [environments]")
    build_env = ci.string("build_environment")
    if build_env is not None and build_env not in environments:
        raise ci.fail("ci.build_environment", f"names '{build_env}', which is not under [environments]")
    lightdash = ci.data.get("lightdash_dag", "lightdash_sync")
    if lightdash is not False and not isinstance(lightdash, str):
        raise ci.fail("ci.lightdash_dag", "must be a DAG id, or false to skip the Lightdash sync")
    slim_conf = ci.table("slim_conf").data or {"mode": "slim"}
    if not all(isinstance(v, str | int | float | bool) for v in slim_conf.values()):
        raise ci.fail("ci.slim_conf", "must be a table of strings, numbers or booleans")
    dags = {}
    for key, default in (("dbt_dag", "dbt_build"), ("dbt_task", "dbt_build")):
        value = ci.string(key, default=default) or default
        try:
            validate_dag_id(value)
        except Exception:  # noqa: BLE001 - re-raised as a config error naming the key
            raise ci.fail(f"ci.{key}", "must be an Airflow id of letters, digits, '_', '.' or '-'") from None
        dags[key] = value
    if isinstance(lightdash, str):
        try:
            validate_dag_id(lightdash)
        except Exception:  # noqa: BLE001
            raise ci.fail("ci.lightdash_dag", "must be an Airflow DAG id of letters, digits, '_', '.' or '-'") from None
    for environment in environments.values():  # the DAGs an environment whose Airflow limits paths triggers (its dbt DAG: [ci] dbt_dag)
        limit = FLAVOURS[environment.airflow].max_path
        for key, dag in (("dbt_dag", None if environment.dbt_dag else dags["dbt_dag"]), ("lightdash_dag", lightdash or None)):
            if limit and dag and len(f"/dags/{dag}/dagRuns") > limit:
                raise ci.fail(
                    f"ci.{key}",
                    f"must be at most {limit - len('/dags//dagRuns')} characters: environment '{environment.name}' reaches its Airflow "
                    f'with airflow = "{environment.airflow}", whose requests\' paths are at most {limit} characters',
                )
    return CiConfig(
        branches=branches,
        build_environment=build_env,
        dbt_dag=dags["dbt_dag"],
        dbt_task=dags["dbt_task"],
        lightdash_dag=lightdash or None,
        slim_conf=dict(slim_conf),
    )


def _webhooks(webhooks: _Table) -> dict[str, WebhookConfig]:
    result = {}
    for name in webhooks.data:
        hook = webhooks.table(name)
        if not _NAME_RE.fullmatch(name):
            raise hook.fail(hook.dotted, "name must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter")
        hook.only({"format"})
        result[name] = WebhookConfig(name, hook.choice("format", WEBHOOK_FORMATS, "json") or "json")
    return result


def _timeouts(table: _Table) -> Timeouts:
    table.only({"connect", "read", "request", "command"})
    return Timeouts(
        connect=table.number("connect", 5.0, 0.1, 300),
        read=table.number("read", 30.0, 0.1, 3600),
        request=table.number("request", 300.0, 1, 86_400),
        command=table.number("command", 600.0, 1, 86_400),
    )
