"""Closed loop (ARTICLE §4): did accounts stay after a retention action, compared with
comparable accounts that got none?

Definitions (every figure in the output follows them):

* **Scored date**: an (account, as-of) row of a score history with its ``tier`` and
  ``health_score``. Only **matured** dates count: ``as_of + horizon + grace <= data end``,
  so every outcome is final.
* **Treated unit**: an intervention, attached to the account's latest scored date at most
  ``window_days`` before it (``as_of <= occurred_at < as_of + window_days``): the score the
  team saw when it acted. An intervention whose account already had one in the
  ``horizon_days`` before that date is left out (the outcome would mix two actions), as is
  a second intervention on the same scored date.
* **Comparable accounts** (controls): scored on the **same as-of date**, in the **same
  tier** and the same ``band_width``-point **health band**, with **no intervention** from
  ``horizon_days`` before to ``horizon_days`` after the date, and still a customer
  ``window_days`` after it (treated accounts were customers when the team acted; this
  asks controls to survive the same days or more, so what remains of the asymmetry works
  against the intervention).
* **Outcome**: retained = the relationship (``features/timeline.py``, same grace) did not
  end in ``(as_of, as_of + horizon]``.
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
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import norm

from features.errors import ChurnwatchError

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
            "treated": f"an intervention within {self.window_days} days after the account's latest scored date",
            "comparable": f"same as-of date, same tier, same {self.band_width}-point health band, no intervention "
                          f"within {self.horizon_days} days before or after, still a customer "
                          f"{self.window_days} days later",
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


def _attach_relationship(scores: pd.DataFrame, relationships: pd.DataFrame) -> pd.DataFrame:
    m = scores.merge(relationships[["account_id", "rel_start", "rel_end"]], on="account_id", how="inner")
    active = (m["rel_start"] <= m["as_of"]) & (m["rel_end"].isna() | (m["rel_end"] > m["as_of"]))
    return m[active].drop_duplicates(["account_id", "as_of"]).reset_index(drop=True)


def _interventions_near(rows: pd.DataFrame, interventions: pd.DataFrame, before_days: int,
                        after_days: int) -> pd.Series:
    """Per row of ``rows`` (account_id, as_of): an intervention in [as_of - before, as_of + after]?"""
    m = rows[["account_id", "as_of"]].reset_index().merge(interventions[["account_id", "occurred_at"]],
                                                          on="account_id", how="inner")
    hit = (m["occurred_at"] >= m["as_of"] - pd.Timedelta(days=before_days)) & \
          (m["occurred_at"] <= m["as_of"] + pd.Timedelta(days=after_days))
    return rows.index.isin(m.loc[hit, "index"])


def treated_units(scores: pd.DataFrame, interventions: pd.DataFrame, window_days: int,
                  horizon_days: int) -> pd.DataFrame:
    """Interventions attached to their scored date (see the module docstring)."""
    iv = interventions.dropna(subset=["occurred_at"]).copy()
    iv["occurred_at"] = pd.to_datetime(iv["occurred_at"])
    iv["playbook"] = iv["playbook"].astype(object).where(iv["playbook"].notna(), "unknown").astype(str) \
        if "playbook" in iv else "unknown"
    iv = iv.sort_values("occurred_at")
    right = scores[["account_id", "as_of"]].sort_values("as_of")
    m = pd.merge_asof(iv, right, left_on="occurred_at", right_on="as_of", by="account_id", direction="backward",
                      tolerance=pd.Timedelta(days=window_days) - pd.Timedelta(microseconds=1))
    m = m.dropna(subset=["as_of"])
    # fresh: no intervention on the account in the horizon before the scored date
    prior = m[["account_id", "as_of", "occurred_at"]].reset_index().merge(
        iv[["account_id", "occurred_at"]].rename(columns={"occurred_at": "other"}), on="account_id")
    stale = prior[(prior["other"] < prior["as_of"]) & (prior["other"] >= prior["as_of"] -
                                                       pd.Timedelta(days=horizon_days))]["index"]
    m = m[~m.index.isin(stale)]
    m = m.sort_values("occurred_at").drop_duplicates(["account_id", "as_of"], keep="first")
    return m[["account_id", "as_of", "occurred_at", "playbook"]].reset_index(drop=True)


def wilson(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` (possibly effective, non-integer) trials."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def _compare(treated: pd.DataFrame, strata: pd.DataFrame, z: float) -> dict:
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
    (l1, u1), (l2, u2) = wilson(p_t, n, z), wilson(p_c, n_eff, z)
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
        relationships: account_id, rel_start, rel_end (``features.diagnosis.load_relationships``).
        data_end: the data end (exclusive); dates with ``as_of + horizon + grace`` after it are not matured.

    Returns:
        ``ClosedLoop`` whose table has one row per scored tier x playbook, then per playbook
        over all tiers: treated, unmatched, treated_matched, treated_retained,
        treated_retention, comparable (account-dates in the matched strata),
        comparable_retention (standardised), difference, ci_low, ci_high.
    """
    need = {"account_id", "as_of", "tier", "health_score"}
    if missing := need - set(scores.columns):
        raise ClosedLoopError(f"scores lack column(s) {', '.join(sorted(missing))}")
    sc = scores[list(need)].copy()
    sc["as_of"] = pd.to_datetime(sc["as_of"])
    iv = interventions.copy()
    iv["occurred_at"] = pd.to_datetime(iv["occurred_at"])
    rel = relationships.copy()
    for c in ("rel_start", "rel_end"):
        rel[c] = pd.to_datetime(rel[c])
    horizon, window = pd.Timedelta(days=horizon_days), pd.Timedelta(days=window_days)
    units = treated_units(sc, iv, window_days, horizon_days)
    matured_cut = pd.Timestamp(data_end) - horizon - pd.Timedelta(days=grace_days)
    sc = _attach_relationship(sc[sc["as_of"] <= matured_cut], rel)
    sc["retained"] = ~(sc["rel_end"].notna() & (sc["rel_end"] <= sc["as_of"] + horizon))
    sc["stratum"] = sc["as_of"].dt.strftime("%Y-%m-%d") + "|" + sc["tier"].astype(str) + "|" + \
        health_band(sc["health_score"], band_width)
    treated = units.merge(sc, on=["account_id", "as_of"], how="inner")
    touched = _interventions_near(sc, iv, horizon_days, horizon_days)
    alive = sc["rel_end"].isna() | (sc["rel_end"] > sc["as_of"] + window)
    controls = sc[~touched & alive]
    strata = controls.groupby("stratum")["retained"].agg(comparable="size", comparable_retained="sum").reset_index()
    z = float(norm.ppf(0.5 + confidence / 2))
    rows = []
    for (tier, playbook), g in treated.groupby(["tier", "playbook"], sort=True):
        rows.append({"tier": tier, "playbook": playbook, **_compare(g, strata, z)})
    for playbook, g in treated.groupby("playbook", sort=True):
        rows.append({"tier": ALL_TIERS, "playbook": playbook, **_compare(g, strata, z)})
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
    return pd.DataFrame({"account_id": snapshots["account_id"].to_numpy(),
                         "as_of": pd.to_datetime(snapshots["as_of"]).to_numpy(),
                         "churn_probability": scored["churn_probability"].to_numpy(),
                         "health_score": scored["health_score"].to_numpy().astype(int),
                         "tier": scored["tier"].to_numpy()})


def load_scores(store: Path, data_end: dt.date, horizon_days: int, grace_days: int, bundle=None,
                mode: str = "auto") -> tuple[pd.DataFrame, str]:
    """Scores for the closed loop and a sentence saying where they come from.

    ``history``: the ``score_history`` table (what the team saw). ``backfill``: the store's
    matured snapshots scored now with ``bundle`` (the champion; its training block
    includes some of these dates, so the tiers are in-sample there: they are used only to
    find comparable accounts, never as the outcome). ``auto``: the history if it holds a
    matured as-of date, else the back-fill.
    """
    from features.store import SNAPSHOTS, connect

    if mode not in ("auto", "history", "backfill"):
        raise ClosedLoopError(f"scores {mode!r}: expected auto, history or backfill")
    cut = data_end - dt.timedelta(days=horizon_days + grace_days)
    history = pd.DataFrame()
    with connect(store, read_only=True) as con:
        has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'score_history'").fetchone()[0]
        if has and mode != "backfill":
            history = con.execute("SELECT account_id, as_of, churn_probability, health_score, tier "
                                  "FROM score_history").df()
        matured_history = int((pd.to_datetime(history["as_of"]) <= pd.Timestamp(cut)).sum()) if len(history) else 0
        if mode == "history" or (mode == "auto" and matured_history):
            return history, f"score history ({history['as_of'].nunique() if len(history) else 0} as-of dates)"
        if bundle is None:
            raise ClosedLoopError("the score history has no matured as-of date and no model was given to "
                                  "back-fill scores from the snapshots")
        rows = con.execute(f"SELECT * FROM {SNAPSHOTS} WHERE as_of <= ? ORDER BY as_of, account_id", [cut]).df()
    if rows.empty:
        raise ClosedLoopError(f"no snapshots on or before {cut} (as-of + horizon + grace <= data end)")
    version = bundle.meta.get("model_version", "bundle")
    return backfill_scores(rows, bundle), (f"back-filled: {rows['as_of'].nunique()} matured snapshot dates scored "
                                           f"with model version {version}")


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
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=120, bbox_inches="tight")
    return out


def closed_loop_from_store(store: Path, interventions: pd.DataFrame, relationships: pd.DataFrame,
                           data_end: dt.date, horizon_days: int = 60, grace_days: int = 30, bundle=None,
                           mode: str = "auto", **options) -> ClosedLoop:
    """``load_scores`` then ``closed_loop`` (what ``churnwatch diagnose`` and the notebooks run)."""
    scores, source = load_scores(store, data_end, horizon_days, grace_days, bundle, mode)
    return closed_loop(scores, interventions, relationships, data_end, horizon_days, grace_days,
                       scores_source=source, **options)
