"""Bring your own table: train on one flat file (one row per customer, a churn label).

``churnwatch train --table FILE --label COL --id COL`` skips the feature pipeline and
reads a CSV or Parquet file as it is. Columns are typed by their content:

- numeric: numbers, or text of which >= 95% of the non-blank values read as numbers by the
  project's one set of rules for numbers written as text (``features.numbers``: "1,234.5", " 42 ",
  "$1,234.50", a decimal comma "12,5" or "1.234,50", one separator decided per column and kept for
  scoring), a currency code before or after ("1.234,50 EUR") or a percent sign after ("12%", read
  as 12) dropped; blanks ("", " ", "NA", "N/A", "null", "-", ...) become missing and are counted (in
  every column read from text: numbers, categories and dates);
  a numeric column holding only 0 and 1 (Telco's ``SeniorCitizen``) is a flag: the model reads
  the number, a reason says "SeniorCitizen: yes (1)", not "1 (typical of those who stayed: 0)";
- date: a column the file types as a date, text of which >= 95% of the non-blank values read as
  dates (ISO, YYYYMMDD, or ``churnwatch.yaml``'s ``date_format``), or a number column in epoch time,
  YYYYMMDD or a spreadsheet's serial day numbers whose name says date: a number, the days from the
  date to the table's as-of date (negative for a date after it: "in 30 days"); a date is never a
  category. How dates are read and
  the as-of date (``--as-of``, else the latest date not after today of the past-looking date columns:
  not ``contract_end``) are ``training.table_dates``';
- categorical: other text with at most 50 distinct values; a column whose values differ only in case
  (``monthly`` and ``Monthly``) is read in lower case, here and at scoring (one category, not two);
- dropped (and reported): columns whose name says they hold a person's name or contact details
  (``First Name``, ``Email``, ``Phone``, ``Address Line 1``: ``features.profile.personal_data_name``;
  ``churnwatch.yaml``'s ``profile.columns`` naming the column keeps it); columns whose name says they hold
  a postal code (``Zip Code``: ``features.profile.place_code_name``, a place, not a quantity; kept the same
  way, as a category if told so); columns whose name holds a character LightGBM refuses
  (``, : " [ ] { }``: rename them); identifiers (text with a different value on every row, mostly without
  spaces; whole numbers with a different value on every row that run 1..n like a row number or whose name says id, as
  ``features.profile.id_like_name`` reads it: ``CustomerId``), never read as numbers; free text (more
  distinct values), constant columns, text mostly written
  like dates (``2026/06/12``, ``Jun 12, 2026``) that does not read as dates, and columns of other
  types (binary).

The features get a ``Catalogue`` of their own, direction 0 (unknown). Its signal groups
are the least misleading of the catalogue's fixed set: categoricals are ``profile``
(static attributes of the customer) and numerics are ``event_type``, the catalogue's
generic data-derived family with no semantic role. Reason codes summed per group will
therefore group all numeric columns together.

Why over 400 lines: reading, typing and checking a foreign table, and the same for the
table a table model scores, are one contract and are kept together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit

from core.errors import ChurnwatchError
from core.settings import ProfileColumn, ProfileSettings
from features.csvfiles import delimiter_of
from features.numbers import (
    CURRENCY_SIGNS,
    CURRENCY_WORDS,
    read_number_columns,
    read_number_text,
    shown_separators,
)
from features.profile import (
    AGE_YEARS,
    LATEST_DATE_IN_TABLE,
    PANDAS_INDEX,
    PLACE_CODE,
    age_name,
    id_like_name,
    latest_at_export_name,
    mostly_ages,
    pandas_index_name,
    personal_data_name,
    place_code_name,
)
from features.spec import Catalogue, FeatureSpec
from training.model import BOOSTER_NAME_REFUSED, FeatureRows, booster_names
from training.table_columns import table_ignored, unused_columns
from training.table_dates import (
    DATE_SHARE,
    AmbiguousDatesError,
    DateReading,
    NoReferenceError,
    dated_after_export,
    days_since,
    judge_number,
    judge_text,
    past_looking,
    read_dates,
    reference_day,
)

if TYPE_CHECKING:
    from training.bundle import ModelBundle

log = logging.getLogger(__name__)

#: Label spellings, compared after stripping and lower-casing.
LABEL_VALUES: dict[str, int] = {
    "yes": 1, "no": 0, "true": 1, "false": 0, "1": 1, "0": 0, "churned": 1, "active": 0,
    "churn": 1, "retained": 0, "y": 1, "n": 0, "t": 1, "f": 0,
    # membership and billing exports: a status column
    "cancelled": 1, "canceled": 1, "left": 1, "stayed": 0,
    # exports in other languages (a probe's German insurer: Ja/Nein)
    "ja": 1, "nein": 0, "oui": 1, "non": 0, "sí": 1, "si": 1, "sim": 1, "não": 0, "nao": 0,
    "gekündigt": 1, "gekuendigt": 1, "aktiv": 0, "是": 1, "否": 0, "已流失": 1, "未流失": 0,
}
#: Label values that say which side they are on whatever the column is called (a status column).
LABEL_WORDS = frozenset({"churned", "active", "churn", "retained", "cancelled", "canceled", "left", "stayed",
                         "gekündigt", "gekuendigt", "aktiv", "已流失", "未流失"})
#: A label column named for staying: its yes / true / 1 is a customer who stayed (``renewed``, ``retained``,
#: ``is_active``, ``still_customer``, 续保, 续费, 留存), not one who left (a probe's insurer: ``renewed`` True read as
#: churn, 74% "churned", and a 90%-risk policy explained as "Healthy 3.1%"); a negated name (``not_renewed``,
#: ``non_renewal``, ``unsubscribed``) is not.
STAYING_LABEL = re.compile(r"(?:^|[^a-z])(?:renew(?:ed|al)?|retained|stay(?:ed)?|(?:is[ _-]?)?active|"
                           r"still[ _-]?(?:a[ _-]?)?customer|is[ _-]?customer|kept|subscribed)(?:$|[^a-z])"
                           r"|续保|续费|留存|在网", re.IGNORECASE)
_NEGATED = re.compile(r"(?:^|[^a-z])(?:not|non|no|un)[ _-]?(?:renew|retain|stay|active|subscri|customer)"
                      r"|未续|不续|流失", re.IGNORECASE)


def staying_label(column: str) -> bool:
    """Whether a label column's name says the customer stayed (``STAYING_LABEL``), so its yes is a retained one."""
    return bool(STAYING_LABEL.search(column)) and not _NEGATED.search(column)


#: Text read as a blank (missing) value, after stripping and lower-casing.
BLANK_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
#: A text column is numeric when at least this share of its non-blank values parse.
NUMERIC_SHARE = 0.95
#: A non-numeric text column with more distinct values than this is free text.
MAX_CATEGORIES = 50
MIN_ROWS = 50
MIN_PER_CLASS = 10

#: Currency codes written before or after an amount ("1.234,50 EUR", "USD 99"): dropped before the
#: value is read (currency signs are ``features.numbers``'s to drop), as is a percent sign after it.
CURRENCY_CODES = ("EUR", "USD", "GBP", "CHF", "JPY", "CNY", "RMB", "SEK", "NOK", "DKK", "PLN", "CZK",
                  "HUF", "CAD", "AUD", "NZD", "INR", "BRL", "MXN", "ZAR", "HKD", "SGD")
_UNITS = "|".join(CURRENCY_CODES)
_UNIT = re.compile(rf"(?i)^(?:{_UNITS})\s*|\s*(?:{_UNITS}|%)$")


class TableError(ChurnwatchError):
    """The table cannot be used: names the file or column and the offending values."""


@dataclass
class OwnTable:
    """A flat churn table ready for training.

    Attributes:
        frame: feature columns only (numerics float64, categoricals ``category``),
            indexed by the id column.
        y: churn label per row, 0/1 ``int64``.
        catalogue: the feature catalogue built from the kept columns.
        report: what was found and done: rows, label counts, blanks per numeric text
            column, categorical columns, dropped columns (see ``load_own_table``).
    """

    frame: pd.DataFrame
    y: np.ndarray
    catalogue: Catalogue
    report: dict = field(default_factory=dict)


def _read(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if not path.is_file():
        raise TableError(f"table file not found: {path}")
    try:
        if name.endswith((".csv", ".csv.gz", ".txt")):
            # everything as text: parsing is ours, so blanks and separators are counted; the field
            # separator (, ; TAB |) is the one the header holds most (features.csvfiles, as for event logs)
            sep = _separator(path)
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                               encoding="utf-8-sig", sep=sep)
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
    except UnicodeDecodeError as exc:  # a Chinese spreadsheet's CSV is often GBK (the event-log reader says so too)
        raise TableError(f"cannot read table {path}: it is not UTF-8 text (GBK or latin-1?): "
                         "save it as UTF-8 (Excel: Save As > \"CSV UTF-8\"; 另存为 \"CSV UTF-8\")") from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise TableError(f"cannot read table {path}: {exc}") from exc
    raise TableError(f"cannot read table {path}: expected a .csv or .parquet file")


def _separator(path: Path) -> str:
    """The CSV file's field separator, from its header (``features.csvfiles.delimiter_of``: ``;`` for a
    European spreadsheet), of a gzipped file too; a header pandas writes with its index (``,a,b``) is fine:
    pandas names it."""
    with (gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")) as fh:
        return delimiter_of(fh.readline().decode("utf-8-sig", errors="replace"))


def _is_text(s: pd.Series) -> bool:
    return (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
            or isinstance(s.dtype, pd.CategoricalDtype))


def _clean_text(s: pd.Series) -> pd.Series:
    """Stripped strings; blanks (and real nulls) as NaN."""
    text = s.astype("object").where(s.notna(), "").astype(str).str.strip()
    return text.where(~text.str.lower().isin(BLANK_TOKENS), np.nan)


def _as_text(s: pd.Series) -> pd.Series:
    """A category column's values as cleaned text (``_clean_text``); numbers as a file writes them (a
    whole ``1.0`` of a Parquet float column is ``1``, as the CSV's ``1``), so training and scoring agree."""
    if _is_text(s):
        return _clean_text(s)
    whole = lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)  # noqa: E731
    return _clean_text(s.astype("object").where(s.notna(), None).map(lambda v: None if v is None else whole(v)))


def _finite(values: pd.Series) -> pd.Series:
    """A typed number column as float64 with an infinity as missing, as text's "inf" reads (``_parse_numbers``):
    a Parquet column's inf would train a split no request can send (JSON has none; the review of 2026-12-06)."""
    numbers = values.astype("float64")
    return numbers.where(np.isfinite(numbers))


def _parse_numbers(text: pd.Series, comma: bool | None = None) -> tuple[pd.Series, bool]:
    """Numbers from cleaned text and the decimal separator used (a comma: True): a currency code or
    a percent sign dropped (``_UNIT``), then read by ``features.numbers.read_number_text`` with
    ``comma`` (None: decided from the values). "Infinity", "inf" or "1e999" is no number of a table (a probe's
    "Seat Utilization: inf%" reason): read as missing, and counted as a value that is not a number."""
    numbers, comma = read_number_text(text.str.replace(_UNIT, "", regex=True), comma)
    return numbers.where(np.isfinite(numbers)), comma


def _decimal(spec: FeatureSpec) -> bool | None:
    """The decimal separator a number column was read with at training (None: a bundle from before)."""
    return {"comma": True, "point": False}.get(spec.params.get("decimal", ""))


def _file_decimal(df: pd.DataFrame) -> bool | None:
    """The table's decimal separator where its text columns show one (``features.numbers``: ``379,15``
    shows a comma, ``1.000`` shows nothing): True (a comma) when more values show a comma than a point,
    False for the reverse, None without evidence. A column that shows neither is read by it: a German
    export's ``Selbstbeteiligung`` of ``500``, ``1.000`` and ``2.500`` beside ``379,15`` premiums is 500,
    1000 and 2500 (a probe's insurer export: read as 1.0 and 2.5 in 1,012 of 7,188 rows)."""
    comma = point = 0
    for name in df.columns:
        if _is_text(df[name]):
            c, p = shown_separators(_clean_text(df[name]))
            comma, point = comma + c, point + p
    return None if comma == point else comma > point


def _written(text: pd.Series, numbers: pd.Series, grouped: bool = False) -> str | None:
    """One value of a number column not written as a plain number, with what it reads as
    (``'1.234,50 EUR' as 1234.5``); None when every value is plain. ``grouped``: read by the table's
    separator, where ``1.000`` is a plain-looking 1000."""
    if grouped:  # a separator, a unit or a sign shows it ("12%": a probe's percentages were not listed)
        shown = text[text.notna() & numbers.notna() & text.str.contains(r"[^\d\s-]", regex=True)]
        return None if shown.empty else f"{shown.iloc[0]!r} as {numbers[shown.index[0]]:.15g}"
    plain = pd.to_numeric(text, errors="coerce").notna()
    shown = text[text.notna() & numbers.notna() & ~plain]
    if shown.empty:
        return None
    return f"{shown.iloc[0]!r} as {numbers[shown.index[0]]:.15g}"  # every digit read: '115.553,61' as 115553.61


#: A 0/1 flag's value written as a word (a Parquet bool trained the flag; the same data team's CSV writes
#: True / False: probe p61's scores moved by up to 0.27 when every such value read as missing).
FLAG_WORDS = {w: str(LABEL_VALUES[w]) for w in ("true", "false", "yes", "no", "y", "n", "t", "f")}


def _flag_words(text: pd.Series) -> pd.Series:
    """A flag column's cleaned text with ``FLAG_WORDS`` as 1 / 0 (any case)."""
    return text.map(lambda v: FLAG_WORDS.get(v.casefold(), v) if isinstance(v, str) else v)


#: A hand-kept sheet's yes and no written two ways in one column (``Yes``, ``Y``, ``no``, ``N``): one value each.
YES_NO = {w: "yes" if LABEL_VALUES[w] else "no" for w in ("y", "yes", "n", "no")}


def fold_category(value: object, lower: bool = True, yes_no: Mapping[str, str] | None = None) -> object:
    """A category value as training read its column: in lower case for a case-folded column (``_one_case``), and
    for a column of yes and no (``yes_no``: ``yes`` / ``no`` -> the spelling training kept) any ``YES_NO`` spelling as
    that spelling (a re-export's ``Yes`` where training saw ``Y``); anything but text as it is."""
    if not isinstance(value, str):
        return value
    key = value.casefold()
    if yes_no and YES_NO.get(key) in yes_no:
        return yes_no[YES_NO[key]]
    return key if lower else value


def _one_case(text: pd.Series) -> tuple[pd.Series, str | None, dict[str, str] | None]:
    """A category column in lower case when some of its values differ only in case (``monthly``,
    ``Monthly``), with two such spellings for the report; a column of yes and no written both short and long
    (``Y``, ``Yes``, ``n``: ``YES_NO``) as ``yes`` and ``no`` (a probe's sheet kept ``TV Bundle`` as four
    categories); else the column as it is and None. Third: for a column of only yes and no, ``yes`` / ``no`` -> the
    spelling kept (``fold_category``: scoring reads any other spelling of them as that one), else None."""
    spellings = pd.Series(text.dropna().unique(), dtype=object).astype(str)
    short = set(spellings.str.casefold())
    yes_no_only = bool(short) and short <= YES_NO.keys()
    if yes_no_only and short & {"y", "n"} and short & {"yes", "no"}:
        shown = sorted(spellings)
        said = ", ".join(repr(v) for v in shown[:-1]) + f" and {shown[-1]!r}"
        kept = {v: v for v in sorted(set(YES_NO[v] for v in short))}
        return (text.map(lambda v: fold_category(v, True, kept)),
                f"{said} read as {' and '.join(repr(v) for v in kept)}", kept)
    shown = _first_twins(text, lambda spellings: spellings.str.casefold())
    col, said = (text.str.casefold(), f"{' and '.join(repr(v) for v in shown[:2])} read as {shown[0].casefold()!r}") \
        if shown else (text, None)
    kept = {YES_NO[v.casefold()]: v for v in pd.unique(col.dropna())} if yes_no_only else None
    return col, said, kept


def _first_twins(text: pd.Series, key: Callable[[pd.Series], pd.Series]) -> list[str]:
    """The spellings (sorted) of the first group of a text column's distinct values that ``key`` makes equal
    (an empty key is no group); [] when no two values share a key."""
    spellings = pd.Series(text.dropna().unique(), dtype=object).astype(str)
    keys = key(spellings)
    twins = spellings[keys.duplicated(keep=False) & (keys != "")]
    if twins.empty:
        return []
    return sorted(twins[keys[twins.index] == keys[twins.index[0]]])


def near_twins(text: pd.Series) -> str | None:
    """Two values of a category column that differ only in spaces or punctuation (``Month to Month``,
    ``Month-to-Month``), said as a hint: they may be one value written two ways (probe p33's table), or two
    values (``A+`` and ``A``); the file is where to merge them. None when there are none."""
    shown = _first_twins(text, lambda spellings: spellings.str.casefold().str.replace(r"[\W_]+", "", regex=True))
    return " and ".join(repr(v) for v in shown[:2]) if shown else None


def case_folded(catalogue: Catalogue) -> tuple[str, ...]:
    """The categories that training read in lower case (``_one_case``: ``params["case"] == "lower"``)."""
    return tuple(spec.name for spec in catalogue.features if spec.params.get("case") == "lower")


def yes_no_folded(catalogue: Catalogue) -> dict[str, dict[str, str]]:
    """The categories of only yes and no: name -> ``yes`` / ``no`` -> the spelling training kept (``_one_case``)."""
    return {spec.name: dict(spec.params["yes_no"]) for spec in catalogue.features
            if isinstance(spec.params.get("yes_no"), dict)}


def categories_as_trained(rows: pd.DataFrame | FeatureRows, names: tuple[str, ...],
                          blanks: frozenset[str] = frozenset(),
                          yes_no: Mapping[str, Mapping[str, str]] | None = None) -> pd.DataFrame | FeatureRows:
    """``rows`` (a frame or the service's ``FeatureRows``) with their categories read as training read them:
    the categories ``names`` (``case_folded``, worked out once per model by the caller) in lower case, so
    ``Monthly`` sent to ``/score`` is the ``monthly`` the model knows; and a request's (``FeatureRows``)
    category values without surrounding spaces, an empty one missing, as training and ``score --table``
    (``_clean_text``) and the event-log features (``TRIM``) read them (a probe's ``"Premium "`` was scored
    as an unseen plan); ``blanks`` (a flat table's model: ``BLANK_TOKENS``) read as missing too (a value in
    another case than training saw it: ``FeatureFrame.respelled``); ``yes_no`` (``yes_no_folded``) with any
    spelling of yes and no as the one training kept. A frame's rows themselves when no category is folded."""
    yes_no = dict(yes_no or {})

    def read(c: str, v: np.ndarray) -> np.ndarray:
        lower = c in names
        return np.array([fold_category(x, lower, yes_no.get(c)) for x in v], dtype=object)
    if isinstance(rows, FeatureRows):
        def clean(v: object) -> object:
            if not isinstance(v, str):
                return v
            v = v.strip()
            return None if not v or v.lower() in blanks else v

        strip = np.vectorize(clean, otypes=[object])
        labels = {c: (strip(v) if len(v) else v) for c, v in rows.labels.items()}
        labels = {c: (read(c, v) if (c in names or c in yes_no) and len(v) else v) for c, v in labels.items()}
        return FeatureRows(list(rows.account_ids), rows.numeric_names, rows.numeric, labels)
    folded = [name for name in dict.fromkeys([*names, *yes_no]) if name in rows.columns]
    if not folded:
        return rows
    out = rows.copy()
    for c in folded:
        out[c] = read(c, out[c].to_numpy(dtype=object))
    return out


def _identifier(name: str, col: pd.Series) -> bool:
    """Whether a column identifies rows: a different value on every row, and for numbers whole ones that run
    1..n (a row number) or a name that says id (``CustomerId``): an id's size means nothing."""
    if len(col) < MIN_ROWS or col.isna().any() or col.nunique() < len(col):
        return False
    if not pd.api.types.is_numeric_dtype(col):  # words with spaces are free text, as features.profile reads them
        return bool(col.astype(str).str.contains(" ").mean() < 0.5)
    if not bool((col == np.floor(col)).all()):
        return False
    steps = np.diff(np.sort(col.to_numpy()))
    return bool((steps == 1).all()) or id_like_name(name)


def parse_label(values: pd.Series, column: str) -> np.ndarray:
    """0/1 labels (1: churned) from the accepted spellings (``LABEL_VALUES``), case-insensitive. A yes / no,
    true / false or 1 / 0 of a column named for staying (``staying_label``: ``renewed``) is read the other way
    round (its "no" churned); words that say the side (churned / active, ...) are read as they say.

    Raises:
        TableError: a value is not understood (up to 5 shown) or only one class is left.
    """
    y = _label_values(values, column)
    if staying_label(column) and not _says_side(values):
        y = 1 - y
    return y


def _says_side(values: pd.Series) -> bool:
    """Whether a text label's values are words of a side (``LABEL_WORDS``), which no column name turns round."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return False
    key = values.astype("object").where(values.notna(), "").astype(str).str.strip().str.lower()
    return bool(key.isin(LABEL_WORDS).any())


def _label_values(values: pd.Series, column: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        y = values.astype(int).to_numpy()
    elif pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
        bad = values[~numbers.isin([0.0, 1.0])]
        if len(bad):
            raise TableError(_label_message(column, bad))
        y = numbers.astype(int).to_numpy()
    else:
        key = values.astype("object").where(values.notna(), "").astype(str).str.strip().str.lower()
        mapped = key.map(LABEL_VALUES)
        bad = values[mapped.isna()]
        if len(bad):
            raise TableError(_label_message(column, bad))
        y = mapped.astype(int).to_numpy()
    classes = sorted(set(y.tolist()))
    if len(classes) < 2:
        raise TableError(
            f"label column {column!r} holds a single class ({classes[0] if classes else 'none'}) "
            f"in {len(y)} rows: a model needs churned and retained customers"
        )
    return y.astype("int64")


def _label_message(column: str, bad: pd.Series) -> str:
    shown = [repr(v) for v in pd.unique(bad.astype("object"))[:5]]
    return (f"label column {column!r}: cannot read {len(bad)} value(s) as churned/retained, "
            f"e.g. {', '.join(shown)}; understood (any case): yes/no, true/false, 1/0, "
            f"churned/active, churn/retained, cancelled/active (or canceled), left/stayed, y/n, t/f")


def _ids(df: pd.DataFrame, id_col: str) -> pd.Index:
    ids = df[id_col]
    if _is_text(ids):
        ids = _clean_text(ids)
    blank = ids.isna()
    if blank.any():
        rows = (np.flatnonzero(blank.to_numpy())[:5] + 1).tolist()
        raise TableError(f"id column {id_col!r} has {int(blank.sum())} blank value(s), "
                         f"at data rows {rows}")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        shown = [repr(v) for v in pd.unique(dup.astype("object"))[:5]]
        raise TableError(
            f"id column {id_col!r} is not unique: {dup.nunique()} id(s) repeat, "
            f"e.g. {', '.join(shown)}"
        )
    return pd.Index(ids, name=id_col)


def _date_spec(name: str, reading: DateReading) -> FeatureSpec:
    """A date column's catalogue entry: days from the date to the table's as-of date, negative after
    it; worded "30 days ago" / "in 30 days" (``training.reason_text``); its reading in ``params``."""
    return FeatureSpec(name=name, group="event_type", type="float", unit="days",
                       definition=(f"days from column {name!r} of the customer table to the table's as-of date "
                                   "(negative: a date after it)"),
                       direction=0, valid_range=(None, None), optional=True, reason_en=f"{name}: {{value}}",
                       reason_zh=f"{name}：{{value}}", template="table_column",
                       params={"column": name, **reading.params()})


#: A currency sign or code written with a number ("$1,234.50", "1.290,00 EUR")
_MONEY = re.compile(rf"([{re.escape(CURRENCY_SIGNS)}])|(?<![A-Za-z])({'|'.join(CURRENCY_CODES)})(?![A-Za-z])"
                    f"|({'|'.join(CURRENCY_WORDS)})", re.IGNORECASE)


def money_of(text: pd.Series) -> str | None:
    """The one currency sign or code written with ``NUMERIC_SHARE`` of a number column's values ("$", "EUR"),
    kept so a reason shows the amount as it was written ("Monthly Charges: $18.25", not "18.2"); else None."""
    values = text.dropna()
    if values.empty:
        return None
    found = values.str.extract(_MONEY)
    token = found[0].combine_first(found[1].str.upper()).combine_first(found[2])  # "12.50 usd" is USD
    top = token.value_counts()
    return str(top.index[0]) if len(top) and top.iloc[0] >= NUMERIC_SHARE * len(values) else None


def _spec(name: str, categorical: bool, flag: bool = False, comma: bool | None = None,
          folded: bool = False, percent: bool = False, direction: int = 0,
          valid: tuple[float, float] | None = None, money: str | None = None,
          yes_no: Mapping[str, str] | None = None) -> FeatureSpec:
    """A table column's catalogue entry: a category, a 0/1 flag (worded only when 1) or a number; no
    bounds (a flag is 0/1 in the training rows, a count may still be 2 later). ``comma``: a number read
    from text, with a decimal comma (True) or point (False), kept so scoring reads it the same way;
    ``folded``: a category read in lower case (``_one_case``), at scoring too; ``yes_no``: a column of only yes
    and no, each with the spelling kept (any other read as it at scoring); ``percent``: a number written
    "12%", read as 12, unit ``percent`` (a reason says "Discount: 20%"); ``direction``: ``profile.columns``'
    (+1: more is riskier, -1: less), 0 for a category; ``valid``: the bounds of a person's age (values
    outside read as missing, at scoring too; ``/score`` refuses them); ``money``: the currency sign or code its
    values were written with (``money_of``), for the reasons' text."""
    group, ftype, unit, kind = (("profile", "category", "category", "category") if categorical else
                                ("event_type", "float", "flag", "0/1 flag") if flag else
                                ("event_type", "float", "percent" if percent else "value", "number"))
    en, zh = ((f"{name}: yes (1)", f"{name}：是（1）") if flag and not categorical
              else (f"{name}: {{value}}", f"{name}：{{value}}"))
    return FeatureSpec(name=name, group=group, type=ftype, unit=unit,
                       definition=f"column {name!r} of the customer table ({kind})",
                       direction=0 if categorical else direction, valid_range=valid or (None, None), optional=True,
                       reason_en=en, reason_zh=zh, template="table_column", params={"column": name, **(
                           {} if comma is None else {"decimal": "comma" if comma else "point"}),
                           **({"case": "lower"} if folded else {}), **({"yes_no": dict(yes_no)} if yes_no else {}),
                           **({"money": money} if money else {})})


def _date_reading(name: str, s: pd.Series, text: pd.Series | None, numbers: pd.Series | None,
                  date_format: str | None) -> tuple[DateReading | None, str | None]:
    """(reading, None) for a date column, (None, reason) for dates that do not read, else (None, None)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return DateReading("typed"), None
    if numbers is not None:
        return judge_number(name, numbers), None
    if text is None:  # a boolean column
        return None, None
    try:
        return judge_text(name, text, date_format)
    except AmbiguousDatesError as exc:
        raise TableError(str(exc)) from exc


def _type_columns(df: pd.DataFrame, report: dict, date_format: str | None = None,
                  profile: ProfileSettings | None = None
                  ) -> tuple[dict[str, pd.Series], list[FeatureSpec], dict[str, pd.Series]]:
    """Type each feature column by content, fill the report; return the kept columns (a date column's
    value is its days, filled by the caller once the as-of date is known), their specs and the date
    columns' days (``training.table_dates.read_dates``). ``profile`` (``churnwatch.yaml``'s, checked by
    ``_check_profile``): columns excluded, and a column's ``kind`` (number or category) and ``direction``."""
    profile = profile or ProfileSettings()
    kept: dict[str, pd.Series | None] = {}
    specs: list[FeatureSpec] = []
    dates: dict[str, pd.Series] = {}
    file_comma = _file_decimal(df)
    for name in df.columns:
        s = df[name]
        text = numbers = comma = money = None
        percent = False
        told = profile.columns.get(name, ProfileColumn())
        if name in profile.exclude:
            report["dropped_excluded"].append(name)
            continue
        if name not in profile.columns and personal_data_name(str(name)):
            report["dropped_personal"].append(name)
            continue
        if pandas_index_name(str(name)):
            report["dropped_name"][name] = PANDAS_INDEX
            continue
        if told.kind == "category":
            text = _as_text(s)
            col, categorical = text, True
        elif told.kind == "number" and _is_text(s):
            text = _clean_text(s)
            numbers, comma = _parse_numbers(text)
            unread = text[text.notna() & numbers.isna()]
            if len(unread) > (1 - NUMERIC_SHARE) * text.notna().sum():
                raise TableError(f"column {name!r} is set to kind: number in churnwatch.yaml, but {len(unread):,} of "
                                 f"{int(text.notna().sum()):,} non-blank values are not numbers, e.g. "
                                 f"{', '.join(repr(v) for v in pd.unique(unread)[:3])}: fix them or drop the setting")
            col, categorical = numbers, False
            money = money_of(text[numbers.notna()])
        elif pd.api.types.is_bool_dtype(s):
            col, categorical = s.astype("float64"), False
        elif pd.api.types.is_datetime64_any_dtype(s):
            col, categorical = s, False
        elif pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            col, categorical = _finite(s), False
            numbers = col
        elif _is_text(s):
            text = _clean_text(s)
            by_file = file_comma is not None and shown_separators(text) == (0, 0)
            numbers, comma = _parse_numbers(text, file_comma if by_file else None)
            n_filled = int(text.notna().sum())
            n_parsed = int(numbers.notna().sum())
            if n_filled and n_parsed >= NUMERIC_SHARE * n_filled:
                col, categorical = numbers, False
                unparsed = text[text.notna() & numbers.isna()]
                if len(unparsed):
                    report["numeric_text_unparsed"][name] = {
                        "count": int(len(unparsed)),
                        "examples": [str(v) for v in pd.unique(unparsed)[:5]],
                    }
                percent = bool(text.dropna().str.endswith("%").mean() >= NUMERIC_SHARE)
                money = money_of(text[numbers.notna()])
                written = _written(text, numbers, by_file)
                if written:
                    report["numbers_from_text"][name] = written + (
                        f" (a decimal {'comma' if comma else 'point'}, as the table's other number columns show)"
                        if by_file else "")
            else:
                numbers = comma = None
                col, categorical = text, True
        else:
            report["dropped_unsupported"][name] = str(s.dtype)
            continue
        if told.kind is not None:
            report["kinds_set"][name] = told.kind
        reading, unreadable = (None, None) if told.kind else _date_reading(str(name), s, text, numbers, date_format)
        if unreadable:
            report["dropped_unreadable_dates"][name] = unreadable
            continue
        if reading is not None:
            source = s if reading.how == "typed" else (numbers if numbers is not None else text)
            days = read_dates(source, reading)
            if days.nunique(dropna=False) <= 1:
                report["dropped_constant"].append(name)
                continue
            if name not in profile.columns and latest_at_export_name(str(name)):
                report["dropped_name"][name] = LATEST_DATE_IN_TABLE  # two probes: Last Contact Date, unseen
                continue
            if _refused_name(report, name, list(kept)):
                continue
            _count_unread(report, name, source, days)
            _count_blanks(report, name, text, s)
            report["numeric_text_unparsed"].pop(name, None)
            report["numbers_from_text"].pop(name, None)
            report["date_columns"].append(name)
            report["date_readings"][name] = reading.describe()
            dates[name], kept[name] = days, None
            specs.append(_date_spec(str(name), reading))
            continue
        folded, yes_no = None, None
        if categorical:
            col, folded, yes_no = _one_case(col)
            if folded:
                report["categories_case_folded"][name] = folded
            twins = near_twins(col)
            if twins:
                report["categories_near_twins"][name] = twins
        if _identifier(str(name), col):
            report["dropped_identifier"].append(name)
            for found in ("numeric_text_unparsed", "numbers_from_text", "categories_near_twins"):
                report[found].pop(name, None)
            continue
        if categorical and col.nunique() > MAX_CATEGORIES:
            report["dropped_free_text"].append(name)
            for found in ("categories_case_folded", "categories_near_twins"):  # not a category after all
                report[found].pop(name, None)
            continue
        if col.nunique(dropna=False) <= 1:
            report["dropped_constant"].append(name)
            continue
        if _refused_name(report, name, list(kept)):
            continue
        if not categorical and name not in profile.columns and place_code_name(str(name)):
            report["dropped_name"][name] = PLACE_CODE  # a number that names a place (a text code is a category)
            continue
        flag = not categorical and bool(col.dropna().isin([0.0, 1.0]).all())
        valid = None if categorical or flag else _age_bounds(str(name), col)
        if valid is not None:
            col = _outside_as_missing(report, name, col, valid)
        _count_blanks(report, name, text, s)
        if categorical:
            kept[name] = col.astype("category")
            report["categorical_columns"].append(name)
        else:
            kept[name] = col
            report["numeric_columns"].append(name)
            if flag:
                report.setdefault("flag_columns", []).append(name)
        specs.append(_spec(str(name), categorical, flag, None if categorical else comma, bool(folded), percent,
                           told.direction, valid, None if categorical or flag else money, yes_no))
    return kept, specs, dates


def _age_bounds(name: str, col: pd.Series) -> tuple[float, float] | None:
    """``AGE_YEARS`` for a number column named as a person's age (``features.profile.age_name``) whose
    non-zero values are mostly ages (``features.profile.mostly_ages``), as for an account's own column;
    else None."""
    if not age_name(name):
        return None
    given = col.dropna()
    given = given[given != 0]  # 0: the exports' "unknown", no evidence of a unit
    return AGE_YEARS if mostly_ages(int(given.between(*AGE_YEARS).sum()), len(given)) else None


def _outside_as_missing(report: dict, name: str, col: pd.Series, valid: tuple[float, float]) -> pd.Series:
    """``col`` with the values outside ``valid`` missing, counted in ``report["outside_range"]``."""
    outside = col.notna() & ~col.between(*valid)
    if outside.any():
        report.setdefault("outside_range", {})[name] = {
            "count": int(outside.sum()), "range": list(valid),
            "examples": [float(v) for v in sorted(pd.unique(col[outside]))[:3]]}
    return col.where(~outside)


def _refused_name(report: dict, name: str, taken: list[str]) -> bool:
    """Whether a column that would be a feature has a name LightGBM stops on (``BOOSTER_NAME_REFUSED``), or
    one it would store as an earlier feature's of ``taken`` (``Monthly Fee`` and ``Monthly_Fee``: it writes
    spaces as ``_``); it is then listed as not used, with the way out (an identifier, free text or a
    constant is listed as such first: pandas' ``Unnamed: 0`` index is an identifier)."""
    refused = sorted(set(str(name)) & set(BOOSTER_NAME_REFUSED))
    stored = booster_names([str(name)])[0]
    twin = next((t for t in taken if booster_names([str(t)])[0] == stored), None)
    if not refused and twin is None:
        return False
    if twin is not None:  # the feature's name under another spelling: not a column a request may send
        report.setdefault("name_twins", {})[name] = twin
    for found in ("numeric_text_unparsed", "numbers_from_text", "categories_case_folded", "categories_near_twins"):
        report[found].pop(name, None)
    report["dropped_name"][name] = (
        f"its name holds {' '.join(refused)}, which LightGBM cannot keep in a feature name: rename the column to "
        "use it" if refused else
        f"LightGBM stores its name as {stored!r}, the name it stores for column {twin!r}: rename one of them")
    return True


def _count_blanks(report: dict, name: str, text: pd.Series | None, typed: pd.Series | None = None) -> None:
    """The blanks (``BLANK_TOKENS``, read as missing) of a column kept as a feature and read from text, whatever
    it became (a number, a category, a date): a gym's ' ' genders and birth dates are counted as its fees are; a
    typed column's (Parquet) nulls likewise (``typed``: a probe's 65% null telematics score went unsaid)."""
    if text is not None:
        report["blanks"][name] = int(text.isna().sum())
    elif typed is not None:
        report["blanks"][name] = int(typed.isna().sum())


def _count_unread(report: dict, name: str, source: pd.Series, days: pd.Series) -> None:
    """Non-blank values of a date column that did not read (or are placeholders), counted with examples."""
    unread = source[source.notna() & days.isna()]
    if len(unread):
        report["date_unread"][name] = {"count": int(len(unread)),
                                       "examples": [str(v) for v in pd.unique(unread.astype(str))[:5]]}


def _check_profile(path: Path, profile: ProfileSettings | None, columns: list[str]) -> None:
    """``churnwatch.yaml``'s ``profile`` as a table reads it: every key a column of the table, and only what a
    table column can take (``kind`` number or category, ``direction``; ``exclude``).

    Raises:
        TableError: naming the key and what is wrong.
    """
    if profile is None:
        return
    for key in [*profile.exclude, *profile.columns]:
        if key not in columns:
            raise TableError(f"{path}: churnwatch.yaml's profile names column {key!r}, which the table does not "
                             f"have (feature columns: {', '.join(columns)})")
    for key, told in profile.columns.items():
        other = [what for what, given in (("name", told.name), ("unit", told.unit),
                                          ("valid_range", told.valid_range)) if given is not None]
        if told.kind in ("date", "boolean"):
            other.append(f"kind: {told.kind}")
        if other:
            raise TableError(f"{path}: churnwatch.yaml's profile.columns.{key}: {', '.join(other)} is not read for a "
                             "table column; a table takes kind (number or category) and direction (dates and "
                             "yes/no values are recognised by their values)")


def table_rows(table: OwnTable) -> tuple[pd.DataFrame, Catalogue]:
    """The table as training rows (its features, ``churn_label``, ``account_id`` = the row's id) and
    its catalogue with one reason group per column (each column is its own signal)."""
    feats = tuple(dataclasses.replace(f, group=f.name) for f in table.catalogue.features)
    rows = table.frame.copy()
    rows["churn_label"] = table.y
    rows["account_id"] = rows.index.astype(str)
    return rows, Catalogue(features=feats, event_types=(), ignored=table.catalogue.ignored)


def load_own_table(path: str | Path, label: str, id_col: str, as_of: dt.date | None = None,
                   date_format: str | None = None, profile: ProfileSettings | None = None) -> OwnTable:
    """Read a flat churn table (CSV or Parquet) and type its columns by content.

    Args:
        path: a ``.csv`` (read as text, then parsed) or ``.parquet`` file.
        label: the churn label column; spellings in ``LABEL_VALUES``, any case.
        id_col: the customer id column; must be unique and never blank.
        as_of: the table's as-of date, the day its dates are counted to (``--as-of``); None: the
            latest date not after today of its past-looking date columns (``training.table_dates``).
        date_format: ``churnwatch.yaml``'s ``date_format``, for text dates that are not ISO.
        profile: ``churnwatch.yaml``'s ``profile``: ``exclude`` (columns not used) and per column ``kind``
            (``number`` or ``category``: a code such as a city tier 1-3 is a category) and ``direction``.

    Returns:
        ``OwnTable`` whose ``report`` holds ``file``, ``rows``, ``label_column``,
        ``label_counts`` (``{"churned": n, "retained": n}``), ``numeric_columns``,
        ``categorical_columns``, ``blanks`` (blank count per feature column read from text: numbers,
        categories and dates), ``numeric_text_unparsed`` (count and examples of
        non-blank values that did not parse and became missing), ``numbers_from_text`` (column ->
        one value not written as a plain number and what it read as), ``categories_case_folded``
        (column -> two spellings that differ only in case; read in lower case), ``dropped_identifier``
        (columns with a different value on every row, see ``_identifier``), ``dropped_personal`` (a person's
        name or contact details by the column's name, ``features.profile.personal_data_name``, unless
        ``profile.columns`` names the column), ``dropped_name`` (column ->
        why: a character LightGBM refuses in a feature name), ``dropped_free_text``,
        ``dropped_constant``, ``dropped_unsupported`` (column -> dtype), ``date_columns``,
        ``date_readings`` (column -> how it was read), ``date_unread`` (count and examples of
        non-blank values that did not read as dates), ``dropped_unreadable_dates`` (column ->
        reason), ``as_of_columns`` (the past-looking date columns, which may set the as-of date), ``as_of``
        (ISO date, None without date columns or ``as_of``) and ``as_of_source``.

    Raises:
        TableError: the file cannot be read, a column is missing, labels are unclear
            or one class only, ids repeat or are blank, no feature column is left, or a
            column holds day/month dates (``3/5/2024``) and no ``date_format`` says which, or the
            date columns all look ahead and no ``as_of`` is given.
    """
    path = Path(path)
    df = _read(path)
    df.columns = [str(c).strip() for c in df.columns]
    for role, col in (("label", label), ("id", id_col)):
        if col not in df.columns:
            raise TableError(f"{path}: no {role} column {col!r}; "
                             f"columns are: {', '.join(df.columns)}")
    if label == id_col:
        raise TableError(f"{path}: the label and the id are the same column {label!r}")
    if df.empty:
        raise TableError(f"{path}: the table has no rows")
    y = parse_label(df[label], label)
    index = _ids(df, id_col)
    report: dict = {
        "file": str(path), "rows": int(len(df)), "label_column": label, "id_column": id_col,
        "label_counts": {"churned": int(y.sum()), "retained": int(len(y) - y.sum())},
        "label_staying": staying_label(label) and not _says_side(df[label]),
        "numeric_columns": [], "categorical_columns": [], "blanks": {},
        "numeric_text_unparsed": {}, "numbers_from_text": {}, "categories_case_folded": {}, "categories_near_twins": {},
        "dropped_identifier": [], "dropped_name": {}, "dropped_excluded": [], "dropped_personal": [], "kinds_set": {},
        "dropped_free_text": [], "dropped_constant": [],
        "dropped_unsupported": {}, "date_columns": [], "date_readings": {}, "date_unread": {},
        "dropped_unreadable_dates": {}, "as_of": None, "as_of_source": "",
    }
    features = df.drop(columns=[label, id_col])
    _check_profile(path, profile, list(features.columns))
    kept, specs, dates = _type_columns(features, report, date_format, profile)
    if not specs:
        raise TableError(f"{path}: no usable feature column left (report: {report})")
    if dates:  # which columns may set the as-of date, kept so a table scored later uses the same ones
        past = past_looking(dates)
        late = dated_after_export(dates, past, y) if as_of is None else {}
        if late:  # written once the customer left: no as-of date from it; the leakage guard judges it
            report["dated_after_export"] = late
            past = [n for n in past if n not in late]
        report["as_of_columns"] = past
        specs = [dataclasses.replace(spec, params={**spec.params, "as_of_column": "yes" if spec.name in past else
                                                   "late" if spec.name in late else "no"})
                 if spec.name in dates else spec for spec in specs]
    if dates or as_of is not None:
        try:
            day, source = reference_day(dates, as_of, past=report.get("as_of_columns"))
        except NoReferenceError as exc:
            raise TableError(f"{path}: {exc}") from exc
        report["as_of"], report["as_of_source"] = day.isoformat(), source
        kept.update({name: days_since(days, day) for name, days in dates.items()})
    frame = pd.DataFrame(kept, index=features.index)
    frame.index = index
    for name, info in report["numeric_text_unparsed"].items():
        log.warning("%s: column %r: %d value(s) not numbers, read as missing, e.g. %s",
                    path, name, info["count"], info["examples"])
    for name, info in report["date_unread"].items():
        log.warning("%s: column %r: %d value(s) not dates, read as missing, e.g. %s",
                    path, name, info["count"], info["examples"])
    catalogue = Catalogue(features=tuple(specs), event_types=(), ignored=table_ignored(report))
    return OwnTable(frame=frame, y=y, catalogue=catalogue, report=report)


def _names(columns: list[str], most: int = 8) -> str:
    shown = ", ".join(columns[:most])
    return shown + (f" and {len(columns) - most} more" if len(columns) > most else "")


def describe_table(report: dict) -> list[str]:
    """How ``load_own_table`` read the table, in lines for the terminal: the rows and labels, each
    column's reading (numbers, 0/1 flags, categories), blanks read as missing, columns not used."""
    counts = report["label_counts"]
    flags = report.get("flag_columns", [])
    numbers = [c for c in report["numeric_columns"] if c not in flags]
    lines = [f"read {Path(report['file']).name}: {report['rows']:,} customers ({counts['churned']:,} churned, "
             f"{counts['retained']:,} retained; label {report['label_column']!r}, id {report['id_column']!r})"]
    if report.get("label_staying"):
        lines.append(f"label {report['label_column']!r} names staying: a customer churned where it is no, false or 0")
    if counts["churned"] > counts["retained"]:
        lines.append(f"warning: more than half of the customers read as churned "
                     f"({counts['churned'] / report['rows']:.0%}): if {report['label_column']!r} is yes for those who "
                     "stayed, write the churned ones as yes or 1, or use a column named for staying (renewed, active)")
    parts = [f"{len(cols)} {one if len(cols) == 1 else many} ({_names(cols)})" for one, many, cols in
             (("number", "numbers", numbers), ("0/1 flag", "0/1 flags", flags),
              ("category", "categories", report["categorical_columns"]),
              ("date", "dates", report.get("date_columns", []))) if cols]
    lines.append("columns read as " + "; ".join(parts))
    if report.get("date_columns"):
        lines.append(f"dates as days since {report['as_of']}, the as-of date ({report['as_of_source']}); a date "
                     "after it counts as negative days: " + ", ".join(
                         f"{c} ({how})" for c, how in report["date_readings"].items()))
    blanks = {c: n for c, n in report["blanks"].items() if n}
    if blanks:
        lines.append("blank values read as missing: " + ", ".join(f"{c} {n:,}" for c, n in blanks.items()))
    for c, found in report.get("outside_range", {}).items():
        lo, hi = found["range"]
        lines.append(f"{c}: {found['count']:,} values outside {lo:g}-{hi:g} read as missing (not an age: "
                     + ", ".join(f"{v:g}" for v in found["examples"]) + ")")
    unread = report.get("date_unread", {})
    if unread:
        lines.append("values that are not dates read as missing: " + ", ".join(
            f"{c} {d['count']:,} (e.g. {d['examples'][0]!r})" for c, d in unread.items()))
    for key, said in (("numbers_from_text", "numbers written as text, read as numbers"),
                      ("categories_case_folded", "categories spelled in more than one case (or yes and no also "
                       "as Y and N), read as one"),
                      ("categories_near_twins", "category values that differ only in spaces or punctuation, kept "
                       "apart (merge them in the file if they are one value)"),
                      ("kinds_set", "read as churnwatch.yaml's profile.columns says")):
        how = report.get(key, {})  # column -> how it was read
        if how:
            lines.append(f"{said}: " + ", ".join(f"{c} ({h})" for c, h in how.items()))
    unused = [f"{c} ({why})" for c, why in unused_columns(report).items()]
    if unused:
        lines.append("columns not used: " + ", ".join(unused))
    return lines


@dataclass
class ScoringTable:
    """A table read for scoring (``read_scoring_table``).

    Attributes:
        rows: ``account_id`` (the id, as text) and the feature columns, one row per customer in file order.
        y: the 0/1 labels when a label column was asked for and is present, else None.
        as_of: the day the table's dates are counted to (None: the model has no date column and no
            ``as_of`` was given).
        as_of_source: where ``as_of`` came from (``--as-of``, or the column whose latest date it is).
    """

    rows: pd.DataFrame
    y: np.ndarray | None
    as_of: dt.date | None = None
    as_of_source: str = ""


def read_scoring_table(path: str | Path, id_col: str, catalogue: Catalogue, label: str | None = None,
                       as_of: dt.date | None = None, label_if_readable: bool = False,
                       used: Iterable[str] | None = None) -> ScoringTable:
    """Rows of a flat table typed as a table model was trained (``churnwatch score --table``).

    Each feature column of ``catalogue`` is read the way ``load_own_table`` typed it at
    training: categoricals as cleaned text, numerics parsed (thousands separators, blanks as
    missing), dates with the reading kept in their catalogue entry, as days since this table's own
    as-of date: ``as_of`` when given, else the latest date not after today of the columns that were
    past-looking at training (a table exported a month later counts a month more; a ``contract_end``
    never sets it). Other columns are ignored; the label column is optional (``label_if_readable``:
    labels that do not all read, blanks for current customers, give no ``y`` instead of an error).
    ``used``: the model's features (default: all of ``catalogue``); a column of ``catalogue`` training left out
    of the model (a repeat of another feature) may be absent (missing in the rows) and a date of it that does not
    read is left out of the as-of date, not an error (``/score`` ignores such columns too).

    Raises:
        TableError: unreadable file, no id column, blank or repeated ids, feature columns
            the model needs that the file lacks (named), no as-of date to be found and none given, or a
            date column of which under ``DATE_SHARE`` of the non-blank values read as at training (a few
            unread values are missing, with a warning).
    """
    path = Path(path)
    df = _read(path)
    df.columns = [str(c).strip() for c in df.columns]
    if id_col not in df.columns:
        raise TableError(f"{path}: no id column {id_col!r}; columns are: {', '.join(df.columns)}")
    needed = set(catalogue.names if used is None else used)
    missing = [n for n in catalogue.names if n not in df.columns and n in needed]
    if missing:
        raise TableError(f"{path}: the model needs column(s) {', '.join(missing[:5])} that the table lacks"
                         + (f" ({len(missing)} in all)" if len(missing) > 5 else ""))
    if df.empty:
        raise TableError(f"{path}: the table has no rows")
    ids = _ids(df, id_col)
    cats = set(catalogue.categorical)
    out = {"account_id": ids.astype(str).to_numpy()}
    dates: dict[str, pd.Series] = {}
    for spec in catalogue.features:
        if spec.name not in df.columns:  # a column the model does not read (``needed`` above)
            out[spec.name] = np.full(len(df), np.nan if spec.name not in cats else None, dtype=object)
            continue
        name, s = spec.name, df[spec.name]
        if spec.params.get("kind") == "date":
            reading = DateReading.from_params(spec.params)
            given = _clean_text(s) if _is_text(s) else s  # the values counted when they do not read
            if pd.api.types.is_datetime64_any_dtype(s):
                pass  # typed by the file: read as it is, whatever the training file held
            elif reading.how in ("epoch", "yyyymmdd", "excel"):
                s = _parse_numbers(given)[0] if _is_text(s) else _finite(s)
            else:
                s = given
            days = read_dates(s, reading)
            try:
                _check_scored_dates(path, name, reading, given, days)
            except TableError:
                if name in needed:
                    raise
                log.warning("%s: column %r, which the model does not read, does not read as dates as at training: "
                            "not used for the table's as-of date", path, name)
                out[name] = np.full(len(df), np.nan)
                continue
            dates[name] = days.reset_index(drop=True)
        elif name in cats:
            text = _as_text(s)
            lower, yes_no = spec.params.get("case") == "lower", spec.params.get("yes_no")
            yes_no = yes_no if isinstance(yes_no, dict) else None
            if lower or yes_no:
                text = text.map(lambda v, lower=lower, yes_no=yes_no: fold_category(v, lower, yes_no))
            out[name] = text.to_numpy(dtype=object)
        else:
            if _is_text(s):  # text that is no number is missing, said as training says it (probe p58: silent here)
                text = _flag_words(_clean_text(s)) if spec.unit == "flag" else _clean_text(s)
                values = _parse_numbers(text, _decimal(spec))[0]
                unread = text[text.notna() & values.isna()]
                if len(unread) and name in needed:  # a column the model does not read is not the user's concern
                    log.warning("%s: column %r: %d value(s) not numbers, read as missing, e.g. %s",
                                path, name, len(unread), [str(v) for v in pd.unique(unread)[:5]])
            else:
                values = _finite(s)
            lo, hi = spec.valid_range  # an age's years (else none): outside them missing, as at training
            if lo is not None or hi is not None:
                values = values.mask(values.notna() & ~values.between(-np.inf if lo is None else lo,
                                                                      np.inf if hi is None else hi))
            out[name] = values.to_numpy()
    # the columns that set the as-of date at training (a bundle from before they were kept: judged again)
    marked = [spec for spec in catalogue.features if "as_of_column" in spec.params]
    past = [spec.name for spec in marked if spec.params["as_of_column"] == "yes"] if marked else None
    try:
        day, source = reference_day(dates, as_of, past=past) if dates or as_of is not None else (None, "")
    except NoReferenceError as exc:
        raise TableError(f"{path}: {exc}") from exc
    for name, days in dates.items():
        out[name] = days_since(days, day).to_numpy()
    rows = pd.DataFrame(out)[["account_id", *catalogue.names]]
    y = None
    if label and label in df.columns:
        try:
            y = parse_label(df[label], label)
        except TableError:
            if not label_if_readable:
                raise
    return ScoringTable(rows=rows, y=y, as_of=day, as_of_source=source)


def _check_scored_dates(path: Path, name: str, reading: DateReading, source: pd.Series, days: pd.Series) -> None:
    """A date column read at scoring as at training: its non-blank values that do not read are counted as
    training counts them (``_count_unread``); a few are missing with a warning, more than ``1 - DATE_SHARE``
    of them stop the scoring (``3/5/2024`` where training read ``2024-03-05`` would all be missing).

    Raises:
        TableError: under ``DATE_SHARE`` of the non-blank values read, naming the column, the reading
            trained with and examples.
    """
    found: dict = {"date_unread": {}}
    _count_unread(found, name, source, days)
    if name not in found["date_unread"]:
        return
    unread = found["date_unread"][name]
    n = int(source.notna().sum())
    if n - unread["count"] < DATE_SHARE * n:
        raise TableError(
            f"{path}: column {name!r}: {unread['count']:,} of {n:,} non-blank values do not read as dates the way "
            f"the model was trained ({reading.describe()}; {DATE_SHARE:.0%} must read), e.g. "
            f"{', '.join(repr(v) for v in unread['examples'][:3])}: write them as the training table did, or train "
            "again on this table (with a date_format in churnwatch.yaml for day/month dates)")
    log.warning("%s: column %r: %d value(s) not dates, read as missing, e.g. %s",
                path, name, unread["count"], unread["examples"])


def read_sent_cells(cells: list[list], specs: list[FeatureSpec], today: dt.date) -> list[tuple[int, str, str]]:
    """The text values of ``cells`` (request rows x the ``specs`` of their columns; only a flat table's number
    and date columns take text, ``serving.api``) replaced, in place, by what training read from such text
    ("1.290,00 EUR", "$1,234.50", "12%", "2026-03-15"): a number with the decimal separator kept for its
    column (a point where none was kept; a currency code or percent sign dropped), all number columns in one query
    (``features.numbers.read_number_columns``); a date with its column's reading, or as ISO text, as days from
    it to ``today`` (the day of the request: a table's own dates count to its as-of date, a request's to the
    day it is made). Blanks ("", "N/A", "-") are missing.

    Returns:
        ``(row, feature, why)`` of each value that does not read, or reads outside the feature's range.
    """
    at = {j: [i for i, row in enumerate(cells) if type(row[j]) is str] for j in range(len(specs))}
    text = {j: _clean_text(pd.Series([cells[i][j] for i in rows], dtype=object)) for j, rows in at.items() if rows}
    numbers = [j for j in text if specs[j].params.get("kind") != "date"]
    text.update({j: _flag_words(text[j]) for j in numbers if specs[j].unit == "flag"})
    values = {j: v.to_numpy() for j, v in zip(numbers, read_number_columns(
        {str(j): text[j].str.replace(_UNIT, "", regex=True) for j in numbers},
        # a column of no recorded separator (typed numbers; a bundle from before it was kept) reads a point: a
        # request's value must not read as the other values of the batch show (the review: "1.500" alone 1.5,
        # beside "2,75" 1500)
        {str(j): bool(_decimal(specs[j])) for j in numbers}).values(), strict=True)} if numbers else {}
    for j in text.keys() - set(numbers):
        reading = DateReading.from_params(specs[j].params)
        if reading.how in ("epoch", "yyyymmdd", "excel"):
            days = read_dates(_parse_numbers(text[j])[0], reading)
            if (days.isna() & text[j].notna()).any():  # "2026-03-15" for any date column
                days = days.fillna(read_dates(text[j].where(days.isna()), DateReading("text")))
        else:
            days = read_dates(text[j], DateReading("text") if reading.how == "typed" else reading)
        values[j] = days_since(days, today).to_numpy(dtype=float)
    problems = []
    for j, rows in ((j, at[j]) for j in sorted(text)):
        spec, lo, hi = specs[j], *specs[j].valid_range
        for k, i in enumerate(rows):
            v = float(values[j][k])
            if pd.notna(text[j].iloc[k]) and np.isnan(v):
                how = ("a date as training read this column, nor as an ISO date" if spec.params.get("kind") == "date"
                       else "a number as training read this column")
                problems.append((i, spec.name, f"{cells[i][j]!r} does not read as {how}"))
            elif np.isinf(v):  # "Infinity", "1e999": a probe's CRM export answered 500 (JSON has no infinity)
                problems.append((i, spec.name, f"{cells[i][j]!r} reads as {v:g}: not a finite number"))
                v = float("nan")
            elif (lo is not None and v < lo) or (hi is not None and v > hi):
                bounds = ", ".join("-inf" if b is None and n == 0 else "inf" if b is None else f"{b:g}"
                                   for n, b in enumerate((lo, hi)))
                problems.append((i, spec.name, f"{cells[i][j]!r} reads as {v:g}, outside [{bounds}]"))
            cells[i][j] = None if np.isnan(v) else v
    return sorted(problems)


def table_test_predictions(bundle: ModelBundle, test: pd.DataFrame, as_of: dt.date | None = None) -> pd.DataFrame:
    """The test rows' out-of-sample predictions of a table model (the bundle's
    ``test_predictions.csv``: its evaluation for ``promote`` and monitoring's reference).
    ``as_of`` (default today) fills the column snapshot bundles have."""
    scored = bundle.predict(test)
    return pd.DataFrame({"account_id": test["account_id"].astype(str).to_numpy(),
                         "as_of": pd.Timestamp(as_of or dt.date.today()),
                         "churn_label": test["churn_label"].to_numpy(dtype=int),
                         **{c: scored[c].to_numpy() for c in scored.columns}})


def stratified_split(y: np.ndarray | pd.Series, test_size: float = 0.2,
                     calibration_size: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / calibration / test row positions, each with the table's churn rate.

    A flat table has no time axis, so blocks are stratified random samples (the
    snapshot path splits by as-of date instead). Sizes are shares of all rows.

    Returns:
        ``(train_idx, cal_idx, test_idx)``: sorted, disjoint positions covering all rows.

    Raises:
        TableError: fewer than 50 rows, or fewer than 10 churned or retained rows.
        ValueError: sizes outside (0, 1) or summing to 1 or more.
    """
    labels = np.asarray(y).astype(int)
    if not (0 < test_size < 1 and 0 < calibration_size < 1 and test_size + calibration_size < 1):
        raise ValueError(f"test_size {test_size} and calibration_size {calibration_size} "
                         "must be in (0, 1) and sum to less than 1")
    n, pos = len(labels), int(labels.sum())
    if n < MIN_ROWS or pos < MIN_PER_CLASS or n - pos < MIN_PER_CLASS:
        raise TableError(
            f"too little data to split: {n} rows ({pos} churned, {n - pos} retained); "
            f"need at least {MIN_ROWS} rows and {MIN_PER_CLASS} of each class"
        )
    outer = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    rest, test = next(outer.split(np.zeros(n), labels))
    inner = StratifiedShuffleSplit(n_splits=1, test_size=calibration_size / (1 - test_size),
                                   random_state=seed)
    train, cal = next(inner.split(np.zeros(len(rest)), labels[rest]))
    return np.sort(rest[train]), np.sort(rest[cal]), np.sort(test)


def write_example_table(path: Path, rows: int = 2000, seed: int = 0) -> Path:
    """Write a small telecom-style churn table (CSV) for the docs and tests.

    Columns: ``customer_id``, ``tenure_months``, ``monthly_charges`` (text: sometimes
    "1,234.50", sometimes padded, ~3% blank or "NA"), ``total_charges``, ``contract``,
    ``payment_method``, ``support_calls``, ``internet_service`` and ``Churn`` (Yes/No),
    drawn from a logistic model of the other columns, so a model can learn it (ROC-AUC
    about 0.8).
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    contract = rng.choice(["month-to-month", "one year", "two year"], rows, p=[0.55, 0.25, 0.20])
    payment = rng.choice(["electronic check", "mailed check", "bank transfer (automatic)",
                          "credit card (automatic)"], rows, p=[0.35, 0.2, 0.225, 0.225])
    internet = rng.choice(["DSL", "Fiber optic", "No"], rows, p=[0.35, 0.45, 0.20])
    long_contract = contract != "month-to-month"
    tenure = np.clip(np.round(rng.gamma(1.5, 14, rows) + 18 * long_contract), 1, 72).astype(int)
    base = np.select([internet == "Fiber optic", internet == "DSL"], [900.0, 600.0], 250.0)
    monthly = np.round(base + rng.normal(0, 180, rows).clip(-220, None), 2)
    total = np.round(monthly * tenure * rng.uniform(0.95, 1.02, rows), 2)
    calls = rng.poisson(1.2, rows)
    logit = (-1.6 + 1.3 * (contract == "month-to-month") - 1.2 * (contract == "two year")
             - 0.035 * tenure + 0.6 * (internet == "Fiber optic")
             + 0.55 * (payment == "electronic check") + 0.35 * calls + 0.0008 * (monthly - 700))
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    grouped = (monthly >= 1000) & (rng.random(rows) < 0.6)
    text = np.array([f"{m:,.2f}" if g else f"{m:.2f}"
                     for m, g in zip(monthly, grouped, strict=True)], dtype=object)
    padded = rng.random(rows) < 0.05
    text[padded] = [f" {t} " for t in text[padded]]
    blank = rng.random(rows)
    text[blank < 0.02] = ""
    text[(blank >= 0.02) & (blank < 0.03)] = "NA"
    df = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(1, rows + 1)],
        "tenure_months": tenure, "monthly_charges": text, "total_charges": total,
        "contract": contract, "payment_method": payment, "support_calls": calls,
        "internet_service": internet, "Churn": np.where(churn, "Yes", "No"),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path
