"""``promote`` and ``evaluate``: score registered bundles on their test rows.

A snapshot model's test rows are its out-of-time test block in the store; a flat-table
model's (``train --table``) are its own held-out test customers, re-read from the table
file it was trained on (their ids are in the bundle's ``test_predictions.csv``). A version
trained with ``--allow-leaky-feature`` is never promoted without ``--force``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from core.store import connect
from training.bundle import ModelBundle
from training.errors import ModelBundleError, TrainingError
from training.evaluation import evaluate
from training.leakage import promotion_block
from training.own_table import read_scoring_table
from training.registry import (
    PromotionDecision,
    champion_version,
    decide,
    latest_version,
    load_version,
    set_champion,
)
from training.run_text import possible_leak, unmet_bars
from training.split import test_rows


def test_block(bundle: ModelBundle, store: Path | None = None) -> pd.DataFrame:
    """The labelled snapshots of the bundle's test block (from its pointer, or ``store``)."""
    path, table, lo, hi = bundle.test_block_source(store)
    with connect(path, read_only=True) as con:
        rows = con.execute(f"SELECT * FROM {table} WHERE labelled AND as_of BETWEEN ? AND ? "
                           "ORDER BY as_of, account_id", [lo, hi]).df()
    rows = test_rows(bundle.meta.get("split"), rows)  # account-holdout: the held-out accounts only
    if rows.empty:
        raise TrainingError(f"{path}: no labelled snapshots in the test block {lo} .. {hi}")
    return rows.reset_index(drop=True)


def table_test_rows(bundle: ModelBundle) -> pd.DataFrame:
    """A table model's test customers, re-read from its table file, with ``churn_label``.

    Raises:
        TrainingError: the file is gone, or none of the test ids is in it any more.
    """
    meta = bundle.meta
    path = Path(meta.get("file", ""))
    if not path.is_file():
        raise TrainingError(f"the table {path} this version was trained on does not exist any more: its test rows "
                            "cannot be re-scored (put the file back)")
    if bundle.test_predictions is None:
        raise TrainingError("this table model's bundle has no test_predictions.csv (trained before table models "
                            "could be promoted): retrain it with `churnwatch train --table`")
    as_of = (meta.get("table_report") or {}).get("as_of")  # the training's as-of: its dates count as they did
    read = read_scoring_table(path, meta["id"], bundle.catalogue, label=meta["label"],
                              as_of=dt.date.fromisoformat(as_of) if as_of else None)
    rows, y = read.rows, read.y
    if y is None:
        raise TrainingError(f"{path}: no label column {meta['label']!r} any more")
    rows["churn_label"] = y
    test = rows[rows["account_id"].isin(set(bundle.test_predictions["account_id"].astype(str)))]
    if test.empty:
        raise TrainingError(f"{path}: none of the version's {len(bundle.test_predictions):,} test customers is in it")
    return test.reset_index(drop=True)


def evaluation_rows(bundle: ModelBundle, store: Path | None = None) -> pd.DataFrame:
    """The rows a version is judged on: its test block (snapshots) or its test customers (table)."""
    return table_test_rows(bundle) if bundle.meta.get("kind") == "table" else test_block(bundle, store)


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
    blocked = promotion_block(candidate.meta, version)
    if blocked and not force:
        return PromotionDecision(False, blocked, {}, None, blocked=True), version, champion
    rows = evaluation_rows(candidate)
    cand_metrics = score_metrics(candidate, rows)
    champ_metrics, champ_bundle, missing, apart = None, None, [], ""
    if champion is not None:
        champ_bundle = _champion_or_none(client, champion, force)
    if champ_bundle is not None:
        missing = [n for n in champ_bundle.frame.names if n not in rows.columns]
        # a champion reading a column this version's data left out (a leak found since, ``profile: exclude``)
        # cannot be scored on its test rows: no comparison, said as such, exit 3 (a probe read "the candidate's
        # test rows lack" as its data being at fault, and the exit code 0 of a plain refusal)
        apart = (f"the champion (version {champion}) reads column(s) this version's test rows do not have "
                 f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}), so the two cannot be compared on "
                 "the same rows") if missing else ""
        if missing and not force:
            return (PromotionDecision(False, f"{apart}; if that column was left out on purpose (a leak, profile: "
                                             "exclude), promote with --force --reason TEXT",
                                      cand_metrics, None, blocked=True), version, champion)
        champ_metrics = None if missing else score_metrics(champ_bundle, rows)
    decision = decide(cand_metrics, champ_metrics)
    if force:
        said = apart or f"rule said: {decision.reason}"
        decision = PromotionDecision(True, f"forced: {reason} ({said})", cand_metrics, champ_metrics)
    with mlflow.start_run(run_name=f"promote-v{version}"):
        mlflow.set_tags({"churnwatch.kind": "promotion", "model_version": str(version),
                         "champion_before": str(champion), "promoted": str(decision.promote),
                         "reason": decision.reason})
        mlflow.log_metrics({f"candidate_{k}": float(cand_metrics[k]) for k in ("pr_auc", "brier", "roc_auc")})
        if champ_metrics:
            mlflow.log_metrics({f"champion_{k}": float(champ_metrics[k]) for k in ("pr_auc", "brier", "roc_auc")})
    if decision.promote:
        set_champion(client, version, decision.reason)
    lead = possible_leak(candidate.meta, {f.name: f.template for f in candidate.catalogue.features})
    return dataclasses.replace(decision, unmet=[*unmet_bars(candidate.meta), *([lead] if lead else [])]), version, \
        champion


def _champion_or_none(client: MlflowClient, version: int, force: bool) -> ModelBundle | None:
    """The champion's bundle; None when its files are damaged and ``force`` replaces it anyway.

    Raises:
        ModelBundleError: the champion's files are damaged and ``force`` is not given.
    """
    try:
        return load_version(client, version)
    except ModelBundleError as exc:
        if not force:
            raise ModelBundleError(f"the champion cannot be compared with: {exc}. Replace it with "
                                   "`churnwatch promote --force --reason ...`") from exc
        return None


def evaluate_version(client: MlflowClient, version: int | None, store: Path | None = None) -> tuple[dict, int]:
    version = version or champion_version(client) or latest_version(client)
    bundle = load_version(client, version)
    metrics = {**score_metrics(bundle, evaluation_rows(bundle, store)), "kind": bundle.meta.get("kind", "snapshots")}
    with mlflow.start_run(run_name=f"evaluate-v{version}"):
        mlflow.set_tags({"churnwatch.kind": "evaluation", "model_version": str(version)})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)})
        mlflow.log_dict(metrics, "evaluation/metrics.json")
    return metrics, version
