"""When an account the newest scoring run did not score stopped being a customer, and whether that is a
lapse a late renewal still undoes (within the labels' grace period) rather than a churn: one rule for the
published answers and live ones (``serving``), ``explain`` (``insights``), the workspace and the tasks
(``workflow``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from core.store import last_snapshots


def churn_days(as_of: pd.Series, days_to_term_end: pd.Series, run_as_of: dt.date) -> pd.Series:
    """The day each account stopped being a customer, for an account whose latest score (or snapshot)
    is as of a date before ``run_as_of`` (it is not active then): the end of the term it was in
    (``as_of`` + ``days_to_term_end``), not after ``run_as_of``, else ``run_as_of``; None for an
    account as of ``run_as_of``. One rule for the published scores and the live answers."""
    when, run = pd.to_datetime(as_of), pd.Timestamp(run_as_of)
    churned = when < run
    # clipped to the run's as-of date below, so a day past it is enough: an open-ended term written
    # 9999-12-31 (millions of days) is beyond pandas' timestamps
    days_left = pd.to_numeric(days_to_term_end).clip(upper=(run - when).dt.days + 1)
    term_end = (when + pd.to_timedelta(days_left, unit="D")).clip(upper=run)
    out = pd.Series(np.where(churned, term_end.dt.date, None), index=when.index, dtype=object)
    out[churned & out.isna()] = run_as_of
    return out


def lapsed(churned_on: dt.date | None, run_as_of: dt.date | None, grace: dt.timedelta | None) -> bool:
    """Whether an account the run did not score is in a lapse rather than gone: its known term ended less
    than ``grace`` (the labels' grace period) before the run, so a late renewal (a payment retried, an
    invoice paid late) still keeps it a customer. One rule for the API, ``explain`` and the workspace."""
    return (churned_on is not None and run_as_of is not None and grace is not None
            and churned_on < run_as_of and (run_as_of - churned_on) < grace)


def ended_on(store: Path, last_scored: dict[str, dt.date], newest: dt.date) -> dict[str, dt.date | None]:
    """``churn_days`` of accounts last scored before the newest scoring date ``newest`` (account -> its last
    score's date), from each one's latest snapshot up to ``newest`` (where it was last seen a customer, with the
    term end it had then), not from its last score (a probe's old date scored once dated churns 150 to 395 days
    early). One query for them all."""
    if not last_scored:
        return {}
    rows = last_snapshots(store, list(last_scored), newest).set_index("account_id")
    seen = pd.Series({a: rows["as_of"].get(a, day) for a, day in last_scored.items()})
    left = pd.Series({a: rows["days_to_term_end"].get(a) if "days_to_term_end" in rows.columns else None
                      for a in last_scored}, dtype="float64")
    return churn_days(seen, left, newest).to_dict()
