"""A build of some dates into stored snapshots with other columns is refused, naming them."""

from __future__ import annotations

import datetime as dt

import pytest

from core.errors import StoreError
from core.store import SnapshotMeta, connect, write_snapshots


def _meta() -> SnapshotMeta:
    return SnapshotMeta(catalogue_json="{}", data_start=dt.date(2025, 1, 1), data_end=dt.date(2025, 6, 1),
                        horizon_days=60, grace_days=14, source="test", input_hash="x",
                        built_at=dt.datetime(2025, 6, 1))


def test_other_columns_are_named_and_nothing_is_written(tmp_path):
    with connect(tmp_path / "store.duckdb") as con:
        con.execute("CREATE TEMP TABLE full_build AS SELECT 'a1' AS account_id, DATE '2025-03-01' AS as_of, "
                    "1.0 AS logins_30d, 30.0 AS acct_days_since_birth")
        write_snapshots(con, "full_build", _meta(), replace_all=True)
        con.execute("CREATE TEMP TABLE some_dates AS SELECT 'a1' AS account_id, DATE '2025-04-01' AS as_of, "
                    "2.0 AS logins_30d, 'x' AS acct_plan_family")
        with pytest.raises(StoreError) as err:
            write_snapshots(con, "some_dates", _meta(), replace_all=False)
        text = str(err.value)
        assert "missing from this build: acct_days_since_birth" in text
        assert "new in this build: acct_plan_family" in text
        assert "rebuild all dates" in text
        assert con.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1  # the stored rows are kept
