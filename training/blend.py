"""A blend of LightGBM with a logistic regression whose contributions stay exact (issue 12 item 6).

``raw = w * trees(x) + (1 - w) * linear(x)``, both in log-odds. Per-feature contributions:
``w * TreeSHAP(x)`` (``training.treeshap``: the values of LightGBM's ``pred_contrib``) plus
``(1 - w) * coefficient x centred value`` for the linear part, so each row's contributions plus
the bias equal its blended log-odds exactly, in the same ``(n, n_features + 1)`` shape as ``pred_contrib``.

The linear part works on the model matrix of ``FeatureFrame.matrix`` (numerics as they are,
categoricals as their training category code, NaN missing): numerics clipped to their
training 0.5-99.5% range, median-imputed with a missing indicator and standardised;
categoricals one-hot by code. A feature's linear contribution is its coefficient(s) times
its value's deviation from the training mean (the indicator's and the one-hot columns' terms
go to the feature they encode). Where the catalogue gives a direction, a coefficient of the
opposite sign is dropped (refit without it), so the blend keeps the trees' monotonicity.

``BlendedModel`` answers ``predict(X, raw_score=..., pred_contrib=...)``, ``num_trees``,
``feature_name`` and ``model_to_string`` like a ``lightgbm.Booster``, so scoring and
``training.reasons.contributions`` work unchanged. Its state is ``model.txt`` (the trees)
plus ``blend.json`` (weight and linear coefficients): plain files, no pickle.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from training.errors import ModelBundleError
from training.treeshap import tree_contributions


def as_matrix(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """The float model matrix: a frame from ``FeatureFrame.transform`` (categoricals as codes)."""
    if isinstance(X, np.ndarray):
        return X.astype(np.float64, copy=False)
    cols = []
    for c in X.columns:
        col = X[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype(np.float64)
            cols.append(np.where(codes < 0, np.nan, codes))
        else:
            cols.append(pd.to_numeric(col).to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(cols) if cols else np.empty((len(X), 0))


#: A numeric feature's missing indicator is kept when its blanks churn at a rate this many standard errors (two
#: proportions, pooled) from its filled values' (p < 0.01, as the category screen's ``training.screen.ALPHA``); else
#: a blank is the median like any other value. A probe's hand-kept sheet had blanks at random (3-5% of five
#: columns): the linear part gave a blank outage count +0.40 log-odds (29% churn among its 290 blank training rows
#: against 25%, 1.5 standard errors), so those customers scored 31% against a true 26%, and no reason said why.
MISSING_Z = 2.576
#: The logistic fits run BLAS on one thread: their design has tens of columns, and on a shared
#: 2-core machine BLAS's thread team costs more than it saves (one 7,428 x 69 fit: 12.4 s with
#: two threads under load, 2.3 s with one).
BLAS_THREADS = 1


def _blanks_differ(blank: np.ndarray, y: np.ndarray) -> bool:
    """Whether the rows with a blank churn at a rate ``MISSING_Z`` standard errors or more from the others'."""
    n1, n0 = int(blank.sum()), int((~blank).sum())
    if not n1 or not n0:
        return bool(n1)  # all blank: nothing to compare (such a feature is left out of the model anyway)
    p1, p0 = float(y[blank].mean()), float(y[~blank].mean())
    pooled = (p1 * n1 + p0 * n0) / (n1 + n0)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return bool(se > 0 and abs(p1 - p0) >= MISSING_Z * se)


class LinearPart:
    """Logistic regression on the model matrix with exact per-feature contributions.

    Each numeric feature gives up to three design columns: its value (clipped to the training
    0.5-99.5% range, median-imputed, standardised); ``log1p`` of that value when the feature is
    never negative in training and takes more than two values (a concave shape such as
    tenure's, standardised); and a missing indicator when training had missing values (for a feature of
    ``screened``, only when their churn differs from the filled values' by ``MISSING_Z`` standard errors: else a
    blank is the median).
    Categoricals are one-hot by code. All of a feature's columns belong to it, so its
    contribution is the sum of their coefficient x centred value terms.

    Args:
        names: feature names in matrix order.
        categorical: which of them are categorical (codes in the matrix).
        directions: feature -> +1 / -1 / 0 (sign a numeric coefficient must not contradict).
        C: inverse L2 strength of scikit-learn's ``LogisticRegression`` (standardised columns).
        log_terms: add the ``log1p`` column of non-negative numerics.
        screened: the features whose missing indicator must show its blanks going with churn (``MISSING_Z``, rows
            taken as independent): a flat table's columns, whose blanks are gaps in an export (``training.train``);
            an event log's features keep theirs, as their nulls have a meaning (none in the window before, never
            logged in: p57's app export lost 0.0014 validation ROC-AUC when they were screened too) and its rows
            repeat each account on every date (the review: random blanks of accounts x dates kept an indicator in
            58.5% of simulated runs, against the 1% meant).
    """

    def __init__(self, names: list[str], categorical: list[str], directions: dict[str, int] | None = None,
                 C: float = 1.0, log_terms: bool = True, screened: Collection[str] = ()) -> None:
        self.names = list(names)
        self.screened = frozenset(screened)
        self.categorical = list(categorical)
        self.directions = dict(directions or {})
        self.C = C
        self.log_terms = log_terms

    def _design(self, M: np.ndarray) -> tuple[np.ndarray, list[int], list[str]]:
        """Design columns, the feature index each belongs to and its kind
        (``value``, ``log``, ``missing`` or ``code``). Computed for all columns at once (the same
        arithmetic per element as column by column, so the same values); the plan is built once
        per fitted part (``_plan``)."""
        plan = self._plan()
        num, cat = plan["num"], plan["cat"]
        X = M[:, num]
        miss = np.isnan(X)
        clipped = np.clip(np.where(miss, plan["med"], X), plan["lo"], plan["hi"])
        blocks = [(clipped - plan["mu"]) / plan["sd"]]
        if len(plan["log"]):
            logged = np.log1p(np.maximum(clipped[:, plan["log"]], 0.0))
            blocks.append((logged - plan["mu_l"]) / plan["sd_l"])
        if len(plan["miss"]):
            blocks.append(miss[:, plan["miss"]].astype(np.float64))
        if len(cat):
            blocks.append((M[:, cat] == plan["codes"]).astype(np.float64))
        D = np.concatenate(blocks, axis=1)[:, plan["order"]] if plan["order"].size else np.empty((len(M), 0))
        return D, plan["owner"], plan["kinds"]

    def _plan(self) -> dict[str, Any]:
        """Which matrix columns give which design columns, in ``_design``'s order (built once)."""
        key = (id(self.num_), id(self.n_codes_), id(self.log_), id(self.has_missing_))
        cached = getattr(self, "_plan_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        num = [j for j, name in enumerate(self.names) if name not in self.categorical]
        scale = np.array([self.num_[j] for j in num], dtype=np.float64).reshape(len(num), 5)
        log_at = [i for i, j in enumerate(num) if j in self.log_]
        miss_at = [i for i, j in enumerate(num) if self.has_missing_[j]]
        cat = [j for j, name in enumerate(self.names) if name in self.categorical for _ in range(self.n_codes_[j])]
        codes = [c for j, name in enumerate(self.names) if name in self.categorical for c in range(self.n_codes_[j])]
        # the blocks' columns, labelled (feature, kind rank, code) to sort them into _design's order
        rank = {"value": 0, "log": 1, "missing": 2, "code": 3}
        labels = ([(num[i], "value", 0) for i in range(len(num))] + [(num[i], "log", 0) for i in log_at]
                  + [(num[i], "missing", 0) for i in miss_at] + list(zip(cat, ["code"] * len(cat), codes)))
        order = np.array(sorted(range(len(labels)), key=lambda k: (labels[k][0], rank[labels[k][1]], labels[k][2])),
                         dtype=np.intp)
        plan = {"num": np.array(num, dtype=np.intp), "lo": scale[:, 0], "hi": scale[:, 1], "med": scale[:, 2],
                "mu": scale[:, 3], "sd": scale[:, 4], "log": np.array(log_at, dtype=np.intp),
                "mu_l": np.array([self.log_[num[i]][0] for i in log_at]),
                "sd_l": np.array([self.log_[num[i]][1] for i in log_at]),
                "miss": np.array(miss_at, dtype=np.intp), "cat": np.array(cat, dtype=np.intp),
                "codes": np.array(codes, dtype=np.float64), "order": order,
                "owner": [labels[k][0] for k in order], "kinds": [labels[k][1] for k in order]}
        self._plan_cache = (key, plan)
        return plan

    def _fit_scales(self, M: np.ndarray, y: np.ndarray | None = None) -> None:
        self.n_codes_, self.num_, self.has_missing_, self.log_ = {}, {}, {}, {}
        for j, name in enumerate(self.names):
            x = M[:, j]
            if name in self.categorical:
                self.n_codes_[j] = int(np.nanmax(x)) + 1 if np.isfinite(x).any() else 0
                continue
            ok = x[np.isfinite(x)]
            if ok.size == 0:
                ok = np.zeros(1)
            lo, hi = np.quantile(ok, [0.005, 0.995])
            med = float(np.median(ok))
            clipped = np.clip(np.where(np.isnan(x), med, x), lo, hi)
            self.num_[j] = (float(lo), float(hi), med, float(clipped.mean()), float(clipped.std()) or 1.0)
            self.has_missing_[j] = bool(np.isnan(x).any()) and (
                y is None or name not in self.screened or _blanks_differ(np.isnan(x), y))
            if self.log_terms and lo >= 0 and np.unique(ok).size > 2:
                logged = np.log1p(clipped)
                self.log_[j] = (float(logged.mean()), float(logged.std()) or 1.0)

    def fit(self, M: np.ndarray, y: np.ndarray) -> LinearPart:
        """Fit on the model matrix (``as_matrix``) and 0/1 labels. A value or log column whose
        coefficient contradicts the feature's catalogue direction is dropped and the fit repeated."""
        M = as_matrix(M)
        self._fit_scales(M, np.asarray(y, dtype=np.float64))
        D, owner, kinds = self._design(M)
        active = np.ones(D.shape[1], dtype=bool)
        for _ in range(8):
            with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):  # see ``BLAS_THREADS``
                lr = LogisticRegression(C=self.C, max_iter=3000).fit(D[:, active], y)
            coef = np.zeros(D.shape[1])
            coef[active] = lr.coef_[0]
            wrong = np.array([k in ("value", "log") and self.directions.get(self.names[j], 0) * c < 0
                              for j, k, c in zip(owner, kinds, coef)], dtype=bool)
            if not wrong.any():
                break
            active &= ~wrong
        self.coef_, self.intercept_ = coef, float(lr.intercept_[0])
        self.col_means_ = D.mean(axis=0)
        self.owner_ = owner
        return self

    def contributions(self, M: np.ndarray) -> np.ndarray:
        """(n, n_features + 1): coefficient x centred value per feature, bias last (log-odds)."""
        D, owner, _ = self._design(as_matrix(M))
        terms = (D - self.col_means_) * self.coef_
        out = np.zeros((len(D), len(self.names) + 1))
        np.add.at(out, (slice(None), np.asarray(owner, dtype=np.intp)), terms)  # in order, as a loop would
        out[:, -1] = self.intercept_ + float(self.col_means_ @ self.coef_)
        return out

    def raw(self, M: np.ndarray) -> np.ndarray:
        D, _, _ = self._design(as_matrix(M))
        return D @ self.coef_ + self.intercept_

    def to_dict(self) -> dict[str, Any]:
        return {"names": self.names, "categorical": self.categorical, "directions": self.directions, "C": self.C,
                "log_terms": self.log_terms, "log": {str(k): list(v) for k, v in self.log_.items()},
                "n_codes": {str(k): v for k, v in self.n_codes_.items()},
                "numeric": {str(k): list(v) for k, v in self.num_.items()},
                "has_missing": {str(k): v for k, v in self.has_missing_.items()},
                "coef": self.coef_.tolist(), "intercept": self.intercept_, "col_means": self.col_means_.tolist(),
                "owner": list(map(int, self.owner_))}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearPart:
        part = cls(d["names"], d["categorical"], d.get("directions"), d.get("C", 1.0),
                   bool(d.get("log_terms", False)))  # bundles written before log terms have none
        part.log_ = {int(k): tuple(float(x) for x in v) for k, v in d.get("log", {}).items()}
        part.n_codes_ = {int(k): int(v) for k, v in d["n_codes"].items()}
        part.num_ = {int(k): tuple(float(x) for x in v) for k, v in d["numeric"].items()}
        part.has_missing_ = {int(k): bool(v) for k, v in d["has_missing"].items()}
        part.coef_ = np.asarray(d["coef"], dtype=np.float64)
        part.intercept_ = float(d["intercept"])
        part.col_means_ = np.asarray(d["col_means"], dtype=np.float64)
        part.owner_ = [int(v) for v in d["owner"]]
        if not (len(part.coef_) == len(part.col_means_) == len(part.owner_)):
            raise ModelBundleError("blend.json: coefficients, means and owners differ in length")
        return part


class BlendedModel:
    """``weight`` x LightGBM + (1 - ``weight``) x ``LinearPart``, on one log-odds scale."""

    def __init__(self, booster: lgb.Booster, linear: LinearPart, weight: float) -> None:
        if not 0.0 <= weight < 1.0:  # 0: the logistic regression alone (the trees contribute nothing)
            raise ValueError(f"blend weight must lie in [0, 1), got {weight}")
        self.booster, self.linear, self.weight = booster, linear, float(weight)

    def predict(self, X: pd.DataFrame | np.ndarray, raw_score: bool = False, pred_contrib: bool = False,
                num_threads: int = 0) -> np.ndarray:
        """Like ``Booster.predict``: probability, raw log-odds, or contributions (bias last)."""
        M = as_matrix(X)
        w = self.weight
        if pred_contrib:
            trees = tree_contributions(self.booster, M, num_threads=num_threads)
            return w * trees + (1.0 - w) * self.linear.contributions(M)
        raw = w * self.booster.predict(M, raw_score=True, num_threads=num_threads) + (1.0 - w) * self.linear.raw(M)
        return raw if raw_score else expit(raw)

    def num_trees(self) -> int:
        return self.booster.num_trees()

    def feature_name(self) -> list[str]:
        return self.booster.feature_name()

    def model_to_string(self) -> str:
        return self.booster.model_to_string()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "blend", "tree_weight": self.weight, "linear": self.linear.to_dict()}

    @classmethod
    def from_dict(cls, booster: lgb.Booster, d: dict[str, Any]) -> BlendedModel:
        if d.get("kind") != "blend":
            raise ModelBundleError(f"blend.json: kind {d.get('kind')!r} is not 'blend'")
        return cls(booster, LinearPart.from_dict(d["linear"]), float(d["tree_weight"]))
