"""A company's own columns as profile features (issue 12, item 2).

Columns of ``accounts`` (and of ``subscriptions``) that the contract does not name
become features without code, read by what their values are:

* numbers as numbers; booleans as 0/1;
* dates as "days since" at the as-of date ``t`` (``t - date``; null when the date is
  ``t`` or after, so nothing is read from the future: a moment of day ``t`` itself, an unsubscribe
  at 13:19 on the as-of day, is not known at ``t``, as events count before ``t``); a numeric
  column in Unix epoch seconds or milliseconds too, but only when its name AND every value say date (``epoch_date``: a
  false date is worse than a missed one), and a number written YYYYMMDD (20150428, as logging
  and warehouse exports write dates) on the same terms (``ymd_date``); the decision is its ``note``;
  a date before 1900-01-02 is a placeholder (1900-01-01, 0001-01-01) and reads as missing;
  negative epoch values (dates before 1970, a birth date) when the name says date and every value
  is a date of 1900-2099 (``features.epoch.signed_epoch_values``); text in the format
  ``churnwatch.yaml`` declares (``date_formats`` for the column, or the source's ``date_format``:
  ``own_date_format``), read as the contract's columns are (``features.dates``);
* a person's age (``age_name``: ``age``, ``bd``, ``customer_age``; not ``account_age`` or
  ``Age (days)``), when most of its non-zero values lie in 1-120, reads as missing outside 1-120
  (0 for "unknown", -7, 1051 are not ages); ``profile.columns.<column>.valid_range`` sets such bounds
  for any number column; the note counts the values set aside;
* text with few distinct values (``profile.max_categories``, default 50) as categories.

A subscriptions column gives the value of the latest term started on or before ``t`` (null when
that term has none, whatever older terms held).
Every column not used (a contract column, free text, id-like, a person's name or contact details
(``personal_data_name``, unless ``profile.columns`` names it), too many categories, all null, an
export-time status, excluded in the config) is listed with its reason in
``ProfilePlan.unused``: printed by ``churnwatch features`` and kept in the store.

Once the store holds a plan, later builds into it (``score --data``, a later ``features`` on new
data) keep the kinds it decided (``kept``): a model is fed the kinds it was trained with. A column
the new values alone would decide otherwise keeps its stored kind, and its note says so; only
``churnwatch features --from-scratch`` or ``profile.columns.<column>.kind`` decide again.

Over 400 lines: finding the columns, deciding their kinds, keeping a stored plan's kinds and the
SQL stages that read them are one contract and are read together (reading epoch dates is
``features.epoch``'s).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import duckdb

from core.errors import ConfigError, DataContractError
from core.settings import ProfileColumn, ProfileSettings, Settings
from features.contract import DATED_START, DATED_SUBSCRIPTIONS, TABLES
from features.dates import (
    YEARS,
    YYYYMMDD,
    DateFormat,
    check_own_date_format_keys,
    first_format,
    format_setting,
    unread_dates_message,
)
from features.epoch import any_moment, date_name, epoch_number_cast, epoch_values, signed_epoch_values
from features.numbers import number_cast, text_number_mode
from features.spec import FeatureSpec, slug
from features.sql import is_in, q
from features.timeline import dn

Kind = Literal["number", "category", "date", "boolean"]
PROFILE_TABLES = ("accounts", "subscriptions")
#: Why a column of another table (events, tickets, invoices, ...) that is no contract column is not used.
OTHER_TABLE = "not read: own columns become features in accounts and subscriptions only"
#: Contract columns that no feature reads (shown elsewhere): listed, so a user who mapped one knows.
DISPLAY_ONLY = {("tickets", "category"): "no feature reads it (the report's ticket list shows it): the ticket "
                                         "features count tickets of every category together"}
PREFIX = {"accounts": "acct", "subscriptions": "sub"}
#: Snapshot columns that are not features; a feature may not take these names.
RESERVED = frozenset({"account_id", "as_of", "churn_label", "labelled", "tn"})
#: How a note or reason starts / what it holds when the store's plan decided, not this data
KEPT = "kept as the store's plan decided"
AGAIN = "`churnwatch features --from-scratch` decides again"
#: Why a build of some dates leaves out a column the stored snapshots do not have
NOT_STORED = "not a column of the stored snapshots"
#: Reasons for not using a column that come from the config, the column's name or the stored snapshots,
#: not its values: decided again on every build (a changed config is the user's word)
_CONFIG_REASONS = ("contract column", "mapped to the contract column", "excluded in", "id-like (name)",
                   "export-time state", NOT_STORED, "personal data", "a postal code")
#: A number column whose name says a person's age (``age_name``): values outside these years
#: (inclusive) are not ages
AGE_YEARS = (1.0, 120.0)
#: Names of a person's age: the whole name (``age``, ``bd``, ``Age (years)``), or ``age`` after
#: one of these words (``customer_age``, ``member_age``); ``account_age``, ``ticket_age`` and
#: ``page_age`` are durations of things, not ages of people
_AGE_NAMES = frozenset({"age", "bd"})
_PERSON_WORDS = frozenset({"customer", "member", "user", "contact", "client", "subscriber", "owner", "person",
                           "buyer", "patient", "driver", "holder", "student", "player", "respondent", "employee"})
#: Words of a unit in years, which an age may name (``age_years``, ``Age (yrs)``)
_YEAR_WORDS = frozenset({"years", "year", "yrs", "yr", "in"})
#: Share of the non-zero values that must lie within ``AGE_YEARS`` for an age's bounds to apply: a
#: column named as an age whose values mostly lie outside is in another unit, and is left as it is
AGE_SHARE = 0.5
#: An own date before this is a placeholder (1900-01-01, 0001-01-01): read as missing
FIRST_DATE = "1900-01-02"
#: A date written as a YYYYMMDD number (a float column's ".0" allowed), of the years the contract's
#: undeclared YYYYMMDD columns are read in (``features.dates.YEARS``: 1900-2099)
_YMD = "[0-9]{8}([.]0*)?"
#: Text longer than this on average is free text, not a category.
FREE_TEXT_CHARS = 40

_ID_LIKE = re.compile(r"(^id$|_id$|^id_|uuid|guid|e_?mail|phone|^name$|_name$)")
#: Why a column whose name says it holds a person's name or contact details (``personal_data_name``) is not used
PERSONAL_DATA = "personal data (a person's name or contact details): not used as a feature"
#: Words that may stand before a personal field's name: whose it is or which one (``Customer Email``,
#: ``home_phone``, ``Billing Address Line 1``); ``plan_name``, ``company_name`` are names of things, not people
_PERSONAL_QUALIFIERS = ("customer|member|user|contact|client|subscriber|owner|person|buyer|patient|holder|student"
                        "|player|respondent|employee|account_holder|parent|guardian|emergency|primary|secondary|main"
                        "|alt|alternate|other|home|work|personal|business|office|billing|mailing|postal|shipping"
                        "|delivery|mobile|cell|contact_person|cc|bcc|recovery|backup")
_PERSONAL = re.compile(
    rf"^(?:(?:{_PERSONAL_QUALIFIERS})_)*(?:"
    r"(?:(?:first|last|full|given|family|middle|maiden|sur)_?)?name"  # First Name, surname, name
    r"|e_?mails?(?:_addr(?:ess)?(?:es)?)?"  # E-mail, Email Address, Recurly's cc_emails
    r"|(?:tele)?phone(?:_(?:number|no|num|nr))?|mobile(?:_(?:number|no|num|nr))?|tel(?:_(?:number|no))?"
    r"|cell_?phone(?:_(?:number|no|num|nr))?"
    r"|(?:street(?:_address|_line)?|address(?:_line)?)(?:_?[0-9])?"  # Street, Address Line 1
    r")$")


#: Why pandas' row index, written into the file with the data, is not used
PANDAS_INDEX = ("pandas' row index, written into the file with the data (`to_parquet` / `to_csv` without "
                "`index=False`): row positions, not a fact about the customer")
_PANDAS_INDEX = re.compile(r"^(__index_level_[0-9]+__|Unnamed: [0-9]+)$")


def pandas_index_name(column: str) -> bool:
    """Whether a column is pandas' unnamed row index written with the data: ``__index_level_0__`` in a
    Parquet file of a filtered frame, ``Unnamed: 0`` in a CSV read and written again. Its values are
    row positions (sorted by sign-up they are a tenure in disguise), so it is never a feature."""
    return bool(_PANDAS_INDEX.match(column))


#: Why a column whose name says it holds a postal code (``place_code_name``) is not used
PLACE_CODE = ("a postal code: a place written as a number, not a quantity (to use it, name it under profile.columns "
              "with kind: category)")
_PLACE_CODE = re.compile(r"(^|_)(zip|zipcode|zip_code|zip5|postal_code|postalcode|postcode|post_code|postleitzahl"
                         r"|plz|pincode|pin_code|code_postal|codigo_postal|cep)$")


def place_code_name(column: str) -> bool:
    """Whether a column's name says it holds a postal code, as its last word (``Zip Code``, ``billing_zip``,
    ``PostalCode``, ``PLZ``; not ``Zip Code Population``): as a number its size means nothing (a probe's
    telecom table: ``Zip Code`` weighed as much as the monthly charges in the model, as noise), so such a
    number is no feature unless ``profile.columns`` names it (a code written as text is a category as
    any text)."""
    return bool(_PLACE_CODE.search(name_words(column)))


#: An e-mail address whoever's it is (``shop_owner_email``, ``Billing Contact E-mail``): a name ending so
_EMAIL_AT_END = re.compile(r"(^|_)e_?mails?(_addr(ess)?(es)?)?$")


#: Chinese column names read by the name rules (``name_words`` keeps only ASCII letters and digits, so a Chinese
#: name read as "" and passed every rule: a probe's Chinese CRM table fed ``手机号``, a phone number, to
#: the model and trained on ``最近登录日期`` while ``Last Login Date`` was left out), with its spaces and
#: brackets dropped. Personal data is the whole name, after at most one word of whose it is (``客户姓名``,
#: ``手机号码``; not ``国际电话``, ``绑定手机``: services or flags), as the English rule reads ``Customer Email``.
_ZH_PERSONAL = re.compile(
    "^(?:客户|会员|用户|联系人|紧急联系人|家庭|办公|工作|备用|主要|个人|收货|账单|通讯|注册)?(?:" + "|".join((
        "姓名", "名字", "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "联系方式", "固话", "座机",
        "邮箱", "邮箱地址", "电子邮件", "电子邮箱", "地址", "住址", "联系地址", "身份证", "身份证号", "身份证号码",
        "微信", "微信号", "QQ", "QQ号", "联系人")) + ")$", re.IGNORECASE)
#: Identifiers: ``客户编号``, ``订单号``, ``会员卡号``, ``账号`` (``客户ID`` reads as ``id`` in ``name_words``); not
#: ``行业编码`` or ``套餐编码``, codes of a category
_ZH_ID = re.compile(r"(编号|单号|订单号|流水号|账号|帐号|卡号|会员号|工号)$")
#: The state at export, as the whole name's end: ``客户状态``, ``生命周期阶段``, ``是否活跃``, ``欠费金额``; not a
#: count (``近90天欠费次数``) and not a contract's end date (``合同到期日``, as ``Contract End Date`` is kept)
_ZH_EXPORT_STATE = re.compile("(" + "|".join((
    "状态", "阶段", "是否活跃", "是否有效", "是否在网", "是否销户", "是否注销", "是否停机", "是否欠费", "欠费",
    "欠费金额", "欠款金额", "停机日期?")) + ")$")
#: A renewal setting as the whole name (``自动续费``, ``是否自动续订``, ``自动续费状态``), not a history of it
#: (``累计自动续费``, ``自动续费次数``)
_ZH_RENEWAL = re.compile(r"^(是否)?(开通)?自动续(费|订|期)(状态|开关)?$")
#: The latest value at export: ``最近登录日期``, ``最后一次购买``, ``最新NPS``, ``上次联系时间``; not a
#: window (``最近30天登录次数``, ``最近一个月消费``, as ``last_30_days`` is read in English) nor ``线上次数``
_ZH_LATEST = re.compile(r"(最近|最后|最新|上次(?!数)|上一次|末次)"
                        r"(?!\s*[0-9０-９一二两三四五六七八九十半]+\s*个?\s*(天|日|周|星期|礼拜|月|季度|年))")


def _zh_name(column: str) -> str:
    """A column's name as the Chinese name rules read it: no spaces, no trailing bracket (``手机号（主）``)."""
    return re.sub(r"\s+", "", _NAME_SUFFIX.sub("", column))


def personal_data_name(column: str) -> bool:
    """Whether a column's name says it holds a person's name or contact details (``First Name``, ``last_name``,
    ``Surname``, ``name``, ``Customer Email``, ``E-mail``, ``Phone``, ``mobile``, ``Telephone``, ``Street``,
    ``Address Line 1``, any name ending in an e-mail: ``shop_owner_email``): such a column is no feature
    (``PERSONAL_DATA``), unless ``churnwatch.yaml``'s
    ``profile.columns`` names it. Not ``plan_name``, ``company_name``, ``Home Club``, ``PhoneService`` (a
    service taken) or ``Email Opt-in`` (a consent): the whole name must be the personal field."""
    words = name_words(column)
    return bool(_PERSONAL.match(words) or _EMAIL_AT_END.search(words) or _ZH_PERSONAL.match(_zh_name(column)))


#: Names of columns that hold the state at export time (e.g. ``status = canceled``):
#: known only when the data was exported, not at the as-of date, so they would leak the label
#: (Stripe's ``current_period_start``/``_end`` and ``ended_at``, Chargebee's ``Current Term Start``/``End``,
#: ``Next Billing At`` and dunning ``Due Since``/``Total Dues``, Paddle's ``next_bill_date``, Recurly's
#: ``expires_at`` (set once a subscription is cancelled) describe the subscription at export). A renewal setting
#: (``auto_renew``, App Store's ``auto_renew_status``, RevenueCat's ``will_renew``, ``is_auto_renew``) is the one in
#: force on the export day: copied to every period of a customer who switched it off, it marks the churners' whole
#: history (a probe's app export: ROC-AUC 0.923 alone, registered and promoted with a warning, 2,392 of 2,443
#: customers then scored healthy). A log that gives it per payment (a streaming service's transactions) adds it
#: back under ``profile.columns``; the switch itself is an event (``cancel_request``).
_EXPORT_STATE = re.compile(r"(^|_)(status|state|stage|churned|is_active|active|cancel\w*|deleted\w*|ended_at"
                           r"|current_period_\w+|current_term_\w+|next_bill\w*|due_since|total_dues"
                           r"|due_invoices_count|expires_at|delinquent|dunning\w*|past_due"
                           r"|auto_?renew(al)?(_status|_state|_enabled|_flag|_setting|_on)?|will_renew"
                           r"|renews?_automatically)$")
#: Names of an account's latest value at export (``Last Contact Date``, ``last_login_at``, ``Latest NPS``,
#: ``Most Recent Purchase``): read at an earlier as-of date it says that nothing of the kind happened
#: since, which only the export knew (see ``LATEST_AT_EXPORT``)
_LATEST = re.compile(r"(^|_)(last|latest|most_recent)(_|$)")
#: Why such a column is not used
LATEST_AT_EXPORT = ("the latest value at export (its name says last or latest): at an earlier as-of date it "
                    "tells that nothing of the kind happened after that date, which only the export knew (it "
                    "would leak the label); send the moments as events, or add it under profile.columns if it "
                    "is dated correctly")
#: Why a flat table's date column named so is not used (``training.own_table``): the table's as-of date
#: is its export, and a customer who left was last in touch as they left
LATEST_DATE_IN_TABLE = ("a latest date (its name says last or latest): for a customer who left it is often the day "
                        "they left (a cancellation call, a last login), which the table knows only because it was "
                        "exported after the outcome (it would leak the label; the leakage guard cannot tell it from "
                        "a warning sign); add it under profile.columns if the table describes each customer "
                        "before the outcome")


def latest_at_export_name(column: str) -> bool:
    """Whether a column's name says it holds an account's latest value at export (``Last Contact Date``,
    ``last_login_at``, ``Latest NPS``, ``Most Recent Purchase``, ``NPS score (last survey)``)."""
    # with a bracketed suffix too: "NPS score (last survey)" is the latest answer at export
    whole = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
    return bool(_LATEST.search(name_words(column)) or _LATEST.search(whole) or _ZH_LATEST.search(column))


#: A clock or unit named after a column's name in exports: Stripe's ``Canceled At (UTC)``.
_NAME_SUFFIX = re.compile(r"\s*[(\[（【][^)\]）】]*[)\]）】]\s*$")  # full-width brackets too: 手机号（主）


def id_like_name(column: str) -> bool:
    """Whether a column's name says it identifies (``customer_id``, ``CustomerId``, ``uuid``, ``email``)."""
    return bool(_ID_LIKE.search(name_words(column)) or _ZH_ID.search(_zh_name(column)))


def name_words(column: str) -> str:
    """A column's name as the name rules read it: lower case, words joined by ``_``, a trailing
    clock or unit in brackets dropped, so a dashboard's ``Canceled At (UTC)``, ``Customer Email`` and
    ``currentPeriodEnd`` are ``canceled_at``, ``customer_email`` and ``current_period_end``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", _NAME_SUFFIX.sub("", column))
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")


@dataclass(frozen=True)
class ExtraColumn:
    """A source column used as a feature."""

    table: str
    column: str
    kind: Kind
    feature: str
    alias: str
    epoch: Literal["s", "ms"] | None = None  # a date given in Unix epoch seconds or milliseconds
    note: str = ""  # how its kind was decided, when that is not plain (printed by `churnwatch features`)
    #: a number written as text by a spreadsheet or dashboard ($1,234.50; 49,00): "." or "," its
    #: decimal separator (``features/numbers.py``); "" when its values cast as they are
    decimal: str = ""
    #: a date written as a YYYYMMDD number (20150428)
    ymd: bool = False
    #: (low, high), inclusive, None = no bound: a number outside reads as missing (an age of 0 or 1051)
    valid: tuple[float | None, float | None] | None = None
    #: a date in epoch time with dates before 1970 as negative values (``features.epoch.signed_epoch_values``)
    signed_epoch: bool = False
    #: a date read with the format ``churnwatch.yaml`` declares (``date_formats``, or the source's
    #: ``date_format``; ``features.dates``), ``date_first`` the variant of it tried first
    date_format: str = ""
    date_first: str | None = None


@dataclass(frozen=True)
class UnusedColumn:
    """A source column not used as a feature, and why."""

    table: str
    column: str
    reason: str


@dataclass
class ProfilePlan:
    """Which of the company's own columns become features, and which do not (with why)."""

    used: list[ExtraColumn] = field(default_factory=list)
    unused: list[UnusedColumn] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"used": [asdict(c) for c in self.used], "unused": [asdict(c) for c in self.unused]}

    def of(self, table: str) -> list[ExtraColumn]:
        return [c for c in self.used if c.table == table]

    @classmethod
    def from_dict(cls, d: dict) -> ProfilePlan:
        """The plan ``to_dict`` wrote (kept in the store's metadata)."""
        return cls(used=[ExtraColumn(**{**c, "valid": tuple(c["valid"]) if c.get("valid") else None})
                         for c in d.get("used", [])],
                   unused=[UnusedColumn(**c) for c in d.get("unused", [])])

    def changed(self) -> list[str]:
        """The columns whose stored decision was kept although this data alone would decide otherwise."""
        return [f"{c.table}.{c.column}: {c.note}" for c in self.used if c.note.startswith(KEPT)] + \
            [f"{c.table}.{c.column}: {c.reason}" for c in self.unused if KEPT in c.reason]


def config_key(table: str, column: str) -> str:
    """The config key of a column: bare for accounts, ``subscriptions.<column>`` otherwise."""
    return column if table == "accounts" else f"{table}.{column}"


#: A contract type as a message says it.
_AS_WORDS = {"string": "text", "bigint": "a whole number", "double": "a number", "date": "a date",
             "timestamp": "a date and time", "boolean": "true or false"}


def check_no_contract_columns(settings: Settings) -> None:
    """``profile.columns`` names only the company's own columns, none the contract reads itself.

    A contract column (``accounts.employees``, ``subscriptions.plan``), by its name or by the source
    column ``column_mapping`` maps onto it, is read by churnwatch's own features, as the contract
    types it: a profile setting for it would change nothing, without a word.

    Raises:
        ConfigError: naming the key, the contract column, how it is read and what to do instead.
    """
    for table in PROFILE_TABLES:
        mapping = settings.column_mapping.get(table, {})
        for col in TABLES[table].columns:
            names = [col.name, *(theirs for theirs, ours in mapping.items() if ours == col.name)]
            for name in names:
                key = next((k for k in (config_key(table, name), f"{table}.{name}")
                            if k in settings.profile.columns), None)
                if key is None:
                    continue
                what = (f"{name!r} is the contract column {table}.{col.name}" if name == col.name else
                        f"{name!r} is mapped to the contract column {table}.{col.name} (column_mapping)")
                read = _AS_WORDS[col.type] + (f" ({col.description})" if col.description else "")
                instead = ("give the column another name in your export (one the contract does not have)"
                           if name == col.name else f"remove its column_mapping entry onto {col.name}")
                raise ConfigError(
                    f"profile.columns.{key}: {what}, which churnwatch reads itself, as {read}; profile settings "
                    f"apply only to your own columns and would change nothing here. Remove this entry; to "
                    f"make it a feature of your own instead, {instead}")


def _config_for(settings: Settings, table: str, column: str) -> tuple[bool, ProfileColumn | None]:
    return column_config(settings.profile, table, column)


def column_config(cfg: ProfileSettings, table: str, column: str) -> tuple[bool, ProfileColumn | None]:
    """Whether ``profile.exclude`` names a source column, and its ``profile.columns`` entry (or None)."""
    keys = {config_key(table, column), f"{table}.{column}"}
    excluded = bool(keys & set(cfg.exclude))
    found = [cfg.columns[k] for k in keys if k in cfg.columns]
    return excluded, (found[0] if found else None)


#: Words a number or date column writes for "no value" (lower case). The CSV reader keeps ``NA`` as text (a
#: region code as often: ``features.csvfiles.MISSING``); in a column whose other values are all numbers (or all
#: dates) they are missing, and said (a probe's HubSpot "NPS Score": 227 ``NA`` beside ``n/a`` and blanks made
#: the score a 12-value category, ROC-AUC 0.763 -> 0.730, with only the word "(category)" to show it).
GAP_WORDS = ("na", "n/a", "#n/a", "n.a.", "nan", "null", "none", "unknown", "not available", "-", "--", "?")


def _text_stats(con: duckdb.DuckDBPyConnection, table: str, column: str) -> dict[str, float]:
    v = f"NULLIF(TRIM(CAST({q(column)} AS VARCHAR)), '')"
    row = con.execute(f"""
        SELECT count(v), count(DISTINCT v), count(TRY_CAST(v AS DOUBLE)), count(TRY_CAST(v AS BOOLEAN)),
               count(TRY_CAST(v AS TIMESTAMP)), COALESCE(avg(length(v)), 0),
               count_if(contains(v, ' ')), count_if({is_in("lower(v)", GAP_WORDS)} AND TRY_CAST(v AS DOUBLE) IS NULL),
               count_if({is_in("lower(v)", GAP_WORDS)})
        FROM (SELECT {v} AS v FROM raw_{table}) x""").fetchone()
    # gaps: beside the numbers ('nan' casts to a number: counted there); date_gaps: beside the dates
    return dict(zip(("n", "distinct", "number", "boolean", "date", "chars", "spaces", "gaps", "date_gaps"), row))


def _gapless(table: str, column: str) -> str:
    """``raw_<table>`` with the column's ``GAP_WORDS`` as NULL (a relation, for the text-number checks:
    ``$1,200.50`` beside ``NA`` is a number column)."""
    ref = q(column)
    return (f"(SELECT CASE WHEN {is_in(f'lower(TRIM(CAST({ref} AS VARCHAR)))', GAP_WORDS)} THEN NULL ELSE {ref} END "
            f"AS {ref} FROM raw_{table}) gapless")


def gap_note(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    """"227 'NA', 12 'unknown' read as missing" for a number or date column's ``GAP_WORDS``, else ""."""
    rows = con.execute(f"""
        SELECT v, count(*) AS n FROM (SELECT TRIM(CAST({q(column)} AS VARCHAR)) AS v FROM raw_{table}) x
        WHERE {is_in("lower(v)", GAP_WORDS)} GROUP BY v ORDER BY n DESC, v""").fetchall()
    return ", ".join(f"{n:,} {v!r}" for v, n in rows) + " read as missing" if rows else ""


def epoch_date(con: duckdb.DuckDBPyConnection, table: str,
               column: str) -> tuple[Literal["s", "ms"] | None, bool, str]:
    """(unit, signed, note) for a numeric column: a unit when the column is a date in Unix epoch time,
    judged conservatively on its name (``date_name``) AND its values (every one of them epoch seconds,
    or every one milliseconds, of a date in 1973-2099; ``signed``: with a negative value, a date before
    1970, every one of a date in 1900-2099, ``features.epoch.signed_epoch_values``); the note says what
    was decided and why, or is empty for a plain number (neither the name nor the values look like a date)."""
    unit, hits, n = epoch_values(con, f"raw_{table}", column)
    named = date_name(column)
    words = {"s": "epoch seconds", "ms": "epoch milliseconds"}
    if named and unit is not None and hits == n:
        return unit, False, f"from {words[unit]}: its name and every value say date"
    if named:
        signed, signed_hits, n, unknown = signed_epoch_values(con, f"raw_{table}", column)
        missing = f"; {unknown:,} values of 0 or -1 read as missing" if unknown else ""
        if signed is not None and signed_hits + unknown == n:
            return signed, True, (f"from {words[signed]}, negative before 1970: its name and every value say "
                                  f"date (1900-2099){missing}")
        if signed is not None:
            return None, False, (f"kept a number: its name says date but only {signed_hits:,} of {n:,} values are "
                                 f"{words[signed]} of a date in 1900-2099 (negative before 1970){missing}")
    if unit is not None and hits == n:
        return None, False, (f"kept a number: its values look like {words[unit]} but its name does not say date "
                             f"(profile.columns.{config_key(table, column)}.kind: date reads it as one)")
    if named and unit is not None:
        return None, False, (f"kept a number: its name says date but only {hits:,} of {n:,} values are "
                             f"{words[unit]} of a date in 1973-2099")
    return None, False, ""


def _ymd_values(con: duckdb.DuckDBPyConnection, table: str, column: str) -> tuple[int, int]:
    """(values that are YYYYMMDD dates of 1900-2099, non-null values) of a column."""
    v = f"NULLIF(TRIM(CAST({q(column)} AS VARCHAR)), '')"
    n, hits = con.execute(f"""
        SELECT count(v), count_if(regexp_full_match(v, '{_YMD}') AND left(v, 8) >= '{YEARS[0]}0101'
                                  AND left(v, 8) < '{YEARS[1]}0101'
                                  AND TRY_STRPTIME(left(v, 8), '{YYYYMMDD}') IS NOT NULL)
        FROM (SELECT {v} AS v FROM raw_{table}) x""").fetchone()
    return int(hits), int(n)


def ymd_date(con: duckdb.DuckDBPyConnection, table: str, column: str) -> tuple[bool, str]:
    """(is a date, note) for a numeric column written YYYYMMDD (20150428): a date when its name
    says date (``date_name``) AND every value is a calendar day of 1900-2099, as ``epoch_date``
    judges epoch time; the note says what was decided, empty when neither looks like a date."""
    hits, n = _ymd_values(con, table, column)
    named = date_name(column)
    if named and n and hits == n:
        return True, "from YYYYMMDD numbers: its name and every value say date"
    if n and hits == n:
        return False, ("kept a number: its values look like YYYYMMDD dates but its name does not say date "
                       f"(profile.columns.{config_key(table, column)}.kind: date reads it as one)")
    if named and hits:
        return False, f"kept a number: its name says date but only {hits:,} of {n:,} values are YYYYMMDD dates"
    return False, ""


#: An own date column (a sign-up form's date of birth) whose values mostly read with its format: up to this
#: share of them that do not (typed day-first by hand, ``17/05/1990`` in a ``%m/%d/%Y`` column) read as
#: missing, said in the column's note; more stop ``features`` (a probe's consumer app: one typo among 7,760
#: sign-ups stopped every ``score``).
TYPO_SHARE = 0.01


def declared_format(settings: Settings, table: str, column: str) -> str | None:
    """The format ``date_formats`` declares for an own column (``{table: {column: format}}``)."""
    return settings.date_formats.get(table, {}).get(column)


def own_date_format(con: duckdb.DuckDBPyConnection, settings: Settings, table: str, column: str,
                    source_type: str, kind: Kind | None, reason: str,
                    configured_date: bool = False) -> tuple[str, str | None, str] | None:
    """(format, the variant tried first, note) when an own column's dates are read with a format of
    ``churnwatch.yaml`` (the reading of ``features.dates``, as the contract's columns): its
    ``date_formats`` entry, whatever its values; else the source's ``date_format`` for a text column
    (not numbers or booleans) with a value in the format, when every value reads with it (or as ISO;
    DuckDB's plain cast would read ``05/03/24`` as the year 5). None otherwise (an ISO column keeps the
    plain reading), and for a column its source types as a date or time. Whether a column has a value
    in the format is judged on every value (not a sample: a file of ISO history and newer day-first
    rows is a date column either way).

    Raises:
        DataContractError: a value of a column with a ``date_formats`` entry, or of a text column whose
            name says date (``date_name``) or that ``profile.columns`` makes a date (``configured_date``)
            and with a value in ``date_format``, that reads neither with the format nor as ISO, when more
            than ``TYPO_SHARE`` of its values do not (fewer read as missing, said in the note): naming the
            column, the format, where it is set, the value, and ``profile.exclude`` as the way to leave
            the column out.
    """
    if source_type.upper().startswith(("DATE", "TIMESTAMP", "TIME")) or reason == "all null":
        return None
    per_column = declared_format(settings, table, column)
    fmt = per_column or settings.date_format
    if fmt is None or (per_column is None and (source_type.upper() != "VARCHAR"
                                               or kind in ("number", "boolean"))):
        return None
    first = first_format(con, f"raw_{table}", column, fmt, sample=None)
    if per_column is None and first is None:
        return None  # no value in the format: not a date by it
    v = f"NULLIF(TRIM(CAST({q(column)} AS VARCHAR)), '')"
    bad = f"{v} IS NOT NULL AND {DateFormat(fmt, first).read(v, 'TIMESTAMP')} IS NULL"
    n_bad, n = con.execute(f"SELECT count_if({bad}), count({v}) FROM raw_{table}").fetchone()
    setting = format_setting(table, column, fmt, per_column is not None)
    dated = per_column is not None or configured_date or date_name(column)
    if n_bad and dated and n_bad <= TYPO_SHARE * n:  # a few typed by hand: missing, said with examples
        typos = [str(r[0]) for r in con.execute(f"SELECT DISTINCT {v} FROM raw_{table} WHERE {bad} LIMIT 3").fetchall()]
        return fmt, first, (f"read with {setting}; {n_bad:,} of {n:,} values read as missing, neither in the format "
                            f"nor ISO ({', '.join(map(repr, typos))})")
    if n_bad and dated:
        cur = con.execute(f"SELECT * FROM raw_{table} WHERE {bad} LIMIT 1")
        row = dict(zip([d[0] for d in cur.description], cur.fetchone()))
        message = unread_dates_message(f"{table}.{column}", n_bad, fmt, setting, str(row[column]))
        raise DataContractError(f"{message}, or leave the column out (profile.exclude: [{config_key(table, column)}]); "
                                f"up to {TYPO_SHARE:.0%} of its values that do not read would be read as missing",
                                table=table, column=column, example=row)
    if n_bad:
        return None
    return fmt, first, f"read with {setting}"


def age_name(column: str) -> bool:
    """Whether a column's name says a person's age in years (``_AGE_NAMES``, ``_PERSON_WORDS``); its
    words read with a unit in brackets kept, so ``Age (days)`` or ``age_hrs`` is not one."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", spaced) if w and w not in _YEAR_WORDS]
    if len(words) == 1:
        return words[0] in _AGE_NAMES
    return len(words) == 2 and words[1] == "age" and words[0] in _PERSON_WORDS


def _bounds(con: duckdb.DuckDBPyConnection, col: ExtraColumn, cfg: ProfileColumn | None,
            settings: Settings) -> tuple[float | None, float | None] | None:
    """The configured ``valid_range``, else an age's (``AGE_YEARS``) for a column named as one
    (``age_name``) whose values mostly (``AGE_SHARE``) lie within it."""
    if cfg is not None and cfg.valid_range is not None:
        return cfg.valid_range
    if not age_name(col.column):
        return None
    inside, n = con.execute(f"SELECT count_if({_in_bounds('x', AGE_YEARS)}), count(x) FROM (SELECT "
                            f"{_typed(col, settings, bounded=False)} AS x FROM raw_{col.table}) r "
                            "WHERE x <> 0").fetchone()  # 0: the exports' "unknown", no evidence of a unit
    return AGE_YEARS if mostly_ages(inside, n) else None


def mostly_ages(inside: int, nonzero: int) -> bool:
    """Whether a column named as an age holds ages in years: at least ``AGE_SHARE`` of its non-zero
    values (``nonzero``; 0 is the exports' "unknown") lie within ``AGE_YEARS`` (``inside``). One rule
    for an account's own column and a flat table's (``training.own_table``)."""
    return bool(nonzero) and inside >= AGE_SHARE * nonzero


def _in_bounds(expr: str, valid: tuple[float | None, float | None]) -> str:
    lo, hi = valid
    tests = [f"{expr} >= {float(lo)!r}" if lo is not None else "", f"{expr} <= {float(hi)!r}" if hi is not None else ""]
    return " AND ".join(t for t in tests if t) or "TRUE"


def _outside_note(con: duckdb.DuckDBPyConnection, table: str, column: str, expr: str,
                  valid: tuple[float | None, float | None], configured: bool) -> str:
    """"212 of 600 values outside 1-120 read as missing (0, -7, 1051)"; "" when none is."""
    out, n, shown = con.execute(f"""
        SELECT count_if(NOT ({_in_bounds('x', valid)})), count(x),
               list(DISTINCT x ORDER BY x) FILTER (WHERE NOT ({_in_bounds('x', valid)}))
        FROM (SELECT {expr} AS x FROM raw_{table}) r""").fetchone()
    if not out:
        return ""
    lo, hi = ("" if b is None else f"{b:g}" for b in valid)
    values = ", ".join(f"{v:g}" for v in (shown or [])[:5]) + (", ..." if len(shown or []) > 5 else "")
    why = "profile.columns valid_range" if configured else "an age"
    return f"{out:,} of {n:,} values outside {lo or '-inf'}..{hi or 'inf'} ({why}) read as missing: {values}"


def infer_kind(con: duckdb.DuckDBPyConnection, table: str, column: str, source_type: str,
               max_categories: int) -> tuple[Kind | None, str]:
    """(kind, "") for a usable column, else (None, the reason it is not used)."""
    t = source_type.upper()
    s = _text_stats(con, table, column)
    if s["n"] == 0:
        return None, "all null"
    if t.startswith(_NUMERIC):
        return "number", ""
    if t == "BOOLEAN":
        return "boolean", ""
    if t.startswith(("DATE", "TIMESTAMP")):
        return "date", ""
    if t != "VARCHAR":
        return None, f"unsupported type {source_type}"
    if s["number"] == s["n"] or (s["number"] and s["number"] + s["gaps"] == s["n"]):
        return "number", ""
    if s["boolean"] == s["n"]:
        return "boolean", ""
    if s["date"] == s["n"] or (s["date"] and s["date"] + s["date_gaps"] == s["n"]):
        return "date", ""
    if s["gaps"] < s["n"] and text_number_mode(con, _gapless(table, column), column) is not None:  # $1,234.50, 49,00
        return "number", ""
    if s["chars"] > FREE_TEXT_CHARS or (s["distinct"] > max_categories and s["spaces"] >= s["n"] / 2):
        return None, f"free text ({int(s['distinct'])} distinct values, {s['chars']:.0f} characters on average)"
    if s["distinct"] > max_categories:
        if s["distinct"] == s["n"]:
            return None, "id-like (a different value on every row)"
        return None, f"too many categories ({int(s['distinct'])} distinct values > {max_categories})"
    return "category", ""


def _decimal(con: duckdb.DuckDBPyConnection, table: str, column: str, source_type: str) -> str:
    """"" for a number column whose values cast as they are; "." or "," (its decimal separator)
    for one written as text with currency signs or separators (``features.numbers``)."""
    gapless = _gapless(table, column)
    if source_type.upper() != "VARCHAR" or not con.execute(
            f"SELECT count(*) FROM {gapless} WHERE NULLIF(TRIM({q(column)}), '') IS NOT NULL "
            f"AND TRY_CAST(TRIM({q(column)}) AS DOUBLE) IS NULL").fetchone()[0]:
        return ""
    comma = text_number_mode(con, gapless, column)
    return "" if comma is None else ("," if comma else ".")


def _feature_name(table: str, column: str, cfg: ProfileColumn | None, taken: set[str],
                  keywords: set[str]) -> str:
    if cfg is not None and cfg.name:
        if cfg.name in taken or cfg.name in RESERVED:
            raise ConfigError(f"profile.columns.{config_key(table, column)}.name: {cfg.name!r} is already a "
                              "feature or snapshot column; choose another name")
        return cfg.name
    own = slug(column)
    name = own if own[0].isalpha() and own not in keywords else f"{PREFIX[table]}_{own}"
    if name in taken or name in RESERVED:
        name = f"{PREFIX[table]}_{own}"
    base, n = name, 2
    while name in taken or name in RESERVED:
        name, n = f"{base}_{n}", n + 1
    return name


def _unused_reason(table: str, column: str, canonical: str | None, excluded: bool,
                   cfg: ProfileColumn | None, display: str | None = None) -> str | None:
    """Why a column is not used, decided by the config or its name (None: its values decide). ``display``: the
    accounts column with the account's display name (``email.name_column``, a company's name in B2B): id-like,
    not personal data."""
    if canonical is not None:
        return (f"contract column '{canonical}'" if canonical == column
                else f"mapped to the contract column '{canonical}'")
    if excluded:
        return "excluded in churnwatch.yaml (profile.exclude)"
    if cfg is not None:
        return None  # configured columns are wanted: only their values can rule them out
    words = name_words(column)
    if pandas_index_name(column):
        return PANDAS_INDEX
    if column != display and personal_data_name(column):
        return PERSONAL_DATA
    if id_like_name(column):
        return "id-like (name)"
    if _EXPORT_STATE.search(words) or _ZH_EXPORT_STATE.search(_zh_name(column)) or _ZH_RENEWAL.match(_zh_name(column)):
        return ("export-time state: known when the data was exported, not at the as-of date (would "
                "leak the label); add it under profile.columns if it is dated correctly")
    if latest_at_export_name(column):
        return LATEST_AT_EXPORT
    return None


def _check_config_keys(con: duckdb.DuckDBPyConnection, loaded: list[str], settings: Settings) -> None:
    """Every ``profile.exclude`` / ``profile.columns`` key names a column of a loaded table, and every
    ``date_formats`` entry of ``accounts`` / ``subscriptions`` a contract column or one of the source's
    own columns not mapped to the contract."""
    known: set[str] = set()
    for table in PROFILE_TABLES:
        if table in loaded:
            cols = [r[0] for r in con.execute(f"DESCRIBE raw_{table}").fetchall()]
            known |= {config_key(table, c) for c in cols} | {f"{table}.{c}" for c in cols}
    tables = [t for t in PROFILE_TABLES if t in loaded]
    check_own_date_format_keys(con, settings, tables)
    for where, keys in (("exclude", settings.profile.exclude), ("columns", list(settings.profile.columns))):
        for key in keys:
            table = key.split(".", 1)[0] if "." in key else "accounts"
            if table in tables and key not in known:
                raise ConfigError(f"profile.{where}: {key!r} is not a column of {table} (a subscriptions "
                                  "column is written subscriptions.<column>)")


def _described(kind: Kind | None, unit: str | None, reason: str) -> str:
    if kind is None:
        return f"not used ({reason})"
    return f"{kind} (epoch {'seconds' if unit == 's' else 'milliseconds'})" if unit else kind


def _keep(kept: ProfilePlan, table: str, column: str, kind: Kind | None, unit: str | None, note: str,
          reason: str) -> tuple[ExtraColumn | None, Kind | None, str | None, str, str]:
    """(stored column, kind, unit, note, reason) of a column the stored plan decided on its values;
    the fresh decision when it did not decide it (a new column, or one its config or name ruled out)."""
    stored = next((c for c in kept.used if (c.table, c.column) == (table, column)), None)
    if stored is not None:
        if (stored.kind, stored.epoch) == (kind, unit):
            return stored, kind, unit, note, reason
        fresh = _described(kind, unit, reason)
        return stored, stored.kind, stored.epoch, (f"{KEPT}: {_described(stored.kind, stored.epoch, '')}; this "
                                                   f"data alone would make it {fresh}; {AGAIN}"), ""
    out = next((c for c in kept.unused if (c.table, c.column) == (table, column)), None)
    if out is None or out.reason.startswith(_CONFIG_REASONS) or kind is None:
        return None, kind, unit, note, reason
    first = out.reason.split(f"; {KEPT}")[0]
    return None, None, None, "", (f"{first}; {KEPT}: not used; this data alone would make it "
                                  f"{_described(kind, unit, '')}; {AGAIN}")


def discover_profile(con: duckdb.DuckDBPyConnection, loaded: list[str], settings: Settings,
                     taken: set[str], kept: ProfilePlan | None = None, add_new: bool = True) -> ProfilePlan:
    """Classify every column of ``raw_accounts`` / ``raw_subscriptions``.

    ``taken`` are the catalogue's feature names (an own column that collides gets a
    ``acct_`` / ``sub_`` prefix). ``kept`` is the store's plan: a column it decided by its
    values (a kind, or not used for its values) keeps that decision and its feature name,
    unless ``profile.columns.<column>.kind`` is configured; the note (or reason) says when
    this data alone would decide otherwise. ``add_new=False`` (a build of some dates into
    stored snapshots, whose columns are fixed) leaves out a column ``kept`` did not use.

    Raises:
        ConfigError: a configured feature name collides with an existing one, a
            ``profile.exclude`` / ``profile.columns`` key names no column, or a ``profile.columns``
            key names a contract column (``check_no_contract_columns``).
    """
    check_no_contract_columns(settings)
    _check_config_keys(con, loaded, settings)
    plan = ProfilePlan()
    names = set(taken)
    keywords = {r[0] for r in con.execute("SELECT keyword_name FROM duckdb_keywords()").fetchall()}
    for table in PROFILE_TABLES:
        if table not in loaded:
            continue
        mapping = settings.column_mapping.get(table, {})
        contract = set(TABLES[table].column_names)
        for column, source_type in con.execute(f"SELECT column_name, column_type FROM "
                                               f"(DESCRIBE raw_{table})").fetchall():
            mapped = mapping.get(column, column)
            canonical = mapped if mapped in contract else None
            excluded, cfg = _config_for(settings, table, column)
            reason = _unused_reason(table, column, canonical, excluded, cfg,
                                    settings.email.name_column if table == "accounts" else None)
            kind: Kind | None = None
            unit, note, stored, decimal, ymd, signed, dated = None, "", None, "", False, False, None
            per_column = reason is None and declared_format(settings, table, column) is not None
            if per_column and cfg is not None and cfg.kind not in (None, "date"):
                raise ConfigError(f"date_formats.{table}.{column} declares a date format but "
                                  f"profile.columns.{config_key(table, column)}.kind is {cfg.kind}: keep one of them")
            if reason is None:
                kind, reason = infer_kind(con, table, column, source_type, settings.profile.max_categories)
                dated = own_date_format(con, settings, table, column, source_type, kind, reason,
                                        configured_date=cfg is not None and cfg.kind == "date")
                if dated is not None:
                    kind, reason, note = "date", "", dated[2]
                elif kind == "number":
                    unit, signed, note = epoch_date(con, table, column)
                    if unit is None:
                        ymd, ymd_note = ymd_date(con, table, column)
                        note = ymd_note or note
                    kind = "date" if unit or ymd else kind
                    decimal = _decimal(con, table, column, source_type) if kind == "number" else ""
                    if decimal:  # printed by `churnwatch features`, as the epoch decision is
                        note = ("written as text with currency signs or separators, read with a decimal "
                                + ("comma" if decimal == "," else "point"))
                if cfg is not None and cfg.kind:
                    if reason != "all null" and cfg.kind != kind:
                        kind, unit, note = cfg.kind, None, f"{cfg.kind} as configured (profile.columns)"
                        hits, n = _ymd_values(con, table, column)
                        ymd = kind == "date" and bool(n) and hits == n
                    if kept is not None:  # the kind is the config's; the stored plan still names the column
                        stored = next((c for c in kept.used if (c.table, c.column) == (table, column)), None)
                elif per_column and kept is not None:  # a declared format is the config's word, as a kind
                    stored = next((c for c in kept.used if (c.table, c.column) == (table, column)), None)
                elif kept is not None:
                    stored, kind, unit, note, reason = _keep(kept, table, column, kind, unit, note, reason)
            if kind == "number" and cfg is None and stored is None and place_code_name(column):
                kind, reason = None, PLACE_CODE  # a place written as a number (a stored plan's use is kept)
            if kind is not None and stored is None and kept is not None and not add_new:
                kind, reason = None, (f"{NOT_STORED} (new since they were built): "
                                      "`churnwatch features` for all dates adds it")
            if kind is None:
                plan.unused.append(UnusedColumn(table, column, reason))
                continue
            if kind in ("number", "date") and source_type.upper() == "VARCHAR":
                note = "; ".join(x for x in (note, gap_note(con, table, column)) if x)
            if stored is not None and not (cfg is not None and cfg.name) and stored.feature not in names \
                    and stored.feature not in RESERVED:
                name = stored.feature  # the model knows it by that name
            else:
                name = _feature_name(table, column, cfg, names, keywords)
            names.add(name)
            ymd = kind == "date" and (ymd or (stored is not None and stored.ymd))
            signed = kind == "date" and unit is not None and (signed or (stored is not None and stored.signed_epoch))
            fmt, first = (dated[0], dated[1]) if dated is not None and kind == "date" else ("", None)
            if kind == "date" and dated is None and stored is not None and stored.date_format:
                # a date the stored plan read with a format, which this data alone would not make a date:
                # read as trained (a value that does not read is unknown), as an epoch date is
                fmt = stored.date_format
                first = first_format(con, f"raw_{table}", column, fmt)
            col = ExtraColumn(table, column, kind, name, f"x{len(plan.used)}", unit, note,
                              decimal if kind == "number" else "", ymd, signed_epoch=signed, date_format=fmt,
                              date_first=first)
            if kind != "number":
                valid = None
            elif stored is not None and stored.kind == "number" and not (cfg is not None and cfg.valid_range):
                valid = stored.valid  # decided with the stored plan: a build of a few dates reads as trained
            else:
                valid = _bounds(con, col, cfg, settings)
            if valid is not None:
                col = replace(col, valid=valid)
                outside = _outside_note(con, table, column, _typed(col, settings, bounded=False), valid,
                                        cfg is not None and cfg.valid_range is not None)
                col = replace(col, note="; ".join(x for x in (note, outside) if x))
            plan.used.append(col)
    _other_tables_unused(con, loaded, settings, plan)
    return plan


def _other_tables_unused(con: duckdb.DuckDBPyConnection, loaded: list[str], settings: Settings,
                         plan: ProfilePlan) -> None:
    """List the columns of the other tables that nothing reads (``OTHER_TABLE``): an analytics
    export's ``properties``, an invoice's ``amount_paid``, a ticket's ``status`` were dropped without
    a word, while an unused column of ``accounts`` is listed."""
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for table in loaded:
        if table in PROFILE_TABLES or table not in TABLES or f"raw_{table}" not in present:
            continue
        mapping = settings.column_mapping.get(table, {})
        contract = set(TABLES[table].column_names)
        for (column,) in con.execute(f"SELECT column_name FROM (DESCRIBE raw_{table})").fetchall():
            if mapping.get(column, column) not in contract:
                plan.unused.append(UnusedColumn(table, column,
                                                PANDAS_INDEX if pandas_index_name(column) else OTHER_TABLE))
            elif (table, mapping.get(column, column)) in DISPLAY_ONLY:
                plan.unused.append(UnusedColumn(table, column, DISPLAY_ONLY[(table, mapping.get(column, column))]))


# --- catalogue entries ------------------------------------------------------------

_TYPES = {"number": ("float", "value", (None, None)), "category": ("category", "category", (None, None)),
          "date": ("int", "days", (0.0, None)), "boolean": ("int", "flag", (0.0, 1.0))}


#: The unit of an epoch time at the end of a date column's name, with an "at" before it
#: (``unsubscribe_detected_at_ms``): a reason says "Unsubscribe detected: 1 day ago".
_DATE_UNIT = re.compile(r"(?:\s+(?:at|on))?(?:\s+(?:ms|millis|msec|s|sec|secs|seconds|us|ns|epoch|unix))+$",
                        re.IGNORECASE)


def _label(column: str, date: bool = False) -> str:
    """A column's name as a reason reads it, in both languages: "_" as spaces, first letter upper case;
    a date's epoch unit dropped."""
    text = re.sub(r"[_\s]+", " ", column).strip() or column
    if date:
        text = _DATE_UNIT.sub("", text) or text
    return (text[0].upper() + text[1:]).replace("{", "{{").replace("}", "}}")


def profile_spec(col: ExtraColumn, cfg: ProfileColumn | None) -> FeatureSpec:
    """The catalogue entry of one extra column: group ``profile``, generic reason templates."""
    ftype, unit, rng = _TYPES[col.kind]
    if col.valid is not None:  # what the build reads as missing, the API refuses with its bounds (no skew)
        rng = col.valid
    where = (f"accounts.{col.column}" if col.table == "accounts"
             else f"subscriptions.{col.column} of the latest term started on or before t")
    definition = {"number": f"{where} (a number)", "category": f"{where} (a category)",
                  "boolean": f"{where} as 1 (true) or 0 (false)",
                  "date": f"days from {where} to t; null when that date is after t"}[col.kind]
    label = _label(col.column, col.kind == "date")  # the Chinese too: a raw name without spaces was cut short
    en, zh = f"{label}: {{value}}", f"客户属性「{label}」：{{value}}"
    if col.kind == "date":
        en, zh = f"{label}: {{value}} days ago", f"客户属性「{label}」：{{value}}天前"
    elif col.kind == "boolean":
        en, zh = f"{label}: {{value}} (1 = yes, 0 = no)", f"客户属性「{label}」：{{value}}（1=是，0=否）"
    return FeatureSpec(name=col.feature, group="profile", type=ftype,  # type: ignore[arg-type]
                       unit=("currency" if cfg and cfg.unit == "cents" else cfg.unit if cfg and cfg.unit else unit),
                       definition=definition + (" in cents, read / 100" if cfg and cfg.unit == "cents" else ""),
                       direction=cfg.direction if cfg else 0, valid_range=rng, optional=True,
                       reason_en=en, reason_zh=zh, template="extra_profile",
                       params={"table": col.table, "column": col.column, "kind": col.kind, "alias": col.alias,
                               **({"keep": True} if cfg and cfg.keep else {})})


def profile_specs(plan: ProfilePlan, settings: Settings) -> list[FeatureSpec]:
    return [profile_spec(c, _config_for(settings, c.table, c.column)[1]) for c in plan.used]


# --- SQL --------------------------------------------------------------------------

def _ymd_cast(v: str) -> str:
    """SQL: a YYYYMMDD value (text) as a DATE, null when not a calendar day; written with ``substr``
    and a cast, which the Spark translation of the stages reads as well (no ``strptime`` there)."""
    # 8 digits only, as the contract's YYYYMMDD (features.dates): '2015042' is no date; a float's '.0' is
    # gone already (``_typed`` reads a whole number through BIGINT)
    return (f"CASE WHEN length({v}) = 8 THEN TRY_CAST(substr({v}, 1, 4) || '-' || "
            f"substr({v}, 5, 2) || '-' || substr({v}, 7, 2) AS DATE) END")


def _typed(col: ExtraColumn, settings: Settings | None = None, bounded: bool = True) -> str:
    """The column's value as its kind reads it (``AS`` its alias when ``bounded``; the bare expression
    without its ``valid`` bounds otherwise); a number whose ``profile.columns`` unit is ``cents`` is
    read in currency units (/ 100), as ``column_units`` does for the contract's money columns; a
    number outside its ``valid`` bounds and a date before ``FIRST_DATE`` are missing."""
    v = f"NULLIF(TRIM(CAST({q(col.column)} AS VARCHAR)), '')"
    cfg = _config_for(settings, col.table, col.column)[1] if settings is not None else None
    cents = " / 100.0" if cfg is not None and cfg.unit == "cents" else ""
    number = (number_cast(v, col.decimal == ",") if col.decimal else f"TRY_CAST({v} AS DOUBLE)") + cents
    number = f"CASE WHEN {is_in(f'lower({v})', GAP_WORDS)} THEN NULL ELSE {number} END"  # 'nan' casts to NaN
    if not bounded:
        return number
    if col.valid is not None:
        number = f"CASE WHEN {_in_bounds(number, col.valid)} THEN {number} END"
    # a date in a declared format (or ISO: ``features.dates``), in epoch time by its unit, or YYYYMMDD;
    # else ISO, or epoch time per value (a configured ``kind: date``)
    if col.ymd or col.date_format == YYYYMMDD:
        # 8 digits stored as a number: as text through a whole BIGINT, as Spark writes a DOUBLE
        # 2.0240305E7 (DuckDB 20240305.0); the same value on both engines
        x = f"TRY_CAST({v} AS DOUBLE)"
        v = f"COALESCE(CASE WHEN {x} = floor({x}) THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) END, {v})"
    moment = (DateFormat(col.date_format, col.date_first).read(v, "TIMESTAMP") if col.date_format
              else epoch_number_cast(v, col.epoch, col.signed_epoch) if col.epoch else _ymd_cast(v)
              if col.ymd else any_moment(v))
    date = f"CASE WHEN CAST({moment} AS DATE) >= DATE '{FIRST_DATE}' THEN {dn(moment)} END"
    return {"number": number,
            "boolean": f"CAST(TRY_CAST({v} AS BOOLEAN) AS INTEGER)",
            "date": date,
            "category": v}[col.kind] + f" AS {col.alias}"


def _source_key(settings: Settings, table: str, canonical: str) -> str:
    mapping = settings.column_mapping.get(table, {})
    theirs = [k for k, v in mapping.items() if v == canonical]
    return theirs[0] if theirs else canonical


def profile_stages(plan: ProfilePlan, settings: Settings) -> list[tuple[str, str]]:
    """(table, SELECT): ``xa`` (account values, one row per account) and ``xs`` (each
    (account, as-of)'s latest-term values), only for the tables that have extra columns."""
    out: list[tuple[str, str]] = []
    acc = plan.of("accounts")
    if acc:
        key = _source_key(settings, "accounts", "account_id")
        cols = ", ".join(_typed(c, settings) for c in acc)
        mins = ", ".join(f"MIN({c.alias}) AS {c.alias}" for c in acc)
        out.append(("xa", f"""
            SELECT account_id, {mins} FROM (
                SELECT NULLIF(TRIM(CAST({q(key)} AS VARCHAR)), '') AS account_id, {cols} FROM raw_accounts) r
            WHERE account_id IS NOT NULL GROUP BY account_id"""))
    sub = plan.of("subscriptions")
    if sub:
        key = _source_key(settings, "subscriptions", "account_id")
        cols = ", ".join(_typed(c, settings) for c in sub)
        # the latest term's own value, null when that term has none (not an older term's: ARG_MAX would
        # skip the nulls on DuckDB and keep them on Spark); terms starting the same day: the larger value
        latest = ", ".join(f"MAX(x.{c.alias}) AS {c.alias}" for c in sub)
        out.append(("xs", f"""
            WITH x AS (
                SELECT NULLIF(TRIM(CAST({q(key)} AS VARCHAR)), '') AS account_id,
                       {dn(q(DATED_START))} AS sn, {cols}
                FROM {DATED_SUBSCRIPTIONS}
            ), l AS (
                SELECT s.account_id, s.tn, MAX(x.sn) AS sn
                FROM spine s JOIN x ON x.account_id = s.account_id AND x.sn <= s.tn
                GROUP BY s.account_id, s.tn
            )
            SELECT l.account_id, l.tn, {latest}
            FROM l JOIN x ON x.account_id = l.account_id AND x.sn = l.sn
            GROUP BY l.account_id, l.tn"""))
    return out


def profile_expression(spec: FeatureSpec) -> str:
    """The final projection's expression of an ``extra_profile`` feature."""
    ref = f"{'xa' if spec.params['table'] == 'accounts' else 'xs'}.{spec.params['alias']}"
    if spec.params["kind"] == "date":  # known once its day is over, as events count before t: a moment of
        # day t itself (an unsubscribe at 13:19 on the as-of day) is not yet known at t
        return f"CASE WHEN {ref} < s.tn THEN s.tn - {ref} END"
    return ref


def profile_joins(plan_tables: set[str]) -> str:
    joins = []
    if "accounts" in plan_tables:
        joins.append("LEFT JOIN xa ON xa.account_id = s.account_id")
    if "subscriptions" in plan_tables:
        joins.append("LEFT JOIN xs ON xs.account_id = s.account_id AND xs.tn = s.tn")
    return "\n        ".join(joins)

