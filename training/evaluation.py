"""Evaluation metrics of a churn model on one block of labelled rows (DESIGN §4).

Pure functions of ``y`` (observed churn, 0/1) and ``p`` (predicted churn probability, or
any risk score where noted: higher = more likely to churn). ``evaluate`` collects them
all into a JSON-ready dict.

Binning conventions (shared with ``training.plots``):

- reliability / ECE: rows sorted by ``p`` ascending (stable, so ties keep their input
  order) and cut into ``bins`` equal-count groups with ``np.array_split`` (the first
  ``n % bins`` groups hold one row more);
- deciles for lift: rows sorted by ``p`` descending (stable) and cut the same way into
  10 groups; the top decile is the first group, ``ceil(n / 10)`` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from core.errors import ChurnwatchError
from training.health import TIER_KEYS

#: Number of equal-count bins for ECE and the reliability plot (DESIGN §4).
ECE_BINS = 10
#: Number of groups for lift / gains (deciles).
N_DECILES = 10


class EvaluationError(ChurnwatchError, ValueError):
    """Labels or scores cannot be evaluated (lengths differ, NaN, labels not 0/1, one class)."""


class TopDecile(NamedTuple):
    """Top-decile summary: ``lift`` = churn rate in the top 10% by ``p`` / overall churn
    rate; ``capture`` = share of all churners that are in the top 10% (both unitless)."""

    lift: float
    capture: float


def _labels(y: ArrayLike) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise EvaluationError(f"y must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise EvaluationError("y is empty: nothing to evaluate")
    try:
        num = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"y must hold 0/1 churn labels, got e.g. {arr[:5]}") from exc
    if not np.isin(num, (0.0, 1.0)).all():
        raise EvaluationError(f"y must hold 0/1 churn labels, got values {np.unique(num)[:5]}")
    return num.astype(np.int64)


def validate_scores(
    y: ArrayLike, p: ArrayLike, *, probability: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Check ``y`` (0/1 labels) and ``p`` (finite scores, in [0, 1] if ``probability``)
    have one value per row; return them as int64 and float64 arrays.

    Raises:
        EvaluationError: empty, lengths differ, NaN/inf, labels not 0/1, or a probability
            outside [0, 1].
    """
    labels = _labels(y)
    scores = np.asarray(p, dtype=np.float64)
    if scores.shape != labels.shape:
        raise EvaluationError(
            f"y and p differ in shape: {labels.shape} labels vs {scores.shape} scores"
        )
    bad = ~np.isfinite(scores)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EvaluationError(f"p holds {int(bad.sum())} NaN or infinite value(s); first at {i}")
    if probability and (scores.min() < 0.0 or scores.max() > 1.0):
        raise EvaluationError(
            f"p must be probabilities in [0, 1], got range [{scores.min()}, {scores.max()}]"
        )
    return labels, scores


def _both_classes(labels: np.ndarray, metric: str) -> None:
    if labels.min() == labels.max():
        raise EvaluationError(
            f"{metric} needs both churned and retained rows; all {labels.size} rows are "
            f"{int(labels[0])}"
        )


def roc_auc(y: ArrayLike, p: ArrayLike) -> float:
    """ROC-AUC (unitless, 0.5 = random). ``p`` may be any risk score, higher = riskier."""
    labels, scores = validate_scores(y, p, probability=False)
    _both_classes(labels, "ROC-AUC")
    return float(roc_auc_score(labels, scores))


def pr_auc(y: ArrayLike, p: ArrayLike) -> float:
    """PR-AUC as average precision (unitless; random = base rate). ``p`` may be any risk
    score, higher = riskier."""
    labels, scores = validate_scores(y, p, probability=False)
    _both_classes(labels, "PR-AUC")
    return float(average_precision_score(labels, scores))


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Brier score: mean squared error of the probabilities (0 = perfect; lower is better)."""
    labels, scores = validate_scores(y, p, probability=True)
    return float(brier_score_loss(labels, scores, labels=[0, 1]))


def reliability_bins(y: ArrayLike, p: ArrayLike, bins: int = ECE_BINS) -> pd.DataFrame:
    """Equal-count bins of predicted probability (ascending, stable ties).

    Returns:
        One row per non-empty bin: ``bin`` (0 = lowest p), ``count``, ``mean_predicted``,
        ``observed_rate`` (share churned), ``p_min``, ``p_max``.
    """
    labels, scores = validate_scores(y, p, probability=True)
    if bins < 1:
        raise EvaluationError(f"bins must be >= 1, got {bins}")
    order = np.argsort(scores, kind="stable")
    rows = [
        {
            "bin": i,
            "count": int(idx.size),
            "mean_predicted": float(scores[idx].mean()),
            "observed_rate": float(labels[idx].mean()),
            "p_min": float(scores[idx].min()),
            "p_max": float(scores[idx].max()),
        }
        for i, idx in enumerate(np.array_split(order, bins))
        if idx.size
    ]
    return pd.DataFrame(rows)


def ece(y: ArrayLike, p: ArrayLike, bins: int = ECE_BINS) -> float:
    """Expected calibration error (probability units, 0 = perfectly calibrated).

    Weighted mean over ``bins`` equal-count bins of ``|observed churn rate - mean predicted|``,
    weights = each bin's share of the rows.
    """
    table = reliability_bins(y, p, bins)
    weights = table["count"] / table["count"].sum()
    return float((weights * (table["observed_rate"] - table["mean_predicted"]).abs()).sum())


def gains_by_decile(y: ArrayLike, p: ArrayLike) -> pd.DataFrame:
    """Churn and cumulative gains per decile of ``p`` (decile 1 = highest risk).

    ``p`` may be any risk score, higher = riskier.

    Returns:
        One row per non-empty decile: ``decile``, ``count``, ``churned``, ``churn_rate``,
        ``lift`` (decile churn rate / overall rate), ``cum_share_rows``,
        ``cum_capture`` (share of all churners in deciles 1..d), ``cum_lift``
        (``cum_capture / cum_share_rows``).

    Raises:
        EvaluationError: no churned row (lift and capture are undefined).
    """
    labels, scores = validate_scores(y, p, probability=False)
    total = int(labels.sum())
    if total == 0:
        raise EvaluationError(f"no churned row among {labels.size}: lift is undefined")
    base = total / labels.size
    order = np.argsort(-scores, kind="stable")
    groups = [idx for idx in np.array_split(order, N_DECILES) if idx.size]
    table = pd.DataFrame(
        {
            "decile": np.arange(1, len(groups) + 1),
            "count": [int(g.size) for g in groups],
            "churned": [int(labels[g].sum()) for g in groups],
        }
    )
    table["churn_rate"] = table["churned"] / table["count"]
    table["lift"] = table["churn_rate"] / base
    table["cum_share_rows"] = table["count"].cumsum() / labels.size
    table["cum_capture"] = table["churned"].cumsum() / total
    table["cum_lift"] = table["cum_capture"] / table["cum_share_rows"]
    return table


def top_decile(y: ArrayLike, p: ArrayLike) -> TopDecile:
    """Lift and capture of the top 10% of rows by ``p`` (``ceil(n / 10)`` rows, stable ties).

    Raises:
        EvaluationError: no churned row.
    """
    first = gains_by_decile(y, p).iloc[0]
    return TopDecile(lift=float(first["lift"]), capture=float(first["cum_capture"]))


def per_tier(y: ArrayLike, tiers: Sequence[str] | ArrayLike) -> pd.DataFrame:
    """Observed churn per health tier, in tier order (healthy first).

    Returns:
        Columns ``tier``, ``count``, ``churned``, ``churn_rate`` (share churned; NaN for a
        tier with no rows). Every tier is present, empty ones with count 0.

    Raises:
        EvaluationError: lengths differ or an unknown tier key.
    """
    labels = _labels(y)
    keys = np.asarray(tiers, dtype=object)
    if keys.shape != labels.shape:
        raise EvaluationError(f"y and tiers differ in shape: {labels.shape} vs {keys.shape}")
    unknown = sorted(set(keys.tolist()) - set(TIER_KEYS), key=str)
    if unknown:
        raise EvaluationError(f"unknown tier(s) {unknown[:5]}; expected one of {TIER_KEYS}")
    frame = pd.DataFrame({"tier": pd.Categorical(keys, categories=TIER_KEYS), "y": labels})
    grouped = frame.groupby("tier", observed=False)["y"]
    table = pd.DataFrame(
        {"count": grouped.size().astype(np.int64), "churned": grouped.sum().astype(np.int64)}
    ).reindex(list(TIER_KEYS), fill_value=0)
    table["churn_rate"] = table["churned"] / table["count"].where(table["count"] > 0)
    return table.rename_axis("tier").reset_index()


def _plain(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def evaluate(y: ArrayLike, p: ArrayLike, tiers: Sequence[str] | ArrayLike) -> dict[str, Any]:
    """All DESIGN §4 metrics of one model on one block, JSON-ready.

    Args:
        y: observed churn (0/1).
        p: calibrated churn probabilities in [0, 1].
        tiers: tier key per row (``HealthMap.tier`` output).

    Returns:
        ``{"n_rows", "n_churned", "base_rate", "roc_auc", "pr_auc", "brier", "ece",
        "top_decile_lift", "top_decile_capture", "per_tier": {tier: {"count", "churned",
        "churn_rate"}}}``; floats and ints only (``churn_rate`` is ``None`` for an
        empty tier).

    Raises:
        EvaluationError: bad input, or only one class in ``y``.
    """
    labels, scores = validate_scores(y, p, probability=True)
    _both_classes(labels, "evaluation")
    lift = top_decile(labels, scores)
    tiers_table = per_tier(labels, tiers)
    return {
        "n_rows": int(labels.size),
        "n_churned": int(labels.sum()),
        "base_rate": float(labels.mean()),
        "roc_auc": roc_auc(labels, scores),
        "pr_auc": pr_auc(labels, scores),
        "brier": brier(labels, scores),
        "ece": ece(labels, scores),
        "top_decile_lift": lift.lift,
        "top_decile_capture": lift.capture,
        "per_tier": {
            row["tier"]: {
                "count": int(row["count"]),
                "churned": int(row["churned"]),
                "churn_rate": _plain(row["churn_rate"]),
            }
            for row in tiers_table.to_dict("records")
        },
    }
