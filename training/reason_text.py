"""The wording of one reason: a feature's own value in its template, checked against the numbers.

``word`` returns ``None`` when a value cannot be worded honestly on the side it is asked for
(risk or strength); the reason builder then tries the group's next feature. The rules:

* a missing value is worded as missing, never as a value: as what the null means
  (``features.spec.null_reason``) when the row shows it, else "No data on X", and that only on the
  side the training rows show the feature's blanks on (``References.missing``: random blanks are no
  reason) or, for a null of known meaning, the side its place on the scale gives
  (``features.spec.NULL_POSITION``: "Never logged in" is a risk; a blank rating has no place, so "No
  rated tickets in the last 90 days" needs the training rows' side like "No data on X");
* a change of 0% (after rounding) is neither a risk nor a strength; a relative change must
  point the way its direction says (fewer logins is a risk, more a strength), needs at least
  ``min_base`` counts in the previous window ("down 100%" of 1 event says nothing) and an
  account old enough to have had that previous window;
* a count is worded against the typical value of accounts that stayed ("Only 1 'message'
  event in the last 90 days; a typical active account has 14"); a count no worse than typical
  is no risk (no better, no strength);
* a company's own number (unit ``value``) likewise, against its typical value; a typical value is
  quoted only when at least half of the rows that stayed have one (``References.quoted_typical``);
* a company's own date in days, months or years ago, a date of birth as an age ("Age 66");
* a category is worded with its churn rate against the overall rate ("churn is higher in
  software: 12% vs 8% overall") when the two differ by at least ``MIN_CATEGORY_GAP`` of the
  overall rate and, where the references count the category's accounts, by at least
  ``category_z(k)`` standard errors of the rate clustered by account (a training row is an account
  on one date: 259 rows of 13 accounts quoted "churn is higher in United States: 17% vs 11%
  overall" for a region that changed nothing; taking each account as one row instead hid a
  channel of 807 accounts at 7.6% against 5.8%, the model's strongest feature; ``k``, the column's categories in
  the training rows, allows for the many values of one column: among 18 values, one standing out
  by 2.5 standard errors is what chance gives), or not at all; an enum code as exported (HubSpot's
  ``COMPUTER_SOFTWARE``) is worded as words ("computer software", ``category_words``), the
  item's ``value`` stays the code;
* a window longer than the account's age says so ("in the last 90 days (a customer for 25 days)");
* a flag is worded only when it is set, on the side its direction says.

``WordCache`` remembers ``word``'s texts per distinct case for a batch (issue 14 speed). The
module is over 400 lines because the cache must know exactly what of a row each rule reads
(the account's age, a change's previous window, a null's evidence), so it lives beside the
rules and calls their helpers; split apart, those helpers would have to become public API.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist

import pandas as pd

from features.spec import (
    NULL_POSITION,
    OWN_TEMPLATES,
    PAUSED_REASON,
    FeatureSpec,
    no_data_reason,
    null_evidence,
    null_reason,
)

#: Fewest events in the previous window for a relative change to be a reason.
MIN_BASE_COUNT = 5
#: Fewest training rows of a category for its churn rate to be quoted.
MIN_CATEGORY_ROWS = 30
#: Least relative gap between a category's churn rate and the overall rate for it to be quoted as a
#: reason (28% against 27% overall is no reason: a filler, issue 12 item 8).
MIN_CATEGORY_GAP = 0.1
#: Fewest standard errors of the overall rate, over the category's accounts, by which the category's rate
#: must differ for it to be quoted (an account's rows share one fate, so its accounts are the sample) ...
CATEGORY_Z = 2.0
#: ... raised for a column of k categories to the two-sided z of ``CATEGORY_ALPHA / k`` (Bonferroni: the
#: chance that any of the column's categories stands out by chance stays about 5%), ``category_z``.
CATEGORY_ALPHA = 0.05
#: The count windows of a family, shortest first (the next one bounds a previous window).
WINDOWS = (7, 30, 90)


@lru_cache(maxsize=256)
def category_z(categories: int) -> float:
    """Standard errors by which a category of a column of ``categories`` values (those of the training rows)
    must stand out to be quoted: the two-sided z of ``CATEGORY_ALPHA / categories``, never below ``CATEGORY_Z``
    (2 values: 2.24, 5: 2.58, 18: 2.99, 50: 3.29)."""
    return max(CATEGORY_Z, NormalDist().inv_cdf(1 - CATEGORY_ALPHA / (2 * max(categories, 1))))


def missing(value: object) -> bool:
    """True for None, NaN, pandas' NA."""
    if value is None:
        return True
    kind = type(value)
    if kind is float:
        return value != value
    if kind is str or kind is int:
        return False
    if isinstance(value, float | int):
        return value != value
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # not a scalar
        return False


@dataclass(frozen=True)
class References:
    """What values are compared with, learned on the training rows (plain JSON in the bundle).

    Attributes:
        typical: per numeric feature, the median among training rows that did not churn.
        category_churn: per categorical feature, ``{category: [churn rate, rows, accounts]}``
            (accounts: absent in references of older bundles).
        overall_churn: churn rate of all training rows.
        direction: per numeric feature the catalogue gives no direction (an event type of the
            company's own, a company's own number), the side the training rows show: +1 when
            the median of the rows that churned is above that of the rows that stayed, -1 when
            below; absent when they are equal or too few rows churned (and in older bundles).
        missing: per feature whose missingness goes with churn (+1) or with staying (-1) in the
            training rows; a feature absent has no such side. None in older bundles (a null of
            unknown meaning is then worded on either side, as before).
        paused_plans: the plans (lower case) of terms that stand for a pause (``Settings.paused_plans``): a null
            term end under one is worded ``PAUSED_REASON`` (``is_paused``).
        number_churn: per company's own number or date column, and for the term end and the MRR, ``{"edges":
            [...], "bins": [[churn rate, rows, standard error], ...]}``: the churn of the training rows by its
            value (``number_disagrees``; absent in older bundles).
    """

    typical: Mapping[str, float]
    category_churn: Mapping[str, Mapping[str, list[float]]]
    overall_churn: float | None
    direction: Mapping[str, int] = field(default_factory=dict)
    missing: Mapping[str, int] | None = None
    stayed_present: Mapping[str, float] = field(default_factory=dict)
    horizon_days: int | None = None
    number_churn: Mapping[str, Mapping[str, list]] = field(default_factory=dict)
    paused_plans: tuple[str, ...] = ()

    def quoted_typical(self, name: str) -> float | None:
        """The typical value of ``name`` to quote: None when there is none or when fewer than
        half of the rows that stayed have a value (a typical member never unsubscribed: "1 day
        ago (typical of those who stayed: 37 days ago)" compared with the few who did)."""
        value = self.typical.get(name)
        return None if missing(value) or self.stayed_present.get(name, 1.0) < 0.5 else float(value)

    def spread(self, name: str) -> float | None:
        """The width of ``name``'s middle values in the training rows (its ``number_churn`` bins: the first to the
        last edge, the 20th to the 80th percentile of a number of many values), or None without two edges."""
        edges = (self.number_churn.get(name) or {}).get("edges") or []
        return float(edges[-1] - edges[0]) if len(edges) >= 2 and edges[-1] > edges[0] else None

    @classmethod
    def from_dict(cls, d: Mapping | None) -> References:
        d = d or {}
        gone = d.get("missing")
        return cls(typical=dict(d.get("typical", {})), category_churn=dict(d.get("category_churn", {})),
                   overall_churn=d.get("overall_churn"), direction=dict(d.get("direction", {})),
                   missing=None if gone is None else dict(gone), stayed_present=dict(d.get("stayed_present", {})),
                   horizon_days=d.get("horizon_days"), number_churn=dict(d.get("number_churn", {})),
                   paused_plans=tuple(d.get("paused_plans", ())))


NO_REFERENCES = References(typical={}, category_churn={}, overall_churn=None)


_NAME_WINDOW = re.compile(r"_(\d+)d(?:_|$)")
#: A column whose name says it holds a calendar year (``birth_year``, ``Year Founded``, ``year_of_birth``, ``yob``,
#: ``model_year``, ``出生年份``), not an amount per year (``spend_per_year``, ``revenue_last_year``).
_YEAR = re.compile(r"^(?:\w+_)?(?:birth|founded|founding|established|start|signup|joined|graduation|model|build|built)"
                   r"_?year$|^year(?:_of_\w+|_(?:founded|established|built|joined|started))?$|^(?:yob|yr|birthyear)$"
                   r"|年份|出生年")


def is_year(spec: FeatureSpec, v: float) -> bool:
    """Whether ``v`` of this own number is a calendar year, written whole and without a thousands separator (a
    median of 1990.5 as 1991): from 1000 to 2999, of a column whose name says it holds a year."""
    words = re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "_", str(spec.params.get("column", spec.name)).lower()).strip("_")
    return 1000 <= v <= 2999 and bool(_YEAR.search(words))


def window_days(spec: FeatureSpec) -> int | None:
    """The feature's window in days: its ``window`` parameter, else the ``_30d`` in its name."""
    window = spec.params.get("window")
    return int(window) if window else _name_window(spec.name)


@lru_cache(maxsize=4096)
def _name_window(name: str) -> int | None:
    found = _NAME_WINDOW.search(name)
    return int(found.group(1)) if found else None


_NUMBER_FORMATS = {0: ",.0f", 1: ",.1f"}


def _number(v: float, decimals: int = 0) -> str:
    return format(v, _NUMBER_FORMATS.get(decimals) or f",.{decimals}f")


def _up_down(v: float, lang: str, amount: str, unit_en: str = "", unit_zh: str = "") -> str:
    if lang == "en":
        return f"{'up' if v >= 0 else 'down'} {amount}{unit_en}"
    return f"{'上升' if v >= 0 else '下降'}{amount}{unit_zh}"


def _change_text(spec: FeatureSpec, v: float, lang: str) -> str:
    """A change in words: "down 62%", "up 4 pts", "up 3 days", "2 fewer"."""
    if spec.unit == "ratio" and spec.name.endswith("open_rate_change"):  # a difference of rates
        return _up_down(v, lang, f"{abs(v) * 100:.0f}", " pts", "个百分点")
    if spec.unit == "ratio":
        return _up_down(v, lang, f"{abs(v) * 100:.0f}", "%", "%")
    n = abs(v)
    amount = _number(n, 0) if float(n).is_integer() else _number(n, 1)
    if spec.unit == "days":
        if lang == "en":
            return f"{'up' if v >= 0 else 'down'} {amount} day{'' if amount == '1' else 's'}"
        return f"{'增加' if v >= 0 else '减少'}{amount}天"
    if lang == "en":
        return f"{amount} {'more' if v >= 0 else 'fewer'}"
    return f"{'增加' if v >= 0 else '减少'}{amount}个"


#: A code of letters and digits joined by ``_``, all upper case or all lower case
#: (``COMPUTER_SOFTWARE``, ``paid_search``): an enum value as a tool exports it.
_SNAKE_CODE = re.compile(r"[A-Z0-9]*[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[a-z0-9]*[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def category_words(value: object) -> str:
    """A category value as a reason words it: a snake_case code (``COMPUTER_SOFTWARE``,
    ``paid_search``) as lower-case words ("computer software", "paid search"); any other value
    as it is (``Computer Software``, ``EMEA``, ``salesqualifiedlead``: one word, upper case or
    not, may be an acronym or a name, and is left alone)."""
    text = str(value)
    return text.replace("_", " ").lower() if _SNAKE_CODE.fullmatch(text) else text


def is_change(spec: FeatureSpec) -> bool:
    return "{change}" in spec.reason_en


def render_value(spec: FeatureSpec, value: object, lang: str) -> dict[str, str]:
    """The template fields for one value: ``value`` and, for changes, ``change``."""
    if missing(value):
        text = "n/a" if lang == "en" else "无数据"
        return {"value": text, "change": text}
    if spec.type == "category":
        text = category_words(value)
        return {"value": text, "change": text}
    v = float(value)
    if is_change(spec):
        text = _change_text(spec, v, lang)
        return {"value": text, "change": text}
    if spec.template == "term_end" and v == 0:  # its renewal due on the as-of date: "Term ends today"
        text = "today" if lang == "en" else "今天"
        return {"value": text, "change": text}
    if is_own_date(spec):  # days since a date: "Age 24", "45 days ago", "in 30 days", as the reason words it
        text = _age(v, lang) if is_birth_date(spec) and v >= 0 else _when(v, lang)
        return {"value": text, "change": text}
    if spec.unit == "ratio" and "{value}x" in spec.reason_en:  # a multiple: "at 1.4x the usual rate"
        text = f"{v:.1f}"
    elif spec.unit == "ratio":  # a share "of" something: a percentage above 100% too ("200% of seats in use")
        text = f"{v:.0%}"
    elif spec.unit in ("hours", "score"):
        text = _number(v, 1)
    elif spec.unit == "currency":
        text = _number(v, 0)
    elif spec.params.get("money"):  # a flat table's column written "$18.25": shown so, cents and all
        sign = str(spec.params["money"])
        amount = f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"
        text = (f"{amount}{sign}" if sign == "元" else f"{amount} {sign}" if len(sign) > 1
                else f"{'-' if v < 0 else ''}{sign}{amount.lstrip('-')}")  # 1,658.31元, 1,290.00 EUR, -$18.25
    elif spec.unit == "percent":  # a flat table's column written "12%": read as 12, shown as it was written
        text = (_number(v, 0) if float(v).is_integer() else _number(v, 1)) + "%"
    elif is_own_number(spec) and is_year(spec, v):  # "Birth year: 2005", not "2,005"
        text = str(int(math.floor(v + 0.5)))
    elif is_own_number(spec):  # a company's own price of 9.99 is 9.99, not "10.0" (a probe's consumer prices)
        text = _number(v, 0) if float(v).is_integer() else _number(v, 1 if round(v, 1) == round(v, 2) else 2)
    else:
        text = _number(v, 0) if float(v).is_integer() else _number(v, 1)
    return {"value": text, "change": text}


# English nouns that directly follow the value (after at most one qualifier) in the reason
# templates: "Term ends in 1 days" -> "1 day", "1 'key_contact_left' events" -> "1 ... event".
_AFTER_VALUE = re.compile(r"^((?: '.*?'(?= )| core-feature| core| high-priority| new-feature| late| active)?) "
                          r"(days|logins|tickets|events|users|uses|seats|payments|features|trainings or webinars)\b")


def _singular(template: str) -> str:
    head, sep, tail = template.partition("{value}")
    match = _AFTER_VALUE.match(tail) if sep else None
    if not match:
        return template
    noun = match.group(2).replace("trainings or webinars", "training or webinar").removesuffix("s")
    return head + sep + match.group(1) + " " + noun + tail[match.end():]


#: Risk wordings that read wrong as a strength, and the strength's words: "No login for 1 day" is a
#: complaint; a recent login is said as one (a probe's consumer app had it among 656 accounts' strengths).
STRENGTH_WORDING = {"No login for {value} days": "Last login {value} days ago",
                    "已{value}天未登录": "上次登录在{value}天前"}


def _neutral(template: str) -> str:
    """A reason template worded for a strength: "Only 87% of seats in use" reads as a
    complaint, so the "only" goes ("87% of seats in use", "席位使用率87%"), and "No login for 1 day"
    becomes "Last login 1 day ago" (``STRENGTH_WORDING``)."""
    template = STRENGTH_WORDING.get(template, template)
    return template.removeprefix("Only ").replace("仅", "")


def _customer_for(template: str, window: int, days: int, lang: str) -> str:
    """"in the last 90 days" -> "in the last 90 days (a customer for 25 days)": the window is longer
    than the account's current relationship. Not "in its first 25 days": a customer who came back
    25 days ago has the window's events of before (a probe's win-back read "1 'cancellation_scheduled'
    event in its first 27 days" for the request of its previous relationship)."""
    if lang == "en":
        note = f" (a customer for {days} day{'' if days == 1 else 's'})" if days >= 1 else " (a customer since today)"
        if re.search(rf"\b(?:in|of) the last {window} days\b|\bin {window} days\b", template) is None:
            return template
        return template + note
    if f"近{window}天" not in template:
        return template
    return template + (f"（成为客户{days}天）" if days >= 1 else "（今天成为客户）")


def render(spec: FeatureSpec, value: object, lang: str, strength: bool = False) -> str:
    """The plain template filled with ``value`` (a missing value: what the null means)."""
    if missing(value):
        en, zh = null_reason(spec)
        return en if lang == "en" else zh
    return _fill(spec.reason_en if lang == "en" else spec.reason_zh, spec, value, lang, strength)


def _spanless(template: str) -> str:
    """An own date's template ("{value} days ago", "{value}天前" in any bundle) with the value to say
    its own span ("16.8 years ago", ``_when``)."""
    return template.replace("{value} days ago", "{value}").replace("{value}天前", "{value}")


#: A term ending on the as-of date itself (``features.timeline.build_spine``: its renewal due, not yet seen),
#: as a reason says it ("Term ends in 0 days" would read as a glitch).
TERM_ENDS_TODAY = {"en": "Term ends today", "zh-CN": "订阅期今天到期"}
#: No invoice unpaid past its due date (``days_overdue`` 0), as a strength says it: "An invoice is 0 days overdue"
#: told 45 customers of a probe's Stripe export with nothing open that an invoice was overdue.
NONE_OVERDUE = {"en": "No invoice overdue", "zh-CN": "没有逾期发票"}


def _whole_share(shown: str) -> bool:
    """A value shown as a share of 100% or more ("150%"): no "only"."""
    try:
        return shown.endswith("%") and float(shown[:-1].replace(",", "")) >= 100
    except ValueError:
        return False


def _fill(template: str, spec: FeatureSpec, value: object, lang: str, strength: bool) -> str:
    if spec.template == "term_end" and not missing(value) and float(value) == 0:
        return TERM_ENDS_TODAY["en" if lang == "en" else "zh-CN"]
    if spec.template == "invoice_overdue" and not missing(value) and float(value) == 0:
        return NONE_OVERDUE["en" if lang == "en" else "zh-CN"]
    fields = render_value(spec, value, lang)
    if strength or _whole_share(fields["value"]):
        template = _neutral(template)  # not "Only 150% of seats in use" (a probe's B2B export), nor as a risk
    if is_own_date(spec):  # the value says its own span: "First purchase: 16.8 years ago"
        template = _spanless(template)
    if lang == "en" and fields["value"] == "1":
        template = _singular(template)
    if fields["value"] == "0" and template.startswith("Only {value} "):  # not "Only 0 core features used"
        return "No " + template.removeprefix("Only {value} ").format(**fields)
    if fields["value"] == "0" and "仅使用{value}个" in template:  # 近30天仅使用0个核心功能 -> 近30天未使用核心功能
        return template.replace("仅使用{value}个", "未使用").format(**fields)
    return template.format(**fields)


class Row:
    """One row's actual values by feature name (``None`` when missing or not in the model).

    Args:
        values: the row's values, in the order of ``position``.
        position: feature name -> index in ``values``; None: ``values`` is a mapping by name.
    """

    def __init__(self, values: Mapping[str, object] | Sequence[object],
                 position: Mapping[str, int] | None = None) -> None:
        self._values = values
        self._position = position

    def get(self, name: str) -> float | None:
        if self._position is None:
            v = self._values.get(name)
        else:
            j = self._position.get(name)
            v = None if j is None else self._values[j]
        if type(v) is float:
            return None if v != v else v
        return None if missing(v) else float(v)

    def tenure_days(self) -> float | None:
        return self.get("tenure_days")

    def raw(self, name: str) -> object:
        """The value as the row holds it (a category's text), None when missing or not in the model."""
        v = self._values.get(name) if self._position is None else (
            None if (j := self._position.get(name)) is None else self._values[j])
        return None if missing(v) else v


def is_paused(spec: FeatureSpec, row: Row, refs: References) -> bool:
    """Whether ``spec`` is the term end and the row's plan one of a pause (``References.paused_plans``)."""
    if spec.template != "term_end" or not refs.paused_plans:
        return False
    plan = row.raw("plan")  # compared as the terms' SQL compares it (features.timeline): lower case, not trimmed
    return plan is not None and str(plan).lower() in refs.paused_plans


def _change_base(spec: FeatureSpec, change: float, row: Row) -> float | None:
    """The previous window's count behind a relative change (an upper bound when the change is
    -100%: what a longer window left); None when the catalogue cannot tell."""
    current_name = spec.name.removesuffix("_change")
    current = row.get(current_name)
    if current is None or spec.unit != "ratio" or current_name == spec.name:
        return None
    if change > -1:
        return current / (1 + change)
    w = window_days(spec)
    longer = [x for x in WINDOWS if w and x >= 2 * w]
    if not longer:
        return None
    total = row.get(current_name.replace(f"_{w}d", f"_{longer[0]}d"))
    return None if total is None else total - current


def _rounds_to_zero(spec: FeatureSpec, v: float) -> bool:
    """True when the change as worded shows no change ("up 0%", "0 more")."""
    amount = re.search(r"\d[\d,]*(?:\.\d+)?", _change_text(spec, v, "en"))
    return amount is None or float(amount.group().replace(",", "")) == 0


def _word_change(spec: FeatureSpec, v: float, side: int, row: Row, lang: str, tenure: float | None,
                 min_base: float, refs: References = NO_REFERENCES) -> str | None:
    if tracks_volume(spec, refs):
        return None
    w = window_days(spec)
    if tenure is not None and w and tenure < 2 * w:
        return None  # the previous window was (partly) before the account existed
    if _rounds_to_zero(spec, v):
        return None  # "up 0%" is no change
    direction = _direction(spec, refs)
    if direction and (v > 0) != (direction * side > 0):
        return None  # "Logins up 20%" is no risk; a decline is no strength; "'Menu Viewed' events down" no strength
    base = _change_base(spec, v, row)
    if base is not None and base < min_base:
        return None
    return _fill(spec.reason_en if lang == "en" else spec.reason_zh, spec, v, lang, side < 0)


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%" if rate < 0.1 else f"{rate * 100:.0f}%"


def _word_category(spec: FeatureSpec, value: object, side: int, refs: References, lang: str) -> str | None:
    rates = refs.category_churn.get(spec.name, {})
    found = rates.get(str(value))
    overall = refs.overall_churn
    if not found or overall is None or found[1] < MIN_CATEGORY_ROWS:
        return None
    rate = float(found[0])
    if _pct(rate) == _pct(overall) or (rate > overall) != (side > 0) \
            or abs(rate - overall) < MIN_CATEGORY_GAP * overall:
        return None
    bar = category_z(len(rates))
    # the rate's standard error clustered by account (older bundles: as if each account were one row)
    se = float(found[3]) if len(found) > 3 else (
        (overall * (1 - overall) / max(found[2], 1)) ** 0.5 if len(found) > 2 else 0.0)
    if abs(rate - overall) < bar * se:
        return None  # within the noise of so few accounts, for a column of so many values
    text = _fill(spec.reason_en if lang == "en" else spec.reason_zh, spec, value, lang, side < 0)
    days = refs.horizon_days  # snapshot labels: churn within the horizon; a flat table's label has none
    if lang == "en":
        more = "higher" if side > 0 else "lower"
        churn = f"churn within {days} days" if days else "churn"
        return f"{text}; {churn} is {more} in {category_words(value)}: {_pct(rate)} vs {_pct(overall)} overall"
    churn = f"{days}天内流失率" if days else "流失率"
    return f"{text}；该类客户{churn}{'更高' if side > 0 else '更低'}：{_pct(rate)}，整体{_pct(overall)}"


#: Count templates that add up over time, so a typical count can be pro-rated to a younger account.
ADDITIVE = ("role_count", "event_count", "ticket_count", "active_days", "invoice_late")


def is_count(spec: FeatureSpec) -> bool:
    """A count of things or of days (worded against the typical account)."""
    countable = spec.unit == "count" or spec.template == "active_days"
    return countable and spec.type != "category" and not is_change(spec)


def is_own_date(spec: FeatureSpec) -> bool:
    """A company's own date column, as days since it (``features/profile.py``), or a flat table's
    (``training/own_table.py``: negative for a date after the table's as-of date)."""
    return spec.template in OWN_TEMPLATES and spec.params.get("kind") == "date"


def _span(days: float, lang: str, in_years: bool | None = None) -> str:
    """Days since a date in words: "45 days", "1 year", "16.8 years" (two years or more in years, or as
    ``in_years`` says: a value and its typical one in one unit); a median between two days, 625.5, as a whole
    day from 10 days on."""
    if abs(days) >= 730 if in_years is None else in_years:
        years = f"{days / 365.25:.1f}".removesuffix(".0")
        return f"{years} year{'' if years == '1' else 's'}" if lang == "en" else f"{years}年"
    whole = float(days).is_integer() or abs(days) >= 10
    amount = _number(math.floor(days + 0.5) if whole else days, 0 if whole else 1)
    return (f"{amount} day{'' if amount == '1' else 's'}" if lang == "en" else f"{amount}天")


def _when(days: float, lang: str, in_years: bool | None = None) -> str:
    """Days since a date in words, a negative count as a date to come: "45 days ago", "in 30 days"
    ("45天前", "30天后"); ``in_years``: ``_span``'s."""
    if days < 0:
        return f"in {_span(-days, lang, in_years)}" if lang == "en" else f"{_span(-days, lang, in_years)}后"
    return f"{_span(days, lang, in_years)} ago" if lang == "en" else f"{_span(days, lang, in_years)}前"


#: A column name that says date of birth (``date_of_birth``, ``DOB``, ``Birthday``): worded as an age.
_BIRTH = re.compile(r"birth|(?:^|[^a-z])dob(?:$|[^a-z])", re.IGNORECASE)


def is_birth_date(spec: FeatureSpec) -> bool:
    """An own date column whose name says it is a date of birth (its days since are an age)."""
    return is_own_date(spec) and bool(_BIRTH.search(str(spec.params.get("column", spec.name))))


def _age(days: float, lang: str) -> str:
    """Days since a birth date as an age in completed years: "Age 66" / "年龄66岁"."""
    years = int(days // 365.25)
    return f"Age {years}" if lang == "en" else f"年龄{years}岁"


def _word_own_date(spec: FeatureSpec, v: float, side: int, refs: References, lang: str) -> str | None:
    """ "Date of birth: 16.8 years ago (typical of those who stayed: 33.1 years ago)", "contract_end:
    in 30 days (typical of those who stayed: in 7.5 years)"; a date of birth as an age, "Age 66
    (typical of those who stayed: 46)"; the templates "{value} days ago" / "{value}天前" of any bundle
    are worded with the span's own unit. The typical value is quoted as ``References.quoted_typical``."""
    birth = is_birth_date(spec) and v >= 0
    template = _spanless(spec.reason_en if lang == "en" else spec.reason_zh)
    typical = refs.quoted_typical(spec.name)
    # one unit for a value and its typical one of a year or more each: "5.6 years ago (typical of those who stayed:
    # 1.7 years ago)", not "... 625.5 days ago" (probe p58); under a year each its own ("12 days ago (typical of
    # those who stayed: 4.1 years ago)", not "0 years ago": the review)
    both = typical is not None and min(abs(v), abs(typical)) >= 365
    in_years = max(abs(v), abs(typical)) >= 730 if both else None
    text = _age(v, lang) if birth else template.format(value=_when(v, lang, in_years), change="")
    if typical is None:
        return text
    shown, shown_typical = ((_age(x, "en") for x in (v, typical)) if birth else
                            (_when(x, "en", in_years) for x in (v, typical)))
    if shown == shown_typical or near_typical(v, typical, 1.0, refs.spread(spec.name)) or \
            _against_direction(spec, v, typical, side, refs):
        return None  # a typical date is neither a risk nor a strength
    if side < 0 and not _direction(spec, refs):
        return text  # "Age 61 (typical of those who stayed: 34)" as a strength reads as a contradiction
    ref = _age(typical, lang).removeprefix("Age ").removeprefix("年龄") if birth else _when(typical, lang, in_years)
    return (f"{text} (typical of those who stayed: {ref})" if lang == "en" else f"{text}（未流失客户典型值：{ref}）")


#: A count, or a company's own date or number, within this share of its typical value is the typical value: "Close
#: Date: 228 days ago (typical of those who stayed: 229 days ago)" is no strength.
NEAR_TYPICAL = 0.05
#: ... and within this share of the width of its middle values (``near_typical``).
NEAR_SPREAD = 0.1


def near_typical(v: float, typical: float, floor: float = 0.0, spread: float | None = None) -> bool:
    """Whether ``v`` lies within ``NEAR_TYPICAL`` of ``typical``'s size, or within ``floor`` (a day, for a
    date; nothing for a number: a household of 3 against a typical 2 is a difference); never wider than
    ``NEAR_SPREAD`` of the ``spread`` of its values (``References.spread``), where they have one: a year is far from
    zero and close to every other year (a probe's ``birth_year``: 5% of a typical 1991 made every year from 1892
    to 2090 typical, so the one profile column that drove churn was never a reason)."""
    band = NEAR_TYPICAL * abs(typical)
    if spread:
        band = min(band, NEAR_SPREAD * spread)
    return abs(v - typical) <= max(band, floor)


def is_own_number(spec: FeatureSpec) -> bool:
    """A number of a company's own column (unit ``value``, or ``percent`` for a flat table's "12%"):
    worded against the typical value."""
    return spec.unit in ("value", "percent") and spec.type != "category" and not is_change(spec)


def _against_direction(spec: FeatureSpec, v: float, typical: float, side: int, refs: References) -> bool:
    """True when ``v`` is on the safe side of ``typical`` for a risk (the risky one for a strength):
    the side of the catalogue's direction, else of the one the training rows show
    (``References.direction``: "110 'Dashboard Viewed' events; a typical active account has 37"
    is no risk when those who churned viewed fewer), else, for a product event count, ``usage_prior``."""
    direction = _direction(spec, refs)
    return bool(direction) and (v - typical) * direction * side <= 0


def _direction(spec: FeatureSpec, refs: References) -> int:
    """The side on which a feature's higher values lie: the catalogue's direction, else the one the
    training rows show, else ``usage_prior``; 0 when none is known."""
    return spec.direction or refs.direction.get(spec.name, 0) or usage_prior(spec)


#: An event type whose name says something went wrong or the customer pulled back (a skipped delivery,
#: an error, a declined payment, a cancellation, an unsubscribe, a reminder disabled, an integration
#: disconnected, a seat removed): its counts and their rises lie on the risk side unless the training rows
#: show otherwise (``usage_prior``; probe p57: "1 'reminder_disabled' event" was a strength on 116 accounts).
NEGATIVE_EVENT = re.compile(
    r"skip|cancel|error|fail|declin|refund|complain|unsubscri|downgrad|churn|bounc|disput|chargeback|"
    r"uninstall|deactivat|crash|timeout|expir|abandon|opt[ _-]?out|rage[ _-]?click|(?:^|[^a-z])left$|"
    r"disabl|disconnect|(?:^|[^a-z])turn(?:ed)?[ _-]?off|revok|"
    r"(?:seat|user|member|licen[cs]e)s?[ _-]?(?:removed|deleted)$",
    re.IGNORECASE)


def usage_prior(spec: FeatureSpec) -> int:
    """The side of a product event type's count or change (``event_type`` group) whose side the
    training rows do not show clearly: -1 for use of the product (more is not worded as a risk, nor
    less as a strength, on the evidence of a model alone), +1 for a type ``NEGATIVE_EVENT`` names
    ("6 'Delivery Skipped' events" is a risk; a probe's box never said it though the model's
    largest contribution); a learned side wins over either (``training.reasons.learned_side``);
    0 for every other feature."""
    if spec.group != "event_type" or not (is_count(spec) or is_change(spec)):
        return 0
    return 1 if NEGATIVE_EVENT.search(str(spec.params.get("event_type", ""))) else -1


def tracks_volume(spec: FeatureSpec, refs: References) -> bool:
    """An event type whose name says something went wrong (``NEGATIVE_EVENT``) of which the training rows show
    the churners having fewer: its count follows how much the account uses the product, not how badly it goes
    (a probe's API company: "5xx errors down 22% vs the previous 30 days" a risk for 413 accounts, as errors
    fell with the calls). Neither side of it is worded: "errors down" as a risk reads backwards, and "errors
    up" as a strength too."""
    return usage_prior(spec) > 0 and refs.direction.get(spec.name, 0) < 0


def _word_count(spec: FeatureSpec, v: float, side: int, refs: References, lang: str,
                tenure: float | None) -> str | None:
    if tracks_volume(spec, refs):
        return None
    template = spec.reason_en if lang == "en" else spec.reason_zh
    w = window_days(spec)
    typical = refs.quoted_typical(spec.name)
    if tenure is not None and w and tenure < w:  # younger than the window: no comparison shown
        if typical is not None and spec.template in ADDITIVE and _against_direction(
                spec, v, typical * max(tenure, 1) / w, side, refs):
            return None  # 10 logins in its first 6 days is no risk when a typical account has 9 in 6 days
        return _fill(_customer_for(template, w, int(tenure), lang), spec, v, lang, side < 0)
    if typical is None:
        return _fill(template, spec, v, lang, side < 0)
    if spec.template in ADDITIVE and typical >= 1 and (2 * typical).is_integer():
        typical = float(math.floor(typical + 0.5))  # a median of counts between two, 6,287.5, quoted as a count
    shown, shown_typical = (render_value(spec, x, "en")["value"] for x in (v, typical))
    if shown == shown_typical:
        return None  # a typical value is neither a risk nor a strength
    if _against_direction(spec, v, typical, side, refs):
        return None  # more logins than typical is no risk
    text = _fill(template, spec, v, lang, side < 0)
    ref = render_value(spec, typical, lang)["value"]
    # 6,100,000 against a typical 6,061,000 says nothing, nor "Only 149 'Dashboard Viewed' events ...; a typical
    # active account has 150" (a probe: 99 of 2,209 risk reasons)
    if near_typical(v, typical, spread=refs.spread(spec.name)):
        return None
    if not is_count(spec):  # a company's own number: no unit, no "only"
        if side < 0 and not _direction(spec, refs):
            return text  # unlike those who stayed, yet a strength: the comparison would read as a contradiction
        return f"{text} (typical of those who stayed: {ref})" if lang == "en" else f"{text}（未流失客户典型值：{ref}）"
    if lang == "en":
        if side > 0 and 0 < v < typical and not text.startswith("Only "):
            text = "Only " + text[0].lower() + text[1:] if not text[0].isdigit() else "Only " + text
        return f"{text}; a typical active account has {ref}"
    return f"{text}；典型活跃客户为{ref}"


#: Nulls whose text reads as a warning sign whatever the model learned of them: not worded as a strength (a
#: probe's annual Stripe customers, invoiced once a year, read "No invoices paid in the last 90 days" as one)
NULL_NO_STRENGTH = frozenset({"payment_delay_90d", "payment_delay_change"})


def word_missing(spec: FeatureSpec, row: Row, lang: str, side: int = 0,
                 refs: References = NO_REFERENCES) -> str | None:
    """A null that carries a contribution: what it means when the row shows it (a user that
    never logged in has a known login count), else "No data on X". It is a risk (``side`` +1) or a
    strength (-1) when the training rows show the feature's missingness on that side
    (``References.missing``), or, for a null of known meaning, on the side its place on the scale
    gives (``_placed_on``: "Never logged in" a risk, "No end date on the current term" a strength);
    a known null without such a place ("No rated tickets in the last 90 days") takes
    the training rows' test like "No data on X". References without ``missing`` (older bundles):
    on either side. A rise from none ("… after none in the 30 days before": a change whose null needs a count
    now) is worded only on the side of its place on the scale, whatever the blanks show. None when it is not a
    reason on ``side``."""
    if is_paused(spec, row, refs):  # a pause's end is no term end: the null says the subscription is paused
        return (PAUSED_REASON[0] if lang == "en" else PAUSED_REASON[1]) if side > 0 else None
    if side < 0 and spec.name in NULL_NO_STRENGTH:
        return None
    evidence = null_evidence(spec)
    holds = True
    if evidence is not None:
        v = row.get(evidence[0])
        holds = v is not None and {"known": True, ">0": v > 0, "==0": v == 0}[evidence[1]]
    en, zh = null_reason(spec) if holds else no_data_reason(spec)
    known = (en, zh) != no_data_reason(spec)
    if known and evidence is not None and evidence[1] == ">0" and _direction(spec, refs):
        # "… after none in the … days before" words the rows that rose from none, a few of the change's blanks (most
        # had none in either window): the side the blanks show is theirs, so only the rise's place on the scale
        # counts (probes p57, p59: a rise of logins from none a risk, the first skips of a box a strength)
        return (en if lang == "en" else zh) if _placed_on(spec, side, refs) else None
    if refs.missing is not None and refs.missing.get(spec.name, 0) != side and not (
            known and _placed_on(spec, side, refs)):
        return None  # a blank that does not go with churn (or staying) is no reason (or strength)
    return en if lang == "en" else zh


def _placed_on(spec: FeatureSpec, side: int, refs: References) -> bool:
    """Whether a null of known meaning is a reason on ``side`` by its place on the scale
    (``features.spec.NULL_POSITION``) and the feature's direction (the catalogue's, else the one the
    training rows show, else ``usage_prior``: a rise from none of a product event type is a strength,
    of a skip or an error a risk); without any, worded on either side, as its changes are."""
    change = spec.template == "event_change"
    position = NULL_POSITION.get(spec.name, +1 if change else 0)
    direction = _direction(spec, refs)
    if not position:
        return False
    return position * direction == side if direction else change


#: Numbers whose reason must be backed by the rows with a like value, not only not contradicted by them
#: (``number_disagrees``): the renewal calendar and the MRR, which on a book of monthly plans were the first
#: reason of nearly every account ("Term ends in 12 days", "MRR of 21": an annual plan's month).
BACKED_NUMBERS = frozenset({"days_to_term_end", "mrr"})


def number_disagrees(spec: FeatureSpec, v: float, side: int, refs: References) -> bool:
    """Whether a number's reason at ``v`` goes against the churn of the training rows whose value lies with it (its
    bin of ``References.number_churn``): the reason is then not worded.

    * A company's own number or date whose side the rows show (``References.direction``): not worded where its
      bin churns on the other side of the overall rate by a standard error or more (the rows contradict it; a
      bin too small to tell, or one near the overall rate, leaves the reason as the model gives it).
    * One whose rows show no side, and ``BACKED_NUMBERS``: worded only where its bin churns on the reason's side
      by the category rule (``MIN_CATEGORY_ROWS``, ``MIN_CATEGORY_GAP``, ``category_z`` standard errors).

    A probe's pet-food boxes: "Pets in household: 3 (typical of those who stayed: 1)" was a risk for 11% of the
    accounts while households of 3 churned at 3.3% against 5.5% (pets and the plan's price go together: the model
    split their effect), and an owner's age that did nothing was a reason for 8%. The review: the category rule
    applied to every own number left the flat demo's support calls and monthly charges without any reason."""
    found, overall = refs.number_churn.get(spec.name), refs.overall_churn
    if not found or overall is None:
        return False  # an older bundle, or no rows to judge by
    rate, rows, se = found["bins"][bisect.bisect_right(found["edges"], v)]
    backed = spec.name in BACKED_NUMBERS or not (spec.direction or refs.direction.get(spec.name))
    if rows < MIN_CATEGORY_ROWS:
        return backed
    gap = (rate - overall) * (1 if side > 0 else -1)  # > 0: the rows churn on the reason's side
    if backed:
        return gap < max(MIN_CATEGORY_GAP * overall, category_z(len(found["bins"])) * se)
    return gap <= -se


def _before_it_existed(spec: FeatureSpec, tenure: float | None) -> bool:
    """Whether a change's previous window was (partly) before the account existed: no change to word,
    neither "after none in the 30 days before" for a customer of 18 days (a probe: 231 such texts)."""
    w = window_days(spec)
    return tenure is not None and bool(w) and tenure < 2 * w


def word(spec: FeatureSpec, value: object, side: int, row: Row, refs: References, lang: str,
         min_base: float = MIN_BASE_COUNT) -> str | None:
    """The reason text for ``spec`` at ``value`` as a risk (``side`` +1) or a strength (-1),
    or None when that value cannot honestly be worded so (see the module docstring)."""
    if missing(value):
        if tracks_volume(spec, refs):  # "errors after none in the 30 days before" reads as backwards as a change
            return None
        return None if is_change(spec) and _before_it_existed(spec, row.tenure_days()) else \
            word_missing(spec, row, lang, side, refs)
    tenure = row.tenure_days()
    if spec.type == "category":
        return _word_category(spec, value, side, refs, lang)
    v = float(value)
    if spec.name in refs.number_churn and number_disagrees(spec, v, side, refs):
        return None  # an own number or date, or the renewal calendar, whose rows do not churn on that side
    if spec.unit == "flag":
        return render(spec, v, lang, side < 0) if v == 1 and spec.direction * side >= 0 else None
    if is_change(spec):
        return _word_change(spec, v, side, row, lang, tenure, min_base, refs)
    if is_own_date(spec):
        return _word_own_date(spec, v, side, refs, lang)
    if is_count(spec) or is_own_number(spec):
        return _word_count(spec, v, side, refs, lang, tenure)
    w = window_days(spec)
    template = spec.reason_en if lang == "en" else spec.reason_zh
    if tenure is not None and w and tenure < w:
        template = _customer_for(template, w, int(tenure), lang)
    return _fill(template, spec, v, lang, side < 0)


#: Kinds of feature as ``word`` tells them apart (``WordCache``).
_CATEGORY, _FLAG, _CHANGE, _WINDOWED, _PLAIN = range(5)


class WordCache:
    """``word`` for one catalogue, references and language, remembered per value.

    A reason's text depends on the feature, the side, the value and, for some features, a
    little of the row: the account's age when it is younger than the feature's window (the
    text then says "in its first N days"), whether a change's previous window holds enough
    events, whether a null's evidence holds. Those are worked out per call (cheaply); the
    text itself is computed by ``word`` once per distinct ``(feature, side, value, row
    context)`` and then looked up, so a batch words each distinct case once, not each row.
    Same texts as ``word``, by construction: a miss calls it.
    """

    #: Entries kept before the cache starts afresh (values from many requests add up).
    MAX_ENTRIES = 200_000

    def __init__(self, features: Sequence[FeatureSpec], refs: References, lang: str,
                 min_base: float = MIN_BASE_COUNT) -> None:
        self.features = list(features)
        self.refs, self.lang, self.min_base = refs, lang, min_base
        self.kind = [self._kind(f) for f in self.features]
        self.window = [window_days(f) for f in self.features]
        self.evidence = [null_evidence(f) for f in self.features]
        self._seen: dict[tuple, str | None] = {}

    @staticmethod
    def _kind(spec: FeatureSpec) -> int:
        if spec.type == "category":
            return _CATEGORY
        if spec.unit == "flag":
            return _FLAG
        if is_change(spec):
            return _CHANGE
        return _WINDOWED if window_days(spec) else _PLAIN

    def word(self, j: int, value: object, side: int, row: Row, tenure: object = ...) -> str | None:
        """``word(features[j], value, side, row, refs, lang)``; ``value`` a plain Python value
        (None when missing), as ``ReasonBuilder`` passes it; ``tenure``: ``row.tenure_days()``
        when the caller has it already."""
        kind = self.kind[j]
        if value is None:
            if kind == _CHANGE and _before_it_existed(self.features[j], row.tenure_days() if tenure is ... else tenure):
                return None
            evidence = self.evidence[j]
            key: tuple = (j, side, None, evidence is None or self._holds(evidence, row),
                          is_paused(self.features[j], row, self.refs))
        elif kind == _CATEGORY or kind == _FLAG:
            if kind == _CATEGORY and type(value) is not str:
                return word(self.features[j], value, side, row, self.refs, self.lang, self.min_base)
            key = (j, side, value if value else (value, str(value)), None)
        else:
            if tenure is ...:
                tenure = row.tenure_days()
            w = self.window[j]
            context = None
            if kind == _CHANGE:
                if tenure is not None and w and tenure < 2 * w:
                    return None  # the previous window was (partly) before the account existed
                base = _change_base(self.features[j], float(value), row)
                if base is not None and base < self.min_base:
                    return None
            elif kind == _WINDOWED and tenure is not None and tenure < w:
                context = tenure
            key = (j, side, value if value else (value, str(value)), context)
        try:
            return self._seen[key]
        except KeyError:
            pass
        text = word(self.features[j], value, side, row, self.refs, self.lang, self.min_base)
        if len(self._seen) >= self.MAX_ENTRIES:
            self._seen = {}
        self._seen[key] = text
        return text

    @staticmethod
    def _holds(evidence: tuple[str, str], row: Row) -> bool:
        v = row.get(evidence[0])
        return v is not None and {"known": True, ">0": v > 0, "==0": v == 0}[evidence[1]]
