"""`churnwatch drift`, `churnwatch performance` and `churnwatch screenshot` (issue 5, DESIGN §6).

``register(app)`` adds the commands to the main Typer app; shared helpers come from
``churnwatch.options``.
Stage libraries are imported inside the functions: MLflow, LightGBM, Evidently and matplotlib
take seconds to load, and ``churnwatch --help`` or a usage error should not wait for them.

``run_drift`` and ``run_performance`` do the work and return the JSON summary, so the demo
can call them and go on; the commands wrap them and exit 3 on an alarm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnwatch.browser import dump_dom, pixel_spread, screenshot
from churnwatch.options import ConfigOpt, HomeOpt, StoreOpt, console, context, parse_date, steps, tracking

ALARM_EXIT = 3

OutOpt = Annotated[Path | None, typer.Option("--out", help="folder for the HTML report and JSON summary "
                                             "(default <home>/reports/monitoring)", show_default=False)]


def run_drift(store: Path | None = None, out: Path | None = None, as_of: str | None = None,
              home: Path | None = None, config: Path | None = None) -> dict:
    """Drift of the latest scored snapshots vs the champion's test block: HTML + JSON in
    ``out`` (default ``<home>/reports/monitoring``), an MLflow run; returns the summary
    (``summary["alarm"]`` says whether DESIGN §6's alarm fired)."""
    from monitoring.drift import drift_report
    from monitoring.outputs import banner, log_monitoring_run, publish
    from monitoring.reference import champion_bundle, champion_probabilities, current_rows, reference_rows

    h, settings = context(home, config)
    cfg, target, day = settings.monitoring, store or h.store, parse_date(as_of, "--as-of")
    with steps() as say:
        say("loading the champion model")
        bundle = champion_bundle(tracking(h))
        version = str(bundle.meta.get("model_version", ""))
        say("reading the latest scored snapshots and the champion's test block")
        current = current_rows(target, bundle.frame.names, day)
        current, scored = champion_probabilities(current, bundle, version)
        if scored["rescored"]:
            say(f"re-scoring {scored['rescored']:,} rows scored by model version(s) "
                f"{', '.join(v for v in scored['scored_by'] if v != version)} with the champion (version {version})")
        found: dict = {}
        reference = reference_rows(bundle, store, fallback=h.store, info=found)
        current_as_of = str(current["as_of"].iloc[0])[:10]  # a date or a Timestamp: YYYY-MM-DD
        say(f"Evidently drift report: {len(current):,} current vs {len(reference):,} reference rows")
        result = drift_report(reference, current, bundle.catalogue, bundle.frame, cfg, model_version=version,
                              current_as_of=current_as_of, reference_block=bundle.meta["snapshots"]["test_block"])
        summary = result.summary
        summary["current"].update(scored)
        summary["reference"].update(found)
        say("writing the report and logging it to MLflow")
        tags = {"probabilities_from_version": scored["probabilities_from"],
                "scored_by_versions": ",".join(scored["scored_by"]), "rescored_rows": str(scored["rescored"])}
        files, run_id = publish(
            out or h.reports / "monitoring", "drift", result.snapshot, summary, _drift_banner(summary, banner),
            lambda fs: log_monitoring_run(h.tracking_uri, h.mlflow_artifacts, cfg.experiment, "drift", version,
                                          _drift_metrics(summary), fs, summary["alarm"], tags))
    summary["files"] = files
    summary["mlflow_run_id"] = run_id
    _print_drift(summary)
    return summary


def _drift_metrics(s: dict) -> dict[str, float]:
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
            "alarm": float(s["alarm"])}


def _quality_lines(q: dict) -> list[str]:
    unseen = "; ".join(f"{k}: {', '.join(v[:5])}" for k, v in q["unseen_categories"].items()) or "none"
    rng = ", ".join(f"{k} ({n:,} rows)" for k, n in list(q["out_of_range"].items())[:5]) or "none"
    miss = ", ".join(q["missing_rise"][:5]) or "none"
    return [f"new categories (unseen in training): {unseen}", f"values outside the spec's ranges: {rng}",
            f"missing share up by >= 10 points: {miss}"]


def _drift_banner(s: dict, banner) -> str:
    p = s["probability"]
    lines = [f"model version {s['model_version']}; current: scores of {s['current']['as_of']} "
             f"({s['current']['rows']:,} rows); reference: the champion's test block "
             f"{' .. '.join(s['reference']['test_block'] or [])} ({s['reference']['rows']:,} rows)",
             *_provenance_lines(s),
             f"drifted features: {s['drifted_features']} of {s['features']} ({s['drift_share']:.0%}; alarm at "
             f"{s['thresholds']['drift_share']:.0%}): {', '.join(s['drifted'][:8]) or 'none'}"
             + (" ..." if len(s["drifted"]) > 8 else ""),
             f"predicted churn probability: {p['method']} {p['score']:.3g} (threshold {p['threshold']:.3g}), "
             f"{'DRIFTED' if p['drifted'] else 'no drift'}; mean {p['mean_reference']:.3f} -> {p['mean_current']:.3f}",
             *_quality_lines(s["quality"]), *[f"alarm: {r}" for r in s["alarm_reasons"]]]
    return banner("churnwatch drift", s["alarm"], lines)


def _provenance_lines(s: dict) -> list[str]:
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


def _print_drift(s: dict) -> None:
    top = sorted((f for f in s["feature_drift"] if f["drifted"]), key=lambda f: -f["strength"])[:10]
    if top:
        table = Table(title=f"top drifted features ({s['drifted_features']} of {s['features']})")
        for c in ("feature", "method", "score", "threshold"):
            table.add_column(c, justify="left" if c in ("feature", "method") else "right")
        for f in top:
            table.add_row(f["feature"], f["method"], f"{f['score']:.4g}", f"{f['threshold']:.3g}")
        console.print(table)
    p = s["probability"]
    console.print(f"model version {s['model_version']}: scores of {s['current']['as_of']} ({s['current']['rows']:,} "
                  f"rows) vs the champion's test block ({s['reference']['rows']:,} rows)"
                  + (" [sampled]" if s["sampling"]["sampled"] else ""))
    console.print(f"drifted features: {s['drifted_features']} of {s['features']} ({s['drift_share']:.1%}; "
                  f"alarm at {s['thresholds']['drift_share']:.0%})")
    console.print(f"probability drift: {p['method']} {p['score']:.4g} (threshold {p['threshold']:.3g}): "
                  f"{'DRIFTED' if p['drifted'] else 'no drift'}; mean {p['mean_reference']:.4f} -> "
                  f"{p['mean_current']:.4f}")
    for line in _quality_lines(s["quality"]):
        console.print(f"data quality: {line}")
    for line in _provenance_lines(s):
        console.print(line, markup=False, highlight=False)
    verdict = "ALARM: " + "; ".join(s["alarm_reasons"]) if s["alarm"] else "no alarm"
    console.print(verdict, style="bold red" if s["alarm"] else "bold green", markup=False, highlight=False)
    console.print(f"report: {s['files']['html']}\nsummary: {s['files']['json']}\n"
                  f"MLflow run: {s['mlflow_run_id']}")


def run_performance(store: Path | None = None, out: Path | None = None, home: Path | None = None,
                    config: Path | None = None) -> dict:
    """Performance of the champion's matured scores vs its figures at training time: HTML +
    JSON in ``out`` (default ``<home>/reports/monitoring``), an MLflow run; returns the summary
    (``status`` ``evaluated`` or ``not matured yet``; ``alarm``). Scored dates whose horizon
    has passed are labelled from the current data first (``relabel_matured``)."""
    from monitoring.outputs import log_monitoring_run, publish
    from monitoring.performance import performance_report
    from monitoring.reference import champion_bundle, matured_rows, reference_rows, relabel_matured

    h, settings = context(home, config)
    cfg, target = settings.monitoring, store or h.store
    with steps() as say:
        say("loading the champion model")
        bundle = champion_bundle(tracking(h))
        version = str(bundle.meta.get("model_version", ""))
        relabel = {"rebuilt": [], "skipped": "no data source configured"}
        if settings.data:
            say("labelling scored dates whose horizon has passed, from the current data")
            relabel = relabel_matured(settings.data, settings, target, progress=say)
        say("reading the matured score history")
        matured, maturity = matured_rows(target)
        maturity["relabelled"] = relabel
        result = performance_report(matured, lambda: reference_rows(bundle, store, fallback=h.store),
                                    bundle.meta.get("metrics", {}), cfg, model_version=version, maturity=maturity)
        summary = result.summary
        say("writing the summary" + (" and the report" if result.verdict else "") + " and logging to MLflow")
        metrics = {"alarm": float(summary["alarm"]), "matured_rows": float(summary["matured_rows"]),
                   "unlabelled_matured_rows": float(sum(maturity["unlabelled"].values()))}
        if result.verdict:
            cur = summary["current"]
            metrics.update({**{k: cur[k] for k in ("roc_auc", "pr_auc", "brier", "ece", "rows", "base_rate")},
                            **{f"change_{k}": v for k, v in summary["change"].items()}})
        files, run_id = publish(
            out or h.reports / "monitoring", "performance", result.snapshot, summary,
            _performance_banner(summary) if result.verdict else "",
            lambda fs: log_monitoring_run(h.tracking_uri, h.mlflow_artifacts, cfg.experiment, "performance",
                                          version, metrics, fs, summary["alarm"], {"status": summary["status"]}))
    summary["files"] = files
    summary["mlflow_run_id"] = run_id
    if result.verdict:
        _print_performance(summary)
    else:
        console.print(f"performance: no verdict yet: {summary['reason']}")
        console.print(f"summary: {files['json']}\nMLflow run: {run_id}")
    for day, n in maturity["unlabelled"].items():
        console.print(f"warning: {n:,} matured scores of {day} have no label in the current data (not counted)",
                      markup=False, highlight=False)
    return summary


def _performance_rows(s: dict) -> list[list[str]]:
    cur, train = s["current"], s["training"]
    fmt = {"roc_auc": "{:.4f}", "pr_auc": "{:.4f}", "brier": "{:.5f}", "ece": "{:.4f}"}
    names = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "brier": "Brier", "ece": "ECE"}
    rows = [["metric", "at training (test block)", "matured scores", "change"]]
    for k, f in fmt.items():
        before = "-" if train.get(k) is None else f.format(train[k])
        change = "-" if k not in s["change"] else f"{s['change'][k]:+.4f}"
        rows.append([names[k], before, f.format(cur[k]), change])
    return rows


def _tier_rows(s: dict) -> list[list[str]]:
    rows = [["tier", "scores", "churned", "churn rate", "churn rate at training"]]
    for tier, d in s["current"]["per_tier"].items():
        then = (s["training"].get("per_tier") or {}).get(tier, {}).get("churn_rate")
        rows.append([tier, f"{d['count']:,}", f"{d['churned']:,}",
                     "-" if d["churn_rate"] is None else f"{d['churn_rate']:.2%}",
                     "-" if then is None else f"{then:.2%}"])
    return rows


def _performance_banner(s: dict) -> str:
    from monitoring.outputs import banner

    cur = s["current"]
    lines = [f"model version {s['model_version']}: {cur['rows']:,} matured scores ({cur['churned']:,} churned) "
             f"scored {cur['as_of_first']} .. {cur['as_of_last']}; data end {s['maturity'].get('data_end')}",
             *[f"{n:,} matured scores of {d} have no label in the current data (not counted)"
               for d, n in s["maturity"].get("unlabelled", {}).items()],
             *[f"alarm: {r}" for r in s["alarm_reasons"]]]
    return banner("churnwatch performance", s["alarm"], lines, _performance_rows(s) + [[""] * 4] + _tier_rows(s))


def _print_performance(s: dict) -> None:
    cur = s["current"]
    for title, rows in ((f"matured scores of model version {s['model_version']}: {cur['rows']:,} "
                         f"({cur['as_of_first']} .. {cur['as_of_last']})", _performance_rows(s)),
                        ("observed churn per tier", _tier_rows(s))):
        table = Table(title=title)
        for i, c in enumerate(rows[0]):
            table.add_column(c, justify="left" if i == 0 else "right")
        for r in rows[1:]:
            table.add_row(*r)
        console.print(table)
    verdict = "ALARM: " + "; ".join(s["alarm_reasons"]) if s["alarm"] else "no alarm"
    console.print(verdict, style="bold red" if s["alarm"] else "bold green", markup=False, highlight=False)
    console.print(f"report: {s['files']['html']}\nsummary: {s['files']['json']}\nMLflow run: {s['mlflow_run_id']}")


def render_report(html: Path, out: Path, width: int = 1400, height: int = 2000, budget_ms: int = 15000,
                  dom: Path | None = None) -> dict:
    """Render an HTML report to a PNG in headless Chromium (and optionally dump its DOM)."""
    png = screenshot(html, out, width=width, height=height, budget_ms=budget_ms)
    result = {"png": str(png), "colours": pixel_spread(png)}
    if dom is not None:
        dom.parent.mkdir(parents=True, exist_ok=True)
        dom.write_text(dump_dom(html, budget_ms=budget_ms), encoding="utf-8")
        result["dom"] = str(dom)
    return result


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command()
    def drift(store: StoreOpt = None, out: OutOpt = None,
              as_of: Annotated[str | None, typer.Option("--as-of", help="scored date to check (default: the "
                                                        "latest in the score history)")] = None,
              home: HomeOpt = None, config: ConfigOpt = None) -> None:
        """Evidently drift of the latest scores vs the champion's test block; exit 3 on an alarm."""
        if run_drift(store=store, out=out, as_of=as_of, home=home, config=config)["alarm"]:
            raise typer.Exit(ALARM_EXIT)

    @app.command()
    def performance(store: StoreOpt = None, out: OutOpt = None, home: HomeOpt = None,
                    config: ConfigOpt = None) -> None:
        """Matured scores vs the figures at training time (ROC-AUC, PR-AUC, Brier, ECE, tiers); exit 3 on a drop."""
        if run_performance(store=store, out=out, home=home, config=config)["alarm"]:
            raise typer.Exit(ALARM_EXIT)

    @app.command("screenshot")
    def screenshot_cmd(html: Annotated[Path, typer.Argument(help="HTML report (self-contained)")],
                       out: Annotated[Path, typer.Option("--out", help="PNG to write")],
                       width: int = 1400, height: int = 2000,
                       budget_ms: Annotated[int, typer.Option("--budget-ms", help="virtual time for the page's "
                                                              "scripts")] = 15000,
                       dump_dom: Annotated[Path | None, typer.Option("--dump-dom", help="also write the rendered "
                                                                     "DOM here")] = None) -> None:
        """Render an HTML report to a PNG in headless Chromium (README pictures)."""
        result = render_report(html, out, width=width, height=height, budget_ms=budget_ms, dom=dump_dom)
        console.print(f"wrote {result['png']} ({result['colours']:,} colours)"
                      + (f"; DOM: {result['dom']}" if "dom" in result else ""))
