"""The baselines every training run must beat, on the same test block (DESIGN §4).

- ``fit_logistic_baseline``: a plain logistic regression over the same features
  (median-imputed, scaled numerics with missing indicators; one-hot categoricals).
- ``renewal_calendar``: accounts ranked by how soon their term ends (snapshot models);
- ``rule_health_score``: the article's hand-weighted 0-100 health score (ARTICLE §1):
  each indicator turned into 0-100 by its percentile rank among the accounts of the
  same as-of date, oriented so more risk is lower; a dimension is the mean of its
  indicators; the score is the weighted mean of the dimensions.

Both are computed in-run for comparison only and are never saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from core.errors import ChurnwatchError
from features.spec import CORE_FEATURES, Catalogue
from training.blend import BLAS_THREADS

#: The value a missing category takes before one-hot encoding.
MISSING_CATEGORY = "(missing)"
#: The 0-100 value of a missing indicator: the median rank.
MISSING_RANK = 50.0
#: Counts the hand-weighted score reads as none where unknown: an account before its first product event has
#: them null (``features.snapshots.final_query``), and the article's score, not told of tracking, took such an
#: account as inactive (as it read before the nulls: the baseline stays the one the article defines)
NONE_WHERE_UNKNOWN = ("logins_30d", "core_features_used_30d", "new_features_tried_30d", "training_attended_90d")

#: Dimension -> the catalogue features it averages (ARTICLE §1). Product usage is split
#: into its three weighted parts (logins, core-feature depth, breadth).
RULE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "logins": ("logins_30d",),
    "core_depth": ("core_events_per_active_user_30d",),
    "core_breadth": ("core_features_used_30d",),
    "support": ("tickets_30d_vs_baseline", "open_tickets", "worst_csat_90d", "ticket_silence"),
    "renewal_payment": ("days_overdue", "late_payments_90d", "payment_delay_change"),
    "engagement": ("new_features_tried_30d", "training_attended_90d", "email_open_rate_90d"),
}


class BaselineError(ChurnwatchError):
    """A baseline cannot be computed from the data it was given."""


class RuleWeights(BaseModel):
    """Weights of the rule-based health score's dimensions (ARTICLE §1 defaults).

    Product usage (0.45) is the sum of logins, core-feature depth and breadth. Weights
    need not sum to 1: the score divides by their sum.
    """

    model_config = ConfigDict(extra="forbid")

    logins: float = Field(0.20, ge=0, description="product usage: logins in 30 days")
    core_depth: float = Field(0.15, ge=0, description="product usage: core events per active user")
    core_breadth: float = Field(0.10, ge=0, description="product usage: distinct core features")
    support: float = Field(0.20, ge=0, description="tickets vs baseline, open, worst CSAT, silence")
    renewal_payment: float = Field(0.20, ge=0, description="overdue, late payments, delay change")
    engagement: float = Field(0.15, ge=0, description="new features, training, email open rate")

    @model_validator(mode="after")
    def _some_weight(self) -> RuleWeights:
        if sum(self.as_dict().values()) <= 0:
            raise ValueError("at least one rule weight must be positive")
        return self

    def as_dict(self) -> dict[str, float]:
        """Dimension name -> weight, in ``RULE_DIMENSIONS`` order."""
        return {name: float(getattr(self, name)) for name in RULE_DIMENSIONS}


def _directions() -> dict[str, int]:
    return {f.name: f.direction for f in CORE_FEATURES}


def indicator_scores(snapshots: pd.DataFrame, as_of_col: str = "as_of") -> pd.DataFrame:
    """Each rule indicator as 0-100 (higher = healthier), ranked within its as-of date.

    A row's value is the share of the date's non-missing rows that are at least as risky
    on that indicator (ties share the healthier rank), so the healthiest row of a date
    scores 100. The catalogue direction orients it: direction +1 (more = riskier) is
    inverted. Missing values get ``MISSING_RANK`` (50).
    """
    needed = [as_of_col] + [c for cols in RULE_DIMENSIONS.values() for c in cols]
    missing = [c for c in needed if c not in snapshots.columns]
    if missing:
        raise BaselineError(
            f"rule health score: snapshots lack column(s) {', '.join(missing)}"
        )
    directions = _directions()
    dates = snapshots[as_of_col]
    out = {}
    for dim_cols in RULE_DIMENSIONS.values():
        for col in dim_cols:
            values = pd.to_numeric(snapshots[col], errors="coerce").astype("float64")
            if col in NONE_WHERE_UNKNOWN and values.notna().any():  # a role not configured stays unknown
                values = values.fillna(0.0)
            healthy_up = values if directions[col] <= 0 else -values
            ranks = healthy_up.groupby(dates, sort=False).rank(method="max", pct=True)
            out[col] = (100.0 * ranks).fillna(MISSING_RANK)
    return pd.DataFrame(out, index=snapshots.index)


def rule_health_score(snapshots: pd.DataFrame, weights: RuleWeights | None = None) -> np.ndarray:
    """The article's hand-weighted health score, 0-100, higher = healthier.

    Args:
        snapshots: one row per account and as-of date, with column ``as_of`` and every
            feature named in ``RULE_DIMENSIONS``. Percentile ranks are taken among the
            rows of the same ``as_of`` only, so dates never mix.
        weights: dimension weights; ARTICLE §1 defaults when ``None``.

    Returns:
        float array aligned with the rows of ``snapshots``: the weighted mean of the
        dimensions, each the mean of its indicators' 0-100 ranks.
    """
    weights = weights or RuleWeights()
    if snapshots.empty:
        return np.empty(0, dtype="float64")
    ind = indicator_scores(snapshots)
    w = weights.as_dict()
    total = np.zeros(len(snapshots), dtype="float64")
    for dim, cols in RULE_DIMENSIONS.items():
        total += w[dim] * ind[list(cols)].mean(axis=1).to_numpy()
    return np.clip(total / sum(w.values()), 0.0, 100.0)


def rule_churn_probability(score: np.ndarray | Sequence[float]) -> np.ndarray:
    """``(100 - score) / 100``: a monotone risk from the rule score, for ROC/PR-AUC only.

    Not a calibrated probability: use it to rank accounts, never for Brier or ECE.
    """
    return (100.0 - np.asarray(score, dtype="float64")) / 100.0


def renewal_calendar(rows: pd.DataFrame) -> np.ndarray | None:
    """The renewal calendar as a baseline: accounts ranked by how soon their term ends
    (``1 / (1 + days_to_term_end)``; an open-ended term, null, last), for ROC/PR-AUC only.

    Where churn can only happen at a renewal (annual contracts), the contract calendar a CS team
    already has ranks well on its own; a model must be judged against it, not only against a
    logistic regression that also reads it. ``None`` when the rows have no term ends or every
    row has the same (monthly plans all renewing within a month rank nothing).
    """
    if "days_to_term_end" not in rows.columns:
        return None
    days = pd.to_numeric(rows["days_to_term_end"], errors="coerce").to_numpy(dtype="float64")
    score = np.where(np.isnan(days), 0.0, 1.0 / (1.0 + np.clip(days, 0.0, None)))
    return None if np.ptp(score) == 0 else score


@dataclass
class LogisticBaseline:
    """A fitted logistic-regression baseline and the columns it reads.

    Attributes:
        pipeline: the fitted scikit-learn pipeline (preprocessing + LogisticRegression).
        numeric: numeric feature columns, in order.
        categorical: categorical feature columns, in order.
    """

    pipeline: Pipeline
    numeric: list[str]
    categorical: list[str]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of churn (class 1) for each row of ``X``."""
        proba = self.pipeline.predict_proba(_prepare(X, self.numeric, self.categorical))
        return proba[:, list(self.pipeline.classes_).index(1)]


FeatureLists = tuple[Sequence[str], Sequence[str]]


def _feature_lists(spec: Catalogue | FeatureLists) -> tuple[list[str], list[str]]:
    if isinstance(spec, Catalogue):
        cat = set(spec.categorical)
        return [n for n in spec.names if n not in cat], list(spec.categorical)
    numeric, categorical = spec
    return list(numeric), list(categorical)


def _prepare(X: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Numerics as float64 (NaN missing); categoricals as strings with a missing token."""
    missing = [c for c in numeric + categorical if c not in X.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise BaselineError(f"logistic baseline: features missing from the frame: {shown}")
    cols: dict[str, pd.Series] = {c: pd.to_numeric(X[c], errors="coerce").astype("float64") for c in numeric}
    for c in categorical:
        col = X[c].astype("object")
        cols[c] = col.where(col.notna(), MISSING_CATEGORY).astype(str)
    return pd.DataFrame(cols, index=X.index)


def fit_logistic_baseline(
    X: pd.DataFrame,
    y: np.ndarray | Sequence[int] | pd.Series,
    catalogue_or_feature_lists: Catalogue | FeatureLists,
) -> LogisticBaseline:
    """Fit the logistic-regression baseline.

    Args:
        X: training rows; extra columns are ignored.
        y: 0/1 churn labels aligned with ``X``.
        catalogue_or_feature_lists: a ``Catalogue`` (category-typed features one-hot
            encoded, the rest numeric) or a pair ``(numeric, categorical)`` of names.

    Returns:
        The fitted baseline. Numerics: median imputation with missing indicators, then
        standard scaling; categoricals: one-hot, categories seen < 20 times pooled,
        unseen ones ignored; ``LogisticRegression(C=1.0, max_iter=2000)``.
    """
    numeric, categorical = _feature_lists(catalogue_or_feature_lists)
    if not numeric and not categorical:
        raise BaselineError("logistic baseline: no features to fit on")
    labels = np.asarray(y).astype(int)
    if len(labels) != len(X):
        raise BaselineError(f"logistic baseline: {len(X)} rows but {len(labels)} labels")
    if set(np.unique(labels)) != {0, 1}:
        raise BaselineError(
            f"logistic baseline: labels must hold both 0 and 1, got {sorted(set(labels.tolist()))}"
        )
    steps = []
    if numeric:
        steps.append(("numeric", Pipeline([
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]), numeric))
    if categorical:
        steps.append(("categorical",
                      OneHotEncoder(handle_unknown="ignore", min_frequency=20), categorical))
    pipeline = Pipeline([
        ("prepare", ColumnTransformer(steps, remainder="drop")),
        ("model", LogisticRegression(max_iter=2000, C=1.0, class_weight=None)),
    ])
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):  # faster on a shared machine
        pipeline.fit(_prepare(X, numeric, categorical), labels)
    return LogisticBaseline(pipeline=pipeline, numeric=numeric, categorical=categorical)
