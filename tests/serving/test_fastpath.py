"""The fast path (``serving/fastpath.py``): ``/score_accounts`` lookups and small ``/score``
requests answered in front of BentoML's API machinery, with the same answers as BentoML's
endpoint and behind the same guard (real DuckDB store, real LightGBM, the ASGI app)."""

from __future__ import annotations

import asyncio
import json
import shutil

import duckdb
import pandas as pd
import pytest
from starlette.testclient import TestClient

from core.scores import read_history
from core.store import read_snapshots
from serving import fastpath
from serving.batch import score_dates
from serving.fastpath import INLINE_MAX_ACCOUNTS, FastRoutes, Hot
from serving.published import PublishedScores, publish_scores
from serving.scoring import Scorer
from serving.service import _score_accounts_request, _score_request, make_service, scored_json

TOKEN = "fast-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def setup(trained_setup, tmp_path_factory):
    """(client, store, scorer, ids scored on the last date, request accounts of that date)."""
    tmp, settings, bundle = trained_setup
    store = tmp_path_factory.mktemp("fast") / "s.duckdb"
    shutil.copy(tmp / "s.duckdb", store)
    with duckdb.connect(str(store), read_only=True) as con:
        last = con.execute("SELECT max(as_of) FROM snapshots").fetchone()[0]
    score_dates(tmp / "d", settings, store, bundle, [last], "1")
    publish_scores(store, settings)
    ids = list(read_history(store, last)["account_id"])
    rows = read_snapshots(store, as_of=[last]).head(INLINE_MAX_ACCOUNTS + 4)
    accounts = []
    for _, r in rows.iterrows():
        feats = {}
        for f in bundle.catalogue.features:
            v = r[f.name]
            if pd.isna(v):  # None, NaN, or pandas' NA of an int column with a null
                continue
            feats[f.name] = str(v) if f.type == "category" else float(v)
        accounts.append({"account_id": str(r["account_id"]), "features": feats})
    scorer = Scorer(bundle=bundle, settings=settings, model_version="1", store=store)
    with TestClient(make_service(bundle.catalogue, lambda: scorer, token=TOKEN).to_asgi()) as client:
        yield client, store, scorer, ids, accounts


class Inner:
    """The app behind the middleware: records what reaches it, answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        message = await receive()
        self.bodies.append(message["body"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call(app, path: str, body: bytes) -> tuple[int, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "POST", "path": path, "headers": []}, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_lookups_and_small_requests_skip_bentoml_and_the_rest_reaches_it(setup):
    _, store, scorer, ids, accounts = setup
    published = PublishedScores()
    published.bind(store, scorer.settings)
    hot = Hot()
    hot.scorer, hot.published = scorer, published
    hot.results = lambda accs, lang, as_of=None: scored_json(scorer, accs, lang, as_of)
    inner = Inner()
    app = FastRoutes(inner, hot, _score_request(scorer.bundle.catalogue), _score_accounts_request())

    status, body = call(app, "/score_accounts", json.dumps({"account_ids": ids[:2], "lang": "zh-CN"}).encode())
    assert status == 200 and inner.bodies == []
    answers = published.current().answers["zh-CN"]
    assert json.loads(body) == [json.loads(answers[a]) for a in ids[:2]]
    status, body = call(app, "/score", json.dumps({"accounts": accounts[:2]}).encode())
    assert status == 200 and inner.bodies == []
    assert [r["account_id"] for r in json.loads(body)] == [a["account_id"] for a in accounts[:2]]

    passed = [json.dumps({"account_ids": [ids[0], "nobody"]}).encode(),  # an id without a score: live
              json.dumps({"account_ids": ids[:1], "live": True}).encode(),
              json.dumps({"account_ids": []}).encode(),  # invalid: BentoML words the error
              json.dumps({"accounts": accounts[:INLINE_MAX_ACCOUNTS + 1]}).encode(),  # a batch: a thread
              b"{not json"]
    for body in passed:
        path = "/score" if b"accounts\"" in body and b"account_ids" not in body else "/score_accounts"
        assert call(app, path, body)[0] == 299
    assert inner.bodies == passed  # each reached BentoML whole


def test_a_large_plainly_valid_batch_is_scored_with_array_checks(setup, monkeypatch):
    client, _, scorer, _, accounts = setup
    batch = accounts[:INLINE_MAX_ACCOUNTS + 2]
    through_bentoml = client.post("/score", json={"accounts": batch, "lang": "zh-CN"}, headers=AUTH).json()
    hot = Hot()
    hot.scorer = scorer
    inner = Inner()
    app = FastRoutes(inner, hot, _score_request(scorer.bundle.catalogue), _score_accounts_request())
    monkeypatch.setattr(fastpath, "SMALL_BODY_BYTES", 0)  # every body counts as large
    status, body = call(app, "/score", json.dumps({"accounts": batch, "lang": "zh-CN"}).encode())
    assert status == 200 and inner.bodies == []
    assert json.loads(body) == through_bentoml
    bad = [dict(batch[0], features={**batch[0]["features"], "tenure_days": -1.0}), *batch[1:]]
    for body in (json.dumps({"accounts": bad}).encode(), json.dumps({"accounts": batch, "lang": "fr"}).encode(),
                 json.dumps({"accounts": batch, "lang": ["en"]}).encode(),
                 json.dumps({"accounts": batch, "other": 1}).encode(), b'{"accounts": [NaN]}',
                 b"[" * 100_000 + b"]" * 100_000):
        assert call(app, "/score", body)[0] == 299  # not plainly valid: BentoML and pydantic word it
    assert len(inner.bodies) == 6


def test_the_fast_answers_equal_bentomls(setup):
    client, _, _, ids, accounts = setup
    batch = accounts[:INLINE_MAX_ACCOUNTS + 1]  # over the inline limit: BentoML's endpoint answers
    slow = client.post("/score", json={"accounts": batch, "lang": "zh-CN"}, headers=AUTH)
    assert slow.status_code == 200
    fast = [client.post("/score", json={"accounts": [a], "lang": "zh-CN"}, headers=AUTH).json()[0] for a in batch]
    for f, s in zip(fast, slow.json()):  # one row or 17 in a matrix: the last bits of the linear part's sum
        assert f.pop("churn_probability") == pytest.approx(s.pop("churn_probability"), rel=1e-9, abs=1e-15)
        assert f == s
    # /score_accounts: an unknown id sends the request to BentoML; the known ids' answers are the same
    through_bentoml = client.post("/score_accounts", json={"account_ids": [*ids[:3], "nobody"]}, headers=AUTH)
    looked_up = client.post("/score_accounts", json={"account_ids": ids[:3]}, headers=AUTH)
    assert through_bentoml.status_code == looked_up.status_code == 200
    assert through_bentoml.json()[:3] == looked_up.json()
    assert "error" in through_bentoml.json()[3]


def test_the_guard_still_applies_to_the_fast_path(setup):
    client, _, _, ids, accounts = setup
    no_token = client.post("/score_accounts", json={"account_ids": ids[:1]})
    assert no_token.status_code == 401 and no_token.headers["content-type"].startswith("application/problem+json")
    assert client.post("/score", json={"accounts": accounts[:1]}).status_code == 401
    wrong_type = client.post("/score_accounts", content=json.dumps({"account_ids": ids[:1]}),
                             headers={**AUTH, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    bad = client.post("/score", json={"accounts": [{"account_id": "a", "features": {"tenure_days": -5}}]},
                      headers=AUTH)
    assert bad.status_code == 422 and "accounts[0].features.tenure_days" in bad.text
