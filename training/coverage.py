"""Features whose window reaches before the export's start on the training dates (issue 12 item 1).

A short export gets a short warm-up (``features.timeline.schedule_warmup``: 28 days instead of
90), so on its first as-of dates a 90-day count covers only the 28 to 60 days of events there
are, and a change against the previous 30 days compares with a window that is partly empty. The
value then mixes the account's behaviour with how much of the window the export covers, which
grows date by date: the same behaviour counts less on the training dates than on the later test
dates and in production, and what a model learns from those features does not carry forward.

``features.spec.lookback_days`` is how far back before the as-of date a feature reads, from its catalogue
parameters (``features.spec``'s time semantics: a window of ``N`` days is ``[t - N, t)``; a change
feature also reads the previous window ``[t - 2N, t - N)``; ``lookback`` and ``baseline`` reach
further; a ratio of two features reads what its inputs read, a days-since feature is capped by the
history and counts as ``features.spec.DAYS_SINCE_HISTORY`` days). A feature is *partial* in the
training rows when that is longer than the days from the data start to the as-of date on at least
half of the training as-of dates (``PARTIAL_SHARE``; a 30-day window two days short on the first of
15 dates is whole on most rows). Features without a window (tenure, plan, a profile column, days to
the term end) are never partial.

Whether to leave the partial ones out is decided on the model-choice folds
(``keep_partial_windows``): the logistic regression (each ``LOGISTIC_C``) with every feature
against the same without the partial ones. They stay unless leaving them out is better by more
than one standard error of the paired difference (the one-standard-error rule with the whole set
first: taking catalogue features out needs evidence). Left-out features are listed with the
reason like the null or constant ones (terminal, MLflow, bundle).

Measured (2026-12-04, ``benchmarks/foreign.py``; README "Measured on the generated exports"): on
the 6-month consumer log, seed 11, 18 features are partial (every 90-day window and 60-day change:
the training dates cover 34 to 62 days) and the logistic regression's validation ROC-AUC is 0.755
with them, 0.764 without (standard error of the difference 0.0045), so they are left out; the
chosen model's test ROC-AUC went from 0.643 to 0.672. On the 9-month log 8 features are partial
(0.722 with, 0.725 without: within the noise, kept). With a days-since feature counted as reading
``DAYS_SINCE_HISTORY`` days (2026-12-04 22:31-22:52 UTC), ``days_since_last_login`` is partial too:
19 on 6 months (0.755 with, 0.763 without, left out; test 0.672 -> 0.668, seeds 7 and 3 0.681 ->
0.685 and 0.778 -> 0.778: within the noise), 9 on 9 months (0.722 with and without, kept: the
same figures).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.spec import Catalogue, lookback_days
from training.bootstrap import rank_roc_auc
from training.selection import LOGISTIC_C, Fold, linear_on, noise_aware_choice

#: A feature is partial when its window reaches before the data start on at least this share of
#: the training as-of dates.
PARTIAL_SHARE = 0.5


def partial_window_features(catalogue: Catalogue, as_of_dates: list[dt.date] | np.ndarray | pd.Series,
                            data_start: dt.date) -> dict[str, int]:
    """Features whose lookback is longer than the days from ``data_start`` to the as-of date on at
    least half of the distinct training as-of dates ``as_of_dates`` (a window short of the data on
    a few early dates only is whole on most rows): name -> lookback days, in catalogue order. An
    as-of date before the data start (``features --as-of`` allows one) covers no day at all.

    A count the pipeline scales to its whole window (``features.spec.scaled``) is partial too: its
    level no longer grows with the coverage, but on those dates it is an estimate from part of the
    window, and on the 6-month consumer log the logistic regression still did better without the
    scaled counts (validation ROC-AUC 0.745 with every feature, 0.763 without the partial ones)."""
    dates = sorted({pd.Timestamp(d).date() for d in as_of_dates})
    if not dates:
        return {}
    covered = np.array([max((d - data_start).days, 0) for d in dates])
    by_name = {f.name: f for f in catalogue.features}  # a ratio reads what its inputs read
    out = {}
    for f in catalogue.features:
        days = lookback_days(f, by_name)
        if days and np.mean(days > covered) >= PARTIAL_SHARE:
            out[f.name] = days
    return out


def partial_reason(lookback: int, data_start: dt.date, scores: dict[str, float]) -> str:
    """Why a partial-window feature was left out (one line, for the run's list of left-out features)."""
    return (f"its {lookback}-day window reaches before the data start ({data_start}) on most training as-of "
            f"dates (partial counts); the logistic regression did better without such features on the "
            f"validation folds (ROC-AUC {scores['without']:.4f} without, {scores['with']:.4f} with)")


def keep_partial_windows(folds: list[Fold], n_val: int, names: list[str], categorical: list[str],
                         directions: dict[str, int], partial: dict[str, int], groups: np.ndarray | None = None,
                         seed: int = 0) -> tuple[bool, dict[str, float], float]:
    """Whether the partial-window features stay: the logistic regression (the best of ``LOGISTIC_C``)
    judged on ``folds`` with every feature of ``names`` and without those in ``partial``. They stay
    unless the set without them is better by more than ``SE_RULE`` standard errors of the paired
    difference (``noise_aware_choice`` with the whole set first: leaving features out needs
    evidence; ``groups``: the validation rows' accounts, resampled together). Returns
    (keep, {"with": ROC-AUC, "without": ROC-AUC}, the bootstrap standard error of their difference);
    (True, {}, 0.0) when nothing is partial or nothing would be left."""
    without = [n for n in names if n not in partial]
    if not partial or not without or len(without) == len(names):
        return True, {}, 0.0
    y_val = np.empty(n_val)
    for f in folds:
        y_val[f.val_index] = f.y_val
    raws: dict[str, np.ndarray] = {}
    for label, cols in (("with", names), ("without", without)):
        sub = [Fold(f.X_fit[cols], f.y_fit, f.X_val[cols], f.y_val, f.val_index, f.fit_rows) for f in folds]
        cat = [c for c in categorical if c in cols]
        fits = [linear_on(sub, n_val, cols, cat, directions, c, False) for c in LOGISTIC_C]
        raws[label] = max(fits, key=lambda r: rank_roc_auc(y_val, r))
    chosen, _, noise = noise_aware_choice(y_val, raws, ["with", "without"], groups, seed,
                                          order=lambda n: n != "with")
    se = max(v["se"] for v in noise.values())  # the gap's (the better one's own is 0)
    return chosen == "with", {n: rank_roc_auc(y_val, r) for n, r in raws.items()}, se


def begun_later(dropped: Mapping[str, str], rows: pd.DataFrame, catalogue: Catalogue) -> tuple[list[str], pd.Series]:
    """The features left out as null or constant in the training rows (``dropped``) that vary in ``rows``
    (the test rows): what they read began after the training dates, so the model never
    learned it. Returns their names for a warning (an event type's features as "'X' events") and, per
    row, whether it differs from the most common value in one of them. A probe's Chargebee export held
    only the open cancellation schedules, all after the training dates: its 9 accounts about to leave
    were scored on usage alone, 2 of them healthy."""
    late = [n for n in dropped if n in rows.columns and rows[n].dropna().nunique() > 1]
    if not late:
        return [], pd.Series(False, index=rows.index)
    specs = {f.name: f for f in catalogue.features}
    family = {}  # an event type's features: named as "'X' events" only when all of them were left out (probe p57:
    for f in catalogue.features:  # "'refund_issued' events: none in the training rows" for a change alone)
        if "event_type" in f.params and f.name in rows.columns:
            family.setdefault(f.params["event_type"], []).append(f.name)

    def name(n: str) -> str:
        et = specs[n].params.get("event_type") if n in specs else None
        return f"'{et}' events" if et is not None and all(m in dropped for m in family[et]) else n

    named = sorted({name(n) for n in late})
    differs = pd.concat([rows[n].notna() & rows[n].ne(rows[n].mode().iloc[0]) for n in late], axis=1).any(axis=1)
    return named, differs


#: A 0/1 flag set on fewer training rows than this, but on at least as many test rows, is one the model can hardly
#: have learned (``rare_flags``).
RARE_FLAG_ROWS = 20


def rare_flags(train: pd.DataFrame, test: pd.DataFrame, catalogue: Catalogue,
               dropped: Mapping[str, str]) -> list[tuple[str, int, int]]:
    """The 0/1 flags the model keeps that are set on fewer than ``RARE_FLAG_ROWS`` training rows but on at
    least that many test rows: ``(name, training rows set, test rows set)``. A probe's Chargebee export sent
    only the cancellations scheduled at the export (no request history): ``cancel_request_standing`` was set on
    3 of 51,996 training rows, and nothing said so; of its 27 customers leaving within 60 days, 5 scored low or
    healthy."""
    out = []
    for f in catalogue.features:
        if f.unit != "flag" or f.name in dropped or f.name not in train.columns or f.name not in test.columns:
            continue
        n_train, n_test = int(train[f.name].eq(1).sum()), int(test[f.name].eq(1).sum())
        if n_train < RARE_FLAG_ROWS <= n_test:
            out.append((f.name, n_train, n_test))
    return out
