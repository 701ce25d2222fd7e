"""How much of the model a ``/score`` request actually feeds (issue 14 item 3: no silent guesses).

Per account: the features given (a non-null value), the model's features missing (null, absent,
or a category training never saw, which the model scores as missing) and the unknown category
values, plus ``share``: the given features' part of the model's total split gain. Below the
configured minimum share (``serving.min_coverage`` in ``churnwatch.yaml``, default 0.5) the
account gets an error naming the missing features instead of a tier; an account with no
feature at all always does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from training.model import FeatureFrame, FeatureRows
from training.rounding import round6

#: Missing features named in an error's text (all of them are in ``coverage.missing``).
SHOWN_MISSING = 10


def model_gains(booster: object, names: list[str]) -> np.ndarray:
    """Each model feature's share of the total split gain (equal shares without trees or gain)."""
    trees = getattr(booster, "booster", booster)  # a BlendedModel's trees
    gain = np.asarray(trees.feature_importance("gain"), dtype=float) if trees.num_trees() else np.zeros(len(names))
    if len(gain) != len(names) or not np.isfinite(gain).all() or gain.sum() <= 0:
        gain = np.ones(len(names))
    return gain / gain.sum()


@dataclass(frozen=True)
class CoverageCheck:
    """The coverage of request rows against one model (fitted from its frame and gains)."""

    frame: FeatureFrame
    gain: np.ndarray  # share of the total gain, in frame.names order
    min_share: float

    def measure(self, rows: FeatureRows, X: np.ndarray) -> list[dict]:
        """One ``{"given", "missing", "unknown", "share"}`` per row; ``X`` is ``frame.matrix(rows)``.

        ``given`` is in the request model's order (numbers, then categories); ``missing`` most
        important first.
        """
        by_gain, gain, missing_names = self._by_gain
        missing = np.isnan(X[:, by_gain])
        shares = (~missing) @ gain
        labels = list(rows.labels)
        given_names = np.array([*rows.numeric_names, *labels], dtype=object)
        given = np.column_stack([~np.isnan(rows.numeric), *(_given(rows.labels[c]) for c in labels)]) \
            if len(given_names) else np.zeros((len(X), 0), dtype=bool)
        unknown = self._unknown(rows)
        shares = round6(shares.tolist())
        return [{"given": g, "missing": m, "unknown": u, "share": s}
                for g, m, u, s in zip(names_of(given, given_names), names_of(missing, missing_names), unknown, shares)]

    @cached_property
    def _by_gain(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's features most important first: their positions, gains and names (once)."""
        by_gain = np.argsort(-self.gain, kind="stable")
        return by_gain, self.gain[by_gain], np.array(self.frame.names, dtype=object)[by_gain]

    def _unknown(self, rows: FeatureRows) -> list[list[dict]]:
        out: list[list[dict]] = [[] for _ in range(len(rows))]
        for c, values in self.frame.unseen_categories(rows).items():
            unseen = set(values)
            for i, v in enumerate(rows[c]):
                if v is not None and v == v and str(v) in unseen:
                    out[i].append({"feature": c, "value": str(v)})
        return out

    def error(self, coverage: dict, lang: str = "en") -> str | None:
        """The error text of a row below the minimum, in ``lang`` (``zh-CN`` or English; None: it is
        scored). Feature names stay as the request spells them."""
        if coverage["given"] and coverage["share"] >= self.min_share:
            return None
        missing = coverage["missing"]
        zh = lang == "zh-CN"
        more = len(missing) - SHOWN_MISSING
        shown = ", ".join(missing[:SHOWN_MISSING]) + (
            "" if more <= 0 else f" 等另外 {more} 个" if zh else f" and {more} more")
        if not coverage["given"]:
            return (f"未提供任何特征，无法评分；模型需要例如 {shown}" if zh
                    else f"no features given: cannot score; the model needs e.g. {shown}")
        if zh:
            return (f"特征太少，无法评分：所给特征只占模型增益的 {coverage['share']:.0%}"
                    f"（最低 {self.min_share:.0%}）；缺少：{shown}")
        return (f"too few features to score: the given features carry {coverage['share']:.0%} of the model's "
                f"gain (minimum {self.min_share:.0%}); missing: {shown}")


def names_of(mask: np.ndarray, names: np.ndarray) -> list[list]:
    """``names[mask[i]].tolist()`` for each row ``i`` of a boolean matrix: each distinct row worked
    out once (rows are keyed by their packed bits), a copy of its list per row."""
    if len(mask) < 8 or not mask.shape[1]:
        return [names[row].tolist() for row in mask]
    packed = np.ascontiguousarray(np.packbits(mask, axis=1))
    seen: dict[bytes, list] = {}
    out = []
    for i, key in enumerate(packed.view(f"V{packed.shape[1]}").ravel().tolist()):
        found = seen.get(key)
        if found is None:
            found = seen[key] = names[mask[i]].tolist()
        out.append(found.copy())
    return out


def _given(values: np.ndarray) -> np.ndarray:
    """Non-null labels of one request column (None or NaN: not given)."""
    return np.array([v is not None and v == v for v in values], dtype=bool)
