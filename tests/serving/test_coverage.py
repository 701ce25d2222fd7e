"""``/score`` guesses nothing silently (issue 14 item 3): coverage per account, an error below the
minimum, unknown categories listed. In-process through the ASGI app and through ``Scorer``."""

from __future__ import annotations

import pandas as pd
import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from core.errors import ConfigError
from core.settings import load_settings
from serving.coverage import model_gains
from serving.scoring import Scorer, validate_features
from serving.service import make_service


@pytest.fixture(scope="module")
def scorer(store_scorer):
    return store_scorer


@pytest.fixture(scope="module")
def client(scorer):
    with TestClient(make_service(scorer.bundle.catalogue, lambda: scorer).to_asgi()) as c:
        yield c


@pytest.fixture(scope="module")
def full_features(scorer):
    """Every catalogue feature of one stored snapshot, as a request would send them."""
    from core.store import read_snapshots

    row = read_snapshots(scorer.store).iloc[-1]
    out = {}
    for f in scorer.bundle.catalogue.features:
        v = row[f.name]
        if pd.isna(v):  # None, NaN, or pandas' NA of an int column with a null
            continue
        out[f.name] = str(v) if f.type == "category" else (float(v) if f.type == "float" else int(v))
    return out


def schema_check(client, body: list) -> None:
    document = client.get("/docs.json").json()
    schema = document["paths"]["/score"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": document["components"]}).validate(body)


def test_no_features_at_all_is_an_error_naming_the_missing_features(client, scorer):
    response = client.post("/score", json={"accounts": [{"account_id": "a"}]})
    assert response.status_code == 200
    [answer] = response.json()
    schema_check(client, [answer])
    assert "tier" not in answer and "health_score" not in answer
    assert answer["account_id"] == "a"
    assert answer["coverage"]["given"] == [] and answer["coverage"]["share"] == 0
    top = scorer.bundle.frame.names[int(model_gains(scorer.bundle.booster, scorer.bundle.frame.names).argmax())]
    assert answer["coverage"]["missing"][0] == top
    assert sorted(answer["coverage"]["missing"]) == sorted(scorer.bundle.frame.names)
    assert answer["error"].startswith("no features given") and top in answer["error"]
    [zh] = client.post("/score", json={"accounts": [{"account_id": "a"}], "lang": "zh-CN"}).json()
    assert zh["error"].startswith("未提供任何特征，无法评分") and top in zh["error"]


def test_below_the_minimum_share_is_an_error_the_others_are_scored(client, scorer, full_features):
    names = scorer.bundle.frame.names
    gains = dict(zip(names, model_gains(scorer.bundle.booster, names)))
    weakest = min((n for n in full_features if n in gains and gains[n] > 0), key=gains.get)
    thin = {"account_id": "thin", "features": {weakest: full_features[weakest]}}
    full = {"account_id": "full", "features": full_features}
    body = client.post("/score", json={"accounts": [thin, full]}).json()
    schema_check(client, body)
    assert [b["account_id"] for b in body] == ["thin", "full"]
    assert "error" in body[0] and "tier" not in body[0]
    assert body[0]["coverage"]["given"] == [weakest]
    assert body[0]["coverage"]["share"] == pytest.approx(gains[weakest], abs=1e-6)
    assert body[0]["error"].startswith("too few features to score")
    assert body[0]["coverage"]["missing"][0] in body[0]["error"]
    zh = client.post("/score", json={"accounts": [thin], "lang": "zh-CN"}).json()
    assert zh[0]["error"].startswith("特征太少，无法评分") and zh[0]["coverage"] == body[0]["coverage"]
    assert zh[0]["coverage"]["missing"][0] in zh[0]["error"]
    assert "error" not in body[1] and body[1]["tier"]
    assert body[1]["coverage"]["share"] >= 0.5 and body[1]["coverage"]["unknown"] == []
    assert set(body[1]["coverage"]["given"]) == set(full_features)


def test_unknown_categories_are_listed_and_count_as_missing(scorer, full_features):
    category = scorer.bundle.frame.categorical[0]
    features = {**full_features, category: "martian mining"}
    [result] = scorer.results(validate_features([{"account_id": "m", "features": features}],
                                                scorer.bundle.catalogue))
    assert result["coverage"]["unknown"] == [{"feature": category, "value": "martian mining"}]
    assert category in result["coverage"]["given"] and category in result["coverage"]["missing"]


def test_the_minimum_comes_from_the_settings(trained_setup, full_features, tmp_path):
    tmp, settings, bundle = trained_setup
    (tmp_path / "churnwatch.yaml").write_text("serving:\n  min_coverage: 0\n", encoding="utf-8")
    lax = Scorer(bundle=bundle, settings=load_settings(tmp_path / "churnwatch.yaml"), model_version="3")
    strict = Scorer(bundle=bundle, settings=settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"min_coverage": 1.0})}), model_version="3")
    one = next(iter(full_features))
    rows = validate_features([{"account_id": "x", "features": {one: full_features[one]}},
                              {"account_id": "y"}], bundle.catalogue)
    scored, empty = lax.results(rows)
    assert "tier" in scored and "error" in empty  # no features at all is never scored
    assert all("error" in r for r in strict.results(rows))
    (tmp_path / "churnwatch.yaml").write_text("serving:\n  min_coverage: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="serving.min_coverage"):
        load_settings(tmp_path / "churnwatch.yaml")


def test_store_snapshots_are_scored_without_coverage(scorer):
    from core.store import read_snapshots

    rows = read_snapshots(scorer.store).tail(3)
    results = scorer.results(rows)
    assert all("tier" in r and "coverage" not in r for r in results)


def test_a_tables_blank_the_model_was_trained_on_counts_and_a_share_under_the_minimum_reads_under_it():
    """p42 (2026-12-06): a flat table's blank NPS (35% of the training rows) left exported rows unscored by
    ``/score`` that ``score --table`` scored, with "carry 50% of the model's gain (minimum 50%)" for 0.4998."""
    import numpy as np

    from serving.coverage import CoverageCheck
    from training.model import FeatureFrame, FeatureRows

    frame = FeatureFrame(names=["nps", "seats", "fee"], categorical=[])
    gain = np.array([0.5002, 0.2, 0.2998])
    rows = FeatureRows(["a", "b"], ["nps", "seats", "fee"], np.array([[np.nan, 3.0, 10.0], [np.nan, np.nan, 10.0]]),
                       {})
    X = rows.numeric
    strict = CoverageCheck(frame, gain, 0.5)
    measured = strict.measure(rows, X)
    assert [m["share"] for m in measured] == [pytest.approx(0.4998), pytest.approx(0.2998)]
    assert "carry 49.9% of the model's gain (minimum 50%)" in strict.error(measured[0])
    assert "carry 30% of the model's gain (minimum 50%)" in strict.error(measured[1])
    assert "所给特征只占模型增益的 49.9%（最低 50%）" in strict.error(measured[0], "zh-CN")
    # a table's NPS blank on 35% of its training rows: a blank counts for 35% of its gain; the fee always filled
    lenient = CoverageCheck(frame, gain, 0.5, blank_ok=np.array([0.35, 0.02, 0.0]))
    measured = lenient.measure(rows, X)
    assert [m["share"] for m in measured] == [pytest.approx(0.4998 + 0.35 * 0.5002),
                                              pytest.approx(0.2998 + 0.35 * 0.5002 + 0.02 * 0.2)]
    assert lenient.error(measured[0]) is None and measured[0]["missing"] == ["nps"]  # still said missing
    assert "too few features" in lenient.error(measured[1])  # one column given covers no table
