"""A flat table's date written once the customer had left (a HubSpot renewal deal's close date, dated after the
export for churners: p42, 2026-12-06) neither sets the table's as-of date nor passes the leakage guard; a last
activity column running past a signup column's latest is honest and sets it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from core.settings import ProfileColumn, ProfileSettings
from training.leakage import feature_findings
from training.own_table import load_own_table

#: the CRM's last activity is dated before the outcome here: kept by name (a latest date is left out otherwise)
KEEP = ProfileSettings(columns={"Last Activity Date": ProfileColumn()})

EXPORT = dt.date(2026, 6, 30)


def _table(path, leak: bool):
    rng = np.random.default_rng(4)
    n = 800
    churn = rng.random(n) < 0.28
    day = pd.Timestamp(EXPORT)
    signup = day - pd.to_timedelta(rng.integers(60, 900, n), unit="D")  # the newest signup 60 days before
    active = day - pd.to_timedelta(np.where(churn, rng.integers(0, 120, n), rng.integers(0, 60, n)), unit="D")
    frame = pd.DataFrame({"Record ID": [f"R{i:05d}" for i in range(n)], "Churned": np.where(churn, "Yes", "No"),
                          "Seats": rng.integers(1, 40, n), "Signup Date": signup.strftime("%Y-%m-%d"),
                          "Last Activity Date": active.strftime("%Y-%m-%d")})
    if leak:  # the renewal deal closed lost after the export, for nine churners in ten and a few others
        closes = churn & (rng.random(n) < 0.9) | (~churn & (rng.random(n) < 0.02))
        close = day + pd.to_timedelta(rng.integers(5, 90, n), unit="D")
        frame["Renewal Deal Close Date"] = np.where(closes, close.strftime("%Y-%m-%d"), "")
    frame.to_csv(path, index=False)
    return path


def test_a_date_written_after_the_export_sets_no_as_of_date_and_is_refused(tmp_path):
    table = load_own_table(_table(tmp_path / "crm.csv", leak=True), "Churned", "Record ID", profile=KEEP)
    assert table.report["as_of"] == EXPORT.isoformat() and "'Last Activity Date'" in table.report["as_of_source"]
    late = table.report["dated_after_export"]["Renewal Deal Close Date"]
    assert late["others_latest"] == EXPORT.isoformat() and late["churned"] > 0.8 and late["rows"] > 150
    spec = next(f for f in table.catalogue.features if f.name == "Renewal Deal Close Date")
    assert spec.params["as_of_column"] == "late"
    rows = table.frame.assign(churn_label=table.y)
    assert (rows["Renewal Deal Close Date"].dropna() < 0).all()  # days since: dated after the as-of date
    found = feature_findings(rows, table.y, list(table.frame.columns), [], own=list(table.frame.columns),
                             dated=["Renewal Deal Close Date", "Signup Date", "Last Activity Date"])
    assert [(f.feature, f.check) for f in found] == [("Renewal Deal Close Date", "dated_after")]
    assert "dated after the as-of date on" in found[0].message() and "close date" in found[0].message()


def test_a_last_activity_running_past_the_signups_is_honest(tmp_path):
    table = load_own_table(_table(tmp_path / "crm.csv", leak=False), "Churned", "Record ID", profile=KEEP)
    assert table.report["as_of"] == EXPORT.isoformat() and "dated_after_export" not in table.report
    rows = table.frame.assign(churn_label=table.y)
    assert feature_findings(rows, table.y, list(table.frame.columns), [], own=list(table.frame.columns),
                            dated=["Signup Date", "Last Activity Date"]) == []


def test_train_refuses_the_table_naming_the_column_and_says_the_as_of_date(tmp_path, cli):
    table = _table(tmp_path / "crm.csv", leak=True)
    run = cli(tmp_path / "home", "train", "--table", str(table), "--label", "Churned", "--id", "Record ID")
    said = " ".join(run.stderr.split())
    assert run.returncode == 2, run.stdout[-2000:]
    assert "label leakage suspected, nothing registered: feature 'Renewal Deal Close Date': is dated after the " \
           "as-of date on" in said and "a date written once the customer had left" in said
    assert "Traceback" not in said
