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

**The renewal calendar.** In a book of long terms the share of accounts whose term ends within
the label's horizon changes with the season, and the predicted probability with it (a probe's
annual-contract book: 31.3% of the reference rows near renewal, 24.3% of the current ones, mean
probability 0.032 -> 0.025, an alarm, while the means near renewal (0.100 -> 0.099) and elsewhere
(0.001 -> 0.001) held). The alarm stays; the summary says what moved: ``renewal_calendar`` holds
the share of rows whose term ends within ``horizon_days`` (the catalogue's ``term_end`` feature,
``days_to_term_end``) on each side, Evidently's drift verdict on that yes/no column (one more
``ValueDrift``, shown in the HTML), the mean probability near renewal and elsewhere on each side,
and how much the share alone moves the mean (its change times the reference's gap between the two
means: the composition part of a shift-share decomposition). ``moved`` is true when that share
drifted, the calendar feature is among the ``CALENDAR_TOP`` most drifted features, or the
probability drifted and the share alone accounts for at least ``EXPLAINED_SHARE`` of its mean's
change.

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

#: The renewal calendar "moved" when its feature is among this many most drifted features, ...
CALENDAR_TOP = 5
#: ... or when the probability drifted and the share near renewal alone accounts for this share of
#: the change of its mean.
EXPLAINED_SHARE = 0.5

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


def _parse(snapshot, frame: FeatureFrame) -> tuple[list[dict], dict, dict[str, dict]]:
    """(per-feature verdicts in feature order, probability verdict, every column's verdict)."""
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
    return feats, columns[PREDICTION], columns


def calendar_feature(catalogue: Catalogue, frame: FeatureFrame) -> str | None:
    """The compared feature that is the renewal calendar (the catalogue's ``term_end`` template:
    days to the end of the current term), or None."""
    return next((f.name for f in catalogue.features if f.template == "term_end" and f.name in frame.names
                 and f.name not in frame.categorical), None)


def near_renewal(days_to_end: pd.Series, horizon_days: int) -> pd.Series:
    """"yes" where the term ends within ``horizon_days`` (an open-ended term never does), else "no"."""
    return pd.Series(np.where(days_to_end.to_numpy(dtype="float64") <= horizon_days, "yes", "no"),
                     index=days_to_end.index, dtype=object)


def _calendar(name: str, column: str, horizon_days: int, cur: pd.DataFrame, ref: pd.DataFrame, verdict: dict,
              feats: list[dict], probability_drifted: bool) -> dict:
    """The ``renewal_calendar`` summary (see the module docstring)."""
    top = [f["feature"] for f in sorted(feats, key=lambda f: -f["strength"]) if f["drifted"]][:CALENDAR_TOP]

    def means(rows: pd.DataFrame) -> tuple[float | None, float | None]:
        near = rows[column] == "yes"
        return tuple(float(rows.loc[m, PREDICTION].mean()) if m.any() else None for m in (near, ~near))

    (near_ref, other_ref), (near_cur, other_cur) = means(ref), means(cur)
    share_ref, share_cur = float((ref[column] == "yes").mean()), float((cur[column] == "yes").mean())
    change = float(cur[PREDICTION].mean() - ref[PREDICTION].mean())
    # the mean's change had only the share near renewal moved (each group's reference mean kept)
    alone = None if near_ref is None or other_ref is None else (share_cur - share_ref) * (near_ref - other_ref)
    explains = bool(probability_drifted and alone is not None and change and alone / change >= EXPLAINED_SHARE)
    return {"feature": name, "horizon_days": int(horizon_days), "share_reference": share_ref,
            "share_current": share_cur, "method": verdict["method"], "score": verdict["score"],
            "threshold": verdict["threshold"], "drifted": verdict["drifted"], "among_most_drifted": name in top,
            "mean_near_reference": near_ref, "mean_near_current": near_cur,
            "mean_other_reference": other_ref, "mean_other_current": other_cur,
            "mean_change": change, "mean_change_from_share": alone, "explains_probability_drift": explains,
            "moved": bool(verdict["drifted"] or name in top or explains)}


def calendar_line(c: dict) -> str:
    """One line on the renewal calendar's move (``churnwatch drift``, the report's banner)."""
    def mean(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    alone = c["mean_change_from_share"]
    return (f"the renewal calendar moved: {c['share_reference']:.1%} of the reference rows had a term ending within "
            f"{c['horizon_days']} days, {c['share_current']:.1%} of the current ones ({c['method']} {c['score']:.3g}, "
            f"threshold {c['threshold']:.3g}{'' if c['drifted'] else ': no drift'}"
            + (f"; {c['feature']} among the most drifted features" if c["among_most_drifted"] else "") + "); "
            + (f"that share alone moves the mean probability by {alone:+.4f} of its {c['mean_change']:+.4f} change "
               if alone is not None else "")
            + f"(near renewal {mean(c['mean_near_reference'])} -> {mean(c['mean_near_current'])}, "
            f"elsewhere {mean(c['mean_other_reference'])} -> {mean(c['mean_other_current'])}): in a book of long "
            "terms this share moves with the season, and the predicted probability with it")


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
                 reference_block: list[str] | None = None, horizon_days: int | None = None) -> DriftResult:
    """Run Evidently on ``current`` vs ``reference`` (both with the model's features and
    ``churn_probability``) and summarise drift, data quality and the alarm; with ``horizon_days``
    (the model's label horizon) also the renewal calendar's move (``renewal_calendar``).

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
    calendar = calendar_feature(catalogue, frame) if horizon_days else None
    near = f"term_ends_within_{horizon_days}d"
    if calendar:
        cur, ref = (side.assign(**{near: near_renewal(side[calendar], horizon_days)}) for side in (cur, ref))
    definition = DataDefinition(numerical_columns=numerical,
                                categorical_columns=list(frame.categorical) + ([near] if calendar else []))
    metrics = [
        DriftTable(columns=list(frame.names), drift_share=cfg.drift_share, method=cfg.drift_method,
                        threshold=cfg.drift_threshold, per_column_method=cfg.per_feature_method or None,
                        per_column_threshold=cfg.per_feature_threshold or None),
        ValueDrift(column=PREDICTION, method=cfg.probability_method, threshold=cfg.probability_threshold),
        *([ValueDrift(column=near)] if calendar else []),
        *_quality_metrics(quality, frame, catalogue),
    ]
    snapshot = Report(metrics, include_tests=True).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition))
    feats, prob, columns = _parse(snapshot, frame)
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
        "renewal_calendar": _calendar(calendar, near, horizon_days, cur, ref, columns[near], feats,
                                      prob["drifted"]) if calendar else None,
    }
    return DriftResult(summary=summary, snapshot=snapshot)
