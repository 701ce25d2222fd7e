"""The command line end to end: demo path, files written, exit codes.

The demo runs the real console entry point in a child process (the one end-to-end run of the whole
path); the smaller checks call the same ``churnwatch.cli.main`` in this process (``run_cli``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pandas as pd


def run(*args, home=None, timeout=900):
    cmd = [sys.executable, "-m", "churnwatch", *args]
    if home is not None:
        cmd += ["--home", str(home)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_demo_runs_the_whole_path_and_says_what_to_open_next(tmp_path, run_cli):
    home = tmp_path / "home"
    # the README's `churnwatch demo`, smaller (the default 2,000 x 24 is tests/features/test_demo_auc.py's)
    r = run("demo", "--accounts", "150", "--months", "18", "--seed", "3", home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    for step in ("1/10 demo data", "2/10 features and labels", "3/10 churn metrics", "4/10 train", "5/10 promote",
                 "registered model version 1", "version 1: promoted", "6/10 score", "scored", "alerts:",
                 "7/10 monitoring", "drifted features", "8/10 report", "9/10 churn diagnosis", "10/10 the team",
                 "retention tasks open:", "next", "churnwatch explain ACC-", "churnwatch app", "password:"):
        assert step in r.stdout
    assert (home / "churnwatch.yaml").exists()
    summary = json.loads((home / "reports" / "run-summary.json").read_text())
    assert summary["snapshots"]["rows"] > 0 and summary["snapshots"]["labelled_rows"] > 0
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        rows, accounts = con.execute("SELECT count(*), count(DISTINCT account_id) FROM snapshots").fetchone()
        dup = con.execute("SELECT count(*) FROM (SELECT account_id, as_of FROM snapshots "
                          "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    assert rows == summary["snapshots"]["rows"] and accounts > 50 and dup == 0
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        scored, dates = con.execute("SELECT count(DISTINCT account_id), count(DISTINCT as_of) "
                                    "FROM score_history").fetchone()
    assert scored > 50 and dates == 3  # a matured date, four weeks before the end, the end
    for written in ("monitoring/drift.html", "monitoring/drift.json", "diagnosis/diagnosis.json"):
        assert (home / "reports" / written).is_file(), written
    reports = sorted((home / "reports").glob("churn-report-*.html"))
    assert len(reports) == 2 and any(p.name.endswith(".zh-CN.html") for p in reports)
    metrics = pd.read_csv(home / "reports" / "churn-metrics.csv")
    assert len(metrics) >= 10
    assert metrics["customer_churn_rate"].between(0, 1).all()
    assert (metrics["churned"] <= metrics["accounts_start"]).all()

    # the same commands work on their own against the home folder's config (in this process)
    r = run_cli("features", "--as-of", metrics["month"].iloc[5][:10], "--home", home)
    assert r.returncode == 0, r.stderr[-2000:]
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        again = con.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    # an on-demand date adds (or replaces) that date's rows, never duplicates
    assert again >= rows


def test_rerunning_features_for_a_date_replaces_its_rows(tmp_path, run_cli):
    home = tmp_path / "h"
    data = tmp_path / "d"
    assert run_cli("demo-data", "--out", data, "--accounts", "60", "--months", "12").returncode == 0
    for _ in range(2):
        r = run_cli("features", "--data", data, "--as-of", "2024-08-07", "--home", home)
        assert r.returncode == 0, r.stderr[-2000:]
        # which churnwatch.yaml was read is said (a probe could not tell)
        assert f"config: the data folder's own {(data / 'churnwatch.yaml').resolve()}" in " ".join(r.stdout.split())
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        n, d = con.execute("SELECT count(*), count(DISTINCT account_id) FROM snapshots "
                           "WHERE as_of = DATE '2024-08-07'").fetchone()
    assert n == d > 0


def test_no_data_source_is_a_clear_usage_error(tmp_path, run_cli):
    r = run_cli("features", "--home", tmp_path / "empty")
    assert r.returncode == 2
    assert "no data source" in r.stderr and "Traceback" not in r.stderr


def test_bad_option_is_exit_2(tmp_path, run_cli):
    r = run_cli("features", "--as-of", "yesterday", "--data", tmp_path, "--home", tmp_path)
    assert r.returncode == 2
    r = run_cli("nonsense-command")
    assert r.returncode == 2


def test_bad_drift_date_is_a_clear_usage_error(tmp_path, run_cli):
    r = run_cli("demo-data", "--out", tmp_path / "d", "--accounts", "20", "--drift-from", "2025-13-01")
    assert r.returncode == 2
    assert "--drift-from '2025-13-01': expected a date as YYYY-MM-DD" in r.stderr
    assert not (tmp_path / "d").exists()
