"""A cancellation scheduled ahead (Stripe's ``cancel_at_period_end`` with ``canceled_at`` the request,
Chargebee's ``non_renewing``) is known from the request on: sent as an event dated at the request
(docs/exports-with-cancellation-dates.md), it is point-in-time correct, passes the leakage guard and
raises those customers' risk, where the end date, known only once the term ends, must not be fed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.store import read_snapshots
from demo.consumer import generate_consumer
from features.pipeline import build_snapshots
from tests.tiny import write_tables
from training.train import train_on_snapshots


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scheduled")
    data = generate_consumer(accounts=1200, seed=3)
    subs = data.subscriptions
    end = pd.Timestamp(data.settings.data_end)
    last = subs.groupby("account_id")["end_date"].max()
    gone = last[pd.to_datetime(last) < end - pd.Timedelta(days=40)]  # their last term ended, no renewal
    rng = np.random.default_rng(5)
    asked = gone.sample(frac=0.8, random_state=5)  # most cancel in the app ahead of their term's end
    request = pd.to_datetime(asked) - pd.to_timedelta(rng.integers(3, 25, asked.size), unit="D")
    extra = pd.DataFrame({"account_id": asked.index, "occurred_at": request.to_numpy(),
                          "event_type": "cancellation_scheduled", "user_id": None, "quantity": 1.0})
    events = pd.concat([data.events, extra], ignore_index=True)
    folder = write_tables(tmp / "data", {"accounts": data.accounts, "subscriptions": subs, "events": events})
    store = tmp / "store.duckdb"
    settings = data.settings.model_copy(update={"event_roles": data.settings.event_roles.model_copy(
        update={"cancel_request": ["cancellation_scheduled"]})})
    build_snapshots(folder, settings, store)
    result = train_on_snapshots(store, tmp / "out")
    return read_snapshots(store), extra, result


def test_the_request_is_known_only_from_its_day_on(scheduled):
    rows, extra, _result = scheduled
    first = extra.set_index("account_id")["occurred_at"]
    seen = rows[rows["account_id"].isin(first.index)].copy()
    seen["request"] = seen["account_id"].map(first)
    before = seen[pd.to_datetime(seen["as_of"]) <= seen["request"]]
    after = seen[(pd.to_datetime(seen["as_of"]) > seen["request"] + pd.Timedelta(days=1))
                 & (pd.to_datetime(seen["as_of"]) <= seen["request"] + pd.Timedelta(days=29))]
    # named as a cancel_request, the request stands from the next day until the term's end
    assert len(before) and (before["cancel_request_standing"] == 0).all()
    assert len(after) and (after["cancel_request_standing"] == 1).all()
    assert (rows.loc[~rows["account_id"].isin(first.index), "cancel_request_standing"] == 0).all()


def test_it_passes_the_leakage_guard_and_raises_the_risk_of_those_customers(scheduled):
    rows, _extra, result = scheduled
    assert not result.leakage.get("allowed")  # trained without --allow-leaky-feature, nothing refused
    assert "cancel_request_standing" in result.bundle.frame.names
    preds = result.bundle.test_predictions[["account_id", "as_of", "churn_probability", "churn_label"]].copy()
    preds["as_of"] = pd.to_datetime(preds["as_of"])
    keyed = rows.assign(as_of=pd.to_datetime(rows["as_of"]))[["account_id", "as_of", "cancel_request_standing"]]
    test = preds.merge(keyed, on=["account_id", "as_of"], how="left", validate="one_to_one")
    asked = test["cancel_request_standing"] == 1
    assert asked.sum() >= 8 and test.loc[asked, "churn_label"].mean() > 0.5  # they do leave
    assert test.loc[asked, "churn_probability"].mean() > 3 * test.loc[~asked, "churn_probability"].mean()
