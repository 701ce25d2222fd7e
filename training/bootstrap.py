"""Paired bootstrap of the model-minus-baseline difference in ROC-AUC and PR-AUC on test rows.

Both scores of a resample come from the same resampled rows (paired). With ``groups``
(account ids) whole accounts are resampled, because the rows of one account on several
as-of dates are not independent. The interval is the 2.5-97.5% percentile range of the
resampled differences; the point estimate is the difference on all rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score


def group_rows(groups: np.ndarray) -> np.ndarray:
    """The row positions of each group (an object array of index arrays)."""
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1], True])
    out = np.empty(len(bounds) - 1, dtype=object)
    out[:] = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return out


def resamples(n: int, groups: ArrayLike | None, n_boot: int,
              rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``n_boot`` bootstrap index arrays over ``n`` rows: rows drawn with replacement, or whole
    groups (``groups``: one id per row, e.g. accounts seen on several as-of dates)."""
    blocks = None if groups is None else group_rows(np.asarray(groups).astype(str))
    for _ in range(n_boot):
        if blocks is None:
            yield rng.integers(0, n, n)
        else:
            yield np.concatenate(blocks[rng.integers(0, len(blocks), len(blocks))])


def rank_roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC-AUC from ranks (Mann-Whitney, ties counted half): sklearn's value, without its checks."""
    pos = y == 1
    n1 = pos.sum()
    n0 = len(y) - n1
    return float((rankdata(s)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision with tied scores as one threshold (sklearn's definition)."""
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]  # last row of each distinct score
    tps = np.cumsum(ys)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def paired_bootstrap(y: ArrayLike, p_model: ArrayLike, p_other: ArrayLike, groups: ArrayLike | None = None,
                     n_boot: int = 300, seed: int = 0) -> dict[str, float]:
    """Difference (model - other) in ROC-AUC and PR-AUC with a 95% bootstrap interval.

    Returns:
        ``roc_auc_diff``, ``roc_auc_lo``, ``roc_auc_hi``, ``pr_auc_diff``, ``pr_auc_lo``,
        ``pr_auc_hi`` and ``resamples`` (resamples with both classes, the ones used).
    """
    y, a, b = (np.asarray(v, dtype=np.float64) for v in (y, p_model, p_other))
    rng = np.random.default_rng(seed)
    roc, pr = [], []
    for idx in resamples(len(y), groups, n_boot, rng):
        yy = y[idx]
        if not 0 < yy.sum() < len(yy):
            continue
        roc.append(rank_roc_auc(yy, a[idx]) - rank_roc_auc(yy, b[idx]))
        pr.append(_average_precision(yy, a[idx]) - _average_precision(yy, b[idx]))
    out = {"roc_auc_diff": float(roc_auc_score(y, a) - roc_auc_score(y, b)),
           "pr_auc_diff": float(average_precision_score(y, a) - average_precision_score(y, b)),
           "resamples": len(roc)}
    for key, vals in (("roc_auc", roc), ("pr_auc", pr)):
        lo, hi = np.percentile(vals, [2.5, 97.5]) if vals else (np.nan, np.nan)
        out[f"{key}_lo"], out[f"{key}_hi"] = float(lo), float(hi)
    return out


def standing(d: dict[str, float]) -> dict[str, str]:
    """Where the model stands against one baseline (``paired_bootstrap``'s ROC-AUC figures):
    ``verdict`` "met" unless it is below beyond the 95% interval (issue 12's test: not below the
    baseline by more than the interval allows), and ``standing``, the words the terminal and the
    harness print, which say whether the point estimate is at least the baseline's (the acceptance
    bar) or below it within the interval: a tie, not a lead."""
    diff, lo, hi = d["roc_auc_diff"], d["roc_auc_lo"], d["roc_auc_hi"]
    if hi < 0:
        words = f"below it by {-diff:.4f} beyond the interval"
    elif diff < 0:
        words = f"below it by {-diff:.4f} within the interval: a tie, not a lead (at least its ROC-AUC: not met)"
    elif lo > 0:
        words = "ahead of it beyond the interval"
    else:
        words = "at least its ROC-AUC, within the interval"
    return {"verdict": "met" if hi >= 0 else "not met", "standing": words}

