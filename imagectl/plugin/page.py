"""The Images page and the operations form, as HTML made from the data endpoints' own documents (pure: no Airflow).

Everything read from outside (tags, reasons, actors, Variable values, warnings) is escaped; the data a script needs
is embedded as JSON that cannot close its ``<script>`` element. The page's buttons open the form, prefilled; the
form triggers ``imagectl_ops`` through Airflow's own REST API as the signed-in user, so Airflow decides whether that
user may (the button is not shown to users who may not, and the form's endpoint refuses them too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

from imagectl.commands.ops import ACTIONS, DAG_ID
from imagectl.sanitize import MAX_REASON, redact_secrets, visible

TERMINAL = ("success", "failed")


@dataclass(frozen=True)
class Urls:
    """Where things are, as seen from the browser: this app under Airflow, and Airflow's UI and API."""

    app: str  # e.g. "/imagectl" (the plugin's mount point, under Airflow's base path)
    airflow: str  # Airflow's base path ("" at the root)

    @property
    def page(self) -> str:
        return f"{self.app}/"

    def act(self, action: str, environment: str, target: str | None = None) -> str:
        query = {"action": action, "environment": environment, **({"target": target} if target else {})}
        return f"{self.app}/act?{urlencode(query)}"

    @property
    def trigger_api(self) -> str:
        return f"{self.airflow}/api/v2/dags/{DAG_ID}/dagRuns"

    def run(self, run_id: str) -> str:
        return f"{self.airflow}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"


def t(value: Any) -> str:
    """Outside text for HTML: credentials a server echoed redacted, control characters shown, markup escaped."""
    return escape(visible(redact_secrets("" if value is None else str(value))))


def link(url: str | None, text: Any, title: str | None = None) -> str:
    """A link to another site (Jira, the git host) in a new tab, or to an Airflow page in the whole window (the page
    itself is shown in a frame of Airflow's UI); anything but http(s) or a path is not a link."""
    if not url or not url.startswith(("https://", "http://", "/")) or url.startswith("//"):
        return t(text)
    title_attr = f' title="{t(title)}"' if title else ""
    target = 'target="_top"' if url.startswith("/") else 'target="_blank" rel="noopener noreferrer"'
    return f'<a href="{escape(url)}" {target}{title_attr}>{t(text)}</a>'


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def asset(name: str) -> str:
    """A file of imagectl/plugin/assets (package data), inlined into the page: the page needs no other request."""
    return (resources.files("imagectl.plugin") / "assets" / name).read_text(encoding="utf-8")


def document(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{t(title)}</title><style>{asset('page.css')}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _state_badge(env: dict[str, Any]) -> str:
    if env.get("error") or env.get("errors"):
        return '<span class="badge warn">unreadable</span>'
    if env.get("agree"):
        return '<span class="badge ok">ok</span>'
    return '<span class="badge bad">drift</span>'


def _last_run(env: dict[str, Any]) -> str:
    run = env.get("last_run")
    if not run:
        return '<span class="muted">no dbt run yet</span>'
    verdict = run.get("verdict") or ""
    ran_it = run.get("agrees") and verdict == "ran the deployed image"
    cls, mark = ("ok", "✔") if ran_it else (("muted", "…") if run.get("agrees") else ("bad", "✘"))
    url = run.get("url") or ""
    started = f", started {t(run.get('started'))}" if run.get("started") else ""
    image = f" <div><code>{t(run.get('image'))}</code></div>" if run.get("image") and not run.get("agrees") else ""
    return (
        f'<span class="{cls}">{mark} {t(verdict)}</span> — {link(url, run.get("run_id"))} '
        f'<span class="muted">({t(run.get("dag_id"))}, {t(run.get("state"))}{started})</span>{image}'
    )


def _image(env: dict[str, Any]) -> str:
    image = env.get("image")
    if not image:
        return '<span class="muted">nothing deployed yet</span>'
    parts = [f"<strong>{t(image['tag'])}</strong>"]
    if image.get("release"):
        parts.append(f'<span class="badge ok">{t(image["release"])}</span>')
    if image.get("revision"):
        parts.append(f'<span class="muted">revision {t(image["revision"])}</span>')
    commit = image.get("commit")
    facts = [
        f"Jira {link(image.get('jira_url'), image.get('jira'))}" if image.get("jira") else "Jira -",
        f"commit {link(image.get('commit_url'), commit[:12], commit)}" if commit else "commit -",
        f"built {t(image.get('built_at'))}" if image.get("built_at") else "built -",
    ]
    return " ".join(parts) + f'<div class="muted">{" · ".join(facts)}</div>'


def _verified(row: dict[str, Any]) -> str:
    verdict = row.get("verification")
    if not verdict:
        return '<span class="muted">-</span>'
    if verdict.get("result") == "verified":
        return f'<span class="ok" title="{t(verdict.get("run_id"))}">yes</span>'
    return f'<span class="bad" title="{t(verdict.get("detail") or verdict.get("run_id"))}">FAILED</span>'


def _history(env: dict[str, Any], urls: Urls, can_act: bool) -> str:
    rows = env.get("revisions") or []
    if not rows:
        return '<p class="muted" style="padding: 0 16px">No revisions yet.</p>'
    out = []
    current = next((row["digest"] for row in rows if row.get("current")), None)
    for row in rows:
        tag = t(row["tag"])
        notes = []
        if row.get("image_present") is False:
            notes.append('<span class="badge warn">image deleted</span>')
        if row.get("rejected"):
            rejected = row["rejected"]
            notes.append(f'<span class="badge bad" title="{t(rejected.get("reason"))} ({t(rejected.get("actor"))})">rejected</span>')
        if row.get("frozen"):
            notes.append('<span class="badge bad">frozen</span>')
        reason = t(row.get("reason") or "-") + (f' <span class="muted">[forced: {t(row["forced"])}]</span>' if row.get("forced") else "")
        jira = link(row.get("jira_url"), row.get("jira")) if row.get("jira") else "-"
        commit = link(row.get("commit_url"), (row.get("git_sha") or "")[:12], row.get("git_sha")) if row.get("git_sha") else "-"
        action = ""
        if can_act and row.get("digest") != current and row.get("image_present") is not False:  # another image, still there
            href = escape(urls.act("rollback", env["environment"], str(row["revision"])))
            action = f'<a class="button small" href="{href}">Roll back to this</a>'
        out.append(
            f'<tr class="{"current" if row.get("current") else ""}" data-revision="{t(row["revision"])}">'
            f"<td>{'* ' if row.get('current') else ''}{t(row['revision'])}</td><td>{t(row['time'])}</td><td>{t(row['action'])}</td>"
            f"<td>{tag} {' '.join(notes)}</td><td>{t(row.get('release') or '-')}</td><td>{jira}</td><td>{commit}</td>"
            f"<td>{_verified(row)}</td><td>{t(row['actor'])}</td><td>{reason}</td><td>{action}</td></tr>"
        )
    headers = ("Rev", "Time (UTC)", "Action", "Tag", "Release", "Jira", "Commit", "Verified", "Who", "Why", "")
    head = "".join(f"<th>{h}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(out)}</tbody></table>"


def _environment(env: dict[str, Any], urls: Urls, can_act: bool) -> str:
    name = env["environment"]
    if env.get("error"):
        return (
            f'<section class="env" id="env-{t(name)}"><header><h2>{t(name)}</h2>{_state_badge(env)}</header>'
            f'<p class="error" style="padding: 0 16px">{t(env["error"])}</p></section>'
        )
    frozen = env.get("frozen")
    badges = [_state_badge(env)]
    if frozen:
        badges.append('<span class="badge bad">frozen</span>')
    buttons = ""
    if can_act:
        buttons = f'<a class="button danger" href="{escape(urls.act("rollback", name))}" data-action="rollback">Rollback</a>'
        if frozen:
            buttons += f'<a class="button" href="{escape(urls.act("unfreeze", name))}" data-action="unfreeze">Unfreeze</a>'
        else:
            buttons += f'<a class="button" href="{escape(urls.act("freeze", name))}" data-action="freeze">Freeze</a>'
    value = t(env.get("variable_value") or "(not set)")
    facts = [
        ("Image", _image(env)),
        ("Variable", f"{t(env.get('variable_location') or env.get('variable'))}<div><code>{value}</code></div>"),
        ("Last dbt run", _last_run(env)),
        (
            "Freeze",
            f'<span class="bad">frozen by {t(frozen.get("by"))} since {t(frozen.get("at"))}: {t(frozen.get("reason"))}</span>'
            if frozen
            else '<span class="muted">not frozen: deploys, promotes and ci may change it</span>',
        ),
    ]
    for error in env.get("errors") or []:
        facts.append(("Error", f'<span class="error">{t(error)}</span>'))
    if env.get("hint"):
        facts.append(("To do", t(env["hint"])))
    dl = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)
    return (
        f'<section class="env" id="env-{t(name)}" data-environment="{t(name)}"><header><h2>{t(name)}</h2>{"".join(badges)}'
        f'<div class="actions">{buttons}</div></header><dl class="facts">{dl}</dl>{_history(env, urls, can_act)}</section>'
    )


def render_page(
    data: dict[str, Any],
    *,
    user: str,
    can_act: bool,
    urls: Urls,
    limit: int,
    run: str | None = None,
    run_state: str | None = None,
    error: str | None = None,
) -> str:
    """The Images page: every environment this Airflow runs (``data`` is the data endpoint's document)."""
    notices = []
    if run:
        state = run_state if run_state in (*TERMINAL, "queued", "running") else None
        cls = {"success": "ok", "failed": "bad"}.get(state or "", "")
        text = {
            "success": "succeeded: the history below shows its revision",
            "failed": "failed: its log says why",
        }.get(state or "", "is running …")
        notices.append(
            f'<div class="notice {cls}" id="run-notice" data-run="{t(run)}" data-state="{t(state or "")}">'
            f"{DAG_ID} run {link(urls.run(run), run)} {text}</div>"
        )
    if not can_act:
        notices.append(
            f'<div class="notice">You can read this page. Rolling back or freezing is done by triggering the {DAG_ID} DAG, '
            "which your Airflow role does not allow.</div>"
        )
    if error:
        notices.append(f'<div class="notice bad error">{t(error)}</div>')
    for warning in data.get("warnings") or []:
        notices.append(f'<div class="notice bad">warning: {t(warning)}</div>')
    environments = "".join(_environment(env, urls, can_act) for env in data.get("environments") or [])
    more = f'<a href="{escape(urls.page)}?limit={min(limit * 5, 1000)}">show more revisions</a>' if limit < 1000 else ""
    poll = ""
    if run and run_state not in TERMINAL:
        data_json = script_json(_poll_data(urls, run, limit))
        poll = f"<script type='application/json' id='imagectl-poll'>{data_json}</script><script>{asset('poll.js')}</script>"
    body = (
        f"<h1>Images</h1><div class='sub'>The image each environment runs, and its history (imagectl). Signed in as "
        f"<strong>{t(user)}</strong>. Newest {limit} revisions per environment; {more}</div>{''.join(notices)}{environments}{poll}"
    )
    return document("Images", body)


def _poll_data(urls: Urls, run: str, limit: int) -> dict[str, str]:
    return {"api": f"{urls.trigger_api}/{quote(run, safe='')}", "page": f"{urls.page}?{urlencode({'run': run, 'limit': limit})}"}


def render_form(
    *,
    action: str,
    environment: str,
    target: str | None,
    environments: list[str],
    revisions: list[dict[str, Any]],
    urls: Urls,
    user: str,
) -> str:
    """The operations form: imagectl_ops's params, prefilled; the reason is required. Submitting triggers the DAG
    through Airflow's REST API as the signed-in user (Airflow checks the permission again and validates the params)."""
    options = "".join(f'<option value="{t(a)}"{" selected" if a == action else ""}>{t(a)}</option>' for a in ACTIONS)
    envs = "".join(f'<option value="{t(e)}"{" selected" if e == environment else ""}>{t(e)}</option>' for e in environments)
    choices = "".join(
        f'<option value="{t(r["revision"])}">revision {t(r["revision"])}: {t(r["tag"])} ({t(r["action"])} by {t(r["actor"])})</option>'
        for r in revisions
        if not r.get("current") and r.get("image_present") is not False
    )
    what = {
        "rollback": f"Point {t(environment)}'s Variable back at an earlier image: a new revision, nothing is deleted.",
        "freeze": f"Stop deploys, promotes and ci in {t(environment)} until it is unfrozen (rollback still works).",
        "unfreeze": f"Let deploys, promotes and ci change {t(environment)} again.",
    }[action]
    data = {"api": urls.trigger_api, "page": urls.page}
    body = f"""<h1>{t(action.capitalize())} {t(environment)}</h1>
<div class="sub">Triggers the <strong>{DAG_ID}</strong> DAG as <strong>{t(user)}</strong>: its run log shows the plan and the result,
and the history records you as the actor. {what}</div>
<div class="notice bad error" id="ops-error" hidden></div>
<form class="ops" id="ops-form">
<label for="action">Action</label><select id="action" name="action">{options}</select>
<label for="environment">Environment</label><select id="environment" name="environment">{envs}</select>
<label for="target">Target revision or tag</label>
<input id="target" name="target" list="revisions" value="{t(target or "")}" placeholder="empty: the previous image" autocomplete="off">
<datalist id="revisions">{choices}</datalist>
<div class="hint">Rollback only: a revision number (e.g. 41) or a tag (DATA-1234-57, v1.4.0).
Empty: the newest earlier revision that ran another image.</div>
<label for="reason">Reason (required)</label>
<textarea id="reason" name="reason" rows="3" maxlength="{MAX_REASON}" required
 placeholder="why, e.g. orders model broke revenue; DATA-1234 investigating"></textarea>
<div class="buttons"><button class="button primary" type="submit" id="trigger">Trigger {DAG_ID}</button>
<a class="button" href="{escape(urls.page)}">Cancel</a></div>
</form>
<script type="application/json" id="imagectl-form">{script_json(data)}</script>
<script>{asset("form.js")}</script>"""
    return document(f"{action} {environment}", body)


def render_refusal(status: int, detail: str, login: str) -> str:
    """What a browser sees instead of the page when Airflow refuses it (not signed in, or not allowed)."""
    if status == 401:
        text = f'Sign in to Airflow to see this page: <a href="{escape(login)}" target="_top">sign in</a>.'
    else:
        text = f"Airflow refused: {t(detail)}."
    return document("Images", f"<h1>Images</h1><div class='notice bad'>{text}</div>")
