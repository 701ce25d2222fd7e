"""The periodic cross-team churn review (ARTICLE §4, issue 15 item 7) and the before/after
measurement of each fix.

**The review** of a period (default: the 90 days ending ``grace_days`` before the data end,
the last day a churn is final) answers, with the diagnosis's own functions
(``insights.diagnosis``) and the closed loop (``insights.closed_loop``):

* *who was lost*: every relationship that ended in the period, with the MRR of its last term
  (subscriptions covering the day before the end) and plan;
* *what they share*: churn by segment over the accounts active at the period start
  (``churn_by_segment``, plus the plan of the term covering the start), and feature usage of the
  churned vs the retained ones in the store's snapshot on or before the start (means and the
  standardised difference: difference of means / pooled standard deviation);
* *why*: exit reasons and the avoidable share (``exit_reasons``: imported feedback and the
  interviews recorded in the operational store, ``merge_feedback``);
* *which playbooks were followed by better retention*: the closed loop on the score history;
* *the findings* (``workflow.review``) with, for a fix with a change date and a metric, the
  **before/after comparison**: the metric's per-account values in the ``days`` before the
  change date against the ``days`` from it, the difference of means (after - before) and its 95%
  percentile bootstrap interval (each group resampled on its own, ``training.bootstrap.resamples``).

Metric values, one per account (or relationship), ``c`` the change date:

* ``first_month_health``: relationships that began in the window; the mean health score of the
  score history in their first 30 days (those never scored then are left out);
* ``retention_90d_new``: relationships that began in the window and whose 90 days plus the
  grace period lie inside the data; 1 when the relationship did not end within 90 days;
* ``health_mean``: accounts scored in the window; their mean health score there;
* ``churn_rate``: the diagnosis's churn units of ``[c - days, c)`` and ``[c, c + days)``
  (active at the window start, churned when the relationship ends in it); the after window must
  end a grace period before the data end.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import ChurnwatchError
from core.files import atomic_write_text
from core.scores import history_rows
from core.settings import Settings
from core.store import HISTORY, SNAPSHOTS, connect, has_table, snapshot_columns, snapshot_range
from features.metrics import churn_metrics
from features.pipeline import open_connection, prepare
from insights.closed_loop import ClosedLoop, closed_loop_from_store
from insights.diagnosis import (
    Diagnosis,
    Window,
    check_window,
    churn_by_segment,
    churn_units,
    diagnose_frames,
    load_relationships,
    merge_feedback,
)
from training.bootstrap import resamples
from workflow.interviews import as_feedback, templates
from workflow.review import METRICS, list_findings

FIRST_MONTH_DAYS = 30
RETENTION_DAYS = 90
NOT_FEATURES = {"account_id", "as_of", "churn_label", "labelled"}
BEFORE_AFTER_CAVEAT = {
    "en": "A before/after comparison is not an experiment: anything else that changed around the date (season, "
          "pricing, the mix of new accounts, the model scoring health) moves the metric too. An interval that "
          "excludes 0 says the metric moved, not that the fix moved it.",
    "zh-CN": "前后对比不是对照实验：同一时期的其他变化（季节、定价、新客户结构、评分模型）同样会影响该指标。区间不含 0 "
             "只说明指标发生了变化，并不说明是这项改进造成的。",
}
VERDICTS = {"improved": "改善", "worsened": "变差", "no detectable change": "无可检测的变化",
            "not measurable yet": "尚无法衡量"}


@dataclass
class Measurement:
    """Before/after of one metric around a change date (see the module docstring)."""

    metric: str
    change_date: dt.date
    days: int
    before_n: int
    after_n: int
    before: float
    after: float
    difference: float
    ci_low: float
    ci_high: float
    verdict: str
    note: str = ""


def _ns(values) -> pd.Series:
    return pd.to_datetime(values).astype("datetime64[ns]")


def metric_values(metric: str, change: dt.date, days: int, relationships: pd.DataFrame, terms: pd.DataFrame,
                  history: pd.DataFrame, data_end: dt.date, grace_days: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(before values, after values, a note on what was left out) of ``metric`` around ``change``."""
    c, span = pd.Timestamp(change), pd.Timedelta(days=days)
    rel = relationships.assign(rel_start=_ns(relationships["rel_start"]), rel_end=_ns(relationships["rel_end"]))
    h = history.assign(as_of=_ns(history["as_of"])) if len(history) else \
        pd.DataFrame({"account_id": [], "as_of": pd.Series([], dtype="datetime64[ns]"), "health_score": []})
    note = ""
    if metric == "first_month_health":
        new = rel[(rel["rel_start"] >= c - span) & (rel["rel_start"] < c + span)]
        m = new.merge(h[["account_id", "as_of", "health_score"]], on="account_id")
        m = m[(m["as_of"] >= m["rel_start"]) & (m["as_of"] < m["rel_start"] + pd.Timedelta(days=FIRST_MONTH_DAYS))]
        per = m.groupby(["account_id", "rel_start"], as_index=False)["health_score"].mean()
        if len(new) > len(per):
            note = f"{len(new) - len(per)} new relationship(s) never scored in their first {FIRST_MONTH_DAYS} days"
        after = per["rel_start"] >= c
        return per.loc[~after, "health_score"].to_numpy(float), per.loc[after, "health_score"].to_numpy(float), note
    if metric == "retention_90d_new":
        new = rel[(rel["rel_start"] >= c - span) & (rel["rel_start"] < c + span)]
        seen = new["rel_start"] + pd.Timedelta(days=RETENTION_DAYS + grace_days) <= pd.Timestamp(data_end)
        if (~seen).any():
            note = f"{int((~seen).sum())} relationship(s) began too late for {RETENTION_DAYS} days + grace"
        new = new[seen]
        kept = ~(new["rel_end"].notna() & (new["rel_end"] <= new["rel_start"] + pd.Timedelta(days=RETENTION_DAYS)))
        after = new["rel_start"] >= c
        return kept[~after].to_numpy(float), kept[after].to_numpy(float), note
    if metric == "health_mean":
        inside = h[(h["as_of"] >= c - span) & (h["as_of"] < c + span)]
        per = inside.assign(after=inside["as_of"] >= c).groupby(["account_id", "after"], as_index=False)[
            "health_score"].mean()
        return (per.loc[~per["after"], "health_score"].to_numpy(float),
                per.loc[per["after"], "health_score"].to_numpy(float), note)
    if metric == "churn_rate":
        last = change + dt.timedelta(days=days)
        if last + dt.timedelta(days=grace_days) > data_end:
            return np.array([]), np.array([]), (f"the after window ends {last}; its churns are final only after "
                                                f"{last + dt.timedelta(days=grace_days)} (data end {data_end})")
        out = [churn_units(rel, terms, None, Window(a, b))["churned"].to_numpy(float)
               for a, b in ((change - dt.timedelta(days=days), change), (change, last))]
        return out[0], out[1], note
    raise ChurnwatchError(f"unknown metric {metric!r} (metrics: {', '.join(METRICS)})")


def compare(before: np.ndarray, after: np.ndarray, n_boot: int = 2000, seed: int = 0,
            confidence: float = 0.95) -> tuple[float, float, float]:
    """``mean(after) - mean(before)`` and its percentile bootstrap interval (each group resampled
    with replacement on its own)."""
    rng = np.random.default_rng(seed)
    diffs = np.array([after[ia].mean() - before[ib].mean() for ia, ib in
                      zip(resamples(len(after), None, n_boot, rng), resamples(len(before), None, n_boot, rng))])
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return float(after.mean() - before.mean()), float(lo), float(hi)


def measure(metric: str, change: dt.date, relationships: pd.DataFrame, terms: pd.DataFrame, history: pd.DataFrame,
            data_end: dt.date, grace_days: int, days: int = 90, n_boot: int = 2000, seed: int = 0) -> Measurement:
    """The before/after comparison of one fix (at least 2 values on each side, else not measurable)."""
    before, after, note = metric_values(metric, change, days, relationships, terms, history, data_end, grace_days)
    if len(before) < 2 or len(after) < 2:
        return Measurement(metric, change, days, len(before), len(after),
                           float(before.mean()) if len(before) else math.nan,
                           float(after.mean()) if len(after) else math.nan, math.nan, math.nan, math.nan,
                           "not measurable yet", note or "fewer than 2 values before or after the change")
    diff, lo, hi = compare(before, after, n_boot, seed)
    higher_better = METRICS[metric][2]
    if lo > 0 or hi < 0:
        verdict = "improved" if (diff > 0) == higher_better else "worsened"
    else:
        verdict = "no detectable change"
    return Measurement(metric, change, days, len(before), len(after), float(before.mean()), float(after.mean()),
                       diff, lo, hi, verdict, note)


# -- the review -----------------------------------------------------------------------------

@dataclass
class Review:
    window: Window
    data_end: dt.date
    diagnosis: Diagnosis
    lost: pd.DataFrame
    by_plan: pd.DataFrame
    features: pd.DataFrame
    features_note: str
    loop: ClosedLoop | None
    loop_note: str
    findings: list[dict] = field(default_factory=list)

    @property
    def lost_mrr(self) -> float:
        return float(self.lost["mrr"].sum()) if len(self.lost) else 0.0


def lost_accounts(relationships: pd.DataFrame, subscriptions: pd.DataFrame, accounts: pd.DataFrame,
                  window: Window) -> pd.DataFrame:
    """Relationships ending in ``(start, end]``, with the MRR and plan of the terms covering their
    last day, and the accounts' segment, industry and CSM; by MRR, largest first."""
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    rel = relationships[(relationships["rel_end"] > start) & (relationships["rel_end"] <= end)]
    subs = subscriptions.assign(start_date=_ns(subscriptions["start_date"]), end_date=_ns(subscriptions["end_date"]))
    m = rel[["account_id", "rel_start", "rel_end"]].merge(subs, on="account_id")
    m = m[(m["start_date"] < m["rel_end"]) & (m["end_date"].notna()) & (m["end_date"] >= m["rel_end"])]
    last = m.groupby(["account_id", "rel_end"], as_index=False).agg(
        mrr=("mrr", "sum"), plan=("plan", lambda p: ", ".join(sorted({str(x) for x in p.dropna()})) or None))
    out = rel[["account_id", "rel_start", "rel_end"]].merge(last, on=["account_id", "rel_end"], how="left")
    keep = [c for c in ("account_id", "segment", "industry", "csm") if c in accounts.columns]
    if len(keep) > 1:
        out = out.merge(accounts[keep].drop_duplicates("account_id"), on="account_id", how="left")
    out["tenure_days"] = (out["rel_end"] - out["rel_start"]).dt.days
    out["mrr"] = out["mrr"].fillna(0.0)
    return out.sort_values(["mrr", "account_id"], ascending=[False, True]).reset_index(drop=True)


def feature_usage(store: Path, units: pd.DataFrame, as_of: dt.date, top: int = 8) -> tuple[pd.DataFrame, str]:
    """Churned vs retained units' means of the numeric snapshot features on the latest snapshot date
    on or before ``as_of``, the ``top`` largest standardised differences first."""
    empty = pd.DataFrame(columns=["feature", "churned_mean", "retained_mean", "std_difference"])
    if not Path(store).exists():
        return empty, f"no store at {store}"
    with connect(store, read_only=True) as con:
        if not has_table(con, SNAPSHOTS):
            return empty, "the store has no snapshots"
        date = con.execute(f"SELECT max(as_of) FROM {SNAPSHOTS} WHERE as_of <= ?", [as_of]).fetchone()[0]
        if date is None:
            return empty, f"no snapshot on or before {as_of}"
        rows = snapshot_range(con, snapshot_columns(con), date, date)
    m = units[["account_id", "churned"]].merge(rows, on="account_id")
    numeric = [c for c in m.columns if c not in NOT_FEATURES | {"churned"} and pd.api.types.is_numeric_dtype(m[c])
               and not pd.api.types.is_bool_dtype(m[c])]
    out = []
    for c in numeric:
        a, b = m.loc[m["churned"], c].astype(float), m.loc[~m["churned"], c].astype(float)
        sd = math.sqrt((a.var() + b.var()) / 2) if len(a) > 1 and len(b) > 1 else math.nan
        out.append({"feature": c, "churned_mean": a.mean(), "retained_mean": b.mean(),
                    "std_difference": (a.mean() - b.mean()) / sd if sd and sd == sd else math.nan})
    table = pd.DataFrame(out, columns=empty.columns).dropna(subset=["std_difference"])
    table = table.reindex(table["std_difference"].abs().sort_values(ascending=False).index).head(top)
    return table.reset_index(drop=True), f"snapshot of {date:%Y-%m-%d}, {len(m)} of {len(units)} accounts"


def build_review(source: str | Path, settings: Settings, store: Path, engine, end: dt.date | None = None,
                 days: int = 90, n_boot: int = 2000, bundle=None) -> Review:
    """The review of ``(end - days, end]`` (``end`` default: data end - grace days). The closed
    loop uses the score history, or scores back-filled with ``bundle`` (the champion) while the
    history has no matured date (``insights.closed_loop.load_scores``, mode ``auto``)."""
    con = open_connection()
    try:
        report, _ = prepare(source, settings, con)
        monthly = churn_metrics(con, settings, report.data_start, report.data_end)
        relationships, terms = load_relationships(con, settings, build=False)
        accounts = con.execute("SELECT * FROM clean_accounts").df()
        feedback = merge_feedback(con.execute("SELECT * FROM clean_churn_feedback").df(), as_feedback(engine))
        interventions = con.execute("SELECT * FROM clean_interventions").df()
        subs = con.execute("SELECT * FROM clean_subscriptions").df()
    finally:
        con.close()
    if "plan" not in subs:
        subs["plan"] = None
    end = end or report.data_end - dt.timedelta(days=settings.grace_days)
    window = Window(max(end - dt.timedelta(days=days), report.data_start), end)
    check_window(window, report.data_start, report.data_end, settings.grace_days)
    diag = diagnose_frames(relationships, terms, accounts, feedback, monthly, window, report.data_start,
                           report.data_end, settings.grace_days)
    diag.interventions = interventions
    start = pd.Timestamp(window.start)
    s = subs.assign(start_date=_ns(subs["start_date"]), end_date=_ns(subs["end_date"]))
    covering = s[(s["start_date"] <= start) & (s["end_date"].isna() | (s["end_date"] > start))]
    plans = covering.groupby("account_id")["plan"].first()
    by_plan = churn_by_segment(diag.units.assign(plan=diag.units["account_id"].map(plans).fillna("unknown")),
                               ["plan"], diag.confidence, diag.alpha)
    features, features_note = feature_usage(store, diag.units, window.start)
    loop, loop_note = None, ""
    if interventions.empty:
        loop_note = "no interventions in the data"
    elif not Path(store).exists():
        loop_note = f"no store at {store}"
    else:
        try:
            loop = closed_loop_from_store(store, interventions, relationships, report.data_end, bundle,
                                          "auto" if bundle is not None else "history")
        except ChurnwatchError as exc:
            loop_note = str(exc)
    history = pd.DataFrame()
    if Path(store).exists():
        with connect(store, read_only=True) as c:
            if has_table(c, HISTORY):
                history = history_rows(c, columns=("account_id", "as_of", "health_score"))
    findings = list_findings(engine)
    for f in findings:
        if f["change_date"] and f["metric"]:
            f["measurement"] = measure(f["metric"], dt.date.fromisoformat(f["change_date"]), relationships, terms,
                                       history, report.data_end, settings.grace_days, days, n_boot)
    return Review(window=window, data_end=report.data_end, diagnosis=diag,
                  lost=lost_accounts(relationships, subs, accounts, window), by_plan=by_plan, features=features,
                  features_note=features_note, loop=loop, loop_note=loop_note, findings=findings)


def write_review(review: Review, folder: Path) -> tuple[Path, Path]:
    """``review-<period end>.html`` and ``.md`` in ``folder`` (both languages, user data escaped)."""
    seg = review.diagnosis.by_segment
    context = {
        "r": review, "d": review.diagnosis.definitions(), "metrics": METRICS, "verdicts": VERDICTS,
        "caveat": BEFORE_AFTER_CAVEAT,
        "segments": seg[seg["differs"]].sort_values("q_value").head(10) if seg["differs"].any()
        else seg.dropna(subset=["q_value"]).nsmallest(5, "q_value"),
        "any_differs": bool(seg["differs"].any()),
        "avoidable": review.diagnosis.avoidable.set_index("flag"),
        "loop_rows": [] if review.loop is None else
        list(review.loop.table.dropna(subset=["difference"]).sort_values("difference", ascending=False).itertuples()),
    }
    env = templates()
    folder.mkdir(parents=True, exist_ok=True)
    html = folder / f"review-{review.window.end:%Y-%m-%d}.html"
    md = folder / f"review-{review.window.end:%Y-%m-%d}.md"
    atomic_write_text(html, env.get_template("review.html.j2").render(**context))
    atomic_write_text(md, env.get_template("review.md.j2").render(**context))
    return html, md
