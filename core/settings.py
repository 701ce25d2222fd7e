"""Typed configuration: one object, read from ``churnwatch.yaml`` and the environment.

The settings object is passed down explicitly; nothing reads files or the environment
at import time.

Over 400 lines: every configurable part declares its section here, in one typed place (the
schema of ``churnwatch.yaml``), rather than beside its code, so one file documents the config.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError
from core.files import atomic_write_text
from core.time import Horizon
from core.vocabulary import TIER_KEYS, Lang

CONFIG_FILE_NAME = "churnwatch.yaml"
CONFIG_ENV = "CHURNWATCH_CONFIG"  # the file `serve --config` named, for the service's worker processes
DEFAULT_HOME = "churnwatch-data"


class EventRoles(BaseModel):
    """Maps the company's own event types to the article's semantic roles.

    Every event type gets its generic activity features without any role; a role adds
    the semantic indicators (logins, core-feature depth and breadth, ...).
    """

    model_config = ConfigDict(extra="forbid")

    login: list[str] = Field(default_factory=list, description="event types that are a login")
    core_feature: list[str] = Field(
        default_factory=list, description="event types that are uses of a core feature"
    )
    new_feature: dict[str, date] = Field(
        default_factory=dict, description="new-feature event type -> release date"
    )
    training: list[str] = Field(default_factory=list, description="webinars, courses")
    marketing_sent: list[str] = Field(default_factory=list, description="marketing email sent")
    marketing_open: list[str] = Field(default_factory=list, description="marketing email opened")
    contact_left: list[str] = Field(default_factory=list, description="a key contact left")
    cancel_request: list[str] = Field(
        default_factory=list,
        description="event types that are the customer asking to cancel at the term's end, dated when asked "
        "(Stripe's canceled_at of a cancel_at_period_end subscription, Chargebee's cancellation scheduled, "
        "an app store's auto-renew turned off): the request stands until the term ends or a new one starts",
    )
    not_usage: list[str] = Field(
        default_factory=list,
        description="dated facts that are no use of the product (a CS tool's ratings, NPS or survey answers, a "
        "CSM's notes): counted as their own event types, never as active days, users or a sign of tracking",
    )
    cancel_withdrawn: list[str] = Field(
        default_factory=list,
        description="event types that are the customer taking a cancellation request back (Chargebee's "
        "scheduled cancellation removed, Stripe's cancel_at_period_end set back to false, auto-renew turned back "
        "on): a request is void from the day it is withdrawn",
    )

    def named_types(self) -> list[str]:
        """Every event type some role names, in field order (``new_feature``: its keys)."""
        return [t for name in type(self).model_fields for t in getattr(self, name)]


class Playbook(BaseModel):
    """What the customer-success team does for a tier (ARTICLE §3)."""

    model_config = ConfigDict(extra="forbid")

    action_en: str
    action_zh: str
    owner: str
    respond_within: str = Field(description="as said to people, e.g. '4 hours'")
    respond_within_hours: float | None = Field(None, ge=0, description="for due times; None = no deadline")


#: The default playbooks come in two styles (``Settings.playbook_style``): ARTICLE §3's for B2B accounts with a CSM,
#: and one for a consumer product's subscribers, reached by lifecycle messages and offers (three probes' apps and
#: boxes read "Retention squad (CSM, sales, product, executive) ... executive visit ... 4 hours" for a $10
#: subscription).
#: Accounts scored whose median MRR is below this (and no style set) are told of ``playbook_style: consumer``.
CONSUMER_MRR = 50.0


#: Per style and tier: (action in English, in Chinese, owner, respond within, its hours; None: no deadline).
_PLAYBOOKS: dict[str, dict[str, tuple[str, str, str, str, float | None]]] = {
    "b2b": {
        "healthy": ("Upsell / cross-sell candidate; no retention action", "增购/交叉销售候选客户；无需挽留动作",
                    "CSM", "no deadline", None),
        "low_risk": ("Personalised care email: industry best practice, new features, a value reminder",
                     "个性化关怀邮件：行业最佳实践、新功能介绍、价值提醒", "CSM", "3 working days", 72),
        "medium_risk": ("CSM call or video meeting; one-to-one training or power-user workshop; the CSM's manager "
                        "writes", "客户成功经理电话或视频会议；一对一培训或高级用户工作坊；客户成功主管致信",
                        "CSM / CSM lead", "24 hours", 24),
        "high_risk": ("Retention squad (CSM, sales, product, executive); tailored offer; executive visit for "
                      "high-value accounts", "成立挽留小组（客户成功、销售、产品、高管）；定制挽留方案；"
                      "高价值客户由高管拜访",
                      "Retention squad incl. an executive", "4 hours", 4),
    },
    "consumer": {
        "healthy": ("No retention action; a candidate for a referral or an annual-plan offer",
                    "无需挽留动作；适合推荐有礼或年付方案", "Lifecycle marketing", "no deadline", None),
        "low_risk": ("Automated re-engagement message (e-mail or push): a feature tip, a reminder of what they get",
                     "自动触达（邮件或推送）：功能提示，提醒其已获得的价值", "Lifecycle marketing", "3 days", 72),
        "medium_risk": ("Targeted offer in the app or by e-mail: a discount, a pause or a cheaper plan; ask what is "
                        "missing", "应用内或邮件定向优惠：折扣、暂停订阅或更便宜的方案；询问缺少什么", "Retention team",
                        "24 hours", 24),
        "high_risk": ("Save offer before the renewal (a discount, a pause or a downgrade); a failed payment first: ask "
                      "them to update their payment method; a personal message from support where the value warrants "
                      "it", "续订前发送挽留优惠（折扣、暂停或降级）；若扣款失败，先请其更新支付方式；"
                      "高价值用户由客服亲自联系",
                      "Retention team", "24 hours", 24),
    },
}


def default_playbooks(style: str = "b2b") -> dict[str, Playbook]:
    """ARTICLE §3's intervention matrix, plus ``healthy`` (``style`` b2b), or a consumer product's (``consumer``)."""
    return {tier: Playbook(action_en=en, action_zh=zh, owner=owner, respond_within=within, respond_within_hours=hours)
            for tier, (en, zh, owner, within, hours) in _PLAYBOOKS[style].items()}


class AlertRule(BaseModel):
    """A rule over the score history (DESIGN §5), raised once per episode.

    kinds: ``below_for`` (health < ``threshold`` in every score of the last ``days`` days,
    with at least ``min_scores`` scores), ``tier_drop`` (a whole tier worse than the
    previous score), ``entered_high_risk``. ``segments`` limits the rule to those segments.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["below_for", "tier_drop", "entered_high_risk"]
    threshold: int = Field(60, ge=1, le=100)
    days: int = Field(7, ge=1, le=365)
    min_scores: int = Field(2, ge=1)
    segments: list[str] | None = None


class Webhook(BaseModel):
    """Where alerts go: generic JSON (signed with an HMAC-SHA256 header when ``secret`` is set),
    Slack (Block Kit), DingTalk (markdown, signed URL with ``secret``) or WeCom (markdown).

    One digest per run goes to each webhook (``workflow.channels``), in its ``lang``; with
    ``per_account`` it also gets one message per account. Delivery (``workflow.send``) waits at
    most ``timeout_seconds`` per attempt, makes ``retries`` more attempts and spends at most
    ``max_wait_seconds`` on a message; messages to one webhook are spaced to
    ``rate_per_minute`` (default by format: Slack 60, DingTalk 20, WeCom 20, generic 600).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    url: str
    format: Literal["generic", "slack", "dingtalk", "wecom"] = "generic"
    secret: str | None = None
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)
    lang: Lang = Field("en", description="language of the messages: en or zh-CN")
    per_account: bool = Field(False, description="also one message per account, besides the run's digest")
    rate_per_minute: float | None = Field(None, gt=0, le=60_000, description="most messages a minute "
                                          "(default by format: slack 60, dingtalk 20, wecom 20, generic 600)")
    max_wait_seconds: float = Field(60.0, gt=0, le=3600, description="the most time spent on one message, "
                                    "attempts and waits between them included (then it stays pending)")


def default_alert_rules() -> list[AlertRule]:
    return [AlertRule(name="health below 60 for 7 days", kind="below_for", threshold=60, days=7, min_scores=2),
            AlertRule(name="entered high risk", kind="entered_high_risk")]


class MonitoringSettings(BaseModel):
    """Thresholds of the monitoring alarms (DESIGN §6).

    Drift methods and thresholds are Evidently's stat-test names and thresholds (``None``:
    Evidently's own choice by column type and sample size: Kolmogorov-Smirnov / chi-square
    p-values up to 1,000 rows, normed Wasserstein / Jensen-Shannon distances above).
    """

    model_config = ConfigDict(extra="forbid")

    drift_share: float = Field(0.3, gt=0, le=1, description="alarm when this share of features drifts")
    features: list[str] | None = Field(None, description="model features to watch (default: all of them)")
    drift_method: str | None = Field(None, description="Evidently stat test for every feature")
    drift_threshold: float | None = Field(None, gt=0, description="threshold of that test")
    per_feature_method: dict[str, str] = Field(default_factory=dict, description="feature -> stat test")
    per_feature_threshold: dict[str, float] = Field(default_factory=dict, description="feature -> threshold")
    probability_method: str | None = Field(None, description="stat test for churn_probability")
    probability_threshold: float | None = Field(None, gt=0, description="threshold of that test")
    max_rows: int | None = Field(200_000, ge=1_000, description="larger samples are cut to this many rows "
                                 "(uniform random sample, fixed seed); None = never")
    sample_seed: int = 0
    max_roc_auc_drop: float = Field(0.05, ge=0, le=1, description="alarm: ROC-AUC below training by more")
    max_pr_auc_drop: float = Field(0.05, ge=0, le=1, description="alarm: PR-AUC below training by more")
    max_brier_rise: float = Field(0.25, ge=0, description="alarm: Brier above training by more (relative)")
    max_ece_rise: float = Field(0.05, ge=0, le=1, description="alarm: ECE above training by more (absolute)")
    min_matured_rows: int = Field(100, ge=1, description="fewer matured scores: no performance verdict")
    experiment: str = Field("churnwatch-monitoring", description="MLflow experiment of monitoring runs")


class TrainingSettings(BaseModel):
    """How labelled snapshots are split for training (``training/split.py``).

    ``None`` means automatic: the purged layout (test 91, calibration 91, early stopping
    42 days) where the history allows, else cross-fitting inside the training dates with
    an automatic test block. ``calibration_days: 0`` forces cross-fitting.
    """

    model_config = ConfigDict(extra="forbid")

    test_days: int | None = Field(None, ge=7, le=730, description="days of as-of dates in the test block")
    calibration_days: int | None = Field(None, ge=0, le=730, description="purged calibration block; 0 = cross-fit")
    early_stopping_days: int | None = Field(None, ge=0, le=730, description="purged early-stopping block")
    min_train_days: int = Field(56, ge=7, le=3650, description="fewest days of training as-of dates")
    folds: int = Field(4, ge=2, le=10, description="account-grouped folds when cross-fitting")


class ProfileColumn(BaseModel):
    """How one of the company's own columns becomes a profile feature (all optional).

    ``kind`` forces the reading (e.g. a numeric code as a category); without it the
    column's values decide (numbers, booleans, dates, text with few values).
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,62}$", description="feature name")
    direction: Literal[-1, 0, 1] = Field(0, description="+1 more means more risk, -1 less, 0 unknown")
    unit: str | None = Field(None, description="unit of the value, e.g. 'years' or 'currency'; 'cents': a "
                             "number in cents, read / 100 (unit currency)")
    kind: Literal["number", "category", "date", "boolean"] | None = None
    keep: bool = Field(False, description="a category: use it even when it shows no link to churn in the "
                       "training accounts (training.screen leaves such a column out)")
    valid_range: tuple[float | None, float | None] | None = Field(
        None, description="a number outside [low, high] (inclusive; null = no bound) is read as missing: "
        "an age of 0 for 'unknown', -7 or 1051")


class ProfileSettings(BaseModel):
    """The company's own columns of ``accounts`` and ``subscriptions`` (issue 12, item 2).

    Keys in ``exclude`` and ``columns`` are the source's column names; a subscriptions
    column is written ``subscriptions.<column>`` (a bare name means ``accounts``).
    """

    model_config = ConfigDict(extra="forbid")

    max_categories: int = Field(50, ge=2, le=1000, description="more distinct text values: not a category")
    exclude: list[str] = Field(default_factory=list, description="columns never used as features")
    columns: dict[str, ProfileColumn] = Field(default_factory=dict, description="column -> name/direction/unit")


class ServingSettings(BaseModel):
    """Limits of the prediction service, per worker process (``serving/limits.py``), and how it
    answers from the published scores (``serving/published.py``).

    ``CHURNWATCH_MAX_BODY_BYTES`` in the environment overrides ``max_body_bytes``.
    """

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(8_000_000, ge=1_000, description="largest request body, also once decompressed "
                                "(default: 1,000 accounts with every feature)")
    body_timeout_seconds: float = Field(15.0, gt=0, le=25, description="a request body not received in full "
                                        "this long after its headers is answered 408 and its connection "
                                        "closed (below the service's 30 s request timeout)")
    max_concurrent_requests: int = Field(256, ge=1, le=100_000, description="requests in progress per worker; "
                                         "more are answered 503 with Retry-After at once")
    min_coverage: float = Field(0.5, ge=0, le=1, description="/score: an account whose given features carry "
                                "less than this share of the model's gain gets an error instead of a tier")
    max_score_age_days: int = Field(14, ge=1, le=3650, description="a score this many days older than the "
                                    "latest scoring run's as-of date is answered with stale: true")


class OperationsSettings(BaseModel):
    """The operational store (``workflow.db``) and how people reach the workspace."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="SQLAlchemy URL of the operational store (users, tasks, alerts, "
                            "...), e.g. postgresql+psycopg://user@host/db; default the SQLite file "
                            "<home>/operations.sqlite (CHURNWATCH_OPERATIONS_URL overrides the default)")
    link_base: str = Field("http://127.0.0.1:3001", description="the address people open the workspace at "
                           "(`churnwatch app`): links in digests, e-mails and tasks start with it (an account's "
                           "page /accounts/ID, the task board /tasks)")
    late_webhook_days: int = Field(7, ge=0, le=365, description="a webhook that has never received anything gets "
                                   "the open alerts of this many last days as one digest on the next run (0: none)")


class EmailSettings(BaseModel):
    """Outgoing e-mail (``workflow.email``): the SMTP server, the sender and where an account's
    name, contact and language are read from (columns of the data source's ``accounts`` table,
    by their own names; absent columns are simply not used)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="send e-mails at all (preview works either way)")
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = Field(False, description="upgrade the connection with STARTTLS")
    ssl: bool = Field(False, description="connect with TLS from the start (SMTPS, usually port 465)")
    username: str | None = None
    password_env: str | None = Field(None, description="name of the environment variable holding the password")
    sender: str = Field("churnwatch@localhost", min_length=3, description="the From address: care@example.com, or "
                        "with a name, \"Customer Success <care@example.com>\" (without one the signature is the name)")
    reply_to: str | None = None
    timeout_seconds: float = Field(15.0, gt=0, le=120)
    lang: Lang = Field("en", description="language of an account without its own")
    signature_en: str = "Your customer success team"
    signature_zh: str = "您的客户成功团队"
    templates: str | None = Field(None, description="folder of templates that override the built-in ones")
    name_column: str = Field("name", description="accounts column with the account's display name")
    contact_column: str = Field("contact_name", description="accounts column with the contact person's name")
    email_column: str = Field("contact_email", description="accounts column with the contact's e-mail address")
    lang_column: str = Field("language", description="accounts column with the contact's language (en, zh-CN)")

    @field_validator("sender")
    @classmethod
    def _an_address(cls, value: str) -> str:
        from email.utils import parseaddr

        address = parseaddr(value)[1]
        if "@" not in address or not address.isascii():
            raise ValueError(f"{value!r} has no e-mail address: give care@example.com or \"Name <care@example.com>\" "
                             "(the name may have accents; the address is ASCII)")
        return value

    @field_validator("ssl")
    @classmethod
    def _one_tls(cls, value: bool, info) -> bool:
        if value and info.data.get("starttls"):
            raise ValueError("choose starttls or ssl, not both")
        return value


class TagRule(BaseModel):
    """A tag given to every account whose latest score meets all the rule's conditions (and taken
    away when it no longer does): ``tiers`` (tier in the list), ``health_below``, ``reasons`` (one
    of these features among the account's top reasons), ``features_above`` (feature value above
    the number in the latest snapshot, e.g. ``contact_left_90d: 0``), ``churned``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    tiers: list[str] | None = None
    health_below: int | None = Field(None, ge=1, le=100)
    reasons: list[str] | None = None
    features_above: dict[str, float] | None = None
    churned: bool | None = None

    @field_validator("tiers")
    @classmethod
    def _known_tiers(cls, value: list[str] | None) -> list[str] | None:
        unknown = [t for t in value or [] if t not in TIER_KEYS]
        if unknown:
            raise ValueError(f"unknown tier(s) {', '.join(unknown)} (tiers: {', '.join(TIER_KEYS)})")
        return value

    def model_post_init(self, _context: Any) -> None:
        if all(v is None for v in (self.tiers, self.health_below, self.reasons, self.features_above, self.churned)):
            raise ValueError(f"tag {self.name!r} has no condition (tiers, health_below, reasons, features_above "
                             "or churned)")


class SequenceStep(BaseModel):
    """One timed step of a sequence: ``after_days`` from the enrolment; an e-mail (``template``:
    a template name, default the account's tier), a retention task or a webhook message
    (``action``: the task's text or the webhook's name)."""

    model_config = ConfigDict(extra="forbid")

    after_days: int = Field(ge=0, le=3650)
    kind: Literal["email", "task", "webhook"]
    template: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    action: str | None = None


class Sequence(BaseModel):
    """A re-activation sequence: accounts that get the ``tag`` are enrolled and receive the steps
    on schedule; losing the tag or churning ends the enrolment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    tag: str
    steps: list[SequenceStep] = Field(min_length=1)


def default_tags() -> list[TagRule]:
    return [TagRule(name="at-risk", tiers=["medium_risk", "high_risk"]),
            TagRule(name="key-contact-left", features_above={"contact_left_90d": 0}),
            TagRule(name="churned", churned=True)]
class TaskSettings(BaseModel):
    """Retention tasks (``workflow.tasks``): working time for "working days" playbooks and escalation.

    A playbook whose ``respond_within`` says "working day(s)" counts its hours on ``working_days``
    only, between ``day_start_hour`` and ``day_end_hour`` (UTC); ``respond_within_hours / 24``
    working days of that window. An overdue task escalates once per level: level 1 (``escalate_after_hours[0]``
    hours past due) notifies the assignee's team lead, level 2 the lead's manager, or
    ``escalation_channel`` (a webhook name) when the lead has none.
    """

    model_config = ConfigDict(extra="forbid")

    working_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], description="0 = Monday")
    day_start_hour: int = Field(0, ge=0, le=23, description="working time starts (UTC hour)")
    day_end_hour: int = Field(24, ge=1, le=24, description="working time ends (UTC hour)")
    escalate_after_hours: list[float] = Field(default_factory=lambda: [0.0, 24.0], min_length=1, max_length=2,
                                              description="hours past due for escalation level 1 (and 2)")
    escalation_channel: str | None = Field(None, description="webhook name for level 2 when the lead has "
                                           "no manager")

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value or any(d not in range(7) for d in value):
            raise ValueError("working_days: weekday numbers 0 (Monday) to 6 (Sunday), at least one")
        return sorted(set(value))


class Settings(BaseModel):
    """Everything churnwatch can be configured with.

    Attributes:
        data: data source: a folder of Parquet/CSV files, a ``.duckdb`` file or a
            SQLAlchemy URL. Relative paths are relative to the config file.
        data_end: the moment the export was taken (exclusive); default the day after
            the latest timestamp in events, tickets and invoices.
        horizon_days: the label horizon ``H``: churn in ``[t, t + H]`` (on ``t`` only where a renewal was due).
        grace_days: a gap between terms up to this long does not end a relationship.
        paused_plans: the plans (case-insensitive) of terms that stand for a pause, as the exports guide
            sends one (``plan: paused``): such a term keeps the customer active, but its end is no
            term end (``days_to_term_end`` reads the other terms in force, null when none): a pause
            until further notice gets its end written only when it ends, so on the rows before it
            the end would tell how the pause ended (a probe's Shopify app: paused rows with an end
            churned 56%, and every shop paused at the export had no end, a strength).
        snapshot_every_days: the default as-of schedule (weekly).
        silence_days: a regular ticket writer silent this long is flagged.
        column_mapping: ``{table: {their_column: canonical_column}}``.
        column_units: ``{table: {money_column: unit}}``: ``cents`` when the export gives
            ``subscriptions.mrr`` or ``invoices.amount`` in cents (Stripe: 2900 = 29.00), read
            divided by 100; ``currency`` (the default) as they are.
        date_format: how the source writes dates that are not ISO, as a ``strptime`` format
            (``%d/%m/%Y``: 5/3/2024 is 5 March), for every date and timestamp column read as
            text or numbers (``features/dates.py``); ISO values are read as ISO in any case.
        date_formats: ``{table: {date_column: format}}`` per contract column, or per own column of
            ``accounts`` / ``subscriptions`` by its source name, winning over ``date_format``
            (``%Y%m%d`` for integer dates such as 20240305).
        event_roles: see ``EventRoles``.
        event_units: per event type, what its ``quantity`` counts when it is not one event (daily
            rollups: ``requests``), as an English plural or ``{en: ..., zh-CN: ...}``; reasons and
            definitions word the type's counts with it (``features.spec.event_type_features``).
        playbooks: tier -> ``Playbook``; defaults from ARTICLE §3 (override per tier).
        playbook_style: the defaults' style, ``b2b`` (ARTICLE §3) or ``consumer`` (lifecycle messages and
            offers): a tier whose playbook is the B2B default takes the style's (a saved settings version holds
            every tier; a tier changed by hand stays as it is).
        monitoring: drift and performance alarm thresholds (``MonitoringSettings``).
        training: the split's block lengths (``TrainingSettings``).
        profile: the company's own account columns as features (``ProfileSettings``).
        serving: the prediction service's limits, the coverage a /score account needs and the
            staleness of published scores (``ServingSettings``).
        operations: the operational store's URL and the workspace's address
            (``OperationsSettings``).
        email: the SMTP server and sender of e-mails to accounts (``EmailSettings``).
        tags: rules that tag accounts from their latest score (``TagRule``).
        sequences: timed steps for the accounts of a tag (``Sequence``).
        tasks: working time and escalation of retention tasks (``TaskSettings``).
    """

    model_config = ConfigDict(extra="forbid")

    data: str | None = None
    data_end: date | None = None
    horizon_days: int = Field(60, ge=1, le=730)
    grace_days: int = Field(30, ge=0, le=365)
    paused_plans: list[str] = Field(default_factory=lambda: ["paused"], description="plans of subscriptions terms "
                                    "that stand for a pause (case-insensitive): their end is not read as the term's "
                                    "end (days_to_term_end), since a pause's end is mostly written when it ends")
    snapshot_every_days: int = Field(7, ge=1, le=366)
    silence_days: int = Field(45, ge=7, le=365)
    column_mapping: dict[str, dict[str, str]] = Field(default_factory=dict)
    column_units: dict[str, dict[str, Literal["currency", "cents"]]] = Field(
        default_factory=dict, description="{table: {money column: currency | cents}}: cents are read / 100")
    date_format: str | None = Field(None, min_length=2, description="strptime format of the source's dates "
                                    "that are not ISO, e.g. '%d/%m/%Y' (day first) or '%m/%d/%Y' (month first)")
    date_formats: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="{table: {date column: strptime format}}: per column (a contract column, or "
        "an own column of accounts or subscriptions by its name), over date_format")
    event_roles: EventRoles = Field(default_factory=EventRoles)
    event_units: dict[str, str | dict[Literal["en", "zh-CN"], str]] = Field(
        default_factory=dict, description="{event type: what one unit of its quantity is, as an English plural "
        "('requests'), or {en: requests, zh-CN: 请求}}: the reasons say '12,000 requests', not '12,000 events'")
    playbooks: dict[str, Playbook] = Field(default_factory=default_playbooks)
    playbook_style: Literal["b2b", "consumer"] = Field(
        "b2b", description="the default playbooks' style: b2b (a CSM, calls, an executive for high risk) or consumer "
        "(lifecycle messages and offers); tiers set under playbooks stay as set")
    alert_rules: list[AlertRule] = Field(default_factory=default_alert_rules)
    webhooks: list[Webhook] = Field(default_factory=list)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    operations: OperationsSettings = Field(default_factory=OperationsSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    tags: list[TagRule] = Field(default_factory=default_tags)
    sequences: list[Sequence] = Field(default_factory=list)
    tasks: TaskSettings = Field(default_factory=TaskSettings)

    @property
    def horizon(self) -> Horizon:
        """The configured horizon: used to label new snapshots only; readers take the one
        stored with the snapshots or the bundle (``SnapshotMeta.horizon``)."""
        return Horizon.of(self)

    @field_validator("playbooks")
    @classmethod
    def _all_tiers(cls, value: dict[str, Playbook]) -> dict[str, Playbook]:
        unknown = [k for k in value if k not in TIER_KEYS]
        if unknown:
            raise ValueError(f"unknown tier(s) {', '.join(unknown)} (tiers: {', '.join(TIER_KEYS)})")
        return {**default_playbooks(), **value}

    @model_validator(mode="after")
    def _playbook_style(self) -> Settings:
        """A tier whose playbook is a default of either style takes this style's (a saved version holds every
        tier: ``settings set playbook_style=consumer`` and back to ``b2b`` swap them); one written by hand stays."""
        own = default_playbooks(self.playbook_style)
        defaults = [default_playbooks(style) for style in ("b2b", "consumer")]
        self.playbooks = {t: own[t] if any(p == d[t] for d in defaults) else p for t, p in self.playbooks.items()}
        return self

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[TagRule]) -> list[TagRule]:
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError(f"two tags share a name: {sorted({n for n in names if names.count(n) > 1})}")
        return value

    @field_validator("sequences")
    @classmethod
    def _sequence_tags(cls, value: list[Sequence], info) -> list[Sequence]:
        tags = {t.name: t for t in info.data.get("tags") or []}
        for seq in value:
            if seq.tag not in tags:
                raise ValueError(f"sequence {seq.name!r}: tag {seq.tag!r} is not one of the tags "
                                 f"({', '.join(sorted(tags)) or 'none'})")
            if tags[seq.tag].churned:
                raise ValueError(f"sequence {seq.name!r}: tag {seq.tag!r} is given to churned accounts, and "
                                 "churning ends a sequence (a win-back after churn is not a sequence step)")
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError("two sequences share a name")
        return value


def service_settings(home: Path) -> Settings:
    """The settings a service process runs with: the file ``churnwatch serve --config`` named
    (passed to its worker processes as ``CHURNWATCH_CONFIG``), else ``<home>/churnwatch.yaml``.

    Raises:
        ConfigError: as ``load_settings``.
    """
    return load_settings(os.environ.get(CONFIG_ENV) or None, home)


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The home folder: ``--home``, else ``CHURNWATCH_HOME``, else ``./churnwatch-data``."""
    chosen = home or os.environ.get("CHURNWATCH_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


def load_settings(path: str | os.PathLike[str] | None = None, home: Path | None = None) -> Settings:
    """Read settings from ``path``, else ``<home>/churnwatch.yaml`` if present, else defaults.

    A relative ``data`` path in the file is resolved against the file's folder.

    Raises:
        ConfigError: the file does not exist (when named), is not YAML, or does not
            validate; the message names the file and the offending key.
    """
    file: Path | None = Path(path) if path else None
    if file is None and home is not None and (home / CONFIG_FILE_NAME).exists():
        file = home / CONFIG_FILE_NAME
    if file is None:
        return Settings()
    if not file.exists():
        raise ConfigError(f"config file {file} does not exist")
    try:
        raw: Any = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        meant = _field_description(Settings, first["loc"])
        raise ConfigError(f"{file}: {where}: {first['msg']}" + (f" (expected: {meant})" if meant else "")) from exc
    if settings.data and "://" not in settings.data and not Path(settings.data).is_absolute():
        settings = settings.model_copy(update={"data": str((file.parent / settings.data).resolve())})
    return settings


def _field_description(model: type[BaseModel], loc: tuple) -> str | None:
    """The description of the settings field at ``loc`` (a validation error's path), if it has one:
    "event_roles.new_feature: Input should be a valid dictionary (expected: new-feature event type ->
    release date)"."""
    field = None
    for part in loc:  # only a path of named fields all the way down: a list item's field is not its list's
        fields = getattr(model, "model_fields", None) if isinstance(model, type) else None
        if not isinstance(part, str) or not fields or part not in fields:
            return None
        field = fields[part]
        model = field.annotation
    return field.description if field is not None else None


def dump_settings(settings: Settings, path: Path) -> None:
    """Write settings as YAML (used by the demo generator)."""
    data = settings.model_dump(mode="json", exclude_defaults=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
