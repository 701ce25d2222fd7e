"""The mask path (the default for weekly schedules) against two references.

* the same snapshots as the general path and the sort-based grid path — every feature,
  every account, every as-of date;
* its event windows (counts, active days, distinct users, last login) against a brute
  force in pandas over the checked events, (account, as-of) by (account, as-of).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlglot

import features.snapshots as snapshots
from core.settings import Settings
from core.store import read_snapshots
from demo.generator import generate_tables
from features.pipeline import build_snapshots, open_connection, prepare
from features.snapshots import event_types
from features.timeline import build_spine, build_terms, day_number
from features.windows import (
    USER_WINDOW,
    Grid,
    _packed,
    _unpacked,
    counts_packable,
    grid_event_stages,
    mask_event_stages,
    mask_fits,
    needed_windows,
    pack_pairs,
    regular_grid,
    users_packable,
)

TABLES = ("accounts", "subscriptions", "events", "tickets", "invoices")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = generate_tables(accounts=25, months=9, seed=17)
    folder = tmp_path_factory.mktemp("mask")
    for name in TABLES:
        getattr(data, name).to_parquet(folder / f"{name}.parquet", index=False)
    return folder, data.settings


def test_mask_fits_the_schedules_a_bigint_holds():
    assert mask_fits(Grid(t0=0, step=7, k_max=51))  # weekly for a year: 51 + 4 + 1 bits
    assert mask_fits(Grid(t0=0, step=7, k_max=57)) and not mask_fits(Grid(t0=0, step=7, k_max=58))
    assert not mask_fits(Grid(t0=0, step=1, k_max=40))  # daily: 30 bits of window each
    assert not mask_fits(Grid(t0=0, step=90, k_max=3))  # a day mask per bucket needs step <= 62


@pytest.mark.parametrize("step", [7, 14, 45])
def test_mask_grid_and_general_paths_give_the_same_snapshots(demo, tmp_path, monkeypatch, step):
    folder, settings = demo
    start = dt.date(2024, 4, 10)
    as_of = [start + dt.timedelta(days=step * k) for k in range(max(4, 140 // step))]
    frames = {}
    for path in ("mask", "grid", "general"):
        if path == "grid":  # the sort-based grid path, used where masks do not fit
            monkeypatch.setattr(snapshots, "mask_fits", lambda grid: False)
        store = tmp_path / f"{path}.duckdb"
        result = build_snapshots(folder, settings, store, as_of=as_of, general_windows=path == "general")
        monkeypatch.undo()
        frames[path] = read_snapshots(store)
        if path == "mask":
            assert any("BIT_OR" in s for s in result.statements)
        else:
            assert not any("BIT_OR" in s for s in result.statements)
    mask = frames["mask"]
    assert len(mask) > 10 * len(as_of) // 2
    assert mask["active_users_30d"].sum() > 0 and mask["logins_30d"].sum() > 0
    for other in ("grid", "general"):
        pd.testing.assert_frame_equal(mask, frames[other], check_exact=False, rtol=1e-12, atol=0)


def _brute_force(events: pd.DataFrame, spine: pd.DataFrame, types: list[str], settings: Settings) -> pd.DataFrame:
    """The event-window columns of ``ev_wide`` by definition, one (account, as-of) at a time."""
    roles = settings.event_roles
    passive = {*roles.marketing_sent, *roles.marketing_open, *roles.contact_left}
    active = [t for t in types if t not in passive]
    lo = spine["tn"].min() - 181  # what the stages see: 180-day windows back from the first date
    ev = events[(events["d"] >= lo) & (events["d"] < spine["tn"].max())]
    need = needed_windows(settings, types)
    by_account = dict(tuple(ev.groupby("account_id")))
    rows = []
    for account, tn in spine[["account_id", "tn"]].itertuples(index=False):
        e = by_account.get(account, ev.iloc[:0])
        e = e[e["d"] < tn]
        row = {"account_id": account, "tn": tn}
        for i, t in enumerate(types):
            et = e[e["event_type"] == t]
            for w in need[f"n{i}"]:
                row[f"n{i}_c{w}"] = float(et.loc[et["d"] >= tn - w, "quantity"].sum())
            recent = et[(et["d"] >= tn - USER_WINDOW) & et["user_id"].notna()]
            row[f"u{i}_now"] = recent["user_id"].nunique()
        act = e[e["event_type"].isin(active)]
        for w in need["act"]:
            row[f"act_c{w}"] = float(act.loc[act["d"] >= tn - w, "d"].nunique())
        recent = e[(e["d"] >= tn - USER_WINDOW) & e["user_id"].notna()]
        row["ua_now"] = recent.loc[recent["event_type"].isin(active), "user_id"].nunique()
        row["uc_now"] = recent.loc[recent["event_type"].isin(roles.core_feature), "user_id"].nunique()
        logins = e.loc[e["event_type"].isin(roles.login), "d"]
        row["lg_last"] = logins.max() if len(logins) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _mask_stages_built(demo, pack_users: bool = True, pack_counts: bool = True):
    """A connection with the demo's checked tables, spine (12 weekly dates) and every mask-path
    stage built; returns (connection, settings, event types, the stages)."""
    folder, settings = demo
    con = open_connection(2)
    report, _ = prepare(folder, settings, con, keyed_events=True)  # event_keys: the checks' keyed events
    as_of = [dt.date(2024, 3, 6) + dt.timedelta(days=7 * k) for k in range(12)]
    build_terms(con, settings)
    build_spine(con, as_of, settings, report.data_end)
    types = event_types(con)
    grid = regular_grid([day_number(d) for d in as_of])
    assert grid is not None and mask_fits(grid)
    key_types = [r[0] for r in con.execute("SELECT event_type FROM event_key_types ORDER BY fid").fetchall()]
    stages = mask_event_stages(settings, types, grid, key_types, pack_users=pack_users, pack_counts=pack_counts)
    for table, sql in stages:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}")
    return con, settings, types, stages


@pytest.mark.slow
def test_mask_event_windows_match_a_brute_force(demo):
    con, settings, types, _ = _mask_stages_built(demo)
    got = con.execute("SELECT ids.account_id, ew.* EXCLUDE (aid) FROM ev_wide ew "
                      "JOIN ids ON ids.aid = ew.aid").df()
    events = con.execute("SELECT account_id, user_id, event_type, quantity, "
                         "CAST(date_diff('day', DATE '1970-01-01', CAST(occurred_at AS DATE)) AS INTEGER) AS d "
                         "FROM clean_events").df()
    spine = con.execute("SELECT account_id, tn FROM spine").df()
    con.close()
    want = _brute_force(events, spine, types, settings)
    key = ["account_id", "tn"]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert len(got) == len(spine) > 100
    assert sorted(got.columns) == sorted(want.columns)
    assert want["ua_now"].sum() > 0 and want["ua_now"].max() >= 2 and want["lg_last"].notna().any()
    assert (got[key] == want[key]).all().all()
    for col in [c for c in want.columns if c not in key]:
        a, b = got[col].astype(float).to_numpy(), want[col].astype(float).to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12, atol=0), col


def test_grid_and_mask_stages_transpile_to_spark_sql():
    settings = Settings()
    types = ["login", "report_build", "it's quoted"]
    grid = Grid(t0=19800, step=7, k_max=51)
    for stages in (mask_event_stages(settings, types, grid, pack_users=True, pack_counts=True),
                   mask_event_stages(settings, types, grid, pack_users=False),
                   grid_event_stages(settings, types, grid)):
        for _, sql in stages:
            out = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
            assert len(out) == 1 and out[0].upper().startswith(("SELECT", "WITH"))


def test_mask_pivots_by_join_equal_the_pivots_by_case(demo):
    """``bk`` is pivoted by a join per event type (one row per account, type and bucket), not
    by a CASE per type and column: the same values as the CASE pivot. The users' deltas are
    doubles (exact for sums of +1/-1) that add up to 0 per account and type (unpacked here; packed
    two per BIGINT by default, compared below)."""
    con, settings, types, stages = _mask_stages_built(demo, pack_users=False, pack_counts=False)
    assert "CASE WHEN tid = 0 THEN" not in dict(stages)["bk"]
    dup = con.execute("SELECT count(*) - count(DISTINCT (aid, tid, b)) FROM bk_long").fetchone()[0]
    assert dup == 0  # the joins' premise: one row per key
    cols = [r[0] for r in con.execute("DESCRIBE bk").fetchall() if r[0].startswith("n") and "_" in r[0]]
    case = ", ".join(f"SUM(CASE WHEN tid = {c[1:c.index('_')]} THEN "
                     f"{'n' if c.endswith('_full') else c[c.index('_') + 1:]} END) AS {c}" for c in cols)
    got = con.execute(f"SELECT aid, b, {', '.join(cols)} FROM bk ORDER BY aid, b").df()
    want = con.execute(f"SELECT aid, b, {case} FROM bk_long GROUP BY aid, b ORDER BY aid, b").df()
    assert len(got) > 100 and got[cols].notna().sum().sum() > 1000
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    u_cols = [r[0] for r in con.execute("DESCRIBE udelta").fetchall() if r[0] not in ("aid", "b")]
    assert {r[1] for r in con.execute("DESCRIBE udelta").fetchall() if r[0] in u_cols} == {"DOUBLE"}
    totals = con.execute(f"SELECT {', '.join(f'SUM({c}), count({c})' for c in u_cols)} FROM udelta").fetchone()
    assert all(t in (0, None) for t in totals[::2]) and sum(totals[1::2]) > 100  # every +1 has its -1
    con.close()


def test_running_sums_are_packed_two_per_bigint_when_they_stay_below_two_to_the_31():
    assert pack_pairs(["u0", "u1", "u2", "ua", "uc"]) == [("u0", "u1"), ("u2", "ua"), ("uc",)]
    assert pack_pairs(["u0", "ua", "uc", "x"]) == [("u0", "ua"), ("uc", "x")]
    assert users_packable(2**31 - 1) and not users_packable(2**31)
    assert counts_packable(True, 2.0**31 - 1) and not counts_packable(True, 2.0**31)
    assert not counts_packable(False, 10.0)  # a fractional quantity: its sums are not whole numbers
    grid = Grid(t0=19800, step=7, k_max=51)
    types = ["login", "report_build", "x"]
    plain = dict(mask_event_stages(Settings(), types, grid, pack_users=False))
    users = dict(mask_event_stages(Settings(), types, grid, pack_users=True))
    both = dict(mask_event_stages(Settings(), types, grid, pack_users=True, pack_counts=True))
    assert plain["grid_run"].count(" OVER w") == 3 + 1 + 5 + 1  # types, active days, users, last login
    assert users["grid_run"].count(" OVER w") == 4 + 3 + 1  # 5 user sums -> 3
    assert both["grid_run"].count(" OVER w") == 2 + 3 + 1  # 4 count sums -> 2
    assert users["grid_run"].count(">> 31") == 2 and both["grid_run"].count(">> 31") == 4
    assert ">> 31" not in plain["grid_run"]
    assert plain["ev_wide"] == users["ev_wide"] == both["ev_wide"]  # packing stays inside grid_run


def test_packed_user_counts_equal_the_unpacked_ones_and_split_exactly(demo):
    """The mask path's distinct-user running sums, two per BIGINT, give the same ``grid_run`` and
    ``ev_wide`` as one per column (every column, every row, the same types), and so do the event
    counts and active days (the demo's quantities are whole numbers); a pair of counts at their
    bound, 2^31 - 1 each, summed from +1/-1 steps as a HUGEINT (DuckDB's SUM of BIGINT), splits
    back exactly."""
    tables = []
    for pack in (True, False):
        con, _settings, _types, stages = _mask_stages_built(demo, pack_users=pack, pack_counts=pack)
        assert ("pu0" in dict(stages)["grid_run"] and "pn0" in dict(stages)["grid_run"]) is pack
        tables.append([con.execute(f"SELECT * FROM {t} ORDER BY aid, {k}").df() for t, k in (("ev_wide", "tn"),
                                                                                             ("grid_run", "b"))])
        con.close()
    (packed, packed_run), (plain, plain_run) = tables
    pd.testing.assert_frame_equal(packed_run, plain_run, check_exact=True)
    assert (packed.filter(regex=r"^n\d+_c30$").sum() > 0).sum() >= 2 and packed["act_c90"].max() >= 2
    pairs = pack_pairs([c[:-4] for c in packed.columns if c.endswith("_now")])
    assert len(packed) > 100 and packed["ua_now"].max() >= 2
    assert any(packed[f"{p[0]}_now"].sum() > 0 for p in pairs)  # both halves of a pair are exercised
    assert any(packed[f"{p[1]}_now"].sum() > 0 for p in pairs if len(p) == 2)
    pd.testing.assert_frame_equal(packed, plain, check_exact=True)
    top = (1 << 31) - 1
    with open_connection(1) as con:
        low, high = con.execute(
            f"SELECT {_unpacked('p', 0)}, {_unpacked('p', 1)} FROM ("
            f"SELECT SUM({_packed(['CAST(lo AS BIGINT)', 'CAST(hi AS BIGINT)'])}) AS p "
            f"FROM (VALUES ({top}, {top}), (1, -1), (-1, 1), (0, -1), (0, 1)) AS v(lo, hi))").fetchone()
    assert (low, high) == (top, top)
