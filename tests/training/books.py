"""Training on a hand-made book of terms with two features (``days_to_term_end``, ``logins_30d``):
the renewal calendar's and the unseen renewals' tests share it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def train_two_feature_book(rows: pd.DataFrame, data_start: str, data_end: str, tmp: Path) -> tuple:
    """``(TrainResult, the progress lines)`` of ``train_on_labelled`` on ``rows`` (account_id, as_of,
    days_to_term_end, logins_30d, churn_label, labelled), 2 folds, the rule score's other indicators
    absent (left out as constant)."""
    from core.settings import TrainingSettings
    from features.spec import build_catalogue
    from training.baselines import RULE_DIMENSIONS
    from training.train import train_on_labelled

    rows = rows.copy()
    for column in {c for cs in RULE_DIMENSIONS.values() for c in cs} - set(rows.columns):
        rows[column] = float("nan")  # the rule score's indicators: none in this export (left out, constant)
    catalogue = build_catalogue([])
    catalogue = type(catalogue)(features=tuple(f for f in catalogue.features
                                               if f.name in ("days_to_term_end", "logins_30d")), event_types=())
    info = {"data_start": data_start, "data_end": data_end, "horizon_days": 60, "grace_days": 30,
            "input_hash": "x", "source": "test"}
    said: list[str] = []
    result = train_on_labelled(rows, catalogue, info, tmp / "s.duckdb", tmp / "out", options=TrainingSettings(folds=2),
                               progress=said.append)
    return result, said
