"""The demo generator: contract shape, determinism, churn figures and the signal it carries."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.settings import load_settings
from demo.generator import (
    DemoData,
    churn_table,
    churner_warning_share,
    generate_tables,
    monthly_churn_rates,
    write_demo_data,
)
from features.contract import TABLES

START = date(2024, 1, 1)


@pytest.fixture(scope="module")
def small() -> DemoData:
    return generate_tables(accounts=300, months=12, seed=11, start=START)


@pytest.fixture(scope="module")
def medium() -> DemoData:
    """Large enough for stable churn figures (about 1,700 accounts over a year)."""
    return generate_tables(accounts=1500, months=12, seed=3, start=START)


def _days(ts: pd.Series) -> np.ndarray:
    return ((ts - pd.Timestamp(START)) // pd.Timedelta(days=1)).to_numpy()


def _coverage(data: DemoData) -> tuple[np.ndarray, dict[str, int]]:
    """active[account, day]: some term covers the day (days since START)."""
    ids = {a: i for i, a in enumerate(data.accounts["account_id"])}
    T = (pd.Timestamp(data.settings.data_end) - pd.Timestamp(START)).days
    s = data.subscriptions
    a = s["account_id"].map(ids).to_numpy()
    lo = np.clip(_days(s["start_date"]), 0, T)
    hi = np.clip(
        np.where(s["end_date"].isna(), T, _days(s["end_date"].fillna(pd.Timestamp(START)))), 0, T
    )
    diff = np.zeros((len(ids), T + 1), np.int32)
    np.add.at(diff, (a, lo), 1)
    np.add.at(diff, (a, hi), -1)
    return diff.cumsum(axis=1)[:, :T] > 0, ids


# ------------------------------------------------------------------ contract
_KINDS = {
    "string": lambda s: pd.api.types.is_object_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype),
    "timestamp": pd.api.types.is_datetime64_dtype,
    "date": pd.api.types.is_datetime64_dtype,
    "double": pd.api.types.is_float_dtype,
    "bigint": pd.api.types.is_integer_dtype,
    "boolean": pd.api.types.is_bool_dtype,
}


def test_every_table_has_the_contract_columns_and_types(small: DemoData) -> None:
    tables = small.tables()
    assert set(tables) == set(TABLES)
    for name, table in TABLES.items():
        df = tables[name]
        assert list(df.columns) == table.column_names, name
        assert len(df) > 0, name
        for col in table.columns:
            assert _KINDS[col.type](df[col.name]), f"{name}.{col.name}: {df[col.name].dtype}"
            if col.type == "date":
                assert (df[col.name].dropna().dt.normalize() == df[col.name].dropna()).all()
            if not col.nullable:
                assert df[col.name].notna().all(), f"{name}.{col.name} has nulls"


def test_written_files_follow_the_contract(tmp_path, small: DemoData) -> None:
    summary = write_demo_data(tmp_path, accounts=300, months=12, seed=11, start=START)
    expected = {
        "string": "string",
        "timestamp": "timestamp[us]",
        "date": "date32[day]",
        "double": "double",
        "bigint": "int64",
        "boolean": "bool",
    }
    for name, table in TABLES.items():
        schema = pq.read_schema(tmp_path / f"{name}.parquet")
        assert schema.names == table.column_names
        for col in table.columns:
            assert str(schema.field(col.name).type) == expected[col.type], f"{name}.{col.name}"
        assert pq.read_metadata(tmp_path / f"{name}.parquet").num_rows == summary.rows[name]
        assert summary.rows[name] == len(small.tables()[name])  # same seed, same data
    settings = load_settings(tmp_path / "churnwatch.yaml")
    assert settings.data == str(tmp_path.resolve())
    assert settings.data_end == date(2025, 1, 1)
    assert settings.event_roles.new_feature == {
        "ai_assistant": date(2024, 6, 1),
        "mobile_app": date(2024, 12, 1),
    }
    assert summary.churned_accounts > 0 and 0.005 < summary.monthly_churn_rate < 0.04
    events = pq.read_table(tmp_path / "events.parquet", columns=["account_id", "user_id"])
    assert events.column("account_id").null_count == 0
    assert str(events.column("user_id")[0].as_py()).startswith("ACC-")


def test_same_seed_same_data_other_seed_other_data(small: DemoData) -> None:
    again = generate_tables(accounts=300, months=12, seed=11, start=START)
    for name in TABLES:
        pd.testing.assert_frame_equal(small.tables()[name], again.tables()[name], obj=name)
    assert again.settings == small.settings
    other = generate_tables(accounts=300, months=12, seed=12, start=START)
    assert len(other.events) != len(small.events)


def test_profiles(medium: DemoData) -> None:
    a = medium.accounts
    assert a["account_id"].is_unique
    assert 6 <= a["industry"].nunique() <= 8
    assert a["region"].nunique() == 4 and a["channel"].nunique() == 4
    assert 10 <= a["csm"].nunique() <= 14
    assert set(a["segment"]) == {"A", "B", "C"}
    assert a["employees"].median() < a["employees"].mean()  # skewed
    # segment follows size: A accounts are larger than C accounts
    emp = a.groupby("segment")["employees"].median()
    assert emp["A"] > emp["B"] > emp["C"]
    # initial portfolio signed up to 3 years before start, new signups every month
    signed = a["signed_at"]
    assert signed.min() >= pd.Timestamp(START) - pd.Timedelta(days=1096)
    new = signed[signed > pd.Timestamp(START)]
    assert new.dt.to_period("M").nunique() == 12


# ------------------------------------------------------------------ consistency
def test_subscription_terms_are_consistent(medium: DemoData) -> None:
    s = medium.subscriptions
    closed = s.dropna(subset=["end_date"])
    assert (closed["end_date"] > closed["start_date"]).all()
    assert s["end_date"].isna().sum() >= 1  # some evergreen plans
    assert (s["mrr"] > 0).all() and (s["seats"] >= 1).all()
    # terms of one account never overlap
    prev_end = s.groupby("account_id")["end_date"].shift()
    assert (s["start_date"][prev_end.notna()] >= prev_end.dropna()).all()
    # monthly and annual terms, up- and downgrades at term boundaries
    length = (closed["end_date"] - closed["start_date"]).dt.days
    assert length.between(28, 31).mean() > 0.5 and length.between(365, 366).sum() > 50
    step = s.groupby("account_id")["seats"].diff().dropna()
    assert (step > 0).sum() > 20 and (step < 0).sum() > 20
    # reactivations: a new relationship after a gap longer than the grace period
    gap = (s["start_date"] - prev_end).dt.days
    assert (gap > medium.settings.grace_days).sum() > 0
    assert not gap.between(1, medium.settings.grace_days).any()


def test_rows_belong_to_existing_accounts_inside_active_terms(medium: DemoData) -> None:
    active, ids = _coverage(medium)
    ev = medium.events
    assert set(ev["account_id"].cat.categories) == set(ids)
    assert (ev["account_id"].cat.codes >= 0).all()
    for name, df, col in (
        ("events", ev, "occurred_at"),
        ("tickets", medium.tickets, "opened_at"),
        ("interventions", medium.interventions, "occurred_at"),
    ):
        a = df["account_id"].astype(str).map(ids)
        assert a.notna().all(), name
        day = _days(df[col])
        assert day.min() >= 0 and day.max() < active.shape[1], name
        assert active[a.to_numpy(int), day].all(), f"{name} outside an active term"
    inv = medium.invoices
    inside = inv["issued_at"] >= pd.Timestamp(START)
    a = inv.loc[inside, "account_id"].map(ids).to_numpy(int)
    assert active[a, _days(inv.loc[inside, "issued_at"])].all()
    for name in ("subscriptions", "invoices", "churn_feedback"):
        assert medium.tables()[name]["account_id"].isin(ids).all(), name


def test_new_features_only_after_release(medium: DemoData) -> None:
    ev = medium.events
    for name, released in medium.settings.event_roles.new_feature.items():
        at = ev.loc[ev["event_type"] == name, "occurred_at"]
        assert len(at) > 1000
        assert at.min() >= pd.Timestamp(released)
    all_types = set(ev["event_type"].unique())
    roles = medium.settings.event_roles
    for role in (
        roles.login,
        roles.core_feature,
        roles.training,
        roles.marketing_sent,
        roles.marketing_open,
        roles.contact_left,
    ):
        assert set(role) <= all_types


def test_tickets_invoices_feedback_interventions(medium: DemoData) -> None:
    t = medium.tickets
    assert set(t["priority"]) == {"low", "normal", "high", "urgent"}
    done = t.dropna(subset=["resolved_at"])
    assert (done["resolved_at"] > done["opened_at"]).all()
    csat = t["csat"].dropna()
    assert csat.between(1, 5).all() and 0.2 < t["csat"].isna().mean() < 0.6
    inv = medium.invoices
    net = (inv["due_at"] - inv["issued_at"]).dt.days
    assert net.between(14, 30).all()
    paid = inv.dropna(subset=["paid_at"])
    assert (paid["paid_at"] >= paid["issued_at"]).all()
    late = (paid["paid_at"] > paid["due_at"]).mean()
    assert 0.02 < late < 0.25
    fb = medium.churn_feedback
    assert set(fb["reason_category"]) <= {
        "product",
        "price",
        "service",
        "competitor",
        "business_change",
        "other",
    }
    assert not fb.loc[fb["reason_category"] == "business_change", "avoidable"].any()
    assert fb["avoidable"].mean() > 0.3
    churns = churn_table(medium)
    merged = fb.merge(churns, on=["account_id", "churned_at"], how="left", indicator=True)
    assert (merged["_merge"] == "both").all()  # every interview matches a churn
    assert 0.8 < len(fb) / len(churns) <= 1.0
    iv = medium.interventions
    assert set(iv["tier"]) <= {"low_risk", "medium_risk", "high_risk"} and len(iv) > 50


# ------------------------------------------------------------------ churn and signal
def test_monthly_churn_rate_in_stated_range(medium: DemoData) -> None:
    rates = monthly_churn_rates(medium)
    assert len(rates) == 11  # the last month is within the grace period of the data end
    assert 0.010 <= rates.mean() <= 0.025
    assert rates.max() < 0.05


def test_a_fifth_of_churners_show_no_warning(medium: DemoData) -> None:
    share = churner_warning_share(medium)
    assert 0.40 <= share <= 0.80  # real signal, but at least 20% come without warning


def test_indicators_differ_between_churners_and_others(medium: DemoData) -> None:
    active, ids = _coverage(medium)
    n, T = active.shape
    ev = medium.events[medium.events["event_type"] == "login"]
    a = ev["account_id"].cat.codes.to_numpy().astype(np.int64)
    cum = np.zeros((n, T + 1))
    cum[:, 1:] = (
        np.bincount(a * T + _days(ev["occurred_at"]), minlength=n * T).reshape(n, T).cumsum(1)
    )
    seats = medium.subscriptions.groupby("account_id")["seats"].median()
    seat = medium.accounts["account_id"].map(seats).to_numpy()
    churns = churn_table(medium)
    churns = churns[_days(churns["churned_at"]) >= 90]
    churned_ids = set(churn_table(medium)["account_id"])
    never = np.array([x not in churned_ids for x in medium.accounts["account_id"]])
    ratios = []
    for acct, c in zip(churns["account_id"].map(ids), _days(churns["churned_at"]), strict=True):
        mine = (cum[acct, c] - cum[acct, c - 60]) / seat[acct]
        peers = never & active[:, c - 60] & active[:, c - 1]
        theirs = ((cum[peers, c] - cum[peers, c - 60]) / seat[peers]).mean()
        ratios.append(mine / theirs)
    assert len(ratios) > 100
    assert np.mean(ratios) < 0.8  # churners log in less per seat in their last 60 days
    assert np.mean(np.array(ratios) > 1) > 0.05  # ... but not all: not trivially separable
    # late or unpaid invoices before churn are more common than in the portfolio
    inv = medium.invoices.merge(churns, on="account_id", how="left")
    before = (inv["due_at"] < inv["churned_at"]) & (
        inv["due_at"] >= inv["churned_at"] - pd.Timedelta(days=90)
    )
    bad = inv["paid_at"].isna() | (inv["paid_at"] > inv["due_at"])
    others = ~medium.invoices["account_id"].isin(churned_ids) & (
        medium.invoices["due_at"] < pd.Timestamp("2024-12-01")
    )
    late_others = (
        medium.invoices["paid_at"].isna() | (medium.invoices["paid_at"] > medium.invoices["due_at"])
    )[others].mean()
    assert bad[before].mean() > 2 * late_others


def test_drift_lowers_logins_and_adds_a_region() -> None:
    drift = date(2024, 7, 1)
    base = generate_tables(accounts=300, months=12, seed=5, start=START)
    moved = generate_tables(accounts=300, months=12, seed=5, start=START, drift_from=drift)
    pd.testing.assert_frame_equal(base.subscriptions, moved.subscriptions)  # same portfolio
    latam = moved.accounts[moved.accounts["region"] == "LATAM"]
    assert len(latam) > 0 and (latam["signed_at"] >= pd.Timestamp(drift)).all()
    assert "LATAM" not in set(base.accounts["region"])

    def logins(d: DemoData, after: bool) -> int:
        ev = d.events
        at = ev["occurred_at"] >= pd.Timestamp(drift)
        return int(((ev["event_type"] == "login") & (at if after else ~at)).sum())

    assert logins(moved, False) == pytest.approx(logins(base, False), rel=0.01)
    assert logins(moved, True) / logins(base, True) == pytest.approx(0.75, abs=0.02)


# ------------------------------------------------------------------ size and speed
# The default size (its events and churn rate): tests/features/test_demo_auc.py, which builds and
# trains on that same data. How long generating takes is a benchmark figure (benchmarks/features.py).


@pytest.mark.slow
def test_benchmark_size_has_twenty_million_events() -> None:
    data = generate_tables(accounts=10_000, months=12)
    assert len(data.events) >= 20_000_000
