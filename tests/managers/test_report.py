"""The portfolio report rendered for real: headless Chromium, both languages, figures checked
against an independent computation from the raw subscriptions and the score history."""

from __future__ import annotations

import html
import json
import re

import duckdb
import pandas as pd
import pytest

from churnwatch.browser import dump_dom, pixel_spread, screenshot
from insights.explain import ViewError
from insights.report import build_report
from workflow.db import store_for
from workflow.tasks import open_tasks_frame


@pytest.fixture(scope="module")
def reports(home, tmp_path_factory):
    """The report in English and Chinese (top 6 account pages), plus its Chromium DOM and screenshot."""
    out = tmp_path_factory.mktemp("reports")
    result = {}
    for lang in ("en", "zh-CN"):
        r = build_report(home.store, home.settings, out / f"report.{lang}.html", lang=lang, top=6,
                         bundle=home.bundle, open_tasks=open_tasks_frame(store_for(home.root)))
        png = screenshot(r.path, out / f"report.{lang}.png", width=1400, height=1800)
        result[lang] = (r, dump_dom(r.path), png)
    return result


def _scores(home) -> pd.DataFrame:
    with duckdb.connect(str(home.store), read_only=True) as con:
        return con.execute("SELECT * FROM score_history WHERE as_of = ?", [home.dates[1]]).df()


def _mrr_from_raw(home) -> pd.Series:
    """MRR per account from the raw subscriptions file: terms in force on the scoring date, summed (a term
    ending that day counts, its renewal due, unless a term of the account starts that day)."""
    subs = pd.read_parquet(home.data / "subscriptions.parquet")
    day = pd.Timestamp(home.dates[1])
    start, end = pd.to_datetime(subs["start_date"]), pd.to_datetime(subs["end_date"])
    live = subs[(start <= day) & (end.isna() | (end > day))]
    due = subs[(end == day) & ~subs["account_id"].isin(subs.loc[start == day, "account_id"])]
    return pd.concat([live, due]).groupby("account_id")["mrr"].sum()


def test_report_renders_with_the_top_account_in_english_and_chinese(home, reports):
    scores = _scores(home).set_index("account_id")
    scores["loss"] = _mrr_from_raw(home).reindex(scores.index) * scores["churn_probability"]
    top = scores["loss"].idxmax()
    for lang, tier_name, suffix in (("en", {"high_risk": "High risk", "medium_risk": "Medium risk",
                                            "low_risk": "Low risk", "healthy": "Healthy"}, "en"),
                                    ("zh-CN", {"high_risk": "高风险", "medium_risk": "中风险",
                                               "low_risk": "低风险", "healthy": "健康"}, "zh")):
        result, dom, png = reports[lang]
        assert pixel_spread(png) > 200  # not blank: text, badges, bars
        assert result.pages == 6 and result.waterfalls == 6 and result.previous_as_of == home.dates[0]
        first = re.search(r'<tr class="top-row" data-account="([^"]+)"', dom)
        assert first and first.group(1) == top
        page = re.search(rf'<section class="page account" id="acct-{re.escape(top)}".*?</section>', dom, re.S)
        assert page, f"no account page for {top}"
        reasons = json.loads(scores.loc[top, f"reasons_{suffix}"])
        assert reasons, "the top account has reasons"
        for item in reasons:
            assert item["text"] in page.group(0)
        assert tier_name[scores.loc[top, "tier"]] in page.group(0)
        assert 'src="data:image/png;base64,' in page.group(0)  # its SHAP waterfall
    assert "高风险" in reports["zh-CN"][1] and "风险 MRR" in reports["zh-CN"][1]
    assert "月经" not in reports["zh-CN"][1]  # "月经常性收入" read as "menstruation": Chinese texts say MRR
    assert "MRR at risk" in reports["en"][1]


def test_mrr_at_risk_equals_an_independent_computation(home, reports):
    scores = _scores(home)
    scores["mrr"] = scores["account_id"].map(_mrr_from_raw(home))
    assert scores["mrr"].notna().all()  # every scored account has a term in force
    expected = (scores["mrr"] * scores["churn_probability"]).groupby(scores["tier"]).sum()
    for lang in ("en", "zh-CN"):
        result, dom, _ = reports[lang]
        shown = {t: float(v) for t, v in re.findall(
            r'<tr data-tier="(\w+)">.*?data-mrr-at-risk="([0-9.]+)"', dom, re.S)}
        assert set(shown) == {"healthy", "low_risk", "medium_risk", "high_risk"}
        for tier, value in shown.items():
            assert value == pytest.approx(expected.get(tier, 0.0), abs=0.01)
        assert result.mrr_at_risk == pytest.approx(expected.sum())
        total = re.search(r'id="mrr-at-risk-total">([0-9,]+)<', dom).group(1)
        assert int(total.replace(",", "")) == round(expected.sum())
        # per CSM: the raw accounts table's owner, the raw subscriptions' MRR, the scores' probability
        owners = pd.read_parquet(home.data / "accounts.parquet").set_index("account_id")["csm"]
        per_csm = (scores["mrr"] * scores["churn_probability"]).groupby(scores["account_id"].map(owners)).sum()
        table = re.search(r'<table id="by-csm">.*?</table>', dom, re.S).group(0)
        rows = [(html.unescape(name), float(v)) for name, v in re.findall(
            r'<tr data-csm="([^"]*)">.*?data-mrr-at-risk="([0-9.]+)"', table, re.S)]
        assert len(rows) == min(10, len(per_csm))  # the ten largest are shown
        assert [name for name, _ in rows] == list(per_csm.sort_values(ascending=False).index[:len(rows)])
        for name, value in rows:
            assert value == pytest.approx(per_csm[name], abs=0.01), name


def test_report_is_self_contained(reports):
    for lang in ("en", "zh-CN"):
        text = reports[lang][0].path.read_text(encoding="utf-8")
        assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
        assert not re.search(r"url\(\s*['\"]?(?:https?:)?//|@import", text, re.I)
        assert "<script" not in text.lower()
        assert text.count('<section class="page account"') == 6


def test_tier_filter_tier_movements_and_one_scoring_date(home, tmp_path):
    r = build_report(home.store, home.settings, tmp_path / "high.html", tier="high", top=4, bundle=None,
                     accounts=None)
    text = r.path.read_text(encoding="utf-8")
    tiers = re.findall(r'<section class="page account" id="acct-[^"]+" data-account="[^"]+" data-tier="(\w+)"', text)
    assert tiers and set(tiers) == {"high_risk"} and r.tier == "high_risk"
    assert 'id="movements"' in text and "No SHAP waterfall" in text
    # the earlier date has no scoring before it: said plainly, no movements table
    early = build_report(home.store, home.settings, tmp_path / "early.html", as_of=home.dates[0], top=2)
    text = early.path.read_text(encoding="utf-8")
    assert early.previous_as_of is None and 'id="no-previous"' in text and 'id="movements"' not in text
    # --account adds a page for any scored account, even a healthy one
    healthy = _scores(home).query("tier == 'healthy'")["account_id"].iloc[0]
    extra = build_report(home.store, home.settings, tmp_path / "extra.html", top=1, accounts=[healthy])
    assert extra.pages == 2 and f'id="acct-{healthy}"' in extra.path.read_text(encoding="utf-8")
    with pytest.raises(ViewError, match="'NOPE' has no score"):
        build_report(home.store, home.settings, tmp_path / "x.html", accounts=["NOPE"])
    with pytest.raises(ViewError, match="high_risk"):
        build_report(home.store, home.settings, tmp_path / "x.html", tier="extreme")


def test_the_report_names_each_account_beside_its_id_escaped(home, tmp_path):
    """The data source's display name (``email.name_column``: a HubSpot company name) beside the id in the
    tables and on each account page; text, never markup. Without a name column: the ids alone."""
    from core.settings import EmailSettings

    ids = _scores(home)["account_id"].tolist()
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"Record ID": ids, "Company name": [f"<b>Co {a}</b> & Sons" for a in ids]}).to_csv(
        data / "accounts.csv", index=False)
    settings = home.settings.model_copy(update={
        "data": str(data), "column_mapping": {"accounts": {"Record ID": "account_id"}},
        "email": EmailSettings(name_column="Company name")})
    r = build_report(home.store, settings, tmp_path / "named.html", top=2, bundle=None)
    text = r.path.read_text(encoding="utf-8")
    pages = re.findall(r'<section class="page account" id="acct-([^"]+)"', text)
    assert len(pages) == 2
    for a in pages:
        name = html.escape(f"<b>Co {a}</b> & Sons", quote=False)
        assert f'<span class="account-name">{name}</span> · {a} ' in text  # the page's heading
        assert f'<a href="#acct-{a}"><b>{a}</b></a> <span class="account-name">{name}</span>' in text  # the top list
    assert "<b>Co " not in text
    plain = build_report(home.store, home.settings.model_copy(update={"email": EmailSettings(name_column="nope")}),
                         tmp_path / "plain.html", top=2, bundle=None)
    assert 'class="account-name"' not in plain.path.read_text(encoding="utf-8")


def test_a_store_without_scores_says_to_score_first(home, tmp_path):
    store = tmp_path / "empty.duckdb"
    with duckdb.connect(str(store)) as con:
        con.execute("CREATE TABLE snapshots AS SELECT 1 AS x")
    with pytest.raises(ViewError, match="run `churnwatch score` first"):
        build_report(store, home.settings, tmp_path / "r.html")


def test_unknown_mrr_missing_attributes_and_labels_in_both_languages(altered, tmp_path):
    """Two accounts without a known MRR are counted and said so; a missing segment reads in the
    report's language; ticket fields and the contribution unit are translated."""
    with duckdb.connect(str(altered.store), read_only=True) as con:
        total = con.execute("SELECT count(*) FROM score_history WHERE as_of = (SELECT max(as_of) "
                            "FROM score_history)").fetchone()[0]
    texts = {}
    for lang in ("en", "zh-CN"):
        r = build_report(altered.store, altered.settings, tmp_path / f"r.{lang}.html", lang=lang, top=3,
                         accounts=list(altered.no_mrr))
        texts[lang] = text = r.path.read_text(encoding="utf-8")
        note = re.search(r'<p class="note" id="no-mrr" data-count="(\d+)">(.*?)</p>', text, re.S)
        assert note and note.group(1) == "2"
        segments = re.search(r'<table id="by-segment">.*?</table>', text, re.S).group(0)
        assert ("(none)" if lang == "en" else "（无）") in segments
        assert ">nan<" not in text and "None" not in re.sub(r"<[^>]+>", " ", text)
    assert f"2 of {total} accounts have no known MRR" in texts["en"]
    assert f"{total} 个客户中有 2 个没有已知的 MRR" in texts["zh-CN"]
    zh = texts["zh-CN"]
    assert "(none)" not in zh and "log-odds" not in zh and "对数几率" in zh
    tickets = "".join(re.findall(r"<table><tr><th>提交时间</th><th>优先级</th>.*?</table>", zh, re.S))
    priorities = re.findall(r"<tr><td>\d{4}-\d\d-\d\d</td><td>([^<]*)</td><td>([^<]*)</td>", tickets)
    assert priorities and {p for p, _ in priorities} <= {"低", "普通", "高", "紧急"}
    assert {c for _, c in priorities} <= {"账单", "缺陷", "功能需求", "使用咨询", "集成", "性能"}


def test_out_must_be_a_file(home, tmp_path):
    with pytest.raises(ViewError, match="is a folder"):
        build_report(home.store, home.settings, tmp_path, top=1)


def test_a_source_without_events_or_tickets_says_so_instead_of_an_empty_chart(home, tmp_path):
    """A source that has no events table (a B2B export without product analytics) gets no all-zero
    "events per week" chart and its missing tickets table is not "none": both say the source lacks them;
    the invoices the source has are still listed."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(home.data, data)
    for name in ("events", "tickets"):
        for f in data.glob(f"{name}.*"):
            f.unlink()
    settings = home.settings.model_copy(update={"data": str(data)})
    r = build_report(home.store, settings, tmp_path / "r.html", top=2, bundle=None)
    text = r.path.read_text(encoding="utf-8")
    pages = re.findall(r'<section class="page account" id="acct-[^"]+"[^>]*>(.*?)</section>', text, re.S)
    assert len(pages) == 2
    for page in pages:
        assert "not in this data source (no events table)" in page
        assert "not in this data source (no tickets table)" in page
        assert "no invoices table" not in page
        chart = re.search(r"<h2>(Logins|Product events) per week[^<]*</h2>(.*?)</div>", page, re.S)
        assert chart and "<svg" not in chart.group(2)
    with_all = build_report(home.store, home.settings, tmp_path / "all.html", top=2, bundle=None)
    text = with_all.path.read_text(encoding="utf-8")
    assert "not in this data source" not in text
    charts = re.findall(r"<h2>(?:Logins|Product events) per week[^<]*</h2>(.*?)</div>", text, re.S)
    assert len(charts) == 2 and all("<svg" in c for c in charts)


def test_customers_who_asked_to_cancel_are_listed_soonest_term_end_first(home, tmp_path):
    """Accounts whose cancellation request stands (``cancel_request_standing``) get a section of their own, the
    soonest term end first: one whose term ends after the horizon can score healthy, yet it asked to leave."""
    import shutil

    plain = build_report(home.store, home.settings, tmp_path / "plain.html", top=1)
    assert plain.asked == 0 and 'id="asked-to-cancel"' not in plain.path.read_text(encoding="utf-8")
    store = tmp_path / "store.duckdb"
    shutil.copy(home.store, store)
    day = home.dates[1]
    with duckdb.connect(str(store)) as con:
        ids = [r[0] for r in con.execute(
            "SELECT s.account_id FROM snapshots s JOIN score_history h USING (account_id, as_of) "
            "WHERE s.as_of = ? AND s.days_to_term_end IS NOT NULL ORDER BY s.account_id LIMIT 3", [day]).fetchall()]
        # the flag on three accounts, one of them far from its term's end, one a date earlier (not listed)
        con.execute("UPDATE snapshots SET cancel_request_standing = CASE WHEN account_id IN (SELECT unnest(?)) "
                    "AND as_of = ? THEN 1 ELSE 0 END", [ids, day])
        con.execute("UPDATE snapshots SET days_to_term_end = 200 WHERE account_id = ? AND as_of = ?", [ids[0], day])
        ends = dict(con.execute("SELECT account_id, days_to_term_end FROM snapshots WHERE as_of = ? "
                                "AND account_id IN (SELECT unnest(?))", [day, ids]).fetchall())
    expected = sorted(ids, key=lambda a: (ends[a], a))
    horizon = home.settings.horizon_days
    titles = (("en", "Asked to cancel at the end of their term (3)"), ("zh-CN", "已申请在订阅期末取消的客户 (3)"))
    for lang, title in titles:
        r = build_report(store, home.settings, tmp_path / f"asked.{lang}.html", top=1, lang=lang)
        text = r.path.read_text(encoding="utf-8")
        assert r.asked == 3 and r.asked_later == sum(ends[a] > horizon for a in ids) >= 1
        assert f"<h2>{title}</h2>" in text
        section = text[text.index('id="asked-to-cancel"'):]
        section = section[:section.index("</table>")]
        assert re.findall(r'class="asked-row" data-account="([^"]+)"', section) == expected
        assert [int(d) for d in re.findall(r'<td class="n">([\d,]+)</td><td><span', section)] == \
            [ends[a] for a in expected]


def test_the_report_draws_the_waterfalls_the_scoring_run_kept_as_the_workspace_does(home, tmp_path):
    """A score kept with its waterfall (``churnwatch score`` keeps them) is drawn from it as inline SVG, the
    workspace's chart (``insights.waterfall_chart``): its bars are the kept contributions, no matplotlib PNG;
    a page whose score was kept without one still gets the PNG. (The PNGs took ~0.5 s each: most of a
    50-page report's time, twice in the demo.)"""
    import shutil

    from serving.waterfalls import build_waterfalls, record_waterfalls

    store = tmp_path / "store.duckdb"
    shutil.copy(home.store, store)
    day = home.dates[1]
    with duckdb.connect(str(store), read_only=True) as con:
        history = con.execute("SELECT * FROM score_history WHERE as_of = ?", [day]).df()
    kept = build_waterfalls(store, home.bundle, [history])
    top = _scores(home).sort_values("churn_probability", ascending=False)["account_id"].head(3).tolist()
    without = top[0]  # this one's score kept without its waterfall
    assert record_waterfalls(store, kept[kept["account_id"] != without], [day]) == len(history) - 1
    for lang in ("en", "zh-CN"):
        r = build_report(store, home.settings, tmp_path / f"r.{lang}.html", lang=lang, top=0, accounts=top,
                         bundle=home.bundle)
        text = r.path.read_text(encoding="utf-8")
        assert r.pages == r.waterfalls == 3
        for account in top:
            page = re.search(rf'<section class="page account" id="acct-{re.escape(account)}".*?</section>', text,
                             re.S).group(0)
            if account == without:
                assert 'src="data:image/png;base64,' in page and '<svg class="waterfall"' not in page
                continue
            assert '<svg class="waterfall"' in page and "data:image/png" not in page
            wf = json.loads(kept.set_index("account_id").loc[account, "waterfall"])
            drawn = {html.unescape(f): float(c) for f, c in re.findall(r'<g class="wf-bar" data-feature="([^"]*)" '
                                                       r'data-contribution="([-0-9.e]+)"', page)}
            assert drawn == pytest.approx({b["feature"]: b["contribution"] for b in wf["bars"]}, abs=1e-8)
            assert ("该客户（原始分数）" if lang == "zh-CN" else "This account (raw score)") in page
