"""The service in-process through its ASGI app (BentoML's ``to_asgi()`` and Starlette's
TestClient; no port, no subprocess): every endpoint, every error shape, the OpenAPI document."""

from __future__ import annotations

import json
import re

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from core.store import latest_snapshot
from serving.api import ModelInfo
from serving.openapi import package_version
from serving.problems import PROBLEM_TYPE
from serving.scoring import RequestError, Scorer, validate_features
from serving.service import make_service

TOKEN = "in-process-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = {"account_id": "acme", "features": {"logins_30d": 3, "logins_30d_change": -0.6, "days_overdue": 40,
                                          "tickets_30d": 4, "industry": "retail", "mrr": 120.0}}


@pytest.fixture(scope="module")
def scorer(trained_setup):
    tmp, settings, bundle = trained_setup
    # GOOD gives a handful of features: score it whatever share of the gain they carry
    # (the minimum coverage has its own tests in test_coverage.py)
    lax = settings.model_copy(update={"serving": settings.serving.model_copy(update={"min_coverage": 0.0})})
    return Scorer(bundle=bundle, settings=lax, model_version="3", store=tmp / "s.duckdb")


@pytest.fixture(scope="module")
def client(scorer):
    service = make_service(scorer.bundle.catalogue, lambda: scorer, token=TOKEN)
    with TestClient(service.to_asgi()) as c:
        yield c


@pytest.fixture(scope="module")
def document(client):
    response = client.get("/docs.json")
    assert response.status_code == 200
    return response.json()


def validates(document: dict, schema: dict, body: object) -> None:
    """``body`` against ``schema`` whose ``$ref``s point into the document's components."""
    Draft202012Validator({**schema, "components": document["components"]}).validate(body)


def response_schema(document: dict, path: str, status: int, method: str = "post") -> dict:
    answer = document["paths"][path][method]["responses"][str(status)]
    media = PROBLEM_TYPE if status >= 400 else "application/json"
    return answer["content"][media]["schema"]


def known_ids(scorer: Scorer, n: int) -> list[str]:
    with duckdb.connect(str(scorer.store), read_only=True) as con:
        rows = con.execute("SELECT DISTINCT account_id FROM snapshots ORDER BY 1 LIMIT ?", [n]).fetchall()
    return [r[0] for r in rows]


# --- endpoints ---------------------------------------------------------------------------

def test_score_answers_typed_results_equal_to_in_process(client, scorer, document):
    response = client.post("/score", json={"accounts": [GOOD]}, headers=AUTH)
    assert response.status_code == 200
    [result] = response.json()
    validates(document, response_schema(document, "/score", 200), [result])
    [expected] = scorer.results(validate_features([GOOD], scorer.bundle.catalogue), "en")
    assert result == expected
    assert set(result["playbook"]) == {"action", "owner", "respond_within"}
    zh = client.post("/score", json={"accounts": [GOOD], "lang": "zh-CN"}, headers=AUTH).json()[0]
    assert zh["playbook"]["action"] != result["playbook"]["action"]
    assert zh["churn_probability"] == result["churn_probability"]


def test_an_unseen_category_is_scored_as_missing_with_a_warning(client):
    unseen = {"account_id": "m", "features": {**GOOD["features"], "industry": "martian mining"}}
    [result] = client.post("/score", json={"accounts": [unseen]}, headers=AUTH).json()
    assert result["warnings"] == ["industry: 'martian mining' was not seen in training; scored as missing"]
    [zh] = client.post("/score", json={"accounts": [unseen], "lang": "zh-CN"}, headers=AUTH).json()
    assert zh["warnings"] == ["industry：训练数据中没有'martian mining'，按缺失值评分"]  # p52: English under zh-CN


def test_a_value_outside_the_training_rows_is_scored_with_a_warning(client, scorer):
    """A probe's request with "Tenure Months" -5 and a 1-5 rating of 9 was scored and worded as reasons
    without a word: the range of the training rows is kept in the bundle and a value outside it is said."""
    facts = scorer.bundle.meta["training"]["feature_facts"]
    top = facts["logins_30d"]["max"]
    assert facts["logins_30d"]["min"] == 0 and "min" not in facts["industry"]  # a category has no range
    far = {"account_id": "far", "features": {**GOOD["features"], "logins_30d": top + 1000}}
    [result] = client.post("/score", json={"accounts": [far]}, headers=AUTH).json()
    assert result["warnings"] == [f"logins_30d: {top + 1000:,.0f} is outside the values of the training rows "
                                  f"(0 to {top:,.0f}): it is scored as the nearest value the model saw"]
    [zh] = client.post("/score", json={"accounts": [far], "lang": "zh-CN"}, headers=AUTH).json()
    assert zh["warnings"] == [f"logins_30d：{top + 1000:,.0f}超出训练数据的取值范围（0至{top:,.0f}），"
                              "按模型见过的最接近的值评分"]
    [inside] = client.post("/score", json={"accounts": [GOOD]}, headers=AUTH).json()
    assert inside["warnings"] == []


def test_in_process_callers_get_the_same_checks(scorer):
    with pytest.raises(RequestError) as caught:
        validate_features([{"account_id": "a", "features": {"logins_30d": -1, "nope": 2}}], scorer.bundle.catalogue)
    assert [loc for loc, _ in caught.value.problems] == ["accounts[0].features.logins_30d",
                                                          "accounts[0].features.nope"]


def test_score_accounts_reads_the_store_and_answers_unknown_ids_in_place(client, scorer, document):
    ids = known_ids(scorer, 2)
    response = client.post("/score_accounts", json={"account_ids": [ids[0], "nobody", ids[1]]}, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    validates(document, response_schema(document, "/score_accounts", 200), body)
    assert [r["account_id"] for r in body] == [ids[0], "nobody", ids[1]]
    assert body[1] == {"account_id": "nobody", "error": "unknown account: no snapshot in the store"}
    zh = client.post("/score_accounts", json={"account_ids": ["nobody"], "lang": "zh-CN"}, headers=AUTH).json()
    assert zh == [{"account_id": "nobody", "error": "未知客户：存储中没有该客户的快照"}]
    expected = {r["account_id"]: r for r in scorer.results(latest_snapshot(scorer.store, ids), "en")}
    for answer in (body[0], body[2]):  # no published scores here: scored live, the sync fields added
        assert answer["source"] == "live" and {k: answer[k] for k in expected[answer["account_id"]]} == expected[
            answer["account_id"]]


def test_model_endpoint_describes_the_model_and_matches_its_schema(client, scorer, document):
    response = client.get("/model", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    validates(document, response_schema(document, "/model", 200, "get"), body)
    ModelInfo.model_validate(body)
    assert body["model_version"] == "3" and body["metrics"]["roc_auc"] > 0.5
    assert body["training_window"]["first_as_of"] < body["training_window"]["last_as_of"]
    specs = {f["name"]: f for f in body["feature_spec"]["features"]}
    assert list(specs) == scorer.bundle.catalogue.names
    assert specs["core_user_share_30d"]["valid_range"] == [0.0, 1.0]
    assert specs["logins_30d"]["type"] == "int"
    training = scorer.bundle.meta["training"]
    assert body["chosen_model"] == training["selection"]["chosen"] and body["calibration"] in (
        "platt", "beta", "isotonic", "isotonic_smooth")
    assert body["left_out_features"] == training["dropped_features"]
    # accepted in a request (the catalogue's inputs) but not read by the model: here events the tiny demo lacks
    assert "evt_mobile_app_30d" in body["left_out_features"] and set(body["left_out_features"]) <= set(specs)


def test_health_and_docs_are_open(client):
    # /metrics needs the server's Prometheus set-up: tested over a real server (test_service.py)
    for path in ("/livez", "/readyz", "/docs.json", "/", "/docs"):
        assert client.get(path).status_code == 200, path


# --- error shapes ------------------------------------------------------------------------

def assert_problem(response, status: int, *mentions: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_TYPE)
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"} and body["status"] == status
    assert body["type"].startswith("urn:churnwatch:problem:")
    for word in mentions:
        assert word in response.text, (word, response.text)
    return body


@pytest.mark.parametrize("body, loc", [
    ({"accounts": [{"account_id": "a", "features": {"logins_30d": "many"}}]}, "accounts[0].features.logins_30d"),
    ({"accounts": [{"account_id": "a", "features": {"logins_30d": -1}}]}, "accounts[0].features.logins_30d"),
    ({"accounts": [{"account_id": "a", "features": {"logins_30d": 2.5}}]}, "accounts[0].features.logins_30d"),
    ({"accounts": [{"account_id": "a", "features": {"core_user_share_30d": 1.5}}]},
     "accounts[0].features.core_user_share_30d"),
    ({"accounts": [{"account_id": "a", "features": {"no_such_feature": 1}}]}, "accounts[0].features.no_such_feature"),
    ({"accounts": [{"account_id": "a", "features": {"mrr": True}}]}, "accounts[0].features.mrr"),
    ({"accounts": [{"account_id": "a", "features": {"industry": 3}}]}, "accounts[0].features.industry"),
    ({"accounts": [{"account_id": "a", "colour": "red"}]}, "accounts[0].colour"),
    ({"accounts": [{"features": {}}]}, "accounts[0].account_id"),
    ({"accounts": []}, "accounts"),
    ({"accounts": [{"account_id": f"a{i}"} for i in range(1001)]}, "accounts"),
    ({"accounts": [GOOD], "lang": "fr"}, "lang"),
    ({"accounts": [GOOD], "colour": "red"}, "colour"),
    ([GOOD], "body"),
    ({"accounts": [GOOD] * 16 + [{"account_id": "z", "features": {"logins_30d": -3}}]},
     "accounts[16].features.logins_30d"),
])
def test_a_body_that_breaks_the_schema_is_422_naming_the_field(client, document, body, loc):
    response = client.post("/score", json=body, headers=AUTH)
    problem = assert_problem(response, 422)
    validates(document, response_schema(document, "/score", 422), problem)
    assert loc in [e["loc"] for e in problem["errors"]]


def test_score_accounts_body_errors_are_422(client):
    for body, loc in (({"account_ids": []}, "account_ids"), ({"account_ids": [""]}, "account_ids[0]"),
                      ({"account_ids": ["a"], "lang": "de"}, "lang"), ({"ids": ["a"]}, "ids")):
        problem = assert_problem(client.post("/score_accounts", json=body, headers=AUTH), 422)
        assert loc in [e["loc"] for e in problem["errors"]]


def test_non_finite_numbers_and_malformed_json(client):
    for raw in (b'{"accounts": [{"account_id": "a", "features": {"mrr": NaN}}]}',
                b'{"accounts": [{"account_id": "a", "features": {"mrr": -Infinity}}]}'):
        response = client.post("/score", content=raw, headers={**AUTH, "Content-Type": "application/json"})
        assert_problem(response, 422, "accounts[0].features.mrr", "finite")
    for raw, words in ((b'{"accounts": [', ("Invalid JSON",)), (b"[" * 10_000 + b"]" * 10_000, ("recursion limit",)),
                       (b'{"accounts": "\xff"}', ("Invalid JSON",))):
        response = client.post("/score", content=raw, headers={**AUTH, "Content-Type": "application/json"})
        assert_problem(response, 400, *words)


def test_token_content_type_size_method_and_path(client, document):
    problem = assert_problem(client.post("/score", json={"accounts": [GOOD]}), 401, "Bearer")
    validates(document, response_schema(document, "/score", 401), problem)
    assert_problem(client.post("/score", json={"accounts": [GOOD]}, headers={"Authorization": "Bearer nope"}), 401)
    assert_problem(client.get("/model"), 401)
    not_utf8 = {"Authorization": "Bearer caf\xe9".encode("latin-1")}  # a header that is not UTF-8
    assert_problem(client.post("/score", json={"accounts": [GOOD]}, headers=not_utf8), 401)
    response = client.post("/score", content=b"accounts=1", headers={**AUTH, "Content-Type": "text/plain"})
    assert_problem(response, 415, "application/json")
    big = b'{"accounts": [' + b" " * 8_000_000 + b"]}"
    assert_problem(client.post("/score", content=big, headers={**AUTH, "Content-Type": "application/json"}),
                   413, "8000000 bytes")
    assert_problem(client.get("/score", headers=AUTH), 405)
    assert_problem(client.post("/nowhere", json={}, headers=AUTH), 404)


def test_a_store_that_cannot_be_read_is_503_with_retry_after(client, scorer, document, tmp_path, monkeypatch):
    monkeypatch.setattr(scorer, "store", tmp_path / "missing.duckdb")  # the service's own scorer
    response = client.post("/score_accounts", json={"account_ids": ["a"]}, headers=AUTH)
    problem = assert_problem(response, 503, "missing.duckdb")
    assert response.headers["retry-after"].isdigit()
    validates(document, response_schema(document, "/score_accounts", 503), problem)


# --- the OpenAPI document and the docs page ----------------------------------------------

def test_document_is_ours_and_documents_every_status(document):
    info = document["info"]
    assert info["title"] == "churnwatch" and info["version"] == package_version()
    assert "BentoML" not in json.dumps(document) and "churn" in info["description"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}
    assert set(document["paths"]) >= {"/score", "/score_accounts", "/model", "/livez", "/readyz", "/metrics"}
    score = document["paths"]["/score"]["post"]
    assert score["security"] == [{"bearer": []}]
    assert {"200", "400", "401", "413", "415", "422"} <= set(score["responses"])
    assert "503" in document["paths"]["/score_accounts"]["post"]["responses"]
    assert document["paths"]["/model"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ModelInfo"}
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]


def test_document_lists_every_feature_with_its_type_and_range(document, scorer):
    features = document["components"]["schemas"]["Features"]
    assert features["additionalProperties"] is False
    assert list(features["properties"]) == scorer.bundle.catalogue.names
    for spec in scorer.bundle.catalogue.features:
        field = features["properties"][spec.name]
        [typed] = [s for s in field["anyOf"] if s != {"type": "null"}]
        assert typed["type"] == {"int": "integer", "float": "number", "category": "string"}[spec.type]
        lo, hi = spec.valid_range
        assert typed.get("minimum") == lo and typed.get("maximum") == hi, spec.name
        assert spec.definition in field["description"] and spec.unit in field["description"]


def test_docs_page_and_document_name_no_other_host(client, document):
    for text in (client.get("/").text, client.get("/docs").text, json.dumps(document)):
        assert not re.search(r"https?://", text), re.search(r".{40}https?://.{40}", text)
    assert "<script src" not in client.get("/").text


# --- property-based: every answer matches the published schema, never a 5xx -------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def valid_value(spec) -> st.SearchStrategy:
    """A value the spec accepts (or null)."""
    if spec.type == "category":
        return st.none() | st.text(max_size=20)
    lo, hi = spec.valid_range
    if spec.type == "int":
        return st.none() | st.integers(int(lo) if lo is not None else -10**9, int(hi) if hi is not None else 10**9)
    return st.none() | st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def score_requests(draw, catalogue) -> tuple[object, bool]:
    """``(body, valid)``: a valid ``/score`` body, or one broken somewhere."""
    valid = draw(st.booleans())
    accounts = []
    for _ in range(draw(st.integers(1, 3))):
        names = draw(st.lists(st.sampled_from(catalogue.names), max_size=10, unique=True))
        feats = {n: draw(valid_value(catalogue[n]) if valid else valid_value(catalogue[n]) | JSON_VALUES)
                 for n in names}
        if not valid and draw(st.booleans()):
            feats[draw(st.text(min_size=1, max_size=10))] = draw(JSON_VALUES)
        account = {"account_id": draw(st.text(min_size=1, max_size=30)), "features": feats}
        if not valid:
            account = draw(st.sampled_from([account, {**account, "account_id": ""}, {"features": feats},
                                            {**account, "x": 1}, {**account, "account_id": draw(JSON_VALUES)}]))
        accounts.append(account)
    body: object = {"accounts": accounts, "lang": draw(st.sampled_from(["en", "zh-CN"]))}
    if not valid:
        body = draw(st.sampled_from([body, {**body, "lang": draw(st.text(max_size=5))}, {"accounts": []},
                                     {**body, draw(st.text(max_size=8)): 1}, accounts, draw(JSON_VALUES)]))
    return body, valid


def check_answer(document: dict, path: str, response) -> None:
    """A 2xx body against the path's 200 schema, a 4xx against the problem schema of its
    documented status; no 5xx."""
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        validates(document, response_schema(document, path, 200), response.json())
        return
    assert response.headers["content-type"].startswith(PROBLEM_TYPE)
    validates(document, response_schema(document, path, response.status_code), response.json())


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_score_answers_match_the_schema(client, document, scorer, data):
    body, valid = data.draw(score_requests(scorer.bundle.catalogue))
    token = data.draw(st.sampled_from([AUTH, AUTH, {}, {"Authorization": "Bearer x"}]))
    response = client.post("/score", json=body, headers=token)
    check_answer(document, "/score", response)
    if not token:
        assert response.status_code == 401
    elif valid and token == AUTH:
        assert response.status_code == 200, response.text
        assert [r["account_id"] for r in response.json()] == [a["account_id"] for a in body["accounts"]]


@pytest.fixture(scope="module")
def some_ids(scorer):
    return known_ids(scorer, 20)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_score_accounts_answers_match_the_schema(client, document, some_ids, data):
    ids = data.draw(st.lists(st.sampled_from(some_ids) | st.text(min_size=1, max_size=40),
                             min_size=1, max_size=5))
    body = data.draw(st.sampled_from([{"account_ids": ids}, {"account_ids": ids, "lang": "zh-CN"},
                                      {"account_ids": [*ids, ""]}, {"account_ids": data.draw(JSON_VALUES)}]))
    response = client.post("/score_accounts", json=body, headers=AUTH)
    check_answer(document, "/score_accounts", response)
    if body == {"account_ids": ids}:
        assert response.status_code == 200 and [r["account_id"] for r in response.json()] == ids


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
def test_any_bytes_get_a_problem_not_a_server_error(client, document, raw):
    response = client.post("/score", content=raw, headers={**AUTH, "Content-Type": "application/json"})
    check_answer(document, "/score", response)
    assert response.status_code in (400, 422)
