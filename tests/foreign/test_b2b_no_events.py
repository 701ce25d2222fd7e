"""A B2B company without product analytics, from the CLI (issue 12): the four-tool export of
``tests/foreign/b2b.py`` without its Segment log (a CRM, Stripe's billing periods and invoices,
Zendesk), and the help desk's tickets keyed by the organisation's name as a newcomer maps them first.

Without events the path runs features -> train -> promote -> score -> explain, every event feature
null (never 0) and left out of the model, the tickets and invoices read; tickets keyed by names are
refused with both kinds of id named, not set aside row by row into counts of 0."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
import yaml

from churnwatch.options import tracking
from core.home import Home
from tests.foreign.b2b import b2b_config, b2b_exports, b2b_prepare
from tests.foreign.inprocess import run_cli
from tests.foreign.inprocess import step_ok as _ok
from training.registry import load_version

pytestmark = pytest.mark.slow  # five CLI steps on 150 accounts


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    work = tmp_path_factory.mktemp("b2b-no-events")
    b2b_exports(work / "raw", n=150, seed=5)
    data = b2b_prepare(work / "raw", work / "periods", "periods")
    (data / "events.csv").unlink()
    config = b2b_config("../periods", "periods")
    config["column_mapping"].pop("events")
    config.pop("event_roles")
    home = work / "home"
    home.mkdir()
    (home / "churnwatch.yaml").write_text(yaml.safe_dump(config))
    steps = {"features": run_cli("features", home=home), "train": run_cli("train", home=home)}
    if steps["train"].returncode == 0:
        steps["promote"] = run_cli("promote", home=home)
        steps["score"] = run_cli("score", home=home)
    return {"work": work, "home": home, "steps": steps, "config": config}


def test_the_path_runs_without_events_and_their_features_are_unknown(path):
    for step in ("features", "train", "promote", "score"):
        _ok(path, step)
    home = path["home"]
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        logins, tickets, rows = con.execute(
            "SELECT count(logins_30d), count(tickets_30d), count(*) FROM snapshots").fetchone()
        scored = con.execute("SELECT count(*), min(churn_probability), max(churn_probability) "
                             "FROM score_history").fetchone()
    assert rows > 0 and logins == 0 and tickets == rows  # event features null, ticket counts known
    assert scored[0] > 0 and 0 < scored[1] < scored[2] < 1
    assert "0 event types" in path["steps"]["features"].stdout
    # the registered model reads no event feature; the terms', tickets' and invoices' are there
    bundle = load_version(tracking(Home.resolve(home)), 1)
    assert not [n for n in bundle.frame.names if n.startswith(("logins_", "active_days_", "evt_"))]
    assert "days_to_term_end" in bundle.frame.names and "tickets_30d" in bundle.frame.names
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        account = con.execute("SELECT account_id FROM score_history ORDER BY churn_probability DESC LIMIT 1"
                              ).fetchone()[0]
    r = run_cli("explain", account, home=home)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert "login" not in r.stdout.lower()


def test_tickets_keyed_by_the_organisation_name_are_refused(path):
    work = path["work"]
    named = work / "named"
    named.mkdir()
    for f in (work / "periods").iterdir():
        (named / f.name).write_bytes(f.read_bytes())
    tickets = pd.read_csv(named / "tickets.csv", dtype=str)
    tickets["account_id"] = "Org " + tickets["organization_id"].fillna("none")  # a name, as Zendesk writes it
    tickets.to_csv(named / "tickets.csv", index=False)
    home = work / "home-named"
    home.mkdir()
    (home / "churnwatch.yaml").write_text(yaml.safe_dump({**path["config"], "data": "../named"}))
    r = run_cli("features", home=home)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error: tickets:" in r.stderr and "have an account_id that is not in accounts (e.g. 'Org " in r.stderr
    assert "the column mapped to tickets.account_id does not hold the accounts' ids" in r.stderr
    assert not (home / "store.duckdb").exists()
