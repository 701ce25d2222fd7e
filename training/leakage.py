"""Label-leakage guard (issue 12, item 4): checked before a model is registered.

Over 400 lines: the checks, their messages and causes, and what a version allowed to leak may do
next (promotion, where to look) are one guard; each check is a short function of its own.

The checks on the training rows and the fitted model:

- **one feature predicts the label on its own**: its ROC-AUC on the training rows is
  >= 0.95 in either direction (>= 0.85 for a company's own column whose name says it may be written
  from the outcome: ``OUTCOME_NAME``, "Retention Offer Sent", "Cancellation Reason"). Missing
  values count: they are placed below and above all present values and the stronger ordering is
  kept; a categorical column is scored by its (smoothed) churn rate per category, missing being a
  category of its own;
- **a feature present almost only for churners**: at least ``min_present`` rows have a
  value and >= 90% of them churned, while the base rate is at most half of that share
  (a cancellation date or reason filled in only when the customer leaves);
- **a value of a company's own category held almost only by churners** (``churner_value``): a status of
  closed or cancelled accounts (``客户状态`` = 已销户), held by at least ``min_present`` accounts (a flat
  table's customers), >= 90% of its rows churned;
- **a company's own date dated after the as-of date almost only for churners** (``dated_after``): a deal's
  close date, a cancellation's effective date, written once the customer left; a flat table's as-of date is
  not taken from such a column (``training.table_dates.dated_after_export``);
- **a company's own column no churner lies beyond** (a profile column or a flat table's): every
  churned row has a value on one side of a bound that at least ``bounded_share`` of the rows that
  stayed cross, where that many rows would hold at least ``bounded_expected`` churners at the base
  rate (``churner_bounded``). A probe's telecom table: a vendor's "Churn Score" (churners 65 to 100,
  customers who stayed 5 to 100) reached ROC-AUC 0.89 on its own, passed the other checks, and its
  model predicted 13% on new customers who churned 25%. A column the company fills in from the
  outcome need not predict churn perfectly to leak: it only has to be bounded for churners;
- **said, not refused**: a company's own column whose ROC-AUC on its own is from ``near_auc`` (0.90) up to
  its limit (``NEAR``; a probe's after-the-fact vendor score at 0.947 where the honest columns reached 0.79):
  ``train`` and ``promote`` name it (``run_text.possible_leak``);
- **the model is too good to be true**: its ROC-AUC on the held-out test rows is >= 0.98;
  the finding names the feature with the largest split gain;
- **an end date written only once a subscription ends** (snapshots): ``days_to_term_end`` has a
  value on at least ``term_end_present`` of the training rows but on at most ``term_end_fall`` of
  that share of the accounts at the data end (``term_end_finding``). A billing period or contract
  term has its end from its start on, so the share holds date after date; an end date that a
  cancellation or a plan change writes (Stripe's ``canceled_at``, Chargebee's ``Cancelled At``
  mapped to ``end_date``) is on the rows before it happened and on none of the subscriptions still
  running at the export. A probe's Chargebee export (seat changes closing rows of customers who
  stayed) passed the other checks at 0.941 and 0.974: 56% of the training rows had the value,
  0.0% of the 641 accounts at the data end.

A finding stops training with a ``TrainingError`` naming the feature and its likely cause,
unless the feature is listed in ``allowed`` (``train --allow-leaky-feature NAME``). Such a
version is tagged (bundle ``meta["leakage"]``, MLflow tags) and ``promote`` refuses it
without ``--force`` (see ``promotion_block``).
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from core.vocabulary import number_text
from features.spec import STANDING_REQUEST
from training.bootstrap import rank_roc_auc
from training.errors import TrainingError

GUIDE = "docs/exports-with-cancellation-dates.md"

#: Likely causes of known leaks, by feature name.
KNOWN_CAUSES: dict[str, str] = {
    "days_to_term_end": (
        "an end date that is only known after cancellation, as in a Stripe export's canceled_at mapped to "
        "end_date (or a Chargebee export's Cancelled At, a RevenueCat export's unsubscribe_detected_at; end_date "
        f"is the billing period's or term's end, known from its start; see {GUIDE})"),
    STANDING_REQUEST: (
        "nearly every churner asked to cancel ahead (the event types named under event_roles: cancel_request, "
        "dated when asked): if they are dated when the customer asked, this is no leak, but the model then "
        f"mostly tells who has already decided; keep it with --allow-leaky-feature {STANDING_REQUEST} (a "
        "version so allowed is promoted only with --force), or check that the events are not dated at the end "
        f"of the term; see {GUIDE}"),
}
CAUSE_BY_CHECK: dict[str, str] = {
    "feature_auc": ("a column written from what happened after the as-of date (a cancellation or end date, "
                    "a cancellation reason, a final invoice, a closed status) or the label under another name"),
    "churner_only": ("a value recorded only when a customer cancels (a cancellation date, reason or survey "
                     f"answer; an end date filled in at cancellation, see {GUIDE}); if it is a moment known "
                     "when it happened (a cancellation asked for ahead, auto-renew switched off), send it as "
                     "an event dated then instead of a column"),
    "model_auc": ("a prediction too good to be true: usually one column written at or after cancellation; "
                  "this is the feature the model relies on most"),
    "written_after": ("a CRM or billing field filled in or changed when a customer leaves (a churn reason, a "
                      "lifecycle stage of former customer, a cancellation survey answer): the export has each "
                      "account as it is on the export day, not as it was on the as-of dates"),
    "copied_back": ("a subscription's amount, seats or plan as it is on the export day copied into its past "
                    "periods (a subscriptions export, one row per subscription, expanded into billing periods "
                    "after a price or plan change): take each period's amount, quantity and plan from the invoice "
                    f"lines it was billed with; see {GUIDE}. If the periods are as billed (a plan or price no "
                    "longer sold whose customers have all left), it is no leak: allow it"),
    "dated_after": ("a date written once the customer had left (a renewal deal's close date, a cancellation's "
                    "effective date, a final invoice date), after the table's as-of date: not known then"),
    "churner_value": ("a status or category set when a customer leaves (a closed, cancelled or suspended "
                      "account, a churn category), known only because the data was exported after the outcome"),
    "churner_bounded": ("a score, status or category set from the outcome (a vendor's churn score, a churn "
                        "category, a cancellation code), not known before the outcome, or a hard rule (a "
                        "contract nobody may leave before a date: then allow it)"),
}
#: What to do with a company's own column that leaks (a profile column, a flat table's column).
EXCLUDE_HINT = "leave the column out of the export, or list it under profile: exclude in churnwatch.yaml"
#: A finding of these checks on an own column says how to leave it out.
EXCLUDABLE = ("feature_auc", "churner_value", "churner_bounded", "written_after", "dated_after")
#: A flat table has no events to send a dated moment as: its way out is to leave the column out.
TABLE_CHURNER_ONLY = ("a value recorded only when a customer cancels (a cancellation date, reason or survey "
                      "answer); leave the column out of the table, or list it under profile: exclude in "
                      "churnwatch.yaml")


#: The check of a company's own column that predicts churn on its own nearly as well as a refused one
#: (``LeakageLimits.near_auc`` up to its limit): kept in ``meta["leakage"]["near"]`` and said at `train` and
#: `promote` (``run_text.possible_leak``), never refused: an honest column can predict that well.
NEAR = "near_auc"


@dataclass(frozen=True)
class LeakageLimits:
    """Thresholds of the three checks (defaults from issue 12)."""

    feature_auc: float = 0.95
    model_auc: float = 0.98
    churner_share: float = 0.90
    min_present: int = 20
    category_smoothing: float = 20.0
    term_end_present: float = 0.10
    term_end_fall: float = 0.25
    bounded_share: float = 0.25
    bounded_expected: float = 20.0
    bounded_churners: int = 30
    bounded_values: int = 3
    named_auc: float = 0.85
    near_auc: float = 0.90


#: Words in a company's own column name that say it may be written from the outcome ("Retention Offer Sent",
#: "Cancellation Reason", "Account Closed Date", "Exit Survey", "Lost Reason"), not words an honest column has
#: ("Notice Period", "Closed Tickets", "Termination Fee", "cancelled_orders_90d", "Lost Login Attempts",
#: "Closed Won Date", "Retainer", the review's list): such a column is held to
#: ``LeakageLimits.named_auc`` on its own, not to ``feature_auc``. A probe's payroll table: a "Retention Offer
#: Sent" flag, Yes for 91% of churners and 5% of those who stayed, reached ROC-AUC 0.93 on its own, passed the
#: other checks, and its model scored 1,995 of 2,000 current customers healthy (none had been sent an offer).
OUTCOME_NAME = re.compile(
    r"churn(?!ed (?:seats|users|licen[cs]es|mrr|revenue))|"
    r"retention (?:offer|call|attempt|desk|team|outcome|discount|flag|status|contact|case|email|sent)|"
    r"w[io]n ?back|save (?:offer|desk)|offboard|non ?renewal|notice given|\bexit(?:ed\b| (?:survey|interview|reason|"
    r"date|feedback|code))|(?:lost|closed) (?:reason|date)|(?:reason|date) (?:lost|closed|cancell?ed|terminated)|"
    r"closed lost|cancel(?:l?ation(?! (?:policy|fee|terms|window|period))|l?ed\b(?! (?:orders?|items?|bookings?|"
    r"appointments?|classes|sessions|trips|rides|deliver|invoices?|payments?|charges?|meetings?))| (?:date|reason|"
    r"request|code|type|flag|at))|\bterminated\b|"
    r"(?:account|contract|subscription|customer|membership) (?:closed(?! won)|closure|deactivat\w*|terminat\w*)|"
    r"(?:closure|termination|deactivation|deactivated) (?:date|reason|code|type|on|at)\b|"
    r"^(?:closed|deactivated|cancell?ed|terminated|lost|inactive since)$")


#: ``OUTCOME_NAME`` in Chinese: churn (流失), unsubscribing, closing or cancelling an account or a contract,
#: leaving the network, retention and win-back (a probe's Chinese CRM table: a vendor's ``流失风险分`` computed
#: after the fact, 0.866 alone, was registered without a word, where ``Churn Risk Score`` was refused); not
#: 取消 or 终止 alone (``取消订单数``, ``已取消订单数``, cancelled orders, are honest counts, as in English).
OUTCOME_NAME_ZH = re.compile(
    r"流失|退订|销户|注销|解约|离网|拆机|挽留|挽回|召回|赢回|不再续[费约订]|未续[费约订]|不续[费约订]"
    r"|取消(?:原因|日期|时间|订阅|会员|服务|续费)|终止(?:原因|日期|时间|合同|合作|服务)"
    r"|(?:退费|退款|离开|关闭|停用)(?:原因|日期|时间)|已(?:取消|终止|注销|停用|关闭)$")


def outcome_word(name: str) -> str | None:
    """The word of ``OUTCOME_NAME`` in a column name (``Retention_Offer_Sent`` -> ``retention``), or of
    ``OUTCOME_NAME_ZH`` (``流失风险分`` -> ``流失``), or None."""
    found = (OUTCOME_NAME.search(re.sub(r"[\W_]+", " ", re.sub(r"([a-z])([A-Z])", r"\1 \2", name)).lower())
             or OUTCOME_NAME_ZH.search(name))
    return found.group(0) if found else None


@dataclass(frozen=True)
class LeakFinding:
    """One suspected leak: which feature, which check, the measured value and why."""

    feature: str
    check: str  # feature_auc, churner_only, dated_after, churner_bounded, written_after, copied_back, model_auc,
    # written_at_end
    value: float
    detail: str
    flat: bool = False  # found in a flat table's rows (no as-of dates, no events)
    own: bool = False  # a company's own column (profile or flat table): its way out is profile: exclude

    @property
    def cause(self) -> str:
        if self.feature in KNOWN_CAUSES:
            return KNOWN_CAUSES[self.feature]
        if self.flat and self.check == "churner_only":
            return TABLE_CHURNER_ONLY
        hint = f"; {EXCLUDE_HINT}" if (self.own or self.flat) and self.check in EXCLUDABLE else ""
        return CAUSE_BY_CHECK[self.check] + hint

    def message(self) -> str:
        return f"feature {self.feature!r}: {self.detail}; likely cause: {self.cause}"


def _auc_either_way(y: np.ndarray, score: np.ndarray) -> float:
    auc = rank_roc_auc(np.asarray(y), score)  # sklearn's value; its input checks cost most of the screen
    return max(auc, 1.0 - auc)


def numeric_auc(y: np.ndarray, values: pd.Series) -> float | None:
    """ROC-AUC of a numeric column in the stronger direction, missing values placed below or
    above all present ones (whichever separates better); None when it has < 2 distinct values."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    present = ~np.isnan(x)
    if not present.any() or (present.all() and np.unique(x).size < 2):
        return None
    ranks = np.zeros(len(x))
    ranks[present] = rankdata(x[present])  # ranks: +-inf are ordinary extremes; AUC only needs the order
    best = 0.0
    for fill in (0.0, float(len(x) + 1)):
        scored = np.where(present, ranks, fill)
        if np.unique(scored).size >= 2:
            best = max(best, _auc_either_way(y, scored))
    return best or None


def categorical_auc(y: np.ndarray, values: pd.Series, smoothing: float) -> float | None:
    """ROC-AUC of a categorical column scored by its smoothed churn rate per category
    (missing is a category); None for a single category."""
    keys = values.astype("object").where(values.notna(), "\x00missing").astype(str).to_numpy()
    frame = pd.DataFrame({"k": keys, "y": y})
    stats = frame.groupby("k")["y"].agg(["sum", "count"])
    if len(stats) < 2:
        return None
    base = float(y.mean())
    rate = (stats["sum"] + smoothing * base) / (stats["count"] + smoothing)
    return _auc_either_way(y, frame["k"].map(rate).to_numpy(dtype="float64"))


def churner_only(y: np.ndarray, values: pd.Series, limits: LeakageLimits) -> float | None:
    """Share of churners among the rows where the feature has a value, when that looks like a
    leak (enough rows, share >= ``churner_share``, base rate <= half the share); else None."""
    present = values.notna().to_numpy()
    n = int(present.sum())
    if n < limits.min_present or present.all():
        return None
    share = float(y[present].mean())
    if share >= limits.churner_share and float(y.mean()) <= share / 2:
        return share
    return None


def churner_value(y: np.ndarray, values: pd.Series, limits: LeakageLimits,
                  accounts: pd.Series | None = None) -> tuple[str, int, float] | None:
    """A category's value (not a blank) held by at least ``min_present`` accounts (``accounts``: an event log's
    weekly rows, where two short-lived accounts of a rare industry hold two dozen rows, all churned, honestly;
    without them each row is a customer, a flat table's),
    at least ``churner_share`` of them churners while the base rate is at most half that share: a status set as
    the customer left. ``(value, rows, churner share)`` of the value on the most rows, or None. A probe's Chinese
    CRM table: ``客户状态`` = 已销户 (account closed) on 19% of the rows, all churners, passed as a category
    (ROC-AUC 0.904 alone, under 0.95: the other values mix churners and not), and the model registered at 0.974
    where the data allowed 0.84."""
    present = values.notna().to_numpy()
    if present.sum() < limits.min_present:
        return None
    frame = pd.DataFrame({"v": values[present].astype(str).to_numpy(), "y": y[present],
                          "a": (accounts[present] if accounts is not None else values.index[present]).to_numpy()})
    stats = frame.groupby("v").agg(sum=("y", "sum"), count=("y", "size"), holders=("a", "nunique"))
    stats = stats[stats["holders"] >= limits.min_present]
    share = stats["sum"] / stats["count"]
    found = stats[(share >= limits.churner_share) & (float(y.mean()) <= share / 2)]
    if found.empty or len(stats) < 2 and not (~present).any():  # one value on every row: nothing told apart
        return None
    top = found["count"].idxmax()
    return str(top), int(found.loc[top, "count"]), float(found.loc[top, "sum"] / found.loc[top, "count"])


def dated_after(y: np.ndarray, days: pd.Series, limits: LeakageLimits) -> tuple[int, float] | None:
    """A date column (``days``: days since it at each row's as-of date) dated after the as-of date (a negative
    value) on at least ``min_present`` rows, at least ``churner_share`` of them churners and the base rate at
    most half that share: a date written once the customer had left (a renewal deal's close date, a
    cancellation's effective date, a final invoice), not known on the as-of date. ``(rows, churner share)`` or
    None. A probe's CRM table (2026-12-06): "Renewal Deal Close Date", filled for 90% of churners, 0.914 alone,
    passed every other check and rated 1,946 of 2,000 current customers healthy."""
    x = pd.to_numeric(days, errors="coerce").to_numpy(dtype="float64")
    late = x < 0
    n = int(late.sum())
    if n < limits.min_present:
        return None
    share = float(y[late].mean())
    return (n, share) if share >= limits.churner_share and float(y.mean()) <= share / 2 else None


def churner_bounded(y: np.ndarray, values: pd.Series, limits: LeakageLimits,
                    accounts: pd.Series | None = None) -> tuple[str, float, float, int, int, float] | None:
    """A numeric column no churner lies beyond, at a cliff: every churned row with a value on one side of
    a bound (the churners' lowest or highest value) that at least ``bounded_share`` of the rows that
    stayed cross, while right inside the bound (the nearest ``BOUND_BAND`` of the rows with a value)
    customers churn at least at the base rate, so that many rows beyond it (their accounts, with
    ``accounts``: an account's rows share one fate) would hold at least ``bounded_expected`` churners at
    that rate. A risk that fades to nothing (referrals, months left in a contract nobody leaves early
    where few are near the end) has a low rate inside its bound and is no cliff. At least
    ``bounded_churners`` churned rows and ``bounded_values`` distinct values (a flag of two values is the
    other checks' case): a rating of 1 to 5 no churner gave above 3, while 40% of those who stayed did
    and churn at 3 is above the base rate, is a cliff (IBM's extended Telco table has a "Satisfaction
    Score" of that shape); a rating churners gave at every level is not. The five honest tables of the
    test suite (a telecom's, a bank's, an e-commerce shop's, the flat demo, a probe's telecom table)
    give no finding with either 3 or 10 values as the least (measured 2026-12-06).
    Returns (side the stayers cross: "below" or "above", the bound, the share of the stayers with a value
    beyond it, churned rows with a value, stayed rows with a value, the churn rate inside the bound), or
    None."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    present = ~np.isnan(x)
    churned, stayed = present & (y == 1), present & (y == 0)
    if churned.sum() < limits.bounded_churners or not stayed.any() \
            or np.unique(x[present]).size < limits.bounded_values:
        return None
    lo, hi = float(x[churned].min()), float(x[churned].max())
    beyond = {"below": stayed & (x < lo), "above": stayed & (x > hi)}
    side = max(beyond, key=lambda k: int(beyond[k].sum()))
    share = float(beyond[side].sum() / stayed.sum())
    if share < limits.bounded_share:
        return None
    inside = present & ~beyond[side]
    order = np.sort(x[inside]) if side == "below" else -np.sort(-x[inside])
    edge = order[min(max(int(BOUND_BAND * present.sum()), limits.bounded_churners), order.size) - 1]
    band = inside & ((x <= edge) if side == "below" else (x >= edge))
    rate = float(y[band].mean())
    if rate < float(y[present].mean()):
        return None  # the risk fades towards the bound: no cliff
    units = int(pd.Series(accounts.to_numpy()[beyond[side]]).nunique()) if accounts is not None \
        else int(beyond[side].sum())
    if units * rate < limits.bounded_expected:
        return None
    return side, (lo if side == "below" else hi), share, int(churned.sum()), int(stayed.sum()), rate


#: The rows right inside a bound whose churn rate ``churner_bounded`` reads (a share of the rows with a value).
BOUND_BAND = 0.10

#: ``written_after``: a value of an account column (present, missing, one category or one of few numbers) on at
#: least ``AFTER_PRESENT`` of the training rows, churning at least ``AFTER_RATE`` times the base rate there, at
#: the data end on at most ``AFTER_FALL`` times that share of the accounts, and on at most ``AFTER_SURVIVORS`` of
#: the marked training rows' accounts still active at the data end (a win-back or two).
AFTER_PRESENT = 0.02
AFTER_RATE = 2.0
AFTER_FALL = 0.25
AFTER_SURVIVORS = 0.02
#: ``copied_back`` (a term's MRR, seats or plan) asks more: at most ``COPIED_SURVIVORS`` of the marked rows on accounts
#: still active (a plan or price no longer sold whose customers left fast keeps a few: a review's simulation, 2.4-2.9%),
#: and at least ``COPIED_COHORT`` accounts still active at the data end that started when the marked accounts did
#: without the value: a copied-back value splits the customers who started together by when they left (11.99 on
#: those who left before a rise, 13.99 on those who stayed); a plan sold for a while holds all of its starters.
COPIED_SURVIVORS = 0.005
COPIED_COHORT = 5
#: A number column of at most this many distinct values has each value checked (a 0/1 checkbox).
AFTER_FEW_VALUES = 10


def _markers(values: pd.Series, at_end: pd.Series, categorical: bool) -> list[tuple[str, pd.Series, pd.Series]]:
    """(what is said, the training rows marked, the accounts at the data end marked) of one column: it has a
    value, it has none, and each common value of a category or of a column of few numbers."""
    out = [("has a value", values.notna(), at_end.notna()), ("is empty", values.isna(), at_end.isna())]
    if categorical or values.nunique() <= AFTER_FEW_VALUES:
        common = values.value_counts()
        out += [(f"is {number_text(v) if isinstance(v, int | float | np.number) else repr(str(v))}",
                 values == v, at_end == v) for v in common.index[common >= AFTER_PRESENT * len(values)]]
    return out


def _cohort_others(rows: pd.DataFrame, marked: np.ndarray, active: set) -> int:
    """How many accounts still active at the data end (``active``) started in a month one of the ``marked`` rows'
    accounts started in, without a marked row themselves: the start is the as-of date less ``tenure_days`` where
    the rows have it, else the account's first training row."""
    when = rows["as_of"]
    numeric = pd.api.types.is_numeric_dtype(when)
    if "tenure_days" in rows.columns and not numeric:
        start = pd.to_datetime(when) - pd.to_timedelta(rows["tenure_days"].fillna(0), unit="D")
    else:
        start = pd.to_datetime(when) if not numeric else when
    first = pd.Series(start.to_numpy(), index=rows.index).groupby(rows["account_id"]).min()
    cohort = first if numeric else first.dt.to_period("M")
    hit = set(rows.loc[marked, "account_id"])
    months = set(cohort[cohort.index.isin(hit)])
    others = cohort[~cohort.index.isin(hit) & cohort.index.isin(active)]
    return int(others.isin(months).sum())


def written_after(rows: pd.DataFrame, y: np.ndarray, own: Iterable[str], end_rows: pd.DataFrame | None,
                  categorical: Iterable[str] = (), limits: LeakageLimits = LeakageLimits(),
                  terms: Iterable[str] = ()) -> list[LeakFinding]:
    """An account column filled in, cleared or changed once a customer has left: a value (present,
    missing, a category, one of few numbers) common on the training rows of accounts that later left,
    absent from the accounts still active at the data end (``end_rows``: the store's latest date,
    ``core.store.latest_rows``), and on no account that is still one. An export holds each account's
    row as it is on the export day, so a CRM's "Churn reason", a "Lifecycle stage" of "Former customer"
    or a "Churned" checkbox is on every earlier row of an account that left (a probe's HubSpot export:
    "Churn reason" on the rows of the accounts that left, ROC-AUC 0.82 alone, on none of the 1,055
    accounts at the data end, passed the other checks: its rows were mostly months before the churn,
    labelled 0). A fact known all along (a region, a plan family) is on the accounts at the data end about
    as often; a group that has shrunk since (a market left, an offer no longer sold, a retired plan) keeps
    some of its accounts to the end, which a value written at churn never does (a review's simulations:
    0% of the marked rows on surviving accounts for a churn reason, 12% for a market left, 26% for an
    offer code). ``AFTER_PRESENT``, ``AFTER_RATE``, ``AFTER_FALL``, ``AFTER_SURVIVORS``.

    ``terms``: those of ``own`` read from the subscriptions' terms (MRR, seats, plan): the same shape there is a
    subscription's value on the export day copied into its past periods (``copied_back``). A probe's Stripe
    export expanded into periods after a price rise: 11.99 on the periods of every subscription that ended
    before it (9.8% of the training rows, 46% churned), 13.99 on every other (0.0% churned); the model
    reached 0.98 on validation rows, 0.67 on the test block, below the logistic baseline. Honest terms can
    take that shape too (a launch plan sold for three months whose customers left fast): there it asks that
    fewer of the marked rows be of accounts still customers, and that customers who started with the marked
    ones stayed with another value (``COPIED_SURVIVORS``, ``COPIED_COHORT``)."""
    y = np.asarray(y, dtype=int)
    copied = set(terms)
    if end_rows is None or len(end_rows) < limits.min_present or not len(rows) or y.min() == y.max():
        return []
    base, cats, out = float(y.mean()), set(categorical), []
    day = f" ({pd.Timestamp(end_rows['as_of'].iloc[0]).date()})" if "as_of" in end_rows.columns else ""
    active = set(end_rows["account_id"]) if "account_id" in end_rows.columns else None
    accounts = rows["account_id"] if "account_id" in rows.columns else None
    if active is None or accounts is None:
        return []  # which accounts stayed cannot be told: no judgement
    for name in own:
        if name not in rows.columns or name not in end_rows.columns:
            continue
        for said, marked, at_end in _markers(rows[name], end_rows[name], name in cats):
            marked = marked.to_numpy(dtype=bool)
            share, end_share = float(marked.mean()), float(at_end.mean())
            churned = int(y[marked].sum())
            if share < AFTER_PRESENT or share >= 1.0 or churned < limits.min_present:
                continue
            rate = float(y[marked].mean())
            if rate < AFTER_RATE * base or end_share > AFTER_FALL * share:
                continue
            survivors = float(accounts[marked].isin(active).mean())
            if survivors > (COPIED_SURVIVORS if name in copied else AFTER_SURVIVORS):
                continue  # a group that shrank, not a value written at churn
            if name in copied and _cohort_others(rows, marked, active) < COPIED_COHORT:
                continue  # nobody who started with them stayed with another value: a plan sold for a while
            why = ("the periods carry the value their subscription had when it ended, not the one billed then"
                   if name in copied else "the value is written once a customer has left, and the export gives it "
                   "to every earlier row of the accounts that left")
            out.append(LeakFinding(name, "copied_back" if name in copied else "written_after", end_share,
                                   f"{said} on {share:.1%} of the training rows, where {rate:.1%} churned (base rate "
                                   f"{base:.1%}), but on {end_share:.1%} of the {len(end_rows):,} accounts at the data "
                                   f"end{day}, and {survivors:.0%} of those rows are of accounts still customers "
                                   f"then: {why}", own=name not in copied))
            break  # one finding a column
    return out


def feature_findings(rows: pd.DataFrame, y: np.ndarray, names: list[str], categorical: Iterable[str],
                     limits: LeakageLimits = LeakageLimits(), own: Iterable[str] = (),
                     dated: Iterable[str] = ()) -> list[LeakFinding]:
    """The per-feature checks on the training rows (``y`` 0/1, aligned with ``rows``); ``own``: the
    company's own columns (profile columns, a flat table's), the ones the bound check reads; ``dated``: those
    of them that are dates, as days since the date (``dated_after``)."""
    y = np.asarray(y, dtype=int)
    if y.min() == y.max():
        return []
    cats, mine = set(categorical), set(own)
    flat = "as_of" not in rows.columns
    accounts = rows["account_id"] if not flat and "account_id" in rows.columns else None
    out: list[LeakFinding] = []
    days = set(dated)
    for name in names:
        values = rows[name]
        after = dated_after(y, values, limits) if name in days else None
        if after is not None:
            n, share = after
            out.append(LeakFinding(name, "dated_after", share,
                                   f"is dated after the as-of date on {n:,} training rows, {share:.0%} of them "
                                   f"churners (base rate {y.mean():.1%})", flat=flat, own=True))
            continue
        share = churner_only(y, values, limits)
        if share is not None:
            n = int(values.notna().sum())
            out.append(LeakFinding(name, "churner_only", share,
                                   f"has a value in {n:,} training rows, {share:.0%} of them churners "
                                   f"(base rate {y.mean():.1%})", flat=flat, own=name in mine))
            continue
        # a company's own category only: a built-in plan of trials most of which end unconverted is churn honestly
        value = churner_value(y, values, limits, accounts) if name in cats and name in mine else None
        if value is not None:
            label, n, share = value
            out.append(LeakFinding(name, "churner_value", share,
                                   f"is {label!r} on {n:,} training rows, {share:.0%} of them churners (base rate "
                                   f"{y.mean():.1%})", flat=flat, own=name in mine))
            continue
        auc = (categorical_auc(y, values, limits.category_smoothing) if name in cats
               else numeric_auc(y, values))
        word = outcome_word(name) if name in mine else None
        limit = min(limits.feature_auc, limits.named_auc) if word else limits.feature_auc
        if auc is not None and auc >= limit:
            named = (f"; its name says it may be written from the outcome ({word!r}), and such a column is held to "
                     f"{limit} (any other to {limits.feature_auc})") if word and auc < limits.feature_auc else ""
            out.append(LeakFinding(name, "feature_auc", auc,
                                   f"predicts churn on its own with ROC-AUC {auc:.3f} on the training rows "
                                   f"(limit {limit}){named}", flat=flat, own=name in mine))
            continue
        bounded = churner_bounded(y, values, limits, accounts) if name in mine and name not in cats else None
        if bounded is not None:
            side, bound, share, n1, n0, rate = bounded
            edge = "at or above" if side == "below" else "at or below"
            out.append(LeakFinding(name, "churner_bounded", share,
                                   f"every one of the {n1:,} churned training rows with a value has one {edge} "
                                   f"{number_text(bound)}, while {share:.0%} of the {n0:,} rows that stayed with a "
                                   f"value are {side} it, and right {'above' if side == 'below' else 'below'} it "
                                   f"{rate:.0%} churned (ROC-AUC {auc or 0.5:.3f} on its own): churn stops at a "
                                   "cliff the customers who stayed cross freely", flat=flat, own=True))
    return out


def model_finding(model_roc_auc: float, importance: dict[str, float],
                  limits: LeakageLimits = LeakageLimits()) -> LeakFinding | None:
    """A finding when the model's test ROC-AUC reaches ``model_auc``; it names the feature with
    the largest importance (``importance``: feature -> total split gain)."""
    if not np.isfinite(model_roc_auc) or model_roc_auc < limits.model_auc or not importance:
        return None
    top = max(importance, key=importance.get)
    return LeakFinding(top, "model_auc", float(model_roc_auc),
                       f"the model reaches ROC-AUC {model_roc_auc:.3f} on the test rows (limit {limits.model_auc}) "
                       "and relies on it most")


#: The feature read from the subscriptions' end date (``term_end_finding``)
TERM_END = "days_to_term_end"
#: The end dates are a renewal calendar, not a leak, when the accounts at the data end have one at least
#: this share as often as the training rows do, and at least ``CALENDAR_RENEWED`` of the training rows
#: whose term ends within the horizon did not churn (``renewal_calendar``).
CALENDAR_KEPT = 0.75
CALENDAR_RENEWED = 0.10


def term_end_finding(rows: pd.DataFrame, latest: tuple[dt.date, int, int] | None,
                     limits: LeakageLimits = LeakageLimits()) -> LeakFinding | None:
    """A finding when ``days_to_term_end`` is on at least ``term_end_present`` of the training ``rows``
    and, of the accounts at the data end (``latest``: the store's latest as-of date, its rows, those with
    a value; ``core.store.latest_presence``), on at most ``term_end_fall`` times that share."""
    if TERM_END not in rows.columns or latest is None or not len(rows):
        return None
    day, n, present = latest
    before = float(rows[TERM_END].notna().mean())
    if n < limits.min_present or before < limits.term_end_present or present / n > limits.term_end_fall * before:
        return None
    return LeakFinding(TERM_END, "written_at_end", present / n,
                       f"has a value on {before:.0%} of the training rows but on {present / n:.1%} of the "
                       f"{n:,} accounts at the data end ({day}): the subscriptions still running at the export "
                       "have no end date, so an end date is written only once a subscription ends, after the "
                       "as-of dates it is read on")


def renewal_calendar(rows: pd.DataFrame, latest: tuple[dt.date, int, int] | None,
                     limits: LeakageLimits = LeakageLimits(), y: np.ndarray | None = None,
                     horizon_days: int | None = None) -> str | None:
    """Why the end-date features are not a leak, when the end dates are known ahead: the accounts at
    the data end have one at least ``CALENDAR_KEPT`` times as often as the training rows (contracts
    signed for a term, billing periods), so the subscriptions still running at the export carry theirs,
    and terms ending within the horizon (``horizon_days``) renew on at least ``CALENDAR_RENEWED`` of the
    training rows (``y``): an end date moved forward at each renewal, or one written as the cancellation
    for churners and as the period's end for the rest, is present at the data end too, but then only
    churners' terms end within the horizon. In a contract business churn happens only where a term
    ends, so the days to it predict churn on their own (a probe's annual-contract export: ROC-AUC 0.953
    at a 60-day horizon): that is the renewal calendar, which the model should use. None when the
    figures do not show it."""
    if TERM_END not in rows.columns or latest is None or not len(rows) or y is None or not horizon_days:
        return None
    day, n, present = latest
    before = float(rows[TERM_END].notna().mean())
    if n < limits.min_present or before < limits.term_end_present or present / n < CALENDAR_KEPT * before:
        return None
    days = pd.to_numeric(rows[TERM_END], errors="coerce").to_numpy(dtype="float64")
    ending = (days > 0) & (days <= horizon_days)
    if ending.sum() < limits.min_present or float((np.asarray(y)[ending] == 0).mean()) < CALENDAR_RENEWED:
        return None
    return (f"the end dates are a renewal calendar, not a leak: {present / n:.0%} of the {n:,} accounts at the "
            f"data end ({day}) have one, as {before:.0%} of the training rows do, so they are known before "
            "the term ends; that churn comes where terms end is what the model is meant to use")


def enforce(findings: list[LeakFinding], allowed: Iterable[str], names: list[str]) -> dict:
    """Stop on a finding whose feature is not ``allowed``; otherwise the record to keep.

    Returns:
        ``{"allowed": [...], "findings": [...]}`` for the bundle's ``meta["leakage"]``;
        ``allowed`` are the features the user declared (the version is then never promoted
        automatically); ``near``, when there are ``NEAR`` findings (never refused).

    Raises:
        TrainingError: an allowed name is not a feature, or a finding is not allowed (its
            message names the feature, the measurement and the likely cause).
    """
    near = [f for f in findings if f.check == NEAR]  # said, never refused
    findings = [f for f in findings if f.check != NEAR]
    allowed = sorted(set(allowed))
    unknown = [a for a in allowed if a not in names]
    if unknown:
        raise TrainingError(f"--allow-leaky-feature {unknown[0]!r}: no such feature in this model "
                            f"({len(names)} features, e.g. {', '.join(names[:5])})")
    blocked = [f for f in findings if f.feature not in allowed]
    if blocked:
        first = blocked[0]
        others: dict[str, LeakFinding] = {}
        for f in blocked[1:]:
            if f.feature != first.feature:
                others.setdefault(f.feature, f)
        more = (" (also flagged: " + "; ".join(f"{n!r} {f.detail}" for n, f in sorted(others.items())) + ")"
                if others else "")
        flags = " ".join(f"--allow-leaky-feature {shlex.quote(n)}"  # with the ones already allowed, kept
                         for n in [first.feature, *sorted(others), *allowed])
        raise TrainingError(f"label leakage suspected, nothing registered: {first.message()}{more}. Fix the "
                            f"column or its mapping; to train anyway (the version is then never promoted "
                            f"automatically) pass {flags}")
    record = {"allowed": allowed, "findings": [asdict(f) for f in findings]}
    if near:  # ``run_text.possible_leak`` says it at `train` and `promote`
        record["near"] = [{"feature": f.feature, "value": round(float(f.value), 4), "detail": f.detail} for f in near]
    return record


def screen_features(rows: pd.DataFrame, y: np.ndarray, names: list[str], categorical: Iterable[str],
                    allowed: Iterable[str] = (), limits: LeakageLimits = LeakageLimits(),
                    latest: tuple[dt.date, int, int] | None = None, horizon_days: int | None = None,
                    own: Iterable[str] = (), end_rows: pd.DataFrame | None = None,
                    exported: Iterable[str] | None = None, terms: Iterable[str] = (),
                    dated: Iterable[str] = ()) -> None:
    """The per-feature checks alone, before any model is fitted (fail fast); raises like
    ``enforce``. ``latest``: the end-date check's figures of the data end (``term_end_finding``);
    ``own``: the company's own columns (``feature_findings``); ``end_rows``: the account columns at the data
    end, and ``exported`` those of them ``written_after`` reads (default ``own``), ``terms`` those read from the
    subscriptions' terms; ``dated``: the own columns that are dates (days since them: ``feature_findings``)."""
    enforce(_feature_checks(rows, y, names, categorical, limits, latest, horizon_days, own, end_rows, exported,
                            terms, dated)[0], allowed, names)


def near_findings(rows: pd.DataFrame, y: np.ndarray, own: list[str], categorical: Iterable[str],
                  limits: LeakageLimits) -> list[LeakFinding]:
    """``NEAR`` findings: each of the company's own columns ``own`` (none flagged by a refusing check) whose
    ROC-AUC on its own, measured as ``feature_findings`` does, is from ``limits.near_auc`` up to the limit. A
    probe's after-the-fact vendor score, "Engagement Risk Score", alone at 0.947 passed without a word where the
    table's honest columns reached 0.79."""
    y = np.asarray(y, dtype=int)
    if not len(y) or y.min() == y.max():
        return []
    cats = set(categorical)
    out = []
    for name in own:
        if outcome_word(name):  # held to ``named_auc`` already: at 0.85 it is refused
            continue
        values = rows[name]
        auc = categorical_auc(y, values, limits.category_smoothing) if name in cats else numeric_auc(y, values)
        if auc is not None and limits.near_auc <= auc < limits.feature_auc:
            out.append(LeakFinding(name, NEAR, auc, f"predicts churn on its own with ROC-AUC {auc:.3f} on the "
                                   f"training rows (refused from {limits.feature_auc})",
                                   flat="as_of" not in rows.columns, own=True))
    return out


def _feature_checks(rows: pd.DataFrame, y: np.ndarray, names: list[str], categorical: Iterable[str],
                    limits: LeakageLimits, latest: tuple[dt.date, int, int] | None,
                    horizon_days: int | None = None, own: Iterable[str] = (),
                    end_rows: pd.DataFrame | None = None, exported: Iterable[str] | None = None,
                    terms: Iterable[str] = (), dated: Iterable[str] = ()) -> tuple[list[LeakFinding], str | None, bool]:
    """The per-feature findings; the note when the end dates are a renewal calendar (their findings
    are then dropped), and whether a finding was dropped so."""
    own = list(own)
    findings = feature_findings(rows, y, names, categorical, limits, own, dated)
    flagged = {f.feature for f in findings}
    read = list(own if exported is None else exported)
    findings += written_after(rows, y, [n for n in read if n in names and n not in flagged], end_rows, categorical,
                              limits, terms)
    flagged |= {f.feature for f in findings}
    near = near_findings(rows, y, [n for n in own if n in names and n not in flagged], categorical, limits)
    written = term_end_finding(rows, latest, limits) if TERM_END in names else None
    if written is not None:  # the most telling of the checks on it: it says how the end date was written
        return [written, *(f for f in findings if f.feature != TERM_END), *near], None, False
    calendar = renewal_calendar(rows, latest, limits, y, horizon_days) if TERM_END in names else None
    kept = [f for f in findings if calendar is None or f.feature != TERM_END]
    return kept + near, calendar, len(kept) < len(findings)


def guard(rows: pd.DataFrame, y: np.ndarray, names: list[str], categorical: Iterable[str], model_roc_auc: float,
          importance: dict[str, float], allowed: Iterable[str] = (),
          limits: LeakageLimits = LeakageLimits(), latest: tuple[dt.date, int, int] | None = None,
          horizon_days: int | None = None, without_term_end: Callable[[], float] | None = None,
          own: Iterable[str] = (), end_rows: pd.DataFrame | None = None,
          exported: Iterable[str] | None = None, terms: Iterable[str] = (), dated: Iterable[str] = ()) -> dict:
    """All the checks, then ``enforce``: the one call training makes before registering.

    ``without_term_end``: the model's test ROC-AUC with the end date's contribution taken out of its
    log-odds, asked for only when the model check is waived for the renewal calendar: a leak in
    another feature must not hide behind the calendar (the model is then judged on the rest, naming
    the feature it relies on most after the end date)."""
    findings, calendar, dropped = _feature_checks(rows, y, names, categorical, limits, latest, horizon_days, own,
                                                  end_rows, exported, terms, dated)
    model = model_finding(model_roc_auc, importance, limits)
    if model is not None and calendar and model.feature == TERM_END:
        dropped = True  # the model's best feature is the renewal calendar
        rest = None if without_term_end is None else model_finding(
            without_term_end(), {k: v for k, v in importance.items() if k != TERM_END}, limits)
        if rest is not None:
            findings.append(LeakFinding(rest.feature, "model_auc", rest.value,
                                        f"without the renewal calendar ({TERM_END}) the model still reaches ROC-AUC "
                                        f"{rest.value:.3f} on the test rows (limit {limits.model_auc}) and relies "
                                        "on it most (its log-odds less the end date's contribution: a feature that "
                                        "stands in for the calendar, such as the tenure of annual contracts, may "
                                        "carry part of it)"))
    elif model is not None:
        findings.append(model)
    record = enforce(findings, allowed, names)
    if dropped:  # said only where it changed the outcome
        record["calendar"] = calendar
    return record


def leaky_features(meta: dict) -> list[str]:
    """The features a bundle was allowed to leak through (empty for a clean version)."""
    return list((meta.get("leakage") or {}).get("allowed") or [])


def leakage_tags(meta: dict) -> dict[str, str]:
    """MLflow tags of a training run / model version (empty for a clean version)."""
    leaky = leaky_features(meta)
    return {"churnwatch.leaky_features": ",".join(leaky), "churnwatch.auto_promotion": "refused"} if leaky else {}


def promotion_block(meta: dict, version: int) -> str | None:
    """Why ``promote`` refuses this version without ``--force`` (None: no objection)."""
    leaky = leaky_features(meta)
    if not leaky:
        return None
    return (f"version {version} was trained with --allow-leaky-feature {', '.join(leaky)}: it is never promoted "
            f"automatically; check the feature ({where_to_look(meta)}) and use --force --reason TEXT to promote it")


def where_to_look(meta: dict) -> str:
    """Where a user reads about the features a bundle (``meta``) was allowed to leak through, from the
    findings kept: the exports guide for the end date, how to leave a column out for a company's own
    columns, and for a catalogue feature what was measured (its mapping or the events it reads)."""
    record = meta.get("leakage") or {}
    allowed = set(record.get("allowed") or [])
    found = [f for f in record.get("findings") or [] if f.get("feature") in allowed]
    said = []
    if TERM_END in allowed:
        said.append(f"the end date: see {GUIDE}")
    copied = sorted({f["feature"] for f in found if f.get("check") == "copied_back"})
    if copied:
        said.append(f"{', '.join(copied)}: each period's amount, seats and plan as billed (invoice lines), see {GUIDE}")
    if any(f.get("own") or f.get("flat") for f in found) or (meta.get("kind") == "table" and allowed - {TERM_END}):
        said.append(f"a column written from the outcome: {EXCLUDE_HINT}")
    if not said:
        said.append("what the run's leakage findings measured, in bundle.json's leakage record")
    return "; ".join(said)
