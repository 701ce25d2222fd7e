"""Training end to end on small demo data: bundle, SHAP additivity, behaviour, refusals, MLflow.

The demo build and its trained model are the session's shared ``trained_demo`` (tests/conftest.py,
300 accounts x 24 months), used read-only; the MLflow test trains only its deliberately weak candidate.
"""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest

from training.bundle import ModelBundle
from training.errors import TrainingError
from training.model import FeatureFrame
from training.promotion import promote_version
from training.reasons import contributions
from training.registry import CHAMPION, MODEL_NAME, setup
from training.selection import describe
from training.split import purged_split
from training.train import fit_and_evaluate, load_labelled, log_run, params_of, train_on_table


@pytest.fixture(scope="module")
def demo(trained_demo):
    return trained_demo(300, 24, 6)  # the session's shared build: read only


@pytest.fixture(scope="module")
def store(demo):
    return demo.store


@pytest.fixture(scope="module")
def trained(demo):
    return demo.result()  # its own TrainResult (log_run sets version and run id); the bundle is shared


@pytest.fixture(scope="module")
def test_rows(trained, store):
    from training.promotion import test_block

    return test_block(trained.bundle).head(400)


def test_bundle_round_trips_without_unpickling(trained, test_rows, tmp_path, monkeypatch):
    folder = trained.bundle.save(tmp_path / "bundle")
    assert sorted(p.name for p in folder.iterdir() if p.name != "blend.json") == [
        "bundle.json", "calibrator.json", "checksums.json", "features.json", "health_map.json", "model.txt",
        "reasons.json", "test_predictions.csv"]

    def no_pickle(*a, **k):
        raise AssertionError("a bundle must not unpickle anything")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    loaded = ModelBundle.load(folder)
    a, b = trained.bundle.predict(test_rows), loaded.predict(test_rows)
    np.testing.assert_array_equal(a["churn_probability"].to_numpy(), b["churn_probability"].to_numpy())
    assert (a["health_score"] == b["health_score"]).all() and (a["tier"] == b["tier"]).all()
    for lang in ("en", "zh-CN"):
        assert trained.bundle.explain(test_rows, lang) == loaded.explain(test_rows, lang)
    assert loaded.meta["snapshots"]["table"] == "snapshots"
    assert len(loaded.test_predictions) == len(trained.bundle.test_predictions)


def test_shap_contributions_plus_bias_equal_the_raw_log_odds(trained, test_rows):
    X = trained.bundle.frame.transform(test_rows)
    contrib = contributions(trained.bundle.booster, X)
    raw = trained.bundle.booster.predict(X, raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=0, atol=1e-9)
    # the fast matrix path (serving) and the pandas path (training) give the same scores
    M = trained.bundle.frame.matrix(test_rows)
    np.testing.assert_array_equal(trained.bundle.booster.predict(M, raw_score=True), raw)
    np.testing.assert_allclose(contributions(trained.bundle.booster, M), contrib, rtol=0, atol=1e-12)


def test_health_is_monotone_and_the_tiers_follow_the_pins(trained):
    hm = trained.bundle.health_map
    p = np.linspace(0, 1, 2001)
    h = hm.health_score(p)
    assert (np.diff(h) <= 0).all()
    p80, p60, p40 = hm.pins_
    assert list(hm.health_score(np.array([0.0, p80, p60, p40, 1.0]))) == [100, 80, 60, 40, 0]
    assert list(hm.tier(hm.health_score(np.array([p80, p60, p40])))) == ["healthy", "low_risk", "medium_risk"]


def test_no_training_label_window_reaches_a_later_block():
    dates = [dt.date(2023, 1, 2) + dt.timedelta(days=7 * k) for k in range(110)]
    s = purged_split(dates, horizon_days=60, grace_days=30)
    gap = dt.timedelta(days=90)
    assert s.train[1] + gap < s.calibration[0]
    assert s.calibration[1] + gap < s.test[0]
    assert s.fit[1] + gap < s.early_stopping[0]
    assert s.test[1] == dates[-1] and s.train[0] == dates[0]
    short = purged_split(dates[:40], 60, 30)  # 274 days: too short for purged blocks, cross-fit instead
    assert short.mode == "cross_fit" and short.calibration is None
    assert short.train[1] + gap < short.test[0] and short.test[1] == dates[39]
    holdout = purged_split(dates[:20], 60, 30)  # 134 days < 28 + 90 + 56: no purge gap, held-out accounts
    assert holdout.mode == "account_holdout" and holdout.train[1] < holdout.test[0]
    with pytest.raises(TrainingError, match="too little labelled history"):
        purged_split(dates[:8], 60, 30)  # 50 days < 28 + 28


def test_more_days_overdue_or_fewer_logins_never_lower_risk(trained, test_rows):
    b = trained.bundle
    base = b.predict(test_rows)["churn_probability"].to_numpy()
    worse = test_rows.copy()
    worse["days_overdue"] = worse["days_overdue"] + 30
    assert (b.predict(worse)["churn_probability"].to_numpy() >= base - 1e-12).all()
    fewer = test_rows.copy()
    fewer["logins_30d"] = (fewer["logins_30d"] * 0.3).round()
    assert (b.predict(fewer)["churn_probability"].to_numpy() >= base - 1e-12).all()


def test_renaming_an_account_never_changes_its_score(trained, test_rows):
    renamed = test_rows.copy()
    renamed["account_id"] = "someone-else-" + renamed["account_id"]
    pd.testing.assert_frame_equal(trained.bundle.predict(test_rows).reset_index(drop=True),
                                  trained.bundle.predict(renamed).reset_index(drop=True))


def test_reasons_name_groups_with_actual_values_in_both_languages(trained, test_rows):
    risky = test_rows.assign(p=trained.bundle.predict(test_rows)["churn_probability"]).nlargest(5, "p")
    for lang in ("en", "zh-CN"):
        for item in trained.bundle.explain(risky.drop(columns="p"), lang):
            assert 1 <= len(item["reasons"]) <= 3 and len(item["strengths"]) <= 2
            contribs = [r["contribution"] for r in item["reasons"]]
            assert contribs == sorted(contribs, reverse=True) and all(c > 0 for c in contribs)
            assert all(s["contribution"] < 0 for s in item["strengths"])
            for r in item["reasons"]:
                assert "{" not in r["text"] and r["text"]
    en = trained.bundle.explain(risky.drop(columns="p").head(1), "en")[0]["reasons"][0]
    zh = trained.bundle.explain(risky.drop(columns="p").head(1), "zh-CN")[0]["reasons"][0]
    assert en["feature"] == zh["feature"] and en["text"] != zh["text"]


def test_refuses_bad_training_data(store, tmp_path):
    rows, catalogue, _ = load_labelled(store)
    rows = rows.head(3000)
    none_pos = rows.assign(churn_label=0)
    with pytest.raises(TrainingError, match="no positive labels"):
        fit_and_evaluate(none_pos, none_pos, none_pos, none_pos, none_pos, catalogue, tmp_path)
    few = pd.concat([rows[rows["churn_label"] == 1].head(5), rows[rows["churn_label"] == 0].head(45)])  # has churners
    with pytest.raises(TrainingError, match="too few rows"):
        fit_and_evaluate(few, few, few, few, few, catalogue, tmp_path)
    with pytest.raises(TrainingError, match="feature.*missing.*logins_30d"):
        FeatureFrame.from_catalogue(catalogue).fit(rows).transform(rows.drop(columns=["logins_30d"]))
    with pytest.raises(TrainingError, match="no labelled"):
        purged_split([], 60, 30)


def test_mlflow_run_registry_alias_and_promotion_rule(trained, store, tmp_path):
    uri, root = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts"
    client = setup(uri, root)
    # a deliberately weak candidate: labels shuffled within the training block
    rows, catalogue, _ = load_labelled(store)
    rng = np.random.default_rng(0)
    train_mask = rows["as_of"] <= pd.Timestamp(trained.bundle.meta["split"]["train"][1])  # the same store's split
    recent = rows[train_mask].tail(6000)  # the newest training rows suffice for a model that learns nothing
    shuffled = recent.assign(churn_label=rng.permutation(recent["churn_label"].to_numpy()))
    # early stopping on rows the candidates were not fitted on: on shuffled labels it stops at once
    # (judged on fitted rows it ran every candidate to its last tree: minutes)
    bad = fit_and_evaluate(shuffled, shuffled.head(4000), shuffled.tail(2000), rows[~train_mask].head(8000),
                           rows[~train_mask].tail(5000), catalogue, tmp_path / "bad")
    bad.bundle.meta = {**trained.bundle.meta, "metrics": bad.metrics}

    v1 = log_run(bad, uri, root, params_of(bad))
    assert v1.version == 1
    run = client.get_run(v1.run_id)
    assert run.data.metrics["model_roc_auc"] > 0 and "model_top_decile_lift" in run.data.metrics
    assert not any(k.startswith("lightgbm_") for k in run.data.metrics)  # whatever was chosen, it is "model"
    assert run.data.metrics["tier_high_risk_count"] >= 0
    # the run starts when training started (its duration is the real one) and logs the model choice
    assert run.info.start_time == int(bad.started_at * 1000) and run.info.end_time > run.info.start_time
    assert run.data.params["model"] == bad.training["selection"]["chosen"]
    assert "lgbm_num_leaves" in run.data.params and "validation_roc_auc_lgbm_shallow" in run.data.metrics
    # the one-standard-error rule: the chosen candidate is within its SE of the best, whose gap is 0
    sel = bad.training["selection"]
    assert run.data.params["best_on_validation"] == sel["best_on_validation"]
    assert run.data.metrics[f"validation_gap_{sel['best_on_validation']}"] == 0.0
    chosen = sel["noise"][sel["chosen"]]
    assert chosen["gap"] <= chosen["se"] and run.data.metrics[f"validation_gap_se_{sel['chosen']}"] == chosen["se"]
    assert run.data.tags["churnwatch.calibration"] in ("platt", "beta", "isotonic", "isotonic_smooth")
    assert "vs_logistic_roc_auc_lo" in run.data.metrics
    arts = {a.path for a in client.list_artifacts(v1.run_id, "bundle")}
    assert {"bundle/model.txt", "bundle/calibrator.json", "bundle/features.json"} <= arts
    assert {a.path for a in client.list_artifacts(v1.run_id, "plots")} >= {"plots/shap_summary.png",
                                                                            "plots/reliability.png"}
    decision, version, champ = promote_version(client, 1)
    assert decision.promote and champ is None  # the first model becomes champion
    from training.run_text import unmet_bars

    assert decision.unmet == unmet_bars(bad.bundle.meta) and decision.unmet  # what `promote` repeats of training
    assert int(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == 1

    v2 = log_run(trained, uri, root, params_of(trained))
    decision, _, champ = promote_version(client, v2.version)
    assert decision.promote and champ == 1, decision.reason
    assert int(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == 2

    v3 = log_run(bad, uri, root, params_of(bad))
    decision, _, champ = promote_version(client, v3.version)
    assert not decision.promote and champ == 2 and "PR-AUC" in decision.reason
    assert int(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == 2


def test_bring_your_own_table(tmp_path):
    from training.own_table import write_example_table

    path = write_example_table(tmp_path / "telco.csv", rows=2000, seed=1)
    result = train_on_table(path, "Churn", "customer_id", tmp_path / "out")
    assert result.metrics["roc_auc"] > 0.7
    chosen = describe(result.bundle.meta["training"]["selection"]["chosen"])
    assert result.comparison["model"].tolist() == [f"model: {chosen}", "logistic regression"]
    assert result.comparison["registered"].tolist() == [True, False]
    saved = pd.read_csv(tmp_path / "out" / "model_vs_baselines.csv")  # the file names it as the terminal does
    assert saved["model"].tolist() == [f"model: {chosen}", "logistic regression"] and saved["registered"][0]
    rows = result.bundle.frame
    item = result.bundle.explain(pd.read_csv(path).set_index("customer_id").head(3).pipe(
        lambda f: f.assign(**{c: pd.to_numeric(f[c].astype(str).str.replace(",", ""), errors="coerce")
                              for c in ("monthly_charges",)})), "en")[0]
    assert all(r["signal"] in rows.names for r in item["reasons"])
