"""A Chinese company's flat table (probe p52, 2026-12-07): the name rules, money and dates read Chinese as they
read English. Before: ``手机号`` (a phone number) was a model feature, ``最近登录日期`` was trained on while
``Last Login Date`` was left out, a vendor's ``流失风险分`` computed after the fact was registered (0.866 alone,
under the 0.95 of an unnamed column) where ``Churn Risk Score`` was refused, ``1658.31元`` and ``￥119.00`` were
"free text", ``2026年3月5日`` was "free text" with no hint, a status of closed accounts (``客户状态`` = 已销户, all
churners) passed, and a GBK file gave Python's codec message."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from training.leakage import feature_findings
from training.own_table import TableError, load_own_table
from training.reason_text import render_value

EXPORT = dt.date(2026, 10, 31)


def _table(path, leaks: bool = False, n: int = 900):
    rng = np.random.default_rng(52)
    months = rng.integers(1, 60, n)
    fee = rng.choice([59.0, 89.0, 129.0, 199.0], n) + rng.integers(0, 100, n) / 100
    risk = 1 / (1 + np.exp(-(-0.6 - 0.04 * months + 0.012 * (fee - 100))))
    churn = rng.random(n) < risk
    signup = pd.Timestamp(EXPORT) - pd.to_timedelta(months * 30 + rng.integers(0, 30, n), unit="D")
    login = pd.Timestamp(EXPORT) - pd.to_timedelta(np.where(churn, rng.integers(20, 90, n), rng.integers(0, 20, n)),
                                                    unit="D")
    frame = pd.DataFrame({
        "客户编号": [f"SH{i:06d}" for i in range(n)],
        "手机号": rng.integers(13_000_000_000, 19_999_999_999, n),
        "城市": rng.choice(["上海", "杭州", "苏州"], n),
        "在网月数": months,
        "月费": [f"￥{v:,.2f}" for v in fee],
        "累计消费": [f"{v * m:.2f}元" for v, m in zip(fee, months, strict=True)],
        "开户日期": [f"{d.year}年{d.month}月{d.day}日" for d in signup],
        "最近登录日期": login.strftime("%Y-%m-%d"),
        "是否流失": np.where(churn, "是", "否")})
    if leaks:
        frame["客户状态"] = np.where(churn & (rng.random(n) < 0.7), "已销户", rng.choice(["正常", "欠费停机"], n))
        frame["流失风险分"] = np.round(np.where(churn, rng.normal(68, 14, n), rng.normal(45, 15, n)), 1)
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def test_the_name_rules_money_and_dates_read_chinese(tmp_path):
    table = load_own_table(_table(tmp_path / "宽带客户.csv"), "是否流失", "客户编号")
    report = table.report
    assert report["dropped_personal"] == ["手机号"] and report["dropped_free_text"] == []
    assert report["dropped_name"]["最近登录日期"].startswith("a latest date (its name says last or latest)")
    names = list(table.frame.columns)
    assert "手机号" not in names and "最近登录日期" not in names  # a latest date at export, as "Last Login Date"
    assert {"月费", "累计消费", "开户日期", "在网月数", "城市"} <= set(names) | set(report.get("dropped_repeat", []))
    specs = {f.name: f for f in table.catalogue.features}
    assert specs["月费"].params["money"] == "￥" and specs["累计消费"].params["money"] == "元"
    assert table.frame["月费"].between(59, 300).all()  # ￥1,234.50 read as 1234.5, not text
    assert render_value(specs["累计消费"], 1658.31, "zh-CN")["value"] == "1,658.31元"
    assert render_value(specs["月费"], 119.0, "zh-CN")["value"] == "￥119"
    days = table.frame["开户日期"]  # days from 2026年3月5日-like dates to the table's as-of date
    assert days.notna().all() and (days >= 0).all() and days.max() > 1000


def test_a_chinese_named_vendor_score_and_a_closed_status_are_refused(tmp_path):
    table = load_own_table(_table(tmp_path / "t.csv", leaks=True), "是否流失", "客户编号")
    rows = table.frame.assign(churn_label=table.y)
    cats = [c for c in table.frame.columns if table.frame[c].dtype == object or str(table.frame[c].dtype) == "category"]
    found = {f.feature: f for f in feature_findings(rows, np.asarray(table.y), list(table.frame.columns), cats,
                                                    own=list(table.frame.columns))}
    assert set(found) == {"客户状态", "流失风险分"}
    status = found["客户状态"]
    assert status.check == "churner_value" and status.message().startswith(
        "feature '客户状态': is '已销户' on ")
    assert "100% of them churners" in status.message() and "profile: exclude" in status.message()
    score = found["流失风险分"]
    assert score.check == "feature_auc" and 0.85 <= score.value < 0.95
    assert "its name says it may be written from the outcome ('流失')" in score.message()


def test_a_gbk_file_is_told_to_be_saved_as_utf8(tmp_path):
    path = tmp_path / "gbk.csv"
    pd.read_csv(_table(tmp_path / "t.csv"), encoding="utf-8-sig").to_csv(path, index=False, encoding="gbk")
    with pytest.raises(TableError, match=r"is not UTF-8 text \(GBK or latin-1\?\): save it as UTF-8"):
        load_own_table(path, "是否流失", "客户编号")


def test_the_chinese_name_rules_leave_honest_columns_alone():
    """The review of the rules above: counts of arrears, a contract's end date, an online count, services and
    category codes are honest columns, as their English names are."""
    from features.profile import _unused_reason, id_like_name, latest_at_export_name, personal_data_name
    from training.leakage import outcome_word

    assert [c for c in ("手机号", "联系电话", "客户姓名", "手机号码（主）", "邮箱", "收货地址", "身份证号")
            if not personal_data_name(c)] == []
    assert [c for c in ("国际电话", "长途电话", "绑定手机", "关注微信", "电话服务", "是否有手机", "联系人数",
                        "公司名称") if personal_data_name(c)] == []
    assert [c for c in ("客户编号", "订单号", "客户ID") if not id_like_name(c)] == []
    assert [c for c in ("行业编码", "套餐编码", "编号数量") if id_like_name(c)] == []
    assert [c for c in ("最近登录日期", "上次联系时间", "最后一次购买", "最近一次登录时间", "最新NPS")
            if not latest_at_export_name(c)] == []
    assert [c for c in ("线上次数", "近30天登录次数", "最近30天登录次数", "最近一个月消费")
            if latest_at_export_name(c)] == []
    state = [c for c in ("客户状态", "生命周期阶段", "欠费金额", "是否活跃", "近90天欠费次数", "催缴次数", "合同到期日",
                         "婚姻状况") if _unused_reason("accounts", c, None, False, None)]
    assert state == ["客户状态", "生命周期阶段", "欠费金额", "是否活跃"]
    assert [c for c in ("流失风险分", "流失原因", "销户日期", "已取消", "退订时间") if not outcome_word(c)] == []
    assert [c for c in ("取消订单数", "已取消订单数", "已关闭工单数", "续费次数", "月费") if outcome_word(c)] == []
