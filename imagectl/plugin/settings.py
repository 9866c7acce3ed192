"""Where imagectl finds its configuration inside Airflow, and which of imagectl.toml's environments this Airflow runs.

Read from Airflow's own configuration (``airflow.cfg``, or ``AIRFLOW__IMAGECTL__…`` variables; MWAA's "Airflow
configuration options"), section ``[imagectl]``:

| option | default | meaning |
|---|---|---|
| ``config_file`` | ``$IMAGECTL_CONFIG``, else ``<dags_folder>/imagectl.toml`` | the imagectl.toml the page and the DAG read |
| ``environments`` | the only environment, when imagectl.toml has one | the environments this Airflow runs, comma-separated |

The Images page shows those environments and ``imagectl_ops`` acts only on them: each Airflow writes the Variables
of its own environments (a dev Airflow must never write prd's). ``read`` is pure (the caller passes Airflow's option
getter); ``from_airflow`` reads this Airflow's configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from imagectl.config import CONFIG_NAME, Config, load_config
from imagectl.errors import ConfigError
from imagectl.tagging import validate_environment_name

SECTION = "imagectl"
Option = Callable[[str], "str | None"]  # an [imagectl] option's value (None: not set)


@dataclass(frozen=True)
class PluginSettings:
    config_path: Path
    environments_option: str | None  # as set ([imagectl] environments), checked against imagectl.toml by hosted()

    def hosted(self, config: Config) -> tuple[str, ...]:
        """The environments this Airflow runs, in imagectl.toml's order; a ConfigError says how to name them."""
        defined = list(config.environments)
        if not self.environments_option:
            if len(defined) == 1:
                return (defined[0],)
            raise ConfigError(
                f"which of {config.path}'s environments ({', '.join(defined)}) does this Airflow run?",
                f"set [{SECTION}] environments in Airflow's configuration, e.g. AIRFLOW__IMAGECTL__ENVIRONMENTS={defined[-1]}",
            )
        names = [name.strip() for name in self.environments_option.split(",") if name.strip()]
        for name in names:
            validate_environment_name(name)
            if name not in config.environments:
                raise ConfigError(
                    f"[{SECTION}] environments names '{name}', which is not under [environments] in {config.path}",
                    f"name some of: {', '.join(defined)}",
                )
        return tuple(n for n in defined if n in names)


def read(option: Option, environ: Mapping[str, str], dags_folder: str | None) -> PluginSettings:
    """The settings from Airflow's ``[imagectl]`` options, the environment and the DAGs folder."""
    path = option("config_file") or environ.get("IMAGECTL_CONFIG") or (str(Path(dags_folder) / CONFIG_NAME) if dags_folder else None)
    if not path:
        raise ConfigError(
            "imagectl does not know where its imagectl.toml is",
            f"set [{SECTION}] config_file in Airflow's configuration, or IMAGECTL_CONFIG",
        )
    return PluginSettings(Path(path), option("environments"))


class ConfigCache:
    """imagectl.toml, read again only when the file changes (the page is read often; the file rarely changes)."""

    def __init__(self) -> None:
        self._key: tuple[Path, int, int] | None = None
        self._config: Config | None = None

    def get(self, path: Path) -> Config:
        try:
            stat = path.stat()
        except OSError:
            raise ConfigError(
                f"imagectl's configuration {path} cannot be read",
                f"deploy imagectl.toml there (beside the DAGs), or set [{SECTION}] config_file / IMAGECTL_CONFIG",
            ) from None
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key != self._key or self._config is None:
            self._config, self._key = load_config(path), key
        return self._config


def option_reader(get: Callable[..., object]) -> Option:
    """Airflow's ``conf.get`` as an ``Option`` (an empty value is not set)."""

    def option(name: str) -> str | None:
        value = get(SECTION, name, fallback=None)
        return str(value).strip() or None if value is not None else None

    return option


def from_airflow() -> PluginSettings:
    """The settings of the Airflow this runs in (its configuration is imported here, only when asked)."""
    import os

    from airflow.configuration import conf

    return read(option_reader(conf.get), os.environ, conf.get("core", "dags_folder", fallback=None))


def environment_names() -> list[str]:
    """The environments this Airflow runs: the ``imagectl_ops`` DAG's choices, read when its file is parsed (light:
    imagectl.toml only, nothing on the network)."""
    settings = from_airflow()
    return list(settings.hosted(ConfigCache().get(settings.config_path)))
