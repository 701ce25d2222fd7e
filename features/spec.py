"""The feature catalogue: every feature declared once, in one typed spec.

DESIGN §3. The same declarations give the pipeline's columns (``features/snapshots.py``),
the model's feature order, the API's request schema and the reason templates. Features
of the "per event type" family are generated from the event types found in the data,
so a company's own event log works before any configuration.

Time semantics for every feature: computed at an as-of date ``t`` from rows whose own
timestamp is ``< t``; a window of ``N`` days is ``[t - N days, t)``; "previous window"
is ``[t - 2N, t - N)``.

A company's own columns of ``accounts`` / ``subscriptions`` are appended after these
(group ``profile``, template ``extra_profile``; see ``features/profile.py``).

Reason templates are ``str.format`` strings with these fields: ``{value}`` (the value
rendered in its unit) and, for change features, ``{change}`` ("down 62%" / "下降62%").

Over 400 lines: the catalogue is one declaration (DESIGN §3), with the per-event-type family and
how event types are grouped into families (``event_families``); splitting it would give a feature
two homes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

SignalGroup = Literal[
    "activity",
    "core_usage",
    "support",
    "new_feature",
    "renewal_payment",
    "cancellation",
    "commercial",
    "relationship_marketing",
    "profile",
    "event_type",
]
FeatureType = Literal["float", "int", "category"]

#: Group names for people, in English and Simplified Chinese.
GROUP_LABELS: dict[str, tuple[str, str]] = {
    "activity": ("Product activity", "产品活跃度"),
    "core_usage": ("Core-feature usage", "核心功能使用"),
    "support": ("Support", "客户服务"),
    "new_feature": ("New-feature engagement", "新功能参与"),
    "renewal_payment": ("Renewal & payment", "续订与付款"),
    "cancellation": ("Cancellation request", "取消申请"),
    "commercial": ("Commercial relationship", "商业关系"),
    "relationship_marketing": ("Relationship & marketing", "关系与营销"),
    "profile": ("Profile", "客户画像"),
    "event_type": ("Event activity", "事件活跃度"),
}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature.

    Attributes:
        name: column name, with its unit or window in the name (``logins_30d``).
        group: signal group (reason codes are summed per group).
        type: ``float``, ``int`` or ``category``.
        unit: unit of the value (``count``, ``days``, ``ratio``, ``currency``...).
        definition: what it is, with time semantics.
        direction: +1 more means more risk, -1 less, 0 unknown (monotone constraints).
        valid_range: inclusive bounds; ``None`` is unbounded (API validation, drift).
        optional: may be missing (null) in a snapshot or a request.
        reason_en: reason template in English.
        reason_zh: reason template in Simplified Chinese.
        template: the parametrised computation that makes it (see snapshots.py).
        params: parameters of that template.
    """

    name: str
    group: SignalGroup
    type: FeatureType
    unit: str
    definition: str
    direction: int
    valid_range: tuple[float | None, float | None] = (0.0, None)
    optional: bool = True
    reason_en: str = ""
    reason_zh: str = ""
    template: str = ""
    params: dict = field(default_factory=dict)


#: Counts over a window that the pipeline scales to the whole window where the export's data starts
#: inside it (``features.snapshots``' ``_Ctx.cover``): events, logins, active days. On a short export's
#: first as-of dates a 90-day count covers only the 28 to 89 days the data has; counted as they are, the
#: same behaviour reads lower there than later, and a model learns a level that does not carry forward.
SCALED_COUNT_TEMPLATES = ("active_days", "role_count", "event_count")
#: Changes of such a count against the previous window: both windows scaled alike (a previous window
#: with under ``MIN_COVERED_DAYS`` days of data is unknown: null).
SCALED_CHANGE_TEMPLATES = ("active_days_change", "role_change", "event_change")
#: A scaled window needs this many days of data; with fewer its value is null (a 90-day count from
#: a week of data would be a guess).
MIN_COVERED_DAYS = 14
#: Said in a scaled feature's definition.
SCALED_NOTE = (" (where the data starts inside the window of an account that existed before it, "
               "scaled to the whole window: count x window days / days with data)")


def scaled(spec: FeatureSpec) -> bool:
    """Whether the pipeline scaled the feature to its whole window (``SCALED_COUNT_TEMPLATES``,
    ``SCALED_CHANGE_TEMPLATES``): its level does not depend on how much of the window the export covers.
    Read from the definition (``SCALED_NOTE``), so a store built before counts were scaled says it was not."""
    return spec.definition.endswith(SCALED_NOTE)


def lookback_days(spec: FeatureSpec, inputs: Mapping[str, FeatureSpec] | None = None) -> int:
    """Days before the as-of date the feature's value reads (0: no window in its parameters; a
    ticket writer's silence: ``TICKET_SILENCE_HISTORY``).

    ``window`` N gives N; a template ending in ``_change`` (the window against the previous one)
    2N, except ``term_value_change`` (the value now against N days ago: N); ``lookback`` days are
    added (a feature "new" in the window means unused in the ``lookback`` days before it);
    ``baseline`` (a rate against a longer window) is a window of its own.

    A ``ratio`` of two features reads what its inputs read (``num`` and ``den``, looked up in
    ``inputs``, the catalogue's features by name: ``active_users_per_seat`` is 30 days, its
    ``active_users_30d``'s). A days-since feature (``DAYS_SINCE_TEMPLATES``) reads back to the last
    such event however far, so on an export it is censored at the days the export covers (an
    account idle for longer reads as "never"): it counts as reading ``DAYS_SINCE_HISTORY`` days.
    """
    if spec.template == "ticket_silence":
        return TICKET_SILENCE_HISTORY
    if spec.template in DAYS_SINCE_TEMPLATES:
        return DAYS_SINCE_HISTORY
    p = spec.params or {}
    if spec.template == "ratio" and inputs is not None:
        return max((lookback_days(inputs[n], inputs) for n in (p.get("num"), p.get("den")) if n in inputs),
                   default=0)
    window = int(p.get("window", 0) or 0)
    twice = spec.template.endswith("_change") and spec.template != "term_value_change"
    days = window * (2 if twice else 1) + int(p.get("lookback", 0) or 0)
    return max(days, int(p.get("baseline", 0) or 0))


def slug(event_type: str) -> str:
    """A column-safe name for an event type: lower case, ``[a-z0-9_]``, max 40 chars."""
    s = re.sub(r"[^a-z0-9]+", "_", event_type.strip().lower()).strip("_")
    return (s or "event")[:40]


def family_key(event_type: str) -> str:
    """What two spellings of one event type share: case folded, surrounding spaces dropped, and runs of
    spaces, '-' and '_' INSIDE the name as one '_'.

    "Song Played", "song_played", "song-played" and "SONG  PLAYED" are one event type (product-analytics
    exports such as Segment, Amplitude and Mixpanel mix them); "song.played" is another. Leading and
    trailing '_' or '-' are part of the name, kept as they are: "_login" is not "login" (a leading
    underscore marks a system or internal event, such as an auto-tracked "_session_start" or
    "__heartbeat", and counting it as the user's "login" would mix the two), nor "-login" or "login_".
    """
    text = event_type.strip().casefold()
    head = len(text) - len(text.lstrip("_-"))
    tail = len(text) - len(text.rstrip("_-")) if head < len(text) else 0
    inside = text[head:len(text) - tail]
    return text[:head] + re.sub(r"[\s_-]+", "_", inside) + text[len(text) - tail:]


def event_families(counts: dict[str, int], preferred: list[str] | tuple[str, ...] = ()) -> dict[str, dict[str, int]]:
    """Group the event types' spellings into families: ``{name: {spelling: events}}``, names sorted.

    A family's name is the spelling ``preferred`` gives for it (the event types ``churnwatch.yaml``
    names in ``event_roles``, first match), else its most frequent spelling (ties: the first in
    sort order). The one definition of an event family: the contract checks rename every spelling
    to its family's name (``features/validate.py``), so features, roles and reasons see one type.
    """
    groups: dict[str, dict[str, int]] = {}
    for spelling, n in counts.items():
        groups.setdefault(family_key(spelling), {})[spelling] = int(n)
    named = {family_key(p): p for p in reversed(list(preferred))}  # the first preferred spelling wins
    out: dict[str, dict[str, int]] = {}
    for key, spellings in groups.items():
        name = named.get(key) or min(spellings, key=lambda s: (-spellings[s], s))
        out[name] = dict(sorted(spellings.items(), key=lambda kv: (-kv[1], kv[0])))
    return dict(sorted(out.items()))


#: Event type names that look like a customer asking to cancel ahead ("cancellation_scheduled",
#: "subscription_cancel_requested", "auto_renew_off", "non_renewing", a product-analytics tool's "Cancel
#: Subscription Clicked" or "cancellation_flow_started": a probe's app export had no hint) or taking it back
#: ("subscription_scheduled_cancellation_removed", "auto_renew_on"): ``features`` suggests naming them under
#: ``event_roles.cancel_request`` / ``cancel_withdrawn`` when no role does (``cancel_request_standing``).
CANCEL_WITHDRAWN_NAME = re.compile(
    r"cancel\w*(?:removed|revoked|withdrawn|undone|reverted|reversed|stopped)|(?:remov|revok|withdr|undo|revers)"
    r"\w*cancel|auto_?renew\w*(?:_on\b|enabled|turned_on|resumed)|reactivat|uncancel", re.IGNORECASE)
CANCEL_REQUEST_NAME = re.compile(
    r"cancel\w*(?:schedul|request|pending|at_period_end)|cancel_flow_started|cancellation_flow_started|"
    r"cancel(?:lation)?_(?:subscription|plan|membership|renewal)_?(?:clicked|initiated|submitted|started)|"
    r"(?:schedul|request)\w*cancel|"
    r"auto_?renew\w*(?:off|disabled|turned_off|cancel)|unsubscribe_detected|non_?renewing", re.IGNORECASE)


#: The feature of a cancellation request that stands (``event_roles.cancel_request``): read by the report and
#: named by the leakage guard's cause.
STANDING_REQUEST = "cancel_request_standing"


#: Event roles that are no product activity (an e-mail tool's, a CRM's, the billing system's cancellation
#: requests, a CS tool's ratings and survey answers: ``not_usage``): no active days or users, and no sign that the
#: product export covers an account (a probe's Gainsight rows counted as active days on 959 of 2,091 accounts)
PASSIVE_ROLES = ("marketing_sent", "marketing_open", "contact_left", "cancel_request", "cancel_withdrawn",
                 "not_usage")


def passive_types(roles) -> set[str]:
    """The event types of ``roles`` (``core.settings.EventRoles``) that are no product activity
    (``PASSIVE_ROLES``)."""
    return {t for role in PASSIVE_ROLES for t in getattr(roles, role)}


def cancel_role_of(event_type: str) -> str | None:
    """``cancel_withdrawn`` or ``cancel_request`` where an event type's name reads as a cancellation taken
    back or asked for ahead (``CANCEL_WITHDRAWN_NAME``, ``CANCEL_REQUEST_NAME``), else None."""
    key = family_key(event_type)
    if CANCEL_WITHDRAWN_NAME.search(key):
        return "cancel_withdrawn"
    return "cancel_request" if CANCEL_REQUEST_NAME.search(key) else None


def _f(name: str, group: SignalGroup, unit: str, definition: str, direction: int,
       en: str, zh: str, template: str, rng: tuple[float | None, float | None] = (0.0, None),
       type: FeatureType = "float", **params: object) -> FeatureSpec:
    if template in SCALED_COUNT_TEMPLATES or template in SCALED_CHANGE_TEMPLATES:
        definition += SCALED_NOTE
    return FeatureSpec(name=name, group=group, type=type, unit=unit, definition=definition,
                       direction=direction, valid_range=rng, reason_en=en, reason_zh=zh,
                       template=template, params=dict(params))


#: ``tickets.priority`` values (lower case) read as high priority: Zendesk's and Freshdesk's words, and
#: Intercom's priority flag (``true``). Numbers are not read: Freshdesk's 1 is low, a P1 is high.
HIGH_PRIORITY = ("high", "urgent", "true", "yes")

PCT: tuple[float | None, float | None] = (-1.0, None)  # relative change: -100% .. unbounded
DIFF: tuple[float | None, float | None] = (None, None)


def _core_features() -> list[FeatureSpec]:
    """The article's semantic indicators (DESIGN §3), in catalogue order."""
    a, c, s, n, r, m, k = ("activity", "core_usage", "support", "new_feature",
                           "renewal_payment", "commercial", "relationship_marketing")
    out: list[FeatureSpec] = []
    for w in (7, 30, 90):
        out.append(_f(f"active_days_{w}d", a, "days", f"distinct days with any product event in the last {w} days "
                      "(marketing and contact events excluded)", -1,
                      f"Active on {{value}} of the last {w} days", f"近{w}天活跃{{value}}天",
                      "active_days", window=w, type="int", rng=(0.0, float(w))))
        out.append(_f(f"logins_{w}d", a, "count", f"login events in the last {w} days", -1,
                      f"{{value}} logins in the last {w} days", f"近{w}天登录{{value}}次",
                      "role_count", role="login", window=w, type="int"))
    out += [
        _f("logins_7d_change", a, "ratio", "relative change of logins_7d vs the previous 7 days", -1,
           "Logins {change} vs the previous 7 days", "近7天登录次数较前7天{change}",
           "role_change", role="login", window=7, rng=PCT),
        _f("logins_30d_change", a, "ratio", "relative change of logins_30d vs the previous 30 days", -1,
           "Logins {change} vs the previous 30 days", "近30天登录次数较前30天{change}",
           "role_change", role="login", window=30, rng=PCT),
        _f("active_days_30d_change", a, "ratio", "relative change of active_days_30d vs the previous 30 days", -1,
           "Active days {change} vs the previous 30 days", "近30天活跃天数较前30天{change}",
           "active_days_change", window=30, rng=PCT),
        _f("days_since_last_login", a, "days", "days since the last login before t (null: never)", +1,
           "No login for {value} days", "已{value}天未登录", "days_since_role", role="login"),
        _f("active_users_30d", a, "count", "distinct users with any product event in the last 30 days", -1,
           "{value} active users in the last 30 days", "近30天活跃用户{value}人",
           "distinct_users", window=30, type="int"),
        _f("active_users_per_seat", a, "ratio", "active_users_30d / seats of the current term", -1,
           "Only {value} of seats in use", "席位使用率仅{value}", "ratio",
           num="active_users_30d", den="seats"),
        _f("core_events_per_active_user_30d", c, "count", "core-feature events in 30 days per active user", -1,
           "{value} core-feature uses per active user in 30 days", "近30天人均核心功能使用{value}次",
           "ratio", num="core_events_30d", den="active_users_30d"),
        _f("core_events_30d", c, "count", "core-feature events in the last 30 days", -1,
           "{value} core-feature uses in the last 30 days", "近30天核心功能使用{value}次",
           "role_count", role="core_feature", window=30, type="int"),
        _f("core_features_used_30d", c, "count", "distinct core features used in the last 30 days (breadth)", -1,
           "Only {value} core features used in the last 30 days", "近30天仅使用{value}个核心功能",
           "role_breadth", role="core_feature", window=30, type="int"),
        _f("core_user_share_30d", c, "ratio", "share of active users (30 days) who used a core feature", -1,
           "Only {value} of active users use core features", "仅{value}的活跃用户使用核心功能",
           "distinct_users_share", role="core_feature", window=30, rng=(0.0, 1.0)),
        _f("core_events_30d_change", c, "ratio", "relative change of core_events_30d vs the previous 30 days", -1,
           "Core-feature use {change} vs the previous 30 days", "核心功能使用较前30天{change}",
           "role_change", role="core_feature", window=30, rng=PCT),
        _f("core_features_used_30d_change", c, "count",
           "core_features_used_30d minus the same count in the previous 30 days", -1,
           "Core features used: {change} than in the previous 30 days", "核心功能使用种类较前30天{change}",
           "role_breadth_change", role="core_feature", window=30, rng=DIFF),
        _f("tickets_30d", s, "count", "tickets opened in the last 30 days", +1,
           "{value} tickets in the last 30 days", "近30天提交工单{value}个", "ticket_count", window=30, type="int"),
        _f("tickets_30d_vs_baseline", s, "ratio",
           "tickets_30d / (tickets in the last 180 days / 6); null when none in 180 days", +1,
           "Tickets at {value}x the account's usual rate", "工单量为平时的{value}倍", "ticket_spike",
           window=30, baseline=180),
        _f("high_priority_tickets_30d", s, "count", "high or urgent tickets opened in the last 30 days", +1,
           "{value} high-priority tickets in the last 30 days", "近30天高优先级工单{value}个",
           "ticket_count", window=30, priority=list(HIGH_PRIORITY), type="int"),
        _f("open_tickets", s, "count", "tickets opened before t and not resolved before t", +1,
           "{value} tickets still open", "{value}个工单尚未解决", "open_tickets", type="int"),
        _f("mean_resolution_hours_90d", s, "hours", "mean hours to resolve tickets resolved in the last 90 days", +1,
           "Tickets took {value} hours to resolve on average", "工单平均解决时长{value}小时",
           "ticket_resolution", window=90),
        _f("worst_csat_90d", s, "score", "lowest CSAT (1-5) of tickets resolved in the last 90 days", -1,
           "A support rating of {value}/5", "客服满意度最低{value}/5分", "ticket_csat", window=90,
           agg="min", rng=(1.0, 5.0)),
        _f("mean_csat_90d", s, "score", "mean CSAT (1-5) of tickets resolved in the last 90 days", -1,
           "Support rated {value}/5 on average", "客服满意度平均{value}/5分", "ticket_csat", window=90,
           agg="mean", rng=(1.0, 5.0)),
        _f("days_since_last_ticket", s, "days", "days since the last ticket was opened (null: never)", 0,
           "Last ticket {value} days ago", "上次工单在{value}天前", "ticket_days_since"),
        _f("ticket_silence", s, "flag",
           "1 if the account opened >= 3 tickets in [t-180, t-silence_days) and none since", +1,
           "A regular ticket writer has gone silent", "常提工单的客户突然沉默", "ticket_silence",
           type="int", rng=(0.0, 1.0)),
        _f("new_features_tried_30d", n, "count",
           "new features released in the last 180 days first used within 30 days of release", -1,
           "Tried {value} of the recently released features", "试用了{value}个新功能",
           "new_features_tried", window=30, lookback=180, type="int"),
        _f("new_feature_events_30d", n, "count", "events of new-feature types in the last 30 days", -1,
           "{value} new-feature uses in the last 30 days", "近30天使用新功能{value}次",
           "role_count", role="new_feature", window=30, type="int"),
        _f("training_attended_90d", n, "count", "training / webinar events in the last 90 days", -1,
           "{value} trainings or webinars in the last 90 days", "近90天参加培训/网络研讨会{value}次",
           "role_count", role="training", window=90, type="int"),
        _f("days_to_term_end", r, "days", "days from t to the end of the current term (null: open-ended)", -1,
           "Term ends in {value} days", "订阅期{value}天后到期", "term_end"),
        # a group of its own: summed with the term's end (renewal & payment), a request months before an annual
        # term's end was outweighed by the far end and never said (two probes, 2026-12-06: healthy, no word of it)
        _f(STANDING_REQUEST, "cancellation", "flag",
           "1 if the customer asked to cancel (an event type of the cancel_request role) since the start of the "
           "current term, before t: the request stands until the term ends or a new one starts, or until it is "
           "withdrawn (an event type of the cancel_withdrawn role, from that day on), however long before the end "
           "it was made; 0 if not (null: no cancel_request role)", +1,
           "Asked to cancel at the end of this term", "已申请在本订阅期结束时取消", "cancel_request",
           role="cancel_request", type="int", rng=(0.0, 1.0)),
        _f("days_overdue", r, "days", "largest days past due of invoices unpaid at t (0: none)", +1,
           "An invoice is {value} days overdue", "有发票已逾期{value}天", "invoice_overdue"),
        _f("late_payments_90d", r, "count",
           "invoices due in the last 90 days paid after their due date or still unpaid", +1,
           "{value} late payments in the last 90 days", "近90天逾期付款{value}次", "invoice_late",
           window=90, type="int"),
        _f("payment_delay_90d", r, "days", "mean days paid after due, invoices paid in the last 90 days", +1,
           "Invoices paid {value} days late on average", "发票平均逾期{value}天付款", "invoice_delay",
           window=90),
        _f("payment_delay_change", r, "days", "payment_delay_90d minus the same in the previous 90 days", +1,
           "Payment delay {change} vs the previous 90 days", "付款延迟较前90天{change}", "invoice_delay_change",
           window=90, rng=DIFF),
        _f("mrr", m, "currency", "MRR of the terms in force at t", -1,
           "MRR of {value}", "MRR {value}", "term_value", column="mrr"),
        _f("mrr_change_90d", m, "ratio", "relative change of MRR vs 90 days earlier (downgrade < 0)", -1,
           "MRR {change} over 90 days", "近90天 MRR {change}", "term_value_change", window=90,
           rng=PCT),
        _f("tenure_days", m, "days", "days since the current relationship started (lifecycle stage; in subscriptions "
           "cut at the export's start, since accounts.signed_at where that is earlier)", -1,
           "Customer for {value} days", "已合作{value}天", "tenure"),
        _f("seats", m, "count", "seats of the terms in force at t", -1,
           "{value} seats", "{value}个席位", "term_value", column="seats"),
        _f("plan", m, "category", "plan of the latest term in force at t", 0,
           "On the {value} plan", "当前套餐：{value}", "term_plan", type="category", rng=(None, None)),
        _f("contact_left_90d", k, "count", "key contacts who left in the last 90 days", +1,
           "{value} key contact(s) left in the last 90 days", "近90天有{value}位关键联系人离职", "role_count",
           role="contact_left",
           window=90, type="int"),
        _f("email_open_rate_90d", k, "ratio", "marketing emails opened / sent in the last 90 days", -1,
           "Opens {value} of marketing emails", "营销邮件打开率{value}", "role_ratio",
           num="marketing_open", den="marketing_sent", window=90, rng=(0.0, None)),
        _f("email_open_rate_change", k, "ratio", "email_open_rate_90d minus the rate in the previous 90 days", -1,
           "Email open rate {change}", "邮件打开率{change}", "role_ratio_change",
           num="marketing_open", den="marketing_sent", window=90, rng=DIFF),
    ]
    for col, desc, zh in (("industry", "industry", "行业"),
                          ("size_band", "company size band from employees", "公司规模"),
                          ("region", "region", "地区"), ("channel", "acquisition channel", "获客渠道"),
                          ("csm", "customer-success manager", "客户成功经理"),
                          ("segment", "account class", "客户类别")):
        out.append(_f(col, "profile", "category", desc, 0, f"{desc.capitalize()}: {{value}}",
                      f"{zh}：{{value}}", "profile", type="category", rng=(None, None), column=col))
    return out


SIZE_BANDS = ((1, 49, "1-49"), (50, 249, "50-249"), (250, 999, "250-999"), (1000, None, "1000+"))
EVENT_WINDOWS = (7, 30, 90)
#: ``ticket_silence``: a regular ticket writer is one with >= 3 tickets in the days
#: ``[t - TICKET_SILENCE_HISTORY, t - silence_days)`` (``features.snapshots``)
TICKET_SILENCE_HISTORY = 180
#: Templates of a company's own columns: an accounts or subscriptions column (``features.profile``) and a
#: flat table's column (``training.own_table``)
OWN_TEMPLATES = ("extra_profile", "table_column")
#: Templates of "days since the last X before t" (``days_since_last_login``, ``days_since_last_ticket``):
#: the last such day of all the history before t (``features.windows``' running ``lg_last``, the
#: tickets stage's ``MAX``), so the value is capped by the history an export covers
DAYS_SINCE_TEMPLATES = ("days_since_role", "ticket_days_since")
#: The history a days-since feature counts as reading (``lookback_days``): the catalogue's longest
#: event window. With fewer days covered, idle spells the 90-day counts still tell apart (60 days
#: against 80) read as "never" or as the covered days, and the value grows with the coverage date
#: by date, as a partial window's count does
DAYS_SINCE_HISTORY = max(EVENT_WINDOWS)


def event_units(settings_units: Mapping[str, str | Mapping[str, str]]) -> dict[str, tuple[str, str | None]]:
    """``Settings.event_units`` by event family key (``family_key``: any spelling of the type names it):
    (English plural, Chinese word or None)."""
    out = {}
    for event_type, unit in settings_units.items():
        en, zh = (unit, None) if isinstance(unit, str) else (unit.get("en") or "", unit.get("zh-CN"))
        out[family_key(event_type)] = (en.strip() or "events", zh)
    return out


def event_type_features(event_type: str, also: list[str] | tuple[str, ...] = (),
                        unit: tuple[str, str | None] | None = None) -> list[FeatureSpec]:
    """The generic family every event type gets: counts, change, distinct users.

    ``also``: the other spellings of the event type in the data (``event_families``), said in
    the definitions (the reasons name the type as the family does). ``unit``: what one unit of the
    type's quantity is (``event_units``: "12,000 '/v1/models' requests", "近30天'/v1/models'请求12,000次";
    a unit without Chinese: "近30天'/v1/models'共12,000"), else events.
    """
    s = slug(event_type)
    name = event_type  # as the data names it (descriptions)
    spelled = "; also spelled " + ", ".join(f"'{a}'" for a in also) if also else ""
    event_type = event_type.replace("{", "{{").replace("}", "}}")  # literal braces in the reason templates
    en, zh = unit or ("events", "事件")
    en_t, zh_t = (w.replace("{", "{{").replace("}", "}}") for w in (en, zh or ""))  # literal braces
    summed = "" if unit is None else " (the events' quantity summed)"
    # events are counted (次); a unit is summed: "近30天'call'分钟共1,200", with no Chinese word "共1,200"
    zh_count = "'事件{value}次" if unit is None else "'" + zh_t + "共{value}"
    out = [
        _f(f"evt_{s}_{w}d", "event_type", "count", f"'{name}' {en}{summed} in the last {w} days{spelled}", 0,
           f"{{value}} '{event_type}' {en_t} in the last {w} days", f"近{w}天'{event_type}" + zh_count,
           "event_count", event_type=name, window=w, **({"unit_en": en, "unit_zh": zh} if unit else {}))
        for w in EVENT_WINDOWS
    ]
    out.append(_f(f"evt_{s}_30d_change", "event_type", "ratio",
                  f"relative change of '{name}' {en} vs the previous 30 days{spelled}", 0,
                  f"'{event_type}' {en_t} {{change}} vs the previous 30 days",
                  f"'{event_type}'{zh_t}较前30天{{change}}", "event_change", event_type=name,
                  window=30, rng=PCT, **({"unit_en": en, "unit_zh": zh} if unit else {})))
    out.append(_f(f"evt_{s}_users_30d", "event_type", "count",
                  f"distinct users with '{name}' events in the last 30 days{spelled}", 0,
                  f"{{value}} users with '{event_type}' in the last 30 days",
                  f"近30天'{event_type}'用户{{value}}人", "event_users", event_type=name,
                  window=30, type="int"))
    return out


@dataclass(frozen=True)
class Catalogue:
    """The full ordered feature list for one dataset (core + per event type).

    ``spellings``: event type -> ``{spelling: events}`` for the types the data spells in more than
    one way (``event_families``: one type, one feature family). ``ignored``: a flat table's columns the
    model does not read, with the reason (its id and label columns, an e-mail, free text): a request may
    send them, as the export has them, and they are ignored (``serving.api``).
    """

    features: tuple[FeatureSpec, ...]
    event_types: tuple[str, ...]
    spellings: dict[str, dict[str, int]] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.type == "category"]

    def __getitem__(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_json(self) -> str:
        return json.dumps({"event_types": list(self.event_types), "spellings": self.spellings,
                           "features": [asdict(f) for f in self.features],
                           **({"ignored": self.ignored} if self.ignored else {})}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Catalogue:
        raw = json.loads(text)
        feats = tuple(FeatureSpec(**{**f, "valid_range": tuple(f["valid_range"]),
                                     "reason_zh": RENAMED_ZH.get(f["reason_zh"], f["reason_zh"])})
                      for f in raw["features"])
        return cls(features=feats, event_types=tuple(raw["event_types"]), spellings=raw.get("spellings") or {},
                   ignored=raw.get("ignored") or {})


CORE_FEATURES: tuple[FeatureSpec, ...] = tuple(_core_features())

#: Chinese templates of a bundle written before a wording changed, read as today's: a term is a subscription period
#: (订阅期), not a contract (合同), which read wrong for monthly app plans; without it one account's reasons mixed
#: the bundle's 合同 with the code's 订阅期 ("订阅期今天到期", the review of 2026-12-07).
RENAMED_ZH: dict[str, str] = {"合同{value}天后到期": "订阅期{value}天后到期",
                              "已申请在本期合同结束时取消": "已申请在本订阅期结束时取消"}

#: Reasons for a missing (null) value whose meaning is known from the definition, in English and
#: Simplified Chinese. A null only becomes a reason when the null itself carries the contribution;
#: a feature not listed here is worded "No data on <name>".
NULL_REASONS: dict[str, tuple[str, str]] = {
    "days_since_last_login": ("Never logged in", "从未登录"),
    "days_since_last_ticket": ("Never opened a ticket", "从未提交工单"),
    "days_to_term_end": ("No end date on the current term", "当前订阅期没有到期日"),
    "tickets_30d_vs_baseline": ("No tickets in the last 180 days", "近180天没有工单"),
    "mean_resolution_hours_90d": ("No tickets resolved in the last 90 days", "近90天没有已解决的工单"),
    "worst_csat_90d": ("No rated tickets in the last 90 days", "近90天没有已评分的工单"),
    "mean_csat_90d": ("No rated tickets in the last 90 days", "近90天没有已评分的工单"),
    "payment_delay_90d": ("No invoices paid in the last 90 days", "近90天没有已付款的发票"),
    "payment_delay_change": ("No invoices paid in one of the last two 90-day periods",
                             "近两个90天周期之一没有已付款的发票"),
    "core_events_per_active_user_30d": ("No active users in the last 30 days", "近30天没有活跃用户"),
    "core_user_share_30d": ("No active users in the last 30 days", "近30天没有活跃用户"),
    "active_users_per_seat": ("No seats on record", "没有席位记录"),
    "mrr": ("No MRR on record", "没有 MRR 记录"),
    "mrr_change_90d": ("No MRR 90 days ago", "90天前没有 MRR"),
    # a relative change is null when the previous window had none and the last one had some
    "logins_7d_change": ("Logins in the last 7 days after none in the 7 days before",
                         "前7天无登录，近7天有登录"),
    "logins_30d_change": ("Logins in the last 30 days after none in the 30 days before",
                          "前30天无登录，近30天有登录"),
    "active_days_30d_change": ("Active in the last 30 days after no activity in the 30 days before",
                               "前30天无活跃，近30天有活跃"),
    "core_events_30d_change": ("Core-feature use in the last 30 days after none in the 30 days before",
                               "前30天未使用核心功能，近30天有使用"),
}


#: The reason of a customer whose only term in force is a pause (``Settings.paused_plans``, kept in the ``plan``
#: feature's ``params``): its ``days_to_term_end`` is null because a pause's end is no term end, and that null is
#: worded so, not as "No end date on the current term" (a probe's Paddle export: 14 of 28 paused customers high
#: risk, none told of the pause, "Only 50% of seats in use" instead).
PAUSED_REASON = ("Subscription paused", "订阅已暂停")


#: Where a null of known meaning sits on its feature's scale: +1 above every value ("Never logged in":
#: longer ago than any login; "No end date": later than any end; a rise from none, as of every
#: ``event_change`` feature too: more than any change), -1 below (no active users: less use than
#: any). With the feature's direction this gives the side the null is a reason on by itself
#: (``training.reason_text.word_missing``). A null of ``NULL_REASONS`` not listed here ("No rated
#: tickets in the last 90 days": a blank rating is not a low one) has no side of its own: like "No
#: data on X" it is a reason or strength only where the training rows show its blanks on that side
#: (``missing`` in reasons.json).
NULL_POSITION: dict[str, int] = {
    "days_since_last_login": +1,
    "days_to_term_end": +1,
    "core_events_per_active_user_30d": -1,
    "core_user_share_30d": -1,
    "logins_7d_change": +1,
    "logins_30d_change": +1,
    "active_days_30d_change": +1,
    "core_events_30d_change": +1,
}


#: What a row must show for a null to mean what ``NULL_REASONS`` says: ``(feature, test)`` with
#: test ``known``, ``>0`` or ``==0``. A request that leaves a feature out has a null that means
#: nothing: without the evidence, the null is worded "No data on <name>".
NULL_EVIDENCE: dict[str, tuple[str, str]] = {
    "days_since_last_login": ("logins_90d", "known"),
    "days_since_last_ticket": ("tickets_30d", "known"),
    "days_to_term_end": ("mrr", "known"),
    "tickets_30d_vs_baseline": ("tickets_30d", "known"),
    "mean_resolution_hours_90d": ("tickets_30d", "known"),
    "worst_csat_90d": ("tickets_30d", "known"),
    "mean_csat_90d": ("tickets_30d", "known"),
    "payment_delay_90d": ("late_payments_90d", "known"),
    "payment_delay_change": ("late_payments_90d", "known"),
    "core_events_per_active_user_30d": ("active_users_30d", "==0"),
    "core_user_share_30d": ("active_users_30d", "==0"),
    "active_users_per_seat": ("active_users_30d", "known"),
    "mrr": ("tenure_days", "known"),
    "mrr_change_90d": ("mrr", "known"),
    "logins_7d_change": ("logins_7d", ">0"),
    "logins_30d_change": ("logins_30d", ">0"),
    "active_days_30d_change": ("active_days_30d", ">0"),
    "core_events_30d_change": ("core_events_30d", ">0"),
}


def null_reason(spec: FeatureSpec) -> tuple[str, str]:
    """The (English, Chinese) reason for a missing value of ``spec``: what the null means."""
    if spec.name in NULL_REASONS:
        return NULL_REASONS[spec.name]
    if spec.template == "event_change":
        et = spec.params.get("event_type", "")
        en, zh = spec.params.get("unit_en", "events"), spec.params.get("unit_zh", "事件") or ""
        return (f"'{et}' {en} in the last 30 days after none in the 30 days before",
                f"前30天无'{et}'{zh}，近30天有")
    return no_data_reason(spec)


#: The subject of a reason template that reads "Subject: {value}" (either colon), as every profile
#: feature's does ("Company size band from employees: {value}", "公司规模：{value}").
_SUBJECT = re.compile(r"^([^{}]+?)\s*[:：]\s*\{value\}")


def _subject(template: str) -> str | None:
    m = _SUBJECT.match(template)
    return m.group(1).replace("{{", "{").replace("}}", "}") if m else None


def no_data_reason(spec: FeatureSpec) -> tuple[str, str]:
    """The (English, Chinese) reason for a null whose meaning is unknown: named by its template's
    subject when the template reads "Subject: {value}" ("No data on company size band from
    employees" / "公司规模：无数据", as a manager reads it), else by the feature's name."""
    en, zh = _subject(spec.reason_en), _subject(spec.reason_zh)
    if en and en[1:] == en[1:].lower():  # "Industry" -> "industry"; "NPS", "Annual Revenue" stay
        en = en[0].lower() + en[1:]
    return f"No data on {en or spec.name}", f"{zh or spec.name}：无数据"


def null_evidence(spec: FeatureSpec) -> tuple[str, str] | None:
    """``(feature, test)`` a row must pass for ``null_reason`` to hold (None: it always holds)."""
    if spec.template == "event_change":
        return spec.name.removesuffix("_change"), ">0"
    return NULL_EVIDENCE.get(spec.name)


def build_catalogue(event_types: list[str] | tuple[str, ...],
                    spellings: dict[str, dict[str, int]] | None = None,
                    units: Mapping[str, str | Mapping[str, str]] | None = None,
                    standing: Iterable[str] = ()) -> Catalogue:
    """Core features followed by the per-event-type family, event types sorted.

    ``standing``: the event types named as a ``cancel_request`` or ``cancel_withdrawn`` get no family:
    ``cancel_request_standing`` says what they mean, from the day after the request to the term's end. Their
    windowed counts would say it only for a request of the last 30 or 90 days, and where the training dates
    hold only monthly terms (every request within its last month) the counts and the flag agree on every
    training row, so the trees took the counts and an annual customer asking months ahead scored healthy (a
    probe's Stripe export: 124 of 412 test rows of such requests within 60 days of the term's end, all churned).

    ``event_types`` are family names already (``event_families``: spellings that differ only in
    case, spaces, '-' or '_' are one type); ``spellings`` gives the families spelled more than one
    way. Two event types that still share a slug ("a.b" and "a/b") get a numeric suffix so columns
    stay unique.
    """
    feats = list(CORE_FEATURES)
    by_key = event_units(units or {})
    seen: dict[str, int] = {}
    ordered = sorted(set(event_types))
    several = {k: v for k, v in (spellings or {}).items() if k in ordered and len(v) > 1}
    asked = {family_key(t) for t in standing}
    for et in ordered:
        if family_key(et) in asked:
            continue
        fam = event_type_features(et, [s for s in several.get(et, {}) if s != et], by_key.get(family_key(et)))
        base = slug(et)
        n = seen.get(base, 0)
        seen[base] = n + 1
        if n:
            fam = [FeatureSpec(**{**asdict(f), "name": f.name.replace(f"evt_{base}_", f"evt_{base}{n + 1}_", 1)})
                   for f in fam]
        feats.extend(fam)
    return Catalogue(features=tuple(feats), event_types=tuple(ordered), spellings=several)
