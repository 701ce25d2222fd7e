"""Exit interviews (issue 15 item 6): the suggestion from the answers (English and Chinese), the
record by API with its audit log, the feed into `diagnose`'s reasons and avoidable share, the
printable form (escaped, rendered in headless Chromium), on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from insights.diagnosis import build_diagnosis
from tests.diagnosis.test_diagnosis_figures import ACCOUNTS, EVENTS, FEEDBACK, SUBS, WILSON, WINDOW
from tests.tiny import settings, write_tables
from workflow import db
from workflow.audit import history
from workflow.interviews import Answers, as_feedback, feedback_of_home, render_form, suggest
from workflow.interviews_api import interviews_router


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = db.operations_url(tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        base = db.create(url)
        with base.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        base.dispose()
    yield url
    db.dispose_all()


def client(url: str) -> TestClient:
    app = FastAPI()
    app.include_router(interviews_router(lambda: db.open_store(url)))
    return TestClient(app)


@pytest.mark.parametrize("main, better, category, avoidable", [
    ("Too expensive for what we used; the budget was cut", None, "price", True),
    ("Support never answered our tickets", "respond within a day", "service", True),
    ("The reporting feature is too complicated for our team", None, "product", True),
    ("We are switching to a competitor with a better offer", None, "competitor", True),
    ("We were acquired and the new owner uses another tool", None, "business_change", False),
    ("Our champion left the company and the successor prefers Excel", None, "business_change", False),
    ("No particular reason", None, "other", None),
    ("价格太贵，预算被削减", None, "price", True),
    ("客服响应太慢，工单没人理", None, "service", True),
    ("功能太复杂，很难用", None, "product", True),
    ("改用了竞争对手的产品，他们给了更好的报价", None, "competitor", True),
    ("公司破产了", None, "business_change", False),
    ("我们被收购了，新公司改用别家产品", None, "business_change", False),
])
def test_suggestion_from_the_answers(main, better, category, avoidable):
    s = suggest(Answers(main_reason=main, do_better=better))
    assert (s.category, s.avoidable) == (category, avoidable)
    if category != "other":
        assert s.basis["main_reason"], "the keywords that decided it are kept"


def test_later_answers_tip_a_vague_main_reason():
    # main reason names nothing; the one thing to do better and the replacement do
    s = suggest(Answers(main_reason="it just did not work out", do_better="cheaper plans",
                        instead="a cheaper tool"))
    assert s.category == "price" and s.basis == {"do_better": ["cheaper"], "instead": ["cheaper"]}


def test_interview_by_api_feeds_diagnose(store, tmp_path):
    # a3's imported row is replaced by the recorded interview (same churn date); a1's is left out of the
    # import and only recorded; the form of a6 stays imported
    imported = [f for f in FEEDBACK if f["account_id"] not in ("a1",)]
    data = write_tables(tmp_path / "d", {"subscriptions": SUBS, "events": EVENTS, "accounts": ACCOUNTS,
                                         "churn_feedback": imported})
    http = client(store)
    r = http.post("/interviews", json={
        "account_id": "a1", "interviewer": "Wei Zhang", "churned_at": "2024-03-01", "interviewed_on": "2024-03-10",
        "lang": "zh-CN", "answers": {"main_reason": "价格太贵，预算不够", "come_back": "打折的话"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["suggested_category"], body["suggested_avoidable"], body["confirmed"]) == ("price", True, False)
    r = http.post("/interviews", json={
        "account_id": "a3", "interviewer": "Ana Li", "churned_at": "2024-04-15",
        "answers": {"main_reason": "We went bankrupt"}})
    assert r.json()["suggested_category"] == "business_change" and r.json()["suggested_avoidable"] is False
    # the interviewer changes a1's suggestion: the suggestion stays, the confirmed value is used
    r = http.post("/interviews/a1/confirm", json={"category": "competitor", "avoidable": True, "by": "Wei Zhang"})
    assert r.status_code == 200, r.text
    assert (r.json()["suggested_category"], r.json()["category"], r.json()["confirmed"]) == (
        "price", "competitor", True)
    got = http.get("/interviews/a1").json()
    assert len(got) == 1 and got[0]["reason_category"] == "competitor" and got[0]["confirmed_by"] == "Wei Zhang"
    assert [i["account_id"] for i in http.get("/interviews").json()] == ["a1", "a3"]
    assert [i["account_id"] for i in http.get("/interviews", params={"since": "2024-04-01"}).json()] == ["a3"]
    with db.open_store(store).connect() as conn:
        trail = history(conn, "exit_interview", str(got[0]["id"]))
    assert [e["action"] for e in trail] == ["create", "confirm"]
    assert trail[1]["before"]["category"] is None and trail[1]["after"]["category"] == "competitor"

    feedback = as_feedback(db.open_store(store))
    diag = build_diagnosis(data, settings(), window=WINDOW, interviews=feedback)
    reasons, flags = diag.reasons.set_index("reason_category"), diag.avoidable.set_index("flag")
    # in the window: a1 competitor (recorded, confirmed avoidable), a3 business_change (recorded, replaces the
    # imported "service"), a6 business_change (imported, unavoidable)
    assert reasons["interviews"].to_dict() == {"business_change": 2, "competitor": 1}
    assert "service" not in reasons.index and "price" not in reasons.index
    assert flags.loc["avoidable", "interviews"] == 1 and flags.loc["unavoidable", "interviews"] == 2
    assert flags.loc["avoidable", "share"] == pytest.approx(1 / 3)
    assert (flags.loc["avoidable", "ci_low"], flags.loc["avoidable", "ci_high"]) == pytest.approx(WILSON[(1, 3)],
                                                                                               abs=1e-6)


def test_feedback_of_a_home_without_a_store_is_empty_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(db.URL_ENV, raising=False)
    assert feedback_of_home(tmp_path).empty
    assert not (tmp_path / db.SQLITE_FILE).exists()


def test_bad_input_is_a_422_naming_the_field_and_an_unknown_account_a_404(store):
    http = client(store)
    r = http.post("/interviews", json={"account_id": "a1", "interviewer": "x", "answers": {"main_reason": ""}})
    assert r.status_code == 422 and "main_reason" in r.text
    r = http.post("/interviews", json={"account_id": "a1", "interviewer": "x", "category": "weather",
                                       "answers": {"main_reason": "price"}})
    assert r.status_code == 422 and "unknown reason category 'weather'" in r.text
    r = http.post("/interviews", json={"account_id": "a1", "interviewer": "x", "churned_at": "yesterday",
                                       "answers": {"main_reason": "price"}})
    assert r.status_code == 422 and "churned_at" in r.text
    assert http.get("/interviews/nobody").status_code == 404
    r = http.post("/interviews/nobody/confirm", json={"category": "price", "by": "x"})
    assert r.status_code == 404 and "nobody" in r.text


@pytest.fixture
def cli(run_cli):
    """``churnwatch ARGS`` through ``churnwatch.cli.main`` in this process (tests/conftest.py ``run_cli``)."""
    return run_cli


@pytest.mark.slow
def test_interviews_recorded_by_the_cli_feed_the_diagnose_command(tmp_path, monkeypatch, cli):
    monkeypatch.delenv(db.URL_ENV, raising=False)
    imported = [f for f in FEEDBACK if f["account_id"] != "a1"]
    data = write_tables(tmp_path / "d", {"subscriptions": SUBS, "events": EVENTS, "accounts": ACCOUNTS,
                                         "churn_feedback": imported})
    home = tmp_path / "h"
    answers = tmp_path / "a1.yaml"
    answers.write_text("main_reason: 价格太贵\nasked_for_help: 问过客服，回复很慢\ncome_back: 降价 30%\n",
                       encoding="utf-8")
    r = cli("interview", "record", "a1", "--interviewer", "Wei Zhang", "--answers", str(answers), "--churned-at",
            "2024-03-01", "--lang", "zh-CN", "--home", str(home))
    assert r.returncode == 0, r.stderr
    assert "suggested: price, avoidable" in r.stdout and "not confirmed yet" in r.stdout
    r = cli("interview", "confirm", "a1", "--category", "competitor", "--avoidable", "--by", "Wei", "--home",
            str(home))
    assert r.returncode == 0 and "confirmed by Wei: competitor, avoidable" in r.stdout, r.stderr
    r = cli("diagnose", "--data", str(data), "--home", str(home), "--start", "2024-02-01", "--end", "2024-05-01",
            "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-2000:]
    # a1 (recorded, confirmed competitor), a3 service, a6 business_change: 3 interviews, 2 avoidable
    assert "exit interviews in the window: 3 (coverage 100% of churns)" in r.stdout
    assert "competitor 33%" in r.stdout and "avoidable 66.7%" in r.stdout
    bad = cli("interview", "record", "a1", "--interviewer", "Wei", "--home", str(home))
    assert bad.returncode == 2 and "the main reason is missing" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("interview", "record", "a1", "--interviewer", "Wei", "--reason", "x", "--category", "weather",
              "--home", str(home))
    assert bad.returncode == 2 and "unknown reason category 'weather'" in bad.stderr
    r = cli("interview", "form", "<a1>", "--lang", "zh-CN", "--home", str(home))
    assert r.returncode == 0 and (home / "reports" / "interview-_a1_.html").exists()


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.mark.parametrize("lang, title, second", [("en", "Exit interview", "您离开的主要原因是什么？"),
                                                 ("zh-CN", "离职访谈表", "What is the main reason you are leaving?")])
def test_the_printable_form_escapes_the_account_and_renders_in_chromium(tmp_path, lang, title, second):
    html = render_form(HOSTILE, lang=lang)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img" not in html
    assert title in html and second in html
    if not shutil.which("chromium") and not shutil.which("chromium-browser"):
        pytest.skip("no chromium")
    from churnwatch.browser import dump_dom, pixel_spread, screenshot

    page = tmp_path / "form.html"
    page.write_text(html, encoding="utf-8")
    dom = dump_dom(page)
    assert 'id="account"' in dom and "&lt;script&gt;alert" in dom  # the id is text, not a script
    assert "<img" not in dom
    assert dom.count('class="question"') == 6  # five questions and the categories
    png = screenshot(page, tmp_path / "form.png", width=900, height=1200)
    assert pixel_spread(png) > 20


def test_concurrent_first_interviews_of_one_churn_keep_one_record(store):
    """Eight interviewers save the first interview of the same churn at once: none fails (on PostgreSQL
    FOR UPDATE locks no row that does not exist yet, so the inserts race), one record stays, and
    the audit log has one create and seven updates."""
    import datetime as dt
    import threading

    from workflow.interviews import InterviewIn, get, record

    engine = db.open_store(store)
    start, errors = threading.Barrier(8), []

    def save(i: int) -> None:
        start.wait()
        try:
            record(engine, InterviewIn(account_id="acct-1", interviewer=f"csm{i}", churned_at=dt.date(2026, 3, 1),
                                       answers=Answers(main_reason=f"too expensive ({i})")))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever escaped
            errors.append(repr(exc))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = get(engine, "acct-1")
    assert len(rows) == 1 and rows[0]["interviewer"] in {f"csm{i}" for i in range(8)}
    with engine.connect() as conn:
        actions = sorted(h["action"] for h in history(conn, "exit_interview", str(rows[0]["id"])))
    assert actions == ["create"] + ["update"] * 7
