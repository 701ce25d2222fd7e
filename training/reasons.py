"""Reason codes from exact per-feature contributions (LightGBM's TreeSHAP), DESIGN §4, issue 12.

Contributions are in raw log-odds units, shape ``(n_rows, n_features + 1)`` with the bias last,
and sum to the raw score. A reason names one feature and reports that feature's own numbers:

* each signal group's direction is the sign of its summed contribution: a group that raises
  the risk can give a reason, one that lowers it a strength, never both;
* the group's text comes from its member with the largest contribution in the group's
  direction that can be worded honestly (``training.reason_text.word``; a missing value is
  worded as missing), filled with that member's own value;
* the item reports that member as ``feature``, its value as ``value`` and its own contribution
  as ``contribution`` (exactly the bar the SHAP waterfall shows for it); the group's sum is
  ``group_contribution``;
* a contribution below ``min_contribution`` (default 0.05 log-odds) is no reason or strength;
* up to three reasons and two strengths, one per group, largest contribution first.

``fit_references`` learns, on the training rows, what a value is worded against (typical
counts of accounts that stayed, churn per category); the bundle keeps it as plain JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.spec import GROUP_LABELS, Catalogue
from training.blend import as_matrix
from training.model import FeatureRows
from training.reason_text import NO_REFERENCES, References, Row, WordCache, missing, render, render_value
from training.treeshap import tree_contributions

__all__ = ["ReasonBuilder", "contributions", "fit_references", "reason_builder", "render", "render_value",
           "threads_for"]

#: Smallest |contribution| (log-odds) a reason or strength may have: below it, filler.
MIN_CONTRIBUTION = 0.05


# Below this many rows LightGBM predicts on one thread: OpenMP's thread team costs more than
# it saves on a few rows, and under concurrent requests the teams of several threads fight
# over the same cores (the service got slower, not faster, with more clients).
PARALLEL_MIN_ROWS = 256


def threads_for(n_rows: int) -> int:
    """LightGBM ``num_threads`` for a prediction over ``n_rows`` (0 = OpenMP's default)."""
    return 1 if n_rows < PARALLEL_MIN_ROWS else 0


def contributions(booster: lgb.Booster, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """(n_rows, n_features + 1): per-feature SHAP values, bias last (raw log-odds).

    A LightGBM model's are exact TreeSHAP from per-leaf tables (``training.treeshap``: the
    values of ``pred_contrib``, about ten times faster); a blend adds its linear part's.
    """
    if isinstance(booster, lgb.Booster):
        return tree_contributions(booster, as_matrix(X), num_threads=threads_for(len(X)))
    return np.asarray(booster.predict(X, pred_contrib=True, num_threads=threads_for(len(X))))


def fit_references(rows: pd.DataFrame, catalogue: Catalogue, label: str = "churn_label",
                   min_contribution: float = MIN_CONTRIBUTION) -> dict:
    """What reasons are worded against, from labelled training rows, as plain JSON.

    Returns:
        ``{"min_contribution": ..., "overall_churn": rate of all rows, "typical": {feature:
        median among rows that did not churn} for numeric features, "category_churn":
        {feature: {category: [churn rate, rows]}}}``.
    """
    y = pd.to_numeric(rows[label], errors="raise").astype(float)
    stayed = rows[y == 0]
    typical, by_category = {}, {}
    for f in catalogue.features:
        if f.name not in rows.columns:
            continue
        if f.type == "category":
            keys = rows[f.name].astype("string")
            grouped = y.groupby(keys, dropna=True).agg(["mean", "size"])
            by_category[f.name] = {str(k): [float(r["mean"]), int(r["size"])] for k, r in grouped.iterrows()}
        else:
            median = pd.to_numeric(stayed[f.name], errors="coerce").median()
            if not missing(median):
                typical[f.name] = float(median)
    return {"min_contribution": float(min_contribution), "overall_churn": float(y.mean()) if len(y) else None,
            "typical": typical, "category_churn": by_category}


def reason_builder(catalogue: Catalogue, references: dict | None = None) -> ReasonBuilder:
    """A fitted ``ReasonBuilder`` from a bundle's references JSON (None: an older bundle)."""
    refs = references or {}
    return ReasonBuilder(min_contribution=float(refs.get("min_contribution", MIN_CONTRIBUTION))).fit(
        catalogue, references)


class ReasonBuilder:
    """Turns contribution rows into reasons and strengths (sklearn-like: fit learns groups)."""

    def __init__(self, max_reasons: int = 3, max_strengths: int = 2,
                 min_contribution: float = MIN_CONTRIBUTION) -> None:
        self.max_reasons = max_reasons
        self.max_strengths = max_strengths
        self.min_contribution = min_contribution

    def fit(self, catalogue: Catalogue, references: dict | None = None) -> ReasonBuilder:
        """Learn the groups of ``catalogue``; ``references`` from ``fit_references`` (optional)."""
        self.catalogue_ = catalogue
        self.references_ = References.from_dict(references) if references else NO_REFERENCES
        self.groups_ = sorted({f.group for f in catalogue.features})
        index = {g: i for i, g in enumerate(self.groups_)}
        self.group_of_ = np.array([index[f.group] for f in catalogue.features], dtype=int)
        self.member_ = np.zeros((len(catalogue.features), len(self.groups_)))
        self.member_[np.arange(len(catalogue.features)), self.group_of_] = 1.0
        self.group_list_ = self.group_of_.tolist()
        self.words_: dict[str, WordCache] = {}
        return self

    def _words(self, lang: str) -> WordCache:
        """The remembered wording of this catalogue in ``lang`` (``training.reason_text.WordCache``)."""
        cache = self.words_.get(lang)
        if cache is None:
            cache = self.words_[lang] = WordCache(self.catalogue_.features, self.references_, lang)
        return cache

    def explain(self, contribs: np.ndarray, raw: pd.DataFrame | FeatureRows, lang: str = "en") -> list[dict]:
        """One ``{"reasons": [...], "strengths": [...]}`` per row.

        ``raw`` holds the rows' actual feature values (before encoding), in catalogue order.
        Each item: ``signal`` (group), ``label``, ``text``, ``contribution`` (the feature's own,
        log-odds), ``group_contribution``, ``feature`` and ``value``.

        Only the language asked for is worded, each distinct case once (``WordCache``); the
        candidates of every row are ranked with arrays, so the rows' loop visits few features.
        """
        names = [f.name for f in self.catalogue_.features]
        per_feature = np.ascontiguousarray(np.asarray(contribs)[:, :-1])
        per_group = per_feature @ self.member_
        risks, safe = self._candidates(per_feature, per_group)
        if not any(risks) and not any(safe):
            return [{"reasons": [], "strengths": []} for _ in range(len(per_feature))]
        values = _value_rows(raw, names)
        labels = [GROUP_LABELS.get(g, (g, g))[0 if lang == "en" else 1] for g in self.groups_]
        position = {name: j for j, name in enumerate(names)}
        words = self._words(lang)
        out = []
        for i in range(len(per_feature)):
            if not risks[i] and not safe[i]:
                out.append({"reasons": [], "strengths": []})
                continue
            row = Row(values[i], position)
            pick = (per_feature[i], per_group[i], values[i], row, row.tenure_days(), labels, words)
            out.append({"reasons": self._side(risks[i], +1, self.max_reasons, *pick),
                        "strengths": self._side(safe[i], -1, self.max_strengths, *pick)})
        return out

    def _candidates(self, per_feature: np.ndarray, per_group: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
        """Per row, the features that may give a reason (contribution >= the minimum, their group's
        sum positive; largest first, ties by position) and a strength (the mirror image; ties by
        position from the end), as plain lists: the rows' loops then only visit these."""
        n, width = per_feature.shape
        group_sum = per_group[:, self.group_of_]
        up = (per_feature >= self.min_contribution) & (group_sum > 0)
        down = (-per_feature >= self.min_contribution) & (group_sum < 0)
        risk_order = np.argsort(np.where(up, -per_feature, np.inf), axis=1, kind="stable")
        flipped = np.where(down, per_feature, np.inf)[:, ::-1]
        safe_order = width - 1 - np.argsort(flipped, axis=1, kind="stable")
        n_up, n_down = up.sum(axis=1).tolist(), down.sum(axis=1).tolist()
        risk_rows = risk_order[:, :max(n_up, default=0)].tolist()  # one conversion, then list slices
        safe_rows = safe_order[:, :max(n_down, default=0)].tolist()
        return ([row[:k] for row, k in zip(risk_rows, n_up)], [row[:k] for row, k in zip(safe_rows, n_down)])

    def _side(self, candidates: list[int], side: int, limit: int, contrib: np.ndarray, group_sum: np.ndarray,
              values: Sequence, row: Row, tenure: float | None, labels: list[str],
              words: WordCache) -> list[dict]:
        """The reasons (side +1) or strengths (-1) of one row from its ``candidates`` (largest
        ``side * contribution`` first): one per group, the first whose value can be worded."""
        items: list[dict] = []
        used: set[int] = set()
        group_of = self.group_list_
        for j in candidates:
            if len(items) == limit:
                break
            g = group_of[j]
            if g in used:
                continue
            value = _plain(values[j])
            text = words.word(j, value, side, row, tenure)
            if text is None:
                continue
            used.add(g)
            items.append({"signal": self.groups_[g], "label": labels[g], "text": text,
                          "contribution": float(contrib[j]), "group_contribution": float(group_sum[g]),
                          "feature": words.features[j].name, "value": value})
        return items


def _value_rows(raw: pd.DataFrame | FeatureRows, names: list[str]) -> Sequence[Sequence]:
    """Each row's actual values of ``names``, indexable by row then position: an object array
    for a frame, lists of plain floats (and the labels) for request rows (no object matrix of
    every value: one float block to lists, then the few categorical columns)."""
    if isinstance(raw, pd.DataFrame):
        return raw[names].to_numpy(dtype=object)
    where = {n: k for k, n in enumerate(raw.numeric_names)}
    if not where:
        return raw.object_values(names)
    cats = [(j, raw[n]) for j, n in enumerate(names) if n in raw.labels]
    rows = raw.numeric[:, [0 if n in raw.labels else where[n] for n in names]].tolist()
    for j, column in cats:
        for row, v in zip(rows, column.tolist()):
            row[j] = v
    return rows


def _plain(value: object) -> object:
    """A plain Python value (None when missing) for JSON and the API."""
    if type(value) is float:
        return None if value != value else value
    if isinstance(value, np.generic):
        value = value.item()
    return None if missing(value) else value
