"""A European spreadsheet export (``tests/foreign/company_tables.py``: BOM, ``;``, decimal comma, money,
percentages, an Excel serial date, ``monthly``/``Monthly``) through the CLI as a newcomer runs it
(issue 12): train --table -> promote -> score --table -> explain -> report -> serve (POST /score and
/score_accounts on a real server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from serving.launch import free_port, wait_ready
from tests.foreign.company_tables import spreadsheet_table, write_spreadsheet
from tests.foreign.inprocess import run_cli
from tests.foreign.inprocess import step_ok as _ok

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # several CLI runs and a server start (about half a minute)


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    work = tmp_path_factory.mktemp("sheet")
    table, home = write_spreadsheet(spreadsheet_table(800, seed=9), work / "export.csv"), work / "home"
    steps = {"train": run_cli("train", "--table", table, "--label", "Churned", "--id", "Customer ID", home=home)}
    if steps["train"].returncode == 0:
        steps["promote"] = run_cli("promote", home=home)
        steps["score"] = run_cli("score", "--table", table, home=home)
        steps["explain"] = run_cli("explain", _first_id(table), home=home)
        steps["report"] = run_cli("report", home=home)
    return {"table": table, "home": home, "steps": steps, "work": work}


def _first_id(table: Path) -> str:
    with table.open(encoding="utf-8-sig") as fh:
        fh.readline()
        return fh.readline().split(";")[0]


def test_every_step_runs_and_says_how_the_columns_were_read(path):
    for step in ("train", "promote", "score", "explain", "report"):
        _ok(path, step)
    train = _ok(path, "train")
    said = " ".join((train.stderr + train.stdout).split())  # the reading is logged; rich wraps lines
    assert "numbers written as text, read as numbers: Monthly Fee ('" in said
    assert "Plan ('Monthly' and 'monthly' read as 'monthly')" in said
    # no churnwatch.yaml: the latest payment's date is left out by its name, the way to keep it said
    assert "Last Payment Date (a latest date (its name says last or latest)" in said
    assert "Notes (free text)" in said
    score = _ok(path, "score")
    # the latest sign-up's day (the export's, 11-30, was the latest payment's, left out)
    assert "scored as of 2026-11-10" in " ".join((score.stderr + score.stdout).split())
    assert "churn probability" in _ok(path, "explain").stdout
    report = " ".join(_ok(path, "report").stdout.split())  # a table's earlier scoring is an older export
    assert "tier movements need an earlier `churnwatch score --table OLDER.csv --as-of DATE`" in report


def test_the_service_scores_by_features_and_by_id(path):
    _ok(path, "score")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_HOME": str(path["work"] / "bentoml")}
    env.pop("MLFLOW_TRACKING_URI", None)
    # the service's settings from another file (serve --config): a one-feature account is scored
    service_config = path["work"] / "service.yaml"
    service_config.write_text("serving:\n  min_coverage: 0\n", encoding="utf-8")
    assert not (path["home"] / "churnwatch.yaml").exists()  # else the default would not be 0.5
    proc = subprocess.Popen([sys.executable, "-m", "churnwatch", "serve", "--home", str(path["home"]),
                             "--config", str(service_config),
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_ready(base, 120, proc), "the server never answered /readyz"
        features = {"Region": "North", "Plan": "Monthly", "Signup Date": 30, "Last Payment Date": 40,
                    "Monthly Fee": 1290, "Total Spend": 1290, "Discount": 25, "Usage Hours": 2.5,
                    "Support Tickets": 6, "NPS": 1, "Auto Renew": "FALSE", "Newsletter": "No", "Seats": 3}
        one = _post(base + "/score", {"accounts": [{"account_id": "X1", "features": features}]})[0]
        assert 0 < one["churn_probability"] < 1 and one["coverage"]["unknown"] == []  # 'Monthly' is 'monthly'
        # the numbers as the European export writes them, read as training read each column
        written = {**features, "Monthly Fee": "1.290,00 EUR", "Total Spend": "$1,290.00", "Discount": "25%",
                   "Usage Hours": "2,5", "Support Tickets": " 6 "}
        as_text = _post(base + "/score", {"accounts": [{"account_id": "X1", "features": written}]})[0]
        assert as_text["churn_probability"] == one["churn_probability"]
        lower = _post(base + "/score", {"accounts": [{"account_id": "X1",
                                                      "features": {**features, "Plan": "monthly"}}]})
        assert lower[0]["churn_probability"] == one["churn_probability"]
        # spaces around a category are read as training and `score --table` read them (probe p33: "Premium "
        # was an unseen plan, scored as missing); only spaces: missing, as a blank cell
        padded = _post(base + "/score", {"accounts": [{"account_id": "X1",
                                                       "features": {**features, "Plan": " Monthly  "}}]})[0]
        assert padded["churn_probability"] == one["churn_probability"] and padded["coverage"]["unknown"] == []
        nothing = {k: v for k, v in features.items() if k != "Plan"}
        missing = _post(base + "/score", {"accounts": [{"account_id": "X1", "features": nothing}]})[0]
        for blank in ("  ", "N/A", " - "):  # a blank cell as training read it (BLANK_TOKENS), not an unseen plan
            said = _post(base + "/score", {"accounts": [{"account_id": "X1", "features": {**features, "Plan": blank}}]})
            assert said[0]["churn_probability"] == missing["churn_probability"] and said[0]["warnings"] == [], blank
        [sparse] = _post(base + "/score", {"accounts": [{"account_id": "X2", "features": {"Seats": 3}}]})
        assert sparse["coverage"]["given"] == ["Seats"] and sparse["coverage"]["share"] < 0.5  # the default's bar
        assert sparse["tier"] in {"healthy", "low_risk", "medium_risk", "high_risk"} and "error" not in sparse
        by_id = _post(base + "/score_accounts", {"account_ids": [_first_id(path["table"])]})[0]
        assert 0 < by_id["churn_probability"] < 1 and by_id["tier"] in {"healthy", "low_risk", "medium_risk",
                                                                         "high_risk"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_serve_refuses_a_config_that_does_not_exist(path):
    said = run_cli("serve", "--config", path["work"] / "nowhere.yaml", home=path["home"])
    assert said.returncode == 2
    assert "nowhere.yaml does not exist" in " ".join((said.stdout + said.stderr).split())


def _post(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
