"""A company's own date or number within 5% of its typical value is no reason: "Close Date: 228 days ago
(typical of those who stayed: 229 days ago)" said nothing (a probe's HubSpot deals)."""

from __future__ import annotations

from training.reason_text import near_typical


def test_a_value_near_its_typical_one_is_no_reason():
    assert near_typical(228.0, 229.0, 1.0) and near_typical(6_100_000.0, 6_061_000.0)
    assert not near_typical(3.0, 2.0) and not near_typical(322.0, 229.0, 1.0)
    assert near_typical(30.0, 31.0) and not near_typical(30.0, 33.0)
