"""A home folder is relocatable: copied to another folder (and the original deleted), it
trains, scores and serves, and nothing it records points back to where it was built."""

from __future__ import annotations

import json
import shutil
import sqlite3

import duckdb
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from churnwatch.cli import app
from core.home import Home
from core.store import connect, read_meta
from demo.generator import write_demo_data
from serving.service import load_scorer, make_service
from training.registry import CHAMPION, MODEL_NAME, load_model, setup


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output[-2000:]}\n{result.exception!r}"
    return result.output


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """(original path, copied Home): a tiny home built, trained and promoted, then copied and deleted."""
    base = tmp_path_factory.mktemp("relocate")
    original = base / "built-here"
    write_demo_data(original / "data", accounts=150, months=12, seed=4)
    cli("features", "--home", str(original), "--data", str(original / "data"))
    cli("train", "--home", str(original))
    cli("promote", "--home", str(original))
    shutil.copytree(original, base / "moved" / "there")
    shutil.rmtree(original)
    return original, Home.resolve(base / "moved" / "there")


def test_nothing_recorded_points_into_the_old_folder(moved, monkeypatch):
    original, home = moved
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with connect(home.store, read_only=True) as con:
        assert read_meta(con).data_source == "data"
    client = setup(home.tracking_uri, home.mlflow_artifacts)
    source = client.get_model_version_by_alias(MODEL_NAME, CHAMPION).source
    assert source.startswith(home.mlflow_artifacts.resolve().as_uri() + "/")
    with sqlite3.connect(home.mlflow_db) as con:
        uris = [r[0] for r in con.execute("SELECT artifact_uri FROM runs UNION ALL SELECT source FROM model_versions")]
    assert uris and not [u for u in uris if str(original) in u]
    bundle = load_model(client)
    assert bundle.test_block_source()[0] == home.store.resolve()
    # a registered version's own folder, given as a path (a probe's `score --model .../artifacts/bundle`
    # stored the path as the model version): known by its number
    folder = next(home.mlflow_artifacts.rglob("bundle.json")).parent
    assert load_model(client, str(folder)).meta["model_version"] == 1


def test_copied_home_trains_scores_and_serves(moved, monkeypatch):
    original, home = moved
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = cli("train", "--home", str(home.root))
    assert "registered model version 2" in out
    out = cli("promote", "--home", str(home.root), "--version", "2", "--force", "--reason", "relocation test")
    assert "version 2: promoted" in out
    out = cli("score", "--home", str(home.root))
    assert "with model version 2" in out
    with duckdb.connect(str(home.store), read_only=True) as con:
        scored = con.execute("SELECT count(DISTINCT account_id) FROM score_history").fetchone()[0]
        account = con.execute("SELECT min(account_id) FROM score_history").fetchone()[0]
    assert scored > 50

    monkeypatch.setenv("CHURNWATCH_HOME", str(home.root))
    monkeypatch.delenv("CHURNWATCH_MODEL", raising=False)
    monkeypatch.delenv("CHURNWATCH_STORE", raising=False)
    scorer = load_scorer()
    with TestClient(make_service(scorer.bundle.catalogue, lambda: scorer).to_asgi()) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/model").json()["model_version"] == "2"
        answer = client.post("/score_accounts", json={"account_ids": [account]})
    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["account_id"] == account and 0 <= answer.json()[0]["churn_probability"] <= 1
    assert not original.exists(), "the copy wrote into the folder it was copied from"
    runs = json.dumps([r[0] for r in sqlite3.connect(home.mlflow_db).execute("SELECT artifact_uri FROM runs")])
    assert str(original) not in runs
