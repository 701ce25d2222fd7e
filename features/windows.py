"""Event windows: counts over ``[t - N, t)`` and distinct users over ``[t - 30, t)``.

Both paths below produce the same table ``ev_wide`` keyed by ``(aid, tn)`` (integer
account id, as-of day number) with, for event type ``i``: ``n{i}_c{N}`` (events in the
last N days), ``u{i}_now`` (distinct users in the last 30 days); ``act_c{N}`` (active
days), ``ua_now`` / ``uc_now`` (distinct active / core-feature users) and ``lg_last`` (last
login day before t).

* **general** (any list of as-of dates): running sums over the daily series, read off
  marker rows placed at ``t - 1 - N``.
* **grid** (as-of dates ``t0 + step * k``, the default schedule): sums per step-long
  bucket, running sums over buckets, and the last ``N mod step`` days of one bucket for
  the remainder of each window. Far fewer rows go through window functions; the two
  paths agree exactly (tested).

Distinct users: a user seen on day d counts at every t in (d, min(next day seen, d + 30)];
as +1/-1 deltas, so a running sum gives the count.

Over 400 lines: the three paths (general, grid, mask) build the same ``ev_wide`` and are
tested against each other; they share their helpers and stay side by side in one module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.settings import Settings
from features.spec import passive_types
from features.timeline import dn
from features.validate import account_key

WINDOWS = (7, 14, 30, 60, 90, 180)
USER_WINDOW = 30


@dataclass(frozen=True)
class Grid:
    """A regular schedule: as-of day numbers ``t0 + step * k``."""

    t0: int
    step: int
    k_max: int


def regular_grid(day_numbers: list[int]) -> Grid | None:
    """The grid the sorted as-of day numbers lie on, or None (fewer than 3 or irregular)."""
    ds = sorted(set(day_numbers))
    if len(ds) < 3:
        return None
    step = ds[1] - ds[0]
    if any(b - a != step for a, b in zip(ds, ds[1:])):
        return None
    return Grid(t0=ds[0], step=step, k_max=len(ds) - 1)


def _roles(settings: Settings, types: list[str]):
    roles = settings.event_roles
    passive = passive_types(roles)
    tid = {t: i for i, t in enumerate(types)}

    def tid_in(names) -> str:
        found = [str(tid[n]) for n in names if n in tid]
        return f"tid IN ({', '.join(found)})" if found else "FALSE"

    active = [t for t in types if t not in passive]
    return roles, tid_in, active


def _typed_events(types: list[str], extra: str = "", grid: Grid | None = None,
                  key_types: list[str] | None = None) -> str:
    """Events as integer keys (aid, tid, uid, d), restricted to what a window can see, from
    ``event_keys`` (``features.validate.create_event_keys``, or ``key_clean_events`` from
    ``clean_events``): its kept rows, its type ids ``fid`` (positions in ``key_types``,
    default ``types``) as positions in ``types``.

    With ``grid`` the bounds are literals (the grid's first and last as-of days), not subqueries
    over the spine: a filter on the scan instead of two nested-loop joins over every event."""
    if key_types is None or list(key_types) == list(types):
        tid, join = "k.fid AS tid", ""
    else:
        pairs = ", ".join(f"({f}, {types.index(t)})" for f, t in enumerate(key_types) if t in types) or "(-1, -1)"
        tid, join = "y.tid", f"JOIN (SELECT * FROM (VALUES {pairs}) AS v(fid, tid)) y ON y.fid = k.fid"
    if grid is None:
        lo = f"(SELECT {dn('MIN(as_of)')} - {max(WINDOWS) + 1} FROM spine)"
        hi = f"(SELECT {dn('MAX(as_of)')} FROM spine)"
    else:
        lo, hi = grid.t0 - max(WINDOWS) - 1, grid.t0 + grid.step * grid.k_max
    return f"""
        SELECT k.aid, {tid}, k.uid, k.d{extra}
        FROM event_keys k {join}
        WHERE k.r IS NULL AND k.d >= {lo} AND k.d < {hi}"""


# integer account keys: the same hash as event_keys' aid (features.validate.account_key)
IDS = ("ids", f"SELECT account_id, {account_key('account_id')} AS aid FROM (SELECT DISTINCT account_id FROM spine) a")


def _nulls(cols: list[str]) -> list[str]:
    return [f"CAST(NULL AS DOUBLE) AS {c}" for c in cols]


def _value_columns(types: list[str]) -> tuple[list[str], list[str]]:
    n_cols = [f"n{i}" for i in range(len(types))]
    u_cols = [f"u{i}" for i in range(len(types))] + ["ua", "uc"]
    return n_cols, u_cols


def _users_scoped(settings: Settings, types: list[str], source: str, key: str, flag: str = "") -> str:
    """Rows (aid, tid, uid, key[, flag]) for per-type users (tid >= 0), any product event
    (tid -1) and core features (tid -2)."""
    roles, tid_in, active = _roles(settings, types)
    f_sel = f", {flag}" if flag else ""
    f_agg = f", MAX({flag}) AS {flag}" if flag else ""
    return f"""
        SELECT aid, tid, uid, {key}{f_sel} FROM {source}
        UNION ALL
        SELECT aid, -1 AS tid, uid, {key}{f_agg} FROM {source} WHERE {tid_in(active)} GROUP BY aid, uid, {key}
        UNION ALL
        SELECT aid, -2 AS tid, uid, {key}{f_agg} FROM {source} WHERE {tid_in(roles.core_feature)}
        GROUP BY aid, uid, {key}"""


# ---- general path: any as-of dates ----------------------------------------------

def _cum(col: str, agg: str = "SUM") -> str:
    return (f"{agg}({col}) OVER (PARTITION BY aid ORDER BY d, kind "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {col}")


def general_event_stages(settings: Settings, types: list[str],
                         key_types: list[str] | None = None) -> list[tuple[str, str]]:
    roles, tid_in, active = _roles(settings, types)
    n_cols, u_cols = _value_columns(types)
    value_cols = n_cols + ["act"] + u_cols
    head = "SELECT aid, {d} AS d, 0 AS kind, CAST(NULL AS INTEGER) AS tn, CAST(NULL AS INTEGER) AS o, "
    day_rows = (
        head.format(d="d")
        + ", ".join([f"SUM(CASE WHEN tid = {i} THEN n END) AS n{i}" for i in range(len(types))]
                    + [f"CAST(MAX(CASE WHEN {tid_in(active)} THEN 1 ELSE 0 END) AS DOUBLE) AS act",
                       *_nulls(u_cols), f"MAX(CASE WHEN {tid_in(roles.login)} THEN d END) AS lg"])
        + " FROM ud GROUP BY aid, d")
    delta_rows = (
        head.format(d="day")
        + ", ".join([*_nulls(n_cols), "CAST(NULL AS DOUBLE) AS act"]
                    + [f"SUM(CASE WHEN tid = {i} THEN delta END) AS u{i}" for i in range(len(types))]
                    + ["SUM(CASE WHEN tid = -1 THEN delta END) AS ua",
                       "SUM(CASE WHEN tid = -2 THEN delta END) AS uc", "CAST(NULL AS INTEGER) AS lg"])
        + " FROM udelta GROUP BY aid, day")
    marker_rows = (
        "SELECT i.aid, s.tn - 1 - w.o AS d, 1 AS kind, s.tn, w.o, "
        + ", ".join([*_nulls(value_cols), "CAST(NULL AS INTEGER) AS lg"])
        + " FROM spine s JOIN ids i ON i.account_id = s.account_id CROSS JOIN "
        f"(SELECT * FROM (VALUES {', '.join(f'({o})' for o in (0, *WINDOWS))}) AS v(o)) w")
    pivot = ["aid", "tn"]
    for c in n_cols + ["act"]:
        now = f"COALESCE(MAX(CASE WHEN o = 0 THEN {c} END), 0)"
        pivot += [f"{now} - COALESCE(MAX(CASE WHEN o = {w} THEN {c} END), 0) AS {c}_c{w}" for w in WINDOWS]
    pivot += [f"COALESCE(MAX(CASE WHEN o = 0 THEN {c} END), 0) AS {c}_now" for c in u_cols]
    pivot.append("MAX(CASE WHEN o = 0 THEN lg END) AS lg_last")
    return [
        IDS,
        ("ud", f"SELECT aid, tid, uid, d, SUM(n) AS n FROM ({_typed_events(types, ', k.n', key_types=key_types)}) e "
               "GROUP BY aid, tid, uid, d"),
        ("udelta", f"""
            WITH led AS (
                SELECT aid, tid, d, LEAD(d) OVER (PARTITION BY aid, tid, uid ORDER BY d) AS nd
                FROM ({_users_scoped(settings, types, "(SELECT * FROM ud WHERE uid IS NOT NULL)", "d")}) s
            )
            SELECT aid, tid, day, SUM(delta) AS delta FROM (
                SELECT aid, tid, d AS day, 1 AS delta FROM led
                UNION ALL
                SELECT aid, tid, LEAST(COALESCE(nd, d + {USER_WINDOW}), d + {USER_WINDOW}) AS day, -1 AS delta
                FROM led
            ) x GROUP BY aid, tid, day"""),
        ("ev_cum", f"""
            SELECT aid, tn, o, kind, {', '.join(_cum(c) for c in value_cols)}, {_cum('lg', 'MAX')}
            FROM ({day_rows} UNION ALL {delta_rows} UNION ALL {marker_rows}) u"""),
        ("ev_wide", f"SELECT {', '.join(pivot)} FROM ev_cum WHERE kind = 1 GROUP BY aid, tn"),
    ]


# ---- grid path: as-of dates t0 + step * k ---------------------------------------

def needed_windows(settings: Settings, types: list[str]) -> dict[str, list[int]]:
    """Which windows each count column needs: 7/30/60/90 for every event type and active
    days; 14 for login types (7-day change); 180 for marketing types (previous 90 days)."""
    roles = settings.event_roles
    need = {f"n{i}": {7, 30, 60, 90} for i in range(len(types))}
    for i, t in enumerate(types):
        if t in roles.login:
            need[f"n{i}"].add(14)
        if t in roles.marketing_sent or t in roles.marketing_open:
            need[f"n{i}"].add(180)
    need["act"] = {7, 30, 60, 90}
    return {c: sorted(ws) for c, ws in need.items()}


def grid_event_stages(settings: Settings, types: list[str], grid: Grid,
                      key_types: list[str] | None = None) -> list[tuple[str, str]]:
    roles, tid_in, active = _roles(settings, types)
    n_cols, u_cols = _value_columns(types)
    s, t0 = grid.step, grid.t0
    need = needed_windows(settings, types)
    q_of = {w: w // s for w in WINDOWS}
    r_of = {w: w % s for w in WINDOWS}
    tails_of = {c: sorted({r_of[w] for w in ws if r_of[w]}) for c, ws in need.items()}
    all_tails = sorted({r for ts in tails_of.values() for r in ts})
    q30, r30 = divmod(USER_WINDOW, s)
    b_lo = -max(q_of.values()) - 1
    bucket = f"CAST(FLOOR((d - {t0}) / {float(s)}) AS INTEGER)"
    count_cols = [(f"n{i}", i) for i in range(len(types))] + [("act", -1)]

    bk_long = ", ".join(["SUM(n) AS full_n"] + [f"SUM(CASE WHEN off >= {s - r} THEN n END) AS r{r}"
                                                   for r in all_tails])
    bk_aggs = []
    for c, code in count_cols:
        bk_aggs.append(f"SUM(CASE WHEN tid = {code} THEN full_n END) AS {c}_full")
        bk_aggs += [f"SUM(CASE WHEN tid = {code} THEN r{r} END) AS {c}_r{r}" for r in tails_of[c]]
    ud_pivot = [f"SUM(CASE WHEN tid = {i} THEN delta END) AS u{i}" for i in range(len(types))] + [
        "SUM(CASE WHEN tid = -1 THEN delta END) AS ua", "SUM(CASE WHEN tid = -2 THEN delta END) AS uc"]
    running = ", ".join(
        [f"SUM(COALESCE(k.{c}_full, 0)) OVER w AS {c}_p" for c, _ in count_cols]
        + [f"k.{c}_r{r}" for c, _ in count_cols for r in tails_of[c]]
        + [f"SUM(COALESCE(u.{c}, 0)) OVER w AS {c}_p" for c in u_cols]
        + ["MAX(lg.lg) OVER w AS lg_p"])
    b_values = ", ".join(f"({b})" for b in range(b_lo, grid.k_max))

    return [
        IDS,
        # events as integer keys, not aggregated: both stages below aggregate it their own way
        ("ud", _typed_events(types, ", k.n", grid, key_types)),
        # per bucket [t0 + s*b, t0 + s*(b+1)): sums, and sums of its last r days (window
        # remainders); tid -1 counts active days
        ("bk_long", f"""
            SELECT aid, tid, b, {bk_long}
            FROM (
                SELECT aid, tid, n, {bucket} AS b, d - {t0} - {s} * {bucket} AS off FROM (
                    SELECT aid, tid, d, SUM(n) AS n FROM ud GROUP BY aid, tid, d
                    UNION ALL
                    SELECT aid, -1 AS tid, d, 1.0 AS n FROM ud WHERE {tid_in(active)} GROUP BY aid, d
                ) x
            ) y GROUP BY aid, tid, b"""),
        ("bk", f"SELECT aid, b, {', '.join(bk_aggs)} FROM bk_long GROUP BY aid, b"),
        ("lg", f"SELECT aid, {bucket} AS b, MAX(d) AS lg FROM ud WHERE {tid_in(roles.login)} "
               f"GROUP BY aid, {bucket}"),
        # users: active in bucket b covers as-of k in [b+1, b+q30], and k = b+q30+1 when seen in
        # the bucket's last r30 days; consecutive buckets' spans are cut where the next begins
        ("uwk", f"""
            SELECT aid, tid, uid, b, MAX(g) AS g FROM (
                SELECT aid, tid, uid, {bucket} AS b,
                       CASE WHEN {r30} > 0 AND d - {t0} - {s} * {bucket} >= {s - r30} THEN 1 ELSE 0 END AS g
                FROM ud WHERE uid IS NOT NULL
            ) x GROUP BY aid, tid, uid, b"""),
        ("udelta", f"""
            WITH led AS (
                SELECT aid, tid, b, b + {q30} + g AS span_end,
                       LEAD(b) OVER (PARTITION BY aid, tid, uid ORDER BY b) AS nb
                FROM ({_users_scoped(settings, types, "uwk", "b", "g")}) s
            ), long AS (
                SELECT aid, tid, b, SUM(delta) AS delta FROM (
                    SELECT aid, tid, b, 1 AS delta FROM led
                    UNION ALL
                    SELECT aid, tid, LEAST(span_end, COALESCE(nb, span_end)) AS b, -1 AS delta FROM led
                ) x GROUP BY aid, tid, b
            )
            SELECT aid, b, {', '.join(ud_pivot)} FROM long GROUP BY aid, b"""),
        ("grid_run", f"""
            SELECT g.aid, g.b, {running}
            FROM (SELECT i.aid, v.b FROM ids i CROSS JOIN (SELECT * FROM (VALUES {b_values}) AS t(b)) v) g
            LEFT JOIN bk k ON k.aid = g.aid AND k.b = g.b
            LEFT JOIN udelta u ON u.aid = g.aid AND u.b = g.b
            LEFT JOIN lg ON lg.aid = g.aid AND lg.b = g.b
            WINDOW w AS (PARTITION BY g.aid ORDER BY g.b ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"""),
        ("ev_wide", _grid_wide(need, tails_of, q_of, r_of, u_cols, count_cols, grid)),
    ]


def _grid_wide(need: dict[str, list[int]], tails_of: dict[str, list[int]], q_of: dict[int, int],
               r_of: dict[int, int], u_cols: list[str], count_cols: list[tuple[str, int]], grid: Grid,
               tails: str = "") -> str:
    """``ev_wide`` from ``grid_run``: one equi-join per bucket offset q (row of bucket ``k - 1 - q``),
    each window ``now - then + tail`` (tails from ``grid_run``, or joined from table ``tails``)."""
    qs = sorted({q_of[w] for ws in need.values() for w in ws})
    cols, t = ["i.aid", "s.tn"], "t" if tails else "r"
    for c, _ in count_cols:
        for w in need[c]:
            tail = f" + COALESCE({t}{q_of[w]}.{c}_r{r_of[w]}, 0)" if r_of[w] else ""
            cols.append(f"r0.{c}_p - r{q_of[w]}.{c}_p{tail} AS {c}_c{w}")
    cols += [f"r0.{c}_p AS {c}_now" for c in u_cols]
    cols.append("r0.lg_p AS lg_last")
    k = f"CAST((s.tn - {grid.t0}) / {grid.step} AS INTEGER)"
    joins = "\n".join(f"LEFT JOIN grid_run r{q} ON r{q}.aid = i.aid AND r{q}.b = {k} - {1 + q}"
                      for q in qs if q)
    if tails:
        tqs = sorted({q_of[w] for c, _ in count_cols for w in need[c] if r_of[w]})
        joins += "".join(f"\nLEFT JOIN {tails} t{q} ON t{q}.aid = i.aid AND t{q}.b = {k} - {1 + q}" for q in tqs)
    return f"""
        SELECT {', '.join(cols)}
        FROM spine s JOIN ids i ON i.account_id = s.account_id
        JOIN grid_run r0 ON r0.aid = i.aid AND r0.b = {k} - 1
        {joins}"""


# ---- mask path: the grid path without sorts over user rows ------------------------

#: Bits of a BIGINT user mask we use (one per bucket; shifts stay clear of the sign bit).
MASK_BITS = 62


def mask_fits(grid: Grid) -> bool:
    """Whether the mask path applies: a day mask per bucket (step <= 62 days) and one bit per
    bucket a 30-day user window can reach (as-of dates + 30 / step + 1 <= 62)."""
    q30 = USER_WINDOW // grid.step
    return grid.step <= MASK_BITS and grid.k_max + q30 + 1 <= MASK_BITS


#: Bits of each half of a packed pair of running sums (``pack_pairs``).
PACK_BITS = 31


def users_packable(events: int) -> bool:
    """Whether two distinct-user counts fit one BIGINT (``pack_pairs``): a count is at most the
    events, so fewer than 2^31 kept events keep every count below 2^31 (the pair below 2^62)."""
    return events < 1 << PACK_BITS


def counts_packable(whole_quantities: bool, quantity_total: float) -> bool:
    """Whether two event counts (sums of quantities) or active days fit one BIGINT: every quantity
    a whole number and all of them together below 2^31 (active days are fewer than the days)."""
    return whole_quantities and quantity_total < 1 << PACK_BITS


def pack_pairs(cols: list[str]) -> list[tuple[str, ...]]:
    """Running-sum columns two by two (the last alone when their number is odd): each pair is one
    running sum of ``low + high * 2^31`` (BIGINT), split again after the sums. Both halves of every
    partial sum are whole numbers in [0, 2^31) (counts of users, events, days: ``users_packable``,
    ``counts_packable``), so the split is exact; and the window operator has half the aggregates,
    which cost about 0.1 CPU s each over the benchmark's 1 M grid rows."""
    return [tuple(cols[i:i + 2]) for i in range(0, len(cols), 2)]


def _packed(terms: list[str]) -> str:
    """SQL: a pair of whole numbers below 2^31 (``pack_pairs``) as one BIGINT, ``low + high * 2^31``."""
    return " + ".join([terms[0]] + [f"{t} * {1 << PACK_BITS}" for t in terms[1:]])


def _unpacked(packed: str, at: int) -> str:
    """SQL: the ``at``-th (0 low, 1 high) whole number of a packed pair, as a DOUBLE (the type of
    the sums unpacked)."""
    return (f"CAST(CAST({packed} AS BIGINT) & {(1 << PACK_BITS) - 1} AS DOUBLE)" if at == 0 else
            f"CAST(CAST({packed} AS BIGINT) >> {PACK_BITS} AS DOUBLE)")


def _running_sums(cols: list[str], value: Callable[[str], str], pack: bool, tag: str) -> tuple[list[str], list[str]]:
    """The window aggregates over ``w`` that give the running sums ``{c}_p`` of ``cols`` (``value(c)``:
    a row's value, whole numbers when ``pack``), and the select items that read them back:
    one per column, or one per ``pack_pairs`` pair (``{tag}{j}``) split after the sums."""
    if not pack:
        return [f"SUM({value(c)}) OVER w AS {c}_p" for c in cols], [f"{c}_p" for c in cols]
    pairs = pack_pairs(cols)
    sums = [f"SUM({_packed([f'CAST({value(c)} AS BIGINT)' for c in pair])}) OVER w AS {tag}{j}"
            for j, pair in enumerate(pairs)]
    return sums, [f"{_unpacked(f'{tag}{j}', at)} AS {c}_p" for j, pair in enumerate(pairs) for at, c in enumerate(pair)]


def mask_event_stages(settings: Settings, types: list[str], grid: Grid, key_types: list[str] | None = None,
                      pack_users: bool = False, pack_counts: bool = False) -> list[tuple[str, str]]:
    """The grid path (same ``ev_wide``, same values) without sorts over event or user rows:

    * ``bk``: one aggregation of the events to (account, type, bucket) — sums, sums of the
      bucket's last r days, a mask of the bucket's days seen (active days are the bits of
      the OR of the active types' masks: no pass of its own), the last day — pivoted;
    * ``um``: one aggregation of the events to (account, type, user): a mask of the buckets
      the user was seen in (one bit per bucket), and of those seen in their last
      ``30 mod step`` days. The running indices a user counts at are that mask smeared over
      ``q30`` buckets (one more for the second mask); the +1/-1 deltas of the running sum are
      the starts and ends of its runs of set bits, read off by a join on bit positions.
      Exact, like the sort of the grid path (tests compare the three paths).

    ``pack_users`` (``users_packable``): the distinct-user running sums two per window aggregate
    (``pack_pairs``); ``pack_counts`` (``counts_packable``): the event counts' and active days' too.
    ``grid_run`` splits them again: the later stages are the same either way.
    """
    roles, tid_in, active = _roles(settings, types)
    n_cols, u_cols = _value_columns(types)
    s, t0 = grid.step, grid.t0
    need = needed_windows(settings, types)
    q_of = {w: w // s for w in WINDOWS}
    r_of = {w: w % s for w in WINDOWS}
    tails_of = {c: sorted({r_of[w] for w in ws if r_of[w]}) for c, ws in need.items()}
    all_tails = sorted({r for ts in tails_of.values() for r in ts})
    q30, r30 = divmod(USER_WINDOW, s)
    b_lo = -max(q_of.values()) - 1
    bu0 = -q30 - 1  # the first bucket whose users can count at an as-of date (bit 0 of a user mask)
    top = grid.k_max + q30  # the last bit needed: running index k_max - 1
    full = (1 << (top + 1)) - 1
    bucket = f"CAST(FLOOR((d - {t0}) / {float(s)}) AS INTEGER)"
    count_cols = [(f"n{i}", i) for i in range(len(types))] + [("act", -1)]

    def bits(expr: str) -> str:
        return f"CAST(bit_count({expr}) AS DOUBLE)"

    tails = [f"SUM(CASE WHEN off >= {s - r} THEN n END) AS r{r}" for r in all_tails]
    # the pivot of bk_long to one row per (account, bucket): a join per event type (each
    # (account, type, bucket) is one row of bk_long), not a CASE per type and column over
    # every row (0.6x the time); active days and the last login are the only aggregates
    bk_cols = []
    for i in range(len(types)):
        bk_cols.append(f"t{i}.n AS n{i}_full")
        bk_cols += [f"t{i}.r{r} AS n{i}_r{r}" for r in tails_of[f"n{i}"]]
    bk_cols += ["a.act_full", *[f"a.act_r{r}" for r in tails_of["act"]], "a.lg"]
    act_mask = f"BIT_OR(CASE WHEN {tid_in(active)} THEN dm END)"
    bk_act = [f"{bits(act_mask)} AS act_full", *[f"{bits(f'{act_mask} >> {s - r}')} AS act_r{r}"
                                                 for r in tails_of["act"]],
              f"MAX(CASE WHEN {tid_in(roles.login)} THEN dmax END) AS lg"]
    bk_joins = "\n".join(f"LEFT JOIN bk_long t{i} ON t{i}.aid = a.aid AND t{i}.b = a.b AND t{i}.tid = {i}"
                         for i in range(len(types)))
    ud_pivot = [f"SUM(CASE WHEN tid = {i} THEN delta END) AS u{i}" for i in range(len(types))] + [
        "SUM(CASE WHEN tid = -1 THEN delta END) AS ua", "SUM(CASE WHEN tid = -2 THEN delta END) AS uc"]
    # a user counts at running index j (as-of k = j + 1) when seen in buckets j - q30 + 1 .. j,
    # or in the last r30 days of bucket j - q30
    smear = " | ".join([f"((m & {full >> i}) << {i})" if i else "m" for i in range(q30)]
                       + ([f"((gm & {full >> q30}) << {q30})"] if r30 else []))
    g = f"CASE WHEN off >= {s - r30} THEN ubit END" if r30 else "CAST(NULL AS BIGINT)"
    # the users' deltas are doubles (udelta: no int128); packed, whole numbers in BIGINT pairs
    n_sums, n_read = _running_sums([c for c, _ in count_cols], lambda c: f"COALESCE(k.{c}_full, 0)",
                                   pack_counts, "pn")
    u_sums, u_read = _running_sums(u_cols, lambda c: f"COALESCE(u.{c}, 0)", pack_users, "pu")
    running = ", ".join(n_sums + u_sums + ["MAX(k.lg) OVER w AS lg_p"])
    b_values = ", ".join(f"({b})" for b in range(b_lo, grid.k_max))
    positions = ", ".join(f"({p}, {1 << p})" for p in range(top + 1))
    # the events as integer keys, read by two passes (each a small aggregation; one to
    # account-type-user-bucket is slower) straight from event_keys: no copy (1x: 2.4 CPU s)
    ev = f"({_typed_events(types, ', k.n', grid, key_types)}) ev"
    return [
        IDS,
        ("bk_long", f"""
            SELECT aid, tid, b, SUM(n) AS n{''.join(', ' + t for t in tails)},
                   BIT_OR(CAST(1 AS BIGINT) << off) AS dm, MAX(d) AS dmax
            FROM (SELECT aid, tid, d, n, {bucket} AS b, d - {t0} - {s} * {bucket} AS off FROM {ev}) x
            GROUP BY aid, tid, b"""),
        ("bk", f"""
            SELECT a.aid, a.b, {', '.join(bk_cols)}
            FROM (SELECT aid, b, {', '.join(bk_act)} FROM bk_long GROUP BY aid, b) a
            {bk_joins}"""),
        # rows without a user are dropped later (a filter here doubled the cost of this pass)
        ("um", f"""
            SELECT * FROM (
                SELECT aid, tid, uid, BIT_OR(ubit) AS m, COALESCE(BIT_OR({g}), 0) AS gm FROM (
                    SELECT aid, tid, uid, d - {t0} - {s} * {bucket} AS off,
                           CASE WHEN d >= {t0 + s * bu0} THEN CAST(1 AS BIGINT) << ({bucket} - {bu0}) END AS ubit
                    FROM {ev}
                ) x GROUP BY aid, tid, uid
            ) y WHERE m IS NOT NULL"""),
        ("udelta", f"""
            WITH cov AS (
                SELECT aid, tid, ({smear}) & {full} AS c
                FROM (SELECT aid, tid, m, gm FROM um WHERE uid IS NOT NULL
                      UNION ALL
                      SELECT aid, -1 AS tid, BIT_OR(m) AS m, BIT_OR(gm) AS gm FROM um
                      WHERE uid IS NOT NULL AND {tid_in(active)} GROUP BY aid, uid
                      UNION ALL
                      SELECT aid, -2 AS tid, BIT_OR(m) AS m, BIT_OR(gm) AS gm FROM um
                      WHERE uid IS NOT NULL AND {tid_in(roles.core_feature)} GROUP BY aid, uid) s
            ), runs AS (
                SELECT aid, tid, c & ~(c << 1) AS st, c & ~(c >> 1) AS en FROM cov
            ), long AS (  -- deltas as doubles: sums of +1/-1 are exact, and cheaper than int128
                SELECT aid, tid, b, SUM(delta) AS delta FROM (
                    SELECT r.aid, r.tid, p.pos + {bu0} AS b, CAST(1 AS DOUBLE) AS delta
                    FROM runs r JOIN (SELECT * FROM (VALUES {positions}) AS v(pos, pm)) p ON (r.st & p.pm) <> 0
                    UNION ALL
                    SELECT r.aid, r.tid, p.pos + {bu0 + 1} AS b, CAST(-1 AS DOUBLE) AS delta
                    FROM runs r JOIN (SELECT * FROM (VALUES {positions}) AS v(pos, pm)) p ON (r.en & p.pm) <> 0
                ) x GROUP BY aid, tid, b
            )
            SELECT aid, b, {', '.join(ud_pivot)} FROM long GROUP BY aid, b"""),
        ("grid_run", f"""
            SELECT aid, b, {', '.join(n_read + u_read)}, lg_p FROM (
                SELECT g.aid, g.b, {running}
                FROM (SELECT i.aid, v.b FROM ids i CROSS JOIN (SELECT * FROM (VALUES {b_values}) AS t(b)) v) g
                LEFT JOIN bk k ON k.aid = g.aid AND k.b = g.b
                LEFT JOIN udelta u ON u.aid = g.aid AND u.b = g.b
                WINDOW w AS (PARTITION BY g.aid ORDER BY g.b ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            ) x"""),
        # tails joined from bk: the window function above carries 17-32 aggregates (packed or not), not 80
        ("ev_wide", _grid_wide(need, tails_of, q_of, r_of, u_cols, count_cols, grid, tails="bk")),
    ]
