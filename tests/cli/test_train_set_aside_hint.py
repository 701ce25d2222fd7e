"""A training block without churn, because the data checks set the cancelled subscriptions aside (a probe
mapped Chargebee's Current Term Start / End as the term dates: a cancelled subscription has none, so all 153
were set aside as missing_start_date, and `train` said only "no positive labels ... nothing to learn")."""

from __future__ import annotations

import json

import pandas as pd

from churnwatch.commands.training import set_aside_hint
from tests.tiny import D, T, write_tables


def test_the_hint_names_what_was_set_aside(tmp_path):
    summary = tmp_path / "run-summary.json"
    summary.write_text(json.dumps({"tables": {"accounts": {"set_aside": {}}, "subscriptions": {
        "set_aside": {"missing_start_date": 153, "end_before_start": 2}}}}), encoding="utf-8")
    hint = set_aside_hint(summary)
    assert hint.startswith("`churnwatch features` set aside 155 subscriptions rows (missing_start_date 153, "
                           "end_before_start 2; ")
    assert "if those are the cancelled subscriptions, their churn never reached the snapshots" in hint
    summary.write_text(json.dumps({"tables": {"subscriptions": {"set_aside": {}}}}), encoding="utf-8")
    assert set_aside_hint(summary) == "" and set_aside_hint(tmp_path / "none.json") == ""


def test_train_says_the_churned_subscriptions_were_set_aside(tmp_path, run_cli):
    stayed = [dict(account_id=f"s{i}", start_date=D(2023, 1, 1), end_date=None, mrr=50.0) for i in range(300)]
    gone = [dict(account_id=f"g{i}", start_date=None, end_date=D(2024, 3, 1) + pd.Timedelta(days=7 * (i % 30)),
                 mrr=50.0) for i in range(60)]  # the cancelled ones: no start date in this mapping
    events = [dict(account_id=a["account_id"], user_id="u", occurred_at=T(2023, m, 5, 9), event_type="login",
                   quantity=1.0) for a in stayed + gone for m in range(1, 13)]
    data = write_tables(tmp_path / "data", {"subscriptions": pd.DataFrame(stayed + gone), "events": events})
    home = tmp_path / "home"
    assert run_cli("features", "--data", data, "--home", home).returncode == 0
    r = run_cli("train", "--home", home)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "no positive labels" in out, out[-1500:]
    assert "set aside 60 subscriptions rows (missing_start_date 60;" in out and "Traceback" not in out
