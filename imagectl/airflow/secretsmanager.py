"""The image Variable in AWS Secrets Manager, where Airflow's ``SecretsManagerBackend`` reads it.

Secret name: ``<variables_prefix><sep><key>`` (the backend's ``build_path``; default prefix
``airflow/variables``, ``sep`` "/", a trailing ``sep`` on the prefix dropped as the backend does; an empty
prefix means the bare key). The value is the secret's SecretString. The facts (revision, tag, actor, …) go
to the secret's description and tags. Credentials: the AWS chain; endpoint: ``AWS_ENDPOINT_URL_SECRETS_MANAGER``.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from imagectl.adapters.aws import IdentityError, client
from imagectl.airflow._base import ImageVariable, StoreContext
from imagectl.airflow.stores import SecretsManagerSettings
from imagectl.errors import AirflowError
from imagectl.sanitize import visible


def aws_tags(facts: dict[str, str]) -> list[dict[str, str]]:
    """AWS resource tags from facts: keys ≤ 128 and values ≤ 256 characters of the allowed set."""

    def clean(text: str, limit: int) -> str:
        return re.sub(r"[^A-Za-z0-9 _.:/=+@-]", "_", text)[:limit]

    return [{"Key": clean(k, 128), "Value": clean(v, 256)} for k, v in facts.items()]


def secret_name(key: str, prefix: str | None, sep: str) -> str:
    if not prefix:
        return key
    return f"{prefix.rstrip(sep)}{sep}{key}"


class SecretsManagerVariable(ImageVariable):
    service = "secretsmanager"
    label = "Secrets Manager secret"

    def __init__(self, key: str, settings: SecretsManagerSettings, context: StoreContext) -> None:
        self.key, self.region, self.timeouts, self.identity = key, settings.store_region, context.timeouts, context.identity
        self.name = secret_name(key, settings.variables_prefix, settings.variables_sep)
        self._client: Any = None

    @property
    def aws(self) -> Any:
        if self._client is None:
            self._client = client(self.service, self.region, self.timeouts, self.identity)
        return self._client

    def location(self) -> str:
        return f"{self.label} {self.name}"

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.aws, operation)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("ResourceNotFoundException", "ParameterNotFound"):
                raise
            message = visible(str(exc.response.get("Error", {}).get("Message", "")))[:200]
            raise AirflowError(f"{self.location()}: {operation} failed: {code}: {message}", self._hint(code)) from None
        except IdentityError as exc:
            exc.message = f"{self.location()} acts as {exc.message}"
            raise
        except NoCredentialsError:
            raise AirflowError(f"no AWS credentials to reach {self.location()}", "configure the AWS credential chain") from None
        except NoRegionError:
            raise AirflowError(f"no AWS region for {self.location()}", "set store_region for the environment in imagectl.toml") from None
        except BotoCoreError as exc:
            raise AirflowError(
                f"{self.location()}: {operation} failed: {type(exc).__name__}", "check the network and the AWS endpoint"
            ) from None

    @staticmethod
    def _hint(code: str) -> str:
        if "KMS" in code or code == "DecryptionFailure":
            return "the AWS identity needs kms:Decrypt/kms:GenerateDataKey on the secret's KMS key"
        if code in ("AccessDeniedException", "AccessDenied"):
            return "the AWS identity needs secretsmanager:GetSecretValue, PutSecretValue, UpdateSecret and TagResource on it"
        return "check the AWS account and region (store_region)"

    def preflight(self, create: bool) -> None:
        if not create and self.read() is None:
            raise AirflowError(
                f"{self.location()} does not exist, so Airflow cannot be reading the image from it; nothing was changed",
                "create it with --create (imagectl then creates it), or check variables_prefix and store_region",
            )

    def read(self) -> str | None:
        try:
            response = self._call("get_secret_value", SecretId=self.name)
        except ClientError:
            return None
        value = response.get("SecretString")
        if not isinstance(value, str):
            raise AirflowError(
                f"{self.location()} holds binary data, not the image reference", "the secrets backend reads SecretString only"
            )
        return value

    def write(self, value: str, description: str, facts: dict[str, str], create: bool) -> None:
        try:
            self._call("put_secret_value", SecretId=self.name, SecretString=value)
        except ClientError:
            if not create:
                raise AirflowError(
                    f"{self.location()} does not exist, so Airflow cannot be reading the image from it",
                    "create it with --create (imagectl then creates the secret), or check variables_prefix",
                ) from None
            try:
                self._call("create_secret", Name=self.name, SecretString=value, Description=description[:2048])
            except ClientError:  # created meanwhile by another writer
                self._call("put_secret_value", SecretId=self.name, SecretString=value)
        try:
            self._call("update_secret", SecretId=self.name, Description=description[:2048])
            self._call("tag_resource", SecretId=self.name, Tags=aws_tags(facts))
        except (ClientError, AirflowError):
            pass  # the value is what matters; the facts are kept where the store allows
