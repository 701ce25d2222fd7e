"""Drift of the model's features and of its predicted probability, with Evidently (DESIGN §6).

``drift_report`` compares the current rows (the latest scored snapshots) with the
reference (the champion's test block) using one Evidently ``ValueDrift`` per model feature
(the stat test and threshold ``DataDriftPreset`` would pick) and one on
``churn_probability``; per-column verdicts are Evidently's own (its drift tests), never
re-derived here, and the drifted share is counted from them. The HTML shows Evidently's
data drift table once (``DriftTable``: the preset without its second and third pass over
the columns). The alarm fires when the share of drifted features reaches ``drift_share``
or the probability drifts.

A feature with no values on one side (after sampling) cannot be tested: it is left out of
the drift computation and of the share's denominator, and listed under
``not_comparable``.

Sampling: above ``max_rows`` a side is cut to a uniform random sample of ``max_rows`` rows
without replacement (``sample_seed``), before Evidently sees it. Data quality is always
computed on all rows.

Category values reach Evidently as they are (the report shows the real names); the HTML is
written by ``monitoring.outputs``, which re-encodes Evidently's data block script-safe
(``monitoring.safe_html``): a value such as ``</script><script>…`` stays text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import _default_input_data_generator
from evidently.legacy.metrics import DataDriftTable
from evidently.metrics import MissingValueCount, OutListValueCount, OutRangeValueCount, ValueDrift
from evidently.presets import DataDriftPreset

from core.settings import MonitoringSettings
from features.spec import Catalogue
from monitoring.errors import MonitoringError
from monitoring.quality import data_quality
from monitoring.reference import PREDICTION, check_features
from training.model import FeatureFrame

SAMPLING_METHOD = "uniform random sample without replacement (pandas DataFrame.sample, fixed seed)"


@dataclass
class DriftResult:
    """``summary`` is JSON-ready; ``snapshot`` is Evidently's run (``save_html``, ``dict``)."""

    summary: dict
    snapshot: Any


class DriftTable(DataDriftPreset):
    """``DataDriftPreset`` computing each column's drift once (its ``ValueDrift``s) and
    rendering only Evidently's drift table (one more pass); the preset itself also computes
    ``DriftedColumnsCount`` and a dataset-drift widget, each a pass over every column."""

    def generate_metrics(self, context):
        return [m for m in super().generate_metrics(context) if isinstance(m, ValueDrift)]

    def render(self, context, child_widgets=None):
        table = DataDriftTable(columns=self.columns, stattest=self.method, per_column_stattest=self.per_column_method,
                               stattest_threshold=self.threshold,
                               per_column_stattest_threshold=self.per_column_threshold)
        return context.get_legacy_metric(table, _default_input_data_generator, None)[1]


def sample_rows(rows: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """``rows`` itself when it has at most ``max_rows`` rows, else a uniform random sample of
    ``max_rows`` rows without replacement (same seed, same sample)."""
    if max_rows is None or len(rows) <= max_rows:
        return rows
    return rows.sample(n=max_rows, random_state=seed)


def watched(frame: FeatureFrame, names: list[str] | None) -> FeatureFrame:
    """The part of the model's features that ``monitoring.features`` names (all when None).

    Raises:
        MonitoringError: a name that is not one of the model's features.
    """
    if names is None:
        return frame
    unknown = [n for n in names if n not in frame.names]
    if unknown or not names:
        raise MonitoringError(f"monitoring.features: {', '.join(unknown[:5]) or 'an empty list'} "
                              f"{'is' if len(unknown) == 1 else 'are'} not among the model's features")
    chosen = [n for n in frame.names if n in set(names)]
    cats = [c for c in frame.categorical if c in set(names)]
    return FeatureFrame(names=chosen, categorical=cats, categories={c: frame.categories.get(c, []) for c in cats})


def model_columns(rows: pd.DataFrame, frame: FeatureFrame) -> pd.DataFrame:
    """The model's features (numerics as float64, categoricals as str/None) and the probability."""
    cat = set(frame.categorical)
    out = {}
    for c in frame.names:
        if c in cat:
            out[c] = rows[c].astype("string").astype(object).where(rows[c].notna(), None)
        else:
            out[c] = pd.to_numeric(rows[c], errors="coerce").astype("float64")
    out[PREDICTION] = pd.to_numeric(rows[PREDICTION], errors="coerce").astype("float64")
    return pd.DataFrame(out, index=rows.index)


def _validate(rows: pd.DataFrame, frame: FeatureFrame, what: str) -> None:
    check_features(rows, frame.names, what)
    if PREDICTION not in rows.columns:
        raise MonitoringError(f"{what} has no {PREDICTION} column: score it first")
    p = pd.to_numeric(rows[PREDICTION], errors="coerce")
    if p.isna().any() or (p < 0).any() or (p > 1).any():
        raise MonitoringError(f"{what}: {PREDICTION} must be probabilities in [0, 1] without gaps")


def _quality_metrics(quality: dict, frame: FeatureFrame, catalogue: Catalogue) -> list:
    """Evidently widgets for the watched features with a quality finding (the HTML shows them)."""
    metrics: list = [MissingValueCount(column=n) for n in quality["missing_rise"] if n in frame.names]
    for name in (n for n in quality["out_of_range"] if n in frame.names):
        lo, hi = catalogue[name].valid_range
        metrics.append(OutRangeValueCount(column=name, left=-np.inf if lo is None else lo,
                                          right=np.inf if hi is None else hi))
    for name in (n for n in quality["unseen_categories"] if n in frame.names):
        metrics.append(OutListValueCount(column=name, values=list(frame.categories.get(name, []))))
    return metrics


def _strength(score: float, threshold: float, drifted: bool) -> float:
    """How far past its threshold a score is (>1 = drifted), for ranking across methods:
    p-value tests drift below the threshold, distances at or above it."""
    p_value = drifted == (score < threshold)
    if p_value:
        return float(threshold / max(score, 1e-300))
    return float(score / threshold) if threshold else float("inf")


def _parse(snapshot, frame: FeatureFrame) -> tuple[list[dict], dict]:
    """(per-feature verdicts in feature order, probability verdict)."""
    raw = snapshot.dict()
    status = {t["metric_config"]["metric_id"]: t["status"] for t in raw["tests"] if t.get("id") == "drift"}
    columns = {}
    for m in raw["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            score = float(m["value"])
            drifted = status.get(m["id"]) == "FAIL"
            columns[cfg["column"]] = {"method": cfg["method"], "threshold": float(cfg["threshold"]),
                                      "score": score, "drifted": drifted,
                                      "strength": _strength(score, float(cfg["threshold"]), drifted)}
    cat = set(frame.categorical)
    feats = [{"feature": n, "type": "categorical" if n in cat else "numerical", **columns[n]} for n in frame.names]
    return feats, columns[PREDICTION]


def comparable(frame: FeatureFrame, cur: pd.DataFrame, ref: pd.DataFrame) -> tuple[FeatureFrame, list[dict]]:
    """``frame`` without the features that have no values on a side (Evidently cannot test
    an empty column), and those features with the side(s) lacking values."""
    out = []
    for n in frame.names:
        empty = [side for side, rows in (("reference", ref), ("current", cur)) if not rows[n].notna().any()]
        if empty:
            out.append({"feature": n, "reason": f"not comparable (no values in {' and '.join(empty)})"})
    if not out:
        return frame, []
    gone = {o["feature"] for o in out}
    cats = [c for c in frame.categorical if c not in gone]
    return FeatureFrame(names=[n for n in frame.names if n not in gone], categorical=cats,
                        categories={c: frame.categories.get(c, []) for c in cats}), out


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, catalogue: Catalogue, frame: FeatureFrame,
                 cfg: MonitoringSettings, *, model_version: str = "", current_as_of: str = "",
                 reference_block: list[str] | None = None) -> DriftResult:
    """Run Evidently on ``current`` vs ``reference`` (both with the model's features and
    ``churn_probability``) and summarise drift, data quality and the alarm.

    Raises:
        MonitoringError: either side empty, lacking model features, or without valid
            probabilities.
    """
    _validate(current, frame, "the current data")
    _validate(reference, frame, "the reference data")
    quality = data_quality(current, reference, catalogue, frame)
    frame = watched(frame, cfg.features)
    cur = model_columns(sample_rows(current, cfg.max_rows, cfg.sample_seed), frame)
    ref = model_columns(sample_rows(reference, cfg.max_rows, cfg.sample_seed), frame)
    frame, skipped = comparable(frame, cur, ref)
    if not frame.names:
        which = "; ".join(f"{o['feature']}: {o['reason']}" for o in skipped[:3])
        raise MonitoringError(f"no watched feature has values on both sides: nothing to compare ({which})")
    cur, ref = cur[[*frame.names, PREDICTION]], ref[[*frame.names, PREDICTION]]
    numerical = [n for n in frame.names if n not in set(frame.categorical)] + [PREDICTION]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=list(frame.categorical))
    metrics = [
        DriftTable(columns=list(frame.names), drift_share=cfg.drift_share, method=cfg.drift_method,
                        threshold=cfg.drift_threshold, per_column_method=cfg.per_feature_method or None,
                        per_column_threshold=cfg.per_feature_threshold or None),
        ValueDrift(column=PREDICTION, method=cfg.probability_method, threshold=cfg.probability_threshold),
        *_quality_metrics(quality, frame, catalogue),
    ]
    snapshot = Report(metrics, include_tests=True).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition))
    feats, prob = _parse(snapshot, frame)
    count = sum(f["drifted"] for f in feats)
    share = {"count": count, "share": count / len(feats)}
    prob = {**prob, "mean_current": float(cur[PREDICTION].mean()), "mean_reference": float(ref[PREDICTION].mean())}
    reasons = []
    if share["share"] >= cfg.drift_share:
        reasons.append(f"{share['count']} of {len(feats)} features drifted ({share['share']:.0%} >= "
                       f"{cfg.drift_share:.0%}" + (f"; {len(skipped)} not comparable" if skipped else "") + ")")
    if prob["drifted"]:
        reasons.append(f"the predicted churn probability drifted ({prob['method']} {prob['score']:.3g}, "
                       f"threshold {prob['threshold']:.3g}; mean {prob['mean_reference']:.3f} -> "
                       f"{prob['mean_current']:.3f})")
    summary = {
        "kind": "drift",
        "created_at": dt.datetime.now().isoformat(timespec="seconds"),
        "model_version": str(model_version),
        "current": {"as_of": current_as_of, "rows": len(current), "rows_compared": len(cur)},
        "reference": {"test_block": reference_block, "rows": len(reference), "rows_compared": len(ref)},
        "sampling": {"max_rows": cfg.max_rows, "seed": cfg.sample_seed, "method": SAMPLING_METHOD,
                     "sampled": len(cur) < len(current) or len(ref) < len(reference)},
        "watched": "all model features" if cfg.features is None else "monitoring.features",
        "thresholds": {"drift_share": cfg.drift_share, "drift_method": cfg.drift_method,
                       "drift_threshold": cfg.drift_threshold, "probability_method": cfg.probability_method,
                       "probability_threshold": cfg.probability_threshold},
        "features": len(feats),
        "drifted_features": share["count"],
        "drift_share": share["share"],
        "not_comparable": skipped,
        "drifted": [f["feature"] for f in sorted(feats, key=lambda f: -f["strength"]) if f["drifted"]],
        "probability": prob,
        "alarm": bool(reasons),
        "alarm_reasons": reasons,
        "quality": quality,
        "feature_drift": feats,
    }
    return DriftResult(summary=summary, snapshot=snapshot)
