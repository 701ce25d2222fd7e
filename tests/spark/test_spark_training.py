"""`train` from the Parquet snapshot set a Spark build writes (issue 17, item 3): the same rows give the
same model; a sample keeps whole account histories and the churn rate."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from core.store import read_snapshots
from training.errors import TrainingError
from training.snapshot_set import choose_accounts, load_snapshot_set, open_snapshot_set, train_on_snapshot_set

pytestmark = pytest.mark.slow


def test_training_from_the_spark_snapshot_set_equals_training_from_the_store(built):
    tmp, _settings, bundle = built
    result, sample = train_on_snapshot_set(tmp / "spark.snapshots", tmp / "spark.duckdb", tmp / "out-parquet")
    assert not sample.sampled and sample.reason == "all rows"
    labelled = read_snapshots(tmp / "duck.duckdb").query("labelled")
    assert sample.rows == sample.rows_kept == len(labelled)
    assert sample.accounts == labelled["account_id"].nunique()
    for key in ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "base_rate"):
        assert result.metrics[key] == pytest.approx(bundle.meta["metrics"][key], rel=1e-9), key
    assert result.bundle.meta["split"] == bundle.meta["split"]
    assert result.bundle.meta["snapshots"]["parquet"] == str((tmp / "spark.snapshots").resolve())


def test_the_rows_read_from_parquet_are_the_stores(built):
    tmp, _settings, _bundle = built
    rows, catalogue, info, _sample = load_snapshot_set(tmp / "spark.snapshots", tmp / "spark.duckdb")
    store = read_snapshots(tmp / "duck.duckdb").query("labelled").reset_index(drop=True)
    assert list(rows.columns) == list(store.columns)
    assert rows["account_id"].tolist() == store["account_id"].tolist()
    assert pd.to_datetime(rows["as_of"]).tolist() == pd.to_datetime(store["as_of"]).tolist()
    assert rows["churn_label"].tolist() == store["churn_label"].tolist()
    assert set(catalogue.names) <= set(rows.columns) and info["horizon_days"] > 0


def test_a_sample_keeps_whole_accounts_and_the_churn_rate(built):
    tmp, _settings, _bundle = built
    folder, store = tmp / "spark.snapshots", tmp / "spark.duckdb"
    full = read_snapshots(tmp / "duck.duckdb").query("labelled")
    per_account = full.groupby("account_id").size()
    rows, _c, _i, sample = load_snapshot_set(folder, store, sample_accounts=40, seed=3)
    assert sample.sampled and sample.accounts_kept == rows["account_id"].nunique()
    assert abs(sample.accounts_kept - 40) <= 1 and sample.accounts == len(per_account)
    # whole histories: every kept account has all its labelled rows
    kept = rows.groupby("account_id").size()
    assert (kept == per_account[kept.index]).all() and sample.rows_kept == len(rows)
    assert abs(sample.label_rate_kept - full["churn_label"].mean()) < 0.5 * full["churn_label"].mean()
    assert sample.label_rate == pytest.approx(full["churn_label"].mean())
    # reproducible for a seed, another draw for another seed; the figures go to MLflow as sample_*
    again, *_ = load_snapshot_set(folder, store, sample_accounts=40, seed=3)
    other, *_ = load_snapshot_set(folder, store, sample_accounts=40, seed=4)
    assert set(again["account_id"]) == set(rows["account_id"]) != set(other["account_id"])
    assert sample.params()["sample_accounts_kept"] == sample.accounts_kept
    assert "whole histories" in sample.describe()


def test_a_memory_budget_below_the_rows_samples_accounts(built):
    tmp, _settings, _bundle = built
    _rows, _c, _i, sample = load_snapshot_set(tmp / "spark.snapshots", tmp / "spark.duckdb", memory_budget_mb=1.0)
    assert sample.sampled and sample.reason.startswith("memory budget 1 MB")
    assert 0 < sample.accounts_kept < sample.accounts


def test_a_folder_that_is_not_a_snapshot_set_is_named(built, tmp_path):
    tmp, _settings, _bundle = built
    with pytest.raises(TrainingError, match="not a Parquet snapshot set"):
        load_snapshot_set(tmp_path, tmp / "spark.duckdb")
    with pytest.raises(TrainingError, match="at least 1"):
        load_snapshot_set(tmp / "spark.snapshots", tmp / "spark.duckdb", sample_accounts=0)
    with duckdb.connect() as con:
        open_snapshot_set(con, tmp / "spark.snapshots")
        con.execute("CREATE OR REPLACE TEMP VIEW nothing AS SELECT * FROM snapshot_set WHERE false")
        with pytest.raises(TrainingError, match="no labelled rows"):
            choose_accounts(con, "nothing", None)
