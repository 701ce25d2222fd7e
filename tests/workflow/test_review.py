"""The churn review (issue 15 item 7): findings as tracked work (audit-logged, SQLite and
PostgreSQL), the before/after comparison of a fix with a bootstrap interval that excludes 0 when
the metric truly moves and includes it when it does not, and the review report (HTML + Markdown,
both languages, user data escaped) from the real command."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.scores import write_history
from core.store import HISTORY_COLUMNS
from insights.review import build_review, compare, measure, write_review
from tests.diagnosis.test_diagnosis_figures import ACCOUNTS, EVENTS, FEEDBACK, SUBS, sub
from tests.tiny import D, settings, write_tables
from workflow import db
from workflow.audit import history
from workflow.interviews import InterviewIn, record
from workflow.interviews_api import findings_router
from workflow.review import FindingError, add, list_findings, update


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = db.operations_url(tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        base = db.create(url)
        with base.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        base.dispose()
    yield db.open_store(url)
    db.dispose_all()


def test_a_finding_is_tracked_work_with_an_audit_trail(engine):
    with pytest.raises(FindingError, match="no user 'Ana Li'.*--add-owner"):
        add(engine, "30% of churners found reports too complex", "Ana Li", actor="lead")
    f = add(engine, "30% of churners found reports too complex", "Ana Li", actor="lead", add_owner=True,
            detail="product task: simplify the report builder")
    assert (f["status"], f["owner"], f["change_date"], f["metric"]) == ("open", "Ana Li", None, None)
    with pytest.raises(FindingError, match="--change-date and --metric go together"):
        update(engine, f["id"], "lead", change_date=D(2024, 4, 1))
    with pytest.raises(FindingError, match="unknown metric 'nps'"):
        update(engine, f["id"], "lead", change_date=D(2024, 4, 1), metric="nps")
    with pytest.raises(FindingError, match="unknown status 'closed'.*open, in_progress, done, dropped"):
        update(engine, f["id"], "lead", status="closed")
    g = add(engine, "Onboarding calls take too long", "ana li", actor="lead")  # the same user, any case
    assert g["owner_id"] == f["owner_id"]
    update(engine, f["id"], "ana", status="in_progress")
    done = update(engine, f["id"], "ana", status="done", change_date=D(2024, 4, 1), metric="first_month_health")
    assert (done["status"], done["change_date"], done["metric"]) == ("done", "2024-04-01", "first_month_health")
    assert [x["id"] for x in list_findings(engine, "open")] == [g["id"]]
    assert [x["title"] for x in list_findings(engine)] == ["30% of churners found reports too complex",
                                                           "Onboarding calls take too long"]
    with engine.connect() as conn:
        trail = history(conn, "finding", str(f["id"]))
    assert [(e["action"], e["actor"]) for e in trail] == [("create", "lead"), ("update", "ana"), ("update", "ana")]
    assert (trail[2]["before"]["status"], trail[2]["after"]["status"]) == ("in_progress", "done")
    with pytest.raises(FindingError, match="no finding 999"):
        update(engine, 999, "ana", status="done")


def test_findings_over_http(engine):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    app.include_router(findings_router(lambda: engine))
    http = TestClient(app)
    r = http.post("/findings", json={"title": "Support replies too slow", "owner": "Lin"})
    assert r.status_code == 422 and "no user 'Lin'" in r.json()["detail"]
    r = http.post("/findings", json={"title": "Support replies too slow", "owner": "Lin", "add_owner": True,
                                     "change_date": "2025-03-01", "metric": "churn_rate"},
                  headers={"X-Churnwatch-User": "lead"})
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    assert (r.json()["owner"], r.json()["status"], r.json()["metric"]) == ("Lin", "open", "churn_rate")
    r = http.patch(f"/findings/{fid}", json={"status": "done"}, headers={"X-Churnwatch-User": "Lin"})
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert http.patch(f"/findings/{fid}", json={"status": "closed"}).status_code == 422
    assert http.patch(f"/findings/{fid}", json={"metric": "nps"}).status_code == 422
    assert http.patch("/findings/999", json={"status": "done"}).status_code == 404
    assert [f["id"] for f in http.get("/findings", params={"status": "done"}).json()] == [fid]
    assert http.get("/findings", params={"status": "open"}).json() == []
    assert http.get("/findings", params={"status": "nope"}).status_code == 422
    with engine.connect() as conn:
        assert [(e["action"], e["actor"]) for e in history(conn, "finding", str(fid))] == [
            ("create", "lead"), ("update", "Lin")]


# -- before/after ------------------------------------------------------------------------------

CHANGE = D(2024, 4, 1)


def new_accounts(first_month: list[float], start: dt.date, prefix: str):
    """One relationship per value starting every 3 days from ``start``, scored weekly in its first month
    with health = the value (+-2 around it, mean exact)."""
    rels, hist = [], []
    for i, v in enumerate(first_month):
        acc, begins = f"{prefix}{i}", start + dt.timedelta(days=3 * (i % 28))
        rels.append({"account_id": acc, "rel_start": pd.Timestamp(begins), "rel_end": pd.NaT})
        for k, delta in enumerate((-2, 2, 0, 0)):
            hist.append({"account_id": acc, "as_of": begins + dt.timedelta(days=7 * k), "health_score": v + delta})
    return rels, hist


def frames(before: list[float], after: list[float]):
    r1, h1 = new_accounts(before, CHANGE - dt.timedelta(days=88), "b")
    r2, h2 = new_accounts(after, CHANGE, "a")
    return pd.DataFrame(r1 + r2), pd.DataFrame(h1 + h2)


def test_first_month_health_that_truly_moves_gets_an_interval_excluding_zero():
    rng = np.random.default_rng(7)
    before = list(np.round(rng.normal(52, 10, 28)))
    after = list(np.round(rng.normal(64, 10, 28)))
    rel, hist = frames(before, after)
    m = measure("first_month_health", CHANGE, rel, pd.DataFrame(), hist, D(2025, 1, 1), 30)
    assert (m.before_n, m.after_n) == (28, 28)
    assert m.before == pytest.approx(np.mean(before)) and m.after == pytest.approx(np.mean(after))
    assert m.difference == pytest.approx(np.mean(after) - np.mean(before))
    assert 0 < m.ci_low < m.difference < m.ci_high
    assert m.verdict == "improved"


def test_first_month_health_that_does_not_move_gets_an_interval_including_zero():
    rng = np.random.default_rng(7)
    values = list(np.round(rng.normal(52, 10, 28)))
    rel, hist = frames(values, list(rng.permutation(values)))  # the same values after the change
    m = measure("first_month_health", CHANGE, rel, pd.DataFrame(), hist, D(2025, 1, 1), 30)
    assert m.difference == pytest.approx(0.0)
    assert m.ci_low < 0 < m.ci_high
    assert m.verdict == "no detectable change"


def test_the_interval_is_the_bootstrap_percentile_range():
    before, after = np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0])
    diff, lo, hi = compare(before, after, n_boot=4000, seed=1)
    assert diff == 2.0
    # the resampled difference is at most 6 - 1 = 5 and at least 3 - 4 = -1; its percentiles lie well inside
    assert -1 < lo < 2 < hi < 5
    assert compare(before, after, n_boot=4000, seed=1) == (diff, lo, hi)  # seeded: reproducible


def test_retention_of_new_accounts_and_churn_rate_move_when_churn_stops():
    # 30 relationships begin before the change, 20 of them end within 60 days; 30 after, none end
    rows = []
    for i in range(30):
        s = CHANGE - dt.timedelta(days=85 - 2 * i)
        rows.append({"account_id": f"b{i}", "rel_start": pd.Timestamp(s),
                     "rel_end": pd.Timestamp(s + dt.timedelta(days=60)) if i < 20 else pd.NaT})
        rows.append({"account_id": f"a{i}", "rel_start": pd.Timestamp(CHANGE + dt.timedelta(days=2 * i)),
                     "rel_end": pd.NaT})
    rel = pd.DataFrame(rows)
    m = measure("retention_90d_new", CHANGE, rel, pd.DataFrame(), pd.DataFrame(), D(2025, 1, 1), 30)
    assert (m.before_n, m.after_n, m.before, m.after) == (30, 30, pytest.approx(1 / 3), 1.0)
    assert m.ci_low > 0 and m.verdict == "improved"
    too_early = measure("retention_90d_new", CHANGE, rel, pd.DataFrame(), pd.DataFrame(), D(2024, 6, 1), 30)
    assert too_early.verdict == "not measurable yet" and "began too late" in too_early.note
    # churn rate: accounts active on the window start, relationship ending inside the window
    terms = rel.rename(columns={"rel_start": "start", "rel_end": "end"}).assign(rel_no=1)
    # window [Jan 31, Mar 1): b0..b12 active (begin Jan 7 + 2i), none ends (Mar 7 + 2i); window [Mar 1, Mar 31):
    # b0..b27 active, b0..b12 end by Mar 31: 0/13 -> 13/28, churn up = worse
    c = measure("churn_rate", D(2024, 3, 1), rel.assign(rel_no=1), terms, pd.DataFrame(), D(2025, 1, 1), 30, days=30)
    assert (c.before_n, c.after_n, c.before, c.after) == (13, 28, 0.0, pytest.approx(13 / 28))
    assert c.ci_low > 0 and c.verdict == "worsened"
    late = measure("churn_rate", D(2024, 12, 1), rel.assign(rel_no=1), terms, pd.DataFrame(), D(2025, 1, 1), 30)
    assert late.verdict == "not measurable yet" and "final only after" in late.note


# -- the review report -------------------------------------------------------------------------

HOSTILE = '<img src=x onerror=alert(1)>|x'


@pytest.fixture
def review_home(tmp_path):
    subs = [*SUBS, sub(HOSTILE, D(2023, 6, 1), D(2024, 4, 1))]
    accounts = [*ACCOUNTS, dict(account_id=HOSTILE, industry="<b>bold</b>")]
    data = write_tables(tmp_path / "d", {"subscriptions": subs, "events": EVENTS, "accounts": accounts,
                                         "churn_feedback": FEEDBACK})
    home = tmp_path / "h"
    # a score history: two accounts weekly from Jan to Jun 2024 (the first-month metric needs new accounts)
    rows = [{"account_id": a, "as_of": D(2024, 1, 1) + dt.timedelta(days=7 * k), "health_score": 40 + k}
            for a in ("a2", "a4") for k in range(26)]
    hist = pd.DataFrame(rows).assign(churn_probability=0.1, tier="low_risk")
    for c in HISTORY_COLUMNS:
        if c not in hist:
            hist[c] = None
    write_history(home / "store.duckdb", hist[list(HISTORY_COLUMNS)])
    return data, home


@pytest.mark.slow
def test_the_review_report_from_the_command(review_home):
    data, home = review_home
    engine = db.store_for(home)
    record(engine, InterviewIn(account_id=HOSTILE, interviewer="<i>Wei</i>", churned_at=D(2024, 4, 1),
                               answers={"main_reason": "太贵了，预算不够"}))
    add(engine, "<script>alert('finding')</script>", "Ana", actor="lead", add_owner=True,
        change_date=D(2024, 3, 1), metric="health_mean")
    db.dispose_all()
    env = {**os.environ, "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "churnwatch", "review", "--data", str(data), "--home", str(home),
                        "--end", "2024-05-01", "--days", "90"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    # a1 (Mar 1), the hostile account (Apr 1), a3 (Apr 15), a6 (May 1): 4 x 100 MRR
    assert "period 2024-02-01 - 2024-05-01: 4 relationship(s) ended, 400 MRR lost" in r.stdout
    assert "avoidable 75%" in r.stdout  # a1 price, hostile price (recorded), a3 service avoidable; a6 not
    assert "health_mean" in r.stdout and "95% CI" in r.stdout
    html = (home / "reports" / "review-2024-05-01.html").read_text(encoding="utf-8")
    md = (home / "reports" / "review-2024-05-01.md").read_text(encoding="utf-8")
    for text in (html, md):
        assert "<script>" not in text and "<img" not in text and "<b>bold" not in text
        assert "Who we lost" in text and "流失了哪些客户" in text and "Price · 价格" in text
    assert "&lt;img src=x onerror=alert(1)&gt;|x" in html
    assert "&lt;img src=x onerror=alert(1)&gt;\\|x" in md  # the Markdown cell's pipe escaped too
    assert "&lt;script&gt;alert(&#39;finding&#39;)&lt;/script&gt;" in html
    # health_mean: a2 and a4 scored 40 + week; before Mar 1 vs from it: the later weeks score higher
    assert "improved · 改善" in html
    # the CLI's bad input: one line, exit 2
    bad = subprocess.run([sys.executable, "-m", "churnwatch", "review", "finding", "add", "--title", "x", "--owner",
                          "Ana", "--metric", "nps", "--change-date", "2024-01-01", "--home", str(home)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and "unknown metric 'nps'" in bad.stderr and "Traceback" not in bad.stderr


def test_the_review_in_process_has_the_lost_accounts_and_the_plan_table(review_home, tmp_path):
    data, home = review_home
    engine = db.store_for(tmp_path / "ops")
    r = build_review(data, settings(), home / "store.duckdb", engine, D(2024, 5, 1), 90, n_boot=200)
    assert list(r.lost["account_id"]) == sorted(["a1", "a3", "a6", HOSTILE])  # equal MRR: by id
    assert r.lost_mrr == 400.0
    assert r.features_note == "the store has no snapshots"
    assert set(r.by_plan["value"]) == {"unknown"}
    assert r.loop is None and r.loop_note == "no interventions in the data"
    html, md = write_review(r, tmp_path / "out")
    assert html.name == "review-2024-05-01.html" and md.exists()
    db.dispose_all()
