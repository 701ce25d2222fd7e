"""When an account the newest scoring run did not score stopped being a customer, and whether that is a
lapse a late renewal still undoes (within the labels' grace period) rather than a churn: one rule for the
published answers and live ones (``serving``), ``explain`` (``insights``), the workspace and the tasks
(``workflow``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from core.store import last_snapshot


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


def ended_on(store: Path, account_id: str, last_scored: dt.date, newest: dt.date) -> dt.date | None:
    """``churn_days`` of one account last scored on ``last_scored``, from its latest snapshot up to the newest
    scoring date ``newest`` (where it was last seen a customer, with the term end it had then), not from its
    last score (a probe's old date scored once dated churns 150 to 395 days early)."""
    rows = last_snapshot(store, account_id, last_scored, newest)
    seen = pd.Timestamp(rows["as_of"].iloc[0]).date() if len(rows) else last_scored
    left = rows["days_to_term_end"].iloc[0] if "days_to_term_end" in rows.columns and len(rows) else None
    return churn_days(pd.Series([seen]), pd.Series([left], dtype="float64"), newest).iloc[0]
