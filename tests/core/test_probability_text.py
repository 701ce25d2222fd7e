"""A churn probability is never shown as certain unless it is (calibration keeps every one strictly
between 0 and 1): ">99.9%" and "<0.1%", not "100.0%" and "0.0%" (two probes read both)."""

from __future__ import annotations

import pytest

from core.vocabulary import probability_text


@pytest.mark.parametrize(("p", "shown"), [(0.9996, ">99.9%"), (0.00039, "<0.1%"), (0.1234, "12.3%"), (1.0, "100.0%"),
                                         (0.0, "0.0%"), (0.9994, "99.9%"), (None, "–"), (float("nan"), "–")])
def test_a_probability_is_never_shown_as_certain_unless_it_is(p, shown):
    assert probability_text(p) == shown
