"""Sending what the workflow queued: digests, per-account messages and escalations, one delivery row each.

Deliveries are queued by ``workflow.alerts.raise_alerts`` (one digest per webhook and run, in the
transaction that stores the run's alerts and tasks; the idempotency key is made of the run's
alert ids and the webhook's name, so a repeated run queues nothing twice) and by
``workflow.tasks.escalate_overdue``. ``send_pending`` sends them: the messages are built and
posted with no transaction open (neither DuckDB's nor the operational store's: a slow or dead
receiver holds no lock), each outcome marked in its own short transaction right after the
answer. A process killed between a receiver's answer and the mark sends that one message again
on the next run, with the same ``Idempotency-Key``, so the receiver can drop it. One
``httpx.Client`` and one ``send.RateLimiters`` serve a whole ``send_pending`` call.

* Per-account messages (webhooks with ``per_account: true``) are built at send time: when a
  digest for such a webhook is sent, one ``alert`` delivery per account in it is queued (key
  ``signing.alert_key`` of the account's alerts and the webhook, so a later digest naming the
  same alerts queues none again) and sent in the same call, with the retries of any delivery.
* Late webhooks (``catch_up``, at the start of every ``send_pending``): a configured webhook that
  has never been delivered anything gets, once, one digest of the open tasks whose alerts fired
  in the last ``operations.late_webhook_days`` days and that no delivery to it covers yet.
* Resending (``resend``, ``churnwatch alerts --resend``): one new digest per webhook of the open
  alerts (fired since a date), under a NEW idempotency key: a receiver that got the first copy
  and lost it would otherwise drop the resend as a duplicate.
* ``send_one``: a sequence's webhook step, sent at once (recorded as a ``sequence`` delivery;
  the same key is never sent twice).
* ``email_escalations``: level-1 escalations also e-mail the lead (``workflow.email``) when
  e-mail is enabled, each recorded in the e-mails table against the account.

Message building and posting are ``workflow.channels.digest`` / ``per_account`` and
``workflow.send.post(message, webhook) -> Outcome``; both can be passed in (tests).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core.errors import ConfigError
from core.settings import Settings, Webhook
from workflow import channels, send
from workflow.alerts import ALERTS
from workflow.audit import record
from workflow.db import write
from workflow.messages import ActionItem, Message, Outcome
from workflow.people import user_row
from workflow.send import RateLimiters
from workflow.signing import alert_key
from workflow.tasks import ACTIVE, DELIVERIES, SYSTEM, TASKS, actionable, aware, enqueue, get_task, short_hash, utcnow

log = logging.getLogger(__name__)

Post = Callable[[Message, Webhook], Outcome]
Digest = Callable[[Webhook, list[ActionItem], str, str], Message]
#: waits before the next try of a delivery left pending, by attempts so far (then the last one)
BACKOFF_MINUTES = (1, 5, 15, 60)


def pending(engine: Engine, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Deliveries due to be sent (pending, next attempt not in the future), oldest first."""
    now = aware(now) or utcnow()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(DELIVERIES).where(DELIVERIES.c.status == "pending",
                                                        DELIVERIES.c.next_attempt_at <= now)
                            .order_by(DELIVERIES.c.created_at, DELIVERIES.c.id)).mappings().all()
    return [dict(r) for r in rows]


def mark(engine: Engine, delivery_id: int, outcome: Outcome, body: bytes | None, now: dt.datetime) -> None:
    """Record one send's outcome in its own transaction: delivered; failed for good with the reason;
    or still pending, the next attempt after the receiver's Retry-After or the backoff."""
    with write(engine) as conn:
        row = conn.execute(sa.select(DELIVERIES).where(DELIVERIES.c.id == delivery_id).with_for_update()
                           ).mappings().one()
        attempts = row["attempts"] + max(outcome.attempts, 1)
        values: dict[str, Any] = {"status": outcome.status, "attempts": attempts, "http_status": outcome.http_status,
                                  "last_error": None if outcome.status == "delivered" else outcome.reason}
        if body is not None and row["payload"] is None:
            values["payload"] = body.decode("utf-8", errors="replace")
        if outcome.status == "delivered":
            values["delivered_at"] = now
        elif outcome.status == "pending":
            wait = dt.timedelta(minutes=BACKOFF_MINUTES[min(row["attempts"], len(BACKOFF_MINUTES) - 1)])
            if outcome.retry_after:
                wait = max(wait, dt.timedelta(seconds=outcome.retry_after))
            values["next_attempt_at"] = now + wait
        conn.execute(DELIVERIES.update().where(DELIVERIES.c.id == delivery_id).values(**values))


def _run_id(key: str) -> str:
    """The run part of a digest key (``digest-<run>-<hook>``; the whole key otherwise)."""
    parts = key.split("-")
    return parts[1] if len(parts) == 3 and parts[0] in ("digest", "resend", "catchup") else key


def _covered(conn: Connection, webhook: str) -> set[int]:
    rows = conn.execute(sa.select(DELIVERIES.c.task_ids).where(DELIVERIES.c.webhook == webhook)).scalars().all()
    return {int(t) for r in rows for t in json.loads(r)}


def catch_up(engine: Engine, settings: Settings, now: dt.datetime | None = None) -> list[str]:
    """Queue the late-webhook digest (see the module's docstring); returns the webhooks it was queued for."""
    now = aware(now) or utcnow()
    days = settings.operations.late_webhook_days
    if not days or not settings.webhooks:
        return []
    since = (now - dt.timedelta(days=days)).date()
    queued = []
    with write(engine) as conn:
        for hook in settings.webhooks:
            got = conn.execute(sa.select(sa.func.count()).select_from(DELIVERIES).where(
                DELIVERIES.c.webhook == hook.name, sa.or_(DELIVERIES.c.status == "delivered",
                                                          DELIVERIES.c.idempotency_key.like("catchup-%")))).scalar()
            if got:
                continue
            rows = conn.execute(sa.select(ALERTS.c.id, ALERTS.c.task_id).select_from(
                ALERTS.join(TASKS, ALERTS.c.task_id == TASKS.c.id)).where(
                ALERTS.c.fired_as_of >= since, TASKS.c.status.in_(ACTIVE))).all()
            covered = _covered(conn, hook.name)
            rows = [r for r in rows if r.task_id not in covered]
            if not rows:
                continue
            tasks = sorted({r.task_id for r in rows})
            key = f"catchup-{short_hash(','.join(map(str, tasks)))}-{short_hash(hook.name)[:8]}"
            if enqueue(conn, kind="digest", webhook=hook.name, key=key, lang=hook.lang or "en", now=now,
                       alert_ids=sorted({r.id for r in rows}), task_ids=tasks):
                queued.append(hook.name)
    return queued


def resend(engine: Engine, settings: Settings, *, since: dt.date | None = None, webhook: str | None = None,
           now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Queue the open alerts again (fired on or after ``since``; all open ones without) as one digest
    per webhook (``webhook``: only that one), under a new idempotency key; returns the deliveries
    queued (webhook, key, tasks). Raises ``ConfigError`` naming an unknown webhook."""
    now = aware(now) or utcnow()
    hooks = settings.webhooks
    if webhook is not None:
        hooks = [h for h in hooks if h.name == webhook]
        if not hooks:
            names = ", ".join(h.name for h in settings.webhooks) or "none configured"
            raise ConfigError(f"unknown webhook {webhook!r} (churnwatch.yaml webhooks: {names})")
    out = []
    with write(engine) as conn:
        query = sa.select(ALERTS.c.id, ALERTS.c.task_id).select_from(
            ALERTS.join(TASKS, ALERTS.c.task_id == TASKS.c.id)).where(TASKS.c.status.in_(ACTIVE))
        if since is not None:
            query = query.where(ALERTS.c.fired_as_of >= since)
        rows = conn.execute(query).all()
        if not rows:
            return []
        tasks, ids = sorted({r.task_id for r in rows}), sorted({r.id for r in rows})
        stamp = short_hash(f"{now.isoformat()}|{','.join(ids)}")
        for hook in hooks:
            key = f"resend-{stamp}-{short_hash(hook.name)[:8]}"
            if enqueue(conn, kind="digest", webhook=hook.name, key=key, lang=hook.lang or "en", now=now,
                       alert_ids=ids, task_ids=tasks):
                out.append({"webhook": hook.name, "key": key, "tasks": len(tasks)})
    return out


def _queue_per_account(engine: Engine, hook: Webhook, items: list[ActionItem], now: dt.datetime) -> int:
    with write(engine) as conn:
        return sum(enqueue(conn, kind="alert", webhook=hook.name, lang=hook.lang or "en", now=now,
                           key=alert_key(item.alert_ids, hook.name, fallback=f"task|{item.task_id}"),
                           alert_ids=item.alert_ids, task_ids=[item.task_id]) for item in items)


def send_pending(engine: Engine, settings: Settings, *, post: Post | None = None, digest: Digest | None = None,
                 now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due delivery (``pending``), after ``catch_up``; returns counts of delivered, pending,
    failed and empty.

    A delivery to a webhook no longer configured is marked failed naming it. The message is built
    when it is sent, from the tasks it covers that are still open (none left: nothing to say, the
    delivery is closed as delivered without a post).
    """
    now = aware(now) or utcnow()
    catch_up(engine, settings, now)
    hooks = {h.name: h for h in settings.webhooks}
    counts = {"delivered": 0, "pending": 0, "failed": 0, "empty": 0}
    client = httpx.Client(follow_redirects=False)
    limiters = RateLimiters()
    if post is None:
        def post(message: Message, hook: Webhook) -> Outcome:
            return send.post(message, hook, client=client, limiters=limiters)
    seen: set[int] = set()
    try:
        while True:
            rows = [r for r in pending(engine, now) if r["id"] not in seen]
            if not rows:
                break
            for row in rows:
                seen.add(row["id"])
                _send_row(engine, settings, row, hooks.get(row["webhook"]), post, digest, now, counts)
    finally:
        client.close()
    return counts


def named(items: list[ActionItem], settings: Settings) -> list[ActionItem]:
    """``items`` with each account's display name from the data source (``email.name_column``; the
    workspace's and `explain`'s): a probe's digests said ``"name": null`` of companies the data names."""
    from workflow.facts import display_name

    return [i if i.name else dataclasses.replace(i, name=display_name(settings, i.account_id)) for i in items]


def _send_row(engine: Engine, settings: Settings, row: dict[str, Any], hook: Webhook | None, post: Post,
              digest: Digest | None, now: dt.datetime, counts: dict[str, int]) -> None:
    if hook is None:
        mark(engine, row["id"], Outcome("failed", 0, reason=f"webhook {row['webhook']!r} is not configured "
                                        "(churnwatch.yaml webhooks)"), None, now)
        counts["failed"] += 1
        return
    link_base = settings.operations.link_base
    items = named(actionable(engine, task_ids=json.loads(row["task_ids"]), lang=row["lang"], link_base=link_base),
                  settings)
    if not items:
        mark(engine, row["id"], Outcome("delivered", 0, reason="nothing left to act on"), None, now)
        counts["empty"] += 1
        return
    key = row["idempotency_key"]
    if row["kind"] in ("alert", "sequence"):
        message = channels.per_account(hook, items[0], row["lang"], link_base, "", now)
    elif digest is not None:
        message = digest(hook, items, row["lang"], link_base)
    else:
        message = channels.digest(hook, items, row["lang"], link_base, _run_id(key), now)
    message = dataclasses.replace(message, idempotency_key=key, headers={**message.headers, "Idempotency-Key": key})
    outcome = post(message, hook)
    mark(engine, row["id"], outcome, message.body, now)
    counts[outcome.status] += 1
    if outcome.status != "delivered":
        log.warning("%s delivery %s to %s %s: %s", row["kind"], row["id"], hook.name, outcome.status, outcome.reason)
    if row["kind"] == "digest" and hook.per_account:
        _queue_per_account(engine, hook, items, now)


def send_one(engine: Engine, settings: Settings, *, webhook: str, account_id: str, key: str,
             now: dt.datetime | None = None) -> Outcome:
    """A sequence's webhook step: one per-account message about ``account_id`` to ``webhook`` now,
    recorded as a ``sequence`` delivery under ``key`` (a key already delivered is not sent again;
    one still pending is tried again). Unknown webhook or an account with no open task: failed,
    with the reason."""
    now = aware(now) or utcnow()
    hook = next((h for h in settings.webhooks if h.name == webhook), None)
    if hook is None:
        return Outcome("failed", 0, reason=f"webhook {webhook!r} is not configured (churnwatch.yaml webhooks)")
    with engine.connect() as conn:
        task_ids = conn.execute(sa.select(TASKS.c.id).where(TASKS.c.account_id == str(account_id),
                                                            TASKS.c.status.in_(ACTIVE))).scalars().all()
    items = named(actionable(engine, task_ids=list(task_ids), lang=hook.lang or "en",
                             link_base=settings.operations.link_base), settings)
    if not items:
        return Outcome("failed", 0, reason=f"account {account_id} has no open task to tell {webhook} about")
    key = f"seq-{short_hash(key)}-{short_hash(hook.name)[:8]}"
    with write(engine) as conn:
        enqueue(conn, kind="sequence", webhook=hook.name, key=key, lang=hook.lang or "en", now=now,
                alert_ids=items[0].alert_ids, task_ids=[items[0].task_id])
        row = conn.execute(sa.select(DELIVERIES).where(DELIVERIES.c.idempotency_key == key)).mappings().one()
    if row["status"] == "delivered":
        return Outcome("delivered", 0, reason="already delivered")
    message = channels.per_account(hook, items[0], hook.lang, settings.operations.link_base, "", now)
    message = dataclasses.replace(message, idempotency_key=key, headers={**message.headers, "Idempotency-Key": key})
    outcome = send.post(message, hook)
    mark(engine, row["id"], outcome, message.body, now)
    return outcome


def email_escalations(engine: Engine, settings: Settings, events: list[dict[str, Any]],
                      now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """E-mail the lead of every level-1 escalation (``tasks.escalate_overdue``'s events) when e-mail
    is enabled and the lead has an address; each e-mail recorded (template ``escalation``) against
    the account, sent, failed or skipped with the reason. Returns the recorded rows."""
    from workflow.email import EMAILS, SendError, deliver

    now = aware(now) or utcnow()
    es = settings.email
    out = []
    for event in events:
        if event["level"] != 1 or event.get("to_user_id") is None:
            continue
        with engine.connect() as conn:
            lead = user_row(conn, event["to_user_id"]) or {}
            task = get_task(engine, event["task_id"], now)
        address = lead.get("email")
        subject = (f"Overdue retention task #{task['id']}: {task['account_id']} / "
                   f"逾期挽留任务 #{task['id']}：{task['account_id']}")
        due = task["due_at"]
        link = f"{settings.operations.link_base.rstrip('/')}/workflow/tasks/{task['id']}"
        text = (f"Hello {lead.get('name') or ''},\n\nThe retention task #{task['id']} for account "
                f"{task['account_id']} (tier {task['tier']}, owner {task['owner']}) was due {due} and is "
                f"still {task['status']}.\nAction: {task['action']}\n{link}\n\n"
                f"您好，账户 {task['account_id']} 的挽留任务 #{task['id']}（负责人 {task['owner']}）已于 {due} 到期，"
                f"目前状态为 {task['status']}。\n行动：{task['action_zh'] or task['action']}\n{link}\n")
        status, error, message_id = "sent", None, None
        if not es.enabled:
            status, error = "skipped", "e-mail is not enabled (email.enabled in churnwatch.yaml)"
        elif not address:
            status, error = "failed", f"the lead {lead.get('name')!r} has no e-mail address (churnwatch users)"
        else:
            msg = EmailMessage()
            msg["Subject"], msg["From"], msg["To"] = subject, es.sender, address
            msg["Date"] = format_datetime(now)
            msg["Message-ID"] = message_id = make_msgid(domain=es.sender.rpartition("@")[2] or "localhost")
            msg.set_content(text, charset="utf-8")
            try:
                deliver(msg, es)
            except SendError as exc:
                status, error = "failed", str(exc)
        row = {"account_id": task["account_id"], "template": "escalation", "lang": "en", "to_addr": address,
               "subject": subject, "message_id": message_id, "status": status, "error": error, "sent_at": now,
               "actor": SYSTEM, "sequence": None}
        with write(engine) as conn:
            row["id"] = conn.execute(EMAILS.insert().values(**row)).inserted_primary_key[0]
            record(conn, actor=SYSTEM, entity="task", entity_id=task["id"], action=f"escalation email {status}",
                   after={k: v for k, v in row.items() if k != "sent_at"}, at=now)
        out.append(row)
    return out


def deliveries(engine: Engine) -> list[dict[str, Any]]:
    """Every delivery, oldest first (``alert_ids``/``task_ids`` decoded)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(DELIVERIES).order_by(DELIVERIES.c.id)).mappings().all()
    return [{**dict(r), "alert_ids": json.loads(r["alert_ids"]), "task_ids": json.loads(r["task_ids"])}
            for r in rows]
