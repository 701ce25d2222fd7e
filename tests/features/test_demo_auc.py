"""The demo's generator (24 months, seed 7): its default size, and the trained model at 6,000 accounts.

* At its default size (2,000 accounts): 5 to 12 million events and a monthly churn rate of 1 to
  2.5% (how long writing it takes is a benchmark figure, not a test: `benchmarks/features.py`
  prints it when it generates its data).
* Issue 3's quality bar and issue 2's band for the trained model on the purged out-of-time test
  block (ROC-AUC between 0.75 and 0.90, above the baselines, churn rising across tiers), and issue
  12's calibration bar, ECE <= 0.1 x base rate, all on the same generator at 6,000 accounts: at
  2,000 the bar (0.0024) is below the ECE a perfectly calibrated model shows by chance on the test
  block (0.0031, account-clustered), so it cannot be judged there; at 6,000 that floor is 0.0017 to
  0.0018. Measured (2026-12-07, in-process as below): seed 7 ECE 0.0014 against 0.1 x 2.29% =
  0.0023 (noise floor 0.0018), ROC-AUC 0.861; seed 6 ECE 0.0019 against 0.0024 (floor 0.0017); seed 7 again
  once the login role's counts were no longer repeated as event-type counts (1dc8357): ECE 0.0011, ROC-AUC 0.861.
"""

from __future__ import annotations

import pytest

from core.settings import load_settings
from demo.generator import write_demo_data
from features.pipeline import build_snapshots
from training.evaluation import ECE_ABSOLUTE, ECE_RELATIVE, ece
from training.train import train_on_snapshots

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_data(tmp_path_factory):
    """(folder, the generator's summary): the demo data at its defaults."""
    tmp = tmp_path_factory.mktemp("default")
    return tmp / "d", write_demo_data(tmp / "d")


#: Accounts of the trained model's build: three times the default size, where the test block's chance
#: ECE is below the calibration bar (see the module docstring).
SCALED_ACCOUNTS = 6000


@pytest.fixture(scope="module")
def scaled_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scaled")
    write_demo_data(tmp / "d", accounts=SCALED_ACCOUNTS)
    build_snapshots(tmp / "d", load_settings(tmp / "d" / "churnwatch.yaml"), tmp / "s.duckdb")
    return tmp / "s.duckdb"


def test_default_size_is_realistic(default_data) -> None:
    _, summary = default_data
    assert 5_000_000 <= summary.rows["events"] <= 12_000_000
    assert 0.010 <= summary.monthly_churn_rate <= 0.025
    assert summary.churned_accounts > 400


def test_trained_model_meets_the_quality_and_calibration_bars(scaled_store, tmp_path):
    result = train_on_snapshots(scaled_store, tmp_path)
    m = result.metrics
    table = result.comparison.set_index("model")
    print(table.round(4).to_string(), m["per_tier"], sep="\n")
    model = result.comparison[result.comparison["registered"]].iloc[0]
    assert 0.75 <= model["roc_auc"] <= 0.90, model["roc_auc"]
    for metric in ("roc_auc", "pr_auc"):
        assert model[metric] > table.loc["logistic regression", metric]
        assert model[metric] > table.loc["rule health score", metric]
    # issue 12's bar, unloosened: plain ECE (10 equal-count bins) <= min(0.02, 0.1 x the test block's base rate),
    # on rows where it can be judged (chance alone stays below it)
    preds = result.bundle.test_predictions
    y, p = preds["churn_label"].to_numpy(int), preds["churn_probability"].to_numpy()
    assert m["base_rate"] == pytest.approx(y.mean()) and m["ece"] == pytest.approx(ece(y, p), abs=1e-12)
    target = min(ECE_ABSOLUTE, ECE_RELATIVE * m["base_rate"])
    assert m["ece_noise"] < target, (m["ece_noise"], target)
    assert m["ece"] <= target, (m["ece"], target, m["ece_noise"])
    assert ((p > 0) & (p < 1)).all()
    rates = [m["per_tier"][t]["churn_rate"] for t in ("healthy", "low_risk", "medium_risk", "high_risk")]
    assert all(a < b for a, b in zip(rates, rates[1:])), rates
    assert rates[-1] >= 3 * m["base_rate"]
