"""Alerts over the score history, their delivery to webhooks, and retention tasks.

* ``find_episodes`` (pure): for every rule, the episodes in a score history and the date
  each one fires. An episode of ``below_for`` is a run of consecutive scores below the
  threshold; it fires on the first score where the run spans ``days`` calendar days and
  has ``min_scores`` scores. A recovery ends the episode; the next run is a new one.
* ``raise_alerts``: stores new alerts (one per rule, account and episode: never twice),
  with one pending delivery per webhook and one retention task (owner and due time from
  the tier's playbook).
* ``deliver_pending``: posts pending deliveries with a timeout and retries; a failure stays
  pending for the next run; a delivered one is never sent again.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd

from features.config import AlertRule, Settings, Webhook
from features.store import connect

log = logging.getLogger(__name__)
TIER_RANK = {"healthy": 0, "low_risk": 1, "medium_risk": 2, "high_risk": 3}

DDL = [
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id VARCHAR PRIMARY KEY, rule VARCHAR, account_id VARCHAR, episode_start DATE, fired_as_of DATE,
        health_score INTEGER, tier VARCHAR, segment VARCHAR, message VARCHAR, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS alert_deliveries (
        alert_id VARCHAR, webhook VARCHAR, status VARCHAR, attempts INTEGER, last_error VARCHAR,
        delivered_at TIMESTAMP, PRIMARY KEY (alert_id, webhook))""",
    """CREATE TABLE IF NOT EXISTS retention_tasks (
        task_id VARCHAR PRIMARY KEY, alert_id VARCHAR, account_id VARCHAR, tier VARCHAR, action VARCHAR,
        owner VARCHAR, due_at TIMESTAMP, status VARCHAR, created_at TIMESTAMP)""",
]


def find_episodes(history: pd.DataFrame, rule: AlertRule) -> pd.DataFrame:
    """Firing episodes: columns account_id, episode_start, fired_as_of, health_score, tier, segment.

    ``history`` has account_id, as_of, health_score, tier and (optionally) segment.
    """
    cols = ["account_id", "episode_start", "fired_as_of", "health_score", "tier", "segment"]
    h = history.copy()
    if "segment" not in h:
        h["segment"] = None
    if rule.segments is not None:
        h = h[h["segment"].isin(rule.segments)]
    if h.empty:
        return pd.DataFrame(columns=cols)
    h["as_of"] = pd.to_datetime(h["as_of"])
    h = h.sort_values(["account_id", "as_of"])
    if rule.kind == "below_for":
        below = h["health_score"] < rule.threshold
        # a new run starts at every score below the threshold whose previous score was not, or
        # was more than ``days`` earlier ("every score of the last N days" needs scores that close)
        gap = h.groupby("account_id")["as_of"].diff().dt.days
        starts = below & (~below.groupby(h["account_id"]).shift(1, fill_value=False) | (gap > rule.days))
        run = starts.groupby(h["account_id"]).cumsum()
        h = h.assign(below=below, run=run)[below]
        h["start"] = h.groupby(["account_id", "run"])["as_of"].transform("min")
        h["n"] = h.groupby(["account_id", "run"]).cumcount() + 1
        ok = h[((h["as_of"] - h["start"]).dt.days >= rule.days - 1) & (h["n"] >= rule.min_scores)]
        fired = ok.groupby(["account_id", "run"], as_index=False).first()
        fired["episode_start"] = fired["start"]
    else:
        prev = h.groupby("account_id")["tier"].shift(1)
        rank, prev_rank = h["tier"].map(TIER_RANK), prev.map(TIER_RANK)
        if rule.kind == "tier_drop":
            hit = prev_rank.notna() & (rank > prev_rank)
        else:
            hit = (h["tier"] == "high_risk") & prev.notna() & (prev != "high_risk")
        fired = h[hit].copy()
        fired["episode_start"] = fired["as_of"]
    fired["fired_as_of"] = fired["as_of"]
    out = fired[cols].copy()
    out["episode_start"] = pd.to_datetime(out["episode_start"]).dt.date
    out["fired_as_of"] = pd.to_datetime(out["fired_as_of"]).dt.date
    return out.reset_index(drop=True)


RECENT_DAYS = 7


def current_episodes(history: pd.DataFrame, episodes: pd.DataFrame, rule: AlertRule) -> pd.DataFrame:
    """The episodes worth an alert now: fired within ``RECENT_DAYS`` of the newest scoring
    date, or whose condition still holds at the account's latest score. Scoring past dates
    (a backfill) then raises no alerts and tasks about situations long gone."""
    if episodes.empty:
        return episodes
    h = history.assign(as_of=pd.to_datetime(history["as_of"]).dt.date)
    newest = h["as_of"].max()
    latest = h.sort_values("as_of").groupby("account_id").tail(1).set_index("account_id")
    recent = pd.to_datetime(episodes["fired_as_of"]).dt.date >= newest - dt.timedelta(days=RECENT_DAYS)
    last = latest.reindex(episodes["account_id"])
    if rule.kind == "below_for":
        holds = (last["health_score"] < rule.threshold).to_numpy()
    else:
        holds = (last["tier"].map(TIER_RANK).to_numpy() >= episodes["tier"].map(TIER_RANK).to_numpy())
    return episodes[recent.to_numpy() | holds].reset_index(drop=True)


def _alert_id(rule: str, account: str, start: dt.date) -> str:
    return hashlib.sha256(f"{rule}|{account}|{start.isoformat()}".encode()).hexdigest()[:20]


def message(row: dict, rule: AlertRule, lang: str = "en") -> str:
    if lang == "zh-CN":
        return (f"客户 {row['account_id']} 触发预警「{rule.name}」：健康分 {row['health_score']}，"
                f"等级 {row['tier']}（{row['fired_as_of']}）")
    return (f"Account {row['account_id']} triggered '{rule.name}': health {row['health_score']}, "
            f"tier {row['tier']} (as of {row['fired_as_of']})")


def raise_alerts(store: Path, settings: Settings, now: dt.datetime | None = None) -> pd.DataFrame:
    """Evaluate every rule on the store's score history; store new alerts, deliveries, tasks."""
    now = now or dt.datetime.now().replace(microsecond=0)
    with connect(store) as con:
        for ddl in DDL:
            con.execute(ddl)
        # a store scored from a flat table (`score --table`) has no snapshots: no segment
        snapshots = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'snapshots'").fetchone()[0]
        history = con.execute(f"""
            SELECT h.account_id, h.as_of, h.health_score, h.tier, {"s.segment" if snapshots else "NULL AS segment"}
            FROM score_history h {"LEFT JOIN snapshots s ON s.account_id = h.account_id AND s.as_of = h.as_of"
                                  if snapshots else ""}
        """).df()
        new_rows = []
        for rule in settings.alert_rules:
            for row in current_episodes(history, find_episodes(history, rule), rule).to_dict(orient="records"):
                aid = _alert_id(rule.name, row["account_id"], row["episode_start"])
                if con.execute("SELECT count(*) FROM alerts WHERE alert_id = ?", [aid]).fetchone()[0]:
                    continue
                text = message(row, rule)
                con.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [aid, rule.name, row["account_id"], row["episode_start"], row["fired_as_of"],
                             int(row["health_score"]), row["tier"], row["segment"], text, now])
                for hook in settings.webhooks:
                    con.execute("INSERT INTO alert_deliveries VALUES (?, ?, 'pending', 0, NULL, NULL)",
                                [aid, hook.name])
                book = settings.playbooks[row["tier"]]
                due = now + dt.timedelta(hours=book.respond_within_hours) if book.respond_within_hours else None
                con.execute("INSERT INTO retention_tasks VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                            [f"T-{aid[:12]}", aid, row["account_id"], row["tier"], book.action_en, book.owner,
                             due, now])
                new_rows.append({**row, "alert_id": aid, "rule": rule.name, "message": text})
    return pd.DataFrame(new_rows)


def payload(hook: Webhook, alert: dict) -> dict:
    """The body each platform expects."""
    text_en, title = alert["message"], f"churnwatch: {alert['rule']}"
    md = (f"### {title}\n\n- account: {alert['account_id']}\n- health: {alert['health_score']}\n"
          f"- tier: {alert['tier']}\n- as of: {alert['fired_as_of']}")
    if hook.format == "slack":
        return {"text": text_en, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": md}}]}
    if hook.format == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": md}}
    if hook.format == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": md}}
    return {"alert_id": alert["alert_id"], "rule": alert["rule"], "account_id": alert["account_id"],
            "health_score": alert["health_score"], "tier": alert["tier"],
            "episode_start": str(alert["episode_start"]), "fired_as_of": str(alert["fired_as_of"]),
            "segment": alert.get("segment"), "message": text_en}


def signed_url(hook: Webhook, now_ms: int | None = None) -> str:
    """DingTalk signing: HMAC-SHA256 of ``timestamp\\nsecret`` keyed by the secret, base64, URL-encoded."""
    if hook.format != "dingtalk" or not hook.secret:
        return hook.url
    ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(hook.secret.encode(), f"{ts}\n{hook.secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{hook.url}{'&' if '?' in hook.url else '?'}timestamp={ts}&sign={sign}"


def _post(hook: Webhook, body: dict) -> None:
    req = urllib.request.Request(signed_url(hook), data=json.dumps(body, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=hook.timeout_seconds) as resp:
        text = resp.read().decode(errors="replace")
    if hook.format in ("dingtalk", "wecom") and text.strip().startswith("{"):
        code = json.loads(text).get("errcode", 0)
        if code:
            raise RuntimeError(f"{hook.format} answered errcode {code}: {text[:200]}")


def deliver_pending(store: Path, settings: Settings, backoff_seconds: float = 0.2) -> dict[str, int]:
    """Send every pending delivery; returns counts of delivered and still pending."""
    hooks = {h.name: h for h in settings.webhooks}
    counts = {"delivered": 0, "pending": 0}
    with connect(store) as con:
        for ddl in DDL:
            con.execute(ddl)
        pending = con.execute("""
            SELECT d.alert_id, d.webhook, d.attempts, a.* EXCLUDE (alert_id)
            FROM alert_deliveries d JOIN alerts a USING (alert_id) WHERE d.status = 'pending'
            ORDER BY a.created_at""").df()
        for alert in pending.to_dict(orient="records"):
            hook = hooks.get(alert["webhook"])
            if hook is None:
                continue
            error = None
            for attempt in range(hook.retries + 1):
                try:
                    _post(hook, payload(hook, alert))
                    error = None
                    break
                except (urllib.error.URLError, OSError, RuntimeError, ValueError) as exc:
                    error = str(exc)[:500]
                    time.sleep(backoff_seconds * (attempt + 1))
            attempts = int(alert["attempts"]) + attempt + 1
            if error is None:
                con.execute("UPDATE alert_deliveries SET status = 'delivered', attempts = ?, last_error = NULL, "
                            "delivered_at = ? WHERE alert_id = ? AND webhook = ?",
                            [attempts, dt.datetime.now(), alert["alert_id"], hook.name])
                counts["delivered"] += 1
            else:
                con.execute("UPDATE alert_deliveries SET attempts = ?, last_error = ? "
                            "WHERE alert_id = ? AND webhook = ?", [attempts, error, alert["alert_id"], hook.name])
                counts["pending"] += 1
                log.warning("alert %s to %s still pending: %s", alert["alert_id"], hook.name, error)
    return counts


def open_tasks(store: Path) -> pd.DataFrame:
    with connect(store, read_only=True) as con:
        try:
            return con.execute("SELECT * FROM retention_tasks WHERE status = 'open' ORDER BY due_at").df()
        except duckdb.CatalogException:  # no task table yet: no tasks
            return pd.DataFrame(columns=["task_id", "alert_id", "account_id", "tier", "action", "owner", "due_at",
                                         "status", "created_at"])
