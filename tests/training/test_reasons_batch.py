"""Every reason of a scored batch reconciles with the numbers (the session's shared demo model, read only)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.spec import no_data_reason, null_reason
from training.bundle import ModelBundle
from training.reason_text import missing, render_value, window_days
from training.reasons import MIN_CONTRIBUTION, contributions

ZERO_CHANGE = re.compile(r"\b(up|down) 0(%| pts| days)|上升0|下降0")


@pytest.fixture(scope="module")
def store(trained_demo):
    return trained_demo(300, 24, 6).store  # the session's shared build (tests/conftest.py): read only


@pytest.fixture(scope="module")
def bundle(trained_demo):
    return trained_demo(300, 24, 6).bundle


@pytest.fixture(scope="module")
def rows(bundle):
    from training.promotion import test_block

    return test_block(bundle).reset_index(drop=True)


@pytest.fixture(scope="module")
def batch(bundle, rows):
    """The batch as the score path explains it: one TreeSHAP pass, both languages."""
    _, explained = bundle.score_in(rows, ("en", "zh-CN"))
    return contributions(bundle.booster, bundle.frame.matrix(rows)), explained


def _items(explained: list[dict]):
    for i, e in enumerate(explained):
        for side, key in ((+1, "reasons"), (-1, "strengths")):
            for item in e[key]:
                yield i, side, item


def test_every_reason_reports_its_own_feature_value_and_contribution(bundle, rows, batch):
    contrib, explained = batch
    names = bundle.frame.names
    groups = {f.name: f.group for f in bundle.catalogue.features}
    n = 0
    for lang in ("en", "zh-CN"):
        for i, side, item in _items(explained[lang]):
            j = names.index(item["feature"])
            assert item["contribution"] == contrib[i, j]  # the feature's own SHAP value: the waterfall's bar
            assert side * item["contribution"] >= MIN_CONTRIBUTION
            group_sum = sum(contrib[i, k] for k, name in enumerate(names) if groups[name] == item["signal"])
            assert item["group_contribution"] == pytest.approx(group_sum) and side * group_sum > 0
            raw = rows.at[i, item["feature"]]
            assert (item["value"] is None) == missing(raw)
            if item["value"] is not None:
                assert item["value"] == (raw.item() if hasattr(raw, "item") else raw)
            n += 1
    assert n > 1000
    for e in explained["en"]:
        for key in ("reasons", "strengths"):
            signals = [x["signal"] for x in e[key]]
            assert len(signals) == len(set(signals))  # one item per signal group
            c = [abs(x["contribution"]) for x in e[key]]
            assert c == sorted(c, reverse=True)


def test_the_text_describes_the_reported_feature_and_value(bundle, batch):
    _, explained = batch
    specs = {f.name: f for f in bundle.catalogue.features}
    for lang, k in (("en", 0), ("zh-CN", 1)):
        for _, _, item in _items(explained[lang]):
            spec = specs[item["feature"]]
            if item["value"] is None:  # the null carries the contribution: worded as missing
                assert item["text"] in (null_reason(spec)[k], no_data_reason(spec)[k])
            elif spec.unit == "flag":  # worded only when set: the statement is the value
                assert float(item["value"]) == 1.0, item
                assert item["text"] == (spec.reason_en if lang == "en" else spec.reason_zh), item
            else:
                shown = render_value(spec, item["value"], lang)
                assert shown["value"] in item["text"] or shown["change"] in item["text"], item
                assert "n/a" not in item["text"] and "无数据" not in item["text"]


def test_no_change_of_zero_percent_and_no_uncompared_count_or_category(bundle, rows, batch):
    _, explained = batch
    specs = {f.name: f for f in bundle.catalogue.features}
    compared = 0
    for lang in ("en", "zh-CN"):
        for i, _, item in _items(explained[lang]):
            assert not ZERO_CHANGE.search(item["text"]), item["text"]
            spec = specs[item["feature"]]
            young = window_days(spec) and rows.at[i, "tenure_days"] < window_days(spec)
            if item["value"] is not None and (spec.type == "category" or spec.unit == "count") \
                    and not item["feature"].endswith("_change") and not young:
                assert any(s in item["text"] for s in ("a typical active account has", "典型活跃客户为",
                                                       "overall", "整体")), item["text"]
                compared += 1
    assert compared > 100


def test_windows_longer_than_the_account_say_how_long_it_has_been_a_customer(bundle, rows, batch):
    """ "in the last 90 days (a customer for 25 days)": the window's count, and the relationship's age beside
    it (a customer who came back has events of before its return, so not "in its first 25 days")."""
    _, explained = batch
    specs = {f.name: f for f in bundle.catalogue.features}
    young = 0
    for i, _, item in _items(explained["en"]):
        w = window_days(specs[item["feature"]])
        tenure = rows.at[i, "tenure_days"]
        if w and item["value"] is not None and not missing(tenure) and tenure < w \
                and f"{w} days" in specs[item["feature"]].reason_en and not item["feature"].endswith("_change"):
            days = int(tenure)
            said = f"(a customer for {days} day{'' if days == 1 else 's'})" if days >= 1 else "(a customer since today)"
            assert item["text"].endswith(said) and f"{w} days" in item["text"], item["text"]
            assert "its first" not in item["text"], item["text"]
            young += 1
    assert young > 0


def test_the_bundle_keeps_the_references_and_words_the_same_after_loading(bundle, rows, batch, tmp_path):
    loaded = ModelBundle.load(bundle.save(tmp_path / "b"))
    assert loaded.reason_references == bundle.reason_references
    assert loaded.reason_references["typical"]["logins_30d"] > 0
    def words(explained):
        return [[(x["feature"], x["value"], x["text"], round(x["contribution"], 9))
                 for x in e["reasons"] + e["strengths"]] for e in explained]

    assert words(loaded.explain(rows.head(200), "zh-CN")) == words(batch[1]["zh-CN"][:200])


def test_the_report_waterfall_shows_the_reasons_values(bundle, store, monkeypatch):
    from insights import report

    drawn = {}
    monkeypatch.setattr(report, "waterfall_png",
                        lambda contrib, names, values: drawn.setdefault(len(drawn), (contrib, names, values)))
    as_of = bundle.test_predictions["as_of"].max().date()
    ids = bundle.test_predictions.loc[bundle.test_predictions["as_of"].dt.date == as_of, "account_id"].tolist()[:40]
    report._waterfalls(store, bundle, ids, as_of)
    from core.store import connect

    with connect(store, read_only=True) as con:
        snap = con.execute("SELECT * FROM snapshots WHERE as_of = ? AND account_id IN (SELECT unnest(?))",
                           [as_of, ids]).df()
    explained = bundle.explain(snap)
    checked = 0
    for k, (contrib, names, values) in drawn.items():
        for item in explained[k]["reasons"] + explained[k]["strengths"]:
            j = names.index(item["feature"])
            assert contrib[j] == item["contribution"]
            assert (item["value"] is None and missing(values[j])) or values[j] == item["value"]
            checked += 1
    assert checked > 0 and len(drawn) == len(snap)


def test_a_flat_table_model_words_a_category_with_its_churn_rate(tmp_path):
    from training.train import train_on_table

    rng = np.random.default_rng(3)
    n = 1200
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    usage = rng.poisson(8, n).astype(float)
    churn = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 1.2 * (plan == "basic") - 0.15 * usage)))
    table = pd.DataFrame({"customer": [f"c{i}" for i in range(n)], "plan": plan, "usage": usage,
                          "churned": churn.astype(int)})
    table.to_csv(tmp_path / "t.csv", index=False)
    bundle = train_on_table(tmp_path / "t.csv", label="churned", id_col="customer", out=tmp_path / "o").bundle
    explained = bundle.explain(table.rename(columns={"customer": "account_id"}))
    plan_reasons = [x["text"] for e in explained for x in e["reasons"] if x["feature"] == "plan"]
    assert plan_reasons and all(t.startswith("plan: basic; churn is higher in basic: ") for t in plan_reasons)
    assert all(x["feature"] != "plan" or x["value"] != "basic" for e in explained for x in e["strengths"])
