"""Counts whose window the export's start cuts are scaled to the whole window (``features.spec.SCALED_NOTE``).

A probe's 7-month meal-kit export: its model learned 90-day counts from as-of dates where the data covered
28 to 89 days of them; at the data end they were whole, 'menu_viewed' events averaged 14.5 on the training
rows and 22.6 there, and the mean probability fell from 10.5% to 7.0% with nothing changed. A count now
reads days-with-data x (window / days with data) for an account that existed before the data start, so the
same behaviour gives the same value on every date; an account that began after the data start is counted
as it is (its window is whole: it did not exist before), and a window with under two weeks of data is null.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from core.store import read_snapshots
from features.pipeline import build_snapshots
from features.spec import MIN_COVERED_DAYS, SCALED_NOTE, build_catalogue, scaled
from tests.tiny import D, T, settings, write_tables

START = D(2024, 7, 1)  # the first event's day: the data start


def _export(folder):
    every = {"old": 1, "quiet": 3, "new": 1}  # one login every N days from the account's first day
    first = {"old": START, "quiet": START, "new": D(2024, 7, 21)}
    events = [dict(account_id=a, user_id="u", event_type="login", quantity=1.0,
                   occurred_at=T(2024, 7, 1, 9) + dt.timedelta(days=(first[a] - START).days + d))
              for a in every for d in range(0, 120, every[a])]
    write_tables(folder, {
        "accounts": [dict(account_id=a, industry="retail") for a in every],
        "subscriptions": [dict(account_id=a, start_date=D(2023, 1, 1) if a != "new" else first[a], end_date=None,
                               mrr=10.0, plan="m", seats=1) for a in every],
        "events": events})


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scaled")
    _export(tmp / "data")
    dates = [D(2024, 7, 11), D(2024, 7, 29), D(2024, 8, 20), D(2024, 10, 1)]
    built = build_snapshots(tmp / "data", settings(data_end=D(2024, 10, 28)), tmp / "s.duckdb", as_of=dates)
    assert built.validation.data_start == START
    df = read_snapshots(tmp / "s.duckdb")
    df["as_of"] = df["as_of"].dt.date
    return df.set_index(["account_id", "as_of"])


def test_a_count_the_data_start_cuts_is_scaled_to_its_whole_window(rows):
    old = rows.loc[("old", D(2024, 7, 29))]  # 28 days of data: 28 logins, one a day
    assert old["logins_90d"] == 90 and old["evt_login_90d"] == 90 and old["active_days_90d"] == 90
    assert old["logins_30d"] == 30 and old["logins_7d"] == 7  # 28 of 30 days: 28 x 30 / 28
    # a login every third day: 10 in 28 days, 32.1 in 90, rounded as an int count; the float count is not
    quiet = rows.loc[("quiet", D(2024, 7, 29))]
    assert quiet["logins_90d"] == 32 and quiet["evt_login_90d"] == pytest.approx(10 * 90 / 28)
    # the same behaviour reads the same once the window is whole
    assert rows.loc[("old", D(2024, 10, 1)), "logins_90d"] == 90
    assert rows.loc[("quiet", D(2024, 10, 1)), "logins_90d"] == 30


def test_an_account_that_began_after_the_data_start_is_counted_as_it_is(rows):
    new = rows.loc[("new", D(2024, 7, 29))]  # 8 days old: its window is whole
    assert new["tenure_days"] == 8 and new["logins_90d"] == 8 and new["logins_30d"] == 8


def test_a_window_with_under_two_weeks_of_data_is_unknown(rows):
    early = rows.loc[("old", D(2024, 7, 11))]  # 10 days of data
    assert 10 < MIN_COVERED_DAYS
    assert early["logins_7d"] == 7  # a week inside the data is whole
    assert early[["logins_30d", "logins_90d", "active_days_90d", "evt_login_90d"]].isna().all()


def test_a_change_scales_both_windows_alike(rows):
    # 2024-08-20: the previous 30 days [06-21, 07-21) have 20 days of data and 20 logins (30 scaled):
    # no change; counted as they are it read +50%
    assert rows.loc[("old", D(2024, 8, 20)), "logins_30d_change"] == pytest.approx(0.0)
    assert rows.loc[("old", D(2024, 8, 20)), "evt_login_30d_change"] == pytest.approx(0.0)
    # 2024-07-29: the previous window has no data: unknown (it is not "no logins")
    assert rows.loc[("old", D(2024, 7, 29)), ["logins_30d_change", "evt_login_30d_change",
                                              "active_days_30d_change"]].isna().all()


def test_the_catalogue_says_which_features_are_scaled():
    cat = build_catalogue(["login", "menu_viewed"])
    names = {f.name for f in cat.features if scaled(f)}
    assert {"logins_90d", "active_days_7d", "evt_menu_viewed_90d", "evt_login_30d_change",
            "logins_30d_change"} <= names
    # distinct users, ratios, tickets, invoices and days-since are not counts that scale
    assert not names & {"active_users_30d", "core_events_per_active_user_30d", "tickets_30d",
                        "late_payments_90d", "days_since_last_login", "evt_login_users_30d"}
    assert cat["logins_90d"].definition.endswith(SCALED_NOTE)


def test_subscriptions_cut_at_the_export_start_are_said_and_their_accounts_scaled_as_older(tmp_path):
    """A probe's meal-kit export held the periods billed since its start: 2,153 of 3,000 accounts began
    their first term in the 35 days up to it, 139 in 35 days after it on average. Their first term in the
    file is not when they became customers, so their counts are scaled as for accounts that began before
    the data start."""
    _cut_export(tmp_path / "data")
    built = build_snapshots(tmp_path / "data", settings(data_end=D(2024, 10, 28)), tmp_path / "s.duckdb",
                            as_of=[D(2024, 7, 29)])
    [said] = [w for w in built.validation.warnings if w.startswith("subscriptions: ")]
    assert said.startswith("subscriptions: 8 of 9 accounts (89%) begin their first term in the 35 days up to the "
                           "data start (2024-07-01), against 0 in 35 days after it on average: the subscriptions "
                           "look cut at the export's start.")
    rows = read_snapshots(tmp_path / "s.duckdb").set_index("account_id")
    # 28 days of data, one login a day: 90 in 90 days (from the file's first term, 38 days: it read 38)
    assert rows.loc["c0", "tenure_days"] == 38 and rows.loc["c0", "logins_90d"] == 90
    # signed 78 days before the as-of date: 28 x 78 / 28, and a customer for 78 days (p41: tenure from the
    # file's first term drifted the model's level down 30%)
    assert rows.loc["c7", "tenure_days"] == 78 and rows.loc["c7", "logins_90d"] == 78


def _cut_export(folder):
    """Eight accounts whose first term in the file begins ten days before the data start (c7 with a
    signature date 50 days before it), and one that begins a month after."""
    cut = [f"c{k}" for k in range(8)]
    events = [dict(account_id=a, user_id="u", event_type="login", quantity=1.0,
                   occurred_at=T(2024, 7, 1, 9) + dt.timedelta(days=d)) for a in cut for d in range(120)]
    subs = [dict(account_id=a, start_date=D(2024, 6, 21), end_date=None, mrr=10.0, plan="m", seats=1) for a in cut]
    subs.append(dict(account_id="later", start_date=D(2024, 8, 1), end_date=None, mrr=10.0, plan="m", seats=1))
    signed = {"c7": D(2024, 5, 12)}  # a signature date (accounts.signed_at) says when the customer began
    write_tables(folder, {"accounts": [dict(account_id=s["account_id"], signed_at=signed.get(s["account_id"]))
                                       for s in subs],
                          "subscriptions": subs, "events": events})


def test_in_a_cut_export_only_the_accounts_it_cut_count_their_tenure_from_their_signature(tmp_path):
    _cut_export(tmp_path / "data")
    accounts = pd.read_parquet(tmp_path / "data" / "accounts.parquet")
    accounts["signed_at"] = [D(2024, 5, 12) if a in ("c7", "later") else None for a in accounts["account_id"]]
    accounts.to_parquet(tmp_path / "data" / "accounts.parquet", index=False)
    build_snapshots(tmp_path / "data", settings(data_end=D(2024, 10, 28)), tmp_path / "s.duckdb",
                    as_of=[D(2024, 8, 20)])
    rows = read_snapshots(tmp_path / "s.duckdb").set_index("account_id")["tenure_days"]
    assert rows["c7"] == (D(2024, 8, 20) - D(2024, 5, 12)).days  # cut: a customer since it signed
    assert rows["c0"] == (D(2024, 8, 20) - D(2024, 6, 21)).days  # cut, no signature: the file's first term
    assert rows["later"] == (D(2024, 8, 20) - D(2024, 8, 1)).days  # began after the data start: its own start


def test_a_signature_date_before_the_first_term_is_when_the_account_began(tmp_path):
    _export(tmp_path / "data")
    accounts = pd.read_parquet(tmp_path / "data" / "accounts.parquet")
    accounts["signed_at"] = [D(2024, 6, 1) if a == "new" else None for a in accounts["account_id"]]
    accounts.to_parquet(tmp_path / "data" / "accounts.parquet", index=False)
    build_snapshots(tmp_path / "data", settings(data_end=D(2024, 10, 28)), tmp_path / "s.duckdb",
                    as_of=[D(2024, 7, 29)])
    new = read_snapshots(tmp_path / "s.duckdb").set_index("account_id").loc["new"]
    # signed on 06-01, first term 07-21, logins from 07-21: 8 logins in the 28 days of data, of 58 days signed
    assert new["tenure_days"] == 8 and new["logins_90d"] == round(8 * 58 / 28)


def test_an_export_with_every_term_is_not_cut(tmp_path):
    _export(tmp_path / "data")
    built = build_snapshots(tmp_path / "data", settings(data_end=D(2024, 10, 28)), tmp_path / "s.duckdb",
                            as_of=[D(2024, 7, 29)])
    assert not [w for w in built.validation.warnings if w.startswith("subscriptions: ")]
