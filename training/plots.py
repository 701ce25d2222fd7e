"""Evaluation figures written as PNG files (DESIGN §4): reliability, ROC/PR, lift, SHAP.

Each function writes one PNG (creating the parent folder) and returns its path; nothing
is shown. The first three build a ``matplotlib.figure.Figure`` directly (rendered by Agg,
never registered with pyplot, so no global state and no display needed). The SHAP
beeswarm has to go through pyplot because ``shap.summary_plot`` draws on the current
figure; that figure is closed as soon as it is saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_curve, roc_curve

from core.plotfonts import with_plot_fonts
from training.evaluation import (
    ECE_BINS,
    EvaluationError,
    ece,
    gains_by_decile,
    pr_auc,
    reliability_bins,
    roc_auc,
    validate_scores,
)

#: Resolution of the written PNGs, dots per inch.
DPI = 120


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI, bbox_inches="tight")
    return out


@with_plot_fonts
def reliability_plot(y: ArrayLike, p: ArrayLike, path: str | Path, bins: int = ECE_BINS) -> Path:
    """Reliability diagram: observed churn rate vs mean predicted probability per bin.

    Bins are the equal-count bins of ``training.evaluation.reliability_bins``; the ECE
    is in the title and the diagonal marks perfect calibration.

    Args:
        y: observed churn (0/1).
        p: predicted churn probabilities in [0, 1].
        path: PNG file to write.
        bins: number of equal-count bins.

    Returns:
        The written path.
    """
    table = reliability_bins(y, p, bins)
    fig = Figure(figsize=(5.5, 5.0))
    ax = fig.add_subplot()
    top = max(float(table["mean_predicted"].max()), float(table["observed_rate"].max()), 0.05)
    lim = min(1.0, top * 1.1)
    ax.plot([0, lim], [0, lim], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_xlabel("mean predicted churn probability (per bin)")
    ax.set_ylabel("observed churn rate (per bin)")
    ax.set_title(f"Reliability, {len(table)} equal-count bins (ECE = {ece(y, p, bins):.4f})")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


@with_plot_fonts
def roc_pr_plot(y: ArrayLike, curves: Mapping[str, ArrayLike], path: str | Path) -> Path:
    """ROC (left) and precision-recall (right) curves, one per model, AUCs in the legend.

    Args:
        y: observed churn (0/1), both classes present.
        curves: model name -> risk score per row (higher = more likely to churn), e.g.
            ``{"model: blend, tree weight 0.5": p, "logistic": p_lr, "rule health": 100 - health}``.
        path: PNG file to write.

    Returns:
        The written path.

    Raises:
        EvaluationError: no curve, or a score array does not match ``y``.
    """
    if not curves:
        raise EvaluationError("roc_pr_plot needs at least one model's scores")
    fig = Figure(figsize=(11.0, 5.0))
    ax_roc, ax_pr = fig.subplots(1, 2)
    base_rate = None
    for name, scores in curves.items():
        labels, s = validate_scores(y, scores, probability=False)
        base_rate = float(labels.mean())
        fpr, tpr, _ = roc_curve(labels, s)
        precision, recall, _ = precision_recall_curve(labels, s)
        ax_roc.plot(fpr, tpr, label=f"{name} (ROC-AUC {roc_auc(labels, s):.3f})")
        ax_pr.step(
            recall, precision, where="post", label=f"{name} (PR-AUC {pr_auc(labels, s):.3f})"
        )
    ax_roc.plot([0, 1], [0, 1], linestyle="--", color="grey", label="no skill")
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate (recall)")
    ax_roc.set_title("ROC")
    ax_pr.axhline(
        base_rate, linestyle="--", color="grey", label=f"no skill (base rate {base_rate:.3f})"
    )
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("Precision-recall")
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is ax_roc else "upper right", fontsize="small")
    return _save(fig, path)


@with_plot_fonts
def lift_plot(y: ArrayLike, p: ArrayLike, path: str | Path) -> Path:
    """Cumulative gains (left) and lift per decile (right) of one model's risk scores.

    Deciles are those of ``training.evaluation.gains_by_decile`` (decile 1 = highest risk).

    Args:
        y: observed churn (0/1) with at least one churner.
        p: risk score per row, higher = more likely to churn.
        path: PNG file to write.

    Returns:
        The written path.
    """
    table = gains_by_decile(y, p)
    fig = Figure(figsize=(11.0, 5.0))
    ax_gain, ax_lift = fig.subplots(1, 2)
    x = np.r_[0.0, table["cum_share_rows"].to_numpy()]
    gains = np.r_[0.0, table["cum_capture"].to_numpy()]
    ax_gain.plot(x, gains, marker="o", label="model")
    ax_gain.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    ax_gain.set_xlabel("share of accounts contacted (highest risk first)")
    ax_gain.set_ylabel("share of churners captured")
    ax_gain.set_title(f"Cumulative gains (top decile captures {gains[1]:.0%})")
    ax_gain.set_xlim(0, 1)
    ax_gain.set_ylim(0, 1.02)
    ax_gain.legend(loc="lower right")
    ax_gain.grid(alpha=0.3)
    ax_lift.bar(table["decile"], table["lift"], color="tab:blue")
    ax_lift.axhline(1.0, linestyle="--", color="grey", label="random (lift 1)")
    ax_lift.set_xticks(table["decile"].tolist())
    ax_lift.set_xlabel("decile of predicted risk (1 = highest)")
    ax_lift.set_ylabel("lift (decile churn rate / overall rate)")
    ax_lift.set_title(f"Lift by decile (top decile {table['lift'].iloc[0]:.2f}x)")
    ax_lift.legend(loc="upper right")
    ax_lift.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def numeric_for_plot(X: pd.DataFrame) -> pd.DataFrame:
    """``X`` with every column as float64 so SHAP can colour it by value.

    Numbers and booleans become floats (missing -> NaN); categoricals, strings and
    objects become their category codes (categories in the dtype's order, else sorted
    as strings; missing -> NaN).
    """
    out: dict[str, np.ndarray] = {}
    for name in X.columns:
        col = X[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy(dtype=np.float64)
        elif pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
            out[name] = col.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        else:
            codes = pd.Categorical(col.astype("string")).codes.astype(np.float64)
        codes[codes < 0] = np.nan
        out[name] = codes
    return pd.DataFrame(out, index=X.index, columns=X.columns)


@with_plot_fonts
def shap_summary_plot(
    contribs: np.ndarray,
    X: pd.DataFrame,
    path: str | Path,
    max_display: int = 20,
    seed: int = 0,
) -> Path:
    """SHAP beeswarm of per-feature contributions, coloured by feature value.

    Args:
        contribs: (n_rows, n_features) contributions in raw log-odds units, e.g.
            LightGBM ``pred_contrib`` output with its last (bias) column dropped.
        X: the same rows' feature values, columns in the same order; categorical and
            string columns are plotted as their codes (``numeric_for_plot``).
        path: PNG file to write.
        max_display: number of features shown (highest mean |contribution| first).
        seed: seed of the beeswarm's jitter (the plot is reproducible).

    Returns:
        The written path.

    Raises:
        EvaluationError: shapes of ``contribs`` and ``X`` disagree.
    """
    import matplotlib.pyplot as plt
    import shap

    values = np.asarray(contribs, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != len(X) or values.shape[1] != X.shape[1]:
        hint = (
            " (drop LightGBM's last pred_contrib column, the bias)"
            if values.ndim == 2 and values.shape[1] == X.shape[1] + 1
            else ""
        )
        raise EvaluationError(
            f"contribs of shape {values.shape} do not match X of shape {X.shape}{hint}"
        )
    fig = plt.figure()
    drawn = fig
    try:
        shap.summary_plot(
            values,
            numeric_for_plot(X),
            feature_names=[str(c) for c in X.columns],
            max_display=max_display,
            show=False,
            rng=np.random.default_rng(seed),
        )
        drawn = plt.gcf()
        return _save(drawn, path)
    finally:
        plt.close(drawn)
        plt.close(fig)
