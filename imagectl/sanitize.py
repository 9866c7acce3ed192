"""Text and URLs that come from outside imagectl: shown safely, stored without credentials.

- ``visible``: control characters (ESC, newlines, BEL, …) shown as escapes in text output, so a reason such as
  ``ESC[2J`` stored in the history cannot clear an on-call engineer's terminal or split a table row. JSON output
  keeps the value as given.
- ``strip_credentials``: ``https://user:TOKEN@host/repo.git`` → ``https://host/repo.git``, for every URL imagectl
  reads (git remotes, Bamboo variables, config) before it reaches a label, a record, a message or the history.
- ``check_free_text``: a reason or actor has a length limit and no NUL, checked when the value is given.
- ``redact_secrets``: credentials a server may echo back in an answer (Basic and Bearer values, JWTs, AWS keys and
  session tokens, user:password@ in URLs) replaced by ``***`` in everything imagectl prints, text and JSON.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from imagectl.errors import InputError

MAX_REASON = 500
MAX_ACTOR = 100

_SCP_LIKE = re.compile(r"^(?P<user>[^@/\s]+)@(?P<rest>[^@/\s:]+:.*)$")  # git@host:org/repo.git
_SECRETS = [
    (re.compile(r"(?i)\b(basic|bearer)(\s+|%20)[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "***"),  # a JWT
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "***"),  # an AWS access key id
    (
        re.compile(
            r"(?i)(aws_secret_access_key|aws_session_token|x-amz-security-token|secretaccesskey|sessiontoken)([\"'=:\s]+)[A-Za-z0-9/+=]{16,}"
        ),
        r"\1\2***",
    ),
    (re.compile(r"[A-Za-z0-9/+]{200,}={0,2}"), "***"),  # a session token or other long base64 secret
    (re.compile(r"(://)[^/\s:@]+:[^/\s@]+@"), r"\1***@"),  # user:password@ in a URL
]


def visible(text: str | None) -> str:
    """``text`` with every control or format character replaced by a visible escape (\\n, \\x1b, \\u202e …)."""
    if text is None:
        return ""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif category in ("Cc", "Cf", "Zl", "Zp") or category == "Cs":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def redact_secrets(text: str) -> str:
    """``text`` with every credential-looking value (see the module docstring) replaced by ***."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def strip_credentials(url: str | None) -> str | None:
    """The URL without user information (user, password, token) and without query or fragment secrets."""
    if url is None:
        return None
    url = url.strip()
    if not url:
        return url
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in url):
        return "(unparseable URL)"  # a newline could hide a second URL (with its credentials) from the parser
    if "://" not in url:
        match = _SCP_LIKE.match(url)
        if match and match.group("user") in ("git", "ssh"):
            return url  # git@host:org/repo.git: 'git' is the SSH login, not a secret
        if match:
            return match.group("rest")
        return url.split("@", 1)[-1] if "@" in url.split("/", 1)[0] else url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unparseable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_free_text(value: str | None, what: str, limit: int) -> str | None:
    """A reason or actor as given, or an InputError when it is too long or contains NUL."""
    if value is None:
        return None
    if "\x00" in value:
        raise InputError(f"{what} contains a NUL character", f"give a plain-text {what}")
    if len(value) > limit:
        raise InputError(f"{what} is {len(value)} characters long; at most {limit} are kept", f"shorten the {what}")
    if not value.strip():
        raise InputError(f"{what} is empty", f"give a {what} or leave the option out")
    return value
