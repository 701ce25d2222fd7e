"""Rounding many floats at once to six decimals, exactly as Python's ``round`` does (the API's
contributions and coverage shares; the reasons' items of ``ReasonBuilder.explain(public=True)``)."""

from __future__ import annotations

import numpy as np


def round6(values: list[float]) -> list[float]:
    """``[round(v, 6) for v in values]``, the same floats, with arrays: ``rint(v * 1e6) / 1e6``
    equals Python's correctly rounded ``round`` unless ``v * 1e6`` lies within its rounding error
    of a half (or is huge or not finite), and those few go through ``round`` itself. (IEEE
    division is correctly rounded, so ``D / 1e6`` is the double nearest ``D * 10**-6``, what
    ``round`` returns for the same integer ``D``.)"""
    if len(values) < 64:
        return [round(v, 6) for v in values]
    x = np.asarray(values, dtype=np.float64)
    scaled = x * 1e6
    out = np.rint(scaled) / 1e6
    with np.errstate(invalid="ignore"):
        near_half = np.abs(scaled - np.floor(scaled) - 0.5) <= np.abs(scaled) * 2.0 ** -48 + 1e-9
        unsure = near_half | ~(np.abs(scaled) < 2.0 ** 50)
    result = out.tolist()
    for k in np.flatnonzero(unsure).tolist():
        result[k] = round(values[k], 6)
    return result
