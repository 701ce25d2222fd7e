"""The purged out-of-time split of DESIGN §2.

Blocks by as-of date over the labelled snapshots (``L`` = the last labelled as-of date):

* test: the last ``test_days`` (default 3 months) of labelled dates, ``(L - test_days, L]``;
* calibration: the ``calibration_days`` before it, ending a purge gap before the test block;
* train: everything up to a purge gap before the calibration block.

The purge gap is ``horizon + grace`` days: a training label at ``t`` looks at churn up to
``t + horizon`` (final after ``grace`` more days), so nothing a training label sees lies
inside a later block. Early stopping uses a slice from the end of the training block, with
the same purge before it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import pandas as pd

from core.time import Horizon
from training.errors import TrainingError


@dataclass(frozen=True)
class Split:
    """Inclusive as-of date ranges of each block."""

    train: tuple[dt.date, dt.date]
    fit: tuple[dt.date, dt.date]  # training rows the early-stopping model is fitted on
    early_stopping: tuple[dt.date, dt.date]
    calibration: tuple[dt.date, dt.date]
    test: tuple[dt.date, dt.date]
    purge_days: int

    def to_dict(self) -> dict:
        return {k: ([d.isoformat() for d in v] if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def mask(self, as_of: pd.Series, block: str) -> pd.Series:
        lo, hi = getattr(self, block)
        d = pd.to_datetime(as_of).dt.date
        return (d >= lo) & (d <= hi)


def purged_split(as_of_dates: list[dt.date], horizon_days: int, grace_days: int, test_days: int = 91,
                 calibration_days: int = 91, early_stopping_days: int = 42) -> Split:
    """Blocks for the sorted labelled as-of dates.

    Raises:
        TrainingError: too little history for the blocks and their purge gaps; the
            message says how many days are needed and how many there are.
    """
    if not as_of_dates:
        raise TrainingError("no labelled snapshots: every as-of date is within horizon + grace of the data end")
    dates = sorted(set(as_of_dates))
    first, last = dates[0], dates[-1]
    purge = Horizon(horizon_days, grace_days).lag.days
    day = dt.timedelta(days=1)
    test = (last - dt.timedelta(days=test_days) + day, last)
    cal_hi = test[0] - dt.timedelta(days=purge) - day
    cal = (cal_hi - dt.timedelta(days=calibration_days) + day, cal_hi)
    train_hi = cal[0] - dt.timedelta(days=purge) - day
    es = (train_hi - dt.timedelta(days=early_stopping_days) + day, train_hi)
    fit_hi = es[0] - dt.timedelta(days=purge) - day
    need = test_days + calibration_days + early_stopping_days + 3 * purge + 28
    if fit_hi < first + dt.timedelta(days=27):
        raise TrainingError(
            f"too little labelled history for a purged out-of-time split: {(last - first).days + 1} days of "
            f"as-of dates, {need} needed (test {test_days} + calibration {calibration_days} + early "
            f"stopping {early_stopping_days} + 3 purge gaps of {purge} + 4 weeks to fit)")
    block_dates = {name: [d for d in dates if lo <= d <= hi]
                   for name, (lo, hi) in (("test", test), ("calibration", cal), ("es", es))}
    for name, ds in block_dates.items():
        if not ds:
            raise TrainingError(f"the {name} block has no as-of dates; the schedule is too sparse")
    return Split(train=(first, train_hi), fit=(first, fit_hi), early_stopping=es, calibration=cal,
                 test=test, purge_days=purge)
