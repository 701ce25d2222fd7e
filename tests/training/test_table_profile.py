"""``churnwatch.yaml``'s ``profile`` read by a flat table (``train --table``): a numeric code declared a
category (a city tier 1-3), columns excluded, a direction, and every wrong setting refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.settings import ProfileSettings
from training.own_table import TableError, describe_table, load_own_table, read_scoring_table


def shop_table(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tier = rng.integers(1, 4, rows)
    cashback = rng.gamma(3.0, 60.0, rows).round(2)
    risk = 0.4 * (tier == 3) - 0.004 * cashback + rng.normal(0, 0.5, rows)
    return pd.DataFrame({"CustomerID": [f"C{i:05d}" for i in range(rows)], "CityTier": tier,
                         "CashbackAmount": cashback, "Notes": rng.choice(["vip", "call back", "none"], rows),
                         "Churn": (risk > np.quantile(risk, 0.8)).astype(int)})


def write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    return path


def profile(**given) -> ProfileSettings:
    return ProfileSettings.model_validate(given)


def test_a_numeric_code_declared_a_category_is_one_at_training_and_at_scoring(tmp_path):
    path = write(tmp_path, shop_table())
    plain = load_own_table(path, "Churn", "CustomerID")
    assert "CityTier" in plain.report["numeric_columns"]  # without the setting: a number
    told = load_own_table(path, "Churn", "CustomerID",
                          profile=profile(columns={"CityTier": {"kind": "category"},
                                                   "CashbackAmount": {"direction": -1}},
                                          exclude=["Notes"]))
    report = told.report
    assert "CityTier" in report["categorical_columns"] and "CityTier" not in report["numeric_columns"]
    assert report["kinds_set"] == {"CityTier": "category"} and report["dropped_excluded"] == ["Notes"]
    assert sorted(told.frame["CityTier"].astype(str).unique()) == ["1", "2", "3"]
    specs = {f.name: f for f in told.catalogue.features}
    assert specs["CityTier"].type == "category" and specs["CityTier"].direction == 0
    assert specs["CashbackAmount"].direction == -1 and "Notes" not in specs
    lines = describe_table(report)
    assert "read as churnwatch.yaml's profile.columns says: CityTier (category)" in lines
    assert any(line.startswith("columns not used: Notes (excluded in churnwatch.yaml)") for line in lines)
    # scored from a Parquet file whose tier is a float column (a blank made it one): "1", not "1.0"
    later = shop_table(rows=20, seed=4).astype({"CityTier": "float64"})
    later.loc[0, "CityTier"] = np.nan
    later.to_parquet(tmp_path / "later.parquet")
    scored = read_scoring_table(tmp_path / "later.parquet", "CustomerID", told.catalogue)
    assert scored.rows["CityTier"].iloc[0] is None or pd.isna(scored.rows["CityTier"].iloc[0])
    assert set(scored.rows["CityTier"].iloc[1:]) <= {"1", "2", "3"}
    assert list(scored.rows["CityTier"].iloc[1:]) == [str(int(v)) for v in later["CityTier"].iloc[1:]]


@pytest.mark.parametrize(("given", "words"), [
    ({"exclude": ["Nots"]}, "profile names column 'Nots', which the table does not have"),
    ({"columns": {"CityTeir": {"kind": "category"}}}, "profile names column 'CityTeir'"),
    ({"columns": {"CityTier": {"kind": "date"}}}, "profile.columns.CityTier: kind: date is not read for a table"),
    ({"columns": {"CashbackAmount": {"unit": "currency"}}}, "profile.columns.CashbackAmount: unit is not read"),
    ({"columns": {"Notes": {"kind": "number"}}}, "column 'Notes' is set to kind: number in churnwatch.yaml, but"),
])
def test_wrong_profile_settings_are_refused_by_name(tmp_path, given, words):
    path = write(tmp_path, shop_table())
    with pytest.raises(TableError) as caught:
        load_own_table(path, "Churn", "CustomerID", profile=profile(**given))
    assert words in str(caught.value)


def test_the_cli_reads_the_profile_of_churnwatch_yaml(tmp_path, cli):
    path = write(tmp_path, shop_table(rows=600))
    config = tmp_path / "churnwatch.yaml"
    config.write_text("profile:\n  exclude: [Notes]\n  columns:\n    CityTier: {kind: category}\n", encoding="utf-8")
    trained = cli(tmp_path / "home", "train", "--table", str(path), "--label", "Churn", "--id", "CustomerID",
                  "--config", str(config))
    assert trained.returncode == 0, trained.stderr
    said = " ".join(trained.stderr.split())
    assert "CityTier (category)" in said and "Notes (excluded in churnwatch.yaml)" in said


def test_a_gzipped_semicolon_table_is_read_by_its_header(tmp_path):
    path = tmp_path / "shop.csv.gz"
    shop_table().to_csv(path, index=False, sep=";", decimal=",", compression="gzip")
    table = load_own_table(path, "Churn", "CustomerID")
    assert {"CityTier", "CashbackAmount"} <= set(table.report["numeric_columns"])
    assert table.frame["CashbackAmount"].sum() == pytest.approx(shop_table()["CashbackAmount"].sum())


def test_a_status_label_of_a_membership_export_is_read(tmp_path):
    """'cancelled' / 'canceled' and 'active' (a status column, as membership and billing tools export it) are
    churned and retained; before, the table was refused for 'cancelled'."""
    frame = shop_table()
    frame["status"] = np.where(frame.pop("Churn") == 1, "Cancelled", "active")
    frame.loc[frame.index[:3], "status"] = np.where(frame["status"].iloc[:3] == "Cancelled", "canceled ", "Active")
    table = load_own_table(write(tmp_path, frame), label="status", id_col="CustomerID")
    assert table.y.sum() == (frame["status"].str.strip().str.lower().isin(["cancelled", "canceled"])).sum() > 0
    frame["status"] = frame["status"].replace({"active": "paused"})
    with pytest.raises(TableError, match=r"cannot read \d+ value\(s\).*'paused'.*cancelled/active"):
        load_own_table(write(tmp_path, frame), label="status", id_col="CustomerID")


@pytest.mark.parametrize(("yes", "no"), [("Ja", "Nein"), ("oui", "non"), ("Sí", "No"), ("是", "否")])
def test_labels_in_other_languages_are_read(tmp_path, yes, no):
    """Probe p30: a German insurer's export says Ja/Nein; the table was refused until it was recoded."""
    frame = shop_table()
    churned = frame.pop("Churn") == 1
    frame["Gekuendigt"] = np.where(churned, yes, no)
    table = load_own_table(write(tmp_path, frame), label="Gekuendigt", id_col="CustomerID")
    assert table.y.tolist() == churned.astype(int).tolist()
