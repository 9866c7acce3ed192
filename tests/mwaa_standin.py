"""A stand-in for Amazon MWAA's ``InvokeRestApi`` on 127.0.0.1, in front of a real Airflow 3 api-server (moto has no
MWAA at all). boto3's ``mwaa`` client reaches it through ``AWS_ENDPOINT_URL_MWAA`` (with
``AWS_DISABLE_HOST_PREFIX_INJECTION=true``: the operation's endpoint has the host prefix ``env.``, which an IP
address cannot take — https://docs.aws.amazon.com/sdkref/latest/guide/feature-host-prefix.html).

What it does, each rule with its source beside it:
- checks the SigV4 signature of every request with botocore's own signer against the credentials it was given
  (its IAM users), and answers the documented errors for a missing, malformed, expired or wrong signature;
- allows ``airflow:InvokeRestApi`` on the environment's ARN only to the users it was told to allow;
- validates the request (environment name, method, path length ≤ 64, JSON-object body and query);
- maps the call onto the real Airflow's REST API as MWAA does, as the Airflow Admin role (it logs in with an
  admin user of the stack's Airflow), and answers Airflow's status and body in ``RestApiStatusCode`` /
  ``RestApiResponse``, or in ``RestApiClientException`` (4xx) / ``RestApiServerException`` (5xx);
- gives each call 10 s and refuses answers over 6 MB.

What it does NOT prove (say so wherever a test leans on it): real IAM policy evaluation (one allow-list of access
keys, no conditions, no SCPs, no session policies), assumed-role or SSO credentials (it knows only the static keys
it was given), MWAA's networking (public/private web server access, VPC endpoints) and its host prefix, the exact
error code and message MWAA gives when a call runs past 10 s or an answer exceeds 6 MB (undocumented: the
stand-in answers ``RestApiServerException`` without a status for both — imagectl recognises the time-out by the
time spent and the size by the words in the message, and otherwise prints the code and message it got), how MWAA
encodes list-valued query parameters (imagectl sends none), MWAA's throttling and web-server scaling, its Airflow 2
environments (``/api/v1``: the stand-in runs Airflow 3), and the web-login token (``CreateWebLoginToken``).
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

API_REFERENCE = "https://docs.aws.amazon.com/mwaa/latest/API/API_InvokeRestApi.html"
USER_GUIDE = "https://docs.aws.amazon.com/mwaa/latest/userguide/access-mwaa-apache-airflow-rest-api.html"
COMMON_ERRORS = "https://docs.aws.amazon.com/mwaa/latest/API/CommonErrors.html"
SIGV4_TROUBLESHOOTING = "https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html"

# InvokeRestApi's request: POST /restapi/{Name} (API reference, "Request Syntax").
ROUTE = re.compile(r"/restapi/([^/?]*)")
# Name: 1-80 characters, pattern [a-zA-Z][0-9a-zA-Z-_]* (API reference, "URI Request Parameters").
NAME_RE = re.compile(r"[a-zA-Z][0-9a-zA-Z_-]*")
NAME_MAX = 80
# Method: GET | PUT | POST | PATCH | DELETE (API reference, "Request Body").
METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
# Path: length 1-64 (API reference, "Request Body").
PATH_MAX = 64
# "The InvokeRestApi operation has a default timeout duration of 10 seconds" (user guide).
TIME_LIMIT = 10.0
# "The response payload size cannot exceed 6 MB" (user guide).
RESPONSE_MAX = 6 * 1024 * 1024
# "for environments running Apache Airflow v2.4.3 and later" (user guide).
MIN_AIRFLOW = (2, 4, 3)
# RequestExpired: "more than 15 minutes after the date stamp on the request … or … more than 15 minutes in the future"
# (COMMON_ERRORS).
CLOCK_SKEW = 15 * 60
SIGNING_NAME = "airflow"  # the service's signing name (botocore's service model, metadata.signingName)
AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})"
)


@dataclass
class User:
    """An IAM user's access key, as the stand-in was given it."""

    access_key: str
    secret_key: str
    may_invoke: bool = True  # an identity policy allowing airflow:InvokeRestApi on the environment's ARN


@dataclass
class Call:
    """One InvokeRestApi request the stand-in answered (for tests: what imagectl sent)."""

    access_key: str
    method: str
    path: str
    query: dict[str, Any]
    code: str  # "" when the call reached Airflow and Airflow answered 2xx
    status: int | None = None


@dataclass
class Environment:
    name: str
    airflow: str  # the Airflow 3 api-server's base URL
    admin: tuple[str, str]  # an Airflow user with the Admin role (MWAA calls Airflow as Admin: user guide)
    token: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}


class MwaaStandIn:
    def __init__(self, region: str = "ap-northeast-2", account: str = "123456789012") -> None:
        self.region, self.account = region, account
        self.users: dict[str, User] = {}
        self.environments: dict[str, Environment] = {}
        self.calls: list[Call] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                standin._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                standin._reply(self, 404, {"message": "not found"}, "UnknownOperationException")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- set-up ---------------------------------------------------------------------------------------------------

    def add_user(self, access_key: str, secret_key: str, may_invoke: bool = True) -> User:
        user = User(access_key, secret_key, may_invoke)
        self.users[access_key] = user
        return user

    def add_environment(self, name: str, airflow_url: str, admin: tuple[str, str]) -> None:
        version = requests.get(airflow_url.rstrip("/") + "/api/v2/version", headers=self._login_headers(airflow_url, admin), timeout=10)
        numbers = tuple(int(n) for n in re.findall(r"\d+", version.json()["version"])[:3])
        if numbers < MIN_AIRFLOW:  # InvokeRestApi needs Airflow 2.4.3 or later (user guide)
            raise ValueError(f"InvokeRestApi needs Airflow {'.'.join(map(str, MIN_AIRFLOW))} or later, not {numbers}")
        self.environments[name] = Environment(name, airflow_url.rstrip("/"), admin)

    def arn(self, name: str) -> str:
        return f"arn:aws:airflow:{self.region}:{self.account}:environment/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the request ------------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0) or 0))
        call = Call("", "", "", {}, "")
        try:
            user = self._authenticate(handler, body)
            call.access_key = user.access_key
            route = ROUTE.fullmatch(urlsplit(handler.path).path)
            if route is None:
                raise Refusal(404, "UnknownOperationException", "Unknown operation")
            name = unquote(route.group(1))
            request = self._validate(name, body)
            call.method, call.path, call.query = request["Method"], request["Path"], request.get("QueryParameters") or {}
            if not user.may_invoke:  # identity policy: airflow:InvokeRestApi on the environment's ARN (API reference, Errors)
                raise Refusal(
                    403,
                    "AccessDeniedException",
                    f"User: {user.access_key} is not authorized to perform: airflow:InvokeRestApi on resource: {self.arn(name)}",
                    {"Message": f"not authorized to perform airflow:InvokeRestApi on {self.arn(name)}"},
                )
            environment = self.environments.get(name)
            if environment is None:  # ResourceNotFoundException, 404 (API reference, Errors)
                raise Refusal(404, "ResourceNotFoundException", f"Environment {name} not found")
            status, answer = self._forward(environment, request)
            call.status = status
            if status >= 500:  # "a server-side error occurred during the Apache Airflow REST API call" (API reference, Errors)
                raise Refusal(
                    400, "RestApiServerException", "Airflow REST API server error", {"RestApiStatusCode": status, "RestApiResponse": answer}
                )
            if status >= 400:  # "a client-side error occurred during the Apache Airflow REST API call" (API reference, Errors)
                raise Refusal(
                    400, "RestApiClientException", "Airflow REST API client error", {"RestApiStatusCode": status, "RestApiResponse": answer}
                )
            self._reply(handler, 200, {"RestApiStatusCode": status, "RestApiResponse": answer})
        except Refusal as refusal:
            call.code = refusal.code
            self._reply(handler, refusal.status, {"message": refusal.message, **refusal.extra}, refusal.code)
        finally:
            self.calls.append(call)

    def _authenticate(self, handler: BaseHTTPRequestHandler, body: bytes) -> User:
        """SigV4, checked with botocore's signer (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html)."""
        header = handler.headers.get("Authorization")
        if not header:  # MissingAuthenticationToken, 403 (COMMON_ERRORS)
            raise Refusal(403, "MissingAuthenticationToken", "Missing Authentication Token")
        match = AUTH_RE.fullmatch(header.strip())
        amz_date = handler.headers.get("X-Amz-Date", "")
        if match is None or not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):  # IncompleteSignature, 400 (COMMON_ERRORS)
            raise Refusal(
                400, "IncompleteSignature", "Authorization header requires Credential, SignedHeaders and Signature, and X-Amz-Date"
            )
        access_key, date, region, service, signed, signature = match.groups()
        user = self.users.get(access_key)
        if user is None:  # InvalidClientTokenId, 403: "The access key ID … does not exist in our records" (COMMON_ERRORS)
            raise Refusal(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        stamp = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        if abs(time.time() - stamp.timestamp()) > CLOCK_SKEW:  # RequestExpired, 400 (COMMON_ERRORS)
            raise Refusal(400, "RequestExpired", f"Signature expired: {amz_date} is outside 15 minutes of the server's time")
        # Credential scope: the date of X-Amz-Date, the endpoint's region, the service's signing name (SIGV4_TROUBLESHOOTING).
        if date != amz_date[:8]:
            raise Refusal(403, "SignatureDoesNotMatch", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date")
        if region != self.region:
            raise Refusal(403, "SignatureDoesNotMatch", f"Credential should be scoped to a valid region, not '{region}'")
        if service != SIGNING_NAME:
            raise Refusal(403, "SignatureDoesNotMatch", f"Credential should be scoped to correct service: '{SIGNING_NAME}'")
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:  # host and x-amz-date are always signed (SigV4 guide above)
            raise Refusal(400, "IncompleteSignature", "SignedHeaders must include host and x-amz-date")
        headers = {name: handler.headers.get(name, "") for name in names}
        request = AWSRequest(
            method=handler.command, url=f"http://{handler.headers.get('Host', '')}{handler.path}", data=body, headers=headers
        )
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(user.access_key, user.secret_key), SIGNING_NAME, self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, signature):  # SignatureDoesNotMatch, 403 (SIGV4_TROUBLESHOOTING)
            raise Refusal(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
            )
        return user

    def _validate(self, name: str, body: bytes) -> dict[str, Any]:
        """ValidationException, 400: "The provided input is not valid" (API reference, Errors)."""
        if not 1 <= len(name) <= NAME_MAX or not NAME_RE.fullmatch(name):  # Name constraints (API reference)
            raise Refusal(
                400, "ValidationException", f"1 validation error detected: Value '{name[:100]}' at 'name' failed to satisfy constraint"
            )
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise Refusal(400, "SerializationException", "Request body is not valid JSON") from None
        if not isinstance(request, dict):
            raise Refusal(400, "SerializationException", "Request body must be a JSON object")
        method, path = request.get("Method"), request.get("Path")
        if method not in METHODS:  # Method: GET | PUT | POST | PATCH | DELETE, required (API reference)
            raise Refusal(
                400, "ValidationException", f"1 validation error detected: Value '{method}' at 'method' failed to satisfy constraint"
            )
        if not isinstance(path, str) or not 1 <= len(path) <= PATH_MAX:  # Path: length 1-64, required (API reference)
            length = len(path) if isinstance(path, str) else 0
            raise Refusal(
                400,
                "ValidationException",
                f"1 validation error detected: Value at 'path' failed to satisfy constraint: "
                f"Member must have length less than or equal to {PATH_MAX} (it has {length})",
            )
        # Body and QueryParameters: "provided as a JSON object" (API reference).
        for member in ("Body", "QueryParameters"):
            if member in request and request[member] is not None and not isinstance(request[member], dict):
                raise Refusal(400, "ValidationException", f"1 validation error detected: '{member}' must be a JSON object")
        return request

    # -- Airflow --------------------------------------------------------------------------------------------------

    @staticmethod
    def _login_headers(airflow: str, admin: tuple[str, str]) -> dict[str, str]:
        answer = requests.post(f"{airflow.rstrip('/')}/auth/token", json={"username": admin[0], "password": admin[1]}, timeout=10)
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def _token(self, environment: Environment, renew: bool = False) -> str:
        with environment.lock:
            if environment.token is None or renew:
                environment.token = self._login_headers(environment.airflow, environment.admin)["Authorization"]
            return environment.token

    def _forward(self, environment: Environment, request: dict[str, Any]) -> tuple[int, Any]:
        """The call on Airflow's own REST API (Airflow 3: /api/v2), as the Admin role, within 10 s; at most 6 MB back."""
        url = environment.airflow + "/api/v2" + request["Path"]
        query = {
            k: v if isinstance(v, list) else str(v) if not isinstance(v, bool) else str(v).lower()
            for k, v in (request.get("QueryParameters") or {}).items()
        }
        result: dict[str, Any] = {}

        def send() -> None:
            try:
                for attempt in (1, 2):
                    response = requests.request(
                        request["Method"],
                        url,
                        params=query,
                        json=request.get("Body"),
                        headers={"Authorization": self._token(environment, renew=attempt == 2), "Accept": "application/json"},
                        timeout=(5, TIME_LIMIT + 5),
                    )
                    if response.status_code != 401:
                        break
                result["response"] = response
            except requests.RequestException as exc:
                result["error"] = exc

        worker = threading.Thread(target=send, daemon=True)
        worker.start()
        worker.join(TIME_LIMIT)
        if worker.is_alive():  # the 10 s limit (user guide); the call goes on in Airflow regardless
            raise Refusal(400, "RestApiServerException", f"The Airflow REST API call timed out after {TIME_LIMIT:.0f} seconds")
        if "error" in result:
            raise Refusal(400, "RestApiServerException", f"The Airflow REST API could not be reached ({type(result['error']).__name__})")
        response = result["response"]
        if len(response.content) > RESPONSE_MAX:  # the 6 MB limit (user guide)
            raise Refusal(
                400, "RestApiServerException", f"The response payload size ({len(response.content)} bytes) exceeds the 6 MB limit"
            )
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = {"detail": response.text[:1000]}
        return response.status_code, answer

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, document: dict[str, Any], code: str | None = None) -> None:
        data = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        if code:  # how rest-json services name the error (botocore reads x-amzn-ErrorType)
            handler.send_header("x-amzn-ErrorType", f"{code}:{API_REFERENCE}")
        handler.send_header("x-amzn-RequestId", f"standin-{time.monotonic_ns()}")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
