"""Pure parts of the DAGs (no Airflow needed): settings from the environment and Lightdash's request."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))

import dbt_settings  # noqa: E402
from lightdash_api import refresh_request  # noqa: E402


def test_settings_defaults_and_overrides():
    default = dbt_settings.load({})
    assert (default.operator, default.schedule, default.timezone, default.image_variable) == (
        "kubernetes",
        "0 8 * * *",
        "Asia/Seoul",
        "dbt_image",
    )
    custom = dbt_settings.load(
        {"DBT_DAG_OPERATOR": "docker", "DBT_DAG_DOCKER_MOUNTS": "/a:/data,/b:/state", "DBT_DAG_EXTRA_ENV": '{"X": "1"}'}
    )
    assert custom.docker_mounts == (("/a", "/data"), ("/b", "/state")) and custom.extra_env == {"X": "1"}
    with pytest.raises(ValueError, match="kubernetes or docker"):
        dbt_settings.load({"DBT_DAG_OPERATOR": "ecs"})


def test_lightdash_refresh_request():
    url, headers = refresh_request("lightdash.example.com", "key", {"project_uuid": "p-1"})
    assert url == "https://lightdash.example.com/api/v1/projects/p-1/refresh"
    assert headers["Authorization"] == "ApiKey key"
    assert (
        refresh_request("http://127.0.0.1:9/", "k", {"project_uuid": "p", "refresh_path": "/x/{project_uuid}"})[0]
        == "http://127.0.0.1:9/x/p"
    )
    with pytest.raises(ValueError, match="project_uuid"):
        refresh_request("h", "k", {})
