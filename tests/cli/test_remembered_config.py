"""The ``--config`` file ``features`` read is remembered in the store, as the data source is: ``score``
and the other commands of that home find the column mapping without ``--config`` again (a probe's
`score` after `features --config app/churnwatch.yaml` stopped at "required column 'account_id' is
missing"), a build of some dates keeps the record, and the home's own churnwatch.yaml or a given
``--config`` still win."""

from __future__ import annotations

import pandas as pd
import yaml

from churnwatch.options import given_config
from core.home import Home
from core.store import connect, read_meta
from tests.foreign.inprocess import run_cli


def _export(folder):
    (folder / "exports").mkdir(parents=True)
    pd.DataFrame({"user": [f"u{i}" for i in range(3)]}).to_csv(folder / "exports" / "accounts.csv", index=False)
    pd.DataFrame({"account_id": [f"u{i}" for i in range(3)], "start_date": "2024-01-01", "end_date": None,
                  "mrr": 10.0}).to_csv(folder / "exports" / "subscriptions.csv", index=False)
    pd.DataFrame({"account_id": [f"u{i}" for i in range(3)], "occurred_at": ["2024-03-01", "2024-03-02", "2024-03-03"],
                  "event_type": "open"}).to_csv(folder / "exports" / "events.csv", index=False)
    config = folder / "churnwatch.yaml"
    config.write_text(yaml.safe_dump({"data": "./exports", "column_mapping": {"accounts": {"user": "account_id"}}}))
    return config


def test_the_config_features_read_is_used_by_the_next_commands(tmp_path):
    config = _export(tmp_path / "app")
    home = tmp_path / "home"
    r = run_cli("features", "--config", config, "--as-of", "2024-03-02", home=home)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "config (remembered for the other commands of this home" in r.stdout
    h = Home.resolve(home)
    assert given_config(h, None) == config.resolve()
    # a build of some dates without --config (as score and monitor make) keeps it
    r = run_cli("features", "--as-of", "2024-03-03", home=home)
    assert r.returncode == 0, r.stderr[-1500:]
    with connect(h.store, read_only=True) as con:
        assert read_meta(con).config_source == str(config.resolve())
    # another source given with --data: next month's export keeps the remembered mapping (the README's
    # recurring run), unless that folder carries a churnwatch.yaml of its own
    assert given_config(h, None, str(tmp_path / "app" / "exports")) == config.resolve()
    (tmp_path / "elsewhere").mkdir()
    assert given_config(h, None, str(tmp_path / "elsewhere")) == config.resolve()
    (tmp_path / "elsewhere" / "churnwatch.yaml").write_text("horizon_days: 60\n")
    assert given_config(h, None, str(tmp_path / "elsewhere")) is None
    # a --config given, or the home's own file, wins
    other = tmp_path / "other.yaml"
    other.write_text("horizon_days: 60\n")
    assert given_config(h, other) == other
    (home / "churnwatch.yaml").write_text("horizon_days: 60\n")
    assert given_config(h, None) is None  # the home's own file is read (context reads it)
    (home / "churnwatch.yaml").unlink()
    config.unlink()  # a remembered file that is gone is not used
    assert given_config(h, None) is None


def test_an_older_store_without_the_record_is_read(tmp_path):
    config = _export(tmp_path / "app")
    home = tmp_path / "home"
    assert run_cli("features", "--config", config, "--as-of", "2024-03-02", home=home).returncode == 0
    with connect(Home.resolve(home).store) as con:
        con.execute("ALTER TABLE snapshot_meta DROP COLUMN config_source")
    assert given_config(Home.resolve(home), None) is None


def test_next_months_export_is_scored_with_the_remembered_mapping(tmp_path):
    """The README's recurring run: `score --data NEW_EXPORT` after `features --config` (a probe's cron line
    failed on its first run: the mapping was set aside for the new folder)."""
    config = _export(tmp_path / "app")
    home = tmp_path / "home"
    assert run_cli("features", "--config", config, "--as-of", "2024-03-02", home=home).returncode == 0
    later = tmp_path / "app" / "exports-2024-04"
    _export(tmp_path / "later")
    (tmp_path / "later" / "exports").rename(later)
    r = run_cli("features", "--data", later, "--as-of", "2024-03-03", home=home)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "required column" not in r.stderr
    with connect(Home.resolve(home).store, read_only=True) as con:
        meta = read_meta(con)
        n = con.execute("SELECT count(*) FROM snapshots WHERE as_of = DATE '2024-03-03'").fetchone()[0]
    assert meta.config_source == str(config.resolve()) and n == 3
