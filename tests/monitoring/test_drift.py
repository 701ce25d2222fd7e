"""Drift on real snapshot rows: no alarm between two samples of one distribution; injected
shifts found on exactly the shifted features; the probability's drift reported; sampling.

Evidently draws a few plots per column whatever the row count, so these tests watch 30 of
the model's features (every kind: counts, ratios, changes, days, money, categories).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import MonitoringSettings
from features.store import read_snapshots
from monitoring.drift import drift_report, sample_rows
from monitoring.errors import MonitoringError
from monitoring.reference import PREDICTION
from tests.monitoring.helpers import DRIFT_FROM, SUBSET
from training.model import FeatureFrame


@pytest.fixture(scope="module")
def subset(monitored) -> FeatureFrame:
    frame = monitored.bundle.frame
    cats = [c for c in SUBSET if c in frame.categorical]
    return FeatureFrame(names=SUBSET, categorical=cats, categories={c: frame.categories[c] for c in cats})


@pytest.fixture(scope="module")
def halves(monitored):
    """Two disjoint random halves (fixed seed) of the snapshot rows before the demo's drift
    date, with model probabilities."""
    rows = read_snapshots(monitored.store)
    rows = rows[rows["as_of"] < pd.Timestamp(DRIFT_FROM)]
    rows[PREDICTION] = monitored.bundle.predict(rows)["churn_probability"].to_numpy()
    rows = rows.sample(frac=1.0, random_state=0).reset_index(drop=True)
    half = len(rows) // 2
    a, b = rows.iloc[:half].reset_index(drop=True), rows.iloc[half:2 * half].reset_index(drop=True)
    assert len(a) >= 5000 and len(b) >= 5000
    return a, b


def report(monitored, frame, reference, current, **cfg):
    return drift_report(reference, current, monitored.bundle.catalogue, frame, MonitoringSettings(**cfg)).summary


def test_two_samples_of_one_distribution_raise_no_alarm(monitored, subset, halves):
    s = report(monitored, subset, *halves)
    assert s["features"] == len(SUBSET)
    assert s["current"]["rows"] >= 5000 and s["reference"]["rows"] >= 5000 and not s["sampling"]["sampled"]
    assert not s["alarm"] and s["alarm_reasons"] == []
    assert s["drift_share"] < 0.3 and s["drifted_features"] <= 2, s["drifted"]
    assert not s["probability"]["drifted"]
    assert s["quality"]["unseen_categories"] == {} and s["quality"]["missing_rise"] == []


def test_injected_shifts_are_found_on_exactly_the_shifted_features(monitored, subset, halves):
    reference, current = halves[0], halves[1].copy()
    rng = np.random.default_rng(1)
    current["logins_30d"] = (current["logins_30d"] * 0.4).round()        # a product change
    current["mrr"] = current["mrr"] * 1.6                                  # a price rise
    current["mean_csat_90d"] = (current["mean_csat_90d"] - 1.5).clip(lower=0.0)  # below the spec's 1..5
    latam = rng.random(len(current)) < 0.4
    current["region"] = current["region"].astype(object).where(~latam, "LATAM")  # a new region
    hole = rng.random(len(current)) < 0.5
    current["payment_delay_90d"] = current["payment_delay_90d"].mask(hole)  # missing, same distribution
    current[PREDICTION] = (current[PREDICTION] * 2.5).clip(upper=1.0)

    s = report(monitored, subset, reference, current)
    assert set(s["drifted"]) == {"logins_30d", "mrr", "mean_csat_90d", "region"}
    by_name = {f["feature"]: f for f in s["feature_drift"]}
    assert by_name["region"]["type"] == "categorical" and by_name["logins_30d"]["type"] == "numerical"
    assert all(f["method"] and f["score"] >= 0 for f in s["feature_drift"])
    p = s["probability"]
    assert p["drifted"] and p["mean_current"] > 1.5 * p["mean_reference"]
    assert s["alarm"] and any("probability" in r for r in s["alarm_reasons"])
    assert s["drift_share"] == pytest.approx(4 / s["features"])
    q = s["quality"]
    assert q["unseen_categories"] == {"region": ["LATAM"]}
    assert q["missing_rise"] == ["payment_delay_90d"]
    assert set(q["out_of_range"]) == {"mean_csat_90d"} and q["out_of_range"]["mean_csat_90d"] > 0


def test_the_share_alarm_follows_the_configured_threshold(monitored, halves):
    """Only the numerical subset of a few features, so two drifted of four is a share of 0.5."""
    reference, current = halves[0], halves[1].copy()
    current["logins_30d"] = current["logins_30d"] * 0.3
    current["mrr"] = current["mrr"] * 2
    b = monitored.bundle
    small = FeatureFrame(names=["logins_30d", "mrr", "seats", "tenure_days"], categorical=[])
    hi = drift_report(reference, current, b.catalogue, small, MonitoringSettings(drift_share=0.6)).summary
    lo = drift_report(reference, current, b.catalogue, small, MonitoringSettings(drift_share=0.5)).summary
    assert hi["drift_share"] == lo["drift_share"] == 0.5
    assert not hi["alarm"] and lo["alarm"] and "2 of 4 features drifted" in lo["alarm_reasons"][0]


def test_sampling_is_a_seeded_uniform_sample_without_replacement(halves):
    rows = halves[0]
    one, two = sample_rows(rows, 1000, seed=3), sample_rows(rows, 1000, seed=3)
    assert len(one) == 1000 and one.index.equals(two.index) and one.index.is_unique
    assert not one.index.equals(sample_rows(rows, 1000, seed=4).index)
    assert sample_rows(rows, len(rows), seed=3) is rows and sample_rows(rows, None, seed=3) is rows
    # uniform: the sample's mean is close to the population's
    sd = rows["tenure_days"].std() / np.sqrt(1000)
    assert abs(one["tenure_days"].mean() - rows["tenure_days"].mean()) < 4 * sd


def test_sampled_reports_say_so(monitored, halves):
    b = monitored.bundle
    small = FeatureFrame(names=["logins_30d", "mrr"], categorical=[])
    s = drift_report(halves[0], halves[1], b.catalogue, small, MonitoringSettings(max_rows=1000)).summary
    assert s["sampling"]["sampled"] and s["current"]["rows_compared"] == s["reference"]["rows_compared"] == 1000
    assert s["current"]["rows"] == len(halves[1]) and "uniform" in s["sampling"]["method"]


def test_bad_input_is_refused_before_any_report(monitored, halves):
    b, cfg = monitored.bundle, MonitoringSettings()
    with pytest.raises(MonitoringError, match="lacks 2 of the model's .* features: logins_30d, region"):
        drift_report(halves[0], halves[1].drop(columns=["logins_30d", "region"]), b.catalogue, b.frame, cfg)
    with pytest.raises(MonitoringError, match="current data is empty"):
        drift_report(halves[0], halves[1].iloc[:0], b.catalogue, b.frame, cfg)
    with pytest.raises(MonitoringError, match="churn_probability"):
        drift_report(halves[0], halves[1].drop(columns=[PREDICTION]), b.catalogue, b.frame, cfg)
    bad = halves[1].assign(**{PREDICTION: pd.Series(np.nan, index=halves[1].index)})
    with pytest.raises(MonitoringError, match="probabilities"):
        drift_report(halves[0], bad, b.catalogue, b.frame, cfg)


def test_watched_features_must_be_the_models(monitored, halves):
    b = monitored.bundle
    with pytest.raises(MonitoringError, match="monitoring.features: no_such_feature is not among"):
        drift_report(halves[0], halves[1], b.catalogue, b.frame, MonitoringSettings(features=["no_such_feature"]))
