"""pandas' unnamed row index written into an export is never a feature (one rule,
``features.profile.pandas_index_name``, for the accounts' own columns, the other tables' listing and
the flat table).

An accounts file written by ``DataFrame.to_parquet`` after a filter carries ``__index_level_0__``:
``features`` made it a numeric profile feature, row positions that in a file sorted by sign-up are a
tenure in disguise. A CSV read and written again by pandas carries ``Unnamed: 0``; one written once
has a header whose first column has no name, refused with a hint."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.errors import DataContractError
from features.csvfiles import read_header
from features.profile import discover_profile
from tests.tiny import settings
from training.own_table import describe_table, load_own_table

REASON = ("pandas' row index, written into the file with the data (`to_parquet` / `to_csv` without "
          "`index=False`): row positions, not a fact about the customer")


def test_a_parquet_files_index_column_is_listed_not_used(tmp_path):
    accounts = pd.DataFrame({"account_id": [f"a{i}" for i in range(12)],
                             "household_size": [1, 2, 3, 4] * 3})
    accounts = accounts[accounts["household_size"] > 1]  # filtered: the index is no range any more
    path = tmp_path / "accounts.parquet"
    accounts.to_parquet(path)  # pandas keeps a non-default index as __index_level_0__
    with duckdb.connect(":memory:") as con:
        con.execute(f"CREATE TABLE raw_accounts AS SELECT * FROM read_parquet('{path}')")
        columns = [r[0] for r in con.execute("DESCRIBE raw_accounts").fetchall()]
        plan = discover_profile(con, ["accounts"], settings(), taken=set())

    assert "__index_level_0__" in columns  # the file really has it
    assert [c.column for c in plan.used] == ["household_size"]
    assert {c.column: c.reason for c in plan.unused}["__index_level_0__"] == REASON


def test_a_flat_tables_unnamed_index_is_listed_not_used(tmp_path):
    n = 200
    r = np.random.default_rng(5)
    frame = pd.DataFrame({"customer": [f"C{i:04d}" for i in range(n)], "tenure": r.integers(1, 60, n),
                          "Exited": r.choice([0, 1], n)})
    frame = frame[frame["tenure"] > 5]  # gaps in the index: not a 1..n row number any more
    first = tmp_path / "first.csv"
    frame.to_csv(first)  # the index written with an empty header
    again = tmp_path / "again.csv"
    pd.read_csv(first).to_csv(again, index=False)  # read back: the index is now "Unnamed: 0"

    table = load_own_table(again, label="Exited", id_col="customer")

    assert list(table.frame.columns) == ["tenure"]
    assert table.report["dropped_name"] == {"Unnamed: 0": REASON}
    assert describe_table(table.report)[-1] == f"columns not used: Unnamed: 0 ({REASON})"


def test_a_header_with_an_unnamed_first_column_says_how_pandas_wrote_it(tmp_path):
    path = tmp_path / "accounts.csv"
    pd.DataFrame({"account_id": ["a1", "a2"], "plan": ["x", "y"]}).to_csv(path)
    with pytest.raises(DataContractError) as err:
        read_header(path, "accounts")
    assert str(err.value) == (f"{path}: header column 1 has no name (header: ',account_id,plan'); pandas writes "
                              "its row index so: save with `to_csv(..., index=False)`")
