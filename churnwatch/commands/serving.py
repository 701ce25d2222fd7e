"""`churnwatch score` and `serve`: scores (and the alerts they raise: ``commands.workflow``), the API.

Stage libraries are imported inside the commands: MLflow, LightGBM and Evidently take seconds to
load, and ``churnwatch --help`` or a usage error should not wait for them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from churnwatch.commands.features import Engine, EngineOpt, MasterOpt
from churnwatch.commands.workflow import operations, run_alerts, storage_named
from churnwatch.options import (
    ConfigOpt,
    DataOpt,
    ExitError,
    HomeOpt,
    StoreOpt,
    console,
    context,
    given_config,
    parse_dates,
    require_data,
    steps,
    tracking,
)
from core.home import Home
from core.settings import CONFIG_ENV, load_settings
from core.store import HISTORY
from core.vocabulary import TIER_KEYS, probability_text


@storage_named
def score(data: DataOpt = None, store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
          as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD, or several separated by commas "
                                                    "(default: the data end)")] = None,
          model: Annotated[str | None, typer.Option("--model", help="bundle folder or models:/churnwatch@alias "
                                                    "(default: the champion)")] = None,
          table: Annotated[Path | None, typer.Option("--table", help="score the customers of a flat table (CSV or "
                                                     "Parquet) with a `train --table` model; as-of: --as-of, else "
                                                     "the latest date not after today of its past-looking "
                                                     "date columns, else today")] = None,
          id_col: Annotated[str | None, typer.Option("--id", help="id column of --table (default: the one the "
                                                     "model was trained with)")] = None,
          engine: EngineOpt = Engine.duckdb, master: MasterOpt = None) -> None:
    """Score every active account as of a date (features from the raw data), or the customers of a flat
    table (--table, with a `train --table` model), into the score history."""
    from core.store import connect, read_meta
    from serving.batch import build_scores, record_scores, require_snapshot_model, score_table_rows
    from training.registry import load_model

    h, settings = context(home, config, data)
    target = store or h.store
    bundle = load_model(tracking(h), model)
    version = str(bundle.meta.get("model_version", model or "bundle"))
    said: list[str] = []  # what the scored rows do not give the model (serving.coverage.batch_warnings)
    if table is not None:
        days = parse_dates([as_of]) if as_of else [None]
        if len(days) > 1:
            raise ExitError(f"--as-of {as_of}: a table is scored as of one date (the day it was exported)")
        day, history, source = score_table_rows(table, id_col, settings, target, bundle, version, days[0],
                                                warn=said.append)
        scored = {day: history}
        console.print(f"{table.name} scored as of {day} ({source})")
        if as_of is None:  # the day taken from the table (or today); a probe then scored a day later too
            console.print(f"note: if this export is scored again with --as-of, these scores of {day} stay in the "
                          "score history beside that day's, and a tier move between the two (a day more of counting) "
                          "raises an alert: give --as-of on the first run of each export")
    else:
        require_snapshot_model(bundle)
        source = require_data(settings)
        with connect(target, read_only=True) as con:
            read_meta(con)  # a store built by `features` first (its horizon, plan and source)
        # default: the data end of the source read now, not the store's: a newer export (`--data`, or the
        # remembered folder rewritten) is scored at its own end (a probe's weekly run re-scored last week)
        dates = parse_dates([as_of]) if as_of else []
        with steps() as say:
            say(f"features and scores as of {', '.join(map(str, sorted(set(dates))))}" if dates
                else "features and scores as of the data end")
            if Engine(engine) is Engine.spark:  # the history is also written as Parquet (serving/spark_scoring.py)
                from serving.spark_scoring import spark_build_scores

                scored = spark_build_scores(source, settings, target, bundle, dates, version, master, say,
                                            warn=said.append)
            else:
                scored = build_scores(source, settings, target, bundle, dates, version, progress=say,
                                      warn=said.append)
    # the SHAP waterfalls of the run (kept before its scores commit; the publication joins them)
    from serving.waterfalls import build_waterfalls, record_waterfalls

    unit = "customers" if table is not None else "accounts"  # a flat table's rows are customers
    started = time.perf_counter()
    drawn = record_waterfalls(target, build_waterfalls(target, bundle, list(scored.values())), list(scored))
    console.print(f"SHAP waterfalls of {drawn:,} scores kept for the {unit[:-1]} pages "
                  f"({time.perf_counter() - started:.1f} s)")
    # the scores commit, then the alerts they raise (with tasks and digests) go to the operational store
    ops, _ = operations(home, config)
    new = record_scores(target, list(scored.values()), settings, engine=ops)
    for date, history in scored.items():
        counts = history["tier"].value_counts()
        console.print(f"scored {len(history):,} {unit} as of {date} with model version {version}: "
                      + ", ".join(f"{t} {counts.get(t, 0):,}" for t in TIER_KEYS))
    if table is None:
        said.extend(backfill_note(bundle, scored, target))
    for line in said:  # a leaky feature's line (first) in bold red, the others in yellow
        console.print(Text(line, style="bold red" if line.startswith("WARNING") else "yellow"))
    date, history = max(scored.items())
    top = Table(title=f"highest risk as of {date}")
    for c in (unit[:-1], "health", "tier", "churn probability", "first reason", "owner, respond within"):
        top.add_column(c)
    from workflow.facts import display_name

    # by probability (the integer health ties), then id: the same ten each time
    first = history.sort_values(["churn_probability", "account_id"], ascending=[False, True])
    for r in first.head(10).itertuples():
        reasons = json.loads(r.reasons_en)
        name = None if table is not None else display_name(settings, r.account_id)  # the CRM's name, as explain shows
        top.add_row(Text(r.account_id + (f" · {name}" if name else "")), str(r.health_score), r.tier,
                    probability_text(r.churn_probability),  # ids, names and reasons are data, not markup
                    Text(reasons[0]["text"]) if reasons else "-", f"{r.playbook_owner}, {r.respond_within}")
    console.print(top)
    console.print(f"score history: {target} (table {HISTORY})")
    from serving.published import publish_scores

    console.print(f"published for the service: {publish_scores(target, settings)}")
    run_alerts(target, settings, ops, new, scored=list(scored))


def serve(store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
          model: Annotated[str | None, typer.Option("--model", help="bundle folder or models:/churnwatch@alias "
                                                    "(default: the champion)")] = None,
          host: str = "127.0.0.1", port: int = 3000,
          workers: Annotated[int, typer.Option(min=1, help="worker processes (one per core serves the most "
                                                           "requests)")] = 1) -> None:
    """Start the BentoML prediction service (POST /score, /score_accounts; GET /model)."""
    from serving.launch import check_model, serve_foreground

    h = Home.resolve(home)
    config = given_config(h, config)  # --config, else the one this home's store remembers
    if config:  # read here first: a wrong file exits 2 naming it, before any worker starts
        config = config.expanduser().resolve()
        load_settings(config, h.root)
    # the model is loaded and checked here first: a bad bundle exits 2 naming the file
    checked = check_model(h, model)
    env = {**os.environ, "CHURNWATCH_HOME": str(h.root), "BENTOML_DO_NOT_TRACK": "true",
           "CHURNWATCH_WORKERS": str(workers), "CHURNWATCH_MODEL": checked}
    env.pop(CONFIG_ENV, None)
    if config:
        env[CONFIG_ENV] = str(config)
    if store:
        env["CHURNWATCH_STORE"] = str(store)
    console.print(f"serving {checked} on http://{host}:{port} (Swagger UI: /, OpenAPI: /docs.json; token: "
                  f"{'required' if env.get('CHURNWATCH_API_TOKEN') else 'not set'})", markup=False)
    serve_foreground(port, env, host)  # this process becomes the server: signals reach it directly


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    for command in (score, serve):
        app.command()(command)


def backfill_note(bundle, scored: dict, store: Path) -> list[str]:
    """A note when dates before the data end were scored with a model that reads the company's own
    columns: an export holds each account as it is on the export day, so a past date's score reads
    today's CRM values (a probe's HubSpot export: a churn reason on every earlier row of the companies
    that left made the backfilled scores of a leaking model look excellent to `performance`)."""
    from core.store import connect, read_meta
    # a date column is read point-in-time (days since it, missing before it); the others as exported
    own = [f.name for f in bundle.catalogue.features
           if f.template == "extra_profile" and f.params.get("kind") != "date"]
    if not own:
        return []
    try:
        with connect(store, read_only=True) as con:
            end = read_meta(con).data_end
    except Exception:  # noqa: BLE001 - no store to compare with: nothing to say
        return []
    past = sorted(d for d in scored if d < end)
    if not past:
        return []
    dates = ", ".join(map(str, past[:3])) + (" ..." if len(past) > 3 else "")
    columns = ", ".join(own[:4]) + (", ..." if len(own) > 4 else "")
    return [f"note: the scores of {dates} (before the data end {end}) read your own columns ({columns}) as the "
            "export holds them today, not as they were then: `performance` on these scores cannot tell a column "
            "written after the outcome (see the leakage guard) from a real signal"]
