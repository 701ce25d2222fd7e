"""A consumer subscription product's 12-month export, from a mechanism of its own.

Written independently of the B2B demo (``demo/generator.py``) and its hidden health model,
so that what churnwatch learns here is not what it was tuned on. The mechanism:

- each account has a latent **engagement** level following a weekly AR(1) process around
  its own mean, and a **dormant** state that follows a two-state Markov chain (entering it
  is likelier at low engagement; a dormant account uses the app about a tenth as much);
- plans are **monthly**: one subscription row per month (a term), renewing on the
  account's billing day; at each renewal the account cancels with a probability whose
  logit adds up engagement (last 4 weeks), dormancy, **age** (from ``date_of_birth``:
  younger churn more, and more so after a price rise), acquisition source, household
  size, plan, the price rise, and early tenure; a small involuntary churn (failed payment)
  is unrelated to anything observable;
- usage events are Poisson counts per active account-day and event type, scaled by
  engagement, dormancy, a per-account activity level, the weekday and age (messaging).

Only ``accounts``, ``subscriptions`` and ``events`` are written (no tickets, invoices,
feedback or interventions). ``accounts`` carries four columns outside the contract:
``date_of_birth`` (matters), ``acquisition_source`` (categorical, matters),
``household_size`` (numeric, matters) and ``referral_note`` (free text, unused).
Deterministic for a seed; simulated day by day, vectorised over accounts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.settings import CONFIG_FILE_NAME, EventRoles, Settings, dump_settings

DEFAULT_START = date(2025, 1, 1)
HISTORY_DAYS = 3 * 365  # the initial portfolio signed up to three years before the window
SIGNUP_RATE = 0.023  # new accounts per month, share of the initial portfolio
CANDIDATES = 2.5  # initial candidates simulated per account kept alive at the window start
# --- profiles ------------------------------------------------------------------------------
PLANS = ("basic", "standard", "family", "premium")
PLAN_PRICE = np.array([6.99, 10.99, 16.99, 19.99])  # per month
PLAN_USERS = np.array([1, 2, 6, 4])  # profiles a plan allows
PLAN_EFFECT = np.array([0.25, 0.0, -0.25, -0.1])  # churn logit
SOURCES = ("organic", "app_store", "paid_social", "referral", "partner_bundle")
SOURCE_SHARE = (0.30, 0.25, 0.20, 0.15, 0.10)
SOURCE_CHURN = np.array([-0.10, 0.0, 0.45, -0.35, 0.25])  # churn logit
SOURCE_ENGAGEMENT = np.array([0.0, 0.0, -0.20, 0.15, -0.10])  # engagement mean shift
HOUSEHOLD_P = (0.35, 0.25, 0.18, 0.14, 0.06, 0.02)  # household of 1..6 people
HOUSEHOLD_CHURN = -0.18  # churn logit per extra person
AGE_MEAN, AGE_SD, AGE_RANGE = 36.0, 12.0, (18.0, 80.0)
AGE_CHURN = -0.065  # churn logit per year of age above AGE_MEAN (younger churn more)
REGIONS, REGION_SHARE = ("US", "UK", "DE", "BR", "IN"), (0.35, 0.15, 0.15, 0.15, 0.20)
# --- engagement (latent units, weeks) ------------------------------------------------------
ENGAGEMENT_SD = 0.55  # between accounts
ENGAGEMENT_PHI, ENGAGEMENT_NOISE = 0.92, 0.22  # weekly AR(1) coefficient and innovation sd
DORMANT_ENTER = (-3.6, -1.3)  # logit of entering per week = a + b * engagement
DORMANT_LEAVE = 0.25  # chance per week of waking up
DORMANT_USAGE = 0.1  # usage multiplier while dormant
EWMA_DAYS = 28  # memory of the churn decision (exponentially weighted days)
# --- churn at a renewal (logit) ------------------------------------------------------------
CHURN_BASE = -5.0
CHURN_ENGAGEMENT = -1.3  # per latent unit of recent engagement
CHURN_DORMANT = 3.2  # times the recent share of dormant days
CHURN_EARLY, EARLY_MONTHS = 1.0, 3.0  # extra logit decaying with tenure in months
PRICE_RISE_MONTH, PRICE_RISE = 6, 2.0  # standard and premium cost 2.00 more from month 6
PRICE_RISE_CHURN, PRICE_RISE_MONTHS = 0.7, 2  # at the first renewals after it, x young factor
INVOLUNTARY = 0.003  # monthly chance of a failed payment ending the subscription
# --- usage events per active day at engagement 0 -------------------------------------------
EVENT_TYPES = ("app_open", "play", "search", "playlist_add", "share", "message", "watch_party")
EVENT_RATE = np.array([0.55, 0.45, 0.18, 0.06, 0.03, 0.05, 0.04])
EVENT_SLOPE = np.array([0.6, 0.8, 0.5, 0.9, 0.7, 0.4, 0.8])
MESSAGE_AGE = -0.02  # log-rate of 'message' and 'share' per year of age
NEW_FEATURE, NEW_FEATURE_MONTH, ADOPT_SHARE = "watch_party", 5, 0.4  # released at month 5
ACTIVITY_SD = 0.5  # per-account log-normal usage level
WEEKEND_FACTOR = 1.3
OPEN = 10**9  # day sentinel: never
NOTE_PARTS = (
    ("saw an ad on", "friend told me about it on", "found it via", "heard a podcast mention on",
     "a coworker shared it on", "read a review on"),
    ("instagram", "tiktok", "youtube", "a blog", "reddit", "the radio", "a newsletter", "twitter"),
    ("loved the playlists", "wanted offline mode", "family plan deal", "student discount",
     "free trial", "better than the old app", "gift card", ""),
)


@dataclass
class ConsumerData:
    """The three tables (contract column names, plus the extra account columns) and settings."""

    accounts: pd.DataFrame
    subscriptions: pd.DataFrame
    events: pd.DataFrame
    settings: Settings

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"accounts": self.accounts, "subscriptions": self.subscriptions, "events": self.events}


@dataclass
class ConsumerSummary:
    """What was written: rows per table, churn figures, wall time (s)."""

    rows: dict[str, int] = field(default_factory=dict)
    accounts: int = 0
    churned_accounts: int = 0
    monthly_churn_rate: float = 0.0  # mean over the window's months, share of accounts
    seconds: float = 0.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _epoch_day(d: date) -> int:
    return int(np.datetime64(d, "D").astype(np.int64))


def _add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, min(d.day, 28))


def data_end(months: int = 12, start: date = DEFAULT_START) -> date:
    """The export's data end (exclusive) for ``months`` months from ``start``."""
    return _add_months(start, months)


class _Sim:
    """Day-by-day simulation; days count from ``start`` (day 0); the window is ``0 .. T-1``."""

    def __init__(self, accounts: int, months: int, start: date, rng: np.random.Generator) -> None:
        self.rng, self.origin, self.months = rng, _epoch_day(start), months
        self.T = _epoch_day(_add_months(start, months)) - self.origin
        self.month_starts = np.array(
            [_epoch_day(_add_months(start, m)) - self.origin for m in range(months + 1)])
        self.rise_day = int(self.month_starts[min(PRICE_RISE_MONTH, months)])
        self.release_day = int(self.month_starts[min(NEW_FEATURE_MONTH, months)])
        self._profiles(accounts)

    def _profiles(self, accounts: int) -> None:
        rng, cand = self.rng, int(CANDIDATES * accounts)
        ms = self.month_starts
        news = [rng.integers(ms[m], ms[m + 1], rng.poisson(accounts * SIGNUP_RATE))
                for m in range(self.months)]
        self.signup = np.concatenate([rng.integers(-HISTORY_DAYS, 0, cand), *news])
        self.n_candidates, n = cand, self.signup.size
        self.age0 = np.clip(rng.normal(AGE_MEAN, AGE_SD, n), *AGE_RANGE)  # age at day 0, years
        self.source = rng.choice(len(SOURCES), n, p=SOURCE_SHARE)
        self.household = rng.choice(len(HOUSEHOLD_P), n, p=HOUSEHOLD_P) + 1
        family = self.household >= 3
        plan_p = np.where(family[:, None], [0.10, 0.25, 0.50, 0.15], [0.35, 0.45, 0.05, 0.15])
        self.plan = (rng.random((n, 1)) > np.cumsum(plan_p, axis=1)[:, :-1]).sum(axis=1)
        self.region = rng.choice(len(REGIONS), n, p=REGION_SHARE)
        self.mu = SOURCE_ENGAGEMENT[self.source] + rng.normal(0, ENGAGEMENT_SD, n)
        self.activity = np.exp(rng.normal(-(ACTIVITY_SD**2) / 2, ACTIVITY_SD, n))
        self.adopter = rng.random(n) < ADOPT_SHARE
        d = (self.signup + self.origin).astype("datetime64[D]")
        self.anchor = np.minimum((d - d.astype("datetime64[M]")).astype(np.int64) + 1, 28)

    def run(self) -> None:
        """Simulate from the earliest signup to the data end; keeps daily state in the window."""
        rng, n, T = self.rng, self.signup.size, self.T
        stationary = ENGAGEMENT_NOISE / np.sqrt(1 - ENGAGEMENT_PHI**2)
        e = self.mu + rng.normal(0, stationary, n)
        dormant = rng.random(n) < 0.05
        e_avg, d_avg = e.copy(), dormant.astype(np.float64)
        self.churn = np.full(n, OPEN, dtype=np.int64)
        self.E = np.zeros((T, n), np.float32)
        self.D = np.zeros((T, n), bool)
        alpha = 1.0 / EWMA_DAYS
        first = int(self.signup.min())
        days = np.arange(first, T)
        dom = ((days + self.origin).astype("datetime64[D]")
               - (days + self.origin).astype("datetime64[D]").astype("datetime64[M]")).astype(np.int64) + 1
        for i, day in enumerate(days):
            if day % 7 == 0:
                e = self.mu + ENGAGEMENT_PHI * (e - self.mu) + rng.normal(0, ENGAGEMENT_NOISE, n)
                enter = rng.random(n) < _sigmoid(DORMANT_ENTER[0] + DORMANT_ENTER[1] * e)
                dormant = np.where(dormant, rng.random(n) >= DORMANT_LEAVE, enter)
            e_avg += alpha * (e - e_avg)
            d_avg += alpha * (dormant - d_avg)
            if day >= 0:
                self.E[day], self.D[day] = e, dormant
            due = (self.anchor == dom[i]) & (self.signup < day - 20) & (self.churn == OPEN)
            idx = np.flatnonzero(due)
            if idx.size:
                self._renew(idx, int(day), e_avg[idx], d_avg[idx])

    def _renew(self, idx: np.ndarray, day: int, e_avg: np.ndarray, d_avg: np.ndarray) -> None:
        """Decide cancellations at the renewal on ``day`` of accounts ``idx``."""
        age = self.age0[idx] + day / 365.25
        tenure_months = (day - self.signup[idx]) / 30.44
        young = np.clip((AGE_MEAN - age) / AGE_SD, 0, None)
        rise = (self.plan[idx] % 2 == 1) & (day >= self.rise_day) \
            & (day < self.rise_day + PRICE_RISE_MONTHS * 31)
        logit = (CHURN_BASE + CHURN_ENGAGEMENT * e_avg + CHURN_DORMANT * d_avg
                 + AGE_CHURN * (age - AGE_MEAN) + SOURCE_CHURN[self.source[idx]]
                 + HOUSEHOLD_CHURN * (self.household[idx] - 1) + PLAN_EFFECT[self.plan[idx]]
                 + CHURN_EARLY * np.exp(-tenure_months / EARLY_MONTHS)
                 + PRICE_RISE_CHURN * rise * (1 + young))
        leave = (self.rng.random(idx.size) < _sigmoid(logit)) | (self.rng.random(idx.size) < INVOLUNTARY)
        self.churn[idx[leave]] = day

    def keep_portfolio(self, accounts: int) -> np.ndarray:
        """Initial candidates alive at day 0 (up to ``accounts``) plus every new signup."""
        cand = np.arange(self.n_candidates)
        alive = cand[self.churn[cand] >= 0]
        alive = np.sort(self.rng.permutation(alive)[:accounts])
        keep = np.concatenate([alive, np.arange(self.n_candidates, self.signup.size)])
        return keep[np.argsort(self.signup[keep], kind="stable")]


def _dates(sim: _Sim, day: np.ndarray) -> np.ndarray:
    return (np.asarray(day, dtype=np.int64) + sim.origin).astype("datetime64[D]")


def _subscriptions(sim: _Sim, keep: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    """One row per monthly term, from signup until cancellation or the term covering the data end."""
    signup, anchor = sim.signup[keep], sim.anchor[keep]
    first_month = (signup + sim.origin).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    last = np.minimum(sim.churn[keep], sim.T)  # terms start before this day
    last_month = (last + sim.origin).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    count = last_month - first_month + 2  # upper bound, trimmed below
    row = np.repeat(np.arange(keep.size), count)
    k = np.arange(row.size) - np.repeat(np.cumsum(count) - count, count)
    month_first = (first_month[row] + k).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    start = np.where(k == 0, signup[row], month_first + anchor[row] - 1 - sim.origin)
    nxt = (first_month[row] + k + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    end = nxt + anchor[row] - 1 - sim.origin
    ok = start < last[row]
    row, start, end = row[ok], start[ok], end[ok]
    plan = sim.plan[keep][row]
    mrr = PLAN_PRICE[plan] + PRICE_RISE * ((plan % 2 == 1) & (start >= sim.rise_day))
    return pd.DataFrame({
        "account_id": ids[row], "start_date": _dates(sim, start), "end_date": _dates(sim, end),
        "mrr": mrr.round(2), "plan": np.asarray(PLANS, dtype=object)[plan],
        "seats": PLAN_USERS[plan].astype(np.int64),
    })


def _accounts(sim: _Sim, keep: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    rng = sim.rng
    born = np.rint(-sim.age0[keep] * 365.25).astype(np.int64)
    parts = [rng.integers(0, len(p), keep.size) for p in NOTE_PARTS]
    note = np.array([f"{NOTE_PARTS[0][a]} {NOTE_PARTS[1][b]}; {NOTE_PARTS[2][c]}".rstrip("; ")
                     for a, b, c in zip(*parts, strict=True)], dtype=object)
    note[rng.random(keep.size) < 0.3] = None
    return pd.DataFrame({
        "account_id": ids, "signed_at": _dates(sim, sim.signup[keep]),
        "region": np.asarray(REGIONS, dtype=object)[sim.region[keep]],
        "date_of_birth": _dates(sim, born),
        "acquisition_source": np.asarray(SOURCES, dtype=object)[sim.source[keep]],
        "household_size": sim.household[keep].astype(np.int64),
        "referral_note": note,
    })


def _events(sim: _Sim, keep: np.ndarray, ids: np.ndarray, chunk_days: int = 31) -> pd.DataFrame:
    """Poisson usage per active account-day and event type; timestamps within the day."""
    rng, T = sim.rng, sim.T
    signup, churn = sim.signup[keep], sim.churn[keep]
    age = sim.age0[keep]
    users = np.minimum(sim.household[keep], PLAN_USERS[sim.plan[keep]])
    base = np.log(EVENT_RATE)[None, :] + np.zeros((keep.size, 1))
    base[:, 4:6] += MESSAGE_AGE * (age - AGE_MEAN)[:, None]
    base += np.log(sim.activity[keep])[:, None]
    parts = []
    for d0 in range(0, T, chunk_days):
        d1 = min(d0 + chunk_days, T)
        day = np.arange(d0, d1)[:, None]
        active = (signup[None, :] <= day) & (day < churn[None, :])
        di, ai = np.nonzero(active)
        if di.size == 0:
            continue
        dd = d0 + di
        e = sim.E[dd, keep[ai]].astype(np.float64)
        mult = np.where(sim.D[dd, keep[ai]], DORMANT_USAGE, 1.0)
        weekday = ((dd + sim.origin + 3) % 7) < 5  # 1970-01-01 was a Thursday
        mult = mult * np.where(weekday, 1.0, WEEKEND_FACTOR)
        lam = np.exp(base[ai] + EVENT_SLOPE[None, :] * e[:, None]) * mult[:, None]
        lam[:, -1] *= (dd >= sim.release_day) & sim.adopter[keep[ai]]
        counts = rng.poisson(lam)
        cell, code = np.nonzero(counts)
        reps = counts[cell, code]
        cell, code = np.repeat(cell, reps), np.repeat(code, reps)
        acct = ai[cell]
        seconds = rng.integers(7 * 3600, 24 * 3600, cell.size)
        ts = (dd[cell] + sim.origin).astype(np.int64) * 86_400 + seconds
        user = np.floor(users[acct] * rng.random(cell.size) ** 1.4).astype(np.int64) + 1
        qty = np.where(code == 1, rng.poisson(2.0, cell.size) + 1, 1).astype(np.float64)
        parts.append((acct, user, ts, code, qty))
    acct, user, ts, code, qty = (np.concatenate(x) for x in zip(*parts, strict=True))
    o = np.argsort(ts, kind="stable")
    acct, user, ts, code, qty = acct[o], user[o], ts[o], code[o], qty[o]
    user_id = pd.Categorical(np.char.add(np.char.add(ids[acct].astype(str), "-P"), user.astype(str)))
    return pd.DataFrame({
        "account_id": pd.Categorical.from_codes(acct, categories=ids), "user_id": user_id,
        "occurred_at": ts.astype("datetime64[s]").astype("datetime64[ns]"),
        "event_type": pd.Categorical.from_codes(code, categories=list(EVENT_TYPES)),
        "quantity": qty,
    })


def generate_consumer(accounts: int = 4000, months: int = 12, seed: int = 11,
                      start: date = DEFAULT_START) -> ConsumerData:
    """Generate the three tables of a consumer product's export.

    Args:
        accounts: subscribers at ``start``; about ``SIGNUP_RATE * accounts`` sign up each month.
        months: length of the export window; the data end is ``start + months`` (exclusive).
        seed: random seed; the same arguments give the same tables.
        start: first day of the window (events start here; subscriptions go back to signup).

    Raises:
        ValueError: ``accounts`` or ``months`` below 1.
    """
    if accounts < 1 or months < 1:
        raise ValueError(f"accounts ({accounts}) and months ({months}) must be at least 1")
    sim = _Sim(accounts, months, start, np.random.default_rng(seed))
    sim.run()
    keep = sim.keep_portfolio(accounts)
    ids = np.char.add("CUS-", np.char.zfill(np.arange(1, keep.size + 1).astype(str), 6)).astype(object)
    end = data_end(months, start)
    release = _add_months(start, NEW_FEATURE_MONTH)
    roles = EventRoles(login=["app_open"], core_feature=["play", "search", "playlist_add"],
                       new_feature={NEW_FEATURE: release} if release < end else {})
    settings = Settings(data=".", data_end=end, event_roles=roles)
    return ConsumerData(_accounts(sim, keep, ids), _subscriptions(sim, keep, ids),
                        _events(sim, keep, ids), settings)


def monthly_churn_rates(data: ConsumerData) -> pd.Series:
    """Share of accounts subscribed on each month's first day whose subscription ends that month
    (for the window's complete months; a last term ending at or after the data end is no churn)."""
    s = data.subscriptions
    last = s.groupby("account_id", observed=True).agg(first=("start_date", "min"), end=("end_date", "max"))
    end = pd.Timestamp(data.settings.data_end)
    churned_at = last["end"].where(last["end"] < end)
    first_event = pd.Timestamp(data.events["occurred_at"].min()).to_period("M").to_timestamp()
    rates = {}
    for ms in pd.date_range(first_event, end - pd.DateOffset(months=1), freq="MS"):
        me = ms + pd.offsets.MonthBegin(1)
        active = (last["first"] <= ms) & (last["end"] > ms)
        lost = active & (churned_at > ms) & (churned_at <= me)
        rates[ms] = lost.sum() / max(active.sum(), 1)
    return pd.Series(rates, dtype=float)


def write_consumer_data(out: Path, accounts: int = 4000, months: int = 12, seed: int = 11,
                        start: date = DEFAULT_START,
                        fmt: Literal["parquet", "csv"] = "parquet") -> ConsumerSummary:
    """Generate (see ``generate_consumer``) and write ``<out>/<table>.parquet`` (or ``.csv``)
    and ``<out>/churnwatch.yaml``. Returns row counts, churn figures and wall time (s)."""
    t0 = time.perf_counter()
    data = generate_consumer(accounts, months, seed, start)
    write_tables(data.tables(), Path(out), fmt)
    dump_settings(data.settings, Path(out) / CONFIG_FILE_NAME)
    subs = data.subscriptions
    churned = (subs.groupby("account_id")["end_date"].max() < pd.Timestamp(data.settings.data_end)).sum()
    return ConsumerSummary(
        rows={k: len(v) for k, v in data.tables().items()}, accounts=len(data.accounts),
        churned_accounts=int(churned), monthly_churn_rate=float(monthly_churn_rates(data).mean()),
        seconds=time.perf_counter() - t0)


def write_tables(tables: dict[str, pd.DataFrame], out: Path,
                 fmt: Literal["parquet", "csv"] = "parquet") -> list[Path]:
    """Write each frame as ``<out>/<name>.parquet`` (dates as ``date32``, categoricals as
    plain strings) or ``.csv``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False)
        else:
            plain = {c: (df[c].astype(str).where(df[c].notna(), None)
                         if isinstance(df[c].dtype, pd.CategoricalDtype) else df[c]) for c in df.columns}
            pq.write_table(pa.Table.from_pandas(pd.DataFrame(plain), preserve_index=False), path)
        written.append(path)
    return written
