"""The single-machine speed-ups keep the values: the TRIM shortcut, the data start and the
event types taken from the report, and the events read once from the source (``event_keys``: the
report and the feature stages)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import sqlglot

from core.store import SnapshotMeta, write_snapshots
from features.pipeline import build_snapshots, open_connection, prepare
from features.snapshots import build_feature_tables
from features.stage_tables import read_once, spent_after
from features.timeline import build_spine, build_terms
from features.validate import _table_report, trimmed
from features.windows import Grid, mask_event_stages
from tests.tiny import D, T, settings, write_tables

#: Every character DuckDB's TRIM removes (the Unicode space separators, Zs).
SPACES = [32, 160, 5760, *range(8192, 8203), 8239, 8287, 12288]

SUBS = [dict(account_id="a1", start_date=D(2024, 1, 1), end_date=None, mrr=100.0, plan="p", seats=3),
        dict(account_id="a2", start_date=D(2024, 1, 1), end_date=None, mrr=50.0, plan="p", seats=1)]


def test_trim_shortcut_gives_what_trim_gives_for_every_kind_of_string():
    values = ["u1", "ACC-001297-U002", "a b", "x", "~", "!", "", " ", "  ", " u1", "u1 ", " u1 ", "\tu1", "u1\t",
              "u1\n", "\nu1", "é", "ué", "éu", "u\u00e9 ", "日本", None]
    values += [f"{chr(c)}u" for c in SPACES] + [f"u{chr(c)}" for c in SPACES] + [chr(c) for c in SPACES]
    values += [f"{chr(c)}u" for c in range(1, 33)] + [f"u{chr(c)}" for c in range(1, 33)] + ["u\x7f", "\x7fu"]
    con = duckdb.connect()
    con.execute("CREATE TABLE s (x VARCHAR)")
    con.executemany("INSERT INTO s VALUES (?)", [(v,) for v in values])
    rows = con.execute(f"SELECT x, {trimmed('x')} AS fast, NULLIF(TRIM(x), '') AS slow FROM s").fetchall()
    assert len(rows) == len(values)
    assert [r for r in rows if r[1] != r[2] and not (r[1] is None and r[2] is None)] == []
    # the shortcut is taken for plain ids and not for the ones TRIM changes
    got = dict(con.execute(f"SELECT x, {trimmed('x')} FROM s WHERE x IN ('u1', ' u1 ', '')").fetchall())
    assert got == {"u1": "u1", " u1 ": "u1", "": None}


def test_padded_ids_are_trimmed_in_the_clean_events(tmp_path):
    events = [dict(account_id="a1", user_id=u, occurred_at=T(2024, 3, d, 9), event_type=t)
              for d, u, t in [(1, "u1", "login"), (2, " u1", "login "), (3, "u1\u3000", "\u00a0login"),
                              (4, "u2", "login"), (5, " ", "login")]]
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": events})
    # 2024-03-31: the 30-day window [03-01, 03-31) is the first 30 days of data, whole (not scaled)
    r = build_snapshots(folder, settings(data_end=D(2024, 6, 1)), tmp_path / "s.duckdb", as_of=[D(2024, 3, 31)])
    assert list(r.catalogue.event_types) == ["login"]  # one type, not three
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    row = con.execute("SELECT logins_30d, active_users_30d FROM snapshots WHERE account_id = 'a1'").fetchone()
    assert row == (5, 2)  # u1 (three spellings) and u2; the blank user is no user


def test_data_start_and_event_types_are_those_of_the_kept_events(tmp_path):
    events = [dict(account_id="a1", user_id="u", occurred_at=T(2024, 3, d, 9), event_type="login") for d in (4, 9)]
    events += [dict(account_id="a1", user_id="u", occurred_at=T(2024, 2, 1), event_type="login"),
               dict(account_id="ghost", user_id="g", occurred_at=T(2024, 1, 2), event_type="ghost_only"),
               dict(account_id="a2", user_id="v", occurred_at=T(2024, 7, 1), event_type="late_only")]
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": events})
    r = build_snapshots(folder, settings(data_end=D(2024, 6, 1)), tmp_path / "s.duckdb", as_of=[D(2024, 3, 15)])
    ev = r.validation.tables["events"]
    assert ev.set_aside == {"unknown_account": 1, "after_data_end": 1}
    assert r.validation.data_start == D(2024, 2, 1)  # not the set-aside 2024-01-02
    assert list(r.catalogue.event_types) == ["login"]  # types only in set-aside rows are not features
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:  # login: type 2 of the keyed events
        assert con.execute("SELECT logins_30d FROM snapshots WHERE account_id = 'a1'").fetchone() == (2,)
    # nothing set aside: the types come from the typed events (no checks), and are the same
    folder = write_tables(tmp_path / "data2", {"subscriptions": SUBS, "events": events[:3]})
    r = build_snapshots(folder, settings(data_end=D(2024, 6, 1)), tmp_path / "s2.duckdb", as_of=[D(2024, 3, 15)])
    assert r.validation.tables["events"].set_aside == {}
    assert list(r.catalogue.event_types) == ["login"] and r.validation.data_start == D(2024, 2, 1)


def test_mask_path_reads_the_keyed_events_not_the_source():
    stages = mask_event_stages(settings(), ["login", "report_build"], Grid(t0=19800, step=7, k_max=51))
    assert [table for table, sql in stages if "clean_events" in sql] == []
    assert [table for table, sql in stages if "event_keys" in sql] == ["bk_long", "um"]
    for _, sql in stages:  # still the one definition Spark runs
        out = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
        assert len(out) == 1


def test_stage_tables_are_dropped_once_no_later_stage_or_the_final_query_reads_them():
    stages = [("ids", "SELECT 1"), ("ev", "SELECT * FROM clean_events"), ("bk", "SELECT * FROM ev"),
              ("um", "SELECT * FROM ev JOIN ids"), ("ev_wide", "SELECT * FROM bk JOIN um")]
    final = "SELECT * FROM spine JOIN ids JOIN ev_wide"
    assert spent_after(stages, final) == {3: ["ev"], 4: ["bk", "um"]}


def test_a_stage_read_once_is_a_view_and_what_it_reads_lives_as_long_as_its_reader():
    stages = [("ids", "SELECT 1"), ("keys", "SELECT * FROM event_keys"), ("bk", "SELECT * FROM keys"),
              ("um", "SELECT * FROM keys k JOIN ids i ON i.aid = k.aid"), ("udelta", "SELECT * FROM um"),
              ("grid_run", "SELECT * FROM bk JOIN udelta USING (aid) JOIN bk b2 USING (aid)"),
              ("ev_wide", "SELECT * FROM grid_run g JOIN ids i ON i.aid = g.aid"),
              ("nf", "SELECT * FROM event_keys")]
    final = "SELECT * FROM spine JOIN ids JOIN ev_wide ew ON ew.aid = ids.aid JOIN nf"
    # keys: read by three stages; bk twice by one; ids by two and the final query; nf reads the keyed events
    views = read_once(stages, final, ("event_keys",))
    assert views == {"um", "udelta", "grid_run", "ev_wide"}
    # what the views read (keys, bk, through them the final query) stays; the keyed events until nf
    assert spent_after(stages, final, ("event_keys",), views) == {7: ["event_keys"]}
    assert spent_after(stages, final, ("event_keys",)) == {7: ["event_keys"], 3: ["keys"], 5: ["bk", "udelta"],
                                                            4: ["um"], 6: ["grid_run"]}


def built(tmp_path, **options):
    """A connection on which one account's eight logins went through the feature stages (``options``:
    ``build_feature_tables``')."""
    events = [dict(account_id="a1", user_id="u", occurred_at=T(2024, 3, d, 9), event_type="login") for d in range(1, 9)]
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": events})
    con = open_connection(1)
    report, _ = prepare(folder, settings(data_end=D(2024, 6, 1)), con, keyed_events=True)
    build_terms(con, settings())
    build_spine(con, [D(2024, 3, 15) + dt.timedelta(days=7 * k) for k in range(4)], settings(), report.data_end)
    build_feature_tables(con, settings(), **options)
    return con


def test_a_build_leaves_the_tables_the_final_query_reads(tmp_path):
    con = built(tmp_path)
    left = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()}
    # the stages read once by the final query are views over the tables they read (read_once)
    assert {"ev_wide", "tk", "inv", "nf"} <= views and {"ids", "grid_run", "bk", "nf_first", "snapshot_rows"} <= left
    # the mask path's intermediate tables, and the checks' keyed events once the event stages are done
    assert not (left | views) & {"ev", "bk_long", "um", "udelta", "event_keys"}
    assert con.execute("SELECT sum(logins_30d) FROM snapshot_rows").fetchone()[0] > 0
    # without keyed_events (metrics, a Spark build) the checks drop their keyed events at once
    con = open_connection(1)
    prepare(tmp_path / "data", settings(data_end=D(2024, 6, 1)), con)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'event_keys'").fetchone() == (0,)


def test_the_events_report_from_the_keyed_events_is_the_report_of_a_pass_over_the_checked_rows(tmp_path):
    """Counts per reason, content hash, data start and examples: from ``event_keys`` (one pass over
    the source with the features' keys) as from the string pass the other tables take."""
    good = [dict(account_id=a, user_id=f"u{d % 3}", occurred_at=T(2024, 3, d, 9), event_type=t, quantity=float(d))
            for a in ("a1", "a2") for d in range(2, 20) for t in ("login", "Report-Build")]
    bad = [dict(account_id="ghost", user_id="g", occurred_at=T(2024, 3, 5), event_type="login", quantity=1.0),
           dict(account_id="a1", user_id="u", occurred_at=T(2024, 7, 1), event_type="late_only", quantity=1.0),
           dict(account_id="a1", user_id="u", occurred_at=T(2024, 3, 5), event_type="login", quantity=-2.0),
           dict(account_id="a2", user_id=None, occurred_at=T(2024, 3, 5), event_type=None, quantity=1.0),
           dict(account_id="a2", user_id="u", occurred_at=T(1985, 3, 5), event_type="login", quantity=1.0)]
    folder = write_tables(tmp_path / "data", {"subscriptions": SUBS, "events": bad[:2] + good + bad[2:]})
    con = open_connection(1)
    report, _ = prepare(folder, settings(data_end=D(2024, 6, 1)), con, keyed_events=True)
    keyed = report.tables["events"]
    pass_over_rows = _table_report(con, "events", keyed.columns)  # the string pass (GROUP BY _reason)
    assert keyed.set_aside == pass_over_rows.set_aside == {
        "after_data_end": 1, "before_1990": 1, "missing_event_type": 1, "negative_quantity": 1, "unknown_account": 1}
    assert list(keyed.set_aside) == sorted(keyed.set_aside)
    assert keyed.examples == pass_over_rows.examples
    assert (keyed.rows_in, keyed.rows_kept, keyed.content_hash) == \
        (pass_over_rows.rows_in, pass_over_rows.rows_kept, pass_over_rows.content_hash) == (77, 72, keyed.content_hash)
    assert keyed.content_hash != 0
    assert keyed.first_at == pass_over_rows.first_at.date() == D(2024, 3, 2)
    # the kept rows of event_keys are clean_events as integer keys
    assert con.execute("SELECT count(*), sum(n) FROM event_keys WHERE r IS NULL").fetchone() == \
        con.execute("SELECT count(*), sum(quantity) FROM clean_events").fetchone()


def _store_counts(store, dates):
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute("SELECT count(*), count_if(labelled), count(*) FILTER (WHERE labelled AND churn_label = 1), "
                           "count(DISTINCT account_id) FROM snapshots WHERE as_of IN (SELECT unnest(?))",
                           [dates]).fetchone()


def test_the_final_projection_is_written_straight_into_the_store_and_counted_there(tmp_path):
    events = [dict(account_id=a, user_id="u", occurred_at=T(2024, 3, d, 9), event_type="login")
              for a in ("a1", "a2") for d in range(1, 28, 2)]
    subs = SUBS + [dict(account_id="a3", start_date=D(2024, 1, 1), end_date=D(2024, 3, 20), mrr=10.0, plan="p",
                        seats=1)]
    folder = write_tables(tmp_path / "data", {"subscriptions": subs, "events": events})
    dates = [D(2024, 3, 1) + dt.timedelta(days=7 * k) for k in range(6)]
    store = tmp_path / "s.duckdb"
    full = build_snapshots(folder, settings(data_end=D(2024, 6, 1)), store, as_of=dates)
    assert (full.rows, full.labelled_rows, full.positive_rows, full.accounts) == _store_counts(store, dates)
    assert full.rows == 15 and full.accounts == 3 and full.positive_rows >= 1  # a3 churns on 2024-03-20
    with duckdb.connect(str(store), read_only=True) as con:
        before = con.execute("SELECT * FROM snapshots ORDER BY as_of, account_id").fetchall()
        # written in the final projection's order: one as-of date after another
        assert con.execute("SELECT as_of FROM snapshots").fetchall() == sorted(con.execute(
            "SELECT as_of FROM snapshots").fetchall())
    # some dates again into the same store: only those dates' rows are counted, and nothing changes
    again = build_snapshots(folder, settings(data_end=D(2024, 6, 1)), store, as_of=dates[1:3])
    assert (again.rows, again.labelled_rows, again.positive_rows, again.accounts) == _store_counts(store, dates[1:3])
    assert again.rows == 6
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("SELECT * FROM snapshots ORDER BY as_of, account_id").fetchall() == before
    # a date whose accounts have all gone in the new data keeps its stored rows and is not counted
    gone = [dict(s, end_date=D(2024, 3, 10)) for s in subs]
    folder2 = write_tables(tmp_path / "data2", {"subscriptions": gone, "events": events})
    late = build_snapshots(folder2, settings(data_end=D(2024, 6, 1)), store, as_of=[dates[0], dates[3]])
    assert late.rows == 3 and late.accounts == 3  # 2024-03-01 only; the stored 2024-03-22 rows are not this build's
    assert _store_counts(store, [dates[3]])[0] == 2


def test_the_final_projection_can_be_left_a_view_and_written_from_it(tmp_path):
    con = built(tmp_path, final_view=True)
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'snapshot_rows'"
                       ).fetchone() == (1,)
    expected = con.execute("SELECT * FROM snapshot_rows ORDER BY as_of, account_id").fetchall()
    meta = SnapshotMeta(catalogue_json="{}", data_start=D(2024, 1, 1), data_end=D(2024, 6, 1), horizon_days=60,
                        grace_days=14, source="test", input_hash="x", built_at=dt.datetime(2024, 6, 1))
    con.execute(f"ATTACH '{tmp_path / 'store.duckdb'}' AS store_db")
    con.execute("USE store_db")
    assert write_snapshots(con, "snapshot_rows", meta, replace_all=True) == len(expected) == 8
    # some dates from the view: its rows are computed once (a copy), the others' rows kept
    con.execute("DELETE FROM snapshots WHERE as_of > DATE '2024-03-22'")
    assert write_snapshots(con, "snapshot_rows", meta, replace_all=False) == 8
    assert con.execute("SELECT * FROM snapshots ORDER BY as_of, account_id").fetchall() == expected


def test_a_term_ending_9999_12_31_is_open_ended(tmp_path):
    # CRMs write "no end" as 9999-12-31: no end date, not a term ending in millions of days
    subs = [dict(account_id="a1", start_date=D(2024, 1, 1), end_date=D(9999, 12, 31), mrr=100.0, plan="p", seats=3),
            dict(account_id="a2", start_date=D(2024, 1, 1), end_date=D(2099, 12, 31), mrr=50.0, plan="p", seats=1),
            dict(account_id="a3", start_date=D(2024, 1, 1), end_date=D(2024, 4, 1), mrr=80.0, plan="p", seats=2)]
    events = [dict(account_id=a, user_id="u", occurred_at=T(2024, 3, 1, 9), event_type="login")
              for a in ("a1", "a2", "a3")]
    # as dates (a date32 Parquet column, as an export writes it): pandas' timestamps end in 2262
    folder = write_tables(tmp_path / "data", {"subscriptions": pd.DataFrame(subs), "events": events})
    build_snapshots(folder, settings(data_end=D(2024, 12, 1)), tmp_path / "s.duckdb", as_of=[D(2024, 3, 15)])
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    rows = con.execute("SELECT account_id, days_to_term_end, churn_label FROM snapshots").fetchall()
    got = {r[0]: r[1:] for r in rows}
    assert got == {"a1": (None, 0), "a2": ((D(2099, 12, 31) - D(2024, 3, 15)).days, 0), "a3": (17, 1)}
