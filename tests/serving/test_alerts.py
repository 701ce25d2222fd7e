"""Alerts on hand-built score histories; delivery to a local webhook receiver."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import duckdb
import pandas as pd
import pytest

from core.settings import AlertRule, Settings, Webhook
from serving.alerts import deliver_pending, find_episodes, open_tasks, raise_alerts
from tests.services import free_port

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


class Receiver(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict]] = []
    fail_first = True

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.calls.append((self.path.split("?")[0], self.path, body))
        if Receiver.fail_first:
            Receiver.fail_first = False
            self.send_response(500)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errcode": 0}')

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Receiver.calls, Receiver.fail_first = [], True
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def make_store(path, hist: pd.DataFrame):
    with duckdb.connect(str(path)) as con:
        con.register("h", hist)
        con.execute("CREATE TABLE score_history AS SELECT account_id, as_of, health_score, tier FROM h")
        con.execute("CREATE TABLE snapshots AS SELECT account_id, as_of, segment FROM h")


def test_delivery_is_retried_next_run_never_sent_twice_and_payloads_fit_each_platform(tmp_path, receiver):
    store = tmp_path / "s.duckdb"
    make_store(store, history([70] + [50] * 7))
    secret = "SEC-test"
    settings = Settings(alert_rules=[RULE], webhooks=[
        Webhook(name="generic", url=f"{receiver}/generic", retries=0),
        Webhook(name="slack", url=f"{receiver}/slack", format="slack", retries=0),
        Webhook(name="dingtalk", url=f"{receiver}/dingtalk?access_token=abc", format="dingtalk", secret=secret,
                retries=0),
        Webhook(name="wecom", url=f"{receiver}/wecom", format="wecom", retries=0),
    ])
    new = raise_alerts(store, settings)
    assert len(new) == 1 and raise_alerts(store, settings).empty  # once per episode
    assert deliver_pending(store, settings, backoff_seconds=0) == {"delivered": 3, "pending": 1}
    assert deliver_pending(store, settings, backoff_seconds=0) == {"delivered": 1, "pending": 0}
    assert deliver_pending(store, settings, backoff_seconds=0) == {"delivered": 0, "pending": 0}
    paths = [c[0] for c in Receiver.calls]
    assert sorted(paths) == sorted(["/generic", "/generic", "/slack", "/dingtalk", "/wecom"])

    bodies = {c[0]: c[2] for c in Receiver.calls}
    assert bodies["/generic"]["account_id"] == "a1" and bodies["/generic"]["health_score"] == 50
    assert bodies["/slack"]["blocks"][0]["text"]["type"] == "mrkdwn" and "a1" in bodies["/slack"]["text"]
    assert bodies["/dingtalk"]["msgtype"] == "markdown" and "a1" in bodies["/dingtalk"]["markdown"]["text"]
    assert bodies["/wecom"]["msgtype"] == "markdown" and "a1" in bodies["/wecom"]["markdown"]["content"]
    query = urllib.parse.parse_qs(urllib.parse.urlparse([c[1] for c in Receiver.calls if c[0] == "/dingtalk"][0]).query)
    ts = query["timestamp"][0]
    expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest())
    assert query["sign"][0] == expected.decode() and query["access_token"] == ["abc"]

    tasks = open_tasks(store)
    assert len(tasks) == 1 and tasks.iloc[0]["owner"] == "CSM / CSM lead"  # medium risk playbook
    created, due = tasks.iloc[0]["created_at"], tasks.iloc[0]["due_at"]
    assert (due - created) == pd.Timedelta(hours=24)


def test_below_for_needs_scores_closer_than_the_window():
    sparse = pd.concat([history([50]), history([50]).assign(as_of=DAY0 + dt.timedelta(days=60))])
    assert find_episodes(sparse, RULE).empty  # two scores 60 days apart say nothing about the days between


def test_backfilled_past_episodes_raise_no_alerts_unless_they_still_hold(tmp_path):
    from serving.alerts import current_episodes

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
