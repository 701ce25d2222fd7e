"""Calibrator and health map: JSON round-trips, monotonicity, pins landing on tier bounds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from training.calibration import CalibrationError, IsotonicCalibrator, fit_calibrator
from training.evaluation import ece
from training.health import TIER_KEYS, TIERS, HealthMap, HealthMapError, default_pins, tier


def miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores that overstate risk: true churn probability q, reported score sqrt(q)."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.0, 0.4, n)
    y = (rng.uniform(size=n) < q).astype(int)
    return np.sqrt(q), y


# --- calibrator ----------------------------------------------------------------------


def test_calibrator_round_trips_through_json_with_identical_predictions():
    scores, y = miscalibrated(2_000, seed=1)
    cal = IsotonicCalibrator().fit(scores, y)
    loaded = IsotonicCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    grid = np.r_[-0.5, np.linspace(0, 1, 1_001), 1.5]
    assert np.array_equal(loaded.predict(grid), cal.predict(grid))
    assert np.array_equal(loaded.thresholds_x_, cal.thresholds_x_)
    d = cal.to_dict()
    assert d["kind"] == "isotonic"
    assert all(type(v) is float for v in d["thresholds_x"] + d["thresholds_y"])


def test_calibrator_matches_sklearn_and_clips_outside_the_knots():
    scores, y = miscalibrated(1_000, seed=2)
    cal = fit_calibrator(scores, y)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, y)
    grid = np.linspace(-0.2, 1.2, 701)
    np.testing.assert_allclose(cal.predict(grid), iso.predict(grid), rtol=0, atol=1e-12)
    assert cal.predict([-1.0])[0] == cal.thresholds_y_[0]
    assert cal.predict([2.0])[0] == cal.thresholds_y_[-1]


def test_calibrated_probabilities_are_non_decreasing_in_the_score():
    scores, y = miscalibrated(3_000, seed=3)
    p = IsotonicCalibrator().fit(scores, y).predict(np.linspace(0, 1, 10_001))
    assert np.all(np.diff(p) >= 0)
    assert p.min() >= 0.0 and p.max() <= 1.0


def test_calibration_lowers_ece_of_a_miscalibrated_score():
    cal_scores, cal_y = miscalibrated(5_000, seed=4)
    test_scores, test_y = miscalibrated(5_000, seed=5)
    cal = IsotonicCalibrator().fit(cal_scores, cal_y)
    raw_ece = ece(test_y, test_scores)
    calibrated_ece = ece(test_y, cal.predict(test_scores))
    assert raw_ece > 0.15  # sqrt(q) overstates risk by ~0.2 on average
    assert calibrated_ece < 0.03
    assert calibrated_ece < raw_ece / 5


@pytest.mark.parametrize(
    ("scores", "y", "message"),
    [
        ([], [], "empty"),
        ([0.1, np.nan, 0.3], [0, 1, 0], "NaN"),
        ([0.1, 0.2, 0.3], [0, 0, 0], "single class"),
        ([0.1, 0.2, 0.3], [0, 1], "differ in length"),
        ([0.1, 0.2], [0, 2], "0/1"),
    ],
)
def test_calibrator_rejects_bad_input_with_a_clear_value_error(scores, y, message):
    with pytest.raises(CalibrationError, match=message) as exc:
        IsotonicCalibrator().fit(scores, y)
    assert isinstance(exc.value, ValueError)


def test_calibrator_must_be_fitted_and_from_dict_checks_the_knots():
    with pytest.raises(CalibrationError, match="not fitted"):
        IsotonicCalibrator().predict([0.1])
    with pytest.raises(CalibrationError, match="NaN"):
        IsotonicCalibrator().fit([0.1, 0.2], [0, 1]).predict([np.nan])
    with pytest.raises(CalibrationError, match="strictly increasing"):
        IsotonicCalibrator.from_dict({"thresholds_x": [0.2, 0.1], "thresholds_y": [0.1, 0.2]})
    with pytest.raises(CalibrationError, match="lacks"):
        IsotonicCalibrator.from_dict({"thresholds_x": [0.1]})


# --- health map ----------------------------------------------------------------------


def test_default_pins_are_b_2b_4b_and_clipped_to_stay_strictly_increasing():
    assert default_pins(0.05) == pytest.approx((0.05, 0.10, 0.20))
    assert default_pins(0.25) == pytest.approx((0.25, 0.50, 1.0 - 0.25))  # 4b = 1 -> halfway
    assert default_pins(0.3) == pytest.approx((0.3, 0.6, 0.8))
    assert default_pins(0.5) == pytest.approx((0.5, 0.75, 0.875))
    for b in np.r_[0.0, 1e-9, np.linspace(0, 1, 201), 1.0]:
        p80, p60, p40 = default_pins(b)
        assert 0.0 < p80 < p60 < p40 < 1.0, b
    with pytest.raises(HealthMapError):
        default_pins(1.5)


def test_fit_takes_the_base_rate_from_the_labels():
    hm = HealthMap().fit(np.r_[np.ones(5), np.zeros(95)])
    assert hm.base_rate_ == pytest.approx(0.05)
    assert hm.pins_ == pytest.approx((0.05, 0.10, 0.20))


MAPS = [
    HealthMap.from_base_rate(0.05),
    HealthMap.from_base_rate(0.013),
    HealthMap.from_base_rate(0.4),
    HealthMap(p80=0.02, p60=0.07, p40=0.3).fit(),
]


@pytest.mark.parametrize("hm", MAPS, ids=repr)
def test_pins_land_exactly_on_the_tier_bounds(hm):
    p80, p60, p40 = hm.pins_
    health = hm.health_score([0.0, p80, p60, p40, 1.0])
    assert health.tolist() == [100, 80, 60, 40, 0]
    assert health.dtype == np.int64
    assert hm.tier(health).tolist() == [
        "healthy",
        "healthy",
        "low_risk",
        "medium_risk",
        "high_risk",
    ]
    assert hm.health_score([(p80 + p60) / 2]).tolist() == [70]


@pytest.mark.parametrize("hm", MAPS, ids=repr)
def test_health_is_monotone_non_increasing_over_a_fine_grid(hm):
    grid = np.unique(np.r_[np.linspace(0, 1, 200_001), hm.pins_, np.nextafter(hm.pins_, 1)])
    health = hm.health_score(grid)
    assert np.all(np.diff(health) <= 0)
    assert health[0] == 100 and health[-1] == 0
    assert set(np.diff(health).tolist()) <= {0, -1}  # every integer on the way is reached


def test_tier_bounds_and_counts():
    assert tier([100, 80, 79, 60, 59, 40, 39, 0]).tolist() == [
        "healthy", "healthy", "low_risk", "low_risk",
        "medium_risk", "medium_risk", "high_risk", "high_risk",
    ]  # fmt: skip
    keys, counts = np.unique(tier(np.arange(101)), return_counts=True)
    assert dict(zip(keys.tolist(), counts.tolist(), strict=True)) == {
        "healthy": 21, "low_risk": 20, "medium_risk": 20, "high_risk": 40,
    }  # fmt: skip
    with pytest.raises(HealthMapError):
        tier([101])
    with pytest.raises(HealthMapError):
        tier([59.5])


def test_tiers_constant_carries_both_languages_in_order():
    assert [t.key for t in TIERS] == list(TIER_KEYS)
    assert TIER_KEYS == ("healthy", "low_risk", "medium_risk", "high_risk")
    assert [t.min_health for t in TIERS] == [80, 60, 40, 0]
    assert [t.zh for t in TIERS] == ["健康", "低风险", "中风险", "高风险"]
    assert [t.rank for t in TIERS] == [0, 1, 2, 3]
    for t in TIERS:
        assert t.en and t.colour.startswith("#") and t.meaning_en and t.meaning_zh


@pytest.mark.parametrize("hm", [MAPS[0], MAPS[3]], ids=repr)
def test_health_map_round_trips_through_json(hm):
    loaded = HealthMap.from_dict(json.loads(json.dumps(hm.to_dict())))
    grid = np.linspace(0, 1, 10_001)
    assert np.array_equal(loaded.health_score(grid), hm.health_score(grid))
    assert loaded.pins_ == hm.pins_
    assert loaded.to_dict() == hm.to_dict()


def test_health_map_rejects_bad_pins_and_probabilities():
    with pytest.raises(HealthMapError, match="0 < p80 < p60 < p40 < 1"):
        HealthMap(p80=0.1, p60=0.1, p40=0.3).fit()
    with pytest.raises(HealthMapError, match="all three"):
        HealthMap(p80=0.1).fit()
    with pytest.raises(HealthMapError, match="base_rate"):
        HealthMap().fit()
    with pytest.raises(HealthMapError, match="not fitted"):
        HealthMap().health_score([0.1])
    hm = HealthMap.from_base_rate(0.05)
    with pytest.raises(HealthMapError, match=r"\[0, 1\]"):
        hm.health_score([0.1, 1.2])
    with pytest.raises(HealthMapError):
        hm.health_score([np.nan])
