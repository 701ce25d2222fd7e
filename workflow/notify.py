"""Sending what the workflow queued: digests and escalations, one delivery row each.

Deliveries are queued by ``workflow.alerts.raise_alerts`` (one digest per webhook and run, in the
transaction that stores the run's alerts and tasks; the idempotency key is made of the run's
alert ids and the webhook's name, so a repeated run queues nothing twice) and by
``workflow.tasks.escalate_overdue``. ``send_pending`` sends them: the messages are built and
posted with no transaction open (neither DuckDB's nor the operational store's: a slow or dead
receiver holds no lock), each outcome marked in its own short transaction right after the
answer. A process killed between a receiver's answer and the mark sends that one message again
on the next run, with the same ``Idempotency-Key``, so the receiver can drop it.

Message building and posting are ``workflow.channels.digest(webhook, items, lang, link_base)``
and ``workflow.send.post(message, webhook) -> Outcome``; both can be passed in (tests).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.settings import Settings, Webhook
from workflow.db import write
from workflow.messages import ActionItem, Message, Outcome
from workflow.tasks import DELIVERIES, actionable, aware, utcnow

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


def send_pending(engine: Engine, settings: Settings, *, post: Post | None = None, digest: Digest | None = None,
                 now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due delivery (``pending``); returns counts of delivered, pending and failed.

    A delivery to a webhook no longer configured is marked failed naming it. The message is built
    when it is sent, from the tasks it covers that are still open (none left: nothing to say, the
    delivery is closed as delivered without a post).
    """
    now = aware(now) or utcnow()
    hooks = {h.name: h for h in settings.webhooks}
    counts = {"delivered": 0, "pending": 0, "failed": 0, "empty": 0}
    for row in pending(engine, now):
        hook = hooks.get(row["webhook"])
        if hook is None:
            mark(engine, row["id"], Outcome("failed", 0, reason=f"webhook {row['webhook']!r} is not configured "
                                            "(churnwatch.yaml webhooks)"), None, now)
            counts["failed"] += 1
            continue
        items = actionable(engine, task_ids=json.loads(row["task_ids"]), lang=row["lang"],
                           link_base=settings.operations.link_base)
        if not items:
            mark(engine, row["id"], Outcome("delivered", 0, reason="nothing left to act on"), None, now)
            counts["empty"] += 1
            continue
        if post is None:
            from workflow.send import post
        if digest is None:
            from workflow.channels import digest
        message = digest(hook, items, row["lang"], settings.operations.link_base)
        key = row["idempotency_key"]
        message = dataclasses.replace(message, idempotency_key=key, headers={**message.headers, "Idempotency-Key": key})
        outcome = post(message, hook)
        mark(engine, row["id"], outcome, message.body, now)
        counts[outcome.status] += 1
        if outcome.status != "delivered":
            log.warning("%s delivery %s to %s %s: %s", row["kind"], row["id"], hook.name, outcome.status,
                        outcome.reason)
    return counts


def deliveries(engine: Engine) -> list[dict[str, Any]]:
    """Every delivery, oldest first (``alert_ids``/``task_ids`` decoded)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(DELIVERIES).order_by(DELIVERIES.c.id)).mappings().all()
    return [{**dict(r), "alert_ids": json.loads(r["alert_ids"]), "task_ids": json.loads(r["task_ids"])}
            for r in rows]
