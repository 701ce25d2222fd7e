"""An account before its first product event: its event features are unknown (null), not 0.

A probe's Stripe export came with product analytics for half its customers: the other half read
``logins_30d = 0`` and ``active_users_per_seat = 0``, and 741 of 753 were told "Only 0% of seats in use"
with a training playbook, though their usage was simply not in the export. Until an account's first event
(any but the cancellation roles') nothing says whether it is inactive or untracked; after it, an account
whose events stop counts 0 as before. ``features`` says how many accounts with a term at the data end have
no product event at all.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from core.settings import Settings
from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import ROLES, D, write_tables

ROLES_ASKED = ROLES.model_copy(update={"cancel_request": ["cancellation_scheduled"]})
TRACKED = [f"t{i:02d}" for i in range(10)]
UNTRACKED = [f"u{i:02d}" for i in range(28)]


def _events() -> pd.DataFrame:
    rows = []
    for a in TRACKED:  # active January to March, silent after
        for day in pd.date_range("2024-01-02", "2024-03-31", freq="3D"):
            rows += [(a, "x", day, "login"), (a, "x", day, "report_build")]
    for day in pd.date_range("2024-03-15", "2024-06-20", freq="2D"):  # first event in mid-March
        rows.append(("late", "y", day, "login"))
    rows.append(("asked", "z", pd.Timestamp("2024-04-10 09:00"), "cancellation_scheduled"))  # no product event
    rows.append(("t00", "x", pd.Timestamp("2024-06-29"), "login"))  # the data end
    # an e-mail tool's and a CRM's events are no product activity (the review): known themselves, usage unknown
    for day in pd.date_range("2024-02-01", "2024-04-20", freq="7D"):
        rows += [("mailed", "m", day, "email_sent"), ("mailed", "m", day + pd.Timedelta(hours=5), "email_opened")]
    rows.append(("mailed", "m", pd.Timestamp("2024-04-15"), "key_contact_left"))
    rows.append(("stray", "s", pd.Timestamp("2023-06-01"), "page_view"))  # before the bulk of the log: no tracking
    return pd.DataFrame(rows, columns=["account_id", "user_id", "occurred_at", "event_type"])


def untracked_rows(tmp_path, engine: str = "duckdb"):
    """(the build's result, its snapshots indexed by account and as-of date) on ``engine``."""
    ids = TRACKED + UNTRACKED + ["late", "asked", "mailed", "stray"]
    data = write_tables(tmp_path / "data", {
        "accounts": [dict(account_id=a) for a in ids],
        "subscriptions": [dict(account_id=a, start_date=D(2024, 1, 1), end_date=None, mrr=50.0, seats=5)
                          for a in ids],
        "events": _events()})
    s = Settings(event_roles=ROLES_ASKED)
    spark = {"engine": "spark", "master": "local[2]"} if engine == "spark" else {}
    result = build_snapshots(data, s, tmp_path / "s.duckdb", as_of=[D(2024, 3, 1), D(2024, 5, 1)], **spark)
    rows = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"]).sort_index()
    return result, rows


USAGE = ["logins_30d", "active_days_30d", "core_events_30d", "active_users_per_seat", "evt_login_30d",
         "evt_report_build_90d"]


def test_event_features_are_unknown_before_the_first_product_event(tmp_path):
    _, rows = untracked_rows(tmp_path)
    march, may = pd.Timestamp("2024-03-01"), pd.Timestamp("2024-05-01")
    untracked = rows.loc[("u00", may)]
    assert untracked[USAGE].isna().all(), untracked[USAGE]
    assert untracked["mrr"] == 50.0 and untracked["tenure_days"] == 121  # the rest is known
    # a request is no product activity: it stands, and the usage stays unknown
    asked = rows.loc[("asked", may)]
    assert asked["cancel_request_standing"] == 1 and asked[USAGE].isna().all()
    assert rows.loc[("u00", may), "cancel_request_standing"] == 0
    mailed = rows.loc[("mailed", may)]
    assert mailed[USAGE].isna().all() and mailed["contact_left_90d"] == 1 and mailed["email_open_rate_90d"] == 1.0
    assert rows.loc[("stray", march), USAGE].isna().all() and rows.loc[("stray", may), USAGE].isna().all()
    # unknown before the first event, counted from it on
    assert rows.loc[("late", march), USAGE].isna().all()
    assert rows.loc[("late", may), "logins_30d"] > 0
    # an account whose events stopped counts 0, as before
    assert rows.loc[("t01", march), "logins_30d"] > 0
    assert rows.loc[("t01", may), "logins_30d"] == 0 and rows.loc[("t01", may), "active_users_per_seat"] == 0


def test_features_says_how_many_accounts_have_no_product_event(tmp_path):
    result, _ = untracked_rows(tmp_path)
    said = [w for w in result.validation.warnings if w.startswith("events: ") and "have no product event" in w]
    assert result.validation.data_start > dt.date(2023, 6, 1)  # the stray login is before it
    # 28 never tracked, the one that only asked to cancel, the one only e-mailed, the stray login; of 42
    assert said == [
        "events: 31 of the 42 accounts with a term at the data end (74%) have no product event in the log: "
        "their usage features are unknown (null), not 0, so no reason calls them inactive. If "
        "they are tracked and never used the product, that is what the model learns from the missing values; if "
        "the product export does not cover them (tracking set up for some customers only), export the events of "
        "every customer"]


def test_a_billing_only_export_whose_events_are_its_requests_is_not_told_to_export_more(tmp_path):
    """Probe p56: a company with only Stripe sent its cancellation requests as events, as the exports guide says,
    and was told at every step that 100% of its accounts had no product event and to "export the events of every
    customer"; there is no product log to complete."""
    ids = [f"c{i:02d}" for i in range(40)]
    events = pd.DataFrame([(a, "u", pd.Timestamp(2024, 4, 1 + i % 20, 9), "cancellation_scheduled")
                           for i, a in enumerate(ids[:12])], columns=["account_id", "user_id", "occurred_at",
                                                                        "event_type"])
    data = write_tables(tmp_path / "data", {
        "accounts": [dict(account_id=a) for a in ids],
        "subscriptions": [dict(account_id=a, start_date=D(2024, 1, 1), end_date=None, mrr=50.0, seats=5) for a in ids],
        "events": events})
    result = build_snapshots(data, Settings(event_roles=ROLES_ASKED, data_end=D(2024, 6, 30)), tmp_path / "s.duckdb",
                             as_of=[D(2024, 5, 1)])
    assert not [w for w in result.validation.warnings if "no product event" in w], result.validation.warnings
    rows = read_snapshots(tmp_path / "s.duckdb").set_index("account_id")
    assert rows["logins_30d"].isna().all() and rows.loc["c00", "cancel_request_standing"] == 1


def test_event_types_named_as_not_usage_are_no_product_activity(tmp_path):
    """Probe p60: a CS tool's monthly sentiment rows, sent as events as the README says, counted as active days on
    959 of 2,091 accounts (23 with no product use at all). Named under ``event_roles.not_usage`` they keep their own
    counts and are no activity, no active user and no sign that the product export covers the account."""
    rows = []
    for day in pd.date_range("2024-03-01", "2024-04-28", freq="4D"):
        rows.append(("used", "x", day, "shift_created"))
    for day in pd.date_range("2024-03-31", "2024-04-30", freq="MS") + pd.Timedelta(days=27):
        rows += [("used", "csm", day, "csm_sentiment_red"), ("rated", "csm", day, "csm_sentiment_red")]
    rows.append(("used", "x", pd.Timestamp("2024-05-31"), "shift_created"))  # the data end after the as-of date
    events = pd.DataFrame(rows, columns=["account_id", "user_id", "occurred_at", "event_type"])
    data = write_tables(tmp_path / "data", {
        "accounts": [dict(account_id=a) for a in ("used", "rated")],
        "subscriptions": [dict(account_id=a, start_date=D(2024, 1, 1), end_date=None, mrr=50.0, seats=5)
                          for a in ("used", "rated")],
        "events": events})
    out = {}
    for name, roles in (("plain", ROLES), ("named", ROLES.model_copy(update={"not_usage": ["csm_sentiment_red"]}))):
        build_snapshots(data, Settings(event_roles=roles), tmp_path / f"{name}.duckdb", as_of=[D(2024, 5, 1)])
        out[name] = read_snapshots(tmp_path / f"{name}.duckdb").set_index("account_id")
    plain, named = out["plain"], out["named"]
    assert plain.loc["used", "active_days_30d"] > named.loc["used", "active_days_30d"]  # the ratings' days were counted
    assert plain.loc["rated", "active_days_30d"] >= 1 and pd.isna(named.loc["rated", "active_days_30d"])
    assert pd.isna(named.loc["rated", "active_users_30d"])
    assert named.loc["rated", "evt_csm_sentiment_red_90d"] == plain.loc["rated", "evt_csm_sentiment_red_90d"] >= 1
