"""Synthetic B2B SaaS data for churnwatch, driven by a hidden health process.

Every table of the contract (``features/contract.py``) comes from one latent "health" per
account: a mean-reverting random walk whose target is pushed down by shocks (key contact
leaves, bad support episode, competitor offer, price rise) and up by CS interventions.
Health drives churn at term ends and, noisily, every leading indicator of ARTICLE §1; part
of the churn is sudden and unrelated to health (acquired, bankrupt, pivot). The model and
its measured figures are in ``demo/demo_model.md``.

The parameters are named module constants, settled once against a proxy model (see
demo_model.md); they are not to be retuned. Time is simulated day by day, vectorised over
accounts; events are Poisson counts per active account-day. In memory, date columns are
``datetime64[ns]`` at midnight and the string columns of ``events`` are categoricals; the
Parquet files hold plain strings, ``date32`` and naive ``timestamp[us]``.

Over 400 lines: one simulation whose stages (accounts, usage, tickets, billing, CRM) read
and write the same simulated state and the tuned constants above; split, each part would
import most of the others. (Helper modules of the demo live beside it in ``demo/``.)
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

from core.settings import CONFIG_FILE_NAME, EventRoles, Settings, dump_settings
from core.vocabulary import TIER_KEYS
from features.contract import TABLES

# --- profiles; *_EFFECT shifts the account's mean health (latent units) -----------------
INDUSTRIES = tuple(
    "software finance healthcare education media retail logistics manufacturing".split()
)
INDUSTRY_SHARE = (0.18, 0.12, 0.10, 0.10, 0.10, 0.14, 0.10, 0.16)
INDUSTRY_EFFECT = (0.15, 0.10, 0.0, -0.05, -0.05, -0.10, -0.10, -0.25)
REGIONS, REGION_SHARE = ("AMER", "EMEA", "APAC", "CHINA"), (0.35, 0.30, 0.20, 0.15)
DRIFT_REGION, DRIFT_REGION_SHARE, DRIFT_LOGIN_FACTOR = "LATAM", 0.30, 0.75
DRIFT_USAGE_FACTOR = 0.6  # after the drift date the redesigned product needs fewer in-product events per task
CHANNELS, CHANNEL_SHARE = ("inbound", "outbound", "partner", "self_serve"), (0.35, 0.25, 0.15, 0.25)
CHANNEL_EFFECT = (0.05, -0.05, 0.10, -0.15)
CSMS = tuple(
    "Alice Chen/Bruno Silva/Chloe Martin/David Kim/Elena Rossi/Farid Haddad/Grace Liu/"
    "Hiro Tanaka/Ines Garcia/Jonas Weber/Kavya Rao/Liam O'Brien".split("/")
)
CSM_EFFECT = (0.15, 0.0, 0.0, -0.20, 0.05, 0.0, 0.15, 0.0, -0.20, 0.05, 0.0, 0.0)
PLANS = ("starter", "team", "business", "enterprise")
PLAN_PRICE = np.array([15.0, 25.0, 38.0, 55.0])  # list price per seat and month
PLAN_MIN_EMPLOYEES = np.array([0, 50, 250, 1000])  # plan chosen by head count
PLAN_ANNUAL_SHARE = np.array([0.10, 0.50, 0.90, 1.00])  # share on annual terms (else monthly)
EVERGREEN_SHARE = 0.15  # business/enterprise accounts on an open-ended (evergreen) plan
SEGMENT_MRR = (2500.0, 600.0)  # signup MRR >= first -> A, >= second -> B, else C
EMPLOYEES_MEDIAN, EMPLOYEES_LOG_SD = 45.0, 1.1  # log-normal head count, clipped 3..20000
SEAT_RATIO = (0.08, 0.25)  # seats = employees x U(ratio), clipped 2..250
TRAINED_SHARE, TRAINED_EFFECT = 0.6, 0.25  # onboarding training attended; health bonus
# --- latent health (latent units, days) -------------------------------------------------
HEALTH_MEAN, HEALTH_ACCOUNT_SD = 0.30, 0.45  # account mean = this + profile + N(0, sd)
HEALTH_REVERT = 1 / 25  # daily pull of health towards mean + shock offset
HEALTH_NOISE = 0.04  # daily innovation sd (stationary sd about 0.14)
SHOCK_DECAY = 1 / 120  # daily decay of the shock offset: declines last months
BURN_IN_DAYS = 120  # health simulated before `start` for the initial portfolio
SHOCK_CONTACT_LEFT = (0.0006, -1.2)  # (daily hazard, offset added to the target)
SHOCK_SUPPORT = (0.0007, -0.9)  # and a ticket spike (state decays in ~2 weeks)
SHOCK_COMPETITOR = (0.0005, -1.3)  # and ticket silence (state decays in ~3 months)
SUPPORT_DECAY, COMPETITOR_DECAY = 1 / 14, 1 / 90
PRICE_RISE_PROB, PRICE_RISE, PRICE_RISE_SHOCK = 0.20, 0.10, -0.3  # at annual renewals
INTERVENTION_THRESHOLD = -0.6  # health below which CS may notice the account
INTERVENTION_DAILY_PROB = 0.02  # per day while below (x2 for segment A)
INTERVENTION_COOLDOWN = 90  # days between interventions on one account
INTERVENTION_EFFECT = 0.5  # added to the shock offset (decays like a shock)
# --- churn ------------------------------------------------------------------------------
CHURN_LOGIT_MONTHLY = -6.7  # logit of churn at a monthly term end, health 0
CHURN_LOGIT_ANNUAL = -3.9  # logit of non-renewal at an annual term end, health 0
CHURN_HEALTH_SLOPE = -6.0  # per latent unit (steep: churn concentrates on low health)
CHURN_EARLY_BONUS, EARLY_DAYS = 1.0, 120  # extra logit while tenure < EARLY_DAYS
SUDDEN_HAZARD = 0.0001  # daily hazard of acquisition / bankruptcy / pivot
UNPAID_AT_CHURN = 0.35  # health-driven churner leaves its last invoice unpaid
REACTIVATE_PROB, REACTIVATE_GAP = 0.15, (45, 90)  # gap = 45 + Exp(mean 90) days
SIGNUP_RATE = 0.022  # new accounts per month, share of the initial portfolio
RESIZE_PROB = 0.04  # a monthly renewal changes seats (x3 at annual renewals)
# --- product usage ----------------------------------------------------------------------
ENGAGED_LOGIT = (1.2, 1.5)  # engaged share of seats = sigmoid(a + b * health)
USAGE_EXPONENT = 0.75  # account usage grows as engaged users ** exponent
WEEKEND_FACTOR = 0.25
JITTER_SD = 0.30  # weekly log-normal usage noise per account (holidays, projects)
ACTIVITY_SD = 0.35  # per-account log-normal usage level
USER_SKEW = 1.6  # user index = engaged * U ** skew (a few power users)
# rate per engaged user and weekday at health 0, and health slope of the log rate: core
# features narrow first when health falls; help-center reading rises
USER_EVENTS = tuple(
    "login dashboard_view report_build workflow_run data_export settings_change "
    "help_center_view ai_assistant mobile_app webinar_attended course_completed".split()
)
EVENT_RATE = (0.41, 0.28, 0.092, 0.06, 0.037, 0.012, 0.02, 0.08, 0.10, 0.0015, 0.001)
EVENT_SLOPE = (0.9, 0.6, 1.1, 1.3, 1.2, 0.0, -0.4, 0.6, 0.5, 0.6, 0.4)
CORE = ("report_build", "dashboard_view", "workflow_run", "data_export")
NEW_FEATURES = {"ai_assistant": 5, "mobile_app": 11}  # released start + N months
ADOPT_NEVER, ADOPT_DELAY = 0.30, 45.0  # share never adopting; mean adoption delay, days
ONBOARDING_COURSES = 0.05  # courses per engaged user-day, first 60 days, trained accounts
EMAIL_RATE, EMAIL_OPEN_LOGIT = 0.20, (-0.2, 0.9)  # per account weekday; open share logit
EVENT_TYPES = (*USER_EVENTS, "email_sent", "email_opened", "key_contact_left")
# --- support and billing ----------------------------------------------------------------
TICKET_RATE, TICKET_SEAT_EXPONENT = 0.0025, 0.9  # per account weekday x seats ** exponent
TICKET_PROP_SD = 0.5  # per-account log-normal ticket propensity
TICKET_SPIKE, TICKET_SILENCE = 4.0, 0.9  # x(1 + spike*support), x(1 - silence*competitor)
TICKET_CATEGORIES = ("bug", "how_to", "billing", "integration", "feature_request", "performance")
PRIORITIES = ("low", "normal", "high", "urgent")
CSAT_MISSING = 0.35
LATE_LOGIT, LATE_HEALTH, LATE_FINANCE = -3.3, -1.5, 2.0  # logit of P(invoice paid late)
LATE_MEAN_DAYS = 18.0  # mean days past due when late
FINANCE_STRESS_SHARE = 0.06  # accounts that pay late for financial reasons
FEEDBACK_RATE = 0.90  # churned accounts that give an exit interview
# churn causes 0-7: product, price, service, competitor, champion left (health-driven; a
# recent shock names the cause) and acquired, bankrupt, pivot (sudden, unavoidable)
CAUSE_CATEGORY = tuple(
    "product price service competitor other business_change business_change business_change".split()
)
CAUSE_NOTES = (
    "Team never adopted the reporting workflows; too complex for our needs.",
    "Price above the value we got; budget cut for tools.",
    "Repeated unresolved tickets; support too slow.",
    "Moved to a competitor with a better offer.",
    "Our champion left; the successor prefers another tool.",
    "Company was acquired; the parent mandates its own stack.",
    "Company went out of business.",
    "Business pivot; the product no longer fits.",
)
TIERS = TIER_KEYS[1:]  # the tiers with an intervention
PLAYBOOKS = ("care_email", "csm_call", "retention_offer")
OPEN = 10**9  # day-index sentinel: never / open-ended
_FAR = pd.Timestamp("2262-01-01")  # stands for an open end in date arithmetic


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


DEFAULT_START = date(2024, 1, 1)


def data_end(months: int, start: date = DEFAULT_START) -> date:
    """The first day after the demo data (its data end) for ``months`` months from ``start``."""
    return _months(start, months)


def _months(d: date, n: int) -> date:
    """`d` plus `n` calendar months (day of month clipped to 28)."""
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, min(d.day, 28))


def _epoch_day(d: date) -> int:
    return int(np.datetime64(d, "D").astype(np.int64))


def _frame(table: str, *columns: object) -> pd.DataFrame:
    """A DataFrame with the contract's column names, in contract order."""
    return pd.DataFrame(dict(zip(TABLES[table].column_names, columns, strict=True)))


def _cat(names: tuple[str, ...] | np.ndarray, codes: np.ndarray) -> np.ndarray:
    return np.asarray(names, dtype=object)[codes]


class _Sim:
    """Day-by-day simulation of one portfolio; arrays are indexed by account and days are
    counted from `start` (day 0, the data window is days ``0 .. T-1``)."""

    def __init__(
        self,
        accounts: int,
        months: int,
        start: date,
        drift_from: date | None,
        rng: np.random.Generator,
    ) -> None:
        self.rng, self.start, self.origin = rng, start, _epoch_day(start)
        self.T = _epoch_day(_months(start, months)) - self.origin
        self.drift = OPEN if drift_from is None else _epoch_day(drift_from) - self.origin
        self.month_starts = [_epoch_day(_months(start, m)) - self.origin for m in range(months + 1)]
        self._profiles(accounts, months)

    def day_of(self, mi: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """Day index of day `anchor` of month index `mi` (months since 1970-01)."""
        first = mi.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        return first + anchor - 1 - self.origin

    def month_of(self, day: np.ndarray) -> np.ndarray:
        return (day + self.origin).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)

    def anchor_of(self, day: np.ndarray) -> np.ndarray:
        """Billing day of month (1..28) of a relationship starting on `day`."""
        d = (day + self.origin).astype("datetime64[D]")
        return np.minimum((d - d.astype("datetime64[M]")).astype(np.int64) + 1, 28)

    def _profiles(self, accounts: int, months: int) -> None:
        """Draw profiles: the initial portfolio (survivors of up to 3 years of tenure, so
        long-tenured accounts are healthier) and monthly new signups."""
        rng, cand, ms = self.rng, 2 * accounts, self.month_starts
        news = [
            rng.integers(ms[m], ms[m + 1], rng.poisson(accounts * SIGNUP_RATE))
            for m in range(months)
        ]
        signup = np.concatenate([rng.integers(-1095, 1, cand), *news])
        n = signup.size
        p: dict[str, np.ndarray] = {"signup": signup}
        p["industry"] = rng.choice(len(INDUSTRIES), n, p=INDUSTRY_SHARE)
        p["region"] = rng.choice(len(REGIONS), n, p=REGION_SHARE)
        p["region"][(signup >= self.drift) & (rng.random(n) < DRIFT_REGION_SHARE)] = len(REGIONS)
        p["channel"] = rng.choice(len(CHANNELS), n, p=CHANNEL_SHARE)
        p["csm"] = rng.integers(0, len(CSMS), n)
        emp = np.exp(rng.normal(np.log(EMPLOYEES_MEDIAN), EMPLOYEES_LOG_SD, n))
        p["employees"] = np.clip(np.rint(emp), 3, 20000).astype(np.int64)
        p["plan"] = np.searchsorted(PLAN_MIN_EMPLOYEES, p["employees"], side="right") - 1
        p["seats"] = np.clip(np.rint(p["employees"] * rng.uniform(*SEAT_RATIO, n)), 2, 250)
        annual = rng.random(n) < PLAN_ANNUAL_SHARE[p["plan"]]
        ever = (p["plan"] >= 2) & (rng.random(n) < EVERGREEN_SHARE)
        p["kind"] = np.where(ever, 2, annual.astype(np.int64))  # 0 monthly, 1 annual, 2 open
        mrr0 = p["seats"] * PLAN_PRICE[p["plan"]]
        p["segment"] = np.where(mrr0 >= SEGMENT_MRR[0], 0, np.where(mrr0 >= SEGMENT_MRR[1], 1, 2))
        p["trained"] = rng.random(n) < TRAINED_SHARE
        p["mu"] = (
            HEALTH_MEAN
            + rng.normal(0, HEALTH_ACCOUNT_SD, n)
            + np.take(INDUSTRY_EFFECT, p["industry"])
            + np.take(CHANNEL_EFFECT, p["channel"])
            + np.take(CSM_EFFECT, p["csm"])
            + TRAINED_EFFECT * (p["trained"] - TRAINED_SHARE)
            + 0.05 * (np.log(p["employees"]) - np.log(EMPLOYEES_MEDIAN))
        )
        p["activity"] = np.exp(rng.normal(-(ACTIVITY_SD**2) / 2, ACTIVITY_SD, n))
        p["ticket_prop"] = np.exp(rng.normal(-(TICKET_PROP_SD**2) / 2, TICKET_PROP_SD, n))
        p["fin_stress"] = rng.random(n) < FINANCE_STRESS_SHARE
        p["net"] = rng.choice([14, 30], n, p=[0.4, 0.6])
        # survivors: monthly churn hazard at the account's typical health, over its tenure
        hazard = _sigmoid(CHURN_LOGIT_MONTHLY + CHURN_HEALTH_SLOPE * (p["mu"][:cand] - 0.2))
        alive = rng.random(cand) < (1 - hazard) ** (-signup[:cand] / 30.4)
        keep = np.concatenate([np.flatnonzero(alive), np.flatnonzero(~alive)])[:accounts]
        keep = np.concatenate([keep[np.argsort(signup[keep], kind="stable")], np.arange(cand, n)])
        for name, values in p.items():
            setattr(self, name, values[keep])
        self.n = keep.size
        self.anchor = self.anchor_of(self.signup)

    # ------------------------------------------------------------------ simulation
    def run(self) -> None:
        """Simulate days ``-BURN_IN_DAYS .. T-1``; records terms, invoices and logs."""
        n, T, rng = self.n, self.T, self.rng
        cap = n * (T // 28 + 44)  # terms in the window plus up to 3 years of history
        self.rows = np.zeros((cap, 5))  # account, start day, end day, seats, mrr
        self.invs = np.zeros((cap, 3))  # account, issue day, amount
        self.n_rows = self.n_inv = 0
        self.churns: list[tuple[np.ndarray, int, np.ndarray]] = []  # accounts, day, cause
        self.ints: list[tuple[np.ndarray, int, np.ndarray]] = []  # accounts, day, tier
        self.left: list[tuple[np.ndarray, int]] = []  # key contact left: accounts, day
        self.unpaid: list[np.ndarray] = []  # invoice rows never paid
        self.active = np.zeros(n, bool)
        self.term_mi, self.term_end = np.zeros(n, np.int64), np.full(n, OPEN)
        self.h = self.mu + rng.normal(0, 0.3, n)
        self.m, self.c, self.s, self.price = np.zeros(n), np.zeros(n), np.zeros(n), np.ones(n)
        self.sudden, self.last_shock = np.full(n, -1), np.full(n, -1)
        self.shock_day, self.last_int = np.full(n, -OPEN), np.full(n, -OPEN)
        self.rel_start, self.react = self.signup.copy(), np.full(n, OPEN)
        self.cur_row, self.last_inv = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.H, self.C, self.S = (np.zeros((T, n), np.float32) for _ in range(3))
        self.ACT, self.SEATS = np.zeros((T, n), bool), np.zeros((T, n), np.int16)
        self._initial_terms(np.flatnonzero(self.signup <= 0))
        later = self.signup[self.signup > 0]
        starts = {d: np.flatnonzero(self.signup == d) for d in np.unique(later)}
        for d in range(-BURN_IN_DAYS, T):
            if d >= 0:
                ends = np.flatnonzero(self.active & (self.term_end == d))
                if ends.size:
                    self._decide(ends, d)
                back = np.flatnonzero(self.react == d)
                new = np.concatenate([starts.get(d, back[:0]), back])
                if new.size:
                    self._relationship(new, d, back.size)
                self.H[d], self.ACT[d], self.SEATS[d] = self.h, self.active, self.seats
                self.C[d], self.S[d] = self.c, self.s
            self._evolve(d)

    def _add_rows(self, idx: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        k = self.n_rows
        mrr = np.round(self.seats[idx] * PLAN_PRICE[self.plan[idx]] * self.price[idx], 2)
        self.rows[k : k + idx.size] = np.column_stack([idx, start, end, self.seats[idx], mrr])
        self.cur_row[idx] = np.arange(k, k + idx.size)
        self.n_rows += idx.size

    def _add_invoices(self, idx: np.ndarray, day: np.ndarray, months: np.ndarray) -> None:
        k = self.n_inv
        amount = np.round(
            self.seats[idx] * PLAN_PRICE[self.plan[idx]] * self.price[idx] * months, 2
        )
        self.invs[k : k + idx.size] = np.column_stack([idx, day, amount])
        self.last_inv[idx] = np.arange(k, k + idx.size)
        self.n_inv += idx.size

    def _initial_terms(self, idx: np.ndarray) -> None:
        """Terms since signing for accounts signed before `start`, up to the one covering it."""
        smi, anc, kind = self.month_of(self.signup[idx]), self.anchor[idx], self.kind[idx]
        since = np.maximum(
            self.month_of(np.zeros(1, np.int64))[0] - smi - (anc > self.start.day), 0
        )
        length = np.where(kind == 1, 12, 1)
        self.term_mi[idx] = smi + since // length * length
        tstart = np.maximum(self.signup[idx], self.day_of(self.term_mi[idx], anc))
        self.term_end[idx] = self.day_of(self.term_mi[idx] + length, anc)
        self.active[idx] = True
        hist = np.where(kind == 2, 0, since // length)  # earlier terms: same seats and price
        ha, hl = np.repeat(idx, hist), np.repeat(length, hist)
        hmi = np.repeat(smi, hist) + hl * (
            np.arange(hist.sum()) - np.repeat(np.cumsum(hist) - hist, hist)
        )
        hstart = np.maximum(self.signup[ha], self.day_of(hmi, self.anchor[ha]))
        self._add_rows(ha, hstart, self.day_of(hmi + hl, self.anchor[ha]))
        self._add_invoices(ha, hstart, hl.astype(float))
        ever = kind == 2
        self._add_rows(
            idx, np.where(ever, self.signup[idx], tstart), np.where(ever, OPEN, self.term_end[idx])
        )
        self._add_invoices(idx, tstart, length.astype(float))

    def _relationship(self, idx: np.ndarray, d: int, n_back: int) -> None:
        """New signups and reactivations (the last `n_back` of `idx`) start on day `d`."""
        rng = self.rng
        if n_back:
            back = idx[-n_back:]
            self.seats[back] = np.maximum(
                2, np.rint(self.seats[back] * rng.uniform(0.6, 1, n_back))
            )
            self.h[back] = self.mu[back] + rng.normal(0, 0.3, n_back)
            self.m[back] = self.c[back] = self.s[back] = 0.0
            self.sudden[back], self.react[back] = -1, OPEN
        anc = np.full(idx.size, self.anchor_of(np.array([d]))[0])
        self.anchor[idx], self.rel_start[idx] = anc, d
        self.term_mi[idx] = self.month_of(np.full(idx.size, d))
        length = np.where(self.kind[idx] == 1, 12, 1)
        self.term_end[idx] = self.day_of(self.term_mi[idx] + length, anc)
        self.active[idx] = True
        day = np.full(idx.size, d)
        self._add_rows(idx, day, np.where(self.kind[idx] == 2, OPEN, self.term_end[idx]))
        self._add_invoices(idx, day, length.astype(float))

    def _decide(self, idx: np.ndarray, d: int) -> None:
        """Term end on day `d`: churn, or renew (possibly resized or repriced)."""
        rng, kind = self.rng, self.kind[idx]
        logit = (
            np.where(kind == 1, CHURN_LOGIT_ANNUAL, CHURN_LOGIT_MONTHLY)
            + CHURN_HEALTH_SLOPE * self.h[idx]
            + CHURN_EARLY_BONUS * (d - self.rel_start[idx] < EARLY_DAYS)
        )
        churn = (self.sudden[idx] >= 0) | (rng.random(idx.size) < _sigmoid(logit))
        gone, stay = idx[churn], idx[~churn]
        if gone.size:
            usual = rng.choice([0, 1], gone.size, p=[0.55, 0.45])  # product or price
            cause = np.where(d - self.shock_day[gone] < 150, self.last_shock[gone], usual)
            health = self.sudden[gone] < 0
            cause = np.where(health, cause, self.sudden[gone])
            self.churns.append((gone, d, cause))
            self.active[gone], self.term_end[gone] = False, OPEN
            ever = gone[self.kind[gone] == 2]
            self.rows[self.cur_row[ever], 2] = d
            self.unpaid.append(
                self.last_inv[gone[health & (rng.random(gone.size) < UNPAID_AT_CHURN)]]
            )
            back = gone[health & (cause != 4) & (rng.random(gone.size) < REACTIVATE_PROB)]
            self.react[back] = (
                d + REACTIVATE_GAP[0] + rng.exponential(REACTIVATE_GAP[1], back.size).astype(int)
            )
        if not stay.size:
            return
        k = self.kind[stay]
        length = np.where(k == 1, 12, 1)
        resize = (k != 2) & (rng.random(stay.size) < RESIZE_PROB * np.where(k == 1, 3, 1))
        up = rng.random(stay.size) < _sigmoid(self.h[stay] - 0.2)
        step = np.maximum(1, np.rint(self.seats[stay] * rng.uniform(0.1, 0.4, stay.size)))
        self.seats[stay] = np.clip(self.seats[stay] + resize * np.where(up, step, -step), 2, 250)
        rise = stay[(k == 1) & (rng.random(stay.size) < PRICE_RISE_PROB)]
        self.price[rise] *= 1 + PRICE_RISE
        self.m[rise] += PRICE_RISE_SHOCK
        self.last_shock[rise], self.shock_day[rise] = 1, d
        self.term_mi[stay] += length
        self.term_end[stay] = self.day_of(self.term_mi[stay] + length, self.anchor[stay])
        terms = stay[k != 2]
        self._add_rows(terms, np.full(terms.size, d), self.term_end[terms])
        self._add_invoices(stay, np.full(stay.size, d), length.astype(float))

    def _evolve(self, d: int) -> None:
        """One day of health: shocks, sudden-churn events, interventions, mean reversion."""
        rng, act, n = self.rng, self.active, self.n
        u = rng.random((5, n))
        for code, (rate, off), hit in (
            (4, SHOCK_CONTACT_LEFT, u[0]),
            (2, SHOCK_SUPPORT, u[1]),
            (3, SHOCK_COMPETITOR, u[2]),
        ):
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
            ann = sud[self.kind[sud] == 1]  # an annual contract ends at the next billing day
            nxt = self.day_of(self.month_of(np.full(ann.size, d)) + 1, self.anchor[ann])
            self.term_end[ann] = np.minimum(self.term_end[ann], nxt)
            self.rows[self.cur_row[ann], 2] = self.term_end[ann]
            p = INTERVENTION_DAILY_PROB * np.where(self.segment == 0, 2.0, 1.0)
            low = act & (self.h < INTERVENTION_THRESHOLD)
            cs = np.flatnonzero(low & (d - self.last_int > INTERVENTION_COOLDOWN) & (u[4] < p))
            if cs.size:
                self.ints.append((cs, d, np.digitize(-self.h[cs], [1.0, 1.5])))
                self.last_int[cs] = d
                self.m[cs] += INTERVENTION_EFFECT
        self.h += act * (
            HEALTH_REVERT * (self.mu + self.m - self.h) + HEALTH_NOISE * rng.standard_normal(n)
        )
        self.m *= 1 - SHOCK_DECAY
        self.s *= 1 - SUPPORT_DECAY
        self.c *= 1 - COMPETITOR_DECAY


# ---------------------------------------------------------------------- tables
def _seconds(rng: np.random.Generator, k: int) -> np.ndarray:
    """Second of the day (0..86399) around office hours."""
    return rng.normal(13.5 * 3600, 3 * 3600, k).astype(np.int64) % 86_400


def _stamp(sim: _Sim, day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    return ((day + sim.origin) * 86_400 + seconds).astype("datetime64[s]").astype("datetime64[ns]")


def _dates(sim: _Sim, day: np.ndarray) -> np.ndarray:
    return (day + sim.origin).astype("datetime64[D]").astype("datetime64[ns]")


def _usage(sim: _Sim, ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events and tickets: Poisson counts per active account-day, one month at a time."""
    rng, T, n = sim.rng, sim.T, sim.n
    pool = np.maximum(sim.SEATS.max(axis=0), 1).astype(np.int64)  # users per account
    user_off = np.concatenate([[0], np.cumsum(pool)[:-1]])
    jitter = np.exp(rng.normal(-(JITTER_SD**2) / 2, JITTER_SD, (T // 7 + 1, n))).astype(np.float32)
    adopt = {}
    for name, after in NEW_FEATURES.items():
        release = _epoch_day(_months(sim.start, after)) - sim.origin
        delay = rng.exponential(ADOPT_DELAY * np.exp(-0.8 * (sim.mu - HEALTH_MEAN)))
        first = np.maximum(release, sim.signup) + delay.astype(np.int64)
        adopt[name] = np.where(rng.random(n) < ADOPT_NEVER, OPEN, first)
    left_acct = np.concatenate([a for a, _ in sim.left] or [np.zeros(0, np.int64)])
    left_day = np.concatenate([np.full(a.size, d) for a, d in sim.left] or [np.zeros(0, np.int64)])
    ev_parts, tk_parts = [], []
    bounds = [min(T, b) for b in sim.month_starts]
    for d0, d1 in zip(bounds[:-1], bounds[1:], strict=True):
        act = sim.ACT[d0:d1]
        dd, ii = np.nonzero(act)  # active account-days, day-major
        day, cells = dd + d0, np.arange(dd.size)
        h = sim.H[d0:d1][act].astype(np.float64)
        seats = sim.SEATS[d0:d1][act].astype(np.float64)
        weekday = (day + sim.origin + 3) % 7 < 5
        engaged = np.maximum(
            1.0, np.rint(seats * _sigmoid(ENGAGED_LOGIT[0] + ENGAGED_LOGIT[1] * h))
        )
        base = engaged**USAGE_EXPONENT * sim.activity[ii] * jitter[day // 7, ii]
        base *= np.where(weekday, 1.0, WEEKEND_FACTOR)
        mail = EMAIL_RATE * weekday
        parts = []
        for k, name in enumerate(EVENT_TYPES[:-1]):  # key_contact_left comes from the shocks
            if name == "email_sent":
                lam = mail
            elif name == "email_opened":
                lam = mail * _sigmoid(EMAIL_OPEN_LOGIT[0] + EMAIL_OPEN_LOGIT[1] * h)
            else:
                lam = base * (EVENT_RATE[k] * np.exp(EVENT_SLOPE[k] * h))
            if name == "login":
                lam = lam * np.where(day >= sim.drift, DRIFT_LOGIN_FACTOR, 1.0)
            elif name in USER_EVENTS[1:9]:  # in-product use; not training, not e-mail
                lam = lam * np.where(day >= sim.drift, DRIFT_USAGE_FACTOR, 1.0)
            if name in adopt:
                lam = lam * (day >= adopt[name][ii])
            if name == "course_completed":
                fresh = (day >= sim.rel_start[ii]) & (day - sim.rel_start[ii] < 60)
                lam = lam + base * ONBOARDING_COURSES * (sim.trained[ii] & fresh)
            c = np.repeat(cells, rng.poisson(lam))
            if name.startswith("email"):
                user = rng.integers(0, np.minimum(3, seats[c]))
            else:
                user = (rng.random(c.size) ** USER_SKEW * engaged[c]).astype(np.int64)
            parts.append((ii[c], day[c], np.full(c.size, k, np.int8), user_off[ii[c]] + user))
        sel = (left_day >= d0) & (left_day < d1)
        kcl = np.full(sel.sum(), len(EVENT_TYPES) - 1, np.int8)
        parts.append((left_acct[sel], left_day[sel], kcl, np.full(sel.sum(), -1)))
        acct, eday, code, user = (np.concatenate(x) for x in zip(*parts, strict=True))
        ts = (eday + sim.origin) * 86_400 + _seconds(rng, eday.size)
        qty = np.ones(eday.size)
        wf = code == EVENT_TYPES.index("workflow_run")
        qty[wf] += rng.poisson(0.6, wf.sum())  # runs batched in one call
        o = np.argsort(ts, kind="stable")
        ev_parts.append(
            (acct[o].astype(np.int32), user[o].astype(np.int32), ts[o], code[o], qty[o])
        )
        # tickets: a spike in a bad support episode, silence after a competitor offer
        s, comp = sim.S[d0:d1][act], sim.C[d0:d1][act]
        lam = TICKET_RATE * sim.ticket_prop[ii] * seats**TICKET_SEAT_EXPONENT * np.exp(0.15 * h)
        lam *= (1 + TICKET_SPIKE * s) * (1 - TICKET_SILENCE * comp) * np.where(weekday, 1.0, 0.2)
        c = np.repeat(cells, rng.poisson(lam))
        tk_parts.append((ii[c], day[c], h[c], s[c].astype(np.float64)))
    acct, user, ts, code, qty = (np.concatenate(x) for x in zip(*ev_parts, strict=True))
    local = np.arange(pool.sum()) - np.repeat(user_off, pool) + 1
    user_ids = np.char.add(
        np.char.add(np.repeat(ids, pool).astype(str), "-U"), np.char.zfill(local.astype(str), 3)
    )
    events = _frame(
        "events",
        pd.Categorical.from_codes(acct, categories=ids),
        pd.Categorical.from_codes(user, categories=user_ids),
        (ts * 10**9).view("datetime64[ns]"),
        pd.Categorical.from_codes(code, categories=list(EVENT_TYPES)),
        qty,
    )
    return events, _tickets(sim, ids, *(np.concatenate(x) for x in zip(*tk_parts, strict=True)))


def _pick(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One category per row of the probability matrix `p` (rows sum to 1)."""
    return (rng.random((p.shape[0], 1)) > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)


def _tickets(
    sim: _Sim, ids: np.ndarray, acct: np.ndarray, day: np.ndarray, h: np.ndarray, s: np.ndarray
) -> pd.DataFrame:
    """Tickets; during a support episode (`s` near 1) priority rises, resolution slows
    (hours, log-normal) and CSAT (1-5) falls."""
    rng, k, w = sim.rng, acct.size, s[:, None]
    prio = _pick(rng, (1 - w) * [0.30, 0.50, 0.15, 0.05] + w * [0.05, 0.35, 0.40, 0.20])
    cat = _pick(
        rng, (1 - w) * [0.3, 0.3, 0.1, 0.1, 0.1, 0.1] + w * [0.45, 0.1, 0.05, 0.1, 0.05, 0.25]
    )
    hours = np.exp(rng.normal(np.log(10) + 0.9 * s - 0.4 * (prio >= 2), 0.9))
    opened = (day + sim.origin) * 86_400 + _seconds(rng, k)
    resolved = opened + (hours * 3600).astype(np.int64)
    still_open = resolved >= (sim.T + sim.origin) * 86_400
    noise = rng.normal(0, 0.7, k)
    csat = np.clip(np.rint(4.3 + 0.35 * h - 0.45 * np.log(hours / 10) - s + noise), 1, 5)
    csat[still_open | (rng.random(k) < CSAT_MISSING)] = np.nan
    res = np.where(still_open, np.datetime64("NaT"), resolved.astype("datetime64[s]"))
    o = np.argsort(opened, kind="stable")
    return _frame(
        "tickets",
        ids[acct][o],
        opened[o].astype("datetime64[s]").astype("datetime64[ns]"),
        res[o].astype("datetime64[ns]"),
        _cat(PRIORITIES, prio)[o],
        csat[o],
        _cat(TICKET_CATEGORIES, cat)[o],
    )


def _billing(sim: _Sim, ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subscriptions (one row per term) and invoices; an invoice is paid late more often
    at low health or under financial stress, and days are whole days."""
    rng, r, v = sim.rng, sim.rows[: sim.n_rows], sim.invs[: sim.n_inv]
    acct, end = r[:, 0].astype(np.int64), r[:, 2].astype(np.int64)
    end_date = np.where(end >= OPEN, np.datetime64("NaT"), _dates(sim, np.minimum(end, 4 * sim.T)))
    subs = _frame(
        "subscriptions", ids[acct], _dates(sim, r[:, 1].astype(np.int64)), end_date,
        r[:, 4], _cat(PLANS, sim.plan[acct]), r[:, 3].astype(np.int64),
    ).sort_values(["account_id", "start_date"], kind="stable", ignore_index=True)  # fmt: skip
    ia, iday = v[:, 0].astype(np.int64), v[:, 1].astype(np.int64)
    h = sim.H[np.clip(iday, 0, sim.T - 1), ia].astype(np.float64)
    p_late = _sigmoid(LATE_LOGIT + LATE_HEALTH * h + LATE_FINANCE * sim.fin_stress[ia])
    late, net = rng.random(ia.size) < p_late, sim.net[ia]
    on_time = (rng.random(ia.size) * (net + 1)).astype(np.int64)
    paid = iday + np.where(late, net + 1 + rng.geometric(1 / LATE_MEAN_DAYS, ia.size), on_time)
    unpaid = paid >= sim.T  # not paid by the export
    unpaid[np.concatenate(sim.unpaid or [np.zeros(0, np.int64)])] = True
    paid_at = np.where(unpaid, np.datetime64("NaT"), _dates(sim, np.minimum(paid, sim.T)))
    status = np.where(unpaid, "open", "paid").astype(object)  # as a billing system states it at the export
    never = np.full(ia.size, np.datetime64("NaT"), dtype="datetime64[ns]")  # written_off_at: nothing written off
    inv = _frame("invoices", ids[ia], _dates(sim, iday), _dates(sim, iday + net), paid_at, v[:, 2], status, never)
    return subs, inv.sort_values(["issued_at", "account_id"], kind="stable", ignore_index=True)


def _crm(sim: _Sim, ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Accounts, churn feedback (exit interviews) and CS interventions."""
    rng, z = sim.rng, np.zeros(0, np.int64)
    accounts = _frame(
        "accounts", ids, _dates(sim, sim.signup), _cat(INDUSTRIES, sim.industry), sim.employees,
        _cat((*REGIONS, DRIFT_REGION), sim.region), _cat(CHANNELS, sim.channel),
        _cat(CSMS, sim.csm), _cat(("A", "B", "C"), sim.segment),
    )  # fmt: skip
    acct = np.concatenate([a for a, _, _ in sim.churns] or [z])
    day = np.concatenate([np.full(a.size, d) for a, d, _ in sim.churns] or [z])
    cause = np.concatenate([c for _, _, c in sim.churns] or [z])
    keep = rng.random(acct.size) < FEEDBACK_RATE
    acct, day, cause = acct[keep], day[keep], cause[keep]
    feedback = _frame(
        "churn_feedback", ids[acct], _dates(sim, day), _cat(CAUSE_CATEGORY, cause),
        cause < 4, _cat(CAUSE_NOTES, cause),
    )  # fmt: skip
    acct = np.concatenate([a for a, _, _ in sim.ints] or [z])
    day = np.concatenate([np.full(a.size, d) for a, d, _ in sim.ints] or [z])
    tier = np.concatenate([t for _, _, t in sim.ints] or [z])
    owner = np.where(tier == 2, "retention_squad", _cat(CSMS, sim.csm[acct])).astype(object)
    interventions = _frame(
        "interventions", ids[acct], _stamp(sim, day, _seconds(rng, acct.size)),
        _cat(PLAYBOOKS, tier), _cat(TIERS, tier), owner,
    )  # fmt: skip
    return accounts, feedback, interventions


def generate_tables(
    accounts: int = 2000,
    months: int = 24,
    seed: int = 7,
    start: date = date(2024, 1, 1),
    drift_from: date | None = None,
) -> DemoData:
    """Generate the seven contract tables.

    Args:
        accounts: portfolio size at `start`; about ``SIGNUP_RATE * accounts`` new accounts
            sign up each month and some churned accounts come back.
        months: length of the data window; the data end is `start` + `months` (exclusive).
        seed: random seed; the same arguments give the same tables.
        start: first day of the data window (events and tickets start here; subscriptions
            and invoices of the initial portfolio go back to its signing, up to 3 years).
        drift_from: from this day on, a product change lowers logins by 25% and the other
            in-product events by 40% for everyone (health and churn are unchanged), and
            30% of the new accounts come from a new region ``LATAM`` (for drift monitoring
            demos: the model's inputs move, so its scores drift).
    """
    if accounts < 1 or months < 1:
        raise ValueError("accounts and months must be at least 1")
    sim = _Sim(accounts, months, start, drift_from, np.random.default_rng(seed))
    sim.run()
    ids = np.char.add("ACC-", np.char.zfill(np.arange(1, sim.n + 1).astype(str), 6)).astype(object)
    events, tickets = _usage(sim, ids)
    subscriptions, invoices = _billing(sim, ids)
    accts, feedback, interventions = _crm(sim, ids)
    data_end = _months(start, months)
    released = {k: _months(start, v) for k, v in NEW_FEATURES.items()}
    roles = EventRoles(
        login=["login"],
        core_feature=list(CORE),
        new_feature={k: v for k, v in released.items() if v < data_end},
        training=["webinar_attended", "course_completed"],
        marketing_sent=["email_sent"],
        marketing_open=["email_opened"],
        contact_left=["key_contact_left"],
    )
    settings = Settings(data=".", data_end=data_end, event_roles=roles)
    return DemoData(
        accts, subscriptions, events, tickets, invoices, feedback, interventions, settings
    )


_ARROW = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
}


def _to_arrow(col: pd.Series, kind: str) -> pa.Array:
    if isinstance(col.dtype, pd.CategoricalDtype):  # decode to plain strings
        codes = col.cat.codes.to_numpy()
        names = pa.array(col.cat.categories.astype(str))
        return pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=codes < 0), names
        ).dictionary_decode()
    if kind in ("timestamp", "date"):
        unit = "datetime64[us]" if kind == "timestamp" else "datetime64[D]"
        return pa.array(col.to_numpy(unit), type=_ARROW[kind], from_pandas=True)
    return pa.Array.from_pandas(col, type=_ARROW[kind])


def write_demo_data(
    out: Path,
    accounts: int = 2000,
    months: int = 24,
    seed: int = 7,
    start: date = DEFAULT_START,
    drift_from: date | None = None,
) -> DemoSummary:
    """Generate the demo data (see `generate_tables`) and write ``<out>/<table>.parquet``
    and ``<out>/churnwatch.yaml``. Returns row counts, churn figures and wall time (s)."""
    t0 = time.perf_counter()
    data = generate_tables(accounts, months, seed, start, drift_from)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in data.tables().items():
        cols = TABLES[name].columns
        schema = pa.schema([(c.name, _ARROW[c.type]) for c in cols])
        arrays = [_to_arrow(df[c.name], c.type) for c in cols]
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), out / f"{name}.parquet")
    dump_settings(data.settings, out / CONFIG_FILE_NAME)
    churns = churn_table(data)
    return DemoSummary(
        rows={name: len(df) for name, df in data.tables().items()},
        accounts=len(data.accounts),
        churned_accounts=int(churns["account_id"].nunique()),
        churn_events=len(churns),
        monthly_churn_rate=float(monthly_churn_rates(data).mean()),
        seconds=time.perf_counter() - t0,
    )


# ------------------------------------------------------------------ measurements
def churn_table(data: DemoData) -> pd.DataFrame:
    """One row per churn: ``account_id``, ``churned_at`` (first day not covered) and
    ``relationship_start``. Terms with gaps of at most ``grace_days`` form one
    relationship; it churned if its last term ends before the data end."""
    s = data.subscriptions.sort_values(["account_id", "start_date"], kind="stable")
    end = s["end_date"].fillna(_FAR)
    prev = end.groupby(s["account_id"]).cummax().groupby(s["account_id"]).shift()
    new = prev.isna() | (s["start_date"] > prev + pd.Timedelta(days=data.settings.grace_days))
    rel = pd.DataFrame({"account_id": s["account_id"], "start": s["start_date"], "end": end})
    r = rel.groupby(new.cumsum().to_numpy()).agg(
        account_id=("account_id", "first"),
        relationship_start=("start", "min"),
        churned_at=("end", "max"),
    )
    r = r[r["churned_at"] < pd.Timestamp(data.settings.data_end)]
    return r[["account_id", "churned_at", "relationship_start"]].reset_index(drop=True)


def monthly_churn_rates(data: DemoData) -> pd.Series:
    """Customer churn rate per calendar month (a share, not %): relationships active on the
    month's first day that end within the month, over the accounts active on that day.
    Months ending less than ``grace_days`` before the data end are left out."""
    s, churns = data.subscriptions, churn_table(data)
    end = s["end_date"].fillna(_FAR)
    first = data.events["occurred_at"].min().to_period("M").to_timestamp()
    last = pd.Timestamp(data.settings.data_end) - pd.Timedelta(days=data.settings.grace_days)
    rates = {}
    for ms in pd.date_range(first, last - pd.DateOffset(months=1), freq="MS"):
        me = ms + pd.offsets.MonthBegin(1)
        active = s.loc[(s["start_date"] <= ms) & (end > ms), "account_id"].nunique()
        at = churns["churned_at"]
        lost = ((at > ms) & (at <= me) & (churns["relationship_start"] <= ms)).sum()
        rates[ms] = lost / max(active, 1)
    return pd.Series(rates, dtype=float)


def churner_warning_share(data: DemoData, weeks: int = 8) -> float:
    """Share of churners showing a warning in their last `weeks` weeks before churning.

    The last `weeks` weeks are compared with the `weeks` before them: logins or
    core-feature events down >= 30%, a ticket spike (>= 2 and >= 2x before), ticket silence
    (>= 2 before, none after), or an invoice falling due in the last window that was paid
    late or not at all. Only churners whose relationship and data cover both windows count.
    """
    w, roles = pd.Timedelta(weeks=weeks), data.settings.event_roles
    ch = churn_table(data)
    first = data.events["occurred_at"].min().normalize()
    ch = ch[
        (ch["churned_at"] - 2 * w >= first) & (ch["relationship_start"] <= ch["churned_at"] - 2 * w)
    ]
    ch = ch.reset_index(drop=True)
    if ch.empty:
        return float("nan")
    ev = data.events
    ev = ev[
        ev["account_id"].isin(ch["account_id"])
        & ev["event_type"].isin([*roles.login, *roles.core_feature])
    ]
    kind = np.where(ev["event_type"].isin(roles.login), "login", "core")
    t = data.tickets
    sig = pd.DataFrame({
        "account_id": np.concatenate([ev["account_id"].astype(str), t["account_id"]]),
        "at": np.concatenate([ev["occurred_at"].to_numpy(), t["opened_at"].to_numpy()]),
        "kind": np.concatenate([kind, np.full(len(t), "ticket")]),
    })  # fmt: skip
    m = ch.reset_index(names="cid").merge(sig, on="account_id")
    age = m["churned_at"] - m["at"]
    m["win"] = np.where(age <= w, "last", "prev")
    m = m[(age > pd.Timedelta(0)) & (age <= 2 * w)]
    n = m.groupby(["cid", "kind", "win"]).size().unstack(["kind", "win"], fill_value=0)
    cols = pd.MultiIndex.from_product([["login", "core", "ticket"], ["last", "prev"]])
    n = n.reindex(index=ch.index, columns=cols, fill_value=0)
    warn = np.zeros(len(ch), bool)
    for k in ("login", "core"):
        warn |= ((n[k, "prev"] > 0) & (n[k, "last"] <= 0.7 * n[k, "prev"])).to_numpy()
    last, prev = n["ticket", "last"], n["ticket", "prev"]
    warn |= (((last >= 2) & (last >= 2 * prev)) | ((prev >= 2) & (last == 0))).to_numpy()
    inv = ch.reset_index(names="cid").merge(data.invoices, on="account_id")
    due = (inv["due_at"] < inv["churned_at"]) & (inv["due_at"] >= inv["churned_at"] - w)
    bad = due & (inv["paid_at"].isna() | (inv["paid_at"] > inv["due_at"]))
    warn |= bad.groupby(inv["cid"]).any().reindex(ch.index, fill_value=False).to_numpy()
    return float(warn.mean())
