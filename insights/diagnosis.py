"""Churn diagnosis (ARTICLE §2): who churns, why, and how long customers stay.

The **churn unit** is an account relationship (``features/timeline.py``: consecutive
terms with gaps of at most ``grace_days``) observed over one **window** ``[start, end)``:

* denominator: accounts **active at** ``start`` (a term covers ``start``);
* numerator: those whose relationship **ends in** ``(start, end]`` (the first uncovered
  day falls in the window), the same churn definition and grace as the labels and as
  ``features/metrics.py``. The window must end at least ``grace_days`` before the data
  end, so that every churn counted is final (no renewal can still come).

Accounts that sign up during the window are not in its denominator; they appear in the
survival curves. The default window is the 12 whole months ending on the first day of
the month on or before ``data_end - grace_days``.

Bands (stated, not configurable): **size band** from ``employees`` (1-49, 50-249,
250-999, 1000+); **tenure band** (lifecycle stage) from the relationship's tenure at
``start``: 0-3 months = days 0-89 (onboarding), 3-12 months = 90-364 (adoption), 1-2 years
= 365-729 (established), 2+ years = 730 and more (mature). A missing attribute is the
segment ``unknown``.

Statistics: Wilson score intervals for every rate; each segment is tested against the
rest of the window's accounts (two-sided): Fisher's exact test when an expected cell of
the 2x2 table is below 5, else the pooled two-proportion z-test (column ``test``). The
p-values form one family corrected with Benjamini-Hochberg (``q_value``); a dimension with
two tested values is one test (each value vs the other), so it counts once. Survival:
Kaplan-Meier (lifelines) over relationship lifetimes in days, all observation stopping at
``data_end - grace_days`` (the last day a churn is final): a relationship that ends by
then churned, every other one is censored there; delayed entry for relationships that
began before the observation start (left truncation: churns before the data begins are
not in it).

Pure functions over frames, plus ``build_diagnosis`` (reads a source) and
``write_diagnosis`` (CSV/JSON/PNG) at the edge.

Over 400 lines: one analysis whose parts (window, segments, reasons, survival) share the
window, the bands and the churn definition stated above; split, each part would need this
docstring again. A next split would put the statistics (Wilson, tests, BH) in their own module.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.errors import ChurnwatchError
from core.files import atomic_path, atomic_write_text
from core.plotfonts import with_plot_fonts
from core.settings import Settings
from features.metrics import churn_metrics
from features.pipeline import open_connection, prepare
from features.timeline import build_terms

#: (lower bound inclusive, upper bound exclusive or None, label) of employees.
SIZE_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 50, "1-49"), (50, 250, "50-249"), (250, 1000, "250-999"), (1000, None, "1000+"))
#: (lower, upper, label) of tenure in days at the window start.
TENURE_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 90, "0-3 months"), (90, 365, "3-12 months"), (365, 730, "1-2 years"), (730, None, "2+ years"))
#: Dimensions of ``churn_by_segment`` (columns of ``churn_units``).
DIMENSIONS = ("industry", "size_band", "region", "tenure_band", "plan", "channel", "csm", "segment")
UNKNOWN = "unknown"
DPI = 120


class DiagnosisError(ChurnwatchError):
    """The data cannot answer the diagnosis question as asked (e.g. a window too late)."""


@dataclass(frozen=True)
class Window:
    """Accounts active at ``start``; churn counted when the relationship ends in ``(start, end]``."""

    start: dt.date
    end: dt.date

    def describe(self) -> str:
        return (f"accounts active on {self.start}; churned = relationship ended (first uncovered day) in "
                f"({self.start}, {self.end}]")


def default_window(data_start: dt.date, data_end: dt.date, grace_days: int, months: int = 12) -> Window:
    """The ``months`` whole months ending on the first of the month on or before ``data_end - grace``.

    Starts no earlier than ``data_start``. Raises ``DiagnosisError`` when the data is too short.
    """
    last = data_end - dt.timedelta(days=grace_days)
    end = dt.date(last.year, last.month, 1)
    y, m = divmod(end.year * 12 + end.month - 1 - months, 12)
    start = max(dt.date(y, m + 1, 1), data_start)
    if start >= end:
        raise DiagnosisError(f"the data ({data_start} .. {data_end}) is too short for a churn window ending "
                             f"{grace_days} grace days before its end")
    return Window(start, end)


def check_window(window: Window, data_start: dt.date, data_end: dt.date, grace_days: int) -> None:
    """Raise ``DiagnosisError`` unless every churn in the window is observable and final."""
    if window.start >= window.end:
        raise DiagnosisError(f"window start {window.start} is not before its end {window.end}")
    if window.start < data_start:
        raise DiagnosisError(f"window start {window.start} is before the data start {data_start}")
    if window.end + dt.timedelta(days=grace_days) > data_end:
        raise DiagnosisError(f"window end {window.end} + {grace_days} grace days is after the data end {data_end}: "
                             "a relationship ending then could still renew")


def load_relationships(con: duckdb.DuckDBPyConnection, settings: Settings,
                       build: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Relationships and terms from ``clean_subscriptions`` in ``con`` (``features/timeline.py``).

    ``build=False`` reuses the ``terms`` / ``relationships`` tables already in ``con`` (e.g.
    built by ``features.metrics.churn_metrics``). Returns ``(relationships, terms)``:
    account_id, rel_no, rel_start, rel_end (NaT = open-ended) and account_id, rel_no,
    start, end (NaT = open-ended), as datetime64[ns].
    """
    if build:
        build_terms(con, settings)
    rel = con.execute("SELECT account_id, rel_no, DATE '1970-01-01' + rel_start AS rel_start, "
                      "DATE '1970-01-01' + rel_end AS rel_end FROM relationships "
                      "ORDER BY account_id, rel_no").df()
    terms = con.execute("SELECT account_id, rel_no, DATE '1970-01-01' + sn AS start, "
                        "DATE '1970-01-01' + en AS \"end\", plan FROM terms ORDER BY account_id, sn").df()
    for frame, cols in ((rel, ("rel_start", "rel_end")), (terms, ("start", "end"))):
        for c in cols:
            frame[c] = pd.to_datetime(frame[c]).astype("datetime64[ns]")
    return rel, terms


def band(values: pd.Series, bands: tuple[tuple[int, int | None, str], ...]) -> pd.Series:
    """Label each number with its band; missing values are ``unknown``."""
    out = pd.Series(UNKNOWN, index=values.index, dtype=object)
    v = pd.to_numeric(values, errors="coerce")
    for lo, hi, label in bands:
        inside = (v >= lo) & ((v < hi) if hi is not None else True)
        out[inside.fillna(False).astype(bool)] = label
    return out


def churn_units(relationships: pd.DataFrame, terms: pd.DataFrame, accounts: pd.DataFrame | None,
                window: Window, own: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per account active at ``window.start``, with its profile and whether it churned.

    Active = a term covers ``start`` (``start_date <= start < end_date`` or open-ended), the
    definition of ``features/timeline.py`` and ``features.metrics.churn_metrics``: an account
    inside a renewal gap on ``start`` is not in the denominator. Churned = its relationship
    (the one of the covering term) ends in ``(start, end]``.

    Columns: account_id, rel_start, rel_end, tenure_days (at ``start``), churned (bool),
    the accounts' attributes (``unknown`` when missing), size_band, tenure_band, plan (of the term in force
    at ``start``; a probe's export churned 27.5% on its starter plan against 12.6% on business, and no
    dimension said so), and the company's own category columns of ``own`` (``own_categories``: account_id and
    one column each).
    """
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    covering = terms[(terms["start"] <= start) & (terms["end"].isna() | (terms["end"] > start))]
    active = relationships.merge(covering[["account_id", "rel_no"]].drop_duplicates(), on=["account_id", "rel_no"])
    active["tenure_days"] = (start - active["rel_start"]).dt.days
    # the plan of the term in force at the window start (the latest one to start, as the plan feature reads it)
    plan = (covering.sort_values("start").groupby("account_id").tail(1).set_index("account_id")["plan"]
            if "plan" in covering.columns else pd.Series(dtype=object))
    active["plan"] = active["account_id"].map(plan)
    active["churned"] = (active["rel_end"].notna() & (active["rel_end"] <= end)).astype(bool)
    cols = ["industry", "employees", "region", "channel", "csm", "segment"]
    if accounts is not None and len(accounts):
        keep = ["account_id", *[c for c in cols if c in accounts.columns]]
        active = active.merge(accounts[keep].drop_duplicates("account_id"), on="account_id", how="left")
    for c in cols:
        if c not in active:
            active[c] = np.nan
    for c in ("industry", "region", "channel", "csm", "segment", "plan"):
        active[c] = active[c].astype(object).where(active[c].notna(), UNKNOWN).astype(str)
    active["size_band"] = band(active["employees"], SIZE_BANDS)
    active["tenure_band"] = band(active["tenure_days"], TENURE_BANDS)
    if own is not None:
        names = [c for c in own.columns if c != "account_id" and c not in active.columns]
        active = active.merge(own[["account_id", *names]], on="account_id", how="left")
        for c in names:
            active[c] = active[c].astype(object).where(active[c].notna(), UNKNOWN).astype(str)
    return active.drop(columns=["rel_no"], errors="ignore").reset_index(drop=True)


def own_categories(con: duckdb.DuckDBPyConnection, loaded: list[str], settings: Settings) -> pd.DataFrame | None:
    """The company's own category columns of ``accounts`` (``features.profile``: as the features read them, with
    their feature names), one row per account, or None without any: segments of the diagnosis too (a probe's
    acquisition channel churned 37.5% on paid social against 11.7% on referrals, and the diagnosis, testing
    only the contract's columns, said no segment differs)."""
    from features.profile import ProfilePlan, discover_profile, profile_stages
    from features.spec import build_catalogue

    plan = discover_profile(con, loaded, settings, set(build_catalogue([]).names) | set(DIMENSIONS))
    used = [c for c in plan.of("accounts") if c.kind == "category"]
    if not used:
        return None
    stage = dict(profile_stages(ProfilePlan(used=used), settings))["xa"]
    return con.execute(stage).df().rename(columns={c.alias: c.feature for c in used})


def wilson_interval(count: np.ndarray | pd.Series | int, nobs: np.ndarray | pd.Series | int,
                    confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``count / nobs`` (NaN where ``nobs`` is 0)."""
    from statsmodels.stats.proportion import proportion_confint

    k = np.asarray(count, dtype=float)
    n = np.asarray(nobs, dtype=float)
    safe = np.where(n > 0, n, 1.0)
    lo, hi = proportion_confint(k, safe, alpha=1 - confidence, method="wilson")
    lo, hi = np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)
    return np.atleast_1d(lo), np.atleast_1d(hi)


def bh_qvalues(p_values: np.ndarray | pd.Series | list[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN p-values stay NaN and are not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test, two-sided: (z, p). NaN when a group is empty;
    (0, 1) when the pooled rate is 0 or 1 (both groups identical, no variance)."""
    from statsmodels.stats.proportion import proportions_ztest

    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    if k1 + k2 in (0, n1 + n2):
        return 0.0, 1.0
    z, p = proportions_ztest(np.array([k1, k2]), np.array([n1, n2]))
    return float(z), float(p)


def segment_test(k1: int, n1: int, k2: int, n2: int) -> tuple[str, float, float]:
    """``(test, z, p)`` for ``k1/n1`` vs ``k2/n2``, two-sided.

    ``fisher`` (Fisher's exact test, scipy; z NaN) when an expected cell of the 2x2 table
    churned / stayed x group is below 5, else ``z`` (``two_proportion_test``). ``""`` and NaN
    when a group is empty; a pooled rate of 0 or 1 gives p = 1 under either test.
    """
    from scipy.stats import fisher_exact

    if n1 == 0 or n2 == 0:
        return "", math.nan, math.nan
    n, k = n1 + n2, k1 + k2
    expected = [r * c / n for r in (n1, n2) for c in (k, n - k)]
    if min(expected) < 5:
        return "fisher", math.nan, float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])
    z, p = two_proportion_test(k1, n1, k2, n2)
    return "z", z, p


def churn_by_segment(units: pd.DataFrame, dimensions: tuple[str, ...] | list[str] = DIMENSIONS,
                     confidence: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """Churn rate per segment with Wilson intervals, each segment tested against the rest.

    Columns: dimension, value, accounts, churned, churn_rate, ci_low, ci_high,
    rest_accounts, rest_churned, rest_rate, difference (rate - rest rate), test (``fisher``
    or ``z``, see ``segment_test``; empty when untested), z (z-test only), p_value, q_value
    (Benjamini-Hochberg over the table's tests; the two values of a two-valued dimension are
    one test, counted once, and share its q), differs (q < ``alpha``). Rows ordered by
    dimension (as given), then churn rate descending (size and tenure bands in band order).
    """
    total_n, total_k = len(units), int(units["churned"].sum())
    parts = []
    for dim in dimensions:
        if dim not in units:
            continue
        g = units.groupby(units[dim].astype(str), sort=False)["churned"].agg(["size", "sum"]).reset_index()
        g.columns = ["value", "accounts", "churned"]
        g.insert(0, "dimension", dim)
        parts.append(g)
    if not parts:
        raise DiagnosisError(f"none of the dimensions {', '.join(dimensions)} is in the churn units")
    out = pd.concat(parts, ignore_index=True)
    out["accounts"] = out["accounts"].astype(int)
    out["churned"] = out["churned"].astype(int)
    out["churn_rate"] = out["churned"] / out["accounts"]
    out["ci_low"], out["ci_high"] = wilson_interval(out["churned"], out["accounts"], confidence)
    out["rest_accounts"] = total_n - out["accounts"]
    out["rest_churned"] = total_k - out["churned"]
    out["rest_rate"] = out["rest_churned"] / out["rest_accounts"].where(out["rest_accounts"] > 0)
    out["difference"] = out["churn_rate"] - out["rest_rate"]
    tests = [segment_test(r.churned, r.accounts, r.rest_churned, r.rest_accounts) for r in out.itertuples()]
    out["test"] = [t[0] for t in tests]
    out["z"] = [t[1] for t in tests]
    out["p_value"] = [t[2] for t in tests]
    # family: one test per row, except a dimension with exactly two tested values (one test)
    tested = out["p_value"].notna()
    per_dim = out[tested].groupby("dimension")["value"].transform("size")
    repeat = pd.Series(False, index=out.index)
    repeat[per_dim.index] = (per_dim == 2) & out[tested].duplicated("dimension")
    q = bh_qvalues(out["p_value"].where(~repeat))
    first_q = pd.Series(q, index=out.index)[tested & ~repeat].groupby(out["dimension"]).first()
    out["q_value"] = np.where(repeat, out["dimension"].map(first_q), q)
    out["differs"] = out["q_value"] < alpha
    # nominal dimensions by churn rate (highest first); the ordinal bands in their own order
    ordinal = {label: i for bands in (SIZE_BANDS, TENURE_BANDS) for i, (_, _, label) in enumerate(bands)}
    is_ordinal = out["dimension"].isin(["size_band", "tenure_band"])
    out["order"] = out["dimension"].map({d: i for i, d in enumerate(dimensions)})
    out["key"] = np.where(is_ordinal, out["value"].map(ordinal).fillna(len(ordinal)), -out["churn_rate"])
    out = out.sort_values(["order", "key", "value"], kind="stable")
    return out.drop(columns=["order", "key"]).reset_index(drop=True)


def exit_reasons(feedback: pd.DataFrame, window: Window, churned_accounts: int | None = None,
                 confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exit-interview reasons and the avoidable share for churns dated in ``(start, end]``.

    Returns ``(reasons, avoidable)``:

    * reasons: reason_category, interviews, share (of interviews in the window),
      ci_low, ci_high (Wilson), avoidable, unavoidable, avoidable_unknown (counts);
    * avoidable: one row per flag (avoidable / unavoidable / unknown): interviews,
      share of interviews with a known flag (NaN for unknown), ci_low, ci_high;
      plus ``coverage``: interviews / ``churned_accounts`` when given (in ``attrs``; pass
      every relationship ending in the window, signups during it included).
    """
    f = feedback.copy() if feedback is not None else pd.DataFrame(columns=["churned_at"])
    if len(f):
        at = pd.to_datetime(f["churned_at"])
        f = f[(at > pd.Timestamp(window.start)) & (at <= pd.Timestamp(window.end))].copy()
    n = len(f)
    reason = (f["reason_category"] if "reason_category" in f else pd.Series(dtype=object, index=f.index))
    f["reason_category"] = reason.astype(object).where(reason.notna(), UNKNOWN).astype(str)
    flag = f["avoidable"] if "avoidable" in f else pd.Series(pd.NA, index=f.index, dtype="boolean")
    flag = flag.astype("boolean")
    f["flag"] = np.where(flag.isna(), UNKNOWN, np.where(flag.fillna(False), "avoidable", "unavoidable"))
    reasons = (f.groupby("reason_category")["flag"].value_counts().unstack(fill_value=0)
               .reindex(columns=["avoidable", "unavoidable", UNKNOWN], fill_value=0)
               if n else pd.DataFrame(columns=["avoidable", "unavoidable", UNKNOWN]))
    reasons.columns = ["avoidable", "unavoidable", "avoidable_unknown"]
    reasons.insert(0, "interviews", reasons.sum(axis=1).astype(int))
    reasons = reasons.reset_index().rename(columns={"index": "reason_category"})
    reasons["share"] = reasons["interviews"] / n if n else np.nan
    reasons["ci_low"], reasons["ci_high"] = wilson_interval(reasons["interviews"], np.full(len(reasons), n),
                                                            confidence)
    reasons = reasons.sort_values(["interviews", "reason_category"], ascending=[False, True]).reset_index(drop=True)
    reasons = reasons[["reason_category", "interviews", "share", "ci_low", "ci_high", "avoidable", "unavoidable",
                       "avoidable_unknown"]]
    counts = f["flag"].value_counts()
    known = int(counts.get("avoidable", 0) + counts.get("unavoidable", 0))
    flags = pd.DataFrame({"flag": ["avoidable", "unavoidable", UNKNOWN]})
    flags["interviews"] = [int(counts.get(x, 0)) for x in flags["flag"]]
    flags["share"] = [c / known if known and x != UNKNOWN else np.nan
                      for x, c in zip(flags["flag"], flags["interviews"])]
    lo, hi = wilson_interval(flags["interviews"], np.array([known, known, 0]), confidence)
    flags["ci_low"], flags["ci_high"] = lo, hi
    flags.attrs["coverage"] = (n / churned_accounts) if churned_accounts else None
    return reasons, flags


def merge_feedback(feedback: pd.DataFrame | None, interviews: pd.DataFrame | None) -> pd.DataFrame | None:
    """The imported ``churn_feedback`` rows plus the exit interviews recorded in the operational
    store (``workflow.interviews.as_feedback``); a recorded interview replaces an imported row of
    the same account and churn date. Column ``source``: ``imported`` or the interview's."""
    if interviews is None or interviews.empty:
        return feedback
    own = interviews.assign(churned_at=pd.to_datetime(interviews["churned_at"]))
    if feedback is None or feedback.empty:
        return own.reset_index(drop=True)
    imported = feedback.assign(churned_at=pd.to_datetime(feedback["churned_at"]), source="imported")
    key = ["account_id", "churned_at"]
    replaced = imported.set_index(key).index.isin(own.set_index(key).index)
    merged = pd.concat([imported[~replaced], own], ignore_index=True)
    merged["avoidable"] = merged["avoidable"].astype("boolean")
    return merged


def signup_cohort(starts: pd.Series, freq: str = "Q") -> pd.Series:
    """Signup cohort label of relationship starts: ``2024-Q1`` (freq ``Q``), ``2024-H1`` (``H``) or ``2024`` (``Y``)."""
    s = pd.to_datetime(starts)
    if freq == "Q":
        return s.dt.year.astype(str) + "-Q" + s.dt.quarter.astype(str)
    if freq == "H":
        return s.dt.year.astype(str) + "-H" + np.where(s.dt.month <= 6, "1", "2")
    if freq == "Y":
        return s.dt.year.astype(str)
    raise DiagnosisError(f"cohort frequency {freq!r}: expected Q, H or Y")


def lifetimes(relationships: pd.DataFrame, observation_start: dt.date, data_end: dt.date,
              grace_days: int) -> pd.DataFrame:
    """Relationship lifetimes for survival analysis, in days.

    Observation stops for everyone at ``cut = data_end - grace_days``, the last day on which
    an end is final (a later end could still be followed by a renewal). ``duration`` = days
    from rel_start to ``min(rel_end, cut)``; ``churned`` = ``rel_end <= cut``; every other
    relationship (open, or ending after ``cut``) is censored at ``cut``, so open and ending
    relationships are followed for the same time. ``entry`` = days already survived at
    ``observation_start`` (delayed entry). Relationships over before ``observation_start``,
    or begun on or after ``cut``, are left out.
    """
    cut, obs = pd.Timestamp(data_end) - pd.Timedelta(days=grace_days), pd.Timestamp(observation_start)
    r = relationships.copy()
    ended = r["rel_end"].notna() & (r["rel_end"] <= cut)
    stop = r["rel_end"].where(ended, cut)
    r["duration"] = (stop - r["rel_start"]).dt.days.astype(float)
    r["churned"] = ended.astype(bool)
    r["entry"] = (obs - r["rel_start"]).dt.days.clip(lower=0).astype(float)
    return r[(r["duration"] > r["entry"]) & (r["duration"] > 0)].reset_index(drop=True)


def kaplan_meier(lives: pd.DataFrame, by: str, confidence: float = 0.95,
                 at_days: tuple[int, ...] = (90, 180, 365, 730),
                 order: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier survival per group of ``lives[by]`` (lifelines, delayed entry).

    Returns ``(curves, summary)``: curves has group, days, survival, ci_low, ci_high,
    at_risk (at each event time, plus day 0); groups sorted, or in ``order`` (others
    last); summary has group, relationships, churned,
    median_lifetime_days (NaN while survival stays above 0.5), observed_from_days
    (smallest entry: earlier days are not observed for this group), and survival_<d>d
    for each ``at_days`` (NaN beyond the group's longest follow-up), and a note (a group
    whose at-risk set empties early under delayed entry gets no estimate, and says so).
    """
    from lifelines import KaplanMeierFitter
    from lifelines.exceptions import StatError

    curves, summary = [], []
    rank = {g: i for i, g in enumerate(order or [])}
    groups = sorted(lives.groupby(by, sort=True), key=lambda kv: (rank.get(str(kv[0]), len(rank)), str(kv[0])))
    for group, g in groups:
        kmf = KaplanMeierFitter(alpha=1 - confidence)
        try:
            kmf.fit(g["duration"], g["churned"], entry=g["entry"], label="s")
        except StatError:  # the at-risk set empties early (few relationships, delayed entry): no estimate
            summary.append({"group": str(group), "relationships": len(g), "churned": int(g["churned"].sum()),
                            "median_lifetime_days": np.nan, "observed_from_days": float(g["entry"].min()),
                            **{f"survival_{d}d": np.nan for d in at_days},
                            "note": "too few relationships at risk early on: no estimate"})
            continue
        ci = kmf.confidence_interval_survival_function_
        c = pd.DataFrame({"group": str(group), "days": kmf.survival_function_.index.to_numpy(dtype=float),
                          "survival": kmf.survival_function_["s"].to_numpy(),
                          "ci_low": ci.iloc[:, 0].to_numpy(), "ci_high": ci.iloc[:, 1].to_numpy(),
                          "at_risk": kmf.event_table["at_risk"].reindex(kmf.survival_function_.index)
                          .to_numpy()})
        curves.append(c)
        median = kmf.median_survival_time_
        row = {"group": str(group), "relationships": len(g), "churned": int(g["churned"].sum()),
               "median_lifetime_days": float(median) if np.isfinite(median) else np.nan,
               "observed_from_days": float(g["entry"].min()), "note": ""}
        for d in at_days:
            row[f"survival_{d}d"] = float(kmf.predict(d)) if d <= g["duration"].max() else np.nan
        summary.append(row)
    columns = ["group", "days", "survival", "ci_low", "ci_high", "at_risk"]
    summary_frame = pd.DataFrame(summary)
    if len(summary_frame):  # keep the note last
        summary_frame = summary_frame[[c for c in summary_frame.columns if c != "note"] + ["note"]]
    return (pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=columns)), summary_frame


# -- charts -----------------------------------------------------------------------------

def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return out


@with_plot_fonts
def plot_churn_over_time(monthly: pd.DataFrame, path: str | Path) -> Path:
    """Monthly customer churn rate and gross / net MRR churn rate (``features.metrics.churn_metrics``)."""
    fig = Figure(figsize=(9.0, 4.2))
    ax = fig.add_subplot()
    x = pd.to_datetime(monthly["month"])
    for col, label in (("customer_churn_rate", "customer churn"), ("gross_mrr_churn_rate", "gross MRR churn"),
                       ("net_mrr_churn_rate", "net MRR churn")):
        ax.plot(x, monthly[col] * 100, marker="o", markersize=3, label=label)
    prov = monthly["provisional"].astype(bool).to_numpy()
    if prov.any():
        ax.axvspan(x[prov].min() - pd.Timedelta(days=15), x.max() + pd.Timedelta(days=15), color="grey", alpha=0.15,
                   label="provisional (could still renew)")
    ax.set_ylabel("% per month")
    ax.set_title("Churn per month: customers active at the month start, churned in the month")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _columns_of_panels(sizes: list[int], columns: int = 2) -> list[list[int]]:
    """Split panels (in order) into ``columns`` runs with about equal row counts."""
    total, out, current, acc = sum(sizes), [], [], 0
    for i, s in enumerate(sizes):
        if current and acc + s / 2 > total * (len(out) + 1) / columns and len(out) < columns - 1:
            out.append(current)
            current = []
        current.append(i)
        acc += s
    out.append(current)
    return out


@with_plot_fonts
def plot_churn_by_segment(table: pd.DataFrame, overall_rate: float, window: Window, path: str | Path,
                          confidence: float = 0.95, alpha: float = 0.05) -> Path:
    """Churn rate per segment with Wilson intervals, one panel per dimension.

    Red: significantly higher than the rest (BH q < ``alpha``); green: lower; grey: no
    detectable difference. The dashed line is the overall rate.
    """
    dims = list(dict.fromkeys(table["dimension"]))
    sizes = [int((table["dimension"] == d).sum()) for d in dims]
    cols = _columns_of_panels(sizes, 2 if len(dims) > 2 else 1)
    height = max(sum(sizes[i] for i in c) + 1.2 * len(c) for c in cols)
    fig = Figure(figsize=(12.0 if len(cols) > 1 else 6.5, 0.32 * height + 1.4))
    grid = fig.add_gridspec(1, len(cols), wspace=0.45)
    # the axis fits the intervals of segments with at least 30 accounts; a rate beyond it is an arrow at the edge
    big = table[table["accounts"] >= 30]
    xmax = float(np.nanmax((big if len(big) else table)["ci_high"])) * 100 * 1.1
    for ci, col in enumerate(cols):
        sub = grid[0, ci].subgridspec(len(col), 1, height_ratios=[sizes[i] + 1.2 for i in col], hspace=0.55)
        for j, i in enumerate(col):
            ax = fig.add_subplot(sub[j, 0])
            t = table[table["dimension"] == dims[i]].iloc[::-1]
            y = np.arange(len(t))
            colour = np.where(~t["differs"], "grey", np.where(t["difference"] > 0, "tab:red", "tab:green"))
            rate = t["churn_rate"].to_numpy() * 100
            # clipped: at a rate of 0 or 1 the Wilson bound equals the rate up to rounding
            err = np.clip(np.vstack([rate - t["ci_low"].to_numpy() * 100, t["ci_high"].to_numpy() * 100 - rate]), 0,
                          None)
            for k in range(len(t)):
                if rate[k] > xmax:
                    ax.plot(xmax * 0.98, y[k], marker=">", color=colour[k])
                    ax.annotate(f"{rate[k]:.0f}%", (xmax * 0.95, y[k]), ha="right", va="center", fontsize=7)
                    continue
                ax.errorbar(rate[k], y[k], xerr=err[:, k:k + 1], fmt="o", color=colour[k], capsize=2, markersize=4)
            ax.axvline(overall_rate * 100, linestyle="--", color="black", linewidth=0.8)
            ax.set_yticks(y, [f"{v} (n={n:,})" for v, n in zip(t["value"], t["accounts"])], fontsize=8)
            ax.set_ylim(-0.7, len(t) - 0.3)
            ax.set_xlim(0, xmax)
            ax.set_title(dims[i].replace("_", " "), fontsize=10, loc="left")
            ax.grid(alpha=0.3, axis="x")
            ax.tick_params(axis="x", labelsize=8)
            if j == len(col) - 1:
                ax.set_xlabel(f"churned by {window.end} (% of accounts active on {window.start})")
    fig.suptitle(f"Churn by segment, {confidence:.0%} Wilson intervals; dashed: overall {overall_rate:.1%}; "
                 f"red / green: higher / lower than the rest (BH q < {alpha:g})", fontsize=10)
    return _save(fig, path)


@with_plot_fonts
def plot_exit_reasons(reasons: pd.DataFrame, flags: pd.DataFrame, path: str | Path) -> Path:
    """Exit-interview reasons (avoidable / unavoidable stacked), with the avoidable share."""
    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.add_subplot()
    t = reasons.iloc[::-1]
    y = np.arange(len(t))
    left = np.zeros(len(t))
    for col, colour in (("avoidable", "tab:orange"), ("unavoidable", "tab:blue"), ("avoidable_unknown", "lightgrey")):
        ax.barh(y, t[col], left=left, color=colour, label=col.replace("_", " "))
        left += t[col].to_numpy()
    ax.set_yticks(y, t["reason_category"])
    ax.set_xlabel("exit interviews")
    a = flags.set_index("flag")
    share = a.loc["avoidable", "share"]
    title = "Why customers left"
    if np.isfinite(share):
        title += (f": {share:.0%} avoidable (95% CI {a.loc['avoidable', 'ci_low']:.0%}-"
                  f"{a.loc['avoidable', 'ci_high']:.0%})")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


@with_plot_fonts
def plot_survival(curves: pd.DataFrame, summary: pd.DataFrame, title: str, path: str | Path,
                  bands: bool = False, min_relationships: int = 20) -> Path:
    """Kaplan-Meier curves, one per group with at least ``min_relationships``; each curve
    starts where its group is observed. ``bands`` shades the confidence intervals."""
    fig = Figure(figsize=(8.5, 4.8))
    ax = fig.add_subplot()
    shown = summary[(summary["relationships"] >= min_relationships) & summary["group"].isin(curves["group"])]
    curves = curves[curves["group"].isin(shown["group"])]
    if len(shown) < len(summary):
        title += f"\n(left out, under {min_relationships} relationships or no estimate: " + \
            ", ".join(summary.loc[~summary["group"].isin(shown["group"]), "group"]) + ")"
    for _, s in shown.iterrows():
        c = curves[(curves["group"] == s["group"]) & (curves["days"] >= s["observed_from_days"])]
        med = s["median_lifetime_days"]
        label = f"{s['group']} (n={s['relationships']:,}, median " + \
            ("not reached" if not np.isfinite(med) else f"{med:,.0f} d") + ")"
        line = ax.step(c["days"], c["survival"], where="post", label=label)[0]
        if bands:
            ax.fill_between(c["days"], c["ci_low"], c["ci_high"], step="post", alpha=0.15, color=line.get_color())
    ax.set_xlabel("days since the relationship began")
    ax.set_ylabel("share still a customer (Kaplan-Meier)")
    ax.set_ylim(max(0.0, float(curves["ci_low"].min()) - 0.05) if bands else
                max(0.0, float(curves["survival"].min()) - 0.05), 1.01)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(shown):
        ax.legend(fontsize="small")
    return _save(fig, path)


# -- the whole diagnosis ---------------------------------------------------------------

@dataclass
class Diagnosis:
    """Every table of a diagnosis run (see the module docstring for the definitions)."""

    window: Window
    data_start: dt.date
    data_end: dt.date
    grace_days: int
    units: pd.DataFrame
    monthly: pd.DataFrame
    by_segment: pd.DataFrame
    reasons: pd.DataFrame
    avoidable: pd.DataFrame
    survival_cohort: tuple[pd.DataFrame, pd.DataFrame]
    survival_size: tuple[pd.DataFrame, pd.DataFrame]
    relationships: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    interventions: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    confidence: float = 0.95
    alpha: float = 0.05

    @property
    def overall_rate(self) -> float:
        return float(self.units["churned"].mean()) if len(self.units) else math.nan

    def definitions(self) -> dict:
        """What every figure means, written next to the tables."""
        lo, hi = wilson_interval(int(self.units["churned"].sum()), len(self.units), self.confidence)
        return {
            "window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
            "churn_rate": self.window.describe() + f"; a relationship = terms with gaps <= {self.grace_days} "
                          "days; reactivations are new relationships",
            "accounts": len(self.units), "churned": int(self.units["churned"].sum()),
            "overall_rate": self.overall_rate, "overall_ci": [float(lo[0]), float(hi[0])],
            "intervals": f"Wilson score, {self.confidence:.0%}",
            "tests": "each segment vs the rest of the window's accounts, two-sided: Fisher's exact test when an "
                     "expected cell of the 2x2 table is below 5, else the pooled two-proportion z-test (column "
                     "test); Benjamini-Hochberg over all these tests, a two-valued dimension counted once; "
                     f"differs = q < {self.alpha:g}",
            "size_bands": [b[2] for b in SIZE_BANDS] + [UNKNOWN],
            "tenure_bands": "tenure at the window start: 0-3 months (days 0-89, onboarding), 3-12 months "
                            "(90-364), 1-2 years (365-729), 2+ years (730+)",
            "exit_reasons": "exit interviews with churned_at in the window; shares of interviews with Wilson "
                            "intervals; avoidable share among interviews with a known flag",
            "interview_coverage": self.avoidable.attrs.get("coverage"),
            "interview_coverage_meaning": "exit interviews dated in the window / relationships ending in it "
                                          "(accounts that signed up during the window included)",
            "survival": "Kaplan-Meier over relationship lifetimes (days); observation stops for every "
                        f"relationship at the data end - {self.grace_days} grace days "
                        f"({self.data_end - dt.timedelta(days=self.grace_days)}): ended by then = churned, "
                        "otherwise censored there; delayed entry (left "
                        f"truncation) at the data start {self.data_start} for older relationships; cohort "
                        "curves use relationships that began on or after the data start",
            "data": {"start": self.data_start.isoformat(), "end": self.data_end.isoformat()},
        }


def diagnose_frames(relationships: pd.DataFrame, terms: pd.DataFrame, accounts: pd.DataFrame | None,
                    feedback: pd.DataFrame | None, monthly: pd.DataFrame, window: Window, data_start: dt.date,
                    data_end: dt.date, grace_days: int, cohort_freq: str = "Q", confidence: float = 0.95,
                    alpha: float = 0.05, own: pd.DataFrame | None = None) -> Diagnosis:
    """All diagnosis tables from frames (pure); ``relationships`` and ``terms`` as ``load_relationships``;
    ``own``: the company's own category columns (``own_categories``), tested after ``DIMENSIONS``."""
    check_window(window, data_start, data_end, grace_days)
    units = churn_units(relationships, terms, accounts, window, own)
    if units.empty:
        raise DiagnosisError(f"no account is active on {window.start}: nothing to diagnose")
    extra = tuple(c for c in (own.columns if own is not None else ()) if c != "account_id" and c not in DIMENSIONS)
    by_segment = churn_by_segment(units, DIMENSIONS + extra, confidence, alpha)
    ends = relationships["rel_end"]
    churns = int((ends.notna() & (ends > pd.Timestamp(window.start)) & (ends <= pd.Timestamp(window.end))).sum())
    reasons, flags = exit_reasons(feedback, window, churns, confidence)
    lives = lifetimes(relationships, data_start, data_end, grace_days)
    new = lives[lives["rel_start"] >= pd.Timestamp(data_start)].copy()
    new["cohort"] = signup_cohort(new["rel_start"], cohort_freq)
    cohort = kaplan_meier(new, "cohort", confidence) if len(new) else (pd.DataFrame(), pd.DataFrame())
    if accounts is not None and "employees" in accounts:
        lives = lives.merge(accounts[["account_id", "employees"]].drop_duplicates("account_id"), on="account_id",
                            how="left")
    else:
        lives["employees"] = np.nan
    lives["size_band"] = band(lives["employees"], SIZE_BANDS)
    size = kaplan_meier(lives, "size_band", confidence, order=[b[2] for b in SIZE_BANDS])
    return Diagnosis(window=window, data_start=data_start, data_end=data_end, grace_days=grace_days, units=units,
                     monthly=monthly, by_segment=by_segment, reasons=reasons, avoidable=flags,
                     survival_cohort=cohort, survival_size=size, relationships=relationships,
                     confidence=confidence, alpha=alpha)


def _table(con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    """A ``clean_*`` table (``features/validate.py`` creates an empty one for a table not in the source)."""
    return con.execute(f"SELECT * FROM clean_{name}").df()


def build_diagnosis(source: str | Path, settings: Settings, window: Window | None = None, months: int = 12,
                    cohort_freq: str = "Q", interviews: pd.DataFrame | None = None) -> Diagnosis:
    """Read and check ``source`` (``features.pipeline.prepare``) and diagnose it; ``interviews``
    (exit interviews recorded in the operational store) join the imported feedback (``merge_feedback``).

    Monthly rates come from ``features.metrics.churn_metrics``, which builds the ``terms``
    and ``relationships`` tables the rest reuses; the window defaults to
    ``default_window(..., months)``.
    """
    con = open_connection()
    try:
        report, loaded = prepare(source, settings, con)
        own = own_categories(con, loaded, settings)
        monthly = churn_metrics(con, settings, report.data_start, report.data_end)
        relationships, terms = load_relationships(con, settings, build=False)
        accounts, feedback = _table(con, "accounts"), merge_feedback(_table(con, "churn_feedback"), interviews)
        interventions = _table(con, "interventions")
    finally:
        con.close()
    win = window or default_window(report.data_start, report.data_end, settings.grace_days, months)
    diag = diagnose_frames(relationships, terms, accounts, feedback, monthly, win, report.data_start,
                           report.data_end, settings.grace_days, cohort_freq, own=own)
    diag.interventions = interventions
    return diag


def _write(frame: pd.DataFrame, folder: Path, stem: str) -> Path:
    atomic_write_text(folder / f"{stem}.csv", frame.to_csv(index=False))
    atomic_write_text(folder / f"{stem}.json", frame.to_json(orient="records", date_format="iso", indent=2))
    return folder / f"{stem}.csv"


def write_diagnosis(diag: Diagnosis, folder: Path) -> dict[str, Path]:
    """CSV + JSON per table, PNG charts and ``diagnosis.json`` (definitions) into ``folder``."""
    paths = {
        "churn_over_time": _write(diag.monthly, folder, "churn-over-time"),
        "churn_by_segment": _write(diag.by_segment, folder, "churn-by-segment"),
        "exit_reasons": _write(diag.reasons, folder, "exit-reasons"),
        "avoidable": _write(diag.avoidable, folder, "exit-avoidable"),
        "churn_over_time_png": plot_churn_over_time(diag.monthly, folder / "churn-over-time.png"),
        "churn_by_segment_png": plot_churn_by_segment(diag.by_segment, diag.overall_rate, diag.window,
                                                      folder / "churn-by-segment.png", diag.confidence, diag.alpha),
    }
    if len(diag.reasons):
        paths["exit_reasons_png"] = plot_exit_reasons(diag.reasons, diag.avoidable, folder / "exit-reasons.png")
    for key, (curves, summary), title in (
            ("survival_cohort", diag.survival_cohort, "Survival by signup cohort (relationships begun in the data)"),
            ("survival_size", diag.survival_size, "Survival by company size (employees), delayed entry")):
        if len(curves):
            paths[key] = _write(curves, folder, key.replace("_", "-"))
            paths[f"{key}_summary"] = _write(summary, folder, key.replace("_", "-") + "-summary")
            paths[f"{key}_png"] = plot_survival(curves, summary, title, folder / f"{key.replace('_', '-')}.png",
                                                bands=key == "survival_size")
    definitions = folder / "diagnosis.json"
    atomic_write_text(definitions, json.dumps(diag.definitions(), indent=2, default=str))
    paths["definitions"] = definitions
    return paths
