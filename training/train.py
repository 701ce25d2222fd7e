"""Training runs: snapshots (or a flat table) -> model bundle, baselines, evaluation, MLflow."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata as md
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from features.spec import Catalogue
from features.store import SNAPSHOTS, connect, read_meta
from training.baselines import fit_logistic_baseline, rule_churn_probability, rule_health_score
from training.bundle import ModelBundle
from training.calibration import IsotonicCalibrator
from training.errors import TrainingError
from training.evaluation import brier, ece, evaluate, pr_auc, roc_auc, top_decile
from training.health import HealthMap
from training.leakage import guard, leakage_tags, screen_features
from training.model import FeatureFrame, check_labels, fit_booster, monotone_constraints
from training.plots import lift_plot, reliability_plot, roc_pr_plot, shap_summary_plot
from training.reasons import contributions
from training.registry import register, setup
from training.split import purged_split

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class TrainResult:
    bundle: ModelBundle
    comparison: pd.DataFrame  # one row per model: roc_auc, pr_auc, brier, ece, lift, capture
    metrics: dict
    plots: dict[str, Path] = field(default_factory=dict)
    version: int | None = None
    run_id: str | None = None
    leakage: dict = field(default_factory=dict)  # training/leakage.py: allowed leaks and findings


def _model_row(name: str, y: np.ndarray, p: np.ndarray, calibrated: bool) -> dict:
    lift = top_decile(y, p)
    return {"model": name, "roc_auc": roc_auc(y, p), "pr_auc": pr_auc(y, p),
            "brier": brier(y, p) if calibrated else np.nan, "ece": ece(y, p) if calibrated else np.nan,
            "top_decile_lift": lift.lift, "top_decile_capture": lift.capture}


def load_labelled(store: Path) -> tuple[pd.DataFrame, Catalogue, dict]:
    with connect(store, read_only=True) as con:
        meta = read_meta(con)
        rows = con.execute(f"SELECT * FROM {SNAPSHOTS} WHERE labelled ORDER BY as_of, account_id").df()
    if rows.empty:
        raise TrainingError(f"{store}: no labelled snapshots (all as-of dates are within horizon + grace "
                            "of the data end)")
    info = {"data_start": meta.data_start.isoformat(), "data_end": meta.data_end.isoformat(),
            "horizon_days": meta.horizon_days, "grace_days": meta.grace_days,
            "input_hash": meta.input_hash, "source": meta.source}
    return rows, meta.catalogue, info


def fit_and_evaluate(train: pd.DataFrame, fit: pd.DataFrame, es: pd.DataFrame, cal: pd.DataFrame,
                     test: pd.DataFrame, catalogue: Catalogue, out: Path, seed: int = 0,
                     constrained: bool = True, rule_baseline: bool = True,
                     progress: Progress | None = None, allow_leaky: tuple[str, ...] = ()) -> TrainResult:
    """The model, its calibration and health map, baselines and evaluation on ``test``."""
    say = progress or (lambda _m: None)
    for name, block in (("training block", train), ("calibration block", cal), ("test block", test)):
        check_labels(block["churn_label"].to_numpy(dtype=int), name,
                     min_rows=100 if name != "training block" else 200,
                     min_positives=5 if name != "training block" else 20)
    frame = FeatureFrame.from_catalogue(catalogue).fit(train)
    y = {k: b["churn_label"].to_numpy(dtype=int) for k, b in
         (("train", train), ("fit", fit), ("es", es), ("cal", cal), ("test", test))}
    say("checking the features for label leakage")
    screen_features(train, y["train"], frame.names, frame.categorical, allow_leaky)
    say(f"training LightGBM on {len(train):,} rows ({y['train'].sum():,} churners)")
    constraints = monotone_constraints(catalogue) if constrained else [0] * len(catalogue.names)
    booster, rounds = fit_booster(frame.transform(fit), y["fit"], frame.transform(es), y["es"],
                                  frame.transform(train), y["train"], constraints, seed=seed)
    say(f"calibrating on {len(cal):,} rows")
    calibrator = IsotonicCalibrator().fit(booster.predict(frame.transform(cal)), y["cal"])
    health_map = HealthMap.from_base_rate(float(y["train"].mean()))
    bundle = ModelBundle(booster=booster, calibrator=calibrator, health_map=health_map,
                         catalogue=catalogue, frame=frame)
    scored = bundle.predict(test)
    p = scored["churn_probability"].to_numpy()
    metrics = evaluate(y["test"], p, scored["tier"].to_numpy())
    metrics["trees"] = rounds
    say("checking the model for label leakage")
    leakage = guard(train, y["train"], frame.names, frame.categorical, metrics["roc_auc"],
                    dict(zip(booster.feature_name(), booster.feature_importance("gain"))), allow_leaky)

    say("baselines: logistic regression and the rule-weighted health score")
    rows = [_model_row("lightgbm", y["test"], p, True)]
    logistic = fit_logistic_baseline(train, y["train"], catalogue)
    p_lr = logistic.predict_proba(test)
    rows.append(_model_row("logistic regression", y["test"], p_lr, True))
    curves = {"lightgbm": p, "logistic": p_lr}
    if rule_baseline:
        p_rule = rule_churn_probability(rule_health_score(test))
        rows.append(_model_row("rule health score", y["test"], p_rule, False))
        curves["rule health"] = p_rule
    comparison = pd.DataFrame(rows)

    say("plots: reliability, ROC/PR, lift, SHAP summary")
    out.mkdir(parents=True, exist_ok=True)
    sample = test.sample(min(len(test), 4000), random_state=seed)
    Xs = frame.transform(sample)
    plots = {
        "reliability": reliability_plot(y["test"], p, out / "reliability.png"),
        "roc_pr": roc_pr_plot(y["test"], curves, out / "roc_pr.png"),
        "lift": lift_plot(y["test"], p, out / "lift.png"),
        "shap_summary": shap_summary_plot(contributions(booster, Xs)[:, :-1], Xs, out / "shap_summary.png"),
    }
    comparison.to_csv(out / "model_vs_baselines.csv", index=False)
    return TrainResult(bundle=bundle, comparison=comparison, metrics=metrics, plots=plots, leakage=leakage)


def train_on_snapshots(store: Path, out: Path, seed: int = 0, progress: Progress | None = None,
                       allow_leaky: tuple[str, ...] = ()) -> TrainResult:
    """DESIGN §2/§4: purged out-of-time split of the store's labelled snapshots."""
    rows, catalogue, info = load_labelled(store)
    dates = sorted(pd.to_datetime(rows["as_of"]).dt.date.unique())
    split = purged_split(dates, info["horizon_days"], info["grace_days"])
    blocks = {b: rows[split.mask(rows["as_of"], b)] for b in ("train", "fit", "early_stopping", "calibration",
                                                               "test")}
    result = fit_and_evaluate(blocks["train"], blocks["fit"], blocks["early_stopping"], blocks["calibration"],
                              blocks["test"], catalogue, out, seed=seed, progress=progress,
                              allow_leaky=allow_leaky)
    test = blocks["test"]
    scored = result.bundle.predict(test)
    result.bundle.test_predictions = pd.DataFrame({
        "account_id": test["account_id"].to_numpy(), "as_of": test["as_of"].to_numpy(),
        "churn_label": test["churn_label"].to_numpy(), **{c: scored[c].to_numpy() for c in scored.columns}})
    result.bundle.meta = {
        "kind": "snapshots", "created_at": dt.datetime.now().isoformat(timespec="seconds"),
        "split": split.to_dict(), **info, "seed": seed,
        "training_window": {"first_as_of": split.train[0].isoformat(), "last_as_of": split.train[1].isoformat()},
        "snapshots": {"store": str(store.resolve()), "table": SNAPSHOTS,
                      "as_of_first": dates[0].isoformat(), "as_of_last": dates[-1].isoformat(),
                      "test_block": [split.test[0].isoformat(), split.test[1].isoformat()]},
        "metrics": result.metrics, "baselines": json.loads(result.comparison.to_json(orient="records")),
        "versions": _versions(), "leakage": result.leakage,
    }
    return result


def train_on_table(path: Path, label: str, id_col: str, out: Path, seed: int = 0,
                   progress: Progress | None = None, allow_leaky: tuple[str, ...] = ()) -> TrainResult:
    """Bring your own table: a flat churn table, stratified split, same calibration, tiers
    and reasons (each column is its own signal, so reasons are at feature level)."""
    from sklearn.model_selection import train_test_split

    from training.own_table import load_own_table, stratified_split, table_test_predictions

    table = load_own_table(path, label=label, id_col=id_col)
    feats = tuple(dataclasses.replace(f, group=f.name) for f in table.catalogue.features)
    catalogue = Catalogue(features=feats, event_types=())
    rows = table.frame.copy()
    rows["churn_label"] = table.y
    rows["account_id"] = rows.index.astype(str)
    train_idx, cal_idx, test_idx = stratified_split(table.y, seed=seed)
    train = rows.iloc[train_idx]
    fit_idx, es_idx = train_test_split(range(len(train)), test_size=0.2, random_state=seed,
                                       stratify=train["churn_label"])
    result = fit_and_evaluate(train, train.iloc[fit_idx], train.iloc[es_idx], rows.iloc[cal_idx],
                              rows.iloc[test_idx], catalogue, out, seed=seed, rule_baseline=False,
                              progress=progress, allow_leaky=allow_leaky)
    result.bundle.test_predictions = table_test_predictions(result.bundle, rows.iloc[test_idx])
    result.bundle.meta = {"kind": "table", "created_at": dt.datetime.now().isoformat(timespec="seconds"),
                          "file": str(Path(path).resolve()), "label": label, "id": id_col, "seed": seed,
                          "table_report": table.report, "metrics": result.metrics,
                          "baselines": json.loads(result.comparison.to_json(orient="records")),
                          "versions": _versions(), "leakage": result.leakage}
    return result


def _versions() -> dict:
    return {p: md.version(p) for p in ("churnwatch", "lightgbm", "scikit-learn", "pandas", "duckdb", "mlflow")}


def flat_metrics(result: TrainResult) -> dict[str, float]:
    """Every figure as one MLflow metric (model_*, logistic_*, rule_*, tier_*)."""
    out: dict[str, float] = {}
    for k, v in result.metrics.items():
        if isinstance(v, int | float) and v is not None and np.isfinite(v):
            out[f"model_{k}"] = float(v)
    for tier, d in result.metrics.get("per_tier", {}).items():
        out[f"tier_{tier}_count"] = float(d["count"])
        if d["churn_rate"] is not None:
            out[f"tier_{tier}_churn_rate"] = float(d["churn_rate"])
    prefixes = ("lightgbm", "logistic", "rule")
    for row, prefix in zip(result.comparison.to_dict(orient="records"), prefixes):
        for k in ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "top_decile_capture"):
            if row.get(k) is not None and np.isfinite(row[k]):
                out[f"{prefix}_{k}"] = float(row[k])
    return out


def log_run(result: TrainResult, tracking_uri: str, artifact_root: Path, params: dict) -> TrainResult:
    """One MLflow run: params, metrics, bundle, plots, comparison; registers a version."""
    client = setup(tracking_uri, artifact_root)
    with mlflow.start_run(run_name=f"train-{dt.datetime.now():%Y%m%d-%H%M%S}") as run:
        mlflow.log_params({k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in params.items()})
        mlflow.log_metrics(flat_metrics(result))
        mlflow.set_tags({"churnwatch.kind": result.bundle.meta.get("kind", ""),
                         "churnwatch.input_hash": str(result.bundle.meta.get("input_hash", "")),
                         **leakage_tags(result.bundle.meta)})
        with tempfile.TemporaryDirectory() as tmp:
            folder = result.bundle.save(Path(tmp) / "bundle")
            mlflow.log_artifacts(str(folder), artifact_path="bundle")
        for path in result.plots.values():
            mlflow.log_artifact(str(path), artifact_path="plots")
        mlflow.log_text(result.comparison.to_csv(index=False), "evaluation/model_vs_baselines.csv")
        mlflow.log_dict(result.metrics, "evaluation/metrics.json")
    result.run_id = run.info.run_id
    result.version = register(client, run.info.run_id, description=json.dumps(
        {k: result.bundle.meta.get(k) for k in ("kind", "training_window")}, default=str),
        tags=leakage_tags(result.bundle.meta))
    return result


def params_of(result: TrainResult) -> dict:
    meta = result.bundle.meta
    keep = ("kind", "seed", "horizon_days", "grace_days", "input_hash", "data_start", "data_end", "split",
            "training_window", "versions", "label", "id", "file")
    out = {k: meta[k] for k in keep if k in meta}
    out["trees"] = result.metrics.get("trees")
    out["features"] = len(result.bundle.frame.names)
    return out

