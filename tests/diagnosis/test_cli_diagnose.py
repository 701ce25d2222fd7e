"""`churnwatch diagnose` on a tiny hand-built data folder: one usage error through the real console
entry point (a child process), the rest through ``churnwatch.cli.main`` in this process (``run_cli``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.diagnosis.test_diagnosis_figures import ACCOUNTS, EVENTS, FEEDBACK, SUBS
from tests.tiny import frame, write_tables


def real_run(*args):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "churnwatch", "diagnose", *args], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture
def run(run_cli):
    return lambda *args: run_cli("diagnose", *args)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tables(tmp_path_factory.mktemp("cli") / "d", {
        "subscriptions": SUBS, "events": EVENTS, "accounts": ACCOUNTS, "churn_feedback": FEEDBACK})


def test_a_window_too_close_to_the_data_end_exits_2_with_a_message(data, tmp_path, run):
    r = real_run("--data", str(data), "--home", str(tmp_path / "h"), "--start", "2024-02-01", "--end", "2024-12-15")
    assert r.returncode == 2
    assert "error:" in r.stderr and "could still renew" in r.stderr
    r = run("--data", str(data), "--home", str(tmp_path / "h"), "--start", "2024-02-01")
    assert r.returncode == 2 and "--start and --end go together" in r.stderr


def test_a_run_writes_the_tables_and_prints_the_summary(data, tmp_path, run):
    out = tmp_path / "out"
    r = run("--data", str(data), "--home", str(tmp_path / "h"), "--start", "2024-02-01", "--end", "2024-05-01",
            "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    # a1, a3, a6 of a1, a2, a3, a5, a6; Wilson(3/5) = (0.230724, 0.882378)
    assert "overall: 3 of 5 accounts churned = 60.0% (95% Wilson 23.1%-88.2%)" in r.stdout
    assert "exit interviews in the window: 3 (coverage 100% of churns)" in r.stdout
    assert "closed loop: skipped (no interventions in the data)" in r.stdout
    for name in ("churn-by-segment.csv", "churn-over-time.png", "exit-reasons.csv", "diagnosis.json"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "diagnosis.json").read_text())["accounts"] == 5


def test_interviews_without_a_churn_in_the_window_do_not_crash(data, tmp_path, run):
    # June 2024: no relationship ends in (Jun 1, Jul 1], a4's interview is dated Jul 1: coverage undefined
    r = run("--data", str(data), "--home", str(tmp_path / "h"), "--start", "2024-06-01", "--end", "2024-07-01",
            "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "exit interviews in the window: 1 (no churn dated in the window to cover)" in r.stdout
    assert "survival by signup cohort" in r.stdout


def test_the_companys_own_category_columns_are_segments_too(tmp_path, run):
    """Probe p36: an acquisition channel of the accounts' own (37.5% churn on paid social, 11.7% on referrals)
    was never tested, and the diagnosis said no segment differs. An own category column is a dimension; a
    free-text or number column is not."""
    channel = {"a1": "paid_social", "a3": "paid_social", "a6": "paid_social", "a2": "referral", "a5": "referral",
               "a4": "referral"}
    accounts = frame("accounts", ACCOUNTS).assign(acquisition_channel=lambda d: d["account_id"].map(channel),
                                                  pets=2.0)
    data = write_tables(tmp_path / "d", {"subscriptions": SUBS, "events": EVENTS, "accounts": accounts})
    out = tmp_path / "out"
    r = run("--data", str(data), "--home", str(tmp_path / "h"), "--start", "2024-02-01", "--end", "2024-05-01",
            "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    segments = pd.read_csv(out / "churn-by-segment.csv")
    own = segments[segments["dimension"] == "acquisition_channel"].set_index("value")
    assert own.loc["paid_social", ["accounts", "churned"]].tolist() == [3, 3]  # a1, a3, a6 all churned
    assert own.loc["referral", ["accounts", "churned"]].tolist() == [2, 0]  # a2, a5 (a4 signed up later)
    assert "pets" not in set(segments["dimension"])
    assert segments["dimension"].tolist().index("acquisition_channel") > segments["dimension"].tolist().index("plan")
