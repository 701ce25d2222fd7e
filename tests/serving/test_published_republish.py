"""A scoring run killed between its commit and its publication (issue 14, item 4): the service's
next start publishes again from the committed history (real DuckDB, real LightGBM, the ASGI app)."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from core.scores import read_history
from serving.batch import score_dates
from serving.published import publish_scores, published_paths, published_stamp, republish_if_behind
from serving.scoring import Scorer
from serving.service import make_service
from tests.stores import unscored_copy


@pytest.fixture(autouse=True)
def _fresh_metrics_per_test():
    """Two tests here each start an in-process app, which registers BentoML's request metrics in
    prometheus_client's default registry: each test leaves the registry as it found it (the
    package's fixture does it per module)."""
    from prometheus_client import REGISTRY

    before = set(REGISTRY._collector_to_names)  # noqa: SLF001 - prometheus_client has no public listing
    yield
    for collector in set(REGISTRY._collector_to_names) - before:  # noqa: SLF001
        REGISTRY.unregister(collector)


def test_the_next_start_republishes_a_run_whose_publication_was_cut_off(trained_setup, tmp_path):
    tmp, settings, bundle = trained_setup
    store = unscored_copy(tmp, tmp_path / "s.duckdb")
    with duckdb.connect(str(store), read_only=True) as con:
        before, last = [r[0] for r in con.execute("SELECT DISTINCT as_of FROM snapshots ORDER BY 1").fetchall()][-2:]
    score_dates(tmp / "d", settings, store, bundle, [before], "1")
    publish_scores(store, settings)
    assert republish_if_behind(store, settings) is None  # up to date: nothing written
    published_run = published_stamp(store)
    # the next run commits and is "killed" before it publishes: the file is one run old
    score_dates(tmp / "d", settings, store, bundle, [last], "2")
    assert published_stamp(store) == published_run
    account = read_history(store, last)["account_id"].iloc[0]
    old = pq.read_table(published_paths(store)[0]).to_pandas().set_index("account_id")
    assert str(old.loc[account, "as_of"]) == str(before) and old.loc[account, "model_version"] == "1"

    scorer = Scorer(bundle=bundle, settings=settings, model_version="2", store=store)
    with TestClient(make_service(bundle.catalogue, lambda: scorer).to_asgi()) as client:
        answer = client.post("/score_accounts", json={"account_ids": [account]}).json()[0]
    assert answer["source"] == "published"
    assert answer["as_of"] == str(last) and answer["model_version"] == "2"
    assert answer["previous"]["as_of"] == str(before)
    assert published_stamp(store) != published_run
    assert republish_if_behind(store, settings) is None  # and now it is up to date


def test_a_publication_without_its_file_is_written_again(trained_setup, tmp_path):
    tmp, settings, bundle = trained_setup
    store = unscored_copy(tmp, tmp_path / "s.duckdb")
    assert republish_if_behind(store, settings) is None  # no score yet: nothing to publish
    with duckdb.connect(str(store), read_only=True) as con:
        last = con.execute("SELECT max(as_of) FROM snapshots").fetchone()[0]
    score_dates(tmp / "d", settings, store, bundle, [last], "1")
    assert not published_paths(store)[0].exists()
    assert republish_if_behind(store, settings) == published_paths(store)[0]
    rows = pq.read_table(published_paths(store)[0]).num_rows
    assert rows == len(read_history(store, last)) and rows > 0


def test_a_store_that_cannot_be_opened_is_left_alone(trained_setup, tmp_path):
    _, settings, _ = trained_setup
    assert republish_if_behind(tmp_path / "missing.duckdb", settings) is None
    assert not (tmp_path / "serving").exists()


def test_a_republication_that_cannot_be_written_leaves_the_service_starting(trained_setup, tmp_path):
    tmp, settings, bundle = trained_setup
    store = unscored_copy(tmp, tmp_path / "s.duckdb")
    with duckdb.connect(str(store), read_only=True) as con:
        last = con.execute("SELECT max(as_of) FROM snapshots").fetchone()[0]
    score_dates(tmp / "d", settings, store, bundle, [last], "1")
    published_paths(store)[0].parent.write_text("a file where the folder should be")  # cannot be written
    assert republish_if_behind(store, settings) is None
    scorer = Scorer(bundle=bundle, settings=settings, model_version="1", store=store)
    account = read_history(store, last)["account_id"].iloc[0]
    with TestClient(make_service(bundle.catalogue, lambda: scorer).to_asgi()) as client:
        answer = client.post("/score_accounts", json={"account_ids": [account]}).json()[0]
    assert answer["source"] == "live" and answer["as_of"] == str(last)  # no publication: scored live
