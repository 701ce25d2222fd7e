"""The words every stage shares, each declared once: the health tiers, the languages and the
exit-interview reason categories.

The tier table (ARTICLE §1) is the one place that says which tiers exist, in which order, where
their health bounds lie, what they are called in English and Simplified Chinese and which colour
they wear. Health mapping, playbook settings, alerts, the explain view, the report, the CLI and
the API read it from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: The languages of user-facing texts (reasons, explain view, report).
Lang = Literal["en", "zh-CN"]
LANGS: tuple[Lang, ...] = ("en", "zh-CN")

#: Top of the integer health scale (inclusive).
MAX_HEALTH = 100


@dataclass(frozen=True)
class Tier:
    """One health tier.

    Attributes:
        key: machine name (stored in the score history, the API's ``tier``).
        min_health: inclusive lower bound of the integer health score; the tier runs up to the
            next better tier's bound minus 1 (the best tier up to ``MAX_HEALTH``).
        en: label in English.
        zh: label in Simplified Chinese.
        colour: hex colour in HTML reports.
        terminal_colour: rich colour name in the terminal.
        rank: 0 for the best tier, growing with risk.
        meaning_en: what the tier means for customer success, in English.
        meaning_zh: the same in Simplified Chinese.
    """

    key: str
    min_health: int
    en: str
    zh: str
    colour: str
    terminal_colour: str
    rank: int
    meaning_en: str
    meaning_zh: str

    def label(self, lang: str) -> str:
        """The tier's label in ``lang`` (``zh-CN`` or English)."""
        return self.zh if lang == "zh-CN" else self.en


#: The tiers in order, best first.
TIERS: tuple[Tier, ...] = (
    Tier("healthy", 80, "Healthy", "健康", "#2e7d32", "green", 0,
         "active and satisfied: upsell / cross-sell candidates", "活跃且满意：增购 / 交叉销售的候选客户"),
    Tier("low_risk", 60, "Low risk", "低风险", "#f9a825", "yellow", 1,
         "activity dipping or some negative feedback: routine care", "活跃度下降或有负面反馈：常规关怀"),
    Tier("medium_risk", 40, "Medium risk", "中风险", "#ef6c00", "dark_orange", 2,
         "several warnings: start the standard intervention", "出现多个预警信号：启动标准干预流程"),
    Tier("high_risk", 0, "High risk", "高风险", "#c62828", "red", 3,
         "about to leave or gone: top-priority retention, or loss analysis",
         "即将流失或已流失：最高优先级挽留，或进行流失分析"),
)

#: Tier keys in ``TIERS`` order (best first).
TIER_KEYS: tuple[str, ...] = tuple(t.key for t in TIERS)
#: Tier key -> ``Tier``.
TIER_BY_KEY: dict[str, Tier] = {t.key: t for t in TIERS}
#: Tier key -> rank (0 best).
TIER_RANK: dict[str, int] = {t.key: t.rank for t in TIERS}
#: Tier key -> hex colour (HTML).
TIER_COLOURS: dict[str, str] = {t.key: t.colour for t in TIERS}


def tier_label(key: str, lang: str) -> str:
    """The label of tier ``key`` in ``lang``; an unknown key is shown as it is."""
    tier = TIER_BY_KEY.get(key)
    return key if tier is None else tier.label(lang)


def tier_bands() -> list[tuple[int, int, str]]:
    """``(low, high, key)`` per tier, best first: the health scale cut at the tiers' bounds
    (``high`` is the next better tier's ``min_health``, or ``MAX_HEALTH``)."""
    highs = (MAX_HEALTH, *(t.min_health for t in TIERS[:-1]))
    return [(t.min_health, hi, t.key) for t, hi in zip(TIERS, highs)]


@dataclass(frozen=True)
class ReasonCategory:
    """One exit-interview reason category (ARTICLE §2): the ``reason_category`` of the
    ``churn_feedback`` table, of a recorded exit interview and of the diagnosis's reasons."""

    key: str
    en: str
    zh: str
    avoidable: bool | None  # the usual judgement for the category (None: it depends)

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh-CN" else self.en


#: The reason categories, in the article's order.
REASON_CATEGORIES: tuple[ReasonCategory, ...] = (
    ReasonCategory("product", "Product", "产品", True),
    ReasonCategory("price", "Price", "价格", True),
    ReasonCategory("service", "Service", "服务", True),
    ReasonCategory("competitor", "Competitor", "竞争对手", True),
    ReasonCategory("business_change", "Business change", "业务变化", False),
    ReasonCategory("other", "Other", "其他", None),
)
#: Reason category keys in order.
REASON_KEYS: tuple[str, ...] = tuple(r.key for r in REASON_CATEGORIES)
#: Key -> ``ReasonCategory``.
REASON_BY_KEY: dict[str, ReasonCategory] = {r.key: r for r in REASON_CATEGORIES}


def reason_label(key: str, lang: str) -> str:
    """The label of reason category ``key`` in ``lang``; an unknown key is shown as it is."""
    reason = REASON_BY_KEY.get(key)
    return key if reason is None else reason.label(lang)


#: Playbook owners of the default config, for people reading Chinese (a configured owner without one stays as written).
OWNER_ZH = {"CSM": "客户成功经理", "CSM / CSM lead": "客户成功经理 / 客户成功主管",
            "Retention squad incl. an executive": "挽留小组（含一名高管）", "Lifecycle marketing": "用户运营",
            "Retention team": "挽留团队"}
_RESPOND_UNITS_ZH = {"working day": "个工作日", "business day": "个工作日", "day": "天", "hour": "小时",
                     "minute": "分钟", "week": "周"}


def owner_label(owner: str, lang: str) -> str:
    """A playbook's owner in ``lang``: one wording for the API, ``explain``, the report and the messages."""
    return OWNER_ZH.get(owner, owner) if lang == "zh-CN" else owner


def respond_label(text: str, lang: str, hours: float | None) -> str:
    """A playbook's response time in ``lang``: ``4 hours`` -> ``4 小时``, ``3 working days`` -> ``3 个工作日``,
    ``2 weeks`` -> ``2 周``, ``no deadline`` -> ``无时限`` in Chinese; other words from the playbook's ``hours``
    (``respond_within_hours``; None: no deadline, ``无时限``). Every surface passes the hours, so one playbook
    reads the same in the API, ``explain``, the report and the messages."""
    if lang != "zh-CN":
        return text
    if text.strip().lower() == "no deadline":
        return "无时限"
    m = re.fullmatch(r"\s*(?:within\s+)?(\d+(?:\.\d+)?)\s*(working day|business day|day|hour|minute|week)s?\s*",
                     text, flags=re.IGNORECASE)
    if m is not None:
        return f"{m.group(1)} {_RESPOND_UNITS_ZH[m.group(2).lower()]}"
    return "无时限" if hours is None else f"{hours:g} 小时"


def probability_text(p: float | None, digits: int = 1) -> str:
    """A churn probability as a percentage: never "100.0%" or "0.0%" for a probability that is not
    1 or 0 (calibration keeps every one strictly between), but ">99.9%" and "<0.1%"; "–" when missing."""
    if p is None or p != p:
        return "–"
    floor = 10.0 ** -digits
    if round(p * 100, digits) >= 100 and p < 1:
        return f">{100 - floor:.{digits}f}%"
    if round(p * 100, digits) <= 0 < p:
        return f"<{floor:.{digits}f}%"
    return f"{p:.{digits}%}"


def number_text(x: float) -> str:
    """A measured number in a message: whole ones with thousands separators ("1,420"), others to four
    significant digits ("0.3333", "1.25e+04" never for a whole number)."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.4g}"
