"""`churnwatch train`, `promote` and `evaluate`: models in the MLflow registry (DESIGN §4).

Stage libraries are imported inside the commands: MLflow, LightGBM and Evidently take seconds to
load, and ``churnwatch --help`` or a usage error should not wait for them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from churnwatch.options import (
    ConfigOpt,
    ExitError,
    HomeOpt,
    StoreOpt,
    config_said,
    console,
    context,
    parse_date,
    steps,
    tracking,
)
from core.home import Home

if TYPE_CHECKING:
    from core.settings import Settings


#: The baselines as the comparison table names them: the logistic baseline is a plain one (C 1, no sign
#: constraints), not the candidate the choice may pick (a probe read "logistic regression alone" 0.746 above
#: "logistic regression" 0.698 as one model twice).
BASELINE_LABELS = {"logistic regression": "logistic baseline (plain, C 1)"}


def model_label(chosen: str | None) -> str:
    """The registered model as the terminal names it (``selection.describe``)."""
    from training.selection import describe

    return f"model: {describe(chosen)}" if chosen else "model"


def print_comparison(frame, where: str = "the out-of-time test block", chosen: str | None = None) -> None:
    table = Table(title=f"model vs baselines on {where}")
    cols = ["model", "roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "top_decile_capture"]
    for c in cols:
        table.add_column(c.replace("_", " "), justify="left" if c == "model" else "right")
    for r in frame.to_dict(orient="records"):
        name = model_label(chosen) if r.get("registered") else BASELINE_LABELS.get(r["model"], r["model"])
        table.add_row(name, *[("-" if r[c] != r[c] else f"{r[c]:.4f}") for c in cols[1:]])
    console.print(table)


def print_tiers(metrics: dict, short: str = "test block", unit: str = "accounts x dates") -> None:
    table = Table(title=f"churn by tier ({short} base rate {metrics['base_rate']:.2%})")
    for c in ("tier", unit, "churned", "churn rate"):
        table.add_column(c, justify="right")
    for tier, d in metrics["per_tier"].items():
        rate = "-" if d["churn_rate"] is None else f"{d['churn_rate']:.2%}"
        table.add_row(tier, f"{d['count']:,}", f"{d['churned']:,}", rate)
    console.print(table)


def set_aside_hint(summary: Path) -> str:
    """What the last `churnwatch features` set aside of ``subscriptions`` (``run-summary.json``), worded as
    a likely cause of a training block without churn: a mapping that drops the cancelled subscriptions
    (Chargebee's Current Term Start/End as the term dates: a cancelled subscription has none) leaves
    only those that stayed. "" when nothing was set aside or there is no summary."""
    try:
        report = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    tables = report.get("tables", {})  # the summary `features` writes: the checks' report at its top level
    counts = {k: int(v) for k, v in (tables.get("subscriptions", {}).get("set_aside") or {}).items() if v}
    if not counts:
        return ""
    listed = ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return (f"`churnwatch features` set aside {sum(counts.values()):,} subscriptions rows ({listed}; "
            f"{summary}): if those are the cancelled subscriptions, their churn never reached the snapshots; "
            "check the start_date / end_date mapping (README, \"Bring your data\")")


def train(store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None, seed: int = 0,
          table: Annotated[Path | None, typer.Option("--table", help="a flat churn table (CSV or Parquet) "
                                                     "instead of snapshots")] = None,
          label: Annotated[str | None, typer.Option("--label", help="label column of --table")] = None,
          id_col: Annotated[str | None, typer.Option("--id", help="id column of --table")] = None,
          as_of: Annotated[str | None, typer.Option(
              "--as-of", help="--table: YYYY-MM-DD, the day its date columns count days to (default: the "
              "latest date not after today in those not looking ahead; needed when all look ahead)")] = None,
          cross_validate: Annotated[int | None, typer.Option(
              "--cross-validate", help="--table: also run the whole training on K folds of all customers, each "
              "scored by a model fitted without it, and judge ROC-AUC, calibration and tiers on all of them "
              "(2-10; 0 = off; default: 5 when the test split does not meet the calibration target, for "
              "tables of 2,000 to 50,000 customers)")] = None,
          test_days: Annotated[int | None, typer.Option("--test-days", help="days of as-of dates in the "
                                                        "test block (default: automatic)")] = None,
          calibration_days: Annotated[int | None, typer.Option(
              "--calibration-days", help="a purged calibration block of this many days; 0 = cross-fit")] = None,
          early_stopping_days: Annotated[int | None, typer.Option(
              "--early-stopping-days", help="a purged early-stopping block of this many days")] = None,
          min_train_days: Annotated[int | None, typer.Option(
              "--min-train-days", help="fewest days of training as-of dates (default 56)")] = None,
          allow_leaky: Annotated[list[str] | None, typer.Option(
              "--allow-leaky-feature", help="train although the leakage guard flags this feature (repeatable); "
              "the version is never promoted automatically")] = None,
          snapshots: Annotated[Path | None, typer.Option(
              "--snapshots", help="a Parquet snapshot set (as_of=YYYY-MM-DD/ folders, as `features --engine spark` "
              "writes) instead of the store's table; the store gives its build's metadata")] = None,
          sample_accounts: Annotated[int | None, typer.Option(
              "--sample-accounts", help="--snapshots: train on this many accounts (whole histories, by hash of "
              "the account id, churn rate kept)")] = None,
          memory_budget_mb: Annotated[float | None, typer.Option(
              "--memory-budget-mb", help="--snapshots: sample accounts when the rows would need more "
              "(default: half the memory available)")] = None) -> None:
    """Train LightGBM + calibration + health map, compare with baselines, log and register in MLflow."""
    from training.errors import TrainingError
    from training.own_table import TableError
    from training.registry import relocatable_pointer
    from training.run_text import next_line, possible_leak, split_words, unmet_bars
    from training.snapshot_set import train_on_snapshot_set
    from training.train import log_run, params_of, train_on_snapshots, train_on_table

    h, _settings = context(home, config)
    given = {"test_days": test_days, "calibration_days": calibration_days,
             "early_stopping_days": early_stopping_days, "min_train_days": min_train_days}
    try:
        options = type(_settings.training).model_validate(
            {**_settings.training.model_dump(), **{k: v for k, v in given.items() if v is not None}})
    except ValueError as exc:  # pydantic's ValidationError: a bad --*-days value
        raise ExitError(f"train: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from exc
    if (sample_accounts is not None or memory_budget_mb is not None) and snapshots is None:
        raise ExitError("--sample-accounts and --memory-budget-mb go with --snapshots FOLDER")
    if snapshots is not None and table is not None:
        raise ExitError("--snapshots and --table: give one of them")
    if as_of is not None and table is None:
        raise ExitError("--as-of goes with --table FILE (a snapshot model's dates come from `churnwatch features`)")
    day = parse_date(as_of, "--as-of") if as_of else None
    if cross_validate and table is None:
        raise ExitError("--cross-validate K goes with --table FILE (a snapshot model's test block is out-of-time)")
    out = h.reports / "training" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    extra: dict = {}
    sample = None
    with steps() as say:
        if snapshots is not None:
            result, sample = train_on_snapshot_set(snapshots, store or h.store, out, seed=seed, progress=say,
                                                   options=options, allow_leaky=tuple(allow_leaky or ()),
                                                   sample_accounts=sample_accounts,
                                                   memory_budget_mb=memory_budget_mb)
            extra = {"snapshots_parquet": str(snapshots.resolve()), **sample.params()}
        elif table is not None:
            if not label or not id_col:
                raise ExitError("--table needs --label COL and --id COL")
            try:
                result = train_on_table(table, label, id_col, out, seed=seed, progress=say,
                                        allow_leaky=tuple(allow_leaky or ()), as_of=day,
                                        date_format=_settings.date_format, profile=_settings.profile,
                                        cross_validate=cross_validate)
            except TableError as exc:  # "declare it in churnwatch.yaml": say which file this command reads
                if "in churnwatch.yaml" not in str(exc):
                    raise
                raise TableError(f"{exc} ({config_said(h, config)})") from exc
        else:
            from core.store import stored_horizon

            stored = stored_horizon(store or h.store)
            if stored is not None and stored != (int(_settings.horizon_days), int(_settings.grace_days)):
                say(f"warning: churnwatch.yaml says horizon_days {_settings.horizon_days}, grace_days "
                    f"{_settings.grace_days}, but the store's labels are of horizon_days {stored[0]}, grace_days "
                    f"{stored[1]}: this model is trained and described at {stored[0]} days; run `churnwatch "
                    "features` first to train at the new setting")
            try:
                result = train_on_snapshots(store or h.store, out, seed=seed, progress=say, options=options,
                                            allow_leaky=tuple(allow_leaky or ()), profile=_settings.profile)
            except TrainingError as exc:  # no churn to learn from: were the churned rows set aside?
                hint = set_aside_hint(h.run_summary) if "positive labels" in str(exc) else _mapped_end(exc, _settings)
                if not hint:
                    raise
                raise TrainingError(f"{exc}; {hint}") from exc
        say("logging to MLflow and registering the bundle")
        result.bundle.meta = relocatable_pointer(result.bundle.meta, h.root)  # a copied home keeps working
        result = log_run(result, h.tracking_uri, h.mlflow_artifacts, {**params_of(result), **extra})
    if sample is not None:
        console.print(f"trained on {sample.describe()}")
    words = split_words(result.bundle.meta)
    print_comparison(result.comparison, words["test"], result.metrics.get("model"))
    print_tiers(result.metrics, words["short"], words["unit"])
    unmet = unmet_bars(result.bundle.meta)
    lead = possible_leak(result.bundle.meta, {f.name: f.template for f in result.bundle.catalogue.features})
    warned = "".join(f"warning: not met: {u}\n" for u in unmet) + (f"warning: {lead}\n" if lead else "")
    console.print(f"registered model version {result.version} (run {result.run_id}); plots in {out}\n"
                  f"tracking store: {h.tracking_uri}\n{warned}{next_line(result.bundle.meta, result.version)}",
                  markup=False)


def promote(version: Annotated[int | None, typer.Option(help="model version (default: the latest)")] = None,
            force: Annotated[bool, typer.Option("--force", help="promote whatever the comparison says")] = False,
            reason: Annotated[str | None, typer.Option("--reason", help="why (required with --force)")] = None,
            home: HomeOpt = None) -> None:
    """Make a version the champion if it beats the current one on its own test block (DESIGN §4).

    Exit 3 when the version may not be promoted without --force (trained with --allow-leaky-feature, or the
    champion reads a column its test rows do not have, so the two cannot be compared)."""
    from training.promotion import promote_version

    h = Home.resolve(home)
    if force and not reason:
        raise ExitError("--force needs --reason TEXT (it is logged with the promotion)")
    decision, version, champion = promote_version(tracking(h), version, force=force, reason=reason)
    verdict = "promoted" if decision.promote else "not promoted"
    console.print(f"version {version}: {verdict} (champion was {champion or 'none'}): {decision.reason}")
    if decision.promote:  # what its evaluation said at training, repeated where the choice is made
        for unmet in decision.unmet:
            said = f": {unmet}" if unmet.startswith("possible leak") else f" did not meet: {unmet}"
            console.print(f"warning: at training, version {version}{said}", markup=False)
    if decision.blocked:  # a scheduled retrain must not keep the old champion silently
        raise typer.Exit(3)


def evaluate(version: Annotated[int | None, typer.Option(help="model version (default: the champion)")] = None,
             store: StoreOpt = None, home: HomeOpt = None) -> None:
    """Re-score a version's test block from the store and print its metrics and tiers."""
    from training.promotion import evaluate_version
    from training.run_text import split_words

    h = Home.resolve(home)
    metrics, v = evaluate_version(tracking(h), version, store)
    console.print(f"model version {v}: ROC-AUC {metrics['roc_auc']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  "
                  f"Brier {metrics['brier']:.5f}  ECE {metrics['ece']:.4f}  top-decile lift "
                  f"{metrics['top_decile_lift']:.2f}")
    words = split_words(metrics)
    print_tiers(metrics, words["short"], words["unit"])


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(train)
    app.command()(promote)
    app.command()(evaluate)



def _mapped_end(exc: Exception, settings: Settings) -> str:
    """For a refused end date: the column churnwatch.yaml maps to ``end_date`` (a probe's "Canceled At (UTC)"
    was named only as "a Stripe export's canceled_at" in general); "" otherwise."""
    if "feature 'days_to_term_end'" not in str(exc):
        return ""
    ends = [theirs for theirs, ours in settings.column_mapping.get("subscriptions", {}).items() if ours == "end_date"]
    mapped = [c for c in ends if re.search(r"cancel|ended|churn|closed|terminat", c, re.IGNORECASE)]
    if mapped:  # not a period's end
        return (f"churnwatch.yaml maps the subscriptions' column {mapped[0]!r} to end_date: map the end of each "
                "billing period or term there instead (docs/exports-with-cancellation-dates.md)")
    current = [c for c in ends if re.search(r"current[\s_-]*period", c, re.IGNORECASE)]
    if current:  # a probe mapped the dashboard's one row per subscription so, and was told of canceled_at
        return (f"churnwatch.yaml maps the subscriptions' column {current[0]!r} to end_date: in a file of one row "
                "per subscription that is only its latest period (a cancelled customer's last one, an active "
                "customer's coming renewal), so every earlier date sees how the subscription ended; rebuild one "
                "row per billing period (docs/exports-with-cancellation-dates.md, the dashboard's files)")
    return ""
