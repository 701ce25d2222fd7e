"""The IBM Telco churn table's exact shape (``tests/foreign/shapes.telco_exact``: its 21 columns,
``customerID`` like ``7590-VHVEG``, Yes/No strings, "No internet service", ``SeniorCitizen`` 0/1,
``TotalCharges`` as text with " " for the customers of tenure 0, ``Churn`` Yes/No, no date column)
through ``train --table`` -> ``promote`` -> ``score --table`` -> ``explain`` -> ``report``; the
comparison table naming the model that was registered (it said "lightgbm" for a logistic
regression or a blend); how the table was read, printed by ``train``; SeniorCitizen a flag."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from churnwatch.commands.training import model_label
from tests.foreign.inprocess import run_cli, step_ok
from tests.foreign.shapes import TELCO_COLUMNS, telco_exact
from training.own_table import describe_table, load_own_table
from training.reason_text import References, Row, word

pytestmark = pytest.mark.slow  # a module fixture of several CLI runs (tens of seconds)


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    work = tmp_path_factory.mktemp("telco")
    table, home = work / "WA_Fn-UseC_-Telco-Customer-Churn.csv", work / "home"
    df = telco_exact(n=1500, seed=5)
    df.to_csv(table, index=False)
    senior = df.loc[df.SeniorCitizen == 1, "customerID"].iloc[0]
    steps = {"train": run_cli("train", "--table", table, "--label", "Churn", "--id", "customerID", home=home)}
    steps["promote"] = run_cli("promote", home=home)
    steps["score"] = run_cli("score", "--table", table, "--as-of", "2026-06-30", home=home)
    steps["explain"] = run_cli("explain", df.customerID.iloc[0], home=home)
    steps["report"] = run_cli("report", "--out", work / "report.html", home=home)
    return {"home": home, "steps": steps, "senior": senior, "table": table}


def test_every_step_runs(path):
    for step in ("train", "promote", "score", "explain", "report"):
        step_ok(path, step)
    assert "Traceback" not in "".join(r.stderr for r in path["steps"].values())


def test_scores_are_proper_probabilities(path):
    with duckdb.connect(str(path["home"] / "store.duckdb"), read_only=True) as con:
        p = con.sql("SELECT churn_probability FROM score_history").df()["churn_probability"]
    assert len(p) == 1500 and p.between(0, 1, inclusive="neither").all()


def test_train_prints_how_the_table_was_read(path):
    r = step_ok(path, "train")
    out = " ".join((r.stderr + r.stdout).split())  # the steps go to stderr
    assert "read WA_Fn-UseC_-Telco-Customer-Churn.csv: 1,500 customers" in out
    assert "1 0/1 flag (SeniorCitizen)" in out and "blank values read as missing: TotalCharges 11" in out


def test_senior_citizen_is_worded_as_a_flag_not_against_a_typical_0(path):
    with duckdb.connect(str(path["home"] / "store.duckdb"), read_only=True) as con:
        texts = [r["text"] for row in con.execute("SELECT reasons_en, strengths_en FROM score_history").fetchall()
                 for j in row for r in json.loads(j)]
    senior = [t for t in texts if t.startswith("SeniorCitizen")]
    assert senior and set(senior) == {"SeniorCitizen: yes (1)"}


def test_the_comparison_names_the_registered_model(path):
    out = path["steps"]["train"].stdout
    first = [line for line in out.splitlines() if "│ model" in line]
    assert first and "lightgbm" not in out.split("churn by tier")[0]
    # the saved comparison names it as the terminal does (it said "lightgbm" for a logistic regression)
    saved = pd.read_csv(next((path["home"] / "reports").rglob("model_vs_baselines.csv")))
    assert saved["registered"].tolist() == [True, False]
    assert saved["model"][0].startswith("model: ") and "lightgbm" not in saved["model"][0]


def test_model_label():
    assert model_label("blend_w0") == "model: logistic regression (sign-constrained, chosen C)"
    assert model_label("blend_w0.25") == "model: blend, tree weight 0.25"
    assert model_label("lgbm_shallow") == "model: LightGBM (shallow)"
    assert model_label(None) == "model"


def test_the_exact_shape_is_read_as_a_user_means_it(tmp_path):
    df = telco_exact(n=400, seed=1, blank_tenure_zero=7)
    assert list(df.columns) == TELCO_COLUMNS and (df.TotalCharges == " ").sum() == 7
    df.to_csv(tmp_path / "t.csv", index=False)
    table = load_own_table(tmp_path / "t.csv", label="Churn", id_col="customerID")
    rep = table.report
    assert "SeniorCitizen" in rep["flag_columns"] and rep["blanks"]["TotalCharges"] == 7
    assert {"tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"} == set(rep["numeric_columns"])
    assert table.frame["TotalCharges"].isna().sum() == 7 and table.frame["TotalCharges"].dtype == "float64"
    assert str(table.frame["OnlineSecurity"].dtype) == "category"
    assert "No internet service" in set(table.frame["OnlineSecurity"].dropna())
    spec = table.catalogue["SeniorCitizen"]
    assert spec.unit == "flag"
    refs = References(typical={"SeniorCitizen": 0.0}, category_churn={}, overall_churn=0.27)
    assert word(spec, 1.0, +1, Row({}), refs, "en") == "SeniorCitizen: yes (1)"
    assert word(spec, 1.0, +1, Row({}), refs, "zh-CN") == "SeniorCitizen：是（1）"
    assert word(spec, 0.0, -1, Row({}), refs, "en") is None  # "not a senior" is no strength to word
    lines = describe_table(rep)
    assert lines[0].startswith("read t.csv: 400 customers") and "blank values read as missing: TotalCharges 7" in lines
