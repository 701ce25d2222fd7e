"""``explain``'s value column writes numbers as people read them, never in exponent notation (a probe's
bank export showed ``Balance (EUR) = 1.16e+05``)."""

from __future__ import annotations

import pytest

from churnwatch.commands.insights import _value


@pytest.mark.parametrize(("value", "shown"), [
    (115553.61, "115,554"), (-3456.7, "-3,457"), (7078.9, "7,079"), (43.0, "43"), (2.345, "2.35"),
    (12.5, "12.5"), (0.5, "0.5"), (0.01234, "0.0123"), (1e9, "1,000,000,000"), (None, "n/a"), ("Yes", "Yes"),
])
def test_explain_values(value, shown):
    assert _value(value) == shown
