"""Property-based API tests from the service's own OpenAPI document (issue 14, item 5).

A real BentoML server on 127.0.0.1 serving the package's tiny model, with scores published for
its last snapshot date; ``st run`` (schemathesis 4, ``benchmarks/schemathesis_run.py``) with every
check over every endpoint: no 5xx, every status code, content type, header and body as documented,
valid requests accepted, invalid ones refused, undeclared methods 405 with ``Allow``. With the token
in every phase (examples, coverage, fuzzing, stateful) and a few examples per endpoint; without the
token in the fuzzing and stateful phases (every secured answer is then the guard's 401, and the
coverage phase would send its 1,400 requests for that one answer). The big run is the benchmark.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from benchmarks.schemathesis_run import run
from serving.batch import score_dates
from serving.launch import start_server, stop_server
from serving.published import publish_scores
from tests.services import free_port

TOKEN = "schemathesis-token"
OPERATIONS = 8  # POST /score, /score_accounts; GET /scores, /accounts/{id}/history, /model, /livez, /readyz, /metrics


@pytest.fixture(scope="module")
def server(trained_setup, tmp_path_factory):
    tmp, settings, bundle = trained_setup
    work = tmp_path_factory.mktemp("schemathesis")
    store = work / "s.duckdb"
    shutil.copy(tmp / "s.duckdb", store)
    with duckdb.connect(str(store), read_only=True) as con:
        last = con.execute("SELECT max(as_of) FROM snapshots").fetchone()[0]
    score_dates(tmp / "d", settings, store, bundle, [last], "1")
    publish_scores(store, settings)
    (work / "home").mkdir()
    env = {"CHURNWATCH_HOME": str(work / "home"), "CHURNWATCH_MODEL": str(bundle.save(work / "bundle")),
           "CHURNWATCH_STORE": str(store), "CHURNWATCH_API_TOKEN": TOKEN, "BENTOML_HOME": str(work / "bentoml"),
           "CHURNWATCH_WORKERS": "1"}
    proc, base = start_server(free_port(), env, timeout_seconds=120)
    try:
        yield base
    finally:
        stop_server(proc)


@pytest.mark.slow
def test_every_endpoint_with_the_token_answers_as_documented(server):
    result = run(server, TOKEN, max_examples=5, seed=14, workers=2, timeout_seconds=300)
    assert result.exit_code == 0 and not result.failures, "\n".join(sorted(set(result.failures))) + result.output
    assert result.operations == OPERATIONS
    assert result.cases > 500  # the coverage phase's boundary values of every feature were sent


@pytest.mark.slow
def test_every_endpoint_without_the_token_answers_as_documented(server):
    result = run(server, None, max_examples=10, seed=14, workers=2, timeout_seconds=300,
                 phases="fuzzing,stateful")
    assert result.exit_code == 0 and not result.failures, "\n".join(sorted(set(result.failures))) + result.output
    assert result.operations == OPERATIONS
    assert result.cases >= OPERATIONS * 5
