"""Every credential imagectl uses, resolved once from the environment mapping the command was given.

Nothing else reads ``os.environ`` for a secret: the CLI passes its environment here, and the result is handed
down to the registry, Airflow and webhook clients. AWS credentials are the exception by design: boto3's own
credential chain (profile, role, AWS_* variables) finds them.

| what                 | variables (NAME/ENV upper-case, '-' → '_')                                     |
|----------------------|---------------------------------------------------------------------------------|
| OCI registry login   | IMAGECTL_REGISTRY_<NAME>_USERNAME/_PASSWORD, else IMAGECTL_REGISTRY_USERNAME/_PASSWORD |
| Airflow login        | IMAGECTL_AIRFLOW_<ENV>_TOKEN, else IMAGECTL_AIRFLOW_<ENV>_USERNAME/_PASSWORD, else    |
|                      | IMAGECTL_AIRFLOW_TOKEN, else IMAGECTL_AIRFLOW_USERNAME/_PASSWORD (MWAA: AWS instead)  |
| webhook URL          | IMAGECTL_WEBHOOK_<NAME>_URL                                                      |
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

from imagectl.errors import ConfigError


def env_key(name: str) -> str:
    return name.upper().replace("-", "_")


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)
    source: str = ""  # the variable prefix it came from, for messages

    def __repr__(self) -> str:  # never print the password, even in a debugger
        return f"Login(username={self.username!r}, source={self.source!r})"


@dataclass(frozen=True)
class Token:
    """An API token for Airflow (deployments behind SSO issue these instead of a password login)."""

    value: str = field(repr=False)
    source: str = ""  # the variable it came from, for messages

    def __repr__(self) -> str:
        return f"Token(source={self.source!r})"


def _pair(environ: Mapping[str, str], prefixes: list[str]) -> Login | None:
    for prefix in prefixes:
        user, password = environ.get(prefix + "USERNAME"), environ.get(prefix + "PASSWORD")
        if user and password:
            return Login(user, password, prefix)
    return None


@dataclass(frozen=True)
class Credentials:
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Credentials:
        return cls({k: v for k, v in environ.items() if k.startswith("IMAGECTL_")})

    @staticmethod
    def registry_variables(registry: str) -> list[str]:
        return [f"IMAGECTL_REGISTRY_{env_key(registry)}_", "IMAGECTL_REGISTRY_"]

    @staticmethod
    def airflow_variables(environment: str) -> list[str]:
        return [f"IMAGECTL_AIRFLOW_{env_key(environment)}_", "IMAGECTL_AIRFLOW_"]

    def registry(self, name: str) -> Login | None:
        """The login for registry ``name``, or None (anonymous, or ECR whose token comes from AWS)."""
        return _pair(self.environ, self.registry_variables(name))

    def airflow(self, environment: str) -> Login | Token:
        """The Airflow login of ``environment``: the environment's own variables before the shared ones, and at each
        level a token before a username and password (a deployment behind SSO has no password login)."""
        for prefix in self.airflow_variables(environment):
            token = self.environ.get(prefix + "TOKEN")
            if token:
                return Token(token, prefix + "TOKEN")
            login = _pair(self.environ, [prefix])
            if login is not None:
                return login
        specific, shared = self.airflow_variables(environment)
        raise ConfigError(
            f"no Airflow credentials for environment '{environment}'",
            f"set {specific}TOKEN (an Airflow API token), or {specific}USERNAME and {specific}PASSWORD "
            f"(or the same without {env_key(environment)}_ for every environment)",
        )

    @staticmethod
    def webhook_variable(name: str) -> str:
        return f"IMAGECTL_WEBHOOK_{env_key(name)}_URL"

    def webhook_url(self, name: str) -> str | None:
        return self.environ.get(self.webhook_variable(name)) or None

    JIRA = "IMAGECTL_JIRA_"

    def jira(self, name: str) -> str | None:
        """``IMAGECTL_JIRA_<NAME>``: CLIENT_ID / CLIENT_SECRET (Jira Cloud's OAuth 2.0 credentials for deployments),
        USER / API_TOKEN (Jira Cloud's REST API, for the gate), TOKEN (a Data Center personal access token)."""
        return self.environ.get(self.JIRA + name) or None

    def secrets(self) -> list[str]:
        """Every secret value known here (passwords, tokens, webhook URLs, and the Basic encoding of each login),
        longest first, for redaction."""
        values = {v for k, v in self.environ.items() if k.endswith(("_PASSWORD", "_URL", "_TOKEN", "_SECRET")) and len(v) >= 4}
        user, token = self.environ.get(self.JIRA + "USER", ""), self.environ.get(self.JIRA + "API_TOKEN", "")
        if user and len(token) >= 4:
            values.add(base64.b64encode(f"{user}:{token}".encode()).decode().rstrip("="))
        for key, password in self.environ.items():
            if key.endswith("_PASSWORD") and len(password) >= 4:
                user = self.environ.get(key.removesuffix("PASSWORD") + "USERNAME", "")
                values.add(base64.b64encode(f"{user}:{password}".encode()).decode().rstrip("="))
        return sorted(values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text
