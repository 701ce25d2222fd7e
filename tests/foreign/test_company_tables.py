"""Flat churn tables as companies export them (``tests/foreign/company_tables.py``), read by
``train --table`` as a new user's would be (issue 12): a bank's table with a row number and a customer
number, an e-commerce table with blanks, and a spreadsheet saved by a European Excel (BOM, ``;``,
decimal comma, money, percentages, an Excel serial date, categories in two cases)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.errors import TrainingError
from core.settings import ProfileColumn, ProfileSettings
from tests.foreign.company_tables import bank_table, ecommerce_table, spreadsheet_table, write_spreadsheet
from tests.foreign.inprocess import run_cli
from training.bundle import ModelBundle
from training.model import booster_names
from training.own_table import describe_table, load_own_table, money_of, read_scoring_table
from training.reason_text import is_own_number, render_value
from training.selection import grouped_folds, select_model

ROWS = 300


@pytest.fixture(scope="module")
def sheet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sheet")
    frame = spreadsheet_table(ROWS, seed=3)
    path = write_spreadsheet(frame, folder / "export.csv")
    # its owner knows the latest payment is dated before the outcome: kept by name (else left out as a latest date)
    kept = ProfileSettings(columns={"Last Payment Date": ProfileColumn()})
    return frame, path, load_own_table(path, "Churned", "Customer ID", profile=kept)


def _euro(text: pd.Series) -> pd.Series:
    return text.str.removesuffix(" EUR").str.replace(".", "", regex=False).str.replace(",", ".").astype(float)


def test_a_european_spreadsheet_is_read_column_by_column(sheet):
    """BOM, ';' and a decimal comma: before, pandas split the rows at the decimal commas and stopped
    with "Expected 3 fields in line 6, saw 4"."""
    frame, _, table = sheet
    assert table.report["label_counts"]["churned"] == int((frame["Churned"] == "Yes").sum())
    assert table.frame.index.name == "Customer ID"
    assert list(table.frame.index[:3]) == list(frame["Customer ID"][:3])


def test_money_percentages_and_decimal_commas_are_numbers(sheet):
    frame, _, table = sheet
    got = table.frame
    assert set(table.report["numeric_columns"]) >= {"Monthly Fee", "Total Spend", "Discount", "Usage Hours"}
    np.testing.assert_allclose(got["Monthly Fee"], _euro(frame["Monthly Fee"]).to_numpy())
    np.testing.assert_allclose(got["Total Spend"],
                               frame["Total Spend"].str.replace("[$,]", "", regex=True).astype(float).to_numpy())
    np.testing.assert_array_equal(got["Discount"], frame["Discount"].str.rstrip("%").astype(float).to_numpy())
    np.testing.assert_allclose(got["Usage Hours"], frame["Usage Hours"].str.replace(",", ".").astype(float).to_numpy())
    blanks = frame["Support Tickets"].isin(["N/A", "-"]).to_numpy()
    assert got["Support Tickets"].isna().to_numpy().tolist() == blanks.tolist()
    assert table.report["blanks"]["Support Tickets"] == int(blanks.sum())
    said = "\n".join(describe_table(table.report))
    assert "numbers written as text, read as numbers: Monthly Fee (" in said and "EUR' as " in said
    assert "Discount ('" in said and "%' as " in said


def test_a_percentage_is_worded_as_one(sheet):
    """'20%' is read as 20 and a reason shows it as written, "Discount: 20%", not "Discount: 20"."""
    _, _, table = sheet
    spec = table.catalogue["Discount"]
    assert spec.unit == "percent" and table.catalogue["Usage Hours"].unit == "value"
    assert render_value(spec, 20.0, "en")["value"] == "20%" and render_value(spec, 12.5, "zh-CN")["value"] == "12.5%"
    assert is_own_number(spec)


def test_money_is_worded_with_its_sign_and_cents(sheet):
    """A probe's CRM table: "$18.25" was worded "Monthly Charges: 18.2 (typical of those who stayed: 60.2)". A
    column written with one currency sign or code keeps it, and its cents, in the reasons."""
    _, _, table = sheet
    spend, fee = table.catalogue["Total Spend"], table.catalogue["Monthly Fee"]
    assert (spend.params["money"], fee.params["money"]) == ("$", "EUR") and is_own_number(spend)
    assert "money" not in table.catalogue["Discount"].params and "money" not in table.catalogue["Seats"].params
    assert render_value(spend, 18.25, "en")["value"] == "$18.25" and render_value(spend, 1290.0, "zh-CN")["value"] == \
        "$1,290"
    assert render_value(fee, 77.6, "en")["value"] == "77.60 EUR"
    # every code the number reader drops, in any case (the review); a sign or code on too few values: none
    assert [money_of(pd.Series(v)) for v in (["1.290,00 SEK", "12,50 SEK"], ["INR 1,200.50", "INR 3"],
                                              ["12.50 usd", "3 usd"], ["$1", "€2"], ["$1", "2", "3"])] == \
        ["SEK", "INR", "USD", None, None]
    assert render_value(spend, -5.5, "en")["value"] == "-$5.50"


def test_money_set_to_kind_number_keeps_its_sign(sheet):
    _, path, _ = sheet
    told = ProfileSettings(columns={"Total Spend": ProfileColumn(kind="number"),
                                    "Last Payment Date": ProfileColumn()})
    table = load_own_table(path, "Churned", "Customer ID", profile=told)
    assert table.catalogue["Total Spend"].params["money"] == "$"


def test_scoring_reads_the_decimal_separator_training_read(sheet, tmp_path):
    """'1,250' alone could be a thousand and more or one and a quarter: the column's separator is
    the one training decided (a comma here), kept in the catalogue."""
    frame, _, table = sheet
    assert table.catalogue["Usage Hours"].params["decimal"] == "comma"
    later = frame.head(3).copy()
    later["Usage Hours"] = ["1,250", "2,500", "10,000"]
    later["Plan"] = ["MONTHLY", "Annual", "annual"]
    path = write_spreadsheet(later, tmp_path / "later.csv")
    rows = read_scoring_table(path, "Customer ID", table.catalogue).rows
    assert rows["Usage Hours"].tolist() == [1.25, 2.5, 10.0]
    assert rows["Plan"].tolist() == ["monthly", "annual", "annual"]


def test_categories_in_two_cases_are_one(sheet):
    frame, _, table = sheet
    assert frame["Plan"].nunique() == 4  # monthly, Monthly, annual, Annual
    assert sorted(table.frame["Plan"].cat.categories) == ["annual", "monthly"]
    assert "Plan (" in "\n".join(describe_table(table.report))


def test_an_excel_serial_date_column_is_a_date(sheet):
    """46350 in 'Last Payment Date' is 2026-11-23 (days since 1899-12-30): read as days since the
    as-of date, and it sets the as-of date (the export's day), not read as the number 46350."""
    frame, _, table = sheet
    assert table.report["date_columns"] == ["Signup Date", "Last Payment Date"]
    assert table.catalogue["Last Payment Date"].params["read"] == "excel"
    paid = pd.Timestamp("1899-12-30") + pd.to_timedelta(frame["Last Payment Date"], "D")
    assert table.report["as_of"] == paid.max().date().isoformat()
    expected = (pd.Timestamp(table.report["as_of"]) - paid).dt.days.astype(float)
    np.testing.assert_array_equal(table.frame["Last Payment Date"], expected.to_numpy())


def test_free_text_is_listed_not_used(sheet):
    _, _, table = sheet
    assert {"Notes", "Company"} <= set(table.report["dropped_free_text"])
    assert "Notes" not in table.catalogue.names


@pytest.mark.parametrize(("id_col", "left_out"), [("CustomerId", "RowNumber"), ("RowNumber", "CustomerId")])
def test_row_numbers_and_customer_numbers_are_identifiers_not_numbers(tmp_path, id_col, left_out):
    """Before, ``RowNumber`` (1..n) and an 8-digit ``CustomerId`` were model features, read as numbers."""
    path = tmp_path / "bank.csv"
    frame = bank_table(ROWS, seed=1)
    frame["AccountRef"] = [f"AR-{i:07d}" for i in np.random.default_rng(0).permutation(ROWS)]  # text, all distinct
    frame.to_csv(path, index=False)
    table = load_own_table(path, "Exited", id_col)
    assert table.report["dropped_identifier"] == [left_out, "AccountRef"]
    assert left_out not in table.catalogue.names
    assert {"Balance", "EstimatedSalary", "CreditScore"} <= set(table.report["numeric_columns"])  # all distinct, kept
    assert table.report["dropped_personal"] == ["Surname"]  # a person's name, by its name
    assert f"{left_out} (identifier: a different value on every row)" in describe_table(table.report)[-1]
    assert (table.frame["Balance"] == 0.0).mean() > 0.2


def test_blanks_in_an_ecommerce_table_are_missing_and_counted(tmp_path):
    path = tmp_path / "shop.csv"
    frame = ecommerce_table(ROWS, seed=2)
    frame.to_csv(path, index=False)
    table = load_own_table(path, "Churn", "CustomerID")
    for col in ("Tenure", "HourSpendOnApp", "CouponUsed", "DaySinceLastOrder"):
        assert table.report["blanks"][col] == int(frame[col].isna().sum()) > 0
        assert table.frame[col].isna().sum() == frame[col].isna().sum()
    assert table.report["dropped_identifier"] == []


def test_category_values_that_differ_only_in_spaces_or_punctuation_are_named_not_merged(tmp_path):
    """Probe p33: 'Month to Month' beside 'Month-to-Month' stayed two categories without a word (only case
    variants are merged); they may be two values ('A+', 'A'), so training names them and keeps them apart."""
    path = tmp_path / "shop.csv"
    frame = ecommerce_table(ROWS, seed=2)
    frame["Contract"] = np.where(np.arange(ROWS) % 3 == 0, "Month to Month",
                                 np.where(np.arange(ROWS) % 3 == 1, "Month-to-Month", "One Year"))
    # free text (over 50 values) is no category: its near twins are not said (the second review)
    frame["Company"] = ["Acme Inc", "Acme, Inc."] + [f"Firm {i}" for i in range(ROWS - 2)]
    frame.to_csv(path, index=False)
    table = load_own_table(path, "Churn", "CustomerID")
    assert table.report["categories_near_twins"] == {"Contract": "'Month to Month' and 'Month-to-Month'"}
    assert "Company" in table.report["dropped_free_text"]
    assert sorted(table.frame["Contract"].cat.categories) == ["Month to Month", "Month-to-Month", "One Year"]
    said = "\n".join(describe_table(table.report))
    assert ("category values that differ only in spaces or punctuation, kept apart (merge them in the file if "
            "they are one value): Contract ('Month to Month' and 'Month-to-Month')") in said


def test_a_column_name_lightgbm_refuses_is_listed_with_the_way_out(tmp_path):
    """LightGBM stops on ``:`` in a feature name ("Do not support special JSON characters")."""
    path = tmp_path / "t.csv"
    frame = bank_table(ROWS, seed=4).rename(columns={"Balance": "Balance: EUR"})
    frame.to_csv(path, index=False)
    table = load_own_table(path, "Exited", "CustomerId")
    assert "Balance: EUR" not in table.catalogue.names
    assert "rename the column" in table.report["dropped_name"]["Balance: EUR"]
    assert "Balance: EUR (its name holds :" in describe_table(table.report)[-1]


def test_two_names_lightgbm_would_store_alike_keep_the_first(tmp_path):
    """LightGBM writes 'Credit Score' as 'Credit_Score': with both columns it stopped ("appears more than one
    time") and train failed after every tree candidate was skipped."""
    path = tmp_path / "t.csv"
    frame = bank_table(ROWS, seed=4)
    frame["Credit Score"] = frame["CreditScore"] + 1
    frame["Credit_Score"] = frame["CreditScore"] * 2
    frame.to_csv(path, index=False)
    table = load_own_table(path, "Exited", "CustomerId")
    assert "Credit Score" in table.catalogue.names and "Credit_Score" not in table.catalogue.names
    assert table.report["dropped_name"]["Credit_Score"] == ("LightGBM stores its name as 'Credit_Score', the name "
                                                            "it stores for column 'Credit Score': rename one of them")


def test_a_bundle_with_spaces_in_feature_names_loads(tmp_path):
    """LightGBM keeps 'Monthly Fee' as 'Monthly_Fee': the bundle's check compared the two and refused
    every such model at ``promote`` ("model.txt and features.json disagree on the feature order")."""
    assert booster_names(["Monthly Fee", "Plan"]) == ["Monthly_Fee", "Plan"]
    bigger = tmp_path / "big.csv"
    write_spreadsheet(spreadsheet_table(600, seed=5), bigger)
    home = tmp_path / "home"
    assert run_cli("train", "--table", str(bigger), "--label", "Churned", "--id", "Customer ID",
                   home=home).returncode == 0
    folder = next((home / "mlartifacts").rglob("bundle"))
    bundle = ModelBundle.load(folder)
    assert "Monthly Fee" in bundle.frame.names


def test_amounts_of_a_serial_dates_size_are_not_dates_without_date_in_the_name(tmp_path):
    """``since`` makes a name say date, but only a name with the word date (or dob) reads serial days."""
    path = tmp_path / "t.csv"
    frame = bank_table(ROWS, seed=6)
    frame["spend_since_signup"] = np.random.default_rng(1).integers(30_000, 70_000, ROWS)
    frame["renewal_date"] = np.random.default_rng(2).integers(45_000, 46_000, ROWS)
    frame.to_csv(path, index=False)
    table = load_own_table(path, "Exited", "CustomerId", as_of=dt.date(2026, 1, 1))
    assert "spend_since_signup" in table.report["numeric_columns"]
    assert table.catalogue["renewal_date"].params["read"] == "excel"


def test_a_csv_written_with_pandas_index_reads_and_lists_the_index(tmp_path):
    """``DataFrame.to_csv()`` writes its index as a first column without a name: pandas calls it
    ``Unnamed: 0``: pandas' row index by its name, left out and listed as such (``features.profile.PANDAS_INDEX``;
    before, as an identifier because it ran 0..n-1, which a filtered frame's index does not)."""
    from features.profile import PANDAS_INDEX

    path = tmp_path / "t.csv"
    write_spreadsheet(spreadsheet_table(ROWS, seed=8), path)
    frame = pd.read_csv(path, sep=";", encoding="utf-8-sig", dtype=str)
    frame.to_csv(path, sep=";")  # with the index
    table = load_own_table(path, "Churned", "Customer ID")
    assert table.report["dropped_name"]["Unnamed: 0"] == PANDAS_INDEX
    assert set(table.report["dropped_name"]) == {"Unnamed: 0", "Last Payment Date"}  # a latest date, unconfigured
    assert "Unnamed: 0" not in table.frame.columns and table.report["dropped_identifier"] == []


def test_when_lightgbm_refuses_every_candidate_training_says_why():
    """Before, every tree candidate was skipped with a warning and training died on ``max()`` of nothing
    ("max() arg is an empty sequence"); now a ``TrainingError`` quotes LightGBM."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a:b": rng.normal(size=600), "c": rng.normal(size=600)})
    y = (rng.random(600) < 0.3).astype(int)
    folds = grouped_folds(X, y, np.arange(600) // 3, k=3)
    with pytest.raises(TrainingError, match="LightGBM could not train any candidate: lgbm_default: .*JSON"):
        select_model(folds, len(y), list(X.columns), [], {}, [0, 0], seed=0)


def test_whole_amounts_with_a_thousands_dot_read_by_the_tables_decimal_comma(tmp_path):
    """Probe p30's insurer export: a deductible of 500, 1.000 and 2.500 EUR beside premiums of 379,15 was
    read as 500, 1.0 and 2.5 (the column alone shows no separator); the table's other number columns
    show a decimal comma, so its dots group thousands."""
    rng = np.random.default_rng(30)
    n = 200
    frame = pd.DataFrame({
        "Kundennummer": [f"{i:07d}" for i in range(n)],
        "Praemie": [f"{v:.2f}".replace(".", ",") for v in rng.uniform(100, 900, n)],
        "Selbstbeteiligung": rng.choice(["150", "500", "1.000", "2.500"], n),
        "Gekuendigt": rng.choice(["Yes", "No"], n, p=[0.3, 0.7])})
    path = tmp_path / "export.csv"
    frame.to_csv(path, sep=";", index=False)
    table = load_own_table(path, "Gekuendigt", "Kundennummer")
    expected = frame["Selbstbeteiligung"].str.replace(".", "", regex=False).astype(float).to_numpy()
    np.testing.assert_array_equal(table.frame["Selbstbeteiligung"].to_numpy(), expected)
    assert table.catalogue["Selbstbeteiligung"].params["decimal"] == "comma"
    said = "\n".join(describe_table(table.report))
    assert "as the table's other number columns show" in said
    # scored later with the separator training read
    later = tmp_path / "later.csv"
    frame.head(4).assign(Selbstbeteiligung=["1.000", "2.500", "500", "150"]).to_csv(later, sep=";", index=False)
    rows = read_scoring_table(later, "Kundennummer", table.catalogue).rows
    assert rows["Selbstbeteiligung"].tolist() == [1000.0, 2500.0, 500.0, 150.0]
    # a table of decimal points keeps reading a lone '1.000' as one
    point = frame.assign(Praemie=frame["Praemie"].str.replace(",", ".", regex=False))
    point.to_csv(tmp_path / "point.csv", sep=";", index=False)
    assert load_own_table(tmp_path / "point.csv", "Gekuendigt", "Kundennummer").frame["Selbstbeteiligung"].max() == 500
