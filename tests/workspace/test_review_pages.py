"""The exit-interview form and the churn review pages over the tiny home: the suggestion shown
for a known keyword, the interviewer's confirmed category and flag stored (read back from the
operational store), scope (403) and CSRF (403), hostile answers rendered as text; the review page
shows the numbers of the insights functions as stored by `churnwatch diagnose`, findings are added
and moved (and their stored before/after measurement shown); no English label on the Chinese
pages; a lead records an interview in a real headless Chromium."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from insights.review import measure
from insights.review_store import measurement_of, read_measurements, save_measurements
from tests.workflow.test_review import review_home  # noqa: F401 (a fixture: the review's data)
from tests.workspace.conftest import token_of
from tests.workspace.review_data import DATA_END, GRACE, WINDOW, frames, write_stored_diagnosis
from tests.workspace.test_pages import Dom, assert_inert, english_labels
from workflow import interviews, review
from workflow.audit import AUDIT
from workflow.db import store_for

HOSTILE = '<script>alert("a")</script> "><img src=x onerror=alert(1)> too expensive'


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A diagnosis stored once per module (the insights functions' own output)."""
    folder = tmp_path_factory.mktemp("stored")
    diag, loop, data = write_stored_diagnosis(folder)
    return folder / "reports" / "diagnosis", diag, loop, data


@pytest.fixture
def with_diagnosis(home, stored):
    shutil.copytree(stored[0], home / "reports" / "diagnosis")
    return stored


def interview_form(client, account="gone", **answers):
    page = client.get(f"/accounts/{account}/exit-interview")
    assert page.status_code == 200, page.text
    return {"csrf_token": token_of(page.text), "churned_at": "2026-11-06", "interviewed_on": "2026-11-10",
            "main_reason": "", "asked_for_help": "", "do_better": "", "instead": "", "come_back": "", **answers}


def checked(dom: Dom, name: str) -> list[str]:
    return [a.get("value") for t, a in dom.tags if t == "input" and a.get("name") == name and "checked" in a]


def selected(dom: Dom) -> list[str]:
    return [a.get("value") for t, a in dom.tags if t == "option" and "selected" in a]


# -- exit interviews -----------------------------------------------------------------------

def test_the_account_page_of_a_churned_account_links_the_form(as_user):
    ana = as_user("ana@example.com")
    dom = Dom(ana.get("/accounts/gone").text)
    assert ("a", {"id": "record-exit-interview", "href": "/accounts/gone/exit-interview"}) in dom.tags
    assert not any(a.get("id") == "record-exit-interview" for _, a in Dom(ana.get("/accounts/acme").text).tags)
    form = Dom(ana.get("/accounts/gone/exit-interview").text)
    names = [a["name"] for t, a in form.tags if t == "textarea"]
    assert names == list(interviews.ANSWER_FIELDS)
    assert ("input", {"type": "date", "name": "churned_at", "value": "2026-11-06"}) in form.tags  # the account's


@pytest.mark.parametrize(("reason", "category", "avoidable"), [
    ("It was too expensive for our budget", "price", "yes"),
    ("We were acquired and the parent company uses another tool", "business_change", "no"),
    ("功能太复杂，团队不会用", "product", "yes"),
])
def test_the_suggestion_for_a_known_keyword_is_shown_preselected(as_user, reason, category, avoidable):
    ana = as_user("ana@example.com")
    answer = ana.post("/accounts/gone/exit-interview", data=interview_form(ana, main_reason=reason, step="suggest"))
    assert answer.status_code == 200
    dom = Dom(answer.text)
    assert ("b", {"id": "suggested-category", "data-category": category}) in dom.tags
    assert selected(dom)[-1] == category and checked(dom, "avoidable") == [avoidable]
    assert interviews.get(store_for(ana.app.state.home), "gone") == []  # a suggestion stores nothing


def test_submitting_stores_the_answers_and_the_confirmed_category_and_flag(as_user, home):
    ana = as_user("ana@example.com")
    data = interview_form(ana, main_reason="The price was too expensive", asked_for_help="yes, support was slow",
                          do_better="cheaper plan", instead="a spreadsheet", come_back="a discount")
    answer = ana.post("/accounts/gone/exit-interview", data={**data, "step": "save", "category": "service",
                                                               "avoidable": "no"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/accounts/gone#exit-interview"
    engine = store_for(home)
    [saved] = interviews.get(engine, "gone")
    assert {k: saved[k] for k in interviews.ANSWER_FIELDS} == {
        "main_reason": "The price was too expensive", "asked_for_help": "yes, support was slow",
        "do_better": "cheaper plan", "instead": "a spreadsheet", "come_back": "a discount"}
    assert (saved["suggested_category"], saved["suggested_avoidable"]) == ("price", True)
    assert (saved["category"], saved["avoidable"], saved["confirmed"]) == ("service", False, True)
    assert (saved["interviewer"], saved["confirmed_by"], saved["churned_at"], saved["interviewed_on"]) == (
        "Ana Li", "Ana Li", "2026-11-06", "2026-11-10")
    with engine.connect() as conn:
        actions = conn.execute(sa.select(AUDIT.c.actor, AUDIT.c.action).where(
            AUDIT.c.entity == interviews.ENTITY)).all()
    assert actions == [("Ana Li", "create")]
    page = Dom(ana.get("/accounts/gone").text)
    assert "Category: Service" in page.text and "The price was too expensive" in page.text
    listed = Dom(ana.get("/interviews").text)
    assert ("tr", {"data-account": "gone"}) in listed.tags and "The price was too expensive" in listed.texts
    again = Dom(ana.get("/accounts/gone/exit-interview").text)  # the recorded one, to change later
    assert "The price was too expensive" in again.texts and "a discount" in again.texts
    assert ("b", {"id": "suggested-category", "data-category": "price"}) in again.tags
    assert selected(again)[-1] == "service" and checked(again, "avoidable") == ["no"]


def test_a_missing_main_reason_or_category_is_named(as_user, home):
    ana = as_user("ana@example.com")
    answer = ana.post("/accounts/gone/exit-interview", data=interview_form(ana, main_reason="  ", step="suggest"))
    assert answer.status_code == 422 and "The main reason is required." in Dom(answer.text).text
    answer = ana.post("/accounts/gone/exit-interview", data=interview_form(
        ana, main_reason="too expensive", step="save", category="nonsense"))
    assert answer.status_code == 422 and "Choose a category" in answer.text
    answer = ana.post("/accounts/gone/exit-interview", data=interview_form(
        ana, main_reason="too expensive", step="save", category="price", churned_at="yesterday"))
    assert answer.status_code == 422 and "is not a date YYYY-MM-DD" in answer.text
    assert interviews.get(store_for(home), "gone") == []


def test_a_csm_cannot_open_or_submit_for_another_csms_account(as_user, home):
    ana = as_user("ana@example.com")
    data = interview_form(ana, main_reason="too expensive", step="save", category="price", avoidable="yes")
    bo = as_user("bo@example.com")
    assert bo.get("/accounts/gone/exit-interview").status_code == 403
    answer = bo.post("/accounts/gone/exit-interview", data={**data, "csrf_token": token_of(bo.get("/").text)})
    assert answer.status_code == 403
    assert bo.get("/accounts/nope/exit-interview").status_code == 404
    assert interviews.get(store_for(home), "gone") == []
    assert "gone" not in Dom(bo.get("/interviews").text).text


def test_a_post_without_the_csrf_token_is_refused(as_user, home):
    ana = as_user("ana@example.com")
    data = interview_form(ana, main_reason="too expensive", step="save", category="price", avoidable="yes")
    data.pop("csrf_token")
    assert ana.post("/accounts/gone/exit-interview", data=data).status_code == 403
    lee = as_user("lee@example.com")
    assert lee.post("/review/findings", data={"title": "x", "owner": "lee@example.com"}).status_code == 403
    assert lee.post("/review/findings/1/status", data={"status": "done", "csrf_token": "wrong"}).status_code == 403
    assert interviews.get(store_for(home), "gone") == [] and review.list_findings(store_for(home)) == []


def test_hostile_answers_render_as_text(as_user):
    lee = as_user("lee@example.com")
    data = interview_form(lee, main_reason=HOSTILE, instead=HOSTILE, step="save", category="price",
                          avoidable="yes")
    assert lee.post("/accounts/gone/exit-interview", data=data, follow_redirects=False).status_code == 303
    for url in ("/accounts/gone", "/interviews", "/accounts/gone/exit-interview"):
        assert HOSTILE in assert_inert(lee.get(url).text).texts, url
    suggested = lee.post("/accounts/gone/exit-interview", data={**data, "step": "suggest"})
    assert_inert(suggested.text)


# -- the churn review ----------------------------------------------------------------------

def test_the_review_is_for_leads_and_admins(as_user):
    ana = as_user("ana@example.com")
    assert ana.get("/review").status_code == 403
    token = token_of(ana.get("/").text)
    assert ana.post("/review/findings", data={"title": "x", "owner": "Ana Li", "csrf_token": token}).status_code == 403
    assert ana.post("/review/findings/1/status", data={"status": "done", "csrf_token": token}).status_code == 403
    assert "/review" not in [a.get("href") for _, a in Dom(ana.get("/").text).tags]
    for login in ("lee@example.com", "root@example.com"):
        answer = as_user(login).get("/review")
        assert answer.status_code == 200
        assert "No diagnosis stored yet: run `churnwatch diagnose` on this home." in Dom(answer.text).text


def rows_of(dom: Dom, cls: str) -> list[dict]:
    return [a for t, a in dom.tags if t == "tr" and cls in (a.get("class") or "").split()]


def cells(html: str, start_marker: str) -> list[str]:
    """The text cells of the first table row after ``start_marker`` (a row's opening tag)."""
    row = html.split(start_marker, 1)[1].split("</tr>", 1)[0]
    return Dom(row).texts


def test_the_review_shows_the_stored_diagnosis_numbers(as_user, with_diagnosis):
    _, diag, loop, _ = with_diagnosis
    lee = as_user("lee@example.com")
    html = lee.get("/review").text
    dom = assert_inert(html)
    d = diag.definitions()
    lo, hi = d["overall_ci"]
    assert (f"{d['churned']} of {d['accounts']} accounts active at the window start churned: "
            f"{d['overall_rate']:.1%} [{lo:.1%}, {hi:.1%}]") in dom.text
    differ = diag.by_segment[diag.by_segment["differs"]].sort_values("q_value")
    assert len(differ) >= 2
    section = html.split('id="segments-differ"', 1)[1].split("</table>", 1)[0]
    shown = [(a["data-dimension"], a["data-value"]) for a in rows_of(Dom(section), "segment")]
    assert shown == list(zip(differ["dimension"], differ["value"]))  # lowest q first
    for s in differ.itertuples():
        marker = f'<tr class="segment differs" data-dimension="{s.dimension}" data-value="{s.value}">'
        texts = cells(section, marker)
        assert texts[2:6] == [str(s.accounts), str(s.churned), f"{s.churn_rate:.1%}",
                              f"[{s.ci_low:.1%}, {s.ci_high:.1%}]"]
    for r in diag.reasons.itertuples():
        texts = cells(html, f'<tr class="reason" data-category="{r.reason_category}">')
        assert texts[1:4] == [str(r.interviews), f"{r.share:.1%}", f"[{r.ci_low:.1%}, {r.ci_high:.1%}]"]
    table = loop.table.dropna(subset=["difference"])
    assert len(table) >= 2
    for r in table.itertuples():
        texts = cells(html, f'<tr class="effect" data-tier="{r.tier}" data-playbook="{r.playbook}">')
        assert texts[2:] == [str(r.treated_matched), f"{r.treated_retention:.1%}", f"{r.comparable_retention:.1%}",
                             f"{r.difference * 100:+.1f} pp",
                             f"[{r.ci_low * 100:+.1f} pp, {r.ci_high * 100:+.1f} pp]"]
    curves = [a for t, a in dom.tags if t == "polyline" and a.get("class") == "curve"]
    assert len(curves) == diag.survival_size[1]["group"].nunique() >= 2
    assert "Observational, not randomised" in dom.text


def test_a_rewritten_diagnosis_replaces_the_cached_one(as_user, with_diagnosis, home):
    import json

    lee = as_user("lee@example.com")
    assert "2 of 3 accounts" not in Dom(lee.get("/review").text).text
    path = home / "reports" / "diagnosis" / "diagnosis.json"
    data = json.loads(path.read_text())
    data.update(churned=2, accounts=3)
    path.write_text(json.dumps(data))
    assert "2 of 3 accounts active at the window start churned" in Dom(lee.get("/review").text).text


def test_a_broken_stored_file_is_named_on_the_page(as_user, with_diagnosis, home):
    (home / "reports" / "diagnosis" / "exit-reasons.json").write_text("[{broken")
    (home / "reports" / "review-measurements.json").write_text("{")
    answer = as_user("lee@example.com").get("/review")
    assert answer.status_code == 200
    errors = [x for x in Dom(answer.text).texts if x.startswith("A stored result cannot be read")]
    assert [("exit-reasons.json" in e, "review-measurements.json" in e) for e in errors] == [(True, False),
                                                                                            (False, True)]
    text = Dom(answer.text).text
    assert "Add a finding" in text


def test_findings_are_added_moved_and_show_their_stored_measurement(as_user, home, with_diagnosis):
    _, _, _, data = with_diagnosis
    lee = as_user("lee@example.com")
    token = token_of(lee.get("/review").text)
    answer = lee.post("/review/findings", data={
        "title": "Reports too complex", "owner": "ana@example.com", "detail": "<b>30%</b> said so",
        "metric": "health_mean", "change_date": "2025-05-01", "csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    answer = lee.post("/review/findings", data={"title": "No fix yet", "owner": "Lee Wu", "csrf_token": token},
                      follow_redirects=False)
    assert answer.status_code == 303
    engine = store_for(home)
    first, second = review.list_findings(engine)
    assert (first["title"], first["owner"], first["status"], first["metric"], first["change_date"],
            first["created_by"]) == ("Reports too complex", "Ana Li", "open", "health_mean", "2025-05-01", "Lee Wu")
    assert (second["owner"], second["metric"]) == ("Lee Wu", None)
    dom = Dom(lee.get("/review").text)
    assert "Finding 2 added." in dom.text and "<b>30%</b> said so" in dom.text
    assert "Not measured yet: run `churnwatch review`." in dom.text
    # `churnwatch review` stores the measurement; the page shows it
    m = measure("health_mean", dt.date(2025, 5, 1), data["relationships"], data["terms"], data["scores"],
                DATA_END, GRACE, days=90, n_boot=200)
    save_measurements(SimpleNamespace(window=WINDOW, findings=[{**first, "measurement": m}]), home / "reports")
    html = lee.get("/review").text
    row = "|".join(cells(html, f'<tr class="finding" data-id="{first["id"]}" data-status="open">'))
    assert (f"|{m.before:,.1f}|(n={m.before_n})|{m.after:,.1f}|(n={m.after_n})|"
            f"{m.difference:+,.2f} [{m.ci_low:+,.2f}, {m.ci_high:+,.2f}]|{m.verdict}|") in row, row
    assert m.before_n > 100 and m.after_n > 100
    # move it
    answer = lee.post(f"/review/findings/{first['id']}/status", data={"status": "in_progress", "csrf_token": token},
                      follow_redirects=False)
    assert answer.status_code == 303
    assert review.list_findings(engine, "in_progress")[0]["id"] == first["id"]
    assert f"Finding {first['id']}: in progress." in Dom(lee.get("/review").text).text
    with engine.connect() as conn:
        audit = conn.execute(sa.select(AUDIT.c.actor, AUDIT.c.action).where(AUDIT.c.entity == review.ENTITY)
                             .order_by(AUDIT.c.id)).all()
    assert audit == [("Lee Wu", "create"), ("Lee Wu", "create"), ("Lee Wu", "update")]
    # rules broken are named; an unknown finding is a 404
    bad = lee.post(f"/review/findings/{first['id']}/status", data={"status": "finished", "csrf_token": token})
    assert bad.status_code == 422 and "unknown status 'finished'" in Dom(bad.text).text
    assert lee.post("/review/findings/99/status", data={"status": "done", "csrf_token": token}).status_code == 404
    bad = lee.post("/review/findings", data={"title": "x", "owner": "nobody", "csrf_token": token})
    assert bad.status_code == 422 and "no user 'nobody'" in Dom(bad.text).text
    bad = lee.post("/review/findings", data={"title": "x", "owner": "Lee Wu", "metric": "churn_rate",
                                             "csrf_token": token})
    assert bad.status_code == 422 and "go together" in bad.text


def test_a_stored_measurement_belongs_to_the_metric_and_date_it_was_measured_for(tmp_path):
    assert read_measurements(tmp_path) == {"period": None, "measured_at": None, "findings": {}}
    f = frames()
    m = measure("health_mean", dt.date(2025, 5, 1), f["relationships"], f["terms"], f["scores"], DATA_END, GRACE,
                days=90, n_boot=100)
    finding = {"id": 4, "metric": "health_mean", "change_date": "2025-05-01"}
    save_measurements(SimpleNamespace(window=WINDOW, findings=[{**finding, "measurement": m}, {"id": 5}]), tmp_path)
    stored = read_measurements(tmp_path)
    assert list(stored["findings"]) == ["4"] and stored["period"] == {"start": "2025-01-01", "end": "2025-12-01"}
    assert measurement_of(stored, finding)["difference"] == pytest.approx(m.difference)
    assert measurement_of(stored, {**finding, "change_date": "2025-06-01"}) is None  # changed since: not measured
    assert measurement_of(stored, {**finding, "metric": "churn_rate"}) is None


def test_the_review_command_stores_what_the_page_reads(review_home, tmp_path):  # noqa: F811 (the fixture)
    """``churnwatch review`` saves its Review's measurements (``save_measurements``); read back, they
    are the numbers ``build_review`` measured (the review of tests/workflow/test_review.py's data)."""
    from insights.review import build_review
    from tests.tiny import settings
    from workflow import db
    from workflow.review import add

    data, home = review_home
    engine = store_for(tmp_path / "ops")
    fid = add(engine, "Reports too complex", "Ana", actor="lead", add_owner=True, change_date=dt.date(2024, 3, 1),
              metric="health_mean")["id"]
    add(engine, "No fix yet", "Ana", actor="lead")
    r = build_review(data, settings(), home / "store.duckdb", engine, dt.date(2024, 5, 1), 90, n_boot=200)
    save_measurements(r, tmp_path / "reports")
    stored = read_measurements(tmp_path / "reports")
    m = r.findings[0]["measurement"]
    assert list(stored["findings"]) == [str(fid)]
    assert stored["findings"][str(fid)] == {
        "metric": "health_mean", "change_date": "2024-03-01", "days": 90, "before_n": m.before_n,
        "after_n": m.after_n, "before": m.before, "after": m.after, "difference": m.difference, "ci_low": m.ci_low,
        "ci_high": m.ci_high, "verdict": m.verdict, "note": m.note}
    assert m.verdict == "improved"
    db.dispose_all()


def test_no_english_label_on_the_chinese_pages(as_user, with_diagnosis):
    lee = as_user("lee@example.com")
    lee.post("/lang", data={"lang": "zh-CN", "csrf_token": token_of(lee.get("/").text)})
    token = token_of(lee.get("/").text)
    lee.post("/review/findings", data={"title": "报表太复杂", "owner": "Lee Wu", "metric": "health_mean",
                                       "change_date": "2025-05-01", "csrf_token": token})
    data = interview_form(lee, main_reason="价格太贵", step="suggest")
    labels = english_labels()
    pages = {"/review": lee.get("/review").text, "/interviews": lee.get("/interviews").text,
             "form": lee.get("/accounts/gone/exit-interview").text,
             "suggested": lee.post("/accounts/gone/exit-interview", data=data).text}
    for url, html in pages.items():
        dom = Dom(html)
        left = sorted({x for x in dom.texts for label in labels if x == label or x.rstrip(":") == label})
        assert left == [], (url, left)
        assert "流失复盘" in dom.text, url
    assert "您离开的主要原因是什么？" in Dom(pages["form"]).text
    assert "尚未衡量：请运行 `churnwatch review`。" in Dom(pages["/review"]).text


@pytest.mark.slow
def test_a_lead_records_an_exit_interview_in_a_real_browser(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.workspace.test_browser import CHROMIUM, sign_in, visible_texts

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    base, home = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            sign_in(page, base, "lee@example.com")
            page.goto(base + "/accounts/gone")
            page.click("#record-exit-interview")
            page.wait_for_url(base + "/accounts/gone/exit-interview")
            page.fill("textarea[name=main_reason]", "Support never answered our tickets")
            page.fill("textarea[name=instead]", "A competitor's tool")
            page.click("#suggest")
            page.wait_for_selector("#suggestion")
            assert page.get_attribute("#suggested-category", "data-category") == "service"
            assert page.input_value("#category") == "service"
            page.select_option("#category", "competitor")
            page.check("input[name=avoidable][value=yes]")
            page.click("#save-interview")
            page.wait_for_url(base + "/accounts/gone#exit-interview")
            shown = page.inner_text("#exit-interview")
            assert "Support never answered our tickets" in shown and "Category: Competitor" in shown
            assert "Exit interview saved: Competitor." in visible_texts(page)
        finally:
            browser.close()
    [saved] = interviews.get(store_for(home), "gone")
    assert (saved["category"], saved["avoidable"], saved["suggested_category"]) == ("competitor", True, "service")


@pytest.fixture
def server(tmp_path):
    """A real `churnwatch app` process on 127.0.0.1 over the tiny home."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from tests.workspace.home import build_home
    from workflow import db

    home = build_home(tmp_path / "home")
    db.dispose_all()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "churnwatch", "app", "--home", str(home), "--port", str(port)],
                            cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"churnwatch app did not start: {proc.communicate()[0]}")
    yield base, home
    proc.terminate()
    proc.wait(timeout=10)
