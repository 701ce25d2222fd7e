"""Drift on real snapshot rows: no alarm between two samples of one distribution; injected
shifts found on exactly the shifted features; the probability's drift reported; sampling.

Evidently draws a few plots per column whatever the row count, so these tests watch 30 of
the model's features (every kind: counts, ratios, changes, days, money, categories).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.settings import MonitoringSettings
from core.store import read_snapshots
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
    """The snapshot rows before the demo's drift date split by ACCOUNT into two random halves
    (fixed seed): no account's neighbouring weekly snapshots on both sides; model probabilities."""
    rows = read_snapshots(monitored.store)
    rows = rows[rows["as_of"] < pd.Timestamp(DRIFT_FROM)]
    rows[PREDICTION] = monitored.bundle.predict(rows)["churn_probability"].to_numpy()
    ids = np.sort(rows["account_id"].unique())
    first = set(np.random.default_rng(0).permutation(ids)[: len(ids) // 2])
    side = rows["account_id"].isin(first)
    a, b = rows[side].reset_index(drop=True), rows[~side].reset_index(drop=True)
    assert len(a) >= 5000 and len(b) >= 5000
    assert not set(a["account_id"]) & set(b["account_id"])
    return a, b


def report(monitored, frame, reference, current, **cfg):
    return drift_report(reference, current, monitored.bundle.catalogue, frame, MonitoringSettings(**cfg)).summary


@pytest.fixture(scope="module")
def halves_summary(monitored, subset, halves):
    """The watched subset's report on the two account halves (default settings): read only."""
    return report(monitored, subset, *halves)


def test_two_samples_of_one_distribution_raise_no_alarm(halves_summary):
    s = halves_summary
    assert s["features"] == len(SUBSET)
    assert s["current"]["rows"] >= 5000 and s["reference"]["rows"] >= 5000 and not s["sampling"]["sampled"]
    assert not s["alarm"] and s["alarm_reasons"] == []
    # 150 accounts a side: account-level differences alone move a few features past
    # Evidently's distance threshold (it treats rows as independent), not the share
    assert s["drift_share"] < 0.3 and s["drifted_features"] < 0.3 * len(SUBSET), s["drifted"]
    assert not s["probability"]["drifted"]
    assert s["quality"]["unseen_categories"] == {} and s["quality"]["missing_rise"] == []


@pytest.fixture(scope="module")
def independent_samples(monitored, tmp_path_factory):
    """Two independent samples of one distribution: the demo generator with two seeds (no
    drift), 1,000 accounts each, snapshots on five weekly dates (>= 5,000 rows a side),
    scored by the champion."""
    import datetime as dt

    from core.settings import load_settings
    from demo.generator import write_demo_data
    from features.pipeline import build_snapshots

    dates = [dt.date(2025, 6, 2) + dt.timedelta(days=7 * k) for k in range(5)]
    sides = []
    for seed in (11, 12):
        root = tmp_path_factory.mktemp(f"independent{seed}")
        write_demo_data(root / "d", accounts=1000, months=24, seed=seed)
        build_snapshots(root / "d", load_settings(root / "d" / "churnwatch.yaml"), root / "s.duckdb", as_of=dates)
        rows = read_snapshots(root / "s.duckdb")
        rows[PREDICTION] = monitored.bundle.predict(rows)["churn_probability"].to_numpy()
        sides.append(rows)
    assert min(len(s) for s in sides) >= 5000
    return sides


def test_independent_samples_raise_no_alarm_over_all_model_features_by_default(monitored, independent_samples):
    """The default configuration (threshold 0.3, Evidently's own tests) over every model
    feature, on two independent samples of 1,000 accounts: at most a feature or two past
    the distance threshold by chance, no alarm, no probability drift."""
    b = monitored.bundle
    s = drift_report(*independent_samples, b.catalogue, b.frame, MonitoringSettings()).summary
    assert s["features"] == len(b.frame.names) > len(SUBSET) and s["thresholds"]["drift_share"] == 0.3
    assert not s["alarm"] and s["alarm_reasons"] == [] and not s["probability"]["drifted"]
    assert s["drift_share"] < 0.05, s["drifted"]


def test_account_halves_of_a_small_base_show_the_known_limitation(monitored, subset, halves, halves_summary):
    """150 accounts a side, each with ~70 weekly rows: Evidently treats rows as independent,
    so account-level differences push many features past the distance threshold. This pins
    the documented limitation for small customer bases (README: watch fewer features or
    raise monitoring.drift_threshold there); if it stops holding, update the README. On the
    watched subset (30 features; all 120 took half a minute more and showed the same)."""
    s = halves_summary
    assert s["drift_share"] > 0.1, s["drift_share"]
    relaxed = drift_report(halves[0], halves[1], monitored.bundle.catalogue, subset,
                           MonitoringSettings(drift_threshold=0.3)).summary
    assert relaxed["drift_share"] < s["drift_share"] and not relaxed["alarm"], relaxed["drifted"]


def test_a_feature_without_values_on_one_side_is_reported_not_compared(monitored, subset, halves):
    reference, current = halves[0], halves[1].copy()
    current["mrr"] = np.nan                       # no values now
    reference = reference.assign(tickets_30d=np.nan)  # no values in the reference
    current["logins_30d"] = (current["logins_30d"] * 0.3).round()
    s = report(monitored, subset, reference, current)
    assert s["not_comparable"] == [
        {"feature": "tickets_30d", "reason": "not comparable (no values in reference)"},
        {"feature": "mrr", "reason": "not comparable (no values in current)"}]
    assert s["features"] == len(SUBSET) - 2 and {f["feature"] for f in s["feature_drift"]}.isdisjoint(
        {"mrr", "tickets_30d"})
    assert "logins_30d" in s["drifted"] and s["drift_share"] == pytest.approx(len(s["drifted"]) / (len(SUBSET) - 2))
    assert "mrr" in s["quality"]["missing_rise"]
    nothing = FeatureFrame(names=["mrr"], categorical=[])
    with pytest.raises(MonitoringError, match="no watched feature has values on both sides"):
        drift_report(reference, current, monitored.bundle.catalogue, nothing, MonitoringSettings())


def test_injected_shifts_are_found_on_exactly_the_shifted_features(monitored, subset, halves, halves_summary):
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

    baseline = set(halves_summary["drifted"])  # account halves differ a little already
    s = report(monitored, subset, reference, current)
    assert set(s["drifted"]) == baseline | {"logins_30d", "mrr", "mean_csat_90d", "region"}
    by_name = {f["feature"]: f for f in s["feature_drift"]}
    assert by_name["region"]["type"] == "categorical" and by_name["logins_30d"]["type"] == "numerical"
    assert all(f["method"] and f["score"] >= 0 for f in s["feature_drift"])
    p = s["probability"]
    assert p["drifted"] and p["mean_current"] > 1.5 * p["mean_reference"]
    assert s["alarm"] and any("probability" in r for r in s["alarm_reasons"])
    assert s["drift_share"] == pytest.approx(len(baseline | {"logins_30d", "mrr", "mean_csat_90d", "region"})
                                             / s["features"])
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
