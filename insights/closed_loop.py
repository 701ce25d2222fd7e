"""Closed loop (ARTICLE §4): did accounts stay after a retention action, compared with
comparable accounts that got none?

Definitions (every figure in the output follows them):

* **Scored date**: an (account, as-of) row of a score history with its ``tier`` and
  ``health_score``. Only **matured** dates count: ``as_of + horizon + grace <= data end``,
  so every outcome is final. Back-filled scores (no history yet) are taken only on as-of
  dates in the model's out-of-sample test block or later: on its training and calibration
  dates the model has seen the outcome, and grouping by its scores would partly group by
  that outcome.
* **Treated unit**: an intervention, attached to the account's latest scored date at most
  ``window_days`` before it (``as_of <= occurred_at < as_of + window_days``): the score the
  team saw when it acted. An intervention whose account already had one in the
  ``horizon_days`` before that date is left out (the outcome would mix two actions), as is
  a second intervention on the same scored date.
* **Comparable accounts** (controls): scored on the **same as-of date**, in the **same
  tier** and the same ``band_width``-point **health band**, with **no intervention** in
  ``[as_of - horizon_days, as_of + window_days)``. Treatment is decided by what happened
  by the end of the treated units' window, never later: a control contacted after that is
  usual care, as are later interventions of treated accounts.
* **Both groups** must still be customers ``window_days`` after the as-of date (a treated
  unit whose relationship ends inside the window is left out, like such a control).
* **Outcome**: retained = the relationship (``features/timeline.py``, same grace) did not
  end in ``(as_of, as_of + horizon]``: 1 - the snapshot label ``churn_label`` of that date
  (the score history has no label, so it is computed here from the relationships).
* **Comparison** per scored tier x playbook (and all tiers per playbook): treated
  retention vs the control retention **standardised to the treated units' strata**
  (each treated unit's stratum weighs as many times as it has treated units); treated
  units whose stratum has no control are counted as ``unmatched`` and left out. The
  interval of the difference is **Newcombe's hybrid score interval** (his method 10),
  built from the Wilson intervals of the treated retention (``n`` treated units) and of
  the standardised control retention (effective ``n = 1 / sum_s w_s^2 / n_s``, ``w_s`` the
  share of treated units in stratum ``s`` and ``n_s`` its comparable account-dates). It
  behaves at rates of 0 or 1, where Wald's does not. One account is comparable on several
  dates; treating those as independent makes the control side of the interval a little
  too narrow.

This is **observational, not randomised** (``CAVEAT``): the team chose whom to contact.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.errors import ChurnwatchError
from core.files import atomic_path, atomic_write_text
from core.plotfonts import with_plot_fonts
from core.scores import history_rows
from core.store import HISTORY, connect, has_table, read_horizon, snapshot_columns, snapshot_range
from core.time import Horizon
from insights.diagnosis import wilson_interval

CAVEAT = {
    "en": ("Observational, not randomised: the customer-success team chose whom to contact. Comparable accounts "
           "share the tier and health band on the same as-of date and had no intervention, but they may still "
           "differ in what the team saw and the model did not. Read a difference as a signal to test (for "
           "example with a random hold-out group), not as the effect of the playbook."),
    "zh-CN": ("这是观察性比较，不是随机对照：干预对象由客户成功团队自行选择。对照客户在同一评估日期具有相同的风险等级和"
              "健康分区间，且未受任何干预，但仍可能在团队看到而模型未捕捉的方面有所不同。请把差异视为需要进一步验证的"
              "信号（例如设置随机保留组），而不是该挽留方案的因果效果。"),
}
ALL_TIERS = "all tiers"


class ClosedLoopError(ChurnwatchError):
    """The closed loop cannot be computed from what was given."""


@dataclass
class ClosedLoop:
    """The comparison table, the treated units behind it and what it means."""

    table: pd.DataFrame
    treated: pd.DataFrame
    scores_source: str
    matured_dates: int
    horizon_days: int
    grace_days: int
    window_days: int
    band_width: int
    confidence: float

    def definitions(self) -> dict:
        return {
            "scores": self.scores_source, "matured_as_of_dates": self.matured_dates,
            "treated": f"an intervention within {self.window_days} days after the account's latest scored date, "
                       f"none in the {self.horizon_days} days before it; still a customer {self.window_days} days "
                       "after the scored date",
            "comparable": f"same as-of date, same tier, same {self.band_width}-point health band, no intervention "
                          f"from {self.horizon_days} days before the date to {self.window_days} days after it "
                          "(later interventions are usual care, in both groups), still a customer "
                          f"{self.window_days} days after the date",
            "outcome": f"retained = relationship did not end within {self.horizon_days} days after the as-of date "
                       f"(grace {self.grace_days} days)",
            "difference": "treated retention - comparable retention standardised to the treated units' strata; "
                          f"{self.confidence:.0%} Newcombe hybrid score interval (Wilson intervals of both rates, "
                          "effective n for the standardised one)",
            "caveat": CAVEAT,
        }


def health_band(health: pd.Series, width: int = 10) -> pd.Series:
    """``40-49`` style labels of integer health scores (100 is its own band)."""
    lo = (pd.to_numeric(health) // width * width).astype(int)
    return lo.astype(str) + "-" + np.minimum(lo + width - 1, 100).astype(str)


def _ns(values) -> pd.Series:
    """Dates as datetime64[ns] (DuckDB gives [us]; ``merge_asof`` wants both sides alike)."""
    return pd.to_datetime(values).astype("datetime64[ns]")


def _attach_relationship(scores: pd.DataFrame, relationships: pd.DataFrame) -> pd.DataFrame:
    m = scores.merge(relationships[["account_id", "rel_start", "rel_end"]], on="account_id", how="inner")
    active = (m["rel_start"] <= m["as_of"]) & (m["rel_end"].isna() | (m["rel_end"] > m["as_of"]))
    return m[active].drop_duplicates(["account_id", "as_of"]).reset_index(drop=True)


def _intervention_in(rows: pd.DataFrame, interventions: pd.DataFrame, before_days: int,
                     after_days: int) -> np.ndarray:
    """Per row of ``rows`` (account_id, as_of): an intervention in ``[as_of - before, as_of + after)``?

    One ``merge_asof``: the account's first intervention on or after ``as_of - before``.
    """
    left = rows[["account_id", "as_of"]].assign(_row=np.arange(len(rows)),
                                                _from=rows["as_of"] - pd.Timedelta(days=before_days))
    right = interventions[["account_id", "occurred_at"]].sort_values("occurred_at")
    m = pd.merge_asof(left.sort_values("_from"), right, left_on="_from", right_on="occurred_at", by="account_id",
                      direction="forward")
    hit = m["occurred_at"].notna() & (m["occurred_at"] < m["as_of"] + pd.Timedelta(days=after_days))
    out = np.zeros(len(rows), dtype=bool)
    out[m.loc[hit, "_row"].to_numpy()] = True
    return out


def treated_units(scores: pd.DataFrame, interventions: pd.DataFrame, window_days: int,
                  horizon_days: int) -> pd.DataFrame:
    """Interventions attached to their scored date (see the module docstring)."""
    iv = interventions.dropna(subset=["occurred_at"]).copy()
    iv["occurred_at"] = _ns(iv["occurred_at"])
    iv["playbook"] = iv["playbook"].astype(object).where(iv["playbook"].notna(), "unknown").astype(str) \
        if "playbook" in iv else "unknown"
    iv = iv.sort_values("occurred_at")
    right = scores[["account_id", "as_of"]].assign(as_of=_ns(scores["as_of"])).sort_values("as_of")
    m = pd.merge_asof(iv, right, left_on="occurred_at", right_on="as_of", by="account_id", direction="backward",
                      tolerance=pd.Timedelta(days=window_days) - pd.Timedelta(microseconds=1))
    m = m.dropna(subset=["as_of"]).reset_index(drop=True)
    # fresh: the account's latest intervention strictly before the scored date is older than the horizon
    before = pd.merge_asof(m[["account_id", "as_of"]].assign(_row=np.arange(len(m))).sort_values("as_of"),
                           iv[["account_id", "occurred_at"]].rename(columns={"occurred_at": "other"}),
                           left_on="as_of", right_on="other", by="account_id", direction="backward",
                           allow_exact_matches=False)
    stale = before.loc[before["other"] >= before["as_of"] - pd.Timedelta(days=horizon_days), "_row"]
    m = m[~m.index.isin(stale)]
    m = m.sort_values("occurred_at").drop_duplicates(["account_id", "as_of"], keep="first")
    return m[["account_id", "as_of", "occurred_at", "playbook"]].reset_index(drop=True)


def wilson(p: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` on ``n`` (possibly effective, non-integer) trials
    (``insights.diagnosis.wilson_interval`` of ``p * n`` successes)."""
    lo, hi = wilson_interval(p * n, n, confidence)
    return float(lo[0]), float(hi[0])


def _compare(treated: pd.DataFrame, strata: pd.DataFrame, confidence: float) -> dict:
    """One comparison row: ``treated`` has ``stratum`` and ``retained``; ``strata`` is per stratum
    (comparable, comparable_retained)."""
    n_all = len(treated)
    t = treated.merge(strata, on="stratum", how="left")
    t = t[t["comparable"].fillna(0) > 0]
    n = len(t)
    row = {"treated": n_all, "unmatched": n_all - n, "treated_matched": n}
    if n == 0:
        return {**row, "treated_retained": 0, "treated_retention": math.nan, "comparable": 0,
                "comparable_retention": math.nan, "difference": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    p_t = float(t["retained"].mean())
    w = t.groupby("stratum").size() / n
    s = strata.set_index("stratum").loc[w.index]
    p_c = float((w * s["comparable_retained"] / s["comparable"]).sum())
    n_eff = 1.0 / float((w ** 2 / s["comparable"]).sum())
    (l1, u1), (l2, u2) = wilson(p_t, n, confidence), wilson(p_c, n_eff, confidence)
    d = p_t - p_c
    return {**row, "treated_retained": int(t["retained"].sum()), "treated_retention": p_t,
            "comparable": int(s["comparable"].sum()), "comparable_retention": p_c, "difference": d,
            "ci_low": d - math.sqrt((p_t - l1) ** 2 + (u2 - p_c) ** 2),
            "ci_high": d + math.sqrt((u1 - p_t) ** 2 + (p_c - l2) ** 2)}


def closed_loop(scores: pd.DataFrame, interventions: pd.DataFrame, relationships: pd.DataFrame,
                data_end: dt.date, horizon_days: int = 60, grace_days: int = 30, window_days: int = 7,
                band_width: int = 10, confidence: float = 0.95, scores_source: str = "score history") -> ClosedLoop:
    """Retention after an intervention vs comparable accounts (pure; see the module docstring).

    Args:
        scores: account_id, as_of, tier, health_score (a score history or back-filled scores).
        interventions: account_id, occurred_at, playbook.
        relationships: account_id, rel_start, rel_end (``insights.diagnosis.load_relationships``).
        data_end: the data end (exclusive); dates with ``as_of + horizon + grace`` after it are not matured.

    Returns:
        ``ClosedLoop`` whose table has one row per scored tier x playbook, then per playbook
        over all tiers: treated, unmatched, treated_matched, treated_retained,
        treated_retention, comparable (account-dates in the matched strata),
        comparable_retention (standardised), difference, ci_low, ci_high.
    """
    need = ["account_id", "as_of", "tier", "health_score"]
    if missing := sorted(set(need) - set(scores.columns)):
        raise ClosedLoopError(f"scores lack column(s) {', '.join(missing)}")
    for col, frame, cols in (("interventions", interventions, ["account_id", "occurred_at"]),
                             ("relationships", relationships, ["account_id", "rel_start", "rel_end"])):
        if missing := sorted(set(cols) - set(frame.columns)):
            raise ClosedLoopError(f"{col} lack column(s) {', '.join(missing)}")
    sc = scores[need].copy()
    sc["as_of"] = _ns(sc["as_of"])
    sc["account_id"] = sc["account_id"].astype(str)
    blank = sc["health_score"].isna() | sc["tier"].isna()
    if blank.any():
        first = sc[blank].iloc[0]
        raise ClosedLoopError(f"{int(blank.sum())} scored row(s) have no health_score or tier (e.g. account "
                              f"{first['account_id']} on {first['as_of']:%Y-%m-%d}): score them again")
    iv = interventions.copy()
    iv["occurred_at"] = _ns(iv["occurred_at"])
    iv = iv.dropna(subset=["occurred_at"]).assign(account_id=lambda f: f["account_id"].astype(str))
    rel = relationships.copy()
    rel["account_id"] = rel["account_id"].astype(str)
    for c in ("rel_start", "rel_end"):
        rel[c] = _ns(rel[c])
    horizon, window = pd.Timedelta(days=horizon_days), pd.Timedelta(days=window_days)
    units = treated_units(sc, iv, window_days, horizon_days)
    matured_cut = pd.Timestamp(Horizon(horizon_days, grace_days).last_matured(data_end))
    sc = _attach_relationship(sc[sc["as_of"] <= matured_cut], rel)
    sc["retained"] = ~(sc["rel_end"].notna() & (sc["rel_end"] <= sc["as_of"] + horizon))
    sc["stratum"] = sc["as_of"].dt.strftime("%Y-%m-%d") + "|" + sc["tier"].astype(str) + "|" + \
        health_band(sc["health_score"], band_width)
    # both groups: still a customer window_days after the scored date
    sc = sc[sc["rel_end"].isna() | (sc["rel_end"] > sc["as_of"] + window)]
    treated = units.merge(sc, on=["account_id", "as_of"], how="inner")
    controls = sc[~_intervention_in(sc, iv, horizon_days, window_days)]
    strata = controls.groupby("stratum")["retained"].agg(comparable="size", comparable_retained="sum").reset_index()
    rows = []
    for (tier, playbook), g in treated.groupby(["tier", "playbook"], sort=True):
        rows.append({"tier": tier, "playbook": playbook, **_compare(g, strata, confidence)})
    for playbook, g in treated.groupby("playbook", sort=True):
        rows.append({"tier": ALL_TIERS, "playbook": playbook, **_compare(g, strata, confidence)})
    cols = ["tier", "playbook", "treated", "unmatched", "treated_matched", "treated_retained", "treated_retention",
            "comparable", "comparable_retention", "difference", "ci_low", "ci_high"]
    table = pd.DataFrame(rows, columns=cols)
    return ClosedLoop(table=table, treated=treated, scores_source=scores_source,
                      matured_dates=int(sc["as_of"].nunique()), horizon_days=horizon_days, grace_days=grace_days,
                      window_days=window_days, band_width=band_width, confidence=confidence)


# -- scores: the history, or back-filled from the snapshots --------------------------------

def backfill_scores(snapshots: pd.DataFrame, bundle) -> pd.DataFrame:
    """Score snapshot rows with a model bundle: account_id, as_of, churn_probability, health_score, tier.

    Only ``ModelBundle.predict`` (calibrated probability, health map, tiers), no reasons: cheap.
    """
    scored = bundle.predict(snapshots)
    if scored["health_score"].isna().any():
        raise ClosedLoopError(f"the model gave no health_score for {int(scored['health_score'].isna().sum())} "
                              "snapshot row(s)")
    return pd.DataFrame({"account_id": snapshots["account_id"].to_numpy(),
                         "as_of": _ns(snapshots["as_of"]).to_numpy(),
                         "churn_probability": scored["churn_probability"].to_numpy(),
                         "health_score": scored["health_score"].to_numpy().astype(int),
                         "tier": scored["tier"].to_numpy()})


def out_of_sample_start(bundle) -> dt.date:
    """First as-of date of the bundle's out-of-sample test block (``bundle.json`` split).

    Raises ``ClosedLoopError`` for a bundle without an out-of-time split (e.g. trained on a
    flat table): every snapshot date could then be in its training data.
    """
    meta = getattr(bundle, "meta", None) or {}
    test = (meta.get("split") or {}).get("test") or (meta.get("snapshots") or {}).get("test_block")
    if not test:
        raise ClosedLoopError(f"model version {meta.get('model_version', '?')} has no out-of-time test block in "
                              "its metadata: its back-filled scores could be in-sample (they would partly group "
                              "accounts by their outcome); use a score history (--scores history)")
    return dt.date.fromisoformat(str(test[0])[:10])


def load_scores(store: Path, data_end: dt.date, horizon_days: int, grace_days: int, bundle=None,
                mode: str = "auto") -> tuple[pd.DataFrame, str]:
    """Scores for the closed loop and a sentence saying where they come from.

    ``history``: the ``score_history`` table (what the team saw). ``backfill``: the store's
    matured snapshots scored now with ``bundle`` (the champion), **only on as-of dates in
    its out-of-sample test block or later** (``out_of_sample_start``): on earlier dates the
    model was fitted or calibrated on these very outcomes. Only the model's feature
    columns and the keys are read. ``auto``: the history if it holds a matured as-of date,
    else the back-fill.
    """
    if mode not in ("auto", "history", "backfill"):
        raise ClosedLoopError(f"scores {mode!r}: expected auto, history or backfill")
    cut = Horizon(horizon_days, grace_days).last_matured(data_end)
    history = pd.DataFrame()
    with connect(store, read_only=True) as con:
        if has_table(con, HISTORY) and mode != "backfill":
            history = history_rows(con, columns=("account_id", "as_of", "churn_probability", "health_score", "tier"))
        matured_history = int((_ns(history["as_of"]) <= pd.Timestamp(cut)).sum()) if len(history) else 0
        if mode == "history" or (mode == "auto" and matured_history):
            return history, f"score history ({history['as_of'].nunique() if len(history) else 0} as-of dates)"
        if bundle is None:
            raise ClosedLoopError("the score history has no matured as-of date and no model was given to "
                                  "back-fill scores from the snapshots")
        first = out_of_sample_start(bundle)
        have = set(snapshot_columns(con))
        cols = ["account_id", "as_of", *[c for c in bundle.frame.names if c not in ("account_id", "as_of")]]
        if missing := [c for c in cols if c not in have]:
            raise ClosedLoopError(f"the store's snapshots lack the model's feature(s) {', '.join(missing[:5])}")
        rows = snapshot_range(con, cols, first, cut)
    version = bundle.meta.get("model_version", "bundle")
    if rows.empty:
        raise ClosedLoopError(
            f"no matured snapshot date in model version {version}'s out-of-sample test block: the block starts "
            f"{first}, the last matured as-of date is {cut} (as-of + horizon + grace <= data end); earlier dates "
            "are in the model's training or calibration data and are not back-filled. Wait for the score "
            "history to mature, or back-fill with a model trained on earlier data")
    n = int(rows["as_of"].nunique())
    few = " (few: read the intervals, not the point estimates)" if n < 8 else ""
    return backfill_scores(rows, bundle), (
        f"back-filled: {n} matured snapshot date(s) {first}..{cut} from model version {version}'s out-of-sample "
        f"test block{few}; earlier dates are in-sample and left out")


@with_plot_fonts
def plot_closed_loop(result: ClosedLoop, path: str | Path) -> Path:
    """Retention difference (treated - comparable) with its interval, per tier x playbook."""
    t = result.table.dropna(subset=["difference"]).iloc[::-1]
    fig = Figure(figsize=(8.0, 0.45 * len(t) + 1.8))
    ax = fig.add_subplot()
    y = np.arange(len(t))
    d = t["difference"].to_numpy() * 100
    err = np.vstack([d - t["ci_low"].to_numpy() * 100, t["ci_high"].to_numpy() * 100 - d])
    ax.errorbar(d, y, xerr=err, fmt="o", capsize=3, color="tab:blue")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [f"{r.tier} / {r.playbook} (n={r.treated_matched:,})" for r in t.itertuples()], fontsize=8)
    ax.set_xlabel(f"retention over {result.horizon_days} days: treated - comparable accounts (percentage points)")
    ax.set_title(f"After an intervention ({result.confidence:.0%} Newcombe intervals); observational, not randomised",
                 fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return out


def closed_loop_from_store(store: Path, interventions: pd.DataFrame, relationships: pd.DataFrame,
                           data_end: dt.date, bundle=None, mode: str = "auto", **options) -> ClosedLoop:
    """``load_scores`` then ``closed_loop`` (what ``churnwatch diagnose`` and the notebooks run), with
    the horizon the store's snapshots were labelled with (never the current config's)."""
    horizon = read_horizon(store)
    scores, source = load_scores(store, data_end, horizon.horizon_days, horizon.grace_days, bundle, mode)
    return closed_loop(scores, interventions, relationships, data_end, horizon.horizon_days, horizon.grace_days,
                       scores_source=source, **options)


def write_closed_loop(loop: ClosedLoop, folder: Path) -> dict[str, Path]:
    """``closed-loop.csv``, ``closed-loop.json`` (definitions + rows) and, when a difference
    could be measured, ``closed-loop.png`` in ``folder``; returns the paths written."""
    folder = Path(folder)
    paths = {"csv": folder / "closed-loop.csv", "json": folder / "closed-loop.json"}
    atomic_write_text(paths["csv"], loop.table.to_csv(index=False))
    atomic_write_text(paths["json"], json.dumps(
        {"definitions": loop.definitions(), "rows": json.loads(loop.table.to_json(orient="records"))},
        indent=2, ensure_ascii=False))
    if loop.table["difference"].notna().any():
        paths["png"] = plot_closed_loop(loop, folder / "closed-loop.png")
    return paths
