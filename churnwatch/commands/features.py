"""`churnwatch features` and `churnwatch metrics`: snapshots into the store; churn per month.

Stage libraries are imported inside the commands: MLflow, LightGBM and Evidently take seconds to
load, and ``churnwatch --help`` or a usage error should not wait for them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnwatch.options import (
    ConfigOpt,
    DataOpt,
    HomeOpt,
    StoreOpt,
    console,
    context,
    given_config,
    parse_dates,
    require_data,
    steps,
)
from core.errors import ChurnwatchError
from core.files import atomic_write_text
from core.settings import CONFIG_FILE_NAME


class Engine(StrEnum):
    """Where the features are computed."""

    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[Engine, typer.Option("--engine", help="where the features are computed: duckdb (one "
                                           "machine) or spark (PySpark, local or a cluster: --master)")]
MasterOpt = Annotated[str | None, typer.Option("--master", help="--engine spark: Spark master URL (local[4], "
                                               "spark://host:7077, yarn; default local[*] or spark-submit's)")]


def check_source_not_older(store: Path, root: Path, settings, config_file: Path | None) -> None:
    """Stop ``features`` without ``--data`` when the store's last build read another source than the config's
    ``data:`` (``score --data NEW_EXPORT``, or an earlier ``features --data``): rebuilding from the config's
    source silently dropped the later export's dates (probe p49: the monthly run's ``score --data export2``,
    then a plain ``features``, rebuilt from export1 and the next ``score`` re-scored a month back). Which of the
    two is meant only the user knows (an edited ``data:`` or an unedited one look alike: a file's time says
    nothing of which line changed), so ``--data`` once says it; after that the two agree."""
    from churnwatch.options import ExitError
    from core.store import connect, read_meta, recorded_source, source_for_store

    recorded = recorded_source(store, root)
    if not recorded or not settings.data or source_for_store(recorded, root) == source_for_store(settings.data, root):
        return
    try:
        with connect(store, read_only=True) as con:
            end = f" (data end {read_meta(con).data_end})"
    except ChurnwatchError:
        end = ""
    where = f"the data: of {config_file}" if config_file is not None else "the config's data:"
    raise ExitError(f"the store was last built from {recorded}{end}, but {where} is {settings.data}: a plain "
                    "`features` would rebuild every date from that source and drop the dates only the other has. "
                    f"Say which, once: --data {recorded} to go on with it (and set data: in the config for the "
                    f"next runs), or --data {settings.data} to rebuild from the config's")


def _print_set_aside(summary: dict) -> None:
    rows = [(t, r, n) for t, rep in summary["tables"].items() for r, n in rep["set_aside"].items()]
    rows += [(t, f"{r} (value made unknown, row kept)", n) for t, rep in summary["tables"].items()
             for r, n in rep.get("values_set_aside", {}).items()]
    if not rows:
        console.print("contract checks: no rows set aside")
        return
    table = Table(title="rows set aside (kept out of the features, counted here)")
    for col in ("table", "reason", "rows"):
        table.add_column(col)
    for t, r, n in rows:
        table.add_row(t, r, f"{n:,}")
    console.print(table)


def features(
    data: DataOpt = None,
    store: StoreOpt = None,
    as_of: Annotated[list[str] | None, typer.Option("--as-of", help="as-of date(s) YYYY-MM-DD "
                                                    "(default: the weekly schedule)")] = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
    engine: EngineOpt = Engine.duckdb,
    master: MasterOpt = None,
    parquet: Annotated[Path | None, typer.Option("--parquet", help="--engine spark: folder of the snapshots as "
                                                 "Parquet partitioned by as-of date (default <store>.snapshots)"
                                                 )] = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="decide the kind of every own column "
                                               "(number, category, date) again from this data (default: keep "
                                               "the kinds the store's plan decided, which its model was "
                                               "trained with)")] = False,
) -> None:
    """Build point-in-time snapshots (features + labels) into the store (--engine spark: with PySpark,
    also as Parquet partitioned by as-of date)."""
    from core.store import write_summary
    from features.pipeline import build_snapshots
    from features.sources import SPARK_CATALOG

    h, settings = context(home, config, data, remembered=False)
    used = given_config(h, config, data)  # --config, or the one this home's store remembers
    source = require_data(settings)
    if data is None:
        home_config = h.root / CONFIG_FILE_NAME
        check_source_not_older(store or h.store, h.root, settings,
                               used or (home_config if home_config.is_file() else None))
    target = store or h.store
    if Engine(engine) is Engine.spark or str(source).startswith(SPARK_CATALOG):
        from features.spark import spark_session

        spark_session(master)  # before the source is read: a spark-catalog:// source reads through it
    with steps() as say:
        result = build_snapshots(source, settings, target, as_of=parse_dates(as_of), progress=say, home=h.root,
                                 refuse_before_start=as_of is not None,
                                 engine=Engine(engine).value, master=master, parquet=parquet,
                                 from_scratch=from_scratch, config=used.resolve() if used else None)
    summary = result.summary()
    write_summary(h.run_summary, summary)
    s = summary["snapshots"]
    console.print(f"snapshots: {s['rows']:,} rows ({s['labelled_rows']:,} labelled, {s['positive_rows']:,} "
                  f"churn within {settings.horizon_days} days) for {s['accounts']:,} accounts on "
                  f"{s['as_of_dates']} as-of dates {s['as_of_first']} .. {s['as_of_last']}")
    console.print(f"features: {s['features']} ({len(s['event_types'])} event types); data end "
                  f"{summary['data_end']}; {result.events:,} events in {result.seconds['total']:.1f} s")
    _print_spellings(summary["event_spellings"])
    _print_request_hint(s["event_types"], settings.event_roles)
    _print_readings(summary["tables"])
    _print_set_aside(summary)
    _print_profile(summary["profile_columns"])
    console.print(f"data source (remembered for score, report, diagnose, performance): {result.data_source}")
    if used is not None:
        console.print(f"config (remembered for the other commands of this home while it has no "
                      f"{CONFIG_FILE_NAME} of its own and no --config is given): {used.resolve()}")
    elif (h.root / CONFIG_FILE_NAME).exists():
        console.print(f"config: {(h.root / CONFIG_FILE_NAME).resolve()}")
    elif "://" not in str(source) and (Path(source) / CONFIG_FILE_NAME).is_file():
        console.print(f"config: the data folder's own {(Path(source) / CONFIG_FILE_NAME).resolve()}")
    else:  # a probe could not tell which file had been read
        console.print(f"config: none ({h.root / CONFIG_FILE_NAME} does not exist and no --config was given): "
                      "the defaults")
    if Engine(engine) is Engine.spark:
        from features.spark import default_parquet_folder

        console.print(f"built with Spark; snapshots as Parquet partitioned by as-of date: "
                      f"{parquet or default_parquet_folder(target)}")
    console.print(f"store: {target}\nrun summary: {h.run_summary}")


def _print_request_hint(types: list[str], roles) -> None:
    """Event types that read as a cancellation asked for ahead (or taken back) while ``event_roles.cancel_request``
    (``cancel_withdrawn``) names none (``features.spec.cancel_role_of``)."""
    from features.spec import cancel_role_of

    found = {role: [t for t in types if cancel_role_of(t) == role] for role in ("cancel_request", "cancel_withdrawn")}
    if found["cancel_request"] and not roles.cancel_request:
        console.print(f"hint: event type(s) {', '.join(repr(t) for t in found['cancel_request'])} look like a customer "
                      "asking to cancel ahead: list them under event_roles: cancel_request in churnwatch.yaml, so that "
                      "a request stands until the term ends or renews (cancel_request_standing); the event counts "
                      "forget it after 90 days, before an annual term's end", markup=False)
    if found["cancel_withdrawn"] and not roles.cancel_withdrawn:
        console.print(f"hint: event type(s) {', '.join(repr(t) for t in found['cancel_withdrawn'])} look like a "
                      "customer taking a cancellation back: list them under event_roles: cancel_withdrawn in "
                      "churnwatch.yaml, so that a withdrawn request no longer stands", markup=False)


def _print_spellings(spellings: dict[str, dict[str, int]]) -> None:
    """Event types the export spells several ways (case, spaces, '-', '_'): one type each, one feature family."""
    if not spellings:
        return
    console.print("event types spelled several ways, each read as one type (named by event_roles, else by "
                  "its most frequent spelling): " + "; ".join(
                      f"{name!r} = " + " + ".join(f"{s!r} ({n:,})" for s, n in found.items())
                      for name, found in spellings.items()), markup=False)


def _print_readings(tables: dict) -> None:
    """Values read from bands, as CRMs export a company's size (``11-50``: its midpoint), per column."""
    for table, rep in tables.items():
        for column, found in rep.get("readings", {}).items():
            shown = ", ".join(f"{b!r} as {v:,}" for b, v in found["bands"].items())
            more = len(found["bands"]) < found.get("distinct", len(found["bands"]))
            console.print(f"{table}.{column}: {found['values']:,} value(s) read from bands ({shown}"
                          + (", ..." if more else "") + "): a band a-b as its midpoint, rounded; a+ as a",
                          markup=False)


def _print_profile(profile: dict) -> None:
    """The company's own columns: which became features (with how a date in epoch time, or a number
    that looks like one, was decided), which did not and why."""
    if profile["used"]:
        console.print("own columns as profile features: " + ", ".join(
            f"{c['table']}.{c['column']} -> {c['feature']} ({c['kind']}" + (f"; {c['note']}" if c.get("note") else "")
            + ")" for c in profile["used"]), markup=False)
    unused = [c for c in profile["unused"] if not c["reason"].startswith("contract column")]
    if not unused:
        return
    table = Table(title="columns not used as features")
    for col in ("table", "column", "reason"):
        table.add_column(col)
    for c in unused:
        table.add_row(c["table"], c["column"], c["reason"])
    console.print(table)


def metrics(data: DataOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
            out: Annotated[Path | None, typer.Option("--out", help="folder for churn-metrics.csv/json "
                                                     "(default <home>/reports)")] = None) -> None:
    """Monthly customer churn rate and gross / net MRR churn rate."""
    from features.metrics import churn_metrics, mean_customer_churn
    from features.pipeline import open_connection, prepare

    h, settings = context(home, config, data)
    source = require_data(settings)
    con = open_connection()
    try:
        report, _ = prepare(source, settings, con)
        frame = churn_metrics(con, settings, report.data_start, report.data_end)
    finally:
        con.close()
    folder = out or h.reports
    atomic_write_text(folder / "churn-metrics.csv", frame.to_csv(index=False))
    atomic_write_text(folder / "churn-metrics.json", frame.to_json(orient="records", date_format="iso", indent=2))
    table = Table(title="churn per month (ARTICLE §1 definitions)")
    for col in ("month", "active at start", "churned", "customer churn", "MRR at start",
                "gross MRR churn", "net MRR churn"):
        table.add_column(col, justify="right")
    for r in frame.itertuples():
        table.add_row(f"{r.month:%Y-%m}" + (" *" if r.provisional else ""), f"{r.accounts_start:,}",
                      f"{int(r.churned):,}", f"{r.customer_churn_rate:.2%}", f"{r.mrr_start:,.0f}",
                      f"{r.gross_mrr_churn_rate:.2%}", f"{r.net_mrr_churn_rate:.2%}")
    console.print(table)
    if frame["provisional"].any():
        console.print("* provisional: a relationship ending then could still renew within the grace period "
                      "(lower bound, left out of the mean)")
    for r in frame[frame["pending"] > 0].itertuples():  # ends not final yet: in neither churn column
        console.print(f"  {r.month:%Y-%m}: {int(r.pending):,} relationship(s) with MRR {r.pending_mrr:,.0f} end "
                      "then and could still renew: counted neither as churned customers nor as churned MRR yet")
    rate, months = mean_customer_churn(frame)
    console.print((f"mean monthly customer churn {rate:.2%} over {months} complete months (churned / active at "
                   "the start, summed: a month weighs its customers); " if rate is not None else
                   "no complete month with customers; ") + f"written to {folder / 'churn-metrics.csv'}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(features)
    app.command()(metrics)
