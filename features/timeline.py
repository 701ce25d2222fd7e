"""Terms, relationships, the snapshot spine and churn labels (DESIGN §2).

* A **term** covers ``[start_date, end_date)``; ``end_date`` null is open-ended.
* Consecutive terms with a gap of at most ``grace_days`` form one **relationship**;
  a relationship that has an end ``e`` **churned on** ``e`` (the first uncovered day).
* An account is **active at t** when a term covers ``t``: ``start_date <= t < end_date``, or when
  its term ends on ``t`` and none starts then (its renewal due, not yet seen; ``build_spine``).
* The **label** of ``(account, t)`` is 1 when the relationship ends in ``[t, t + H]`` (it can end on
  ``t`` only for an account whose renewal was due then: such a row is scored and judged by monitoring,
  never trained on, ``build_spine``),
  else 0, and exists only when ``t + H + grace <= data_end``; other rows are kept,
  unlabelled (``churn_label`` null, ``labelled`` false).

Dates are handled as integer day numbers (days since 1970-01-01) so that window frames
and arithmetic are plain integers in every SQL engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from core.settings import Settings
from features.dates import YEARS
from features.sql import is_in

EPOCH = dt.date(1970, 1, 1)
#: A term's end on or after this day is a placeholder for "open-ended" (``9999-12-31``, ``2999-12-31``:
#: CRMs and ERPs write no end that way), read as no end: ``days_to_term_end`` null ("No end date on the
#: current term"), not millions of days ("Term ends in 2,912,442 days"). The first year past
#: ``features.dates.YEARS``, the dates a YYYYMMDD column may hold.
OPEN_ENDED_FROM = dt.date(YEARS[1], 1, 1)


def day_number(d: dt.date) -> int:
    return (d - EPOCH).days


def from_day_number(n: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(n))


def dn(column: str) -> str:
    """SQL: the day number of a date/timestamp column."""
    return f"CAST(date_diff('day', DATE '1970-01-01', CAST({column} AS DATE)) AS INTEGER)"


def owed(alias: str = "") -> str:
    """SQL: an invoice was owed at all: not written off by its due day (a correction voided the day it was
    issued and re-issued never was: no overdue days, no late payment, not "unpaid" in the report)."""
    off, due = f"{alias}written_off_at", f"{alias}due_at"
    return f"({off} IS NULL OR {dn(off)} > {dn(due)})"


#: Warm-up before the first as-of date when the export is long enough: 90-day windows are whole.
FULL_WARMUP_DAYS = 90
#: Warm-up of a short export: four weeks, so that labelled as-of dates exist at all.
SHORT_WARMUP_DAYS = 28
#: Days of labelled as-of dates, beyond the purge gap, that training's cross-fit layout needs
#: (``training.split``: ``MIN_TEST_DAYS + MIN_TRAIN_DAYS``).
CROSS_FIT_EXTRA_DAYS = 84


def schedule_warmup(data_start: dt.date, data_end: dt.date, lag_days: int, every_days: int = 7) -> int:
    """Days from the data start to the first as-of date, adapted to the export's length.

    ``FULL_WARMUP_DAYS`` (90) when the export leaves the cross-fit layout its labelled days
    after the warm-up and the ``lag_days`` (horizon + grace) tail, with a schedule step to
    spare; a short export gets the longest warm-up that still leaves them, at least
    ``SHORT_WARMUP_DAYS`` (28). With the default horizon (60) and grace (30), exports of 361
    days or more keep 90, so their snapshots do not change.

    The cost of a short warm-up: in the first weeks the 90-day (and 30-day) windows are
    partial, because the event log starts at ``data_start``; counts there are lower than for
    the same behaviour later. Tenure is not affected (it comes from the subscriptions), and
    the reasons of accounts with a short history already say "in its first N days".
    """
    export_days = (data_end - data_start).days + 1
    spare = export_days - 2 * lag_days - CROSS_FIT_EXTRA_DAYS - every_days
    return max(SHORT_WARMUP_DAYS, min(FULL_WARMUP_DAYS, spare))


def default_schedule(data_start: dt.date, data_end: dt.date, every_days: int = 7,
                     warmup_days: int = FULL_WARMUP_DAYS, lag_days: int | None = None) -> list[dt.date]:
    """As-of dates every ``every_days`` counted back from the data end, no earlier than
    ``data_start + warmup_days``.

    Anchored on the data end so the latest snapshot is as fresh as the export and the
    dates form a regular grid (the fast window path). The warm-up keeps 90-day windows
    from being cut short by the start of the event log; with ``lag_days`` (horizon + grace
    of the labels) it adapts to a short export instead (``schedule_warmup``).
    """
    if lag_days is not None:
        warmup_days = schedule_warmup(data_start, data_end, lag_days, every_days)
    first = data_start + dt.timedelta(days=warmup_days)
    out: list[dt.date] = []
    d = data_end
    while d >= first:
        out.append(d)
        d -= dt.timedelta(days=every_days)
    return sorted(out) or [data_end]


def build_terms(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """``terms`` (one row per term, with its relationship number) and ``relationships``."""
    g = int(settings.grace_days)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE terms AS
        WITH base AS (
            SELECT account_id, {dn('start_date')} AS sn,
                   CASE WHEN end_date IS NULL OR end_date >= DATE '{OPEN_ENDED_FROM}' THEN NULL
                        ELSE {dn('end_date')} END AS en,
                   mrr, plan, seats
            FROM clean_subscriptions
        ), ordered AS (
            -- open-ended: the largest day number; compared as sn - grace, never added to (overflow)
            SELECT *, MAX(COALESCE(en, 2147483647)) OVER (
                       PARTITION BY account_id ORDER BY sn, en
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
            FROM base
        ), flagged AS (
            SELECT *, CASE WHEN prev_end IS NULL OR sn - {g} > prev_end THEN 1 ELSE 0 END AS new_rel
            FROM ordered
        )
        SELECT account_id, sn, en, mrr, plan, seats,
               SUM(new_rel) OVER (PARTITION BY account_id ORDER BY sn, en
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS rel_no
        FROM flagged
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE relationships AS
        SELECT account_id, rel_no, MIN(sn) AS rel_start,
               CASE WHEN MAX(CASE WHEN en IS NULL THEN 1 ELSE 0 END) = 1 THEN NULL ELSE MAX(en) END AS rel_end
        FROM terms GROUP BY account_id, rel_no
    """)


#: A day number later than any (2^23: the year 24,937): an open end sorts after every end (``build_spine``).
OPEN_END = 1 << 23


def build_spine(con: duckdb.DuckDBPyConnection, as_of: list[dt.date], settings: Settings,
                data_end: dt.date) -> None:
    """``spine``: one row per (active account, as-of date) with term values and the label.

    Needs ``terms`` and ``relationships``. As-of dates after the data end are refused
    by the caller; a term starting on ``t`` is in force at ``t``. A term ending on ``t`` itself is
    in force too (``days_to_term_end`` 0, its renewal due) unless a term of the account starts on
    ``t`` (the renewal, or what replaces it): at the midnight that starts ``t`` nobody knows yet
    whether it renews, and on the data end the export cannot show it (a probe's Shopify app: 74 of
    1,685 paying shops billed on the day after the export were not scored, and ``/score_accounts``
    called them churned). The same rule on every date, so a scored date rebuilt once it has matured
    (monitoring's relabelling) keeps them, labelled by what followed: a churn on ``t`` itself counts
    (``[t, t + H]``; a renewal within the grace period is none). Such a row (``due`` 1) is no training
    row (``labelled`` false in the snapshots): on a past date only the customers who did not renew
    that day have a term ending on it (a renewal starting that day is in force), so the row would tell
    its outcome (the demo's model, trained on them, raised 217 alerts instead of 127, its low-risk
    tier churning more than its medium-risk one). An account with any due term is due (a base term
    lapsing beside a running add-on too: its own subscription columns read the latest term started
    by ``t``, which a renewal starting on ``t`` would change). A term of a paused plan
    (``settings.paused_plans``) is in force, but its end is no term end: ``days_to_term_end`` reads
    the other terms' ends (null when only pauses are).
    """
    con.execute("CREATE OR REPLACE TEMP TABLE asof_dates (t DATE, tn INTEGER)")
    con.executemany("INSERT INTO asof_dates VALUES (?, ?)", [(d, day_number(d)) for d in sorted(set(as_of))])
    h, lag, end_n = int(settings.horizon_days), settings.horizon.lag.days, day_number(data_end)
    paused = is_in("LOWER(COALESCE(tr.plan, ''))", sorted({p.strip().lower() for p in settings.paused_plans}))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE spine AS
        WITH in_force AS (
            SELECT a.t, a.tn, tr.account_id, tr.sn, tr.en, tr.mrr, tr.seats, tr.plan, tr.rel_no, 0 AS due
            FROM asof_dates a JOIN terms tr ON tr.sn <= a.tn AND (tr.en IS NULL OR a.tn < tr.en)
        ), pending AS (  -- a term ending on t whose renewal does not start on t: in force, its renewal due
            SELECT a.t, a.tn, tr.account_id, tr.sn, tr.en, tr.mrr, tr.seats, tr.plan, tr.rel_no, 1 AS due
            FROM asof_dates a JOIN terms tr ON tr.en = a.tn
            LEFT JOIN (SELECT DISTINCT account_id, sn FROM terms) f
              ON f.account_id = tr.account_id AND f.sn = a.tn
            WHERE f.account_id IS NULL
        ), cover AS (  -- a pause's end is no term end (settings.paused_plans): only the other terms' ends
            SELECT tr.t, tr.tn, tr.account_id, SUM(tr.mrr) AS mrr, SUM(tr.seats) AS seats,
                   ARG_MAX(tr.plan, tr.sn) AS plan, MAX(tr.rel_no) AS rel_no, MAX(tr.due) AS due,
                   -- the start of the term whose end is the term end (the latest end; an open end last; of
                   -- terms ending together the earliest start): an add-on, an upgrade's period or a second
                   -- product's renewal beside it starts no new term (cancel_request_standing)
                   COALESCE(ARG_MAX(CASE WHEN {paused} THEN NULL ELSE tr.sn END,
                                    CASE WHEN {paused} THEN NULL
                                         ELSE CAST(COALESCE(tr.en, {OPEN_END}) AS BIGINT) * {OPEN_END} - tr.sn END),
                            MAX(tr.sn)) AS term_start,
                   CASE WHEN MAX(CASE WHEN {paused} THEN 0 ELSE 1 END) = 0 THEN NULL
                        WHEN MAX(CASE WHEN tr.en IS NULL AND NOT ({paused}) THEN 1 ELSE 0 END) = 1 THEN NULL
                        ELSE MAX(CASE WHEN {paused} THEN NULL ELSE tr.en END) END AS term_end
            FROM (SELECT * FROM in_force UNION ALL SELECT * FROM pending) tr
            GROUP BY tr.t, tr.tn, tr.account_id
        ), before AS (
            SELECT a.tn, tr.account_id, SUM(tr.mrr) AS mrr_90d_ago
            FROM asof_dates a JOIN terms tr
              ON tr.sn <= a.tn - 90 AND (tr.en IS NULL OR a.tn - 90 < tr.en)
            GROUP BY a.tn, tr.account_id
        )
        SELECT c.account_id, c.t AS as_of, c.tn, c.mrr, c.seats, c.plan, c.due,
               c.term_end - c.tn AS days_to_term_end, c.term_start,
               b.mrr_90d_ago,
               c.tn - r.rel_start AS tenure_days,
               CASE WHEN c.tn + {lag} <= {end_n} THEN
                    CASE WHEN r.rel_end IS NOT NULL AND r.rel_end >= c.tn AND r.rel_end <= c.tn + {h}
                         THEN 1 ELSE 0 END END AS churn_label
        FROM cover c
        JOIN relationships r ON r.account_id = c.account_id AND r.rel_no = c.rel_no
        LEFT JOIN before b ON b.account_id = c.account_id AND b.tn = c.tn
    """)


def churn_events(con: duckdb.DuckDBPyConnection, settings: Settings, data_end: dt.date) -> None:
    """``churns``: one row per ended relationship, with whether the end is final.

    ``final`` is false when ``end + grace > data_end``: a new term could still start.
    """
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE churns AS
        SELECT r.account_id, r.rel_no, r.rel_start, r.rel_end,
               r.rel_end + {int(settings.grace_days)} <= {day_number(data_end)} AS final
        FROM relationships r WHERE r.rel_end IS NOT NULL AND r.rel_end <= {day_number(data_end)}
    """)


#: The subscriptions look cut at the export start (a file of the periods billed since a date) when at
#: least ``CUT_SHARE`` of the accounts begin their first relationship in the ``CUT_WINDOW_DAYS`` up to the
#: data start, ``CUT_SPIKE`` times as many as begin in a like span after it on average.
CUT_SHARE = 0.25
CUT_SPIKE = 5.0
CUT_WINDOW_DAYS = 35


@dataclass(frozen=True)
class CutStart:
    """Subscriptions that begin at the export's start rather than when the customers did."""

    accounts: int
    at_start: int
    per_window_after: float
    data_start: dt.date

    def warning(self) -> str:
        return (f"subscriptions: {self.at_start:,} of {self.accounts:,} accounts ({self.at_start / self.accounts:.0%}) "
                f"begin their first term in the {CUT_WINDOW_DAYS} days up to the data start ({self.data_start}), "
                f"against {self.per_window_after:,.0f} in {CUT_WINDOW_DAYS} days after it on average: the "
                "subscriptions look cut at the export's start. Those accounts' tenure counts from "
                "accounts.signed_at where it is given and earlier, else from their first term in the file (not "
                "from when they became customers: it grows from there for all of them alike, which the model "
                "learns as a cohort); where the data start cuts their event windows, their counts are scaled "
                "from accounts.signed_at where it is given, else as for accounts that began before the data "
                "start. Export every term since each customer began, or map each account's signup date to "
                "accounts.signed_at")


def subscriptions_cut(con: duckdb.DuckDBPyConnection, data_start: dt.date, data_end: dt.date) -> CutStart | None:
    """``CutStart`` when the first relationships (``relationships``, from ``build_terms``) pile up just
    before the data start (``CUT_SHARE``, ``CUT_SPIKE``), else None. A probe's meal-kit export held the
    periods billed since 2026-05-01: 2,153 of 3,000 accounts began in the 35 days up to it, 139 in 35 days
    after; with every term exported, customers begin over the years before, not in the month before the data."""
    ds, end = day_number(data_start), day_number(data_end)
    row = con.execute(f"""
        SELECT COUNT(*),
               SUM(CASE WHEN first_start > {ds - CUT_WINDOW_DAYS} AND first_start <= {ds} THEN 1 ELSE 0 END),
               SUM(CASE WHEN first_start > {ds} AND first_start <= {end} THEN 1 ELSE 0 END)
        FROM (SELECT account_id, MIN(rel_start) AS first_start FROM relationships GROUP BY account_id) f
    """).fetchone()
    accounts, at_start, after = int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)
    per_window = after * CUT_WINDOW_DAYS / max(end - ds, CUT_WINDOW_DAYS)
    if not accounts or at_start < CUT_SHARE * accounts or at_start < CUT_SPIKE * max(per_window, 1.0):
        return None
    return CutStart(accounts, at_start, per_window, data_start)
