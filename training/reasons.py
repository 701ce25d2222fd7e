"""Reason codes from LightGBM's exact TreeSHAP (``pred_contrib``), DESIGN §4.

Contributions are in raw log-odds units and sum, with the bias term, to the raw score.
They are summed per signal group; up to three groups with a positive sum become
``reasons`` (largest first; possibly none), up to two with the most negative sum become
``strengths``. A group's text comes from the template of its largest-contributing
feature with a known value (for a strength: its most negative one), filled with that value.
"""

from __future__ import annotations

import math
import re

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.spec import GROUP_LABELS, Catalogue, FeatureSpec

LANGS = ("en", "zh-CN")


# Below this many rows LightGBM predicts on one thread: OpenMP's thread team costs more than
# it saves on a few rows, and under concurrent requests the teams of several threads fight
# over the same cores (the service got slower, not faster, with more clients).
PARALLEL_MIN_ROWS = 256


def threads_for(n_rows: int) -> int:
    """LightGBM ``num_threads`` for a prediction over ``n_rows`` (0 = OpenMP's default)."""
    return 1 if n_rows < PARALLEL_MIN_ROWS else 0


def contributions(booster: lgb.Booster, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """(n_rows, n_features + 1): per-feature SHAP values, bias last (raw log-odds)."""
    return np.asarray(booster.predict(X, pred_contrib=True, num_threads=threads_for(len(X))))


def _number(v: float, decimals: int = 0) -> str:
    return f"{v:,.{decimals}f}"


def render_value(spec: FeatureSpec, value: object, lang: str) -> dict[str, str]:
    """The template fields for one value: ``value`` and, for relative changes, ``change``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {"value": "n/a" if lang == "en" else "无数据", "change": "n/a" if lang == "en" else "无数据"}
    if spec.type == "category":
        return {"value": str(value), "change": str(value)}
    v = float(value)
    if spec.unit == "ratio" and "{change}" in (spec.reason_en + spec.reason_zh):
        pct = abs(v) * 100
        if spec.name.endswith("open_rate_change"):  # a difference of rates: percentage points
            word = ("up" if v >= 0 else "down") if lang == "en" else ("上升" if v >= 0 else "下降")
            text = f"{word} {pct:.0f} pts" if lang == "en" else f"{word}{pct:.0f}个百分点"
        else:
            word = ("up" if v >= 0 else "down") if lang == "en" else ("上升" if v >= 0 else "下降")
            text = f"{word} {pct:.0f}%" if lang == "en" else f"{word}{pct:.0f}%"
        return {"value": text, "change": text}
    if spec.unit == "ratio" and "{value}x" in spec.reason_en:  # a multiple: "at 1.4x the usual rate"
        text = f"{v:.1f}"
    elif spec.unit == "ratio":
        text = f"{v:.0%}" if v <= 1.5 else f"{v:.1f}"
    elif spec.unit in ("hours", "score"):
        text = _number(v, 1)
    elif spec.unit == "currency":
        text = _number(v, 0)
    else:
        text = _number(v, 0) if float(v).is_integer() else _number(v, 1)
    return {"value": text, "change": text}


# English nouns that directly follow the value (after at most one qualifier) in the reason
# templates: "Term ends in 1 days" -> "1 day", "1 'key_contact_left' events" -> "1 ... event".
_AFTER_VALUE = re.compile(r"^((?: '.*?'(?= )| core-feature| core| high-priority| new-feature| late| active)?) "
                          r"(days|logins|tickets|events|users|uses|seats|payments|features|trainings or webinars)\b")


def _singular(template: str) -> str:
    head, sep, tail = template.partition("{value}")
    match = _AFTER_VALUE.match(tail) if sep else None
    if not match:
        return template
    noun = match.group(2).replace("trainings or webinars", "training or webinar").removesuffix("s")
    return head + sep + match.group(1) + " " + noun + tail[match.end():]


def _neutral(template: str) -> str:
    """A reason template worded for a strength: "Only 87% of seats in use" reads as a
    complaint, so the "only" goes ("87% of seats in use", "席位使用率87%")."""
    return template.removeprefix("Only ").replace("仅", "")


def render(spec: FeatureSpec, value: object, lang: str, strength: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"No data for {spec.name}" if lang == "en" else f"{spec.name}：无数据"
    template = spec.reason_en if lang == "en" else spec.reason_zh
    if strength:
        template = _neutral(template)
    fields = render_value(spec, value, lang)
    if lang == "en" and fields["value"] == "1":
        template = _singular(template)
    return template.format(**fields)


def _pick(member: np.ndarray, known: np.ndarray, contrib: np.ndarray, sign: int) -> np.ndarray:
    """Per row, the group member with the largest ``sign * contribution``, preferring members
    whose value is known (a missing value cannot be worded)."""
    score = np.where(member, sign * contrib, -np.inf)
    best_known = np.where(known, score, -np.inf)
    has_known = np.isfinite(best_known.max(axis=1))
    return np.where(has_known, best_known.argmax(axis=1), score.argmax(axis=1))


class ReasonBuilder:
    """Turns contribution rows into reasons and strengths (sklearn-like: fit learns groups)."""

    def __init__(self, max_reasons: int = 3, max_strengths: int = 2) -> None:
        self.max_reasons = max_reasons
        self.max_strengths = max_strengths

    def fit(self, catalogue: Catalogue) -> ReasonBuilder:
        self.catalogue_ = catalogue
        self.groups_ = sorted({f.group for f in catalogue.features})
        index = {g: i for i, g in enumerate(self.groups_)}
        self.member_ = np.zeros((len(catalogue.features), len(self.groups_)))
        for j, f in enumerate(catalogue.features):
            self.member_[j, index[f.group]] = 1.0
        return self

    def explain(self, contribs: np.ndarray, raw: pd.DataFrame, lang: str = "en") -> list[dict]:
        """One ``{"reasons": [...], "strengths": [...]}`` per row.

        ``raw`` holds the rows' actual feature values (before encoding), in catalogue order.
        Each item: ``signal`` (group), ``label``, ``text``, ``contribution`` (log-odds),
        ``feature`` and ``value``. Group sums, ranking and each group's strongest feature are
        computed for all rows at once; only the wording is per item.
        """
        feats = self.catalogue_.features
        per_feature = contribs[:, :-1]
        per_group = per_feature @ self.member_
        n, k = per_group.shape
        members = self.member_.T.astype(bool)  # (groups, features)
        names = [f.name for f in feats]
        if isinstance(raw, pd.DataFrame):
            values = raw[names].to_numpy(dtype=object)
        else:  # training.model.FeatureRows
            values = raw.object_values(names)
        known = ~pd.isna(values)  # word a reason from a feature with a value when there is one
        up = np.stack([_pick(members[g], known, per_feature, +1) for g in range(k)], axis=1)
        down = np.stack([_pick(members[g], known, per_feature, -1) for g in range(k)], axis=1)
        order = np.argsort(-per_group, axis=1, kind="stable")
        labels = [GROUP_LABELS.get(g, (g, g))[0 if lang == "en" else 1] for g in self.groups_]
        out = []
        for i in range(n):
            reasons, strengths = [], []
            for g in order[i, : self.max_reasons]:
                if per_group[i, g] > 0:
                    reasons.append(self._item(g, up[i, g], per_group[i, g], values[i], labels, lang, False))
            for g in order[i, ::-1][: self.max_strengths]:
                if per_group[i, g] < 0:
                    strengths.append(self._item(g, down[i, g], per_group[i, g], values[i], labels, lang, True))
            out.append({"reasons": reasons, "strengths": strengths})
        return out

    def _item(self, g: int, j: int, contribution: float, values: np.ndarray, labels: list[str], lang: str,
              strength: bool) -> dict:
        spec = self.catalogue_.features[j]
        value = values[j]
        if isinstance(value, np.generic):
            value = value.item()
        if value is pd.NA or (isinstance(value, float) and math.isnan(value)):  # pd.NA: a nullable int
            value = None
        return {"signal": self.groups_[g], "label": labels[g], "text": render(spec, value, lang, strength),
                "contribution": float(contribution), "feature": spec.name, "value": value}
