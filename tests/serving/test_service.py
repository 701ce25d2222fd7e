"""A real BentoML server on a free port of 127.0.0.1: results, validation, auth; and it follows the
saved settings versions (issue 16, item 8): a playbook changed with ``churnwatch settings set`` (a
version saved in the operational store by another process) is in its next answer, without a restart."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from core.store import latest_snapshot
from serving.launch import start_server, stop_server
from serving.scoring import Scorer, validate_features
from tests.services import free_port
from tests.stores import unscored_copy

TOKEN = "s3cret-token"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(trained_setup):
    tmp, settings, bundle = trained_setup
    bundle.save(tmp / "bundle")
    store = unscored_copy(tmp, tmp / "service.duckdb")  # /score_accounts reads the snapshots: no published scores
    # GOOD gives a handful of features: scored whatever share of the gain they carry (test_coverage.py)
    (tmp / "home").mkdir(exist_ok=True)
    (tmp / "home" / "churnwatch.yaml").write_text("serving:\n  min_coverage: 0\n", encoding="utf-8")
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(update={"min_coverage": 0.0})})
    env = {"CHURNWATCH_HOME": str(tmp / "home"), "CHURNWATCH_MODEL": str(tmp / "bundle"),
           "CHURNWATCH_STORE": str(store), "CHURNWATCH_API_TOKEN": TOKEN,
           "BENTOML_HOME": str(tmp / "bentoml")}
    proc, base = start_server(free_port(), env, timeout_seconds=90)
    try:
        yield base, Scorer(bundle=bundle, settings=settings, model_version=str(tmp / "bundle"),
                           store=store), tmp / "home"
    finally:
        stop_server(proc)


def call(base, path, body=None, token=TOKEN, content_type="application/json", raw=None, method="POST"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        text = err.read().decode()
        return err.code, text


GOOD = {"account_id": "acme", "features": {"logins_30d": 3, "logins_30d_change": -0.6, "days_overdue": 40,
                                          "tickets_30d": 4, "industry": "retail", "mrr": 120.0}}


def test_good_request_returns_the_fields_and_equals_in_process(served):
    base, scorer, _ = served
    status, body = call(base, "/score", {"accounts": [GOOD], "lang": "en"})
    assert status == 200 and len(body) == 1
    r = body[0]
    assert set(r) >= {"account_id", "churn_probability", "health_score", "tier", "reasons", "strengths",
                      "playbook", "model_version"}
    assert set(r["playbook"]) == {"action", "owner", "respond_within"}
    expected = scorer.results(validate_features([GOOD], scorer.bundle.catalogue), "en")[0]
    assert r["churn_probability"] == pytest.approx(expected["churn_probability"], abs=1e-12)
    assert (r["health_score"], r["tier"]) == (expected["health_score"], expected["tier"])
    assert r["reasons"] == expected["reasons"]
    status, zh = call(base, "/score", {"accounts": [GOOD], "lang": "zh-CN"})
    assert status == 200 and zh[0]["playbook"]["action"] != r["playbook"]["action"]


@pytest.mark.parametrize("body, field", [
    ({"accounts": [{"account_id": "a", "features": {"logins_30d": "many"}}]}, "logins_30d"),
    ({"accounts": [{"account_id": "a", "features": {"logins_30d": -1}}]}, "logins_30d"),
    ({"accounts": [{"account_id": "a", "features": {"core_user_share_30d": 1.5}}]}, "core_user_share_30d"),
    ({"accounts": [{"account_id": "a", "features": {"no_such_feature": 1}}]}, "no_such_feature"),
    ({"accounts": [{"account_id": "a", "features": {}, "colour": "red"}]}, "colour"),
    ({"accounts": []}, "accounts"),
    ({"accounts": [{"account_id": f"a{i}"} for i in range(1001)]}, "accounts"),
    ({"accounts": [{"features": {}}]}, "account_id"),
    ({"accounts": [GOOD], "lang": "fr"}, "lang"),
    ({"accounts": [GOOD], "colour": "red"}, "colour"),
    ([GOOD], "body"),
    ({"accounts": [{"account_id": "a", "features": {"mrr": True}}]}, "mrr"),  # a boolean is not 1.0
    # 17 accounts: scored in a worker thread, not on the event loop; the error is still a 4xx
    ({"accounts": [GOOD] * 16 + [{"account_id": "z", "features": {"logins_30d": -3}}]}, "accounts[16]"),
])
def test_malformed_requests_get_a_4xx_naming_the_field(served, body, field):
    status, text = call(served[0], "/score", body)
    assert 400 <= status < 500, (status, text)
    assert field in text


def test_non_finite_values_invalid_json_and_content_type(served):
    """Every error is problem details: NaN and Infinity break the field's schema (422, naming
    it); a body that is not JSON is 400; another content type 415."""
    base = served[0]
    for raw in (b'{"accounts": [{"account_id": "a", "features": {"mrr": NaN}}]}',
                b'{"accounts": [{"account_id": "a", "features": {"mrr": Infinity}}]}'):
        status, text = call(base, "/score", raw=raw)
        assert status == 422 and "accounts[0].features.mrr" in text and "finite" in text, text
    status, text = call(base, "/score", raw=b'{"accounts": [')
    assert status == 400 and "invalid json" in text.lower()
    status, text = call(base, "/score", raw=b"accounts=1", content_type="text/plain")
    assert status == 415 and "application/json" in text
    status, text = call(base, "/score", raw=b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and "recursion limit" in text
    assert json.loads(text)["type"].startswith("urn:churnwatch:problem:")


def test_a_header_that_is_not_utf8_is_not_a_server_error(served):
    base = served[0]
    req = urllib.request.Request(base + "/score", data=json.dumps({"accounts": [GOOD]}).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}",
                                          "X-Note": "caf\xe9"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def test_batch_and_snapshot_scoring_agree(served):
    """The request path (FeatureRows) and the batch path (a snapshot frame) give the same results."""
    base, scorer, _ = served

    with duckdb.connect(str(scorer.store), read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT DISTINCT account_id FROM snapshots ORDER BY 1 LIMIT 40").fetchall()]
    rows = latest_snapshot(scorer.store, ids)
    names = scorer.bundle.catalogue.names
    items = [{"account_id": r["account_id"],
              "features": {n: (r[n] if isinstance(r[n], str) else float(r[n])) for n in names
                           if not pd.isna(r[n])}}  # an int column with a null reads pandas' NA
             for _, r in rows.iterrows()]
    from_frame = scorer.results(rows, "en")
    status, over_http = call(base, "/score", {"accounts": items})
    assert status == 200 and len(over_http) == len(from_frame) == 40
    for a, b in zip(over_http, from_frame):
        assert a["account_id"] == b["account_id"] and a["tier"] == b["tier"]
        assert a["churn_probability"] == pytest.approx(b["churn_probability"], abs=1e-12)
        assert a["reasons"] == b["reasons"] and a["strengths"] == b["strengths"]


def test_token_missing_or_wrong_is_401_and_health_is_open(served):
    base = served[0]
    assert call(base, "/score", {"accounts": [GOOD]}, token=None)[0] == 401
    assert call(base, "/score", {"accounts": [GOOD]}, token="wrong")[0] == 401
    assert urllib.request.urlopen(base + "/readyz", timeout=5).status == 200
    assert urllib.request.urlopen(base + "/metrics", timeout=5).status == 200


def test_score_accounts_reads_the_latest_snapshot_and_reports_unknown_ids(served):
    base, scorer, _ = served

    with duckdb.connect(str(scorer.store), read_only=True) as con:
        some = [r[0] for r in con.execute("SELECT DISTINCT account_id FROM snapshots ORDER BY 1 LIMIT 2").fetchall()]
    rows = latest_snapshot(scorer.store, some)
    known = rows["account_id"].tolist()
    assert len(known) == 2
    status, body = call(base, "/score_accounts", {"account_ids": [*known, "nobody"]})
    assert status == 200 and [r["account_id"] for r in body] == [*known, "nobody"]
    assert body[-1]["error"].startswith("unknown account")
    expected = {r["account_id"]: r for r in scorer.results(rows, "en")}
    for r in body[:-1]:
        assert r["churn_probability"] == pytest.approx(expected[r["account_id"]]["churn_probability"], abs=1e-12)


def test_a_churned_account_scored_live_is_stale_with_its_churn_day_and_no_playbook(served):
    """An account without a published score is scored from its latest snapshot; when that snapshot is
    older than the store's latest date the account is no longer active (a probe's Paddle export: a
    customer who churned in June was answered "medium_risk", stale false, churned_on null, with a
    playbook, from a snapshot 189 days old)."""
    base, scorer, _ = served
    with duckdb.connect(str(scorer.store), read_only=True) as con:
        end = con.execute("SELECT max(as_of) FROM snapshots").fetchone()[0]
        gone, as_of, days_left = con.execute(
            "SELECT account_id, as_of, days_to_term_end FROM snapshots QUALIFY row_number() OVER "
            "(PARTITION BY account_id ORDER BY as_of DESC) = 1 AND as_of < ? - INTERVAL 30 DAY "
            "ORDER BY account_id LIMIT 1", [end]).fetchone()
        active = con.execute("SELECT min(account_id) FROM snapshots WHERE as_of = ?", [end]).fetchone()[0]
    status, body = call(base, "/score_accounts", {"account_ids": [gone, active]})
    assert status == 200, body
    churned, current = body
    ended = min(as_of + dt.timedelta(days=int(days_left)), end) if days_left == days_left else end
    assert churned["source"] == "live" and churned["as_of"] == as_of.isoformat()
    assert churned["churned_on"] == ended.isoformat() and churned["stale"] is True
    assert churned["stale_reason"] == f"no longer a customer: churned on {ended} (not active on {end})"
    assert churned["tier"] is None and churned["playbook"] is None and churned["respond_within_hours"] is None
    assert 0 < churned["churn_probability"] < 1  # the score itself is still the one of its last snapshot
    assert current["as_of"] == end.isoformat() and current["stale"] is False and current["churned_on"] is None
    assert current["tier"] is not None and current["playbook"] is not None


def test_model_endpoint(served):
    base = served[0]
    status, body = call(base, "/model", method="GET", content_type=None)
    assert status == 200
    assert body["metrics"]["roc_auc"] > 0.5
    assert {f["name"] for f in body["feature_spec"]["features"]} >= {"logins_30d", "days_overdue"}


def test_a_saved_playbook_is_in_the_next_answer_without_restart(served):
    """Last in the module: it saves a settings version the server then follows."""
    base, scorer, home = served
    with duckdb.connect(str(scorer.store), read_only=True) as con:  # active on the latest date: it has a playbook
        account = con.execute("SELECT min(account_id) FROM snapshots WHERE as_of = (SELECT max(as_of) "
                              "FROM snapshots)").fetchone()[0]
    body = {"account_ids": [account], "live": True}
    status, answer = call(base, "/score_accounts", body)
    assert status == 200, answer
    tier = answer[0]["tier"]
    assert answer[0]["playbook"]["respond_within"] != "90 minutes"
    saved = subprocess.run([sys.executable, "-m", "churnwatch", "settings", "set",
                            f"playbooks.{tier}.respond_within=90 minutes", f"playbooks.{tier}.action_en=Call today",
                            "--as", "admin", "--home", str(home)], capture_output=True, text=True, timeout=180,
                           cwd=ROOT)
    assert saved.returncode == 0, saved.stderr
    status, answer = call(base, "/score_accounts", body)
    assert status == 200, answer
    assert answer[0]["playbook"] == {**answer[0]["playbook"], "action": "Call today", "respond_within": "90 minutes"}
