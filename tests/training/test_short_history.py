"""Issue 12 item 1: short histories train, the test block stays out-of-time, and below the
minimum the error names both lengths.

One 18-month demo export (about 12 months of labelled as-of dates after the 90-day warm-up
and the horizon + grace tail); 6, 9 and 12 months of LABELLED history are its first dates
(cross-fit, purged test block). Shorter labelled histories (what a 6-month export has) use
the account-holdout layout; "months of export" is tested end to end in
tests/foreign/test_foreign_consumer_cli.py. Changed with the account-holdout layout: the
minimum is now 56 labelled days (was 174), so the below-the-minimum test uses 49 days.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.settings import TrainingSettings, load_settings
from demo.generator import write_demo_data
from features.pipeline import build_snapshots
from features.timeline import CROSS_FIT_EXTRA_DAYS, default_schedule, schedule_warmup
from training import promotion
from training.errors import TrainingError
from training.split import MIN_TEST_DAYS, MIN_TRAIN_DAYS, Split, purged_split
from training.split import test_rows as held_out_test_rows
from training.train import flat_metrics, load_labelled, train_on_labelled


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
    assert meta["selection"]["validation"].startswith("2 account-grouped folds split in time")
    assert meta["calibration"]["method"] in meta["calibration"]["out_of_fold_log_loss"]
    assert any("account-grouped folds" in m for m in said) and any("model - logistic" in m for m in said)
    # how few churners there are is said in accounts: a churner is labelled on every date of its horizon
    [line] = [m for m in said if m.startswith(f"training {meta['selection']['chosen']} on ")]
    train_rows = part[part["as_of"] <= pd.Timestamp(train_end)]
    churned = train_rows.loc[train_rows["churn_label"] == 1, "account_id"].nunique()
    assert f" rows of {train_rows['account_id'].nunique():,} accounts (" in line
    assert f" churned rows of {churned:,} accounts), " in line


def test_below_the_minimum_the_error_names_both_lengths(labelled):
    rows, catalogue, info, tmp = labelled
    part = _first_days(rows, 49)
    span = (pd.to_datetime(part["as_of"]).max() - pd.to_datetime(part["as_of"]).min()).days + 1
    with pytest.raises(TrainingError, match=rf"{span} days of labelled as-of dates.*, 56 needed") as err:
        train_on_labelled(part, catalogue, info, tmp / "s.duckdb", tmp / "out-short")
    # the data end is the day after the last day of data
    export = (dt.date.fromisoformat(info["data_end"]) - dt.date.fromisoformat(info["data_start"])).days
    need_export = 28 + 56 + info["horizon_days"] + info["grace_days"]
    assert f"the export covers {export} days" in str(err.value)
    assert f"at least {need_export} days of export are needed" in str(err.value)
    assert "horizon_days" in str(err.value) and "--test-days" in str(err.value)


def test_a_history_too_short_for_a_purge_gap_trains_on_held_out_accounts(labelled):
    rows, catalogue, info, tmp = labelled
    part = _first_days(rows, 130)  # < 174 days: no purge gap fits; 220 accounts, so ~55 held out
    said: list[str] = []
    result = train_on_labelled(part, catalogue, info, tmp / "s.duckdb", tmp / "out-holdout",
                               options=TrainingSettings(folds=2), progress=said.append, seed=0)
    split = Split.from_dict(result.bundle.meta["split"])
    assert split.mode == "account_holdout" and split.purge_days == 0 and split.lag_days == 90
    assert "held-out accounts" in result.bundle.meta["split"]["test_description"]
    test = result.bundle.test_predictions
    dates = sorted(pd.to_datetime(part["as_of"]).dt.date.unique())
    assert set(pd.to_datetime(test["as_of"]).dt.date) == {d for d in dates if d >= split.test[0]}
    train_accounts = set(split.rows(part, "train")["account_id"])
    assert train_accounts and not train_accounts & set(test["account_id"])
    assert any("held-out accounts" in m and "too short for a 90-day purge gap" in m for m in said)
    again = promotion.test_block(result.bundle)  # promote / evaluate re-read the same held-out rows from the store
    assert len(again) == len(test) and set(again["account_id"]) == set(test["account_id"])
    assert any("account-grouped folds" in m for m in said)


def _frame(accounts: int, dates: list[dt.date]) -> pd.DataFrame:
    return pd.DataFrame([(f"acc-{i}", d) for d in dates for i in range(accounts)], columns=["account_id", "as_of"])


def test_account_holdout_split_disjoint_accounts_last_dates_seeded():
    dates = [dt.date(2024, 3, 4) + dt.timedelta(days=7 * k) for k in range(10)]  # 64 days: no purge gap fits
    s = purged_split(dates, 60, 30, seed=1)
    assert (s.mode, s.purge_days, s.test) == ("account_holdout", 0, (dates[-1] - dt.timedelta(days=27), dates[-1]))
    frame = _frame(1000, dates)
    train, test = s.rows(frame, "train"), s.rows(frame, "test")
    assert not set(train["account_id"]) & set(test["account_id"])
    assert sorted(test["as_of"].unique()) == dates[-4:] and train["as_of"].max() < test["as_of"].min()
    assert train["as_of"].max() == dates[-5]  # no purge gap: training runs up to the test block
    assert 0.2 < test["account_id"].nunique() / 1000 < 0.3
    assert set(train["account_id"]) | set(test["account_id"]) == set(frame["account_id"])
    again = Split.from_dict(s.to_dict()).rows(frame, "test")
    assert set(again["account_id"]) == set(test["account_id"])  # the bundle's split alone says which
    assert held_out_test_rows(s.to_dict(), frame[frame["as_of"] >= s.test[0]]).equals(test)
    other = purged_split(dates, 60, 30, seed=2).rows(frame, "test")
    assert set(other["account_id"]) != set(test["account_id"])


def test_the_layout_follows_the_labelled_days():
    weeks = lambda n: [dt.date(2024, 1, 1) + dt.timedelta(days=7 * k) for k in range(n)]  # noqa: E731
    assert purged_split(weeks(80), 60, 30).mode == "purged"
    assert purged_split(weeks(26), 60, 30).mode == "cross_fit"  # 176 days
    assert purged_split(weeks(9), 60, 30).mode == "account_holdout"  # 57 days
    with pytest.raises(TrainingError, match="50 days of labelled as-of dates"):
        purged_split(weeks(8), 60, 30)


def test_the_warm_up_adapts_to_short_exports_only():
    start = dt.date(2024, 1, 1)
    for days, warmup in ((183, 28), (274, 28), (330, 59), (365, 90), (731, 90)):
        assert schedule_warmup(start, start + dt.timedelta(days=days - 1), 90) == warmup, days
    end = start + dt.timedelta(days=182)
    dates = default_schedule(start, end, lag_days=90)
    labelled = [d for d in dates if d + dt.timedelta(days=90) <= end]
    assert dates[0] >= start + dt.timedelta(days=28) and (labelled[-1] - labelled[0]).days + 1 >= 56
    long_end = start + dt.timedelta(days=729)
    assert default_schedule(start, long_end, lag_days=90) == default_schedule(start, long_end)  # unchanged
    assert CROSS_FIT_EXTRA_DAYS == MIN_TEST_DAYS + MIN_TRAIN_DAYS


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

    (tmp_path / "churnwatch.yaml").write_text("training:\n  test_days: 35\n  calibration_days: 0\n")
    opts = load_settings(tmp_path / "churnwatch.yaml").training
    assert (opts.test_days, opts.calibration_days, opts.min_train_days) == (35, 0, 56)
    dates = [dt.date(2023, 1, 2) + dt.timedelta(days=7 * k) for k in range(110)]  # long enough for purged
    s = purged_split(dates, 60, 30, test_days=opts.test_days, calibration_days=opts.calibration_days)
    assert s.mode == "cross_fit" and (s.test[1] - s.test[0]).days + 1 == 35
    (tmp_path / "churnwatch.yaml").write_text("training:\n  test_days: 3\n")
    with pytest.raises(ConfigError, match="training.test_days"):
        load_settings(tmp_path / "churnwatch.yaml")


def test_the_rule_score_is_judged_on_the_validation_rows_as_a_reference(labelled):
    """The rule-weighted health score's ROC-AUC on the model choice's own validation rows is
    reported next to the candidates' (terminal, bundle, MLflow metric), never chosen."""
    from sklearn.metrics import roc_auc_score

    from training.baselines import rule_health_score
    from training.selection import forward_folds

    rows, catalogue, info, tmp = labelled
    part = _first_days(rows, round(6 * 30.5))
    said: list[str] = []
    result = train_on_labelled(part, catalogue, info, tmp / "s.duckdb", tmp / "out_rule",
                               options=TrainingSettings(folds=2), progress=said.append)
    selection = result.bundle.meta["training"]["selection"]
    train = Split.from_dict(result.bundle.meta["split"]).rows(part, "train")
    _, positions = forward_folds(train, train["churn_label"].to_numpy(dtype=int), train["account_id"].to_numpy(),
                                 train["as_of"].to_numpy(), k=2)
    judged = train.iloc[positions]
    assert judged["as_of"].nunique() < train["as_of"].nunique()  # the later training dates only
    expected = roc_auc_score(judged["churn_label"], -rule_health_score(judged))
    assert selection["rule_validation_roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert not any("rule" in n for n in selection["validation_roc_auc"])  # a reference, not a candidate
    assert flat_metrics(result)["validation_roc_auc_rule_health"] == pytest.approx(expected, abs=1e-12)
    assert any(m.startswith(f"rule-weighted health score on the same validation rows: ROC-AUC {expected:.4f}")
               for m in said)


def test_a_rule_score_with_no_indicator_that_varies_is_no_baseline(labelled):
    """A log whose event roles are not mapped has none of the rule's indicators: its score is the
    same for every row (ROC-AUC 0.5000), which was printed and logged as a baseline."""
    from training.baselines import RULE_DIMENSIONS

    rows, catalogue, info, tmp = labelled
    part = _first_days(rows, round(6 * 30.5)).copy()
    for column in {c for cs in RULE_DIMENSIONS.values() for c in cs} & set(part.columns):
        part[column] = np.nan
    said: list[str] = []
    result = train_on_labelled(part, catalogue, info, tmp / "s.duckdb", tmp / "out_no_rule",
                               options=TrainingSettings(folds=2), progress=said.append)
    assert list(result.comparison["model"].str.split(":").str[0]) == ["model", "logistic regression",
                                                                       "renewal calendar"]
    assert list(result.comparison["registered"]) == [True, False, False]
    assert result.bundle.meta["training"]["selection"]["rule_validation_roc_auc"] is None
    assert "rule health" not in result.metrics["vs_baselines"]
    assert not any(k.startswith("rule_") for k in flat_metrics(result))
    assert any(m.startswith("rule-weighted health score: left out of the baselines, it is constant") for m in said)
    assert "baselines: logistic regression" in said
