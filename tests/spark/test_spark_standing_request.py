"""The standing cancellation request is the same on Spark (tests/features/test_standing_request.py)."""

from __future__ import annotations

import pytest

from tests.features.test_standing_request import NAMED, standing_rows

pytestmark = pytest.mark.slow


def test_spark_builds_the_same_flag(tmp_path, spark):
    duck = standing_rows(tmp_path / "duck", NAMED)
    on_spark = standing_rows(tmp_path / "spark", NAMED, engine="spark")
    assert on_spark.index.tolist() == duck.index.tolist()
    assert on_spark["cancel_request_standing"].astype(int).tolist() == \
        duck["cancel_request_standing"].astype(int).tolist()
    assert duck["cancel_request_standing"].sum() > 5
