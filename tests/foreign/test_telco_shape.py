"""An IBM-Telco-shaped churn table (``customerID``, Yes/No strings, "No internet service",
``SeniorCitizen`` 0/1, ``TotalCharges`` as text with blank strings for new customers, ``Churn``
Yes/No, ~25% churn) through ``train --table`` -> ``promote`` -> ``score --table`` -> ``explain``,
and the comparison table naming the model that was registered (it said "lightgbm" for a
logistic regression or a blend)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from churnwatch.commands.training import model_label
from tests.foreign.inprocess import run_cli

pytestmark = pytest.mark.slow  # a module fixture of several CLI runs (tens of seconds)


def telco(n: int = 1500, seed: int = 5) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    tenure = r.integers(0, 73, n)
    contract = r.choice(["Month-to-month", "One year", "Two year"], n, p=[.55, .21, .24])
    internet = r.choice(["DSL", "Fiber optic", "No"], n, p=[.34, .44, .22])
    security = np.where(internet == "No", "No internet service", np.where(r.random(n) < .35, "Yes", "No"))
    monthly = np.round(20 + (internet == "DSL") * 25 + (internet == "Fiber optic") * 50 + r.normal(0, 8, n), 2)
    senior = (r.random(n) < .16).astype(int)
    logit = (-0.8 + 1.3 * (contract == "Month-to-month") - 1.2 * (contract == "Two year") - 0.035 * tenure
             + 0.7 * (internet == "Fiber optic") - 0.5 * (security == "Yes") + 0.4 * senior)
    churn = r.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({
        "customerID": [f"{1000 + i}-{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}XQZ" for i in range(n)],
        "gender": r.choice(["Female", "Male"], n), "SeniorCitizen": senior,
        "Partner": np.where(r.random(n) < .48, "Yes", "No"), "tenure": tenure, "InternetService": internet,
        "OnlineSecurity": security, "Contract": contract,
        "PaymentMethod": r.choice(["Electronic check", "Mailed check", "Bank transfer (automatic)"], n),
        "MonthlyCharges": monthly,
        "TotalCharges": np.where(tenure == 0, " ", np.round(monthly * tenure, 2).astype(str)),
        "Churn": np.where(churn, "Yes", "No")})


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    work = tmp_path_factory.mktemp("telco")
    table, home = work / "WA_Fn-UseC_-Telco-Customer-Churn.csv", work / "home"
    telco().to_csv(table, index=False)
    steps = {"train": run_cli("train", "--table", table, "--label", "Churn", "--id", "customerID", home=home)}
    steps["promote"] = run_cli("promote", home=home)
    steps["score"] = run_cli("score", "--table", table, "--as-of", "2026-06-30", home=home)
    steps["explain"] = run_cli("explain", "1000-AAXQZ", home=home)
    return {"home": home, "steps": steps}


def test_every_step_runs(path):
    for step, r in path["steps"].items():
        assert r.returncode == 0, f"{step}: {(r.stderr or r.stdout)[-1200:]}"
    assert "Traceback" not in "".join(r.stderr for r in path["steps"].values())


def test_scores_are_proper_probabilities(path):
    with duckdb.connect(str(path["home"] / "store.duckdb"), read_only=True) as con:
        p = con.sql("SELECT churn_probability FROM score_history").df()["churn_probability"]
    assert len(p) == 1500 and p.between(0, 1, inclusive="neither").all()


def test_the_comparison_names_the_registered_model(path):
    out = path["steps"]["train"].stdout
    first = [line for line in out.splitlines() if "│ model" in line]
    assert first and "lightgbm" not in out.split("churn by tier")[0]


def test_model_label():
    assert model_label("blend_w0") == "model: logistic regression alone"
    assert model_label("blend_w0.25") == "model: blend, tree weight 0.25"
    assert model_label("lgbm_shallow") == "model: LightGBM (shallow)"
    assert model_label(None) == "model"
