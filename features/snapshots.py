"""Point-in-time snapshots: one row per active account per as-of date, every feature.

The computation is a handful of SQL queries run by DuckDB (no Python loop over rows).
We write them as plain SQL in DuckDB's dialect restricted to what sqlglot transpiles to
Spark SQL (integer day numbers, ``RANGE`` frames over integers, no ``QUALIFY``): that is
our route to Spark (DESIGN §7), checked by a test that transpiles every query. We chose
sqlglot over Ibis because the window-frame trick below (sums over ``[t - N, t)`` from
one sorted pass) is natural in SQL and awkward in Ibis, and because it adds no runtime
layer: the SQL DuckDB runs is the SQL Spark would run.

Stages (all temp tables in one connection):

1. ``ev_daily``: events summed per account, event type and day.
2. ``ev_win``: for each (account, event type, as-of t), counts over ``[t-N, t)`` for
   N in 7, 14, 30, 60, 90, 180 and the last event day before t. Marker rows at day
   ``t-1`` are added to the daily series and ``SUM ... OVER (RANGE N-1 PRECEDING)`` is
   read off them: one sort, every window.
3. ``act_win``: the same for distinct active days per account.
4. ``users_30d``: distinct users per account and event type over ``[t-30, t)``.
5. tickets, invoices and new-feature first use per as-of date.
6. the final projection: one expression per feature, made by the template named in
   the feature spec (``features/spec.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Callable

import duckdb
from sqlglot import exp

from features.config import Settings
from features.spec import SIZE_BANDS, Catalogue, FeatureSpec, build_catalogue, slug
from features.timeline import day_number, dn

log = logging.getLogger(__name__)

WINDOWS = (7, 14, 30, 60, 90, 180)


def lit(value: str) -> str:
    """A SQL string literal (sqlglot does the escaping)."""
    return exp.Literal.string(value).sql()


def is_in(column: str, values: list[str] | tuple[str, ...]) -> str:
    """SQL: ``column IN (...)``; FALSE for an empty list (``IN (NULL)`` would be NULL)."""
    return f"{column} IN ({', '.join(lit(v) for v in values)})" if values else "FALSE"


def not_in(column: str, values: list[str] | tuple[str, ...]) -> str:
    return f"{column} NOT IN ({', '.join(lit(v) for v in values)})" if values else "TRUE"


def event_types(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT event_type FROM clean_events ORDER BY 1").fetchall()]


def _window_sums(value: str, partition: str, order: str) -> str:
    return ", ".join(
        f"SUM({value}) OVER (PARTITION BY {partition} ORDER BY {order} "
        f"RANGE BETWEEN {w - 1} PRECEDING AND CURRENT ROW) AS c{w}"
        for w in WINDOWS
    )


def stage_queries(settings: Settings) -> list[tuple[str, str]]:
    """(table, SELECT) for the event, ticket and invoice stages, in run order."""
    roles = settings.event_roles
    releases = list(roles.new_feature.items())
    # marketing touches and contact changes happen *to* an account: not activity
    passive = [*roles.marketing_sent, *roles.marketing_open, *roles.contact_left]
    rel_values = ", ".join(f"({lit(k)}, {day_number(v)})" for k, v in releases) or "(NULL, NULL)"
    return [
        ("ev_daily", f"""
            SELECT account_id, event_type, {dn('occurred_at')} AS d, SUM(quantity) AS n
            FROM clean_events GROUP BY account_id, event_type, {dn('occurred_at')}"""),
        ("ev_win", f"""
            SELECT account_id, event_type, d + 1 AS tn, c7, c14, c30, c60, c90, c180, last_d
            FROM (
                SELECT account_id, event_type, d, is_marker,
                       {_window_sums('n', 'account_id, event_type', 'd')},
                       MAX(CASE WHEN is_marker THEN NULL ELSE d END) OVER (
                           PARTITION BY account_id, event_type ORDER BY d
                           RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_d
                FROM (
                    SELECT account_id, event_type, d, n, FALSE AS is_marker FROM ev_daily
                    UNION ALL
                    SELECT s.account_id, p.event_type, s.tn - 1 AS d, 0 AS n, TRUE AS is_marker
                    FROM spine s JOIN (SELECT DISTINCT account_id, event_type FROM ev_daily) p
                      ON p.account_id = s.account_id
                ) u
            ) w WHERE is_marker"""),
        ("act_win", f"""
            SELECT account_id, d + 1 AS tn, c7, c14, c30, c60, c90, c180
            FROM (
                SELECT account_id, d, is_marker, {_window_sums('n', 'account_id', 'd')}
                FROM (
                    SELECT account_id, d, 1 AS n, FALSE AS is_marker
                    FROM ev_daily WHERE {not_in('event_type', passive)} GROUP BY account_id, d
                    UNION ALL
                    SELECT account_id, tn - 1 AS d, 0 AS n, TRUE AS is_marker FROM spine
                ) u
            ) w WHERE is_marker"""),
        ("ev_users", f"""
            SELECT DISTINCT account_id, event_type, user_id, {dn('occurred_at')} AS d
            FROM clean_events WHERE user_id IS NOT NULL"""),
        ("users_win", """
            SELECT s.account_id, s.tn, u.event_type, u.user_id
            FROM spine s JOIN ev_users u
              ON u.account_id = s.account_id AND u.d >= s.tn - 30 AND u.d < s.tn
            GROUP BY s.account_id, s.tn, u.event_type, u.user_id"""),
        ("users_by_type", """
            SELECT account_id, tn, event_type, COUNT(*) AS users
            FROM users_win GROUP BY account_id, tn, event_type"""),
        ("users_all", f"""
            SELECT account_id, tn,
                   COUNT(DISTINCT CASE WHEN {not_in('event_type', passive)} THEN user_id END) AS active_users,
                   COUNT(DISTINCT CASE WHEN {is_in('event_type', roles.core_feature)}
                                       THEN user_id END) AS core_users
            FROM users_win GROUP BY account_id, tn"""),
        ("tk", f"""
            SELECT s.account_id, s.tn,
                   SUM(CASE WHEN k.o >= s.tn - 30 THEN 1 ELSE 0 END) AS tickets_30d,
                   SUM(CASE WHEN k.o >= s.tn - 180 THEN 1 ELSE 0 END) AS tickets_180d,
                   SUM(CASE WHEN k.o >= s.tn - 30 AND lower(k.priority) IN ('high', 'urgent')
                            THEN 1 ELSE 0 END) AS high_priority_tickets_30d,
                   SUM(CASE WHEN k.r IS NULL OR k.r >= s.tn THEN 1 ELSE 0 END) AS open_tickets,
                   AVG(CASE WHEN k.r < s.tn AND k.r >= s.tn - 90 THEN k.hours END) AS mean_resolution_hours_90d,
                   MIN(CASE WHEN k.r < s.tn AND k.r >= s.tn - 90 THEN k.csat END) AS worst_csat_90d,
                   AVG(CASE WHEN k.r < s.tn AND k.r >= s.tn - 90 THEN k.csat END) AS mean_csat_90d,
                   s.tn - MAX(k.o) AS days_since_last_ticket,
                   SUM(CASE WHEN k.o >= s.tn - 180 AND k.o < s.tn - {int(settings.silence_days)}
                            THEN 1 ELSE 0 END) AS tickets_before_silence,
                   SUM(CASE WHEN k.o >= s.tn - {int(settings.silence_days)} THEN 1 ELSE 0 END) AS tickets_silence
            FROM spine s JOIN (
                SELECT account_id, {dn('opened_at')} AS o, opened_at,
                       CASE WHEN resolved_at IS NULL THEN NULL ELSE {dn('resolved_at')} END AS r,
                       date_diff('second', opened_at, resolved_at) / 3600.0 AS hours,
                       priority, csat
                FROM clean_tickets) k
              ON k.account_id = s.account_id AND k.opened_at < CAST(s.as_of AS TIMESTAMP)
            GROUP BY s.account_id, s.tn"""),
        ("inv", f"""
            SELECT s.account_id, s.tn,
                   MAX(CASE WHEN i.due < s.tn AND (i.paid IS NULL OR i.paid >= s.tn)
                            THEN s.tn - i.due END) AS days_overdue,
                   SUM(CASE WHEN i.due >= s.tn - 90 AND i.due < s.tn AND
                                 ((i.paid IS NOT NULL AND i.paid < s.tn AND i.paid > i.due)
                                  OR i.paid IS NULL OR i.paid >= s.tn)
                            THEN 1 ELSE 0 END) AS late_payments_90d,
                   AVG(CASE WHEN i.paid < s.tn AND i.paid >= s.tn - 90
                            THEN GREATEST(i.paid - i.due, 0) END) AS payment_delay_90d,
                   AVG(CASE WHEN i.paid < s.tn - 90 AND i.paid >= s.tn - 180
                            THEN GREATEST(i.paid - i.due, 0) END) AS payment_delay_prev_90d
            FROM spine s JOIN (
                SELECT account_id, {dn('issued_at')} AS iss, {dn('due_at')} AS due,
                       CASE WHEN paid_at IS NULL THEN NULL ELSE {dn('paid_at')} END AS paid
                FROM clean_invoices) i
              ON i.account_id = s.account_id AND i.iss < s.tn
            GROUP BY s.account_id, s.tn"""),
        ("nf", f"""
            SELECT s.account_id, s.tn,
                   SUM(CASE WHEN f.first_d < r.rel_d + 30 AND f.first_d < s.tn THEN 1 ELSE 0 END)
                       AS new_features_tried_30d
            FROM spine s
            JOIN (SELECT * FROM (VALUES {rel_values}) AS v(event_type, rel_d) WHERE rel_d IS NOT NULL) r
              ON r.rel_d < s.tn AND r.rel_d >= s.tn - 180
            LEFT JOIN (SELECT account_id, event_type, MIN(d) AS first_d FROM ev_daily
                       GROUP BY account_id, event_type) f
              ON f.account_id = s.account_id AND f.event_type = r.event_type
            GROUP BY s.account_id, s.tn"""),
    ]


# --- feature templates: spec -> SQL expression over the joined stage columns ---------

def _pct(cur: str, prev: str) -> str:
    """Relative change; 0 when both are 0, null when only the previous is 0."""
    return (f"CASE WHEN ({prev}) = 0 THEN CASE WHEN ({cur}) = 0 THEN 0.0 END "
            f"ELSE (({cur}) - ({prev})) / CAST(({prev}) AS DOUBLE) END")


def _ratio(num: str, den: str) -> str:
    return f"CAST(({num}) AS DOUBLE) / NULLIF(({den}), 0)"


def _role_col(role: str, window: int) -> str:
    return f"COALESCE(r_{role}_c{window}, 0)"


def _tpl_role_count(f: FeatureSpec) -> str:
    return _role_col(f.params["role"], f.params["window"])


def _tpl_role_change(f: FeatureSpec) -> str:
    r, w = f.params["role"], f.params["window"]
    return _pct(_role_col(r, w), f"{_role_col(r, 2 * w)} - {_role_col(r, w)}")


def _tpl_active_days(f: FeatureSpec) -> str:
    return f"COALESCE(a.c{f.params['window']}, 0)"


def _tpl_active_days_change(f: FeatureSpec) -> str:
    w = f.params["window"]
    return _pct(f"COALESCE(a.c{w}, 0)", f"COALESCE(a.c{2 * w}, 0) - COALESCE(a.c{w}, 0)")


def _rate_change(num: str, den: str, w: int) -> str:
    """Rate over [t-w, t) minus the rate over [t-2w, t-w)."""
    now = _ratio(_role_col(num, w), _role_col(den, w))
    prev = _ratio(f"{_role_col(num, 2 * w)} - {_role_col(num, w)}",
                  f"{_role_col(den, 2 * w)} - {_role_col(den, w)}")
    return f"({now}) - ({prev})"


TEMPLATES: dict[str, Callable[[FeatureSpec], str]] = {
    "active_days": _tpl_active_days,
    "active_days_change": _tpl_active_days_change,
    "role_count": _tpl_role_count,
    "role_change": _tpl_role_change,
    "days_since_role": lambda f: f"s.tn - r_{f.params['role']}_last",
    "distinct_users": lambda f: "COALESCE(ua.active_users, 0)",
    "distinct_users_share": lambda f: _ratio("ua.core_users", "ua.active_users"),
    "role_breadth": lambda f: f"COALESCE(r_{f.params['role']}_breadth{f.params['window']}, 0)",
    "role_breadth_change": lambda f: (f"COALESCE(r_{f.params['role']}_breadth{f.params['window']}, 0) - "
                                      f"COALESCE(r_{f.params['role']}_breadth_prev{f.params['window']}, 0)"),
    "ticket_count": lambda f: f"COALESCE(tk.{f.name}, 0)",
    "ticket_spike": lambda f: _ratio("tk.tickets_30d", "tk.tickets_180d / 6.0"),
    "open_tickets": lambda f: "COALESCE(tk.open_tickets, 0)",
    "ticket_resolution": lambda f: "tk.mean_resolution_hours_90d",
    "ticket_csat": lambda f: f"tk.{f.name}",
    "ticket_days_since": lambda f: "tk.days_since_last_ticket",
    "ticket_silence": lambda f: ("CASE WHEN COALESCE(tk.tickets_before_silence, 0) >= 3 AND "
                                 "COALESCE(tk.tickets_silence, 0) = 0 THEN 1 ELSE 0 END"),
    "new_features_tried": lambda f: "nf.new_features_tried_30d",
    "term_end": lambda f: "s.days_to_term_end",
    "invoice_overdue": lambda f: "COALESCE(inv.days_overdue, 0)",
    "invoice_late": lambda f: "COALESCE(inv.late_payments_90d, 0)",
    "invoice_delay": lambda f: "inv.payment_delay_90d",
    "invoice_delay_change": lambda f: "inv.payment_delay_90d - inv.payment_delay_prev_90d",
    "term_value": lambda f: f"s.{f.params['column']}",
    "term_value_change": lambda f: _ratio("s.mrr - s.mrr_90d_ago", "s.mrr_90d_ago"),
    "tenure": lambda f: "s.tenure_days",
    "term_plan": lambda f: "s.plan",
    "role_ratio": lambda f: _ratio(_role_col(f.params["num"], 90), _role_col(f.params["den"], 90)),
    "role_ratio_change": lambda f: _rate_change(f.params["num"], f.params["den"], f.params["window"]),
    "profile": lambda f: f"acc.{f.params['column']}",
    "event_count": lambda f: f"COALESCE({_evt_col(f.params['event_type'], 'c' + str(f.params['window']))}, 0)",
    "event_change": lambda f: _pct(
        f"COALESCE({_evt_col(f.params['event_type'], 'c30')}, 0)",
        f"COALESCE({_evt_col(f.params['event_type'], 'c60')}, 0) - "
        f"COALESCE({_evt_col(f.params['event_type'], 'c30')}, 0)"),
    "event_users": lambda f: f"COALESCE({_evt_col(f.params['event_type'], 'users')}, 0)",
}


def _evt_col(event_type: str, what: str) -> str:
    """Internal column name of an event type's stage value (stable across processes)."""
    return f"e_{slug(event_type)}_{zlib.crc32(event_type.encode()):08x}_{what}"


def _pivot_query(settings: Settings, types: list[str]) -> str:
    """Per (account, t): role aggregates and per-event-type columns from ``ev_win``."""
    roles = settings.event_roles
    role_types = {"login": roles.login, "core_feature": roles.core_feature,
                  "new_feature": list(roles.new_feature), "training": roles.training,
                  "marketing_sent": roles.marketing_sent, "marketing_open": roles.marketing_open,
                  "contact_left": roles.contact_left}
    cols: list[str] = []
    for role, members in role_types.items():
        cond = is_in("event_type", members)
        for w in WINDOWS:
            cols.append(f"SUM(CASE WHEN {cond} THEN c{w} ELSE 0 END) AS r_{role}_c{w}")
        cols.append(f"MAX(CASE WHEN {cond} THEN last_d END) AS r_{role}_last")
        cols.append(f"COUNT(DISTINCT CASE WHEN {cond} AND c30 > 0 THEN event_type END) AS r_{role}_breadth30")
        cols.append(f"COUNT(DISTINCT CASE WHEN {cond} AND c60 - c30 > 0 THEN event_type END) "
                    f"AS r_{role}_breadth_prev30")
    for et in types:
        for what in ("c7", "c30", "c60", "c90"):
            cols.append(f"SUM(CASE WHEN event_type = {lit(et)} THEN {what} END) AS {_evt_col(et, what)}")
    return (f"SELECT account_id AS p_account_id, tn AS p_tn, {', '.join(cols)} "
            "FROM ev_win GROUP BY account_id, tn")


def _users_pivot_query(types: list[str]) -> str:
    cols = [f"SUM(CASE WHEN event_type = {lit(et)} THEN users END) AS {_evt_col(et, 'users')}" for et in types]
    return (f"SELECT account_id AS up_account_id, tn AS up_tn, {', '.join(cols) or 'NULL AS none'} "
            "FROM users_by_type GROUP BY account_id, tn")


def _size_band_sql() -> str:
    whens = " ".join(
        f"WHEN employees >= {lo}" + (f" AND employees <= {hi}" if hi else "") + f" THEN {lit(label)}"
        for lo, hi, label in SIZE_BANDS)
    return f"CASE {whens} END"


def _role_nulls(settings: Settings) -> set[str]:
    """Roles with no event types configured: their features are null, not zero."""
    r = settings.event_roles
    members = {"login": r.login, "core_feature": r.core_feature, "new_feature": list(r.new_feature),
               "training": r.training, "marketing_sent": r.marketing_sent,
               "marketing_open": r.marketing_open, "contact_left": r.contact_left}
    return {k for k, v in members.items() if not v}


_CAST = {"int": "BIGINT", "float": "DOUBLE", "category": "VARCHAR"}


def final_query(catalogue: Catalogue, settings: Settings) -> str:
    """The projection: keys, label, then every feature in catalogue order."""
    unset = _role_nulls(settings)
    sql: dict[str, str] = {}
    for f in catalogue.features:  # first pass: everything but ratios of other features
        if f.template == "ratio":
            continue
        used_roles = {v for k, v in f.params.items() if k in ("role", "num", "den")} & unset
        if f.template == "distinct_users_share" and "core_feature" in unset:
            used_roles = {"core_feature"}
        sql[f.name] = "NULL" if used_roles else TEMPLATES[f.template](f)
    for f in catalogue.features:  # second pass: "ratio" = one feature over another
        if f.template == "ratio":
            sql[f.name] = _ratio(sql[f.params["num"]], sql[f.params["den"]])
    exprs = [f"CAST({sql[f.name]} AS {_CAST[f.type]}) AS {f.name}" for f in catalogue.features]
    return f"""
        WITH p AS ({_pivot_query(settings, list(catalogue.event_types))}),
             up AS ({_users_pivot_query(list(catalogue.event_types))}),
             base AS (
                SELECT s.account_id, s.as_of, s.tn, s.mrr, s.seats, s.plan, s.days_to_term_end,
                       s.mrr_90d_ago, s.tenure_days, s.churn_label,
                       p.*, up.*
                FROM spine s
                LEFT JOIN p ON p.p_account_id = s.account_id AND p.p_tn = s.tn
                LEFT JOIN up ON up.up_account_id = s.account_id AND up.up_tn = s.tn
             )
        SELECT s.account_id, s.as_of, s.churn_label, s.churn_label IS NOT NULL AS labelled,
               {', '.join(exprs)}
        FROM base s
        LEFT JOIN act_win a
          ON a.account_id = s.account_id AND a.tn = s.tn
        LEFT JOIN users_all ua ON ua.account_id = s.account_id AND ua.tn = s.tn
        LEFT JOIN tk ON tk.account_id = s.account_id AND tk.tn = s.tn
        LEFT JOIN inv ON inv.account_id = s.account_id AND inv.tn = s.tn
        LEFT JOIN nf ON nf.account_id = s.account_id AND nf.tn = s.tn
        LEFT JOIN (SELECT account_id, industry, region, channel, csm, segment,
                          {_size_band_sql()} AS size_band FROM clean_accounts) acc
          ON acc.account_id = s.account_id
        ORDER BY s.as_of, s.account_id
    """


def build_feature_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[Catalogue, list[str]]:
    """Run the stages and leave the result in temp table ``snapshot_rows``.

    Needs ``spine`` and the ``clean_*`` tables. Returns the catalogue (with this data's
    event types) and every SQL statement run, for the Spark transpilation check.
    """
    catalogue = build_catalogue(event_types(con))
    statements: list[str] = []
    for table, sql in stage_queries(settings):
        statements.append(sql)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}")
        log.debug("stage %s done", table)
    sql = final_query(catalogue, settings)
    statements.append(sql)
    con.execute(f"CREATE OR REPLACE TEMP TABLE snapshot_rows AS {sql}")
    return catalogue, statements
