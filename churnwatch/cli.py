"""The ``churnwatch`` command line: a thin shell over the packages (DESIGN §8).

Exit codes: 0 done; 2 bad input or usage (one or two lines naming what is wrong);
3 a monitored alarm.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnwatch.home import Home
from churnwatch.options import ConfigOpt, DataOpt, ExitError, HomeOpt, StoreOpt, parse_date
from features.config import CONFIG_FILE_NAME, Settings, load_settings
from features.errors import ChurnwatchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="churnwatch: early warning for customer churn.")
console = Console()
err = Console(stderr=True)

@contextmanager
def steps():
    """A spinner with elapsed time; yields a function that sets the current step."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("starting", total=None)

        def say(message: str) -> None:
            progress.update(task, description=message)
            logging.getLogger("churnwatch").info(message)

        yield say


def _context(home: Path | None, config: Path | None, data: str | None = None) -> tuple[Home, Settings]:
    h = Home.resolve(home)
    cfg_path = config
    if cfg_path is None and data and "://" not in data and Path(data).is_dir() \
            and not (h.root / CONFIG_FILE_NAME).exists() and (Path(data) / CONFIG_FILE_NAME).exists():
        cfg_path = Path(data) / CONFIG_FILE_NAME  # a data folder may carry its own config
    settings = load_settings(cfg_path, h.root)
    if data:
        settings = settings.model_copy(update={"data": data})
    return h, settings


def _require_data(settings: Settings) -> str:
    if not settings.data:
        raise ExitError("no data source: pass --data DIR|FILE.duckdb|URL or set `data:` in churnwatch.yaml")
    return settings.data


def _parse_dates(values: list[str] | None, option: str = "--as-of") -> list[dt.date] | None:
    if not values:
        return None
    parts = [part.strip() for v in values for part in v.split(",")]
    if any(not part for part in parts):
        raise ExitError(f"{option} {','.join(values)!r}: an empty date between commas (expected YYYY-MM-DD,...)")
    return [parse_date(part, option) for part in parts]


def _print_set_aside(summary: dict) -> None:
    rows = [(t, r, n) for t, rep in summary["tables"].items() for r, n in rep["set_aside"].items()]
    if not rows:
        console.print("contract checks: no rows set aside")
        return
    table = Table(title="rows set aside (kept out of the features, counted here)")
    for col in ("table", "reason", "rows"):
        table.add_column(col)
    for t, r, n in rows:
        table.add_row(t, r, f"{n:,}")
    console.print(table)


DEMO_KINDS = {"demo": (2000, 24), "consumer": (4000, 12), "flat": (7000, 12), "stripe": (800, 12)}


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option("--out", help="folder to write the tables to")],
    accounts: Annotated[int | None, typer.Option(min=10, max=1_000_000, help="accounts (customers for "
                                                 "--kind flat); default 2000 / 4000 / 7000 / 800 by kind")] = None,
    months: Annotated[int | None, typer.Option(min=6, max=120, help="default 24 (demo), 12 (others)")] = None,
    seed: int = 7,
    drift_from: Annotated[str | None, typer.Option("--drift-from", help="YYYY-MM-DD: behaviour changes "
                                                   "after this date (demo only)")] = None,
    kind: Annotated[str, typer.Option("--kind", help="demo: B2B SaaS, all seven tables; consumer: a consumer "
                                      "product's accounts + subscriptions + events; flat: one churn table "
                                      "(CSV); stripe: a Stripe-shaped export with a naive and a correct "
                                      "mapping")] = "demo",
) -> None:
    """Generate a dataset: the B2B demo (seven tables + churnwatch.yaml) or a foreign-shaped export."""
    if kind not in DEMO_KINDS:
        raise ExitError(f"--kind {kind!r}: expected one of {', '.join(DEMO_KINDS)}")
    if drift_from and kind != "demo":
        raise ExitError("--drift-from works with --kind demo only")
    accounts = accounts or DEMO_KINDS[kind][0]
    months = months or DEMO_KINDS[kind][1]
    with steps() as say:
        say(f"generating {kind} data: {accounts:,} accounts x {months} months")
        summary = _write_demo_kind(kind, out, accounts, months, seed, drift_from)
    console.print(f"wrote {kind} data to {out}")
    console.print(json.dumps(_jsonable(summary), indent=2, default=str))


def _write_demo_kind(kind: str, out: Path, accounts: int, months: int, seed: int,
                     drift_from: str | None) -> object:
    if kind == "consumer":
        from demo.consumer import write_consumer_data

        return write_consumer_data(out, accounts=accounts, months=months, seed=seed)
    if kind == "flat":
        from demo.flat import write_flat_table

        path = write_flat_table(out / "churn_table.csv", rows=accounts, seed=seed)
        return {"table": str(path), "rows": accounts,
                "next": f"churnwatch train --table {path} --label Churn --id customer_id"}
    if kind == "stripe":
        from demo.stripe import write_stripe_export

        folders = write_stripe_export(out, accounts=accounts, months=months, seed=seed)
        return {name: str(path) for name, path in folders.items()}
    from features.demo import write_demo_data

    drift = _parse_dates([drift_from], "--drift-from")[0] if drift_from else None
    return write_demo_data(out, accounts=accounts, months=months, seed=seed, drift_from=drift)


def _jsonable(obj: object) -> object:
    from dataclasses import asdict, is_dataclass

    return asdict(obj) if is_dataclass(obj) else obj


@app.command()
def features(
    data: DataOpt = None,
    store: StoreOpt = None,
    as_of: Annotated[list[str] | None, typer.Option("--as-of", help="as-of date(s) YYYY-MM-DD "
                                                    "(default: the weekly schedule)")] = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Build point-in-time snapshots (features + labels) into the store."""
    from features.pipeline import build_snapshots
    from features.store import write_summary

    h, settings = _context(home, config, data)
    source = _require_data(settings)
    target = store or h.store
    with steps() as say:
        result = build_snapshots(source, settings, target, as_of=_parse_dates(as_of), progress=say)
    summary = result.summary()
    write_summary(h.run_summary, summary)
    s = summary["snapshots"]
    console.print(f"snapshots: {s['rows']:,} rows ({s['labelled_rows']:,} labelled, {s['positive_rows']:,} "
                  f"churn within {settings.horizon_days} days) for {s['accounts']:,} accounts on "
                  f"{s['as_of_dates']} as-of dates {s['as_of_first']} .. {s['as_of_last']}")
    console.print(f"features: {s['features']} ({len(s['event_types'])} event types); data end "
                  f"{summary['data_end']}; {result.events:,} events in {result.seconds['total']:.1f} s")
    _print_set_aside(summary)
    console.print(f"store: {target}\nrun summary: {h.run_summary}")


@app.command()
def metrics(data: DataOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
            out: Annotated[Path | None, typer.Option("--out", help="folder for churn-metrics.csv/json "
                                                     "(default <home>/reports)")] = None) -> None:
    """Monthly customer churn rate and gross / net MRR churn rate."""
    from features.metrics import churn_metrics
    from features.pipeline import open_connection, prepare

    h, settings = _context(home, config, data)
    source = _require_data(settings)
    con = open_connection()
    try:
        report, _ = prepare(source, settings, con)
        frame = churn_metrics(con, settings, report.data_start, report.data_end)
    finally:
        con.close()
    folder = out or h.reports
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "churn-metrics.csv", index=False)
    (folder / "churn-metrics.json").write_text(frame.to_json(orient="records", date_format="iso", indent=2))
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
    final = frame[~frame["provisional"]]
    console.print(f"mean monthly customer churn {final['customer_churn_rate'].mean():.2%} over "
                  f"{len(final)} complete months; "
                  f"written to {folder / 'churn-metrics.csv'}")


def _print_comparison(frame) -> None:
    table = Table(title="model vs baselines on the out-of-time test block")
    cols = ["model", "roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "top_decile_capture"]
    for c in cols:
        table.add_column(c.replace("_", " "), justify="left" if c == "model" else "right")
    for r in frame.to_dict(orient="records"):
        table.add_row(r["model"], *[("-" if r[c] != r[c] else f"{r[c]:.4f}") for c in cols[1:]])
    console.print(table)


def _print_tiers(metrics: dict) -> None:
    table = Table(title=f"churn by tier (test block base rate {metrics['base_rate']:.2%})")
    for c in ("tier", "accounts x dates", "churned", "churn rate"):
        table.add_column(c, justify="right")
    for tier, d in metrics["per_tier"].items():
        rate = "-" if d["churn_rate"] is None else f"{d['churn_rate']:.2%}"
        table.add_row(tier, f"{d['count']:,}", f"{d['churned']:,}", rate)
    console.print(table)


def _tracking(h: Home):
    from training.registry import setup

    return setup(h.tracking_uri, h.mlflow_artifacts)


@app.command()
def train(store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None, seed: int = 0,
          table: Annotated[Path | None, typer.Option("--table", help="a flat churn table (CSV or Parquet) "
                                                     "instead of snapshots")] = None,
          label: Annotated[str | None, typer.Option("--label", help="label column of --table")] = None,
          id_col: Annotated[str | None, typer.Option("--id", help="id column of --table")] = None) -> None:
    """Train LightGBM + calibration + health map, compare with baselines, log and register in MLflow."""
    from training.train import log_run, params_of, train_on_snapshots, train_on_table

    h, _settings = _context(home, config)
    out = h.reports / "training" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    with steps() as say:
        if table is not None:
            if not label or not id_col:
                raise ExitError("--table needs --label COL and --id COL")
            result = train_on_table(table, label, id_col, out, seed=seed, progress=say)
        else:
            result = train_on_snapshots(store or h.store, out, seed=seed, progress=say)
        say("logging to MLflow and registering the bundle")
        result = log_run(result, h.tracking_uri, h.mlflow_artifacts, params_of(result))
    _print_comparison(result.comparison)
    _print_tiers(result.metrics)
    console.print(f"registered model version {result.version} (run {result.run_id}); plots in {out}\n"
                  f"tracking store: {h.tracking_uri}\nnext: churnwatch promote --version {result.version}")


@app.command()
def promote(version: Annotated[int | None, typer.Option(help="model version (default: the latest)")] = None,
            force: Annotated[bool, typer.Option("--force", help="promote whatever the comparison says")] = False,
            reason: Annotated[str | None, typer.Option("--reason", help="why (required with --force)")] = None,
            home: HomeOpt = None) -> None:
    """Make a version the champion if it beats the current one on its own test block (DESIGN §4)."""
    from training.promotion import promote_version

    h = Home.resolve(home)
    if force and not reason:
        raise ExitError("--force needs --reason TEXT (it is logged with the promotion)")
    decision, version, champion = promote_version(_tracking(h), version, force=force, reason=reason)
    verdict = "promoted" if decision.promote else "not promoted"
    console.print(f"version {version}: {verdict} (champion was {champion or 'none'}): {decision.reason}")


@app.command()
def evaluate(version: Annotated[int | None, typer.Option(help="model version (default: the champion)")] = None,
             store: StoreOpt = None, home: HomeOpt = None) -> None:
    """Re-score a version's test block from the store and print its metrics and tiers."""
    from training.promotion import evaluate_version

    h = Home.resolve(home)
    metrics, v = evaluate_version(_tracking(h), version, store)
    console.print(f"model version {v}: ROC-AUC {metrics['roc_auc']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  "
                  f"Brier {metrics['brier']:.5f}  ECE {metrics['ece']:.4f}  top-decile lift "
                  f"{metrics['top_decile_lift']:.2f}")
    _print_tiers(metrics)


@app.command()
def score(data: DataOpt = None, store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
          as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD, or several separated by commas "
                                                    "(default: the data end)")] = None,
          model: Annotated[str | None, typer.Option("--model", help="bundle folder or models:/churnwatch@alias "
                                                    "(default: the champion)")] = None) -> None:
    """Score every active account as of a date (features from the raw data) into the score history."""
    from features.store import connect, read_meta
    from serving.batch import score_dates
    from training.registry import load_model

    h, settings = _context(home, config, data)
    source = _require_data(settings)
    target = store or h.store
    if as_of:
        dates = _parse_dates([as_of])
    else:
        with connect(target, read_only=True) as con:
            dates = [read_meta(con).data_end]
    bundle = load_model(_tracking(h), model)
    version = str(bundle.meta.get("model_version", model or "bundle"))
    with steps() as say:
        say(f"features and scores as of {', '.join(map(str, sorted(set(dates))))}")
        scored = score_dates(source, settings, target, bundle, dates, version)
    for date, history in scored.items():
        counts = history["tier"].value_counts()
        console.print(f"scored {len(history):,} accounts as of {date} with model version {version}: "
                      + ", ".join(f"{t} {counts.get(t, 0):,}" for t in ("healthy", "low_risk", "medium_risk",
                                                                         "high_risk")))
    date, history = max(scored.items())
    table = Table(title=f"highest risk as of {date}")
    for c in ("account", "health", "tier", "churn probability", "first reason", "owner, respond within"):
        table.add_column(c)
    for r in history.nsmallest(10, "health_score").itertuples():
        reasons = json.loads(r.reasons_en)
        table.add_row(r.account_id, str(r.health_score), r.tier, f"{r.churn_probability:.1%}",
                      reasons[0]["text"] if reasons else "-", f"{r.playbook_owner}, {r.respond_within}")
    console.print(table)
    console.print(f"score history: {target} (table score_history)")
    _run_alerts(target, settings)


def _run_alerts(target: Path, settings: Settings) -> None:
    from serving.alerts import deliver_pending, raise_alerts

    new = raise_alerts(target, settings)
    sent = deliver_pending(target, settings)
    console.print(f"alerts: {len(new):,} new ({', '.join(sorted(set(new['rule']))) if len(new) else 'none'}); "
                  f"deliveries: {sent['delivered']:,} sent, {sent['pending']:,} pending for the next run; "
                  "retention tasks: churnwatch tasks")


@app.command()
def alerts(store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Evaluate the alert rules on the score history and deliver pending alerts to webhooks."""
    h, settings = _context(home, config)
    _run_alerts(store or h.store, settings)


@app.command()
def tasks(store: StoreOpt = None, home: HomeOpt = None) -> None:
    """Open retention tasks created by alerts (owner and due time from the tier's playbook)."""
    from serving.alerts import open_tasks

    h = Home.resolve(home)
    frame = open_tasks(store or h.store)
    table = Table(title=f"open retention tasks ({len(frame):,})")
    for c in ("task", "account", "tier", "owner", "due", "action"):
        table.add_column(c)
    for r in frame.head(50).itertuples():
        table.add_row(r.task_id, r.account_id, r.tier, r.owner, str(r.due_at or "-"), r.action)
    console.print(table)


@app.command()
def serve(store: StoreOpt = None, home: HomeOpt = None,
          model: Annotated[str | None, typer.Option("--model", help="bundle folder or models:/churnwatch@alias "
                                                    "(default: the champion)")] = None,
          host: str = "127.0.0.1", port: int = 3000,
          workers: Annotated[int, typer.Option(min=1, help="worker processes (one per core serves the most "
                                                           "requests)")] = 1) -> None:
    """Start the BentoML prediction service (POST /score, /score_accounts; GET /model)."""
    import os
    import subprocess

    h = Home.resolve(home)
    env = {**os.environ, "CHURNWATCH_HOME": str(h.root), "BENTOML_DO_NOT_TRACK": "true",
           "CHURNWATCH_WORKERS": str(workers)}
    if model:
        env["CHURNWATCH_MODEL"] = model
    if store:
        env["CHURNWATCH_STORE"] = str(store)
    console.print(f"serving on http://{host}:{port} (Swagger UI: /, OpenAPI: /docs.json; token: "
                  f"{'required' if env.get('CHURNWATCH_API_TOKEN') else 'not set'})")
    code = subprocess.call([sys.executable, "-m", "bentoml", "serve", "serving.service:ChurnService",
                            "--host", host, "--port", str(port)], env=env)
    raise typer.Exit(code)


@app.command()
def demo(home: HomeOpt = None,
         accounts: Annotated[int, typer.Option(min=50)] = 2000,
         months: Annotated[int, typer.Option(min=12)] = 24,
         seed: int = 7) -> None:
    """The whole path on demo data generated on the spot: data -> features -> model -> scores -> reports."""
    from features.config import dump_settings
    from features.demo import data_end as demo_data_end

    h = Home.resolve(home)
    data_dir = h.root / "demo-data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_end = demo_data_end(months)
    # Behaviour changes 88 days before the data end: after the last labelled date the model is
    # trained and tested on (data end - horizon - grace), so training never sees it, and the
    # drift report of the latest scores has something real to find.
    drift_from = data_end - dt.timedelta(days=88)
    console.rule("1/9 demo data (behaviour drifts from " + drift_from.isoformat() + ")")
    demo_data(out=data_dir, accounts=accounts, months=months, seed=seed, drift_from=drift_from.isoformat(),
              kind="demo")
    h.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(data_dir / CONFIG_FILE_NAME, h.root / CONFIG_FILE_NAME)
    settings = load_settings(h.root / CONFIG_FILE_NAME)
    settings = settings.model_copy(update={"data": str(data_dir)})
    dump_settings(settings, h.root / CONFIG_FILE_NAME)
    console.rule("2/9 features and labels")
    features(data=None, store=None, as_of=None, home=h.root, config=None)
    console.rule("3/9 churn metrics")
    metrics(data=None, home=h.root, config=None, out=None)
    console.rule("4/9 train: LightGBM, calibration, health tiers, baselines (MLflow)")
    train(store=None, home=h.root, config=None, seed=0, table=None, label=None, id_col=None)
    console.rule("5/9 promote")
    promote(version=None, force=False, reason=None, home=h.root)
    # Three scoring dates: one whose horizon has passed (performance), four weeks before the
    # end (tier movements) and the data end.
    matured = data_end - dt.timedelta(days=settings.horizon_days + settings.grace_days + 1)
    dates = [matured, data_end - dt.timedelta(days=28), data_end]
    console.rule("6/9 score every active account on " + ", ".join(d.isoformat() for d in dates)
                 + "; alerts and retention tasks")
    score(data=None, store=None, home=h.root, config=None, as_of=",".join(d.isoformat() for d in dates), model=None)
    console.rule("7/9 monitoring: drift of the latest scores, performance of the matured ones (Evidently)")
    from churnwatch.cli_monitor import run_drift, run_performance

    drift = run_drift(store=None, out=None, as_of=None, home=h.root, config=None)
    run_performance(store=None, out=None, home=h.root, config=None)
    console.rule("8/9 report for customer success (English and Chinese)")
    from churnwatch.cli_managers import report

    report_en = report(store=None, home=h.root, config=None, out=None, tier=None, lang="en", top=50,
                       accounts=None, as_of=None, model=None)
    report_zh = report(store=None, home=h.root, config=None, out=None, tier=None, lang="zh-CN", top=50,
                       accounts=None, as_of=None, model=None)
    console.rule("9/9 churn diagnosis and the closed loop")
    from churnwatch.cli_diagnosis import diagnose

    # The demo's score history has a single matured date; the champion's out-of-sample test
    # block (13 weekly dates) gives the closed loop more to compare.
    diagnose(data=None, out=None, home=h.root, config=None, store=None, months=12, start=None, end=None,
             scores="backfill", model=None)
    from serving.batch import read_history

    latest = read_history(h.store, data_end)
    ranked = latest.sort_values(["churn_probability", "account_id"], ascending=[False, True])
    top = ranked["account_id"].iloc[0] if len(ranked) else "ACC-000001"
    console.rule("next")
    console.print(f"home folder: {h.root}\n"
                  f"  snapshots:      {h.store} (DuckDB: SELECT * FROM snapshots; scores: score_history)\n"
                  f"  run summary:    {h.run_summary}\n"
                  f"  churn metrics:  {h.reports / 'churn-metrics.csv'}\n"
                  f"  MLflow:         {h.tracking_uri} (mlflow ui --backend-store-uri {h.tracking_uri})\n"
                  f"  training plots: {h.reports / 'training'}\n"
                  f"  drift report:   {h.reports / 'monitoring' / 'drift.html'}"
                  f"{'  (ALARM: churnwatch drift exits 3)' if drift.get('alarm') else ''}\n"
                  f"  performance:    {h.reports / 'monitoring' / 'performance.html'}\n"
                  f"  CS report:      {report_en}\n"
                  f"                  {report_zh}\n"
                  f"  diagnosis:      {h.reports / 'diagnosis'}\n"
                  f"open the reports in a browser, or try:\n"
                  f"  churnwatch explain {top}   |   churnwatch explain {top} --lang zh-CN   |   churnwatch tasks\n"
                  "  churnwatch serve   then   curl -s localhost:3000/score_accounts "
                  f"-H 'Content-Type: application/json' -d '{{\"account_ids\": [\"{top}\"]}}'")


def _register_more() -> None:
    """Commands kept in their own modules (monitoring; managers' views; diagnosis)."""
    from churnwatch import cli_diagnosis, cli_managers, cli_monitor

    for module in (cli_monitor, cli_managers, cli_diagnosis):
        module.register(app)


_register_more()


def main() -> None:
    """Entry point: our errors become a short message and exit 2; usage errors exit 2 (click)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=True)
    except ExitError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.code)
    except ChurnwatchError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
