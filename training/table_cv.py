"""Cross-validated evaluation of a flat table's model: every customer scored once, by a model
fitted without it (``churnwatch train --table ... --cross-validate K``).

A flat table of a few thousand customers leaves a test split of a few hundred to a few thousand
rows, too few to tell a calibration error of 0.02 from chance (on 1,400 rows at a 26% base rate a
perfectly calibrated model shows an ECE of about 0.025). Here the whole training procedure (model
choice, early stopping, calibration, health map: ``fit_and_evaluate``, given as ``fit``) runs
``K`` times, each on ``K - 1`` stratified folds of *all* customers, and scores the fold it did not
see; the logistic baseline is fitted and scored the same way. The pooled out-of-fold
probabilities, tiers and baseline scores are judged as one test set: ROC-AUC with its interval,
the paired bootstrap against the baseline, ECE with its debiased estimate and noise floor,
churn by tier. The registered model is still the one fitted on the training split; these
figures describe the procedure that made it, on every customer.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from features.spec import Catalogue
from training.bootstrap import paired_bootstrap, standing
from training.errors import TrainingError
from training.evaluation import evaluate, roc_auc

#: The most folds ``--cross-validate`` accepts (each is a whole training run).
MAX_FOLDS = 10


def check_folds(folds: int, y: np.ndarray) -> None:
    """``folds`` between 2 and ``MAX_FOLDS`` and no more than the churned or retained customers."""
    if not 2 <= folds <= MAX_FOLDS:
        raise TrainingError(f"--cross-validate {folds}: give 2 to {MAX_FOLDS} folds (0 = no cross-validation)")
    fewest = int(min(y.sum(), (1 - y).sum()))
    if folds > fewest:
        raise TrainingError(f"--cross-validate {folds}: only {fewest} customers in the smaller class; "
                            "give fewer folds")


def cross_validate_table(rows: pd.DataFrame, catalogue: Catalogue, folds: int, fit: Callable, seed: int = 0,
                         allow_leaky: tuple[str, ...] = (), say: Callable[[str], None] | None = None) -> dict:
    """The training procedure ``fit`` run on ``folds`` - 1 stratified folds of ``rows`` at a time,
    each fold scored by the model fitted without it.

    Args:
        rows: every customer (features, ``churn_label``, ``account_id``).
        fit: ``training.train.fit_and_evaluate``.

    Returns:
        ``evaluate``'s metrics of the pooled out-of-fold probabilities and tiers, plus ``folds``,
        ``fold_models`` (model and calibration chosen per fold, in fold order), ``vs_logistic``
        (paired bootstrap of model minus logistic regression, ``verdict``), ``logistic_roc_auc`` and
        ``scores``: a frame with ``account_id``, ``fold``, ``churn_label``, ``churn_probability``,
        ``tier`` and ``logistic`` per customer, in ``rows``' order.
    """
    say = say or (lambda _m: None)
    y = rows["churn_label"].to_numpy(dtype=int)
    check_folds(folds, y)
    n = len(rows)
    fold = np.full(n, -1)
    p, p_lr = np.full(n, np.nan), np.full(n, np.nan)
    tiers = np.empty(n, dtype=object)
    chosen: list[str] = []
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(n), y)
    for k, (fitted_on, scored) in enumerate(splits):
        say(f"cross-validation: fold {k + 1} of {folds}, {len(scored):,} customers scored by a model fitted "
            f"on the other {len(fitted_on):,}")
        with tempfile.TemporaryDirectory(prefix="churnwatch-cv-") as tmp:  # the fold's files are not kept
            result = fit(rows.iloc[fitted_on], None, None, None, rows.iloc[scored], catalogue, Path(tmp),
                         seed=seed, rule_baseline=False, progress=None, allow_leaky=allow_leaky, draw=False)
        fold[scored] = k
        p[scored] = result.test_scores["churn_probability"]
        tiers[scored] = result.test_scores["tier"]
        p_lr[scored] = result.test_scores["logistic"]
        chosen.append(f"{result.metrics['model']}, {result.metrics['calibration']}")
    metrics = evaluate(y, p, tiers)
    versus = paired_bootstrap(y, p, p_lr, seed=seed)
    versus.update(standing(versus))
    scores = pd.DataFrame({"account_id": rows["account_id"].to_numpy(), "fold": fold, "churn_label": y,
                           "churn_probability": p, "tier": tiers, "logistic": p_lr})
    out = {**metrics, "folds": folds, "fold_models": chosen, "vs_logistic": versus,
           "logistic_roc_auc": roc_auc(y, p_lr), "scores": scores}
    for line in cv_lines(out):
        say(line)
    return out


def cv_lines(cv: dict) -> list[str]:
    """The cross-validated figures as the terminal shows them."""
    d = cv["vs_logistic"]
    rates = [t["churn_rate"] for t in cv["per_tier"].values()]
    present = [r for r in rates if r is not None]
    rising = all(a < b for a, b in zip(present, present[1:]))
    # a fold's choice is "model, calibration": worded so the pairs do not read as a list of their parts (p33)
    models = "; ".join(f"{name.replace(', ', ' with ', 1)} calibration in {count} fold{'s' if count > 1 else ''}"
                       for name, count in Counter(cv["fold_models"]).items())
    return [
        f"cross-validated over all {cv['n_rows']:,} customers ({cv['folds']} folds; chosen per fold: {models}): "
        f"ROC-AUC {cv['roc_auc']:.4f} (95% {cv['roc_auc_lo']:.4f} to {cv['roc_auc_hi']:.4f}), logistic regression "
        f"{cv['logistic_roc_auc']:.4f}; model - logistic {d['roc_auc_diff']:+.4f} (95% {d['roc_auc_lo']:+.4f} to "
        f"{d['roc_auc_hi']:+.4f}), {d.get('standing', 'compared')}; not below it beyond the interval: {d['verdict']}",
        f"cross-validated calibration: ECE {cv['ece']:.4f}, debiased {cv['ece_debiased']:.4f} (95% "
        f"{cv['ece_debiased_lo']:.4f} to {cv['ece_debiased_hi']:.4f}); a perfectly calibrated model would show "
        f"about {cv['ece_noise']:.4f} by chance; target <= {cv['ece_target']:.4f}: {cv['ece_verdict']}; mean "
        f"predicted {cv['mean_predicted']:.4f} against {cv['base_rate']:.4f} observed",
        "cross-validated churn by tier: " + " / ".join(
            f"{tier} {'-' if r is None else f'{r:.1%}'}" for tier, r in zip(cv["per_tier"], rates))
        + (" (rising)" if rising else " (not rising)"),
    ]


def cv_metrics(cv: dict) -> dict[str, float]:
    """The figures as MLflow metrics (``cv_*``)."""
    out = {f"cv_{k}": float(cv[k]) for k in ("roc_auc", "roc_auc_lo", "roc_auc_hi", "pr_auc", "brier", "ece",
                                              "ece_debiased", "ece_debiased_lo", "ece_debiased_hi", "ece_noise",
                                              "ece_target", "mean_predicted", "base_rate", "logistic_roc_auc")}
    out.update({f"cv_vs_logistic_{k}": float(cv["vs_logistic"][k])
                for k in ("roc_auc_diff", "roc_auc_lo", "roc_auc_hi", "pr_auc_diff", "pr_auc_lo", "pr_auc_hi")})
    for tier, d in cv["per_tier"].items():
        if d["churn_rate"] is not None:
            out[f"cv_tier_{tier}_churn_rate"] = float(d["churn_rate"])
    return out


def cv_record(cv: dict) -> dict:
    """The figures for the bundle's metadata (JSON: no per-customer scores)."""
    return {k: v for k, v in cv.items() if k != "scores"}
