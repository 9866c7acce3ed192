"""Notifications: one message per deploy, promote, rollback, freeze and unfreeze, to the webhooks an
environment lists (``notify = ["ops"]``; ``[webhooks.ops] format = "slack" | "json"``; the URL only from
``IMAGECTL_WEBHOOK_OPS_URL``, never the config file).

Formats: Slack's incoming-webhook JSON (``text`` plus a ``blocks`` section), or imagectl's own event document
(``{"schema": 1, "kind": "event", …}``). A webhook that fails never fails the change: it becomes one warning
line (without the URL, which is a secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from imagectl.adapters import http
from imagectl.config import Config
from imagectl.credentials import Credentials
from imagectl.history import Revision
from imagectl.report import warn
from imagectl.sanitize import visible
from imagectl.settings import Timeouts


@dataclass
class Event:
    action: str
    environment: str
    before: Revision | None
    after: Revision
    run_url: str | None = None

    def json(self) -> dict[str, Any]:
        def side(r: Revision | None) -> dict[str, Any] | None:
            return None if r is None else {"revision": r.revision, "tag": r.tag, "release": r.release, "digest": r.digest}

        return {
            "schema": 1,
            "kind": "event",
            "action": self.action,
            "environment": self.environment,
            "from": side(self.before),
            "to": side(self.after),
            "frozen": self.after.frozen,
            "actor": self.after.actor,
            "reason": self.after.reason,
            "forced": self.after.forced,
            "time": self.after.time,
            "run_url": self.run_url,
        }

    def line(self) -> str:
        def name(r: Revision | None) -> str:
            return "nothing" if r is None else f"{r.tag}{f' ({r.release})' if r.release else ''}"

        change = f"{name(self.before)} → {name(self.after)}" if self.action not in ("freeze", "unfreeze") else f"at {name(self.after)}"
        text = f"imagectl: {self.action} {self.environment}: {change}, revision {self.after.revision}, by {self.after.actor}"
        if self.after.reason:
            text += f" — {self.after.reason}"
        if self.after.forced:
            text += f" (forced: {self.after.forced})"
        if self.run_url:
            text += f" — run: {self.run_url}"
        return visible(text)


def slack_body(event: Event) -> dict[str, Any]:
    text = event.line()
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def send(config: Config, credentials: Credentials, event: Event, timeouts: Timeouts | None = None) -> int:
    """Post ``event`` to the environment's webhooks; returns how many accepted it. Never raises."""
    hooks = config.environment(event.environment).notify
    delivered = 0
    session = http.session(retries=1, backoff=0.2)
    limits = timeouts or config.timeouts
    short = Timeouts(connect=min(limits.connect, 5.0), read=min(limits.read, 10.0), request=min(limits.request, 15.0))
    for name in hooks:
        url = credentials.webhook_url(name)
        if not url:
            warn(f"webhook {name} has no URL (set {credentials.webhook_variable(name)}); no notification sent")
            continue
        body = slack_body(event) if config.webhooks[name].format == "slack" else event.json()
        try:
            response = http.send(session, "POST", url, timeouts=short, what=f"notifying {name}", json=body)
        except requests.RequestException as exc:
            warn(f"webhook {name} was not notified: {http.explain(exc, short)}")
            continue
        except Exception as exc:  # noqa: BLE001 - a notification never fails the change
            warn(f"webhook {name} was not notified: {type(exc).__name__}")
            continue
        if 200 <= response.status_code < 300:
            delivered += 1
        else:
            warn(f"webhook {name} answered HTTP {response.status_code}; the notification may not have arrived")
    return delivered
