"""Evaluation metrics against hand-computed values, and the PNG plots they back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training.evaluation import (
    EvaluationError,
    brier,
    ece,
    evaluate,
    gains_by_decile,
    per_tier,
    pr_auc,
    roc_auc,
    top_decile,
)
from training.plots import (
    lift_plot,
    numeric_for_plot,
    reliability_plot,
    roc_pr_plot,
    shap_summary_plot,
)

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def synthetic(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 0.6, n)
    y = (rng.uniform(size=n) < p).astype(int)
    return y, p


def assert_png(path) -> None:
    assert path.exists()
    assert path.stat().st_size > 1024
    assert path.read_bytes()[:8] == PNG_HEADER


# --- metrics -------------------------------------------------------------------------


def test_ece_equals_the_hand_value():
    # 3 bins of 2: |0 - .15| , |.5 - .35| , |1 - .55| -> (.15 + .15 + .45) / 3
    y = [0, 0, 1, 0, 1, 1]
    p = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert ece(y, p, bins=3) == pytest.approx(0.25)
    # unequal bins (3 + 2 rows), input unsorted: 3/5 * |1/3 - .2| + 2/5 * |.5 - .85|
    assert ece([1, 0, 0, 0, 1], [0.9, 0.1, 0.2, 0.8, 0.3], bins=2) == pytest.approx(0.22)


def test_ece_ties_keep_input_order_and_a_calibrated_score_scores_zero():
    # all p tied: stable sort keeps rows 0-1 in bin 1 and rows 2-3 in bin 2
    assert ece([1, 0, 0, 0], [0.5] * 4, bins=2) == pytest.approx(0.25)
    # ten bins of ten rows with p = k/10 and exactly k churners each
    p = np.repeat(np.arange(10) / 10, 10)
    y = np.concatenate([np.r_[np.ones(k), np.zeros(10 - k)] for k in range(10)])
    assert ece(y, p) == pytest.approx(0.0, abs=1e-12)


def test_top_decile_lift_and_capture_on_a_hand_example():
    p = np.arange(20) / 20  # top decile = 2 rows: indices 19 and 18
    y = np.zeros(20, dtype=int)
    y[[19, 17, 5, 2]] = 1  # base rate 4/20 = 0.2; one churner in the top 2 -> rate 0.5
    result = top_decile(y, p)
    assert result.lift == pytest.approx(2.5)
    assert result.capture == pytest.approx(0.25)
    table = gains_by_decile(y, p)
    assert table["count"].tolist() == [2] * 10
    assert table["churned"].tolist() == [1, 1, 0, 0, 0, 0, 0, 1, 1, 0]  # row i is at rank 19 - i
    assert table["cum_capture"].iloc[-1] == pytest.approx(1.0)


def test_top_decile_takes_ceil_of_a_tenth():
    y = np.r_[1, 1, 1, np.zeros(22, dtype=int)]  # 25 rows -> top decile = 3 rows
    p = np.linspace(1, 0, 25)
    result = top_decile(y, p)
    assert result.capture == pytest.approx(1.0)
    assert result.lift == pytest.approx(1.0 / (3 / 25))


def test_per_tier_keeps_empty_tiers_in_tier_order():
    table = per_tier([1, 0, 0, 1, 1], ["high_risk", "healthy", "high_risk", "high_risk", "healthy"])
    assert table["tier"].tolist() == ["healthy", "low_risk", "medium_risk", "high_risk"]
    assert table["count"].tolist() == [2, 0, 0, 3]
    assert table["churned"].tolist() == [1, 0, 0, 2]
    assert table["churn_rate"].iloc[0] == pytest.approx(0.5)
    assert table["churn_rate"].iloc[3] == pytest.approx(2 / 3)
    assert table["churn_rate"].iloc[1:3].isna().all()
    with pytest.raises(EvaluationError, match="unknown tier"):
        per_tier([1], ["doomed"])


def test_sklearn_metrics_on_a_hand_example():
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(y, p) == pytest.approx(0.75)
    assert pr_auc(y, p) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # recall steps x precision
    assert brier(y, p) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)


def test_evaluate_collects_everything_json_ready():
    y, p = synthetic()
    tiers = np.where(p < 0.1, "healthy", np.where(p < 0.3, "low_risk", "high_risk"))
    result = evaluate(y, p, tiers)
    text = json.dumps(result, allow_nan=False)  # only JSON-safe values
    assert json.loads(text) == result
    for key in ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "top_decile_capture"):
        assert type(result[key]) is float, key
    assert result["roc_auc"] == pytest.approx(roc_auc(y, p))
    assert result["ece"] == pytest.approx(ece(y, p))
    assert result["n_rows"] == 400 and result["n_churned"] == int(y.sum())
    assert list(result["per_tier"]) == ["healthy", "low_risk", "medium_risk", "high_risk"]
    assert result["per_tier"]["medium_risk"] == {"count": 0, "churned": 0, "churn_rate": None}
    assert sum(t["count"] for t in result["per_tier"].values()) == 400


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.1], "differ in shape"),
        ([0, 1], [0.1, np.nan], "NaN"),
        ([0, 1], [0.1, 1.5], r"\[0, 1\]"),
        ([0, 0], [0.1, 0.2], "both churned and retained"),
        ([0, 3], [0.1, 0.2], "0/1"),
    ],
)
def test_evaluate_rejects_bad_input(y, p, message):
    with pytest.raises(EvaluationError, match=message):
        evaluate(y, p, ["healthy"] * len(y))


# --- plots ---------------------------------------------------------------------------


def test_metric_plots_write_png_files(tmp_path):
    y, p = synthetic()
    rng = np.random.default_rng(1)
    curves = {
        "model": p,
        "logistic": p + rng.normal(0, 0.2, p.size),
        "rule": rng.uniform(size=p.size),
    }
    paths = [
        reliability_plot(y, p, tmp_path / "reliability.png"),
        roc_pr_plot(y, curves, tmp_path / "roc_pr.png"),
        lift_plot(y, p, tmp_path / "nested" / "lift.png"),
    ]
    for path in paths:
        assert_png(path)


def test_shap_summary_plot_handles_categorical_columns(tmp_path):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(2)
    n = 120
    X = pd.DataFrame(
        {
            "logins_30d": rng.poisson(10, n).astype(float),
            "segment": pd.Categorical(rng.choice(["A", "B", "C"], n)),
            "region": pd.Series(rng.choice(["north", "south", None], n), dtype="string"),
            "contact_left_90d": pd.Series(rng.uniform(size=n) < 0.2, dtype="boolean"),
            "seats": pd.array(rng.integers(1, 50, n), dtype="Int64"),
        }
    )
    contribs = rng.normal(0, 1, (n, X.shape[1]))
    before = plt.get_fignums()
    path = shap_summary_plot(contribs, X, tmp_path / "shap.png", max_display=4)
    assert_png(path)
    assert plt.get_fignums() == before  # figure closed after saving

    numeric = numeric_for_plot(X)
    assert (numeric.dtypes == np.float64).all()
    assert set(numeric["segment"].unique()) == {0.0, 1.0, 2.0}
    assert numeric["region"].isna().sum() == X["region"].isna().sum()

    with pytest.raises(EvaluationError, match="bias"):
        shap_summary_plot(np.zeros((n, X.shape[1] + 1)), X, tmp_path / "bad.png")
