"""Monthly churn metrics on a hand-built portfolio (ARTICLE §1 definitions)."""

from __future__ import annotations

import pytest

from features.metrics import churn_metrics
from features.pipeline import open_connection, prepare
from tests.tiny import D, T, settings, write_tables


def sub(acc, start, end, mrr):
    return dict(account_id=acc, start_date=start, end_date=end, mrr=mrr)


SUBS = [
    sub("a1", D(2024, 1, 1), D(2024, 3, 1), 100.0),                                        # churns in February
    sub("a2", D(2024, 1, 1), D(2024, 2, 1), 200.0), sub("a2", D(2024, 2, 1), D(2024, 12, 1), 150.0),  # downgrade
    # late renewal + expansion
    sub("a3", D(2024, 1, 1), D(2024, 2, 10), 100.0), sub("a3", D(2024, 2, 20), D(2024, 12, 1), 120.0),
    sub("a4", D(2024, 1, 15), D(2024, 12, 1), 50.0),                                        # new in January
    sub("a5", D(2023, 6, 1), None, 300.0),                                                  # evergreen
    # renewal gap over a month end
    sub("a6", D(2024, 1, 1), D(2024, 3, 25), 80.0), sub("a6", D(2024, 4, 5), D(2024, 12, 1), 80.0),
]
EVENTS = [dict(account_id="a5", user_id="u", occurred_at=T(2024, 1, 1, 8), event_type="login"),
          dict(account_id="a5", user_id="u", occurred_at=T(2024, 12, 31, 8), event_type="login")]


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    folder = write_tables(tmp_path_factory.mktemp("m") / "d", {"subscriptions": SUBS, "events": EVENTS})
    con = open_connection()
    s = settings()
    report, _ = prepare(folder, s, con)
    df = churn_metrics(con, s, report.data_start, report.data_end)
    con.close()
    df["month"] = df["month"].dt.strftime("%Y-%m")
    return df.set_index("month")


def test_months_cover_the_data(months):
    assert list(months.index) == [f"2024-{m:02d}" for m in range(1, 13)]
    assert list(months["provisional"]) == [False] * 11 + [True]


def test_january_downgrade(months):
    jan = months.loc["2024-01"]
    assert (jan.accounts_start, jan.churned, jan.mrr_start) == (5, 0, 780.0)
    assert (jan.downgrade_mrr, jan.expansion_mrr) == (50.0, 0.0)
    assert jan.customer_churn_rate == 0
    assert jan.gross_mrr_churn_rate == pytest.approx(50 / 780)
    assert jan.net_mrr_churn_rate == pytest.approx(50 / 780)


def test_february_churn_and_expansion_after_a_late_renewal(months):
    feb = months.loc["2024-02"]
    assert (feb.accounts_start, feb.churned, feb.mrr_start) == (6, 1, 780.0)
    assert feb.customer_churn_rate == pytest.approx(1 / 6)
    assert (feb.churned_mrr, feb.downgrade_mrr, feb.expansion_mrr) == (100.0, 0.0, 20.0)
    assert feb.gross_mrr_churn_rate == pytest.approx(100 / 780)
    assert feb.net_mrr_churn_rate == pytest.approx(80 / 780)


def test_a_renewal_gap_over_month_end_is_neither_churn_nor_downgrade(months):
    mar = months.loc["2024-03"]
    assert (mar.accounts_start, mar.churned, mar.mrr_start) == (5, 0, 700.0)
    assert mar.gross_mrr_churn_rate == 0


def test_november_churns_four_of_five(months):
    nov = months.loc["2024-11"]
    assert (nov.accounts_start, nov.churned) == (5, 4)
    assert nov.churned_mrr == 150 + 120 + 50 + 80


def test_an_end_that_could_still_renew_is_neither_churn_nor_a_downgrade(tmp_path):
    """A probe's provisional month: 0 customers churned but 4.06% MRR churn in one row, its 14 pending
    ends (within the grace period of the data end) counted as downgrades to 0. Both measures now leave
    them out alike, and say how many there are."""
    subs = [sub("p1", D(2024, 1, 1), D(2024, 12, 20), 60.0),    # ends 11 days before the data end
            sub("p2", D(2024, 1, 1), None, 40.0),
            sub("p3", D(2024, 1, 1), D(2024, 12, 10), 100.0),
            sub("p3", D(2024, 12, 10), D(2025, 6, 1), 70.0)]    # renewed lower: a downgrade in December
    events = [dict(account_id="p2", user_id="u", occurred_at=T(2024, 1, 1, 8), event_type="login"),
              dict(account_id="p2", user_id="u", occurred_at=T(2024, 12, 31, 8), event_type="login")]
    con = open_connection()
    s = settings()
    report, _ = prepare(write_tables(tmp_path / "d", {"subscriptions": subs, "events": events}), s, con)
    df = churn_metrics(con, s, report.data_start, report.data_end)
    con.close()
    dec = df.set_index(df["month"].dt.strftime("%Y-%m")).loc["2024-12"]
    assert dec.provisional and (dec.accounts_start, dec.churned, dec.mrr_start) == (3, 0, 200.0)
    assert (dec.churned_mrr, dec.downgrade_mrr, dec.expansion_mrr) == (0.0, 30.0, 0.0)  # p3 only
    assert dec.gross_mrr_churn_rate == pytest.approx(30 / 200) and dec.customer_churn_rate == 0
    assert (dec.pending, dec.pending_mrr) == (1, 60.0)


def test_the_mean_monthly_churn_weighs_each_month_by_its_customers():
    """A first month with 3 customers of whom 2 left said "mean monthly churn 24.07%" on a probe's app export
    whose other months ran 12.6-24.7%: the mean is churned / active over the complete months."""
    import pandas as pd

    from features.metrics import mean_customer_churn

    frame = pd.DataFrame({"accounts_start": [3, 100, 100, 90], "churned": [2, 10, 20, 1],
                          "provisional": [False, False, False, True]})
    rate, months = mean_customer_churn(frame)
    assert months == 3 and rate == pytest.approx(32 / 203)  # not (2/3 + 0.1 + 0.2) / 3 = 32.2%
    assert mean_customer_churn(frame.assign(provisional=True)) == (None, 0)
