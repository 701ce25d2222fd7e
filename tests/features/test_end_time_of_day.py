"""A term's bounds with a time of day (Stripe's ``current_period_end``, RevenueCat's expiration) are the
first midnight at or after them: an as-of date is the midnight that starts it. A billing period renewing
later on the data-end day is in force on it (scored, not "churned"), the renewal or an upgrade starts the
next day (no day counted twice, and no later term decides an earlier one's end), and a date or a midnight
reads as it did."""

from __future__ import annotations

import pandas as pd
import pytest

from core.store import read_snapshots
from features.pipeline import build_snapshots, open_connection, prepare
from tests.tiny import D, settings, write_tables

END = D(2026, 12, 1)
SUBSCRIPTIONS = pd.DataFrame({
    # a: monthly periods renewing at 21:12; the last one ends on the data-end day, renewal not yet exported
    # b: a period ending at midnight; c: an upgrade (the new term starts when the old one ends);
    # d: plain dates; e: a churner whose last period ended at 15:00 in October
    "account_id": ["a", "a", "a", "b", "c", "c", "d", "e", "e"],
    "start_date": ["2026-09-01 21:12", "2026-10-01 21:12", "2026-11-01 21:12", "2026-11-01 09:00",
                   "2026-10-15 10:00", "2026-11-15T11:00:00+01:00", "2026-10-01", "2026-08-10 15:00",
                   "2026-09-10 15:00"],
    "end_date": ["2026-10-01 21:12", "2026-11-01 21:12", "2026-12-01 21:12", "2026-12-01 00:00",
                 "2026-11-15T10:00:00Z", None, "2026-12-01", "2026-09-10 15:00", "2026-10-10 15:00"],
    "mrr": [10.0, 10.0, 10.0, 5.0, 3.0, 6.0, 1.0, 2.0, 2.0]})
EVENTS = pd.DataFrame({"account_id": list("abcde"), "user_id": "u", "occurred_at": "2026-09-20 10:00",
                       "event_type": "login"})


def _terms(tmp_path, fmt: str, subscriptions: pd.DataFrame) -> pd.DataFrame:
    data = write_tables(tmp_path / fmt, {"accounts": pd.DataFrame({"account_id": list("abcde")}),
                                         "subscriptions": subscriptions, "events": EVENTS}, fmt=fmt)
    con = open_connection()
    try:
        prepare(data, settings(data=str(data), data_end=END), con)
        return con.execute("SELECT account_id, start_date, end_date FROM clean_subscriptions "
                           "ORDER BY account_id, start_date").df()
    finally:
        con.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_bound_with_a_time_of_day_is_the_next_midnight(tmp_path, fmt):
    subscriptions = SUBSCRIPTIONS.copy()
    if fmt == "parquet":  # a source typed as timestamps (the offset one read as its UTC instant)
        for c in ("start_date", "end_date"):
            subscriptions[c] = pd.to_datetime(subscriptions[c], utc=True, format="mixed").dt.tz_localize(None)
    terms = _terms(tmp_path, fmt, subscriptions)
    ends = {(r.account_id, r.start_date.date()): None if pd.isna(r.end_date) else r.end_date.date()
            for r in terms.itertuples()}
    assert ends == {  # each bound the first midnight at or after it
        ("a", D(2026, 9, 2)): D(2026, 10, 2),    # renewals at 21:12: one period ends the day the next starts
        ("a", D(2026, 10, 2)): D(2026, 11, 2),
        ("a", D(2026, 11, 2)): D(2026, 12, 2),   # renews later on the data-end day: in force on it
        ("b", D(2026, 11, 2)): D(2026, 12, 1),   # an end at midnight: the day is not covered
        ("c", D(2026, 10, 16)): D(2026, 11, 16),  # the upgrade at 10:00 UTC: the old plan on the 15th,
        ("c", D(2026, 11, 16)): None,             # the new one from the 16th, never both
        ("d", D(2026, 10, 1)): D(2026, 12, 1),   # dates: as they are
        ("e", D(2026, 8, 11)): D(2026, 9, 11),
        ("e", D(2026, 9, 11)): D(2026, 10, 11),  # the churner had the product on October 10
    }


def test_the_renewing_customer_is_scored_on_the_data_end_day(tmp_path):
    data = write_tables(tmp_path / "data", {"accounts": pd.DataFrame({"account_id": list("abcde")}),
                                            "subscriptions": SUBSCRIPTIONS, "events": EVENTS}, fmt="csv")
    build_snapshots(data, settings(data=str(data), data_end=END), tmp_path / "s.duckdb", as_of=[END])
    rows = read_snapshots(tmp_path / "s.duckdb")
    at_end = rows[rows["as_of"] == pd.Timestamp(END)].set_index("account_id")
    # a renews later that day and c runs on; b's and d's terms end on the data end itself (billed again
    # that day, after the export: still customers, their renewal due); e left in October
    assert sorted(at_end.index) == ["a", "b", "c", "d"]
    assert at_end.loc["a", "mrr"] == 10.0 and at_end.loc["a", "days_to_term_end"] == 1
    assert at_end.loc[["b", "d"], "days_to_term_end"].tolist() == [0, 0]
    assert at_end.loc[["b", "d"], "mrr"].tolist() == [5.0, 1.0]
    assert at_end[["churn_label"]].isna().all().all()  # the data end's rows are unlabelled


def test_a_term_ending_on_the_as_of_date_is_due_there_and_never_counted_twice(tmp_path):
    """A probe's Shopify app: charges billed again on the day after the export (``billing_on``
    2026-12-01, the data end) were not scored and ``/score_accounts`` called the shops churned. A term
    ending on the as-of date is in force, its renewal due, unless a term starts that day (its renewal,
    where the export holds it, is counted once)."""
    subs = pd.DataFrame({"account_id": ["p", "r", "r", "x"],
                         "start_date": ["2026-11-01", "2026-11-01", "2026-12-01", "2026-10-01"],
                         "end_date": ["2026-12-01", "2026-12-01", "2027-01-01", "2026-11-24"],
                         "mrr": [9.0, 4.0, 6.0, 3.0]})
    data = write_tables(tmp_path / "data", {"accounts": pd.DataFrame({"account_id": ["p", "r", "x"]}),
                                            "subscriptions": subs, "events": EVENTS.assign(account_id="p")},
                        fmt="csv")
    earlier = D(2026, 11, 24)
    build_snapshots(data, settings(data=str(data), data_end=END), tmp_path / "s.duckdb", as_of=[earlier, END])
    rows = read_snapshots(tmp_path / "s.duckdb").set_index(["as_of", "account_id"])
    at_end = rows.loc[pd.Timestamp(END)]
    assert sorted(at_end.index) == ["p", "r"]  # x's term ended before the data end: not a customer
    assert (at_end.loc["p", "mrr"], at_end.loc["p", "days_to_term_end"]) == (9.0, 0)
    assert (at_end.loc["r", "mrr"], at_end.loc["r", "days_to_term_end"]) == (6.0, 31)  # the renewal, once
    # on an earlier date the same rule: x's term ends on it and nothing starts then, so x is due that day
    on_earlier = rows.loc[pd.Timestamp(earlier)]
    assert sorted(on_earlier.index) == ["p", "r", "x"] and on_earlier.loc["x", "days_to_term_end"] == 0


def test_a_later_renewal_does_not_move_an_earlier_dates_features(tmp_path):
    """Point in time: whether the period ending 2026-11-01 21:12 is renewed that evening must not change
    anything at an as-of date before it (an end read as that day when a renewal follows and as the next
    day when none does would give churners one day more to their term's end)."""
    renewed = SUBSCRIPTIONS[SUBSCRIPTIONS["account_id"].isin(["a", "b"])]
    lapsed = renewed[~((renewed["account_id"] == "a") & (renewed["start_date"] == "2026-11-01 21:12"))]
    before = D(2026, 10, 20)
    found = {}
    for name, subs in (("renewed", renewed), ("lapsed", lapsed)):
        data = write_tables(tmp_path / name, {"accounts": pd.DataFrame({"account_id": ["a", "b"]}),
                                              "subscriptions": subs, "events": EVENTS[EVENTS["account_id"] < "c"]},
                            fmt="csv")
        build_snapshots(data, settings(data=str(data), data_end=END), tmp_path / f"{name}.duckdb", as_of=[before])
        rows = read_snapshots(tmp_path / f"{name}.duckdb").set_index("account_id")
        found[name] = rows.drop(columns=[c for c in rows.columns if c.startswith("churn") or c == "labelled"])
    assert found["renewed"].loc["a", "days_to_term_end"] == 13  # 2026-11-02 - 2026-10-20
    pd.testing.assert_frame_equal(found["renewed"], found["lapsed"])


def test_a_term_begun_on_the_exports_last_day_is_kept_and_a_placeholder_end_stays_open(tmp_path):
    """With ``data_end`` configured, a subscription started at 10:00 on the export's last day starts on the
    data end: a customer then, not a row after the export; ``9999-12-31 23:59:59`` stays a placeholder."""
    subs = pd.DataFrame({"account_id": ["a", "n"], "start_date": ["2026-10-01", "2026-11-30 10:00"],
                         "end_date": ["9999-12-31 23:59:59", None], "mrr": [5.0, 7.0]})
    data = write_tables(tmp_path / "data", {"accounts": pd.DataFrame({"account_id": ["a", "n"]}),
                                            "subscriptions": subs,
                                            "events": EVENTS[EVENTS["account_id"] == "a"]}, fmt="csv")
    result = build_snapshots(data, settings(data=str(data), data_end=END), tmp_path / "s.duckdb", as_of=[END])
    assert "after_data_end" not in result.validation.tables["subscriptions"].set_aside
    rows = read_snapshots(tmp_path / "s.duckdb").set_index("account_id")
    assert sorted(rows.index) == ["a", "n"] and rows.loc["n", "mrr"] == 7.0
    assert pd.isna(rows.loc["a", "days_to_term_end"])  # open-ended, not 10000-01-01


def test_a_pause_keeps_the_customer_but_its_end_is_no_term_end(tmp_path):
    """A probe's Shopify app: a pause until further notice gets its end written only when it ends (the
    unfreeze or the uninstall), so on the rows before it the end told how the pause ended (paused rows
    with an end churned 56%, every shop paused at the export had none). A paused plan's term keeps the
    customer active; its end is not read as the term's end, whichever case the export writes."""
    subs = pd.DataFrame({"account_id": ["p", "p", "p", "q", "q"],
                         "start_date": ["2026-09-01", "2026-10-01", "2026-11-10", "2026-10-01", "2026-10-01"],
                         "end_date": ["2026-10-01", "2026-11-10", "2026-12-10", "2026-11-20", "2026-12-31"],
                         "plan": ["growth", "Paused", "growth", "Paused", "addon"],
                         "mrr": [20.0, 20.0, 20.0, 15.0, 5.0]})
    data = write_tables(tmp_path / "data", {"accounts": pd.DataFrame({"account_id": ["p", "q"]}),
                                            "subscriptions": subs, "events": EVENTS.assign(account_id="p")},
                        fmt="csv")
    dates = [D(2026, 10, 20), D(2026, 11, 17)]
    found = {}
    for name, paused in (("default", None), ("none", [])):
        options = {} if paused is None else {"paused_plans": paused}
        build_snapshots(data, settings(data=str(data), data_end=END, **options), tmp_path / f"{name}.duckdb",
                        as_of=dates)
        found[name] = read_snapshots(tmp_path / f"{name}.duckdb").set_index(["as_of", "account_id"])
    rows = found["default"]
    during = rows.loc[(pd.Timestamp(dates[0]), "p")]
    assert pd.isna(during["days_to_term_end"]) and during["plan"] == "Paused" and during["mrr"] == 20.0
    after = rows.loc[(pd.Timestamp(dates[1]), "p")]
    assert after["days_to_term_end"] == 23 and after["plan"] == "growth"  # the resumed term's end, 2026-12-10
    beside = rows.loc[(pd.Timestamp(dates[0]), "q")]  # a pause beside an add-on: the add-on's end
    assert beside["days_to_term_end"] == (D(2026, 12, 31) - dates[0]).days and beside["mrr"] == 20.0
    # paused_plans: [] reads a pause's end as any term's (a pause whose resume date is known ahead)
    assert found["none"].loc[(pd.Timestamp(dates[0]), "p"), "days_to_term_end"] == 21
    # the plan feature carries the paused plans (lower case) for the reasons ("Subscription paused"); none with []
    from core.store import connect, read_meta
    from features.spec import Catalogue

    plans = {}
    for name in found:
        with connect(tmp_path / f"{name}.duckdb", read_only=True) as con:
            plans[name] = Catalogue.from_json(read_meta(con).catalogue_json)["plan"].params
    assert plans["default"]["paused_plans"] == ["paused"] and "paused_plans" not in plans["none"]


def test_a_renewal_due_on_the_as_of_date_is_labelled_by_what_followed_but_never_trained_on(tmp_path):
    """A term ending on a labelled as-of date: the row is kept (its renewal due) and its label counts a
    churn on that very day, so a date rebuilt once it has matured (monitoring's relabelling) keeps the
    customers who did not renew, labelled 1; a renewal within the grace period is no churn; a base term
    ending beside an add-on that runs on is counted with it (MRR not cut by the renewal day). On a past
    date only those who did not renew that day are due (a renewal starting then is in force), so a due
    row is no training row (``labelled`` false): the demo's model, trained on them, raised 217 alerts
    instead of 127."""
    t = D(2026, 6, 1)
    subs = pd.DataFrame({
        "account_id": ["lapsed", "late", "late", "renewed", "renewed", "base", "base"],
        "start_date": ["2026-05-01", "2026-05-01", "2026-06-11", "2026-05-01", "2026-06-01", "2026-05-01",
                       "2026-01-01"],
        "end_date": ["2026-06-01", "2026-06-01", "2026-09-11", "2026-06-01", "2026-09-01", "2026-06-01", None],
        "plan": ["m", "m", "m", "m", "m", "base", "addon"],
        "mrr": [10.0, 10.0, 10.0, 10.0, 10.0, 5.0, 2.0]})
    data = write_tables(tmp_path / "data", {"accounts": pd.DataFrame({"account_id": subs["account_id"].unique()}),
                                            "subscriptions": subs, "events": EVENTS.assign(account_id="base")},
                        fmt="csv")
    build_snapshots(data, settings(data=str(data), data_end=END), tmp_path / "s.duckdb", as_of=[t])
    rows = read_snapshots(tmp_path / "s.duckdb").set_index("account_id")
    assert sorted(rows.index) == ["base", "lapsed", "late", "renewed"]
    assert rows.loc["lapsed", ["days_to_term_end", "churn_label"]].tolist() == [0, 1]  # churned on t itself
    assert rows.loc["late", ["days_to_term_end", "churn_label"]].tolist() == [0, 0]  # renewed 10 days later
    assert rows.loc["renewed", ["days_to_term_end", "churn_label"]].tolist() == [92, 0]  # the renewal, once
    assert rows.loc["renewed", "mrr"] == 10.0
    assert rows.loc["base", "mrr"] == 7.0 and rows.loc["base", "churn_label"] == 0  # the add-on runs on
    assert rows["labelled"].to_dict() == {"base": False, "lapsed": False, "late": False, "renewed": True}


def test_a_data_end_rebuilt_once_matured_keeps_its_due_accounts_with_their_outcome(tmp_path):
    """The review: scored on the data end, an account due that day vanished when monitoring rebuilt the
    date with a later data end (no term in force any more), so matured performance left out exactly the
    customers who did not renew, and the date was rebuilt on every run."""
    subs = pd.DataFrame({"account_id": ["p", "r", "r"], "start_date": ["2026-11-01", "2026-11-01", "2026-12-01"],
                         "end_date": ["2026-12-01", "2026-12-01", "2027-06-01"], "mrr": [9.0, 4.0, 4.0]})
    data = write_tables(tmp_path / "data", {"accounts": pd.DataFrame({"account_id": ["p", "r"]}),
                                            "subscriptions": subs, "events": EVENTS.assign(account_id="p")},
                        fmt="csv")
    store = tmp_path / "s.duckdb"
    build_snapshots(data, settings(data=str(data), data_end=END), store, as_of=[END])
    first = read_snapshots(store).set_index("account_id")
    assert sorted(first.index) == ["p", "r"] and first["churn_label"].isna().all()
    later = D(2027, 4, 1)  # matured: p never renewed
    build_snapshots(data, settings(data=str(data), data_end=later), store, as_of=[END])
    again = read_snapshots(store, as_of=[END]).set_index("account_id")
    assert sorted(again.index) == ["p", "r"]
    assert (again.loc["p", "churn_label"], bool(again.loc["p", "labelled"])) == (1, False)  # its outcome, not trained
    assert (again.loc["r", "churn_label"], bool(again.loc["r", "labelled"])) == (0, True)
