"""The image Variable in AWS Systems Manager Parameter Store, where Airflow's
``SystemsManagerParameterStoreBackend`` reads it.

Parameter name: ``<variables_prefix>/<key>`` with a leading "/" (the backend joins with "/" and adds the
leading slash; default prefix ``/airflow/variables``). Written as a String parameter; the facts go to its
description and tags. Credentials: the AWS chain; endpoint: ``AWS_ENDPOINT_URL_SSM``.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from imagectl.airflow._base import StoreContext
from imagectl.airflow.secretsmanager import SecretsManagerVariable, aws_tags
from imagectl.airflow.stores import SsmSettings
from imagectl.errors import AirflowError


def parameter_name(key: str, prefix: str | None) -> str:
    path = f"{(prefix or '').rstrip('/')}/{key}"
    return path if path.startswith("/") else "/" + path


class SsmVariable(SecretsManagerVariable):
    service = "ssm"
    label = "SSM parameter"

    def __init__(self, key: str, settings: SsmSettings, context: StoreContext) -> None:
        self.key, self.region, self.timeouts, self.identity = key, settings.store_region, context.timeouts, context.identity
        self.name = parameter_name(key, settings.variables_prefix)
        self._client = None

    @staticmethod
    def _hint(code: str) -> str:
        if "KMS" in code or code.startswith("Invalid") and "Key" in code:
            return "the AWS identity needs the parameter's KMS key"
        if code in ("AccessDeniedException", "AccessDenied"):
            return "the AWS identity needs ssm:GetParameter, ssm:PutParameter and ssm:AddTagsToResource on it"
        return "check the AWS account and region (store_region)"

    def read(self) -> str | None:
        try:
            parameter = self._call("get_parameter", Name=self.name, WithDecryption=True).get("Parameter") or {}
        except ClientError:
            return None
        value = parameter.get("Value")
        if not isinstance(value, str):
            raise AirflowError(f"{self.location()} has no value", "check the parameter")
        return value

    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        exists = self.read() is not None
        if not exists and not create:
            raise AirflowError(
                f"{self.location()} does not exist, so Airflow cannot be reading the image from it",
                "create it with --create (imagectl then creates the parameter), or check variables_prefix",
            )
        self._call("put_parameter", Name=self.name, Value=value, Type="String", Overwrite=True, Description=description[:1024])
        try:
            self._call("add_tags_to_resource", ResourceType="Parameter", ResourceId=self.name, Tags=aws_tags(facts))
        except (ClientError, AirflowError):
            pass  # tags are a convenience; the value and its description are written
