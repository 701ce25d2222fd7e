"""Issue 12 item 1: short histories train (cross-fit inside the training dates), the test block
stays out-of-time and purged, and below the minimum the error names both lengths.

One 18-month demo export (about 12 months of labelled as-of dates after the 90-day warm-up
and the horizon + grace tail); 6, 9 and 12 months of labelled history are its first dates.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.settings import TrainingSettings, load_settings
from demo.generator import write_demo_data
from features.pipeline import build_snapshots
from training.errors import TrainingError
from training.train import load_labelled, train_on_labelled


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("short")
    write_demo_data(tmp / "d", accounts=220, months=18, seed=5)
    build_snapshots(tmp / "d", load_settings(tmp / "d" / "churnwatch.yaml"), tmp / "s.duckdb")
    rows, catalogue, info = load_labelled(tmp / "s.duckdb")
    return rows, catalogue, info, tmp


def _first_days(rows: pd.DataFrame, days: int) -> pd.DataFrame:
    first = pd.to_datetime(rows["as_of"]).min()
    return rows[pd.to_datetime(rows["as_of"]) < first + pd.Timedelta(days=days)]


@pytest.mark.parametrize("months", [6, 9, 12])
def test_training_on_short_histories_succeeds_out_of_time_and_purged(labelled, months):
    rows, catalogue, info, tmp = labelled
    part = _first_days(rows, round(months * 30.5))
    said: list[str] = []
    result = train_on_labelled(part, catalogue, info, tmp / "s.duckdb", tmp / f"out{months}",
                               options=TrainingSettings(folds=2), progress=said.append)
    split = result.bundle.meta["split"]
    assert split["mode"] == "cross_fit" and split["calibration"] is None
    train_end, test_start = (dt.date.fromisoformat(split["train"][1]), dt.date.fromisoformat(split["test"][0]))
    assert (test_start - train_end).days > info["horizon_days"] + info["grace_days"]
    assert result.metrics["n_churned"] >= 5 and 0.0 <= result.metrics["roc_auc"] <= 1.0  # 220 accounts: noisy
    p = result.bundle.test_predictions["churn_probability"].to_numpy()
    assert ((p > 0) & (p < 1)).all()
    meta = result.bundle.meta["training"]
    assert meta["selection"]["validation"] == "2 account-grouped folds"
    assert meta["calibration"]["method"] in meta["calibration"]["out_of_fold_log_loss"]
    assert any("account-grouped folds" in m for m in said) and any("model - logistic" in m for m in said)


def test_below_the_minimum_the_error_names_both_lengths(labelled):
    rows, catalogue, info, tmp = labelled
    part = _first_days(rows, 120)
    span = (pd.to_datetime(part["as_of"]).max() - pd.to_datetime(part["as_of"]).min()).days + 1
    need = 28 + info["horizon_days"] + info["grace_days"] + 56
    with pytest.raises(TrainingError, match=rf"{span} days of labelled as-of dates.*{need} needed") as err:
        train_on_labelled(part, catalogue, info, tmp / "s.duckdb", tmp / "out-short")
    assert "horizon_days" in str(err.value) and "--test-days" in str(err.value)


def test_null_and_constant_features_are_left_out_and_listed(labelled):
    rows, catalogue, info, tmp = labelled
    part = _first_days(rows, 200).assign(days_overdue=np.nan, seats=7)
    said: list[str] = []
    result = train_on_labelled(part, catalogue, info, tmp / "s.duckdb", tmp / "out-drop",
                               options=TrainingSettings(folds=2), progress=said.append)
    dropped = result.bundle.meta["training"]["dropped_features"]
    assert "entirely null" in dropped["days_overdue"] and "constant" in dropped["seats"]
    assert "days_overdue" not in result.bundle.frame.names and "seats" not in result.bundle.frame.names
    assert any("left out" in m and "days_overdue" in m for m in said)
    # the catalogue stays whole: a full row still scores, and no reason names a dropped feature
    explained = result.bundle.explain(part.head(50), "en")
    assert not {r["feature"] for e in explained for r in e["reasons"] + e["strengths"]} & {"days_overdue", "seats"}


def test_block_lengths_come_from_churnwatch_yaml_and_bad_values_are_refused(tmp_path):
    from core.errors import ConfigError
    from training.split import purged_split

    (tmp_path / "churnwatch.yaml").write_text("training:\n  test_days: 35\n  calibration_days: 0\n")
    opts = load_settings(tmp_path / "churnwatch.yaml").training
    assert (opts.test_days, opts.calibration_days, opts.min_train_days) == (35, 0, 56)
    dates = [dt.date(2023, 1, 2) + dt.timedelta(days=7 * k) for k in range(110)]  # long enough for purged
    s = purged_split(dates, 60, 30, test_days=opts.test_days, calibration_days=opts.calibration_days)
    assert s.mode == "cross_fit" and (s.test[1] - s.test[0]).days + 1 == 35
    (tmp_path / "churnwatch.yaml").write_text("training:\n  test_days: 3\n")
    with pytest.raises(ConfigError, match="training.test_days"):
        load_settings(tmp_path / "churnwatch.yaml")
