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


def test_a_category_in_another_case_than_training_saw_is_that_category():
    """Probe p37: a table re-exported with ``true``/``false`` where training read ``TRUE``/``FALSE`` lost two
    features (scored as missing); the re-check found `/score` mended and `score --table` not: the frame the
    model reads every row through (``FeatureFrame.respelled``, used by the bundle's scoring and explanations and
    by the service) reads it. A spelling two trained values share stays unseen."""
    from training.model import FeatureFrame, FeatureRows

    frame = FeatureFrame(names=["Auto Renew", "Plan", "Fee"], categorical=["Auto Renew", "Plan"],
                         categories={"Auto Renew": ["FALSE", "TRUE"], "Plan": ["PRO", "Pro", "basic"]})
    rows = pd.DataFrame({"Auto Renew": ["true", "FALSE", None, "maybe"], "Plan": ["pro", "Basic", "PRO", "x"],
                         "Fee": [1.0, 2.0, 3.0, 4.0]})
    out = frame.respelled(rows)
    assert out["Auto Renew"].tolist() == ["TRUE", "FALSE", None, "maybe"]
    assert out["Plan"].tolist() == ["pro", "basic", "PRO", "x"]  # 'pro' could be either: left unseen
    assert rows["Auto Renew"].tolist()[0] == "true"  # the caller's frame is not changed
    assert np.isnan(frame.matrix(rows)[0, 0]) and frame.matrix(out)[0, 0] == 1.0
    same = pd.DataFrame({"Auto Renew": ["TRUE"], "Plan": ["basic"], "Fee": [1.0]})
    assert frame.respelled(same) is same
    request = FeatureRows(["a"], ["Fee"], np.array([[1.0]]), {"Auto Renew": ["false"], "Plan": ["BASIC"]})
    assert {c: list(v) for c, v in frame.respelled(request).labels.items()} == {"Auto Renew": ["FALSE"],
                                                                                 "Plan": ["basic"]}


def test_whole_percentages_are_listed_among_the_numbers_written_as_text(tmp_path):
    """Probe p37: "12%" read right as 12, but a table whose separator the file decided listed only values with
    a '.' or ',' (``_written``), so its percentages were not said."""
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "Fee": [f"${x:,.2f}" for x in rng.uniform(50, 5000, n)],
                          "Discount": [f"{d}%" for d in rng.choice([0, 5, 10, 12], n)],
                          "Churned": rng.choice(["Yes", "No"], n)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    said = "\n".join(describe_table(load_own_table(tmp_path / "t.csv", "Churned", "id").report))
    assert "Discount ('" in said and "%' as " in said and "Fee ('$" in said


def test_a_requests_text_is_read_as_the_column_was_and_its_problems_named():
    """``/score`` of a table model (``read_sent_cells``): numbers with the column's separator, a unit or percent
    sign, blanks as missing, an age outside its bounds and text that is no number named with the row."""
    import dataclasses
    import datetime as dt

    from training.own_table import _date_spec, _spec, read_sent_cells
    from training.table_dates import DateReading

    fee = _spec("Fee", False, comma=True)
    age = dataclasses.replace(_spec("Age", False, comma=False), valid_range=(18.0, None))
    signup = _date_spec("Signup", DateReading("excel"))
    cells = [["1.290,50 EUR", "40", "46023"], [" N/A ", "12", "2026-01-01"], [12.5, "abc", None],
             ["12%", None, "soon"]]
    problems = read_sent_cells(cells, [fee, age, signup], dt.date(2026, 1, 11))
    assert problems == [(1, "Age", "'12' reads as 12, outside [18, inf]"),
                        (2, "Age", "'abc' does not read as a number as training read this column"),
                        (3, "Signup", "'soon' does not read as a date as training read this column, nor as an ISO "
                                      "date")]
    assert cells[0] == [1290.5, 40.0, 10.0] and cells[1][0] is None and cells[1][2] == 10.0  # serial 46023: Jan 1
    assert cells[2][0] == 12.5 and cells[3][0] == 12.0  # a number sent as a number stays; "12%" is 12


def _sheet(tmp_path, n: int = 200, seed: int = 8):
    """A hand-kept sheet (probe p58): ``TV Bundle`` written Yes, No, Y, N and y; ``Outages`` a number."""
    r = np.random.default_rng(seed)
    tv = r.choice(["Yes", "No", "Y", "N", "y"], n)
    outages = r.integers(0, 6, n).astype(str).astype(object)
    churned = np.where((np.isin(tv, ["No", "N"])) & (r.random(n) < 0.6), "Cancelled", "Active")
    frame = pd.DataFrame({"Customer ID": [f"ISP-{i:05d}" for i in range(n)], "TV Bundle": tv, "Outages (6m)": outages,
                          "Region": r.choice(["North", "South"], n), "Status": churned})
    frame.to_csv(tmp_path / "sheet.csv", index=False)
    return frame


def test_yes_and_no_written_short_and_long_are_one_category_at_training_scoring_and_the_service(tmp_path):
    """Probe p58: ``TV Bundle`` of Yes / No / Y / N was four categories (a waterfall said ``TV Bundle = n``)."""
    from training.model import FeatureRows
    from training.own_table import case_folded, categories_as_trained, read_scoring_table, yes_no_folded

    _sheet(tmp_path)
    table = load_own_table(tmp_path / "sheet.csv", label="Status", id_col="Customer ID")
    assert sorted(table.frame["TV Bundle"].cat.categories) == ["no", "yes"]
    said = "\n".join(describe_table(table.report))
    assert "TV Bundle ('N', 'No', 'Y', 'Yes' and 'y' read as 'no' and 'yes')" in said
    assert "Region" not in table.report["categories_case_folded"]  # North / South: as they are
    spec = table.catalogue["TV Bundle"]
    assert spec.params["case"] == "lower" and spec.params["yes_no"] == {"no": "no", "yes": "yes"}
    assert case_folded(table.catalogue) == ("TV Bundle",)
    assert yes_no_folded(table.catalogue) == {"TV Bundle": {"no": "no", "yes": "yes"}}
    pd.DataFrame({"Customer ID": ["a", "b", "c", "d"], "TV Bundle": ["n", "YES", " ", "maybe"],
                  "Outages (6m)": ["1", "2", "3", "0"], "Region": ["North"] * 4}).to_csv(tmp_path / "new.csv",
                                                                                        index=False)
    scored = read_scoring_table(tmp_path / "new.csv", "Customer ID", table.catalogue)
    assert scored.rows["TV Bundle"].tolist()[:2] == ["no", "yes"] and pd.isna(scored.rows["TV Bundle"][2])
    assert scored.rows["TV Bundle"][3] == "maybe"  # not a yes or no: unseen, as any other new value
    request = FeatureRows(["a", "b"], ["Outages (6m)"], np.array([[1.0], [2.0]]),
                          {"TV Bundle": np.array(["Y", "no"], dtype=object),
                           "Region": np.array(["N", "S"], dtype=object)})
    out = categories_as_trained(request, case_folded(table.catalogue), yes_no=yes_no_folded(table.catalogue))
    assert list(out.labels["TV Bundle"]) == ["yes", "no"] and list(out.labels["Region"]) == ["N", "S"]
    frame = categories_as_trained(pd.DataFrame({"TV Bundle": ["N", None]}), ("TV Bundle",),
                                  yes_no={"TV Bundle": {"no": "no", "yes": "yes"}})
    assert frame["TV Bundle"].tolist() == ["no", None]


def test_a_column_of_y_and_n_only_keeps_its_spelling_and_reads_a_re_exports_yes_as_it(tmp_path):
    """The review: a column of only Y and N at training scored a re-export's "Yes" as an unseen value."""
    from training.model import FeatureRows
    from training.own_table import _one_case, case_folded, categories_as_trained, read_scoring_table, yes_no_folded

    same, said, yes_no = _one_case(pd.Series(["Y", "N", "Y", None], dtype=object))
    assert same.tolist()[:3] == ["Y", "N", "Y"] and said is None and yes_no == {"yes": "Y", "no": "N"}
    folded, said, yes_no = _one_case(pd.Series(["Yes", "yes", "Maybe", "N"], dtype=object))
    assert yes_no is None and said == "'Yes' and 'yes' read as 'yes'"
    assert folded.tolist() == ["yes", "yes", "maybe", "n"]
    sheet = _sheet(tmp_path).assign(**{"TV Bundle": lambda f: f["TV Bundle"].map(
        {"Yes": "Y", "y": "Y", "Y": "Y", "No": "N", "N": "N"})})
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    table = load_own_table(tmp_path / "sheet.csv", label="Status", id_col="Customer ID")
    assert sorted(table.frame["TV Bundle"].cat.categories) == ["N", "Y"]  # as written
    assert yes_no_folded(table.catalogue) == {"TV Bundle": {"yes": "Y", "no": "N"}}
    assert "TV Bundle" not in case_folded(table.catalogue)
    pd.DataFrame({"Customer ID": ["a", "b", "c"], "TV Bundle": ["Yes", "no", "N"], "Outages (6m)": ["1", "2", "3"],
                  "Region": ["North"] * 3}).to_csv(tmp_path / "new.csv", index=False)
    scored = read_scoring_table(tmp_path / "new.csv", "Customer ID", table.catalogue)
    assert scored.rows["TV Bundle"].tolist() == ["Y", "N", "N"]
    request = FeatureRows(["a"], ["Outages (6m)"], np.array([[1.0]]),
                          {"TV Bundle": np.array(["yes"], dtype=object), "Region": np.array(["North"], dtype=object)})
    out = categories_as_trained(request, case_folded(table.catalogue), yes_no=yes_no_folded(table.catalogue))
    assert list(out.labels["TV Bundle"]) == ["Y"] and list(out.labels["Region"]) == ["North"]


def test_score_table_says_which_number_values_it_read_as_missing(tmp_path, caplog):
    """Probe p58: ``score --table`` read "3 outages" and "unknown" in a number column as missing without a word
    (training says it; the service refuses them)."""
    import logging

    from training.own_table import read_scoring_table

    _sheet(tmp_path)
    table = load_own_table(tmp_path / "sheet.csv", label="Status", id_col="Customer ID")
    pd.DataFrame({"Customer ID": ["a", "b", "c", "d"], "TV Bundle": ["Yes"] * 4,
                  "Outages (6m)": ["3 outages", "unknown", "", "2"], "Region": ["North"] * 4}).to_csv(
        tmp_path / "new.csv", index=False)
    with caplog.at_level(logging.WARNING):
        scored = read_scoring_table(tmp_path / "new.csv", "Customer ID", table.catalogue)
    assert scored.rows["Outages (6m)"].isna().tolist() == [True, True, True, False]
    said = [r.getMessage() for r in caplog.records if "not numbers" in r.getMessage()]
    assert len(said) == 1 and "column 'Outages (6m)': 2 value(s) not numbers, read as missing" in said[0]
    assert "'3 outages'" in said[0] and "'unknown'" in said[0]  # the blank is a blank, not counted
