"""The split of labelled snapshots by as-of date (DESIGN §2), adapted to the history there is.

``L`` is the last labelled as-of date; the purge gap is ``horizon + grace`` days, taken
from the snapshot store's metadata (what the labels were actually built with). A training
label at ``t`` looks at churn up to ``t + horizon``, final ``grace`` days later, so with the
gap nothing a training label sees lies inside a later block.

Two layouts:

* **purged** (long histories, the original layout): test = the last ``test_days``
  (default 91) of labelled dates ``(L - test_days, L]``; calibration = the
  ``calibration_days`` (default 91) before it, a purge gap earlier; training = everything a
  purge gap before calibration; early stopping = the last ``early_stopping_days``
  (default 42) of training, fitted on the rows a purge gap before that.
* **cross-fit** (short histories): test as above, a purge gap after the training block.
  Early stopping, model choice and calibration use account-grouped folds
  (``GroupKFold`` on ``account_id``) inside the training dates: each row's validation
  score comes from a model that never saw its account (out-of-fold).

The purged layout is used when it fits (or when calibration / early-stopping days are set
explicitly), else cross-fit. ``test_days`` is automatic unless set: 91 days in the purged
layout, in cross-fit a third of the labelled days left after the purge gap, between
``MIN_TEST_DAYS`` and 91.

**The minimum** is ``MIN_TEST_DAYS + (horizon + grace) + MIN_TRAIN_DAYS`` days of labelled
as-of dates: 28 + 90 + 56 = 174 days (about 6 months) with the default 60-day horizon and
30-day grace. Why: a test block of 4 weekly dates (fewer gives an AUC with no meaning for a
few percent monthly churn), the purge gap that keeps the test out-of-time, and 8 weekly
training dates (each account appears in several, and the folds need churners in each).
A labelled as-of date needs ``horizon + grace`` days of data after it and the default
schedule starts 90 days after the data start (90-day windows), so an export needs about
90 + 174 + 90 = 354 days: a 12-month export trains, a 20-month one uses the purged layout
only from 522 labelled days (about 23 months) on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import pandas as pd

from core.time import Horizon
from training.errors import TrainingError

MIN_TEST_DAYS = 28
MIN_TRAIN_DAYS = 56
DEFAULT_TEST_DAYS = 91
DEFAULT_CALIBRATION_DAYS = 91
DEFAULT_EARLY_STOPPING_DAYS = 42
#: Days of as-of dates the early-stopping model needs at least in the purged layout.
MIN_FIT_DAYS = 28
#: The default schedule's warm-up before the first as-of date (features/timeline.py).
SCHEDULE_WARMUP_DAYS = 90

Range = tuple[dt.date, dt.date]


@dataclass(frozen=True)
class Split:
    """Inclusive as-of date ranges of each block; ``None`` for blocks the layout has not."""

    train: Range
    fit: Range | None  # training rows the early-stopping model is fitted on (purged layout)
    early_stopping: Range | None
    calibration: Range | None
    test: Range
    purge_days: int
    mode: str = "purged"  # or "cross_fit"

    def to_dict(self) -> dict:
        return {k: ([d.isoformat() for d in v] if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def mask(self, as_of: pd.Series, block: str) -> pd.Series:
        rng = getattr(self, block)
        if rng is None:
            raise TrainingError(f"the {self.mode} split has no {block} block")
        lo, hi = rng
        d = pd.to_datetime(as_of).dt.date
        return (d >= lo) & (d <= hi)


def minimum_days(horizon_days: int, grace_days: int, test_days: int | None = None,
                 min_train_days: int = MIN_TRAIN_DAYS) -> int:
    """Days of labelled as-of dates the cross-fit layout needs at least."""
    return (test_days or MIN_TEST_DAYS) + Horizon(horizon_days, grace_days).lag.days + min_train_days


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def _too_short(span: int, first: dt.date, last: dt.date, horizon: int, grace: int, test_days: int | None,
               min_train_days: int) -> TrainingError:
    need = minimum_days(horizon, grace, test_days, min_train_days)
    purge = Horizon(horizon, grace).lag.days
    export = SCHEDULE_WARMUP_DAYS + need + purge
    return TrainingError(
        f"too little labelled history for an out-of-time split: {span} days of labelled as-of dates "
        f"({first} to {last}), {need} needed (test {test_days or MIN_TEST_DAYS} + purge gap {purge} = horizon "
        f"{horizon} + grace {grace} + training {min_train_days}). Each labelled date needs horizon + grace days "
        f"after it and the schedule starts {SCHEDULE_WARMUP_DAYS} days in, so an export of about {export} days "
        "is needed. To change: export more history, or shorten horizon_days / grace_days in churnwatch.yaml "
        "(then run `churnwatch features` again), or lower --test-days / --min-train-days.")


def purged_split(as_of_dates: list[dt.date], horizon_days: int, grace_days: int, test_days: int | None = None,
                 calibration_days: int | None = None, early_stopping_days: int | None = None,
                 min_train_days: int = MIN_TRAIN_DAYS) -> Split:
    """Blocks for the labelled as-of dates (see the module docstring for the layouts).

    Args:
        as_of_dates: labelled as-of dates (any order, duplicates allowed).
        horizon_days, grace_days: what the labels were built with; the purge gap is their sum.
        test_days: length of the test block; ``None`` = automatic.
        calibration_days, early_stopping_days: force the purged layout with these lengths;
            ``0`` forces cross-fit; ``None`` = purged with 91 / 42 days when it fits.
        min_train_days: fewest days of training as-of dates accepted.

    Raises:
        TrainingError: no labelled dates, too little history (the message gives both lengths
            in days and what to change), or a block without as-of dates.
    """
    if not as_of_dates:
        raise TrainingError("no labelled snapshots: every as-of date is within horizon + grace of the data end")
    dates = sorted(set(as_of_dates))
    first, last = dates[0], dates[-1]
    span = (last - first).days + 1
    purge = Horizon(horizon_days, grace_days).lag.days
    explicit = calibration_days is not None or early_stopping_days is not None
    if explicit and (calibration_days or 0) > 0:
        split = _purged(dates, purge, test_days or DEFAULT_TEST_DAYS, calibration_days,
                        early_stopping_days or DEFAULT_EARLY_STOPPING_DAYS)
        if split is None:
            raise _too_short(span, first, last, horizon_days, grace_days, test_days, min_train_days)
        return split
    if not explicit:
        split = _purged(dates, purge, test_days or DEFAULT_TEST_DAYS, DEFAULT_CALIBRATION_DAYS,
                        DEFAULT_EARLY_STOPPING_DAYS)
        if split is not None:
            return split
    if span < minimum_days(horizon_days, grace_days, test_days, min_train_days):
        raise _too_short(span, first, last, horizon_days, grace_days, test_days, min_train_days)
    test_len = test_days or min(DEFAULT_TEST_DAYS, max(MIN_TEST_DAYS, (span - purge) // 3))
    test = (last - _days(test_len) + _days(1), last)
    train = (first, test[0] - _days(purge) - _days(1))
    _require_dates(dates, {"test": test, "training": train})
    return Split(train=train, fit=None, early_stopping=None, calibration=None, test=test, purge_days=purge,
                 mode="cross_fit")


def _purged(dates: list[dt.date], purge: int, test_days: int, calibration_days: int,
            early_stopping_days: int) -> Split | None:
    """The purged layout, or ``None`` when it does not fit the dates."""
    first, last = dates[0], dates[-1]
    one = _days(1)
    test = (last - _days(test_days) + one, last)
    cal_hi = test[0] - _days(purge) - one
    cal = (cal_hi - _days(calibration_days) + one, cal_hi)
    train_hi = cal[0] - _days(purge) - one
    es = (train_hi - _days(early_stopping_days) + one, train_hi)
    fit_hi = es[0] - _days(purge) - one
    if fit_hi < first + _days(MIN_FIT_DAYS - 1):
        return None
    _require_dates(dates, {"test": test, "calibration": cal, "early-stopping": es})
    return Split(train=(first, train_hi), fit=(first, fit_hi), early_stopping=es, calibration=cal,
                 test=test, purge_days=purge)


def _require_dates(dates: list[dt.date], blocks: dict[str, Range]) -> None:
    for name, (lo, hi) in blocks.items():
        if not any(lo <= d <= hi for d in dates):
            raise TrainingError(f"the {name} block ({lo} to {hi}) has no as-of dates; the schedule is too sparse")
