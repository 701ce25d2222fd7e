"""`churnwatch drift`, `churnwatch performance` and `churnwatch screenshot` (issue 5, DESIGN §6).

``register(app)`` adds the commands to the main Typer app; shared helpers come from
``churnwatch.options``.
Stage libraries are imported inside the functions: MLflow, LightGBM, Evidently and matplotlib
take seconds to load, and ``churnwatch --help`` or a usage error should not wait for them.

``run_drift`` and ``run_performance`` run ``monitoring.runs`` and print and return the JSON
summary, so the demo can call them and go on; the commands wrap them and exit 3 on an alarm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnwatch.browser import dump_dom, pixel_spread, screenshot
from churnwatch.options import ConfigOpt, HomeOpt, StoreOpt, console, context, parse_date, steps, tracking
from core.files import atomic_path, atomic_write_text

ALARM_EXIT = 3

OutOpt = Annotated[Path | None, typer.Option("--out", help="folder for the HTML report and JSON summary "
                                             "(default <home>/reports/monitoring)", show_default=False)]


def run_drift(store: Path | None = None, out: Path | None = None, as_of: str | None = None,
              home: Path | None = None, config: Path | None = None) -> dict:
    """``monitoring.runs.check_drift`` with the command's options, then its summary printed."""
    from monitoring.runs import check_drift

    h, settings = context(home, config)
    day = parse_date(as_of, "--as-of")
    with steps() as say:
        summary = check_drift(h, settings, tracking(h), store, out, day, progress=say)
    print_drift(summary)
    return summary


def print_drift(s: dict) -> None:
    from monitoring.runs import features_only_lines, provenance_lines, quality_lines, renewal_lines

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
                  f"rows) vs the champion's test block {' .. '.join(s['reference']['test_block'] or [])} "
                  f"({s['reference']['rows']:,} rows)"
                  + (" [sampled]" if s["sampling"]["sampled"] else ""))
    console.print(f"drifted features: {s['drifted_features']} of {s['features']} ({s['drift_share']:.1%}; "
                  f"alarm at {s['thresholds']['drift_share']:.0%})")
    console.print(f"probability drift: {p['method']} {p['score']:.4g} (threshold {p['threshold']:.3g}): "
                  f"{'DRIFTED' if p['drifted'] else 'no drift'}; mean {p['mean_reference']:.4f} -> "
                  f"{p['mean_current']:.4f}")
    for line in quality_lines(s["quality"]):
        console.print(f"data quality: {line}")
    for line in provenance_lines(s):
        console.print(line, markup=False, highlight=False)
    for line in renewal_lines(s):  # what moved the probability in a book of long terms
        console.print(line, markup=False, highlight=False)
    verdict = "ALARM: " + "; ".join(s["alarm_reasons"]) if s["alarm"] else "no alarm"
    console.print(verdict, style="bold red" if s["alarm"] else "bold green", markup=False, highlight=False)
    for line in features_only_lines(s):  # a season, not a broken model: said, the alarm kept
        console.print(line, markup=False, highlight=False)
    console.print(f"report: {s['files']['html']}\nsummary: {s['files']['json']}\n"
                  f"MLflow run: {s['mlflow_run_id']}")


def run_performance(store: Path | None = None, out: Path | None = None, home: Path | None = None,
                    config: Path | None = None) -> dict:
    """``monitoring.runs.check_performance`` with the command's options, then its summary printed
    (or why there is no verdict yet, and the matured scores without a label)."""
    from monitoring.runs import check_performance

    h, settings = context(home, config)
    with steps() as say:
        run = check_performance(h, settings, tracking(h), store, out, progress=say)
    summary = run.summary
    if run.verdict:
        print_performance(summary)
    else:
        console.print(f"performance: no verdict yet: {summary['reason']}")
        console.print(f"summary: {summary['files']['json']}\nMLflow run: {summary['mlflow_run_id']}")
    for day, n in run.unlabelled.items():
        console.print(f"warning: {n:,} matured scores of {day} have no label in the current data (not counted)",
                      markup=False, highlight=False)
    return summary


def print_performance(s: dict) -> None:
    from monitoring.runs import performance_rows, tier_rows

    cur = s["current"]
    for title, rows in ((f"matured scores of model version {s['model_version']}: {cur['rows']:,} "
                         f"({cur['as_of_first']} .. {cur['as_of_last']})", performance_rows(s)),
                        ("observed churn per tier", tier_rows(s))):
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
    with atomic_path(out.resolve(), suffix=".png") as tmp:  # whole or not at all
        screenshot(html, tmp, width=width, height=height, budget_ms=budget_ms)
    png = out.resolve()
    result = {"png": str(png), "colours": pixel_spread(png)}
    if dom is not None:
        atomic_write_text(dom, dump_dom(html, budget_ms=budget_ms))
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
