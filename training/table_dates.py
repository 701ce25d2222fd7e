"""Dates in a flat table (``train --table``, ``score --table``) as "days since" the table's as-of date.

A CRM or billing export carries dates (``signup_date``, ``last_login``, ``contract_end``). Each
becomes a number: the days from the date to the table's reference day (its as-of date), negative
for a date after it (a contract that ends in 30 days is -30: "days until"). The dates are read
with the project's one set of date rules (``features.dates``, ``features.epoch``), as the event-log
path reads its own account columns (``features.profile``):

* a column its file types as a date or time (Parquet) is one; a time with a zone, typed or text with
  a UTC offset (``2026-06-30T23:30:00-05:00``), is taken in UTC (the event log's rule for instants,
  ``features.casting``), so one moment gives one day in a Parquet and a CSV export;
* text: a column of which at least ``DATE_SHARE`` of the non-blank values read as dates is one:
  ISO (``2024-03-05``, ``2024-03-05 14:22``), 8-digit ``YYYYMMDD``, or, when ``churnwatch.yaml``
  declares ``date_format``, that format (``features.dates.date_read``: ISO is still read as ISO);
  the other values are missing and counted. A column whose values are mostly written like dates
  (``03/05/2024``, ``2024/03/05``, ``Jun 12, 2026``, ``12 June 2026``) but do not read so is listed as
  unused with that reason and the ``date_format`` that would read it, never a category;
* a day-first or month-first column (``3/5/2024``) without a declared format is not guessed:
  training stops naming the column and the setting that says which it is;
* a number column in Unix epoch seconds or milliseconds or written ``YYYYMMDD`` is a date only when
  its name says date AND every value is one (``features.epoch.date_name``, ``epoch_values``;
  ``features.dates.yyyymmdd_read``): a false date is worse than a missed one; likewise a spreadsheet's
  serial day numbers (Excel's and LibreOffice's: 46350 is 2026-11-23, days since 1899-12-30) of
  1980-2099 (``EXCEL_SERIALS``) in a column whose name has the word date (``EXCEL_NAME_WORDS``), which a
  CSV saved from a sheet whose cells were not formatted as dates holds;
* a date before ``features.profile.FIRST_DATE`` is a placeholder (1900-01-01) and reads as missing.

The reference day is ``--as-of`` when given, else the latest date not after today of the table's
past-looking date columns (a ``last_login`` column's latest value is about the export day). A
column is forward-looking (``contract_end``, ``renewal_date``) when at least ``FORWARD_SHARE`` of
its dates lie after today: it is still a feature
("in 30 days") but never sets the reference, so an export of 2026-06-30 counts to 2026-06-30 on
whatever day it is read, not to the last contract that ended before today. A table with date
columns and no past-looking one needs ``--as-of`` (``NoReferenceError``); nothing falls back to
today for a dated model. Which columns were past-looking at training is kept in their catalogue
entries (``params["as_of_column"]``), and a table scored later finds its own reference from those
columns only. How a column was read is kept there too, so scoring reads it as training did.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from features.dates import YYYYMMDD, DateFormat, first_format, has_offset, utc_time, yyyymmdd_read
from features.epoch import date_name, epoch_cast, epoch_values
from features.numbers import scratch
from features.profile import FIRST_DATE, name_words

#: A text column is a date when at least this share of its non-blank values read as dates.
DATE_SHARE = 0.95
#: A text column none of whose readings reach ``DATE_SHARE`` is "dates that do not read" (unused)
#: when at least this share of its non-blank values are written like dates.
DATE_LIKE_SHARE = 0.5
#: A date column is forward-looking (never sets the as-of date) when at least this share of its dates
#: lie after today; a typo (2062 for 2026) stays under it.
FORWARD_SHARE = 0.1
#: Day and month first or last, either order: 3/5/2024, 03.05.24, 3-5-2024 (a time may follow).
_DAY_MONTH = r"^\d{1,2}[./-]\d{1,2}[./-](\d{2}|\d{4})([ T].*)?$"
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
#: A date written the Chinese way, year first (``2026年3月5日``, ``2026 年 3 月 5 日 14:30``): as unambiguous as ISO,
#: so read as ISO is, with no format to declare (``_texts``; a probe's Chinese CRM table: "free text", no hint)
_ZH_YMD = r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]"
#: Written like a date: three groups of digits with separators, or a month's name with a day and a year
#: (``Jun 12, 2026``, ``12 June 2026``, ``12-Jun-26``), or a reading.
_DATE_LIKE = (rf"(?i)^(\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{1,4}}|{_ZH_YMD}"
              rf"|{_MONTH}[ -]\d{{1,2}}(st|nd|rd|th)?,?[ -]\d{{2,4}}"
              rf"|\d{{1,2}}(st|nd|rd|th)?[ -]{_MONTH},?[ -]\d{{2,4}})([ T].*)?$")
#: Formats that read kinds of dates the table path does not read undeclared: (pattern, format); ``{mon}``
#: is ``%b`` (``Jun``) or ``%B`` (``June``) as the value writes its month.
_HINTS = ((rf"(?i)^{_MONTH} \d", "{mon} %d, %Y"), (rf"(?i)^\d{{1,2}} {_MONTH}", "%d {mon} %Y"),
          (rf"(?i)^\d{{1,2}}-{_MONTH}", "%d-{mon}-%Y"), (r"^\d{4}/\d{1,2}/\d{1,2}", "%Y/%m/%d"),
          (r"^\d{4}\.\d{1,2}\.\d{1,2}", "%Y.%m.%d"))

#: SQL: text ``v`` with a time and a UTC offset (``2026-06-30T23:30:00-05:00``) as its UTC time, as a file's
#: zoned instants are read (``read_dates``), by the event log's rule (``features.dates.has_offset``);
#: other text as it is.
_UTC_TEXT = (f"CASE WHEN {has_offset('v')} THEN coalesce(strftime({utc_time('v')}, '%Y-%m-%d %H:%M:%S'), v) "
             "ELSE v END")

#: A spreadsheet's serial day numbers read as dates: the day 0 and the serials of 1980-01-01 to 2099-12-31.
EXCEL_DAY_ZERO = dt.date(1899, 12, 30)
EXCEL_SERIALS = (29_221, 73_050)
#: ... only in a column whose name has one of these words (``Last Payment Date``, ``dob``): a name that says
#: date only by ``time``, ``on`` or ``since`` (``spend_since_signup``) may hold amounts of that size.
EXCEL_NAME_WORDS = frozenset({"date", "dob", "birthdate", "birthday"})

How = Literal["typed", "text", "epoch", "yyyymmdd", "excel"]


class AmbiguousDatesError(ValueError):
    """A column of day-first or month-first dates and no declared format (``own_table`` names it)."""


class NoReferenceError(ValueError):
    """Date columns but none that can set the as-of date, and no ``--as-of`` (``own_table`` names them)."""


@dataclass(frozen=True)
class DateReading:
    """How one table column's values are read as dates.

    Attributes:
        how: ``typed`` (the file types it as a date or time), ``text`` (ISO or YYYYMMDD, or
            ``fmt``), ``epoch`` (``unit`` seconds or milliseconds), ``yyyymmdd`` (8-digit numbers),
            ``excel`` (a spreadsheet's serial day numbers, ``EXCEL_SERIALS``).
        fmt: the declared ``date_format`` text dates are read with ("" none: ISO or YYYYMMDD).
        unit: ``s`` or ``ms`` for epoch dates.
    """

    how: How
    fmt: str = ""
    unit: str = ""

    def params(self) -> dict[str, str]:
        """The catalogue parameters that keep this reading in a bundle."""
        return {"kind": "date", "read": self.how, "format": self.fmt, "unit": self.unit}

    @classmethod
    def from_params(cls, params: dict) -> DateReading:
        return cls(how=params.get("read", "text"), fmt=params.get("format", ""), unit=params.get("unit", ""))

    def describe(self) -> str:
        """How the column was read, in words (for the terminal)."""
        return {"typed": "typed as dates by the file",
                "text": f"text read with date_format {self.fmt!r} (or ISO)" if self.fmt else "ISO or YYYYMMDD text",
                "epoch": f"epoch {'seconds' if self.unit == 's' else 'milliseconds'}: its name and every value "
                         "say date",
                "yyyymmdd": "YYYYMMDD numbers: its name and every value say date",
                "excel": "spreadsheet serial day numbers (days since 1899-12-30): its name and every value say "
                         "date"}[self.how]


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET threads TO 1")  # a few thousand rows: one thread, and the machine is shared
    return con


_ZH_DATE = re.compile("^" + _ZH_YMD)


def _texts(values: pd.Series) -> pd.DataFrame:
    """One column ``v``: the values as stripped text, None where blank or missing; a Chinese year-first date
    (``_ZH_DATE``) as ISO."""
    text = values.astype("object").where(values.notna(), None)
    text = text.map(lambda x: None if x is None else (_ZH_DATE.sub(_iso, str(x).strip()) or None))
    return pd.DataFrame({"v": text.to_numpy(dtype=object)})


def _iso(m: re.Match) -> str:
    return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"


def _sql(reading: DateReading, con: duckdb.DuckDBPyConnection) -> str:
    """SQL: column ``v`` of relation ``t`` as a TIMESTAMP by ``reading``; NULL where it does not read."""
    if reading.how == "epoch":
        return epoch_cast("v", reading.unit, "TIMESTAMP")
    if reading.how == "yyyymmdd":
        return yyyymmdd_read("v", "TIMESTAMP")
    if reading.how == "excel":
        lo, hi = EXCEL_SERIALS
        return (f"CASE WHEN TRY_CAST(v AS DOUBLE) BETWEEN {lo} AND {hi} THEN CAST(DATE '{EXCEL_DAY_ZERO}' "
                "+ CAST(floor(TRY_CAST(v AS DOUBLE)) AS INTEGER) AS TIMESTAMP) END")
    # ISO always; YYYYMMDD (undeclared) or the declared format for the rest, as features.dates reads text
    fmt = reading.fmt or YYYYMMDD
    return DateFormat(fmt, first_format(con, "t", "v", fmt) if reading.fmt else None).read("v", "TIMESTAMP")


def read_dates(values: pd.Series, reading: DateReading) -> pd.Series:
    """The values as days (``datetime64[ns]`` at midnight), NaT where a value does not read or is a
    placeholder before ``FIRST_DATE``; the index of ``values`` is kept. An instant with a zone is
    taken in UTC, whether the file types it (Parquet) or writes it as text with an offset
    (``2026-06-30T23:30:00-05:00`` is 2026-07-01), so one moment is one day in either export;
    a time without a zone is the file's own clock."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.Series(values)
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        days = stamps.dt.floor("D").astype("datetime64[ns]")
    else:
        with scratch() as con:
            con.register("given", _texts(values))
            value = _UTC_TEXT if reading.how == "text" else "v"
            con.execute(f"CREATE TEMP VIEW t AS SELECT {value} AS v FROM given")
            got = con.execute(f"SELECT CAST({_sql(reading, con)} AS DATE) AS d FROM t").df()["d"]
        days = pd.Series(pd.to_datetime(got.to_numpy(), errors="coerce"), index=values.index).astype("datetime64[ns]")
    days.index = values.index
    return days.where(days >= pd.Timestamp(FIRST_DATE))


def judge_text(name: str, text: pd.Series, date_format: str | None) -> tuple[DateReading | None, str | None]:
    """Whether a (cleaned, non-numeric) text column is a date: ``(reading, None)`` when at least
    ``DATE_SHARE`` of its non-blank values read; ``(None, reason)`` when they are mostly written like
    dates (``DATE_LIKE_SHARE``) but do not read (the column is not used); ``(None, None)`` otherwise.

    Raises:
        AmbiguousDatesError: the values are day/month dates (``3/5/2024``) and no format is declared.
    """
    filled = text.dropna().astype(str)
    # every date has a digit: a column mostly without any (plan names, yes/no) is not read at all
    if filled.empty or filled.str.contains(r"\d", regex=True).mean() < DATE_LIKE_SHARE:
        return None, None
    counts = filled.value_counts()  # each distinct value read once, counted as often as it occurs
    values = pd.Series(counts.index.to_numpy(dtype=object))
    reading = DateReading("text", fmt=date_format or "")
    read_ok = read_dates(values, reading).notna().to_numpy()
    weight = counts.to_numpy()
    n, read = int(weight.sum()), int(weight[read_ok].sum())
    if read >= DATE_SHARE * n:
        return reading, None
    if not date_format and weight[values.str.match(_DAY_MONTH).to_numpy()].sum() >= DATE_SHARE * n:
        raise AmbiguousDatesError(_day_month_message(name, filled))
    like = values.str.match(_DATE_LIKE).to_numpy() | read_ok
    if weight[like].sum() < DATE_LIKE_SHARE * n:
        return None, None
    bad = filled[~filled.isin(set(values[read_ok]))]
    how = f"ISO, YYYYMMDD or date_format {date_format!r}" if date_format else "ISO or YYYYMMDD"
    return None, (f"dates that do not read: {read:,} of {n:,} values are {how} dates ({DATE_SHARE:.0%} needed), "
                  f"e.g. {', '.join(repr(v) for v in pd.unique(bad)[:3])}; {_format_hint(bad.iloc[0])}")


def _day_month_message(name: str, filled: pd.Series) -> str:
    """The error of a column of day/month dates without a declared format: the formats written with the
    values' own separator (a probe's ``31.08.1968`` was told ``'%d/%m/%Y'``, which reads none of them),
    and which order the values show where one of them has a day above 12 in first or second place."""
    parts = filled.str.extract(r"^(\d{1,2})([./-])(\d{1,2})[./-]")
    sep = parts[1].mode().iloc[0] if parts[1].notna().any() else "/"
    first, second = pd.to_numeric(parts[0], errors="coerce"), pd.to_numeric(parts[2], errors="coerce")
    day_first, month_first = int((first > 12).sum()), int((second > 12).sum())
    dm, md = f"%d{sep}%m{sep}%Y", f"%m{sep}%d{sep}%Y"
    example = filled.iloc[0]
    if day_first and not month_first:
        shown = filled[first > 12].iloc[0]
        return (f"column {name!r}: its values are dates written day first ({shown!r}: {day_first:,} values have a day "
                f"above 12 in first place); declare it in churnwatch.yaml, date_format: '{dm}', and train again")
    if month_first and not day_first:
        shown = filled[second > 12].iloc[0]
        return (f"column {name!r}: its values are dates written month first ({shown!r}: {month_first:,} values have "
                f"a day above 12 in second place); declare it in churnwatch.yaml, date_format: '{md}', and train "
                "again")
    return (f"column {name!r}: its values are dates written day and month first or last ({example!r}): churnwatch "
            f"does not guess which; declare the format in churnwatch.yaml, date_format: '{dm}' (5{sep}3{sep}2024 is "
            f"5 March) or '{md}' (3{sep}5{sep}2024 is 5 March), and train again")


def _format_hint(example: str) -> str:
    """How to make a column of dates that do not read usable: the ``date_format`` to declare."""
    for pattern, fmt in _HINTS:
        if re.match(pattern, example):
            month = re.search(r"[A-Za-z]+", example)
            fmt = fmt.format(mon="%b" if month and len(month.group(0)) == 3 else "%B")
            return (f"declare date_format: '{fmt}' in churnwatch.yaml (it reads {example!r}; one format for the "
                    "table's text dates, ISO is always read) and train again")
    return ("declare their format in churnwatch.yaml, date_format (a strptime format such as '%d %B %Y'; ISO is "
            "always read), or fix the values, and train again")


def judge_number(name: str, numbers: pd.Series) -> DateReading | None:
    """A number column as a date when its name says date AND every value is one: epoch seconds or
    milliseconds of 1973-2099 (``features.epoch.epoch_values``), YYYYMMDD of 1900-2099, or a
    spreadsheet's serial day numbers of 1980-2099 (``EXCEL_SERIALS``)."""
    if not date_name(name):
        return None
    filled = numbers.dropna()
    if filled.empty or not bool((filled == np.floor(filled)).all()):
        return None
    whole = pd.DataFrame({"v": filled.astype("int64").astype(str).to_numpy(dtype=object)})
    with _connect() as con:
        con.register("t", whole)
        unit, hits, n = epoch_values(con, "t", "v")
        if unit is not None and hits == n:
            return DateReading("epoch", unit=unit)
        ymd = con.execute(f"SELECT count({yyyymmdd_read('v', 'DATE')}) FROM t").fetchone()[0]
    if ymd == len(whole):
        return DateReading("yyyymmdd")
    lo, hi = EXCEL_SERIALS
    named = bool(EXCEL_NAME_WORDS & set(name_words(name).split("_")))
    return DateReading("excel") if named and bool(filled.between(lo, hi).all()) else None


def past_looking(dates: dict[str, pd.Series], today: dt.date | None = None) -> list[str]:
    """The date columns (column -> days) that may set the as-of date, in their order: those of which
    less than ``FORWARD_SHARE`` of the dates lie after ``today`` (default: today).

    Only today tells a forward-looking column from a past-looking one: two past-looking columns also
    lie one after the other (``last_login`` after ``signup_date``). An export so old that all its
    contract ends have passed cannot be told apart: give its ``--as-of``."""
    limit = pd.Timestamp(today or dt.date.today())
    past = []
    for name, days in dates.items():
        filled = days.dropna()
        if filled.empty or float((filled > limit).mean()) < FORWARD_SHARE:
            past.append(name)
    return past


#: A date column whose dates run more than this many days past every other past-looking column's latest, on
#: at least ``LATE_ROWS`` rows of which ``LATE_CHURNED`` churned, is dated after the export (``dated_after_export``).
LATE_DAYS = 14
LATE_ROWS = 20
LATE_CHURNED = 0.8


def dated_after_export(dates: dict[str, pd.Series], past: list[str], y: np.ndarray,
                       today: dt.date | None = None) -> dict[str, dict]:
    """Past-looking date columns (``past`` of ``dates``) whose dates run past every other one's latest (not
    after ``today``) by more than ``LATE_DAYS``, where the rows dated after the others' latest (at least
    ``LATE_ROWS``) mostly churned (``LATE_CHURNED``, and at least twice the base rate): a date written once the
    customer had left (a renewal deal's close date, a cancellation's effective date), after the data the other
    columns hold. Such a column must not set the as-of date: it pushed a probe's CRM table 90 days late, every
    "days since" 90 days too long, and hid its own leak (its dates then all lay before the as-of date).
    A last-activity column running past a signup column's latest is no such column: its late rows are the
    customers still active. Returns ``{column: {"latest", "others_latest", "rows", "churned"}}``."""
    limit = pd.Timestamp(today or dt.date.today())
    latest = {n: dates[n][dates[n] <= limit].max() for n in past}
    latest = {n: v for n, v in latest.items() if pd.notna(v)}
    y = np.asarray(y, dtype=float)
    out: dict[str, dict] = {}
    for name, last in latest.items():
        others = [v for n, v in latest.items() if n != name]
        if not others:
            continue
        bound = max(others)
        if (last - bound).days <= LATE_DAYS:
            continue
        late = (dates[name] > bound).to_numpy()
        rows, churned = int(late.sum()), float(y[late].mean()) if late.any() else 0.0
        if rows >= LATE_ROWS and churned >= LATE_CHURNED and churned >= 2 * float(y.mean()):
            out[name] = {"latest": last.date().isoformat(), "others_latest": bound.date().isoformat(),
                         "rows": rows, "churned": churned}
    return out


def reference_day(dates: dict[str, pd.Series], as_of: dt.date | None, today: dt.date | None = None,
                  past: list[str] | None = None) -> tuple[dt.date, str]:
    """The table's as-of date and where it came from: ``as_of`` (``--as-of``) when given, else the
    latest date not after ``today`` (default: today) of the past-looking columns ``past`` of ``dates``
    (column -> days; default: ``past_looking(dates, today)``). No date columns: today.

    Raises:
        NoReferenceError: date columns, but no past-looking one with a date on or before today.
    """
    if as_of is not None:
        return as_of, "--as-of"
    today = today or dt.date.today()
    if not dates:
        return today, "today"
    past = past_looking(dates, today) if past is None else [n for n in past if n in dates]
    best: tuple[pd.Timestamp, str] | None = None
    for name in past:
        days = dates[name]
        latest = days[days <= pd.Timestamp(today)].max()
        if pd.notna(latest) and (best is None or latest > best[0]):
            best = (latest, name)
    if best is None:
        forward = [n for n in dates if n not in past]
        why = (f"the date column(s) {', '.join(forward)} look ahead (contract ends, renewals: "
               f"{FORWARD_SHARE:.0%} or more of their dates after today)"
               if forward else f"no date of the column(s) {', '.join(past)} is on or before today, {today}")
        raise NoReferenceError(f"cannot tell the table's as-of date: {why}; give the day the table was exported "
                               "with --as-of YYYY-MM-DD")
    # a probe's CRM table took its latest sign-up (11-25) for an export of 11-30, and nothing asked
    return best[0].date(), (f"the table's latest date on or before today, {today}, in column {best[1]!r}; "
                            "exported later? give that day with --as-of")


def days_since(days: pd.Series, reference: dt.date) -> pd.Series:
    """Days from each date to ``reference`` (float; negative after it, NaN where missing)."""
    return ((pd.Timestamp(reference) - days).dt.days).astype("float64")
