"""Product-analytics and Stripe API exports stamp time in Unix epoch (events in milliseconds,
billing periods in seconds). ``features`` read such columns as moments in UTC, with the same
snapshots as the same export written with ISO timestamps; before, it stopped with
"events.occurred_at: N value(s) are not of type timestamp"."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.foreign.inprocess import run_cli

pytestmark = pytest.mark.slow  # a module fixture of several CLI runs (tens of seconds)

START = pd.Timestamp("2025-01-01", tz="UTC")


def _export(n: int = 30, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly periods (one row each, Stripe invoice lines) and usage events, times as UTC Timestamps."""
    r = np.random.default_rng(seed)
    subs, events = [], []
    for i in range(n):
        t = START + pd.Timedelta(days=int(r.integers(0, 60)))
        months = int(r.integers(3, 9))
        for _ in range(months):
            e = t + pd.DateOffset(months=1)
            subs.append({"customer": f"cus_{i:03d}", "period_start": t, "period_end": e, "amount_paid": 1900})
            for x in r.uniform(t.timestamp(), e.timestamp(), int(r.integers(0, 6))):
                events.append({"customer_id": f"cus_{i:03d}", "time": pd.Timestamp(x, unit="s", tz="UTC").floor("ms"),
                               "event": r.choice(["Report Exported", "Login"])})
            t = e
    return pd.DataFrame(subs), pd.DataFrame(events)


def _write(folder, subs, events, stamp) -> None:
    folder.mkdir()
    s, e = subs.copy(), events.copy()
    for c in ("period_start", "period_end"):
        s[c] = s[c].map(stamp["subs"])
    e["time"] = e["time"].map(stamp["events"])
    s.to_csv(folder / "subscriptions.csv", index=False)
    e.to_csv(folder / "events.csv", index=False)
    (folder / "churnwatch.yaml").write_text(
        "data: .\ncolumn_mapping:\n"
        "  subscriptions: {customer: account_id, period_start: start_date, period_end: end_date, amount_paid: mrr}\n"
        "  events: {customer_id: account_id, time: occurred_at, event: event_type}\n")


def _snapshots(home) -> pd.DataFrame:
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        return con.sql("SELECT * FROM snapshots ORDER BY account_id, as_of").df()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("epoch")
    subs, events = _export()
    layouts = {
        "iso": {"subs": lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "events": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"},
        "epoch": {"subs": lambda t: int(t.timestamp()), "events": lambda t: int(t.timestamp() * 1000)},
        "epoch_fraction": {"subs": lambda t: f"{t.timestamp():.1f}", "events": lambda t: int(t.timestamp() * 1000)},
    }
    out = {}
    for name, stamp in layouts.items():
        _write(work / name, subs, events, stamp)
        out[name] = run_cli("features", "--config", work / name / "churnwatch.yaml", home=work / f"home-{name}")
        out[name].home = work / f"home-{name}"
    return out


def test_epoch_columns_are_read(built):
    for name in ("epoch", "epoch_fraction"):
        r = built[name]
        assert r.returncode == 0, r.stderr[-800:]
        assert "not of type" not in r.stderr


def test_epoch_gives_the_same_snapshots_as_iso(built):
    assert built["iso"].returncode == 0, built["iso"].stderr[-800:]
    iso = _snapshots(built["iso"].home)
    assert len(iso) > 100 and iso["churn_label"].sum() > 0
    for name in ("epoch", "epoch_fraction"):
        pd.testing.assert_frame_equal(_snapshots(built[name].home), iso)


def test_a_stray_text_value_in_an_epoch_column_is_still_named(tmp_path):
    subs, events = _export(n=8)
    e = events.copy()
    _write(tmp_path / "d", subs, e, {"subs": lambda t: int(t.timestamp()),
                                     "events": lambda t: int(t.timestamp() * 1000)})
    ev = pd.read_csv(tmp_path / "d" / "events.csv", dtype=str)
    ev.loc[len(ev) - 1, "time"] = "yesterday"  # after the sample that decides the unit
    ev.to_csv(tmp_path / "d" / "events.csv", index=False)
    r = run_cli("features", "--config", tmp_path / "d" / "churnwatch.yaml", home=tmp_path / "h")
    assert r.returncode == 2
    assert "events.occurred_at: 1 value(s) are not of type timestamp" in r.stderr and "yesterday" in r.stderr


def test_epoch_cast_leaves_what_is_not_of_its_unit_null_and_reads_float_milliseconds():
    """A sentinel too large for the unit, or a seconds value in a milliseconds column, is NULL for
    the contract check to name (never a cast error nor a date in 1970); milliseconds written by a
    float column ("1700000000000.0") are read; ``any_moment`` reads ISO, seconds and milliseconds."""
    from features.epoch import any_moment, epoch_cast

    con = duckdb.connect()
    values = ["1700000000000", "1700000000000.0", "99999999999999999", "1700000000", "soon", None]
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    got = [r[0] for r in con.execute(f"SELECT {epoch_cast('v', 'ms', 'TIMESTAMP')} FROM t").fetchall()]
    moment = pd.Timestamp("2023-11-14 22:13:20").to_pydatetime()
    assert got == [moment, moment, None, None, None, None]
    con.execute("CREATE TABLE m (v VARCHAR)")
    con.executemany("INSERT INTO m VALUES (?)", [["1700000000000"], ["1700000000"], ["2023-11-14 22:13:20"], ["x"]])
    got = [r[0] for r in con.execute(f"SELECT {any_moment('v')} FROM m").fetchall()]
    assert got == [moment, moment, moment, None]
