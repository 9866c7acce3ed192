"""Amazon MWAA: the environment's Airflow REST API through MWAA's ``InvokeRestApi`` action, signed (SigV4) as an AWS
identity — the ``mwaa`` flavour (airflow/flavours.py). MWAA runs the call as the Airflow Admin role; there is no
Airflow login. The calls themselves are airflow/rest.py's, as for every flavour.

InvokeRestApi's documented limits, and how imagectl keeps within them
(https://docs.aws.amazon.com/mwaa/latest/API/API_InvokeRestApi.html,
https://docs.aws.amazon.com/mwaa/latest/userguide/access-mwaa-apache-airflow-rest-api.html):

- ``Path`` is at most 64 characters. Every call imagectl makes has a short path or its ids are bounded:
  Variables ``/variables/<key>`` (config.py refuses a key over 53 characters for an MWAA environment), a DAG
  ``/dags/<dag>/dagRuns`` (a dbt DAG id over 50 characters is refused the same way), a run
  ``/dags/<dag>/dagRuns/<run>`` (``imagectl ci`` shortens its run ids to fit: commands/ci.py), the image a run
  rendered ``/dags/~/dagRuns/~/taskInstances/list`` (the ids go in the body; 37 characters whatever they are), the
  configuration ``/config`` with ``section`` as a query parameter. A path that would still be longer is refused
  here before anything is sent, naming the id to shorten.
- A call has 10 s: a failure after 10 s is reported as MWAA's time-out (a write may or may not have been made).
- An answer is at most 6 MB: imagectl asks for single objects and one-row lists; an answer MWAA refuses for its
  size is reported as such.
- Airflow 2.4.3 or later (``GET /version`` tells the API: Airflow 3 ``/api/v2``, Airflow 2 ``/api/v1``).

The boto3 client comes from adapters/aws.py (the identity's session, timeouts, bounded retries, and the endpoint
from ``AWS_ENDPOINT_URL_MWAA``). IAM: ``airflow:InvokeRestApi`` on ``arn:aws:airflow:<region>:<account>:environment/<name>``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from imagectl.adapters.aws import IdentityError, client
from imagectl.airflow._base import FlavourContext
from imagectl.airflow.flavours import MWAA_MAX_PATH, MwaaSettings
from imagectl.airflow.rest import AirflowRest
from imagectl.airflow.transport import Answer, Denied, Transport, needed_role
from imagectl.errors import AirflowError, ConfigError, InputError
from imagectl.sanitize import visible
from imagectl.settings import Identity, Timeouts

TIME_LIMIT = 10.0  # seconds MWAA gives one InvokeRestApi call (the user guide above)
SIGNATURE_CODES = {
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "RequestExpired",
    "MissingAuthenticationToken",
}
_SIZE_WORDS = re.compile(r"6 ?MB|too large|size|payload", re.IGNORECASE)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


class MwaaTransport(Transport):
    """One MWAA environment's Airflow REST API, each call an ``InvokeRestApi`` request."""

    max_path = MWAA_MAX_PATH

    def __init__(
        self, settings: MwaaSettings, environment: str, timeouts: Timeouts | None = None, identity: Identity | None = None
    ) -> None:
        self.name = settings.mwaa_environment
        self.region = settings.mwaa_region
        self.environment = environment
        self.timeouts = timeouts or Timeouts()
        self.identity = identity
        self._api = None if settings.airflow_api == "auto" else settings.airflow_api
        self._client: Any = None
        if settings.airflow_url:
            self.base_url, self.links = settings.airflow_url.rstrip("/"), True
        else:  # the environment's page in the AWS console, which opens its Airflow UI
            region = self.region or "us-east-1"
            self.base_url = f"https://{region}.console.aws.amazon.com/mwaa/home?region={region}#environments/{self.name}"
            self.links = False

    @property
    def where(self) -> str:
        return f"Airflow of MWAA environment {self.name}" + (f" ({self.region})" if self.region else "")

    def describe(self) -> str:
        return f"MWAA InvokeRestApi, environment {self.name}"

    @property
    def aws(self) -> Any:
        if self._client is None:
            try:
                self._client = client("mwaa", self.region, self.timeouts, self.identity)
            except IdentityError as exc:
                exc.message = f"MWAA environment {self.name} acts as {exc.message}"
                raise
        return self._client

    @property
    def api(self) -> str:
        """v2 (Airflow 3) or v1 (Airflow 2), from ``GET /version`` once (MWAA picks the API root by the version)."""
        if self._api is None:
            answer = self._invoke("GET", "/version", "read the Airflow version", None, None)
            version = answer.body.get("version") if isinstance(answer.body, dict) else None
            if answer.status != 200 or not isinstance(version, str) or not _version(version):
                raise AirflowError(
                    f"{self.where} answered the version check with HTTP {answer.status}",
                    'set airflow_api = "v2" (Airflow 3) or "v1" (Airflow 2) for this environment in imagectl.toml',
                )
            if _version(version) < (2, 4, 3):
                raise AirflowError(
                    f"{self.where} runs Airflow {visible(version)[:20]}; InvokeRestApi needs Airflow 2.4.3 or later",
                    "upgrade the MWAA environment's Airflow",
                )
            self._api = "v2" if _version(version)[0] >= 3 else "v1"
        return self._api

    def call(self, method: str, path: str, what: str, *, params: Any = None, body: Any = None) -> Answer:
        self.api  # noqa: B018 - the API version is known before the first call
        return self._invoke(method, path, what, params, body)

    def _invoke(self, method: str, path: str, what: str, params: Any, body: Any) -> Answer:
        if len(path) > MWAA_MAX_PATH:
            raise InputError(
                f"cannot {what} on MWAA environment {self.name}: its path is {len(path)} characters and InvokeRestApi "
                f"takes at most {MWAA_MAX_PATH} ({visible(path)[:100]})",
                "use a shorter run id (--run-id), DAG id or Variable key; nothing was sent",
            )
        arguments: dict[str, Any] = {"Name": self.name, "Path": path, "Method": method}
        if params:
            arguments["QueryParameters"] = dict(params)
        if body is not None:
            arguments["Body"] = body
        started = time.monotonic()
        try:
            response = self.aws.invoke_rest_api(**arguments)
        except ClientError as exc:
            return self._failed(exc, method, what, time.monotonic() - started)
        except IdentityError as exc:
            exc.message = f"MWAA environment {self.name} acts as {exc.message}"
            raise
        except NoCredentialsError:
            raise ConfigError(
                f"no AWS credentials to reach MWAA environment {self.name}", "set mwaa_identity, or configure the AWS credential chain"
            ) from None
        except NoRegionError:
            raise ConfigError(
                f"no AWS region for MWAA environment {self.name}", "set mwaa_region for the environment in imagectl.toml"
            ) from None
        except (ReadTimeoutError, ConnectTimeoutError, BotoConnectionError) as exc:
            timed_out = isinstance(exc, ReadTimeoutError)
            known = "nothing was changed in Airflow" if method == "GET" else "the change was not made"
            if timed_out and method != "GET":
                known = "the request was sent, so Airflow may or may not have made the change"
            cause = "no answer in time" if timed_out else "could not connect to the MWAA endpoint"
            raise AirflowError(
                f"MWAA environment {self.name} for '{self.environment}': {cause} ({what}); {known}",
                "check the network, mwaa_region, and AWS_ENDPOINT_URL_MWAA if it is set",
            ) from None
        except BotoCoreError as exc:
            raise AirflowError(
                f"{self.where}: {what} failed: {type(exc).__name__}", "check the network and the MWAA endpoint (AWS_ENDPOINT_URL_MWAA)"
            ) from None
        status = response.get("RestApiStatusCode")
        return self._answer(int(status) if isinstance(status, int) else 200, response.get("RestApiResponse"), what)

    def _answer(self, status: int, body: Any, what: str) -> Answer:
        if status == 401:
            raise AirflowError(f"{self.where} refused {what} (HTTP 401)", "MWAA calls Airflow as its Admin role: check the environment")
        if status == 403:
            raise Denied(f"MWAA's Airflow role may not {what} in environment {self.name}", f"the call needs role {needed_role(what)}")
        if status >= 500:
            raise AirflowError(f"{self.where} answered HTTP {status} to {what}", "check the environment's Airflow logs in CloudWatch")
        return Answer(status, body)

    def _failed(self, exc: ClientError, method: str, what: str, elapsed: float) -> Answer:
        """The one line for each way InvokeRestApi can fail; an answer from Airflow (a 404, a 409) is just an answer."""
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = visible(str(error.get("Message", "")))[:200]
        writing = method in ("POST", "PATCH", "PUT", "DELETE")
        if elapsed >= TIME_LIMIT and code not in SIGNATURE_CODES and code != "AccessDeniedException":
            known = "the request was sent, so Airflow may or may not have made the change" if writing else "nothing was changed"
            raise AirflowError(
                f"{self.where}: {what} did not finish within MWAA's {TIME_LIMIT:.0f} s limit for InvokeRestApi ({code}); {known}",
                "try again; if it keeps happening, check the environment's load (its web server answers the REST API)",
            )
        status = exc.response.get("RestApiStatusCode")
        if code in ("RestApiClientException", "RestApiServerException") and isinstance(status, int):
            return self._answer(status, exc.response.get("RestApiResponse"), what)
        if _SIZE_WORDS.search(message) and code not in SIGNATURE_CODES:
            raise AirflowError(
                f"{self.where}: the answer to {what} is larger than InvokeRestApi's 6 MB limit ({code})",
                "nothing was changed; the Variable or task fields are too large to read through MWAA: shrink them in Airflow",
            )
        if code in SIGNATURE_CODES:
            who = self.identity.describe() if self.identity else "the AWS credential chain"
            raise AirflowError(
                f"AWS did not accept the signed request to MWAA environment {self.name} ({code}: {message})",
                f"check the credentials of {who} (keys, session token, the machine's clock)",
            )
        if code == "AccessDeniedException":
            who = self.identity.describe() if self.identity else "the AWS credential chain's identity"
            raise AirflowError(
                f"AWS denied {who} access to MWAA environment {self.name}: {message}",
                f"it needs airflow:InvokeRestApi on arn:aws:airflow:{self.region or '<region>'}:<account>:environment/{self.name}",
            )
        if code == "ResourceNotFoundException":
            raise ConfigError(
                f"MWAA environment {self.name} does not exist" + (f" in {self.region}" if self.region else ""),
                "check mwaa_environment and mwaa_region in imagectl.toml",
            )
        known = "nothing was changed" if code == "ValidationException" or not writing else "Airflow may or may not have made the change"
        raise AirflowError(f"{self.where}: {what} failed: {code}: {message}; {known}", "check the MWAA environment's state and logs")


def open_mwaa(settings: MwaaSettings, context: FlavourContext) -> AirflowRest:
    """The ``mwaa`` flavour: the Airflow of MWAA environment ``mwaa_environment``, as ``mwaa_identity``."""
    return AirflowRest(MwaaTransport(settings, context.environment, context.timeouts, context.identity))
