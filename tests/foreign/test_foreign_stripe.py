"""A Stripe-shaped export (issue 12): ``canceled_at -> end_date`` leaks and is refused with
the feature named (and the subscription's last price copied into its history with it); the allow flag
trains but blocks automatic promotion; the correct mapping (one term per invoiced period) trains without
a finding."""

from __future__ import annotations

import pytest

from demo.stripe import write_stripe_export
from tests.foreign.inprocess import run_cli


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_stripe_export(tmp_path_factory.mktemp("stripe"), accounts=400, seed=3)


def _features(folder, home):
    r = run_cli("features", "--data", str(folder), home=home)
    assert r.returncode == 0, (r.stderr or r.stdout)[-1500:]


def test_the_naive_mapping_is_refused_naming_the_feature(export, tmp_path):
    home = tmp_path / "naive"
    _features(export["naive"], home)
    r = run_cli("train", home=home)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "days_to_term_end" in r.stderr and "leak" in r.stderr.lower(), r.stderr[-1500:]
    # one row per subscription also copies its last price into its whole history: the consumer generator's
    # price rise leaves the old price on the subscriptions that ended before it (probe p32's leak)
    said = " ".join(r.stderr.split())
    assert "also flagged: 'mrr' is " in said
    assert "churnwatch.yaml maps the subscriptions' column 'canceled_at' to end_date: map the end of each" in said
    assert "the periods carry the value their subscription had when it ended" in said
    r = run_cli("train", "--allow-leaky-feature", "days_to_term_end", "--allow-leaky-feature", "mrr", home=home)
    assert r.returncode == 0, (r.stderr or r.stdout)[-1500:]
    r = run_cli("promote", home=home)
    assert "not promoted" in r.stdout or r.returncode != 0


def test_the_correct_mapping_trains_without_a_leak(export, tmp_path):
    home = tmp_path / "correct"
    _features(export["correct"], home)
    r = run_cli("train", home=home)
    assert r.returncode == 0, (r.stderr or r.stdout)[-1500:]
    assert "--allow-leaky-feature" not in (r.stdout + r.stderr)


@pytest.mark.parametrize("column, said", [
    ("Canceled At (UTC)", "maps the subscriptions' column 'Canceled At (UTC)' to end_date: map the end of each"),
    ("Current Period End (UTC)", "maps the subscriptions' column 'Current Period End (UTC)' to end_date: in a file "
     "of one row per subscription that is only its latest period"),
    ("period_end", None),  # one row per billing period: nothing to say of the mapping
])
def test_the_refusal_names_the_end_date_column_mapped(column, said):
    """A probe mapped the dashboard's one row per subscription with its current period and was told of
    canceled_at, which it had never mapped."""
    from churnwatch.commands.training import _mapped_end
    from core.settings import Settings

    settings = Settings(column_mapping={"subscriptions": {column: "end_date", "Customer ID": "account_id"}})
    hint = _mapped_end(RuntimeError("feature 'days_to_term_end': predicts churn on its own"), settings)
    assert (said in hint) if said else hint == ""
    assert _mapped_end(RuntimeError("feature 'mrr': ..."), settings) == ""
