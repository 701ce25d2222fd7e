"""The words of webhook messages, in English and Simplified Chinese (``core.vocabulary.LANGS``), and
how user text, money, times and links are written into them.

``text(lang, key, **values)`` fills one of them; an unknown language falls back to English.
Tier names come from ``core.vocabulary`` and playbook actions from ``core.settings``, not from here.
"""

from __future__ import annotations

import datetime as dt
import html
import re

from core.settings import Playbook
from core.vocabulary import respond_label

_MD_SPECIAL = re.compile(r"([\\`*_\[\]~|#!])")
_SPACE = re.compile(r"\s+")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "churnwatch: {n} accounts need action",
        "title_one": "churnwatch: {account} needs action",
        "summary": "MRR at risk {mrr} · expected loss {loss} · scored {as_of}",
        "summary_no_mrr": "no MRR known: {n} customers, lowest health first · scored {as_of}",
        "health": "health {v}",
        "mrr": "MRR {v}",
        "loss": "expected loss {v}",
        "owner": "owner {v}",
        "unassigned": "unassigned",
        "due": "due {v}",
        "overdue": "overdue",
        "no_due": "no deadline",
        "reason": "reason: {v}",
        "todo": "What to do",
        "todo_line": "{label} ({n}): {act} (respond within {within})",
        "todo_one": "What to do: {act} (respond within {within})",
        "more": "… and {n} more",
        "full": "full list",
        "open": "open the account",
    },
    "zh-CN": {
        "title": "churnwatch：{n} 个客户需要跟进",
        "title_one": "churnwatch：客户 {account} 需要跟进",
        "summary": "风险 MRR {mrr} · 预计损失 {loss} · 评分日期 {as_of}",
        "summary_no_mrr": "无已知 MRR：{n} 个客户，健康分最低的在前 · 评分日期 {as_of}",
        "health": "健康分 {v}",
        "mrr": "MRR {v}",
        "loss": "预计损失 {v}",
        "owner": "负责人 {v}",
        "unassigned": "未分配",
        "due": "截止 {v}",
        "overdue": "已逾期",
        "no_due": "无截止时间",
        "reason": "主要原因：{v}",
        "todo": "处理方式",
        "todo_line": "{label}（{n}）：{act}（{within}内响应）",
        "todo_one": "处理方式：{act}（{within}内响应）",
        "more": "……另有 {n} 个客户",
        "full": "查看完整列表",
        "open": "查看客户",
    },
}


def text(lang: str, key: str, **values: object) -> str:
    """The text ``key`` in ``lang`` (English when the language has none), filled with ``values``."""
    return TEXTS.get(lang, TEXTS["en"]).get(key, TEXTS["en"][key]).format(**values)


#: Longest user text (characters) in a message line: a reason, a name, an owner.
MAX_USER_TEXT = 200


def one_line(value: object, limit: int = MAX_USER_TEXT) -> str:
    """User text on one line (a newline in a reason must not start a heading or a list), at most
    ``limit`` characters (cut with "…")."""
    flat = _SPACE.sub(" ", str(value)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def esc_slack(value: object) -> str:
    return one_line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def esc_md(value: object) -> str:
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line(value), quote=False))


def url_md(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def url_slack(url: str) -> str:
    return url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace("&", "&amp;")


def money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def due_text(due_at: dt.datetime | None, now: dt.datetime, lang: str) -> str:
    """``due 2025-12-25 16:00 UTC`` (``overdue`` when past ``now``); naive times are UTC."""
    if due_at is None:
        return text(lang, "no_due")
    when = as_utc(due_at).strftime("%Y-%m-%d %H:%M UTC")
    late = f" ({text(lang, 'overdue')})" if as_utc(due_at) < as_utc(now) else ""
    return text(lang, "due", v=when) + late


def respond_within(book: Playbook, lang: str) -> str:
    """The playbook's response time in ``lang`` (``core.vocabulary.respond_label``: '4 hours' -> '4 小时')."""
    return respond_label(book.respond_within, lang, book.respond_within_hours)


def cut_bytes(text_: str, max_bytes: int) -> str:
    """``text_`` cut to ``max_bytes`` of UTF-8 (never inside a character)."""
    return text_.encode()[:max_bytes].decode(errors="ignore")
