"""The standing cancellation request (tests/features/test_standing_request.py) and the unknown event features
before an account's first product event (tests/features/test_untracked_accounts.py) are the same on Spark."""

from __future__ import annotations

import pytest

from tests.features.test_standing_request import NAMED, standing_rows
from tests.features.test_untracked_accounts import USAGE, untracked_rows
from tests.spark.test_spark_features import assert_same_rows

pytestmark = pytest.mark.slow


def test_spark_builds_the_same_flag(tmp_path, spark):
    duck = standing_rows(tmp_path / "duck", NAMED)
    on_spark = standing_rows(tmp_path / "spark", NAMED, engine="spark")
    assert on_spark.index.tolist() == duck.index.tolist()
    assert on_spark["cancel_request_standing"].astype(int).tolist() == \
        duck["cancel_request_standing"].astype(int).tolist()
    assert duck["cancel_request_standing"].sum() > 5


def test_spark_leaves_the_same_accounts_unknown_before_their_first_product_event(tmp_path, spark):
    duck_built, duck = untracked_rows(tmp_path / "duck")
    spark_built, on_spark = untracked_rows(tmp_path / "spark", engine="spark")
    assert_same_rows(duck.reset_index(), on_spark.reset_index())
    # 28 untracked, the requester, the e-mailed and the stray, twice; late in March
    assert duck["logins_30d"].isna().sum() == 2 * 31 + 1
    assert on_spark[USAGE].isna().sum().tolist() == duck[USAGE].isna().sum().tolist()
    assert [w for w in spark_built.validation.warnings if "no product event" in w] == \
        [w for w in duck_built.validation.warnings if "no product event" in w] != []
