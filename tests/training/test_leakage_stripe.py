"""A Stripe-shaped export (one row per subscription, an end date only once the customer has
left) is refused by ``churnwatch train`` with the feature named (issue 12, item 4)."""

from __future__ import annotations

import pandas as pd

from demo.generator import write_demo_data


def stripe_shaped(folder):
    """The demo's billing periods collapsed to one row per subscription: ``end_date`` only for
    the accounts whose service ended before the export (what canceled_at -> end_date gives)."""
    subs = pd.read_parquet(folder / "subscriptions.parquet")
    export_end = pd.to_datetime(pd.read_parquet(folder / "events.parquet")["occurred_at"]).max()
    subs["start_date"] = pd.to_datetime(subs["start_date"])
    subs["end"] = pd.to_datetime(subs["end_date"]).fillna(pd.Timestamp("2100-01-01"))
    one = subs.sort_values("start_date").groupby("account_id").agg(
        start_date=("start_date", "min"), last_end=("end", "max"), mrr=("mrr", "last"), plan=("plan", "last"),
        seats=("seats", "last")).reset_index()
    one["end_date"] = one["last_end"].where(one["last_end"] < export_end).dt.date
    one["start_date"] = one["start_date"].dt.date
    one.drop(columns="last_end").to_parquet(folder / "subscriptions.parquet", index=False)
    return int(one["end_date"].notna().sum())


def test_stripe_shaped_end_date_is_refused_with_the_feature_named(tmp_path, cli):
    data = tmp_path / "stripe"
    write_demo_data(data, accounts=200, months=24, seed=11)
    assert stripe_shaped(data) >= 20
    home = tmp_path / "home"
    built = cli(home, "features", "--data", str(data))
    assert built.returncode == 0, built.stderr
    refused = cli(home, "train")
    assert refused.returncode == 2
    message = " ".join(refused.stderr.split())
    assert "label leakage suspected, nothing registered: feature 'days_to_term_end'" in message
    assert "canceled_at mapped to end_date" in message
    assert "--allow-leaky-feature days_to_term_end" in message
    assert "registered model version" not in refused.stdout


def test_chargebee_shaped_end_dates_with_seat_changes_are_refused_at_the_data_end(tmp_path, cli):
    """Chargebee's Cancelled At as end_date, and seat changes that close a row and open the next for half
    the customers who stay: the end date is no longer the churners' alone (the single-feature checks
    pass), but no subscription still running at the export has one."""
    import numpy as np

    data = tmp_path / "chargebee"
    write_demo_data(data, accounts=200, months=24, seed=11)
    stripe_shaped(data)
    subs = pd.read_parquet(data / "subscriptions.parquet")
    export_end = pd.to_datetime(pd.read_parquet(data / "events.parquet")["occurred_at"]).max().normalize()
    rng = np.random.default_rng(4)
    stays = subs[subs["end_date"].isna()].sample(frac=0.5, random_state=4)
    starts = pd.to_datetime(stays["start_date"])
    changed = (starts + pd.to_timedelta(rng.uniform(0.1, 0.9, len(stays)) * (export_end - starts).dt.days, "D"))
    first = stays.assign(end_date=changed.dt.date)
    then = stays.assign(start_date=changed.dt.date, seats=stays["seats"] + 1)
    pd.concat([subs.drop(stays.index), first, then]).to_parquet(data / "subscriptions.parquet", index=False)
    home = tmp_path / "home"
    assert cli(home, "features", "--data", str(data)).returncode == 0
    refused = cli(home, "train")
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 2, refused.stdout[-2000:]
    assert "label leakage suspected, nothing registered: feature 'days_to_term_end'" in message
    assert "accounts at the data end" in message and "no end date" in message, message[-900:]
