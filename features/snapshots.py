"""Point-in-time snapshots: one row per active account per as-of date, every feature.

The computation is a handful of SQL queries run by DuckDB (no Python loop over rows).
We write them as plain SQL in DuckDB's dialect restricted to what sqlglot transpiles to
Spark SQL (integer day numbers, ``RANGE`` frames over integers, no ``QUALIFY``): that is
our route to Spark (DESIGN §7), checked by a test that transpiles every query. We chose
sqlglot over Ibis because the window-frame trick below (sums over ``[t - N, t)`` from
one sorted pass) is natural in SQL and awkward in Ibis, and because it adds no runtime
layer: the SQL DuckDB runs is the SQL Spark would run.

Stages (temp tables in one connection; on DuckDB a stage read once is a view, ``features/stage_tables.py``):

1. event windows (``features/windows.py``): counts per event type over ``[t-N, t)``,
   active days, distinct users over ``[t-30, t)`` and the last login, as ``ev_wide``
   keyed by (account, as-of) — a grid path for regular schedules, a general one for any.
2. tickets, invoices and new-feature first use per as-of date (``tk``, ``inv``, ``nf``).
3. the final projection: one expression per feature, made by the template named in
   the feature spec (``features/spec.py``); counts whose window the data start cuts are scaled
   to the whole window there (``_Ctx.cover``).

Over 400 lines: the stage queries, the templates and the projection that joins them are one SQL
program (what DuckDB runs is what Spark runs); apart, a template would lose sight of the stage
columns it reads.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import duckdb

from core.progress import Reporter, StepCallback, track
from core.settings import Settings
from features.profile import ProfilePlan, profile_expression, profile_joins, profile_specs, profile_stages
from features.spec import (
    HIGH_PRIORITY,
    MIN_COVERED_DAYS,
    PASSIVE_ROLES,
    SIZE_BANDS,
    TICKET_SILENCE_HISTORY,
    Catalogue,
    FeatureSpec,
    build_catalogue,
    passive_types,
    scaled,
)
from features.sql import is_in, lit, not_in
from features.stage_tables import read_once, spent_after
from features.timeline import day_number, dn, owed
from features.validate import key_clean_events
from features.windows import (
    Grid,
    counts_packable,
    general_event_stages,
    grid_event_stages,
    mask_event_stages,
    mask_fits,
    regular_grid,
    users_packable,
)

log = logging.getLogger(__name__)

WINDOWS = (7, 14, 30, 60, 90, 180)


def event_types(con: duckdb.DuckDBPyConnection, table: str = "clean_events") -> list[str]:
    """The event types of the kept events, sorted. ``table``: ``typed_events`` when the
    contract checks set no event aside (the same rows without the checks' joins)."""
    return [r[0] for r in con.execute(f"SELECT DISTINCT event_type FROM {table} ORDER BY 1").fetchall()]


@dataclass(frozen=True)
class KeptEvents:
    """The kept events of ``event_keys``: how many, the total of their quantities, and whether
    every quantity is a whole number (what ``windows.users_packable`` / ``counts_packable`` need)."""

    rows: int
    total: float
    whole: bool

    @classmethod
    def of(cls, con) -> KeptEvents:
        rows, total, whole = con.execute(
            "SELECT count(*), COALESCE(SUM(n), 0), COALESCE(bool_and(n = floor(n)), TRUE) "
            "FROM event_keys WHERE r IS NULL").fetchone()
        return cls(rows=int(rows), total=float(total), whole=bool(whole))


def stage_queries(settings: Settings, types: list[str], grid: Grid | None = None,
                  key_types: list[str] | None = None, kept: KeptEvents | None = None,
                  data_start: dt.date | None = None) -> list[tuple[str, str]]:
    """(table, SELECT) for every stage, in run order: event windows, then tickets, invoices
    and new-feature first use. ``grid`` picks the fast path for a regular schedule;
    ``key_types``: the event types of ``event_keys`` in ``fid`` order (default ``types``);
    ``kept``: the sizes of its kept events (the mask path packs its running sums two per column
    when they stay below 2^31; default: nothing packed)."""
    roles = settings.event_roles
    releases = list(roles.new_feature.items())
    rel_values = ", ".join(f"({lit(k)}, {day_number(v)})" for k, v in releases) or "(NULL, NULL)"
    if grid is None:
        events = general_event_stages(settings, types, key_types=key_types)
    elif mask_fits(grid):
        events = mask_event_stages(settings, types, grid, key_types=key_types,
                                   pack_users=kept is not None and users_packable(kept.rows),
                                   pack_counts=kept is not None and counts_packable(kept.whole, kept.total))
    else:
        events = grid_event_stages(settings, types, grid, key_types=key_types)
    # each account's first day of each new feature's event type: from event_keys (the checked
    # events as integer keys) before the event stages, so it is dropped after them
    first_use = ("nf_first", f"""
        SELECT k.aid, t.event_type, MIN(k.d) AS first_d
        FROM event_keys k JOIN event_key_types t ON t.fid = k.fid
        WHERE k.r IS NULL AND {is_in('t.event_type', list(roles.new_feature))}
        GROUP BY k.aid, t.event_type""")
    # each account's last login before the first as-of date: the event stages read events from
    # ``max(WINDOWS) + 1`` days before the first as-of date on, so a login older than that is here
    # (days since the last login the same whichever dates are built together: ``score --as-of``)
    login_before = ("lg_old", f"""
        SELECT k.aid, MAX(k.d) AS lg_old
        FROM event_keys k JOIN event_key_types t ON t.fid = k.fid
        WHERE k.r IS NULL AND {is_in('t.event_type', [n for n in roles.login if n in types])}
          AND k.d < (SELECT MIN(tn) FROM spine)
        GROUP BY k.aid""")
    # each row's latest cancellation request since its current term began (spine.term_start): a request
    # stands until the term ends or a new one starts, however long before the end it was made (a window
    # of 90 days lost an annual customer's request in May to leave in October). A term bought at a time of
    # day starts at the next midnight (features.validate.first_midnight) while an event keeps its calendar
    # day: a request on the day before term_start counts, or a trial's auto-renew turned off hours after it
    # began is lost (a probe's app: 101 rows, 90% churned); the cost, a request on the eve of a renewal at
    # midnight (one that then happened) standing through the new term
    # and its latest withdrawal (cancel_withdrawn) since then: a request taken back is void from that day
    asked = [n for n in roles.cancel_request if n in types]
    taken_back = [n for n in roles.cancel_withdrawn if n in types and n not in asked]
    requests = ("rq", f"""
        SELECT s.account_id, s.tn, MAX(CASE WHEN k.asked THEN k.d END) AS last_request,
               MAX(CASE WHEN NOT k.asked THEN k.d END) AS last_withdrawal
        FROM spine s JOIN ids i ON i.account_id = s.account_id
        JOIN (SELECT k.aid, k.d, {is_in('t.event_type', asked)} AS asked
              FROM event_keys k JOIN event_key_types t ON t.fid = k.fid
              WHERE k.r IS NULL AND {is_in('t.event_type', asked + taken_back)}) k
          ON k.aid = i.aid AND k.d < s.tn AND k.d >= s.term_start - 1
        GROUP BY s.account_id, s.tn""")
    # each account's first day of product activity from the data start on (any event but the passive roles':
    # e-mails, a contact leaving, cancellation requests): before it, the account's product features are
    # unknown, not 0 (``final_query``); a stray event before the bulk of the log starts shows no tracking
    since = "" if data_start is None else f" AND k.d >= {day_number(data_start)}"
    first_activity = ("ev_first", f"""
        SELECT k.aid, MIN(k.d) AS first_d
        FROM event_keys k JOIN event_key_types t ON t.fid = k.fid
        WHERE k.r IS NULL AND {not_in('t.event_type', sorted(passive_types(roles) & set(types)))}{since}
        GROUP BY k.aid""")
    return [first_use, login_before, first_activity] + events + [requests,
        ("tk", f"""
            SELECT s.account_id, s.tn,
                   SUM(CASE WHEN k.o >= s.tn - 30 THEN 1 ELSE 0 END) AS tickets_30d,
                   SUM(CASE WHEN k.o >= s.tn - 180 THEN 1 ELSE 0 END) AS tickets_180d,
                   SUM(CASE WHEN k.o >= s.tn - 30 AND {is_in('lower(k.priority)', list(HIGH_PRIORITY))}
                            THEN 1 ELSE 0 END) AS high_priority_tickets_30d,
                   SUM(CASE WHEN k.r IS NULL OR k.r >= s.tn THEN 1 ELSE 0 END) AS open_tickets,
                   AVG(CASE WHEN k.r < s.tn AND k.r >= s.tn - 90 THEN k.hours END) AS mean_resolution_hours_90d,
                   MIN(CASE WHEN k.r < s.tn AND k.r >= s.tn - 90 THEN k.csat END) AS worst_csat_90d,
                   AVG(CASE WHEN k.r < s.tn AND k.r >= s.tn - 90 THEN k.csat END) AS mean_csat_90d,
                   s.tn - MAX(k.o) AS days_since_last_ticket,
                   SUM(CASE WHEN k.o >= s.tn - {TICKET_SILENCE_HISTORY} AND k.o < s.tn - {int(settings.silence_days)}
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
        # the current relationship's invoices (issued from its start, less the grace period): an unpaid
        # invoice of an earlier one, before the customer left and came back, is not its debt
        ("inv", f"""
            SELECT s.account_id, s.tn,
                   MAX(CASE WHEN i.due < s.tn AND (i.paid IS NULL OR i.paid >= s.tn)
                                 AND (i.off IS NULL OR i.off >= s.tn)
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
                       CASE WHEN paid_at IS NULL THEN NULL ELSE {dn('paid_at')} END AS paid,
                       CASE WHEN written_off_at IS NULL THEN NULL ELSE {dn('written_off_at')} END AS off
                FROM clean_invoices
                -- written off by its due day (a correction voided at issue): never owed, no late payment either
                WHERE {owed()}) i
              ON i.account_id = s.account_id AND i.iss < s.tn
                 AND i.iss >= s.tn - s.tenure_days - {int(settings.grace_days)}
            GROUP BY s.account_id, s.tn"""),
        ("nf", f"""
            SELECT s.account_id, s.tn,
                   SUM(CASE WHEN f.first_d < r.rel_d + 30 AND f.first_d < s.tn THEN 1 ELSE 0 END)
                       AS new_features_tried_30d
            FROM spine s JOIN ids i ON i.account_id = s.account_id
            JOIN (SELECT * FROM (VALUES {rel_values}) AS v(event_type, rel_d) WHERE rel_d IS NOT NULL) r
              ON r.rel_d < s.tn AND r.rel_d >= s.tn - 180
            LEFT JOIN nf_first f ON f.aid = i.aid AND f.event_type = r.event_type
            GROUP BY s.account_id, s.tn"""),
    ]


# --- feature templates: spec -> SQL expression over the joined stage columns ---------

def _pct(cur: str, prev: str) -> str:
    """Relative change; 0 when both are 0, null when only the previous is 0."""
    return (f"CASE WHEN ({prev}) = 0 THEN CASE WHEN ({cur}) = 0 THEN 0.0 END "
            f"ELSE (({cur}) - ({prev})) / CAST(({prev}) AS DOUBLE) END")


def _ratio(num: str, den: str) -> str:
    return f"CAST(({num}) AS DOUBLE) / NULLIF(({den}), 0)"


@dataclass(frozen=True)
class _Ctx:
    """Where a template finds its inputs: event-type columns and role membership."""

    index: dict[str, int]
    roles: dict[str, list[str]]
    #: the data start's day number (``features.validate.ValidationReport.data_start``): counts whose
    #: window it cuts are scaled to the whole window (``cover``); None: counted as they are
    ds: int | None = None
    #: with ``ds``: relationships beginning on or before this day number began at an unknown earlier
    #: day (the subscriptions are cut at the export's start: ``features.timeline.subscriptions_cut``)
    cut: int | None = None

    def cover(self, lo: int, hi: int = 0) -> str | None:
        """SQL: the factor that scales a count over ``[t - lo, t - hi)`` to the whole window when the
        data starts inside it (``features.spec.SCALED_NOTE``), or None when nothing is scaled.

        The days the account existed in the window (from its relationship's start, ``tenure_days``)
        over the days of them the data covers: 1 when the data covers them all (an account that began
        after the data start, or a window after it); null when it covers under
        ``MIN_COVERED_DAYS``. The account existed from its relationship's start or its signature
        (``accounts.signed_at``), the earlier; with ``cut``, an account without a signature date whose
        relationship begins by then began before the data start, however late its first term in the file."""
        if self.ds is None:
            return None
        # the account's age: from its relationship's start, or from its signature if earlier
        # (accounts.signed_at), or unknown (older than the window) when the subscriptions are cut
        age = (f"CASE WHEN acc.signed_n IS NOT NULL AND s.tn - acc.signed_n > s.tenure_days THEN s.tn - acc.signed_n "
               f"ELSE COALESCE(s.tenure_days, {lo}) END")
        if self.cut is not None:
            age = (f"CASE WHEN acc.signed_n IS NULL AND s.tn - s.tenure_days <= {self.cut} THEN {lo} "
                   f"ELSE {age} END")
        start = f"(s.tn - LEAST({lo}, {age}))"  # the window or the account, later
        return (f"(CASE WHEN {self.ds} <= {start} OR s.tn - {hi} <= {start} THEN 1.0 "
                f"WHEN s.tn - {hi} - {self.ds} < {MIN_COVERED_DAYS} THEN NULL "
                f"ELSE CAST(s.tn - {hi} - {start} AS DOUBLE) / (s.tn - {hi} - {self.ds}) END)")

    def tenure(self) -> str:
        """SQL: the days since the relationship began (``tenure_days``). With ``cut``, a relationship beginning
        by the data start began at an unknown earlier day: from its signature (``accounts.signed_at``) where
        that is earlier, else from its first term in the file. A probe's 12-month app-store export, cut at its
        start with each user's first-seen date mapped to signed_at: tenure counted from the file's first term
        for half the users, grew alike for all of them, and the model read it as a cohort: its level drifted
        down 30% (mean predicted 3.8% against a true 5.3%); counted from signed_at, 5.0%. Without a cut the
        relationship's start stands (a free signup long before a first paid term is no paid tenure)."""
        if self.cut is None:
            return "s.tenure_days"
        return (f"CASE WHEN s.tn - s.tenure_days <= {self.cut} AND acc.signed_n IS NOT NULL "
                f"AND s.tn - acc.signed_n > s.tenure_days THEN s.tn - acc.signed_n ELSE s.tenure_days END")

    def scale(self, count: str, lo: int, hi: int = 0) -> str:
        """``count`` (SQL, over ``[t - lo, t - hi)``) scaled by ``cover``."""
        factor = self.cover(lo, hi)
        return f"(({count}) * {factor})" if factor else count

    def type_col(self, event_type: str, what: str) -> str:
        return f"ew.n{self.index[event_type]}_{what}" if what.startswith("c") else \
            f"ew.u{self.index[event_type]}_{what}"

    def members(self, role: str) -> list[int]:
        return [self.index[t] for t in self.roles[role] if t in self.index]

    def role(self, role: str, window: int) -> str:
        """Sum of the role's event types over [t - window, t) (0 when none occur)."""
        cols = [f"ew.n{i}_c{window}" for i in self.members(role)]
        return "(" + " + ".join(cols) + ")" if cols else "0"

    def role_prev(self, role: str, window: int) -> str:
        return f"({self.role(role, 2 * window)} - {self.role(role, window)})"

    def breadth(self, role: str, window: int, previous: bool = False) -> str:
        """How many of the role's event types occurred in the window (or the one before)."""
        span = (lambda i: f"ew.n{i}_c{2 * window} - ew.n{i}_c{window}") if previous else \
            (lambda i: f"ew.n{i}_c{window}")
        terms = [f"CASE WHEN {span(i)} > 0 THEN 1 ELSE 0 END" for i in self.members(role)]
        return "(" + " + ".join(terms) + ")" if terms else "0"


def _rate_change(ctx: _Ctx, num: str, den: str, w: int) -> str:
    """Rate over [t-w, t) minus the rate over [t-2w, t-w)."""
    return (f"({_ratio(ctx.role(num, w), ctx.role(den, w))}) - "
            f"({_ratio(ctx.role_prev(num, w), ctx.role_prev(den, w))})")


def _scaled_pct(ctx: _Ctx, cur: str, prev: str, w: int) -> str:
    """``_pct`` of a count over ``[t - w, t)`` against ``[t - 2w, t - w)``, each scaled to its whole
    window (``_Ctx.scale``): a previous window the data barely covers is unknown, not empty."""
    return _pct(ctx.scale(cur, w), ctx.scale(prev, 2 * w, w))


Template = Callable[[FeatureSpec, _Ctx], str]
TEMPLATES: dict[str, Template] = {
    "active_days": lambda f, c: c.scale(f"ew.act_c{f.params['window']}", f.params["window"]),
    "active_days_change": lambda f, c: _scaled_pct(c, f"ew.act_c{f.params['window']}",
                                                   f"ew.act_c{2 * f.params['window']} - ew.act_c{f.params['window']}",
                                                   f.params["window"]),
    "role_count": lambda f, c: c.scale(c.role(f.params["role"], f.params["window"]), f.params["window"]),
    "role_change": lambda f, c: _scaled_pct(c, c.role(f.params["role"], f.params["window"]),
                                            c.role_prev(f.params["role"], f.params["window"]), f.params["window"]),
    "days_since_role": lambda f, c: "s.tn - COALESCE(ew.lg_last, lgo.lg_old)",
    "distinct_users": lambda f, c: "ew.ua_now",
    "distinct_users_share": lambda f, c: _ratio("ew.uc_now", "ew.ua_now"),
    "role_breadth": lambda f, c: c.breadth(f.params["role"], f.params["window"]),
    "role_breadth_change": lambda f, c: (f"{c.breadth(f.params['role'], f.params['window'])} - "
                                         f"{c.breadth(f.params['role'], f.params['window'], previous=True)}"),
    "ticket_count": lambda f, c: f"COALESCE(tk.{f.name}, 0)",
    "ticket_spike": lambda f, c: _ratio("tk.tickets_30d", "tk.tickets_180d / 6.0"),
    "open_tickets": lambda f, c: "COALESCE(tk.open_tickets, 0)",
    "ticket_resolution": lambda f, c: "tk.mean_resolution_hours_90d",
    "ticket_csat": lambda f, c: f"tk.{f.name}",
    "ticket_days_since": lambda f, c: "tk.days_since_last_ticket",
    "ticket_silence": lambda f, c: ("CASE WHEN COALESCE(tk.tickets_before_silence, 0) >= 3 AND "
                                    "COALESCE(tk.tickets_silence, 0) = 0 THEN 1 ELSE 0 END"),
    "new_features_tried": lambda f, c: "COALESCE(nf.new_features_tried_30d, 0)",
    "term_end": lambda f, c: "s.days_to_term_end",
    # a withdrawal on the request's own day voids it too (the days are compared, not the moments)
    "cancel_request": lambda f, c: ("CASE WHEN rq.last_request IS NOT NULL AND (rq.last_withdrawal IS NULL "
                                    "OR rq.last_withdrawal < rq.last_request) THEN 1 ELSE 0 END"),
    "invoice_overdue": lambda f, c: "COALESCE(inv.days_overdue, 0)",
    "invoice_late": lambda f, c: "COALESCE(inv.late_payments_90d, 0)",
    "invoice_delay": lambda f, c: "inv.payment_delay_90d",
    "invoice_delay_change": lambda f, c: "inv.payment_delay_90d - inv.payment_delay_prev_90d",
    "term_value": lambda f, c: f"s.{f.params['column']}",
    "term_value_change": lambda f, c: _ratio("s.mrr - s.mrr_90d_ago", "s.mrr_90d_ago"),
    "tenure": lambda f, c: c.tenure(),
    "term_plan": lambda f, c: "s.plan",
    "role_ratio": lambda f, c: _ratio(c.role(f.params["num"], f.params["window"]),
                                      c.role(f.params["den"], f.params["window"])),
    "role_ratio_change": lambda f, c: _rate_change(c, f.params["num"], f.params["den"], f.params["window"]),
    "profile": lambda f, c: f"acc.{f.params['column']}",
    "extra_profile": lambda f, c: profile_expression(f),
    "event_count": lambda f, c: c.scale(c.type_col(f.params["event_type"], f"c{f.params['window']}"),
                                        f.params["window"]),
    "event_change": lambda f, c: _scaled_pct(c, c.type_col(f.params["event_type"], "c30"),
                                             f"{c.type_col(f.params['event_type'], 'c60')} - "
                                             f"{c.type_col(f.params['event_type'], 'c30')}", 30),
    "event_users": lambda f, c: c.type_col(f.params["event_type"], "now"),
}


def _size_band_sql() -> str:
    whens = " ".join(
        f"WHEN employees >= {lo}" + (f" AND employees <= {hi}" if hi else "") + f" THEN {lit(label)}"
        for lo, hi, label in SIZE_BANDS)
    return f"CASE {whens} END"


def _roles(settings: Settings) -> dict[str, list[str]]:
    r = settings.event_roles
    return {"login": r.login, "core_feature": r.core_feature, "new_feature": list(r.new_feature),
            "training": r.training, "marketing_sent": r.marketing_sent,
            "marketing_open": r.marketing_open, "contact_left": r.contact_left,
            "cancel_request": r.cancel_request}


_CAST = {"int": "BIGINT", "float": "DOUBLE", "category": "VARCHAR"}

#: The input each template reads beyond subscriptions and events: a table, or
#: ``table.column`` for an optional column. Without it the feature is unknown (null), not 0.
TEMPLATE_INPUTS: dict[str, tuple[str, ...]] = {
    **{t: ("tickets",) for t in ("ticket_count", "ticket_spike", "open_tickets", "ticket_resolution",
                                 "ticket_days_since", "ticket_silence")},
    "ticket_csat": ("tickets", "tickets.csat"),
    **{t: ("invoices",) for t in ("invoice_overdue", "invoice_late", "invoice_delay", "invoice_delay_change")},
    **{t: ("events.user_id",) for t in ("distinct_users", "distinct_users_share", "event_users")},
}
#: Templates read from something other than the events (every other one counts events; a ratio's
#: inputs say for it): without an events table the rest are null.
NOT_FROM_EVENTS = frozenset({"ticket_count", "ticket_spike", "open_tickets", "ticket_resolution", "ticket_csat",
                             "ticket_days_since", "ticket_silence", "term_end", "invoice_overdue",
                             "invoice_late", "invoice_delay", "invoice_delay_change", "term_value",
                             "term_value_change", "tenure", "term_plan", "profile", "extra_profile", "ratio"})


#: Templates read from events that are no product activity (a cancellation request stands whether or not
#: the product export covers the account; the passive roles' features: ``features.spec.PASSIVE_ROLES``)
BILLING_EVENTS = frozenset({"cancel_request"})


def _inputs(f: FeatureSpec) -> set[str]:
    """Tables/columns (``tickets``, ``events.user_id``) and roles (``role:login``) a feature needs."""
    need = set(TEMPLATE_INPUTS.get(f.template, ()))
    if f.template not in NOT_FROM_EVENTS:
        need.add("events")
    if f.params.get("priority"):
        need.add("tickets.priority")
    need |= {f"role:{v}" for k, v in f.params.items() if k in ("role", "num", "den")}
    if f.template == "distinct_users_share":
        need.add("role:core_feature")
    if f.template == "new_features_tried":
        need.add("role:new_feature")
    return need


def final_query(catalogue: Catalogue, settings: Settings, absent: frozenset[str] = frozenset(),
                data_start: dt.date | None = None, cut: bool = False) -> str:
    """The projection: keys, label, then every feature in catalogue order.

    A feature built on a role with no event types configured, or on a table or optional
    column the source does not have (``absent``: ``tickets``, ``events.user_id``), is null
    (unknown), never 0; with the table present, no rows for an account still count as 0 once it has had
    a product event (any but the passive roles': e-mails, a contact leaving, cancellation requests); before its
    first one, its product features are unknown too (never active yet, or not covered by the product export).
    With ``data_start`` the counts of ``features.spec.scaled`` features whose window it cuts are
    scaled to the whole window (an int count rounded); a ratio of two features divides their
    counts as they are (both windows alike). ``cut``: the subscriptions are cut at the data start
    (``features.timeline.subscriptions_cut``): relationships that begin by then began before it.
    """
    roles = _roles(settings)
    missing = set(absent) | {f"role:{k}" for k, v in roles.items() if not v}
    index = {t: i for i, t in enumerate(catalogue.event_types)}
    ds = None if data_start is None else day_number(data_start)
    ctx = _Ctx(index=index, roles=roles, ds=ds, cut=ds if cut else None)
    sql: dict[str, str] = {}
    for f in catalogue.features:  # first pass: everything but ratios of other features
        if f.template == "ratio":
            continue
        sql[f.name] = "NULL" if _inputs(f) & missing else TEMPLATES[f.template](f, ctx)
    by_name = {f.name: f for f in catalogue.features}
    plain = _Ctx(index=index, roles=roles)  # a ratio's inputs as counted: both over the same window

    def counted(name: str) -> str:
        spec = by_name[name]
        return "NULL" if _inputs(spec) & missing else TEMPLATES[spec.template](spec, plain)

    for f in catalogue.features:  # second pass: "ratio" = one feature over another
        if f.template == "ratio":
            sql[f.name] = _ratio(counted(f.params["num"]), counted(f.params["den"]))

    passive = passive_types(settings.event_roles)

    def activity(name: str) -> bool:  # read from the product events (a ratio: from its inputs')
        spec = by_name[name]
        if spec.template == "ratio":
            return activity(spec.params["num"]) or activity(spec.params["den"])
        roles = {v for k, v in spec.params.items() if k in ("role", "num", "den")}
        if spec.template in BILLING_EVENTS or (roles and roles <= set(PASSIVE_ROLES)) or \
                spec.params.get("event_type") in passive:
            return False  # an e-mail's open rate, a contact leaving, a request: known without product events
        return "events" in _inputs(spec)

    for f in catalogue.features:  # before an account's first product event: unknown, not 0 (never active,
        # or not covered by the product export: a probe's Stripe customers without analytics read "Only 0%
        # of seats in use")
        if activity(f.name) and sql[f.name] != "NULL":
            sql[f.name] = f"CASE WHEN evf.first_d < s.tn THEN {sql[f.name]} END"

    def cast(f: FeatureSpec) -> str:  # CAST(double AS BIGINT) rounds in DuckDB, truncates in Spark
        value = f"ROUND({sql[f.name]})" if f.type == "int" and ctx.ds is not None and scaled(f) else sql[f.name]
        return f"CAST({value} AS {_CAST[f.type]}) AS {f.name}"

    exprs = [cast(f) for f in catalogue.features]
    return f"""
        SELECT s.account_id, s.as_of, s.churn_label, s.churn_label IS NOT NULL AND s.due = 0 AS labelled,
               {', '.join(exprs)}
        FROM spine s
        LEFT JOIN ids ON ids.account_id = s.account_id
        LEFT JOIN ev_wide ew ON ew.aid = ids.aid AND ew.tn = s.tn
        LEFT JOIN lg_old lgo ON lgo.aid = ids.aid
        LEFT JOIN ev_first evf ON evf.aid = ids.aid
        LEFT JOIN tk ON tk.account_id = s.account_id AND tk.tn = s.tn
        LEFT JOIN inv ON inv.account_id = s.account_id AND inv.tn = s.tn
        LEFT JOIN nf ON nf.account_id = s.account_id AND nf.tn = s.tn
        LEFT JOIN rq ON rq.account_id = s.account_id AND rq.tn = s.tn
        LEFT JOIN (SELECT account_id, industry, region, channel, csm, segment,
                          {_size_band_sql()} AS size_band, {dn('signed_at')} AS signed_n FROM clean_accounts) acc
          ON acc.account_id = s.account_id
        {profile_joins({f.params["table"] for f in catalogue.features if f.template == "extra_profile"})}
        ORDER BY s.as_of, s.account_id
    """


def build_feature_tables(con: duckdb.DuckDBPyConnection, settings: Settings, general: bool = False,
                         profile: ProfilePlan | None = None, absent: frozenset[str] = frozenset(),
                         progress: Reporter | StepCallback | None = None,
                         types: list[str] | None = None,
                         spellings: dict[str, dict[str, int]] | None = None,
                         final_view: bool = False, data_start: dt.date | None = None,
                         cut: bool = False) -> tuple[Catalogue, list[str]]:
    """Run the stages and leave the result in temp table ``snapshot_rows``.

    Needs ``spine`` and the ``clean_*`` tables (and ``raw_accounts`` / ``dated_subscriptions``
    for the ``profile`` plan's own columns, which follow the catalogue's features). A
    regular schedule takes the grid path (``features/windows.py``) unless ``general`` is
    set. ``absent`` names the tables and optional columns the source lacks (their features
    are null). Returns the catalogue (with this data's event types and own columns) and
    every SQL statement run, for the Spark transpilation check. ``types``: the event types
    (``event_types(con)``) when the caller has them already; ``spellings``: the types the data spells
    in several ways (``ValidationReport.event_spellings``), said in the catalogue. On DuckDB a stage
    that one later statement reads once is a view, inlined there (``read_once``). ``final_view`` (DuckDB):
    ``snapshot_rows`` is a view of the final projection, for a caller that reads it once (the
    pipeline writes it straight into the store: no copy of the rows in memory first). ``data_start``: the
    export's data start, from which counts whose window it cuts are scaled (``final_query``); ``cut``: the
    subscriptions are cut at it.
    """
    base = build_catalogue(event_types(con) if types is None else types, spellings, settings.event_units,
                           standing=[*settings.event_roles.cancel_request, *settings.event_roles.cancel_withdrawn])
    plan = profile or ProfilePlan()
    paused = sorted({p.strip().lower() for p in settings.paused_plans})  # the reasons word a pause (PAUSED_REASON)
    core = tuple(replace(f, params={**f.params, "paused_plans": paused}) if f.name == "plan" and paused else f
                 for f in base.features)
    catalogue = Catalogue(features=core + tuple(profile_specs(plan, settings)),
                          event_types=base.event_types, spellings=base.spellings)
    days = [r[0] for r in con.execute("SELECT DISTINCT tn FROM spine").fetchall()]
    grid = None if general else regular_grid(days)
    statements: list[str] = []
    # the events as integer keys: the contract checks' table (one pass over the source for the report
    # and the features, features.validate.create_event_keys), else made from clean_events (Spark)
    duck = isinstance(con, duckdb.DuckDBPyConnection)
    keyed = duck and con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND "
                                 "table_name = 'event_keys'").fetchone()[0] > 0
    if not keyed:
        key_clean_events(con)
    key_types = [r[0] for r in con.execute("SELECT event_type FROM event_key_types ORDER BY fid").fetchall()]
    kept = KeptEvents.of(con) if grid is not None and mask_fits(grid) else None
    stages = stage_queries(settings, list(catalogue.event_types), grid, key_types, kept, data_start) + \
        profile_stages(plan, settings)
    sql = final_query(catalogue, settings, absent, data_start, cut)
    # on Spark every stage is a table (written as Parquet, features.spark.SparkConnection.register)
    views = read_once(stages, sql, ("event_keys",)) if duck else set()
    spent = spent_after(stages, sql, ("event_keys",), views) if duck else {}
    for i, (table, stage_sql) in enumerate(track(progress, stages, f"feature stages ({len(days)} as-of dates)")):
        statements.append(stage_sql)
        con.execute(f"CREATE OR REPLACE TEMP {'VIEW' if table in views else 'TABLE'} {table} AS {stage_sql}")
        for done in spent.get(i, []):  # memory back (the keyed events: 3 GB at 4x the benchmark)
            con.execute(f"DROP {'VIEW' if done in views else 'TABLE'} IF EXISTS {done}")
        log.debug("stage %s done", table)
    statements.append(sql)
    con.execute(f"CREATE OR REPLACE TEMP {'VIEW' if final_view and duck else 'TABLE'} snapshot_rows AS {sql}")
    return catalogue, statements
