"""E-mails to accounts (issue 15 item 4): per-tier templates in English and Simplified Chinese,
sent over SMTP, every one recorded against the account.

* Templates live in ``workflow/templates/email`` (or the folder ``email.templates`` names, which
  overrides them by file name): ``<template>.<lang>.j2`` holds the words as blocks (``subject``,
  ``greeting``, ``intro``, ``reasons_heading``, ``value_heading``, ``offer``, ``closing``) and
  ``_layout.txt.j2`` / ``_layout.html.j2`` put them together. The words are plain text; the HTML
  layout is rendered with Jinja2's autoescape, so an account named ``<script>`` stays text.
  The default template is the account's tier (``low_risk``, ``medium_risk``, ``high_risk``).
* The e-mail is filled with the account's name and contact, its top reasons (worded by the
  scorer, in the e-mail's language) and a value reminder from its own usage numbers ("your team
  logged in 1,240 times in the last 90 days").
* ``send_email`` sends with ``smtplib`` (``email:`` in ``churnwatch.yaml``: host, port, STARTTLS or
  SSL, user and the name of the environment variable with the password) and records the e-mail
  (table ``emails``) with an audit entry; a refused or unreachable server is recorded as
  ``failed`` with the reason, never raised. The SMTP conversation runs before the store's write
  transaction, so the write lock is never held while waiting for a server.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from sqlalchemy.engine import Engine

from core.errors import ConfigError
from core.settings import EmailSettings, Settings
from core.vocabulary import LANGS, tier_label
from features.spec import slug
from workflow import audit
from workflow.db import METADATA, write
from workflow.facts import AccountFacts

TEMPLATES = Path(__file__).with_name("templates") / "email"
STATUSES = ("sent", "failed", "skipped")
BLOCKS = ("subject", "greeting", "intro", "reasons_heading", "value_heading", "offer", "closing")
MAX_REASONS = 3
#: CRLF lines; headers folded only past RFC 5322's 998 characters (Python's folding at 78 puts a
#: lone ASCII subject on a continuation line, which readers show with a leading space). The
#: parts are encoded under a 76-character policy first, so their lines stay within RFC 2045.
HEADERS = policy.SMTP.clone(max_line_length=998)

EMAILS = sa.Table(
    "emails", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(200), nullable=False),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("lang", sa.String(10), nullable=False),
    sa.Column("to_addr", sa.String(320), nullable=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("message_id", sa.String(300), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("sequence", sa.String(64), nullable=True),  # the sequence whose step sent it, if one did
    sa.CheckConstraint("status IN ('sent', 'failed', 'skipped')", name="status"),
    sa.Index("ix_emails_account_id", "account_id"),
)


@dataclass(frozen=True)
class Rendered:
    """An e-mail ready to send: subject, plain-text and HTML parts, which template and language."""

    template: str
    lang: str
    subject: str
    text: str
    html: str


# --- rendering -------------------------------------------------------------------------------

def normal_lang(value: str | None, default: str = "en") -> str:
    """``zh``, ``zh-CN``, ``zh_cn``, ``Chinese`` -> ``zh-CN``; ``en*`` -> ``en``; else ``default``."""
    text = (value or "").strip().lower()
    if text.startswith("zh") or text in ("chinese", "中文"):
        return "zh-CN"
    if text.startswith("en") or text == "english":
        return "en"
    return default


def environment(settings: EmailSettings) -> Environment:
    """Jinja2 environment: the configured folder first, then the built-in templates; autoescape
    for the HTML layout (``*.html.j2``), none for the words and the text layout. One per folder
    and process (Jinja2 reloads a template whose file changed)."""
    folder = Path(settings.templates).expanduser() if settings.templates else None
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"email.templates: {folder} is not a folder")
    return _environment(str(folder) if folder else None)


@functools.lru_cache(maxsize=8)
def _environment(folder: str | None) -> Environment:
    folders = [FileSystemLoader(TEMPLATES)]
    if folder:
        folders.insert(0, FileSystemLoader(folder))
    return Environment(loader=ChoiceLoader(folders), undefined=StrictUndefined, keep_trailing_newline=False,
                       autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
                       trim_blocks=True, lstrip_blocks=True)


def template_names(settings: EmailSettings) -> list[str]:
    """The templates available in both languages."""
    env = environment(settings)
    names = {n.split(".")[0] for n in env.list_templates() if re.fullmatch(r"[a-z0-9_-]+\.(en|zh-CN)\.j2", n)}
    return sorted(n for n in names if all(f"{n}.{lang}.j2" in env.list_templates() for lang in LANGS))


def _count(value: float) -> str:
    return f"{round(value):,}"


def value_reminder(numbers: dict[str, float], lang: str, skip_events: Iterable[str] = ()) -> list[str]:
    """Sentences from the account's own usage numbers (zero and missing numbers are left out):
    logins, active days and users, core-feature uses, and the account's most frequent event type
    other than ``skip_events`` (logins, marketing and contact events: said already, or not usage)."""
    zh = lang == "zh-CN"
    words = {
        "logins_90d": ("Your team logged in {n} times in the last 90 days.", "过去 90 天，您的团队共登录 {n} 次。"),
        "active_days_90d": ("It was in use on {n} of the last 90 days.", "过去 90 天中有 {n} 天在使用。"),
        "active_users_30d": ("{n} people on your team used it in the last 30 days.",
                             "近 30 天有 {n} 位同事在使用。"),
        "core_events_30d": ("Core features were used {n} times in the last 30 days.",
                            "近 30 天核心功能共使用 {n} 次。"),
    }
    out = []
    for key, (en, zh_text) in words.items():
        value = numbers.get(key)
        if value and value > 0:
            out.append((zh_text if zh else en).format(n=_count(value)))
    skip = {f"evt_{slug(e)}_90d" for e in skip_events}
    events = {k: v for k, v in numbers.items()
              if re.fullmatch(r"evt_[a-z0-9_]+_90d", k) and v > 0 and k not in skip}
    if events:
        top = max(events, key=lambda k: (events[k], k))
        kind = top.removeprefix("evt_").removesuffix("_90d").replace("_", " ")
        out.append(f"过去 90 天，您的团队记录了 {_count(events[top])} 次“{kind}”。" if zh
                   else f"Your team recorded {_count(events[top])} “{kind}” events in the last 90 days.")
    return out


def _not_usage(settings: Settings) -> list[str]:
    roles = settings.event_roles
    return [*roles.login, *roles.marketing_sent, *roles.marketing_open, *roles.contact_left]


def render(facts: AccountFacts, settings: Settings, lang: str | None = None,
           template: str | None = None) -> Rendered:
    """The e-mail of ``template`` (default the account's tier) in ``lang`` (default the contact's
    language, else ``email.lang``).

    Raises:
        ConfigError: no such template in that language (the available ones named).
    """
    es = settings.email
    if lang is not None and normal_lang(lang, "") == "":
        raise ConfigError(f"language {lang!r}: expected one of {', '.join(LANGS)}")
    lang = normal_lang(lang, "") or normal_lang(facts.lang, es.lang)
    name = template or facts.tier
    env = environment(es)
    try:
        words = env.get_template(f"{name}.{lang}.j2")
    except TemplateNotFound as exc:
        raise ConfigError(f"no e-mail template {name!r} in {lang} (templates: {', '.join(template_names(es))})"
                          ) from exc
    zh = lang == "zh-CN"
    context: dict[str, Any] = {
        "account_id": facts.account_id, "name": facts.display_name, "contact": facts.contact,
        "tier": facts.tier, "tier_label": tier_label(facts.tier, lang), "health_score": facts.health_score,
        "as_of": facts.as_of.isoformat(), "csm": facts.csm, "numbers": facts.numbers,
        "reasons": list((facts.reasons_zh if zh else facts.reasons_en)[:MAX_REASONS]),
        "value": value_reminder(facts.numbers, lang, _not_usage(settings)),
        "signature": es.signature_zh if zh else es.signature_en,
    }
    parts = {}
    for block in BLOCKS:
        fn = words.blocks.get(block)
        parts[block] = "".join(fn(words.new_context(context))).strip() if fn else ""
    parts["subject"] = " ".join(parts["subject"].split())  # one header line, whatever the name holds
    paragraphs = {k: [p.strip() for p in re.split(r"\n\s*\n", parts[k]) if p.strip()]
                  for k in ("intro", "offer", "closing")}
    layout = {**context, **parts, "paragraphs": paragraphs, "lang": lang}
    text = env.get_template("_layout.txt.j2").render(layout).strip() + "\n"
    html = env.get_template("_layout.html.j2").render(layout)
    return Rendered(template=name, lang=lang, subject=parts["subject"], text=text, html=html)


# --- sending ---------------------------------------------------------------------------------

class SendError(Exception):
    """Why an e-mail was not sent, in words (recorded, not shown as a traceback)."""


def build_message(rendered: Rendered, facts: AccountFacts, settings: EmailSettings, to: str,
                  now: dt.datetime) -> EmailMessage:
    """The MIME message: plain text and HTML alternatives, UTF-8, a fresh Message-ID."""
    msg = EmailMessage(policy=policy.SMTP.clone(max_line_length=76))  # quoted-printable lines of 76 (RFC 2045)
    msg["Subject"] = rendered.subject
    signature = settings.signature_zh if rendered.lang == "zh-CN" else settings.signature_en
    name, sender = parseaddr(settings.sender)  # "Équipe Succès <care@…>" keeps its name; a bare address: the
    msg["From"] = formataddr((name or signature, sender))  # signature (a probe: an accented name failed every mail)
    msg["To"] = formataddr((" ".join((facts.contact or "").split()), to))
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["Date"] = format_datetime(now)
    domain = sender.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["X-Churnwatch-Account"] = " ".join(facts.account_id.split())
    msg["X-Churnwatch-Template"] = rendered.template
    msg.set_content(rendered.text, charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    msg.policy = HEADERS  # then written out with headers unfolded up to 998 characters
    return msg


def _password(settings: EmailSettings) -> str | None:
    if not settings.password_env:
        return None
    value = os.environ.get(settings.password_env)
    if value is None:
        raise SendError(f"the environment variable {settings.password_env} (email.password_env) is not set")
    return value


def _smtp_reason(exc: BaseException, settings: EmailSettings) -> str:
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [f"{to}: {code} {_decode(text)}" for to, (code, text) in exc.recipients.items()]
        return f"{where} refused the recipient ({'; '.join(parts)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where} answered {exc.smtp_code} {_decode(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPException):
        return f"{where}: {exc}"
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer within {settings.timeout_seconds:g} s"
    if isinstance(exc, ssl.SSLError):
        return f"{where}: TLS failed ({exc.reason or exc})"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or exc}"
    return f"{where}: {exc}"


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def deliver(msg: EmailMessage, settings: EmailSettings) -> None:
    """One SMTP conversation. Raises ``SendError`` with the reason in words."""
    password = _password(settings)
    try:
        cls = smtplib.SMTP_SSL if settings.ssl else smtplib.SMTP
        with cls(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, password or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(_smtp_reason(exc, settings)) from exc


def send_email(engine: Engine, settings: Settings, facts: AccountFacts, *, lang: str | None = None,
               template: str | None = None, to: str | None = None, actor: str = "churnwatch",
               now: dt.datetime | None = None, sequence: str | None = None) -> dict:
    """Render, send and record one e-mail; returns the recorded row (``status`` sent, failed or
    skipped with ``error``). A template or language that does not exist raises ``ConfigError``
    (a mistake in the request, nothing was attempted); everything that goes wrong while sending
    is recorded as ``failed``; ``email.enabled: false`` records ``skipped``."""
    now = now or dt.datetime.now(dt.UTC)
    rendered = render(facts, settings, lang, template)
    es = settings.email
    address = (to or facts.email or "").strip() or None
    status, error, message_id = "sent", None, None
    if not es.enabled:
        status, error = "skipped", "e-mail is not enabled (email.enabled in churnwatch.yaml)"
    elif address is None:
        status, error = "failed", (f"no e-mail address for account {facts.account_id} (column "
                                   f"{es.email_column} of the accounts table)")
    else:
        try:
            msg = build_message(rendered, facts, es, address, now)
            message_id = msg["Message-ID"]
            deliver(msg, es)
        except (SendError, ValueError) as exc:  # ValueError: a header the address cannot be
            status, error = "failed", str(exc)
    row = {"account_id": facts.account_id, "template": rendered.template, "lang": rendered.lang,
           "to_addr": address, "subject": rendered.subject, "message_id": message_id, "status": status,
           "error": error, "sent_at": now, "actor": actor, "sequence": sequence}
    with write(engine) as conn:
        row["id"] = conn.execute(EMAILS.insert().values(**row)).inserted_primary_key[0]
        audit.record(conn, actor=actor, entity="account", entity_id=facts.account_id, action=f"email {status}",
                     after={k: v for k, v in row.items() if k != "sent_at"}, at=now)
    return row


def emails_of(engine: Engine, account_id: str | None = None, limit: int = 100) -> list[dict]:
    """Recorded e-mails, newest first (one account's, or all)."""
    query = sa.select(EMAILS).order_by(EMAILS.c.sent_at.desc(), EMAILS.c.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(EMAILS.c.account_id == account_id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
