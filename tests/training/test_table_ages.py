"""A flat table's ``Age`` of 0 (an ISP CRM's "unknown", 337 customers in probe p18) was read as a baby's
age; an account's own age column already read values outside 1-120 as missing. A table's column named
as a person's age, whose non-zero values are mostly ages, now reads the same, at training and at
scoring, and ``describe_table`` says how many values it set aside."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.own_table import describe_table, load_own_table, read_scoring_table


def _table(path, rows: int = 400, seed: int = 2):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    age[:40] = 0  # unknown
    age[40] = 230  # a typo
    tenure = rng.integers(1, 60, rows)
    churned = rng.random(rows) < 1 / (1 + np.exp(-(1.5 - tenure / 15)))
    pd.DataFrame({"Customer": [f"C{k:04d}" for k in range(rows)], "Age": age, "Tenure Months": tenure,
                  "Churn": np.where(churned, "Yes", "No")}).to_csv(path, index=False)
    return path


def test_ages_outside_1_to_120_are_missing_at_training_and_at_scoring(tmp_path):
    path = _table(tmp_path / "isp.csv")
    table = load_own_table(path, "Churn", "Customer")
    assert table.frame["Age"].isna().sum() == 41 and table.frame["Age"].min() >= 18
    assert table.report["outside_range"]["Age"] == {"count": 41, "range": [1.0, 120.0], "examples": [0.0, 230.0]}
    assert "Age: 41 values outside 1-120 read as missing (not an age: 0, 230)" in describe_table(table.report)
    spec = {f.name: f for f in table.catalogue.features}
    assert spec["Age"].valid_range == (1.0, 120.0) and spec["Tenure Months"].valid_range == (None, None)
    scored = read_scoring_table(path, "Customer", table.catalogue).rows
    assert scored["Age"].isna().sum() == 41 and scored["Tenure Months"].notna().all()


def test_a_column_named_age_that_is_not_in_years_is_left_as_it_is(tmp_path):
    path = tmp_path / "days.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"Customer": [f"C{k}" for k in range(300)], "Age": rng.integers(200, 4000, 300),
                  "Churn": rng.choice(["Yes", "No"], 300)}).to_csv(path, index=False)  # days, not years
    table = load_own_table(path, "Churn", "Customer")
    assert table.frame["Age"].notna().all() and "outside_range" not in table.report
