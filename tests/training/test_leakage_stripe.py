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
