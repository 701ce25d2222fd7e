"""A monitoring run from start to files (DESIGN §6): the champion, the current and reference
rows, the Evidently report, its HTML + JSON summary and the MLflow run.

``check_drift`` and ``check_performance`` are what ``churnwatch drift`` / ``performance`` (and
the demo) run; the command line only prints their summaries and turns an alarm into exit 3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.home import Home
from core.settings import Settings
from core.time import as_date
from monitoring.drift import calendar_line, drift_report
from monitoring.outputs import banner, log_monitoring_run, publish
from monitoring.performance import performance_report
from monitoring.reference import (
    champion_bundle,
    champion_probabilities,
    current_rows,
    matured_rows,
    reference_rows,
    relabel_matured,
)

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    """No progress display."""


def check_drift(home: Home, settings: Settings, client, store: Path | None = None, out: Path | None = None,
                as_of: dt.date | None = None, progress: Progress = _quiet) -> dict:
    """Drift of the latest scored snapshots (or those of ``as_of``) vs the champion's test block:
    HTML + JSON in ``out`` (default ``<home>/reports/monitoring``), an MLflow run.

    Returns:
        The summary (``summary["alarm"]`` says whether DESIGN §6's alarm fired), with ``files``
        and ``mlflow_run_id``.
    """
    cfg, target, say = settings.monitoring, store or home.store, progress
    say("loading the champion model")
    bundle = champion_bundle(client)
    version = str(bundle.meta.get("model_version", ""))
    say("reading the latest scored snapshots and the champion's test block")
    current = current_rows(target, bundle.frame.names, as_of)
    current, scored = champion_probabilities(current, bundle, version)
    if scored["rescored"]:
        say(f"re-scoring {scored['rescored']:,} rows scored by model version(s) "
            f"{', '.join(v for v in scored['scored_by'] if v != version)} with the champion (version {version})")
    found: dict = {}
    reference = reference_rows(bundle, store, fallback=home.store, info=found)
    current_as_of = as_date(current["as_of"].iloc[0]).isoformat()
    say(f"Evidently drift report: {len(current):,} current vs {len(reference):,} reference rows")
    result = drift_report(reference, current, bundle.catalogue, bundle.frame, cfg, model_version=version,
                          current_as_of=current_as_of, reference_block=bundle.meta["snapshots"]["test_block"],
                          horizon_days=bundle.meta.get("horizon_days"))
    summary = result.summary
    summary["current"].update(scored)
    summary["reference"].update(found)
    say("writing the report and logging it to MLflow")
    tags = {"probabilities_from_version": scored["probabilities_from"],
            "scored_by_versions": ",".join(scored["scored_by"]), "rescored_rows": str(scored["rescored"])}
    files, run_id = publish(
        out or home.reports / "monitoring", "drift", result.snapshot, summary, drift_banner(summary),
        lambda fs: log_monitoring_run(home.tracking_uri, home.mlflow_artifacts, cfg.experiment, "drift", version,
                                      drift_metrics(summary), fs, summary["alarm"], tags))
    summary["files"] = files
    summary["mlflow_run_id"] = run_id
    return summary


@dataclass(frozen=True)
class PerformanceRun:
    """A performance check: its summary, whether it has a verdict (matured labelled scores), and
    the matured scores without a label in the current data (date -> rows, not counted)."""

    summary: dict
    verdict: bool
    unlabelled: dict


def check_performance(home: Home, settings: Settings, client, store: Path | None = None, out: Path | None = None,
                      progress: Progress = _quiet) -> PerformanceRun:
    """Performance of the champion's matured scores vs its figures at training time: HTML + JSON
    in ``out`` (default ``<home>/reports/monitoring``), an MLflow run. Scored dates whose horizon
    has passed are labelled from the current data first (``relabel_matured``)."""
    cfg, target, say = settings.monitoring, store or home.store, progress
    say("loading the champion model")
    bundle = champion_bundle(client)
    version = str(bundle.meta.get("model_version", ""))
    relabel = {"rebuilt": [], "skipped": "no data source configured"}
    if settings.data:
        say("labelling scored dates whose horizon has passed, from the current data")
        relabel = relabel_matured(settings.data, settings, target, progress=say)
    say("reading the matured score history")
    matured, maturity = matured_rows(target)
    maturity["relabelled"] = relabel
    result = performance_report(matured, lambda: reference_rows(bundle, store, fallback=home.store),
                                bundle.meta.get("metrics", {}), cfg, model_version=version, maturity=maturity,
                                threshold=bundle.health_map.pins_[1])
    summary = result.summary
    say("writing the summary" + (" and the report" if result.verdict else "") + " and logging to MLflow")
    metrics = {"alarm": float(summary["alarm"]), "matured_rows": float(summary["matured_rows"]),
               "unlabelled_matured_rows": float(sum(maturity["unlabelled"].values()))}
    if result.verdict:
        cur = summary["current"]
        metrics.update({**{k: cur[k] for k in ("roc_auc", "pr_auc", "brier", "ece", "rows", "base_rate",
                                               "pr_auc_at_training_base_rate") if k in cur},
                        **{f"change_{k}": v for k, v in summary["change"].items()}})
    files, run_id = publish(
        out or home.reports / "monitoring", "performance", result.snapshot, summary,
        performance_banner(summary) if result.verdict else "",
        lambda fs: log_monitoring_run(home.tracking_uri, home.mlflow_artifacts, cfg.experiment, "performance",
                                      version, metrics, fs, summary["alarm"], {"status": summary["status"]}))
    summary["files"] = files
    summary["mlflow_run_id"] = run_id
    return PerformanceRun(summary=summary, verdict=bool(result.verdict), unlabelled=dict(maturity["unlabelled"]))


# --- the summaries in words: the reports' banners and the command line's lines ---------------

def drift_metrics(s: dict) -> dict[str, float]:
    q = s["quality"]
    return {"drift_share": s["drift_share"], "drifted_features": s["drifted_features"], "features": s["features"],
            "probability_drift_score": s["probability"]["score"],
            "probability_drifted": float(s["probability"]["drifted"]),
            "probability_mean_current": s["probability"]["mean_current"],
            "probability_mean_reference": s["probability"]["mean_reference"],
            "current_rows": s["current"]["rows"], "reference_rows": s["reference"]["rows"],
            "features_out_of_range": len(q["out_of_range"]), "features_missing_rise": len(q["missing_rise"]),
            "features_unseen_categories": len(q["unseen_categories"]),
            "features_not_comparable": len(s["not_comparable"]), "rescored_rows": s["current"].get("rescored", 0),
            "alarm": float(s["alarm"]),
            **({f"renewal_share_{k}": s["renewal_calendar"][f"share_{k}"] for k in ("reference", "current")}
               if s.get("renewal_calendar") else {})}


def quality_lines(q: dict) -> list[str]:
    unseen = "; ".join(f"{k}: {', '.join(v[:5])}" for k, v in q["unseen_categories"].items()) or "none"
    rng = ", ".join(f"{k} ({n:,} rows)" for k, n in list(q["out_of_range"].items())[:5]) or "none"
    miss = ", ".join(q["missing_rise"][:5]) or "none"
    return [f"new categories (unseen in training): {unseen}", f"values outside the spec's ranges: {rng}",
            f"missing share up by >= 10 points: {miss}"]


def drift_banner(s: dict) -> str:
    p = s["probability"]
    lines = [f"model version {s['model_version']}; current: scores of {s['current']['as_of']} "
             f"({s['current']['rows']:,} rows); reference: the champion's test block "
             f"{' .. '.join(s['reference']['test_block'] or [])} ({s['reference']['rows']:,} rows)",
             *provenance_lines(s),
             f"drifted features: {s['drifted_features']} of {s['features']} ({s['drift_share']:.0%}; alarm at "
             f"{s['thresholds']['drift_share']:.0%}): {', '.join(s['drifted'][:8]) or 'none'}"
             + (" ..." if len(s["drifted"]) > 8 else ""),
             f"predicted churn probability: {p['method']} {p['score']:.3g} (threshold {p['threshold']:.3g}), "
             f"{'DRIFTED' if p['drifted'] else 'no drift'}; mean {p['mean_reference']:.3f} -> {p['mean_current']:.3f}",
             *quality_lines(s["quality"]), *renewal_lines(s), *[f"alarm: {r}" for r in s["alarm_reasons"]],
             *features_only_lines(s)]
    return banner("churnwatch drift", s["alarm"], lines)


#: Said when the features alone raise the alarm (a probe's recipe app: December usage against a summer test
#: block, 41 of 54 features drifted, the probabilities not; the model ranked at 0.77 that month, as trained)
FEATURES_ONLY = ("the features drifted but the predicted probabilities did not: the inputs moved (a season against "
                 "the reference's months, a product or tracking change) without moving the model's output; whether "
                 "the model still ranks and calibrates is `churnwatch performance`'s to say once these scores' labels "
                 "mature, and a seasonal product's reference is best a test block of the same season (train again)")


def features_only_lines(s: dict) -> list[str]:
    """``FEATURES_ONLY`` when the alarm is the feature share's alone (``monitoring.drift``), else none."""
    return [f"note: {FEATURES_ONLY}"] if s["alarm"] and not s["probability"]["drifted"] else []


def renewal_lines(s: dict) -> list[str]:
    """The renewal calendar's line when it moved (``monitoring.drift``), else none."""
    calendar = s.get("renewal_calendar")
    return [calendar_line(calendar)] if calendar and calendar["moved"] else []


def provenance_lines(s: dict) -> list[str]:
    """Which model's probabilities are compared, rows missing from the reference, features
    that could not be compared."""
    cur, out = s["current"], []
    if cur.get("rescored"):
        others = ", ".join(f"v{v} ({n:,} rows)" for v, n in cur["scored_by"].items() if v != cur["probabilities_from"])
        out.append(f"probabilities of model version {cur['probabilities_from']}: {cur['rescored']:,} rows scored by "
                   f"{others} were re-scored with the champion")
    if s["reference"].get("warning"):
        out.append(f"reference: {s['reference']['warning']}")
    for f in s.get("not_comparable", []):
        out.append(f"{f['feature']}: {f['reason']}")
    return out


def performance_rows(s: dict) -> list[list[str]]:
    cur, train = s["current"], s["training"]
    fmt = {"roc_auc": "{:.4f}", "pr_auc": "{:.4f}", "brier": "{:.5f}", "ece": "{:.4f}"}
    names = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "brier": "Brier", "ece": "ECE"}
    rows = [["metric", "at training (test block)", "matured scores", "change"]]
    for k, f in fmt.items():
        before = "-" if train.get(k) is None else f.format(train[k])
        change = "-" if k not in s["change"] else f"{s['change'][k]:+.4f}"
        rows.append([names[k], before, f.format(cur[k]), change])
        if k == "pr_auc" and "pr_auc_at_training_base_rate" in cur:  # the alarm's figure (base rates differ)
            at = cur["pr_auc_at_training_base_rate"]
            rows.append(["PR-AUC at the training base rate", before, f.format(at),
                         "-" if train.get(k) is None else f"{at - train[k]:+.4f}"])
    if train.get("base_rate") is not None and cur.get("base_rate") is not None:
        rows.append(["base rate (churned share)", f"{train['base_rate']:.2%}", f"{cur['base_rate']:.2%}",
                     f"{100 * (cur['base_rate'] - train['base_rate']):+.2f} pt"])  # percentage points
    return rows


def tier_rows(s: dict) -> list[list[str]]:
    rows = [["tier", "scores", "churned", "churn rate", "churn rate at training"]]
    for tier, d in s["current"]["per_tier"].items():
        then = (s["training"].get("per_tier") or {}).get(tier, {}).get("churn_rate")
        rows.append([tier, f"{d['count']:,}", f"{d['churned']:,}",
                     "-" if d["churn_rate"] is None else f"{d['churn_rate']:.2%}",
                     "-" if then is None else f"{then:.2%}"])
    return rows


def performance_banner(s: dict) -> str:
    cur = s["current"]
    lines = [f"model version {s['model_version']}: {cur['rows']:,} matured scores ({cur['churned']:,} churned) "
             f"scored {cur['as_of_first']} .. {cur['as_of_last']}; data end {s['maturity'].get('data_end')}",
             *[f"{n:,} matured scores of {d} have no label in the current data (not counted)"
               for d, n in s["maturity"].get("unlabelled", {}).items()],
             *[f"alarm: {r}" for r in s["alarm_reasons"]]]
    return banner("churnwatch performance", s["alarm"], lines, performance_rows(s) + [[""] * 4] + tier_rows(s))
