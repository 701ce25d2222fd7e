"""Request validation against the feature spec and result assembly (no HTTP here).

The service (``serving/service.py``) and any in-process caller use the same functions, so
HTTP and in-process scoring give identical results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import Settings
from features.errors import ChurnwatchError
from features.spec import Catalogue
from training.bundle import ModelBundle
from training.model import FeatureRows

MAX_BATCH = 1000


class RequestError(ChurnwatchError):
    """A request that breaks the feature spec; ``problems`` lists ``(field, reason)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"{f}: {r}" for f, r in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"invalid request: {shown}{more}")


def validate_features(items: list[dict], catalogue: Catalogue, where: str = "accounts") -> FeatureRows:
    """One row per account; unknown names, wrong types, non-finite values and values outside
    the spec's range are errors naming the field. Missing optional features are allowed and
    treated as missing.

    Numeric features are written straight into one float matrix, returned as ``FeatureRows``
    (no pandas frame: building one costs more than scoring one row).
    """
    specs = {f.name: f for f in catalogue.features}
    numeric = [f.name for f in catalogue.features if f.type != "category"]
    column = {name: j for j, name in enumerate(numeric)}
    categorical = [f.name for f in catalogue.features if f.type == "category"]
    required = [f.name for f in catalogue.features if not f.optional]
    n = len(items)
    values = np.full((n, len(numeric)), np.nan)
    labels: dict[str, list[object]] = {c: [None] * n for c in categorical}
    problems: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        feats = item.get("features") or {}
        for name, value in feats.items():
            spec = specs.get(name)
            if spec is None:
                problems.append((f"{where}[{i}].features.{name}", "unknown feature"))
            elif value is None:
                continue
            elif spec.type == "category":
                if isinstance(value, str):
                    labels[name][i] = value
                else:
                    problems.append((f"{where}[{i}].features.{name}", "expected a string"))
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems.append((f"{where}[{i}].features.{name}", "expected a number"))
            else:
                reason = _check_number(spec, float(value))
                if reason:
                    problems.append((f"{where}[{i}].features.{name}", reason))
                else:
                    values[i, column[name]] = value
        if len(feats) < len(specs) or required:
            problems += [(f"{where}[{i}].features.{r}", "required") for r in required if r not in feats]
    if problems:
        raise RequestError(problems)
    return FeatureRows([item["account_id"] for item in items], numeric, values, labels)


def _check_number(spec, v: float) -> str | None:
    """Why ``v`` breaks the spec of a numeric feature, or None."""
    if not math.isfinite(v):
        return "must be finite"
    lo, hi = spec.valid_range
    if lo is not None and v < lo:
        return f"below the minimum {lo:g}"
    if hi is not None and v > hi:
        return f"above the maximum {hi:g}"
    if spec.type == "int" and not v.is_integer():
        return "expected a whole number"
    return None


@dataclass
class Scorer:
    """A loaded bundle plus the playbooks: scores rows into API results."""

    bundle: ModelBundle
    settings: Settings
    model_version: str
    store: Path | None = None
    extra: dict = field(default_factory=dict)

    def results(self, rows: pd.DataFrame | FeatureRows, lang: str = "en") -> list[dict]:
        if rows.empty:
            return []
        scored, explained = self.bundle.score(rows, "zh-CN" if lang == "zh-CN" else "en")
        unseen = self.bundle.frame.unseen_categories(rows)
        unseen_rows = {c: np.asarray(rows[c]) for c in unseen}
        out = []
        for i, (acc, p, h, tier) in enumerate(zip(rows["account_id"], scored["churn_probability"],
                                                  scored["health_score"], scored["tier"])):
            book = self.settings.playbooks[tier]
            warnings = [f"{c}: '{unseen_rows[c][i]}' was not seen in training; scored as missing"
                        for c, values in unseen.items() if unseen_rows[c][i] in values]
            out.append({
                "account_id": str(acc),
                "churn_probability": float(p),
                "health_score": int(h),
                "tier": str(tier),
                "reasons": [_public(r) for r in explained[i]["reasons"]],
                "strengths": [_public(r) for r in explained[i]["strengths"]],
                "playbook": {"action": book.action_zh if lang == "zh-CN" else book.action_en,
                             "owner": book.owner, "respond_within": book.respond_within},
                "model_version": self.model_version,
                **({"warnings": warnings} if warnings else {}),
            })
        return out


def _public(item: dict) -> dict:
    """The API's reason fields (values are already plain Python in ``ReasonBuilder``)."""
    return {"signal": item["signal"], "text": item["text"], "contribution": round(item["contribution"], 6),
            "feature": item["feature"], "value": item["value"]}
