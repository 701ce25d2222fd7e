"""The foreign-shaped generators: deterministic, shaped as the acceptance exports are, and
independent of the demo's hidden model (different mechanism, tables and event names)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from core.settings import load_settings
from demo.consumer import EVENT_TYPES, generate_consumer, monthly_churn_rates, write_consumer_data
from demo.flat import generate_flat
from demo.stripe import MAPPINGS, write_stripe_export


def _demo_event_types() -> tuple[str, ...]:
    try:  # the demo generator is moving to demo/generator.py
        from demo.generator import EVENT_TYPES as demo_events
    except ImportError:
        from features.demo import EVENT_TYPES as demo_events
    return tuple(demo_events)


@pytest.fixture(scope="module")
def consumer():
    return generate_consumer(accounts=1500, seed=4)


def _churned(data) -> pd.Series:
    end = data.subscriptions.groupby("account_id")["end_date"].max()
    return end < pd.Timestamp(data.settings.data_end)


def test_consumer_is_deterministic_for_a_seed():
    a, b, c = (generate_consumer(accounts=150, seed=s) for s in (1, 1, 2))
    for name in ("accounts", "subscriptions", "events"):
        pd.testing.assert_frame_equal(a.tables()[name], b.tables()[name])
    assert not a.subscriptions.equals(c.subscriptions)


def test_consumer_has_three_tables_and_its_own_columns_and_events(consumer):
    assert set(consumer.tables()) == {"accounts", "subscriptions", "events"}
    assert {"date_of_birth", "acquisition_source", "household_size", "referral_note"} <= set(consumer.accounts)
    assert consumer.accounts["referral_note"].nunique() > 50  # free text, not a category
    assert set(consumer.events["event_type"].astype(str).unique()) == set(EVENT_TYPES)
    assert not set(EVENT_TYPES) & set(_demo_event_types())
    assert consumer.settings.event_roles.login == ["app_open"]
    assert consumer.events["occurred_at"].min() >= pd.Timestamp("2025-01-01")
    assert consumer.events["occurred_at"].max() < pd.Timestamp(consumer.settings.data_end)


def test_consumer_plans_are_monthly_terms_without_gaps(consumer):
    s = consumer.subscriptions.sort_values(["account_id", "start_date"])
    length = (s["end_date"] - s["start_date"]).dt.days
    assert length.between(1, 31).all() and (length >= 28).mean() > 0.98
    nxt = s.groupby("account_id")["start_date"].shift(-1)
    assert (nxt.dropna() == s.loc[nxt.notna(), "end_date"]).all()


def test_consumer_churns_two_to_three_percent_a_month_and_the_young_churn_more(consumer):
    rates = monthly_churn_rates(consumer)
    assert len(rates) == 12 and 0.015 <= rates.mean() <= 0.035
    acc = consumer.accounts.set_index("account_id")
    age = (pd.Timestamp("2025-07-01") - pd.to_datetime(acc["date_of_birth"])).dt.days / 365.25
    churned = _churned(consumer).reindex(acc.index)
    assert churned[age < 30].mean() > 1.5 * churned[age >= 50].mean()
    by_size = churned.groupby(acc["household_size"] >= 3).mean()
    assert by_size[False] > by_size[True]


def test_flat_table_is_telco_shaped_with_a_high_base_rate():
    df = generate_flat()
    assert len(df) == 7000 and df["customer_id"].is_unique
    features = df.drop(columns=["customer_id", "Churn"])
    assert 19 <= features.shape[1] <= 24
    numeric = features.apply(pd.api.types.is_numeric_dtype)
    assert (~numeric).sum() >= 10 and numeric.sum() >= 4
    assert pd.to_datetime(df["signup_date"]).notna().all()
    assert 0.22 <= (df["Churn"] == "Yes").mean() <= 0.30
    pd.testing.assert_frame_equal(df, generate_flat())


def test_flat_leaky_column_is_present_almost_only_for_churners():
    df = generate_flat(rows=3000, leaky=True)
    present = df["exit_survey_score"].notna().groupby(df["Churn"]).mean()
    assert present["Yes"] > 0.8 and present["No"] < 0.03


def test_stripe_export_and_its_two_mappings(tmp_path):
    folders = write_stripe_export(tmp_path, accounts=150, seed=2)
    subs = pd.read_csv(folders["export"] / "subscriptions.csv")
    canceled = subs["status"] == "canceled"
    assert canceled.any() and (~canceled).any()
    assert subs["canceled_at"].notna().eq(canceled).all() and subs["cancel_at_period_end"].eq(canceled).all()
    for mapping in ("naive", "correct"):
        settings = load_settings(folders[mapping] / "churnwatch.yaml")
        assert settings.column_mapping["subscriptions"] == MAPPINGS[mapping]["subscriptions"][1]
        assert {p.name for p in folders[mapping].glob("*.csv")} == {
            "accounts.csv", "subscriptions.csv", "events.csv"}
    assert MAPPINGS["naive"]["subscriptions"][1]["canceled_at"] == "end_date"
    inv = pd.read_csv(folders["correct"] / "subscriptions.csv", parse_dates=["period_start", "period_end"])
    inv = inv.sort_values(["customer", "period_start"])
    nxt = inv.groupby("customer")["period_start"].shift(-1)
    assert (nxt.dropna() == inv.loc[nxt.notna(), "period_end"]).all()


def test_cli_writes_each_kind_and_refuses_an_unknown_one(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "churnwatch", "demo-data", *args],
                              capture_output=True, text=True, timeout=300)

    r = run("--kind", "consumer", "--out", str(tmp_path / "c"), "--accounts", "100")
    assert r.returncode == 0, r.stderr[-1500:]
    assert {p.name for p in (tmp_path / "c").iterdir()} == {
        "accounts.parquet", "subscriptions.parquet", "events.parquet", "churnwatch.yaml"}
    acc = pd.read_parquet(tmp_path / "c" / "accounts.parquet")
    assert pd.api.types.is_datetime64_any_dtype(acc["date_of_birth"]) or acc["date_of_birth"].notna().all()
    r = run("--kind", "flat", "--out", str(tmp_path / "f"), "--accounts", "500")
    assert r.returncode == 0 and len(pd.read_csv(tmp_path / "f" / "churn_table.csv")) == 500
    r = run("--kind", "nope", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_consumer_generator_is_fast_at_acceptance_size(tmp_path):
    t0 = time.perf_counter()
    summary = write_consumer_data(tmp_path, accounts=4000)
    assert time.perf_counter() - t0 < 60
    assert 0.02 <= summary.monthly_churn_rate <= 0.03
    assert np.isclose(summary.accounts, 4000, rtol=0.35)
