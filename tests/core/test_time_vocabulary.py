"""core.time and core.vocabulary: one as-of type, the horizon rule, the tier table's bands."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.time import Horizon, as_date
from core.vocabulary import MAX_HEALTH, TIER_KEYS, TIERS, tier_bands, tier_label
from training.health import tier


@pytest.mark.parametrize("value", ["2025-03-04", "2025-03-04T10:00:00", dt.date(2025, 3, 4),
                                   dt.datetime(2025, 3, 4, 23, 59), pd.Timestamp("2025-03-04 12:00"),
                                   np.datetime64("2025-03-04T06:00")])
def test_every_form_of_an_as_of_date_becomes_one_date(value):
    out = as_date(value)
    assert out == dt.date(2025, 3, 4) and type(out) is dt.date


@pytest.mark.parametrize("value", [20250304, None, "March 4th"])
def test_a_value_that_is_no_date_is_refused(value):
    with pytest.raises(ValueError):
        as_date(value)


def test_a_score_matures_when_horizon_and_grace_have_passed():
    h = Horizon(horizon_days=60, grace_days=30)
    end = dt.date(2025, 12, 31)
    assert h.last_matured(end) == dt.date(2025, 10, 2)
    assert h.matured(dt.date(2025, 10, 2), end) and h.labelled(dt.date(2025, 10, 2), end)
    assert not h.matured(dt.date(2025, 10, 3), end)
    assert Horizon.from_dict({"horizon_days": 60, "grace_days": 30, "seed": 0}) == h


def test_the_bands_cover_the_health_scale_without_gaps_and_match_the_tier_function():
    bands = tier_bands()
    assert bands[0][1] == MAX_HEALTH and bands[-1][0] == 0
    assert all(lo == next_hi for (lo, _, _), (_, next_hi, _) in zip(bands, bands[1:]))
    assert [k for _, _, k in bands] == list(TIER_KEYS)
    for lo, hi, key in bands:
        assert tier(lo) == key and (hi == MAX_HEALTH or tier(hi - 1) == key)


def test_labels_in_both_languages_and_unknown_keys_shown_as_they_are():
    assert [t.label("en") for t in TIERS] == ["Healthy", "Low risk", "Medium risk", "High risk"]
    assert tier_label("medium_risk", "zh-CN") == "中风险"
    assert tier_label("watch_list", "en") == "watch_list"
