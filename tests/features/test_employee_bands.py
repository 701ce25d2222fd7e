"""``accounts.employees`` as CRMs export it, in bands (``11-50``, ``5000+``): read as numbers (a band's
midpoint, an open band's lower bound), counted in the report; a ``profile.columns`` entry for a
contract column is a config error (h2 finding 6)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.errors import ConfigError, DataContractError
from core.settings import ProfileColumn, ProfileSettings
from features.pipeline import build_snapshots, open_connection, prepare
from tests.tiny import D, T, settings, write_tables

#: every form of a band, a plain number with and without separators, and a blank
BANDS = ["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5000+", "10,001+", "10000+",
         "1,001-5,000", " 11 - 50 ", "11-50", "250", "1,200", None]
READ_AS = [6, 31, 126, 351, 751, 3001, 5000, 10001, 10000, 3001, 31, 31, 250, 1200, None]


def band_tables(employees: list[str | None]) -> dict[str, pd.DataFrame]:
    """accounts with these employees values, one open subscription and one login per account."""
    ids = [f"a{i:02d}" for i in range(len(employees))]
    accounts = pd.DataFrame({"account_id": ids, "employees": pd.Series(employees, dtype="object")})
    subs = pd.DataFrame({"account_id": ids, "start_date": [D(2024, 1, 1)] * len(ids), "end_date": [None] * len(ids),
                         "mrr": [10.0] * len(ids)})
    events = pd.DataFrame({"account_id": ids, "user_id": ["u"] * len(ids), "occurred_at": [T(2024, 2, 1)] * len(ids),
                           "event_type": ["login"] * len(ids)})
    return {"accounts": accounts, "subscriptions": subs, "events": events}


def _prepared(folder, s=None):
    con = open_connection(threads=1)
    report, _ = prepare(folder, s or settings(data_end=D(2024, 6, 1)), con)
    return report, con


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bands_read_as_midpoints_and_lower_bounds_and_are_counted(tmp_path, fmt):
    folder = write_tables(tmp_path / "d", band_tables(BANDS), fmt=fmt)
    report, con = _prepared(folder)
    try:
        got = con.execute("SELECT account_id, employees FROM clean_accounts ORDER BY account_id").fetchall()
    finally:
        con.close()
    assert [v for _, v in got] == READ_AS
    rep = report.tables["accounts"]
    assert rep.values_set_aside == {} and rep.set_aside == {}
    # 12 of the 15 values are bands (not 250, 1,200 or the blank); 11 distinct texts, '11-50' twice
    assert rep.readings["employees"]["values"] == 12
    assert rep.readings["employees"]["distinct"] == 11
    bands = rep.readings["employees"]["bands"]
    assert list(bands)[0] == "11-50" and bands["11-50"] == 31  # the most frequent first
    assert len(bands) == 8 and bands["1-10"] == 6 and bands["10,001+"] == 10001  # then by text
    assert report.to_dict()["tables"]["accounts"]["readings"] == rep.readings


def test_a_column_of_plain_numbers_reports_no_bands(tmp_path):
    folder = write_tables(tmp_path / "d", band_tables(["12", "300", "1,200"]), fmt="csv")
    report, con = _prepared(folder)
    con.close()
    assert report.tables["accounts"].readings == {}


def test_size_band_is_made_from_the_bands_as_from_numbers(tmp_path):
    as_text = write_tables(tmp_path / "bands", band_tables(["1-10", "51-200", "201-500", "5000+", None]), fmt="csv")
    as_numbers = write_tables(tmp_path / "numbers", band_tables(["6", "126", "351", "5000", None]), fmt="csv")
    s = settings(data_end=D(2024, 6, 1))
    a, b = (build_snapshots(f, s, tmp_path / f"{f.name}.duckdb", as_of=[D(2024, 3, 1)]) for f in (as_text, as_numbers))
    from core.store import read_snapshots

    bands, numbers = (read_snapshots(tmp_path / f"{n}.duckdb").sort_values("account_id") for n in ("bands", "numbers"))
    assert bands["size_band"].tolist()[:4] == ["1-49", "50-249", "250-999", "1000+"]
    assert bands["size_band"].isna().tolist() == [False] * 4 + [True]
    assert bands["size_band"].tolist() == numbers["size_band"].tolist()
    assert a.validation.tables["accounts"].readings["employees"]["values"] == 4
    assert b.validation.tables["accounts"].readings == {}


@pytest.mark.parametrize("bad", ["unknown", "self-employed", "50-11", "1.001-5.000"])
def test_a_value_neither_number_nor_band_stops_the_checks_as_before(tmp_path, bad):
    """Only bands become readable: any other text is a value of the wrong type, counted, with its row
    and what is read (the contract's way with an unreadable value of any column)."""
    folder = write_tables(tmp_path / "d", band_tables(["11-50", bad, bad, "250"]), fmt="csv")
    with pytest.raises(DataContractError) as exc:
        _prepared(folder)
    msg = str(exc.value)
    assert "accounts.employees: 2 value(s) are not of type bigint" in msg
    assert "11-50 as its midpoint, 31, and 5000+ as its lower bound" in msg
    assert exc.value.example["employees"] == bad and exc.value.column == "employees"


def test_features_prints_how_many_values_were_read_from_bands(tmp_path, run_cli):
    folder = write_tables(tmp_path / "d", band_tables(["11-50", "11-50", "5000+", "42"]), fmt="csv")
    home = tmp_path / "home"
    run = run_cli("features", "--data", folder, "--home", home, "--as-of", "2024-02-01")
    assert run.returncode == 0, run.stderr
    assert ("accounts.employees: 3 value(s) read from bands ('11-50' as 31, '5000+' as 5,000): a band a-b as "
            "its midpoint, rounded; a+ as a") in run.stdout
    summary = json.loads((home / "reports" / "run-summary.json").read_text())
    assert summary["tables"]["accounts"]["readings"] == {
        "employees": {"values": 3, "distinct": 2, "bands": {"11-50": 31, "5000+": 5000}}}


@pytest.mark.parametrize("key, mapping, says", [
    ("employees", {}, "'employees' is the contract column accounts.employees"),
    ("accounts.employees", {}, "'employees' is the contract column accounts.employees"),
    ("Company Size", {"Company Size": "employees"},
     "'Company Size' is mapped to the contract column accounts.employees (column_mapping)"),
    ("subscriptions.plan", {}, "'plan' is the contract column subscriptions.plan"),
])
def test_a_profile_setting_for_a_contract_column_is_a_config_error(tmp_path, key, mapping, says):
    """The profile settings apply to a company's own columns: one for a contract column changed
    nothing, without a word; now it is refused before the data is checked (the bands would still fail)."""
    tables = band_tables(["11-50", "unknown"])
    if mapping:
        tables["accounts"] = tables["accounts"].rename(columns={"employees": "Company Size"})
    folder = write_tables(tmp_path / "d", tables, fmt="csv")
    s = settings(data_end=D(2024, 6, 1), column_mapping={"accounts": mapping} if mapping else {},
                 profile=ProfileSettings(columns={key: ProfileColumn(kind="category")}))
    with pytest.raises(ConfigError) as exc:
        _prepared(folder, s)
    msg = str(exc.value)
    assert msg.startswith(f"profile.columns.{key}: {says}, which churnwatch reads itself")
    assert "profile settings apply only to your own columns" in msg and "Remove this entry" in msg
    assert ("remove its column_mapping entry onto employees" if mapping else "give the column another name") in msg


def test_the_cli_refuses_a_profile_setting_for_employees_with_exit_2(tmp_path, run_cli):
    folder = write_tables(tmp_path / "d", band_tables(["11-50", "5000+"]), fmt="csv")
    (folder / "churnwatch.yaml").write_text("data: .\nprofile: {columns: {employees: {kind: category}}}\n")
    run = run_cli("features", "--config", folder / "churnwatch.yaml", "--home", tmp_path / "home")
    assert run.returncode == 2
    assert "profile.columns.employees: 'employees' is the contract column accounts.employees" in run.stderr
    assert "Traceback" not in run.stderr


def test_an_own_column_keeps_its_profile_setting(tmp_path):
    tables = band_tables(["11-50", "5000+", "1-10"])
    tables["accounts"]["tier"] = ["1", "2", "1"]
    folder = write_tables(tmp_path / "d", tables, fmt="csv")
    s = settings(data_end=D(2024, 6, 1), profile=ProfileSettings(columns={"tier": ProfileColumn(kind="category")}))
    r = build_snapshots(folder, s, tmp_path / "s.duckdb", as_of=[D(2024, 3, 1)])
    assert [(c.column, c.kind) for c in r.profile.used] == [("tier", "category")]
