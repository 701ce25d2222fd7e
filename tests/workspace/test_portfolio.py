"""The manager's Portfolio page over the tiny home (FastAPI's TestClient, the real published
Parquet files, the real DuckDB store and the real operational store): MRR at risk by tier, CSM and
segment equal the published expected losses of the scope; a lead sees only the team's CSMs and a
CSM gets 403; the movement matrix equals the published tier changes (after a new scoring day is
published under a running app); the health distribution equals the score history; tasks per CSM
equal the store's; hostile CSM and segment names render as text; no English label on the Chinese
page; an unknown segment column is a 422 naming the ones there are; a store another process holds
leaves the page without segments until it is read again; before the first run the page says so."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import workspace.portfolio_data as portfolio_data
from core.settings import Settings
from serving.published import publish_scores, published_paths
from tests.workspace.conftest import sign_in, token_of
from tests.workspace.home import DAY0, EVIL_CSM, SCRIPT_ID
from tests.workspace.test_pages import Dom, assert_inert, english_labels
from workflow.db import store_for, write
from workflow.people import add_user
from workflow.tasks import list_tasks, transition
from workspace.auth import set_password
from workspace.portfolio import Scope
from workspace.portfolio_data import axis_ticks, stacked_bars

EVIL_SEGMENT = '<script>alert("seg")</script>"><img src=s onerror=alert(4)>'
TEAM_EAST = {"Ana Li"}  # the CSMs of lee@example.com's team (tests/workspace/home.py)


def published(home: Path) -> pd.DataFrame:
    return pd.read_parquet(published_paths(home / "store.duckdb")[0])


def rows_of(html: str, table: str, attr: str) -> dict[str, dict[str, str]]:
    """``{data-<attr> value: {cell class: text}}`` of the table ``id=table`` (a tiny DOM walk)."""
    out: dict[str, dict[str, str]] = {}
    dom = TableRows(table, attr)
    dom.feed(html)
    for key, cells in dom.rows:
        out[key] = cells
    return out


class TableRows(Dom):
    def __init__(self, table: str, attr: str) -> None:
        self.table, self.attr = table, f"data-{attr}"
        self.rows: list[tuple[str, dict[str, str]]] = []
        self._in_table = False
        self._cell: str | None = None
        super().__init__("")

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._in_table = a.get("id") == self.table
        elif self._in_table and tag == "tr" and self.attr in a:
            self.rows.append((a[self.attr], {}))
        elif self._in_table and tag == "td" and self.rows:
            self._cell = (a.get("class") or "").replace("num", "").strip() or a.get("data-to") or "td"

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._in_table and self._cell and data.strip():
            cells = self.rows[-1][1]
            cells[self._cell] = (cells.get(self._cell, "") + " " + data.strip()).strip()


def money(x: float) -> str:
    return f"{x:,.0f}"


def test_a_csm_gets_403_and_only_leads_and_admins_have_the_link(as_user):
    ana = as_user("ana@example.com")
    answer = ana.get("/portfolio")
    assert answer.status_code == 403
    assert "You may not see this page." in Dom(answer.text).text
    assert 'href="/portfolio"' not in ana.get("/").text
    for login in ("lee@example.com", "root@example.com"):
        client = as_user(login)
        assert 'data-nav="portfolio"' in client.get("/").text
        assert client.get("/portfolio").status_code == 200


@pytest.mark.parametrize("login, csms", [("root@example.com", None), ("lee@example.com", TEAM_EAST)])
def test_mrr_at_risk_by_tier_csm_and_segment_equal_the_published_expected_loss(as_user, app, home, login, csms):
    client = as_user(login)
    html = client.get("/portfolio").text
    frame = published(home)
    frame = frame[frame["churned_on"].isna()]
    if csms is not None:
        frame = frame[frame["csm"].isin(csms)]
    assert 0 < len(frame) < len(published(home))
    by_tier = rows_of(html, "by-tier", "tier")
    assert list(by_tier) == ["healthy", "low_risk", "medium_risk", "high_risk"]
    for tier, cells in by_tier.items():
        part = frame[frame["tier"] == tier]
        assert cells["accounts"] == str(len(part)), tier
        assert cells["at-risk"] == money(part["expected_mrr_loss"].sum()), tier
        assert cells["mrr"] == money(part["mrr"].sum()), tier
    by_csm = rows_of(html, "by-csm", "csm")
    assert set(by_csm) == set(frame["csm"])
    for csm, cells in by_csm.items():
        assert cells["at-risk"] == money(frame.loc[frame["csm"] == csm, "expected_mrr_loss"].sum())
    assert rows_of(html, "by-segment", "segment")["SMB"]["at-risk"] == money(frame["expected_mrr_loss"].sum())
    dom = Dom(html)
    assert money(frame["expected_mrr_loss"].sum()) in dom.texts
    # the figures themselves (not rounded): the tier sums are the published sum
    scope = Scope(True, frozenset()) if csms is None else Scope(False, frozenset(csms))
    summary = app.state.portfolio_data.summary(app.state.scores, scope, "segment")
    assert sum(g["at_risk"] for g in summary["by_tier"]) == pytest.approx(frame["expected_mrr_loss"].sum())
    assert sum(g["at_risk"] for g in summary["by_csm"]) == pytest.approx(frame["expected_mrr_loss"].sum())
    assert summary["at_risk"] == pytest.approx(frame["expected_mrr_loss"].sum())


def test_a_lead_does_not_see_another_teams_csm(as_user):
    html = as_user("lee@example.com").get("/portfolio").text
    dom = assert_inert(html)
    assert EVIL_CSM not in dom.text and EVIL_CSM not in html.replace("&#34;", '"').replace("&gt;", ">").replace(
        "&lt;", "<")
    assert set(rows_of(html, "by-csm", "csm")) == TEAM_EAST
    assert set(rows_of(html, "tasks-per-csm", "csm")) <= TEAM_EAST
    admin = as_user("root@example.com").get("/portfolio").text
    assert EVIL_CSM in rows_of(admin, "by-csm", "csm")


def add_scoring_day(home: Path, healths: dict[str, int], new: dict[str, int]) -> dt.date:
    """A new scoring day after the last one: every account scored the last day again, with
    ``healths`` changed, plus ``new`` accounts (copied from acme's row); published again."""
    last = DAY0 + dt.timedelta(days=9)
    day = last + dt.timedelta(days=1)

    def tier(h: int) -> str:
        return "healthy" if h >= 80 else "low_risk" if h >= 60 else "medium_risk" if h >= 40 else "high_risk"

    store = home / "store.duckdb"
    with duckdb.connect(str(store)) as con:
        con.execute("INSERT INTO score_history SELECT * REPLACE (CAST(? AS DATE) AS as_of) FROM score_history "
                    "WHERE as_of = ?", [day, last])
        con.execute("INSERT INTO snapshots SELECT * REPLACE (CAST(? AS DATE) AS as_of) FROM snapshots WHERE as_of = ?",
                    [day, last])
        for aid in new:
            con.execute("INSERT INTO score_history SELECT * REPLACE (? AS account_id) FROM score_history "
                        "WHERE as_of = ? AND account_id = 'acme'", [aid, day])
            con.execute("INSERT INTO snapshots SELECT * REPLACE (? AS account_id) FROM snapshots "
                        "WHERE as_of = ? AND account_id = 'acme'", [aid, day])
        for aid, h in {**healths, **new}.items():
            con.execute("UPDATE score_history SET health_score = ?, tier = ?, churn_probability = ? "
                        "WHERE account_id = ? AND as_of = ?", [h, tier(h), (100 - h) / 100, aid, day])
    publish_scores(store, Settings())
    return day


def test_movements_match_the_published_tier_changes_and_a_new_run_is_picked_up(as_user, home):
    lee, admin = as_user("lee@example.com"), as_user("root@example.com")
    before = rows_of(admin.get("/portfolio").text, "movements", "from")
    assert set(before) == {"healthy", "medium_risk", "high_risk"}  # all unchanged on the tiny home
    day = add_scoring_day(home, {"beta": 35, SCRIPT_ID: 70, "acme": 65, "bolt": 45}, {"newco": 90})
    frame = published(home)
    frame = frame[frame["churned_on"].isna()]
    assert str(frame["as_of"].max()) == str(day)
    for client, csms in ((admin, None), (lee, TEAM_EAST)):
        html = client.get("/portfolio").text
        part = frame if csms is None else frame[frame["csm"].isin(csms)]
        matrix = rows_of(html, "movements", "from")
        expected = Counter(zip(part["previous_tier"].fillna("new"), part["tier"], strict=True))
        shown = {(f, to): int(cells[to].split()[0]) for f, cells in matrix.items() for to in cells
                 if to in ("healthy", "low_risk", "medium_risk", "high_risk")}
        assert {k: v for k, v in shown.items() if v} == dict(expected)
        changes = Counter(part["tier_change"].fillna("new"))
        for kind in ("worse", "better", "unchanged", "new"):
            marker = f'data-change="{kind}">{changes.get(kind, 0)}</b>'
            assert marker in html, (kind, changes)
    # the admin's figures: beta and the script account got worse, acme and bolt better, newco is new
    assert changes_of(frame) == {"worse": 2, "better": 2, "unchanged": 1, "new": 1}


def changes_of(frame: pd.DataFrame) -> dict[str, int]:
    return dict(Counter(frame["tier_change"].fillna("new")))


def test_the_health_distribution_counts_the_score_history_of_the_scope(as_user, home):
    history = pd.read_parquet(published_paths(home / "store.duckdb")[1])
    latest = published(home)
    for login, csms in (("root@example.com", None), ("lee@example.com", TEAM_EAST)):
        html = as_user(login).get("/portfolio").text
        ids = set(latest["account_id"] if csms is None else latest.loc[latest["csm"].isin(csms), "account_id"])
        part = history[history["account_id"].isin(ids)]
        expected = {(str(d), t): n for (d, t), n in part.groupby(["as_of", "tier"]).size().items()}
        dom = Dom(html)
        shown, day = {}, None
        for tag, attrs in dom.tags:
            if tag == "g" and "data-as-of" in attrs:
                day = attrs["data-as-of"]
            elif tag == "rect" and "data-count" in attrs:
                shown[(day, attrs["data-tier"])] = int(attrs["data-count"])
        assert shown == expected
        assert len({d for d, _ in shown}) == 10


def test_tasks_per_csm_equal_the_store_and_are_read_live(as_user, home):
    admin = as_user("root@example.com")
    engine = store_for(home)
    csm_of = dict(zip(published(home)["account_id"], published(home)["csm"], strict=True))

    def expected() -> dict[str, tuple[str, str]]:
        active = Counter(csm_of[t["account_id"]] for t in list_tasks(engine, status="active"))
        overdue = Counter(csm_of[t["account_id"]] for t in list_tasks(engine, status="active") if t["overdue"])
        return {c: (str(n), str(overdue[c])) for c, n in active.items()}

    def shown() -> dict[str, tuple[str, str]]:
        rows = rows_of(admin.get("/portfolio").text, "tasks-per-csm", "csm")
        return {c: (cells["active"], cells["overdue"]) for c, cells in rows.items()}

    first = shown()
    assert first == expected() and len(first) == 2
    task = next(t for t in list_tasks(engine, status="active") if csm_of[t["account_id"]] == "Ana Li")
    transition(engine, task["id"], "cancel", "test", reason="duplicate")
    second = shown()
    assert second == expected()
    assert int(second["Ana Li"][0]) == int(first["Ana Li"][0]) - 1


def test_hostile_csm_and_segment_names_render_as_text(as_user, home):
    with duckdb.connect(str(home / "store.duckdb")) as con:
        con.execute("UPDATE snapshots SET segment = ? WHERE account_id = 'bolt'", [EVIL_SEGMENT])
    html = as_user("root@example.com").get("/portfolio").text
    dom = assert_inert(html)
    assert EVIL_CSM in dom.texts
    assert EVIL_SEGMENT in dom.texts
    assert set(rows_of(html, "by-segment", "segment")) == {"SMB", EVIL_SEGMENT}


def test_the_chinese_page_has_no_english_label(as_user):
    lee = as_user("lee@example.com")
    lee.post("/lang", data={"lang": "zh-CN", "csrf_token": token_of(lee.get("/").text)})
    dom = Dom(lee.get("/portfolio").text)
    labels = english_labels()
    left = sorted({x for x in dom.texts for label in labels if x == label or x.rstrip(":") == label
                   or x.startswith(label + ":")})
    assert left == []
    for zh in ("客户组合", "风险 MRR", "按风险等级", "自上次评分以来的等级变化", "健康分布随时间的变化",
               "各客户成功经理的未完成与逾期任务", "细分市场"):
        assert zh in dom.text


def test_an_unknown_segment_column_is_a_422_naming_the_columns(as_user):
    admin = as_user("root@example.com")
    answer = admin.get("/portfolio?by=nope")
    assert answer.status_code == 422
    assert "by 'nope': one of segment" in Dom(answer.text).text
    assert admin.get("/portfolio?by=" + "x" * 101).status_code == 422
    assert admin.get("/portfolio?by=segment").status_code == 200


def test_a_lead_without_a_team_sees_only_their_own_accounts(app, home):
    engine = store_for(home)
    with write(engine) as conn:
        add_user(conn, name="Solo Lead", actor="test", email="solo@example.com", role="lead")
    set_password(engine, "solo@example.com", "correct horse battery", "test")
    with TestClient(app) as client:
        assert sign_in(client, "solo@example.com").status_code == 303
        html = client.get("/portfolio").text
    assert rows_of(html, "by-csm", "csm") == {}
    assert 'id="total-accounts">0<' in html


def test_axisaxis_ticks_and_bars_geometry():
    assert axis_ticks(2384) == [0, 500, 1000, 1500, 2000]
    assert axis_ticks(3) == [0, 1, 2, 3]
    days = [{"as_of": "2026-01-01", "counts": [("healthy", 3), ("low_risk", 0), ("medium_risk", 1),
                                               ("high_risk", 0)], "total": 4}]
    chart = stacked_bars(days, width=200, height=100)
    rects = chart["bars"][0]["rects"]
    assert [r["tier"] for r in rects] == ["medium_risk", "healthy"]  # worst at the bottom, no empty rect
    assert rects[0]["y"] + rects[0]["h"] == pytest.approx(chart["bottom_y"])
    assert rects[1]["h"] == pytest.approx(3 * rects[0]["h"])
    assert rects[1]["y"] == pytest.approx(chart["top"])
    assert Scope(False, frozenset({"a"})) == Scope(False, frozenset({"a"}))  # a cache key


def test_many_dates_are_labelled_every_kth_and_the_last():
    days = [{"as_of": f"d{i}", "counts": [("healthy", 1), ("low_risk", 0), ("medium_risk", 0), ("high_risk", 0)],
             "total": 1} for i in range(100)]
    bars = stacked_bars(days)["bars"]
    labelled = [b["as_of"] for b in bars if b["label"]]
    assert 8 <= len(labelled) <= 16 and labelled[0] == "d0" and labelled[-1] == "d99"
    assert all(b["rects"][0]["w"] >= 2 for b in bars)


def test_before_the_first_scoring_run_the_page_says_so(as_user, home):
    shutil.rmtree(home / "serving")
    (home / "store.duckdb").unlink()
    answer = as_user("root@example.com").get("/portfolio")
    assert answer.status_code == 200
    assert "No published scores yet: run `churnwatch score`." in Dom(answer.text).text
    assert 'id="by-tier"' not in answer.text


def test_a_busy_store_shows_no_segments_and_is_read_again_later(as_user, home, monkeypatch):
    admin = as_user("root@example.com")
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(home / "store.duckdb")],
                              stdout=subprocess.PIPE, text=True)  # another process writes the store
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = admin.get("/portfolio")
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert busy.status_code == 200
    assert "No segment column in the snapshots (or the store is busy: reload in a minute)." in Dom(busy.text).text
    assert rows_of(busy.text, "by-tier", "tier")  # the rest of the page is there
    assert 'id="by-segment"' not in admin.get("/portfolio").text  # not retried within RETRY_SECONDS
    monkeypatch.setattr(portfolio_data, "RETRY_SECONDS", 0.0)
    assert set(rows_of(admin.get("/portfolio").text, "by-segment", "segment")) == {"SMB"}


def test_scores_without_mrr_leave_mrr_and_mrr_at_risk_out(as_user, home):
    """Scores with no MRR at all (a flat table's, a store with no MRR column) show accounts per tier,
    CSM and segment and say "no MRR column", not MRR and MRR at risk tables of zeros, in both languages."""
    from workspace.texts import TEXTS

    store = home / "store.duckdb"
    with duckdb.connect(str(store)) as con:
        con.execute("UPDATE snapshots SET mrr = NULL")
    publish_scores(store, Settings())
    frame = published(home)
    assert frame["mrr"].isna().all()
    live = frame[frame["churned_on"].isna()]
    lee = as_user("root@example.com")
    for lang in ("en", "zh-CN"):
        lee.post("/lang", data={"lang": lang, "csrf_token": token_of(lee.get("/").text)})
        html = lee.get("/portfolio").text
        dom = Dom(html)
        zh = lang != "en"
        assert TEXTS["pf_no_mrr"][zh] in dom.texts
        for key in ("mrr", "pf_at_risk", "pf_share", "pf_at_risk_help"):
            assert TEXTS[key][zh] not in dom.texts, (lang, key)
        assert 'id="total-at-risk"' not in html and 'id="total-mrr"' not in html
        by_tier = rows_of(html, "by-tier", "tier")
        assert list(by_tier) == ["healthy", "low_risk", "medium_risk", "high_risk"]
        for tier, cells in by_tier.items():
            assert {k: v for k, v in cells.items() if k != "key"} == {"accounts": str((live["tier"] == tier).sum())}
        by_csm = rows_of(html, "by-csm", "csm")
        counts = Counter(live["csm"])
        assert list(by_csm) == sorted(counts, key=lambda c: (-counts[c], c))  # most accounts first
        assert all(set(cells) == {"key", "accounts"} and cells["accounts"] == str(counts[c])
                   for c, cells in by_csm.items())
        assert set(rows_of(html, "by-segment", "segment")["SMB"]) == {"key", "accounts"}


def test_a_segment_code_is_worded_as_the_reasons_word_it(as_user, home):
    """An export's enum code (HubSpot's ``MID_MARKET``) reads "mid market" in the by-segment table, as
    in the reasons and the report; the row keeps the stored value as its key."""
    with duckdb.connect(str(home / "store.duckdb")) as con:
        con.execute("UPDATE snapshots SET segment = 'MID_MARKET' WHERE account_id = 'bolt'")
    rows = rows_of(as_user("root@example.com").get("/portfolio").text, "by-segment", "segment")
    assert set(rows) == {"SMB", "MID_MARKET"}
    assert rows["MID_MARKET"]["key"] == "mid market" and rows["SMB"]["key"] == "SMB"


def test_a_csm_name_decomposed_by_the_crm_export_is_the_same_csm():
    """Probe p31: "Zoë Müller" exported decomposed (NFD, as macOS tools may write it) was not the CSM the
    lead's team holds (typed composed), and the lead saw none of her 86 accounts."""
    import unicodedata

    from workspace.portfolio import Scope

    typed = "Zoë Müller"
    decomposed = unicodedata.normalize("NFD", typed)
    assert decomposed != typed
    lead = Scope(False, frozenset({unicodedata.normalize("NFC", typed)}))
    assert lead.allows(decomposed) and lead.allows(typed) and not lead.allows("Zoe Muller")
