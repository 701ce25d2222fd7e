"""Paired bootstrap of the model-minus-baseline difference in ROC-AUC and PR-AUC on test rows.

Both scores of a resample come from the same resampled rows (paired). With ``groups``
(account ids) whole accounts are resampled, because the rows of one account on several
as-of dates are not independent. The interval is the 2.5-97.5% percentile range of the
resampled differences; the point estimate is the difference on all rows.

A resample is its rows' counts (``resample_counts``: how often each row was drawn), and a score
vector is ranked once (``Ranked``): a resample's ROC-AUC and PR-AUC are then weighted sums over the
distinct scores (a bincount), the values a sort of the resampled rows would give (ties counted half,
tied scores one threshold), without sorting 300 resamples of every score vector.
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


def resample_counts(n: int, groups: ArrayLike | None, n_boot: int,
                    rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``resamples`` as counts: how often each of the ``n`` rows is in each resample (the same draws
    of ``rng``, so the same resamples)."""
    if groups is None:
        for _ in range(n_boot):
            yield np.bincount(rng.integers(0, n, n), minlength=n)
        return
    _, row_group = np.unique(np.asarray(groups).astype(str), return_inverse=True)  # group_rows' order
    n_groups = int(row_group.max()) + 1 if n else 0
    for _ in range(n_boot):
        yield np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[row_group]


def two_class_counts(y: np.ndarray, groups: ArrayLike | None, n_boot: int,
                     rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``resample_counts`` over the rows of the 0/1 labels ``y``, less the resamples of one class only (no
    ROC-AUC there); the draws stay those of ``rng``."""
    labels = np.asarray(y, dtype=np.float64)
    for counts in resample_counts(labels.size, groups, n_boot, rng):
        if 0 < np.dot(counts, labels) < counts.sum():
            yield counts


class Ranked:
    """A score vector's distinct values (ascending) and each row's place among them, computed once."""

    def __init__(self, scores: np.ndarray) -> None:
        values = np.asarray(scores, dtype=np.float64)
        if np.isnan(values).any():  # np.unique would rank NaN above every score
            raise ValueError("scores must not be NaN")
        _, self.place = np.unique(values, return_inverse=True)
        self.size = int(self.place.max()) + 1 if self.place.size else 0

    def tallies(self, y: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Churned and retained rows at each distinct score, rows counted ``counts`` times."""
        pos = np.bincount(self.place, weights=counts * y, minlength=self.size)
        return pos, np.bincount(self.place, weights=counts * (1.0 - y), minlength=self.size)

    def roc_auc(self, y: np.ndarray, counts: np.ndarray) -> float:
        """``rank_roc_auc`` of the rows repeated ``counts`` times (both classes must be present)."""
        pos, neg = self.tallies(y, counts)
        below = np.cumsum(neg) - neg
        return float(np.dot(pos, below + 0.5 * neg) / (pos.sum() * neg.sum()))

    def average_precision(self, y: np.ndarray, counts: np.ndarray) -> float:
        """Average precision (scikit-learn's: tied scores one threshold) of the rows repeated ``counts`` times
        (a churner must be present)."""
        pos, neg = self.tallies(y, counts)
        tps, seen = np.cumsum(pos[::-1]), np.cumsum((pos + neg)[::-1])  # from the highest score down
        precision = np.divide(tps, seen, out=np.zeros_like(tps), where=seen > 0)
        return float(np.dot(np.diff(np.r_[0.0, tps / tps[-1]]), precision))


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


def paired_bootstrap(y: ArrayLike, p_model: ArrayLike, p_other: ArrayLike, groups: ArrayLike | None = None,
                     n_boot: int = 300, seed: int = 0) -> dict[str, float]:
    """Difference (model - other) in ROC-AUC and PR-AUC with a 95% bootstrap interval.

    Returns:
        ``roc_auc_diff``, ``roc_auc_lo``, ``roc_auc_hi``, ``pr_auc_diff``, ``pr_auc_lo``,
        ``pr_auc_hi`` and ``resamples`` (resamples with both classes, the ones used).
    """
    y, a, b = (np.asarray(v, dtype=np.float64) for v in (y, p_model, p_other))
    rng = np.random.default_rng(seed)
    ra, rb = Ranked(a), Ranked(b)
    roc, pr = [], []
    for counts in two_class_counts(y, groups, n_boot, rng):
        roc.append(ra.roc_auc(y, counts) - rb.roc_auc(y, counts))
        pr.append(ra.average_precision(y, counts) - rb.average_precision(y, counts))
    out = {"roc_auc_diff": float(roc_auc_score(y, a) - roc_auc_score(y, b)),
           "pr_auc_diff": float(average_precision_score(y, a) - average_precision_score(y, b)),
           "resamples": len(roc)}
    for key, vals in (("roc_auc", roc), ("pr_auc", pr)):
        lo, hi = np.percentile(vals, [2.5, 97.5]) if vals else (np.nan, np.nan)
        out[f"{key}_lo"], out[f"{key}_hi"] = float(lo), float(hi)
    return out


def gap(x: float, sign: bool = True) -> str:
    """A difference of ROC-AUCs to four decimals, or in scientific notation where four decimals would show
    0.0000 for a difference that is not 0 (probe p58: "ROC-AUC -0.0000 ... below it by 0.0000 ... not met")."""
    if x and abs(x) < 5e-5:
        return f"{x:+.1e}" if sign else f"{x:.1e}"
    return f"{x:+.4f}" if sign else f"{x:.4f}"


def standing(d: dict[str, float]) -> dict[str, str]:
    """Where the model stands against one baseline (``paired_bootstrap``'s ROC-AUC figures):
    ``verdict`` "met" unless it is below beyond the 95% interval (issue 12's test: not below the
    baseline by more than the interval allows), and ``standing``, the words the terminal and the
    harness print, which say whether the point estimate is at least the baseline's (the acceptance
    bar) or below it within the interval: a tie, not a lead."""
    diff, lo, hi = d["roc_auc_diff"], d["roc_auc_lo"], d["roc_auc_hi"]
    if hi < 0:
        words = f"below it by {gap(-diff, False)} beyond the interval"
    elif diff < 0:
        words = (f"below it by {gap(-diff, False)} within the interval: a tie, not a lead (at least its ROC-AUC: "
                 "not met)")
    elif lo > 0:
        words = "ahead of it beyond the interval"
    else:
        words = "at least its ROC-AUC, within the interval"
    return {"verdict": "met" if hi >= 0 else "not met", "standing": words}

