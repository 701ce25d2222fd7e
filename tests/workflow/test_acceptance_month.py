"""Acceptance (issue 15): a tiny demo home scored on 20 consecutive daily dates, each followed by
the workflow's run (alerts into the operational store, escalation, e-mails to leads, delivery),
time injected (each run at 09:00 UTC of its scoring date), with two webhooks (generic English,
WeCom Chinese) on a real local receiver and a real local SMTP server. Counts per channel and run:
one digest each run that raised alerts, none otherwise; no idempotency key received twice; every
alert with its task; each overdue task escalated exactly once per level, level 1 e-mailing the lead.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import duckdb
import pytest
import sqlalchemy as sa

from core.settings import TaskSettings, Webhook, dump_settings, load_settings
from core.store import read_meta
from demo.generator import CSMS
from serving.batch import build_scores, record_scores
from tests.workflow.outreach_helpers import smtp_server
from tests.workflow.receiver import Receiver
from workflow import db
from workflow.alerts import ALERTS
from workflow.email import EMAILS
from workflow.notify import deliveries, email_escalations, send_pending
from workflow.people import add_user
from workflow.tasks import TASKS, escalate_overdue

DAYS = 20


@pytest.mark.slow
def test_a_month_of_daily_scores_through_the_workflow(tmp_path, trained_demo):
    root = tmp_path / "home"
    demo = trained_demo(150, 12, 3)  # the session's shared build (tests/conftest.py), copied here
    store = root / "store.duckdb"
    demo.copy_to(root / "demo-data", store)
    settings = load_settings(root / "demo-data" / "churnwatch.yaml")
    result = demo.result()
    with duckdb.connect(str(store), read_only=True) as con:
        end = read_meta(con).data_end
    dates = [end - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    scored = build_scores(str(root / "demo-data"), settings, store, result.bundle, dates, "1")

    receiver = Receiver(script=[(200, {}, b'{"errcode": 0}')])
    engine = db.open_store(db.operations_url(root))
    with db.write(engine) as conn:
        add_user(conn, name="Bo Chen", email="bo@example.com", role="lead", team="CS", actor="admin")
        for i, name in enumerate(CSMS):
            add_user(conn, name=name, crm_name=name, email=f"csm{i}@example.com", team="CS", actor="admin")
    runs = []
    try:
        with smtp_server() as inbox:
            s = settings.model_copy(update={
                "data": str(root / "demo-data"),
                "webhooks": [Webhook(name="en", url=receiver.url.replace("/hook", "/en"), retries=0),
                             Webhook(name="zh", url=receiver.url.replace("/hook", "/zh"), format="wecom",
                                     lang="zh-CN", retries=0, rate_per_minute=6000)],
                "tasks": TaskSettings(escalate_after_hours=[0, 24]),
                "email": settings.email.model_copy(update={"enabled": True, "port": inbox.port,
                                                           "sender": "care@vendor.example"})})
            dump_settings(s, root / "churnwatch.yaml")
            events = []
            for day in dates:
                now = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
                before = len(receiver.requests)
                new = record_scores(store, [scored[day]], s, now=now, engine=engine)
                escalated = escalate_overdue(engine, s, now=now)
                events += escalated
                email_escalations(engine, s, escalated, now=now)
                counts = send_pending(engine, s, now=now)
                got = Counter(r.path for r in receiver.requests[before:])
                runs.append((day, len(new), dict(got), counts))
            mails = list(inbox.messages)
    finally:
        receiver.close()
    for day, new, got, counts in runs:
        print(day, new, got, counts)
        assert counts["failed"] == counts["pending"] == 0, (day, counts)
        assert got == ({"/en": 1, "/zh": 1} if new else {}), (day, new, got)  # one digest per channel and run
    assert sum(1 for _, new, _, _ in runs if new) >= 3  # the month raised alerts on several days
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert len(keys) == len(set(keys))  # no duplicates received
    zh = [json.loads(r.body) for r in receiver.requests if r.path == "/zh"]
    assert all(m["msgtype"] == "markdown" and "需要跟进" in m["markdown"]["content"] for m in zh)
    with engine.connect() as conn:
        orphans = conn.execute(sa.select(sa.func.count()).select_from(ALERTS).where(
            ALERTS.c.task_id.is_(None) | ~ALERTS.c.task_id.in_(sa.select(TASKS.c.id)))).scalar()
        alerts = conn.execute(sa.select(sa.func.count()).select_from(ALERTS)).scalar()
        recorded = conn.execute(sa.select(EMAILS.c.status, EMAILS.c.to_addr).where(
            EMAILS.c.template == "escalation")).all()
    assert alerts > 0 and orphans == 0  # no alert without a task
    per_level = Counter((e["task_id"], e["level"]) for e in events)
    assert events and max(per_level.values()) == 1  # each task escalated once per level
    level1 = [e for e in events if e["level"] == 1]
    assert [r.status for r in recorded] == ["sent"] * len(level1)
    assert len(mails) == len(level1) and {m["To"] for m in mails} == {"bo@example.com"}
    assert all(d["status"] == "delivered" for d in deliveries(engine))
    db.dispose_all()
