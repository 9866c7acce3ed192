"""How imagectl reaches Airflow, as pure logic (issue 22): which login the environment gives, the MWAA flavour's settings
and limits checked while the configuration is read, ci's run ids within MWAA's 64-character paths, MWAA's refusals
as one line each, and the shadow check's honesty when Airflow hides what it would need. The servers themselves are in
tests/integration/test_mwaa.py (the MWAA stand-in, a real Airflow 3) and test_release.py (tokens, Airflow 2)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from imagectl.airflow._base import Airflow, StoreContext
from imagectl.airflow.flavours import MwaaSettings
from imagectl.airflow.mwaa import MwaaTransport
from imagectl.airflow.rest import RestVariable
from imagectl.airflow.stores import RestStoreSettings
from imagectl.commands.ci import run_id
from imagectl.credentials import Credentials, Login, Token
from imagectl.errors import AirflowError, ConfigError, InputError
from imagectl.settings import Identity, Timeouts
from tests.fakes import MemoryRuns
from tests.unit.helpers import BASE, config

SM = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
MWAA_PRD = BASE.replace(
    '[environments.prd]\nregistry = "prd"\nairflow_url = "http://airflow.example"\n',
    '[environments.prd]\nregistry = "prd"\nairflow = "mwaa"\nmwaa_environment = "data-prd"\nmwaa_region = "eu-west-1"\n',
)

# -- logins -------------------------------------------------------------------------------------------------------


def test_the_most_specific_login_wins_and_a_token_before_a_password_at_each_level():
    both = {
        "IMAGECTL_AIRFLOW_PRD_TOKEN": "tok-prd",
        "IMAGECTL_AIRFLOW_PRD_USERNAME": "u-prd",
        "IMAGECTL_AIRFLOW_PRD_PASSWORD": "p-prd",
        "IMAGECTL_AIRFLOW_TOKEN": "tok-all",
        "IMAGECTL_AIRFLOW_USERNAME": "u-all",
        "IMAGECTL_AIRFLOW_PASSWORD": "p-all",
    }
    assert Credentials(both).airflow("prd") == Token("tok-prd", "IMAGECTL_AIRFLOW_PRD_TOKEN")
    without = {k: v for k, v in both.items() if k != "IMAGECTL_AIRFLOW_PRD_TOKEN"}
    assert Credentials(without).airflow("prd") == Login("u-prd", "p-prd", "IMAGECTL_AIRFLOW_PRD_")
    shared = {k: v for k, v in both.items() if "_PRD_" not in k}
    assert Credentials(shared).airflow("prd") == Token("tok-all", "IMAGECTL_AIRFLOW_TOKEN")
    assert Credentials({"IMAGECTL_AIRFLOW_USERNAME": "u", "IMAGECTL_AIRFLOW_PASSWORD": "p"}).airflow("prd").username == "u"  # type: ignore[union-attr]
    with pytest.raises(ConfigError) as missing:
        Credentials({}).airflow("prd")
    assert "IMAGECTL_AIRFLOW_PRD_TOKEN" in missing.value.hint and "IMAGECTL_AIRFLOW_PRD_USERNAME" in missing.value.hint


def test_a_token_is_never_shown():
    token = Token("eyJ-secret-token-value", "IMAGECTL_AIRFLOW_TOKEN")
    assert "secret" not in repr(token)
    credentials = Credentials({"IMAGECTL_AIRFLOW_DEV_TOKEN": "eyJ-secret-token-value"})
    assert credentials.redact("got eyJ-secret-token-value back") == "got *** back"


# -- the MWAA flavour's settings ------------------------------------------------------------------------------------


def test_an_mwaa_environment_is_read_and_checked():
    cfg = config(text=MWAA_PRD + '[identities.prd]\nprofile = "release"\n' + "")
    prd = cfg.environments["prd"]
    assert prd.airflow == "mwaa" and prd.airflow_settings == MwaaSettings(mwaa_environment="data-prd", mwaa_region="eu-west-1")
    problems = {
        'mwaa_environment = "data-prd"': ("mwaa_environment = '1-bad'", "must be an MWAA environment name"),
        'mwaa_region = "eu-west-1"': ('mwaa_region = "Ireland"', "must be an AWS region"),
    }
    for good, (bad, message) in problems.items():
        with pytest.raises(ConfigError) as refused:
            config(text=MWAA_PRD.replace(good, bad))
        assert message in refused.value.message
    with pytest.raises(ConfigError) as missing:
        config(text=MWAA_PRD.replace('mwaa_environment = "data-prd"\n', ""))
    assert "'environments.prd.mwaa_environment' is missing" in missing.value.message
    with pytest.raises(ConfigError) as unknown:
        config(text=MWAA_PRD.replace('mwaa_region = "eu-west-1"', 'mwaa_region = "eu-west-1"\nmwaa_identity = "nobody"'))
    assert "names identity 'nobody'" in unknown.value.message
    with pytest.raises(ConfigError) as wrong_flavour:
        config(text=BASE.replace("release = true", 'release = true\nmwaa_environment = "x"'))
    assert 'does not apply to airflow = "rest"' in wrong_flavour.value.message


def test_ids_that_would_make_an_mwaa_path_too_long_are_refused_while_reading():
    key = "k" * 54  # "/variables/" + 54 = 65
    with pytest.raises(ConfigError) as variable:
        config(text=MWAA_PRD.replace('mwaa_region = "eu-west-1"', f'mwaa_region = "eu-west-1"\nvariable = "{key}"'))
    assert 'must be at most 53 characters with airflow = "mwaa"' in variable.value.message
    assert config(text=MWAA_PRD.replace('mwaa_region = "eu-west-1"', f'mwaa_region = "eu-west-1"\nvariable = "{key[:53]}"'))
    dag = "d" * 51  # "/dags/" + 51 + "/dagRuns" = 65
    with pytest.raises(ConfigError) as dbt_dag:
        config(text=MWAA_PRD.replace('mwaa_region = "eu-west-1"', f'mwaa_region = "eu-west-1"\ndbt_dag = "{dag}"'))
    assert "must be at most 50 characters" in dbt_dag.value.message
    with pytest.raises(ConfigError) as ci_dag:
        config(text=MWAA_PRD, extra=f'[ci]\ndbt_dag = "{dag}"\n')
    assert "'ci.dbt_dag' must be at most 50 characters: environment 'prd'" in ci_dag.value.message
    assert config(text=BASE, extra=f'[ci]\ndbt_dag = "{dag}"\n')  # no limit on the REST flavour


def test_declared_backend_settings_are_checked_while_reading():
    with_store = BASE.replace(
        "release = true", 'release = true\nsecrets_backend = "secretsmanager"\nsecrets_backend_prefix = "airflow/prd/variables"'
    )
    prd = config(text=with_store).environments["prd"]
    assert prd.store == RestStoreSettings(secrets_backend="secretsmanager", secrets_backend_prefix="airflow/prd/variables")
    cases = {
        'secrets_backend_prefix = "p"': "needs secrets_backend",
        'secrets_backend = "ssm"\nsecrets_backend_sep = "-"': 'applies only to secrets_backend = "secretsmanager"',
        'secrets_backend = "ssm"\nsecrets_backend_lookup_pattern = "(("': "is not a valid regular expression",
        'secrets_backend = "vault"': "must be one of secretsmanager, ssm",
        'secrets_backend = "ssm"\nsecrets_backend_identity = "x"': "names identity 'x'",
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError) as refused:
            config(text=BASE.replace("release = true", f"release = true\n{text}"))
        assert message in refused.value.message, refused.value.message
    with pytest.raises(ConfigError) as other_store:
        config(text=BASE.replace("release = true", 'release = true\nvariable_store = "ssm"\nsecrets_backend = "ssm"'))
    assert 'does not apply to variable_store = "ssm"' in other_store.value.message


# -- ci's run ids ------------------------------------------------------------------------------------------------------


def test_ci_run_ids_fit_a_path_limit_and_stay_the_same_for_the_same_key():
    assert run_id("DATA-DBT-57", "dbt_build") == run_id("DATA-DBT-57", "dbt_build", 64) == "imagectl__DATA-DBT-57__dbt_build"
    long_key = "DATAPLATFORM-DBTRELEASE-JOB1-1234"
    for dag in ("dbt_build", "dbt_build_prd", "a_rather_long_dag_name_for_prd"):
        shortened = run_id(long_key, dag, 64)
        assert len(f"/dags/{dag}/dagRuns/{shortened}") <= 64, shortened
        assert shortened == run_id(long_key, dag, 64)  # a re-run CI job finds its run
        assert shortened != run_id(long_key + "5", dag, 64)
    assert run_id("DATA-DBT-CI-123", "dbt_build_prd", 64) == "imagectl__DATA-DBT-CI-123"  # first: without the DAG's id
    assert run_id(long_key, "dbt_build", 64).startswith("ic__DATAPLATFORM")


# -- MWAA's answers ----------------------------------------------------------------------------------------------------


def transport(identity: Identity | None = None) -> MwaaTransport:
    return MwaaTransport(MwaaSettings(mwaa_environment="data-prd", mwaa_region="eu-west-1", airflow_api="v2"), "prd", Timeouts(), identity)


def failure(code: str, message: str = "", **members: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **members}, "InvokeRestApi")


def test_a_path_over_64_characters_is_refused_before_anything_is_sent():
    mwaa = transport()
    with pytest.raises(InputError) as refused:
        mwaa.call("GET", "/dags/dbt_build/dagRuns/" + "r" * 41, "read run r of DAG dbt_build")
    assert "its path is 65 characters and InvokeRestApi takes at most 64" in refused.value.message
    assert mwaa._client is None  # no client was even made


@pytest.mark.parametrize(
    "error, method, elapsed, expected",
    [
        (failure("RestApiServerException", "timed out"), "PATCH", 10.2, "did not finish within MWAA's 10 s limit"),
        (failure("RestApiServerException", "timed out"), "PATCH", 10.2, "may or may not have made the change"),
        (
            failure("RestApiServerException", "The response payload (7340032 bytes) exceeds the 6 MB limit"),
            "GET",
            0.4,
            "larger than InvokeRestApi's 6 MB limit",
        ),
        (
            failure("SignatureDoesNotMatch", "The request signature we calculated does not match"),
            "GET",
            0.1,
            "AWS did not accept the signed request",
        ),
        (
            failure("AccessDeniedException", "not authorized"),
            "GET",
            0.1,
            "needs airflow:InvokeRestApi on arn:aws:airflow:eu-west-1:<account>:environment/data-prd",
        ),
        (failure("RestApiServerException", "", RestApiStatusCode=500, RestApiResponse={"detail": "x"}), "GET", 0.1, "answered HTTP 500"),
        (failure("RestApiClientException", "", RestApiStatusCode=403, RestApiResponse={"detail": "x"}), "GET", 0.1, "role may not"),
        (failure("ThrottlingException", "Rate exceeded"), "POST", 0.1, "may or may not have made the change"),
    ],
)
def test_each_refusal_is_one_line(error, method, elapsed, expected):
    with pytest.raises(AirflowError) as raised:
        transport(Identity("prd", profile="release"))._failed(error, method, "write Variable dbt_image", elapsed)
    line = raised.value.one_line()
    assert expected in line and "\n" not in line


def test_an_airflow_answer_through_mwaa_is_an_answer():
    answer = transport()._failed(
        failure("RestApiClientException", "", RestApiStatusCode=404, RestApiResponse={"detail": "nope"}), "GET", "x", 0.1
    )
    assert (answer.status, answer.body) == (404, {"detail": "nope"})
    with pytest.raises(ConfigError):
        transport()._failed(failure("ResourceNotFoundException", "Environment data-prd not found"), "GET", "x", 0.1)


# -- the shadow check, when Airflow hides what it would need --------------------------------------------------------


class Shown(MemoryRuns, Airflow):
    """An Airflow whose config API shows ``sections`` (None: hidden)."""

    def __init__(self, sections: dict[str, dict[str, str]] | None) -> None:
        super().__init__()
        self.sections = sections

    def describe(self) -> str:
        return "REST /api/v2"

    def get_variable(self, key: str) -> str | None:
        return None

    def set_variable(self, key: str, value: str, description: str) -> None:
        pass

    def secrets_config(self) -> tuple[dict[str, dict[str, str]] | None, str | None]:
        if self.sections is None:
            return None, "the Airflow configuration is not exposed ([api] expose_config = False)"
        return self.sections, None


def notes(sections: dict[str, dict[str, str]] | None, declared: RestStoreSettings | None = None) -> list[str]:
    airflow = Shown(sections)
    context = StoreContext("prd", Timeouts(), lambda: airflow)
    return RestVariable("dbt_image", declared or RestStoreSettings(), context).reach().notes()


def test_hidden_kwargs_without_declared_settings_cannot_be_verified():
    for section, option in (("secrets", "backend"), ("workers", "secrets_backend")):
        kwargs = "backend_kwargs" if section == "secrets" else "secrets_backend_kwargs"
        found = notes({"secrets": {}, "workers": {}, section: {option: SM, kwargs: "< hidden >"}})
        unverified = [n for n in found if n.startswith("cannot verify whether")]
        assert len(unverified) == 1 and "Airflow hides its kwargs" in unverified[0], found
        assert "declare the backend's settings" in unverified[0] and "trigger --wait / ci --wait" in unverified[0]
        assert not any("does not shadow" in n for n in found)


def test_a_hidden_configuration_or_an_unknown_backend_cannot_be_verified():
    hidden = notes(None)
    assert hidden[0].startswith(
        "cannot verify whether a secrets backend shadows Variable dbt_image: the Airflow configuration is not exposed"
    )
    vault = notes({"secrets": {"backend": "airflow.providers.hashicorp.secrets.vault.VaultBackend", "backend_kwargs": "{}"}, "workers": {}})
    assert vault[0].startswith("cannot verify whether [secrets] backend (airflow.providers.hashicorp.secrets.vault.VaultBackend) shadows")
    nothing = notes({"secrets": {"backend": "", "backend_kwargs": ""}, "workers": {"secrets_backend": ""}})
    assert [n for n in nothing if "secrets backend" in n or "cannot verify" in n] == []  # no backend: only the AIRFLOW_VAR_ note
    assert any(n.startswith("an AIRFLOW_VAR_DBT_IMAGE environment variable") for n in nothing)


def test_a_declared_backend_of_another_kind_is_said_not_to_match():
    found = notes(
        {"secrets": {"backend": SM, "backend_kwargs": "< hidden >"}, "workers": {}},
        RestStoreSettings(secrets_backend="ssm", secrets_backend_prefix="/airflow/prd"),
    )
    assert any('declares secrets_backend = "ssm", but Airflow\'s [secrets] backend is' in n for n in found)
    assert any(n.startswith("cannot verify whether [secrets] backend (AWS Secrets Manager) shadows") for n in found)


def test_the_stack_starts_the_mwaa_standin_only_in_front_of_airflow_3(tmp_path, capsys):
    from tests.stack import serve

    with pytest.raises(SystemExit) as exited:
        serve(["--workdir", str(tmp_path), "--registries", "0", "--mwaa", "--env-file", str(tmp_path / "env")])
    assert exited.value.code == 2 and "--mwaa needs --airflow 3" in capsys.readouterr().err


def test_visible_kwargs_naming_credentials_of_their_own_cannot_be_verified_with_imagectls():
    """Airflow 2 with expose_config shows the kwargs; a backend that reads as another role (another account, perhaps)
    would answer imagectl "not found" — so imagectl says it cannot verify instead of looking with its own identity."""
    kwargs = '{"variables_prefix": "airflow/prd/variables", "role_arn": "arn:aws:iam::222222222222:role/airflow-secrets"}'
    found = notes({"secrets": {"backend": SM, "backend_kwargs": kwargs}, "workers": {}})
    assert any(n.startswith("cannot verify whether [secrets] backend (AWS Secrets Manager) shadows") and "(role_arn)" in n for n in found)
