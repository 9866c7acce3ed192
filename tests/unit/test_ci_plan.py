from imagectl.commands.ci import environment_for, run_id
from imagectl.config import load_config
from tests.unit.test_config import VALID, write_project


def test_branch_to_environment(tmp_path):
    path = write_project(
        tmp_path, VALID + '\n[ci]\nbranches = { dev = "dev", main = "prd", "release/*" = "prd" }\nbuild_environment = "dev"\n'
    )
    config = load_config(path)
    assert environment_for(config, "dev") == "dev"
    assert environment_for(config, "main") == "prd"
    assert environment_for(config, "release/2026.11") == "prd"
    assert environment_for(config, "feature/DATA-1-x") is None
    assert environment_for(config, None) is None
    assert run_id("DATA-DBT-CI-57", "dbt_build") == "imagectl__DATA-DBT-CI-57__dbt_build"
