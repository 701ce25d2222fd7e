"""Long terms whose renewal no label saw (a probe's 12-month app export, monthly and annual plans:
every annual term started within the data and ended after it, all 7,343 labelled annual rows were 0,
and `train` said nothing): `train` warns, the bundle and MLflow keep it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.training.books import train_two_feature_book
from training.renewals import LONG_TERM_DAYS, term_lengths, unseen_renewals, unseen_renewals_text


def _rows(accounts: dict[str, list[tuple[str, float]]]) -> pd.DataFrame:
    return pd.DataFrame([{"account_id": a, "as_of": pd.Timestamp(d), "days_to_term_end": e}
                         for a, rs in accounts.items() for d, e in rs])


def test_term_length_from_the_previous_end_or_the_renewal_or_the_first_date_that_shows_it():
    rows = _rows({
        "monthly": [("2026-01-05", 10.0), ("2026-01-12", 3.0), ("2026-01-19", 27.0), ("2026-01-26", 20.0)],
        "annual": [("2026-01-05", 361.0), ("2026-01-12", 354.0)],
        "open": [("2026-01-05", None)],
        "lapsed": [("2026-01-05", 10.0), ("2026-01-12", 3.0)],
    })
    got = term_lengths(rows).set_index(["account_id", "as_of"])["term_days"]
    assert "open" not in got.index.get_level_values(0)  # open-ended: no term end
    # the renewed monthly term: from the previous end (2026-01-15) to 2026-02-15
    assert got.loc[("monthly", pd.Timestamp("2026-01-19"))] == 31
    # started before the rows: as long as the term renewing it; without one, a lower bound
    assert got.loc[("monthly", pd.Timestamp("2026-01-05"))] == 31
    assert got.loc[("lapsed", pd.Timestamp("2026-01-12"))] == 10
    assert got.loc[("annual", pd.Timestamp("2026-01-12"))] == 361


def _book(dates: pd.DatetimeIndex, monthly: int, annual: int, annual_phase: int = 0) -> pd.DataFrame:
    """Monthly accounts renewing every 30 days; annual ones whose terms end ``annual_phase`` +
    300.. days after the first date (0: after the data; negative: inside it)."""
    frames = []
    for i, day in enumerate(dates):
        m = np.arange(monthly)
        frames.append(pd.DataFrame({"account_id": [f"m{k}" for k in m], "as_of": day,
                                    "days_to_term_end": (30 - (m + 7 * i) % 30).astype(float)}))
        a = np.arange(annual)
        ends = dates[0] + pd.to_timedelta(300 + annual_phase + a, unit="D")
        left = (ends - day).days.to_numpy().astype(float)
        left = np.where(left <= 0, left + 365, left)  # renewed for another year
        frames.append(pd.DataFrame({"account_id": [f"a{k}" for k in a], "as_of": day, "days_to_term_end": left}))
    return pd.concat(frames, ignore_index=True)


def test_annual_terms_that_end_after_the_labels_are_named_with_count_share_length_and_dates():
    dates = pd.date_range("2026-02-02", periods=26, freq="W-MON")
    rows = _book(dates, monthly=150, annual=50)
    got = unseen_renewals(rows[rows["as_of"] < dates[18]], rows, horizon_days=60)
    assert got is not None
    assert (got["accounts"], got["training_accounts"], got["share"]) == (50, 200, 0.25)
    assert 300 <= got["term_days"] <= 365 and got["term_days"] >= LONG_TERM_DAYS
    assert (got["training_from"], got["training_to"]) == ("2026-02-02", dates[17].date().isoformat())
    assert got["seen_long_term_ends"] == 0 and got["later_long_term_ends"] == 0  # no test rows given
    text = unseen_renewals_text(got)
    assert text.startswith("warning: 50 of 200 training accounts (25.0%) are on long terms (typically ")
    reach = (dates[17] + pd.Timedelta(days=60)).date().isoformat()
    assert f"within the training dates 2026-02-02 to {dates[17].date()} and their 60-day horizon (to {reach})" in text
    assert "the model never saw such a term renew or lapse" in text
    assert text.endswith("judge it on them only after a renewal season is in the training dates")


def test_renewals_seen_only_in_the_test_block_do_not_count_and_are_counted_apart():
    """A probe's 18-month Chargebee export: the first annual renewals fell after the training dates;
    the check read every labelled row and said nothing while the model under-predicted them 2x."""
    dates = pd.date_range("2026-02-02", periods=26, freq="W-MON")
    rows = _book(dates, monthly=150, annual=50, annual_phase=-170)  # annual ends 130-179 days after the first date
    train, test = rows[rows["as_of"] < dates[9]], rows[rows["as_of"] >= dates[18]]
    assert unseen_renewals(rows, rows, horizon_days=60) is None  # with every row as training rows: seen
    got = unseen_renewals(train, rows, horizon_days=60, test=test)
    assert got is not None and got["accounts"] == 50 and got["seen_long_term_ends"] == 0
    ending = test[(test["account_id"].str.startswith("a")) & test["days_to_term_end"].between(1, 60)]
    assert got["later_long_term_ends"] == len(ending) > 0
    assert unseen_renewals_text(got).endswith(
        f"; {len(ending):,} test rows have such a term ending within the horizon, so the test block's calibration "
        "measures that extrapolation")


def test_no_warning_once_a_renewal_season_is_labelled_or_long_terms_are_few():
    dates = pd.date_range("2026-02-02", periods=26, freq="W-MON")
    seen = _book(dates, monthly=150, annual=50, annual_phase=-250)  # annual ends fall in the labelled dates
    assert unseen_renewals(seen, seen, horizon_days=60) is None
    few = _book(dates, monthly=200, annual=8)  # 3.8% of the accounts: below the share that warns
    assert unseen_renewals(few, few, horizon_days=60) is None
    monthly = _book(dates, monthly=100, annual=0)
    assert unseen_renewals(monthly, monthly, horizon_days=60) is None


@pytest.fixture(scope="module")
def app_year(tmp_path_factory):
    """A 12-month app export: monthly plans that churn at renewal when use falls, annual plans
    started within the data (every labelled annual row 0)."""
    rng = np.random.default_rng(5)
    dates = pd.date_range("2025-11-03", periods=30, freq="W-MON")
    rows = _book(dates, monthly=300, annual=100)
    use = rng.normal(0, 1, len(rows))
    monthly = rows["account_id"].str.startswith("m").to_numpy()
    churn = monthly & (rows["days_to_term_end"].to_numpy() <= 30) & (rng.random(len(rows)) < 1 / (1 + np.exp(2 + use)))
    rows = rows.assign(logins_30d=np.exp(use + 2), churn_label=churn.astype(int), labelled=True)
    return train_two_feature_book(rows, "2025-08-01", "2026-07-31", tmp_path_factory.mktemp("app_year"))


def test_train_warns_and_keeps_it_in_the_bundle_and_the_mlflow_params(app_year):
    from training.train import params_of

    result, said = app_year
    warned = [m for m in said if m.startswith("warning: ") and "long terms" in m]
    assert len(warned) == 1
    record = result.bundle.meta["training"]["unseen_renewals"]
    assert warned[0] == unseen_renewals_text(record)
    assert record["accounts"] == 100 and record["seen_long_term_ends"] == 0
    assert record["training_accounts"] == 400 and record["share"] == 0.25
    trained = pd.to_datetime(result.bundle.meta["split"]["train"][1]).date()  # the training block's end
    assert dt.date.fromisoformat(record["training_to"]) <= trained < dt.date(2026, 5, 25)
    param = params_of(result)["unseen_renewals"]
    assert param.startswith("100 of 400 training accounts (25.0%) on ~") and "never seen to renew or lapse" in param
