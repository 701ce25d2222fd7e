"""A billing export gives amounts in cents (Stripe: a plan's ``amount`` 2900 is 29.00 a month).
Read as they were, every MRR figure (features, MRR at risk, churn metrics) was 100 times too large
with no word. ``column_units`` in churnwatch.yaml says the unit of a money column; a money column
that looks like cents and has no unit gets a warning."""

from __future__ import annotations

import duckdb
import pydantic
import pytest

from core.errors import ConfigError
from core.settings import Settings
from features.pipeline import build_snapshots
from tests.tiny import D, write_tables

AS_OF = D(2024, 6, 1)


def _data(folder, prices=(2900, 4900, 9900, 2900)):
    ids = [f"A{i}" for i in range(len(prices))]
    subs = [{"account_id": a, "start_date": D(2024, 1, 1), "end_date": None, "mrr": p} for a, p in zip(ids, prices)]
    events = [{"account_id": a, "occurred_at": "2024-05-20 10:00", "event_type": "login"} for a in ids]
    invoices = [{"account_id": a, "issued_at": D(2024, 5, 1), "due_at": D(2024, 5, 15), "paid_at": D(2024, 5, 10),
                 "amount": p} for a, p in zip(ids, prices)]
    return write_tables(folder, {"accounts": [{"account_id": a} for a in ids], "subscriptions": subs,
                                 "events": events, "invoices": invoices})


def _build(tmp_path, name, **kw):
    folder = _data(tmp_path / name, **({"prices": kw.pop("prices")} if "prices" in kw else {}))
    result = build_snapshots(folder, Settings(data_end=AS_OF, **kw), tmp_path / f"{name}.duckdb", as_of=[AS_OF])
    with duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True) as con:
        mrr = dict(con.execute("SELECT account_id, mrr FROM snapshots").fetchall())
    return result, mrr


def test_cents_warned_when_no_unit_is_given(tmp_path):
    result, mrr = _build(tmp_path, "plain")
    assert mrr["A0"] == 2900.0  # read as given
    warned = [w for w in result.validation.warnings if "cents" in w]
    assert [w.split(":")[0] for w in warned] == ["subscriptions.mrr", "invoices.amount"]
    assert "median is 3,900" in warned[0]
    assert "column_units: {subscriptions: {mrr: cents}}" in warned[0]


def test_cents_read_as_currency(tmp_path):
    result, mrr = _build(tmp_path, "cents", column_units={"subscriptions": {"mrr": "cents"},
                                                          "invoices": {"amount": "cents"}})
    assert mrr == {"A0": 29.0, "A1": 49.0, "A2": 99.0, "A3": 29.0}
    assert not [w for w in result.validation.warnings if "cents" in w]


def test_currency_silences_and_fractions_never_warn(tmp_path):
    result, mrr = _build(tmp_path, "currency", column_units={"subscriptions": {"mrr": "currency"},
                                                             "invoices": {"amount": "currency"}})
    assert mrr["A0"] == 2900.0 and not [w for w in result.validation.warnings if "cents" in w]
    result, _ = _build(tmp_path, "dollars", prices=(29.0, 49.5, 99.0, 1200.0))
    assert not [w for w in result.validation.warnings if "cents" in w]
    result, _ = _build(tmp_path, "small", prices=(29, 49, 99, 29))  # whole dollars, small: no warning
    assert not [w for w in result.validation.warnings if "cents" in w]


def test_bad_units_are_named(tmp_path):
    folder = _data(tmp_path / "bad")
    with pytest.raises(ConfigError, match=r"column_units: subscriptions.price is not a money column"):
        build_snapshots(folder, Settings(data_end=AS_OF, column_units={"subscriptions": {"price": "cents"}}),
                        tmp_path / "b.duckdb", as_of=[AS_OF])
    with pytest.raises(ConfigError, match=r"column_units: 'events' has no money column"):
        build_snapshots(folder, Settings(data_end=AS_OF, column_units={"events": {"quantity": "cents"}}),
                        tmp_path / "b.duckdb", as_of=[AS_OF])
    with pytest.raises(pydantic.ValidationError, match="currency"):
        Settings(column_units={"subscriptions": {"mrr": "dollars"}})


def test_own_money_column_in_cents(tmp_path):
    """A company's own column (a profile feature) in cents: ``profile.columns.<name>.unit: cents``."""
    import pandas as pd

    folder = _data(tmp_path / "own")
    pd.DataFrame({"account_id": ["A0", "A1", "A2", "A3"], "plan_amount": [2900, 4900, 9900, 2900]}).to_csv(
        folder / "accounts.csv", index=False)
    (folder / "accounts.parquet").unlink()
    settings = Settings(data_end=AS_OF, profile={"columns": {"plan_amount": {"unit": "cents"}}})
    result = build_snapshots(folder, settings, tmp_path / "own.duckdb", as_of=[AS_OF])
    spec = result.catalogue["plan_amount"]
    assert spec.unit == "currency" and spec.definition.endswith("in cents, read / 100")
    with duckdb.connect(str(tmp_path / "own.duckdb"), read_only=True) as con:
        assert dict(con.execute("SELECT account_id, plan_amount FROM snapshots").fetchall()) == {
            "A0": 29.0, "A1": 49.0, "A2": 99.0, "A3": 29.0}
