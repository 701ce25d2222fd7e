"""Issue 12's unmet figures: a well-specified linear part (log terms, C chosen on validation),
flat tables trained on every non-test row, and ECE reported with what the rows can measure."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from training.blend import BlendedModel, LinearPart, as_matrix
from training.evaluation import ece, ece_estimates, ece_verdict, evaluate, measurement_notes
from training.selection import LOGISTIC_C, grouped_folds, select_model


def _tenure_data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Churn falls with log(1 + tenure), as in telecom tables: concave in the raw value."""
    rng = np.random.default_rng(seed)
    tenure = np.rint(rng.gamma(0.8, 20, n))
    calls = rng.poisson(1.0, n).astype(float)
    X = pd.DataFrame({"tenure": tenure, "calls": calls,
                      "plan": pd.Categorical(rng.choice(["a", "b"], n), categories=["a", "b"])})
    logit = 1.5 - 1.1 * np.log1p(tenure) + 0.4 * calls + 0.3 * (X["plan"] == "b")
    return X, (rng.random(n) < expit(logit.to_numpy())).astype(int)


def test_log_term_fits_a_concave_signal_better_and_contributions_stay_exact():
    X, y = _tenure_data(3000, seed=0)
    Xt, yt = _tenure_data(3000, seed=1)
    names, cat = list(X.columns), ["plan"]
    plain = LinearPart(names, cat, log_terms=False).fit(as_matrix(X), y)
    logged = LinearPart(names, cat, {"tenure": -1}).fit(as_matrix(X), y)
    assert 0 in logged.log_ and 1 in logged.log_  # tenure and calls are never negative
    auc_plain = roc_auc_score(yt, plain.raw(as_matrix(Xt)))
    auc_log = roc_auc_score(yt, logged.raw(as_matrix(Xt)))
    assert auc_log > auc_plain + 0.005
    contrib = logged.contributions(as_matrix(Xt))
    np.testing.assert_allclose(contrib.sum(axis=1), logged.raw(as_matrix(Xt)), atol=1e-9)
    again = LinearPart.from_dict(json.loads(json.dumps(logged.to_dict())))
    np.testing.assert_allclose(again.contributions(as_matrix(Xt)), contrib, atol=1e-12)
    # direction -1 on tenure: neither its value nor its log column may raise risk
    value_and_log = [k for k, j in enumerate(logged.owner_) if j == 0][:2]
    assert (logged.coef_[value_and_log] <= 0).all()


def test_a_blend_saved_before_log_terms_loads_and_scores_as_before():
    X, y = _tenure_data(800, seed=2)
    names, cat = list(X.columns), ["plan"]
    old = LinearPart(names, cat, log_terms=False).fit(as_matrix(X), y).to_dict()
    for key in ("log_terms", "log"):  # what a bundle of the previous version holds
        old.pop(key)
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "verbose": -1}, lgb.Dataset(X, y), 10)
    model = BlendedModel.from_dict(booster, {"kind": "blend", "tree_weight": 0.0, "linear": old})
    assert model.linear.log_ == {}
    np.testing.assert_allclose(model.predict(X, pred_contrib=True).sum(axis=1),
                               model.predict(X, raw_score=True), atol=1e-9)


def test_the_logistic_strength_is_chosen_on_the_validation_rows():
    X, y = _tenure_data(1500, seed=3)
    names, cat = list(X.columns), ["plan"]
    folds = grouped_folds(X, y, np.arange(len(y)) // 3, k=3)
    sel = select_model(folds, len(y), names, cat, {}, [0] * len(names), seed=0)
    tried = {f"logistic_C{c:g}": sel.scores[f"logistic_C{c:g}"] for c in LOGISTIC_C}
    best = f"logistic_C{sel.linear_c:g}"
    assert sel.linear_c in LOGISTIC_C
    assert tried[best] == max(tried.values())
    assert sel.scores["logistic"] == max(tried[best], sel.scores[best + "_log"])
    assert sel.linear_log_terms == (sel.scores[best + "_log"] > tried[best])


def _calibrated(n: int, base_logit: float, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them (``shift`` > 0: labels churn more than predicted)."""
    rng = np.random.default_rng(seed)
    p = expit(base_logit + rng.normal(size=n))
    return p, (rng.random(n) < expit(base_logit + shift + np.log(p / (1 - p)) - base_logit)).astype(int)


def test_debiased_ece_removes_binning_noise_and_the_interval_covers_the_truth():
    p, y = _calibrated(1400, -1.2, seed=4)  # perfectly calibrated, 1,400 rows, ~25% churn
    est = ece_estimates(y, p, n_boot=150)
    assert est["ece"] == pytest.approx(ece(y, p))
    assert est["ece_debiased"] < est["ece"]
    assert est["ece_debiased_lo"] == 0.0 <= est["ece_debiased"] <= est["ece_debiased_hi"]
    assert 0.01 < est["ece_noise"] < 0.04  # what chance alone gives on 10 bins of 140 rows
    q, z = _calibrated(20000, -1.2, seed=5, shift=0.5)  # clearly miscalibrated, many rows
    bad = ece_estimates(z, q, n_boot=100)
    assert bad["ece_debiased_lo"] > bad["ece_noise"]
    assert ece_verdict(bad, float(z.mean()))[0] == "not met"


def test_ece_verdict_met_not_met_and_not_measurable():
    low = {"ece": 0.009, "ece_debiased": 0.002, "ece_debiased_lo": 0.0, "ece_debiased_hi": 0.006,
           "ece_noise": 0.007}
    assert ece_verdict(low, 0.031) == ("not measurable", pytest.approx(0.0031))
    assert ece_verdict({**low, "ece_noise": 0.001}, 0.031)[0] == "not met"
    assert ece_verdict({**low, "ece": 0.015}, 0.30) == ("met", 0.02)  # the absolute bar caps 0.1 x base


def test_few_churned_test_rows_give_a_warning_with_the_count_and_the_interval_width():
    rng = np.random.default_rng(6)
    y = np.zeros(400, dtype=int)
    y[rng.choice(400, 14, replace=False)] = 1
    p = np.clip(rng.random(400) * 0.1 + 0.02 * y, 0.001, 0.999)
    metrics = evaluate(y, p, ["healthy"] * 400, groups=np.arange(400) // 2)
    assert metrics["roc_auc_lo"] < metrics["roc_auc"] < metrics["roc_auc_hi"]
    assert isinstance(metrics["ece_verdict"], str) and json.loads(json.dumps(metrics)) == metrics
    notes = measurement_notes(metrics)
    warning = [n for n in notes if n.startswith("warning")]
    assert len(warning) == 1 and "only 14 churned rows" in warning[0]
    assert f"width {metrics['roc_auc_hi'] - metrics['roc_auc_lo']:.3f}" in warning[0]
    assert warning[0].endswith("judge this model on more history")
    assert any(n.startswith("calibration on the test rows: ECE") for n in notes)
    flat = [n for n in measurement_notes(metrics, dated=False) if n.startswith("warning")]  # a flat table's
    assert flat[0].endswith("judge this model on more customers")


def test_a_flat_table_trains_and_calibrates_on_every_non_test_row(tmp_path):
    from training.own_table import write_example_table
    from training.train import train_on_table

    path = write_example_table(tmp_path / "t.csv", rows=600, seed=3)
    said: list[str] = []
    result = train_on_table(path, "Churn", "customer_id", tmp_path / "out", progress=said.append)
    assert any(m.startswith("training ") and " on 480 customers (" in m for m in said)  # 80% of 600
    assert result.training["selection"]["validation"] == "4 folds of customers"  # not "accounts"
    assert result.training["selection"]["logistic_C"] in LOGISTIC_C
    assert result.metrics["ece_verdict"] in ("met", "not met", "not measurable")
    assert len(result.bundle.test_predictions) == 120
    # calibrated on every non-test row: their churn rate is the level the test rows are compared with
    test_ids = set(result.bundle.test_predictions["account_id"].astype(str))
    table = pd.read_csv(path, dtype={"customer_id": str})
    rest = table[~table["customer_id"].isin(test_ids)]
    assert len(rest) == 480
    rate = float((rest["Churn"] == "Yes").mean())
    assert result.metrics["calibration_base_rate"] == pytest.approx(rate)
    assert any(m.startswith("calibration in the large: mean predicted") and f"({rate:.4f} in the rows" in m
               for m in said)
