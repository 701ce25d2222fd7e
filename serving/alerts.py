"""Alerts over the score history, their delivery to webhooks, and retention tasks.

* ``find_episodes`` (pure): for every rule, the episodes in a score history, the date each one
  fires and the last score it lasts to. An episode of ``below_for`` is a run of consecutive
  scores below the threshold; it fires on the first score where the run spans ``days`` calendar
  days and has ``min_scores`` scores. A recovery ends the episode; the next run is a new one. An
  episode of ``tier_drop`` starts at a score a whole tier worse than the previous one and lasts
  while the tier stays worse than that previous one; one of ``entered_high_risk`` lasts while
  the tier stays high risk.
* ``raise_alerts``: stores new alerts, one per rule, account and episode, never twice: an
  episode that meets the dates of a stored alert of its rule and account (the alert's episode
  start to its firing date) already has its alert. Episodes are derived from the whole history
  on every run, so scoring a date between two scored dates (which can move an episode's start or
  split or join runs) finds the stored alert and raises nothing new. Each alert is stored with
  one pending delivery per webhook and one retention task (owner and due time from the tier's
  playbook) in one transaction (with the score rows that raised it when called through
  ``serving.batch.record_scores``); an alert a killed older version left without its task gets
  its task and deliveries on the next run.
* ``deliver_pending``: posts pending deliveries with a timeout and retries; a failure stays
  pending for the next run; a delivered one is never sent again. A delivery is marked delivered
  right after the receiver answered, in its own transaction: a process killed between the
  answer and the mark sends that one delivery again on the next run (at most one resend per
  kill). Every message carries an ``Idempotency-Key`` header, the same on every attempt, so a
  receiver can drop a copy it already has.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd

from core.engine import transaction
from core.scores import (
    alert_spans,
    alerts_without_task,
    ensure_alert_tables,
    history_with_segment,
    insert_alerts,
    mark_delivery,
    open_tasks,
    pending_deliveries,
)
from core.settings import AlertRule, Settings, Webhook
from core.store import connect
from core.vocabulary import TIER_RANK

log = logging.getLogger(__name__)

__all__ = ["deliver_pending", "find_episodes", "open_tasks", "raise_alerts", "raise_alerts_in"]

EPISODE_COLUMNS = ["account_id", "episode_start", "fired_as_of", "episode_end", "health_score", "tier", "segment"]
ALERT_COLUMNS = ["alert_id", "rule", "account_id", "episode_start", "fired_as_of", "health_score", "tier",
                 "segment", "message", "created_at"]  # the ``alerts`` table's


def find_episodes(history: pd.DataFrame, rule: AlertRule) -> pd.DataFrame:
    """Firing episodes: columns account_id, episode_start, fired_as_of, episode_end (the last score
    of the episode), health_score, tier and segment at the firing score.

    ``history`` has account_id, as_of, health_score, tier and (optionally) segment.
    """
    h = history.copy()
    if "segment" not in h:
        h["segment"] = None
    if rule.segments is not None:
        h = h[h["segment"].isin(rule.segments)]
    if h.empty:
        return pd.DataFrame(columns=EPISODE_COLUMNS)
    h["as_of"] = pd.to_datetime(h["as_of"])
    h = h.sort_values(["account_id", "as_of"]).reset_index(drop=True)
    fired = _below_for(h, rule) if rule.kind == "below_for" else _tier_moves(h, rule)
    out = fired[EPISODE_COLUMNS].copy()
    for c in ("episode_start", "fired_as_of", "episode_end"):
        out[c] = pd.to_datetime(out[c]).dt.date
    return out.reset_index(drop=True)


def _below_for(h: pd.DataFrame, rule: AlertRule) -> pd.DataFrame:
    """``find_episodes`` of a ``below_for`` rule on a history sorted by account and date."""
    below = h["health_score"] < rule.threshold
    # a new run starts at every score below the threshold whose previous score was not, or
    # was more than ``days`` earlier ("every score of the last N days" needs scores that close)
    gap = h.groupby("account_id")["as_of"].diff().dt.days
    starts = below & (~below.groupby(h["account_id"]).shift(1, fill_value=False) | (gap > rule.days))
    run = starts.groupby(h["account_id"]).cumsum()
    h = h.assign(below=below, run=run)[below]
    runs = h.groupby(["account_id", "run"])["as_of"]
    h = h.assign(episode_start=runs.transform("min"), episode_end=runs.transform("max"),
                 n=h.groupby(["account_id", "run"]).cumcount() + 1)
    ok = h[((h["as_of"] - h["episode_start"]).dt.days >= rule.days - 1) & (h["n"] >= rule.min_scores)]
    return ok.groupby(["account_id", "run"], as_index=False).first().assign(fired_as_of=lambda f: f["as_of"])


def _tier_moves(h: pd.DataFrame, rule: AlertRule) -> pd.DataFrame:
    """``find_episodes`` of a ``tier_drop`` or ``entered_high_risk`` rule on a sorted history."""
    prev = h.groupby("account_id")["tier"].shift(1)
    rank, prev_rank = h["tier"].map(TIER_RANK), prev.map(TIER_RANK)
    if rule.kind == "tier_drop":
        hit, base = prev_rank.notna() & (rank > prev_rank), prev_rank
    else:
        hit = (h["tier"] == "high_risk") & prev.notna() & (prev != "high_risk")
        base = pd.Series(TIER_RANK["high_risk"] - 1, index=h.index)
    fired = h[hit].copy()  # (assigning h's columns to an empty frame would take h's index)
    fired["base"] = base[hit]
    fired["episode_start"] = fired["fired_as_of"] = fired["as_of"]
    fired["episode_end"] = _last_held(h.assign(rank=rank), fired).to_numpy()
    return fired


def _last_held(h: pd.DataFrame, fired: pd.DataFrame) -> pd.Series:
    """For each firing score, the date of the last consecutive score of its account from it on
    whose tier rank stays above the firing's ``base`` rank."""
    keys = fired[["account_id", "as_of", "base"]].assign(hit=range(len(fired)))
    later = keys.merge(h[["account_id", "as_of", "rank"]], on="account_id", suffixes=("", "_later"))
    later = later[later["as_of_later"] >= later["as_of"]]
    stop = later["hit"].map(later[later["rank"] <= later["base"]].groupby("hit")["as_of_later"].min())
    held = later[stop.isna() | (later["as_of_later"] < stop)]
    return held.groupby("hit")["as_of_later"].max().reindex(range(len(fired)))


def uncovered(episodes: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """The ``episodes`` of one rule that no stored alert covers. ``spans``: that rule's stored alerts
    (account_id, episode_start, fired_as_of); an alert covers an episode of its account when the
    alert's dates (episode start to firing) meet the episode's (start to last score)."""
    if episodes.empty or spans.empty:
        return episodes
    eps = episodes.reset_index(drop=True)
    pairs = eps.reset_index().merge(spans[["account_id", "episode_start", "fired_as_of"]], on="account_id",
                                    suffixes=("", "_alert"))
    day = pd.to_datetime
    meets = ((day(pairs["episode_start_alert"]) <= day(pairs["episode_end"]))
             & (day(pairs["fired_as_of_alert"]) >= day(pairs["episode_start"])))
    return eps.drop(index=pairs.loc[meets, "index"].unique()).reset_index(drop=True)


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
    """Evaluate every rule on the store's score history; store new alerts with their deliveries and
    tasks in one transaction (``raise_alerts_in``). Returns the new alerts."""
    with connect(store) as con, transaction(con):
        return raise_alerts_in(con, settings, now)


def raise_alerts_in(con: duckdb.DuckDBPyConnection, settings: Settings,
                    now: dt.datetime | None = None) -> pd.DataFrame:
    """``raise_alerts`` inside the caller's transaction on ``con`` (which may hold score rows it has
    just written): new alerts, their tasks and deliveries, and the tasks and deliveries of any
    alert stored without its task. Returns the new alerts (the ``alerts`` columns)."""
    now = now or dt.datetime.now().replace(microsecond=0)
    ensure_alert_tables(con)
    history = history_with_segment(con)
    spans = alert_spans(con)
    found = [_new_alerts(history, rule, spans[spans["rule"] == rule.name], now) for rule in settings.alert_rules]
    found = [f for f in found if len(f)]
    new = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=ALERT_COLUMNS)
    new = new.drop_duplicates("alert_id", ignore_index=True)  # two rules of the same name find the same ones
    orphans = alerts_without_task(con)
    if len(orphans):
        log.warning("%d stored alert(s) had no retention task (left by a run killed mid-way): adding their "
                    "tasks and deliveries now", len(orphans))
    todo = pd.concat([f for f in (new, orphans) if len(f)] or [new], ignore_index=True)
    insert_alerts(con, new, _tasks_for(todo, settings, now), _deliveries_for(todo, settings))
    return new


def _new_alerts(history: pd.DataFrame, rule: AlertRule, spans: pd.DataFrame, now: dt.datetime) -> pd.DataFrame:
    """The alerts ``rule`` raises now: its current episodes that no stored alert covers."""
    episodes = uncovered(current_episodes(history, find_episodes(history, rule), rule), spans)
    if episodes.empty:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    rows = episodes.to_dict(orient="records")
    return episodes.assign(
        alert_id=[_alert_id(rule.name, r["account_id"], r["episode_start"]) for r in rows],
        rule=rule.name, health_score=episodes["health_score"].astype(int),
        message=[message(r, rule) for r in rows], created_at=now)[ALERT_COLUMNS]


def _tasks_for(alerts: pd.DataFrame, settings: Settings, now: dt.datetime) -> pd.DataFrame:
    """One open retention task per alert: the tier's playbook action and owner, due the playbook's
    hours after the alert was raised (none when the playbook sets no hours)."""
    books = [settings.playbooks[t] for t in alerts["tier"]]
    hours = pd.to_timedelta([b.respond_within_hours or float("nan") for b in books], unit="h")
    return pd.DataFrame({
        "task_id": [f"T-{a[:12]}" for a in alerts["alert_id"]], "alert_id": alerts["alert_id"].to_numpy(),
        "account_id": alerts["account_id"].to_numpy(), "tier": alerts["tier"].to_numpy(),
        "action": [b.action_en for b in books], "owner": [b.owner for b in books],
        "due_at": pd.to_datetime(alerts["created_at"]).to_numpy() + hours.to_numpy(),
        "status": "open", "created_at": now})


def _deliveries_for(alerts: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """One pending delivery per alert and configured webhook."""
    ids = list(alerts["alert_id"])
    return pd.DataFrame({"alert_id": [a for a in ids for _ in settings.webhooks],
                         "webhook": [h.name for _ in ids for h in settings.webhooks],
                         "status": "pending", "attempts": 0})


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


def idempotency_key(alert_id: str, webhook: str) -> str:
    """The ``Idempotency-Key`` of an alert's message to a webhook: the same on every attempt and
    every run, different per webhook (ASCII, fit for a header)."""
    return f"{alert_id}-{hashlib.sha256(webhook.encode()).hexdigest()[:8]}"


def _post(hook: Webhook, body: dict, key: str) -> None:
    req = urllib.request.Request(signed_url(hook), data=json.dumps(body, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json", "Idempotency-Key": key},
                                 method="POST")
    with urllib.request.urlopen(req, timeout=hook.timeout_seconds) as resp:
        text = resp.read().decode(errors="replace")
    if hook.format in ("dingtalk", "wecom") and text.strip().startswith("{"):
        code = json.loads(text).get("errcode", 0)
        if code:
            raise RuntimeError(f"{hook.format} answered errcode {code}: {text[:200]}")


def deliver_pending(store: Path, settings: Settings, backoff_seconds: float = 0.2) -> dict[str, int]:
    """Send every pending delivery; returns counts of delivered and still pending.

    Each delivery is marked (delivered, or its attempts and error) as soon as the receiver has
    answered or the retries are spent, one committed statement per delivery: a kill loses at most
    the mark of the delivery in flight, which is then sent once more on the next run.
    """
    hooks = {h.name: h for h in settings.webhooks}
    counts = {"delivered": 0, "pending": 0}
    with connect(store) as con:
        ensure_alert_tables(con)
        pending = pending_deliveries(con)
        order = pending["webhook"].map({name: i for i, name in enumerate(hooks)})  # config order per alert
        pending = pending.assign(_order=order).sort_values(["created_at", "alert_id", "_order"], kind="stable")
        for alert in pending.to_dict(orient="records"):
            hook = hooks.get(alert["webhook"])
            if hook is None:
                continue
            error = None
            for attempt in range(hook.retries + 1):
                try:
                    _post(hook, payload(hook, alert), idempotency_key(alert["alert_id"], hook.name))
                    error = None
                    break
                except (urllib.error.URLError, http.client.HTTPException, OSError, RuntimeError, ValueError) as exc:
                    error = str(exc)[:500]
                    time.sleep(backoff_seconds * (attempt + 1))
            attempts = int(alert["attempts"]) + attempt + 1
            mark_delivery(con, alert["alert_id"], hook.name, attempts, error)
            if error is None:
                counts["delivered"] += 1
            else:
                counts["pending"] += 1
                log.warning("alert %s to %s still pending: %s", alert["alert_id"], hook.name, error)
    return counts
