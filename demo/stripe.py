"""A Stripe-shaped billing export, and the two ways of mapping it onto churnwatch's contract.

The customers behind it come from the consumer simulation (``demo/consumer.py``); what
this module adds is the *shape* of a Stripe export:

- ``customers.csv``: ``id`` (``cus_...``), ``email``, ``created``, ``address_country``;
- ``subscriptions.csv``: **one row per subscription**, its state at the export: ``id``,
  ``customer``, ``status`` (active / canceled), ``created``, ``current_period_start``,
  ``current_period_end``, ``canceled_at`` (when the customer asked to cancel),
  ``cancel_at_period_end``, ``ended_at``, ``plan_id``, ``plan_amount`` (per month, in
  the currency's major unit), ``plan_interval``, ``quantity``;
- ``invoices.csv``: one row per paid monthly invoice, with its service period
  (``period_start``, ``period_end``) and ``amount_paid``;
- ``usage_events.csv``: the company's own product events keyed by the Stripe customer.

Two layouts of churnwatch data folders are written from the same files, only renamed and
mapped in ``churnwatch.yaml``:

- ``naive``: ``subscriptions.csv`` is Stripe's subscriptions with ``canceled_at ->
  end_date``. It **leaks**: the end date exists only once a customer has cancelled, so
  at an as-of date before the cancellation the row already says when the customer leaves
  (``days_to_term_end`` is known only for future churners).
- ``correct``: ``subscriptions.csv`` is Stripe's invoices, one term per paid period
  (``period_start -> start_date``, ``period_end -> end_date``): at any as-of date only
  the periods already invoiced are known, and a customer who leaves simply has no next
  period.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from core.settings import CONFIG_FILE_NAME, Settings, dump_settings
from demo.consumer import DEFAULT_START, generate_consumer

Mapping = Literal["naive", "correct"]

#: ``{contract table: (export file, {export column: contract column})}`` per mapping.
MAPPINGS: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    "naive": {
        "accounts": ("customers.csv", {"id": "account_id", "created": "signed_at",
                                       "address_country": "region"}),
        "subscriptions": ("subscriptions.csv", {"customer": "account_id", "created": "start_date",
                                                "canceled_at": "end_date", "plan_amount": "mrr",
                                                "plan_id": "plan", "quantity": "seats"}),
        "events": ("usage_events.csv", {"customer": "account_id", "user": "user_id",
                                        "timestamp": "occurred_at", "event": "event_type"}),
    },
    "correct": {
        "accounts": ("customers.csv", {"id": "account_id", "created": "signed_at",
                                       "address_country": "region"}),
        "subscriptions": ("invoices.csv", {"customer": "account_id", "period_start": "start_date",
                                           "period_end": "end_date", "amount_paid": "mrr"}),
        "events": ("usage_events.csv", {"customer": "account_id", "user": "user_id",
                                        "timestamp": "occurred_at", "event": "event_type"}),
    },
}


@dataclass
class StripeExport:
    """The four export files as frames, plus the settings both layouts share."""

    customers: pd.DataFrame
    subscriptions: pd.DataFrame
    invoices: pd.DataFrame
    usage_events: pd.DataFrame
    settings: Settings

    def files(self) -> dict[str, pd.DataFrame]:
        return {"customers.csv": self.customers, "subscriptions.csv": self.subscriptions,
                "invoices.csv": self.invoices, "usage_events.csv": self.usage_events}


def _stamp(days: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Timestamps (whole seconds) on the given days, at a random time of day."""
    return days + pd.to_timedelta(rng.integers(0, 86_400, len(days)), unit="s")


def generate_stripe(accounts: int = 800, months: int = 12, seed: int = 23,
                    start: date = DEFAULT_START) -> StripeExport:
    """A Stripe-shaped export of a consumer product (see the module docstring).

    Args:
        accounts: subscribers at ``start`` (small by default: fast tests).
        months: export window; the data end is ``start + months`` (exclusive).
        seed: random seed; the same arguments give the same files.
        start: first day of the window.
    """
    data = generate_consumer(accounts, months, seed, start)
    rng = np.random.default_rng(seed + 1)
    end = pd.Timestamp(data.settings.data_end)
    ids = data.accounts["account_id"].str.replace("CUS-", "cus_", regex=False)
    cus = dict(zip(data.accounts["account_id"], ids, strict=True))
    customers = pd.DataFrame({
        "id": ids, "email": [f"user{i}@example.{c.lower()}" for i, c in
                             enumerate(data.accounts["region"], start=1)],
        "created": _stamp(pd.to_datetime(data.accounts["signed_at"]), rng),
        "address_country": data.accounts["region"],
    })
    terms = data.subscriptions.assign(customer=data.subscriptions["account_id"].map(cus))
    g = terms.groupby("customer", sort=False)
    subs = g.agg(created=("start_date", "min"), current_period_start=("start_date", "max"),
                 current_period_end=("end_date", "max"), plan_id=("plan", "last"),
                 plan_amount=("mrr", "last"), quantity=("seats", "last")).reset_index()
    ended = subs["current_period_end"] < end
    asked = subs["current_period_end"] - pd.to_timedelta(rng.integers(1, 26, len(subs)), unit="D")
    asked = asked.where(asked > subs["current_period_start"], subs["current_period_start"])
    subs = subs.assign(
        id=[f"sub_{i:08x}" for i in rng.permutation(len(subs)) + 0x1000],
        status=np.where(ended, "canceled", "active"),
        created=_stamp(subs["created"], rng),
        canceled_at=_stamp(asked, rng).where(ended),
        cancel_at_period_end=ended,
        ended_at=subs["current_period_end"].where(ended),
        plan_interval="month",
    )
    subs = subs[["id", "customer", "status", "created", "current_period_start", "current_period_end",
                 "canceled_at", "cancel_at_period_end", "ended_at", "plan_id", "plan_amount",
                 "plan_interval", "quantity"]]
    sub_of = dict(zip(subs["customer"], subs["id"], strict=True))
    invoices = pd.DataFrame({
        "id": [f"in_{i:09x}" for i in range(1, len(terms) + 1)], "customer": terms["customer"],
        "subscription": terms["customer"].map(sub_of), "status": "paid",
        "period_start": terms["start_date"], "period_end": terms["end_date"],
        "amount_paid": terms["mrr"], "created": _stamp(terms["start_date"], rng),
    })
    ev = data.events
    usage = pd.DataFrame({"customer": ev["account_id"].astype(str).map(cus),
                          "user": ev["user_id"].astype(str).str.replace("CUS-", "cus_", regex=False),
                          "timestamp": ev["occurred_at"], "event": ev["event_type"].astype(str)})
    return StripeExport(customers, subs, invoices, usage, data.settings)


def write_stripe_export(out: Path, accounts: int = 800, months: int = 12, seed: int = 23,
                        start: date = DEFAULT_START) -> dict[str, Path]:
    """Write the raw export to ``<out>/export/`` and one churnwatch data folder per mapping
    (``<out>/naive/``, ``<out>/correct/``: the export's files renamed to contract tables,
    plus a ``churnwatch.yaml`` holding that mapping's ``column_mapping``).

    Returns:
        ``{"export": ..., "naive": ..., "correct": ...}`` folders.
    """
    out = Path(out)
    export = generate_stripe(accounts, months, seed, start)
    raw = out / "export"
    raw.mkdir(parents=True, exist_ok=True)
    for name, frame in export.files().items():
        frame.to_csv(raw / name, index=False)
    folders = {"export": raw}
    for mapping in MAPPINGS:
        folders[mapping] = layout(raw, out / mapping, mapping, export.settings)
    return folders


def layout(raw: Path, folder: Path, mapping: Mapping, settings: Settings) -> Path:
    """A churnwatch data folder from the export in ``raw`` under one of ``MAPPINGS``."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, (file, _columns) in MAPPINGS[mapping].items():
        shutil.copyfile(raw / file, folder / f"{table}.csv")
    column_mapping = {table: dict(cols) for table, (_file, cols) in MAPPINGS[mapping].items()}
    dump_settings(settings.model_copy(update={"column_mapping": column_mapping}),
                  folder / CONFIG_FILE_NAME)
    return folder
