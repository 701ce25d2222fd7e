"""Sources remembered (issue 12, item 9): ``features`` records its data source in the
store; the commands after it read that source unless ``--data`` says otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.store import connect, read_meta, recorded_source, source_for_store, source_from_store
from features.pipeline import build_snapshots
from features.sources import resolve_data
from tests.tiny import D, T, settings, write_tables

AS_OF = [D(2024, 3, 1)]


def write_data(folder: Path) -> Path:
    return write_tables(folder, {
        "subscriptions": [dict(account_id=a, start_date=D(2023, 1, 1), end_date=None, mrr=10.0) for a in "ab"],
        "events": [dict(account_id=a, user_id="u", occurred_at=T(2024, m, 1, 9), event_type="login", quantity=1.0)
                   for a in "ab" for m in (1, 2, 3, 4)],
    })


def test_a_source_inside_the_home_is_stored_relative_and_survives_a_copy(tmp_path):
    home = tmp_path / "home"
    write_data(home / "data")
    build_snapshots(home / "data", settings(), home / "store.duckdb", as_of=AS_OF, home=home)
    with connect(home / "store.duckdb", read_only=True) as con:
        assert read_meta(con).data_source == "data"
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    assert recorded_source(copy / "store.duckdb", copy) == str((copy / "data").resolve())


def test_a_source_outside_the_home_is_stored_absolute(tmp_path):
    data = write_data(tmp_path / "export")
    result = build_snapshots(data, settings(), tmp_path / "home" / "store.duckdb", as_of=AS_OF)
    assert result.data_source == str(data.resolve())
    assert recorded_source(tmp_path / "home" / "store.duckdb", tmp_path / "home") == str(data.resolve())


def test_a_database_url_is_stored_without_its_password():
    kept = source_for_store("postgresql+psycopg://cw:s3cret@127.0.0.1:5432/crm", Path("/h"))
    assert "s3cret" not in kept and kept == "postgresql+psycopg://cw@127.0.0.1:5432/crm"
    assert source_from_store(kept, Path("/h")) == kept


def test_resolution_order(tmp_path):
    data = write_data(tmp_path / "export")
    store = tmp_path / "home" / "store.duckdb"
    assert resolve_data(None, None, store, store.parent) is None  # nothing built, nothing configured
    build_snapshots(data, settings(), store, as_of=AS_OF)
    rec = str(data.resolve())
    assert resolve_data("/given", "/configured", store, store.parent) == "/given"
    assert resolve_data(None, "/configured", store, store.parent) == rec
    assert resolve_data(None, "/configured", store, store.parent, prefer_recorded=False) == "/configured"
    assert resolve_data(None, None, store, store.parent, prefer_recorded=False) == rec


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]),
                                                        os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "500"}
    return subprocess.run([sys.executable, "-m", "churnwatch", *args, "--home", str(home)],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def built_home(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    data = write_data(tmp / "export")
    r = cli("features", "--data", str(data), "--as-of", "2024-03-01", home=tmp / "home")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"data source (remembered for score, report, diagnose, performance): {data.resolve()}" in r.stdout
    return tmp / "home", data


@pytest.fixture
def later(run_cli, monkeypatch):
    """``later(*args, home=...)``: a command after ``features`` (the real child process above) through
    ``churnwatch.cli.main`` in this process: what it reads, the recorded source, is in the store."""
    monkeypatch.setenv("COLUMNS", "500")
    return lambda *args, home: run_cli(*args, "--home", home)


def test_commands_after_features_use_the_recorded_source(built_home, later):
    home, data = built_home
    from churnwatch.options import context as _context

    assert _context(home, None)[1].data == str(data.resolve())  # what score, report, diagnose read
    r = later("metrics", home=home)
    assert r.returncode == 0, r.stderr[-2000:]


def test_score_without_data_reads_the_recorded_source(built_home, later):
    home, _ = built_home
    r = later("score", "--as-of", "2024-03-01", home=home)
    # no model is registered in this home: score gets past the data source and stops at the model
    assert "no data source" not in r.stdout + r.stderr
    assert r.returncode == 2 and "no champion model" in r.stdout + r.stderr


def test_data_given_on_the_command_line_wins(built_home, tmp_path, later):
    home, _ = built_home
    r = later("metrics", "--data", str(tmp_path / "nowhere"), home=home)
    assert r.returncode == 2 and "nowhere" in r.stdout + r.stderr


def test_a_plain_features_does_not_go_back_to_the_config_s_source_a_later_run_replaced(tmp_path, run_cli):
    """Probe p49: the monthly run's ``score --data export2`` was remembered, then a plain ``features`` rebuilt from
    the config's ``data: export1`` (its later dates dropped, the next ``score`` a month back). Now it stops and
    names both sources, whatever else in the config was edited since (a reviewer: a guard by the file's time let
    a ``profile.columns`` edit through), until ``--data`` says which once."""
    from core.settings import CONFIG_FILE_NAME, dump_settings, load_settings

    home = tmp_path / "home"
    old, new = write_data(tmp_path / "export1"), write_data(tmp_path / "export2")
    config = home / CONFIG_FILE_NAME
    home.mkdir()
    dump_settings(settings().model_copy(update={"data": str(old)}), config)
    assert run_cli("features", "--as-of", "2024-03-01", "--home", home).returncode == 0
    assert run_cli("features", "--data", new, "--as-of", "2024-03-01", "--home", home).returncode == 0
    edited = load_settings(config)  # an unrelated edit after that run
    dump_settings(edited.model_copy(update={"profile": edited.profile.model_copy(update={"max_categories": 40})}),
                  config)
    r = run_cli("features", "--as-of", "2024-03-01", "--home", home)
    said = " ".join(r.stderr.split())
    assert r.returncode == 2 and "Traceback" not in said, said
    assert f"the store was last built from {new.resolve()} (data end 2024-04-02)" in said, said
    assert f"the data: of {config} is {old}" in said and f"--data {new.resolve()} to go on with it" in said
    assert f"--data {old} to rebuild from the config's" in said
    assert recorded_source(home / "store.duckdb", home) == str(new.resolve())  # nothing rebuilt
    assert run_cli("features", "--data", old, "--as-of", "2024-03-01", "--home", home).returncode == 0
    r = run_cli("features", "--as-of", "2024-03-01", "--home", home)  # the two agree again: a plain run works
    assert r.returncode == 0, r.stderr[-2000:]
    assert recorded_source(home / "store.duckdb", home) == str(old.resolve())
