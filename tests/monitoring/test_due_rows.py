"""A renewal due on the scored data end is judged once its horizon has passed (the review): the account
billed again the day after the export is scored on the data end; relabelled from the current data, the
one that did not renew keeps its row, labelled 1, and the date is not rebuilt on every run."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from core.scores import write_history
from features.pipeline import build_snapshots
from monitoring.reference import matured_rows, relabel_matured, unlabelled_matured
from tests.tiny import D, settings, write_tables

END = D(2026, 12, 1)
LATER = D(2027, 4, 1)


def test_a_due_account_that_lapsed_is_judged_with_label_1_and_its_date_stays_labelled(tmp_path):
    subs = pd.DataFrame({"account_id": ["p", "r", "r"], "start_date": ["2026-11-01", "2026-11-01", "2026-12-01"],
                         "end_date": ["2026-12-01", "2026-12-01", "2027-06-01"], "mrr": [9.0, 4.0, 4.0]})
    events = pd.DataFrame({"account_id": ["p"], "user_id": ["u"], "occurred_at": ["2026-11-20 10:00"],
                           "event_type": ["login"]})
    data = write_tables(tmp_path / "data", {"accounts": pd.DataFrame({"account_id": ["p", "r"]}),
                                            "subscriptions": subs, "events": events}, fmt="csv")
    store = tmp_path / "s.duckdb"
    build_snapshots(data, settings(data=str(data), data_end=END), store, as_of=[END])
    empty = json.dumps([])
    write_history(store, pd.DataFrame({
        "account_id": ["p", "r"], "as_of": [END, END], "churn_probability": [0.4, 0.1], "health_score": [30, 70],
        "tier": ["high_risk", "low_risk"], "reasons_en": empty, "strengths_en": empty, "reasons_zh": empty,
        "strengths_zh": empty, "playbook_action": "call", "playbook_owner": "CSM", "respond_within": "4 hours",
        "model_version": "1", "scored_at": dt.datetime(2026, 12, 1, 6)}))
    later = settings(data=str(data), data_end=LATER)
    assert relabel_matured(data, later, store)["rebuilt"] == [END.isoformat()]
    assert unlabelled_matured(store) == ({}, LATER)  # nothing left to label: not rebuilt again
    assert relabel_matured(data, later, store)["rebuilt"] == []
    rows, info = matured_rows(store)
    assert rows.set_index("account_id")["churn_label"].to_dict() == {"p": 1, "r": 0}
    assert info["unlabelled"] == {}

