"""LightGBM on labelled snapshots: categoricals, monotone constraints, early stopping.

The feature order, the categorical columns and the monotone directions all come from
the feature catalogue (``features/spec.py``). Categories are fixed at training time and
kept in the bundle, so serving maps a value to the same code; a value never seen in
training becomes missing and is *reported* by the caller (``unseen_categories``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.spec import Catalogue
from training.errors import TrainingError

DEFAULT_PARAMS: dict = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 20,
    "monotone_constraints_method": "intermediate",
    "verbose": -1,
    "num_threads": 0,
}


class FeatureRows:
    """Validated feature rows without pandas: one float block for the numeric features and an
    object array per categorical one. The service's request path builds these, because
    building a frame of a hundred columns costs more than scoring one row. It offers what
    scoring reads of a frame: ``len``, ``empty``, ``columns``, ``index`` and ``rows[name]``."""

    def __init__(self, account_ids: list[str], numeric_names: list[str], numeric: np.ndarray,
                 labels: dict[str, list[object]]) -> None:
        self.account_ids = np.asarray(account_ids, dtype=object)
        self.numeric_names = list(numeric_names)
        self.numeric = numeric
        self.labels = {c: np.asarray(v, dtype=object) for c, v in labels.items()}
        self._position = {n: j for j, n in enumerate(self.numeric_names)}
        self.columns = dict.fromkeys(["account_id", *self.numeric_names, *self.labels])  # ordered, O(1) `in`

    def __len__(self) -> int:
        return len(self.account_ids)

    @property
    def empty(self) -> bool:
        return len(self) == 0

    @property
    def index(self) -> pd.RangeIndex:
        return pd.RangeIndex(len(self))

    def __getitem__(self, name: str) -> np.ndarray:
        if name == "account_id":
            return self.account_ids
        if name in self.labels:
            return self.labels[name]
        return self.numeric[:, self._position[name]]

    def object_values(self, names: list[str]) -> np.ndarray:
        """(rows, len(names)) object array of the actual values (NaN / None = missing)."""
        out = np.empty((len(self), len(names)), dtype=object)
        for j, name in enumerate(names):
            out[:, j] = self[name]
        return out


#: The words of the two sides of a yes/no category (case folded): ``FeatureFrame.respelled``.
YES_WORDS = frozenset({"true", "yes", "y", "t", "1"})
NO_WORDS = frozenset({"false", "no", "n", "f", "0"})


@dataclass
class FeatureFrame:
    """How a catalogue turns snapshot rows into the model's matrix."""

    names: list[str]
    categorical: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    _codes: dict[str, dict[str, float]] = field(default_factory=dict, repr=False, compare=False)
    _seen: dict[str, tuple[frozenset[str], dict[str, str]]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue) -> FeatureFrame:
        return cls(names=catalogue.names, categorical=catalogue.categorical)

    def fit(self, rows: pd.DataFrame) -> FeatureFrame:
        """Learn each categorical column's categories (sorted, for stable codes)."""
        self.categories = {c: sorted(str(v) for v in rows[c].dropna().unique()) for c in self.categorical}
        return self

    def _require(self, rows: pd.DataFrame | FeatureRows) -> None:
        missing = [n for n in self.names if n not in rows.columns]
        if missing:
            raise TrainingError(f"feature(s) missing from the data: {', '.join(missing[:5])}"
                                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                                + ": the model was trained with them and this build has none (a column left out "
                                  "since, by churnwatch.yaml or by its name: `churnwatch features` lists why); train "
                                  "a model without them, or add the column back under profile.columns")

    def transform(self, rows: pd.DataFrame) -> pd.DataFrame:
        self._require(rows)
        out = rows[self.names].copy()
        for c in self.names:
            if c in self.categorical:
                out[c] = pd.Categorical(out[c].astype("string").astype(object), categories=self.categories[c])
            else:
                out[c] = pd.to_numeric(out[c], errors="raise").astype("float64")
        return out

    def matrix(self, rows: pd.DataFrame | FeatureRows) -> np.ndarray:
        """The model's input as a float matrix: numerics as they are, categoricals as their
        code in the training categories (unseen or missing -> NaN), exactly what LightGBM
        does with a pandas frame, without its per-call pandas work (fast for single rows)."""
        self._require(rows)
        out = np.empty((len(rows), len(self.names)), dtype=np.float64)
        cat = set(self.categorical)
        numeric = [j for j, c in enumerate(self.names) if c not in cat]
        if isinstance(rows, FeatureRows):
            out[:, numeric] = rows.numeric[:, [rows._position[self.names[j]] for j in numeric]]
        else:
            out[:, numeric] = rows[[self.names[j] for j in numeric]].to_numpy(dtype=np.float64, na_value=np.nan)
        for j, c in enumerate(self.names):
            if c in cat:
                codes = self._codes.setdefault(c, {v: float(i) for i, v in enumerate(self.categories[c])})
                out[:, j] = [codes.get(str(v), np.nan) if v is not None and v == v else np.nan for v in rows[c]]
        return out

    def respelled(self, rows: pd.DataFrame | FeatureRows) -> pd.DataFrame | FeatureRows:
        """``rows`` with each category value training did not see, but saw in another case, as the value it saw
        (``true`` where the training table had ``TRUE``: a probe's re-exported booleans were scored as missing);
        a spelling two trained values share stays unseen. In a yes/no column (two trained values, one of
        ``YES_WORDS``, one of ``NO_WORDS``) any other word of the two is its value: ``true`` (a JSON ``true``, a
        re-export) is ``Yes`` where training read Yes/No (a probe's CRM: "Auto Renew": true scored as missing).
        The rows themselves when there is none (most calls)."""
        out = rows
        for c in self.categorical:
            if c not in rows.columns:
                continue
            seen = self._seen.get(c)
            if seen is None:
                folds: dict[str, list[str]] = {}
                for v in self.categories.get(c, []):
                    folds.setdefault(v.casefold(), []).append(v)
                single = {k: vs[0] for k, vs in folds.items() if len(vs) == 1}
                sides = [[v for k, v in single.items() if k in words] for words in (YES_WORDS, NO_WORDS)]
                if len(single) == 2 and all(len(side) == 1 for side in sides):  # a yes/no column (two values only:
                    # a 0/1/2 tier or an A-F grade beside a "Y" is none, the review)
                    for words, (value,) in zip((YES_WORDS, NO_WORDS), sides, strict=True):
                        single.update({w: value for w in words if w not in single})
                seen = self._seen[c] = (frozenset(self.categories.get(c, [])), single)
            values = rows[c].tolist() if isinstance(rows, pd.DataFrame) else list(rows.labels[c])
            unseen = {v for v in set(values) if isinstance(v, str)} - seen[0]
            if not unseen or not any(v.casefold() in seen[1] for v in unseen):
                continue
            fixed = [seen[1].get(v.casefold(), v) if isinstance(v, str) and v in unseen else v for v in values]
            if out is rows:
                out = rows.copy() if isinstance(rows, pd.DataFrame) else FeatureRows(
                    list(rows.account_ids), rows.numeric_names, rows.numeric, dict(rows.labels))
            if isinstance(out, pd.DataFrame):
                out[c] = np.array(fixed, dtype=object)
            else:
                out.labels[c] = np.array(fixed, dtype=object)
        return out

    def unseen_categories(self, rows: pd.DataFrame | FeatureRows) -> dict[str, list[str]]:
        """Values of categorical columns that training never saw (they score as missing)."""
        out = {}
        for c in self.categorical:
            seen = set(self.categories.get(c, []))
            new = sorted({str(v) for v in set(rows[c].tolist()) if v is not None and v == v} - seen)
            if new:
                out[c] = new
        return out

    def to_dict(self) -> dict:
        return {"names": self.names, "categorical": self.categorical, "categories": self.categories}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureFrame:
        return cls(names=list(d["names"]), categorical=list(d["categorical"]),
                   categories={k: list(v) for k, v in d["categories"].items()})


def feature_facts(rows: pd.DataFrame, names: list[str], importance: np.ndarray,
                  categorical: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """What scoring checks its rows against (``serving.coverage.batch_warnings``, the /score warnings), per
    model feature: ``present_share``, the share of the training ``rows`` with a value (0..1),
    ``importance``, the mean absolute SHAP contribution in log-odds on a sample of those rows
    (``importance``, in ``names`` order; 0: the model does not use the feature), and for a number (not in
    ``categorical``) with a value, ``min`` and ``max``, the range of the training rows (a value outside
    it is scored as the nearest value the model saw). Kept in the bundle's ``bundle.json`` under
    ``training.feature_facts`` (absent in bundles saved before; ``min``/``max`` absent before them)."""
    present = rows[names].notna().mean().to_numpy(dtype=float) if len(rows) else np.zeros(len(names))
    out = {n: {"present_share": round(float(p), 6), "importance": round(float(i), 6)}
           for n, p, i in zip(names, present, importance, strict=True)}
    skip = set(categorical)
    for n in names:
        if n in skip or not len(rows):
            continue
        values = pd.to_numeric(rows[n], errors="coerce")
        values = values[np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan))]
        if len(values):
            out[n].update(min=float(values.min()), max=float(values.max()))
    return out


def monotone_constraints(catalogue: Catalogue) -> list[int]:
    """+1 / -1 from each feature's direction; 0 for unknown direction and categoricals."""
    return [0 if f.type == "category" else int(f.direction) for f in catalogue.features]


#: Characters LightGBM refuses in a feature name (it stores its names in JSON): training stops on them.
BOOSTER_NAME_REFUSED = '",:[]{}'


def booster_names(names: list[str]) -> list[str]:
    """The feature names as a trained ``lightgbm.Booster`` keeps them: each space written as ``_``
    (``Monthly Fee`` is ``Monthly_Fee``), as LightGBM does when it stores them."""
    return [n.replace(" ", "_") for n in names]


def check_labels(y: np.ndarray, what: str, min_rows: int = 200, min_positives: int = 20) -> None:
    n, pos = len(y), int(np.sum(y))
    if n == 0:
        raise TrainingError(f"the {what} has no labelled rows")
    if pos == 0:
        raise TrainingError(f"the {what} has no positive labels (no churn in {n:,} rows): nothing to learn")
    if n < min_rows or pos < min_positives:
        raise TrainingError(f"too few rows to train: the {what} has {n:,} rows and {pos:,} churners "
                            f"(at least {min_rows:,} and {min_positives:,} needed)")


def fit_booster(X_fit: pd.DataFrame, y_fit: np.ndarray, X_es: pd.DataFrame, y_es: np.ndarray,
                X_train: pd.DataFrame, y_train: np.ndarray, constraints: list[int],
                params: dict | None = None, seed: int = 0, max_rounds: int = 2000) -> tuple[lgb.Booster, int]:
    """Pick the number of trees by early stopping on (fit -> es), then refit on the whole
    training block with that many trees. Returns the booster and the number of trees."""
    p = {**DEFAULT_PARAMS, **(params or {}), "seed": seed, "monotone_constraints": constraints}
    cat = [c for c in X_fit.columns if isinstance(X_fit[c].dtype, pd.CategoricalDtype)]
    dfit = lgb.Dataset(X_fit, y_fit, categorical_feature=cat, free_raw_data=False)
    des = lgb.Dataset(X_es, y_es, categorical_feature=cat, reference=dfit, free_raw_data=False)
    probe = lgb.train(p, dfit, num_boost_round=max_rounds, valid_sets=[des],
                      callbacks=[lgb.early_stopping(100, verbose=False)])
    rounds = max(int(probe.best_iteration or max_rounds), 20)
    full = lgb.Dataset(X_train, y_train, categorical_feature=cat, free_raw_data=False)
    return lgb.train(p, full, num_boost_round=rounds), rounds
