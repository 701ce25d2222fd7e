"""Dates in a flat table (``train --table``): "days since" the table's as-of date (issue 12, items 2 and 7).

Tables are built in code around today's date (the as-of date a table finds by itself is its latest
date not after today), a few hundred rows; the CLI tests run the real entry point with a temp home.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from core.settings import ProfileColumn, ProfileSettings
from training.own_table import TableError, describe_table, load_own_table, read_scoring_table
from training.reason_text import NO_REFERENCES, References, Row, word
from training.table_dates import DateReading, NoReferenceError, past_looking, read_dates, reference_day

TODAY = dt.date.today()
AS_OF = TODAY - dt.timedelta(days=10)


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


def dated_table(rows: int = 400, seed: int = 3, as_of: dt.date = AS_OF) -> pd.DataFrame:
    """Customers whose churn follows the days since their latest login (and a little their tenure);
    every date is written relative to ``as_of``, the latest ``login_day``; contract ends lie after today."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(30, 900, rows)
    idle = rng.exponential(20, rows).round().astype(int)
    idle[0] = 0  # the latest login is the as-of day
    churn = rng.random(rows) < 1 / (1 + np.exp(-(-1.2 + 0.08 * (idle - 20) - 0.002 * (tenure - 400))))
    day = pd.Timestamp(as_of)
    return pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(rows)],
        "plan": rng.choice(["basic", "pro"], rows),
        "seats": rng.integers(1, 20, rows),
        "signup_date": (day - pd.to_timedelta(tenure, unit="D")).strftime("%Y-%m-%d %H:%M"),
        "login_day": (day - pd.to_timedelta(idle, unit="D")).strftime("%Y-%m-%d"),
        "contract_end": (day + pd.to_timedelta(rng.integers(20, 300, rows), unit="D")).strftime("%Y-%m-%d"),
        "churned": np.where(churn, "yes", "no"),
    })


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "t.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_text_dates_become_days_since_the_latest_date_not_after_today(tmp_path):
    frame = dated_table()
    table = load_own_table(write(tmp_path, frame), label="churned", id_col="customer_id")
    report = table.report
    assert report["date_columns"] == ["signup_date", "login_day", "contract_end"]
    assert report["as_of"] == AS_OF.isoformat() and "column 'login_day'" in report["as_of_source"]
    assert "signup_date" not in report["categorical_columns"] + report["dropped_free_text"]
    expected = (pd.Timestamp(AS_OF) - pd.to_datetime(frame["login_day"])).dt.days.to_numpy(dtype=float)
    np.testing.assert_array_equal(table.frame["login_day"].to_numpy(), expected)
    assert (table.frame["contract_end"] < 0).all()  # a contract that ends later: negative days
    assert table.frame["signup_date"].min() >= 30  # "2025-01-05 00:00" reads as that day
    spec = table.catalogue["contract_end"]
    assert spec.unit == "days" and spec.params["kind"] == "date" and spec.params["read"] == "text"
    lines = " ".join(describe_table(report))
    assert "3 dates (signup_date, login_day, contract_end)" in lines
    assert f"days since {AS_OF.isoformat()}, the as-of date (the table's latest date on or before today" in lines


def test_a_latest_date_is_left_out_unless_profile_columns_keeps_it(tmp_path):
    """Two probes' CRM exports (a bank's, p46's broadband provider's): `Last Contact Date` is, for a customer who
    left, the day they called to cancel. It passed the leakage guard (0.54 alone in p46, no one-sided cliff) and
    lifted the test ROC-AUC above what the generating mechanism allows (0.861 vs 0.822). A date whose name says
    last or latest is left out, said with the way to keep it; the as-of date then comes from the other dates."""
    frame = dated_table().rename(columns={"login_day": "Last Contact Date"})
    path = write(tmp_path, frame)
    table = load_own_table(path, "churned", "customer_id")
    assert "Last Contact Date" not in table.frame.columns and table.report["date_columns"] == ["signup_date",
                                                                                               "contract_end"]
    why = table.report["dropped_name"]["Last Contact Date"]
    assert why.startswith("a latest date (its name says last or latest): for a customer who left it is often")
    assert why.endswith("add it under profile.columns if the table describes each customer before the outcome")
    assert "column 'signup_date'" in table.report["as_of_source"]
    assert f"Last Contact Date ({why})" in " ".join(describe_table(table.report))
    kept = load_own_table(path, "churned", "customer_id",
                          profile=ProfileSettings(columns={"Last Contact Date": ProfileColumn()}))
    assert kept.report["date_columns"] == ["signup_date", "Last Contact Date", "contract_end"]
    assert "Last Contact Date" not in kept.report["dropped_name"]
    assert "column 'Last Contact Date'" in kept.report["as_of_source"]


def test_as_of_given_wins_and_is_reported(tmp_path):
    table = load_own_table(write(tmp_path, dated_table()), "churned", "customer_id",
                           as_of=AS_OF + dt.timedelta(days=5))
    assert table.report["as_of"] == (AS_OF + dt.timedelta(days=5)).isoformat()
    assert table.report["as_of_source"] == "--as-of"
    assert table.frame["login_day"].min() == 5


def test_the_as_of_date_comes_from_past_looking_columns_only():
    today = dt.date(2026, 6, 1)
    last = pd.to_datetime(pd.Series(["2026-01-01", "2026-03-01", "2026-03-02", "2026-02-01"]))
    ahead = pd.to_datetime(pd.Series(["2026-02-01", "2026-05-20", "2027-05-01", "2026-09-01"]))  # spans today
    typo = pd.to_datetime(pd.Series(["2026-01-01"] * 10 + ["2062-03-01"]))  # one typo in eleven
    assert past_looking({"last": last, "ahead": ahead, "typo": typo}, today) == ["last", "typo"]
    day, source = reference_day({"last": last, "ahead": ahead}, None, today=today)
    assert day == dt.date(2026, 3, 2) and "column 'last'" in source
    with pytest.raises(NoReferenceError, match=r"column\(s\) ahead look ahead.*--as-of YYYY-MM-DD"):
        reference_day({"ahead": ahead}, None, today=today)
    assert reference_day({"ahead": ahead}, dt.date(2026, 3, 1), today=today) == (dt.date(2026, 3, 1), "--as-of")
    with pytest.raises(NoReferenceError, match=r"no date of the column\(s\) last is on or before today"):
        reference_day({"last": last}, None, today=dt.date(2025, 6, 1), past=["last"])  # as kept at training


def test_a_contract_end_spanning_today_does_not_move_the_as_of_date(tmp_path):
    export = TODAY - dt.timedelta(days=150)  # an old export: its contract ends lie before and after today
    frame = dated_table(rows=200, as_of=export)
    rng = np.random.default_rng(5)
    frame["contract_end"] = (pd.Timestamp(export) + pd.to_timedelta(rng.integers(-30, 300, 200), unit="D")
                             ).strftime("%Y-%m-%d")
    trained = load_own_table(write(tmp_path, frame), "churned", "customer_id")
    assert trained.report["as_of"] == export.isoformat() and "column 'login_day'" in trained.report["as_of_source"]
    assert trained.report["as_of_columns"] == ["signup_date", "login_day"]
    assert trained.catalogue["contract_end"].params["as_of_column"] == "no"
    later = frame.drop(columns=["churned"])  # the same customers exported 31 days later
    for name in ("signup_date", "login_day", "contract_end"):
        later[name] = (pd.to_datetime(later[name]) + pd.Timedelta(days=31)).dt.strftime("%Y-%m-%d")
    read = read_scoring_table(write(tmp_path, later, "later.csv"), "customer_id", trained.catalogue)
    assert read.as_of == export + dt.timedelta(days=31)
    for name in ("signup_date", "login_day", "contract_end"):
        np.testing.assert_array_equal(read.rows[name].to_numpy(), trained.frame[name].to_numpy())


def test_only_forward_looking_dates_need_as_of(tmp_path):
    frame = dated_table(rows=100).drop(columns=["signup_date", "login_day"])
    path = write(tmp_path, frame)
    with pytest.raises(TableError, match=r"column\(s\) contract_end look ahead.*--as-of"):
        load_own_table(path, "churned", "customer_id")
    trained = load_own_table(path, "churned", "customer_id", as_of=AS_OF)
    assert trained.report["as_of_columns"] == []
    with pytest.raises(TableError, match=r"contract_end look ahead.*--as-of"):
        read_scoring_table(path, "customer_id", trained.catalogue)
    read = read_scoring_table(path, "customer_id", trained.catalogue, as_of=AS_OF)
    np.testing.assert_array_equal(read.rows["contract_end"].to_numpy(), trained.frame["contract_end"].to_numpy())


def test_unreadable_dates_are_listed_as_unused_with_the_reason(tmp_path):
    frame = dated_table(rows=100)
    frame["renewal_date"] = [f"2026-13-{d:02d}" for d in range(1, 29)] * 3 + ["2026-02-30"] * 16
    table = load_own_table(write(tmp_path, frame), "churned", "customer_id")
    reason = table.report["dropped_unreadable_dates"]["renewal_date"]
    assert reason.startswith("dates that do not read: 0 of 100 values are ISO or YYYYMMDD dates (95% needed)")
    assert "'2026-13-01'" in reason
    assert "renewal_date" not in table.frame.columns and "renewal_date" not in table.report["categorical_columns"]
    assert "renewal_date (dates that do not read: 0 of 100" in " ".join(describe_table(table.report))


def test_month_name_and_year_first_slash_dates_are_never_categories_and_say_which_format_reads_them(tmp_path):
    frame = dated_table(rows=100)
    stamps = pd.to_datetime(frame["login_day"])
    frame["seen"] = stamps.dt.strftime("%b %d, %Y")  # 'Jun 12, 2026'
    frame["paid_on"] = stamps.dt.strftime("%d %B %Y")  # '12 June 2026'
    frame["renewed_on"] = stamps.dt.strftime("%Y/%m/%d")  # '2026/06/12'
    frame["plan_month"] = np.where(np.arange(100) % 2 == 0, "Jun 2026", "May 2026")  # no day: a category
    path = write(tmp_path, frame)
    table = load_own_table(path, "churned", "customer_id")
    unused = table.report["dropped_unreadable_dates"]
    assert set(unused) == {"seen", "paid_on", "renewed_on"}
    assert unused["seen"].endswith(f"declare date_format: '%b %d, %Y' in churnwatch.yaml (it reads "
                                   f"{frame['seen'].iloc[0]!r}; one format for the table's text dates, ISO is always "
                                   "read) and train again")
    assert "declare date_format: '%d %B %Y'" in unused["paid_on"]
    assert "declare date_format: '%Y/%m/%d'" in unused["renewed_on"]
    assert table.report["categorical_columns"] == ["plan", "plan_month"]
    declared = load_own_table(path, "churned", "customer_id", date_format="%b %d, %Y")
    assert "seen" in declared.report["date_columns"] and "seen" not in declared.report["dropped_unreadable_dates"]
    np.testing.assert_array_equal(declared.frame["seen"].to_numpy(), declared.frame["login_day"].to_numpy())


def test_a_few_bad_values_are_missing_and_counted(tmp_path):
    frame = dated_table(rows=100)
    frame.loc[[3, 7], "signup_date"] = ["soon", "1900-01-01"]  # text and a placeholder date
    table = load_own_table(write(tmp_path, frame), "churned", "customer_id")
    assert table.frame["signup_date"].isna().sum() == 2 and "signup_date" in table.report["date_columns"]
    assert table.report["date_unread"]["signup_date"] == {"count": 2, "examples": ["soon", "1900-01-01"]}


def test_day_month_dates_are_refused_without_a_format_and_read_with_one(tmp_path):
    frame = dated_table(rows=100)
    frame["signup_date"] = pd.to_datetime(frame["signup_date"]).dt.strftime("%d/%m/%Y")
    path = write(tmp_path, frame)
    days_above_12 = int((pd.to_datetime(frame["signup_date"], format="%d/%m/%Y").dt.day > 12).sum())
    with pytest.raises(TableError, match=rf"column 'signup_date': its values are dates written day first \('[0-9/]+': "
                                         rf"{days_above_12} values have a day above 12 in first place\); declare it "
                                         r"in churnwatch.yaml, date_format: '%d/%m/%Y'"):
        load_own_table(path, "churned", "customer_id")
    # dotted (a German export: probe p30 was told '%d/%m/%Y', which reads none of them)
    dotted = frame.assign(signup_date=frame["signup_date"].str.replace("/", ".", regex=False))
    with pytest.raises(TableError, match=r"date_format: '%d.%m.%Y', and train again"):
        load_own_table(write(tmp_path, dotted, "dotted.csv"), "churned", "customer_id")
    # every day 12 or below: either order could be meant, both formats offered
    early = frame.assign(signup_date=[f"{1 + i % 12:02d}/{1 + i % 7:02d}/2024" for i in range(len(frame))])
    with pytest.raises(TableError, match=r"does not guess which; declare the format in churnwatch.yaml, date_format: "
                                         r"'%d/%m/%Y' \(5/3/2024 is 5 March\) or '%m/%d/%Y'"):
        load_own_table(write(tmp_path, early, "early.csv"), "churned", "customer_id")
    table = load_own_table(path, "churned", "customer_id", date_format="%d/%m/%Y")
    expected = (pd.Timestamp(AS_OF) - pd.to_datetime(frame["signup_date"], format="%d/%m/%Y")).dt.days
    np.testing.assert_array_equal(table.frame["signup_date"].to_numpy(), expected.to_numpy(dtype=float))
    assert table.catalogue["signup_date"].params["format"] == "%d/%m/%Y"


def test_numbers_are_dates_only_when_the_name_and_every_value_say_so(tmp_path):
    frame = dated_table(rows=100)
    stamps = pd.to_datetime(frame["login_day"])
    frame["first_purchase_date"] = stamps.dt.strftime("%Y%m%d").astype(int)  # YYYYMMDD
    frame["created_at"] = (stamps - pd.Timestamp("1970-01-01")).dt.total_seconds().astype("int64")  # epoch s
    frame["order_total"] = stamps.dt.strftime("%Y%m%d").astype(int)  # looks like dates; its name does not say so
    table = load_own_table(write(tmp_path, frame), "churned", "customer_id")
    for name, how in (("first_purchase_date", "yyyymmdd"), ("created_at", "epoch")):
        assert table.catalogue[name].params["read"] == how
        np.testing.assert_array_equal(table.frame[name].to_numpy(), table.frame["login_day"].to_numpy())
    assert "order_total" in table.report["numeric_columns"] and table.frame["order_total"].min() > 1e7


def test_parquet_date_columns_are_used(tmp_path):
    frame = dated_table(rows=100)
    frame["login_day"] = pd.to_datetime(frame["login_day"]).dt.tz_localize("UTC")
    frame["signup_date"] = pd.to_datetime(frame["signup_date"]).dt.date  # pyarrow date32
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    table = load_own_table(path, "churned", "customer_id")
    assert table.report["dropped_unsupported"] == {}
    assert table.report["date_readings"]["login_day"] == "typed as dates by the file"
    assert table.frame["login_day"].min() == 0 and table.frame["signup_date"].min() >= 30


def test_one_moment_is_one_day_in_a_parquet_and_a_csv_export(tmp_path):
    frame = dated_table(rows=100)
    wall = pd.to_datetime(frame["login_day"]) + pd.Timedelta(hours=23, minutes=30)  # 23:30 at UTC-5: next day in UTC
    frame["login_day"] = wall.dt.strftime("%Y-%m-%dT%H:%M:%S") + "-05:00"
    given = AS_OF + dt.timedelta(days=5)
    from_csv = load_own_table(write(tmp_path, frame), "churned", "customer_id", as_of=given)
    frame["login_day"] = wall.dt.tz_localize("Etc/GMT+5")  # the same moments, typed with their zone
    frame.to_parquet(tmp_path / "t.parquet")
    from_parquet = load_own_table(tmp_path / "t.parquet", "churned", "customer_id", as_of=given)
    utc_day = (wall + pd.Timedelta(days=1)).dt.normalize()
    expected = (pd.Timestamp(given) - utc_day).dt.days.to_numpy(dtype=float)
    np.testing.assert_array_equal(from_csv.frame["login_day"].to_numpy(), expected)
    np.testing.assert_array_equal(from_parquet.frame["login_day"].to_numpy(), expected)
    naive = pd.Series(["2026-06-30T23:30:00", "2026-06-30T23:30:00Z", "2026-07-01T02:00:00+03:00"])
    days = read_dates(naive, DateReading("text"))  # no zone: the file's clock; Z and +03:00: UTC
    assert days.dt.strftime("%Y-%m-%d").tolist() == ["2026-06-30", "2026-06-30", "2026-06-30"]


def test_a_table_scored_later_counts_to_its_own_as_of(tmp_path):
    trained = load_own_table(write(tmp_path, dated_table(rows=100)), "churned", "customer_id")
    later = dated_table(rows=100, as_of=AS_OF + dt.timedelta(days=7)).drop(columns=["churned"])
    path = write(tmp_path, later, "later.csv")
    read = read_scoring_table(path, "customer_id", trained.catalogue)
    assert read.as_of == AS_OF + dt.timedelta(days=7) and "column 'login_day'" in read.as_of_source
    for name in ("signup_date", "login_day", "contract_end"):  # the same customers, the same distances
        np.testing.assert_array_equal(read.rows[name].to_numpy(), trained.frame[name].to_numpy())
    given = read_scoring_table(path, "customer_id", trained.catalogue, as_of=AS_OF + dt.timedelta(days=10))
    assert given.as_of_source == "--as-of"
    np.testing.assert_array_equal(given.rows["login_day"].to_numpy(), trained.frame["login_day"].to_numpy() + 3)


def test_scoring_dates_that_do_not_read_as_trained_stop_or_warn(tmp_path, caplog):
    trained = load_own_table(write(tmp_path, dated_table(rows=100)), "churned", "customer_id")
    us = dated_table(rows=100).drop(columns=["churned"])
    us["login_day"] = pd.to_datetime(us["login_day"]).dt.strftime("%m/%d/%Y")  # trained on ISO
    with pytest.raises(TableError, match=r"column 'login_day': 100 of 100 non-blank values do not read as dates "
                                         r"the way the model was trained \(ISO or YYYYMMDD text; 95% must read\)"):
        read_scoring_table(write(tmp_path, us, "us.csv"), "customer_id", trained.catalogue)
    few = dated_table(rows=100).drop(columns=["churned"])
    few.loc[[4, 9], "login_day"] = ["soon", "03/05/2026"]
    few.loc[11, "login_day"] = ""  # a blank is missing, not unread
    with caplog.at_level("WARNING", logger="training.own_table"):
        read = read_scoring_table(write(tmp_path, few, "few.csv"), "customer_id", trained.catalogue)
    assert read.rows["login_day"].isna().sum() == 3
    assert "column 'login_day': 2 value(s) not dates, read as missing, e.g. ['soon', '03/05/2026']" in caplog.text


def test_a_date_is_worded_as_days_ago_or_to_come_in_both_languages(tmp_path):
    table = load_own_table(write(tmp_path, dated_table(rows=100)), "churned", "customer_id")
    spec = table.catalogue["contract_end"]
    row = Row({})
    assert word(spec, -30.0, 1, row, NO_REFERENCES, "en") == "contract_end: in 30 days"
    assert word(spec, -30.0, 1, row, NO_REFERENCES, "zh-CN") == "contract_end：30天后"
    assert word(spec, 45.0, 1, row, NO_REFERENCES, "en") == "contract_end: 45 days ago"
    assert word(spec, 45.0, 1, row, NO_REFERENCES, "zh-CN") == "contract_end：45天前"
    refs = References(typical={"contract_end": -900.0}, category_churn={}, overall_churn=0.2)
    assert word(spec, -10.0, 1, row, refs, "en") == (
        "contract_end: in 10 days (typical of those who stayed: in 2.5 years)")
    assert word(spec, -10.0, 1, row, refs, "zh-CN") == "contract_end：10天后（未流失客户典型值：2.5年后）"


def test_a_date_reading_round_trips_through_its_params():
    reading = DateReading("epoch", unit="ms")
    assert DateReading.from_params(reading.params()) == reading


def test_a_date_column_reaches_the_model_and_the_reasons_and_a_later_table_scores_as_of_its_own_date(tmp_path, cli):
    home = tmp_path / "home"
    path = write(tmp_path, dated_table(rows=500))
    trained = cli(home, "train", "--table", str(path), "--label", "churned", "--id", "customer_id")
    assert trained.returncode == 0, trained.stderr
    err = flat(trained.stderr)
    assert f"days since {AS_OF.isoformat()}, the as-of date" in err and "login_day (ISO or YYYYMMDD text)" in err
    out = flat(trained.stdout)
    assert "test rows" in out and "customers" in out and "out-of-time" not in out
    run = MlflowClient(f"sqlite:///{home / 'mlflow.db'}").get_model_version("churnwatch", "1").run_id
    params = MlflowClient(f"sqlite:///{home / 'mlflow.db'}").get_run(run).data.params
    assert params["as_of"] == AS_OF.isoformat() and "in column 'login_day'" in params["as_of_source"]
    assert cli(home, "promote").returncode == 0

    later = dated_table(rows=500, as_of=AS_OF + dt.timedelta(days=7)).drop(columns=["churned"])
    scored = cli(home, "score", "--table", str(write(tmp_path, later, "later.csv")))
    assert scored.returncode == 0, scored.stderr
    day = (AS_OF + dt.timedelta(days=7)).isoformat()
    assert f"scored as of {day} (the table's latest date on or before today" in flat(scored.stdout)
    assert "in column 'login_day'" in flat(scored.stdout)  # which of the fallbacks applied, not both
    # a conditional, not a statement that it was scored again
    assert (f"note: if this export is scored again with --as-of, these scores of {day} stay in the score history "
            "beside that day's, and a tier move between the two (a day more of counting) raises an alert: give --as-of "
            "on the first run of each export") in flat(scored.stdout)
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        history = con.execute("SELECT account_id, as_of, reasons_en, reasons_zh FROM score_history").df()
    assert history["as_of"].astype(str).eq(day).all() and len(history) == 500
    reasons = [r for cell in history["reasons_en"] for r in json.loads(cell)]
    texts = " | ".join(str(r.get("text", r)) for r in reasons)
    assert "login_day: " in texts and " days ago" in texts
    zh = " | ".join(str(r) for cell in history["reasons_zh"] for r in json.loads(cell))
    assert "login_day：" in zh and "天前" in zh

    # a table whose latest past date is before the training table's: its export day is not known (a probe's
    # file of new customers read as of its latest sign-up, a month early); given with --as-of it scores
    earlier = dated_table(rows=500, as_of=AS_OF - dt.timedelta(days=7)).drop(columns=["churned"])
    early = cli(home, "score", "--table", str(write(tmp_path, earlier, "earlier.csv")))
    assert early.returncode == 2 and "Traceback" not in early.stderr
    assert (f"the table's as-of date would be {AS_OF - dt.timedelta(days=7)} (the table's latest date on or before "
            f"today") in flat(early.stderr)
    assert f"before the training table's, {AS_OF}" in flat(early.stderr) and "--as-of YYYY-MM-DD" in flat(early.stderr)
    given = cli(home, "score", "--table", str(tmp_path / "earlier.csv"), "--as-of", day)
    assert given.returncode == 0 and f"scored as of {day} (--as-of)" in flat(given.stdout)

    later["login_day"] = pd.to_datetime(later["login_day"]).dt.strftime("%m/%d/%Y")  # trained on ISO text
    refused = cli(home, "score", "--table", str(write(tmp_path, later, "later_us.csv")))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "column 'login_day': 500 of 500 non-blank values do not read as dates" in flat(refused.stderr)


def test_a_cancellation_date_is_refused_as_leaky(tmp_path, cli):
    frame = dated_table(rows=500)
    churned = frame["churned"] == "yes"
    frame["cancelled_at"] = np.where(churned, frame["login_day"], "")
    home = tmp_path / "home"
    refused = cli(home, "train", "--table", str(write(tmp_path, frame)), "--label", "churned", "--id", "customer_id")
    assert refused.returncode == 2
    message = flat(refused.stderr)
    assert "label leakage suspected, nothing registered: feature 'cancelled_at'" in message
    assert "--allow-leaky-feature cancelled_at" in message and "Traceback" not in message


def test_day_month_dates_from_the_cli_stop_naming_the_column_then_train_with_the_configured_format(tmp_path, cli):
    frame = dated_table(rows=500)
    frame["signup_date"] = pd.to_datetime(frame["signup_date"]).dt.strftime("%d/%m/%Y")
    args = ("train", "--table", str(write(tmp_path, frame)), "--label", "churned", "--id", "customer_id")
    refused = cli(tmp_path / "home", *args)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "column 'signup_date'" in flat(refused.stderr) and "date_format: '%d/%m/%Y'" in flat(refused.stderr)
    config = tmp_path / "churnwatch.yaml"
    config.write_text("date_format: '%d/%m/%Y'\n", encoding="utf-8")
    trained = cli(tmp_path / "home", *args, "--config", str(config))
    assert trained.returncode == 0, trained.stderr
    assert "signup_date (text read with date_format '%d/%m/%Y' (or ISO))" in flat(trained.stderr)


def test_the_format_error_of_train_says_which_churnwatch_yaml_it_reads(tmp_path, run_cli, monkeypatch):
    """Probe p37 put churnwatch.yaml in the current folder, which `train` does not read, and got the same error
    again: the error names the file it reads, and that one in the current folder is not."""
    frame = dated_table(rows=100)
    frame["signup_date"] = pd.to_datetime(frame["signup_date"]).dt.strftime("%d/%m/%Y")
    path = write(tmp_path, frame)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "churnwatch.yaml").write_text("date_format: '%d/%m/%Y'\n", encoding="utf-8")
    home = tmp_path / "home"
    said = run_cli("train", "--table", path, "--label", "churned", "--id", "customer_id", "--home", home)
    text = " ".join(said.stderr.split())
    assert said.returncode == 2 and "date_format: '%d/%m/%Y', and train again (this command reads " in text
    assert f"{home / 'churnwatch.yaml'}, which does not exist yet" in text and "current folder is not read" in text
    home.mkdir(exist_ok=True)
    (home / "churnwatch.yaml").write_text("date_format: '%d/%m/%Y'\n", encoding="utf-8")
    again = run_cli("train", "--table", path, "--label", "churned", "--id", "customer_id", "--home", home)
    assert "text read with date_format '%d/%m/%Y'" in again.stderr and "too few rows to train" in again.stderr
