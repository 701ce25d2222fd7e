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


def test_a_scored_date_before_the_current_datas_start_is_left_and_said_not_a_stop(tmp_path):
    """The review: an event export on a rolling window no longer reaches the oldest scored dates; the
    refusal of an as-of date before the data start stopped `performance` altogether."""
    subs = pd.DataFrame({"account_id": ["p", "r"], "start_date": ["2026-01-01", "2026-01-01"],
                         "end_date": ["2026-12-01", "2027-06-01"], "mrr": [9.0, 4.0]})
    old_events = pd.DataFrame({"account_id": ["p", "r"], "user_id": ["u", "v"],
                               "occurred_at": ["2026-03-02 10:00", "2026-03-03 10:00"], "event_type": ["login"] * 2})
    data = write_tables(tmp_path / "data", {"subscriptions": subs, "events": old_events}, fmt="csv")
    store = tmp_path / "s.duckdb"
    first = D(2026, 4, 1)
    build_snapshots(data, settings(data=str(data), data_end=D(2026, 5, 1)), store, as_of=[first])
    with_label = pd.read_csv(data / "events.csv")
    empty = json.dumps([])
    write_history(store, pd.DataFrame({
        "account_id": ["p"], "as_of": [first], "churn_probability": [0.4], "health_score": [30],
        "tier": ["high_risk"], "reasons_en": empty, "strengths_en": empty, "reasons_zh": empty,
        "strengths_zh": empty, "playbook_action": "call", "playbook_owner": "CSM", "respond_within": "4 hours",
        "model_version": "1", "scored_at": dt.datetime(2026, 4, 1, 6)}))
    # the rolling export a year on: its events begin after the scored date
    later_events = with_label.assign(occurred_at=["2026-09-02 10:00", "2026-09-03 10:00"])
    later_events.to_csv(data / "events.csv", index=False)
    done = relabel_matured(data, settings(data=str(data), data_end=LATER), store)
    assert done["rebuilt"] == [] and done["before_data_start"] == [first.isoformat()]
    assert done["data_start"] == "2026-09-02"
