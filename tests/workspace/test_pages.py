"""My day, the account page and the tasks board over the tiny home: what each shows, in which
order, hostile text rendered as text (checked on the parsed DOM), an intervention logged into the
operational store, a task moved through its states with the lead's approval, and no English label
left on a Chinese page."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import sqlalchemy as sa

from tests.workspace.conftest import token_of
from tests.workspace.home import EVIL_CSM, EVIL_EVENT, IMG_ID, SCRIPT_ID
from workflow.audit import AUDIT
from workflow.db import store_for
from workflow.interventions import as_interventions
from workflow.interviews import Answers, InterviewIn, record
from workspace.texts import TEXTS


class Dom(HTMLParser):
    """Tags and text nodes of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.texts: list[str] = []
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style", "title"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if data.strip() and not self._skip:
            self.texts.append(data.strip())

    @property
    def text(self) -> str:
        return " ".join(self.texts)


def assert_inert(html: str) -> Dom:
    """No script element, no img element, no event-handler attribute anywhere in the page."""
    dom = Dom(html)
    assert [t for t, _ in dom.tags if t in ("script", "img", "iframe")] == []
    assert [(t, a) for t, attrs in dom.tags for a in attrs if a.startswith("on")] == []
    return dom


def test_hostile_ids_names_event_types_and_notes_render_as_text(as_user):
    admin = as_user("root@example.com")
    token = token_of(admin.get("/").text)
    note = '<script>alert("note")</script>"><img src=z onerror=alert(3)>'
    assert admin.post("/interventions", data={"account_id": SCRIPT_ID, "note": note, "csrf_token": token},
                      follow_redirects=False).status_code == 303
    pages = {"/": None, "/tasks?status=all": None}
    for aid in (SCRIPT_ID, IMG_ID, "bolt"):
        page = admin.get("/accounts/" + aid.replace("/", "%2F").replace("?", "%3F").replace("#", "%23"))
        assert page.status_code == 200, aid
        pages[aid] = page.text
    for url in ("/", "/tasks?status=all"):
        pages[url] = admin.get(url).text
    for name, html in pages.items():
        dom = assert_inert(html)
        if name in (SCRIPT_ID, IMG_ID):
            assert name in dom.text  # the id itself, as text
    assert SCRIPT_ID in Dom(pages["/"]).text and IMG_ID in Dom(pages["/"]).text
    assert EVIL_CSM in Dom(pages["/"]).text  # the CSM column
    assert f"{EVIL_EVENT} events stopped" in Dom(pages["bolt"]).text
    assert note in Dom(pages[SCRIPT_ID]).text
    # the CSM whose name is hostile sees it as text in the header
    bo = as_user("bo@example.com")
    dom = assert_inert(bo.get("/").text)
    assert EVIL_CSM in dom.text and "bolt" in dom.text and "acme" not in dom.text


def test_my_day_orders_accounts_by_expected_loss_and_tasks_overdue_first(as_user):
    dom = Dom(as_user("ana@example.com").get("/").text)
    rows = [a["data-account"] for t, a in dom.tags if t == "tr" and "data-account" in a]
    assert rows == ["acme", "beta", SCRIPT_ID]  # 900 x .70, 120 x .46, 50 x .17; gone churned
    text = dom.text
    assert "Logins per week fell to 3" in text and "-4 (unchanged)" in text  # top reason, change 34 -> 30
    tasks = [a["data-task"] for t, a in dom.tags if t == "tr" and "data-task" in a]
    classes = [a["class"] for t, a in dom.tags if t == "tr" and "data-task" in a]
    assert tasks and all("overdue" in c for c in classes[: classes.count("task overdue")])
    assert "Overdue" in text and "UTC" in text


def test_the_account_page_shows_trend_reasons_signals_and_records(as_user):
    page = as_user("ana@example.com").get("/accounts/acme").text
    dom = assert_inert(page)
    assert any(t == "polyline" for t, _ in dom.tags)
    dots = [a for t, a in dom.tags if t == "circle" and "cy" in a and a.get("r") == "3"]
    assert len(dots) == 10  # ten scores
    text = dom.text
    assert "Logins per week fell to 3 (logins_per_week = 3.0)" in text
    assert "Invoices paid on time (invoices_overdue = 0.0)" in text
    assert "logins_per_week 12.0" in text and "tickets_open 1" in text  # the 2026-11-10 snapshot
    assert "2026-11-10" in text and "Call the sponsor" in text


def test_logging_an_intervention_feeds_the_closed_loops_table(as_user, home):
    ana = as_user("ana@example.com")
    token = token_of(ana.get("/accounts/acme").text)
    done = ana.post("/interventions", data={"account_id": "acme", "playbook": "exec call", "note": "called Jo",
                                            "csrf_token": token})
    assert done.status_code == 200 and "Intervention logged." in done.text and "called Jo" in done.text
    engine = store_for(home)
    frame = as_interventions(engine)
    assert frame[["account_id", "playbook", "tier", "owner"]].values.tolist() == [
        ["acme", "exec call", "high_risk", "Ana Li"]]
    assert frame["occurred_at"].dt.tz is None
    with engine.connect() as conn:
        audited = conn.execute(sa.select(AUDIT.c.actor).where(AUDIT.c.entity == "intervention")).scalars().all()
    assert audited == ["Ana Li"]


def task_of(html: str, account: str) -> str:
    dom = Dom(html)
    rows = [a for t, a in dom.tags if t == "tr" and "data-task" in a]
    links = [a["href"] for t, a in dom.tags if t == "a" and "account-link" in a.get("class", "")]
    return dict(zip(links, [r["data-task"] for r in rows], strict=False))[f"/accounts/{account}"]


def test_a_task_moves_plan_then_lead_approval_illegal_steps_named(as_user, home):
    ana = as_user("ana@example.com")
    board = ana.get("/tasks").text
    tid = task_of(board, "acme")
    token = token_of(board)
    early = ana.post(f"/tasks/{tid}/move", data={"action": "approve", "csrf_token": token})
    assert early.status_code == 403 and "Only a lead" in early.text
    planned = ana.post(f"/tasks/{tid}/move", data={"action": "plan", "text": "exec call Friday", "csrf_token": token})
    assert planned.status_code == 200 and f"Task {tid}: plan drafted." in planned.text
    assert f'data-task="{tid}" data-status="plan_drafted"' in planned.text
    again = ana.post(f"/tasks/{tid}/move", data={"action": "plan", "text": "x", "csrf_token": token})
    assert again.status_code == 409
    assert "not allowed from plan drafted. Allowed: approved, cancelled." in Dom(again.text).text
    assert ana.post(f"/tasks/{tid}/move", data={"action": "approve", "csrf_token": token}).status_code == 403
    lee = as_user("lee@example.com")
    approved = lee.post(f"/tasks/{tid}/move", data={"action": "approve", "csrf_token": token_of(lee.get('/').text)})
    assert approved.status_code == 200 and f'data-task="{tid}" data-status="approved"' in approved.text
    assigned = lee.post(f"/tasks/{tid}/move", data={"action": "assign", "to": "ana@example.com",
                                                     "next_action": "visit", "csrf_token": token_of(approved.text)})
    assert f'data-task="{tid}" data-status="action_assigned"' in assigned.text
    with store_for(home).connect() as conn:
        steps = conn.execute(sa.select(AUDIT.c.actor, AUDIT.c.action).where(
            AUDIT.c.entity == "task", AUDIT.c.entity_id == tid).order_by(AUDIT.c.id)).all()
    assert [tuple(s) for s in steps][-3:] == [("Ana Li", "plan"), ("Lee Wu", "approve"), ("Lee Wu", "assign")]


def test_the_board_filters_and_shows_escalations(as_user, home):
    from workflow.tasks import TASKS

    with store_for(home).begin() as conn:
        conn.execute(TASKS.update().where(TASKS.c.account_id == "beta").values(escalation_level=1,
                                                                                escalated_at=dt.datetime.now(dt.UTC)))
    lee = as_user("lee@example.com")
    medium = Dom(lee.get("/tasks", params={"tier": "medium_risk"}).text)
    accounts = [a["href"] for t, a in medium.tags if t == "a" and "account-link" in a.get("class", "")]
    assert accounts == ["/accounts/beta"] and "Escalation level 1" in medium.text
    none = Dom(lee.get("/tasks", params={"status": "done"}).text)
    assert "No tasks." in none.text


def test_a_churned_accounts_page_shows_its_exit_interview(as_user, home):
    record(store_for(home), InterviewIn(account_id="gone", interviewer="Ana Li", churned_at=dt.date(2026, 11, 6),
                                        answers=Answers(main_reason="too expensive for us"), category="price",
                                        avoidable=True))
    ana = as_user("ana@example.com")
    dom = Dom(ana.get("/accounts/gone").text)
    # its term ended on 2026-11-06, 4 days before the newest run: within the 30-day grace period, a lapse (as
    # the API's stale_reason says), not "Churned"
    lapse = next(a for _, a in dom.tags if a.get("id") == "lapsed")
    assert "Lapsed 2026-11-06" in dom.text and "Churned 2026-11-06" not in dom.text
    assert lapse["title"] == ("its term ended on 2026-11-06 and no term has started since; a renewal within the "
                              "30-day grace period would keep it a customer")
    assert "Category: Price" in dom.text and "too expensive for us" in dom.text
    assert not any(a.get("id") == "log-intervention" for _, a in dom.tags)
    ana.post("/lang", data={"lang": "zh-CN", "csrf_token": token_of(ana.get("/").text)})
    zh = Dom(ana.get("/accounts/gone").text)
    assert "续订中断 2026-11-06" in zh.text and "30 天宽限期内续订" in zh.text


def test_an_account_past_the_grace_period_is_churned_on_its_page(home):
    """The same account with a grace period of 3 days: its lapse (4 days before the run) has become a churn."""
    from fastapi.testclient import TestClient

    from core.settings import Settings
    from tests.workspace.conftest import sign_in
    from workspace.app import build_app

    client = TestClient(build_app(home, Settings(grace_days=3)))
    assert sign_in(client, "ana@example.com").status_code == 303
    dom = Dom(client.get("/accounts/gone").text)
    assert "Churned 2026-11-06" in dom.text and "Lapsed" not in dom.text


def english_labels() -> set[str]:
    return {en for en, zh in TEXTS.values() if en != zh and not en.startswith("{")}


def test_no_english_label_on_a_chinese_page(as_user):
    ana = as_user("ana@example.com")
    token = token_of(ana.get("/").text)
    ana.post("/lang", data={"lang": "zh-CN", "csrf_token": token})
    labels = english_labels()
    for url in ("/", "/accounts/acme", "/tasks?status=all", "/accounts/bolt", "/accounts/nope"):
        dom = Dom(ana.get(url).text)
        left = sorted({x for x in dom.texts for label in labels if x == label or x.rstrip(":") == label})
        assert left == [], (url, left)
        assert "我的一天" in dom.text


def test_logged_interventions_join_the_imported_ones_for_the_closed_loop(home, tmp_path):
    import pandas as pd

    from workflow.interventions import interventions_of_home, log_intervention

    imported = pd.DataFrame({"account_id": ["x"], "occurred_at": [pd.Timestamp("2026-01-05 10:00")],
                             "playbook": ["call"], "tier": ["low_risk"], "owner": ["Jo"]})
    assert interventions_of_home(tmp_path / "empty", imported).equals(imported)
    assert not (tmp_path / "empty" / "operations.sqlite").exists()
    log_intervention(store_for(home), account_id="acme", actor="Ana Li", tier="high_risk", note="n",
                     occurred_at=dt.datetime(2026, 11, 11, 8, 30, tzinfo=dt.UTC))
    both = interventions_of_home(home, imported)
    assert both["account_id"].tolist() == ["x", "acme"]
    assert both["occurred_at"].tolist() == [pd.Timestamp("2026-01-05 10:00"), pd.Timestamp("2026-11-11 08:30")]


def test_a_store_without_mrr_leaves_mrr_out_of_my_day_and_the_account_page(home):
    """Scores with no MRR at all (a flat table's, a store with no MRR column) show "no MRR column",
    not "MRR –" and "Expected MRR loss –", in English and Chinese."""
    import duckdb
    from fastapi.testclient import TestClient

    from core.settings import Settings
    from serving.published import publish_scores
    from tests.workspace.conftest import sign_in
    from workspace.app import build_app

    store = home / "store.duckdb"
    with duckdb.connect(str(store)) as con:
        con.execute("UPDATE snapshots SET mrr = NULL")
    publish_scores(store, Settings())
    with TestClient(build_app(home, Settings())) as ana:
        assert sign_in(ana, "ana@example.com").status_code == 303
        for lang, no_mrr in (("en", "no MRR column"), ("zh-CN", "无 MRR 列")):
            ana.post("/lang", data={"lang": lang, "csrf_token": token_of(ana.get("/").text)})
            mrr, loss = TEXTS["mrr"][lang != "en"], TEXTS["expected_loss"][lang != "en"]
            page = Dom(ana.get("/accounts/acme").text)
            assert no_mrr in page.texts and f"{mrr} –" not in page.text and loss not in page.text
            day = Dom(ana.get("/").text)
            heads = [x for x in day.texts if x in (mrr, loss)]
            assert heads == [] and "acme" in day.text


def test_the_account_page_shows_the_display_name_from_the_data_source(home, tmp_path):
    """``email.name_column`` of the data source's accounts: "Company name" in a HubSpot export, escaped."""
    from fastapi.testclient import TestClient

    from core.settings import EmailSettings, Settings
    from tests.workspace.conftest import sign_in
    from workspace.app import build_app

    data = tmp_path / "data"
    data.mkdir()
    (data / "accounts.csv").write_text('Record ID,Company name\nacme,"Acme <b>Rockets</b> & Co"\n'
                                       f'"{SCRIPT_ID}",Nobody\n', encoding="utf-8")
    settings = Settings(data=str(data), column_mapping={"accounts": {"Record ID": "account_id"}},
                        email=EmailSettings(name_column="Company name"))
    with TestClient(build_app(home, settings)) as client:
        assert sign_in(client, "ana@example.com").status_code == 303
        page = client.get("/accounts/acme").text
        dom = assert_inert(page)
        assert "Acme &lt;b&gt;Rockets&lt;/b&gt; &amp; Co" in page  # the name is text, not markup
        assert "Acme <b>Rockets</b> & Co · Account acme" in dom.text
        # every list that links an account names it beside its id (My Day, tasks), as text
        for url in ("/", "/tasks"):
            listed = client.get(url).text
            assert '<span class="account-name">Acme &lt;b&gt;Rockets&lt;/b&gt; &amp; Co</span>' in listed, url
            assert_inert(listed)
    with TestClient(build_app(home, Settings())) as client:  # no data source: the id alone, as before
        assert sign_in(client, "ana@example.com").status_code == 303
        assert 'id="account-name"' not in client.get("/accounts/acme").text
