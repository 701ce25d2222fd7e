"""The split of labelled snapshots by as-of date (DESIGN §2), adapted to the history there is.

``L`` is the last labelled as-of date; the purge gap is ``horizon + grace`` days, taken
from the snapshot store's metadata (what the labels were actually built with). A training
label at ``t`` looks at churn up to ``t + horizon``, final ``grace`` days later, so with the
gap nothing a training label sees lies inside a later block.

Three layouts, the first that fits:

* **purged** (long histories, the original layout): test = the last ``test_days``
  (default 91) of labelled dates ``(L - test_days, L]``; calibration = the
  ``calibration_days`` (default 91) before it, a purge gap earlier; training = everything a
  purge gap before calibration; early stopping = the last ``early_stopping_days``
  (default 42) of training, fitted on the rows a purge gap before that.
* **cross_fit** (short histories): test as above, a purge gap after the training block.
  Model choice and early stopping use folds split in time AND by account inside the
  training dates (``training.selection.forward_folds``): each fold is fitted on the earlier
  half of the training dates of (k - 1) / k of the accounts (k folds, default 4) and judged
  on the later half of the other accounts', so the choice is honest about time as the test block is (a pattern
  of the training dates themselves earns nothing), and the trees take the directions the
  training rows show for the features without one (``training.selection``: no fold inside
  the training dates sees across the purge gap). Calibration cross-fits on account-grouped
  folds (``GroupKFold`` on ``account_id``) of every training row: each row's score comes from
  a model that never saw its account (out-of-fold).
* **account_holdout** (histories too short for a purge gap): the test block is still the
  last labelled dates (out of time), but only of held-out accounts (a seeded ~25% of
  accounts, chosen by a hash of the account id, so the choice is reproducible from the
  bundle's split alone); training is every other account's rows on the dates before the
  test block, with no purge gap. No training label belongs to a test account, but training
  labels do see churn that happens during the test dates (a market-wide change there
  leaks into training); the bundle and the progress output say so. Model choice and
  calibration as in ``cross_fit`` (time-split folds for the choice, account-grouped folds for
  calibration).

The purged layout is used when it fits (or when calibration / early-stopping days are set
explicitly), else cross-fit, else account-holdout. ``test_days`` is automatic unless set:
91 days in the purged layout, otherwise a third of the labelled days (after the purge gap
in cross-fit), between ``MIN_TEST_DAYS`` and 91.

**The minimum** is ``MIN_TEST_DAYS + HOLDOUT_MIN_TRAIN_DAYS`` = 28 + 28 = 56 days of
labelled as-of dates (account-holdout; cross-fit needs ``28 + (horizon + grace) + 56`` =
174). Why: a test block of 4 weekly dates (fewer gives an AUC with no meaning for a few
percent monthly churn) and 4 weekly training dates before it (each account appears in
several; the folds need churners in each). A labelled as-of date needs ``horizon + grace``
days of data after it, and a short export's schedule starts 28 days after the data start
(``features.timeline.schedule_warmup``; 90 for long exports), so an export needs at least
28 + 56 + 90 = **174 days** (about 6 months) with the default 60-day horizon and 30-day
grace. About 361 days (12 months) keep the 90-day warm-up and use cross-fit; the purged
layout needs 522 labelled days (about 23 months of export).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict, dataclass

import pandas as pd

from core.time import Horizon
from features.timeline import SHORT_WARMUP_DAYS
from training.errors import TrainingError

MIN_TEST_DAYS = 28
MIN_TRAIN_DAYS = 56
#: Fewest days of training as-of dates in the account-holdout layout (or ``min_train_days`` if lower).
HOLDOUT_MIN_TRAIN_DAYS = 28
#: Share of accounts held out for the test block in the account-holdout layout.
HOLDOUT_FRACTION = 0.25
DEFAULT_TEST_DAYS = 91
DEFAULT_CALIBRATION_DAYS = 91
DEFAULT_EARLY_STOPPING_DAYS = 42
#: Days of as-of dates the early-stopping model needs at least in the purged layout.
MIN_FIT_DAYS = 28

Range = tuple[dt.date, dt.date]


@dataclass(frozen=True)
class Split:
    """Inclusive as-of date ranges of each block; ``None`` for blocks the layout has not.

    In the ``account_holdout`` layout the test block holds only the held-out accounts and
    the training block only the others (``is_held_out``); ``holdout_fraction`` and
    ``holdout_seed`` say which they are, and ``purge_days`` is 0 (``lag_days`` is the gap it
    goes without).
    """

    train: Range
    fit: Range | None  # training rows the early-stopping model is fitted on (purged layout)
    early_stopping: Range | None
    calibration: Range | None
    test: Range
    purge_days: int
    mode: str = "purged"  # or "cross_fit", "account_holdout"
    holdout_fraction: float | None = None
    holdout_seed: int | None = None
    lag_days: int | None = None  # horizon + grace: the purge gap account-holdout goes without

    def to_dict(self) -> dict:
        out = {k: ([d.isoformat() for d in v] if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        out["test_description"] = self.describe_test()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        """The split of a bundle's ``meta["split"]`` (``to_dict``)."""
        names = {"train", "fit", "early_stopping", "calibration", "test"}
        kw = {k: (tuple(dt.date.fromisoformat(x) for x in v) if k in names and v is not None else v)
              for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**kw)

    def describe_test(self) -> str:
        """What the test block is, in words (progress output, bundle, MLflow)."""
        days = (self.test[1] - self.test[0]).days + 1
        if self.mode == "account_holdout":
            return (f"test: last {days} days of labelled dates, held-out accounts "
                    f"({self.holdout_fraction:.0%}, seed {self.holdout_seed}); the history is too short for a "
                    f"{self.lag_days}-day purge gap, so training uses the other accounts' earlier dates")
        return f"test: last {days} days of labelled dates, all accounts, {self.purge_days}-day purge gap before it"

    def is_held_out(self, account_id: pd.Series) -> pd.Series:
        """Whether each account is a test account (always true outside ``account_holdout``)."""
        if self.mode != "account_holdout":
            return pd.Series(True, index=account_id.index)
        return held_out(account_id, self.holdout_fraction or HOLDOUT_FRACTION, self.holdout_seed or 0)

    def mask(self, as_of: pd.Series, block: str) -> pd.Series:
        rng = getattr(self, block)
        if rng is None:
            raise TrainingError(f"the {self.mode} split has no {block} block")
        lo, hi = rng
        d = pd.to_datetime(as_of).dt.date
        return (d >= lo) & (d <= hi)

    def rows(self, frame: pd.DataFrame, block: str) -> pd.DataFrame | None:
        """The rows of ``frame`` (``as_of``, ``account_id``) in ``block``; ``None`` if the layout has not it."""
        if getattr(self, block) is None:
            return None
        keep = self.mask(frame["as_of"], block)
        if self.mode == "account_holdout":
            test_account = self.is_held_out(frame["account_id"])
            keep &= test_account if block == "test" else ~test_account
        return frame[keep]


def test_rows(split: dict | None, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of a bundle's test dates that are its test rows: all of them, except in the
    account-holdout layout, where only the held-out accounts' (``split``: ``meta["split"]``)."""
    if not split or split.get("mode") != "account_holdout":
        return rows
    return rows[Split.from_dict(split).is_held_out(rows["account_id"])]


def held_out(account_id: pd.Series, fraction: float, seed: int) -> pd.Series:
    """A reproducible ~``fraction`` of accounts: a seeded hash of the id, so the same account is
    held out in every store and every run with the same seed."""
    def pick(a: object) -> bool:
        digest = hashlib.blake2b(f"{seed}:{a}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < fraction

    ids = account_id.astype(str)
    chosen = {a: pick(a) for a in ids.unique()}
    return ids.map(chosen).astype(bool)


def minimum_days(horizon_days: int, grace_days: int, test_days: int | None = None,
                 min_train_days: int = MIN_TRAIN_DAYS) -> int:
    """Days of labelled as-of dates the cross-fit layout needs at least."""
    return (test_days or MIN_TEST_DAYS) + Horizon(horizon_days, grace_days).lag.days + min_train_days


def holdout_minimum_days(test_days: int | None = None, min_train_days: int = MIN_TRAIN_DAYS) -> int:
    """Days of labelled as-of dates the account-holdout layout needs at least (the real minimum)."""
    return (test_days or MIN_TEST_DAYS) + min(min_train_days, HOLDOUT_MIN_TRAIN_DAYS)


def minimum_export_days(horizon_days: int, grace_days: int, test_days: int | None = None,
                        min_train_days: int = MIN_TRAIN_DAYS) -> int:
    """Days of export the shortest layout needs: short warm-up + labelled days + horizon + grace."""
    return (SHORT_WARMUP_DAYS + holdout_minimum_days(test_days, min_train_days)
            + Horizon(horizon_days, grace_days).lag.days)


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def _too_short(span: int, first: dt.date, last: dt.date, horizon: int, grace: int, test_days: int | None,
               min_train_days: int, export: Range | None) -> TrainingError:
    need = holdout_minimum_days(test_days, min_train_days)
    purge = Horizon(horizon, grace).lag.days
    need_export = minimum_export_days(horizon, grace, test_days, min_train_days)
    has_export = (f"the export covers {(export[1] - export[0]).days} days ({export[0]} up to the data end "
                  f"{export[1]}), "  # the data end is the day after the last day of data
                  if export else "")
    return TrainingError(
        f"too little labelled history to train: {span} days of labelled as-of dates ({first} to {last}), "
        f"{need} needed (test {test_days or MIN_TEST_DAYS} + training {need - (test_days or MIN_TEST_DAYS)} days "
        f"of as-of dates, the test block on held-out accounts); {has_export}at least {need_export} days of "
        f"export are needed (schedule warm-up {SHORT_WARMUP_DAYS} + {need} labelled days + horizon "
        f"{horizon} + grace {grace}, since each labelled date needs horizon + grace = {purge} days of data after "
        "it). To change: export more history, or shorten horizon_days / grace_days in churnwatch.yaml "
        "(then run `churnwatch features` again), or lower --test-days / --min-train-days.")


def purged_split(as_of_dates: list[dt.date], horizon_days: int, grace_days: int, test_days: int | None = None,
                 calibration_days: int | None = None, early_stopping_days: int | None = None,
                 min_train_days: int = MIN_TRAIN_DAYS, export: Range | None = None, seed: int = 0) -> Split:
    """Blocks for the labelled as-of dates (see the module docstring for the layouts).

    Args:
        as_of_dates: labelled as-of dates (any order, duplicates allowed).
        horizon_days, grace_days: what the labels were built with; the purge gap is their sum.
        test_days: length of the test block; ``None`` = automatic.
        calibration_days, early_stopping_days: force the purged layout with these lengths;
            ``0`` forces cross-fit (or account-holdout when cross-fit does not fit);
            ``None`` = purged with 91 / 42 days when it fits.
        min_train_days: fewest days of training as-of dates accepted (cross-fit; the
            account-holdout layout needs ``min(min_train_days, 28)``).
        export: the data start and end, named in the error when the history is too short.
        seed: which accounts the account-holdout layout holds out.

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
    too_short = (span, first, last, horizon_days, grace_days, test_days, min_train_days, export)
    explicit = calibration_days is not None or early_stopping_days is not None
    if explicit and (calibration_days or 0) > 0:
        split = _purged(dates, purge, test_days or DEFAULT_TEST_DAYS, calibration_days,
                        early_stopping_days or DEFAULT_EARLY_STOPPING_DAYS)
        if split is None:
            raise _too_short(*too_short)
        return split
    if not explicit:
        split = _purged(dates, purge, test_days or DEFAULT_TEST_DAYS, DEFAULT_CALIBRATION_DAYS,
                        DEFAULT_EARLY_STOPPING_DAYS)
        if split is not None:
            return split
    if span >= minimum_days(horizon_days, grace_days, test_days, min_train_days):
        return _cross_fit(dates, span, purge, test_days)
    if span >= holdout_minimum_days(test_days, min_train_days):
        return _account_holdout(dates, span, purge, test_days, seed)
    raise _too_short(*too_short)


def _test_block(last: dt.date, days: int) -> Range:
    return last - _days(days) + _days(1), last


def _cross_fit(dates: list[dt.date], span: int, purge: int, test_days: int | None) -> Split:
    test_len = test_days or min(DEFAULT_TEST_DAYS, max(MIN_TEST_DAYS, (span - purge) // 3))
    test = _test_block(dates[-1], test_len)
    train = (dates[0], test[0] - _days(purge) - _days(1))
    _require_dates(dates, {"test": test, "training": train})
    return Split(train=train, fit=None, early_stopping=None, calibration=None, test=test, purge_days=purge,
                 mode="cross_fit")


def _account_holdout(dates: list[dt.date], span: int, purge: int, test_days: int | None, seed: int) -> Split:
    test_len = test_days or min(DEFAULT_TEST_DAYS, max(MIN_TEST_DAYS, span // 3))
    test = _test_block(dates[-1], test_len)
    train = (dates[0], test[0] - _days(1))
    _require_dates(dates, {"test": test, "training": train})
    return Split(train=train, fit=None, early_stopping=None, calibration=None, test=test, purge_days=0,
                 mode="account_holdout", holdout_fraction=HOLDOUT_FRACTION, holdout_seed=seed, lag_days=purge)


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
