"""The blend's linear part builds its design matrix for all columns at once: the same columns,
owners and kinds, bit for bit, as building it column by column (the definition below)."""

from __future__ import annotations

import numpy as np

from training.blend import LinearPart


def column_by_column(part: LinearPart, M: np.ndarray) -> tuple[np.ndarray, list[int], list[str]]:
    cols, owner, kinds = [], [], []
    for j, name in enumerate(part.names):
        x = M[:, j]
        if name in part.categorical:
            for code in range(part.n_codes_[j]):
                cols.append((x == code).astype(np.float64))
                owner.append(j)
                kinds.append("code")
            continue
        lo, hi, med, mu, sd = part.num_[j]
        miss = np.isnan(x)
        clipped = np.clip(np.where(miss, med, x), lo, hi)
        cols.append((clipped - mu) / sd)
        owner.append(j)
        kinds.append("value")
        if j in part.log_:
            mu_l, sd_l = part.log_[j]
            cols.append((np.log1p(np.maximum(clipped, 0.0)) - mu_l) / sd_l)
            owner.append(j)
            kinds.append("log")
        if part.has_missing_[j]:
            cols.append(miss.astype(np.float64))
            owner.append(j)
            kinds.append("missing")
    return np.column_stack(cols), owner, kinds


def test_the_design_matrix_equals_the_column_by_column_definition():
    rng = np.random.default_rng(11)
    n = 400
    M = np.column_stack([rng.normal(size=n), rng.integers(0, 4, n).astype(float), np.abs(rng.normal(size=n)) * 9,
                         rng.integers(0, 2, n).astype(float), rng.exponential(3, n), rng.normal(size=n)])
    M[rng.random(M.shape) < 0.1] = np.nan
    M[:, 5] = np.where(np.isnan(M[:, 5]), 0.0, M[:, 5])  # a column never missing: no indicator
    y = (rng.random(n) < 0.3).astype(int)
    part = LinearPart(["a", "plan", "c", "flag", "e", "f"], ["plan"], {"c": 1}).fit(M, y)
    fresh = LinearPart.from_dict(part.to_dict())  # a loaded bundle's part
    for p in (part, fresh):
        D, owner, kinds = p._design(M)
        want, want_owner, want_kinds = column_by_column(p, M)
        assert np.array_equal(D, want) and owner == want_owner and kinds == want_kinds
        assert set(kinds) == {"value", "log", "missing", "code"}
        assert D[:1].shape == p._design(M[:1])[0].shape and np.array_equal(p._design(M[:1])[0], want[:1])
    contrib = fresh.contributions(M)
    assert np.allclose(contrib.sum(axis=1), fresh.raw(M), atol=1e-12)
