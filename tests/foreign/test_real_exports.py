"""Exports shaped exactly as real tools write them, mapped as the README says (issue 12).

Stripe's dashboard CSVs (subscriptions, invoices), a HubSpot companies export, Zendesk tickets, a
product-analytics event log (Amplitude / Segment / Mixpanel-like) and the habits of a spreadsheet
saved in a European locale. Each test writes the files in the tool's own column names and formats
and maps them with ``column_mapping`` only; the values that reach the snapshots are asserted.
"""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from core.errors import DataContractError
from core.store import read_snapshots
from features.pipeline import build_snapshots, open_connection, prepare
from tests.tiny import D, T, settings

AS_OF = [D(2024, 3, 1), D(2024, 6, 1)]
IDS = ["9001", "9002", "9003", "9004"]


def _write(folder, name, df, **kw):
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{name}.csv", index=False, **kw)


def _periods() -> pd.DataFrame:
    """Billing periods in Stripe's dashboard spelling (the correct mapping: one row per period)."""
    rows = []
    for i, a in enumerate(IDS):
        start = pd.Timestamp(2023, 6 + i, 1)
        while start < pd.Timestamp(2024, 7, 1):
            end = start + pd.DateOffset(months=1)
            rows.append({"Customer ID": a, "Current Period Start (UTC)": start.strftime("%Y-%m-%d %H:%M"),
                         "Current Period End (UTC)": end.strftime("%Y-%m-%d %H:%M"),
                         "Amount": f"{49 + 100 * i:.2f}", "Plan": "price_pro", "Quantity": 1 + i})
            start = end
    return pd.DataFrame(rows)


PERIODS_MAP = {"Customer ID": "account_id", "Current Period Start (UTC)": "start_date",
               "Current Period End (UTC)": "end_date", "Amount": "mrr", "Plan": "plan", "Quantity": "seats"}


def _analytics() -> pd.DataFrame:
    """Amplitude-like: microseconds, "Z" and offsets, names with spaces and case, an empty group
    id now and then, a JSON properties column."""
    rows = []
    for a in IDS:
        for m in range(1, 7):
            for d, (stamp, name) in enumerate([("2024-%02d-03T09:15:02.123456Z", "Viewed Dashboard"),
                                               ("2024-%02d-04 10:00:00.5+02:00", "viewed dashboard"),
                                               ("2024-%02d-05T23:30:00-05:00", "Exported Report")]):
                rows.append({"event_time": stamp % m, "user_id": f"u-{a}-{d}", "groups.account": a,
                             "event_type": name, "event_properties": json.dumps({"page": "/home", "n": d})})
    rows.append({"event_time": "2024-02-03T09:00:00Z", "user_id": "anon", "groups.account": "",
                 "event_type": "Viewed Dashboard", "event_properties": "{}"})
    return pd.DataFrame(rows)


EVENTS_MAP = {"event_time": "occurred_at", "groups.account": "account_id"}


def _build(tmp_path, tables: dict[str, pd.DataFrame], mapping: dict, sep=",", encoding="utf-8", **kw):
    data = tmp_path / "data"
    for name, df in tables.items():
        _write(data, name, df, sep=sep, encoding=encoding)
    store = tmp_path / "s.duckdb"
    result = build_snapshots(data, settings(column_mapping=mapping, data_end=D(2024, 7, 1), **kw), store,
                             as_of=AS_OF)
    return result, read_snapshots(store).set_index(["account_id", "as_of"]).sort_index()


def at(df, account, day):
    return df.loc[(account, pd.Timestamp(day))]


def test_stripe_invoices_without_due_dates_and_with_void_ones(tmp_path):
    """Stripe leaves "Due Date" empty for invoices charged automatically (due when issued), and its
    void invoices are never owed: before, every invoice was set aside as missing_due_at."""
    inv = pd.DataFrame([
        # 9001: paid on the day; 9002: issued 2024-05-01 and never paid; 9003: a void invoice
        {"id": "in_1", "Customer": "9001", "Amount Due": "49.00", "Amount Paid": "49.00", "Status": "paid",
         "Date (UTC)": "2024-05-01 08:12", "Due Date (UTC)": "", "Paid At (UTC)": "2024-05-01 08:13"},
        {"id": "in_2", "Customer": "9002", "Amount Due": "149.00", "Amount Paid": "0.00", "Status": "open",
         "Date (UTC)": "2024-05-01 08:12", "Due Date (UTC)": "", "Paid At (UTC)": ""},
        {"id": "in_3", "Customer": "9003", "Amount Due": "249.00", "Amount Paid": "0.00", "Status": "void",
         "Date (UTC)": "2024-01-10 08:12", "Due Date (UTC)": "", "Paid At (UTC)": ""},
        {"id": "in_4", "Customer": "9004", "Amount Due": "1,349.00", "Amount Paid": "0.00",
         "Status": "uncollectible", "Date (UTC)": "2024-04-01 08:12", "Due Date (UTC)": "2024-04-15 00:00",
         "Paid At (UTC)": ""},
    ])
    mapping = {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP,
               "invoices": {"Customer": "account_id", "Date (UTC)": "issued_at", "Due Date (UTC)": "due_at",
                            "Paid At (UTC)": "paid_at", "Amount Due": "amount", "Status": "status"}}
    r, df = _build(tmp_path, {"subscriptions": _periods(), "events": _analytics(), "invoices": inv}, mapping)
    rep = r.validation.tables["invoices"]
    assert rep.set_aside == {"void_invoice": 1} and rep.examples["void_invoice"]["account_id"] == "9003"
    assert at(df, "9001", "2024-06-01").days_overdue == 0
    assert at(df, "9002", "2024-06-01").days_overdue == 31  # due when issued, 2024-05-01
    assert at(df, "9003", "2024-06-01").days_overdue == 0  # void: not owed
    assert at(df, "9004", "2024-06-01").days_overdue == 47  # its own due date; uncollectible is unpaid
    assert at(df, "9004", "2024-03-01").days_overdue == 0  # not issued yet


def test_stripe_dashboard_amounts_and_dates_read_as_written(tmp_path):
    r, df = _build(tmp_path, {"subscriptions": _periods(), "events": _analytics()},
                   {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP})
    assert at(df, "9002", "2024-06-01").mrr == 149.0 and at(df, "9004", "2024-06-01").seats == 4
    assert r.validation.tables["subscriptions"].set_aside == {}


def test_product_analytics_log(tmp_path):
    """Microseconds, "Z" and offsets parse (the clock as written: the offset is not applied), the
    spellings are one event type, an empty group id is set aside and counted."""
    r, df = _build(tmp_path, {"subscriptions": _periods(), "events": _analytics()},
                   {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP})
    events = r.validation.tables["events"]
    assert events.set_aside == {"missing_account_id": 1}
    assert r.validation.event_spellings == {"Viewed Dashboard": {"Viewed Dashboard": 25, "viewed dashboard": 24}}
    # 2024-05-03/04/05 events: each one of the 30 days before 2024-06-01 (05-05 23:30 -05:00 stays 05-05)
    row = at(df, "9001", "2024-06-01")
    assert row.evt_viewed_dashboard_30d == 2 and row.evt_exported_report_30d == 1
    assert row.evt_viewed_dashboard_users_30d == 2


def test_zendesk_tickets_with_words_for_satisfaction_and_offsets(tmp_path):
    tickets = pd.DataFrame([
        {"Id": 1, "Organization": "9001", "Created at": "2024-05-10T09:00:00+02:00",
         "Solved at": "2024-05-11T09:00:00+02:00", "Status": "solved", "Priority": "urgent",
         "Satisfaction Score": "bad"},
        {"Id": 2, "Organization": "9001", "Created at": "2024-05-12T09:00:00+02:00",
         "Solved at": "2024-05-13T09:00:00+02:00", "Status": "closed", "Priority": "normal",
         "Satisfaction Score": "Good"},
        {"Id": 3, "Organization": "9001", "Created at": "2024-05-20T09:00:00+02:00", "Solved at": "",
         "Status": "pending", "Priority": "low", "Satisfaction Score": "offered"},
        {"Id": 4, "Organization": "9002", "Created at": "2024-05-20T09:00:00+02:00",
         "Solved at": "2024-05-21T09:00:00+02:00", "Status": "solved", "Priority": "high",
         "Satisfaction Score": "unoffered"},
    ])
    mapping = {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP,
               "tickets": {"Organization": "account_id", "Created at": "opened_at", "Solved at": "resolved_at",
                           "Priority": "priority", "Satisfaction Score": "csat"}}
    r, df = _build(tmp_path, {"subscriptions": _periods(), "events": _analytics(), "tickets": tickets}, mapping)
    row = at(df, "9001", "2024-06-01")
    assert (row.worst_csat_90d, row.mean_csat_90d) == (1.0, 3.0)  # bad = 1, good = 5, offered: none
    assert row.open_tickets == 1 and row.high_priority_tickets_30d == 1
    assert pd.isna(at(df, "9002", "2024-06-01").worst_csat_90d)  # unoffered: no rating

    tickets.loc[1, "Satisfaction Score"] = "great"
    with pytest.raises(DataContractError) as exc:
        _build(tmp_path / "bad", {"subscriptions": _periods(), "events": _analytics(), "tickets": tickets}, mapping)
    assert "tickets.csat: 1 value(s) are not of type double" in str(exc.value) and "great" in str(exc.value)
    assert "(read: numbers, or one of good, bad, offered, unoffered, happy, neutral, unhappy" in str(exc.value)


def test_freshdesk_satisfaction_words_are_the_top_middle_and_bottom_of_the_scale(tmp_path):
    """A probe's Freshdesk export (``Satisfaction rating``: Happy / Neutral / Unhappy) was refused."""
    tickets = pd.DataFrame([
        {"Ticket ID": n, "Company": "9001", "Created time": f"2024-05-{10 + n:02d} 09:00:00",
         "Resolved time": f"2024-05-{11 + n:02d} 09:00:00", "Priority": "Medium", "Satisfaction rating": word}
        for n, word in enumerate(["Happy", "Neutral", " unhappy ", "Just Okay", "Not Good", ""])])
    mapping = {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP,
               "tickets": {"Company": "account_id", "Created time": "opened_at", "Resolved time": "resolved_at",
                           "Priority": "priority", "Satisfaction rating": "csat"}}
    _, df = _build(tmp_path, {"subscriptions": _periods(), "events": _analytics(), "tickets": tickets}, mapping)
    row = at(df, "9001", "2024-06-01")
    assert row.worst_csat_90d == 1.0 and row.mean_csat_90d == pytest.approx((5 + 3 + 1 + 3 + 1) / 5)


def _hubspot() -> pd.DataFrame:
    return pd.DataFrame({
        "Record ID": IDS, "Company name": ["Acme", "Globex", "Initech", "Umbrella"],
        "Create Date": ["2023-05-02 10:31", "2023-06-15 08:00", "2023-07-01 12:00", "2023-08-20 16:45"],
        "Industry": ["COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "COMPUTER_SOFTWARE", ""],
        "Number of Employees": ["45", "N/A", "1,200", "null"],
        "Annual Revenue": ["$1,234.50", "-", "$2,000,000", "$950"],
        "Lifecycle Stage": ["customer", "customer", "evangelist", "other"],
        "Country/Region": ["Germany", "United States", "", "France"],
        "Facebook Company Page": ["", "", "", ""], "Twitter Handle": ["", "", "", ""],
    })


HUBSPOT_MAP = {"Record ID": "account_id", "Create Date": "signed_at", "Industry": "industry",
               "Number of Employees": "employees", "Country/Region": "region"}


def test_hubspot_companies_export(tmp_path):
    mapping = {"accounts": HUBSPOT_MAP, "subscriptions": PERIODS_MAP, "events": EVENTS_MAP}
    r, df = _build(tmp_path, {"accounts": _hubspot(), "subscriptions": _periods(), "events": _analytics()}, mapping)
    june = {a: at(df, a, "2024-06-01") for a in IDS}
    assert [june[a].annual_revenue for a in IDS[:1] + IDS[2:]] == [1234.5, 2_000_000.0, 950.0]
    assert pd.isna(june["9002"].annual_revenue)  # "-": missing
    assert june["9001"].industry == "COMPUTER_SOFTWARE" and pd.isna(june["9004"].industry)
    used = {c.column: (c.kind, c.note) for c in r.profile.used}
    unused = {c.column: c.reason for c in r.profile.unused}
    assert used == {"Annual Revenue": ("number", "written as text with currency signs or separators, read with a "
                                                 "decimal point")}
    assert unused["Lifecycle Stage"].startswith("export-time state")  # today's stage, not the as-of date's
    assert unused["Company name"] == "id-like (name)"
    assert unused["Facebook Company Page"] == "all null"


def test_stripe_subscription_export_columns_that_leak_are_not_features(tmp_path):
    """A dashboard's spelling of export-time columns is read as words: ``Canceled At (UTC)`` is
    ``canceled_at`` (not a date feature that exists only for churners)."""
    subs = _periods()
    subs["id"] = [f"sub_{i}" for i in range(len(subs))]
    subs["Customer Email"] = "x@example.com"
    subs["Status"] = "active"
    subs["Canceled At (UTC)"] = ["2024-05-20 10:00" if a == "9004" else "" for a in subs["Customer ID"]]
    subs["Ended At (UTC)"] = ""
    subs["Cancel At Period End"] = ["true" if a == "9004" else "false" for a in subs["Customer ID"]]
    subs["Trial End (UTC)"] = "2023-05-01 00:00"
    subs["Interval"] = "month"
    r, _ = _build(tmp_path, {"subscriptions": subs, "events": _analytics()},
                  {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP})
    unused = {c.column: c.reason for c in r.profile.unused}
    for column in ("Status", "Canceled At (UTC)", "Cancel At Period End"):
        assert unused[column].startswith("export-time state"), column
    assert unused["id"] == "id-like (name)"
    assert unused["Customer Email"] == "personal data (a person's name or contact details): not used as a feature"
    assert {c.column: c.kind for c in r.profile.used} == {"Trial End (UTC)": "date", "Interval": "category"}


def test_a_spreadsheet_saved_in_a_european_locale(tmp_path):
    """A UTF-8 BOM, ';' between fields, decimal commas, "N/A", trailing spaces in ids and a
    duplicated row read as the clean export does."""
    clean_r, clean = _build(tmp_path / "clean", {"accounts": _hubspot(), "subscriptions": _periods(),
                                                 "events": _analytics()},
                            {"accounts": HUBSPOT_MAP, "subscriptions": PERIODS_MAP, "events": EVENTS_MAP})
    subs = _periods()
    subs["Amount"] = subs["Amount"].str.replace(".", ",", regex=False)
    subs.loc[9, "Amount"] = "1.049,00"  # 9001's term from 2024-03-01: a thousands dot and a decimal comma
    subs["Customer ID"] = subs["Customer ID"] + " "
    subs.loc[1::3, "Plan"] = "N/A"
    acc = pd.concat([_hubspot(), _hubspot().iloc[:1]])
    acc["Annual Revenue"] = ["1.234,50", "-", "2.000.000", "950", "1.234,50"]
    r, df = _build(tmp_path / "sheet", {"accounts": acc, "subscriptions": subs, "events": _analytics()},
                   {"accounts": HUBSPOT_MAP, "subscriptions": PERIODS_MAP, "events": EVENTS_MAP},
                   sep=";", encoding="utf-8-sig")
    assert r.validation.tables["accounts"].set_aside == {"duplicate_account": 1}
    assert sorted(df.index.get_level_values(0).unique()) == IDS  # "9001 " is 9001
    june = df.xs(pd.Timestamp("2024-06-01"), level="as_of")
    june_clean = clean.xs(pd.Timestamp("2024-06-01"), level="as_of")
    pd.testing.assert_series_equal(june.mrr, june_clean.mrr)  # 49,00 is 49.00
    pd.testing.assert_series_equal(june.annual_revenue, june_clean.annual_revenue)
    assert june.annual_revenue.tolist()[:1] + june.annual_revenue.tolist()[2:] == [1234.5, 2_000_000.0, 950.0]
    assert at(df, "9001", "2024-03-01").mrr == 1049.0 and at(clean, "9001", "2024-03-01").mrr == 49.0
    plans = r.validation.tables["subscriptions"]
    assert plans.set_aside == {} and clean_r.validation.tables["subscriptions"].rows_kept == plans.rows_kept


def test_a_column_with_both_decimal_separators_is_named():
    import duckdb

    from features.numbers import number_cast, text_number_mode

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('1,234'), ('12,5'), ('$1,234.50')) v(x)")
    assert text_number_mode(con, "t", "x") is None  # a comma and a point decimal: not one number column
    con.execute("CREATE TABLE u AS SELECT * FROM (VALUES ('1,234'), ('$ 99'), ('1 234.5'), ('-7')) v(x)")
    assert text_number_mode(con, "u", "x") is False  # "1,234" alone is a thousands comma
    assert [r[0] for r in con.execute(f"SELECT {number_cast('x', False)} FROM u").fetchall()] == \
        [1234.0, 99.0, 1234.5, -7.0]
    con.execute("CREATE TABLE w AS SELECT * FROM (VALUES ('1,234'), ('0,5'), ('1.000.000'), ('1,2,3')) v(x)")
    assert [r[0] for r in con.execute(f"SELECT {number_cast('x', True)} FROM w").fetchall()] == \
        [1.234, 0.5, 1_000_000.0, None]


def _zoned_folder(tmp_path, monkeypatch, zone: str):
    """The machine's zone set to ``zone`` (undo with ``monkeypatch.undo(); time.tzset()``) and a folder
    holding the periods as typed Parquet subscriptions, for the events a test adds."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    data = tmp_path / "data"
    data.mkdir()
    _periods().rename(columns=PERIODS_MAP).assign(
        start_date=lambda d: pd.to_datetime(d.start_date).dt.date,
        end_date=lambda d: pd.to_datetime(d.end_date).dt.date,
        mrr=lambda d: d.mrr.astype(float)).to_parquet(data / "subscriptions.parquet")
    return data


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_timestamps_with_a_time_zone_are_read_as_utc_wherever_the_machine_is(tmp_path, monkeypatch, zone):
    """A warehouse's Parquet export carries instants (TIMESTAMP WITH TIME ZONE); they were read in the
    reading machine's zone, so one file gave other days on a laptop in New York than on a server."""
    data = _zoned_folder(tmp_path, monkeypatch, zone)
    try:
        ev = pd.DataFrame({"account_id": IDS, "event_type": "login",
                           # 2024-06-01 02:30 in UTC is 2024-05-31 22:30 in New York: one instant
                           "occurred_at": pd.to_datetime(["2024-06-01T02:30:00Z"] * 4)})
        ev.to_parquet(data / "events.parquet")
        build_snapshots(data, settings(data_end=D(2024, 7, 1)), tmp_path / "s.duckdb",
                        as_of=[D(2024, 6, 1), D(2024, 6, 2)])
        df = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"])
        # read in UTC: on 06-01, not before it (the day since the last login; a 30-day count is unknown there,
        # the data covering under two weeks of its window: features.spec.MIN_COVERED_DAYS)
        assert pd.isna(at(df, "9001", "2024-06-01").days_since_last_login)
        assert at(df, "9001", "2024-06-02").days_since_last_login == 1
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_iso_text_with_an_offset_is_the_same_instant_as_in_parquet(tmp_path, monkeypatch, zone):
    """A CSV export writes an instant as ISO text with its offset (Zendesk's, HubSpot's API exports):
    ``2024-05-31T21:30:00-05:00`` is 2024-06-01 02:30 in UTC, as the Parquet instant above. DuckDB's
    plain cast dropped the offset (May 31); text without an offset keeps the wall-clock time it says."""
    data = _zoned_folder(tmp_path, monkeypatch, zone)
    try:
        pd.DataFrame({"account_id": IDS, "event_type": "login",
                      "occurred_at": ["2024-05-31T21:30:00-05:00", "2024-06-01T11:30:00+09:00",
                                      "2024-05-31 23:30:00", "2024-06-01T02:30:00Z"]}).to_csv(
            data / "events.csv", index=False)
        con = open_connection()
        prepare(data, settings(data_end=D(2024, 7, 1)), con)
        got = dict(con.execute("SELECT account_id, occurred_at FROM clean_events").fetchall())
        assert got == dict(zip(IDS, [T(2024, 6, 1, 2, 30), T(2024, 6, 1, 2, 30), T(2024, 5, 31, 23, 30),
                                     T(2024, 6, 1, 2, 30)]))
        con.close()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_money_column_mixing_decimal_separators_stops_with_what_is_read(tmp_path):
    subs = _periods()
    subs.loc[0, "Amount"] = "49,00"  # the others are 49.00: one column, two decimal separators
    with pytest.raises(DataContractError) as exc:
        _build(tmp_path, {"subscriptions": subs, "events": _analytics()},
               {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP})
    msg = str(exc.value)
    assert msg.startswith("subscriptions.mrr: 1 value(s) are not of type double (read: numbers, with a currency")
    assert "one decimal separator, '.' or ',', for the whole column" in msg and "'49,00'" in msg


def test_a_spreadsheets_local_dates_stop_with_what_is_read(tmp_path):
    """3/5/2024 (month or day first?) is not guessed: the error says which dates are read."""
    subs = _periods()
    subs.loc[2, "Current Period Start (UTC)"] = "8/1/2023 00:00"
    with pytest.raises(DataContractError) as exc:
        _build(tmp_path, {"subscriptions": subs, "events": _analytics()},
               {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP})
    msg = str(exc.value)
    assert msg.startswith("subscriptions.start_date: 1 value(s) are not of type date (read: ISO dates")
    assert "save the column as ISO dates" in msg and "'8/1/2023 00:00'" in msg


def test_tickets_and_invoices_pasted_twice_count_once(tmp_path):
    ticket = {"Id": 1, "Organization": "9001", "Created at": "2024-05-10 09:00", "Solved at": "2024-05-11 09:00",
              "Priority": "high"}
    invoice = {"Customer": "9001", "Date (UTC)": "2024-05-01 08:00", "Due Date (UTC)": "",
               "Paid At (UTC)": "", "Amount Due": "49.00"}
    other = dict(ticket, **{"Created at": "2024-05-12 09:00", "Solved at": "2024-05-13 09:00"})  # another one
    mapping = {"subscriptions": PERIODS_MAP, "events": EVENTS_MAP,
               "tickets": {"Organization": "account_id", "Created at": "opened_at", "Solved at": "resolved_at",
                           "Priority": "priority"},
               "invoices": {"Customer": "account_id", "Date (UTC)": "issued_at", "Due Date (UTC)": "due_at",
                            "Paid At (UTC)": "paid_at", "Amount Due": "amount"}}
    r, df = _build(tmp_path, {"subscriptions": _periods(), "events": _analytics(),
                              "tickets": pd.DataFrame([ticket, ticket, other]),
                              "invoices": pd.DataFrame([invoice, invoice])}, mapping)
    assert r.validation.tables["tickets"].set_aside == {"duplicate_ticket": 1}
    assert r.validation.tables["invoices"].set_aside == {"duplicate_invoice": 1}
    row = at(df, "9001", "2024-06-01")
    assert row.tickets_30d == 2 and row.late_payments_90d == 1
