"""Retention tasks in the operational store (issue 15, items 1-2): raised from alerts (one open task
per account, assigned to the account's CSM, due by the playbook), moved through their lifecycle
with every change audited, escalated once per level when overdue, and concurrent writers that
lose nothing; on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from core.settings import AlertRule, Playbook, Settings, TaskSettings, Webhook
from workflow import db
from workflow.alerts import raise_alerts, stored_alerts
from workflow.audit import history
from workflow.messages import Outcome
from workflow.notify import deliveries, send_pending
from workflow.people import add_user
from workflow.tasks import (
    TASKS,
    IllegalTransition,
    TaskError,
    TaskNotFound,
    VersionConflict,
    actionable,
    due_time,
    escalate_overdue,
    get_task,
    list_tasks,
    transition,
)

DAY0 = dt.date(2025, 3, 1)
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)  # a Wednesday
BELOW = AlertRule(name="below 60 for 7 days", kind="below_for", threshold=60, days=7, min_scores=2)
HIGH = AlertRule(name="entered high risk", kind="entered_high_risk")


def tier(h: int) -> str:
    return "healthy" if h >= 80 else "low_risk" if h >= 60 else "medium_risk" if h >= 40 else "high_risk"


def write_store(store: Path, accounts: dict[str, list[int]], mrr: dict[str, float] | None = None,
                csm: dict[str, str] | None = None, term_end: dict[str, int] | None = None) -> None:
    """A DuckDB store with daily scores (account -> healths from DAY0) and snapshots holding
    segment, MRR, CSM and days to the term's end (``term_end``, else none); replaces what the store held."""
    rows = []
    for account, healths in accounts.items():
        for i, h in enumerate(healths):
            rows.append({"account_id": account, "as_of": DAY0 + dt.timedelta(days=i), "health_score": h,
                         "tier": tier(h), "churn_probability": round((100 - h) / 100, 2),
                         "reasons_en": json.dumps([{"text": f"{account}: logins fell"}]),
                         "reasons_zh": json.dumps([{"text": f"{account}：登录减少"}], ensure_ascii=False),
                         "segment": "B", "mrr": (mrr or {}).get(account, 100.0),
                         "csm": (csm or {}).get(account, "Ana Li"),
                         "days_to_term_end": (term_end or {}).get(account)})
    frame = pd.DataFrame(rows).astype({"days_to_term_end": "float64"})
    with duckdb.connect(str(store)) as con:
        con.register("f", frame)
        con.execute("CREATE OR REPLACE TABLE score_history AS SELECT account_id, as_of, churn_probability, "
                    "health_score, tier, reasons_en, reasons_zh FROM f")
        con.execute("CREATE OR REPLACE TABLE snapshots AS SELECT account_id, as_of, segment, mrr, csm, "
                    "days_to_term_end FROM f")


def settings(**kw) -> Settings:
    return Settings(alert_rules=[BELOW, HIGH], **kw)


def test_an_alert_opens_one_task_assigned_to_the_csm_due_by_the_playbook_and_audited(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8, "a2": [90] * 9}, mrr={"a1": 2000.0})
    new = raise_alerts(store, settings(), engine, now=NOW)
    assert list(new["account_id"]) == ["a1"] and list(new["rule"]) == ["below 60 for 7 days"]
    assert new["expected_loss"].iloc[0] == pytest.approx(1000.0)  # MRR 2,000 x probability 0.5
    [task] = list_tasks(engine, now=NOW)
    assert task["account_id"] == "a1" and task["status"] == "open" and task["owner"] == "Ana Li"
    assert task["due_at"] == (NOW + dt.timedelta(hours=24)).isoformat()  # medium risk: 24 hours
    assert task["top_reason_en"] == "a1: logins fell" and task["top_reason_zh"] == "a1：登录减少"
    assert task["alert_ids"] == [new["alert_id"].iloc[0]]
    with engine.connect() as conn:
        [created] = history(conn, "task", task["id"])
        csm = conn.execute(sa.text("SELECT name, crm_name, role FROM users")).all()
    assert created["action"] == "create" and created["actor"] == "churnwatch" and created["after"]["status"] == "open"
    assert [tuple(r) for r in csm] == [("Ana Li", "Ana Li", "csm")]  # the CSM became a user on first sight
    assert raise_alerts(store, settings(), engine, now=NOW).empty  # nothing new: nothing raised twice
    assert len(stored_alerts(engine)) == 1


def test_a_new_alert_on_an_account_with_an_open_task_updates_it(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8})
    raise_alerts(store, settings(), engine, now=NOW)
    [before] = list_tasks(engine, now=NOW)
    write_store(store, {"a1": [70] + [50] * 8 + [30]})  # the account enters high risk: a second alert
    later = NOW + dt.timedelta(hours=1)
    new = raise_alerts(store, settings(), engine, now=later)
    assert list(new["rule"]) == ["entered high risk"]
    [after] = list_tasks(engine, now=later)
    assert after["id"] == before["id"] and after["tier"] == "high_risk"
    assert sorted(after["alert_ids"]) == sorted(before["alert_ids"] + [new["alert_id"].iloc[0]])
    assert after["due_at"] == (later + dt.timedelta(hours=4)).isoformat()  # high risk: 4 hours, earlier
    with engine.connect() as conn:
        entries = history(conn, "task", after["id"])
    assert [e["action"] for e in entries] == ["create", "update"]
    assert entries[1]["before"]["tier"] == "medium_risk" and entries[1]["after"]["tier"] == "high_risk"
    # the database refuses a second open task for the account
    with pytest.raises(sa.exc.IntegrityError), db.write(engine) as conn:
        conn.execute(TASKS.insert().values(account_id="a1", episode_key="other", tier="high_risk", status="open",
                                           created_at=NOW, updated_at=NOW))


def test_a_closed_task_leaves_the_next_episode_a_new_task(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8})
    raise_alerts(store, settings(), engine, now=NOW)
    [first] = list_tasks(engine, now=NOW)
    transition(engine, first["id"], "cancel", "ana", reason="customer already renewed", now=NOW)
    write_store(store, {"a1": [70] + [50] * 8 + [75] + [50] * 8})  # recovered, then a new episode
    raise_alerts(store, settings(), engine, now=NOW)
    active = list_tasks(engine, now=NOW)
    assert len(active) == 1 and active[0]["id"] != first["id"]
    assert [t["status"] for t in list_tasks(engine, status="all", now=NOW)] == ["cancelled", "open"]


def test_a_task_goes_through_every_state_with_the_audit_log(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8})
    with db.write(engine) as conn:
        add_user(conn, name="Bo Chen", email="bo@example.com", role="lead", team="East", actor="admin")
    raise_alerts(store, settings(), engine, now=NOW)
    tid = list_tasks(engine, now=NOW)[0]["id"]
    steps = [("plan", "Ana Li", {"text": "call the sponsor; offer a workshop"}, "plan_drafted"),
             ("approve", "bo@example.com", {}, "approved"),
             ("assign", "Bo Chen", {"to": "bo@example.com", "next_action": "workshop on Friday"}, "action_assigned"),
             ("done", "Bo Chen", {}, "done")]
    for verb, actor, kw, status in steps:
        task = transition(engine, tid, verb, actor, now=NOW, **kw)
        assert task["status"] == status
    assert task["plan"] == "call the sponsor; offer a workshop" and task["approved_by"] == "bo@example.com"
    assert task["owner"] == "Bo Chen" and task["next_action"] == "workshop on Friday" and task["allowed"] == []
    assert task["closed_at"] is not None and task["version"] == 5
    with engine.connect() as conn:
        entries = history(conn, "task", tid)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("create", "churnwatch"), ("plan", "Ana Li"), ("approve", "bo@example.com"), ("assign", "Bo Chen"),
        ("done", "Bo Chen")]
    assert entries[1]["before"] == {"status": "open", "plan": None}
    assert entries[3]["after"]["next_action"] == "workshop on Friday"
    with pytest.raises(IllegalTransition, match=r"task \d+ is done: it cannot become cancelled; allowed: none"):
        transition(engine, tid, "cancel", "Ana Li", reason="too late")


def test_illegal_steps_and_bad_input_are_named(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8})
    raise_alerts(store, settings(), engine, now=NOW)
    tid = list_tasks(engine, now=NOW)[0]["id"]
    with pytest.raises(IllegalTransition, match=r"is open: it cannot become approved; allowed: plan_drafted "
                                                 r"\(plan\), cancelled \(cancel\)") as exc:
        transition(engine, tid, "approve", "x")
    assert exc.value.status_code == 409
    with pytest.raises(TaskError, match="a plan needs its text"):
        transition(engine, tid, "plan", "x", text="  ")
    with pytest.raises(TaskError, match="cancelling needs a reason"):
        transition(engine, tid, "cancel", "x")
    with pytest.raises(TaskError, match="unknown action 'finish'"):
        transition(engine, tid, "finish", "x")
    with pytest.raises(TaskNotFound, match="unknown task 999"):
        transition(engine, 999, "plan", "x", text="t")
    with pytest.raises(VersionConflict, match="changed since version 0"):
        transition(engine, tid, "plan", "x", text="t", version=0)
    transition(engine, tid, "plan", "x", text="t", version=1)
    with pytest.raises(TaskError, match="unknown user 'nobody'"):
        transition(engine, transition(engine, tid, "approve", "lead")["id"], "assign", "x", to="nobody",
                   next_action="call")
    assert get_task(engine, tid)["status"] == "approved"  # a refused step changed nothing
    with pytest.raises(TaskError, match="unknown status 'later'"):
        list_tasks(engine, status="later")
    with pytest.raises(TaskError, match="unknown user 'zed'"):
        list_tasks(engine, owner="zed")


def test_filters_and_action_items_ordered_by_expected_loss(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8, "a2": [70] + [30] * 8, "a3": [70] + [55] * 8},
                mrr={"a1": 1000.0, "a2": 100.0, "a3": 5000.0}, csm={"a1": "Ana Li", "a2": "bo@example.com",
                                                                     "a3": "Ana Li"})
    raise_alerts(store, settings(), engine, now=NOW)
    assert [t["account_id"] for t in list_tasks(engine, owner="Ana Li", now=NOW)] == ["a1", "a3"]
    assert [t["account_id"] for t in list_tasks(engine, tier="high_risk", now=NOW)] == ["a2"]
    assert list_tasks(engine, overdue=True, now=NOW) == []
    late = NOW + dt.timedelta(hours=5)  # past the high-risk task's 4 hours only
    assert [t["account_id"] for t in list_tasks(engine, overdue=True, now=late)] == ["a2"]
    items = actionable(engine, lang="zh-CN", link_base="http://cw.example/")
    assert [i.account_id for i in items] == ["a3", "a1", "a2"]  # 2,250 > 500 > 70
    assert items[0].expected_loss == pytest.approx(2250.0) and items[0].top_reason == "a3：登录减少"
    assert items[0].owner == "Ana Li" and items[0].link == "http://cw.example/accounts/a3"
    # fired on day 7, still below 60 at the latest score (day 8): the task is told with that score, as of it
    assert items[2].owner == "bo@example.com" and items[0].as_of == DAY0 + dt.timedelta(days=8)


def test_overdue_escalates_exactly_once_per_level(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8, "a2": [70] + [52] * 8}, csm={"a1": "ana@example.com",
                                                                           "a2": "cy@example.com"})
    with db.write(engine) as conn:
        add_user(conn, name="Dee Boss", email="dee@example.com", role="admin", actor="admin")
        add_user(conn, name="Bo Chen", email="bo@example.com", role="lead", team="East", manager="dee@example.com",
                 actor="admin")
        add_user(conn, name="Ana Li", email="ana@example.com", role="csm", team="East", actor="admin")
        add_user(conn, name="Cy Wu", email="cy@example.com", role="lead", team="West", actor="admin")
    s = settings(tasks=TaskSettings(escalate_after_hours=[0, 24], escalation_channel="ops"),
                 webhooks=[Webhook(name="ops", url="http://127.0.0.1:9/ops")])
    raise_alerts(store, s, engine, now=NOW)
    due = NOW + dt.timedelta(hours=24)
    assert escalate_overdue(engine, s, now=due - dt.timedelta(minutes=1)) == []
    first = escalate_overdue(engine, s, now=due + dt.timedelta(hours=1))
    assert [(e["account_id"], e["level"], e["to_user"], e["channel"]) for e in first] == [
        ("a1", 1, "Bo Chen", None), ("a2", 1, None, None)]  # Cy leads West herself: no lead above her team
    assert escalate_overdue(engine, s, now=due + dt.timedelta(hours=2)) == []
    second = escalate_overdue(engine, s, now=due + dt.timedelta(hours=25))
    assert [(e["account_id"], e["level"], e["to_user"], e["channel"]) for e in second] == [
        ("a1", 2, "Dee Boss", None), ("a2", 2, None, "ops")]  # no manager: the configured channel
    assert escalate_overdue(engine, s, now=due + dt.timedelta(days=30)) == []
    escalations = [d for d in deliveries(engine) if d["kind"] == "escalation"]
    assert [(d["webhook"], d["status"]) for d in escalations] == [("ops", "pending")]
    tasks = {t["account_id"]: t for t in list_tasks(engine, now=NOW)}
    assert tasks["a1"]["escalation_level"] == 2
    with engine.connect() as conn:
        levels = [e["after"]["escalation_level"] for e in history(conn, "task", tasks["a1"]["id"])
                  if e["action"] == "escalate"]
    assert levels == [1, 2]


def test_an_overdue_task_skipping_a_level_still_notifies_each_level_once(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8})
    raise_alerts(store, settings(), engine, now=NOW)
    events = escalate_overdue(engine, settings(), now=NOW + dt.timedelta(days=10))
    assert [e["level"] for e in events] == [1, 2]
    assert escalate_overdue(engine, settings(), now=NOW + dt.timedelta(days=11)) == []


def test_working_days_deadlines_skip_weekends():
    book = Playbook(action_en="x", action_zh="x", owner="CSM", respond_within="3 working days",
                    respond_within_hours=72)
    friday = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)
    assert due_time(book, friday) == dt.datetime(2026, 12, 9, 10, 0, tzinfo=dt.UTC)  # Wednesday
    office = TaskSettings(day_start_hour=9, day_end_hour=17)
    # 3 days of 8 working hours: Fri 10-17 (7 h), Mon 9-17 (8 h), Tue (8 h), Wed 9-10 (1 h)
    assert due_time(book, friday, office) == dt.datetime(2026, 12, 9, 10, 0, tzinfo=dt.UTC)
    assert due_time(book, dt.datetime(2026, 12, 5, 20, 0, tzinfo=dt.UTC), office) == dt.datetime(
        2026, 12, 9, 17, 0, tzinfo=dt.UTC)  # from a Saturday: Mon, Tue, Wed
    hours = Playbook(action_en="x", action_zh="x", owner="CSM", respond_within="24 hours", respond_within_hours=24)
    assert due_time(hours, friday) == friday + dt.timedelta(hours=24)  # calendar hours: Saturday
    none = Playbook(action_en="x", action_zh="x", owner="CSM", respond_within="no deadline")
    assert due_time(none, friday) is None


def test_concurrent_people_never_lose_an_update(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8})
    raise_alerts(store, settings(), engine, now=NOW)
    tid = list_tasks(engine, now=NOW)[0]["id"]
    outcomes: list[str] = []

    def plan(who: str) -> None:  # both read version 1 and try to draft the plan
        try:
            transition(engine, tid, "plan", who, text=f"plan by {who}", version=1)
            outcomes.append("ok")
        except (VersionConflict, IllegalTransition) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=plan, args=(w,)) for w in ("ana", "bo", "cy", "di")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["VersionConflict"] * 3 + ["ok"]
    task = get_task(engine, tid)
    with engine.connect() as conn:
        plans = [e for e in history(conn, "task", tid) if e["action"] == "plan"]
    assert task["version"] == 2 and len(plans) == 1 and task["plan"] == f"plan by {plans[0]['actor']}"


def test_digests_are_queued_once_per_webhook_and_run_and_marked_by_outcome(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {f"a{i}": [70] + [50] * 8 for i in range(5)})
    hooks = [Webhook(name="slack", url="http://127.0.0.1:9/s", format="slack"),
             Webhook(name="generic", url="http://127.0.0.1:9/g")]
    s = settings(webhooks=hooks)
    assert len(raise_alerts(store, s, engine, now=NOW)) == 5
    assert raise_alerts(store, s, engine, now=NOW).empty
    queued = deliveries(engine)
    assert [(d["kind"], d["webhook"], d["status"], len(d["task_ids"])) for d in queued] == [
        ("digest", "slack", "pending", 5), ("digest", "generic", "pending", 5)]
    assert len({d["idempotency_key"] for d in queued}) == 2
    answers = {"slack": [Outcome("pending", 3, 429, "too many requests", retry_after=120),
                         Outcome("delivered", 1, 200)],
               "generic": [Outcome("failed", 1, 404, "HTTP 404 Not Found")]}
    posted = []

    def post(message, hook):
        posted.append((hook.name, message.idempotency_key, message.headers["Idempotency-Key"], message.body))
        return answers[hook.name].pop(0)

    def digest(hook, items, lang, link_base):
        from workflow.messages import Message

        return Message(webhook=hook.name, url=hook.url, body=json.dumps([i.account_id for i in items]).encode())

    assert send_pending(engine, s, post=post, digest=digest, now=NOW) == {"delivered": 0, "pending": 1,
                                                                           "failed": 1, "empty": 0}
    # the 429's Retry-After (120 s) beats the first backoff (60 s): nothing is due a minute later
    assert send_pending(engine, s, post=post, digest=digest, now=NOW + dt.timedelta(minutes=1))["pending"] == 0
    assert send_pending(engine, s, post=post, digest=digest, now=NOW + dt.timedelta(minutes=3)) == {
        "delivered": 1, "pending": 0, "failed": 0, "empty": 0}
    assert send_pending(engine, s, post=post, digest=digest, now=NOW + dt.timedelta(days=1)) == {
        "delivered": 0, "pending": 0, "failed": 0, "empty": 0}  # a 404 is not retried
    assert [p[0] for p in posted] == ["slack", "generic", "slack"]
    assert posted[0][1] == posted[2][1] == posted[0][2]  # the same key on every attempt, also as a header
    assert json.loads(posted[0][3]) == [f"a{i}" for i in range(5)]
    final = {d["webhook"]: d for d in deliveries(engine)}
    assert final["slack"]["status"] == "delivered" and final["slack"]["attempts"] == 4
    assert final["generic"]["status"] == "failed" and final["generic"]["last_error"] == "HTTP 404 Not Found"
    assert final["generic"]["http_status"] == 404


def test_a_delivery_to_a_removed_webhook_fails_naming_it(engine, tmp_path):
    store = tmp_path / "store.duckdb"
    write_store(store, {"a1": [70] + [50] * 8})
    raise_alerts(store, settings(webhooks=[Webhook(name="old", url="http://127.0.0.1:9/o")]), engine, now=NOW)
    counts = send_pending(engine, settings(), post=None, digest=None, now=NOW)
    assert counts["failed"] == 1
    assert "webhook 'old' is not configured" in deliveries(engine)[0]["last_error"]


def test_open_tasks_follow_the_accounts_latest_score_and_close_when_it_left_or_recovered(engine, tmp_path):
    """Probe p31: a task read "High risk, executive visit" on an account at health 98, and one stayed open for
    an account that had left. After each run: an untouched task of an account now healthy is cancelled as
    recovered; a task whose account the newest run did not score is cancelled (no longer a customer); a task
    in progress takes the newer score's tier and figures (its plan and action stay)."""
    store = tmp_path / "store.duckdb"
    first = {"a1": [70] + [50] * 8, "a2": [70] + [30] * 8, "a3": [70] + [45] * 8, "a4": [70] + [40] * 8}
    # a4's term ends 3 days after its last score: not scored by the newest run 4 days after that, a lapse within
    # the 30-day grace period (the API and the workspace say "lapsed"): its task stays (the review)
    term_end = {"a3": 200, "a4": 3}
    write_store(store, first, term_end=term_end)
    raise_alerts(store, settings(), engine, now=NOW)
    tasks = {t["account_id"]: t for t in list_tasks(engine, now=NOW)}
    assert set(tasks) == {"a1", "a2", "a3", "a4"}
    transition(engine, tasks["a2"]["id"], "plan", "Ana Li", text="call the sponsor", now=NOW)
    # a week on: a1 healthy again, a2 worse, a3 gone (not scored by the newest run), a4 lapsed
    later = {"a1": first["a1"] + [90] * 7, "a2": first["a2"] + [10] * 7, "a3": first["a3"], "a4": first["a4"]}
    write_store(store, later, term_end=term_end)
    raise_alerts(store, settings(), engine, now=NOW + dt.timedelta(days=7))
    every = {t["account_id"]: t for t in list_tasks(engine, status="all", now=NOW)}
    newest = DAY0 + dt.timedelta(days=15)
    assert every["a1"]["status"] == "cancelled"
    assert every["a1"]["cancel_reason"] == f"recovered: healthy at the score of {newest}"
    assert every["a3"]["status"] == "cancelled"
    assert every["a3"]["cancel_reason"] == (f"no longer a customer: not scored by the run of {newest} (last scored "
                                            f"{DAY0 + dt.timedelta(days=8)})")
    assert every["a4"]["status"] == "open" and every["a4"]["cancel_reason"] is None
    a2 = every["a2"]
    assert (a2["status"], a2["tier"], a2["health_score"], a2["as_of"]) == ("plan_drafted", "high_risk", 10,
                                                                          newest.isoformat())
    assert a2["plan"] == "call the sponsor" and a2["churn_probability"] == pytest.approx(0.9)
    with engine.connect() as conn:
        assert [e["action"] for e in history(conn, "task", a2["id"])][-1] == "refresh"
