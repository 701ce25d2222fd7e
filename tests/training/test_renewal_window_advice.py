"""``train`` advises a longer horizon when churn comes only where terms end and most rows' terms end
beyond the window (annual contracts at a 60-day horizon: a probe's B2B export without product events)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.train import _renewal_window


def _rows(later_share: float, churn_outside: int = 0, n: int = 1000, seed: int = 4):
    rng = np.random.default_rng(seed)
    days = np.where(rng.random(n) < later_share, rng.integers(91, 366, n), rng.integers(1, 91, n)).astype(float)
    y = ((days <= 90) & (rng.random(n) < 0.3)).astype(int)
    y[np.flatnonzero(days > 90)[:churn_outside]] = 1
    p = np.clip(0.05 + 0.5 * y * rng.random(n), 0.001, 0.999)
    return y, p, pd.DataFrame({"days_to_term_end": days})


def test_annual_contracts_at_a_short_horizon_get_the_advice():
    said: list[str] = []
    y, p, test = _rows(0.8)
    out = _renewal_window(y, p, test, 90, said.append)
    assert out["churned_outside"] == 0 and out["rows"] == int((test["days_to_term_end"] <= 90).sum())
    advice = [s for s in said if s.startswith("warning: every churn of the test rows came where a term ends within 90")]
    later = (test["days_to_term_end"] > 90).mean()
    assert len(advice) == 1 and f"{later:.0%} of the rows have their term's end later" in advice[0]
    assert "horizon_days" in advice[0]


def test_no_advice_when_churn_also_comes_between_renewals_or_terms_are_short():
    for later, outside in ((0.8, 5), (0.15, 0)):
        said: list[str] = []
        y, p, test = _rows(later, outside)
        _renewal_window(y, p, test, 90, said.append)
        assert not [s for s in said if s.startswith("warning:")], said


def test_half_the_book_beyond_the_window_gets_the_advice():
    """Probe p60: 60% annual contracts, 49.8% of the test rows with their term's end beyond the window, no advice."""
    said: list[str] = []
    y, p, test = _rows(0.5, seed=9)
    _renewal_window(y, p, test, 90, said.append)
    assert len([s for s in said if s.startswith("warning: every churn of the test rows came")]) == 1
