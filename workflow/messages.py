"""What the workflow's parts hand each other: an account that needs action (``ActionItem``), a
message ready for one channel (``Message``) and the outcome of sending it (``Outcome``).

Alerts and tasks (``workflow.tasks``) produce action items; channels (``workflow.channels``)
turn a list of them into one digest ``Message`` per webhook, in the webhook's language and
format; ``workflow.send`` delivers a ``Message`` and returns an ``Outcome``; e-mails
(``workflow.email``) and sequences (``workflow.sequences``) use the same items.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class ActionItem:
    """One account that needs action, as a digest line, an e-mail or a task shows it."""

    account_id: str
    health_score: float
    tier: str  # core.vocabulary tier key
    as_of: dt.date
    top_reason: str | None = None  # worded in the item's language
    top_reason_zh: str | None = None
    mrr: float | None = None
    expected_loss: float | None = None  # MRR x churn probability
    owner: str | None = None  # the assignee's name, else the playbook's role
    due_at: dt.datetime | None = None  # UTC
    link: str | None = None  # the account's page in the workspace
    task_id: int | None = None
    alert_ids: tuple[str, ...] = ()
    name: str | None = None  # the account's display name, when the data has one


@dataclass(frozen=True)
class Message:
    """A payload ready to POST to one webhook: the body's bytes, the headers (content type,
    signature, ``Idempotency-Key``) and the key itself (stable across retries and runs)."""

    webhook: str  # the webhook's name in churnwatch.yaml
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery: ``delivered``; ``pending`` (worth another try later: a
    timeout, 5xx, 429 past the attempts); or ``failed`` for good (a 4xx other than 429, a URL
    that cannot be reached by design), with the reason in words."""

    status: DeliveryStatus
    attempts: int
    http_status: int | None = None
    reason: str | None = None
    retry_after: float | None = None  # seconds the receiver asked to wait, when it did
