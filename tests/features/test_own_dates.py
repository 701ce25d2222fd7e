"""A company's own date columns read as the contract's are (issue 12 leftovers): with the format
``churnwatch.yaml`` declares (``date_format``, ``date_formats``), and in epoch seconds or
milliseconds before 1970 (negative values) when the name says date."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from core.errors import ConfigError, DataContractError
from core.settings import ProfileColumn, ProfileSettings
from core.store import read_snapshots
from features.pipeline import build_snapshots
from features.subset import load_clean_subset
from tests.features.test_profile_columns import AS_OF, _epoch, accounts, at, events, subscriptions
from tests.tiny import D, settings, write_tables

#: Birth dates of a1..a4, days above 12 so that day-first and month-first differ
BIRTHS = [D(1987, 2, 15), D(1960, 1, 1), None, D(2001, 11, 23)]
#: each term's own "signed" date (subscriptions), a1's two terms first
SIGNED = [D(2022, 12, 20), D(2024, 2, 25), D(2022, 12, 14), D(2022, 12, 14), D(2022, 12, 14)]


def _own(tmp_path, acc, sub=None, fmt="csv", **kw):
    data = write_tables(tmp_path / "data", {"accounts": acc, "subscriptions": subscriptions() if sub is None else sub,
                                           "events": events()}, fmt=fmt)
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31), **kw), tmp_path / "s.duckdb", as_of=AS_OF)
    return result, read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"])


def _written(days, fmt: str) -> list[str | None]:
    return [d.strftime(fmt) if d else None for d in days]


def _ages(df, column: str) -> list:
    return [None if pd.isna(v) else int(v) for v in (at(df, a, AS_OF[1])[column] for a in ("a1", "a2", "a3", "a4"))]


EXPECTED_AGES = [None if d is None else (AS_OF[1] - d).days for d in BIRTHS]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_source_date_format_reads_an_own_date_column(tmp_path, fmt):
    """``date_format`` reads the company's own text dates as it reads the contract's: before, the
    day-first birth dates were a category (or too many values to be one)."""
    acc = accounts()
    acc["date_of_birth"] = _written(BIRTHS, "%d/%m/%Y")
    acc["first_order"] = _written([D(2023, 5, 14), D(2023, 7, 30), D(2024, 3, 15), D(2022, 1, 13)], "%d/%m/%Y")
    acc["tier_code"] = ["13/12", "14/12", "13/12", "13/12"]  # text with no whole date: left a category
    result, df = _own(tmp_path, acc, fmt=fmt, date_format="%d/%m/%Y")
    used = {c.column: c for c in result.profile.used}
    assert used["date_of_birth"].kind == used["first_order"].kind == "date"
    assert used["tier_code"].kind == "category" and used["plan_family"].kind == "category"
    assert _ages(df, "date_of_birth") == EXPECTED_AGES
    assert at(df, "a1", AS_OF[0])["first_order"] == (AS_OF[0] - D(2023, 5, 14)).days
    assert pd.isna(at(df, "a3", AS_OF[0])["first_order"])  # 2024-03-15: not yet
    assert at(df, "a3", AS_OF[1])["first_order"] == (AS_OF[1] - D(2024, 3, 15)).days
    assert used["date_of_birth"].note == "read with date_format: '%d/%m/%Y'"
    assert result.catalogue["date_of_birth"].unit == "days"


def test_a_per_column_format_reads_own_columns_of_accounts_and_subscriptions(tmp_path):
    acc = accounts()
    acc["date_of_birth"] = _written(BIRTHS, "%m/%d/%Y")  # month first, beside a day-first source
    acc["joined"] = _written([D(2020, 1, 13), D(2021, 2, 14), D(2022, 3, 15), D(2023, 4, 16)], "%d/%m/%Y")
    sub = subscriptions()
    sub["signed"] = [int(d.strftime("%Y%m%d")) for d in SIGNED]  # an integer column, declared %Y%m%d
    kw = {"date_format": "%d/%m/%Y",
          "date_formats": {"accounts": {"date_of_birth": "%m/%d/%Y"}, "subscriptions": {"signed": "%Y%m%d"}}}
    result, df = _own(tmp_path, acc, sub, **kw)
    used = {c.column: c for c in result.profile.used}
    assert _ages(df, "date_of_birth") == EXPECTED_AGES
    assert used["date_of_birth"].note == "read with date_formats: {accounts: {date_of_birth: '%m/%d/%Y'}}"
    assert at(df, "a2", AS_OF[1])["joined"] == (AS_OF[1] - D(2021, 2, 14)).days
    assert used["signed"].kind == "date"
    assert at(df, "a1", AS_OF[0])["signed"] == (AS_OF[0] - D(2022, 12, 20)).days  # the term started 2023-01
    assert at(df, "a1", AS_OF[1])["signed"] == (AS_OF[1] - D(2024, 2, 25)).days  # the term started 2024-03


def test_iso_values_beside_the_format_are_read_as_iso(tmp_path):
    acc = accounts()
    acc["date_of_birth"] = ["15/02/1987", "1960-01-01", None, "23/11/2001"]
    _result, df = _own(tmp_path, acc, date_format="%d/%m/%Y")
    assert _ages(df, "date_of_birth") == EXPECTED_AGES


@pytest.mark.parametrize(("kw", "setting"), [
    ({"date_formats": {"accounts": {"date_of_birth": "%d/%m/%Y"}}},
     "date_formats: {accounts: {date_of_birth: '%d/%m/%Y'}}"),
    ({"date_format": "%d/%m/%Y"}, "date_format: '%d/%m/%Y'"),  # a name that says date: its values must read
])
def test_a_value_that_does_not_read_stops_features_naming_column_format_setting_and_value(tmp_path, kw, setting):
    acc = accounts()
    acc["date_of_birth"] = ["15/02/1987", "1960-13-01", None, "23/11/2001"]
    with pytest.raises(DataContractError) as exc:
        _own(tmp_path, acc, **kw)
    msg = str(exc.value)
    assert msg.startswith(f"accounts.date_of_birth: 1 value(s) match neither the date format '%d/%m/%Y' ({setting} "
                          "in churnwatch.yaml, a time of day allowed after it) nor an ISO date, e.g. '1960-13-01'")
    assert exc.value.table == "accounts" and exc.value.column == "date_of_birth"
    assert exc.value.example["account_id"] == "a2"


def test_an_own_text_column_not_named_as_a_date_is_a_date_only_when_every_value_reads(tmp_path):
    acc = accounts()
    acc["first_visit"] = ["15/02/2023", "16/02/2023", "not yet", "15/02/2023"]
    result, _df = _own(tmp_path, acc, date_format="%d/%m/%Y")
    assert {c.column: c.kind for c in result.profile.used}["first_visit"] == "category"


@pytest.mark.parametrize(("formats", "match"), [
    ({"accounts": {"birthday": "%d/%m/%Y"}}, "date_formats.accounts.birthday: not a column of accounts"),
    ({"accounts": {"Born": "%d/%m/%Y"}}, "date_formats.accounts.Born: the column is mapped to the contract "
                                         "column 'signed_at', so its format goes by that name"),
    ({"accounts": {"industry": "%d/%m/%Y"}}, "date_formats: accounts.industry is not a date or timestamp column"),
])
def test_a_date_formats_entry_naming_no_own_date_column_is_a_config_error(tmp_path, formats, match):
    acc = accounts().rename(columns={"signed_at": "Born"})
    with pytest.raises(ConfigError, match=match):
        _own(tmp_path, acc, date_formats=formats, column_mapping={"accounts": {"Born": "signed_at"}})


def test_a_declared_format_and_another_configured_kind_is_a_config_error(tmp_path):
    acc = accounts()
    acc["date_of_birth"] = _written(BIRTHS, "%d/%m/%Y")
    with pytest.raises(ConfigError, match="declares a date format but profile.columns.date_of_birth.kind is category"):
        _own(tmp_path, acc, date_formats={"accounts": {"date_of_birth": "%d/%m/%Y"}},
             profile=ProfileSettings(columns={"date_of_birth": ProfileColumn(kind="category")}))


def test_the_few_accounts_explain_reads_accept_an_own_columns_format(tmp_path):
    """``explain`` and ``report`` check the formats over a few accounts (``features/subset.py``): an
    own column's entry was refused there as "not a date or timestamp column of the contract"."""
    acc = accounts()
    acc["date_of_birth"] = _written(BIRTHS, "%d/%m/%Y")
    acc["signed_at"] = ["13/01/2023", "14/01/2023", "15/01/2023", "16/01/2023"]
    data = write_tables(tmp_path / "data", {"accounts": acc, "subscriptions": subscriptions(), "events": events()},
                        fmt="csv")
    con = duckdb.connect()
    load_clean_subset(con, settings(data=str(data), date_formats={"accounts": {"date_of_birth": "%d/%m/%Y",
                                                                               "signed_at": "%d/%m/%Y"}}),
                      ["a2"], {"accounts": (None, None)})
    assert con.execute("SELECT account_id, CAST(signed_at AS DATE) FROM clean_accounts").fetchall() == \
        [("a2", D(2023, 1, 14))]


@pytest.mark.parametrize("unit", ["s", "ms"])
def test_a_birth_date_in_negative_epoch_time_is_a_date(tmp_path, unit):
    """Before 1970 an epoch time is negative (-315619200 s is 1960-01-01): a column whose name says
    date reads such values from 1900 on; before, the whole column stayed a number."""
    acc = accounts()
    acc["birth_ts"] = [_epoch(d, unit) if d else None for d in BIRTHS]
    acc["born_1969"] = [_epoch(D(1969, 12, 25), unit), _epoch(D(1960, 1, 2), unit), _epoch(D(1982, 6, 1), unit),
                        _epoch(D(1950, 3, 31), unit)]  # around 1970 too (few digits), most years away
    # small signed numbers whose names hold a date word: scores, offsets, amounts, never dates
    acc["nps_at_signup"] = [-40, 10, 0, 75]
    acc["time_zone"] = [-5, -8, 1, 0]
    acc["credit_at_signup"] = [-250, 0, 1200, -1]
    acc["balance_delta"] = [-315619200, 1_000_000_000, -5, 7]  # negative numbers, but not a date's name
    acc["created_on"] = [_epoch(D(1960, 1, 1)), _epoch(D(1850, 1, 1)), _epoch(D(2000, 1, 1)), None]  # 1850: no
    result, df = _own(tmp_path, acc)
    used = {c.column: c for c in result.profile.used}
    assert (used["birth_ts"].kind, used["birth_ts"].epoch, used["birth_ts"].signed_epoch) == ("date", unit, True)
    assert _ages(df, "birth_ts") == EXPECTED_AGES
    assert _ages(df, "born_1969") == [(AS_OF[1] - d).days for d in (D(1969, 12, 25), D(1960, 1, 2), D(1982, 6, 1),
                                                                      D(1950, 3, 31))]
    for name in ("nps_at_signup", "time_zone", "credit_at_signup"):
        assert used[name].kind == "number" and not used[name].signed_epoch, name
    words = "epoch seconds" if unit == "s" else "epoch milliseconds"
    assert used["birth_ts"].note == f"from {words}, negative before 1970: its name and every value say date (1900-2099)"
    assert (used["balance_delta"].kind, used["balance_delta"].note) == ("number", "")
    assert used["created_on"].kind == "number"
    assert used["created_on"].note == ("kept a number: its name says date but only 2 of 3 values are epoch seconds "
                                       "of a date in 1900-2099 (negative before 1970)")


def test_a_declared_format_is_written_for_spark_as_try_to_timestamp():
    """Spark has no ``strptime``: the reading is handed over as ``try_to_timestamp`` with sqlglot's
    pattern for each format tried (``tests/spark`` builds both ways and compares)."""
    from features.dates import DateFormat
    from features.spark import to_spark_sql

    sql = to_spark_sql("SELECT " + DateFormat("%d/%m/%Y", "%d/%m/%Y").read('"dob"', "TIMESTAMP") + " AS d FROM t")
    assert "STRPTIME" not in sql.upper()
    assert "TRY_TO_TIMESTAMP(TRIM(CAST(`dob` AS STRING)), 'd/M/yyyy')" in sql
    assert "TRY_TO_TIMESTAMP(TRIM(CAST(`dob` AS STRING)), 'd/M/yyyy h:m a')" in sql


def test_a_two_digit_year_format_reads_what_duckdbs_plain_cast_takes_for_year_5(tmp_path):
    """'05/03/24' is a date to DuckDB's cast too (the year 5: read as missing, before 1900); under a
    declared '%d/%m/%y' it is 5 March 2024."""
    acc = accounts()
    acc["first_order"] = ["05/03/24", "15/02/23", "01/01/99", None]
    result, df = _own(tmp_path, acc, date_format="%d/%m/%y")
    assert {c.column: c.note for c in result.profile.used}["first_order"] == "read with date_format: '%d/%m/%y'"
    assert _ages(df, "first_order") == [(AS_OF[1] - D(2024, 3, 5)).days, (AS_OF[1] - D(2023, 2, 15)).days,
                                        (AS_OF[1] - D(1999, 1, 1)).days, None]


def test_a_two_digit_year_is_refused_on_spark_not_read_as_another_century():
    from features.dates import DateFormat
    from features.spark import SparkError, to_spark_sql

    with pytest.raises(SparkError, match=r"own date column d: the date format '%d/%m/%y' \(date_format or "
                                         r"date_formats in churnwatch.yaml\) has a two-digit year \(%y\), which "
                                         "Spark reads as 2000-2099 and DuckDB as 1969-2068"):
        to_spark_sql("SELECT " + DateFormat("%d/%m/%y", "%d/%m/%y").read('"d"', "TIMESTAMP") + " FROM t")
    # a weekday name: Spark 3+ refuses the pattern; said with the column, not as Spark's own error
    with pytest.raises(SparkError, match=r"own date column first_order: the date format '%a %d %b %Y' .* weekday"):
        to_spark_sql("SELECT " + DateFormat("%a %d %b %Y", None).read('"first_order"', "TIMESTAMP") + " FROM t")


def test_a_kept_date_in_a_format_is_read_with_it_when_new_data_alone_would_make_it_a_category(tmp_path):
    """A model is fed the kinds it was trained with: a date the stored plan read with the format stays
    one, its values read with that format (not null), a value that does not read unknown."""
    acc = accounts()
    acc["first_visit"] = ["15/02/2023", "16/03/2023", "17/04/2023", "18/05/2023"]
    _own(tmp_path, acc, date_format="%d/%m/%Y")
    acc["first_visit"] = ["15/02/2023", "16/03/2023", "not yet", "18/05/2023"]
    data = write_tables(tmp_path / "data", {"accounts": acc, "subscriptions": subscriptions(), "events": events()},
                        fmt="csv")
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31), date_format="%d/%m/%Y"),
                             tmp_path / "s.duckdb", as_of=AS_OF)
    used = {c.column: c for c in result.profile.used}["first_visit"]
    assert used.kind == "date" and used.note.startswith("kept as the store's plan decided: date; this data alone "
                                                        "would make it category")
    df = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"])
    assert _ages(df, "first_visit") == [(AS_OF[1] - D(2023, 2, 15)).days, (AS_OF[1] - D(2023, 3, 16)).days, None,
                                       (AS_OF[1] - D(2023, 5, 18)).days]


def test_zero_and_minus_one_beside_negative_epoch_dates_are_missing_not_1970(tmp_path):
    """An export's "no date" (0, -1) in a column of dates before 1970 is never 1970-01-01."""
    acc = accounts()
    acc["birth_ts"] = [_epoch(D(1987, 2, 15)), _epoch(D(1960, 1, 1)), 0, -1]
    result, df = _own(tmp_path, acc)
    used = {c.column: c for c in result.profile.used}["birth_ts"]
    assert (used.kind, used.signed_epoch) == ("date", True)
    assert used.note.endswith("(1900-2099); 2 values of 0 or -1 read as missing")
    assert _ages(df, "birth_ts") == [(AS_OF[1] - D(1987, 2, 15)).days, (AS_OF[1] - D(1960, 1, 1)).days, None, None]


def test_whether_an_own_column_has_dates_in_the_format_is_judged_on_every_value_not_a_sample():
    """A file of ISO history whose newer rows a spreadsheet wrote day-first: judged on the first 1,000
    values (all ISO), the column stayed a category and its bad date went unnoticed, or stopped the
    build, depending on the rows' order. Now the same answer in either order."""
    from core.settings import Settings
    from features.profile import infer_kind, own_date_format

    con = duckdb.connect()
    values = [f"1987-02-{i % 28 + 1:02d}" for i in range(1000)] + ["15/02/1987", "23/11/2001"]
    for order in ("ASC", "DESC"):
        con.execute("CREATE OR REPLACE TABLE raw_accounts AS SELECT 'a' || i AS account_id, v AS date_of_birth "
                    "FROM (SELECT unnest(?::VARCHAR[]) AS v, generate_subscripts(?::VARCHAR[], 1) AS i) "
                    f"ORDER BY v {order}", [values, values])
        kind, reason = infer_kind(con, "accounts", "date_of_birth", "VARCHAR", 50)
        fmt, _first, note = own_date_format(con, Settings(date_format="%d/%m/%Y"), "accounts", "date_of_birth",
                                            "VARCHAR", kind, reason)
        assert (fmt, note) == ("%d/%m/%Y", "read with date_format: '%d/%m/%Y'"), order
        # a typo typed by hand among 1,003 values (probe p28's sign-up form) reads as missing, said with it
        con.execute("INSERT INTO raw_accounts VALUES ('bad', '31/31/1990')")
        fmt, _first, note = own_date_format(con, Settings(date_format="%d/%m/%Y"), "accounts", "date_of_birth",
                                            "VARCHAR", kind, reason)
        assert (fmt, note) == ("%d/%m/%Y", "read with date_format: '%d/%m/%Y'; 1 of 1,003 values read as missing, "
                                           "neither in the format nor ISO ('31/31/1990')"), order
        # more than 1% of them: the format is not the column's, or the column is not clean: stop
        con.executemany("INSERT INTO raw_accounts VALUES (?, '31/31/1990')", [[f"bad{i}"] for i in range(10)])
        with pytest.raises(DataContractError, match=r"e.g. '31/31/1990'; fix those values or the format, or leave "
                                                    r"the column out \(profile.exclude: \[date_of_birth\]\); up "
                                                    r"to 1% of its values that do not read would be read as missing"):
            own_date_format(con, Settings(date_format="%d/%m/%Y"), "accounts", "date_of_birth", "VARCHAR",
                            kind, reason)


def test_a_configured_date_kind_under_a_date_format_reads_with_it_or_names_the_value(tmp_path):
    """``profile.columns.first_visit.kind: date`` with ``date_format``: the user said date twice. Before,
    one value that did not read made the format unused, and every value was read as ISO: all missing,
    without a word."""
    acc = accounts()
    config = ProfileSettings(columns={"first_visit": ProfileColumn(kind="date")})
    acc["first_visit"] = ["15/02/2023", "16/02/2023", "not yet", "05/03/2023"]
    with pytest.raises(DataContractError, match=r"accounts.first_visit: 1 value\(s\) match neither the date format "
                                                r"'%d/%m/%Y' .* e.g. 'not yet'"):
        _own(tmp_path, acc, date_format="%d/%m/%Y", profile=config)
    acc["first_visit"] = ["15/02/2023", "16/02/2023", None, "05/03/2023"]
    result, df = _own(tmp_path, acc, date_format="%d/%m/%Y", profile=config)
    assert {c.column: c.date_format for c in result.profile.used}["first_visit"] == "%d/%m/%Y"
    assert _ages(df, "first_visit") == [(AS_OF[1] - d).days if d else None
                                       for d in (D(2023, 2, 15), D(2023, 2, 16), None, D(2023, 3, 5))]


def test_the_few_accounts_explain_reads_refuse_a_date_formats_entry_naming_no_column(tmp_path):
    """A mistyped own column in ``date_formats`` was refused by the full build only; ``explain`` and
    ``report`` (``features/subset.py``) ignored it."""
    data = write_tables(tmp_path / "data", {"accounts": accounts(), "subscriptions": subscriptions(),
                                            "events": events()}, fmt="csv")
    with pytest.raises(ConfigError, match="date_formats.accounts.birthdate: not a column of accounts"):
        load_clean_subset(duckdb.connect(), settings(data=str(data),
                                                     date_formats={"accounts": {"birthdate": "%d/%m/%Y"}}),
                          ["a2"], {"accounts": (None, None)})


def test_a_subscriptions_column_is_the_latest_terms_even_when_that_term_has_none(tmp_path):
    """An auto-renew switched off on one term and back on for the next: at a date in the next term the
    value is the next term's (none), not the older term's carried forward (DuckDB's ARG_MAX skipped
    the null and kept "unsubscribed 268 days ago" for an account that renewed every month since)."""
    sub = subscriptions()  # a1: 2023-01-01..2024-03-01, then 2024-03-01..; the others one open term
    sub["unsubscribed_at"] = ["2023-06-10 13:19:00", None, None, None, None]
    sub["discount"] = [5.0, None, 2.5, None, None]
    _result, df = _own(tmp_path, accounts(), sub)
    assert at(df, "a1", AS_OF[0])["unsubscribed_at"] == (AS_OF[0] - D(2023, 6, 10)).days
    assert at(df, "a1", AS_OF[0])["discount"] == 5.0
    assert pd.isna(at(df, "a1", AS_OF[1])["unsubscribed_at"]) and pd.isna(at(df, "a1", AS_OF[1])["discount"])
    assert at(df, "a2", AS_OF[1])["discount"] == 2.5  # its only term: kept


def test_an_own_moment_of_the_as_of_day_itself_is_not_yet_known(tmp_path):
    """Events count before t (midnight); an own date-time of day t (an unsubscribe at 13:19 on the
    as-of day) is the future at t too: it read "0 days ago", and 99% of those rows churned."""
    sub = subscriptions()
    day = AS_OF[0].isoformat()
    sub["unsubscribed_at"] = [None, None, f"{day} 13:19:00", f"{day} 00:00:00", "2024-01-31 23:59:00"]
    _result, df = _own(tmp_path, accounts(), sub)
    assert pd.isna(at(df, "a2", AS_OF[0])["unsubscribed_at"]) and pd.isna(at(df, "a3", AS_OF[0])["unsubscribed_at"])
    assert at(df, "a4", AS_OF[0])["unsubscribed_at"] == 1  # the day before t: known, 1 day ago
    assert at(df, "a2", AS_OF[1])["unsubscribed_at"] == (AS_OF[1] - AS_OF[0]).days
    assert df["unsubscribed_at"].min() >= 1  # never "0 days ago"
