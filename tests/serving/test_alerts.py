"""Alerts on hand-built score histories (delivery: ``workflow.notify`` and ``workflow.send``)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from core.settings import AlertRule, Settings
from workflow.alerts import find_episodes, raise_alerts
from workflow.db import store_for
from workflow.tasks import list_tasks

DAY0 = dt.date(2025, 3, 1)


def history(healths: list[int], account="a1", segment="B") -> pd.DataFrame:
    tiers = ["healthy" if h >= 80 else "low_risk" if h >= 60 else "medium_risk" if h >= 40 else "high_risk"
             for h in healths]
    return pd.DataFrame({"account_id": account, "as_of": [DAY0 + dt.timedelta(days=i) for i in range(len(healths))],
                         "health_score": healths, "tier": tiers, "segment": segment})


RULE = AlertRule(name="below 60 for 7 days", kind="below_for", threshold=60, days=7, min_scores=2)


def test_fires_after_seven_days_not_six_and_once_per_episode():
    six = find_episodes(history([70] + [50] * 6), RULE)
    assert six.empty
    seq = [70] + [50] * 10 + [75] + [50] * 7
    fired = find_episodes(history(seq), RULE)
    assert list(fired["fired_as_of"]) == [DAY0 + dt.timedelta(days=7), DAY0 + dt.timedelta(days=18)]
    assert list(fired["episode_start"]) == [DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=12)]


def test_min_scores_and_weekly_scores():
    weekly = pd.concat([history([50]), history([50]).assign(as_of=DAY0 + dt.timedelta(days=7))])
    assert list(find_episodes(weekly, RULE)["fired_as_of"]) == [DAY0 + dt.timedelta(days=7)]
    one = AlertRule(name="x", kind="below_for", threshold=60, days=1, min_scores=2)
    assert find_episodes(history([50]), one).empty


def test_segment_filter_tier_drop_and_entering_high_risk():
    both = pd.concat([history([65, 65, 65, 65], "a", "A"), history([65, 65, 65, 65], "b", "B")])
    rule = AlertRule(name="A below 70 for 3 days", kind="below_for", threshold=70, days=3, segments=["A"])
    assert list(find_episodes(both, rule)["account_id"]) == ["a"]
    drop = find_episodes(history([85, 70, 70, 45, 30]), AlertRule(name="d", kind="tier_drop"))
    assert len(drop) == 3
    high = find_episodes(history([85, 30, 30, 50, 35]), AlertRule(name="h", kind="entered_high_risk"))
    assert [d.day for d in high["fired_as_of"]] == [2, 5]


def make_store(path, hist: pd.DataFrame):
    with duckdb.connect(str(path)) as con:
        con.register("h", hist)
        con.execute("CREATE TABLE score_history AS SELECT account_id, as_of, health_score, tier FROM h")
        con.execute("CREATE TABLE snapshots AS SELECT account_id, as_of, segment FROM h")


def test_an_alert_opens_a_task_due_by_its_playbook(tmp_path):
    store = tmp_path / "s.duckdb"
    make_store(store, history([70] + [50] * 7))
    new = raise_alerts(store, Settings(alert_rules=[RULE]))
    assert len(new) == 1 and raise_alerts(store, Settings(alert_rules=[RULE])).empty  # once per episode
    [task] = list_tasks(store_for(tmp_path))
    assert task["owner"] == "CSM / CSM lead" and task["status"] == "open"  # no CSM in the data: the role
    created, due = dt.datetime.fromisoformat(task["created_at"]), dt.datetime.fromisoformat(task["due_at"])
    assert due - created == dt.timedelta(hours=24)  # the medium-risk playbook


def test_below_for_needs_scores_closer_than_the_window():
    sparse = pd.concat([history([50]), history([50]).assign(as_of=DAY0 + dt.timedelta(days=60))])
    assert find_episodes(sparse, RULE).empty  # two scores 60 days apart say nothing about the days between


def test_backfilled_past_episodes_raise_no_alerts_unless_they_still_hold(tmp_path):
    from workflow.alerts import current_episodes

    # fell below 60 for a week long ago, recovered since; a tier drop long ago that still holds
    h = history([70] + [50] * 8 + [75] * 30)
    assert len(find_episodes(h, RULE)) == 1
    assert current_episodes(h, find_episodes(h, RULE), RULE).empty
    drop = AlertRule(name="d", kind="tier_drop")
    still = history([85] + [70] * 30)
    assert len(current_episodes(still, find_episodes(still, drop), drop)) == 1
    store = tmp_path / "s.duckdb"
    make_store(store, h)
    assert raise_alerts(store, Settings(alert_rules=[RULE])).empty
    # the day before the newest score, backfilled after it: below 60 for a week then, recovered at the newest
    recovered = history([70] + [50] * 8 + [75])
    assert len(find_episodes(recovered, RULE)) == 1
    assert current_episodes(recovered, find_episodes(recovered, RULE), RULE).empty
    assert len(current_episodes(history([70] + [50] * 9), find_episodes(history([70] + [50] * 9), RULE), RULE)) == 1

    # ... unless that day was the newest when it was scored: a live run whose alert step failed, or a
    # catch-up of several dates in one run, raises it late, not never
    live = recovered.assign(scored_at=[dt.datetime(2025, 4, 1) + dt.timedelta(days=i) for i in range(len(recovered))])
    assert len(current_episodes(live, find_episodes(live, RULE), RULE)) == 1
    one_run = recovered.assign(scored_at=dt.datetime(2025, 4, 1))
    assert len(current_episodes(one_run, find_episodes(one_run, RULE), RULE)) == 1
    backfill = live.assign(scored_at=live["scored_at"].where(live.index == len(live) - 1, dt.datetime(2025, 6, 1)))
    assert current_episodes(backfill, find_episodes(backfill, RULE), RULE).empty


def test_an_episode_that_still_holds_is_told_with_the_accounts_latest_score(tmp_path):
    """Probe p28: a backfill of past dates raised alerts whose tasks showed the month-old firing score
    (health 39, 21%) of an account that stood at health 1, 98% on the newest date. The episode keeps its
    firing date; its figures are the latest score's."""
    healths = [70] + [50] * 8 + [20] * 5  # below 60 from day 1, fired on day 7, worse by the newest (day 13)
    h = history(healths).assign(churn_probability=[0.05] + [0.2] * 8 + [0.9] * 5,
                                reasons_en=['[{"text": "then"}]'] * 9 + ['[{"text": "now"}]'] * 5,
                                reasons_zh='[{"text": "x"}]')
    store = tmp_path / "s.duckdb"
    with duckdb.connect(str(store)) as con:
        con.register("h", h)
        con.execute("CREATE TABLE score_history AS SELECT account_id, as_of, health_score, tier, churn_probability, "
                    "reasons_en, reasons_zh FROM h")
        con.execute("CREATE TABLE snapshots AS SELECT account_id, as_of, segment, 100.0 AS mrr, 'Ana' AS csm FROM h")
    [alert] = raise_alerts(store, Settings(alert_rules=[RULE])).to_dict(orient="records")
    assert alert["fired_as_of"] == DAY0 + dt.timedelta(days=7) and alert["episode_start"] == DAY0 + dt.timedelta(days=1)
    assert (alert["health_score"], alert["churn_probability"], alert["top_reason_en"]) == (20, 0.9, "now")
    assert alert["expected_loss"] == 90.0 and alert["csm"] == "Ana"
    # the tier (so the playbook and due time) and the task's date are the latest score's too (the review)
    assert alert["tier"] == "high_risk" and alert["facts_as_of"] == DAY0 + dt.timedelta(days=13)
    [task] = list_tasks(store_for(tmp_path))
    assert task["tier"] == "high_risk" and task["as_of"] == (DAY0 + dt.timedelta(days=13)).isoformat()
    assert task["health_score"] == 20 and dt.datetime.fromisoformat(task["due_at"]) - dt.datetime.fromisoformat(
        task["created_at"]) == dt.timedelta(hours=4)
    # an episode raised because its firing score was the newest when scored, no longer holding: its own figures
    from workflow.alerts import current_episodes

    recovered = history([70] + [50] * 8 + [75]).assign(scored_at=[dt.datetime(2025, 4, 1) + dt.timedelta(days=i)
                                                                  for i in range(10)])
    [late] = current_episodes(recovered, find_episodes(recovered, RULE), RULE).to_dict(orient="records")
    assert late["facts_as_of"] == late["fired_as_of"] and late["health_score"] == 50
