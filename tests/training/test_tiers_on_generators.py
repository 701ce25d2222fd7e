"""Issue 12: on every generator (the demo, the consumer log, the Stripe-shaped export under its
correct mapping, the flat table) the trained model's health tiers are all non-empty on its test
rows and churn rises strictly from healthy to high risk. Small data, trained in-process: slow. The demo's
model is the session's shared 300 x 24 build (tests/conftest.py; 4,529 test rows, every tier over 150)."""

from __future__ import annotations

import numpy as np
import pytest

from core.settings import load_settings
from core.vocabulary import TIER_KEYS
from demo.consumer import write_consumer_data
from demo.flat import write_flat_table
from demo.stripe import write_stripe_export
from features.pipeline import build_snapshots
from training.score_calibration import ScoreCalibrator
from training.train import train_on_snapshots, train_on_table

pytestmark = pytest.mark.slow

#: Fewest test rows in a tier for its churn rate to count.
MIN_ROWS = 40


def _event_log(folder, tmp):
    build_snapshots(folder, load_settings(folder / "churnwatch.yaml"), tmp / "store.duckdb")
    return train_on_snapshots(tmp / "store.duckdb", tmp / "out")


def _demo(tmp, trained_demo):
    return trained_demo(300, 24, 6).result()  # the session's shared demo build (tests/conftest.py)


def _consumer(tmp, _shared):
    write_consumer_data(tmp / "d", accounts=800, seed=3)
    return _event_log(tmp / "d", tmp)


def _stripe(tmp, _shared):
    return _event_log(write_stripe_export(tmp / "d", accounts=800, seed=3)["correct"], tmp)


def _flat(tmp, _shared):
    return train_on_table(write_flat_table(tmp / "t.csv", rows=4000, seed=5), "Churn", "customer_id", tmp / "out")


@pytest.mark.parametrize("make", [_demo, _consumer, _stripe, _flat], ids=["demo", "consumer", "stripe", "flat"])
def test_every_tier_is_filled_and_churn_rises_strictly_on_the_test_rows(make, tmp_path, trained_demo):
    result = make(tmp_path, trained_demo)
    preds = result.bundle.test_predictions
    y, tiers, p = preds["churn_label"].to_numpy(int), preds["tier"].to_numpy(), preds["churn_probability"].to_numpy()
    counts = {t: int((tiers == t).sum()) for t in TIER_KEYS}
    rates = [float(y[tiers == t].mean()) for t in TIER_KEYS if counts[t]]
    assert min(counts.values()) >= MIN_ROWS, counts
    assert all(a < b for a, b in zip(rates, rates[1:])), dict(zip(TIER_KEYS, rates))
    assert ((p > 0) & (p < 1)).all()
    hm = result.training["health_map"]
    assert hm["pins_from"] == "base_rate_and_reference" and 0 < hm["p80"] < hm["p60"] < hm["p40"] < 1
    assert isinstance(result.bundle.calibrator, ScoreCalibrator)
    assert result.training["calibration"]["weighting"] in ("equal", "recent (half-life 60 days)")
    order = np.argsort(p)  # the calibrated map keeps the ranking: distinct raw scores stay distinct
    assert np.all(np.diff(p[order]) >= 0)
