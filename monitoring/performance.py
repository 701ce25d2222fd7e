"""Performance on the matured score history against the figures at training time (DESIGN §6).

A score of ``(account, t)`` matures when ``t + horizon + grace <= data end``; its label is
the snapshot's ``churn_label`` (from the current data, see ``reference.relabel_matured``).
The metrics are ``training.evaluation.evaluate``'s, the ones computed at training time
(ROC-AUC, PR-AUC and Brier from scikit-learn, ECE with 10 equal-count bins, churn per tier). Evidently's
``ClassificationPreset`` (current = matured scores, reference = the champion's test block)
only draws the HTML report: it has no Brier or calibration. Its confusion matrix, precision and
recall call a score a churn at ``threshold``: the champion's ``p60`` pin, above which an account is
medium or high risk. Evidently's default of 0.5 predicted no churner at a base rate
of a few percent (a B2B export's matured scores stayed below it), so its precision was 0 and
scikit-learn printed ``UndefinedMetricWarning`` four times into ``churnwatch performance``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.presets import ClassificationPreset

from core.settings import MonitoringSettings
from monitoring.reference import LABEL, PREDICTION
from training.evaluation import evaluate, pr_auc_at_base_rate

METRICS = ("roc_auc", "pr_auc", "brier", "ece")


@dataclass
class PerformanceResult:
    """``summary`` is JSON-ready; ``snapshot`` is Evidently's run, None without a verdict."""

    summary: dict
    snapshot: Any = None

    @property
    def verdict(self) -> bool:
        return self.snapshot is not None


def score_metrics(y: np.ndarray, p: np.ndarray, tiers: np.ndarray, accounts: np.ndarray | None = None) -> dict:
    """``training.evaluation.evaluate``'s ROC-AUC, PR-AUC, Brier, ECE (with its debiased estimate,
    noise floor and verdict) and churn per tier of one set of scores (with ``rows``, ``churned``
    and ``base_rate``). ``accounts``: the account of each row, so an account scored on several
    dates is resampled as a whole in the intervals and the ECE noise floor, as at training."""
    full = evaluate(y, p, tiers, groups=accounts)
    extra = ("ece_debiased", "ece_debiased_lo", "ece_debiased_hi", "ece_noise", "ece_target", "ece_verdict")
    return {"rows": full["n_rows"], "churned": full["n_churned"], "base_rate": full["base_rate"],
            **{k: full[k] for k in (*METRICS, "per_tier", *extra) if k in full}}


def degradation(current: dict, training: dict, cfg: MonitoringSettings) -> list[str]:
    """The configured tolerances that ``current`` breaks against ``training`` (empty: none). PR-AUC is
    judged at the training base rate (``pr_auc_at_training_base_rate`` when ``current`` has it): fewer
    churners alone lower PR-AUC (a probe's matured date churned 4.6% against 6.3% at training, and its
    PR-AUC 0.32 against 0.41 raised the alarm while ROC-AUC, Brier and ECE had all improved)."""
    out = []
    pr_now = current.get("pr_auc_at_training_base_rate", current["pr_auc"])
    pr_text = (f"PR-AUC {current['pr_auc']:.4f} vs {training['pr_auc']:.4f} at training" if pr_now ==
               current["pr_auc"] else
               f"PR-AUC at the training base rate {pr_now:.4f} vs {training['pr_auc']:.4f} at training "
               f"({current['pr_auc']:.4f} at this base rate, {current['base_rate']:.2%} against "
               f"{training['base_rate']:.2%})")
    checks = (("roc_auc", current["roc_auc"] < training["roc_auc"] - cfg.max_roc_auc_drop,
               f"ROC-AUC {current['roc_auc']:.4f} vs {training['roc_auc']:.4f} at training "
               f"(drop > {cfg.max_roc_auc_drop})"),
              ("pr_auc", pr_now < training["pr_auc"] - cfg.max_pr_auc_drop,
               f"{pr_text} (drop > {cfg.max_pr_auc_drop})"),
              ("brier", current["brier"] > training["brier"] * (1 + cfg.max_brier_rise),
               f"Brier {current['brier']:.5f} vs {training['brier']:.5f} at training "
               f"(rise > {cfg.max_brier_rise:.0%})"),
              ("ece", current["ece"] > training["ece"] + cfg.max_ece_rise,
               f"ECE {current['ece']:.4f} vs {training['ece']:.4f} at training (rise > {cfg.max_ece_rise})"))
    for key, broken, text in checks:
        if key in training and broken:
            out.append(text)
    return out


def performance_report(matured: pd.DataFrame, reference: pd.DataFrame | Callable[[], pd.DataFrame], training: dict,
                       cfg: MonitoringSettings, *, model_version: str = "",
                       maturity: dict | None = None, threshold: float = 0.5) -> PerformanceResult:
    """Metrics of the matured scores of ``model_version`` vs ``training`` (the bundle's
    test-block metrics), the alarm, and Evidently's classification report against
    ``reference`` (the champion's test block; a callable is only called with a verdict).

    Without a verdict (status ``not matured yet``: fewer than ``min_matured_rows`` matured
    scores; ``no verdict``: one class only) the summary says why and ``snapshot`` is None.
    ``threshold``: the probability above which the report's confusion matrix counts a churn
    (``check_performance`` passes the champion's ``p60``: medium risk and above), kept in the
    summary as ``report_threshold``.
    """
    own = matured[matured["model_version"].astype(str) == str(model_version)] if model_version else matured
    summary: dict = {
        "kind": "performance", "created_at": dt.datetime.now().isoformat(timespec="seconds"),
        "model_version": str(model_version), "maturity": maturity or {},
        "matured_rows_all_versions": int(len(matured)), "matured_rows": int(len(own)),
        "next_maturity": (maturity or {}).get("next_maturity"),
        "thresholds": {k: getattr(cfg, k) for k in ("max_roc_auc_drop", "max_pr_auc_drop", "max_brier_rise",
                                                    "max_ece_rise", "min_matured_rows")},
        "training": {k: training.get(k) for k in (*METRICS, "base_rate", "n_rows", "per_tier")},
    }
    y = own[LABEL].to_numpy(dtype=int) if len(own) else np.zeros(0, dtype=int)
    why, status = None, "no verdict"
    if len(own) < cfg.min_matured_rows:
        status = "not matured yet"
        when = (maturity or {}).get("next_maturity")
        why = (f"{len(own):,} matured scores of model version {model_version} (at least {cfg.min_matured_rows:,} "
               f"needed); " + (f"the next scored date matures on {when}" if when else
                               "score past dates (`churnwatch score --as-of DATE`) to evaluate sooner"))
    elif y.min() == y.max():
        why = f"all {len(own):,} matured scores have label {int(y[0])}: ROC-AUC and PR-AUC need both classes"
    if why:
        return PerformanceResult(summary={**summary, "status": status, "reason": why, "alarm": False,
                                          "alarm_reasons": []})
    reference = reference() if callable(reference) else reference
    p, tiers = own[PREDICTION].to_numpy(dtype=float), own["tier"].to_numpy()
    accounts = own["account_id"].astype(str).to_numpy() if "account_id" in own else None
    current = score_metrics(y, p, tiers, accounts)
    if training.get("base_rate") and training.get("pr_auc") is not None:
        current["pr_auc_at_training_base_rate"] = pr_auc_at_base_rate(y, p, float(training["base_rate"]))
    current["as_of_first"] = str(pd.Timestamp(own["as_of"].min()).date())
    current["as_of_last"] = str(pd.Timestamp(own["as_of"].max()).date())
    reasons = degradation(current, training, cfg)
    summary.update({"status": "evaluated", "current": current,
                    "change": {k: current[k] - training[k] for k in METRICS if training.get(k) is not None},
                    "alarm": bool(reasons), "alarm_reasons": reasons})
    definition = DataDefinition(numerical_columns=[PREDICTION], categorical_columns=[LABEL],
                                classification=[BinaryClassification(target=LABEL, prediction_probas=PREDICTION)])
    cols = [LABEL, PREDICTION]
    summary["report_threshold"] = float(threshold)
    snapshot = Report([ClassificationPreset(probas_threshold=float(threshold))]).run(
        current_data=Dataset.from_pandas(own[cols].astype({LABEL: int, PREDICTION: float}),
                                         data_definition=definition),
        reference_data=Dataset.from_pandas(reference[cols].astype({LABEL: int, PREDICTION: float}),
                                           data_definition=definition))
    return PerformanceResult(summary=summary, snapshot=snapshot)
