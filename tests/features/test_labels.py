"""Labels on hand-built cases (DESIGN §2): horizon 60 days, grace 30 days."""

from __future__ import annotations

import pandas as pd
import pytest

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, T, settings, write_tables

T0 = D(2024, 3, 1)  # as-of date; t + H = 2024-04-30


def _sub(acc, start, end, mrr=100.0):
    return dict(account_id=acc, start_date=start, end_date=end, mrr=mrr, plan="pro", seats=5)


@pytest.fixture(scope="module")
def snaps(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labels")
    subs = [
        # renewal inside the grace period (gap 17 days): one relationship, ends 2024-12-01
        _sub("renew_in_grace", D(2024, 1, 1), D(2024, 3, 15)), _sub("renew_in_grace", D(2024, 4, 1), D(2024, 12, 1)),
        # same, but the gap is 36 days: the first relationship churns on 2024-03-15
        _sub("renew_too_late", D(2024, 1, 1), D(2024, 3, 15)), _sub("renew_too_late", D(2024, 4, 20), D(2024, 12, 1)),
        # churn on the last day of the horizon, and on the day after
        _sub("churn_on_h", D(2024, 1, 1), D(2024, 4, 30)),
        _sub("churn_after_h", D(2024, 1, 1), D(2024, 5, 1)),
        # churned before t: no snapshot at t
        _sub("gone", D(2023, 6, 1), D(2024, 2, 1)),
        # paid through 2024-06-01: not churn at t (92 days away), churn at 2024-04-15 (47 days away)
        _sub("paid_through", D(2024, 1, 1), D(2024, 6, 1)),
        # open-ended: never churns
        _sub("evergreen", D(2023, 1, 1), None),
    ]
    events = [dict(account_id="evergreen", user_id="u", occurred_at=T(2024, 12, 31, 9), event_type="login")]
    write_tables(tmp / "data", {"subscriptions": subs, "events": events})
    s = settings(data_end=D(2025, 1, 1))
    build_snapshots(tmp / "data", s, tmp / "store.duckdb",
                    as_of=[T0, D(2024, 4, 15), D(2024, 11, 15), D(2024, 11, 3)])
    df = read_snapshots(tmp / "store.duckdb")
    df["as_of"] = df["as_of"].dt.date
    return df.set_index(["account_id", "as_of"])


def label(df, acc, t):
    return df.loc[(acc, t), "churn_label"]


def test_renewal_inside_grace_is_not_churn(snaps):
    assert label(snaps, "renew_in_grace", T0) == 0
    assert label(snaps, "renew_too_late", T0) == 1


def test_churn_on_last_day_of_horizon_is_1_and_day_after_is_0(snaps):
    assert label(snaps, "churn_on_h", T0) == 1
    assert label(snaps, "churn_after_h", T0) == 0


def test_past_data_end_is_unlabelled(snaps):
    # 2024-11-15 + 60 + 30 = 2025-02-13 > data end 2025-01-01
    row = snaps.loc[("evergreen", D(2024, 11, 15))]
    assert bool(row["labelled"]) is False
    assert pd.isna(row["churn_label"])
    # 2024-11-03 + 90 = 2025-02-01: still past the end; 2024-04-15 is labelled
    assert bool(snaps.loc[("evergreen", D(2024, 4, 15)), "labelled"]) is True


def test_already_churned_account_gets_no_snapshot(snaps):
    accounts_at_t = {a for a, t in snaps.index if t == T0}
    assert "gone" not in accounts_at_t
    assert accounts_at_t == {"renew_in_grace", "renew_too_late", "churn_on_h", "churn_after_h",
                             "paid_through", "evergreen"}


def test_paid_through_end_date_after_t_is_not_churn_at_t(snaps):
    assert label(snaps, "paid_through", T0) == 0
    assert label(snaps, "paid_through", D(2024, 4, 15)) == 1
    assert snaps.loc[("paid_through", T0), "days_to_term_end"] == (D(2024, 6, 1) - T0).days


def test_in_gap_account_is_not_active_and_reactivation_counts_as_new(snaps):
    # renew_too_late is in its gap on 2024-04-15 (term ended 03-15, next starts 04-20)
    assert ("renew_too_late", D(2024, 4, 15)) not in snaps.index
    # back on 2024-11-03 as a new relationship: tenure counts from 2024-04-20
    assert snaps.loc[("renew_too_late", D(2024, 11, 3)), "tenure_days"] == (D(2024, 11, 3) - D(2024, 4, 20)).days
    # renew_in_grace keeps its tenure from 2024-01-01
    assert snaps.loc[("renew_in_grace", D(2024, 11, 3)), "tenure_days"] == (D(2024, 11, 3) - D(2024, 1, 1)).days
