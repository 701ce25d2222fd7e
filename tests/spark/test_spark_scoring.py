"""Scores on Spark (mapInPandas with the shipped bundle) equal the DuckDB path's: probabilities, tiers, reasons."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from core.store import connect, read_meta
from serving.batch import build_scores
from serving.spark_scoring import default_history_folder, spark_build_scores
from training.model import FeatureFrame

pytestmark = pytest.mark.slow


def assert_same_json(x, y, where: str) -> None:
    """Equal structure, order, keys and texts; numbers to 1e-9 relative (the snapshots' own tolerance:
    a logistic model's contributions move with the last bits of a feature value)."""
    if isinstance(x, dict):
        assert isinstance(y, dict) and list(x) == list(y), where
        for k in x:
            assert_same_json(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, list):
        assert isinstance(y, list) and len(x) == len(y), where
        for i, (p, q) in enumerate(zip(x, y, strict=True)):
            assert_same_json(p, q, f"{where}[{i}]")
    elif isinstance(x, float) or isinstance(y, float):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-12), where
    else:
        assert x == y, where


def test_spark_scores_equal_duckdb_scores(built):
    tmp, settings, bundle = built
    with connect(tmp / "duck.duckdb", read_only=True) as con:
        end = read_meta(con).data_end
    day = end - pd.Timedelta(days=7).to_pytimedelta()
    # a bundle that forgets the last region: its accounts are scored as missing there, and both engines say so
    known = bundle.frame.categories["region"]
    frame = FeatureFrame.from_dict({**bundle.frame.to_dict(),
                                    "categories": {**bundle.frame.categories, "region": known[:-1]}})
    bundle = dataclasses.replace(bundle, frame=frame)
    said: dict[str, list[str]] = {"duck": [], "spark": []}
    duck = build_scores(tmp / "d", settings, tmp / "duck.duckdb", bundle, [day, end], "v1", warn=said["duck"].append)
    spark = spark_build_scores(tmp / "d", settings, tmp / "spark.duckdb", bundle, [day, end], "v1",
                               master="local[2]", warn=said["spark"].append)
    assert said["spark"] == said["duck"]  # what `score` says about the rows (serving.coverage.batch_warnings)
    assert [line.split(":")[:2] for line in said["duck"]] == [["warning", " 'region'"]] * 2  # one line per date
    assert all(line.endswith(f"scored as missing: {known[-1]!r}") for line in said["duck"])
    assert list(spark) == [day, end]
    for d in (day, end):
        a, b = duck[d].sort_values("account_id").reset_index(drop=True), spark[d]
        assert len(a) == len(b) > 100
        assert a["account_id"].tolist() == b["account_id"].tolist()
        np.testing.assert_allclose(a["churn_probability"], b["churn_probability"], rtol=1e-9)
        for c in ("health_score", "tier", "playbook_action", "playbook_owner", "respond_within", "model_version"):
            assert a[c].tolist() == b[c].tolist(), c
        for c in ("reasons_en", "strengths_en", "reasons_zh", "strengths_zh"):
            assert_same_json([json.loads(x) for x in a[c]], [json.loads(x) for x in b[c]], c)
        assert b["as_of"].tolist() == [d] * len(b)
    # the reasons are there in both languages, and the history is Parquet partitioned by as-of date
    first = json.loads(spark[end]["reasons_zh"].iloc[0]) or json.loads(spark[end]["strengths_zh"].iloc[0])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in json.dumps(first, ensure_ascii=False))
    folder = default_history_folder(tmp / "spark.duckdb")
    assert {p.name for p in folder.iterdir() if p.is_dir()} >= {f"as_of={day:%Y-%m-%d}", f"as_of={end:%Y-%m-%d}"}
    assert len(pd.read_parquet(folder / f"as_of={end:%Y-%m-%d}")) == len(spark[end])
