"""A null of unknown meaning is worded with the feature's subject as a manager reads it, in both
languages: a B2B export's blank "Number of Employees" gave the risk "No data on size_band" and
"size_band：无数据" (the column name, and no Chinese but 无数据). A feature whose template has no
"Subject: {value}" keeps its name."""

from __future__ import annotations

import pytest

from features.profile import ExtraColumn, profile_spec
from features.spec import build_catalogue
from training.reason_text import NO_REFERENCES, Row, word

SPECS = {f.name: f for f in build_catalogue([]).features}


@pytest.mark.parametrize(("name", "en", "zh"), [
    ("size_band", "No data on company size band from employees", "公司规模：无数据"),
    ("industry", "No data on industry", "行业：无数据"),
    ("csm", "No data on customer-success manager", "客户成功经理：无数据"),
    ("tickets_30d", "No data on tickets_30d", "tickets_30d：无数据"),  # no subject in its template
])
def test_a_null_is_worded_by_its_subject(name, en, zh):
    row = Row({name: None})
    assert word(SPECS[name], None, +1, row, NO_REFERENCES, "en") == en
    assert word(SPECS[name], None, +1, row, NO_REFERENCES, "zh-CN") == zh


def test_a_companys_own_column_is_worded_by_its_label():
    spec = profile_spec(ExtraColumn(table="accounts", column="Annual Revenue", kind="number",
                                    feature="annual_revenue", alias="Annual Revenue"), None)
    row = Row({"annual_revenue": None})
    assert word(spec, None, +1, row, NO_REFERENCES, "en") == "No data on Annual Revenue"  # as the export names it
    assert word(spec, None, +1, row, NO_REFERENCES, "zh-CN") == "客户属性「Annual Revenue」：无数据"
