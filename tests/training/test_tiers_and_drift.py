"""Issue 12: tiers never empty when the model ranks (pins anchored to the calibrated base rate and
to held-out tier shares), tiers that follow the pins exactly, and calibration with recent-date
weights only where a purged forward check says the drift carries forward."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from core.vocabulary import TIER_KEYS
from training.health import MIN_TIER_SHARE, HealthMap, HealthMapError, anchored_pins, default_pins
from training.score_calibration import (
    LOGIT_BOUND,
    METHODS,
    ScoreCalibrator,
    choose_calibrator,
    forward_check,
    load_calibrator,
    recency_weights,
)


def _shares(hm: HealthMap, p: np.ndarray) -> dict[str, float]:
    t = hm.tier(hm.health_score(p))
    return {k: float((t == k).mean()) for k in TIER_KEYS}


def test_a_compressed_model_still_fills_every_tier_with_its_riskiest_rows():
    rng = np.random.default_rng(0)
    p = expit(rng.normal(-3.5, 0.3, 5000))  # 3% base rate, nothing near 4 x base rate
    plain = HealthMap.from_base_rate(p.mean())
    assert _shares(plain, p)["high_risk"] < 0.001  # the old pins: an empty high tier
    hm = HealthMap.from_reference(p)
    shares = _shares(hm, p)
    assert shares["high_risk"] >= MIN_TIER_SHARE and shares["high_risk"] < MIN_TIER_SHARE + 0.002
    assert shares["medium_risk"] + shares["high_risk"] >= 2 * MIN_TIER_SHARE
    assert 1 - shares["healthy"] >= 3 * MIN_TIER_SHARE and shares["healthy"] >= MIN_TIER_SHARE
    assert all(v > 0 for v in shares.values())
    assert hm.base_rate_ == pytest.approx(p.mean())
    top = np.sort(p)[-int(0.05 * p.size):]  # the high tier is exactly the riskiest rows
    assert (hm.tier(hm.health_score(top)) == "high_risk").all()


def test_a_model_that_reaches_the_pins_keeps_b_2b_4b_and_a_high_base_rate_stays_below_one():
    rng = np.random.default_rng(1)
    p = expit(rng.normal(-4.0, 1.6, 5000))  # top 5% well above 4 x base rate
    hm = HealthMap.from_reference(p)
    assert hm.pins_ == pytest.approx(default_pins(p.mean()))
    high = expit(rng.normal(-1.3, 1.3, 5000))  # ~26% base rate
    pins = HealthMap.from_reference(high).pins_
    assert 0 < pins[0] < pins[1] < pins[2] < 1
    assert pins[0] == pytest.approx(high.mean())  # p80 stays the base rate
    assert all(v >= MIN_TIER_SHARE for v in _shares(HealthMap.from_reference(high), high).values())


def test_tiers_follow_the_pins_exactly_even_within_rounding():
    hm = HealthMap(p80=0.02, p60=0.03, p40=0.035).fit()
    for pin, bound, above in zip(hm.pins_, (80, 60, 40), ("low_risk", "medium_risk", "high_risk"), strict=True):
        hair = np.nextafter(pin, 1.0)
        assert hm.health_score([pin]).tolist() == [bound]
        assert hm.health_score([hair]).tolist() == [bound - 1]  # rint would have given the pin's own score
        assert hm.tier(hm.health_score([hair])).tolist() == [above]
    grid = np.linspace(0, 1, 200_001)
    h = hm.health_score(grid)
    assert (np.diff(h) <= 0).all() and set(np.diff(h).tolist()) <= {0, -1}


def test_anchored_pins_refuse_bad_input_and_survive_json():
    with pytest.raises(HealthMapError, match="min_share"):
        anchored_pins(0.03, [0.1, 0.2], min_share=0.4)
    with pytest.raises(HealthMapError, match="reference"):
        anchored_pins(0.03, [0.1, np.nan])
    with pytest.raises(HealthMapError, match="reference"):
        anchored_pins(0.03, [])
    tied = np.full(500, 0.03)  # a model that does not rank: pins stay strictly increasing
    p80, p60, p40 = anchored_pins(0.03, tied)
    assert 0 < p80 < p60 < p40 < 1
    hm = HealthMap.from_reference(expit(np.random.default_rng(2).normal(-3.5, 0.3, 2000)))
    d = json.loads(json.dumps(hm.to_dict()))
    assert d["pins_from"] == "base_rate_and_reference" and d["min_tier_share"] == MIN_TIER_SHARE
    again = HealthMap.from_dict(d)
    assert again.pins_ == hm.pins_ and again.to_dict() == hm.to_dict()


# --- calibration with recent-date weights ---------------------------------------------


def _drifting(trend: float, seed: int = 0, weeks: int = 40, per_week: int = 400):
    """Weekly rows whose base rate moves by ``trend`` (logit) per week around a stable ranking."""
    rng = np.random.default_rng(seed)
    week = np.repeat(np.arange(weeks), per_week)
    s = rng.normal(-3.0, 1.0, week.size)
    y = (rng.random(week.size) < expit(s + 0.2 + trend * (week - weeks / 2))).astype(int)
    dates = np.array([dt.date(2025, 1, 6) + dt.timedelta(weeks=int(w)) for w in week])
    return s, y, dates


def test_recency_weights_halve_every_half_life():
    dates = [dt.date(2025, 3, 1), dt.date(2025, 1, 30), dt.date(2024, 12, 1)]
    np.testing.assert_allclose(recency_weights(dates, half_life_days=30), [1.0, 0.5, 0.5 ** 3])


def test_a_drift_that_carries_forward_is_followed_and_a_stable_rate_is_not():
    s, y, dates = _drifting(trend=-0.04)  # the rate falls steadily: the latest dates predict the next
    cal, losses = choose_calibrator(s, y, dates=dates, purge_days=90)
    assert losses["forward_equal"] - losses["forward_recent"] > losses["forward_gain_se"] > 0
    assert cal.weighting_.startswith("recent")
    late = dates >= dates.max() - dt.timedelta(days=56)
    equal = ScoreCalibrator(cal.method).fit(s, y)
    gap_recent = abs(cal.predict(s[late]).mean() - y[late].mean())
    gap_equal = abs(equal.predict(s[late]).mean() - y[late].mean())
    assert gap_recent < gap_equal  # the recent weights track the latest base rate
    s2, y2, dates2 = _drifting(trend=0.0, seed=3)
    cal2, losses2 = choose_calibrator(s2, y2, dates=dates2, purge_days=90)
    assert cal2.weighting_ == "equal"
    assert losses2["forward_equal"] - losses2["forward_recent"] <= losses2["forward_gain_se"]


@pytest.mark.parametrize("method", METHODS)
def test_weighted_calibration_stays_strictly_increasing_and_never_0_or_1(method):
    s, y, dates = _drifting(trend=-0.04, seed=5, weeks=20, per_week=200)
    cal = ScoreCalibrator(method).fit(s, y, recency_weights(dates))
    grid = np.linspace(-10, 10, 10001)
    p = cal.predict(grid)
    assert (p > 0).all() and (p < 1).all()
    assert (np.diff(p)[p[1:] < expit(LOGIT_BOUND - 1)] > 0).all()  # ties only at the logit bound
    cal.weighting_ = "recent (half-life 60 days)"
    again = load_calibrator(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(again.predict(s), cal.predict(s))
    assert again.weighting_ == cal.weighting_


def test_forward_check_needs_dates_and_churners_on_both_sides():
    s, y, dates = _drifting(trend=0.0, weeks=3)
    assert forward_check(s, y, dates, "platt", 0) == {}  # fewer than four dates
    s, y, dates = _drifting(trend=0.0, weeks=12, per_week=30)
    assert forward_check(s, y, dates, "platt", 90) == {}  # nothing left before the purge gap
    with pytest.raises(Exception, match="positive"):
        ScoreCalibrator("platt").fit(s, y, np.zeros_like(s))
    assert pd.Series(recency_weights(dates)).between(0, 1).all()
