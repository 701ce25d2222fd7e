"""A flat table's blanks are counted in every column read from text, not only in its number columns.

A gym's export had ' ' for 191 genders and 113 birth dates; ``train --table`` listed the blanks of
its number columns only (``blank values read as missing: Distance to Club (km) 334, ...``), though
the text and date blanks were read as missing all the same."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.own_table import describe_table, load_own_table


def test_blanks_of_categories_dates_and_numbers_are_counted(tmp_path):
    n = 60
    r = np.random.default_rng(0)
    gender = r.choice(["Female", "Male", "Other"], n).astype(object)
    gender[[1, 7, 30]] = " "
    born = pd.to_datetime("1960-01-01") + pd.to_timedelta(r.integers(0, 15_000, n), unit="D")
    birth = born.strftime("%Y-%m-%d").to_numpy().astype(object)
    birth[[2, 40]] = ""
    fee = np.round(r.uniform(20, 60, n), 2).astype(str).astype(object)
    fee[[3, 4, 5, 50]] = "N/A"
    path = tmp_path / "gym.csv"
    pd.DataFrame({"Member No": [f"{i:06d}" for i in range(n)], "Gender": gender, "Date of Birth": birth,
                  "Monthly Fee": fee, "Churned": ["Yes", "No", "No"] * (n // 3)}).to_csv(path, index=False)

    table = load_own_table(path, label="Churned", id_col="Member No", as_of=pd.Timestamp("2026-11-30").date())

    assert "blank values read as missing: Gender 3, Date of Birth 2, Monthly Fee 4" in describe_table(table.report)
    assert table.report["blanks"] == {"Gender": 3, "Date of Birth": 2, "Monthly Fee": 4}
    # read as missing, as before
    assert table.frame["Gender"].isna().sum() == 3 and table.frame["Date of Birth"].isna().sum() == 2
