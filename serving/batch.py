"""Batch scoring and the score history (DESIGN §5).

``score_as_of`` builds features for one as-of date from the raw data (the same pipeline
as ``churnwatch features``), scores every active account with a model bundle and writes
the rows to ``score_history`` in the store: account, as-of, probability, health, tier,
reasons and strengths (JSON, English and Chinese), the playbook, the model version.
Re-running a date replaces that date's rows (whatever model scored them), so a run killed
mid-way and run again completes the date and never duplicates an (account, as-of) pair.

``build_scores`` scores without writing (and with ``warn`` says what its rows do not give the
model: a feature blank on them all, categories training never saw; ``serving.coverage.batch_warnings``);
``record_scores`` writes the rows of every date in ONE DuckDB transaction and then (given the
settings) raises the alerts they cause into the operational store (``workflow.alerts``); a kill
between the two is made good by the next ``score`` or ``alerts`` run, which derives the episodes
from the whole history.

``score_table`` does the same for a flat-table model (``train --table``): the rows come
from a table file (one row per customer, the columns the model was trained on) instead of
the feature pipeline. A table has no time axis, so its rows get one as-of date: the one
given (``churnwatch score --table FILE --as-of DATE``, the day the export was taken), else for
a model with date columns the latest date not after today of the date columns that were past-looking
at training (the day its "days since" are counted to, ``training.table_dates``; none: ``--as-of`` is
needed), else today. The file's modification
time is not used: copying a file changes it. The scored feature values are kept in
``table_rows`` (account, as-of, the values as JSON) so the report can draw SHAP waterfalls of
those rows, as it does from ``snapshots``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core.engine import transaction
from core.progress import Reporter, StepCallback, track
from core.scores import read_history, replace_history, write_history
from core.settings import CONSUMER_MRR, Settings, default_playbooks
from core.store import HISTORY_COLUMNS, connect, read_snapshots, write_table_rows
from core.vocabulary import TIERS
from features.pipeline import build_snapshots
from serving.coverage import batch_warnings
from training.bundle import ModelBundle
from training.errors import ModelBundleError
from training.own_table import TableError, read_scoring_table

__all__ = ["build_scores", "read_history", "record_scores", "score_as_of", "score_dates", "score_rows",
           "score_table", "score_table_rows", "write_history"]

def score_rows(rows: pd.DataFrame, bundle: ModelBundle, settings: Settings, model_version: str) -> pd.DataFrame:
    """Score snapshot rows: one history row per account (pure; no I/O). No rows (no active
    account on that date) give an empty history with the same columns."""
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in HISTORY_COLUMNS})
    scored, explained = bundle.score_in(rows, ("en", "zh-CN"))
    en, zh = explained["en"], explained["zh-CN"]
    playbooks = settings.playbooks
    return pd.DataFrame({
        "account_id": rows["account_id"].to_numpy(),
        "as_of": pd.to_datetime(rows["as_of"]).dt.date.to_numpy(),
        "churn_probability": scored["churn_probability"].to_numpy(),
        "health_score": scored["health_score"].to_numpy().astype(int),
        "tier": scored["tier"].to_numpy(),
        "reasons_en": [json.dumps(e["reasons"], ensure_ascii=False, default=str) for e in en],
        "strengths_en": [json.dumps(e["strengths"], ensure_ascii=False, default=str) for e in en],
        "reasons_zh": [json.dumps(z["reasons"], ensure_ascii=False, default=str) for z in zh],
        "strengths_zh": [json.dumps(z["strengths"], ensure_ascii=False, default=str) for z in zh],
        "playbook_action": [playbooks[t].action_en for t in scored["tier"]],
        "playbook_owner": [playbooks[t].owner for t in scored["tier"]],
        "respond_within": [playbooks[t].respond_within for t in scored["tier"]],
        "model_version": str(model_version),
        "scored_at": dt.datetime.now().replace(microsecond=0),
    })


def score_as_of(source: str | Path, settings: Settings, store: Path, bundle: ModelBundle, as_of: dt.date,
                model_version: str) -> pd.DataFrame:
    """Features as of ``as_of`` from the raw data, scored, written to the score history."""
    return score_dates(source, settings, store, bundle, [as_of], model_version)[as_of]


def require_snapshot_model(bundle: ModelBundle) -> None:
    """A table model (``train --table``) cannot score features built from raw data.

    Raises:
        ModelBundleError: naming ``score --table`` and the model's training file.
    """
    if bundle.meta.get("kind") == "table":
        from training.errors import ModelBundleError

        raise ModelBundleError("this model was trained on a flat table (`train --table`): score customers with "
                               f"`churnwatch score --table FILE` (the columns of {bundle.meta.get('file')})")


def score_dates(source: str | Path, settings: Settings, store: Path, bundle: ModelBundle, dates: list[dt.date],
                model_version: str, progress: Reporter | StepCallback | None = None) -> dict[dt.date, pd.DataFrame]:
    """``score_as_of`` for several dates with one pass over the raw data (the features of all
    dates are built together); each date's history rows replace any earlier ones, all dates in
    one transaction. Raises no alerts (``build_scores`` + ``record_scores`` do)."""
    scored = build_scores(source, settings, store, bundle, dates, model_version, progress)
    record_scores(store, list(scored.values()))
    return scored


def build_scores(source: str | Path, settings: Settings, store: Path, bundle: ModelBundle, dates: list[dt.date],
                 model_version: str, progress: Reporter | StepCallback | None = None,
                 warn: Callable[[str], None] | None = None) -> dict[dt.date, pd.DataFrame]:
    """The snapshots of ``dates`` (empty: the source's data end) built into the store (one pass over the
    raw data) and scored: the history rows of each date, oldest date first, not yet written (``record_scores``).
    ``warn`` gets each date's ``batch_warnings`` lines."""
    require_snapshot_model(bundle)
    dates = build_snapshots(source, settings, store, as_of=sorted(set(dates)), progress=progress,
                            refuse_before_start=True).as_of
    out, said = {}, []
    for day in track(progress, dates, f"scoring {len(dates)} as-of date(s)"):
        out[day], lines = score_date(store, day, bundle, settings, model_version, warnings=warn is not None,
                                     newest=day == dates[-1])
        said += lines
    for line in said:  # after the progress bar
        warn(line)
    return out


def score_date(store: Path, day: dt.date, bundle: ModelBundle, settings: Settings, model_version: str,
               warnings: bool = True, newest: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """One as-of date of ``build_scores``: its snapshot rows read from the store and scored (memory
    holds one date's rows), and, with ``warnings``, what they do not give the model (``batch_warnings``) and,
    for the ``newest`` date, ``playbook_hint``."""
    rows = read_snapshots(store, as_of=[day])
    history = score_rows(rows, bundle, settings, model_version)
    if not warnings:
        return history, []
    hint = playbook_hint(settings, rows) if newest else None
    return history, batch_warnings(bundle, rows, day, "accounts") + ([hint] if hint else [])


def playbook_hint(settings: Settings, rows: pd.DataFrame) -> str | None:
    """A line for a book of consumer-sized accounts (median MRR of those with one under ``CONSUMER_MRR``) still on
    the B2B default playbooks, naming ``playbook_style: consumer``; None otherwise (a style set, also ``b2b``, in
    churnwatch.yaml or a saved settings version, which holds every key; a playbook changed; no MRR)."""
    if "playbook_style" in settings.model_fields_set or settings.playbooks != default_playbooks() or "mrr" not in rows:
        return None  # a style chosen (b2b too: a cheap B2B seat plan), or playbooks of its own
    mrr = pd.to_numeric(rows["mrr"], errors="coerce")
    mrr = mrr[mrr > 0]
    if mrr.empty or mrr.median() >= CONSUMER_MRR:
        return None
    return (f"the playbooks are the B2B defaults (a CSM, calls, an executive within 4 hours for high risk) and the "
            f"median MRR of the accounts scored is {mrr.median():,.2f}: for a consumer product set "
            "`playbook_style: consumer` in churnwatch.yaml or with `churnwatch settings set playbook_style=consumer` "
            "(lifecycle messages and offers; `b2b` keeps these and ends this note), or write your own under "
            "`playbooks:`")


def record_scores(store: Path, histories: list[pd.DataFrame], settings: Settings | None = None,
                  now: dt.datetime | None = None, engine=None) -> pd.DataFrame:
    """Write the history rows (each frame's dates replace their stored rows) in one transaction and,
    once committed, with ``settings``, raise the alerts the history causes (``workflow.alerts``; into
    ``engine``, default the operational store of the store's folder).

    Returns:
        The new alerts (none without ``settings``).
    """
    with connect(store) as con, transaction(con):
        for history in histories:
            replace_history(con, history)
    if settings is None:
        return pd.DataFrame()
    from workflow.alerts import raise_alerts

    return raise_alerts(store, settings, engine, now=now)


def churned_rows_warning(label: str, y: np.ndarray, tiers: np.ndarray) -> str:
    """What ``score --table`` says of a file that still has the training label, some rows marked churned:
    they are scored like the others (nothing is dropped), and they would fill the top of a call list
    (a probe's bank export: 1,096 of the 1,199 high-risk customers had left already)."""
    worst = TIERS[-1]
    top = tiers == worst.key
    gone = int(y.sum())
    return (f"the file has the training label column {label!r}: {gone:,} of {len(y):,} customers are marked as "
            f"churned already ({int(y[top].sum()):,} of the {int(top.sum()):,} {worst.en.lower()} ones); they are "
            "scored like the others: leave them out of a call list, or score a file of current customers only")


def score_table(path: Path, id_col: str | None, settings: Settings, store: Path, bundle: ModelBundle,
                model_version: str, as_of: dt.date | None = None) -> tuple[dt.date, pd.DataFrame]:
    """Score every customer of a flat table with a table model into the score history.

    Args:
        path: CSV or Parquet file with the id column and the model's feature columns (a
            label column, if present, is ignored).
        id_col: the id column (default: the one the model was trained with).
        as_of: the table's date (default: for a model with date columns the latest of its dates not
            after today, else today); that date's history rows are replaced.

    Returns:
        ``(as_of, history rows written)``.

    Raises:
        TableError: the file cannot be read or lacks a column the model needs (named), or, without
            ``as_of``, its latest past date is before the training table's as-of date.
        ModelBundleError: the bundle is not a table model.
    """
    day, history, _ = score_table_rows(path, id_col, settings, store, bundle, model_version, as_of)
    record_scores(store, [history])
    return day, history


def score_table_rows(path: Path, id_col: str | None, settings: Settings, store: Path, bundle: ModelBundle,
                     model_version: str, as_of: dt.date | None = None,
                     warn: Callable[[str], None] | None = None) -> tuple[dt.date, pd.DataFrame, str]:
    """``score_table`` without writing the history rows (``record_scores`` does); the table's
    feature values are stored (``table_rows``, that date's rows replaced). Also returns where the
    as-of date came from (``--as-of``, the column whose latest date it is, or today). ``warn``
    gets the ``batch_warnings`` lines of the table's rows."""
    if bundle.meta.get("kind") != "table":
        raise ModelBundleError("score --table needs a model trained with `churnwatch train --table`; this one was "
                               "trained on snapshots (score it with `churnwatch score --data ...`)")
    label = bundle.meta.get("label")
    read = read_scoring_table(path, id_col or bundle.meta.get("id", ""), bundle.catalogue, as_of=as_of,
                              label=label, label_if_readable=True, used=bundle.frame.names)
    # the table's own as-of: the one given, else (a model with date columns) the latest of its dates not
    # after today, the day its "days since" are counted to; else today
    # a category in another case than training saw it, as the value it saw: for the scores, the stored rows (the
    # waterfalls, `explain`) and the warnings alike (the review: the waterfalls of upper-cased rows differed)
    day, rows = read.as_of or dt.date.today(), bundle.frame.respelled(read.rows)
    source = read.as_of_source or ("today: the model has no date column" if not any(
        f.params.get("kind") == "date" for f in bundle.catalogue.features) else
        "today: the table has no date column the model's training read (give --as-of)")
    trained = bundle.meta.get("as_of")
    if as_of is None and read.as_of is not None and trained and read.as_of < dt.date.fromisoformat(trained):
        # a column of past dates (sign-ups) only says the table is from its latest one or later: a probe's file
        # of 500 new customers, exported on the 30th, read as of the 27th of the month before
        raise TableError(f"{path}: the table's as-of date would be {read.as_of} ({source}), before the training "
                         f"table's, {trained}: a column of past dates (sign-ups, first purchases) only says the table "
                         "is from that day or later, and every 'days since' would be counted short; give the day "
                         "this table was exported with --as-of YYYY-MM-DD")
    rows["as_of"] = pd.Timestamp(day)
    history = score_rows(rows, bundle, settings, model_version)
    for line in batch_warnings(bundle, rows, day, "customers") if warn else ():
        warn(line)
    if warn and read.y is not None and read.y.sum():
        warn(churned_rows_warning(label, read.y, history["tier"].to_numpy()))
    write_table_rows(store, rows, bundle.frame.names)
    return day, history, source
