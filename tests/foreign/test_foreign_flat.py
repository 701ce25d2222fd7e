"""A flat churn table with a high base rate (~26%), Telco-shaped, through the CLI (issue 12):
train --table -> promote -> score --table -> explain; and a leaky column refused."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmarks.foreign import newest, paired_bootstrap, score_history_extremes, table_baseline
from benchmarks.foreign import run_cli as child_run
from demo.flat import write_flat_table
from tests.foreign.inprocess import run_cli
from tests.foreign.inprocess import step_ok as _ok

ROWS = 3000


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    work = tmp_path_factory.mktemp("flat")
    table, home = work / "churn_table.csv", work / "home"
    # the first step is the console entry point in a real child process; the rest run the same
    # ``churnwatch.cli.main`` in this process (tests/foreign/inprocess.py): one import of the stack
    steps = {"demo-data": child_run("demo-data", "--kind", "flat", "--out", str(work), "--accounts", str(ROWS))}
    steps["train"] = run_cli("train", "--table", str(table), "--label", "Churn", "--id", "customer_id",
                             "--cross-validate", "3", home=home)
    if steps["train"].returncode == 0:
        steps["promote"] = run_cli("promote", home=home)
        steps["score"] = run_cli("score", "--table", str(table), home=home)
        if steps["score"].returncode == 0:
            top = score_history_extremes(home / "store.duckdb")[1]
            steps["explain"] = run_cli("explain", top, home=home)
    return {"table": table, "home": home, "steps": steps}


def test_every_step_runs_and_speaks_of_customers_not_time(path):
    for step in ("demo-data", "train", "promote", "score", "explain"):
        _ok(path, step)
    out = path["steps"]["train"].stdout
    assert "out-of-time" not in out and "accounts x dates" not in out
    assert "not promoted" not in path["steps"]["promote"].stdout


def test_high_base_rate_keeps_probabilities_inside_and_tiers_populated(path):
    _ok(path, "train")
    preds = pd.read_csv(newest(path["home"], "test_predictions.csv"), dtype={"account_id": str})
    assert preds["churn_label"].mean() > 0.2
    p = preds["churn_probability"]
    assert ((p > 0) & (p < 1)).all()
    counts = preds["tier"].value_counts()
    assert (counts > 0).sum() >= 3, counts.to_dict()  # 4 x base rate > 1 must not empty the map
    assert counts.max() < 0.8 * len(preds)


def test_the_chosen_model_does_not_lose_to_a_logistic_regression(path):
    _ok(path, "train")
    preds = pd.read_csv(newest(path["home"], "test_predictions.csv"), dtype={"account_id": str})
    p_lr = table_baseline(path["table"], "Churn", "customer_id", preds)
    y = preds["churn_label"].to_numpy(int)
    diff, lo, hi = paired_bootstrap(y, preds["churn_probability"].to_numpy(float), p_lr, n=300)
    assert hi >= 0, f"model - logistic ROC-AUC {diff:+.3f}, 95% interval [{lo:+.3f}, {hi:+.3f}]"


def test_a_leaky_column_is_refused_and_allowed_only_by_name(tmp_path):
    table = write_flat_table(tmp_path / "leaky.csv", rows=1500, leaky=True)
    home = tmp_path / "home"
    args = ("train", "--table", str(table), "--label", "Churn", "--id", "customer_id")
    r = run_cli(*args, home=home)
    assert r.returncode == 2 and "exit_survey_score" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(*args, "--allow-leaky-feature", "exit_survey_score", home=home)
    assert r.returncode == 0, (r.stderr or r.stdout)[-1500:]
    r = run_cli("promote", home=home)
    assert "not promoted" in r.stdout or r.returncode != 0


def test_cross_validation_judges_every_customer_and_is_logged(path):
    _ok(path, "train")
    out = path["steps"]["train"].stdout + path["steps"]["train"].stderr
    assert out.count("cross-validation: fold ") == 3 and f"cross-validated over all {ROWS:,} customers (3 folds" in out
    ece = float(re.search(r"cross-validated calibration: ECE (\d\.\d{4})", out).group(1))
    rates = [float(r) for r in re.findall(r"(?:healthy|low_risk|medium_risk|high_risk) (\d+\.\d)%",
                                          out.split("cross-validated churn by tier:")[1].splitlines()[0])]
    assert len(rates) == 4 and rates == sorted(rates)  # churn rises across the tiers on all customers
    client = MlflowClient(f"sqlite:///{path['home'] / 'mlflow.db'}")
    metrics = client.get_run(client.get_model_version("churnwatch", "1").run_id).data.metrics
    assert round(metrics["cv_ece"], 4) == ece and metrics["cv_base_rate"] == pytest.approx(0.26, abs=0.03)
    assert metrics["cv_vs_logistic_roc_auc_lo"] <= metrics["cv_vs_logistic_roc_auc_diff"] <= \
        metrics["cv_vs_logistic_roc_auc_hi"]


@pytest.mark.parametrize("args, words", [((), "--cross-validate K goes with --table FILE"),
                                         (("--table", "T", "--label", "Churn", "--id", "customer_id"),
                                          "2 to 10 folds")])
def test_cross_validate_out_of_place_or_range_is_refused(path, tmp_path, args, words):
    args = tuple(str(path["table"]) if a == "T" else a for a in args)
    r = run_cli("train", *args, "--cross-validate", "1" if args else "3", home=tmp_path / "h")
    assert r.returncode == 2 and words in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr
