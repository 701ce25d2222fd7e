"""Synthetic B2B SaaS data for churnwatch, driven by a hidden health process.

Every table of the contract (``features/contract.py``) is generated from one latent
"health" per account, a mean-reverting random walk with shocks (key contact leaves, bad
support episode, competitor offer, price rise). Health drives churn at term ends and,
noisily, every leading indicator of ARTICLE §1; part of the churn is sudden and unrelated
to health (acquired, bankrupt, pivot). The model is described in ``features/demo_model.md``.

All parameters below are named module constants, settled once against a proxy model
(see demo_model.md) and not to be retuned. Time is simulated day by day; every step is
vectorised over accounts, and events are drawn as Poisson counts per account-day.
In memory, date columns are ``datetime64[ns]`` at midnight and the large string columns
of ``events`` are pandas categoricals; the Parquet files hold plain strings, ``date32``
and naive ``timestamp[us]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.config import CONFIG_FILE_NAME, EventRoles, Settings, dump_settings
from features.contract import TABLES

# --- profiles: name -> effect on the account's mean health (latent units) ---------------
INDUSTRIES = {"software": 0.15, "finance": 0.10, "healthcare": 0.0, "education": -0.05,
              "media": -0.05, "retail": -0.10, "logistics": -0.10, "manufacturing": -0.25}
REGIONS = {"AMER": 0.35, "EMEA": 0.30, "APAC": 0.20, "CHINA": 0.15}  # name -> share
DRIFT_REGION, DRIFT_REGION_SHARE, DRIFT_LOGIN_FACTOR = "LATAM", 0.30, 0.75
CHANNELS = {"inbound": 0.05, "outbound": -0.05, "partner": 0.10, "self_serve": -0.15}
CSMS = {"Alice Chen": 0.15, "Bruno Silva": 0.0, "Chloe Martin": 0.0, "David Kim": -0.20,
        "Elena Rossi": 0.05, "Farid Haddad": 0.0, "Grace Liu": 0.15, "Hiro Tanaka": 0.0,
        "Ines Garcia": -0.20, "Jonas Weber": 0.05, "Kavya Rao": 0.0, "Liam O'Brien": 0.0}
PLANS = ("starter", "team", "business", "enterprise")
PLAN_PRICE = np.array([15.0, 25.0, 38.0, 55.0])  # list price per seat and month
PLAN_MIN_EMPLOYEES = np.array([0, 50, 250, 1000])  # plan chosen by head count
PLAN_ANNUAL_SHARE = np.array([0.10, 0.50, 0.90, 1.00])  # share on annual terms (else monthly)
EVERGREEN_SHARE = 0.25  # enterprise accounts on an open-ended (evergreen) plan
SEGMENT_MRR = (2500.0, 600.0)  # signup MRR >= first -> A, >= second -> B, else C
EMPLOYEES_MEDIAN, EMPLOYEES_LOG_SD = 45.0, 1.1  # log-normal head count, clipped 3..20000
SEAT_RATIO = (0.08, 0.25)  # seats = employees x U(ratio), clipped 2..250
TRAINED_SHARE, TRAINED_EFFECT = 0.6, 0.25  # onboarding training attended, health bonus
# --- latent health (latent units; time in days) -----------------------------------------
HEALTH_MEAN, HEALTH_ACCOUNT_SD = 0.30, 0.45  # per-account mean: profile + N(0, sd)
HEALTH_REVERT = 1 / 25  # daily pull of health towards mean + shock offset
HEALTH_NOISE = 0.04  # daily innovation sd (stationary sd about 0.14)
SHOCK_DECAY = 1 / 120  # daily decay of the shock offset (persistent declines)
BURN_IN_DAYS = 120  # health simulated before `start` for the initial portfolio
# shock: (daily hazard, offset added to the mean health)
SHOCK_CONTACT_LEFT = (0.0006, -1.2)
SHOCK_SUPPORT = (0.0007, -0.9)  # also a ticket spike (state decays in ~2 weeks)
SHOCK_COMPETITOR = (0.0005, -1.3)  # also ticket silence (state decays in ~3 months)
PRICE_RISE_PROB, PRICE_RISE, PRICE_RISE_SHOCK = 0.20, 0.10, -0.3  # at annual renewals
SUPPORT_DECAY, COMPETITOR_DECAY = 1 / 14, 1 / 90
# --- customer success interventions ------------------------------------------------------
INTERVENTION_THRESHOLD = -0.6  # health below which CS may notice
INTERVENTION_DAILY_PROB = 0.02  # per day while below (x2 for segment A)
INTERVENTION_COOLDOWN = 90  # days between interventions on one account
INTERVENTION_EFFECT = 0.5  # added to the shock offset (decays like a shock)
# --- churn ------------------------------------------------------------------------------
CHURN_LOGIT_MONTHLY = -7.1  # logit of churn at a monthly term end, health 0
CHURN_LOGIT_ANNUAL = -4.2  # logit of non-renewal at an annual term end, health 0
CHURN_HEALTH_SLOPE = -6.0  # per latent unit of health (steep: low health leaves)
CHURN_EARLY_BONUS, EARLY_DAYS = 1.0, 120  # extra logit while tenure < EARLY_DAYS
SUDDEN_HAZARD = 0.0001  # daily hazard of acquisition / bankruptcy / pivot
UNPAID_AT_CHURN = 0.35  # health-driven churner leaves its last invoice unpaid
REACTIVATE_PROB, REACTIVATE_GAP = 0.15, (45, 90)  # gap = min + Exp(mean) days
SIGNUP_RATE = 0.022  # new accounts per month, share of the initial portfolio
RESIZE_PROB = 0.04  # monthly renewal changes seats (x3 at annual renewals)
# --- product usage (rates per engaged user and weekday, at health 0) ----------------------
ENGAGED_LOGIT = (1.2, 1.5)  # engaged share of seats = sigmoid(a + b * health)
WEEKEND_FACTOR = 0.25
JITTER_SD = 0.30  # weekly log-normal noise per account (holidays, projects)
ACTIVITY_SD = 0.35  # per-account log-normal usage level
USAGE_EXPONENT = 0.75  # account usage grows as engaged users ** exponent
USER_SKEW = 1.6  # user index = engaged * U^skew (a few power users)
NEW_FEATURES = {"ai_assistant": 5, "mobile_app": 11}  # released start + N months
ADOPT_NEVER, ADOPT_DELAY = 0.30, 45.0  # share never adopting; mean delay, days
# event type: (rate, health slope); "core" types narrow first when health falls
USER_EVENTS = {"login": (0.45, 0.9), "dashboard_view": (0.30, 0.6),
               "report_build": (0.10, 1.1), "workflow_run": (0.065, 1.3),
               "data_export": (0.04, 1.2), "settings_change": (0.012, 0.0),
               "help_center_view": (0.02, -0.4), "ai_assistant": (0.08, 0.6),
               "mobile_app": (0.10, 0.5), "webinar_attended": (0.0015, 0.6),
               "course_completed": (0.001, 0.4)}
ONBOARDING_COURSES = 0.05  # course rate per engaged user-day in the first 60 days (trained)
EMAIL_RATE, EMAIL_OPEN_LOGIT = 0.20, (-0.2, 0.9)  # per account weekday; open share logit
CORE = ("report_build", "dashboard_view", "workflow_run", "data_export")
EVENT_TYPES = (*USER_EVENTS, "email_sent", "email_opened", "key_contact_left")
# --- support and billing -----------------------------------------------------------------
TICKET_RATE, TICKET_PROP_SD = 0.0025, 0.5  # per account-day x seats ** exponent; propensity sd
TICKET_SEAT_EXPONENT = 0.9  # small accounts write rarely, large ones steadily
TICKET_SPIKE, TICKET_SILENCE = 4.0, 0.9  # x(1 + spike*support), x(1 - silence*competitor)
TICKET_CATEGORIES = ("bug", "how_to", "billing", "integration", "feature_request", "performance")
PRIORITIES = ("low", "normal", "high", "urgent")
CSAT_MISSING = 0.35
LATE_LOGIT, LATE_HEALTH, LATE_FINANCE = -3.3, -1.5, 2.0  # P(invoice paid late)
LATE_MEAN_DAYS = 18.0  # mean days past due when late
FINANCE_STRESS_SHARE = 0.06  # accounts that pay late for financial reasons
FEEDBACK_RATE = 0.90  # churned accounts that give an exit interview

CAUSES = ("product", "price", "service", "competitor", "champion_left",
          "acquired", "bankrupt", "pivot")
CAUSE_CATEGORY = ("product", "price", "service", "competitor", "other",
                  "business_change", "business_change", "business_change")
CAUSE_NOTES = ("Team never adopted the reporting workflows; too complex for our needs.",
               "Price above the value we got; budget cut for tools.",
               "Repeated unresolved tickets; support too slow.",
               "Moved to a competitor with a better offer.",
               "Our champion left; the successor prefers another tool.",
               "Company was acquired; the parent mandates its own stack.",
               "Company went out of business.",
               "Business pivot; the product no longer fits.")
TIERS = ("low_risk", "medium_risk", "high_risk")
PLAYBOOKS = ("care_email", "csm_call", "retention_offer")
OPEN = np.iinfo(np.int64).max // 2  # sentinel: open-ended term


@dataclass
class DemoData:
    """One DataFrame per contract table (contract column names and order) plus settings."""

    accounts: pd.DataFrame
    subscriptions: pd.DataFrame
    events: pd.DataFrame
    tickets: pd.DataFrame
    invoices: pd.DataFrame
    churn_feedback: pd.DataFrame
    interventions: pd.DataFrame
    settings: Settings

    def tables(self) -> dict[str, pd.DataFrame]:
        """The seven tables by contract name."""
        return {name: getattr(self, name) for name in TABLES}


@dataclass
class DemoSummary:
    """What ``write_demo_data`` wrote: rows per table, churn figures, wall time (s)."""

    rows: dict[str, int] = field(default_factory=dict)
    accounts: int = 0
    churned_accounts: int = 0
    churn_events: int = 0
    monthly_churn_rate: float = 0.0  # mean over complete months, share of accounts
    seconds: float = 0.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _months(d: date, n: int) -> date:
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, min(d.day, 28))


class _Sim:
    """The day-by-day simulation of one portfolio; arrays are indexed by account."""

    def __init__(self, accounts: int, months: int, start: date, drift_from: date | None,
                 rng: np.random.Generator) -> None:
        self.rng, self.start = rng, start
        self.origin = np.datetime64(start, "D").astype(np.int64)
        self.T = (np.datetime64(_months(start, months), "D").astype(np.int64)) - self.origin
        self.drift = (np.datetime64(drift_from, "D").astype(np.int64) - self.origin
                      if drift_from is not None else OPEN)
        self._profiles(accounts, months)

    def day_of(self, mi: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """Day index (days since start) of day ``anchor`` of month index ``mi``."""
        first = mi.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        return first + anchor - 1 - self.origin

    def month_of(self, day: np.ndarray) -> np.ndarray:
        return (day + self.origin).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)

    def anchor_of(self, day: np.ndarray) -> np.ndarray:
        """Billing day of month (1..28) for a relationship starting on `day`."""
        dd = (day + self.origin).astype("datetime64[D]")
        return np.minimum((dd - dd.astype("datetime64[M]")).astype(np.int64) + 1, 28)

    def _profiles(self, accounts: int, months: int) -> None:
        rng = self.rng
        first_days = [(np.datetime64(_months(self.start, m), "D").astype(np.int64) - self.origin)
                      for m in range(months + 1)]
        news = [rng.integers(first_days[m], first_days[m + 1],
                             rng.poisson(accounts * SIGNUP_RATE)) for m in range(months)]
        signup = np.concatenate([np.sort(rng.integers(-1095, 1, accounts)), *news])
        n = self.n = signup.size
        self.signup = signup
        self.industry = rng.choice(len(INDUSTRIES), n, p=[.18, .12, .1, .1, .1, .14, .1, .16])
        reg_p = np.array(list(REGIONS.values()))
        self.region = rng.choice(len(REGIONS), n, p=reg_p / reg_p.sum())
        latam = (signup >= self.drift) & (rng.random(n) < DRIFT_REGION_SHARE)
        self.region[latam] = len(REGIONS)
        self.channel = rng.choice(len(CHANNELS), n, p=[.35, .25, .15, .25])
        self.csm = rng.integers(0, len(CSMS), n)
        emp = np.exp(rng.normal(np.log(EMPLOYEES_MEDIAN), EMPLOYEES_LOG_SD, n))
        self.employees = np.clip(np.rint(emp), 3, 20000).astype(np.int64)
        self.plan = np.searchsorted(PLAN_MIN_EMPLOYEES, self.employees, side="right") - 1
        self.seats = np.clip(np.rint(self.employees * rng.uniform(*SEAT_RATIO, n)), 2, 250)
        annual = rng.random(n) < PLAN_ANNUAL_SHARE[self.plan]
        ever = (self.plan == 3) & (rng.random(n) < EVERGREEN_SHARE)
        self.kind = np.where(ever, 2, annual.astype(np.int64))  # 0 monthly, 1 annual, 2 open
        mrr0 = self.seats * PLAN_PRICE[self.plan]
        self.segment = np.where(mrr0 >= SEGMENT_MRR[0], 0, np.where(mrr0 >= SEGMENT_MRR[1], 1, 2))
        self.trained = rng.random(n) < TRAINED_SHARE
        self.mu = (HEALTH_MEAN + rng.normal(0, HEALTH_ACCOUNT_SD, n)
                   + np.array(list(INDUSTRIES.values()))[self.industry]
                   + np.array(list(CHANNELS.values()))[self.channel]
                   + np.array(list(CSMS.values()))[self.csm]
                   + TRAINED_EFFECT * (self.trained - TRAINED_SHARE)
                   + 0.05 * (np.log(self.employees) - np.log(EMPLOYEES_MEDIAN)))
        self.activity = np.exp(rng.normal(-ACTIVITY_SD**2 / 2, ACTIVITY_SD, n))
        self.ticket_prop = np.exp(rng.normal(-TICKET_PROP_SD**2 / 2, TICKET_PROP_SD, n))
        self.fin_stress = rng.random(n) < FINANCE_STRESS_SHARE
        self.net = rng.choice([14, 30], n, p=[0.4, 0.6])
        self.anchor = self.anchor_of(signup)

    # ------------------------------------------------------------------ simulation
    def run(self) -> None:
        n, T, rng = self.n, self.T, self.rng
        cap = n * (int(T) // 28 + 44)  # terms in the window + history up to 3 years
        self.row_acct = np.zeros(cap, np.int64)
        self.row_start, self.row_end = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
        self.row_seats, self.row_mrr = np.zeros(cap, np.int64), np.zeros(cap)
        self.inv_acct, self.inv_day = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
        self.inv_amount = np.zeros(cap)
        self.n_rows = self.n_inv = 0
        self.churns: list[tuple[np.ndarray, int, np.ndarray]] = []
        self.unpaid: list[np.ndarray] = []
        self.ints: list[tuple[np.ndarray, int, np.ndarray]] = []
        self.left: list[tuple[np.ndarray, int]] = []
        self.active = np.zeros(n, bool)
        self.term_mi, self.term_end = np.zeros(n, np.int64), np.full(n, OPEN)
        self.h = self.mu + rng.normal(0, 0.3, n)
        self.m, self.c, self.s = np.zeros(n), np.zeros(n), np.zeros(n)
        self.sudden = np.full(n, -1)  # cause code of a pending sudden churn
        self.last_shock, self.shock_day = np.full(n, -1), np.full(n, -OPEN)
        self.last_int, self.rel_start = np.full(n, -OPEN), self.signup.copy()
        self.cur_row, self.last_inv = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.react = np.full(n, OPEN)
        self.price_mult = np.ones(n)
        self.H = np.zeros((T, n), np.float32)
        self.ACT = np.zeros((T, n), bool)
        self.SEATS = np.zeros((T, n), np.int16)
        self.C, self.S = np.zeros((T, n), np.float32), np.zeros((T, n), np.float32)
        self._initial_terms(np.flatnonzero(self.signup <= 0))
        starts = {d: np.flatnonzero(self.signup == d) for d in np.unique(self.signup[self.signup > 0])}
        for d in range(-BURN_IN_DAYS, T):
            if d >= 0:
                ends = np.flatnonzero(self.active & (self.term_end == d))
                if ends.size:
                    self._decide(ends, d)
                back = np.flatnonzero(self.react == d)
                new = np.concatenate([starts.get(d, np.zeros(0, np.int64)), back])
                if new.size:
                    self._relationship(new, d, back.size)
                self.H[d], self.ACT[d], self.SEATS[d] = self.h, self.active, self.seats
                self.C[d], self.S[d] = self.c, self.s
            self._evolve(d)

    def _add_rows(self, idx: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        k = self.n_rows
        sl = slice(k, k + idx.size)
        self.row_acct[sl], self.row_start[sl], self.row_end[sl] = idx, start, end
        self.row_seats[sl] = self.seats[idx]
        self.row_mrr[sl] = np.round(self.seats[idx] * PLAN_PRICE[self.plan[idx]]
                                    * self.price_mult[idx], 2)
        self.cur_row[idx] = np.arange(k, k + idx.size)
        self.n_rows += idx.size

    def _add_invoices(self, idx: np.ndarray, day: np.ndarray, months: np.ndarray) -> None:
        k = self.n_inv
        sl = slice(k, k + idx.size)
        self.inv_acct[sl], self.inv_day[sl] = idx, day
        self.inv_amount[sl] = np.round(self.seats[idx] * PLAN_PRICE[self.plan[idx]]
                                       * self.price_mult[idx] * months, 2)
        self.last_inv[idx] = np.arange(k, k + idx.size)
        self.n_inv += idx.size

    def _initial_terms(self, idx: np.ndarray) -> None:
        """The term covering `start` for accounts signed before it."""
        smi, anc = self.month_of(self.signup[idx]), self.anchor[idx]
        since = self.month_of(np.zeros(1, np.int64))[0] - smi - (anc > self.start.day)
        kind = self.kind[idx]
        self.term_mi[idx] = smi + np.where(kind == 1, 12 * (np.maximum(since, 0) // 12),
                                           np.maximum(since, 0))
        tstart = np.maximum(self.signup[idx], self.day_of(self.term_mi[idx], anc))
        length = np.where(kind == 1, 12, 1)
        self.term_end[idx] = self.day_of(self.term_mi[idx] + length, anc)
        self.active[idx] = True
        # earlier terms since signing, same seats and list price
        hist = np.where(kind == 2, 0, (self.term_mi[idx] - smi) // length)
        ha = np.repeat(idx, hist)
        hk = np.arange(hist.sum()) - np.repeat(np.cumsum(hist) - hist, hist)
        hl = np.repeat(length, hist)
        hmi = np.repeat(smi, hist) + hk * hl
        hstart = np.maximum(self.signup[ha], self.day_of(hmi, self.anchor[ha]))
        self._add_rows(ha, hstart, self.day_of(hmi + hl, self.anchor[ha]))
        self._add_invoices(ha, hstart, hl.astype(float))
        self._add_rows(idx, np.where(kind == 2, self.signup[idx], tstart),
                       np.where(kind == 2, OPEN, self.term_end[idx]))
        self._add_invoices(idx, tstart, length.astype(float))

    def _relationship(self, idx: np.ndarray, d: int, n_back: int) -> None:
        """New signups and reactivations start a relationship on day `d`."""
        rng = self.rng
        if n_back:
            back = idx[-n_back:]
            self.seats[back] = np.maximum(1, np.rint(self.seats[back] * rng.uniform(0.6, 1, n_back)))
            self.h[back] = self.mu[back] + rng.normal(0, 0.3, n_back)
            self.m[back] = self.c[back] = self.s[back] = 0.0
            self.sudden[back], self.react[back] = -1, OPEN
        anc = np.full(idx.size, self.anchor_of(np.array([d]))[0])
        self.anchor[idx], self.rel_start[idx] = anc, d
        self.term_mi[idx] = self.month_of(np.full(idx.size, d))
        length = np.where(self.kind[idx] == 1, 12, 1)
        self.term_end[idx] = self.day_of(self.term_mi[idx] + length, anc)
        self.active[idx] = True
        self._add_rows(idx, np.full(idx.size, d),
                       np.where(self.kind[idx] == 2, OPEN, self.term_end[idx]))
        self._add_invoices(idx, np.full(idx.size, d), length.astype(float))

    def _decide(self, idx: np.ndarray, d: int) -> None:
        """Term end on day `d`: churn, or renew (possibly resized or repriced)."""
        rng, kind, h = self.rng, self.kind[idx], self.h[idx]
        logit = (np.where(kind == 1, CHURN_LOGIT_ANNUAL, CHURN_LOGIT_MONTHLY)
                 + CHURN_HEALTH_SLOPE * h
                 + CHURN_EARLY_BONUS * (d - self.rel_start[idx] < EARLY_DAYS))
        sudden = self.sudden[idx] >= 0
        churn = sudden | (rng.random(idx.size) < _sigmoid(logit))
        gone, stay = idx[churn], idx[~churn]
        if gone.size:
            recent = d - self.shock_day[gone] < 150
            cause = np.where(recent, self.last_shock[gone], rng.choice([0, 1], gone.size, p=[.55, .45]))
            cause = np.where(self.sudden[gone] >= 0, self.sudden[gone], cause)
            self.churns.append((gone, d, cause))
            self.active[gone], self.term_end[gone] = False, OPEN
            ever = gone[self.kind[gone] == 2]
            self.row_end[self.cur_row[ever]] = d
            health = self.sudden[gone] < 0
            self.unpaid.append(self.last_inv[gone[health & (rng.random(gone.size) < UNPAID_AT_CHURN)]])
            back = health & (cause != 4) & (rng.random(gone.size) < REACTIVATE_PROB)
            self.react[gone[back]] = d + REACTIVATE_GAP[0] + rng.exponential(REACTIVATE_GAP[1], back.sum()).astype(np.int64)
        if not stay.size:
            return
        k = self.kind[stay]
        length = np.where(k == 1, 12, 1)
        resize = (k != 2) & (rng.random(stay.size) < RESIZE_PROB * np.where(k == 1, 3, 1))
        up = rng.random(stay.size) < _sigmoid(self.h[stay] - 0.2)
        step = np.maximum(1, np.rint(self.seats[stay] * rng.uniform(0.1, 0.4, stay.size)))
        self.seats[stay] = np.clip(self.seats[stay] + resize * np.where(up, step, -step), 1, 250)
        rise = (k == 1) & (rng.random(stay.size) < PRICE_RISE_PROB)
        self.price_mult[stay[rise]] *= 1 + PRICE_RISE
        self.m[stay[rise]] += PRICE_RISE_SHOCK
        self.last_shock[stay[rise]], self.shock_day[stay[rise]] = 1, d
        self.term_mi[stay] += length
        self.term_end[stay] = self.day_of(self.term_mi[stay] + length, self.anchor[stay])
        terms = stay[k != 2]
        self._add_rows(terms, np.full(terms.size, d), self.term_end[terms])
        self._add_invoices(stay, np.full(stay.size, d), length.astype(float))

    def _evolve(self, d: int) -> None:
        """One day of health: shocks, interventions, mean reversion."""
        rng, act, n = self.rng, self.active, self.n
        u = rng.random((5, n))
        for code, (rate, off), hit in ((4, SHOCK_CONTACT_LEFT, u[0]), (2, SHOCK_SUPPORT, u[1]),
                                       (3, SHOCK_COMPETITOR, u[2])):
            idx = np.flatnonzero(act & (hit < rate))
            self.m[idx] += off
            self.last_shock[idx], self.shock_day[idx] = code, d
            if code == 2:
                self.s[idx] = 1.0
            elif code == 3:
                self.c[idx] = 1.0
            elif d >= 0 and idx.size:
                self.left.append((idx, d))
        if d >= 0:
            sud = np.flatnonzero(act & (self.sudden < 0) & (u[3] < SUDDEN_HAZARD))
            self.sudden[sud] = rng.integers(5, 8, sud.size)
            ann = sud[self.kind[sud] == 1]  # annual contracts end at the next billing day
            nxt = self.day_of(self.month_of(np.full(ann.size, d)) + 1, self.anchor[ann])
            self.term_end[ann] = np.minimum(self.term_end[ann], nxt)
            self.row_end[self.cur_row[ann]] = self.term_end[ann]
            p = INTERVENTION_DAILY_PROB * np.where(self.segment == 0, 2.0, 1.0)
            cs = np.flatnonzero(act & (self.h < INTERVENTION_THRESHOLD)
                                & (d - self.last_int > INTERVENTION_COOLDOWN) & (u[4] < p))
            if cs.size:
                tier = np.where(self.h[cs] < -1.5, 2, np.where(self.h[cs] < -1.0, 1, 0))
                self.ints.append((cs, d, tier))
                self.last_int[cs] = d
                self.m[cs] += INTERVENTION_EFFECT
        self.h += act * (HEALTH_REVERT * (self.mu + self.m - self.h)
                         + HEALTH_NOISE * rng.standard_normal(n))
        self.m *= 1 - SHOCK_DECAY
        self.s *= 1 - SUPPORT_DECAY
        self.c *= 1 - COMPETITOR_DECAY


# ---------------------------------------------------------------------- tables
def _seconds(rng: np.random.Generator, k: int) -> np.ndarray:
    """Second of the day (0..86399) around office hours."""
    return np.clip(rng.normal(13.5 * 3600, 3 * 3600, k), 0, 86399).astype(np.int64)


def _usage(sim: _Sim, months: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events and tickets: Poisson counts per active account-day, one month at a time."""
    rng, T, n, NS = sim.rng, int(sim.T), sim.n, 86_400 * 10**9
    pool = np.maximum(sim.SEATS.max(axis=0), 1).astype(np.int64)
    user_off = np.concatenate([[0], np.cumsum(pool)[:-1]])
    jitter = np.exp(rng.normal(-JITTER_SD**2 / 2, JITTER_SD, (T // 7 + 1, n))).astype(np.float32)
    adopt = {}
    for name, after in NEW_FEATURES.items():
        rel = np.datetime64(_months(sim.start, after), "D").astype(np.int64) - sim.origin
        delay = rng.exponential(ADOPT_DELAY * np.exp(-0.8 * (sim.mu - HEALTH_MEAN)))
        adopt[name] = np.where(rng.random(n) < ADOPT_NEVER, OPEN,
                               np.maximum(rel, sim.signup) + delay.astype(np.int64))
    left_acct = np.concatenate([a for a, _ in sim.left] or [np.zeros(0, np.int64)])
    left_day = np.concatenate([np.full(a.size, d) for a, d in sim.left] or [np.zeros(0, np.int64)])
    bounds = [min(T, int(np.datetime64(_months(sim.start, m), "D").astype(np.int64) - sim.origin))
              for m in range(months + 1)]
    types = {t: i for i, t in enumerate(EVENT_TYPES)}
    ev_parts: list[tuple[np.ndarray, ...]] = []
    tk_parts: list[tuple[np.ndarray, ...]] = []
    for d0, d1 in zip(bounds[:-1], bounds[1:], strict=True):
        act = sim.ACT[d0:d1]
        dd, ii = np.nonzero(act)
        day = dd + d0
        h = sim.H[d0:d1][act].astype(np.float64)
        seats = sim.SEATS[d0:d1][act].astype(np.float64)
        weekend = (day + sim.origin + 3) % 7 >= 5
        engaged = np.maximum(1.0, np.rint(seats * _sigmoid(ENGAGED_LOGIT[0] + ENGAGED_LOGIT[1] * h)))
        base = engaged**USAGE_EXPONENT * sim.activity[ii] * jitter[day // 7, ii] * np.where(weekend, WEEKEND_FACTOR, 1)
        cells, codes, users = [], [], []
        for name, (rate, slope) in USER_EVENTS.items():
            lam = base * (rate * np.exp(slope * h))
            if name == "login":
                lam *= np.where(day >= sim.drift, DRIFT_LOGIN_FACTOR, 1.0)
            if name in adopt:
                lam *= day >= adopt[name][ii]
            if name == "course_completed":
                lam += base * ONBOARDING_COURSES * (sim.trained[ii] & (day - sim.rel_start[ii] < 60)
                                                    & (day >= sim.rel_start[ii]))
            c = np.repeat(np.arange(day.size), rng.poisson(lam))
            cells.append(c)
            codes.append(np.full(c.size, types[name], np.int8))
            users.append((rng.random(c.size) ** USER_SKEW * engaged[c]).astype(np.int64))
        mail = EMAIL_RATE * ~weekend
        opened = mail * _sigmoid(EMAIL_OPEN_LOGIT[0] + EMAIL_OPEN_LOGIT[1] * h)
        for name, lam in (("email_sent", mail), ("email_opened", opened)):
            c = np.repeat(np.arange(day.size), rng.poisson(lam))
            cells.append(c)
            codes.append(np.full(c.size, types[name], np.int8))
            users.append(rng.integers(0, np.minimum(3, seats[c])))
        c = np.concatenate(cells)
        acct, eday = ii[c], day[c]
        sel = (left_day >= d0) & (left_day < d1)
        acct = np.concatenate([acct, left_acct[sel]])
        eday = np.concatenate([eday, left_day[sel]])
        code = np.concatenate([*codes, np.full(sel.sum(), types["key_contact_left"], np.int8)])
        user = np.concatenate([user_off[ii[c]] + np.concatenate(users), np.full(sel.sum(), -1)])
        ts = (eday + sim.origin) * NS + _seconds(rng, eday.size) * 10**9
        qty = np.ones(eday.size)
        wf = code == types["workflow_run"]
        qty[wf] += rng.poisson(0.6, wf.sum())
        order = np.argsort(ts, kind="stable")
        ev_parts.append((acct[order].astype(np.int32), user[order].astype(np.int32),
                         ts[order], code[order], qty[order]))
        # tickets: spike in a bad support episode, silence after a competitor offer
        s, cst = sim.S[d0:d1][act], sim.C[d0:d1][act]
        lam = (TICKET_RATE * sim.ticket_prop[ii] * seats**TICKET_SEAT_EXPONENT * (1 + TICKET_SPIKE * s)
               * (1 - TICKET_SILENCE * cst) * np.exp(0.15 * h) * np.where(weekend, 0.2, 1.0))
        c = np.repeat(np.arange(day.size), rng.poisson(lam))
        tk_parts.append((ii[c], day[c], h[c], s[c].astype(np.float64)))
    e = [np.concatenate(x) for x in zip(*ev_parts, strict=True)]
    ids = _account_ids(n)
    user_ids = np.char.add(np.char.add(np.repeat(ids, pool).astype(str), "-U"),
                           np.char.zfill((np.arange(pool.sum()) - np.repeat(user_off, pool)
                                          + 1).astype(str), 3))
    events = pd.DataFrame({
        "account_id": pd.Categorical.from_codes(e[0], categories=ids),
        "user_id": pd.Categorical.from_codes(e[1], categories=user_ids),
        "occurred_at": e[2].view("datetime64[ns]"),
        "event_type": pd.Categorical.from_codes(e[3], categories=list(EVENT_TYPES)),
        "quantity": e[4]})
    return events, _tickets(sim, [np.concatenate(x) for x in zip(*tk_parts, strict=True)], ids)


def _account_ids(n: int) -> np.ndarray:
    return np.char.add("ACC-", np.char.zfill(np.arange(1, n + 1).astype(str), 6)).astype(object)


def _pick(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One category per row of the probability matrix `p` (rows sum to 1)."""
    return (rng.random((p.shape[0], 1)) > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)


def _tickets(sim: _Sim, parts: list[np.ndarray], ids: np.ndarray) -> pd.DataFrame:
    rng = sim.rng
    acct, day, h, s = parts
    k = acct.size
    w = s[:, None]
    prio = _pick(rng, (1 - w) * [0.30, 0.50, 0.15, 0.05] + w * [0.05, 0.35, 0.40, 0.20])
    cat = _pick(rng, (1 - w) * [0.30, 0.30, 0.10, 0.10, 0.10, 0.10]
                + w * [0.45, 0.10, 0.05, 0.10, 0.05, 0.25])
    hours = np.exp(rng.normal(np.log(10) + 0.9 * s - 0.4 * (prio >= 2), 0.9))
    opened = (day + sim.origin) * 86_400 + _seconds(rng, k)
    resolved = opened + (hours * 3600).astype(np.int64)
    open_ = resolved >= (sim.T + sim.origin) * 86_400
    csat = np.clip(np.rint(4.3 + 0.35 * h - 0.45 * np.log(hours / 10) - 1.0 * s
                           + rng.normal(0, 0.7, k)), 1, 5)
    csat[open_ | (rng.random(k) < CSAT_MISSING)] = np.nan
    order = np.argsort(opened, kind="stable")
    res = pd.Series(resolved * 10**9).where(~open_).to_numpy()
    return pd.DataFrame({
        "account_id": ids[acct][order],
        "opened_at": (opened * 10**9)[order].view("datetime64[ns]"),
        "resolved_at": pd.to_datetime(res[order]),
        "priority": np.array(PRIORITIES, object)[prio][order],
        "csat": csat[order],
        "category": np.array(TICKET_CATEGORIES, object)[cat][order]})


def _dates(sim: _Sim, day: np.ndarray) -> np.ndarray:
    return (day + sim.origin).astype("datetime64[D]").astype("datetime64[ns]")


def _billing(sim: _Sim, ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subscriptions (one row per term) and invoices (paid late with low health or finances)."""
    rng, r, k = sim.rng, slice(0, sim.n_rows), slice(0, sim.n_inv)
    acct, start, end = sim.row_acct[r], sim.row_start[r], sim.row_end[r]
    subs = pd.DataFrame({
        "account_id": ids[acct], "start_date": _dates(sim, start),
        "end_date": np.where(end >= OPEN, np.datetime64("NaT"), _dates(sim, np.minimum(end, sim.T * 4))),
        "mrr": sim.row_mrr[r], "plan": np.array(PLANS, object)[sim.plan[acct]],
        "seats": sim.row_seats[r]}).sort_values(["account_id", "start_date"], kind="stable")
    ia, iday = sim.inv_acct[k], sim.inv_day[k]
    h = sim.H[np.clip(iday, 0, sim.T - 1), ia].astype(np.float64)
    late = rng.random(ia.size) < _sigmoid(LATE_LOGIT + LATE_HEALTH * h + LATE_FINANCE * sim.fin_stress[ia])
    net = sim.net[ia]
    paid = iday + np.where(late, net + 1 + rng.geometric(1 / LATE_MEAN_DAYS, ia.size),
                           (rng.random(ia.size) * (net + 1)).astype(np.int64))
    unpaid = np.zeros(ia.size, bool)
    unpaid[np.concatenate(sim.unpaid or [np.zeros(0, np.int64)])] = True
    unpaid |= paid >= sim.T
    inv = pd.DataFrame({
        "account_id": ids[ia], "issued_at": _dates(sim, iday), "due_at": _dates(sim, iday + net),
        "paid_at": np.where(unpaid, np.datetime64("NaT"), _dates(sim, np.minimum(paid, sim.T))),
        "amount": sim.inv_amount[k]}).sort_values(["issued_at", "account_id"], kind="stable")
    return subs.reset_index(drop=True), inv.reset_index(drop=True)


def _crm(sim: _Sim, ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Accounts, churn feedback (exit interviews) and CS interventions."""
    rng = sim.rng
    regions = np.array([*REGIONS, DRIFT_REGION], object)
    csm = np.array(list(CSMS), object)
    accounts = pd.DataFrame({
        "account_id": ids, "signed_at": _dates(sim, sim.signup),
        "industry": np.array(list(INDUSTRIES), object)[sim.industry],
        "employees": sim.employees, "region": regions[sim.region],
        "channel": np.array(list(CHANNELS), object)[sim.channel], "csm": csm[sim.csm],
        "segment": np.array(["A", "B", "C"], object)[sim.segment]})
    z = np.zeros(0, np.int64)
    ca = np.concatenate([a for a, _, _ in sim.churns] or [z])
    cd = np.concatenate([np.full(a.size, d) for a, d, _ in sim.churns] or [z])
    cc = np.concatenate([c for _, _, c in sim.churns] or [z])
    keep = rng.random(ca.size) < FEEDBACK_RATE
    ca, cd, cc = ca[keep], cd[keep], cc[keep]
    feedback = pd.DataFrame({
        "account_id": ids[ca], "churned_at": _dates(sim, cd),
        "reason_category": np.array(CAUSE_CATEGORY, object)[cc],
        "avoidable": cc < 4, "notes": np.array(CAUSE_NOTES, object)[cc]})
    ia = np.concatenate([a for a, _, _ in sim.ints] or [z])
    iday = np.concatenate([np.full(a.size, d) for a, d, _ in sim.ints] or [z])
    tier = np.concatenate([t for _, _, t in sim.ints] or [z])
    owner = np.where(tier == 2, "retention_squad", csm[sim.csm[ia]])
    interventions = pd.DataFrame({
        "account_id": ids[ia],
        "occurred_at": ((iday + sim.origin) * 86_400 + _seconds(rng, ia.size)).astype(
            "datetime64[s]").astype("datetime64[ns]"),
        "playbook": np.array(PLAYBOOKS, object)[tier], "tier": np.array(TIERS, object)[tier],
        "owner": owner.astype(object)})
    return accounts, feedback, interventions


def generate_tables(accounts: int = 2000, months: int = 24, seed: int = 7,
                    start: date = date(2024, 1, 1), drift_from: date | None = None) -> DemoData:
    """Generate the seven contract tables.

    Args:
        accounts: portfolio size at `start`; new accounts sign up every month (about
            ``SIGNUP_RATE * accounts`` a month) and some churned accounts come back.
        months: length of the data window; the data end is `start` + `months` (exclusive).
        seed: random seed; the same arguments give the same tables.
        start: first day of the data window (events, tickets start here).
        drift_from: from this day on, logins drop by 25% for everyone and 30% of the new
            accounts come from a new region ``LATAM`` (for drift monitoring demos).
    """
    if accounts < 1 or months < 1:
        raise ValueError("accounts and months must be at least 1")
    sim = _Sim(accounts, months, start, drift_from, np.random.default_rng(seed))
    sim.run()
    ids = _account_ids(sim.n)
    events, tickets = _usage(sim, months)
    subs, invoices = _billing(sim, ids)
    accts, feedback, interventions = _crm(sim, ids)
    data_end = _months(start, months)
    roles = EventRoles(login=["login"], core_feature=list(CORE),
                       new_feature={k: _months(start, v) for k, v in NEW_FEATURES.items()
                                    if _months(start, v) < data_end},
                       training=["webinar_attended", "course_completed"],
                       marketing_sent=["email_sent"], marketing_open=["email_opened"],
                       contact_left=["key_contact_left"])
    settings = Settings(data=".", data_end=data_end, event_roles=roles)
    return DemoData(accts, subs, events, tickets, invoices, feedback, interventions, settings)


_ARROW = {"string": pa.string(), "timestamp": pa.timestamp("us"), "date": pa.date32(),
          "double": pa.float64(), "bigint": pa.int64(), "boolean": pa.bool_()}


def _to_arrow(col: pd.Series, kind: str) -> pa.Array:
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        dic = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0),
                                             pa.array(col.cat.categories.astype(str)))
        return dic.dictionary_decode()
    if kind in ("timestamp", "date"):
        unit = "datetime64[us]" if kind == "timestamp" else "datetime64[D]"
        return pa.array(col.to_numpy(unit), type=_ARROW[kind], from_pandas=True)
    return pa.Array.from_pandas(col, type=_ARROW[kind])


def write_demo_data(out: Path, accounts: int = 2000, months: int = 24, seed: int = 7,
                    start: date = date(2024, 1, 1), drift_from: date | None = None) -> DemoSummary:
    """Generate the demo data and write ``<out>/<table>.parquet`` and ``<out>/churnwatch.yaml``.

    Parquet types follow the contract: strings, ``date32``, naive ``timestamp[us]``,
    ``double``, ``int64``, ``bool``. Returns row counts, churn figures and wall time (s).
    """
    t0 = time.perf_counter()
    data = generate_tables(accounts, months, seed, start, drift_from)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, df in data.tables().items():
        cols = TABLES[name].columns
        table = pa.table({c.name: _to_arrow(df[c.name], c.type) for c in cols},
                         schema=pa.schema([(c.name, _ARROW[c.type]) for c in cols]))
        pq.write_table(table, out / f"{name}.parquet")
        rows[name] = len(df)
    dump_settings(data.settings, out / CONFIG_FILE_NAME)
    churns = churn_table(data)
    return DemoSummary(rows=rows, accounts=len(data.accounts),
                       churned_accounts=int(churns["account_id"].nunique()),
                       churn_events=len(churns),
                       monthly_churn_rate=float(monthly_churn_rates(data).mean()),
                       seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------ measurements
def churn_table(data: DemoData) -> pd.DataFrame:
    """One row per churn: ``account_id``, ``churned_at`` (first day not covered) and
    ``relationship_start``. Terms with gaps of at most ``grace_days`` form one
    relationship; it churned if its last term ends before the data end."""
    s = data.subscriptions.sort_values(["account_id", "start_date"], kind="stable")
    far = pd.Timestamp("2262-01-01")
    end = s["end_date"].fillna(far)
    prev = end.groupby(s["account_id"]).cummax().groupby(s["account_id"]).shift()
    grace = pd.Timedelta(days=data.settings.grace_days)
    rel = (prev.isna() | (s["start_date"] > prev + grace)).cumsum()
    g = pd.DataFrame({"account_id": s["account_id"], "start": s["start_date"], "end": end,
                      "rel": rel}).groupby("rel")
    r = g.agg(account_id=("account_id", "first"), relationship_start=("start", "min"),
              churned_at=("end", "max"))
    r = r[r["churned_at"] < pd.Timestamp(data.settings.data_end)]
    return r[["account_id", "churned_at", "relationship_start"]].reset_index(drop=True)


def monthly_churn_rates(data: DemoData) -> pd.Series:
    """Customer churn rate per calendar month (share, not %): relationships active on the
    month's first day that end within the month, over those active on the first day.
    Only months ending at least ``grace_days`` before the data end are counted."""
    s = data.subscriptions
    end = s["end_date"].fillna(pd.Timestamp("2262-01-01"))
    churns = churn_table(data)
    first = data.events["occurred_at"].min().to_period("M").to_timestamp()
    last = pd.Timestamp(data.settings.data_end) - pd.Timedelta(days=data.settings.grace_days)
    out = {}
    for ms in pd.date_range(first, last, freq="MS"):
        me = ms + pd.offsets.MonthBegin(1)
        if me > last:
            break
        active = s.loc[(s["start_date"] <= ms) & (end > ms), "account_id"].nunique()
        lost = ((churns["churned_at"] > ms) & (churns["churned_at"] <= me)
                & (churns["relationship_start"] <= ms)).sum()
        out[ms] = lost / max(active, 1)
    return pd.Series(out, dtype=float)


def churner_warning_share(data: DemoData, weeks: int = 8) -> float:
    """Share of churners showing a warning in their last `weeks` weeks before churning.

    Compares the last `weeks` weeks with the `weeks` before them: logins or core-feature
    events down >= 30%, a ticket spike (>= 2 and >= 2x before), ticket silence (>= 2
    before, none after), or an invoice falling due in the last window that was paid late
    or not at all. Only churners whose relationship and the data cover both windows count.
    """
    w = pd.Timedelta(weeks=weeks)
    ch = churn_table(data)
    first = data.events["occurred_at"].min().normalize()
    ch = ch[(ch["churned_at"] - 2 * w >= first) & (ch["relationship_start"] <= ch["churned_at"] - 2 * w)]
    ch = ch.reset_index(drop=True).rename_axis("cid").reset_index()
    if ch.empty:
        return float("nan")
    roles = data.settings.event_roles
    ev = data.events
    ev = ev[ev["account_id"].isin(ch["account_id"]) & ev["event_type"].isin([*roles.login, *roles.core_feature])]
    ev = pd.DataFrame({"account_id": ev["account_id"].astype(str), "at": ev["occurred_at"],
                       "login": ev["event_type"].isin(roles.login).to_numpy()})

    def windows(df: pd.DataFrame, at: str, flag: str | None) -> pd.DataFrame:
        m = ch.merge(df, on="account_id")
        age = m["churned_at"] - m[at]
        last = (age > pd.Timedelta(0)) & (age <= w)
        prev = (age > w) & (age <= 2 * w)
        keys = {"last": last, "prev": prev} if flag is None else {
            "l_last": last & m[flag], "l_prev": prev & m[flag],
            "c_last": last & ~m[flag], "c_prev": prev & ~m[flag]}
        return pd.DataFrame({k: v.to_numpy() for k, v in keys.items()}).groupby(
            m["cid"].to_numpy()).sum().reindex(ch["cid"], fill_value=0)

    u = windows(ev, "at", "login")
    t = windows(data.tickets[["account_id", "opened_at"]], "opened_at", None)
    warn = ((u["l_prev"] > 0) & (u["l_last"] <= 0.7 * u["l_prev"])) | \
           ((u["c_prev"] > 0) & (u["c_last"] <= 0.7 * u["c_prev"])) | \
           ((t["last"] >= 2) & (t["last"] >= 2 * t["prev"])) | ((t["prev"] >= 2) & (t["last"] == 0))
    inv = ch.merge(data.invoices, on="account_id")
    due = (inv["due_at"] < inv["churned_at"]) & (inv["due_at"] >= inv["churned_at"] - w)
    bad = due & (inv["paid_at"].isna() | (inv["paid_at"] > inv["due_at"]))
    warn |= bad.groupby(inv["cid"]).any().reindex(ch["cid"], fill_value=False).to_numpy()
    return float(warn.mean())
