"""Alerts over the score history, raised into the operational store.

* ``find_episodes`` (pure): for every rule, the episodes in a score history, the date each one
  fires and the last score it lasts to. An episode of ``below_for`` is a run of consecutive
  scores below the threshold; it fires on the first score where the run spans ``days`` calendar
  days and has ``min_scores`` scores. A recovery ends the episode; the next run is a new one. An
  episode of ``tier_drop`` starts at a score a whole tier worse than the previous one and lasts
  while the tier stays worse than that previous one; one of ``entered_high_risk`` (a score at high risk after a
  lower one, or a new customer's first score at high risk: first scored after the history's first date) lasts
  while the tier stays high risk.
* ``raise_alerts``: run right AFTER the score rows are committed to DuckDB. Episodes are derived
  from the whole score history on every run; an episode that meets the dates of a stored alert of
  its rule and account (the alert's episode start to its firing date) already has its alert, so
  scoring a date between two scored dates raises nothing new. New alerts (unique per rule,
  account and episode start: a repeated insert is skipped), their tasks (``workflow.tasks``: one
  open task per account, updated by a later alert) and one pending digest delivery per webhook
  are written in ONE transaction of the operational store. A process killed between the DuckDB
  commit and this transaction leaves scores without alerts; the next ``score`` or ``alerts`` run
  finds those episodes uncovered and raises them then. An alert stored without its task (by
  any other path) gets its task on the next run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.lapse import ended_on, lapsed
from core.scores import alert_facts, history_with_segment
from core.settings import AlertRule, Settings
from core.store import connect
from core.vocabulary import TIER_RANK
from workflow.db import METADATA, store_for, write
from workflow.tasks import (
    ACTIVE,
    TASKS,
    aware,
    enqueue,
    insert_ignore,
    open_or_update,
    refresh_tasks,
    short_hash,
    utcnow,
)

__all__ = ["ALERTS", "current_episodes", "find_episodes", "raise_alerts", "stored_alerts", "uncovered"]

EPISODE_COLUMNS = ["account_id", "episode_start", "fired_as_of", "episode_end", "health_score", "tier", "segment"]
ALERT_COLUMNS = ["alert_id", "rule", "account_id", "episode_start", "fired_as_of", "facts_as_of", "health_score",
                 "tier", "segment", "churn_probability", "mrr", "expected_loss", "csm", "top_reason_en",
                 "top_reason_zh", "created_at"]

ALERTS = sa.Table(
    "alerts", METADATA,
    sa.Column("id", sa.String(40), primary_key=True),  # a hash of rule, account and episode start
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("account_id", sa.String(200), nullable=False),
    sa.Column("episode_start", sa.Date, nullable=False),
    sa.Column("fired_as_of", sa.Date, nullable=False),
    # the score the figures below are of: the account's latest for an episode that still holds (migration 0007)
    sa.Column("facts_as_of", sa.Date),
    sa.Column("health_score", sa.Integer, nullable=False),
    sa.Column("tier", sa.String(20), nullable=False),
    sa.Column("segment", sa.String(200)),
    sa.Column("churn_probability", sa.Float),
    sa.Column("mrr", sa.Float),
    sa.Column("expected_loss", sa.Float),  # MRR x churn probability
    sa.Column("csm", sa.String(200)),
    sa.Column("top_reason_en", sa.Text),
    sa.Column("top_reason_zh", sa.Text),
    sa.Column("task_id", sa.Integer),  # the task it opened or updated
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("rule", "account_id", "episode_start", name="uq_alerts_rule"),
    sa.Index("ix_alerts_account_id", "account_id"),
)
#: a lock key that makes two alert raisers on one PostgreSQL store wait for each other
PG_LOCK = 15_002


def find_episodes(history: pd.DataFrame, rule: AlertRule) -> pd.DataFrame:
    """Firing episodes: columns account_id, episode_start, fired_as_of, episode_end (the last score
    of the episode), health_score, tier and segment at the firing score.

    ``history`` has account_id, as_of, health_score, tier and (optionally) segment.
    """
    h = history.copy()
    if "segment" not in h:
        h["segment"] = None
    if h.empty:
        return pd.DataFrame(columns=EPISODE_COLUMNS)
    h["as_of"] = pd.to_datetime(h["as_of"])
    h["new_customer"] = _new_customers(h)  # over the whole history: a move into a segment is no new customer
    if rule.segments is not None:
        h = h[h["segment"].isin(rule.segments)]
    if h.empty:
        return pd.DataFrame(columns=EPISODE_COLUMNS)
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
        # from a lower tier, or a new customer's first score at high risk (``_new_customers``: a probe's January
        # sign-ups, 37% of the high-risk accounts of their first scoring, got no alert and no task); the first
        # run's own scores alert on nothing
        hit = (h["tier"] == "high_risk") & ((prev.notna() & (prev != "high_risk")) | h["new_customer"])
        base = pd.Series(TIER_RANK["high_risk"] - 1, index=h.index)
    fired = h[hit].copy()  # (assigning h's columns to an empty frame would take h's index)
    fired["base"] = base[hit]
    fired["episode_start"] = fired["fired_as_of"] = fired["as_of"]
    fired["episode_end"] = _last_held(h.assign(rank=rank), fired).to_numpy()
    return fired


def _new_customers(h: pd.DataFrame) -> pd.Series:
    """Per score: whether it is its account's first and an earlier date had already been scored when it was made
    (that run had it no customer yet). By ``scored_at`` where the history has it, so a backfill of an earlier
    date after a first run makes none of that run's scores new (a reviewer: every high-risk sign-up since the
    backfilled date alerted); without it, by the dates alone."""
    first = h["as_of"] == h.groupby("account_id")["as_of"].transform("min")
    stamps, earliest = _date_first_scored(h)
    if earliest is None:
        return first & (h["as_of"] > h["as_of"].min())
    before = earliest.cummin().shift(1)  # the first scoring of any earlier date
    # <=: a run scoring several dates stamps them to the second, often the same one (the demo's three dates)
    return first & (h["as_of"].map(before) <= stamps).fillna(False).astype(bool)


def _date_first_scored(h: pd.DataFrame) -> tuple[pd.Series | None, pd.Series | None]:
    """Each score's ``scored_at`` and when each date was first scored (dates ascending); ``(None, None)`` where
    the history has no ``scored_at``."""
    if "scored_at" not in h.columns or h["scored_at"].isna().all():
        return None, None
    stamps = pd.to_datetime(h["scored_at"])
    return stamps, stamps.groupby(h["as_of"]).min().sort_index()


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
    """The episodes worth an alert now: those whose condition still holds at the account's latest
    score, when that score is itself within ``RECENT_DAYS`` of the newest scoring date; and those
    fired within ``RECENT_DAYS`` of it by a score that was the newest when it was scored (``scored_at``:
    no later date had been scored before it), though they no longer hold (a run killed between its
    scores and its alerts, a catch-up of several dates in one run: their alerts are raised late, not
    lost). Scoring past dates after later ones (a backfill) then raises no alerts and tasks about
    situations long gone (a probe's backfill of the day before the data end, scored after it: 7 tasks
    for accounts no longer high risk), nor about accounts that left since: an account no scoring run
    of the newest dates scored is no longer a customer (a probe's backfill of three months opened 17
    retention tasks for accounts that had churned since, shown "Churned" above the task). An episode that
    still holds is told with the account's latest score (``facts_as_of``; its ``health_score`` and
    ``tier``, so the task's playbook and due time are the current tier's); its firing date stays
    ``fired_as_of``."""
    if episodes.empty:
        return episodes
    h = history.assign(as_of=pd.to_datetime(history["as_of"]).dt.date)
    newest = h["as_of"].max()
    latest = h.sort_values("as_of").groupby("account_id").tail(1).set_index("account_id")
    fired = pd.to_datetime(episodes["fired_as_of"]).dt.date
    recent = (fired >= newest - dt.timedelta(days=RECENT_DAYS)).to_numpy() & _scored_as_newest(h, episodes, fired)
    last = latest.reindex(episodes["account_id"])
    if rule.kind == "below_for":
        holds = (last["health_score"] < rule.threshold).to_numpy()
    else:
        holds = (last["tier"].map(TIER_RANK).to_numpy() >= episodes["tier"].map(TIER_RANK).to_numpy())
    current = (pd.to_datetime(last["as_of"]).dt.date >= newest - dt.timedelta(days=RECENT_DAYS)).to_numpy()
    # an episode that still holds is told with the account's latest score: a backfill's alert fired by a
    # month-old score showed a CSM health 39 and 21% where the account stood at health 1 and 98% (probe p28)
    latest_as_of = pd.to_datetime(last["as_of"]).dt.date.to_numpy()
    now = holds & current & (latest_as_of > fired.to_numpy())
    out = episodes.assign(facts_as_of=np.where(now, latest_as_of, fired.to_numpy()),
                          health_score=np.where(now, last["health_score"].to_numpy(),
                                                episodes["health_score"].to_numpy()),
                          tier=np.where(now, last["tier"].to_numpy(), episodes["tier"].to_numpy()))
    return out[recent | (holds & current)].reset_index(drop=True)


def _scored_as_newest(h: pd.DataFrame, episodes: pd.DataFrame, fired: pd.Series) -> np.ndarray:
    """Per episode: whether the score that fired it was scored before any later date was (a live run's),
    not after (a backfill's); False where the history has no ``scored_at``."""
    stamps, first = _date_first_scored(h)
    if first is None:
        return np.zeros(len(episodes), dtype=bool)
    later = first[::-1].cummin()[::-1].shift(-1)  # the first scoring of any later date
    at = pd.Series(stamps.to_numpy(), index=pd.MultiIndex.from_arrays([h["account_id"], h["as_of"]]))
    at = at[~at.index.duplicated(keep="last")]
    mine = at.reindex(pd.MultiIndex.from_arrays([episodes["account_id"], fired])).to_numpy()
    after = later.reindex(fired.to_numpy()).to_numpy()
    return np.array([pd.isna(a) or (not pd.isna(m) and m <= a) for m, a in zip(mine, after)], dtype=bool)


def alert_id(rule: str, account: str, start: dt.date) -> str:
    """The id of a rule's alert on an account's episode (stable across runs)."""
    return hashlib.sha256(f"{rule}|{account}|{start.isoformat()}".encode()).hexdigest()[:20]


def stored_alerts(engine: Engine) -> pd.DataFrame:
    """Every stored alert (``ALERT_COLUMNS`` and task_id), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ALERTS).order_by(ALERTS.c.created_at, ALERTS.c.id)).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in ALERTS.columns])
    return frame.rename(columns={"id": "alert_id"})


def _spans(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ALERTS.c.rule, ALERTS.c.account_id, ALERTS.c.episode_start,
                                      ALERTS.c.fired_as_of)).all()
    return pd.DataFrame(rows, columns=["rule", "account_id", "episode_start", "fired_as_of"])


def _new_alerts(history: pd.DataFrame, rule: AlertRule, spans: pd.DataFrame) -> pd.DataFrame:
    """The alerts ``rule`` raises now: its current episodes that no stored alert covers."""
    episodes = uncovered(current_episodes(history, find_episodes(history, rule), rule), spans)
    if episodes.empty:
        return pd.DataFrame(columns=["alert_id", "rule", *EPISODE_COLUMNS, "facts_as_of"])
    return episodes.assign(alert_id=[alert_id(rule.name, a, s) for a, s in zip(episodes["account_id"],
                                                                                 episodes["episode_start"])],
                           rule=rule.name, health_score=episodes["health_score"].astype(int))


def _first_text(reasons: object) -> str | None:
    """The first reason's text of a reasons JSON list, else None."""
    if not isinstance(reasons, str) or not reasons:
        return None
    try:
        items = json.loads(reasons)
    except ValueError:
        return None
    return items[0].get("text") if items and isinstance(items[0], dict) else None


def _scored_facts(store: Path, keys: pd.DataFrame) -> pd.DataFrame:
    """``keys`` (``account_id``, ``facts_as_of``) with that score's probability and top reasons and the
    snapshot's MRR (and the expected loss), CSM and what else ``alert_facts`` reads; a key without a score
    keeps nulls."""
    keys = keys.assign(facts_as_of=pd.to_datetime(keys["facts_as_of"]).dt.date)
    with connect(store, read_only=True) as con:
        facts = alert_facts(con, keys[["account_id", "facts_as_of"]].rename(columns={"facts_as_of": "as_of"}))
    facts = facts.assign(as_of=pd.to_datetime(facts["as_of"]).dt.date).rename(columns={"as_of": "facts_as_of"})
    out = keys.merge(facts, on=["account_id", "facts_as_of"], how="left")
    def number(v):
        return None if v is None or pd.isna(v) else float(v)
    out["churn_probability"] = [number(v) for v in out["churn_probability"]]
    out["mrr"] = [number(v) for v in out["mrr"]]
    out["expected_loss"] = [None if p is None or m is None else round(p * m, 2)
                            for p, m in zip(out["churn_probability"], out["mrr"])]
    out["csm"] = [None if v is None or pd.isna(v) else str(v) for v in out["csm"]]
    out["top_reason_en"] = [_first_text(v) for v in out["reasons_en"]]
    out["top_reason_zh"] = [_first_text(v) for v in out["reasons_zh"]]
    return out


def _with_facts(store: Path, new: pd.DataFrame, now: dt.datetime) -> pd.DataFrame:
    """``new`` alerts with their score's facts (``_scored_facts``): the score of ``facts_as_of`` (the
    account's latest, for an episode that still holds; else the firing one)."""
    keys = new.assign(facts_as_of=new["facts_as_of"].where(new["facts_as_of"].notna(), new["fired_as_of"])) \
        if "facts_as_of" in new.columns else new.assign(facts_as_of=new["fired_as_of"])
    out = _scored_facts(store, keys)
    out["segment"] = [None if v is None or pd.isna(v) else str(v) for v in out["segment"]]
    return out.assign(created_at=now)[ALERT_COLUMNS]


def _lapsed(store: Path, latest: list[dict], newest: dt.date, settings: Settings) -> dict[str, dt.date]:
    """Of the accounts in ``latest`` the newest run did not score, those in a lapse (``core.lapse.lapsed``: their
    term ended less than the grace period before the run, so a late renewal keeps them), with the day it ended:
    their tasks stay open, as the API and the workspace call them lapsed, not gone (the review)."""
    grace = dt.timedelta(days=int(settings.grace_days))
    ended = ended_on(store, {s["account_id"]: s["as_of"] for s in latest if s["as_of"] < newest}, newest)
    return {a: day for a, day in ended.items() if lapsed(day, newest, grace)}


def _latest_facts(store: Path, history: pd.DataFrame, accounts: set[str]) -> list[dict]:
    """The latest score of each of ``accounts`` as a task's facts (``workflow.tasks.FACTS``, tier), for
    ``refresh_tasks``."""
    if history.empty or not accounts:
        return []
    h = history.assign(as_of=pd.to_datetime(history["as_of"]).dt.date)
    last = h[h["account_id"].isin(accounts)].sort_values("as_of").groupby("account_id").tail(1)
    if last.empty:
        return []
    facts = _scored_facts(store, last[["account_id", "as_of", "health_score", "tier"]].rename(
        columns={"as_of": "facts_as_of"}))
    return [{"account_id": r["account_id"], "as_of": r["facts_as_of"], "tier": r["tier"],
             "health_score": None if pd.isna(r["health_score"]) else int(r["health_score"]),
             **{k: r[k] for k in ("churn_probability", "mrr", "expected_loss", "top_reason_en", "top_reason_zh")}}
            for r in facts.to_dict(orient="records")]


def raise_alerts(store: Path, settings: Settings, engine: Engine | None = None,
                 now: dt.datetime | None = None) -> pd.DataFrame:
    """Evaluate every rule on the store's whole score history and raise the new alerts into the
    operational store (``engine``; default the home's, ``store``'s folder being the home): each
    with its task and one pending digest delivery per webhook, in one transaction. Returns the new
    alerts (``ALERT_COLUMNS``)."""
    now = aware(now) or utcnow()
    engine = engine if engine is not None else store_for(Path(store).parent, settings.operations.url)
    with connect(store, read_only=True) as con:
        history = history_with_segment(con)
    spans = _spans(engine)
    found = [_new_alerts(history, rule, spans[spans["rule"] == rule.name]) for rule in settings.alert_rules]
    found = [f for f in found if len(f)]
    new = pd.concat(found, ignore_index=True).drop_duplicates("alert_id", ignore_index=True) if found else None
    new = _with_facts(store, new, now) if new is not None else pd.DataFrame(columns=ALERT_COLUMNS)
    with engine.connect() as conn:  # the accounts of the active tasks (and of this run's alerts)
        tasked = {r[0] for r in conn.execute(sa.select(TASKS.c.account_id).where(TASKS.c.status.in_(ACTIVE)))}
    latest = _latest_facts(store, history, tasked | set(new["account_id"]))
    newest = pd.to_datetime(history["as_of"]).max().date() if len(history) else None
    lapses = _lapsed(store, latest, newest, settings) if latest else {}  # read before the write transaction
    records = [{("id" if k == "alert_id" else k): (None if isinstance(v, float) and v != v else v)
                for k, v in r.items()} for r in new.to_dict(orient="records")]
    inserted = []
    with write(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK})")
        for r in records:
            if insert_ignore(conn, ALERTS, [r]):
                inserted.append(r["id"])
        todo = conn.execute(sa.select(ALERTS).where(ALERTS.c.task_id.is_(None))
                            .order_by(ALERTS.c.created_at, ALERTS.c.fired_as_of, ALERTS.c.id)).mappings().all()
        tasks = set()
        for alert in todo:
            task = open_or_update(conn, dict(alert), settings, now)
            conn.execute(ALERTS.update().where(ALERTS.c.id == alert["id"]).values(task_id=task))
            tasks.add(task)
        if latest:  # the other open tasks follow their account's latest score (closed when it left or recovered)
            refresh_tasks(conn, latest, newest, now, lapsed=lapses)
        if todo:
            ids = sorted(a["id"] for a in todo)
            run = short_hash(",".join(ids))
            for hook in settings.webhooks:
                enqueue(conn, kind="digest", webhook=hook.name, key=f"digest-{run}-{short_hash(hook.name)[:8]}",
                        lang=getattr(hook, "lang", None) or "en", now=now, alert_ids=ids, task_ids=sorted(tasks))
    return new[new["alert_id"].isin(inserted)].reset_index(drop=True)
