"""Messages people can act on: one digest per webhook and run, in the webhook's format and language.

``digest`` turns the accounts that need action (``ActionItem``) into ONE ``Message`` for a
webhook: a header with the counts per tier, the MRR at risk and the expected loss, what the
playbook says to do per tier, then one line per account ordered by expected MRR loss (then
health): account (linked to its page), tier, health, MRR, expected loss, owner, due time (a date
and time in UTC) and the top reason. When no account has an MRR (a flat table's scores, a store
with no MRR column) the header counts customers and the lines leave MRR and expected loss out,
rather than show "MRR at risk 0" and "MRR –". A list longer than the channel allows ends with
"... and N more" and a link to the full list. ``per_account`` makes one message about one
account, for webhooks configured with ``per_account``.

Formats, each within its platform's limits:

* ``slack``: Block Kit (``header``, ``section`` with mrkdwn, ``context``); at most 50 blocks,
  3,000 characters a section and about 12,000 characters in all (Slack refuses longer
  messages with ``msg_blocks_too_long``); user text escaped as Slack asks (``&amp;``, ``&lt;``,
  ``&gt;``); no markdown headings (Slack shows a literal ``###``).
* ``dingtalk``: ``msgtype: markdown`` (``title`` and ``text``); the URL signed with
  ``timestamp`` and ``sign`` when the webhook has a ``secret`` (``workflow.signing``).
* ``wecom``: ``msgtype: markdown`` (``content``, at most 4,096 bytes of UTF-8).
  DingTalk's markdown text is held to the same 4,096 bytes.
* ``generic``: JSON following ``GenericMessage`` (``GENERIC_SCHEMA`` is its JSON Schema; dates
  ISO 8601), signed with ``X-Churnwatch-Timestamp`` / ``X-Churnwatch-Signature`` when the webhook
  has a ``secret`` (receivers check with ``workflow.signing.verify``).

In markdown, user text (account ids and names, reasons, owners) is HTML-escaped and its markdown
punctuation backslash-escaped, so it cannot become a link, a heading or a tag; links are only
``http(s)`` and percent-encoded. Texts are English or Simplified Chinese (``lang``), tier names
from ``core.vocabulary``, actions from the playbooks (``core.settings``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.parse
from collections import Counter
from collections.abc import Callable

from core.settings import Playbook, Webhook, default_playbooks
from core.vocabulary import TIER_RANK, tier_label
from workflow.messages import ActionItem, Message
from workflow.schemas import GENERIC_SCHEMA, GenericItem, GenericMessage
from workflow.signing import alert_key, digest_key, dingtalk_signed_url, signature_headers
from workflow.texts import (
    as_utc,
    cut_bytes,
    due_text,
    esc_md,
    esc_slack,
    money,
    one_line,
    respond_within,
    text,
    url_md,
    url_slack,
)

__all__ = ["GENERIC_SCHEMA", "GenericMessage", "MARKDOWN_MAX_BYTES", "SLACK_MAX_BLOCKS", "account_link",
           "digest", "full_list_link", "ordered", "per_account", "signed"]

SLACK_MAX_BLOCKS = 50
SLACK_SECTION_CHARS = 2900  # Slack: 3,000 characters in a section's text
SLACK_TOTAL_CHARS = 10_000  # Slack refuses messages whose blocks hold about 13,000 characters
MARKDOWN_MAX_BYTES = 4000  # WeCom: markdown content up to 4,096 bytes of UTF-8 (DingTalk held to the same)
GENERIC_MAX_ITEMS = 1000
#: Where the workspace shows one account and the open tasks (after ``operations.link_base``, the workspace's
#: address): pages that exist (a probe's digests linked to ``/alerts?run=...``, which nothing served).
ACCOUNT_PATH = "/accounts/{account_id}"
LIST_PATH = "/tasks"


def ordered(items: list[ActionItem]) -> list[ActionItem]:
    """Largest expected MRR loss first (unknown losses last), then lowest health, then account id."""
    return sorted(items, key=lambda i: (i.expected_loss is None, -(i.expected_loss or 0.0), i.health_score,
                                        i.account_id))


def account_link(item: ActionItem, link_base: str) -> str:
    """The item's own ``http(s)`` link, else its page in the workspace."""
    if item.link and item.link.lower().startswith(("http://", "https://")):
        return item.link
    return link_base.rstrip("/") + ACCOUNT_PATH.format(account_id=urllib.parse.quote(item.account_id, safe=""))


def full_list_link(link_base: str, run_id: str) -> str:
    """The full list of accounts to act on: the workspace's board of open tasks (a run's alerts are among
    them; ``run_id`` is kept in the digest's payload)."""
    return link_base.rstrip("/") + LIST_PATH


def action(book: Playbook, lang: str) -> str:
    return book.action_zh if lang == "zh-CN" else book.action_en


def reason(item: ActionItem, lang: str) -> str | None:
    """The top reason in ``lang``, else in the other language."""
    return (item.top_reason_zh or item.top_reason) if lang == "zh-CN" else (item.top_reason or item.top_reason_zh)


def _who(item: ActionItem) -> str:
    return f"{item.name} ({item.account_id})" if item.name and item.name != item.account_id else item.account_id


def _tier_counts(items: list[ActionItem]) -> list[tuple[str, int]]:
    counts = Counter(i.tier for i in items)
    return sorted(counts.items(), key=lambda kv: (-TIER_RANK.get(kv[0], -1), kv[0]))


class _View:
    """The words of one message, before a format escapes and lays them out."""

    def __init__(self, items: list[ActionItem], lang: str, link_base: str, run_id: str, now: dt.datetime,
                 playbooks: dict[str, Playbook]):
        self.items, self.lang, self.now, self.books = ordered(items), lang, now, playbooks
        self.link_base, self.run_id = link_base, run_id
        self.full = full_list_link(link_base, run_id)
        # no item with an MRR (a flat table's scores, a store with no MRR column): worded by customers
        self.has_mrr = any(i.mrr is not None for i in items)
        self.mrr = sum(i.mrr for i in items if i.mrr is not None)
        self.loss = sum(i.expected_loss for i in items if i.expected_loss is not None)
        self.as_of = max((i.as_of for i in items), default=None)

    def t(self, key: str, **kw: object) -> str:
        return text(self.lang, key, **kw)

    def title(self) -> str:
        return self.t("title", n=len(self.items))

    def summary(self) -> list[str]:
        """Counts per tier, then MRR at risk and expected loss, or the number of customers when no
        item has an MRR (plain words, nothing to escape)."""
        tiers = " · ".join(f"{tier_label(k, self.lang)} {n}" for k, n in _tier_counts(self.items))
        as_of = self.as_of.isoformat() if self.as_of else "—"
        totals = (self.t("summary", mrr=money(self.mrr), loss=money(self.loss), as_of=as_of) if self.has_mrr else
                  self.t("summary_no_mrr", n=len(self.items), as_of=as_of))
        return [tiers, totals]

    def todo(self) -> list[tuple[str, int, str, str]]:
        """(tier label, count, action, respond within) per tier present, worst first."""
        out = []
        for key, n in _tier_counts(self.items):
            book = self.books.get(key)
            if book is not None:
                out.append((tier_label(key, self.lang), n, action(book, self.lang), respond_within(book, self.lang)))
        return out

    def facts(self, item: ActionItem) -> list[str]:
        """Tier, health, MRR and expected loss (when any item has an MRR); the owner and due time are
        added by the caller, which escapes them."""
        facts = [tier_label(item.tier, self.lang), self.t("health", v=f"{item.health_score:.0f}")]
        if self.has_mrr:
            facts += [self.t("mrr", v=money(item.mrr)), self.t("loss", v=money(item.expected_loss))]
        return facts

    def owner(self, item: ActionItem) -> str:
        return item.owner or self.t("unassigned")

    def due(self, item: ActionItem) -> str:
        return due_text(item.due_at, self.now, self.lang)


# -- markdown (DingTalk, WeCom) ------------------------------------------------------------------------


def _md_line(v: _View, rank: int, item: ActionItem) -> str:
    why = reason(item, v.lang)
    parts = [*v.facts(item), v.t("owner", v=esc_md(v.owner(item))), v.due(item)]
    tail = f"  \n  {v.t('reason', v=esc_md(why))}" if why else ""
    return f"{rank}. **[{esc_md(_who(item))}]({url_md(account_link(item, v.link_base))})** · " \
           + " · ".join(parts) + tail


def _fit(head: str, lines: list[str], tail_for: Callable[[int], str], budget: int,
         size: Callable[[str], int]) -> tuple[str, int]:
    """``head`` and as many ``lines`` as fit in ``budget`` (measured by ``size``) with the tail for the
    lines left out; returns the text and how many lines were left out."""
    whole = "\n".join([head, *lines, tail_for(0)])
    if size(whole) <= budget:
        return whole, 0
    reserve = size(tail_for(len(lines))) + 1
    used, kept = size(head), []
    for line in lines:
        if used + size(line) + 1 + reserve > budget:
            break
        kept.append(line)
        used += size(line) + 1
    left = len(lines) - len(kept)
    return "\n".join([head, *kept, tail_for(left)]), left


def _markdown(v: _View) -> tuple[str, str]:
    """(title, markdown text) of a digest within ``MARKDOWN_MAX_BYTES``."""
    tiers, totals = v.summary()
    head = [f"### {v.title()}", f"**{tiers}**  ", totals, "", f"**{v.t('todo')}**"]
    head += ["- " + v.t("todo_line", label=f"**{label}**", n=n, act=act, within=within)
             for label, n, act, within in v.todo()]
    lines = [_md_line(v, k, item) for k, item in enumerate(v.items, 1)]

    def tail(left: int) -> str:
        more = v.t("more", n=left) + " · " if left else ""
        return f"\n{more}[{v.t('full')}]({url_md(v.full)})"

    body, _ = _fit("\n".join([*head, ""]), lines, tail, MARKDOWN_MAX_BYTES, lambda s: len(s.encode()))
    return v.title(), body


def _markdown_one(v: _View, item: ActionItem) -> tuple[str, str]:
    title = v.t("title_one", account=one_line(_who(item)))
    book = v.books.get(item.tier)
    why = reason(item, v.lang)
    lines = [f"### {v.t('title_one', account=esc_md(_who(item)))}", " · ".join(f"**{f}**" if k == 0 else f
                                                                              for k, f in enumerate(v.facts(item)))]
    if why:
        lines.append(v.t("reason", v=esc_md(why)))
    lines.append(f"{v.t('owner', v=esc_md(v.owner(item)))} · {v.due(item)}")
    if book is not None:
        lines.append(v.t("todo_one", act=action(book, v.lang), within=respond_within(book, v.lang)))
    lines.append(f"[{v.t('open')}]({url_md(account_link(item, v.link_base))})")
    return title, cut_bytes("  \n".join(lines), MARKDOWN_MAX_BYTES)


def _chat_body(webhook: Webhook, title: str, md: str) -> dict:
    if webhook.format == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": md}}
    return {"msgtype": "markdown", "markdown": {"content": md}}


# -- Slack ----------------------------------------------------------------------------------------------


def _section(mrkdwn: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn[:SLACK_SECTION_CHARS]}}


def _slack_line(v: _View, rank: int, item: ActionItem) -> str:
    why = reason(item, v.lang)
    link = f"<{url_slack(account_link(item, v.link_base))}|{esc_slack(_who(item))}>"
    parts = [*v.facts(item), v.t("owner", v=esc_slack(v.owner(item))), v.due(item)]
    return f"{rank}. *{link}* · " + " · ".join(parts) + (f"\n      _{v.t('reason', v=esc_slack(why))}_" if why else "")


def _slack(v: _View) -> dict:
    tiers, totals = v.summary()
    todo = "\n".join("• " + v.t("todo_line", label=f"*{label}*", n=n, act=act, within=within)
                     for label, n, act, within in v.todo())
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": v.title()[:150]}},
              _section(f"*{tiers}*\n{totals}"), _section(f"*{v.t('todo')}*\n{todo}"), {"type": "divider"}]
    used = sum(len(json.dumps(b, ensure_ascii=False)) for b in blocks)
    room = SLACK_MAX_BLOCKS - len(blocks) - 1  # the last block says how many are left out
    chunk: list[str] = []
    shown = 0
    for k, item in enumerate(v.items, 1):
        line = _slack_line(v, k, item)
        if used + len(line) + 1 > SLACK_TOTAL_CHARS:
            break
        if chunk and len("\n".join([*chunk, line])) > SLACK_SECTION_CHARS:
            if room <= 1:
                break
            blocks.append(_section("\n".join(chunk)))
            room -= 1
            chunk = []
        chunk.append(line)
        used += len(line) + 1
        shown = k
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    left = len(v.items) - shown
    more = f"{v.t('more', n=left)} · " if left else ""
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"{more}<{url_slack(v.full)}|{v.t('full')}>"}]})
    return {"text": f"{v.title()} · {tiers} · {totals}", "blocks": blocks, "unfurl_links": False}


def _slack_one(v: _View, item: ActionItem) -> dict:
    who = esc_slack(_who(item))
    book = v.books.get(item.tier)
    why = reason(item, v.lang)
    lines = [f"*<{url_slack(account_link(item, v.link_base))}|{who}>* · " + " · ".join(v.facts(item))]
    if why:
        lines.append(v.t("reason", v=esc_slack(why)))
    lines.append(f"{v.t('owner', v=esc_slack(v.owner(item)))} · {v.due(item)}")
    if book is not None:
        lines.append(v.t("todo_one", act=action(book, v.lang), within=respond_within(book, v.lang)))
    title = v.t("title_one", account=one_line(_who(item)))
    return {"text": esc_slack(title), "unfurl_links": False,
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
                       _section("\n".join(lines))]}


# -- generic JSON --------------------------------------------------------------------------------------


def _generic_item(v: _View, item: ActionItem) -> GenericItem:
    book = v.books.get(item.tier)
    due = as_utc(item.due_at) if item.due_at else None
    return GenericItem(
        account_id=item.account_id, name=item.name, health_score=item.health_score, tier=item.tier,
        tier_label=tier_label(item.tier, v.lang), top_reason=reason(item, v.lang), mrr=item.mrr,
        expected_loss=item.expected_loss, owner=item.owner, due_at=due, overdue=bool(due and due < as_utc(v.now)),
        as_of=item.as_of, link=account_link(item, v.link_base), task_id=item.task_id, alert_ids=list(item.alert_ids),
        action=action(book, v.lang) if book else None)


def _generic(v: _View, webhook: Webhook, kind: str) -> GenericMessage:
    shown = v.items[:GENERIC_MAX_ITEMS]
    return GenericMessage(
        type=kind, run_id=v.run_id, webhook=webhook.name, lang=v.lang, generated_at=as_utc(v.now),
        title=v.title() if kind == "digest" else v.t("title_one", account=one_line(_who(v.items[0]))),
        count=len(v.items), by_tier=dict(_tier_counts(v.items)),
        mrr_at_risk=v.mrr if v.has_mrr else None, expected_loss=v.loss if v.has_mrr else None,
        items=[_generic_item(v, i) for i in shown], more=len(v.items) - len(shown), full_list=v.full)


# -- messages -------------------------------------------------------------------------------------------


def _message(webhook: Webhook, payload: dict | GenericMessage, key: str, now: dt.datetime) -> Message:
    if isinstance(payload, GenericMessage):
        body = payload.model_dump_json(by_alias=True).encode()
    else:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": key,
               "User-Agent": "churnwatch"}
    msg = Message(webhook=webhook.name, url=webhook.url, body=body, headers=headers, idempotency_key=key)
    url, signed_headers = signed(msg, webhook, as_utc(now).timestamp())
    return dataclasses.replace(msg, url=url, headers=signed_headers)


def signed(message: Message, webhook: Webhook, now: float) -> tuple[str, dict[str, str]]:
    """The URL and headers to send ``message`` with at ``now`` (Unix seconds): DingTalk's URL and the
    generic signature headers made afresh; other messages as they are."""
    headers = dict(message.headers)
    if webhook.format == "generic" and webhook.secret:
        headers.update(signature_headers(webhook.secret, message.body, now))
    if webhook.format == "dingtalk" and webhook.secret:
        return dingtalk_signed_url(webhook.url, webhook.secret, int(now * 1000)), headers
    return (webhook.url if webhook.format == "dingtalk" else message.url), headers


def digest(webhook: Webhook, items: list[ActionItem], lang: str | None, link_base: str, run_id: str = "",
           now: dt.datetime | None = None, *, playbooks: dict[str, Playbook] | None = None) -> Message:
    """The run's ONE digest message for ``webhook`` (``lang`` None: the webhook's own), with an
    ``Idempotency-Key`` stable for the run and webhook. ``now`` (default the clock) decides what is
    overdue and signs the message.

    Raises:
        ValueError: no items (a run with nobody to act on sends no digest).
    """
    if not items:
        raise ValueError(f"a digest for webhook {webhook.name!r} needs at least one account; send none instead")
    now = now or dt.datetime.now(dt.UTC)
    v = _View(items, lang or webhook.lang, link_base, run_id, now, playbooks or default_playbooks())
    if webhook.format == "slack":
        payload: dict | GenericMessage = _slack(v)
    elif webhook.format in ("dingtalk", "wecom"):
        payload = _chat_body(webhook, *_markdown(v))
    else:
        payload = _generic(v, webhook, "digest")
    return _message(webhook, payload, digest_key(run_id, webhook.name), now)


def per_account(webhook: Webhook, item: ActionItem, lang: str | None, link_base: str, run_id: str = "",
                now: dt.datetime | None = None, *, playbooks: dict[str, Playbook] | None = None) -> Message:
    """One message about one account (for webhooks with ``per_account``); its ``Idempotency-Key``
    comes from the item's alerts (else the run and account), stable for the webhook."""
    now = now or dt.datetime.now(dt.UTC)
    v = _View([item], lang or webhook.lang, link_base, run_id, now, playbooks or default_playbooks())
    if webhook.format == "slack":
        payload: dict | GenericMessage = _slack_one(v, item)
    elif webhook.format in ("dingtalk", "wecom"):
        payload = _chat_body(webhook, *_markdown_one(v, item))
    else:
        payload = _generic(v, webhook, "account")
    key = alert_key(item.alert_ids, webhook.name, fallback=f"{run_id}|{item.account_id}")
    return _message(webhook, payload, key, now)
