"""Baselines (logistic regression, the article's rule score) and bring-your-own-table."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.errors import ChurnwatchError
from training.baselines import (
    RULE_DIMENSIONS,
    BaselineError,
    RuleWeights,
    fit_logistic_baseline,
    indicator_scores,
    rule_churn_probability,
    rule_health_score,
)
from training.own_table import (
    TableError,
    describe_table,
    load_own_table,
    stratified_split,
    write_example_table,
)

DAY = dt.date(2024, 3, 1)

# one value per rule indicator: a clearly healthy account, a middling one, a risky one
INDICATORS = ["logins_30d", "core_events_per_active_user_30d", "core_features_used_30d",
              "tickets_30d_vs_baseline", "open_tickets", "worst_csat_90d", "ticket_silence",
              "days_overdue", "late_payments_90d", "payment_delay_change",
              "new_features_tried_30d", "training_attended_90d", "email_open_rate_90d"]
BEST = dict(zip(INDICATORS, [60, 40.0, 8, 0.5, 0, 5.0, 0, 0, 0, -2.0, 4, 3, 0.6], strict=True))
MID = dict(zip(INDICATORS, [20, 10.0, 4, 1.0, 1, 3.0, 0.5, 5, 1, 0.0, 2, 1, 0.3], strict=True))
WORST = dict(zip(INDICATORS, [1, 0.5, 1, 4.0, 6, 1.0, 1, 45, 3, 12.0, 0, 0, 0.0], strict=True))
USAGE = ("logins", "core_depth", "core_breadth")


def snapshots(rows: list[dict], as_of: dt.date | list[dt.date] = DAY) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.insert(0, "as_of", as_of if isinstance(as_of, list) else [as_of] * len(rows))
    df.insert(0, "account_id", [f"a{i}" for i in range(len(rows))])
    return df


def mix(good_dims: tuple[str, ...]) -> dict:
    """BEST on the indicators of ``good_dims``, WORST on the others."""
    good = {c for d in good_dims for c in RULE_DIMENSIONS[d]}
    return {c: (BEST[c] if c in good else WORST[c]) for c in BEST}


# --- rule-weighted health score ---------------------------------------------------------


def test_rule_score_is_100_for_the_best_row_and_lower_for_worse_rows():
    score = rule_health_score(snapshots([MID, BEST, WORST]))
    assert score[1] == pytest.approx(100.0)
    assert score[0] < score[1]
    assert score[2] < score[0]
    # every indicator of the worst row is the lowest of 3 rows: rank 1/3
    assert score[2] == pytest.approx(100 / 3)
    assert np.all((score >= 0) & (score <= 100))


def test_direction_comes_from_the_catalogue():
    ind = indicator_scores(snapshots([MID, BEST, WORST]))
    # open_tickets: +1 (more is riskier); logins_30d: -1 (more is healthier)
    assert ind["open_tickets"].tolist() == pytest.approx([200 / 3, 100.0, 100 / 3])
    assert ind["logins_30d"].tolist() == pytest.approx([200 / 3, 100.0, 100 / 3])


def test_ties_share_the_healthier_rank_and_missing_values_get_50():
    rows = [dict(BEST), dict(BEST), dict(WORST)]
    rows[2]["email_open_rate_90d"] = None
    ind = indicator_scores(snapshots(rows))
    assert ind["open_tickets"].tolist() == pytest.approx([100.0, 100.0, 100 / 3])
    assert ind.loc[2, "email_open_rate_90d"] == 50.0
    # the two remaining rows tie at the top of that indicator
    assert ind.loc[0, "email_open_rate_90d"] == 100.0


def test_a_count_unknown_before_the_first_product_event_ranks_as_none():
    """An account before its first product event has its usage counts null (a review: it then ranked as
    average, above a light user); the article's score reads them as none, as it did before they were null.
    A role that is not configured (the whole column null) stays unknown: 50 for every row."""
    rows = [dict(BEST), dict(MID), dict(WORST)]
    rows[0]["logins_30d"] = None
    ind = indicator_scores(snapshots(rows))
    assert ind.loc[0, "logins_30d"] == pytest.approx(100 / 3) and ind.loc[2, "logins_30d"] == pytest.approx(200 / 3)
    for r in rows:
        r["training_attended_90d"] = None
    assert indicator_scores(snapshots(rows))["training_attended_90d"].tolist() == [50.0, 50.0, 50.0]


def test_percentile_ranks_are_taken_within_each_date():
    early, late = dt.date(2024, 1, 1), dt.date(2024, 2, 1)
    scaled = [{c: v * 100 for c, v in r.items()} for r in (WORST, MID, BEST)]
    df = snapshots([WORST, MID, BEST] + scaled, [early] * 3 + [late] * 3)
    score = rule_health_score(df)
    # the late date's values are all larger, but each date is ranked on its own
    assert score[:3] == pytest.approx(score[3:])
    assert score[2] == pytest.approx(100.0) and score[5] == pytest.approx(100.0)


def test_one_date_alone_scores_as_within_a_mixed_frame():
    early, late = dt.date(2024, 1, 1), dt.date(2024, 2, 1)
    alone = rule_health_score(snapshots([WORST, MID, BEST], early))
    other = [{c: v * 3 + 1 for c, v in r.items()} for r in (BEST, BEST, WORST, MID)]
    mixed = rule_health_score(snapshots([WORST, MID, BEST] + other, [early] * 3 + [late] * 4))
    assert mixed[:3] == pytest.approx(alone)


def test_weights_change_the_order_as_expected():
    usage_good, payment_good = mix(USAGE), mix(("renewal_payment",))
    df = snapshots([usage_good, payment_good])
    default = rule_health_score(df)
    assert default[0] > default[1]  # product usage weighs 0.45, payment 0.20
    payment_first = RuleWeights(logins=0.02, core_depth=0.02, core_breadth=0.01,
                                renewal_payment=0.6)
    reweighted = rule_health_score(df, payment_first)
    assert reweighted[1] > reweighted[0]
    # two rows: the better of an indicator gets 100, the other 50; ties (support and
    # engagement are WORST in both rows) share 100
    assert default[0] == pytest.approx(0.45 * 100 + 0.20 * 100 + 0.20 * 50 + 0.15 * 100)
    assert default[1] == pytest.approx(0.45 * 50 + 0.20 * 100 + 0.20 * 100 + 0.15 * 100)


def test_rule_weights_defaults_and_validation():
    w = RuleWeights()
    assert w.as_dict() == pytest.approx({"logins": 0.20, "core_depth": 0.15,
                                         "core_breadth": 0.10, "support": 0.20,
                                         "renewal_payment": 0.20, "engagement": 0.15})
    assert sum(w.as_dict().values()) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        RuleWeights(logins=-0.1)
    with pytest.raises(ValueError):
        RuleWeights(logins=0, core_depth=0, core_breadth=0, support=0, renewal_payment=0,
                    engagement=0)


def test_rule_churn_probability_is_a_monotone_inverse():
    p = rule_churn_probability(np.array([100.0, 75.0, 0.0]))
    assert p.tolist() == pytest.approx([0.0, 0.25, 1.0])


def test_missing_indicator_column_is_a_clear_error():
    df = snapshots([BEST, WORST]).drop(columns=["days_overdue"])
    with pytest.raises(BaselineError, match="days_overdue"):
        rule_health_score(df)
    assert issubclass(BaselineError, ChurnwatchError)


# --- logistic-regression baseline -------------------------------------------------------


def learnable(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "pro", "enterprise"], n)
    logit = 1.5 * x1 - 1.0 * x2 + np.where(plan == "basic", 1.0, -0.5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "noise": rng.normal(size=n)})
    X.loc[rng.random(n) < 0.1, "x2"] = np.nan
    X.loc[rng.random(n) < 0.05, "plan"] = None
    return X, y


def test_logistic_baseline_learns_a_learnable_set():
    X, y = learnable(1500, seed=1)
    X_test, y_test = learnable(800, seed=2)
    X_test.loc[0, "plan"] = "never-seen"  # unknown categories are ignored, not errors
    model = fit_logistic_baseline(X, y, (["x1", "x2", "noise"], ["plan"]))
    p = model.predict_proba(X_test)
    assert p.shape == (800,) and np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(y_test, p) > 0.75


def test_logistic_baseline_refuses_missing_features_and_one_class():
    X, y = learnable(200, seed=3)
    with pytest.raises(BaselineError, match="x9"):
        fit_logistic_baseline(X, y, (["x1", "x9"], []))
    with pytest.raises(BaselineError, match="both 0 and 1"):
        fit_logistic_baseline(X, np.zeros(len(X), dtype=int), (["x1"], ["plan"]))


# --- bring your own table ---------------------------------------------------------------


def write_csv(tmp_path, df: pd.DataFrame, name: str = "t.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def small_table(labels: list[str]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame({"id": [f"c{i}" for i in range(n)], "calls": [str(i % 7) for i in range(n)],
                         "churned": labels})


@pytest.mark.parametrize("yes,no", [("yes", "no"), ("YES", "No"), ("true", "false"),
                                    ("True", "FALSE"), ("1", "0"), ("churned", "active"),
                                    ("Churned", "Active"), ("churn", "retained"), ("y", "n"),
                                    ("Y", "N"), ("t", "f"), ("T", "F")])
def test_every_accepted_label_spelling_is_read(tmp_path, yes, no):
    labels = [yes, no, no, f" {yes} ", no, yes]
    table = load_own_table(write_csv(tmp_path, small_table(labels)), label="churned", id_col="id")
    assert table.y.tolist() == [1, 0, 0, 1, 0, 1]
    assert table.y.dtype == np.int64
    assert table.report["label_counts"] == {"churned": 3, "retained": 3}


def test_parquet_bool_and_integer_labels(tmp_path):
    df = pd.DataFrame({"id": [1, 2, 3, 4], "x": [1.0, 2.0, 3.0, 4.0],
                       "b": [True, False, True, False], "i": [0, 1, 1, 0]})
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    assert load_own_table(path, "b", "id").y.tolist() == [1, 0, 1, 0]
    table = load_own_table(path, "i", "id")
    assert table.y.tolist() == [0, 1, 1, 0]
    assert "b" in table.frame.columns  # a bool column is a 0/1 feature when it is not the label


def test_unclear_label_values_are_named(tmp_path):
    labels = ["yes", "no", "maybe", "yes", "unknown", "", "2", "no", "perhaps", "later"]
    path = write_csv(tmp_path, small_table(labels))
    with pytest.raises(TableError, match="churned") as err:
        load_own_table(path, label="churned", id_col="id")
    msg = str(err.value)
    for v in ("'maybe'", "'unknown'", "''", "'2'", "'perhaps'"):
        assert v in msg
    assert "'later'" not in msg  # up to 5 values are shown
    assert "6 value(s)" in msg


def test_single_class_label_is_refused(tmp_path):
    path = write_csv(tmp_path, small_table(["no"] * 8))
    with pytest.raises(TableError, match="single class"):
        load_own_table(path, label="churned", id_col="id")


def test_missing_label_or_id_column_lists_the_available_columns(tmp_path):
    path = write_csv(tmp_path, small_table(["yes", "no"]))
    with pytest.raises(TableError, match=r"'Churn'.*id, calls, churned"):
        load_own_table(path, label="Churn", id_col="id")
    with pytest.raises(TableError, match=r"'customer_id'.*id, calls, churned"):
        load_own_table(path, label="churned", id_col="customer_id")


def test_unreadable_file_type_names_the_file(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"not a table")
    with pytest.raises(TableError, match="table.xlsx"):
        load_own_table(path, label="churned", id_col="id")
    with pytest.raises(TableError, match="absent.csv"):
        load_own_table(tmp_path / "absent.csv", label="churned", id_col="id")


def test_duplicate_ids_are_refused(tmp_path):
    df = small_table(["yes", "no", "no", "yes", "no"])
    df.loc[3, "id"] = "c1"
    df.loc[4, "id"] = "c2"
    with pytest.raises(TableError, match=r"not unique.*'c1', 'c2'"):
        load_own_table(write_csv(tmp_path, df), label="churned", id_col="id")


def test_numbers_stored_as_text_are_parsed_and_blanks_counted(tmp_path):
    amounts = ["1,234.5", " 42 ", "", "NA", "7", "12,000", "-3.5", "n/a"]
    twenty = [str(i) for i in range(19)] + ["abc"]  # 95% parse: numeric, one unparsed
    mostly_text = ["a", "b", "1", "2", "c", "d", "e", "f"]  # 25% parse: categorical
    df = pd.DataFrame({"id": range(20), "amount": amounts + ["1"] * 12, "count": twenty,
                       "code": mostly_text + ["a"] * 12, "churned": ["yes", "no"] * 10})
    table = load_own_table(write_csv(tmp_path, df), label="churned", id_col="id")
    amount = table.frame["amount"]
    assert amount.dtype == "float64"
    expected = [1234.5, 42.0, np.nan, np.nan, 7.0, 12000.0, -3.5, np.nan]
    assert amount.iloc[:8].tolist() == pytest.approx(expected, nan_ok=True)
    rep = table.report
    assert rep["blanks"]["amount"] == 3
    assert rep["blanks"]["count"] == 0
    assert rep["numeric_text_unparsed"] == {"count": {"count": 1, "examples": ["abc"]}}
    assert np.isnan(table.frame["count"].iloc[19])
    assert rep["categorical_columns"] == ["code"]
    assert table.catalogue["amount"].type == "float" and table.catalogue["code"].type == "category"


def test_categorical_free_text_and_constant_columns(tmp_path):
    n = 120
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "id": [f"c{i}" for i in range(n)],
        "plan": rng.choice(["basic", "pro", "enterprise"], n),
        "notes": [f"called on day {i}, unhappy about invoice" for i in range(n)],
        "country": ["CN"] * n,
        "seats": rng.integers(1, 50, n).astype(str),
        "churned": rng.choice(["Yes", "No"], n),
    })
    table = load_own_table(write_csv(tmp_path, df), label="churned", id_col="id")
    rep = table.report
    assert rep["categorical_columns"] == ["plan"]
    assert rep["numeric_columns"] == ["seats"]
    assert rep["dropped_free_text"] == ["notes"]
    assert rep["dropped_constant"] == ["country"]
    assert list(table.frame.columns) == ["plan", "seats"] == table.catalogue.names
    assert isinstance(table.frame["plan"].dtype, pd.CategoricalDtype)
    assert table.catalogue.categorical == ["plan"]
    assert table.catalogue["plan"].group == "profile"
    assert table.frame.index.name == "id" and table.frame.index[0] == "c0"
    assert "churned" not in table.frame.columns and rep["rows"] == n


def test_stratified_split_keeps_the_positive_rate_and_is_deterministic():
    rng = np.random.default_rng(5)
    y = (rng.random(1000) < 0.15).astype(int)
    train, cal, test = stratified_split(y, seed=3)
    assert len(train) + len(cal) + len(test) == 1000
    assert len(set(train) | set(cal) | set(test)) == 1000
    assert (len(test), len(cal)) == (200, 200)
    for part in (train, cal, test):
        assert abs(y[part].mean() - y.mean()) <= 0.02
    again = stratified_split(y, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, cal, test), again, strict=True))
    other = stratified_split(y, seed=4)
    assert not np.array_equal(test, other[2])


def test_stratified_split_refuses_too_little_data():
    with pytest.raises(TableError, match="49 rows"):
        stratified_split(np.array([0, 1] * 24 + [1]))
    with pytest.raises(TableError, match=r"200 rows \(9 churned"):
        stratified_split(np.array([1] * 9 + [0] * 191))


def test_example_table_round_trips_and_is_learnable(tmp_path):
    path = write_example_table(tmp_path / "telecom.csv", rows=1500, seed=0)
    text = path.read_text()
    assert '"1,' in text  # some monthly charges carry a thousands separator
    table = load_own_table(path, label="Churn", id_col="customer_id")
    rep = table.report
    assert rep["rows"] == 1500
    assert set(rep["categorical_columns"]) == {"contract", "payment_method", "internet_service"}
    assert set(rep["numeric_columns"]) == {"tenure_months", "monthly_charges", "total_charges",
                                           "support_calls"}
    assert rep["blanks"]["monthly_charges"] > 0
    assert table.frame["monthly_charges"].max() > 1000
    assert 0.15 < table.y.mean() < 0.45
    train, _, test = stratified_split(table.y, seed=0)
    model = fit_logistic_baseline(table.frame.iloc[train], table.y[train], table.catalogue)
    auc = roc_auc_score(table.y[test], model.predict_proba(table.frame.iloc[test]))
    assert 0.72 < auc < 0.9
    again = write_example_table(tmp_path / "again.csv", rows=1500, seed=0)
    assert again.read_text() == text


@pytest.mark.parametrize("column", ["renewed", "Renewed?", "is_active", "Retained", "still_customer", "是否续费"])
def test_a_label_named_for_staying_reads_its_yes_as_a_customer_who_stayed(tmp_path, column):
    """Probe p61: an insurer's ``renewed`` True (stayed) was read as churned: 74% "churned", promoted without a word,
    and a 90%-risk policy explained as "Healthy 3.1%"."""
    df = small_table(["True", "False", "True", "True", "False", "True"]).rename(columns={"churned": column})
    table = load_own_table(write_csv(tmp_path, df), label=column, id_col="id")
    assert table.y.tolist() == [0, 1, 0, 0, 1, 0]
    assert table.report["label_counts"] == {"churned": 2, "retained": 4} and table.report["label_staying"]
    said = "\n".join(describe_table(table.report))
    assert f"label {column!r} names staying: a customer churned where it is no, false or 0" in said
    assert "more than half" not in said
    pq = tmp_path / "t.parquet"
    typed = pd.DataFrame({"id": ["a", "b", "c", "d"], "x": [1.0, 2.0, 3.0, 4.0], column: [True, False, True, True]})
    typed.to_parquet(pq)
    assert load_own_table(pq, column, "id").y.tolist() == [0, 1, 0, 0]  # a typed bool too


@pytest.mark.parametrize("column", ["not_renewed", "non_renewal", "unsubscribed", "churned", "Exited", "lapse_flag"])
def test_other_label_names_read_yes_as_churned(tmp_path, column):
    df = small_table(["yes", "no", "no", "no", "yes", "no"]).rename(columns={"churned": column})
    table = load_own_table(write_csv(tmp_path, df), label=column, id_col="id")
    assert table.y.tolist() == [1, 0, 0, 0, 1, 0] and not table.report["label_staying"]


def test_words_that_say_the_side_are_read_as_they_say_whatever_the_name(tmp_path):
    df = small_table(["Cancelled", "Active", "Active", "Cancelled", "Active", "Active"]).rename(
        columns={"churned": "renewal_status"})
    table = load_own_table(write_csv(tmp_path, df), label="renewal_status", id_col="id")
    assert table.y.tolist() == [1, 0, 0, 1, 0, 0] and not table.report["label_staying"]


def test_a_label_read_as_mostly_churned_is_questioned(tmp_path):
    df = small_table(["yes", "yes", "no", "yes", "yes", "yes"]).rename(columns={"churned": "flag"})
    said = "\n".join(describe_table(load_own_table(write_csv(tmp_path, df), label="flag", id_col="id").report))
    assert ("warning: more than half of the customers read as churned (83%): if 'flag' is yes for those who "
            "stayed") in said


def test_a_flag_trained_from_parquet_bools_reads_the_csvs_true_and_false(tmp_path, caplog):
    """Probe p61: a model trained on the Parquet file read every True / False of the same data team's CSV as missing
    (scores moved by up to 0.27); ``/score`` refused the text "False". Typed nulls are counted as blanks too."""
    import logging

    from training.own_table import read_scoring_table, read_sent_cells

    rng = np.random.default_rng(61)
    n = 400
    opt_in = rng.random(n) < 0.35
    score = np.where(opt_in, rng.normal(60, 15, n), np.nan)
    typed = pd.DataFrame({"id": [f"p{i}" for i in range(n)], "opt_in": opt_in,
                          "score": pd.array(score, dtype="Float64"),
                          "lapsed": rng.random(n) < np.where(opt_in, 0.15, 0.35)})
    typed.to_parquet(tmp_path / "t.parquet")
    table = load_own_table(tmp_path / "t.parquet", label="lapsed", id_col="id")
    spec = next(f for f in table.catalogue.features if f.name == "opt_in")
    assert spec.unit == "flag"
    assert table.report["blanks"]["score"] == int(np.isnan(score).sum())  # typed nulls said
    assert f"score {int(np.isnan(score).sum()):,}" in "\n".join(describe_table(table.report))
    pd.DataFrame({"id": ["a", "b", "c", "d"], "opt_in": ["True", "False", "yes", ""], "score": ["61.5", "", "", ""]}
                 ).to_csv(tmp_path / "new.csv", index=False)
    with caplog.at_level(logging.WARNING):
        rows = read_scoring_table(tmp_path / "new.csv", "id", table.catalogue).rows
    assert rows["opt_in"].tolist()[:3] == [1.0, 0.0, 1.0] and pd.isna(rows["opt_in"][3])
    assert not [r for r in caplog.records if "not numbers" in r.getMessage()]
    cells = [["False", 61.5], ["TRUE", None], ["maybe", None]]
    problems = read_sent_cells(cells, [spec, next(f for f in table.catalogue.features if f.name == "score")],
                               dt.date(2026, 12, 7))
    assert [c[0] for c in cells[:2]] == [0.0, 1.0]
    assert problems == [(2, "opt_in", "'maybe' does not read as a number as training read this column")]
