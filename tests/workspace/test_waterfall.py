"""The SHAP waterfall kept at scoring time and drawn on the account page (issue 16 item 4, issue 12
item 8): real demo data, a real LightGBM bundle, the real store, publication and workspace app.

* the published scores carry a ``waterfall`` column whose base + bars + other equals the raw score
  (log-odds) the model gives, whose ``model_probability`` is expit of it (before calibration) and
  whose ``probability`` is the calibrated probability the score published;
* each reason's and strength's bar is that reason's contribution, with the same value;
* the account page draws those bars without a model: no bundle is loaded and no contribution is
  computed during the request;
* hostile feature names and category values in a waterfall are text in the page, not markup;
* a flat-table model (``score --table``) gets its waterfalls from the stored table rows.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from scipy.special import expit

from core.settings import Settings, load_settings
from core.store import WATERFALLS
from serving.batch import build_scores, record_scores
from serving.published import publish_scores, published_paths
from serving.waterfalls import MAX_BARS, build_waterfalls, record_waterfalls
from tests.workspace.conftest import sign_in
from tests.workspace.home import PASSWORD
from workflow import db
from workflow.db import store_for, write
from workflow.people import add_user
from workspace.app import build_app
from workspace.auth import set_password


@pytest.fixture(scope="module")
def scored_home(tmp_path_factory, trained_demo):
    """(home, bundle, published rows by account, scored history): 300 demo accounts (the session's
    shared build and model, tests/conftest.py; its store copied) scored on their last two snapshot
    dates the way ``churnwatch score`` does it, published, an admin user."""
    tmp = tmp_path_factory.mktemp("waterfall")
    demo = trained_demo(300, 24, 6)
    settings = load_settings(demo.data / "churnwatch.yaml")
    home = tmp / "home"
    home.mkdir()
    store = home / "store.duckdb"
    shutil.copy(demo.store, store)
    bundle = demo.bundle
    with duckdb.connect(str(store), read_only=True) as con:
        dates = [r[0] for r in con.execute("SELECT DISTINCT as_of FROM snapshots ORDER BY 1").fetchall()][-2:]
    scored = build_scores(demo.data, settings, store, bundle, dates, "1")
    assert record_waterfalls(store, build_waterfalls(store, bundle, list(scored.values())), list(scored)) > 0
    record_scores(store, list(scored.values()))
    publish_scores(store, settings)
    engine = store_for(home)
    with write(engine) as conn:
        add_user(conn, name="Root Admin", actor="test", email="root@example.com", role="admin")
    set_password(engine, "root@example.com", PASSWORD, "test")
    rows = {r["account_id"]: r for r in pq.read_table(published_paths(store)[0]).to_pylist()}
    history = {(r.account_id, r.as_of): r for h in scored.values() for r in h.itertuples()}
    yield home, bundle, rows, history, settings
    db.dispose_all()


@pytest.mark.slow  # the first user of the session's 300-account build trains it (about 30 s, once)
def test_published_waterfall_sums_to_the_models_raw_score_and_its_probabilities(scored_home):
    home, bundle, rows, history, _ = scored_home
    assert rows and all(r["waterfall"] for r in rows.values())
    store = home / "store.duckdb"
    with duckdb.connect(str(store), read_only=True) as con:
        snaps = con.execute("SELECT * FROM snapshots WHERE as_of = (SELECT max(as_of) FROM snapshots) "
                            "ORDER BY account_id").df()
    raw = np.asarray(bundle.booster.predict(bundle.frame.matrix(snaps), raw_score=True))
    raw_of = dict(zip(snaps["account_id"], raw, strict=True))
    checked = 0
    for account, rec in rows.items():
        wf = json.loads(rec["waterfall"])
        total = wf["base"] + sum(b["contribution"] for b in wf["bars"]) + wf["other"]["contribution"]
        assert total == pytest.approx(wf["final"], abs=1e-6)
        assert wf["model_probability"] == pytest.approx(float(expit(wf["final"])), abs=1e-12)
        # the published probability is the calibrated one, not expit of the raw score
        assert wf["probability"] == pytest.approx(rec["churn_probability"], abs=1e-9)
        assert len(wf["bars"]) + wf["other"]["count"] == len(bundle.frame.names)
        assert len(wf["bars"]) >= MAX_BARS
        sizes = [abs(b["contribution"]) for b in wf["bars"]]
        assert sizes == sorted(sizes, reverse=True)
        if rec["as_of"] == snaps["as_of"].max().date() and account in raw_of:
            assert wf["final"] == pytest.approx(float(raw_of[account]), abs=1e-6)  # the model's own raw score
            checked += 1
    assert checked > 50
    # calibration moves the probability: the page must not present expit(raw) as the published one
    assert any(abs(json.loads(r["waterfall"])["model_probability"] - r["churn_probability"]) > 1e-3
               for r in rows.values())


def test_every_reason_and_strength_has_its_own_bar_with_its_contribution_and_value(scored_home):
    _, _, rows, _, _ = scored_home
    worded = 0
    for rec in rows.values():
        bars = {b["feature"]: b for b in json.loads(rec["waterfall"])["bars"]}
        for item in json.loads(rec["reasons_en"]) + json.loads(rec["strengths_en"]):
            bar = bars[item["feature"]]
            assert bar["contribution"] == pytest.approx(item["contribution"], abs=1e-9)
            assert bar["value"] == item["value"]
            assert bar["signal"] == item["signal"]
            worded += 1
    assert worded > 100


def test_an_account_whose_latest_score_is_older_keeps_that_scores_waterfall(scored_home):
    """A churned account (not scored on the last date) publishes its last score's waterfall."""
    _, _, rows, _, _ = scored_home
    latest = max(r["as_of"] for r in rows.values())
    older = [r for r in rows.values() if r["as_of"] < latest]
    for rec in older:
        wf = json.loads(rec["waterfall"])
        assert wf["probability"] == pytest.approx(rec["churn_probability"], abs=1e-9)


def test_account_page_draws_the_published_bars_without_a_model(scored_home, monkeypatch):
    home, _, rows, _, settings = scored_home
    import lightgbm

    import training.reasons
    import training.registry
    import training.treeshap

    def forbidden(*_a, **_k):
        raise AssertionError("a page computed contributions or loaded a model")

    monkeypatch.setattr(lightgbm.Booster, "predict", forbidden)
    monkeypatch.setattr(lightgbm.Booster, "__init__", forbidden)
    monkeypatch.setattr(training.reasons, "contributions", forbidden)
    monkeypatch.setattr(training.treeshap, "tree_contributions", forbidden)
    monkeypatch.setattr(training.registry, "load_model", forbidden)
    rec = max((r for r in rows.values() if r["churned_on"] is None and json.loads(r["reasons_en"])),
              key=lambda r: r["churn_probability"])
    with TestClient(build_app(home, Settings())) as client:
        assert sign_in(client, "root@example.com").status_code == 303
        for lang, key in (("en", "reasons_en"), ("zh-CN", "reasons_zh")):
            client.post("/lang", data={"lang": lang, "csrf_token": _token(client)})
            page = client.get(f"/accounts/{rec['account_id']}")
            assert page.status_code == 200, page.text[:500]
            bars = _bars(page.text)
            wf = json.loads(rec["waterfall"])
            assert [f for f, _ in bars] == [b["feature"] for b in wf["bars"]]
            items = json.loads(rec[key]) + json.loads(rec[key.replace("reasons", "strengths")])
            shown = _reason_contributions(page.text)  # what the page's reasons and strengths say
            assert [f for f, _ in shown] == [i["feature"] for i in items]
            for feature, contribution in shown:
                assert dict(bars)[feature] == pytest.approx(contribution, abs=1e-6)
                assert f'<g class="wf-bar" data-feature="{feature}" data-contribution=' in page.text
                assert f'data-feature="{feature}" data-contribution="{dict(bars)[feature]:.9f}" data-worded="1"' \
                    in page.text
            caption = "校准前" if lang == "zh-CN" else "before calibration"
            assert caption in page.text
            assert f"{rec['churn_probability'] * 100:.1f}%" in page.text


def _token(client: TestClient) -> str:
    from tests.workspace.conftest import token_of

    return token_of(client.get("/").text)


def _bars(html: str) -> list[tuple[str, float]]:
    import re

    return [(m.group(1), float(m.group(2))) for m in
            re.finditer(r'<g class="wf-bar" data-feature="([^"]*)" data-contribution="([-0-9.e]+)"', html)]


def _reason_contributions(html: str) -> list[tuple[str, float]]:
    import re

    return [(m.group(1), float(m.group(2))) for m in
            re.finditer(r'class="muted reason-contribution" data-feature="([^"]*)" data-contribution="([-0-9.e]+)"',
                        html)]


HOSTILE_FEATURE = "<script>alert('wf')</script>"
HOSTILE_VALUE = '"><img src=x onerror=alert(3)>'


def test_hostile_feature_and_category_text_in_a_waterfall_is_escaped(home):
    store = home / "store.duckdb"
    waterfall = {"base": -1.0, "bars": [
        {"feature": HOSTILE_FEATURE, "signal": "profile", "contribution": 0.4, "value": HOSTILE_VALUE,
         "shown_en": HOSTILE_VALUE, "shown_zh": HOSTILE_VALUE},
        {"feature": "logins_per_week", "signal": "<b>activity</b>", "contribution": -0.1, "value": 3.0,
         "shown_en": "3", "shown_zh": "3"}],
        "other": {"count": 2, "contribution": 0.05}, "final": -0.65, "model_probability": float(expit(-0.65)),
        "probability": 0.7}
    with duckdb.connect(str(store), read_only=True) as con:
        last = con.execute("SELECT max(as_of) FROM score_history WHERE account_id = 'acme'").fetchone()[0]
    record_waterfalls(store, pd.DataFrame({"account_id": ["acme"], "as_of": [last], "model_version": ["1"],
                                           "waterfall": [json.dumps(waterfall)]}), [last])
    publish_scores(store, Settings())
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {WATERFALLS}").fetchone()[0] == 1
    with TestClient(build_app(home, Settings())) as client:
        assert sign_in(client, "ana@example.com").status_code == 303
        page = client.get("/accounts/acme")
        assert page.status_code == 200
        html = page.text
        assert "<script>alert('wf')" not in html and "<img src=x" not in html and "<b>activity</b>" not in html
        assert "&lt;script&gt;alert(&#39;wf&#39;)&lt;/script&gt;" in html
        assert "&#34;&gt;&lt;img src=x onerror=alert(3)&gt;" in html
        assert ('data-feature="&lt;script&gt;alert(&#39;wf&#39;)&lt;/script&gt;" '
                'data-contribution="0.400000000"') in html
        other = client.get("/accounts/beta")  # scored without a waterfall: says so, no chart
        assert 'id="waterfall-none"' in other.text and 'class="waterfall"' not in other.text


def test_a_store_without_waterfalls_still_publishes(home):
    """A store scored before waterfalls existed publishes a null waterfall column (no error)."""
    rows = pq.read_table(published_paths(home / "store.duckdb")[0]).to_pylist()
    assert rows and all(r["waterfall"] is None for r in rows)


def test_rescoring_a_date_replaces_its_waterfalls(tmp_path):
    store = tmp_path / "s.duckdb"
    day = dt.date(2026, 1, 1)
    frame = pd.DataFrame({"account_id": ["a", "b"], "as_of": [day, day], "model_version": ["1", "1"],
                          "waterfall": ["{}", "{}"]})
    duckdb.connect(str(store)).close()
    assert record_waterfalls(store, frame, [day]) == 2
    assert record_waterfalls(store, frame.iloc[:1], [day]) == 1
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute(f"SELECT account_id FROM {WATERFALLS}").fetchall() == [("a",)]


def test_a_waterfall_of_another_score_is_not_drawn(home):
    """A waterfall kept by a run whose scores did not commit (its probability is not the published
    score's) is not shown as this score's."""
    store = home / "store.duckdb"
    with duckdb.connect(str(store), read_only=True) as con:
        last, p = con.execute("SELECT as_of, churn_probability FROM score_history WHERE account_id = 'beta' "
                              "ORDER BY as_of DESC LIMIT 1").fetchone()

    def waterfall(prob: float) -> str:
        return json.dumps({"base": -1.0, "bars": [{"feature": "logins_per_week", "signal": "activity",
                                                   "contribution": 0.5, "value": 3.0, "shown_en": "3",
                                                   "shown_zh": "3"}],
                           "other": {"count": 0, "contribution": 0.0}, "final": -0.5,
                           "model_probability": float(expit(-0.5)), "probability": prob})

    with TestClient(build_app(home, Settings())) as client:
        assert sign_in(client, "ana@example.com").status_code == 303
        for prob, drawn in ((p + 0.05, False), (p, True)):
            record_waterfalls(store, pd.DataFrame({"account_id": ["beta"], "as_of": [last], "model_version": ["1"],
                                                   "waterfall": [waterfall(prob)]}), [last])
            publish_scores(store, Settings())
            page = client.get("/accounts/beta").text
            assert ('class="waterfall"' in page) is drawn and ('id="waterfall-none"' in page) is not drawn


@pytest.mark.slow  # trains a flat-table model (about 10 s)
def test_a_flat_table_model_keeps_waterfalls_with_its_category_values(tmp_path):
    """``score --table``: the waterfalls come from the stored table rows; a hostile category value is
    kept as data (the page escapes it), and the sums hold as for a snapshot model."""
    from serving.batch import score_table_rows
    from training.train import train_on_table

    rng = np.random.default_rng(5)
    n = 600
    plan = rng.choice(["basic", HOSTILE_VALUE, "team"], n, p=[0.5, 0.3, 0.2])
    usage = rng.poisson(8, n).astype(float)
    churn = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 1.2 * (plan == "basic") - 0.15 * usage)))
    table = pd.DataFrame({"customer": [f"c{i}" for i in range(n)], "plan": plan, "usage": usage,
                          "churned": churn.astype(int)})
    table.to_csv(tmp_path / "t.csv", index=False)
    bundle = train_on_table(tmp_path / "t.csv", label="churned", id_col="customer", out=tmp_path / "o").bundle
    store = tmp_path / "s.duckdb"
    day, history, _ = score_table_rows(tmp_path / "t.csv", None, Settings(), store, bundle, "1", dt.date(2026, 1, 1))
    frame = build_waterfalls(store, bundle, [history])
    assert len(frame) == n and set(frame["as_of"]) == {day}
    probability = dict(zip(history["account_id"], history["churn_probability"], strict=True))
    plans = dict(zip(table["customer"], table["plan"], strict=True))
    for account, raw in zip(frame["account_id"], frame["waterfall"], strict=True):
        wf = json.loads(raw)
        assert wf["base"] + sum(b["contribution"] for b in wf["bars"]) + wf["other"]["contribution"] == \
            pytest.approx(wf["final"], abs=1e-6)
        assert wf["probability"] == pytest.approx(probability[account], abs=1e-9)
        bars = {b["feature"]: b for b in wf["bars"]}
        assert bars["plan"]["value"] == plans[account] == bars["plan"]["shown_en"]
