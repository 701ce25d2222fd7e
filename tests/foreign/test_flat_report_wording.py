"""A flat table's scores (``score --table``) have customers, not accounts followed over as-of dates,
and no MRR column. ``report`` said "7,000 accounts, MRR at risk 0" and drew MRR and MRR-at-risk
figures of 0 in both languages, and ``score`` headed its list "account"; now both say customers, and
the report says that no MRR column is mapped, leaves the MRR figures out and orders the top list by
churn probability."""

from __future__ import annotations

import re

import pytest

from tests.foreign.inprocess import run_cli
from training.own_table import write_example_table

pytestmark = pytest.mark.slow  # train + promote + score + two reports from the CLI (~15 s)


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    work = tmp_path_factory.mktemp("flat-report")
    table, home = write_example_table(work / "customers.csv", rows=500, seed=3), work / "home"
    for args in (("train", "--table", table, "--label", "Churn", "--id", "customer_id"), ("promote",),
                 ("score", "--table", table, "--as-of", "2026-06-30")):
        r = run_cli(*args, home=home)
        assert r.returncode == 0, f"{args[0]}: {r.stderr[-1000:]}"
    (work / "score.txt").write_text(r.stdout)
    return work, home


def test_score_says_customers(scored):
    raw = (scored[0] / "score.txt").read_text()
    out = flat(raw)
    assert "kept for the customer pages" in out and "scored 500 customers as of 2026-06-30" in out
    assert "┃ customer" in raw and "account" not in out


def test_report_says_customers_and_no_mrr(scored):
    work, home = scored
    r = run_cli("report", "--top", "3", "--out", work / "en.html", home=home)
    assert r.returncode == 0, r.stderr[-1000:]
    out = flat(r.stdout)
    assert "3 customer pages" in out
    assert "as of 2026-06-30: 500 customers, a flat table's scores carry no MRR, so no MRR at risk" in out
    assert "MRR at risk 0" not in out and "accounts" not in out
    html = (work / "en.html").read_text(encoding="utf-8")
    assert 'id="no-mrr-column"' in html and "no column of the scored data is mapped to MRR" in html
    assert 'id="mrr-at-risk-total"' not in html and "Expected MRR loss" not in html
    assert ">Customers<" in html and "top customers by churn probability" in html
    # the top list: highest churn probability first
    shown = [float(p) for p in re.findall(r'<td class="n">([0-9.]+)%</td>', html.split('id="top-accounts"')[1]
                                          .split("</table>")[0])]
    assert len(shown) == 3 and shown == sorted(shown, reverse=True)
    # no CSM, segment or industry columns of "(none)": a table has none of them
    assert "(none)" not in html and ">CSM<" not in html
    # one scoring so far: an earlier one is an older export of the table, and the waterfall is a customer's
    assert "score an older export of the table with `churnwatch score --table OLDER.csv --as-of DATE`" in html
    assert "this customer&#39;s score" in html and "this account" not in html
    assert "churnwatch score --as-of`" not in html and "set `data:`" not in html  # a table has no raw data
    assert "A flat table carries no raw usage, ticket or invoice history" in html


def test_chinese_report_too(scored):
    work, home = scored
    r = run_cli("report", "--top", "2", "--lang", "zh-CN", "--out", work / "zh.html", home=home)
    assert r.returncode == 0, r.stderr[-1000:]
    html = (work / "zh.html").read_text(encoding="utf-8")
    assert "评分数据中没有映射为 MRR 的列" in html and "优先联系：流失概率最高的客户" in html
    assert 'id="mrr-at-risk-total"' not in html and "预期收入损失" not in html
    assert "为表格的较早导出评分" in html and "扁平表没有原始使用" in html
