"""Hostile data folders through the real ``churnwatch features`` command (issue 13, item 2).

Each case copies one tiny generated demo folder, plants one defect and runs the CLI's entry
point in-process (``churnwatch.cli.main``: our errors become one or two lines and exit 2).
A case expects either an error (exit 2, a message fragment, no traceback) or a clean run
(exit 0) with the rows or values set aside counted in the run summary, and a store that does
not carry the defect (no negative counts, the data end not moved, MRR not doubled).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from churnwatch import cli
from demo.generator import write_demo_data

Mutate = Callable[[Path, dict[str, pd.DataFrame]], None]


@dataclass(frozen=True)
class Case:
    """One defect: how to plant it, and what the command must answer."""

    mutate: Mutate
    code: int = 0
    message: str | None = None  # a fragment of stderr (exit 2) or of stdout
    set_aside: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> reason -> rows
    values: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> reason -> values


@dataclass
class Run:
    code: int
    out: str
    err: str
    home: Path

    @property
    def summary(self) -> dict:
        return json.loads((self.home / "reports" / "run-summary.json").read_text())

    def query(self, sql: str) -> tuple:
        with duckdb.connect(str(self.home / "store.duckdb"), read_only=True) as con:
            return con.execute(sql).fetchone()


# ---- planting defects ---------------------------------------------------------------

def _put(folder: Path, name: str, df: pd.DataFrame, fmt: str = "parquet") -> None:
    for old in (folder / f"{name}.parquet", folder / f"{name}.csv"):
        old.unlink(missing_ok=True)
    if fmt == "parquet":
        df.to_parquet(folder / f"{name}.parquet", index=False)
    else:
        df.to_csv(folder / f"{name}.csv", index=False)


def _logins(t: dict[str, pd.DataFrame]) -> pd.Index:
    e = t["events"]
    return e.index[e["event_type"] == "login"]


def negative_quantity(d, t):
    e = t["events"]
    e.loc[_logins(t)[:5], "quantity"] = -30.0
    _put(d, "events", e)


def nan_and_inf_quantity(d, t):  # as a CSV export spells them: DuckDB reads 'NaN' and 'inf' as floats
    e = t["events"].astype({"quantity": object})
    e.loc[_logins(t)[:3], "quantity"] = "NaN"
    e.loc[_logins(t)[3:5], "quantity"] = "inf"
    _put(d, "events", e, fmt="csv")


def infinite_mrr(d, t):
    s = t["subscriptions"]
    s.loc[s.index[0], "mrr"] = np.inf
    s.loc[s.index[1], "mrr"] = -np.inf
    _put(d, "subscriptions", s)


def negative_mrr(d, t):
    s = t["subscriptions"]
    s.loc[s.index[2], "mrr"] = -100.0
    _put(d, "subscriptions", s)


def negative_seats(d, t):
    s = t["subscriptions"]
    s.loc[s.index[:3], "seats"] = -3
    _put(d, "subscriptions", s)


def negative_employees(d, t):
    a = t["accounts"]
    a.loc[a.index[:2], "employees"] = -50
    _put(d, "accounts", a)


def huge_values(d, t):  # each alone overflowed the engine's integers or made MRR infinite
    e = t["events"]
    e.loc[_logins(t)[:3], "quantity"] = 1e308
    _put(d, "events", e)
    s = t["subscriptions"]
    s.loc[s.index[:2], "mrr"] = 1e308
    s.loc[s.index[2:4], "seats"] = 2**62
    _put(d, "subscriptions", s)


def _dated_copies(t, when: str, n: int = 4) -> pd.DataFrame:
    x = t["events"].head(n).copy()
    x["occurred_at"] = pd.Timestamp(when)
    return pd.concat([t["events"], x], ignore_index=True)


def events_2099(d, t):
    _put(d, "events", _dated_copies(t, "2099-01-01"))


def events_1900(d, t):
    _put(d, "events", _dated_copies(t, "1900-01-01"))


def events_before_account(d, t):  # plausible as a date, but years before the account's first term
    _put(d, "events", _dated_copies(t, "1995-06-01", n=3))


def end_9999_and_events_2099(d, t):  # "open-ended" spelled 9999-12-31 does not hide stray rows
    s = t["subscriptions"]
    s.loc[s.index[:3], "end_date"] = pd.Timestamp("9999-12-31").date()
    _put(d, "subscriptions", s)
    events_2099(d, t)


def tickets_2099(d, t):
    x = t["tickets"].head(2).copy()
    x["opened_at"] = pd.Timestamp("2099-03-01")
    x["resolved_at"] = pd.Timestamp("2099-03-02")
    _put(d, "tickets", pd.concat([t["tickets"], x], ignore_index=True))


EMPTY_EVENTS = "table 'events' has no rows (a source without product events leaves the table out)"


def empty_events(d, t):
    _put(d, "events", t["events"].head(0))


def empty_events_csv(d, t):
    _put(d, "events", t["events"].head(0), fmt="csv")


def empty_subscriptions(d, t):
    _put(d, "subscriptions", t["subscriptions"].head(0))


def events_all_unknown(d, t):
    e = t["events"]
    e["account_id"] = "GHOST"
    _put(d, "events", e)


def duplicated_term(d, t):
    s = t["subscriptions"]
    _put(d, "subscriptions", pd.concat([s, s.head(1)], ignore_index=True))


def duplicated_open_ended_term(d, t):
    s = t["subscriptions"]
    x = s.head(1).copy()
    x["end_date"] = None
    _put(d, "subscriptions", pd.concat([s, x, x], ignore_index=True))


def add_ons_with_their_own_ids(d, t):
    """Two subscriptions alike in every contract column are two when their own ids differ (a Paddle
    export's add-ons: 93 rows were set aside as duplicates); one exported twice, id and all, is one."""
    s = t["subscriptions"].copy()
    s["subscription_id"] = [f"sub_{k}" for k in range(len(s))]
    addon = s.tail(1).copy()  # beside the latest term, in force on the last as-of dates
    addon["subscription_id"] = "sub_addon"
    _put(d, "subscriptions", pd.concat([s, addon, s.head(1)], ignore_index=True))


def invoices_with_their_own_ids(d, t):
    i = t["invoices"].copy()
    i["invoice_id"] = [f"in_{k}" for k in range(len(i))]
    other = i.head(1).copy()
    other["invoice_id"] = "in_other"
    _put(d, "invoices", pd.concat([i, other, i.head(1)], ignore_index=True))


def two_open_ended_terms(d, t):  # an add-on beside an evergreen plan: both kept, no overflow
    s = t["subscriptions"]
    x = s.head(1).copy()
    x["end_date"] = None
    y = x.copy()
    y["mrr"], y["plan"] = 10.0, "addon"
    _put(d, "subscriptions", pd.concat([s, x, y], ignore_index=True))


def negative_and_infinite_invoice(d, t):
    i = t["invoices"]
    i.loc[i.index[0], "amount"] = -20.0
    i.loc[i.index[1], "amount"] = np.inf
    _put(d, "invoices", i)


def nan_csat(d, t):
    k = t["tickets"].astype({"csat": object})
    k.loc[k.index[0], "csat"] = "NaN"
    _put(d, "tickets", k, fmt="csv")


def table_in_two_formats(d, t):
    t["tickets"].to_csv(d / "tickets.csv", index=False)


def ragged_csv(d, t):
    _put(d, "events", t["events"], fmt="csv")
    lines = (d / "events.csv").read_text().splitlines()
    lines[7] += ",extra,more"
    (d / "events.csv").write_text("\n".join(lines) + "\n")


def short_row_csv(d, t):
    _put(d, "subscriptions", t["subscriptions"], fmt="csv")
    lines = (d / "subscriptions.csv").read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:3])
    (d / "subscriptions.csv").write_text("\n".join(lines) + "\n")


def unterminated_quote_csv(d, t):
    _put(d, "accounts", t["accounts"], fmt="csv")
    lines = (d / "accounts.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[2] = '"' + fields[2]
    lines[3] = ",".join(fields)
    (d / "accounts.csv").write_text("\n".join(lines) + "\n")


def latin1_csv(d, t):
    a = t["accounts"]
    a.loc[a.index[2], "industry"] = "Société Générale"
    (d / "accounts.parquet").unlink()
    a.to_csv(d / "accounts.csv", index=False, encoding="latin-1")


def semicolon_csv(d, t):  # a European spreadsheet's export: read, not refused
    (d / "accounts.parquet").unlink()
    t["accounts"].to_csv(d / "accounts.csv", index=False, sep=";")


def repeated_header(d, t):
    _put(d, "accounts", t["accounts"], fmt="csv")
    text = (d / "accounts.csv").read_text().replace("region", "industry", 1)
    (d / "accounts.csv").write_text(text)


def bad_number_csv(d, t):
    s = t["subscriptions"].astype({"mrr": object})
    s.loc[s.index[4], "mrr"] = "12,5 EUR"
    _put(d, "subscriptions", s, fmt="csv")


CASES: dict[str, Case] = {
    "negative_quantity": Case(negative_quantity, set_aside={"events": {"negative_quantity": 5}}),
    "nan_and_inf_quantity": Case(nan_and_inf_quantity, set_aside={"events": {"non_finite_quantity": 5}}),
    "infinite_mrr": Case(infinite_mrr, set_aside={"subscriptions": {"non_finite_mrr": 2}}),
    "negative_mrr": Case(negative_mrr, set_aside={"subscriptions": {"negative_mrr": 1}}),
    "negative_seats": Case(negative_seats, values={"subscriptions": {"negative_seats": 3}},
                           message="negative_seats (value made unknown, row kept)"),
    "negative_employees": Case(negative_employees, values={"accounts": {"negative_employees": 2}}),
    "huge_values": Case(huge_values, set_aside={"events": {"implausible_quantity": 3},
                                                "subscriptions": {"implausible_mrr": 2}},
                        values={"subscriptions": {"implausible_seats": 2}}),
    "events_2099": Case(events_2099, set_aside={"events": {"after_data_end": 4}}),
    "events_1900": Case(events_1900, set_aside={"events": {"before_1990": 4}}),
    "events_before_account": Case(events_before_account, set_aside={"events": {"before_account": 3}}),
    "end_9999_and_events_2099": Case(end_9999_and_events_2099, set_aside={"events": {"after_data_end": 4}}),
    "tickets_2099": Case(tickets_2099, set_aside={"tickets": {"after_data_end": 2}}),
    "duplicated_term": Case(duplicated_term, set_aside={"subscriptions": {"duplicate_term": 1}}),
    "duplicated_open_ended_term": Case(duplicated_open_ended_term,
                                       set_aside={"subscriptions": {"duplicate_term": 1}}),
    "two_open_ended_terms": Case(two_open_ended_terms),
    "add_ons_with_their_own_ids": Case(add_ons_with_their_own_ids, set_aside={"subscriptions": {"duplicate_term": 1}}),
    "invoices_with_their_own_ids": Case(invoices_with_their_own_ids,
                                        set_aside={"invoices": {"duplicate_invoice": 1}}),
    "negative_and_infinite_invoice": Case(negative_and_infinite_invoice,
                                          set_aside={"invoices": {"negative_amount": 1, "non_finite_amount": 1}}),
    "nan_csat": Case(nan_csat, set_aside={"tickets": {"csat_out_of_range": 1}}),
    "semicolon_csv": Case(semicolon_csv),
    "empty_events": Case(empty_events, 2, EMPTY_EVENTS),
    "empty_events_csv": Case(empty_events_csv, 2, EMPTY_EVENTS),
    "empty_subscriptions": Case(empty_subscriptions, 2, "required table 'subscriptions' has no rows"),
    "events_all_unknown": Case(events_all_unknown, 2, "rows were set aside ("),
    "table_in_two_formats": Case(table_in_two_formats, 2, "table 'tickets' is present twice"),
    "ragged_csv": Case(ragged_csv, 2, "events.csv: line 8 has 7 fields where the header has 5"),
    "short_row_csv": Case(short_row_csv, 2, "subscriptions.csv: line 4 has 3 fields where the header has 6"),
    "unterminated_quote_csv": Case(unterminated_quote_csv, 2,
                                   "accounts.csv: line 4 cannot be read as CSV (Value with unterminated quote"),
    "latin1_csv": Case(latin1_csv, 2, "accounts.csv: line 4, column industry is not UTF-8"),
    "repeated_header": Case(repeated_header, 2, "column 'industry' appears twice in the header"),
    "bad_number_csv": Case(bad_number_csv, 2, "subscriptions.mrr: 1 value(s) are not of type double"),
}


# ---- running the command ------------------------------------------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny generated export without a configured data end (so it is derived)."""
    folder = tmp_path_factory.mktemp("hostile") / "base"
    write_demo_data(folder, accounts=10, months=5, seed=5)
    config = yaml.safe_load((folder / "churnwatch.yaml").read_text())
    config.pop("data_end")
    (folder / "churnwatch.yaml").write_text(yaml.safe_dump(config))
    return folder


def run_features(folder: Path, home: Path, monkeypatch, capsys=None) -> Run:
    """``churnwatch features --data folder --home home`` through the console entry point."""
    monkeypatch.setattr(sys, "argv", ["churnwatch", "features", "--data", str(folder), "--home", str(home)])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr() if capsys else None
    return Run(code, captured.out if captured else "", captured.err if captured else "", home)


@pytest.fixture(scope="module")
def clean_run(base, tmp_path_factory) -> Run:
    """The untouched folder's run: the reference for data end, as-of dates and MRR."""
    with pytest.MonkeyPatch.context() as mp:
        run = run_features(base, tmp_path_factory.mktemp("home") / "clean", mp)
    assert run.code == 0
    assert not [t for t, rep in run.summary["tables"].items() if rep["set_aside"] or rep["values_set_aside"]]
    return run


def plant(base: Path, tmp_path: Path, mutate: Mutate) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(base, folder)
    tables = {p.stem: pd.read_parquet(p) for p in folder.glob("*.parquet")}
    mutate(folder, tables)
    return folder


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_folder(name, base, clean_run, tmp_path, capsys, monkeypatch):
    case = CASES[name]
    run = run_features(plant(base, tmp_path, case.mutate), tmp_path / "home", monkeypatch, capsys)
    assert run.code == case.code, f"{name}: exit {run.code}\n{run.out[-1500:]}\n{run.err[-1500:]}"
    assert "Traceback" not in run.err
    if case.code:
        error = [ln for ln in run.err.splitlines() if ln.startswith("error:")]
        assert error, run.err
        assert case.message in run.err
        assert len(run.err[run.err.index("error:"):].strip().splitlines()) <= 2  # one or two lines
        return
    if case.message:
        assert case.message in run.out.replace("\n", " ") or case.message in run.out
    tables = run.summary["tables"]
    for table, expected in case.set_aside.items():
        assert tables[table]["set_aside"] == expected
        for reason in expected:
            assert tables[table]["examples"][reason]["account_id"]
    for table, expected in case.values.items():
        assert tables[table]["values_set_aside"] == expected
    untouched = set(tables) - set(case.set_aside)
    assert not [t for t in untouched if tables[t]["set_aside"]], tables
    check_store(run, clean_run, name)


def check_store(run: Run, clean: Run, name: str) -> None:
    """What the defect must not have reached: the store looks like the clean run's."""
    assert run.summary["data_end"] == clean.summary["data_end"]
    assert run.summary["data_start"] == clean.summary["data_start"]
    assert run.summary["snapshots"]["as_of_dates"] == clean.summary["snapshots"]["as_of_dates"]
    lo_logins, lo_ratio, lo_seats, hi_mrr, lo_mrr = run.query(
        "SELECT min(logins_30d), min(active_users_per_seat), min(seats), max(mrr), min(mrr) FROM snapshots")
    assert lo_logins >= 0 and (lo_ratio is None or lo_ratio >= 0) and (lo_seats is None or lo_seats >= 0)
    assert math.isfinite(hi_mrr) and lo_mrr >= 0
    if name == "add_ons_with_their_own_ids":  # the add-on's MRR counts
        assert run.query("SELECT sum(mrr) FROM snapshots")[0] > clean.query("SELECT sum(mrr) FROM snapshots")[0]
    if name in ("duplicated_term", "negative_quantity", "events_2099", "events_1900"):
        assert run.query("SELECT sum(mrr), sum(logins_30d) FROM snapshots") == \
            clean.query("SELECT sum(mrr), sum(logins_30d) FROM snapshots")


def test_events_far_past_the_subscriptions_warn_and_say_how_to_set_the_data_end(
        base, clean_run, tmp_path, capsys, monkeypatch, caplog):
    run = run_features(plant(base, tmp_path, events_2099), tmp_path / "home", monkeypatch, capsys)
    assert run.code == 0
    [warning] = run.summary["warnings"]
    assert "events.occurred_at: 4 row(s) from 2099-01-01 to 2099-01-01 run far past the subscriptions" in warning
    assert "set data_end" in warning
    assert any("far past the subscriptions" in r.getMessage() for r in caplog.records)
    assert run.summary["data_end"] == clean_run.summary["data_end"]


def test_a_configured_data_end_still_wins(base, clean_run, tmp_path, capsys, monkeypatch):
    """The rows past a configured data end are set aside as before, with no warning."""
    folder = plant(base, tmp_path, events_2099)
    config = yaml.safe_load((folder / "churnwatch.yaml").read_text())
    config["data_end"] = clean_run.summary["data_end"]
    (folder / "churnwatch.yaml").write_text(yaml.safe_dump(config))
    run = run_features(folder, tmp_path / "home", monkeypatch, capsys)
    assert run.code == 0
    assert run.summary["tables"]["events"]["set_aside"] == {"after_data_end": 4}
    assert run.summary["warnings"] == []


def test_amounts_in_several_currencies_are_said_to_be_added_as_they_are(base, tmp_path, capsys, monkeypatch):
    """A Paddle probe's prices in each customer's currency (USD, EUR, GBP) were added in MRR and metrics
    without a word; one currency throughout says nothing."""
    def currencies(codes):
        def plant_them(d, t):
            s = t["subscriptions"].copy()
            s["currency_code"] = [codes[k % len(codes)] for k in range(len(s))]
            _put(d, "subscriptions", s)
        return plant_them

    run = run_features(plant(base, tmp_path / "mixed", currencies(["USD", "eur", "GBP", "USD"])),
                       tmp_path / "home-mixed", monkeypatch, capsys)
    assert run.code == 0
    [warning] = [w for w in run.summary["warnings"] if "currencies" in w]
    n = len(pd.read_parquet(base / "subscriptions.parquet"))
    usd, eur = sum(k % 4 in (0, 3) for k in range(n)), sum(k % 4 == 1 for k in range(n))
    assert warning.startswith(f"subscriptions.currency_code: 3 currencies (USD {usd:,}, ")
    assert f"EUR {eur:,}" in warning and "subscriptions.mrr, invoices.amount are added as they are" in warning
    assert warning.endswith("amounts converted already: name each column for the currency (`mrr_usd` mapped to "
                            "`mrr`, `amount_usd` to `amount` in column_mapping), which silences this")
    single = run_features(plant(base, tmp_path / "one", currencies(["USD"])), tmp_path / "home-one", monkeypatch,
                          capsys)
    assert single.code == 0 and not [w for w in single.summary["warnings"] if "currencies" in w]


def test_a_currency_column_of_amounts_or_amounts_in_one_named_currency_say_nothing():
    """A RevenueCat export (a probe, 2026-12-05): ``price_in_purchased_currency`` holds amounts, not codes
    ("28 currencies (0.0 3,987, 4.99 2,470 ...)" was said), and ``price_in_usd`` mapped to ``mrr`` is in one
    currency whatever ``purchased_currency`` says. A code column beside an amount of unnamed currency still warns."""
    import duckdb

    from features.validate import currency_warnings

    con = duckdb.connect()
    con.execute("CREATE TABLE raw_subscriptions AS SELECT * FROM (VALUES "
                "('a', 4.99, 4.99, 'USD'), ('b', 0.0, 5.49, 'EUR'), ('c', 9.99, 4.29, 'gbp'), "
                "('d', 12.5, 4.99, 'USD')) "
                "v(customer, price_in_purchased_currency, price_in_usd, purchased_currency)")
    by_usd = {"subscriptions": {"customer": "account_id", "price_in_usd": "mrr"}}
    assert currency_warnings(con, {"subscriptions"}, by_usd) == []
    # the invoices' amount converted too (a probe's Paddle export, p54): named for its currency, nothing is said
    con.execute("CREATE TABLE raw_invoices AS SELECT * FROM (VALUES ('a', 4.99, 'EUR')) v(customer, amount_usd, cur)")
    both = {**by_usd, "invoices": {"customer": "account_id", "amount_usd": "amount"}}
    assert currency_warnings(con, {"subscriptions", "invoices"}, both) == []
    [said] = currency_warnings(con, {"subscriptions", "invoices"}, by_usd)
    assert "invoices.amount are added as they are" in said and "subscriptions.mrr" not in said
    by_local = {"subscriptions": {"customer": "account_id", "price_in_purchased_currency": "mrr"}}
    [said] = currency_warnings(con, {"subscriptions"}, by_local)
    assert said.startswith("subscriptions.purchased_currency: 3 currencies (USD 2, EUR 1, GBP 1 rows): "
                           "subscriptions.mrr are added as they are")
    assert not [w for w in currency_warnings(con, {"subscriptions"}, by_local) if "price_in_purchased" in w]
    # more than five: the rest counted as currencies ("4 more rows" was said)
    codes = ["USD", "EUR", "GBP", "JPY", "BRL", "INR", "CAD"]
    con.execute("CREATE OR REPLACE TABLE raw_subscriptions AS SELECT 'a' AS customer, 1.0 AS price, "
                "unnest(?) AS currency", [codes])
    [said] = currency_warnings(con, {"subscriptions"}, {"subscriptions": {"price": "mrr"}})
    assert said.startswith("subscriptions.currency: 7 currencies (BRL 1, CAD 1, EUR 1, GBP 1, INR 1 rows; "
                           "2 more currencies): ")
