"""A large build is made in account partitions (``features.pipeline.build_in_partitions``): the same
rows as one pass, every feature, every account, every as-of date; the whole schedule and some dates."""

from __future__ import annotations

import duckdb
import pytest

from core.settings import load_settings
from core.store import SNAPSHOTS_STAGED
from demo.generator import write_demo_data
from features.pipeline import EVENTS_PER_PARTITION, account_partitions, build_snapshots


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partitions") / "d"
    write_demo_data(folder, accounts=90, months=10, seed=5)
    return folder, load_settings(folder / "churnwatch.yaml")


def _rows(store):
    with duckdb.connect(str(store), read_only=True) as con:
        cols = [r[0] for r in con.execute("DESCRIBE snapshots").fetchall()]
        rows = con.execute("SELECT * FROM snapshots ORDER BY as_of, account_id").fetchall()
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        as_of = [r[0] for r in con.execute("SELECT as_of FROM snapshots").fetchall()]
    return cols, rows, tables, as_of


def same(a: list[tuple], b: list[tuple]) -> bool:
    """Equal rows; a float to 1e-12 relative (an average's last bit depends on the order DuckDB's
    threads add in: ``mean_resolution_hours_90d`` differs so between two whole builds too)."""
    return len(a) == len(b) and all(
        len(x) == len(y) and all(u == v or (isinstance(u, float) and isinstance(v, float)
                                            and u == pytest.approx(v, rel=1e-12, abs=0)) for u, v in zip(x, y))
        for x, y in zip(a, b))


def test_how_many_partitions():
    assert account_partitions(0) == account_partitions(2 * EVENTS_PER_PARTITION) == 1
    assert account_partitions(2 * EVENTS_PER_PARTITION + 1) == 3
    assert account_partitions(92_319_332) == 6  # 4x the benchmark: 15.4 M events a partition
    assert account_partitions(1000, per_partition=300) == 4 and account_partitions(600, per_partition=300) == 1


def test_partitions_give_the_rows_of_one_pass(demo, tmp_path):
    folder, settings = demo
    whole = build_snapshots(folder, settings, tmp_path / "whole.duckdb")
    per = whole.events // 4 + 1  # four partitions
    assert account_partitions(whole.events, per) == 4
    steps: list[str] = []
    parted = build_snapshots(folder, settings, tmp_path / "parted.duckdb", partition_events=per,
                             progress=steps.append)
    assert [s for s in steps if s.startswith("account partition")] == [f"account partition {p} of 4"
                                                                       for p in range(1, 5)]
    assert steps[-1] == f"the 4 partitions' rows become the snapshots of {tmp_path / 'parted.duckdb'}"
    cols, rows, tables, as_of = _rows(tmp_path / "parted.duckdb")
    cols0, rows0, tables0, as_of0 = _rows(tmp_path / "whole.duckdb")
    assert cols == cols0 and len(rows) == len(rows0) == whole.rows > 0
    assert same(rows, rows0)  # every value of every feature, account and date
    assert [r[:2] for r in rows] == [r[:2] for r in rows0]
    assert (parted.rows, parted.labelled_rows, parted.positive_rows, parted.accounts, parted.input_hash) == \
        (whole.rows, whole.labelled_rows, whole.positive_rows, whole.accounts, whole.input_hash)
    assert parted.catalogue.to_json() == whole.catalogue.to_json()
    assert SNAPSHOTS_STAGED not in tables and SNAPSHOTS_STAGED not in tables0
    # the partitions follow one another in the store: the dates start again with each
    assert as_of0 == sorted(as_of0) and as_of != sorted(as_of)
    assert sorted(as_of) == as_of0


def test_some_dates_built_in_partitions_replace_those_dates_only(demo, tmp_path):
    folder, settings = demo
    store = tmp_path / "s.duckdb"
    whole = build_snapshots(folder, settings, store)
    _, before, _, _ = _rows(store)
    dates = whole.as_of[3:6]
    again = build_snapshots(folder, settings, store, as_of=dates, partition_events=whole.events // 3 + 1)
    _, after, tables, _ = _rows(store)
    assert same(after, before)  # replaced, not duplicated, and every other date kept
    assert again.rows == sum(1 for r in before if r[1] in dates) and SNAPSHOTS_STAGED not in tables


def test_own_columns_and_any_schedule_in_partitions(tmp_path):
    """A consumer export's own account columns (a date of birth among them), some irregular dates, and
    the general window path: in partitions as in one pass."""
    from demo.consumer import write_consumer_data

    folder = tmp_path / "consumer"
    write_consumer_data(folder, accounts=150, months=8, seed=3)
    settings = load_settings(folder / "churnwatch.yaml")
    whole = build_snapshots(folder, settings, tmp_path / "whole.duckdb")
    own = [f.name for f in whole.catalogue.features if f.template == "extra_profile"]
    assert own  # the export's own columns became features
    dates = [whole.as_of[5], whole.as_of[9], whole.as_of[-3]]
    one = build_snapshots(folder, settings, tmp_path / "one.duckdb", as_of=dates)
    for general in (False, True):
        store = tmp_path / f"parted-{general}.duckdb"
        parted = build_snapshots(folder, settings, store, as_of=dates, general_windows=general,
                                 partition_events=one.events // 5 + 1)
        assert parted.rows == one.rows > 0 and parted.catalogue.to_json() == one.catalogue.to_json()
        assert same(_rows(store)[1], _rows(tmp_path / "one.duckdb")[1])


def test_a_refused_build_in_partitions_leaves_the_stored_snapshots_and_no_parts(demo, tmp_path):
    import shutil

    import pandas as pd

    from core.errors import StoreError

    folder, settings = demo
    store = tmp_path / "s.duckdb"
    whole = build_snapshots(folder, settings, store)
    _, before, _, _ = _rows(store)
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    events = pd.read_parquet(other / "events.parquet")
    events.loc[events.index[::50], "event_type"] = "brand_new_type"  # a new event type: new columns
    events.to_parquet(other / "events.parquet", index=False)
    with pytest.raises(StoreError, match="different columns than this build"):
        build_snapshots(other, settings, store, as_of=whole.as_of[2:4], partition_events=whole.events // 3 + 1)
    _, after, tables, _ = _rows(store)
    assert after == before and SNAPSHOTS_STAGED not in tables


def test_a_build_failing_in_a_later_partition_leaves_the_stored_snapshots_and_no_parts(demo, tmp_path,
                                                                                        monkeypatch):
    import features.pipeline as pipeline
    from core.errors import ChurnwatchError

    folder, settings = demo
    store = tmp_path / "s.duckdb"
    whole = build_snapshots(folder, settings, store)
    _, before, _, _ = _rows(store)
    calls = []
    real = pipeline.build_feature_tables

    def failing(*args, **kwargs):  # the third partition's stages fail in the engine
        calls.append(1)
        if len(calls) == 3:
            raise duckdb.OutOfRangeException("Out of Range Error: a value the checks let through")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_feature_tables", failing)
    with pytest.raises(ChurnwatchError, match="snapshot build failed in the query engine: Out of Range"):
        build_snapshots(folder, settings, store, partition_events=whole.events // 4 + 1)
    assert len(calls) == 3
    _, after, tables, _ = _rows(store)
    assert after == before and SNAPSHOTS_STAGED not in tables
