"""A music-streaming subscription log's own columns (members: ``bd`` as age with 0 for unknown and
absurd values, dates as YYYYMMDD integers, a placeholder birth date) reach the snapshots as a user
would want them read (issue 12): an impossible age is missing, not an age of 1,051 or of 0; a
YYYYMMDD number whose name says date is a date ("days since"), not the number 20,150,428; a birth
date of 1900-01-01 is missing, not a 124-year-old customer. The generator's shape is checked too."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from core.settings import ProfileColumn, ProfileSettings
from core.store import connect, read_meta, read_snapshots
from features.pipeline import build_snapshots
from features.profile import age_name
from tests.foreign.inprocess import run_cli, step_ok
from tests.foreign.shapes import STREAMING_MAPPING, streaming_files, streaming_log
from tests.tiny import D, frame, settings, write_tables

AS_OF = [D(2024, 2, 1), D(2024, 6, 1)]
IDS = ["m1", "m2", "m3", "m4", "m5", "m6"]


def _tables(**own) -> dict:
    accounts = frame("accounts", [dict(account_id=a) for a in IDS])
    for name, values in own.items():
        accounts[name] = values
    subs = frame("subscriptions", [dict(account_id=a, start_date=D(2023, 1, 1), end_date=None, mrr=9.0)
                                   for a in IDS])
    events = frame("events", [dict(account_id=a, occurred_at=pd.Timestamp(2024, m, 3), event_type="play",
                                   user_id="u", quantity=1.0) for a in IDS for m in range(1, 7)])
    return {"accounts": accounts, "subscriptions": subs, "events": events}


def _build(tmp_path, fmt="csv", **kw):
    tables = _tables(**kw.pop("own"))
    data = write_tables(tmp_path / "data", tables, fmt=fmt)
    store = tmp_path / "s.duckdb"
    build_snapshots(data, settings(data_end=D(2024, 7, 1), **kw), store, as_of=AS_OF)
    snaps = read_snapshots(store).set_index(["account_id", "as_of"]).sort_index()
    with connect(store, read_only=True) as con:
        plan = read_meta(con).profile
    return snaps, {c["column"]: c for c in plan["used"]}


def _at(snaps, column, day=AS_OF[1]):
    return [snaps.loc[(a, pd.Timestamp(day)), column] for a in IDS]


def test_an_age_outside_1_to_120_is_missing_and_the_note_says_how_many(tmp_path):
    snaps, used = _build(tmp_path, own={"bd": [0, 34, -7, 1051, 27, 0]})
    got = _at(snaps, "bd")
    assert got[1] == 34 and got[4] == 27
    assert all(pd.isna(got[i]) for i in (0, 2, 3, 5)), got
    assert "4 of 6 values outside 1..120 (an age) read as missing: -7, 0, 1051" in used["bd"]["note"]
    # the catalogue carries the bounds: the API refuses bd=1051 rather than scoring what a build reads as missing
    with connect(tmp_path / "s.duckdb", read_only=True) as con:
        spec = next(f for f in json.loads(read_meta(con).catalogue_json)["features"] if f["name"] == "bd")
    assert tuple(spec["valid_range"]) == (1.0, 120.0)


def test_valid_range_bounds_any_number_column(tmp_path):
    cfg = ProfileSettings(columns={"nps": ProfileColumn(valid_range=(0, 10))})
    snaps, used = _build(tmp_path, own={"nps": [9, 11, -1, 0, 10, 99]}, profile=cfg)
    got = _at(snaps, "nps")
    assert [got[0], got[3], got[4]] == [9, 0, 10] and all(pd.isna(got[i]) for i in (1, 2, 5))
    assert "3 of 6 values outside 0..10 (profile.columns valid_range)" in used["nps"]["note"]


@pytest.mark.parametrize(("column", "is_age"), [
    ("bd", True), ("age", True), ("Age", True), ("age_years", True), ("Age (yrs)", True), ("customer_age", True),
    ("CustomerAge", True), ("account_age", False), ("Age (days)", False), ("age_hrs", False),
    ("avg_ticket_age_hrs", False), ("page_age", False), ("mortgage_age", False), ("age_group", False),
    ("bd_amount", False), ("stage", False), ("usage", False)])
def test_only_a_persons_age_in_years_is_named_as_an_age(column, is_age):
    assert age_name(column) is is_age


def test_a_column_named_age_in_days_is_left_alone(tmp_path):
    """Most non-zero values outside 1-120: another unit (an account's age in days), not ages."""
    own = {"age": [0, 30, 400, 1500, 365, 200]}
    snaps, used = _build(tmp_path, own=own)
    assert _at(snaps, "age") == own["age"] and used["age"]["valid"] is None


def test_a_number_not_named_as_an_age_is_left_alone(tmp_path):
    own = {"household_size": [0, 3, 1, 150, 2, 4], "account_age_days": [0, 30, 400, 1500, 2, 9],
           "page_views": [0, 3, 1, 150, 2, 4]}
    snaps, used = _build(tmp_path, own=own)
    for column, values in own.items():
        assert _at(snaps, column) == values and used[column]["valid"] is None, column


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_yyyymmdd_numbers_named_as_dates_are_days_since(tmp_path, fmt):
    ymd = [20150428, 20231201, 20240515, 20200229, 20240701, 19000101]
    snaps, used = _build(tmp_path, fmt=fmt, own={"registration_init_time": ymd})
    col = used["registration_init_time"]
    assert col["kind"] == "date" and col["ymd"] and "YYYYMMDD" in col["note"]
    t = pd.Timestamp(AS_OF[1])
    got = _at(snaps, "registration_init_time")
    assert got[0] == (t - pd.Timestamp(2015, 4, 28)).days
    assert got[1] == (t - pd.Timestamp(2023, 12, 1)).days
    assert got[3] == (t - pd.Timestamp(2020, 2, 29)).days
    assert pd.isna(got[4])  # after the as-of date: not known yet
    assert pd.isna(got[5])  # 1900-01-01: a placeholder, not a date
    assert pd.isna(_at(snaps, "registration_init_time", AS_OF[0])[2])  # 2024-05-15 after 2024-02-01


def test_yyyymmdd_values_without_a_date_name_stay_numbers_and_say_why(tmp_path):
    snaps, used = _build(tmp_path, own={"member_code": [20150428, 20231201, 20240515, 20200229, 20240701,
                                                        20100101]})
    col = used["member_code"]
    assert col["kind"] == "number" and "look like YYYYMMDD dates but its name does not say date" in col["note"]


def test_a_date_name_with_values_that_are_not_all_yyyymmdd_stays_a_number(tmp_path):
    snaps, used = _build(tmp_path, own={"signup_date": [20150428, 20231301, 20240515, 20200229, 20240701,
                                                        20100101]})  # month 13
    col = used["signup_date"]
    assert col["kind"] == "number" and "only 5 of 6 values are YYYYMMDD dates" in col["note"]


def test_a_placeholder_birth_date_is_missing(tmp_path):
    dob = ["1990-05-01", "1900-01-01", "0001-01-01", "1985-12-31", "", "2001-07-15"]
    snaps, used = _build(tmp_path, own={"date_of_birth": dob})
    got = _at(snaps, "date_of_birth")
    assert got[0] == (pd.Timestamp(AS_OF[1]) - pd.Timestamp(1990, 5, 1)).days
    assert all(pd.isna(got[i]) for i in (1, 2, 4)), got


def test_the_streaming_generator_has_the_public_logs_shape():
    log = streaming_log(n=150, months=6, seed=2)
    assert list(log["members"].columns) == ["msno", "city", "bd", "gender", "registered_via",
                                            "registration_init_time"]
    assert {"payment_plan_days", "plan_list_price", "actual_amount_paid", "is_auto_renew", "is_cancel"} \
        <= set(log["transactions"].columns)
    assert {"num_25", "num_100", "num_unq", "total_secs"} <= set(log["user_logs"].columns)
    for table, column in (("members", "registration_init_time"), ("transactions", "transaction_date"),
                          ("user_logs", "date")):
        v = log[table][column]
        assert v.dtype.kind == "i" and v.between(19000101, 20991231).all()
    bd = log["members"]["bd"]
    assert (bd == 0).mean() > 0.2 and ((bd < 0) | (bd > 120)).any()
    files = streaming_files(log)
    assert set(files) == {"accounts", "subscriptions", "events"} and "event_type" in files["events"]
    assert set(STREAMING_MAPPING) == set(files)


def _readme_streaming_yaml() -> dict:
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("#### A subscription log with daily usage counts")[1].split("\n#### ")[0]
    return yaml.safe_load(section.split("```yaml\n")[1].split("```")[0])


def test_the_readme_mapping_is_the_one_tested_and_valid():
    cfg = _readme_streaming_yaml()
    assert cfg["column_mapping"] == STREAMING_MAPPING
    s = settings(**cfg)
    assert s.profile.columns["city"].kind == "category"
    assert s.profile.columns["subscriptions.is_auto_renew"].kind == "number"  # per payment: added back by name


@pytest.fixture(scope="module")
def streaming_path(tmp_path_factory):
    """features -> train -> promote -> score -> explain -> report on a 600-member log laid out and
    configured as the README's section says, its dates as the export writes them (YYYYMMDD numbers)."""
    work = tmp_path_factory.mktemp("streaming")
    data, home = work / "data", work / "home"
    data.mkdir()
    for name, df in streaming_files(streaming_log(n=600, seed=1)).items():
        df.to_csv(data / f"{name}.csv", index=False)
    home.mkdir()
    (home / "churnwatch.yaml").write_text(yaml.safe_dump({"data": str(data), **_readme_streaming_yaml()}))
    steps = {"features": run_cli("features", home=home)}
    steps["train"] = run_cli("train", home=home)
    if steps["train"].returncode == 0:
        steps["promote"] = run_cli("promote", home=home)
        steps["score"] = run_cli("score", home=home)
        if steps["score"].returncode == 0:
            with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
                top = con.execute("SELECT account_id FROM score_history ORDER BY churn_probability DESC").fetchone()[0]
            steps["explain"] = run_cli("explain", top, home=home)
            steps["report"] = run_cli("report", "--out", work / "report.html", home=home)
    return {"home": home, "steps": steps}


@pytest.mark.slow
def test_the_streaming_log_runs_the_whole_path(streaming_path):
    for step in ("features", "train", "promote", "score", "explain", "report"):
        step_ok(streaming_path, step)
    out = " ".join(streaming_path["steps"]["features"].stdout.split())
    assert "accounts.bd -> bd (number; " in out and "(an age) read as missing" in out
    assert "accounts.city -> city (category" in out
    assert "subscriptions.is_auto_renew -> is_auto_renew (number" in out  # a renewal setting, dated per payment here
    with duckdb.connect(str(streaming_path["home"] / "store.duckdb"), read_only=True) as con:
        p = con.sql("SELECT churn_probability FROM score_history").df()["churn_probability"]
        ages = con.execute("SELECT min(bd), max(bd) FROM snapshots").fetchone()
        columns = [r[0] for r in con.execute("DESCRIBE snapshots").fetchall()]
        plan = [c for c in columns if "payment_plan_days" in c]
        # a term's own columns dated by the YYYYMMDD start the contract reads (were null for every account)
        filled = con.execute(f'SELECT count("{plan[0]}") / count(*) FROM snapshots').fetchone()[0] if plan else 0
    assert len(p) > 300 and p.between(0, 1, inclusive="neither").all()
    assert 1 <= ages[0] and ages[1] <= 120
    assert plan and filled > 0.9, (plan, filled)


def test_a_configured_kind_is_kept_when_some_dates_are_built_into_the_store(tmp_path):
    """`score` builds its date into the stored snapshots (add_new=False): a column whose kind the
    config sets (a numeric city code as a category) was left out there ("the store's snapshots have
    different columns than this build ... missing from this build: city")."""
    data = write_tables(tmp_path / "data", _tables(city=[1, 4, 5, 1, 13, 4]), fmt="csv")
    cfg = settings(data_end=D(2024, 7, 1), profile=ProfileSettings(columns={"city": ProfileColumn(kind="category")}))
    store = tmp_path / "s.duckdb"
    build_snapshots(data, cfg, store)
    build_snapshots(data, cfg, store, as_of=[D(2024, 6, 20)])
    snaps = read_snapshots(store)
    day = snaps[snaps.as_of == pd.Timestamp(2024, 6, 20)].set_index("account_id")
    assert list(day.loc[IDS, "city"]) == ["1", "4", "5", "1", "13", "4"]


def test_an_age_bound_is_kept_when_some_dates_are_built_into_the_store(tmp_path):
    """The bounds depend on the values (``AGE_SHARE``): a later build of a few dates (what `score`
    does) reads the column as the store's plan decided, not as its own values alone would."""
    cfg = settings(data_end=D(2024, 7, 1))
    store = tmp_path / "s.duckdb"
    build_snapshots(write_tables(tmp_path / "a", _tables(bd=[0, 34, -7, 1051, 27, 0]), fmt="csv"), cfg, store)
    later = write_tables(tmp_path / "b", _tables(bd=[0, 500, 600, 700, 27, 0]), fmt="csv")
    build_snapshots(later, cfg, store, as_of=[D(2024, 6, 20)])
    day = read_snapshots(store).query("as_of == '2024-06-20'").set_index("account_id")
    assert pd.isna(day.loc["m2", "bd"]) and day.loc["m5", "bd"] == 27


@pytest.mark.slow
def test_ages_yyyymmdd_and_placeholder_dates_build_the_same_on_spark(tmp_path):
    """The profile stage's SQL runs on Spark too (translated): bounds, YYYYMMDD and the placeholder
    cut give the snapshots DuckDB gives."""
    pytest.importorskip("pyspark")
    tables = _tables(bd=[0, 34, -7, 1051, 27, 0],
                     registration_init_time=[20150428, 20231201, 20240515, 20200229, 20240701, 19000101],
                     date_of_birth=["1990-05-01", "1900-01-01", "0001-01-01", "1985-12-31", "", "2001-07-15"])
    data = write_tables(tmp_path / "data", tables, fmt="csv")
    s = settings(data_end=D(2024, 7, 1))
    build_snapshots(data, s, tmp_path / "duck.duckdb", as_of=AS_OF)
    build_snapshots(data, s, tmp_path / "spark.duckdb", as_of=AS_OF, engine="spark", master="local[1]")
    cols = ["account_id", "as_of", "bd", "registration_init_time", "date_of_birth"]
    a, b = (read_snapshots(tmp_path / f"{e}.duckdb")[cols].sort_values(["account_id", "as_of"])
            .reset_index(drop=True).astype({"bd": "float64", "registration_init_time": "float64",
                                            "date_of_birth": "float64"}) for e in ("duck", "spark"))
    assert a["bd"].notna().sum() == 4 and a["registration_init_time"].notna().sum() == 7
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
