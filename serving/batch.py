"""Batch scoring and the score history (DESIGN §5).

``score_as_of`` builds features for one as-of date from the raw data (the same pipeline
as ``churnwatch features``), scores every active account with a model bundle and writes
the rows to ``score_history`` in the store: account, as-of, probability, health, tier,
reasons and strengths (JSON, English and Chinese), the playbook, the model version.
Re-running a date replaces that date's rows.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from core.scores import read_history, write_history
from core.settings import Settings
from core.store import HISTORY_COLUMNS, read_snapshots
from features.pipeline import build_snapshots
from training.bundle import ModelBundle

__all__ = ["read_history", "score_as_of", "score_dates", "score_rows", "write_history"]

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


def score_dates(source: str | Path, settings: Settings, store: Path, bundle: ModelBundle, dates: list[dt.date],
                model_version: str) -> dict[dt.date, pd.DataFrame]:
    """``score_as_of`` for several dates with one pass over the raw data (the features of all
    dates are built together); each date's history rows replace any earlier ones."""
    dates = sorted(set(dates))
    build_snapshots(source, settings, store, as_of=dates)
    out = {}
    for day in dates:
        rows = read_snapshots(store, as_of=[day])
        history = score_rows(rows, bundle, settings, model_version)
        write_history(store, history)
        out[day] = history
    return out
