"""Tags and re-activation sequences (issue 15 item 5).

* ``tags:`` in ``churnwatch.yaml`` are rules over each account's latest score (``TagRule``): an
  account that meets a rule gets the tag (a row of ``account_tags`` with ``since``), and loses it
  (``until`` set) on the first run where it no longer does. At most one open row per account and
  tag (a partial unique index), so two runs at once cannot tag twice.
* ``sequences:`` enrol every account holding a sequence's tag (``sequence_enrolments``) and run
  its steps when due: step ``i`` is due ``after_days`` after the enrolment. A step is claimed by
  inserting its row in ``sequence_steps_sent`` (unique on enrolment and step) before it runs, so
  it runs exactly once however often and however concurrently ``run_sequences`` is called; a
  step that failed (an SMTP server down) is tried again on later runs, up to ``MAX_ATTEMPTS``;
  one left ``sending`` by a killed run is not repeated (at most once rather than twice).
* Losing the tag ends the enrolment (``ended_at``, ``end_reason``), and so does churning (the
  latest run no longer scored the account); a churned account is not enrolled.
* Step kinds: ``email`` (``workflow.email.send_email``), ``task`` and ``webhook`` (the task and
  notification modules' ``open_task`` and ``send_one``, imported when such a step runs). Each
  handler is ``handler(engine, settings, step, facts, enrolment, now) -> (status, detail)``
  with status ``done``, ``failed`` or ``skipped``; tests and callers may pass their own.

Time is injected (``now``), so a schedule can be run at day 0, 3 and 7 in a test.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.settings import Sequence, SequenceStep, Settings, TagRule
from workflow import audit
from workflow.db import METADATA, write
from workflow.facts import AccountFacts

MAX_ATTEMPTS = 3
TZ = sa.DateTime(timezone=True)

TAGS = sa.Table(
    "tags", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", TZ, nullable=False),
)

ACCOUNT_TAGS = sa.Table(
    "account_tags", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(200), nullable=False),
    sa.Column("tag", sa.String(64), nullable=False),
    sa.Column("since", TZ, nullable=False),
    sa.Column("until", TZ, nullable=True),
    sa.Index("ix_account_tags_account_id", "account_id"),
)
sa.Index("uq_account_tags_open", ACCOUNT_TAGS.c.account_id, ACCOUNT_TAGS.c.tag, unique=True,
         sqlite_where=ACCOUNT_TAGS.c.until.is_(None), postgresql_where=ACCOUNT_TAGS.c.until.is_(None))

ENROLMENTS = sa.Table(
    "sequence_enrolments", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sequence", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(200), nullable=False),
    sa.Column("tag", sa.String(64), nullable=False),
    sa.Column("enrolled_at", TZ, nullable=False),
    sa.Column("ended_at", TZ, nullable=True),
    sa.Column("end_reason", sa.Text, nullable=True),
    sa.Index("ix_sequence_enrolments_account_id", "account_id"),
)
sa.Index("uq_sequence_enrolments_open", ENROLMENTS.c.sequence, ENROLMENTS.c.account_id, unique=True,
         sqlite_where=ENROLMENTS.c.ended_at.is_(None), postgresql_where=ENROLMENTS.c.ended_at.is_(None))

STEPS_SENT = sa.Table(
    "sequence_steps_sent", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("enrolment_id", sa.Integer, sa.ForeignKey("sequence_enrolments.id"), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("due_at", TZ, nullable=False),
    sa.Column("sent_at", TZ, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("detail", sa.Text, nullable=True),
    sa.UniqueConstraint("enrolment_id", "step"),
    sa.CheckConstraint("status IN ('sending', 'done', 'failed', 'skipped')", name="status"),
)

#: PostgreSQL advisory lock key serialising the tag and enrolment phase of concurrent runs
#: (SQLite's ``BEGIN IMMEDIATE`` in ``workflow.db.write`` does it there).
LOCK_KEY = 15_0005


def _serialise(conn) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


Handler = Callable[[Engine, Settings, SequenceStep, AccountFacts, dict, dt.datetime], tuple[str, str | None]]


# --- tags --------------------------------------------------------------------------------------

def matches(rule: TagRule, facts: AccountFacts) -> bool:
    """True when the account's latest score meets every condition of ``rule``."""
    if rule.churned is not None and facts.churned != rule.churned:
        return False
    if rule.tiers is not None and (facts.churned or facts.tier not in rule.tiers):
        return False
    if rule.health_below is not None and not facts.health_score < rule.health_below:
        return False
    if rule.reasons is not None and not set(rule.reasons) & set(facts.reason_features):
        return False
    for feature, floor in (rule.features_above or {}).items():
        value = facts.numbers.get(feature)
        if value is None or not value > floor:
            return False
    return True


def open_tags(engine: Engine) -> dict[str, set[str]]:
    """Tag -> the accounts holding it now."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ACCOUNT_TAGS.c.tag, ACCOUNT_TAGS.c.account_id)
                            .where(ACCOUNT_TAGS.c.until.is_(None))).all()
    out: dict[str, set[str]] = {}
    for tag, account in rows:
        out.setdefault(tag, set()).add(account)
    return out


def apply_tags(engine: Engine, rules: list[TagRule], facts: Iterable[AccountFacts], now: dt.datetime,
               actor: str = "churnwatch") -> dict[str, dict[str, int]]:
    """Tag the accounts that meet each rule and untag those that no longer do (only the accounts
    in ``facts`` are judged). Returns ``{tag: {"added": n, "removed": n}}``."""
    facts = list(facts)
    summary = {r.name: {"added": 0, "removed": 0} for r in rules}
    with write(engine) as conn:
        _serialise(conn)
        known = set(conn.execute(sa.select(TAGS.c.name)).scalars())
        for rule in rules:
            if rule.name not in known:
                conn.execute(TAGS.insert().values(name=rule.name, created_at=now))
        held: dict[tuple[str, str], int] = {
            (r.tag, r.account_id): r.id for r in conn.execute(
                sa.select(ACCOUNT_TAGS.c.id, ACCOUNT_TAGS.c.tag, ACCOUNT_TAGS.c.account_id)
                .where(ACCOUNT_TAGS.c.until.is_(None)).with_for_update())}
        for rule in rules:
            for f in facts:
                has = (rule.name, f.account_id) in held
                wants = matches(rule, f)
                if wants and not has:
                    conn.execute(ACCOUNT_TAGS.insert().values(account_id=f.account_id, tag=rule.name, since=now))
                    audit.record(conn, actor=actor, entity="account", entity_id=f.account_id, action="tag",
                                 after={"tag": rule.name, "health_score": f.health_score, "tier": f.tier}, at=now)
                    summary[rule.name]["added"] += 1
                elif has and not wants:
                    conn.execute(ACCOUNT_TAGS.update().where(ACCOUNT_TAGS.c.id == held[(rule.name, f.account_id)])
                                 .values(until=now))
                    audit.record(conn, actor=actor, entity="account", entity_id=f.account_id, action="untag",
                                 before={"tag": rule.name}, after={"health_score": f.health_score, "tier": f.tier},
                                 at=now)
                    summary[rule.name]["removed"] += 1
    return summary


# --- sequences ---------------------------------------------------------------------------------

@dataclass
class RunSummary:
    """What one ``run_sequences`` did."""

    tags: dict[str, dict[str, int]] = field(default_factory=dict)
    enrolled: int = 0
    ended: dict[str, int] = field(default_factory=dict)  # reason -> enrolments ended
    steps: dict[str, int] = field(default_factory=dict)  # "<kind> <status>" -> count


def _email_step(engine: Engine, settings: Settings, step: SequenceStep, facts: AccountFacts, enrolment: dict,
                now: dt.datetime) -> tuple[str, str | None]:
    from workflow.email import send_email

    row = send_email(engine, settings, facts, template=step.template, actor=f"sequence {enrolment['sequence']}",
                     now=now, sequence=enrolment["sequence"])
    status = {"sent": "done", "failed": "failed", "skipped": "skipped"}[row["status"]]
    return status, f"email {row['id']}: {row['error'] or row['subject']}"


def _task_step(engine: Engine, settings: Settings, step: SequenceStep, facts: AccountFacts, enrolment: dict,
               now: dt.datetime) -> tuple[str, str | None]:
    from workflow.tasks import open_task  # the task lifecycle's own module (issue 15 item 2)

    key = f"sequence {enrolment['sequence']} #{enrolment['id']} step {step.after_days}d"
    task = open_task(engine, settings, account_id=facts.account_id, tier=facts.tier, action=step.action, key=key,
                     now=now, actor=f"sequence {enrolment['sequence']}", csm=facts.csm)
    return "done", f"task {task}"


def _webhook_step(engine: Engine, settings: Settings, step: SequenceStep, facts: AccountFacts, enrolment: dict,
                  now: dt.datetime) -> tuple[str, str | None]:
    from workflow.notify import send_one  # the alerts' delivery (issue 15 item 3)

    key = f"sequence {enrolment['sequence']} #{enrolment['id']} step {step.after_days}d"
    outcome = send_one(engine, settings, webhook=step.action, account_id=facts.account_id, key=key, now=now)
    status = getattr(outcome, "status", "delivered")
    return ("done" if status == "delivered" else "failed"), getattr(outcome, "reason", None)


DEFAULT_HANDLERS: dict[str, Handler] = {"email": _email_step, "task": _task_step, "webhook": _webhook_step}


def _end(conn, enrolment: dict, reason: str, now: dt.datetime) -> None:
    conn.execute(ENROLMENTS.update().where(ENROLMENTS.c.id == enrolment["id"]).values(ended_at=now, end_reason=reason))
    audit.record(conn, actor=f"sequence {enrolment['sequence']}", entity="account",
                 entity_id=enrolment["account_id"], action="sequence end", before={"sequence": enrolment["sequence"]},
                 after={"end_reason": reason}, at=now)


def _claim(engine: Engine, enrolment_id: int, index: int, step: SequenceStep, due: dt.datetime,
           now: dt.datetime) -> bool:
    """Take step ``index`` of an enrolment for this run: a new row, or a failed one with attempts
    left. False when another run has it (done, running, or out of attempts)."""
    try:
        with write(engine) as conn:
            row = conn.execute(sa.select(STEPS_SENT.c.id, STEPS_SENT.c.status, STEPS_SENT.c.attempts).where(
                STEPS_SENT.c.enrolment_id == enrolment_id, STEPS_SENT.c.step == index).with_for_update()).first()
            if row is None:
                conn.execute(STEPS_SENT.insert().values(enrolment_id=enrolment_id, step=index, kind=step.kind,
                                                        due_at=due, sent_at=now, status="sending", attempts=1))
                return True
            if row.status != "failed" or row.attempts >= MAX_ATTEMPTS:
                return False
            taken = conn.execute(STEPS_SENT.update().where(STEPS_SENT.c.id == row.id, STEPS_SENT.c.status == "failed")
                                 .values(status="sending", attempts=row.attempts + 1, sent_at=now)).rowcount
            return taken == 1
    except sa.exc.IntegrityError:  # another run inserted it first
        return False


def _finish(engine: Engine, enrolment: dict, index: int, step: SequenceStep, status: str, detail: str | None,
            now: dt.datetime) -> None:
    with write(engine) as conn:
        conn.execute(STEPS_SENT.update().where(STEPS_SENT.c.enrolment_id == enrolment["id"],
                                               STEPS_SENT.c.step == index).values(status=status, detail=detail))
        audit.record(conn, actor=f"sequence {enrolment['sequence']}", entity="account",
                     entity_id=enrolment["account_id"], action=f"sequence step {status}",
                     after={"sequence": enrolment["sequence"], "step": index, "kind": step.kind, "detail": detail},
                     at=now)


def run_sequences(engine: Engine, settings: Settings, facts: Iterable[AccountFacts], now: dt.datetime, *,
                  handlers: dict[str, Handler] | None = None, actor: str = "churnwatch") -> RunSummary:
    """Tag (``apply_tags``), end the enrolments whose account churned or lost the tag, enrol the
    tagged accounts, and run every step that is due by ``now`` and not yet done."""
    facts = {f.account_id: f for f in facts}
    handlers = {**DEFAULT_HANDLERS, **(handlers or {})}
    summary = RunSummary(tags=apply_tags(engine, settings.tags, facts.values(), now, actor))
    tagged = open_tags(engine)
    by_name: dict[str, Sequence] = {s.name: s for s in settings.sequences}
    with write(engine) as conn:
        _serialise(conn)
        current = [dict(r) for r in conn.execute(sa.select(ENROLMENTS).where(ENROLMENTS.c.ended_at.is_(None))
                                                 .with_for_update()).mappings()]
        ended: set[int] = set()
        for e in current:
            f = facts.get(e["account_id"])
            seq = by_name.get(e["sequence"])
            reason = None
            if f is not None and f.churned:
                reason = f"churned (not scored on the latest run; last score {f.as_of})"
            elif seq is None:
                reason = "the sequence is no longer configured"
            elif e["account_id"] not in tagged.get(seq.tag, set()):
                reason = f"left the condition: tag {seq.tag} removed"
            if reason:
                _end(conn, e, reason, now)
                ended.add(e["id"])
                key = reason.split(" (")[0].split(":")[0]
                summary.ended[key] = summary.ended.get(key, 0) + 1
        still_open = {(e["sequence"], e["account_id"]) for e in current if e["id"] not in ended}
        for seq in settings.sequences:
            for account in sorted(tagged.get(seq.tag, set())):
                f = facts.get(account)
                if f is None or f.churned or (seq.name, account) in still_open:
                    continue
                conn.execute(ENROLMENTS.insert().values(sequence=seq.name, account_id=account, tag=seq.tag,
                                                        enrolled_at=now))
                audit.record(conn, actor=actor, entity="account", entity_id=account, action="sequence enrol",
                             after={"sequence": seq.name, "tag": seq.tag}, at=now)
                summary.enrolled += 1
    _run_due_steps(engine, settings, facts, now, handlers, by_name, summary)
    return summary


def _run_due_steps(engine: Engine, settings: Settings, facts: dict[str, AccountFacts], now: dt.datetime,
                   handlers: dict[str, Handler], by_name: dict[str, Sequence], summary: RunSummary) -> None:
    with engine.connect() as conn:
        active = [dict(r) for r in conn.execute(sa.select(ENROLMENTS).where(ENROLMENTS.c.ended_at.is_(None))
                                                .order_by(ENROLMENTS.c.id)).mappings()]
        done = {(r.enrolment_id, r.step) for r in conn.execute(
            sa.select(STEPS_SENT.c.enrolment_id, STEPS_SENT.c.step).where(
                sa.or_(STEPS_SENT.c.status != "failed", STEPS_SENT.c.attempts >= MAX_ATTEMPTS)))}
    for e in active:
        seq, f = by_name.get(e["sequence"]), facts.get(e["account_id"])
        if seq is None or f is None:
            continue
        start = _aware(e["enrolled_at"])
        for index, step in enumerate(seq.steps):
            due = start + dt.timedelta(days=step.after_days)
            if due > now or (e["id"], index) in done or not _claim(engine, e["id"], index, step, due, now):
                continue
            try:
                status, detail = handlers[step.kind](engine, settings, step, f, e, now)
            except Exception as exc:  # noqa: BLE001 - a step's failure is recorded, the run goes on
                status, detail = "failed", f"{type(exc).__name__}: {exc}"
            _finish(engine, e, index, step, status, detail, now)
            key = f"{step.kind} {status}"
            summary.steps[key] = summary.steps.get(key, 0) + 1


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def status(engine: Engine) -> list[dict[str, Any]]:
    """Every enrolment with its steps (newest first): sequence, account, tag, enrolled/ended, reason,
    and ``steps`` as ``[{step, kind, status, attempts, sent_at, detail}]``."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(ENROLMENTS).order_by(ENROLMENTS.c.id.desc())).mappings()]
        steps = conn.execute(sa.select(STEPS_SENT).order_by(STEPS_SENT.c.enrolment_id, STEPS_SENT.c.step)
                             ).mappings().all()
    by_enrolment: dict[int, list[dict]] = {}
    for s in steps:
        by_enrolment.setdefault(s["enrolment_id"], []).append(
            {k: s[k] for k in ("step", "kind", "status", "attempts", "sent_at", "detail")})
    for r in rows:
        r["steps"] = by_enrolment.get(r["id"], [])
    return rows


def tag_members(engine: Engine) -> dict[str, list[dict]]:
    """Tag -> the accounts holding it now, with ``since``, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ACCOUNT_TAGS).where(ACCOUNT_TAGS.c.until.is_(None))
                            .order_by(ACCOUNT_TAGS.c.tag, ACCOUNT_TAGS.c.since, ACCOUNT_TAGS.c.account_id)).mappings()
        out: dict[str, list[dict]] = {}
        for r in rows:
            out.setdefault(r["tag"], []).append({"account_id": r["account_id"], "since": r["since"]})
    return out


def as_json(value: Any) -> str:
    """``status``/``tag_members`` output as JSON (dates as ISO text)."""
    return json.dumps(value, default=str, ensure_ascii=False, indent=2)
