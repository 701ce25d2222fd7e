"""``churnwatch score`` says what its rows do not give the model (probe h3, findings 5 and 9).

A forced leaky model scored a current export where the leak column is blank on every row and
gave every customer "healthy" without a word; 198 members of a club never seen in training were
scored as missing in silence. Now each is one line: a model feature blank on (nearly) all the
scored rows, with its scored and training shares (a leaky one first, ``WARNING:``), and per
categorical column the rows and values training never saw (``serving.coverage.batch_warnings``).
Through the real CLI: a flat table (``demo.flat``, 600 customers, with its leaky
``exit_survey_score``) and the tests' shared snapshot home (150 accounts, 12 months).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from core.store import connect, read_meta, read_snapshots
from demo.flat import write_flat_table
from serving.coverage import batch_warnings
from tests.foreign.inprocess import run_cli as run_in_process
from tests.stores import copy_home
from training.bundle import ModelBundle

pytestmark = pytest.mark.slow  # a module fixture trains a table model through the CLI (about 20 s)

AS_OF = "2025-06-30"
LEAK = "exit_survey_score"
#: Values training never saw: a new payment method, and one carrying a terminal escape and a newline.
NEW = ("Crypto wallet", "Voucher\x1b[31m\nred")


def flat(text: str) -> str:
    """Terminal text with its wrapping flattened to single spaces."""
    return " ".join(text.split())


def _bundle(home: Path) -> ModelBundle:
    """The champion's bundle of a home (version 1, the only one)."""
    (folder,) = {p.parent for p in home.glob("mlartifacts/**/bundle/bundle.json")}
    return ModelBundle.load(folder)


@pytest.fixture(scope="module")
def leaky_home(tmp_path_factory) -> tuple[Path, Path]:
    """(home, table): a model trained on 600 customers with the leaky column allowed, forced champion."""
    tmp = tmp_path_factory.mktemp("leaky-flat")
    table = write_flat_table(tmp / "customers.csv", rows=600, seed=8, leaky=True)
    home = tmp / "home"
    home.mkdir()
    # the payment method kept: its new values are what the warnings are about, and on 600 customers its link to
    # churn (an interaction with paperless billing) does not pass the category screen (training.screen)
    from core.settings import CONFIG_FILE_NAME, ProfileColumn, ProfileSettings, Settings, dump_settings

    dump_settings(Settings(profile=ProfileSettings(columns={"payment_method": ProfileColumn(keep=True)})),
                  home / CONFIG_FILE_NAME)
    trained = run_in_process("train", "--table", table, "--label", "Churn", "--id", "customer_id",
                             "--allow-leaky-feature", LEAK, home=home)
    assert trained.returncode == 0, trained.stderr[-1500:]
    forced = run_in_process("promote", "--force", "--reason", "test", home=home)
    assert forced.returncode == 0 and "version 1: promoted" in flat(forced.stdout), forced.stdout
    return home, table


@pytest.fixture
def cli(run_cli, monkeypatch):
    """``churnwatch ARGS`` for one test (``run_cli`` of tests/conftest.py), 1,000 columns wide: each
    warning on one line."""
    monkeypatch.setenv("COLUMNS", "1000")
    return run_cli


def _current(table: Path, folder: Path, blank: tuple[str, ...] = (), new_rows: int = 0) -> Path:
    """Today's export: 150 customers without the label; ``blank`` columns emptied on every row and
    the first ``new_rows`` customers' payment method set to values training never saw."""
    frame = pd.read_csv(table, dtype=str).drop(columns=["Churn"]).iloc[:150].copy()
    for c in blank:
        frame[c] = ""
    for i in range(new_rows):
        frame.loc[frame.index[i], "payment_method"] = NEW[i % len(NEW)]
    path = folder / "current.csv"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def test_a_normal_export_is_quiet_a_blank_leak_column_and_new_categories_are_said_leak_first(
        tmp_path, leaky_home, cli):
    home, table = leaky_home
    normal = cli("score", "--table", _current(table, tmp_path / "normal"), "--as-of", AS_OF, "--home", home)
    assert normal.returncode == 0, normal.stderr
    assert "scored 150 customers" in flat(normal.stdout) and "warning" not in normal.stdout.lower()

    current = _current(table, tmp_path, blank=(LEAK, "tenure_months"), new_rows=40)
    scored = cli("score", "--table", current, "--as-of", AS_OF, "--home", home)
    assert scored.returncode == 0, scored.stderr
    lines = [ln for ln in scored.stdout.splitlines() if "warning" in ln.lower()]
    assert [ln.split(",")[0] for ln in lines] == [
        f"WARNING: feature '{LEAK}'", "warning: feature 'tenure_months' is blank on 100% of the 150 customers scored "
        f"as of {AS_OF}", f"warning: 'payment_method': 40 of the 150 customers scored as of {AS_OF} have a value not "
        "seen in training"]
    facts = _bundle(home).meta["training"]["feature_facts"]
    # the leak had a value for about a quarter of the training customers (90% of churners, 1% of others)
    leak_blank = 1 - facts[LEAK]["present_share"]
    assert 0.6 < leak_blank < 0.85 and facts[LEAK]["importance"] > 0
    assert facts["tenure_months"] == {"present_share": 1.0, "importance": facts["tenure_months"]["importance"],
                                      "min": facts["tenure_months"]["min"], "max": facts["tenure_months"]["max"]}
    assert 0 <= facts["tenure_months"]["min"] < facts["tenure_months"]["max"]
    assert lines == [
        f"WARNING: feature '{LEAK}', allowed as leaky at training (--allow-leaky-feature), is blank on 100% of the "
        f"150 customers scored as of {AS_OF}, against {leak_blank:.1%} of the training rows: the model relies on "
        "it, so these scores are not to be trusted",
        f"warning: feature 'tenure_months' is blank on 100% of the 150 customers scored as of {AS_OF}, against 0% "
        "of the training rows: the model uses it and scores these customers as if it were unknown; check that "
        "the data still carries it",
        f"warning: 'payment_method': 40 of the 150 customers scored as of {AS_OF} have a value not seen in "
        "training, scored as missing: 'Crypto wallet', 'Voucher\\x1b[31m\\nred'",
    ]
    assert "\x1b" not in scored.stdout  # the value's escape is written out, never sent to the terminal
    # after the tier counts, before the table of the riskiest
    out = scored.stdout
    assert out.index("scored 150 customers") < out.index("WARNING: ") < out.index("highest risk")


def test_a_bundle_saved_before_the_training_facts_scores_and_names_only_new_categories(tmp_path, leaky_home, cli):
    home, table = leaky_home
    bundle = _bundle(home)
    old = dataclasses.replace(bundle, meta={**bundle.meta, "training": {
        k: v for k, v in bundle.meta["training"].items() if k != "feature_facts"}})
    folder = old.save(tmp_path / "old-bundle")  # as bundles were saved before training.feature_facts
    current = _current(table, tmp_path, blank=(LEAK,), new_rows=3)
    scored = cli("score", "--table", current, "--as-of", AS_OF, "--model", folder, "--home", home)
    assert scored.returncode == 0, scored.stderr
    assert "scored 150 customers" in flat(scored.stdout)
    assert [ln for ln in scored.stdout.splitlines() if "warning" in ln.lower()] == [
        f"warning: 'payment_method': 3 of the 150 customers scored as of {AS_OF} have a value not seen in training, "
        "scored as missing: 'Crypto wallet', 'Voucher\\x1b[31m\\nred'"]
    rows = pd.read_csv(current).assign(**{LEAK: float("nan")})  # the facts kept: the blank leak is said too
    said = batch_warnings(bundle, rows, dt.date(2025, 6, 30), "customers")
    assert [ln.split(",")[0] for ln in said] == [f"WARNING: feature '{LEAK}'",
                                                 "warning: 'payment_method': 3 of the 150 customers scored as of "
                                                 "2025-06-30 have a value not seen in training"]


def test_snapshot_scoring_names_a_crm_field_no_longer_exported_and_a_new_region(tmp_path, demo_home, cli):
    home = copy_home(demo_home(150, 12, 3), tmp_path / "home")
    with connect(home / "store.duckdb", read_only=True) as con:
        day = read_meta(con).data_end
    normal = cli("score", "--as-of", day.isoformat(), "--home", home)
    assert normal.returncode == 0, normal.stderr
    assert f"accounts as of {day} with model version 1" in normal.stdout
    # the data end, months after the training dates: nothing of blanks or categories; a value far outside the
    # training rows' may be said (a silence since the last ticket longer than the early training dates showed)
    said = [ln for ln in normal.stdout.splitlines() if "warning" in ln.lower()]
    assert all(ln.startswith("warning: feature '") and " is far outside the values of the training rows (" in ln
               for ln in said), said

    accounts_path = home / "d" / "accounts.parquet"
    accounts = pd.read_parquet(accounts_path)
    blank, new = "industry", "region"  # a CRM field no longer exported; a region opened since training
    accounts[blank] = None
    moved = accounts["account_id"].iloc[:7]
    accounts.loc[accounts.index[:7], new] = "Atlantis"
    accounts.to_parquet(accounts_path, index=False)
    since = (day - dt.timedelta(days=3)).isoformat()  # a date not yet built: from the changed accounts table
    scored = cli("score", "--as-of", since, "--home", home)
    assert scored.returncode == 0, scored.stderr
    rows = read_snapshots(home / "store.duckdb", as_of=[dt.date.fromisoformat(since)])
    n, moved_rows = len(rows), int(rows["account_id"].isin(set(moved)).sum())
    assert rows[blank].isna().all() and n > 50 and moved_rows > 0
    assert [ln for ln in scored.stdout.splitlines() if "warning" in ln.lower() and "far outside" not in ln] == [
        f"warning: feature '{blank}' is blank on 100% of the {n:,} accounts scored as of {since}, against 0% of the "
        "training rows: the model uses it and scores these accounts as if it were unknown; check that the data "
        "still carries it",
        f"warning: '{new}': {moved_rows} of the {n:,} accounts scored as of {since} have a value not seen in "
        "training, scored as missing: 'Atlantis'",
    ]
    facts = _bundle(home).meta["training"]["feature_facts"]
    for c in (blank, new):  # both used by the model, given for every training account
        assert facts[c]["importance"] > 0 and facts[c]["present_share"] == 1.0, (c, facts[c])


def test_a_feature_filled_for_few_training_customers_and_for_none_now_is_said(tmp_path, leaky_home):
    """A column the model uses that had a value for 20% of the training customers and none of the scored is
    said too (the bar is 5% at training, ``PRESENT_AT_TRAINING``; it was "most rows", 50%); below 5%, not."""
    home, table = leaky_home
    bundle = _bundle(home)
    facts = bundle.meta["training"]["feature_facts"]
    rows = pd.read_csv(_current(table, tmp_path, blank=("tenure_months",)))
    rows["tenure_months"] = float("nan")

    def said(present: float) -> list[str]:
        kept = {**facts, "tenure_months": {**facts["tenure_months"], "present_share": present}}
        filled = dataclasses.replace(bundle, meta={**bundle.meta, "training": {**bundle.meta["training"],
                                                                                "feature_facts": kept}})
        return batch_warnings(filled, rows, dt.date(2025, 6, 30), "customers")

    assert said(0.2) == [
        "warning: feature 'tenure_months' is blank on 100% of the 150 customers scored as of 2025-06-30, against "
        "80.0% of the training rows: the model uses it and scores these customers as if it were unknown; check "
        "that the data still carries it"]
    assert said(0.05)[0].startswith("warning: feature 'tenure_months' is blank on 100%")
    assert said(0.04) == []



def test_values_far_outside_the_training_rows_on_many_rows_are_said_once(tmp_path, leaky_home):
    """A probe's young API company (8 months of data): 41% of the accounts scored at the data end were older than
    any training row (tenure 232 days against 0 to 111) and the chosen logistic extrapolated; `/score` warned per
    account, `score` not at all. Now one line when at least 10% of the batch lies outside the training range by
    more than half its span; a few months past it (the demo at its data end) or a few rows are not said."""
    home, table = leaky_home
    bundle = _bundle(home)
    lo, hi = (bundle.meta["training"]["feature_facts"]["tenure_months"][k] for k in ("min", "max"))
    rows = pd.read_csv(_current(table, tmp_path))
    far, near = hi + 0.6 * (hi - lo), hi + 0.4 * (hi - lo)
    rows["tenure_months"] = [far if i < 20 else near if i < 100 else v for i, v in enumerate(rows["tenure_months"])]
    said = [ln for ln in batch_warnings(bundle, rows, dt.date(2025, 6, 30), "customers") if "far outside" in ln]
    assert said == [f"warning: feature 'tenure_months' is far outside the values of the training rows ({lo:g} to "
                    f"{hi:g}, by more than half their span) on 13.3% of the 150 customers scored as of 2025-06-30: the "
                    "model scores such a value as the nearest it saw (trees and the linear part alike), and no "
                    "training row backs it; train again once the data covers them"]
    rows.loc[rows.index[14:20], "tenure_months"] = near  # 14 of 150: under 10%
    assert not [ln for ln in batch_warnings(bundle, rows, dt.date(2025, 6, 30), "customers") if "far outside" in ln]
