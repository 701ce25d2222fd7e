"""``promote`` and ``evaluate``: score registered bundles on a test block from the store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from core.store import connect
from training.bundle import ModelBundle
from training.errors import TrainingError
from training.evaluation import evaluate
from training.registry import (
    PromotionDecision,
    champion_version,
    decide,
    latest_version,
    load_version,
    set_champion,
)


def test_block(bundle: ModelBundle, store: Path | None = None) -> pd.DataFrame:
    """The labelled snapshots of the bundle's test block (from its pointer, or ``store``)."""
    path, table, lo, hi = bundle.test_block_source(store)
    with connect(path, read_only=True) as con:
        rows = con.execute(f"SELECT * FROM {table} WHERE labelled AND as_of BETWEEN ? AND ? "
                           "ORDER BY as_of, account_id", [lo, hi]).df()
    if rows.empty:
        raise TrainingError(f"{path}: no labelled snapshots in the test block {lo} .. {hi}")
    return rows


def score_metrics(bundle: ModelBundle, rows: pd.DataFrame) -> dict:
    scored = bundle.predict(rows)
    return evaluate(rows["churn_label"].to_numpy(dtype=int), scored["churn_probability"].to_numpy(),
                    scored["tier"].to_numpy())


def promote_version(client: MlflowClient, version: int | None, force: bool = False,
                    reason: str | None = None) -> tuple[PromotionDecision, int, int | None]:
    """Apply DESIGN §4's rule to ``version`` (default: the latest) against the champion."""
    version = version or latest_version(client)
    champion = champion_version(client)
    candidate = load_version(client, version)
    if champion == version:
        return PromotionDecision(False, "already the champion", {}, None), version, champion
    rows = test_block(candidate)
    cand_metrics = score_metrics(candidate, rows)
    champ_metrics = None
    if champion is not None:
        champ_bundle = load_version(client, champion)
        missing = [n for n in champ_bundle.frame.names if n not in rows.columns]
        if missing and not force:
            return (PromotionDecision(False, f"the champion needs features the candidate's snapshots lack "
                                             f"({', '.join(missing[:3])}); use --force with a reason",
                                      cand_metrics, None), version, champion)
        champ_metrics = None if missing else score_metrics(champ_bundle, rows)
    decision = decide(cand_metrics, champ_metrics)
    if force:
        decision = PromotionDecision(True, f"forced: {reason} (rule said: {decision.reason})",
                                     cand_metrics, champ_metrics)
    with mlflow.start_run(run_name=f"promote-v{version}"):
        mlflow.set_tags({"churnwatch.kind": "promotion", "model_version": str(version),
                         "champion_before": str(champion), "promoted": str(decision.promote),
                         "reason": decision.reason})
        mlflow.log_metrics({f"candidate_{k}": float(cand_metrics[k]) for k in ("pr_auc", "brier", "roc_auc")})
        if champ_metrics:
            mlflow.log_metrics({f"champion_{k}": float(champ_metrics[k]) for k in ("pr_auc", "brier", "roc_auc")})
    if decision.promote:
        set_champion(client, version, decision.reason)
    return decision, version, champion


def evaluate_version(client: MlflowClient, version: int | None, store: Path | None = None) -> tuple[dict, int]:
    version = version or champion_version(client) or latest_version(client)
    bundle = load_version(client, version)
    metrics = score_metrics(bundle, test_block(bundle, store))
    with mlflow.start_run(run_name=f"evaluate-v{version}"):
        mlflow.set_tags({"churnwatch.kind": "evaluation", "model_version": str(version)})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)})
        mlflow.log_dict(metrics, "evaluation/metrics.json")
    return metrics, version
