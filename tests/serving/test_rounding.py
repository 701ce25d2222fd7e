"""``training.rounding.round6``: the API's six decimals with arrays, the very floats ``round`` gives."""

from __future__ import annotations

import numpy as np
import pytest

from training.rounding import round6


def _as_round(values: list[float]) -> list[str]:
    return [repr(round(v, 6)) for v in values]


def test_random_values_of_every_size_round_as_round_does():
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.standard_normal(50_000) * scale for scale in (1e-6, 1e-3, 0.5, 30, 1e5, 1e12)])
    values = values.tolist()
    assert [repr(v) for v in round6(values)] == _as_round(values)


def test_values_at_and_beside_a_half_of_the_sixth_decimal_round_as_round_does():
    halves = [(k + 0.5) / 1e6 for k in range(-3000, 3000)]
    exact_ties = [k / 128 for k in range(-300, 300)]  # k/128 * 1e6 ends in exactly .5 for odd k
    beside = [float(np.nextafter(h, d)) for h in halves for d in (np.inf, -np.inf)]
    values = halves + exact_ties + beside
    got = round6(values)
    assert [repr(v) for v in got] == _as_round(values)
    assert round6([1 / 128] * 64)[0] == 0.007812  # half to even, as round


@pytest.mark.parametrize("special", [0.0, -0.0, -1e-9, float("inf"), float("-inf"), 1e300, -1e300, 5e-324, 2.0 ** 60])
def test_zeros_huge_and_infinite_values_round_as_round_does(special):
    values = [special] * 70 + [0.1234565] * 10
    assert [repr(v) for v in round6(values)] == _as_round(values)


def test_nan_stays_nan_and_short_lists_and_empty_work():
    assert np.isnan(round6([float("nan")] * 70)).all()
    assert round6([]) == []
    assert round6([0.12345651]) == [0.123457]
