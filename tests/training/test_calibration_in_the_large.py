"""Issue 12 item 5: a missed ECE says whether the level (the base rate moved between the calibration
rows' dates and the test dates) or the shape of the calibration misses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from training.evaluation import ece, evaluate, measurement_notes, shifted_to_base_rate


def _shifted(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities around a 3% base rate and labels drawn from them moved by ``shift`` log-odds
    (``shift`` < 0: the test rows churn less than predicted, as after a base rate fell)."""
    rng = np.random.default_rng(seed)
    p = expit(-3.7 + 0.9 * rng.normal(size=n))
    return p, (rng.random(n) < expit(logit(p) + shift)).astype(int)


def test_the_shift_meets_the_base_rate_and_keeps_the_order():
    p, y = _shifted(20000, -0.4, seed=1)
    q = shifted_to_base_rate(y, p)
    assert q.mean() == pytest.approx(y.mean(), abs=1e-9)
    assert p.mean() > y.mean() * 1.2  # the predictions were a level too high
    assert (np.diff(q[np.argsort(p)]) >= 0).all() and np.unique(q).size == np.unique(p).size
    assert 0 < q.min() and q.max() < 1


def test_a_moved_base_rate_is_told_apart_from_a_wrong_shape():
    p, y = _shifted(20000, -0.4, seed=2)  # right shape, wrong level
    level = evaluate(y, p, ["healthy"] * y.size)
    assert level["mean_predicted"] == pytest.approx(p.mean())
    assert level["ece"] > 2 * level["ece_noise"]
    assert level["ece_level_corrected"] < level["ece_noise"] * 1.5 < level["ece"]
    assert level["ece_level_corrected"] == pytest.approx(ece(y, shifted_to_base_rate(y, p)))

    rng = np.random.default_rng(3)  # right level, wrong shape: the spread is twice the labels'
    z = -3.7 + 0.6 * rng.normal(size=20000)
    y2 = (rng.random(z.size) < expit(z)).astype(int)
    p2 = expit(-3.7 + 2 * (z + 3.7) - np.log(np.mean(np.exp(z + 3.7))))
    shape = evaluate(y2, p2, ["healthy"] * y2.size)
    assert shape["ece_level_corrected"] > 2 * shape["ece_noise"]


def test_the_run_prints_the_level_beside_the_ece():
    p, y = _shifted(5000, -0.4, seed=4)
    metrics = {**evaluate(y, p, ["healthy"] * y.size), "calibration_base_rate": 0.0412}
    notes = measurement_notes(metrics)
    line = [n for n in notes if n.startswith("calibration in the large")]
    assert len(line) == 1
    assert f"mean predicted {p.mean():.4f} against {y.mean():.4f} observed in the test rows" in line[0]
    assert "(0.0412 in the rows the calibration was fitted on)" in line[0]
    assert f"shifted to the observed rate, ECE {metrics['ece_level_corrected']:.4f}" in line[0]
    metrics.pop("calibration_base_rate")
    assert "fitted on" not in [n for n in measurement_notes(metrics) if n.startswith("calibration in")][0]


def test_tiers_that_do_not_order_risk_are_flagged():
    """A forced leaky model put medium_risk at 74% churn above high_risk at 57%, and nothing said so."""
    y = np.array([0] * 90 + [1] * 10 + [0] * 26 + [1] * 74 + [0] * 43 + [1] * 57)
    p = np.r_[np.full(100, 0.1), np.full(100, 0.5), np.full(100, 0.6)]
    tiers = ["healthy"] * 100 + ["medium_risk"] * 100 + ["high_risk"] * 100
    notes = measurement_notes(evaluate(y, p, tiers))
    flagged = [n for n in notes if n.startswith("warning: churn does not rise")]
    assert flagged == ["warning: churn does not rise across the tiers on the test rows (high_risk 57.0% against "
                       "medium_risk 74.0%): the tiers do not order risk here; see the churn by tier below"]
    rising = ["healthy"] * 100 + ["high_risk"] * 100 + ["medium_risk"] * 100  # 10% / 57% / 74%
    assert not [n for n in measurement_notes(evaluate(y, p, rising)) if n.startswith("warning: churn does not rise")]
