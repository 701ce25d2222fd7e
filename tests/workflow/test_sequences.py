"""Tags and re-activation sequences (issue 15 item 5): rules tag accounts, tagged accounts are
enrolled and get their steps on schedule (time injected) exactly once, and leaving the condition
or churning ends the enrolment; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from core.settings import EmailSettings, Settings, TagRule
from tests.workflow.outreach_helpers import smtp_server
from workflow import db
from workflow.audit import history
from workflow.email import EMAILS
from workflow.facts import AccountFacts
from workflow.sequences import ACCOUNT_TAGS, STEPS_SENT, apply_tags, matches, run_sequences, status, tag_members

DAY0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def day(n: float) -> dt.datetime:
    return DAY0 + dt.timedelta(days=n)


def account(account_id: str, tier: str, health: int, **kw) -> AccountFacts:
    return AccountFacts(account_id=account_id, as_of=dt.date(2026, 3, 1), health_score=health, tier=tier,
                        churn_probability=0.5, name=f"{account_id} Ltd", contact="Kim",
                        email=f"{account_id.lower()}@example.com", numbers={"logins_90d": 300.0}, **kw)


def settings_for(port: int) -> Settings:
    return Settings.model_validate({
        "email": {"enabled": True, "port": port, "sender": "care@vendor.example"},
        "tags": [{"name": "at-risk", "tiers": ["medium_risk", "high_risk"]},
                 {"name": "key-contact-left", "features_above": {"contact_left_90d": 0}},
                 {"name": "churned", "churned": True}],
        "sequences": [{"name": "reactivation", "tag": "at-risk", "steps": [
            {"after_days": 0, "kind": "email"},
            {"after_days": 3, "kind": "task", "action": "call the account"},
            {"after_days": 7, "kind": "email", "template": "high_risk"}]}]})


class FakeTasks:
    """The task step's handler, recording what it was asked (helper D's workflow.tasks in production)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dt.datetime]] = []

    def __call__(self, engine, settings, step, facts, enrolment, now):
        self.calls.append((facts.account_id, step.action, now))
        return "done", f"task for {facts.account_id}"


def test_rules_judge_the_latest_score():
    a = account("A", "medium_risk", 45, reason_features=("contact_left_90d",))
    assert matches(TagRule(name="x", tiers=["medium_risk"]), a)
    assert not matches(TagRule(name="x", tiers=["high_risk"]), a)
    assert matches(TagRule(name="x", health_below=46), a) and not matches(TagRule(name="x", health_below=45), a)
    assert matches(TagRule(name="x", reasons=["contact_left_90d", "logins_30d"]), a)
    assert not matches(TagRule(name="x", reasons=["logins_30d"]), a)
    assert matches(TagRule(name="x", features_above={"logins_90d": 299}), a)
    assert not matches(TagRule(name="x", features_above={"contact_left_90d": 0}), a)  # absent: not met
    assert not matches(TagRule(name="x", tiers=["medium_risk"], health_below=40), a)  # all conditions
    gone = dataclasses.replace(a, churned=True)
    assert matches(TagRule(name="x", churned=True), gone)
    assert not matches(TagRule(name="x", tiers=["medium_risk"]), gone)
    with pytest.raises(ValueError, match="has no condition"):
        TagRule(name="x")
    with pytest.raises(ValueError, match="tag 'nope' is not one of the tags"):
        Settings.model_validate({"sequences": [{"name": "s", "tag": "nope", "steps": [{"after_days": 0,
                                                                                      "kind": "email"}]}]})
    with pytest.raises(ValueError, match="tag 'churned' is given to churned accounts"):
        Settings.model_validate({"sequences": [{"name": "s", "tag": "churned", "steps": [{"after_days": 0,
                                                                                         "kind": "email"}]}]})


def test_sequence_runs_on_schedule_exactly_once_and_ends_on_churn(engine):
    tasks = FakeTasks()
    with smtp_server() as inbox:
        settings = settings_for(inbox.port)
        a, b = account("A", "medium_risk", 45), account("B", "high_risk", 20)

        def run(when, *facts):
            return run_sequences(engine, settings, facts, when, handlers={"task": tasks})

        first = run(day(0), a, b)
        again = run(day(0.1), a, b)
        assert (first.enrolled, first.steps) == (2, {"email done": 2})
        assert first.tags["at-risk"] == {"added": 2, "removed": 0}
        assert (again.enrolled, again.steps) == (0, {})
        assert sorted(m["To"].addresses[0].addr_spec for m in inbox.messages) == ["a@example.com", "b@example.com"]
        subjects = {m["To"].addresses[0].addr_spec: m["Subject"] for m in inbox.messages}
        assert subjects == {"a@example.com": "A Ltd: can we help your team? A call or a training session, your choice",
                            "b@example.com": "B Ltd: let's talk about what you need from us"}  # each one's tier

        assert run(day(2.9), a, b).steps == {}  # the task is due on day 3
        assert run(day(3), a, b).steps == {"task done": 2}
        assert run(day(3.5), a, b).steps == {}
        assert sorted(c[0] for c in tasks.calls) == ["A", "B"] and {c[1] for c in tasks.calls} == {"call the account"}

        b_better = dataclasses.replace(b, tier="healthy", health_score=85)
        left = run(day(5), a, b_better)
        assert left.ended == {"left the condition": 1} and left.tags["at-risk"] == {"added": 0, "removed": 1}

        assert run(day(6.9), a, b_better).steps == {}
        assert run(day(7), a, b_better).steps == {"email done": 1}  # A only: B left on day 5
        assert run(day(7), a, b_better).steps == {}
        assert len(inbox.messages) == 3
        assert inbox.messages[2]["Subject"] == "A Ltd: let's talk about what you need from us"  # the step's template

        a_gone = dataclasses.replace(a, churned=True)
        churned = run(day(8), a_gone, b_better)
        assert churned.ended == {"churned": 1} and churned.tags["churned"]["added"] == 1
        assert run(day(20), a_gone, b_better).steps == {} and len(inbox.messages) == 3

    rows = {r["account_id"]: r for r in status(engine)}
    assert [(s["step"], s["kind"], s["status"]) for s in rows["A"]["steps"]] == [
        (0, "email", "done"), (1, "task", "done"), (2, "email", "done")]
    assert rows["A"]["end_reason"].startswith("churned") and rows["B"]["end_reason"] == \
        "left the condition: tag at-risk removed"
    assert [s["step"] for s in rows["B"]["steps"]] == [0, 1]
    assert {t: [m["account_id"] for m in ms] for t, ms in tag_members(engine).items()} == {"churned": ["A"]}
    with engine.connect() as conn:
        sent = conn.execute(sa.select(EMAILS.c.account_id, EMAILS.c.template, EMAILS.c.sequence)
                            .order_by(EMAILS.c.id)).all()
        b_tags = conn.execute(sa.select(ACCOUNT_TAGS.c.tag, ACCOUNT_TAGS.c.until).where(
            ACCOUNT_TAGS.c.account_id == "B")).all()
        actions = [e["action"] for e in history(conn, "account", "A")]
    assert sorted(sent) == [("A", "high_risk", "reactivation"), ("A", "medium_risk", "reactivation"),
                            ("B", "high_risk", "reactivation")]
    assert len(b_tags) == 1 and b_tags[0].tag == "at-risk" and b_tags[0].until is not None
    assert actions[:3] == ["tag", "sequence enrol", "email sent"] and actions[-1] == "sequence end"
    assert "untag" in actions


def test_concurrent_runs_send_each_step_once(engine):
    with smtp_server() as inbox:
        settings = settings_for(inbox.port)
        facts = [account(f"C{i}", "medium_risk", 50) for i in range(5)]
        errors: list[BaseException] = []

        def go():
            try:
                run_sequences(engine, settings, facts, day(0), handlers={"task": FakeTasks()})
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=go) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert sorted(m["To"].addresses[0].addr_spec for m in inbox.messages) == [f"c{i}@example.com" for i in range(5)]
    assert len(status(engine)) == 5


def test_a_failed_step_is_tried_again_on_the_next_run(tmp_path):
    engine = db.open_store(db.operations_url(tmp_path))
    try:
        with smtp_server() as inbox:
            port = inbox.port
        settings = settings_for(port)  # nothing listens: the first try fails
        a = account("A", "medium_risk", 45)
        failed = run_sequences(engine, settings, [a], day(0))
        assert failed.steps == {"email failed": 1}
        with smtp_server() as inbox:
            settings = settings.model_copy(update={"email": EmailSettings(enabled=True, port=inbox.port)})
            retried = run_sequences(engine, settings, [a], day(0.5))
            assert retried.steps == {"email done": 1} and len(inbox.messages) == 1
            assert run_sequences(engine, settings, [a], day(1)).steps == {}
        with engine.connect() as conn:
            row = conn.execute(sa.select(STEPS_SENT.c.status, STEPS_SENT.c.attempts)).one()
        assert tuple(row) == ("done", 2)
    finally:
        db.dispose_all()


def test_tags_without_sequences(engine):
    rules = [TagRule(name="key-contact-left", features_above={"contact_left_90d": 0})]
    left = dataclasses.replace(account("K", "low_risk", 70), numbers={"contact_left_90d": 1.0})
    assert apply_tags(engine, rules, [left, account("L", "low_risk", 70)], day(0)) == {
        "key-contact-left": {"added": 1, "removed": 0}}
    assert apply_tags(engine, rules, [left], day(1)) == {"key-contact-left": {"added": 0, "removed": 0}}
    assert [m["account_id"] for m in tag_members(engine)["key-contact-left"]] == ["K"]


def test_cli_tags_and_sequences(tmp_path):
    from typer.testing import CliRunner

    from churnwatch.cli import app
    from tests.workflow.outreach_helpers import write_store

    write_store(tmp_path / "store.duckdb", scores=[
        {"account_id": "A", "as_of": dt.date(2026, 3, 1), "health_score": 45, "tier": "medium_risk"},
        {"account_id": "H", "as_of": dt.date(2026, 3, 1), "health_score": 90, "tier": "healthy"},
        {"account_id": "G", "as_of": dt.date(2026, 2, 1), "health_score": 30, "tier": "high_risk"}],  # churned
        snapshots=[{"account_id": "A", "as_of": dt.date(2026, 3, 1), "contact_left_90d": 1.0}])
    (tmp_path / "churnwatch.yaml").write_text(
        "sequences:\n- {name: reactivation, tag: at-risk, steps: [{after_days: 0, kind: email}]}\n", encoding="utf-8")
    runner = CliRunner()
    try:
        ran = runner.invoke(app, ["sequences", "run", "--now", "2026-03-02", "--home", str(tmp_path)])
        assert ran.exit_code == 0, ran.output
        assert "tag at-risk: +1 -0" in ran.output and "tag churned: +1 -0" in ran.output
        assert "enrolled 1; ended 0" in ran.output and "steps: 1 email skipped" in ran.output  # email disabled
        shown = runner.invoke(app, ["tags", "--home", str(tmp_path)])
        assert shown.exit_code == 0 and "A (2026-03-02)" in shown.output and "G (2026-03-02)" in shown.output
        state = runner.invoke(app, ["sequences", "status", "--home", str(tmp_path)])
        assert "0:email skipped" in state.output and "reactivation" in state.output
        bad = runner.invoke(app, ["sequences", "run", "--now", "tomorrow", "--home", str(tmp_path)])
        assert "--now 'tomorrow': expected YYYY-MM-DD" in str(bad.exception)
    finally:
        db.dispose_all()


def test_a_task_step_opens_a_task_assigned_to_the_accounts_csm(engine):
    """The real task step (``workflow.tasks.open_task``): the task goes to the user of the account's CSM,
    a repeated run adds nothing, and an account without a CSM gets an unassigned task."""
    from workflow.people import USERS
    from workflow.tasks import TASKS

    settings = Settings.model_validate({
        "tags": [{"name": "at-risk", "tiers": ["medium_risk", "high_risk"]}],
        "sequences": [{"name": "call", "tag": "at-risk", "steps": [{"after_days": 0, "kind": "task"}]}]})
    with_csm = account("A", "high_risk", 20, csm="Ana Li")
    without = account("B", "medium_risk", 45)
    assert run_sequences(engine, settings, [with_csm, without], day(0)).steps == {"task done": 2}
    assert run_sequences(engine, settings, [with_csm, without], day(1)).steps == {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(TASKS.c.account_id, TASKS.c.assignee_id, TASKS.c.action, TASKS.c.status)
                            .order_by(TASKS.c.account_id)).all()
        names = dict(conn.execute(sa.select(USERS.c.id, USERS.c.crm_name)).all())
    assert [(r.account_id, names.get(r.assignee_id), r.status) for r in rows] == [
        ("A", "Ana Li", "open"), ("B", None, "open")]
    assert rows[0].action == settings.playbooks["high_risk"].action_en
