"""`churnwatch drift` / `performance` / `screenshot` on a real store, MLflow registry and browser.

Reference resolution, outputs (HTML, JSON, MLflow run), exit codes 0 / 2 / 3 and refusals
of bad input (no report written).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import duckdb
import numpy as np
import pytest
import yaml
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from monitoring.reference import champion_bundle, reference_rows
from tests.monitoring.helpers import SUBSET, run_cli
from training.evaluation import ece
from training.registry import set_champion
from training.train import log_run, params_of


@pytest.fixture(scope="module")
def two_versions(monitored):
    """Version 2: the same model with a narrower test block (its last four weeks); v1 stays champion."""
    result = monitored.result
    v1_meta, v1_preds = dict(result.bundle.meta), result.bundle.test_predictions
    lo, hi = v1_meta["snapshots"]["test_block"]
    start = (dt.date.fromisoformat(hi) - dt.timedelta(days=27)).isoformat()
    result.bundle.meta = {**v1_meta, "snapshots": {**v1_meta["snapshots"], "test_block": [start, hi]}}
    result.bundle.test_predictions = v1_preds[v1_preds["as_of"] >= start].reset_index(drop=True)
    try:
        assert log_run(result, monitored.uri, monitored.artifacts, params_of(result)).version == 2
    finally:
        result.bundle.meta, result.bundle.test_predictions = v1_meta, v1_preds
    return {1: ([lo, hi], len(v1_preds)), 2: ([start, hi], int((v1_preds["as_of"] >= start).sum()))}


def test_drift_uses_the_champions_own_test_block_and_raises_the_alarm(monitored, two_versions, capsys,
                                                                      monkeypatch, tmp_path):
    home, out = monitored.home, tmp_path / "out"
    watch = {"drift_share": 0.1, "features": SUBSET}  # 30 features: Evidently's plots cost time per column
    (home / "churnwatch.yaml").write_text(yaml.safe_dump({"monitoring": watch}))
    try:
        code, stdout, stderr = run_cli(capsys, monkeypatch, "drift", "--home", home, "--out", out)
    finally:
        (home / "churnwatch.yaml").unlink()
    assert code == 3, stderr
    summary = json.loads((out / "drift.json").read_text())
    block, rows = two_versions[1]
    assert summary["model_version"] == "1" and summary["reference"]["test_block"] == block
    assert summary["reference"]["rows"] == rows  # v1's whole test block, not v2's four weeks
    assert summary["current"]["as_of"] == "2026-01-01" and summary["features"] == len(SUBSET)
    assert summary["alarm"] and summary["drift_share"] >= 0.1 and summary["thresholds"]["drift_share"] == 0.1
    assert summary["quality"]["unseen_categories"].get("region") == ["LATAM"]
    assert any(f.startswith("logins_") for f in summary["drifted"])
    assert "ALARM" in stdout and "drifted features" in stdout and "probability drift" in stdout
    html = (out / "drift.html").read_text()
    assert "churnwatch-summary" in html and "LATAM" in html

    runs = monitored.client.search_runs(
        [monitored.client.get_experiment_by_name("churnwatch-monitoring").experiment_id],
        filter_string="tags.kind = 'drift'")
    assert len(runs) == 1 and runs[0].data.tags["model_version"] == "1" and runs[0].data.tags["alarm"] == "true"
    assert runs[0].data.metrics["drift_share"] == pytest.approx(summary["drift_share"])
    arts = {a.path for a in monitored.client.list_artifacts(runs[0].info.run_id, "monitoring")}
    assert arts == {"monitoring/drift.html", "monitoring/drift.json"}

    # the rendered report: not blank, and the DOM holds Evidently's drift table
    png, dom = tmp_path / "drift.png", tmp_path / "drift-dom.html"
    code, stdout, stderr = run_cli(capsys, monkeypatch, "screenshot", out / "drift.html", "--out", png,
                                   "--dump-dom", dom)
    assert code == 0, stderr
    from churnwatch.browser import pixel_spread

    assert pixel_spread(png) > 200
    text = dom.read_text()
    assert "Dataset Drift" in text or "Data Drift" in text
    assert "logins_30d" in text and "Wasserstein" in text

    # when version 2 becomes champion, its own (narrower) test block is the reference
    set_champion(monitored.client, 2, "test")
    try:
        bundle = champion_bundle(monitored.client)
        assert bundle.meta["model_version"] == 2
        assert len(reference_rows(bundle, monitored.store)) == two_versions[2][1]
    finally:
        set_champion(monitored.client, 1, "test")


def test_no_champion_is_exit_2_with_a_clear_message(monitored, capsys, monkeypatch, tmp_path):
    out = tmp_path / "out"
    code, _, stderr = run_cli(capsys, monkeypatch, "drift", "--home", tmp_path / "empty-home",
                              "--store", monitored.store, "--out", out)
    assert code == 2 and "no champion model to monitor" in stderr and "churnwatch promote" in stderr
    assert not out.exists()


def _copy_store(monitored, tmp_path):
    target = tmp_path / "store.duckdb"
    shutil.copy(monitored.store, target)
    return target


def test_current_data_missing_features_or_empty_is_exit_2_and_no_report(monitored, capsys, monkeypatch, tmp_path):
    out = tmp_path / "out"
    store = _copy_store(monitored, tmp_path)
    with duckdb.connect(str(store)) as con:
        con.execute("ALTER TABLE snapshots DROP COLUMN logins_30d")
        con.execute("ALTER TABLE snapshots DROP COLUMN plan")
    code, _, stderr = run_cli(capsys, monkeypatch, "drift", "--home", monitored.home, "--store", store, "--out", out)
    assert code == 2 and "lacks 2 of the model's" in stderr and "logins_30d, plan" in stderr
    assert not out.exists()

    store = _copy_store(monitored, tmp_path)
    with duckdb.connect(str(store)) as con:
        con.execute("DELETE FROM snapshots WHERE as_of = DATE '2026-01-01'")
    code, _, stderr = run_cli(capsys, monkeypatch, "drift", "--home", monitored.home, "--store", store, "--out", out)
    assert code == 2 and "2026-01-01 is empty" in stderr
    assert not out.exists()

    store = _copy_store(monitored, tmp_path)
    with duckdb.connect(str(store)) as con:
        con.execute("DROP TABLE score_history")
    code, _, stderr = run_cli(capsys, monkeypatch, "drift", "--home", monitored.home, "--store", store, "--out", out)
    assert code == 2 and "no score history" in stderr and "churnwatch score" in stderr
    code, _, stderr = run_cli(capsys, monkeypatch, "drift", "--home", monitored.home, "--as-of", "2026-13-01")
    assert code == 2 and "--as-of" in stderr
    assert not out.exists()


def _matured(store):
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute("SELECT h.churn_probability AS p, h.tier, s.churn_label AS y FROM score_history h "
                           "JOIN snapshots s USING (account_id, as_of) WHERE s.labelled AND h.model_version = '1' "
                           "ORDER BY h.as_of, h.account_id").df()


def test_performance_equals_scikit_learn_on_the_matured_scores(monitored, capsys, monkeypatch, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, monkeypatch, "performance", "--home", monitored.home, "--out", out)
    s = json.loads((out / "performance.json").read_text())
    m = _matured(monitored.store)
    y, p = m["y"].to_numpy(dtype=int), m["p"].to_numpy()
    assert s["status"] == "evaluated" and s["current"]["rows"] == len(m) > 100 and 0 < y.sum() < len(y)
    assert s["maturity"]["matured_dates"] == ["2025-09-01"] and s["maturity"]["next_maturity"] == "2026-04-01"
    cur = s["current"]
    assert cur["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert cur["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert cur["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert cur["ece"] == pytest.approx(ece(y, p), abs=1e-12)
    for tier, d in cur["per_tier"].items():
        assert d["count"] == int((m["tier"] == tier).sum()) and d["churned"] == int(y[m["tier"] == tier].sum())
    assert s["training"]["roc_auc"] == monitored.bundle.meta["metrics"]["roc_auc"]
    assert s["change"]["brier"] == pytest.approx(cur["brier"] - s["training"]["brier"])
    assert code == (3 if s["alarm"] else 0), stderr
    assert "ROC-AUC" in stdout and "observed churn per tier" in stdout
    assert "churnwatch-summary" in (out / "performance.html").read_text()
    runs = monitored.client.search_runs(
        [monitored.client.get_experiment_by_name("churnwatch-monitoring").experiment_id],
        filter_string="tags.kind = 'performance'")
    assert runs and runs[0].data.metrics["roc_auc"] == pytest.approx(cur["roc_auc"])


def test_degraded_scores_raise_the_performance_alarm(monitored, capsys, monkeypatch, tmp_path):
    store, out = _copy_store(monitored, tmp_path), tmp_path / "out"
    with duckdb.connect(str(store)) as con:  # scores turned upside down: a model that ranks backwards
        con.execute("UPDATE score_history SET churn_probability = 1 - churn_probability")
    code, stdout, _ = run_cli(capsys, monkeypatch, "performance", "--home", monitored.home, "--store", store,
                              "--out", out)
    s = json.loads((out / "performance.json").read_text())
    assert code == 3 and s["alarm"] and s["current"]["roc_auc"] < 0.5
    assert any(r.startswith("ROC-AUC") for r in s["alarm_reasons"]) and "ALARM" in stdout


def test_performance_without_matured_scores_gives_no_verdict(monitored, capsys, monkeypatch, tmp_path):
    store, out = _copy_store(monitored, tmp_path), tmp_path / "out"
    with duckdb.connect(str(store)) as con:
        con.execute("DELETE FROM score_history WHERE as_of < DATE '2026-01-01'")
    code, stdout, _ = run_cli(capsys, monkeypatch, "performance", "--home", monitored.home, "--store", store,
                              "--out", out)
    assert code == 0 and "no verdict yet" in stdout and "2026-04-01" in stdout
    assert not out.exists()


def test_degradation_tolerances():
    from features.config import MonitoringSettings
    from monitoring.performance import degradation

    train = {"roc_auc": 0.80, "pr_auc": 0.30, "brier": 0.040, "ece": 0.010}
    cfg = MonitoringSettings()
    assert degradation(dict(train), train, cfg) == []
    worse = {"roc_auc": 0.74, "pr_auc": 0.24, "brier": 0.051, "ece": 0.061}
    assert [r.split()[0] for r in degradation(worse, train, cfg)] == ["ROC-AUC", "PR-AUC", "Brier", "ECE"]
    edge = {"roc_auc": 0.751, "pr_auc": 0.251, "brier": 0.0499, "ece": 0.0599}
    assert degradation(edge, train, cfg) == []
    assert np.isclose(cfg.max_brier_rise, 0.25)
