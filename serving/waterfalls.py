"""The SHAP waterfall of each scored account, made when ``churnwatch score`` runs (issue 16 item 4,
issue 12 item 8), so no page computes TreeSHAP on a request.

One waterfall is the data of the report's ``shap.plots.waterfall`` (``insights.report``): the
model's exact per-feature contributions (``training.reasons.contributions``, raw log-odds, bias
last) of one scored row, as JSON:

* ``base``: the bias (the model's average raw score, log-odds);
* ``bars``: the ``MAX_BARS`` features with the largest |contribution|, largest first, plus every
  feature a reason or strength of that score names (so each worded reason has its bar, and the
  bar IS that reason's ``contribution``), each ``{"feature", "signal" (its group), "contribution",
  "value" (plain, None when missing), "shown_en", "shown_zh" (the value as the reasons word it)}``;
* ``other``: ``{"count", "contribution"}``, the remaining features summed into one bar;
* ``final``: the raw score (log-odds) = ``base`` + the bars + ``other``;
* ``model_probability``: ``expit(final)``, the model's own probability **before calibration**;
* ``probability``: the calibrated probability the score publishes (``churn_probability``: the
  bundle's calibrator applied to ``final``), so the page can say both honestly.

The waterfalls of a run are kept in the store's ``score_waterfalls`` table (account, as-of, model
version, JSON), written before the run's score history commits; ``serving.published`` joins the
latest score's waterfall onto the published row (column ``waterfall``; NULL for a score made
without one, e.g. by an older run); the account page draws it only when its ``probability`` is
the published score's. The contributions are computed again from the stored feature rows, the
same matrix and function as the reasons' (so the bars equal the reasons' contributions): one
TreeSHAP pass over the run's rows, about 0.5 ms a score with the JSON (the README's workspace
section has the cost on the demo).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from core.store import WATERFALLS, feature_rows, has_table, write_waterfalls
from features.spec import FeatureSpec
from training.bundle import ModelBundle
from training.reasons import contributions, render_value

#: features drawn as their own bar (besides the worded reasons'); the rest is one "other" bar
MAX_BARS = 10


def named_features(reasons_json: str | None, strengths_json: str | None) -> set[str]:
    """The features the reasons and strengths of one score name (their bars are always drawn)."""
    out = set()
    for text in (reasons_json, strengths_json):
        for item in json.loads(text) if text else []:
            if item.get("feature"):
                out.add(str(item["feature"]))
    return out


def waterfall_of(contrib: np.ndarray, specs: list[FeatureSpec], values: list[object], keep: set[str],
                 probability: float, max_bars: int = MAX_BARS) -> dict:
    """One row's waterfall (module docstring) from its contributions (``n_features + 1``, bias last),
    the features' ``specs`` and raw ``values`` (in the contributions' order), the features that
    must have a bar (``keep``) and the calibrated ``probability`` the score published."""
    names = [s.name for s in specs]
    per_feature = np.asarray(contrib[:-1], dtype=float)
    order = np.argsort(-np.abs(per_feature), kind="stable")
    chosen = list(order[:max_bars])
    chosen += [j for j in order[max_bars:] if names[j] in keep]
    chosen.sort(key=lambda j: (-abs(per_feature[j]), j))
    rest = np.ones(len(names), dtype=bool)
    rest[chosen] = False
    final = float(np.sum(contrib))
    return {
        "base": float(contrib[-1]),
        "bars": [{"feature": names[j], "signal": specs[j].group, "contribution": float(per_feature[j]),
                  "value": _plain(values[j]), "shown_en": render_value(specs[j], _plain(values[j]), "en")["value"],
                  "shown_zh": render_value(specs[j], _plain(values[j]), "zh-CN")["value"]}
                 for j in chosen],
        "other": {"count": int(rest.sum()), "contribution": float(per_feature[rest].sum())},
        "final": final,
        "model_probability": float(expit(final)),
        "probability": float(probability),
    }


def waterfalls_for(rows: pd.DataFrame, history: pd.DataFrame, bundle: ModelBundle,
                   max_bars: int = MAX_BARS) -> pd.DataFrame:
    """``account_id, as_of, model_version, waterfall`` (JSON text) for the scored ``history`` rows
    of one date, from their feature ``rows`` (the snapshots or table rows the run scored)."""
    rows = rows.set_index("account_id", drop=False).loc[history["account_id"]].reset_index(drop=True)
    names = list(bundle.frame.names)
    specs = {f.name: f for f in bundle.catalogue.features}
    X = bundle.frame.matrix(rows)
    contrib = contributions(bundle.booster, X)
    raw = contrib.sum(axis=1)
    calibrated = bundle.calibrator.predict(raw if bundle.calibrator.input_scale == "log_odds" else expit(raw))
    values = rows[names].to_numpy(dtype=object)
    ordered = [specs[n] for n in names]
    out = []
    for i, rec in enumerate(history[["reasons_en", "strengths_en"]].itertuples(index=False)):
        keep = named_features(rec.reasons_en, rec.strengths_en)
        out.append(json.dumps(waterfall_of(contrib[i], ordered, list(values[i]), keep, float(calibrated[i]),
                                           max_bars), ensure_ascii=False, default=str))
    return pd.DataFrame({"account_id": history["account_id"].to_numpy(),
                         "as_of": pd.to_datetime(history["as_of"]).dt.date.to_numpy(),
                         "model_version": history["model_version"].astype(str).to_numpy(), "waterfall": out})


def build_waterfalls(store: Path, bundle: ModelBundle, histories: list[pd.DataFrame]) -> pd.DataFrame:
    """The waterfalls of a run's history rows (every date), their feature rows read from the store
    (``core.store.feature_rows``: snapshots, or ``table_rows`` for a table model). A date whose
    rows the store does not hold (e.g. snapshots kept as Parquet by Spark) gets none."""
    table_model = bundle.meta.get("kind") == "table"
    frames = []
    for history in histories:
        if history.empty:
            continue
        for day, part in history.groupby(pd.to_datetime(history["as_of"]).dt.date, sort=True):
            rows = feature_rows(store, table_model, day, list(part["account_id"]))
            if rows.empty or set(part["account_id"]) - set(rows["account_id"]):
                continue
            frames.append(waterfalls_for(rows.drop_duplicates("account_id"), part.reset_index(drop=True), bundle))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["account_id", "as_of", "model_version", "waterfall"])


def record_waterfalls(store: Path, frame: pd.DataFrame, dates: list[dt.date]) -> int:
    """Replace the waterfalls of ``dates`` in the store by ``frame``'s (``core.store.write_waterfalls``,
    one transaction); returns the rows written."""
    return write_waterfalls(store, frame, dates)


def waterfall_join(con) -> tuple[str, str]:
    """``(select expression, join clause)`` adding the ``waterfall`` of a history row ``h`` (NULL
    when the store has none: a store scored before waterfalls, or a score made without one)."""
    if not has_table(con, WATERFALLS):
        return "CAST(NULL AS VARCHAR) AS waterfall", ""
    return ("CAST(w.waterfall AS VARCHAR) AS waterfall",
            f"LEFT JOIN {WATERFALLS} w ON w.account_id = h.account_id AND w.as_of = h.as_of "
            "AND w.model_version = h.model_version")


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT:
        return None
    return value
