"""A cancellation request stands until the term ends or a new one starts (``cancel_request_standing``),
however long before the term's end it was made: the event windows (7, 30, 90 days) lost an annual
customer's request in May to leave in January (a probe's Stripe export, 2026-12-06: 45 annual accounts
that had asked, all churned, scored healthy on 77% of their rows). Point in time like every feature:
known from the day after the request, void once a renewal starts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from core.settings import CONFIG_FILE_NAME, EventRoles, Settings, dump_settings
from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import ROLES, D, frame, write_tables

ASKED = "cancellation_scheduled"
TAKEN_BACK = "subscription_scheduled_cancellation_removed"
ACCOUNTS = ("ann1", "ann2", "none", "mon", "wd", "addon", "two", "trial")
DATES = [D(2025, 5, 10), D(2025, 5, 11), D(2025, 6, 15), D(2025, 6, 16), D(2025, 9, 1), D(2026, 1, 1),
         D(2026, 2, 1)]


def _tables() -> dict[str, list[dict]]:
    subs = [dict(account_id="ann1", start_date=D(2025, 1, 1), end_date=D(2026, 1, 1), mrr=100.0, plan="annual"),
            dict(account_id="ann2", start_date=D(2025, 1, 1), end_date=D(2026, 1, 1), mrr=100.0, plan="annual"),
            dict(account_id="ann2", start_date=D(2026, 1, 1), end_date=D(2027, 1, 1), mrr=100.0, plan="annual"),
            dict(account_id="none", start_date=D(2025, 1, 1), end_date=D(2026, 1, 1), mrr=100.0, plan="annual"),
            dict(account_id="none", start_date=D(2026, 1, 1), end_date=D(2027, 1, 1), mrr=100.0, plan="annual"),
            dict(account_id="wd", start_date=D(2025, 1, 1), end_date=D(2026, 1, 1), mrr=100.0, plan="annual"),
            dict(account_id="wd", start_date=D(2026, 1, 1), end_date=D(2027, 1, 1), mrr=100.0, plan="annual"),
            # an add-on booked beside the annual term after the request, ending with it: no new term
            dict(account_id="addon", start_date=D(2025, 1, 1), end_date=D(2026, 1, 1), mrr=100.0, plan="annual"),
            dict(account_id="addon", start_date=D(2025, 6, 1), end_date=D(2026, 1, 1), mrr=20.0, plan="seats")]
    for m in range(1, 7):  # monthly, the last term June 2025
        subs.append(dict(account_id="mon", start_date=D(2025, m, 1), end_date=D(2025, m + 1, 1), mrr=10.0,
                         plan="monthly"))
    # an annual plan and a second, monthly product renewed beside it every month
    subs.append(dict(account_id="two", start_date=D(2025, 1, 1), end_date=D(2026, 1, 1), mrr=100.0, plan="annual"))
    for m in range(1, 13):
        subs.append(dict(account_id="two", start_date=D(2025, m, 1), end_date=D(2025 + m // 12, m % 12 + 1, 1),
                         mrr=5.0, plan="extra"))
    events = [dict(account_id=a, user_id="u", occurred_at=dt.datetime(2025, 1, 2) + dt.timedelta(days=7 * w),
                   event_type="login", quantity=1.0)
              for a in ACCOUNTS for w in range(60)]
    events += [dict(account_id="ann1", user_id="u", occurred_at=dt.datetime(2025, 5, 10, 10), event_type=ASKED,
                    quantity=1.0),
               dict(account_id="ann2", user_id="u", occurred_at=dt.datetime(2025, 3, 1, 9), event_type=ASKED,
                    quantity=1.0),
               dict(account_id="mon", user_id="u", occurred_at=dt.datetime(2025, 6, 15, 14), event_type=ASKED,
                    quantity=1.0)]
    # asked in March, took it back on 11 May, asked again on 15 June
    events += [dict(account_id="wd", user_id="u", occurred_at=at, event_type=kind, quantity=1.0)
               for at, kind in ((dt.datetime(2025, 3, 1, 9), ASKED), (dt.datetime(2025, 5, 11, 9), TAKEN_BACK),
                                (dt.datetime(2025, 6, 15, 10), ASKED))]
    events += [dict(account_id=a, user_id="u", occurred_at=dt.datetime(2025, 5, 10, 10), event_type=ASKED,
                    quantity=1.0) for a in ("addon", "two")]
    # a trial bought at 10:00 and auto-renew turned off at 13:00 the same day: the term starts at the next
    # midnight (a bound with a time of day), the request keeps its calendar day
    events += [dict(account_id="trial", user_id="u", occurred_at=dt.datetime(2025, 6, 14, 13), event_type=ASKED,
                    quantity=1.0)]
    accounts = [dict(account_id=a, signed_at=D(2025, 1, 1)) for a in ACCOUNTS]
    table = frame("subscriptions", subs)
    for c in ("start_date", "end_date"):
        table[c] = pd.to_datetime(table[c])
    trial = frame("subscriptions", [dict(account_id="trial", mrr=10.0, plan="trial")])
    trial["start_date"], trial["end_date"] = pd.Timestamp(2025, 6, 14, 10), pd.Timestamp(2025, 7, 14, 10)
    return {"accounts": accounts, "subscriptions": pd.concat([table, trial], ignore_index=True), "events": events}


def standing_rows(tmp, roles: EventRoles, engine: str = "duckdb") -> pd.DataFrame:
    folder = write_tables(tmp / "data", _tables())
    store = tmp / f"{engine}.duckdb"
    build_snapshots(folder, Settings(event_roles=roles, data_end=D(2026, 3, 1)), store, as_of=DATES, engine=engine)
    rows = read_snapshots(store)
    rows["as_of"] = pd.to_datetime(rows["as_of"]).dt.date
    return rows.set_index(["account_id", "as_of"]).sort_index()


NAMED = ROLES.model_copy(update={"cancel_request": [ASKED], "cancel_withdrawn": [TAKEN_BACK]})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return standing_rows(tmp_path_factory.mktemp("standing"), NAMED)


def test_the_request_stands_from_the_next_day_until_the_term_ends_or_renews(built):
    flag = built["cancel_request_standing"]
    assert flag.notna().all()
    expected = {
        # asked at 10:00 on 2025-05-10: not known at that day's midnight, known the day after
        ("ann1", D(2025, 5, 10)): 0, ("ann1", D(2025, 5, 11)): 1, ("ann1", D(2025, 6, 15)): 1,
        # 114 days on, beyond every event window, and on the day its term ends unrenewed (its renewal due)
        ("ann1", D(2025, 9, 1)): 1, ("ann1", D(2026, 1, 1)): 1,
        # asked in March, renewed in January after all: the request stood all year, then is void
        ("ann2", D(2025, 5, 10)): 1, ("ann2", D(2025, 9, 1)): 1, ("ann2", D(2026, 1, 1)): 0,
        ("ann2", D(2026, 2, 1)): 0,
        ("none", D(2025, 9, 1)): 0, ("none", D(2026, 2, 1)): 0,
        # a monthly customer asking in its last month: from the next day, in that month only
        ("mon", D(2025, 5, 11)): 0, ("mon", D(2025, 6, 15)): 0, ("mon", D(2025, 6, 16)): 1,
        # taken back on 11 May at 09:00 (known from the 12th), asked again on 15 June, renewed in January
        ("wd", D(2025, 5, 10)): 1, ("wd", D(2025, 5, 11)): 1, ("wd", D(2025, 6, 15)): 0, ("wd", D(2025, 6, 16)): 1,
        ("wd", D(2025, 9, 1)): 1, ("wd", D(2026, 1, 1)): 0,
        # a term starting beside the one asked about (an add-on, a second product's renewals) voids nothing
        ("addon", D(2025, 5, 11)): 1, ("addon", D(2025, 6, 15)): 1, ("addon", D(2026, 1, 1)): 1,
        ("two", D(2025, 5, 11)): 1, ("two", D(2025, 6, 15)): 1, ("two", D(2025, 9, 1)): 1,
        ("trial", D(2025, 6, 15)): 1, ("trial", D(2025, 6, 16)): 1,
    }
    got = {k: int(flag.loc[k]) for k in expected}
    assert got == expected
    assert ("ann1", D(2026, 2, 1)) not in flag.index  # gone: no longer scored
    # named as a request, the type has no windowed counts (they agreed with the flag on monthly terms and
    # took its place) and is no product activity
    assert not [c for c in built.columns if c.startswith((f"evt_{ASKED}", f"evt_{TAKEN_BACK}"))]
    day = D(2025, 5, 11)
    assert built.loc[("ann1", day), "active_days_7d"] == built.loc[("none", day), "active_days_7d"]


def test_without_the_role_the_flag_is_unknown_not_zero(tmp_path):
    rows = standing_rows(tmp_path, ROLES)
    assert rows["cancel_request_standing"].isna().all()
    assert (rows.loc[("ann1", D(2025, 5, 11)), f"evt_{ASKED}_30d"]) == 1  # the event itself still counts
    # and the windows forget it: 114 days on, nothing of ann1's request
    assert rows.loc[("ann1", D(2025, 9, 1)), f"evt_{ASKED}_90d"] == 0



@pytest.mark.parametrize("named", [False, True])
def test_features_suggests_the_role_for_a_type_that_reads_as_a_request(tmp_path, run_cli, named):
    folder = write_tables(tmp_path / "data", _tables())
    roles = NAMED if named else ROLES
    dump_settings(Settings(event_roles=roles, data_end=D(2026, 3, 1), data=str(folder)),
                  tmp_path / CONFIG_FILE_NAME)
    run = run_cli("features", "--home", str(tmp_path))
    assert run.returncode == 0, run.stderr
    said = " ".join(run.stdout.split())
    assert ("hint: event type(s) 'cancellation_scheduled' look like a customer asking to cancel ahead" in said) \
        is not named
    assert (f"hint: event type(s) '{TAKEN_BACK}' look like a customer taking a cancellation back" in said) \
        is not named


def test_a_flag_set_on_a_handful_of_training_rows_but_many_test_rows_is_said():
    """p39 (2026-12-06): only the cancellations scheduled at the export sent, the request flag was set on 3 of
    51,996 training rows; ``train`` now warns (``training.coverage.rare_flags``)."""
    from features.spec import CORE_FEATURES, Catalogue
    from training.coverage import RARE_FLAG_ROWS, rare_flags

    catalogue = Catalogue(features=CORE_FEATURES, event_types=())
    train = pd.DataFrame({"cancel_request_standing": [1] * 3 + [0] * 997, "ticket_silence": [1] * 50 + [0] * 950})
    test = pd.DataFrame({"cancel_request_standing": [1] * 45 + [0] * 455, "ticket_silence": [1] * 30 + [0] * 470})
    assert rare_flags(train, test, catalogue, {}) == [("cancel_request_standing", 3, 45)]
    assert rare_flags(train, test, catalogue, {"cancel_request_standing": "constant"}) == []
    few = test.assign(cancel_request_standing=[1] * (RARE_FLAG_ROWS - 1) + [0] * (500 - RARE_FLAG_ROWS + 1))
    assert rare_flags(train, few, catalogue, {}) == []


@pytest.mark.parametrize(("name", "role"), [
    ("cancellation_scheduled", "cancel_request"), ("Cancel Subscription Clicked", "cancel_request"),
    ("cancellation flow started", "cancel_request"), ("subscription_cancel_requested", "cancel_request"),
    ("Auto Renew Off", "cancel_request"), ("subscription_scheduled_cancellation_removed", "cancel_withdrawn"),
    ("Cancel Flow Abandoned", None), ("subscription_cancelled", None), ("Song Played", None),
    ("Cancel Download Clicked", None), ("Cancel Order Clicked", None), ("cancellation_survey_submitted", None),
    ("Cancel Membership Initiated", "cancel_request")])
def test_event_names_read_as_a_cancellation_asked_ahead_or_taken_back(name, role):
    """``features``' hint (``cancel_role_of``) on the spellings exports use; an event of the cancellation itself
    ("subscription_cancelled", the churn) is no request, and an abandoned cancel flow is none either."""
    from features.spec import cancel_role_of

    assert cancel_role_of(name) == role
