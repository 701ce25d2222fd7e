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

MAX_BATCH = 1000


class RequestError(ChurnwatchError):
    """A request that breaks the feature spec; ``problems`` lists ``(field, reason)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"{f}: {r}" for f, r in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"invalid request: {shown}{more}")


def validate_features(items: list[dict], catalogue: Catalogue, where: str = "accounts") -> pd.DataFrame:
    """One row per account in catalogue order; unknown names, wrong types, non-finite values
    and values outside the spec's range are errors naming the field. Missing optional
    features are allowed and treated as missing."""
    specs = {f.name: f for f in catalogue.features}
    problems: list[tuple[str, str]] = []
    rows = []
    for i, item in enumerate(items):
        feats = item.get("features") or {}
        row: dict[str, object] = {"account_id": item["account_id"]}
        for name, value in feats.items():
            path = f"{where}[{i}].features.{name}"
            spec = specs.get(name)
            if spec is None:
                problems.append((path, "unknown feature"))
                continue
            if value is None:
                row[name] = None
                continue
            if spec.type == "category":
                if not isinstance(value, str):
                    problems.append((path, "expected a string"))
                    continue
                row[name] = value
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append((path, "expected a number"))
                continue
            v = float(value)
            if not math.isfinite(v):
                problems.append((path, "must be finite"))
                continue
            lo, hi = spec.valid_range
            if lo is not None and v < lo:
                problems.append((path, f"below the minimum {lo:g}"))
            elif hi is not None and v > hi:
                problems.append((path, f"above the maximum {hi:g}"))
            elif spec.type == "int" and not v.is_integer():
                problems.append((path, "expected a whole number"))
            else:
                row[name] = v
        for f in catalogue.features:
            if not f.optional and f.name not in feats:
                problems.append((f"{where}[{i}].features.{f.name}", "required"))
        rows.append(row)
    if problems:
        raise RequestError(problems)
    data: dict[str, object] = {"account_id": [r["account_id"] for r in rows]}
    for f in catalogue.features:
        values = [r.get(f.name) for r in rows]
        data[f.name] = values if f.type == "category" else np.array(
            [np.nan if v is None else v for v in values], dtype=np.float64)
    return pd.DataFrame(data)


@dataclass
class Scorer:
    """A loaded bundle plus the playbooks: scores rows into API results."""

    bundle: ModelBundle
    settings: Settings
    model_version: str
    store: Path | None = None
    extra: dict = field(default_factory=dict)

    def results(self, rows: pd.DataFrame, lang: str = "en") -> list[dict]:
        if rows.empty:
            return []
        scored, explained = self.bundle.score(rows, "zh-CN" if lang == "zh-CN" else "en")
        unseen = self.bundle.frame.unseen_categories(rows)
        out = []
        for i, (acc, p, h, tier) in enumerate(zip(rows["account_id"], scored["churn_probability"],
                                                  scored["health_score"], scored["tier"])):
            book = self.settings.playbooks[tier]
            warnings = [f"{c}: '{rows.iloc[i][c]}' was not seen in training; scored as missing"
                        for c, values in unseen.items() if rows.iloc[i][c] in values]
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
            "value": item["value"]}
