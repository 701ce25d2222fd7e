"""Data quality of the current rows against the reference and the feature spec (DESIGN §6).

Per model feature: the share of missing values now and in the reference, values outside
the spec's declared ``valid_range`` (inclusive bounds; ``None`` is unbounded) and, for
categorical features, values the model never saw in training (they score as missing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.spec import Catalogue
from training.model import FeatureFrame

#: A missing share this much above the reference's is flagged (absolute, 0..1).
MISSING_RISE_FLAG = 0.1


def out_of_range(values: pd.Series, bounds: tuple[float | None, float | None]) -> int:
    """How many non-missing values fall outside the inclusive ``bounds``."""
    lo, hi = bounds
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.zeros(x.shape, dtype=bool)
    if lo is not None:
        bad |= x < lo
    if hi is not None:
        bad |= x > hi
    return int(bad.sum())


def data_quality(current: pd.DataFrame, reference: pd.DataFrame, catalogue: Catalogue,
                 frame: FeatureFrame) -> dict:
    """JSON-ready quality summary of ``current`` vs ``reference`` for the model's features.

    Returns:
        ``{"features": {name: {"missing_share", "missing_share_reference",
        "out_of_range", "valid_range", "unseen_categories"}}, "missing_rise": [names],
        "out_of_range": {name: count}, "unseen_categories": {name: [values]}}`` (the last
        three list only the features with a finding).
    """
    unseen = frame.unseen_categories(current)
    cat = set(frame.categorical)
    feats: dict[str, dict] = {}
    for name in frame.names:
        spec = catalogue[name]
        now, ref = float(current[name].isna().mean()), float(reference[name].isna().mean())
        entry = {"missing_share": now, "missing_share_reference": ref}
        if name in cat:
            entry["unseen_categories"] = unseen.get(name, [])
        else:
            entry["valid_range"] = list(spec.valid_range)
            entry["out_of_range"] = out_of_range(current[name], spec.valid_range)
        feats[name] = entry
    return {
        "features": feats,
        "missing_rise": [n for n, e in feats.items()
                         if e["missing_share"] - e["missing_share_reference"] >= MISSING_RISE_FLAG],
        "out_of_range": {n: e["out_of_range"] for n, e in feats.items() if e.get("out_of_range")},
        "unseen_categories": unseen,
    }
