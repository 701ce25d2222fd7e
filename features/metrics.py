"""Monthly churn metrics with ARTICLE §1's definitions.

For each calendar month ``[m0, m1)``:

* **customer churn rate** = accounts active at ``m0`` whose relationship ends in
  ``(m0, m1]`` (the first uncovered day falls in the month) / accounts active at ``m0``;
* **gross MRR churn rate** = (MRR lost to churn + MRR lost to downgrades) / MRR at ``m0``;
* **net MRR churn rate** = (churned + downgrade - expansion MRR) / MRR at ``m0``.

MRR of an account at a date is the MRR of its terms in force then; inside a renewal gap
(within the grace period) the next term of the same relationship counts, so a late
renewal is neither a downgrade nor churn. Churned MRR is the account's MRR at ``m0``.
Downgrade and expansion compare ``m0`` and ``m1`` for accounts active at ``m0`` that did
not churn. Accounts that start (or come back) during the month count as new, never as
expansion. Only final churns count (``end + grace <= data end``); a month is
``provisional`` when ``m1 + grace`` is past the data end: a relationship ending in it could
still renew, so its figures are lower bounds. Such an end is ``pending`` (counted, with its MRR at
``m0`` in ``pending_mrr``): neither churn nor a downgrade, in customers and MRR alike (a probe's
provisional month showed 0 customers churned and 4.06% MRR churn: 14 pending ends counted as
downgrades to 0).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from core.settings import Settings
from features.timeline import build_terms, day_number


def month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of the months from ``first``'s month through ``last``'s month."""
    out, d = [], dt.date(first.year, first.month, 1)
    while d <= last:
        out.append(d)
        d = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def churn_metrics(con: duckdb.DuckDBPyConnection, settings: Settings, data_start: dt.date,
                  data_end: dt.date) -> pd.DataFrame:
    """One row per complete month inside the data; needs the ``clean_*`` tables."""
    build_terms(con, settings)
    months = [m for m in month_starts(data_start, data_end)]
    pairs = [(m, n) for m, n in zip(months, months[1:]) if m >= data_start and n <= data_end]
    con.execute("CREATE OR REPLACE TEMP TABLE months (month DATE, m0 INTEGER, m1 INTEGER)")
    con.executemany("INSERT INTO months VALUES (?, ?, ?)", [(m, day_number(m), day_number(n)) for m, n in pairs])
    end_n, g = day_number(data_end), int(settings.grace_days)
    return con.execute(f"""
        WITH mrr_at AS (
            -- account MRR at m0 and at m1 (next term of the same relationship inside a gap)
            SELECT m.month, m.m0, m.m1, t.account_id, t.rel_no,
                   SUM(t.mrr) AS mrr0
            FROM months m JOIN terms t ON t.sn <= m.m0 AND (t.en IS NULL OR m.m0 < t.en)
            GROUP BY m.month, m.m0, m.m1, t.account_id, t.rel_no
        ), with_end AS (
            SELECT a.*, r.rel_end,
                   (SELECT SUM(t.mrr) FROM terms t WHERE t.account_id = a.account_id AND t.rel_no = a.rel_no
                      AND t.sn <= a.m1 AND (t.en IS NULL OR a.m1 < t.en)) AS mrr1_cover,
                   (SELECT ARG_MIN(t.mrr, t.sn) FROM terms t WHERE t.account_id = a.account_id
                      AND t.rel_no = a.rel_no AND t.sn > a.m1) AS mrr1_next
            FROM mrr_at a JOIN relationships r ON r.account_id = a.account_id AND r.rel_no = a.rel_no
        ), ending AS (
            SELECT *, rel_end IS NOT NULL AND rel_end > m0 AND rel_end <= m1 AS ends FROM with_end
        ), flagged AS (
            -- an end within grace of the data end is pending: neither churn nor a downgrade (yet)
            SELECT *, ends AND rel_end + {g} <= {end_n} AS churned, ends AND rel_end + {g} > {end_n} AS pending,
                   COALESCE(mrr1_cover, mrr1_next, 0) AS mrr1
            FROM ending
        )
        SELECT month,
               COUNT(*) AS accounts_start,
               COUNT_IF(churned) AS churned,
               COUNT_IF(churned) / COUNT(*) AS customer_churn_rate,
               SUM(mrr0) AS mrr_start,
               SUM(CASE WHEN churned THEN mrr0 ELSE 0 END) AS churned_mrr,
               SUM(CASE WHEN NOT churned AND NOT pending THEN GREATEST(mrr0 - mrr1, 0) ELSE 0 END) AS downgrade_mrr,
               SUM(CASE WHEN NOT churned AND NOT pending THEN GREATEST(mrr1 - mrr0, 0) ELSE 0 END) AS expansion_mrr,
               (SUM(CASE WHEN churned THEN mrr0 ELSE 0 END)
                + SUM(CASE WHEN NOT churned AND NOT pending THEN GREATEST(mrr0 - mrr1, 0) ELSE 0 END))
                 / NULLIF(SUM(mrr0), 0) AS gross_mrr_churn_rate,
               (SUM(CASE WHEN churned THEN mrr0 ELSE 0 END)
                + SUM(CASE WHEN NOT churned AND NOT pending THEN GREATEST(mrr0 - mrr1, 0) ELSE 0 END)
                - SUM(CASE WHEN NOT churned AND NOT pending THEN GREATEST(mrr1 - mrr0, 0) ELSE 0 END))
                 / NULLIF(SUM(mrr0), 0) AS net_mrr_churn_rate,
               COUNT_IF(pending) AS pending,
               SUM(CASE WHEN pending THEN mrr0 ELSE 0 END) AS pending_mrr,
               ANY_VALUE(m1) + {g} > {end_n} AS provisional
        FROM flagged GROUP BY month ORDER BY month
    """).df()


def mean_customer_churn(frame: pd.DataFrame) -> tuple[float | None, int]:
    """The mean monthly customer churn of the complete (not provisional) months of ``churn_metrics``,
    weighted by the customers active at each month's start (churned / active, summed), and how many
    months: a first month with 3 customers of whom 2 left weighs 3, not a whole month's say (a probe's
    app export: "mean monthly churn 24.07%" with such a month at 66.7%, its other months 12.6-24.7%).
    None when no complete month had a customer."""
    final = frame[~frame["provisional"]]
    active = float(final["accounts_start"].sum())
    return (float(final["churned"].sum()) / active if active else None), len(final)
