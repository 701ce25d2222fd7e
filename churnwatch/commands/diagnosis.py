"""`churnwatch diagnose` (issue 6): who churns, why, how long customers stay, and what
retention actions achieved (ARTICLE §2 and §4).

``register(app)`` adds the command to the main Typer app; shared helpers come from
``churnwatch.options``.
Stage libraries are imported inside the functions: MLflow, LightGBM, Evidently and matplotlib
take seconds to load, and ``churnwatch --help`` or a usage error should not wait for them.
``diagnose`` is also a plain function (every parameter explicit) for ``churnwatch demo``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnwatch.options import ExitError, console, context, require_data, steps, tracking
from core.errors import ChurnwatchError


def diagnose(
    data: Annotated[str | None, typer.Option("--data", help="folder of Parquet/CSV, a .duckdb file or a "
                                             "SQLAlchemy URL (default: data: in the config)",
                                             show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="folder for the tables and charts "
                                             "(default <home>/reports/diagnosis)", show_default=False)] = None,
    home: Annotated[Path | None, typer.Option("--home", help="home folder (default ./churnwatch-data or "
                                              "$CHURNWATCH_HOME)", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option("--config", help="churnwatch.yaml (default "
                                                "<home>/churnwatch.yaml)", show_default=False)] = None,
    store: Annotated[Path | None, typer.Option("--store", help="store with snapshots and the score history "
                                               "(default <home>/store.duckdb)", show_default=False)] = None,
    months: Annotated[int, typer.Option("--months", min=1, max=120, help="length of the churn window, "
                                        "ending grace days before the data end")] = 12,
    start: Annotated[str | None, typer.Option("--start", help="window start YYYY-MM-DD (with --end, "
                                              "instead of --months)", show_default=False)] = None,
    end: Annotated[str | None, typer.Option("--end", help="window end YYYY-MM-DD", show_default=False)] = None,
    scores: Annotated[str, typer.Option("--scores", help="closed loop: auto | history | backfill (score the "
                                        "store's matured snapshots with the champion)")] = "auto",
    model: Annotated[str | None, typer.Option("--model", help="bundle folder or models:/churnwatch@alias for "
                                              "back-filled scores (default: the champion)",
                                              show_default=False)] = None,
) -> None:
    """Churn diagnosis: rates over time, churn by segment (Wilson intervals, BH-corrected tests), exit
    reasons, Kaplan-Meier survival, and retention after interventions vs comparable accounts."""
    from insights.diagnosis import Window, build_diagnosis, write_diagnosis
    from workflow.interventions import interventions_of_home
    from workflow.interviews import feedback_of_home

    h, settings = context(home, config, data)
    source = require_data(settings)
    if (start is None) != (end is None):
        raise ExitError("--start and --end go together (or use --months)")
    window = None
    if start and end:
        try:
            window = Window(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
        except ValueError as exc:
            raise ExitError(f"--start/--end: expected dates as YYYY-MM-DD ({exc})") from exc
    if scores not in ("auto", "history", "backfill"):
        raise ExitError(f"--scores {scores!r}: expected auto, history or backfill")
    folder = out or h.reports / "diagnosis"
    with steps() as say:
        say("reading the data; rates, segments, exit reasons, survival")
        diag = build_diagnosis(source, settings, window=window, months=months,
                               interviews=feedback_of_home(h.root, settings.operations.url))
        diag.interventions = interventions_of_home(h.root, diag.interventions, settings.operations.url)
        say(f"writing tables and charts to {folder}")
        paths = write_diagnosis(diag, folder)
        say("closed loop: interventions vs comparable accounts")
        loop, skipped = _closed_loop(diag, settings, h, store or h.store, scores, model, folder)
    _print_summary(console, diag, loop, skipped, folder, paths)


def _closed_loop(diag, settings, h, store: Path, mode: str, model: str | None, folder: Path):
    """(ClosedLoop or None, why it was skipped)."""
    from insights.closed_loop import closed_loop_from_store, write_closed_loop
    from training.registry import load_model

    if diag.interventions is None or diag.interventions.empty:
        return None, "no interventions in the data"
    if not store.exists():
        return None, f"no store at {store} (run `churnwatch features`, `train`, `promote` first)"
    bundle = None
    if mode != "history":
        try:
            bundle = load_model(tracking(h), model)
        except ChurnwatchError as exc:
            if mode == "backfill":
                raise
            bundle, reason = None, str(exc)
        else:
            reason = ""
    try:
        loop = closed_loop_from_store(store, diag.interventions, diag.relationships, diag.data_end, bundle, mode)
    except ChurnwatchError as exc:
        return None, f"{exc}{'; ' + reason if bundle is None and mode != 'history' and reason else ''}"
    write_closed_loop(loop, folder)
    return loop, ""


def _pct(x: float) -> str:
    return "-" if x != x else f"{x:.1%}"


def _print_summary(console, diag, loop, skipped: str, folder: Path, paths: dict) -> None:
    d = diag.definitions()
    lo, hi = d["overall_ci"]
    console.print(f"churn window: {d['churn_rate']}\n"
                  f"overall: {d['churned']:,} of {d['accounts']:,} accounts churned = {d['overall_rate']:.1%} "
                  f"(95% Wilson {lo:.1%}-{hi:.1%})")
    seg = diag.by_segment
    differ = seg[seg["differs"]].sort_values("q_value")
    table = Table(title=f"segments that differ from the rest (BH q < {diag.alpha:g}; "
                        f"{len(differ)} of {int(seg['p_value'].notna().sum())} tested)")
    for c in ("dimension", "segment", "accounts", "churn rate (95% CI)", "rest", "q"):
        table.add_column(c, justify="left" if c in ("dimension", "segment") else "right")
    for r in differ.head(10).itertuples():
        table.add_row(r.dimension, r.value, f"{r.accounts:,}", f"{r.churn_rate:.1%} ({r.ci_low:.1%}-{r.ci_high:.1%})",
                      _pct(r.rest_rate), f"{r.q_value:.3f}")
    if differ.empty:
        nearest = seg.dropna(subset=["q_value"]).nsmallest(3, "q_value")
        table.caption = "none; lowest q: " + ", ".join(f"{r.dimension}={r.value} {r.q_value:.3f}"
                                                        for r in nearest.itertuples())
    console.print(table)
    if len(diag.reasons):
        a = diag.avoidable.set_index("flag").loc["avoidable"]
        top = ", ".join(f"{r.reason_category} {r.share:.0%}" for r in diag.reasons.head(3).itertuples())
        cov = d["interview_coverage"]
        coverage = "no churn dated in the window to cover" if cov is None else f"coverage {cov:.0%} of churns"
        console.print(f"exit interviews in the window: {int(diag.reasons['interviews'].sum()):,} "
                      f"({coverage}); top reasons: {top}; avoidable "
                      f"{_pct(a['share'])} (95% CI {_pct(a['ci_low'])}-{_pct(a['ci_high'])})")
    else:
        console.print("exit interviews in the window: none")
    summary = diag.survival_cohort[1]
    followed = [f"{r.group} {_pct(r.survival_365d)}" for r in summary.itertuples()
                if "survival_365d" in summary and r.survival_365d == r.survival_365d]
    if followed:
        console.print("survival by signup cohort (Kaplan-Meier, share still a customer after 365 days): "
                      + ", ".join(followed))
    else:
        console.print("survival by signup cohort: no cohort followed for 365 days yet")
    if loop is None:
        console.print(f"closed loop: skipped ({skipped})")
    else:
        t = Table(title=f"retention over {loop.horizon_days} days after an intervention vs comparable accounts "
                        f"({loop.scores_source}; {loop.matured_dates} matured as-of date(s) used)")
        for c in ("tier", "playbook", "treated", "retained", "comparable retained", "difference, pp [95% CI]"):
            t.add_column(c, justify="left" if c in ("tier", "playbook") else "right")
        for r in loop.table.itertuples():
            diff = "-" if r.difference != r.difference else \
                f"{r.difference * 100:+.1f} [{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}]"
            t.add_row(r.tier, r.playbook, f"{r.treated_matched:,}", _pct(r.treated_retention),
                      _pct(r.comparable_retention), diff)
        console.print(t)
        from insights.closed_loop import CAVEAT

        d = loop.definitions()
        console.print(f"comparable: {d['comparable']}\ncaveat: {CAVEAT['en']}")
    console.print(f"tables (CSV + JSON) and charts: {folder}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("diagnose")(diagnose)
