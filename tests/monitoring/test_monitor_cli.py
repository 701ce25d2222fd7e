"""`churnwatch drift` / `performance` / `screenshot` on a real store, MLflow registry and browser.

Reference resolution, outputs (HTML, JSON, MLflow run), exit codes 0 / 2 / 3 and refusals
of bad input (no report written).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from churnwatch.commands.monitoring import run_drift
from features.pipeline import build_snapshots
from monitoring.errors import MonitoringError
from monitoring.reference import champion_bundle, reference_rows
from serving.batch import score_as_of
from tests.monitoring.helpers import SUBSET, run_cli
from training.bundle import ModelBundle
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
    assert f"vs the champion's test block {block[0]} .. {block[1]} (" in " ".join(stdout.split())  # a season apart?
    assert ("note: the features drifted but the predicted probabilities did not" in " ".join(stdout.split())) == (
        not summary["probability"]["drifted"])
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
    text = re.sub(r"<script\b.*?</script>", "", dom.read_text(), flags=re.S | re.I)  # Evidently's JSON lives there
    assert "Data Drift" in text
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td\b[^>]*>(.*?)</td>", text, flags=re.S)]
    assert summary["drifted"][0] in cells and any("Wasserstein" in c for c in cells)

    # when version 2 becomes champion, its own (narrower) test block is the reference
    set_champion(monitored.client, 2, "test")
    try:
        bundle = champion_bundle(monitored.client)
        assert bundle.meta["model_version"] == 2
        assert len(reference_rows(bundle, monitored.store)) == two_versions[2][1]
    finally:
        set_champion(monitored.client, 1, "test")


def test_drift_compares_the_champions_probabilities_after_a_promotion(monitored, tmp_path):
    """History rows scored by another version (here: version 2, constant 0.5) are re-scored
    with the champion (version 1) before the comparison, and the report says so."""
    store, cfg = _copy_store(monitored, tmp_path), tmp_path / "cw.yaml"
    cfg.write_text(yaml.safe_dump({"monitoring": {"features": SUBSET}}))
    with duckdb.connect(str(store)) as con:
        con.execute("UPDATE score_history SET model_version = '2', churn_probability = 0.5 "
                    "WHERE as_of = DATE '2026-01-01' AND account_id IN "
                    "(SELECT account_id FROM score_history WHERE as_of = DATE '2026-01-01' ORDER BY account_id "
                    "LIMIT 100)")
        n = con.execute("SELECT count(*) FROM score_history WHERE as_of = DATE '2026-01-01'").fetchone()[0]
    s = run_drift(store=store, out=tmp_path / "out", home=monitored.home, config=cfg)
    assert s["current"]["scored_by"] == {"1": n - 100, "2": 100} and s["current"]["rescored"] == 100
    assert s["current"]["probabilities_from"] == "1"
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute("SELECT * FROM snapshots WHERE as_of = DATE '2026-01-01'").df()
    expected = monitored.bundle.predict(rows)["churn_probability"].mean()
    assert s["probability"]["mean_current"] == pytest.approx(expected, rel=1e-9)
    run = monitored.client.get_run(s["mlflow_run_id"])
    assert run.data.tags["probabilities_from_version"] == "1" and run.data.tags["rescored_rows"] == "100"
    assert "re-scored with the champion" in (tmp_path / "out" / "drift.html").read_text()


def test_reference_keeps_string_ids_and_reports_rows_it_cannot_find(monitored, tmp_path):
    bundle = monitored.bundle
    # numeric-looking ids with leading zeros (saved through the bundle: its files carry checksums)
    preds = bundle.test_predictions.assign(account_id="00" + bundle.test_predictions["account_id"].astype(str))
    folder = dataclasses.replace(bundle, test_predictions=preds).save(tmp_path / "bundle")
    loaded = ModelBundle.load(folder)
    assert loaded.test_predictions["account_id"].tolist() == preds["account_id"].tolist()

    full = bundle.test_predictions
    extra = full.head(len(full) // 4).assign(account_id=lambda d: "ghost-" + d["account_id"].astype(str))
    some = dataclasses.replace(bundle, test_predictions=pd.concat([full, extra], ignore_index=True))
    info: dict = {}
    rows = reference_rows(some, monitored.store, info=info)
    assert len(rows) == len(full) and info["matched"] == len(full) and info["predictions"] == len(full) + len(extra)
    assert info["table"] == "snapshots" and f"{len(extra):,} of the champion's" in info["warning"]
    most = dataclasses.replace(bundle, test_predictions=full.assign(account_id="ghost-" + full["account_id"]))
    with pytest.raises(MonitoringError, match="only 0 of the champion's .*at least 50% needed"):
        reference_rows(most, monitored.store)
    other = dataclasses.replace(bundle, meta={**bundle.meta, "snapshots": {**bundle.meta["snapshots"],
                                                                           "table": "no_such_table"}})
    with pytest.raises(MonitoringError, match="no table no_such_table"):
        reference_rows(other, monitored.store)


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


LOOSE = {"max_roc_auc_drop": 1.0, "max_pr_auc_drop": 1.0, "max_brier_rise": 1000.0, "max_ece_rise": 1.0}


def _expected(monitored, store, tmp_path, data_end=dt.date(2026, 1, 1)):
    """The matured scores computed independently: history rows of version 1 with
    ``as_of + horizon + grace <= data end``, labelled by a FRESH snapshot build of those dates
    from the raw data (not the store under test)."""
    lag = monitored.settings.horizon_days + monitored.settings.grace_days
    with duckdb.connect(str(store), read_only=True) as con:
        hist = con.execute("SELECT account_id, as_of, churn_probability AS p, tier FROM score_history "
                           "WHERE model_version = '1'").df()
    hist["as_of"] = pd.to_datetime(hist["as_of"])
    hist = hist[hist["as_of"] + pd.Timedelta(days=lag) <= pd.Timestamp(data_end)]
    fresh = tmp_path / "fresh.duckdb"
    build_snapshots(monitored.data, monitored.settings, fresh, as_of=sorted({d.date() for d in hist["as_of"]}))
    with duckdb.connect(str(fresh), read_only=True) as con:
        # the outcome of every scored row, a renewal due on its date included (no training row, but judged)
        labels = con.execute("SELECT account_id, as_of, churn_label AS y FROM snapshots "
                             "WHERE churn_label IS NOT NULL").df()
    labels["as_of"] = pd.to_datetime(labels["as_of"])
    m = hist.merge(labels, on=["account_id", "as_of"], how="inner").sort_values(["as_of", "account_id"])
    assert len(m) == len(hist)  # every matured score has a label in the current data
    return m


def _check_metrics(s, m):
    y, p = m["y"].to_numpy(dtype=int), m["p"].to_numpy()
    cur = s["current"]
    assert s["status"] == "evaluated" and cur["rows"] == len(m) > 100 and 0 < y.sum() < len(y)
    assert cur["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert cur["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert cur["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert cur["ece"] == pytest.approx(ece(y, p), abs=1e-12)
    for tier, d in cur["per_tier"].items():
        assert d["count"] == int((m["tier"] == tier).sum()) and d["churned"] == int(y[m["tier"] == tier].sum())


def test_performance_equals_scikit_learn_on_the_matured_scores(monitored, capsys, monkeypatch, tmp_path):
    out, cfg = tmp_path / "out", tmp_path / "cw.yaml"
    cfg.write_text(yaml.safe_dump({"monitoring": LOOSE}))  # a definite scenario: no tolerance can break
    code, stdout, stderr = run_cli(capsys, monkeypatch, "performance", "--home", monitored.home, "--config", cfg,
                                   "--out", out)
    assert code == 0, stderr
    s = json.loads((out / "performance.json").read_text())
    _check_metrics(s, _expected(monitored, monitored.store, tmp_path))
    assert s["maturity"]["matured_dates"] == ["2025-09-01"] and s["maturity"]["next_maturity"] == "2026-04-01"
    assert s["training"]["roc_auc"] == monitored.bundle.meta["metrics"]["roc_auc"]
    assert s["change"]["brier"] == pytest.approx(s["current"]["brier"] - s["training"]["brier"])
    assert not s["alarm"] and "no alarm" in stdout
    assert "ROC-AUC" in stdout and "observed churn per tier" in stdout
    assert "churnwatch-summary" in (out / "performance.html").read_text()
    runs = monitored.client.search_runs(
        [monitored.client.get_experiment_by_name("churnwatch-monitoring").experiment_id],
        filter_string="tags.kind = 'performance' and tags.status = 'evaluated'")
    assert runs and runs[0].data.metrics["roc_auc"] == pytest.approx(s["current"]["roc_auc"])


def test_scores_made_before_their_labels_existed_are_labelled_from_the_current_data(monitored, capsys,
                                                                                    monkeypatch, tmp_path):
    """Score at the data end of a shortened export (labels unknown, stored unlabelled), drop
    another scored date's snapshots (as a full rebuild on a new schedule may), then run
    performance on the full data: both dates are relabelled and counted."""
    store, out, cfg = _copy_store(monitored, tmp_path), tmp_path / "out", tmp_path / "cw.yaml"
    cut = dt.date(2025, 9, 29)
    short = monitored.settings.model_copy(update={"data_end": cut})
    score_as_of(monitored.data, short, store, monitored.bundle, cut, "1")
    with duckdb.connect(str(store)) as con:
        rows, labelled = con.execute("SELECT count(*), count_if(labelled) FROM snapshots WHERE as_of = ?",
                                     [cut]).fetchone()
        assert rows > 100 and labelled == 0
        con.execute("DELETE FROM snapshots WHERE as_of = DATE '2025-09-01'")
    cfg.write_text(yaml.safe_dump({"data": str(monitored.data.resolve()), "monitoring": LOOSE}))
    code, stdout, stderr = run_cli(capsys, monkeypatch, "performance", "--home", monitored.home, "--config", cfg,
                                   "--store", store, "--out", out)
    assert code == 0, stderr
    s = json.loads((out / "performance.json").read_text())
    assert s["maturity"]["relabelled"]["rebuilt"] == ["2025-09-01", cut.isoformat()]
    assert s["maturity"]["matured_dates"] == ["2025-09-01", cut.isoformat()] and s["maturity"]["unlabelled"] == {}
    m = _expected(monitored, store, tmp_path)
    assert set(m["as_of"].dt.date) == {dt.date(2025, 9, 1), cut}
    _check_metrics(s, m)


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
    s = json.loads((out / "performance.json").read_text())
    assert s["status"] == "not matured yet" and s["next_maturity"] == "2026-04-01" and s["matured_rows"] == 0
    assert not (out / "performance.html").exists()
    run = monitored.client.get_run(s_id := stdout.split("MLflow run: ")[1].split()[0])
    assert run.data.tags["status"] == "not matured yet" and run.data.metrics["matured_rows"] == 0, s_id


def test_degradation_tolerances():
    from core.settings import MonitoringSettings
    from monitoring.performance import degradation

    train = {"roc_auc": 0.80, "pr_auc": 0.30, "brier": 0.040, "ece": 0.010}
    cfg = MonitoringSettings()
    assert degradation(dict(train), train, cfg) == []
    worse = {"roc_auc": 0.74, "pr_auc": 0.24, "brier": 0.051, "ece": 0.061}
    assert [r.split()[0] for r in degradation(worse, train, cfg)] == ["ROC-AUC", "PR-AUC", "Brier", "ECE"]
    edge = {"roc_auc": 0.751, "pr_auc": 0.251, "brier": 0.0499, "ece": 0.0599}
    assert degradation(edge, train, cfg) == []
    assert np.isclose(cfg.max_brier_rise, 0.25)
