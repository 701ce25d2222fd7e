"""The workflow's parts joined (issue 15): a sequence's task and webhook steps use the real task
store and delivery; digests carry their run and per-account messages go to the webhooks that ask;
resending and late webhooks; a level-1 escalation e-mails the lead. Real local HTTP receiver and
SMTP server, real SQLite store."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from core.settings import Settings, TaskSettings, Webhook
from tests.workflow.outreach_helpers import smtp_server
from tests.workflow.receiver import Receiver
from tests.workflow.test_tasks import BELOW, HIGH, NOW, write_store
from workflow import db
from workflow.alerts import raise_alerts
from workflow.email import EMAILS
from workflow.facts import AccountFacts
from workflow.notify import deliveries, email_escalations, resend, send_pending
from workflow.people import TEAMS, add_user
from workflow.sequences import run_sequences
from workflow.tasks import TASKS, escalate_overdue, list_tasks


@pytest.fixture
def engine(tmp_path):
    yield db.open_store(db.operations_url(tmp_path))
    db.dispose_all()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def hook(name: str, receiver: Receiver, **kw) -> Webhook:
    return Webhook(name=name, url=receiver.url.replace("/hook", f"/{name}"), **kw)


def got(receiver: Receiver, name: str) -> list:
    return [r for r in receiver.requests if r.path == f"/{name}"]


def keys(receiver: Receiver) -> list[str]:
    return [r.headers["Idempotency-Key"] for r in receiver.requests]


def test_a_sequence_task_step_opens_the_task_and_its_webhook_step_delivers_once(engine, receiver):
    s = Settings.model_validate({
        "webhooks": [{"name": "crm", "url": receiver.url}],
        "tags": [{"name": "at-risk", "tiers": ["medium_risk", "high_risk"]}],
        "sequences": [{"name": "reactivation", "tag": "at-risk", "steps": [
            {"after_days": 0, "kind": "task", "action": "call the account"},
            {"after_days": 1, "kind": "webhook", "action": "crm"}]}]})
    facts = [AccountFacts(account_id="A", as_of=dt.date(2026, 11, 30), health_score=45, tier="medium_risk",
                          churn_probability=0.5, mrr=900.0)]
    run_sequences(engine, s, facts, NOW)
    [task] = list_tasks(engine, now=NOW)
    assert (task["account_id"], task["action"], task["status"]) == ("A", "call the account", "open")
    assert receiver.requests == []  # the webhook step is due a day later
    for later in (1, 1.5, 3):
        summary = run_sequences(engine, s, facts, NOW + dt.timedelta(days=later))
    assert len(receiver.requests) == 1 and "A" in receiver.requests[0].body.decode()
    assert summary.steps == {}  # nothing left to run on the last call
    assert len(list_tasks(engine, now=NOW, status="all")) == 1
    [row] = deliveries(engine)
    assert (row["kind"], row["webhook"], row["status"]) == ("sequence", "crm", "delivered")


def alerts_for(engine, tmp_path, s: Settings, accounts=None, csm=None):
    store = tmp_path / "store.duckdb"
    write_store(store, accounts or {"a1": [70] + [50] * 8, "a2": [70] + [45] * 8, "a3": [90] * 9}, csm=csm)
    return raise_alerts(store, s, engine, now=NOW)


def test_one_digest_per_channel_with_its_run_and_per_account_messages_where_asked(engine, receiver, tmp_path):
    s = Settings(alert_rules=[BELOW, HIGH], webhooks=[hook("team", receiver),
                                                       hook("ops", receiver, per_account=True, lang="zh-CN")])
    alerts_for(engine, tmp_path, s)
    counts = send_pending(engine, s, now=NOW)
    assert counts["delivered"] == 4 and counts["failed"] == counts["pending"] == 0
    [team] = got(receiver, "team")
    run = [d for d in deliveries(engine) if d["webhook"] == "team"][0]["idempotency_key"].split("-")[1]
    body = json.loads(team.body)
    assert body["run_id"] == run and {i["account_id"] for i in body["items"]} == {"a1", "a2"}
    ops = got(receiver, "ops")
    kinds = [json.loads(r.body)["type"] for r in ops]
    assert kinds == ["digest", "account", "account"]
    assert len(set(keys(receiver))) == 4  # every message its own key
    assert send_pending(engine, s, now=NOW + dt.timedelta(hours=1))["delivered"] == 0
    assert len(receiver.requests) == 4


def test_resend_queues_a_new_key_and_a_late_webhook_gets_the_open_alerts_once(engine, receiver, tmp_path):
    s = Settings(alert_rules=[BELOW, HIGH], webhooks=[hook("team", receiver)])
    alerts_for(engine, tmp_path, s)
    send_pending(engine, s, now=NOW)
    queued = resend(engine, s, now=NOW + dt.timedelta(hours=1))
    assert [q["webhook"] for q in queued] == ["team"] and queued[0]["tasks"] == 2
    send_pending(engine, s, now=NOW + dt.timedelta(hours=1))
    first, again = got(receiver, "team")
    assert first.headers["Idempotency-Key"] != again.headers["Idempotency-Key"]
    assert json.loads(first.body)["items"] == json.loads(again.body)["items"]
    assert resend(engine, s, since=dt.date(2030, 1, 1), now=NOW) == []  # nothing fired since then
    with pytest.raises(Exception, match="unknown webhook 'nope'"):
        resend(engine, s, webhook="nope", now=NOW)

    late = Settings(alert_rules=[BELOW, HIGH], webhooks=[*s.webhooks, hook("late", receiver)])
    # the alerts fired on 2025-03-07/08, far beyond the last 7 days of NOW: nothing to catch up
    send_pending(engine, late, now=NOW + dt.timedelta(hours=2))
    assert got(receiver, "late") == []
    wide = late.model_copy(update={"operations": late.operations.model_copy(update={"late_webhook_days": 1000})})
    for hours in (3, 4):
        send_pending(engine, wide, now=NOW + dt.timedelta(hours=hours))
    [caught] = got(receiver, "late")
    assert {i["account_id"] for i in json.loads(caught.body)["items"]} == {"a1", "a2"}
    assert len(got(receiver, "team")) == 2 and len(set(keys(receiver))) == len(receiver.requests)


def test_level_one_escalation_emails_the_lead_and_tells_the_team_channel_once(engine, receiver, tmp_path):
    with db.write(engine) as conn:
        add_user(conn, name="Bo Chen", email="bo@example.com", role="lead", team="East", actor="admin")
        add_user(conn, name="Ana Li", email="ana@example.com", role="csm", team="East", actor="admin")
        conn.execute(TEAMS.update().where(TEAMS.c.name == "East").values(channel="east"))
    with smtp_server() as inbox:
        s = Settings.model_validate({
            "alert_rules": [BELOW.model_dump()], "webhooks": [{"name": "east", "url": receiver.url}],
            "tasks": TaskSettings(escalate_after_hours=[0, 24]).model_dump(),
            "email": {"enabled": True, "port": inbox.port, "sender": "care@vendor.example"}})
        alerts_for(engine, tmp_path, s, {"a1": [70] + [50] * 8}, csm={"a1": "ana@example.com"})
        late = NOW + dt.timedelta(hours=25)
        events = escalate_overdue(engine, s, now=late)
        assert [(e["level"], e["to_user"], e["channel"]) for e in events] == [(1, "Bo Chen", "east")]
        rows = email_escalations(engine, s, events, now=late)
        assert [r["status"] for r in rows] == ["sent"]
        [msg] = inbox.messages
        assert msg["To"] == "bo@example.com" and "a1" in msg["Subject"] and "逾期" in msg["Subject"]
        assert "Ana Li" in msg.get_content() and "到期" in msg.get_content()
        assert escalate_overdue(engine, s, now=late + dt.timedelta(hours=1)) == []
        assert email_escalations(engine, s, [], now=late) == []
        send_pending(engine, s, now=late)
    with engine.connect() as conn:
        recorded = conn.execute(sa.select(EMAILS.c.account_id, EMAILS.c.template, EMAILS.c.to_addr)).all()
        task = conn.execute(sa.select(TASKS.c.escalation_level)).scalar()
    assert recorded == [("a1", "escalation", "bo@example.com")] and task == 1
    kinds = sorted(json.loads(r.body)["type"] for r in receiver.requests)
    assert len(receiver.requests) == 2 and len(set(keys(receiver))) == 2, kinds  # the digest and the escalation


def test_digest_items_carry_the_accounts_display_names(tmp_path):
    """Probe p31: digest items said "name": null of companies its data names."""
    import pandas as pd

    from workflow.messages import ActionItem
    from workflow.notify import named

    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"account_id": ["a1", "a2"], "name": ["Société Générale Ltd", "王氏贸易"]}).to_csv(
        data / "accounts.csv", index=False)
    pd.DataFrame({"account_id": ["a1"], "start_date": ["2025-01-01"], "end_date": ["2026-01-01"],
                  "mrr": [10.0]}).to_csv(data / "subscriptions.csv", index=False)
    items = [ActionItem(account_id=a, health_score=40.0, tier="medium_risk", as_of=dt.date(2025, 6, 1))
             for a in ("a1", "a2", "a3")]
    got = named(items, Settings(data=str(data)))
    assert [i.name for i in got] == ["Société Générale Ltd", "王氏贸易", None]
    assert named(items, Settings()) == items  # no data source: the ids alone
