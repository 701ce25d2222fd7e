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

Over 400 lines: ECE's debiased estimate and noise floor (account-clustered) share the bins and
input checks of the plain metrics, and splitting them off would split one binning convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from core.errors import ChurnwatchError
from training.bootstrap import Ranked, resamples, two_class_counts
from training.health import TIER_KEYS

#: Number of equal-count bins for ECE and the reliability plot (DESIGN §4).
ECE_BINS = 10
#: Number of groups for lift / gains (deciles).
N_DECILES = 10
#: The calibration bar: ECE at most this (probability units) and at most ``ECE_RELATIVE`` x base rate.
ECE_ABSOLUTE = 0.02
ECE_RELATIVE = 0.1
#: Resamples of the bootstrap intervals, draws of the noise simulations.
N_BOOT = 300
N_SIM = 200
#: Fewer churned test rows than this: ``measurement_notes`` warns that ROC-AUC is barely measurable.
FEW_POSITIVES = 50


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


def pr_auc_at_base_rate(y: ArrayLike, p: ArrayLike, base_rate: float) -> float:
    """PR-AUC as it would be at another ``base_rate`` with the same ranking: churned rows weighted so that
    they make up ``base_rate`` of the weight (average precision is the base rate for a random ranking, so
    PR-AUCs of two churn rates are not comparable as they are; ROC-AUC is)."""
    labels, scores = validate_scores(y, p, probability=False)
    _both_classes(labels, "PR-AUC")
    if not 0.0 < base_rate < 1.0:
        raise ChurnwatchError(f"base rate {base_rate} must lie strictly between 0 and 1")
    churned = labels.sum()
    weight = base_rate * (labels.size - churned) / ((1.0 - base_rate) * churned)
    return float(average_precision_score(labels, scores, sample_weight=np.where(labels == 1, weight, 1.0)))


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


def _bin_parts(scores: np.ndarray, bins: int) -> list[np.ndarray]:
    """Row indices of the equal-count bins (``reliability_bins``' convention)."""
    return [idx for idx in np.array_split(np.argsort(scores, kind="stable"), bins) if idx.size]


def _bin_stats(labels: np.ndarray, scores: np.ndarray, bins: int,
               groups: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    # groups: integer account codes >= 0 (``ece_estimates`` makes them)
    """Per equal-count bin: row counts, churn rates, mean p and the standard error of the churn
    rate: binomial (``rate (1 - rate) / count``) without ``groups``, else account-clustered (the
    bin's residuals ``y - p``, centred on the bin's gap, summed per account, squared and added:
    a churner is labelled 1 on every as-of date of its horizon, so rows are not independent)."""
    parts = _bin_parts(scores, bins)
    counts = np.array([idx.size for idx in parts], dtype=np.float64)
    rates = np.array([labels[i].mean() for i in parts])
    means = np.array([scores[i].mean() for i in parts])
    if groups is None:
        se = np.sqrt(rates * (1 - rates) / counts)
    else:
        se = np.array([np.sqrt((_group_sums(_centred(labels, scores, i), groups[i]) ** 2).sum()) / i.size
                       for i in parts])
    return counts, rates, means, se


def _centred(labels: np.ndarray, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    r = labels[idx] - scores[idx]
    return r - r.mean()


def _group_sums(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Sums of ``values`` per group (``codes``: integer group codes >= 0); empty groups give 0."""
    return np.bincount(codes, weights=values)


def _debiased(counts: np.ndarray, rates: np.ndarray, means: np.ndarray, se: np.ndarray, rng: np.random.Generator,
              n_sim: int) -> float:
    """Kumar et al. (2019)'s normal debiasing of the binned L1 error: ``2 x plug-in - mean of
    the plug-in errors of bin rates redrawn from N(rate, se)`` (``se``: ``_bin_stats``)."""
    w = counts / counts.sum()
    plug_in = float(w @ np.abs(rates - means))
    draws = rng.normal(rates, se, size=(n_sim, rates.size))
    return 2 * plug_in - float((np.abs(draws - means) @ w).mean())


def ece_noise(p: ArrayLike, bins: int = ECE_BINS, n_sim: int = N_SIM, seed: int = 0,
              y: ArrayLike | None = None, groups: ArrayLike | None = None) -> float:
    """The ECE a perfectly calibrated model shows on these rows by chance (probability units),
    the median over ``n_sim`` draws. An ECE near it measures nothing but noise.

    Without ``groups``: labels drawn as independent Bernoulli(p). With ``y`` and ``groups``
    (account ids): a wild cluster bootstrap, which keeps the dependence of an account's rows
    (a churner is labelled 1 on every as-of date of its horizon; independent draws understate
    the noise about twofold on the demo): each account's residuals ``y - p`` (centred on their
    bin's gap, so the miscalibration itself is not counted as noise) flip sign together at random.
    """
    scores = np.asarray(p, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if groups is None or y is None:
        sims = [ece((rng.random(scores.size) < scores).astype(np.int64), scores, bins) for _ in range(n_sim)]
        return float(np.median(sims))
    labels = np.asarray(y, dtype=np.float64)
    codes, inverse = np.unique(np.asarray(groups), return_inverse=True)
    sums = np.zeros((bins, codes.size))  # bin x account: sums of the centred residuals
    for b, idx in enumerate(_bin_parts(scores, bins)):
        np.add.at(sums[b], inverse[idx], _centred(labels, scores, idx))
    signs = rng.choice([-1.0, 1.0], size=(n_sim, codes.size))
    return float(np.median(np.abs(signs @ sums.T).sum(axis=1) / scores.size))


def ece_estimates(y: ArrayLike, p: ArrayLike, groups: ArrayLike | None = None, bins: int = ECE_BINS,
                  n_boot: int = N_BOOT, seed: int = 0) -> dict[str, float]:
    """ECE with what it can and cannot tell on this many rows.

    Args:
        y: observed churn (0/1).
        p: calibrated churn probabilities.
        groups: account ids: the bootstrap resamples whole accounts, and the debiasing and the
            noise floor use account-clustered variances (rows of one account on several as-of
            dates are not independent); ``None`` treats rows as independent.

    Returns:
        ``ece`` (plain, ``ece``), ``ece_debiased`` (Kumar et al. 2019's debiased estimate),
        ``ece_debiased_lo`` / ``_hi`` (its bootstrap 95% interval, shifted by the resamples'
        mean bias: a resample's bins carry extra noise that the debiasing only partly removes) and
        ``ece_noise`` (``ece_noise``), all in probability units and floored at 0.
    """
    labels, scores = validate_scores(y, p, probability=True)
    gid = None if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    rng = np.random.default_rng(seed)
    point = _debiased(*_bin_stats(labels, scores, bins, gid), rng, N_SIM)
    boots = []
    for idx in resamples(labels.size, gid, n_boot, rng):
        # a resampled account drawn twice counts as two accounts: ids = position of its block's draw
        draw = None if gid is None else np.cumsum(np.r_[False, gid[idx][1:] != gid[idx][:-1]])
        boots.append(_debiased(*_bin_stats(labels[idx], scores[idx], bins, draw), rng, 50))
    bias = float(np.mean(boots)) - point
    lo, hi = np.percentile(boots, [2.5, 97.5]) - bias
    point = max(0.0, point)
    return {"ece": ece(labels, scores, bins), "ece_debiased": point,
            "ece_debiased_lo": max(0.0, min(float(lo), point)), "ece_debiased_hi": max(float(hi), point),
            "ece_noise": ece_noise(scores, bins, seed=seed, y=labels, groups=gid)}


def shifted_to_base_rate(y: ArrayLike, p: ArrayLike) -> np.ndarray:
    """``p`` moved by one constant on the log-odds scale so that its mean is the observed churn
    rate of ``y``: the predictions with calibration-in-the-large removed (the order, and so the
    equal-count bins, unchanged). Their ECE is the part that a base rate moving between the
    calibration rows' dates and the test dates does not explain (a diagnostic of the test rows:
    it uses their labels)."""
    labels, scores = validate_scores(y, p, probability=True)
    _both_classes(labels, "calibration-in-the-large")
    z = logit(np.clip(scores, 1e-15, 1 - 1e-15))
    shift = brentq(lambda k: float(expit(z + k).mean()) - labels.mean(), -40.0, 40.0)
    return expit(z + shift)


def ece_verdict(estimates: dict[str, float], base_rate: float) -> tuple[str, float]:
    """Is ECE <= min(``ECE_ABSOLUTE``, ``ECE_RELATIVE`` x base rate)? ``(verdict, target)``.

    ``not measurable``: a perfectly calibrated model would typically not meet the target on these rows
    (``ece_noise`` > target) and the debiased interval reaches it, whatever the plain ECE (a probe's 1,400
    test rows: 0.0194 against 0.02 was "met" though chance alone gives 0.027 there, and another split of
    the same table was "not met"). ``met``: the noise is within the target and so is the plain ECE.
    ``not met``: otherwise.
    """
    target = min(ECE_ABSOLUTE, ECE_RELATIVE * base_rate)
    if estimates["ece_noise"] > target:
        return ("not measurable" if estimates["ece_debiased_lo"] <= target else "not met"), target
    return ("met" if estimates["ece"] <= target else "not met"), target


def roc_auc_interval(y: ArrayLike, p: ArrayLike, groups: ArrayLike | None = None, n_boot: int = N_BOOT,
                     seed: int = 0) -> tuple[float, float]:
    """Bootstrap 95% interval of ROC-AUC (whole accounts resampled when ``groups`` is given)."""
    labels, scores = validate_scores(y, p, probability=False)
    rng = np.random.default_rng(seed)
    ranked, y = Ranked(scores), labels.astype(np.float64)
    vals = []
    for counts in two_class_counts(y, groups, n_boot, rng):
        vals.append(ranked.roc_auc(y, counts))
    lo, hi = np.percentile(vals, [2.5, 97.5]) if vals else (np.nan, np.nan)
    return float(lo), float(hi)


def measurement_notes(metrics: dict[str, Any], dated: bool = True) -> list[str]:
    """Plain-language warnings on what the test rows can measure (``evaluate``'s output); ``dated``:
    rows of accounts x as-of dates (a flat table's are customers: more of them, not more history)."""
    notes = []
    if "ece_verdict" in metrics:
        notes.append(
            f"calibration on the test rows: ECE {metrics['ece']:.4f}, debiased {metrics['ece_debiased']:.4f} "
            f"(95% {metrics['ece_debiased_lo']:.4f} to {metrics['ece_debiased_hi']:.4f}); a perfectly "
            f"calibrated model would show about {metrics['ece_noise']:.4f} here by chance; target "
            f"<= {metrics['ece_target']:.4f}: {metrics['ece_verdict']}")
    if "mean_predicted" in metrics:  # calibration-in-the-large: does the level or the shape miss?
        rows = metrics.get("calibration_base_rate")
        notes.append(
            f"calibration in the large: mean predicted {metrics['mean_predicted']:.4f} against "
            f"{metrics['base_rate']:.4f} observed in the test rows"
            + (f" ({rows:.4f} in the rows the calibration was fitted on)" if rows is not None else "")
            + f"; shifted to the observed rate, ECE {metrics['ece_level_corrected']:.4f}")
    rates = [(tier, d["churn_rate"]) for tier, d in metrics.get("per_tier", {}).items() if d["churn_rate"] is not None]
    falls = [(a, b) for a, b in zip(rates, rates[1:]) if b[1] <= a[1]]
    if falls:  # the tiers order accounts by risk: a riskier tier that churns less says the map does not hold
        notes.append("warning: churn does not rise across the tiers on the test rows ("
                     + "; ".join(f"{b[0]} {b[1]:.1%} against {a[0]} {a[1]:.1%}" for a, b in falls)
                     + "): the tiers do not order risk here; see the churn by tier below")
    if metrics["n_churned"] < FEW_POSITIVES:
        width = metrics.get("roc_auc_hi", np.nan) - metrics.get("roc_auc_lo", np.nan)
        more = "history" if dated else "customers"
        notes.append(
            f"warning: only {metrics['n_churned']} churned rows in the test rows (fewer than {FEW_POSITIVES}): "
            f"ROC-AUC {metrics['roc_auc']:.3f} has a 95% interval {metrics.get('roc_auc_lo', np.nan):.3f} to "
            f"{metrics.get('roc_auc_hi', np.nan):.3f} (width {width:.3f}); judge this model on more {more}")
    return notes


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


def evaluate(y: ArrayLike, p: ArrayLike, tiers: Sequence[str] | ArrayLike,
             groups: ArrayLike | None = None) -> dict[str, Any]:
    """All DESIGN §4 metrics of one model on one block, JSON-ready.

    Args:
        y: observed churn (0/1).
        p: calibrated churn probabilities in [0, 1].
        tiers: tier key per row (``HealthMap.tier`` output).
        groups: account ids for the bootstrap intervals (whole accounts resampled).

    Returns:
        ``{"n_rows", "n_churned", "base_rate", "roc_auc", "roc_auc_lo", "roc_auc_hi",
        "pr_auc", "brier", "ece", "ece_debiased", "ece_debiased_lo", "ece_debiased_hi",
        "ece_noise", "ece_target", "ece_verdict", "mean_predicted", "ece_level_corrected",
        "top_decile_lift", "top_decile_capture", "per_tier": {tier: {"count", "churned", "churn_rate"}}}``;
        floats, ints and the verdict string (``ece_verdict``) only (``churn_rate`` is ``None`` for an
        empty tier). ``mean_predicted`` against ``base_rate`` is calibration-in-the-large;
        ``ece_level_corrected`` the ECE of ``shifted_to_base_rate``'s predictions.

    Raises:
        EvaluationError: bad input, or only one class in ``y``.
    """
    labels, scores = validate_scores(y, p, probability=True)
    _both_classes(labels, "evaluation")
    lift = top_decile(labels, scores)
    tiers_table = per_tier(labels, tiers)
    calibration = ece_estimates(labels, scores, groups)
    verdict, target = ece_verdict(calibration, float(labels.mean()))
    lo, hi = roc_auc_interval(labels, scores, groups)
    level = ece(labels, shifted_to_base_rate(labels, scores))
    return {
        "n_rows": int(labels.size),
        "n_churned": int(labels.sum()),
        "base_rate": float(labels.mean()),
        "roc_auc": roc_auc(labels, scores),
        "roc_auc_lo": lo,
        "roc_auc_hi": hi,
        "pr_auc": pr_auc(labels, scores),
        "brier": brier(labels, scores),
        **calibration,
        "ece_target": target,
        "ece_verdict": verdict,
        "mean_predicted": float(scores.mean()),
        "ece_level_corrected": level,
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
