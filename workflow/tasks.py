"""Retention tasks: what a person does about an account an alert raised, and the deliveries
(digests, escalations) that tell people about it. Over 400 lines: the lifecycle, its due
times, escalation and the read side (filters, action items) share one table and its rules.

* Lifecycle: ``open -> plan_drafted -> approved -> action_assigned -> done``, or ``cancelled``
  (with a reason) from any state that is not final. ``transition`` refuses anything else with
  :class:`IllegalTransition` naming the allowed steps (HTTP 409).
* One task per account and episode, and never two open tasks for one account (a partial
  unique index): a new alert on an account with an open task updates it (tier, due time, the
  alert ids, the facts) instead of adding one (``open_or_update``).
* The assignee is a person: the account's CSM (``accounts.csm``) mapped to a user by CRM name or
  e-mail (a CSM seen for the first time becomes a user, role csm). The due time comes from the
  tier's playbook (``respond_within_hours``), counted in working time when the playbook says
  "working days" (``TaskSettings``).
* Escalation (``escalate_overdue``): level 1 notifies the assignee's team lead, level 2 the
  lead's manager or the configured channel; each level exactly once (a compare-and-set on
  ``escalation_level`` inside the write transaction).
* Every change is in the audit log (who, when, before, after) in the same transaction; writers
  take the row ``FOR UPDATE`` (SQLite: ``BEGIN IMMEDIATE``) and bump ``version``, and a caller
  that read an older ``version`` gets :class:`VersionConflict` instead of overwriting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.parse
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core.errors import ChurnwatchError, ConfigError
from core.settings import Playbook, Settings, TaskSettings
from core.vocabulary import TIER_KEYS, tier_label
from workflow.audit import record
from workflow.db import METADATA, write
from workflow.messages import ActionItem
from workflow.people import USERS, find_user, team_channel, team_lead, user_for_csm, user_row

STATUSES = ("open", "plan_drafted", "approved", "action_assigned", "done", "cancelled")
FINAL = ("done", "cancelled")
ACTIVE = tuple(s for s in STATUSES if s not in FINAL)
#: status -> the statuses it may move to
ALLOWED = {"open": ("plan_drafted", "cancelled"), "plan_drafted": ("approved", "cancelled"),
           "approved": ("action_assigned", "cancelled"), "action_assigned": ("done", "cancelled"),
           "done": (), "cancelled": ()}
#: the verb people use (CLI sub-command, HTTP ``action``) -> the status it moves a task to
ACTIONS = {"plan": "plan_drafted", "approve": "approved", "assign": "action_assigned", "done": "done",
           "cancel": "cancelled"}
VERB = {status: verb for verb, status in ACTIONS.items()}
SYSTEM = "churnwatch"
OPEN_ONLY = sa.text("status NOT IN ('done', 'cancelled')")

TASKS = sa.Table(
    "tasks", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(200), nullable=False),
    sa.Column("episode_key", sa.String(200), nullable=False),
    sa.Column("alert_ids", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("status", sa.String(20), nullable=False, server_default="open"),
    sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("owner_role", sa.String(200)),  # the playbook's owner, shown when there is no assignee
    sa.Column("tier", sa.String(20), nullable=False),
    sa.Column("action", sa.Text),  # the playbook's action, English
    sa.Column("action_zh", sa.Text),
    sa.Column("due_at", sa.DateTime(timezone=True)),
    sa.Column("plan", sa.Text),
    sa.Column("approved_by", sa.String(200)),
    sa.Column("next_action", sa.Text),
    sa.Column("cancel_reason", sa.Text),
    sa.Column("escalation_level", sa.Integer, nullable=False, server_default="0"),
    sa.Column("escalated_at", sa.DateTime(timezone=True)),
    sa.Column("as_of", sa.Date),  # the facts of the task's latest alert
    sa.Column("health_score", sa.Integer),
    sa.Column("churn_probability", sa.Float),
    sa.Column("mrr", sa.Float),
    sa.Column("expected_loss", sa.Float),
    sa.Column("top_reason_en", sa.Text),
    sa.Column("top_reason_zh", sa.Text),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("account_id", "episode_key", name="uq_tasks_account_id"),
    sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
    sa.Index("uq_tasks_open_account", "account_id", unique=True, sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY),
    sa.Index("ix_tasks_status", "status"),
)

DELIVERY_KINDS = ("digest", "alert", "email", "escalation", "sequence")
DELIVERIES = sa.Table(
    "deliveries", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("webhook", sa.String(200), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("http_status", sa.Integer),
    sa.Column("payload", sa.Text),
    sa.Column("lang", sa.String(10), nullable=False, server_default="en"),
    sa.Column("alert_ids", sa.Text, nullable=False, server_default="[]"),  # JSON lists
    sa.Column("task_ids", sa.Text, nullable=False, server_default="[]"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(f"kind IN ({', '.join(repr(k) for k in DELIVERY_KINDS)})", name="kind"),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    sa.Index("ix_deliveries_status", "status"),
)


class TaskError(ChurnwatchError):
    """A task request that cannot be done; ``status_code`` is its HTTP status."""

    status_code = 422


class TaskNotFound(TaskError):
    status_code = 404


class IllegalTransition(TaskError):
    status_code = 409


class VersionConflict(TaskError):
    status_code = 409


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as UTC-aware (SQLite gives them back naive)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def insert_ignore(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping any whose unique key is already stored; returns rows inserted."""
    if not rows:
        return 0
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the two supported back ends
        raise ConfigError(f"the operational store supports SQLite and PostgreSQL, not {name}")
    done = 0
    for row in rows:
        done += conn.execute(insert(table).values(**row).on_conflict_do_nothing()).rowcount or 0
    return done


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def enqueue(conn: Connection, *, kind: str, webhook: str, key: str, lang: str = "en", now: dt.datetime,
            alert_ids: list[str] | tuple = (), task_ids: list[int] | tuple = ()) -> bool:
    """One pending delivery (idempotent on ``key``), inside the caller's transaction; True when new."""
    return insert_ignore(conn, DELIVERIES, [dict(
        kind=kind, webhook=webhook, idempotency_key=key, status="pending", attempts=0, lang=lang,
        alert_ids=json.dumps(sorted(alert_ids)), task_ids=json.dumps(sorted(int(t) for t in task_ids)),
        created_at=now, next_attempt_at=now)]) == 1


# --- due times ----------------------------------------------------------------------------

def counts_working_days(playbook: Playbook) -> bool:
    """True when the playbook's deadline is said in working days."""
    text = playbook.respond_within.lower()
    return "working day" in text or "business day" in text or "工作日" in text


def due_time(playbook: Playbook, start: dt.datetime, working: TaskSettings | None = None) -> dt.datetime | None:
    """When a task opened at ``start`` for ``playbook`` is due (UTC): ``respond_within_hours`` after
    ``start``; for a working-days playbook, ``respond_within_hours / 24`` working days, each the
    working window of a working day (``TaskSettings``). None when the playbook sets no deadline."""
    hours = playbook.respond_within_hours
    start = aware(start)
    if hours is None:
        return None
    if not counts_working_days(playbook):
        return start + dt.timedelta(hours=hours)
    working = working or TaskSettings()
    if working.day_end_hour <= working.day_start_hour:
        raise ConfigError(f"tasks.day_end_hour {working.day_end_hour} must be after tasks.day_start_hour "
                          f"{working.day_start_hour}")
    left = dt.timedelta(hours=hours / 24 * (working.day_end_hour - working.day_start_hour))
    t = start
    for _ in range(3660):  # ten years of days: a deadline beyond that is a configuration mistake
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        opens, closes = day + dt.timedelta(hours=working.day_start_hour), day + dt.timedelta(hours=working.day_end_hour)
        if t.weekday() in working.working_days and t < closes:
            begin = max(t, opens)
            if closes - begin >= left:
                return begin + left
            left -= closes - begin
        t = day + dt.timedelta(days=1)
    raise ConfigError("tasks: the working time never reaches the playbook's deadline")


# --- raising: one open task per account ---------------------------------------------------

FACTS = ("as_of", "health_score", "churn_probability", "mrr", "expected_loss", "top_reason_en", "top_reason_zh")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A task row as JSON-able values (audit entries, API answers)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, dt.datetime):
            v = aware(v).isoformat()
        elif isinstance(v, dt.date):
            v = v.isoformat()
        out[k] = v
    if isinstance(row.get("alert_ids"), str):
        out["alert_ids"] = json.loads(row["alert_ids"])
    return out


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict, dict]:
    keys = [k for k in after if k not in ("version", "updated_at") and before.get(k) != after[k]]
    return _public({k: before.get(k) for k in keys}), _public({k: after[k] for k in keys})


def refresh_tasks(conn: Connection, latest: list[dict[str, Any]], newest: dt.date, now: dt.datetime,
                  actor: str = SYSTEM, lapsed: dict[str, dt.date] | None = None) -> dict[str, int]:
    """The active tasks against each account's latest score, inside the caller's write transaction (after a
    scoring run's alerts). ``latest``: account_id, as_of, tier and the ``FACTS`` of each account's latest
    score; ``newest``: the newest scoring date. A probe's team found a task "High risk, executive visit" on
    an account at health 98, and one open for an account that had left:

    * an account the newest run did not score is no longer a customer: its task is cancelled, saying so; unless
      it is in ``lapsed`` (account -> the day its term ended, within the grace period before the run): a late
      renewal still keeps it, so its task stays as it is (the API and the workspace call it lapsed);
    * an untouched (``open``) task whose account is healthy at a newer score is cancelled as recovered;
    * otherwise a newer score's tier and figures replace the task's (its action and due time stay: the
      team's plan is theirs).

    Audited as ``churnwatch``. Returns the counts (``cancelled_gone``, ``cancelled_recovered``, ``refreshed``,
    ``kept_lapsed``).
    """
    by_account = {r["account_id"]: r for r in latest}
    lapsed = lapsed or {}
    counts = {"cancelled_gone": 0, "cancelled_recovered": 0, "refreshed": 0, "kept_lapsed": 0}
    rows = conn.execute(sa.select(TASKS).where(TASKS.c.status.in_(ACTIVE))).mappings().all()
    for row in (dict(r) for r in rows):
        score = by_account.get(row["account_id"])
        if score is None:
            continue
        seen = score["as_of"]
        values: dict[str, Any]
        if seen < newest and row["account_id"] in lapsed:
            counts["kept_lapsed"] += 1
            continue
        if seen < newest:
            values = {"status": "cancelled", "closed_at": now,
                      "cancel_reason": f"no longer a customer: not scored by the run of {newest} (last scored {seen})"}
            counts["cancelled_gone"] += 1
        elif row["as_of"] is not None and seen <= row["as_of"]:
            continue
        elif row["status"] == "open" and score["tier"] == TIER_KEYS[0]:
            values = {"status": "cancelled", "closed_at": now, "tier": score["tier"],
                      "cancel_reason": f"recovered: {tier_label(score['tier'], 'en').lower()} at the score of {seen}",
                      **{k: score.get(k) for k in FACTS}}
            counts["cancelled_recovered"] += 1
        else:
            values = {"tier": score["tier"], **{k: score.get(k) for k in FACTS}}
            counts["refreshed"] += 1
        values.update(version=row["version"] + 1, updated_at=now)
        conn.execute(TASKS.update().where(TASKS.c.id == row["id"]).values(**values))
        before, after = _changed(row, values)
        record(conn, actor=actor, entity="task", entity_id=row["id"],
               action="cancel" if values.get("status") == "cancelled" else "refresh", before=before, after=after,
               at=now)
    return counts


def open_or_update(conn: Connection, alert: dict[str, Any], settings: Settings, now: dt.datetime,
                   actor: str = SYSTEM) -> int:
    """The task of an alert, inside the caller's write transaction: the account's open task
    updated (alert ids, tier, the earlier due time, the newer facts), else a new task assigned
    to the account's CSM. ``alert``: id, account_id, tier, episode_start, fired_as_of, csm and
    the facts (health_score, churn_probability, mrr, expected_loss, top_reason_en/zh)."""
    book = settings.playbooks[alert["tier"]]
    due = due_time(book, now, settings.tasks)
    facts = {k: alert.get(k) for k in FACTS if k != "as_of"}
    facts["as_of"] = alert.get("facts_as_of") or alert["fired_as_of"]  # the date of the figures
    current = conn.execute(sa.select(TASKS).where(TASKS.c.account_id == str(alert["account_id"]),
                                                  TASKS.c.status.in_(ACTIVE)).with_for_update()).mappings().first()
    if current is not None:
        current = dict(current)
        ids = json.loads(current["alert_ids"])
        if alert["id"] in ids:
            return current["id"]
        old_due = aware(current["due_at"])
        values = {"alert_ids": json.dumps(sorted({*ids, alert["id"]})),
                  "due_at": min(d for d in (old_due, due) if d is not None) if (old_due or due) else None}
        if current["as_of"] is None or facts["as_of"] >= current["as_of"]:
            values.update(facts, tier=alert["tier"], action=book.action_en, action_zh=book.action_zh,
                          owner_role=book.owner)
        values.update(version=current["version"] + 1, updated_at=now)
        conn.execute(TASKS.update().where(TASKS.c.id == current["id"]).values(**values))
        before, after = _changed({**current, "due_at": old_due}, values)
        record(conn, actor=actor, entity="task", entity_id=current["id"], action="update", before=before,
               after=after, at=now)
        return current["id"]
    values = dict(account_id=str(alert["account_id"]), episode_key=str(alert["id"]),
                  alert_ids=json.dumps([alert["id"]]), status="open",
                  assignee_id=user_for_csm(conn, alert.get("csm"), actor), owner_role=book.owner, tier=alert["tier"],
                  action=book.action_en, action_zh=book.action_zh, due_at=due, escalation_level=0, version=1,
                  created_at=now, updated_at=now, **facts)
    task_id = conn.execute(TASKS.insert().values(**values)).inserted_primary_key[0]
    record(conn, actor=actor, entity="task", entity_id=task_id, action="create", after=_public(values), at=now)
    return task_id


def open_task(engine: Engine, settings: Settings, *, account_id: str, tier: str, action: str | None, key: str,
              now: dt.datetime | None = None, actor: str = SYSTEM, csm: str | None = None) -> int:
    """A task that is not an alert's (a sequence's ``task`` step): the account's open task when it has
    one (one open task per account; the step is noted in its audit log), else a new one with
    ``action`` (default the tier's playbook action), assigned like an alert's: to the user of the
    account's CSM (``csm``, its CRM name or e-mail; unassigned when the account has none). ``key`` is the
    task's episode key: the same key on the same account returns the same task, so a repeated
    step adds nothing. Returns the task id."""
    now = aware(now) or utcnow()
    if tier not in settings.playbooks:
        raise TaskError(f"unknown tier {tier!r}: one of {', '.join(settings.playbooks)}")
    book = settings.playbooks[tier]
    with write(engine) as conn:
        same = conn.execute(sa.select(TASKS.c.id).where(TASKS.c.account_id == str(account_id),
                                                        TASKS.c.episode_key == key)).first()
        if same is not None:
            return same.id
        current = conn.execute(sa.select(TASKS.c.id).where(TASKS.c.account_id == str(account_id),
                                                           TASKS.c.status.in_(ACTIVE)).with_for_update()).first()
        if current is not None:
            record(conn, actor=actor, entity="task", entity_id=current.id, action="note",
                   after={"step": key, "action": action}, at=now)
            return current.id
        values = dict(account_id=str(account_id), episode_key=key, alert_ids="[]", status="open",
                      assignee_id=user_for_csm(conn, csm, actor), owner_role=book.owner, tier=tier,
                      action=action or book.action_en, action_zh=action or book.action_zh,
                      due_at=due_time(book, now, settings.tasks), escalation_level=0, version=1,
                      created_at=now, updated_at=now, as_of=now.date())
        task_id = conn.execute(TASKS.insert().values(**values)).inserted_primary_key[0]
        record(conn, actor=actor, entity="task", entity_id=task_id, action="create", after=_public(values), at=now)
        return task_id


# --- people's changes ------------------------------------------------------------------------

def _target(action: str) -> str:
    if action in ACTIONS:
        return ACTIONS[action]
    if action in STATUSES:
        return action
    raise TaskError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")


def allowed_words(status: str) -> str:
    nxt = ALLOWED[status]
    return ", ".join(f"{s} ({VERB[s]})" for s in nxt) if nxt else f"none ({status} is final)"


def transition(engine: Engine, task_id: int, action: str, actor: str, *, text: str | None = None,
               to: str | None = None, next_action: str | None = None, reason: str | None = None,
               version: int | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Move a task one step: ``plan`` (``text``: the retention plan), ``approve``, ``assign``
    (``to``: a user; ``next_action``), ``done``, ``cancel`` (``reason``). ``version``: the
    version the caller read (optimistic locking). Returns the task after the change.

    Raises:
        TaskNotFound: no such task (404).
        IllegalTransition: the step is not allowed from the task's status; names the allowed ones (409).
        VersionConflict: the task changed since the caller read ``version`` (409).
        TaskError: a missing plan text, reason, assignee or action, an unknown user (422).
    """
    target = _target(action)
    now = aware(now) or utcnow()
    with write(engine) as conn:
        row = conn.execute(sa.select(TASKS).where(TASKS.c.id == int(task_id)).with_for_update()).mappings().first()
        if row is None:
            raise TaskNotFound(f"unknown task {task_id} (churnwatch tasks lists them)")
        row = dict(row)
        if version is not None and int(version) != row["version"]:
            raise VersionConflict(f"task {task_id} changed since version {version} (now version {row['version']}): "
                                  "read it again")
        if target not in ALLOWED[row["status"]]:
            raise IllegalTransition(f"task {task_id} is {row['status']}: it cannot become {target}; allowed: "
                                    f"{allowed_words(row['status'])}")
        values: dict[str, Any] = {"status": target}
        if target == "plan_drafted":
            if not text or not text.strip():
                raise TaskError("a plan needs its text (--text / \"text\")")
            values["plan"] = text.strip()
        elif target == "approved":
            values["approved_by"] = actor
        elif target == "action_assigned":
            if not to or not next_action or not next_action.strip():
                raise TaskError("assigning needs the user (--to / \"to\") and the next action (--action / "
                                "\"next_action\")")
            try:
                values["assignee_id"] = find_user(conn, to)["id"]
            except ChurnwatchError as exc:
                raise TaskError(str(exc)) from exc
            values["next_action"] = next_action.strip()
        elif target == "cancelled":
            if not reason or not reason.strip():
                raise TaskError("cancelling needs a reason (--reason / \"reason\")")
            values["cancel_reason"] = reason.strip()
        if target in FINAL:
            values["closed_at"] = now
        values.update(version=row["version"] + 1, updated_at=now)
        done = conn.execute(TASKS.update().where(TASKS.c.id == row["id"], TASKS.c.version == row["version"])
                            .values(**values)).rowcount
        if done != 1:  # pragma: no cover - the row is locked; kept as the last line of defence
            raise VersionConflict(f"task {task_id} changed while it was being updated: try again")
        before, after = _changed(row, values)
        record(conn, actor=actor, entity="task", entity_id=row["id"], action=VERB[target], before=before,
               after=after, at=now)
        return task_view(conn, row["id"], now)


# --- escalation ---------------------------------------------------------------------------------

def escalate_overdue(engine: Engine, settings: Settings, now: dt.datetime | None = None,
                     actor: str = SYSTEM) -> list[dict[str, Any]]:
    """Escalate every overdue task once per level it has reached: level 1 ``escalate_after_hours[0]``
    hours past due notifies the assignee's team lead (and the team's channel, if it has one), level 2
    the lead's manager, else ``tasks.escalation_channel``. Returns the escalations made, each
    ``{task_id, account_id, level, to_user_id, to_user, channel}``; a channel gets an escalation
    delivery (sent with the digests)."""
    now = aware(now) or utcnow()
    delays = settings.tasks.escalate_after_hours
    events = []
    with write(engine) as conn:
        rows = conn.execute(sa.select(TASKS).where(TASKS.c.status.in_(ACTIVE), TASKS.c.due_at.is_not(None),
                                                   TASKS.c.due_at < now, TASKS.c.escalation_level < len(delays))
                            .order_by(TASKS.c.id).with_for_update()).mappings().all()
        for row in rows:
            due = aware(row["due_at"])
            reached = sum(1 for h in delays if due + dt.timedelta(hours=h) <= now)
            if reached <= row["escalation_level"]:
                continue
            lead = team_lead(conn, row["assignee_id"])
            for level in range(row["escalation_level"] + 1, reached + 1):
                if level == 1:
                    to, channel = lead, team_channel(conn, row["assignee_id"])
                else:
                    manager = (user_row(conn, lead) or {}).get("manager_id")
                    to, channel = manager, (None if manager else settings.tasks.escalation_channel)
                person = user_row(conn, to)
                event = {"task_id": row["id"], "account_id": row["account_id"], "level": level, "to_user_id": to,
                         "to_user": person["name"] if person else None, "channel": channel}
                events.append(event)
                if channel:
                    enqueue(conn, kind="escalation", webhook=channel, now=now, task_ids=[row["id"]],
                            key=f"escalation-{row['id']}-{level}-{short_hash(channel)[:8]}",
                            alert_ids=json.loads(row["alert_ids"]))
                record(conn, actor=actor, entity="task", entity_id=row["id"], action="escalate",
                       before={"escalation_level": level - 1}, after={"escalation_level": level, **event}, at=now)
            conn.execute(TASKS.update().where(TASKS.c.id == row["id"],
                                              TASKS.c.escalation_level == row["escalation_level"])
                         .values(escalation_level=reached, escalated_at=now, version=row["version"] + 1,
                                 updated_at=now))
    return events


# --- reading ----------------------------------------------------------------------------------

def _select() -> sa.Select:
    return sa.select(TASKS, USERS.c.name.label("assignee"), USERS.c.email.label("assignee_email")).select_from(
        TASKS.outerjoin(USERS, TASKS.c.assignee_id == USERS.c.id))


def _view(row: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    out = _public(dict(row))
    due = aware(row["due_at"])
    out["owner"] = row["assignee"] or row["owner_role"]
    out["overdue"] = bool(due is not None and row["status"] in ACTIVE and due < now)
    out["allowed"] = list(ALLOWED[row["status"]])
    return out


def task_view(conn: Connection, task_id: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """One task with its assignee's name, ``owner``, ``overdue`` and the ``allowed`` next statuses."""
    row = conn.execute(_select().where(TASKS.c.id == int(task_id))).mappings().first()
    if row is None:
        raise TaskNotFound(f"unknown task {task_id} (churnwatch tasks lists them)")
    return _view(row, aware(now) or utcnow())


def get_task(engine: Engine, task_id: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """``task_view`` on its own connection."""
    with engine.connect() as conn:
        return task_view(conn, task_id, now)


def list_tasks(engine: Engine, *, owner: str | None = None, tier: str | None = None, status: str | None = None,
               overdue: bool = False, now: dt.datetime | None = None, limit: int | None = None) -> list[dict]:
    """Tasks by due time (none last), filtered: ``owner`` (a user: id, e-mail, CRM or plain name),
    ``tier``, ``status`` (a status, or ``active``: every one not final; default active), ``overdue``.

    Raises:
        TaskError: an unknown owner, tier or status (named).
    """
    now = aware(now) or utcnow()
    status = status or "active"
    if status != "active" and status != "all" and status not in STATUSES:
        raise TaskError(f"unknown status {status!r}: one of active, all, {', '.join(STATUSES)}")
    if tier is not None and tier not in TIER_KEYS:
        raise TaskError(f"unknown tier {tier!r}: one of {', '.join(TIER_KEYS)}")
    query = _select()
    if status == "active":
        query = query.where(TASKS.c.status.in_(ACTIVE))
    elif status != "all":
        query = query.where(TASKS.c.status == status)
    if tier:
        query = query.where(TASKS.c.tier == tier)
    if overdue:
        query = query.where(TASKS.c.due_at.is_not(None), TASKS.c.due_at < now, TASKS.c.status.in_(ACTIVE))
    with engine.connect() as conn:
        if owner:
            try:
                query = query.where(TASKS.c.assignee_id == find_user(conn, owner)["id"])
            except ChurnwatchError as exc:
                raise TaskError(str(exc)) from exc
        query = query.order_by(TASKS.c.due_at.is_(None), TASKS.c.due_at, TASKS.c.id)
        if limit:
            query = query.limit(limit)
        return [_view(r, now) for r in conn.execute(query).mappings().all()]


def actionable(engine: Engine, *, task_ids: list[int] | None = None, lang: str = "en",
               link_base: str | None = None) -> list[ActionItem]:
    """Open tasks (or those of ``task_ids`` that are still open) as action items for a digest,
    largest expected MRR loss first (unknown last), then lowest health, then by account."""
    query = _select().where(TASKS.c.status.in_(ACTIVE))
    if task_ids is not None:
        query = query.where(TASKS.c.id.in_([int(t) for t in task_ids]))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings().all()]
    rows.sort(key=lambda r: (r["expected_loss"] is None, -(r["expected_loss"] or 0), r["health_score"] or 0,
                             r["account_id"]))
    zh = lang.lower().startswith("zh")
    base = (link_base or "").rstrip("/")
    return [ActionItem(
        account_id=r["account_id"], health_score=float(r["health_score"] or 0), tier=r["tier"], as_of=r["as_of"],
        top_reason=r["top_reason_zh"] if zh and r["top_reason_zh"] else r["top_reason_en"],
        top_reason_zh=r["top_reason_zh"], mrr=r["mrr"], expected_loss=r["expected_loss"],
        owner=r["assignee"] or r["owner_role"], due_at=aware(r["due_at"]),
        # the account's page in the workspace, where its task is worked on (the API's /workflow/tasks/N is JSON)
        link=f"{base}/accounts/{urllib.parse.quote(r['account_id'], safe='')}" if base else None, task_id=r["id"],
        alert_ids=tuple(json.loads(r["alert_ids"]))) for r in rows]


def open_tasks_frame(engine: Engine) -> pd.DataFrame:
    """Tasks not yet done or cancelled, earliest due first, as a frame for the portfolio report:
    task_id, account_id, tier, action, owner, due_at (naive UTC), status."""
    rows = list_tasks(engine)
    columns = ["task_id", "account_id", "tier", "action", "owner", "due_at", "status"]
    frame = pd.DataFrame([{**r, "task_id": r["id"]} for r in rows], columns=["id", *columns[1:], "task_id"])
    frame["due_at"] = pd.to_datetime(frame["due_at"], utc=True).dt.tz_localize(None)
    return frame[columns]
