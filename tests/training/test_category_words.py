"""Enum codes in category reasons (issue 12 leftovers): HubSpot's ``COMPUTER_SOFTWARE`` is worded
"computer software", always with the category's churn rate against the overall rate, in both
languages; the reason's ``value`` stays the code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.spec import build_catalogue
from training.reason_text import References, Row, category_words, render_value, word

SPECS = {f.name: f for f in build_catalogue([]).features}
REFS = References(typical={}, overall_churn=0.08, category_churn={"industry": {
    "COMPUTER_SOFTWARE": [0.12, 400], "RETAIL": [0.05, 300], "Hospital & Health Care": [0.2, 50]}})


@pytest.mark.parametrize(("value", "words"), [
    ("COMPUTER_SOFTWARE", "computer software"),
    ("MARKETING_AND_ADVERTISING", "marketing and advertising"),
    ("B2B_SAAS", "b2b saas"),
    ("paid_search", "paid search"),
    ("pro_2024_annual", "pro 2024 annual"),
    # left as they are: one word (an acronym or a name as often as a code), mixed case, not a code
    ("RETAIL", "RETAIL"), ("EMEA", "EMEA"), ("salesqualifiedlead", "salesqualifiedlead"),
    ("Computer_Software", "Computer_Software"), ("Hospital & Health Care", "Hospital & Health Care"),
    ("2024_01", "2024_01"), ("_internal", "_internal"), ("A_", "A_"),
])
def test_snake_case_codes_become_lower_case_words_and_nothing_else_changes(value, words):
    assert category_words(value) == words


def w(value: str, side: int = +1, lang: str = "en") -> str | None:
    return word(SPECS["industry"], value, side, Row({"industry": value}), REFS, lang)


def test_an_enum_category_is_worded_as_words_with_its_churn_rate_in_both_languages():
    assert w("COMPUTER_SOFTWARE") == ("Industry: computer software; churn is higher in computer software: "
                                      "12% vs 8.0% overall")
    assert w("COMPUTER_SOFTWARE", lang="zh-CN") == "行业：computer software；该类客户流失率更高：12%，整体8.0%"
    assert w("RETAIL", side=-1) == "Industry: RETAIL; churn is lower in RETAIL: 5.0% vs 8.0% overall"
    assert w("Hospital & Health Care") == ("Industry: Hospital & Health Care; churn is higher in "
                                           "Hospital & Health Care: 20% vs 8.0% overall")
    # the shown value (the account page's waterfall) is the reason's
    assert render_value(SPECS["industry"], "COMPUTER_SOFTWARE", "en")["value"] == "computer software"


def test_a_category_without_a_comparison_is_no_reason():
    assert w("COMPUTER_SOFTWARE", side=-1) is None  # churn is higher there: no strength
    assert w("RETAIL") is None
    assert w("MINING") is None  # not seen in training: no rate to compare
    assert word(SPECS["industry"], "COMPUTER_SOFTWARE", +1, Row({}), References({}, {}, 0.08), "en") is None


def test_a_scored_batch_names_the_category_and_its_value(tmp_path):
    """A flat table with HubSpot's industry codes: every reason from ``industry`` names the value in
    words and compares its churn rate with the overall one; the item's value is the code."""
    from training.train import train_on_table

    rng = np.random.default_rng(5)
    n = 1200
    industry = rng.choice(["COMPUTER_SOFTWARE", "RETAIL", "HOSPITAL_HEALTH_CARE"], n, p=[0.4, 0.4, 0.2])
    usage = rng.poisson(8, n).astype(float)
    logit = -1.0 + 1.3 * (industry == "COMPUTER_SOFTWARE") - 0.8 * (industry == "RETAIL") - 0.15 * usage
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    table = pd.DataFrame({"customer": [f"c{i}" for i in range(n)], "industry": industry, "usage": usage,
                          "churned": churn.astype(int)})
    table.to_csv(tmp_path / "t.csv", index=False)
    bundle = train_on_table(tmp_path / "t.csv", label="churned", id_col="customer", out=tmp_path / "o").bundle
    rows = table.rename(columns={"customer": "account_id"})
    items = {lang: [(side, x) for e in bundle.explain(rows, lang=lang) for side in ("reasons", "strengths")
                    for x in e[side] if x["feature"] == "industry"] for lang in ("en", "zh-CN")}
    worded = {"COMPUTER_SOFTWARE": "computer software", "HOSPITAL_HEALTH_CARE": "hospital health care",
              "RETAIL": "RETAIL"}
    for side, x in items["en"]:
        more = "higher" if side == "reasons" else "lower"
        words = worded[x["value"]]  # the item's value is the code as exported
        assert x["text"].startswith(f"industry: {words}; churn is {more} in {words}: "), x
        assert x["text"].endswith(" overall"), x
    assert {x["value"] for side, x in items["en"] if side == "reasons"} == {"COMPUTER_SOFTWARE"}
    assert {x["value"] for side, x in items["en"] if side == "strengths"} >= {"RETAIL", "HOSPITAL_HEALTH_CARE"}
    for _side, x in items["zh-CN"]:
        words = worded[x["value"]]
        assert x["text"].startswith(f"industry：{words}；该类客户流失率"), x
        assert "整体" in x["text"], x
    assert len(items["zh-CN"]) == len(items["en"])
