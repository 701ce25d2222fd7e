"""One account as a customer-success manager sees it (ARTICLE §3, DESIGN §8 ``explain``).

The functional core: ``account_view`` turns score-history rows (and, optionally, the
account's profile: MRR, CSM, segment, industry, region) into an ``AccountView`` in
English or Simplified Chinese. The shell functions ``read_scores`` and ``read_profiles``
read the store; ``churnwatch explain`` and ``churnwatch report`` print or render views.

Time semantics: a score "as of t" was computed from data before ``t``; the trend is the
account's scores on every scoring date up to the view's as-of date, oldest first.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from features.config import Settings
from features.errors import ChurnwatchError
from features.store import connect

TIERS = ("healthy", "low_risk", "medium_risk", "high_risk")
TIER_RANK = {t: i for i, t in enumerate(TIERS)}
TIER_LABELS: dict[str, tuple[str, str]] = {
    "healthy": ("Healthy", "健康"),
    "low_risk": ("Low risk", "低风险"),
    "medium_risk": ("Medium risk", "中风险"),
    "high_risk": ("High risk", "高风险"),
}
LANGS = ("en", "zh-CN")
PROFILE_COLUMNS = ("mrr", "csm", "segment", "industry", "region")

#: Playbook owners and deadlines of the default config, for people reading Chinese.
OWNER_ZH = {
    "CSM": "客户成功经理",
    "CSM / CSM lead": "客户成功经理 / 客户成功主管",
    "Retention squad incl. an executive": "挽留小组（含高管）",
}


class ViewError(ChurnwatchError):
    """No score history, or an account / tier / language that is not there."""


def normalise_lang(value: str | None) -> str:
    """``en`` or ``zh-CN`` from common spellings (``zh``, ``zh_cn``, ``ZH-cn``, ``cn``)."""
    v = (value or "en").strip().lower().replace("_", "-")
    if v in ("en", "en-us", "en-gb", "english"):
        return "en"
    if v in ("zh", "zh-cn", "zh-hans", "cn", "chinese"):
        return "zh-CN"
    raise ViewError(f"--lang {value!r}: use one of {', '.join(LANGS)}")


def normalise_tier(value: str) -> str:
    """A tier name from ``high``, ``high_risk``, ``High-Risk``, ``high risk`` or ``高风险``."""
    v = value.strip().lower().replace("-", "_").replace(" ", "_")
    for tier, (en, zh) in TIER_LABELS.items():
        if v in (tier, tier.removesuffix("_risk"), en.lower().replace(" ", "_")) or value.strip() == zh:
            return tier
    raise ViewError(f"--tier {value!r}: use one of {', '.join(TIERS)} (or high, medium, low)")


def tier_label(tier: str, lang: str) -> str:
    en, zh = TIER_LABELS.get(tier, (tier, tier))
    return zh if lang == "zh-CN" else en


def owner_label(owner: str, lang: str) -> str:
    return OWNER_ZH.get(owner, owner) if lang == "zh-CN" else owner


def respond_label(text: str, lang: str) -> str:
    """``4 hours`` -> ``4小时``, ``3 working days`` -> ``3个工作日`` for Chinese; unchanged for English."""
    if lang != "zh-CN":
        return text
    if text.strip().lower() == "no deadline":
        return "无时限"
    for pattern, repl in ((r"(\d+)\s*working days?", r"\1个工作日"), (r"(\d+)\s*hours?", r"\1小时"),
                          (r"(\d+)\s*days?", r"\1天"), (r"(\d+)\s*minutes?", r"\1分钟")):
        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)
    return text


def sparkline(values: list[float], lo: float = 0.0, hi: float = 100.0) -> str:
    """Unicode block sparkline of ``values`` on a fixed ``[lo, hi]`` scale (health: 0..100)."""
    blocks = "▁▂▃▄▅▆▇█"
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(" ")
            continue
        x = min(max((float(v) - lo) / (hi - lo), 0.0), 1.0)
        out.append(blocks[min(int(x * len(blocks)), len(blocks) - 1)])
    return "".join(out)


@dataclass
class AccountView:
    """Everything a CSM needs about one account on one scoring date.

    Attributes:
        reasons / strengths: items as stored in the score history: ``signal``, ``label``,
            ``text`` (with the actual value), ``feature``, ``value``, ``contribution``
            (log-odds, summed over the signal group).
        trend: columns ``as_of``, ``health_score``, ``tier``, ``churn_probability``,
            oldest first, ending at ``as_of``.
        previous: the score before this one (``as_of``, ``health_score``, ``tier``) or None.
        profile: ``mrr`` (MRR of the terms in force at the as-of date) and CRM attributes.
    """

    account_id: str
    as_of: dt.date
    churn_probability: float
    health_score: int
    tier: str
    reasons: list[dict]
    strengths: list[dict]
    playbook: dict
    model_version: str
    trend: pd.DataFrame
    previous: dict | None = None
    profile: dict = field(default_factory=dict)
    lang: str = "en"

    @property
    def tier_label(self) -> str:
        return tier_label(self.tier, self.lang)

    @property
    def mrr(self) -> float | None:
        v = self.profile.get("mrr")
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    @property
    def expected_mrr_loss(self) -> float | None:
        """MRR x churn probability: the MRR expected to be lost within the horizon."""
        return None if self.mrr is None else self.mrr * self.churn_probability

    @property
    def health_change(self) -> int | None:
        return None if self.previous is None else int(self.health_score) - int(self.previous["health_score"])


def _clean(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value.item() if hasattr(value, "item") else value


def playbook_for(row: pd.Series | dict, settings: Settings, lang: str) -> dict:
    """The playbook stored with the score (English), or the configured Chinese action for its tier."""
    tier = row["tier"]
    book = settings.playbooks.get(tier)
    action = row["playbook_action"]
    if lang == "zh-CN" and book is not None:
        action = book.action_zh
    return {"action": action, "owner": owner_label(row["playbook_owner"], lang),
            "respond_within": respond_label(row["respond_within"], lang)}


def account_view(history: pd.DataFrame, account_id: str, settings: Settings, lang: str = "en",
                 profiles: pd.DataFrame | None = None, as_of: dt.date | None = None,
                 trend_points: int = 26) -> AccountView:
    """The view of ``account_id`` on ``as_of`` (default: its latest score); pure.

    Args:
        history: score-history rows (any accounts; see ``serving/batch.py``).
        profiles: optional rows ``account_id, as_of`` + ``PROFILE_COLUMNS`` (``read_profiles``).
        trend_points: how many of the latest scores the trend keeps.

    Raises:
        ViewError: the account has no score (on or before ``as_of``).
    """
    lang = normalise_lang(lang)
    rows = history[history["account_id"] == account_id]
    if as_of is not None:
        rows = rows[pd.to_datetime(rows["as_of"]).dt.date <= as_of]
    if rows.empty:
        raise ViewError(_unknown_message(history, account_id))
    rows = rows.assign(_d=pd.to_datetime(rows["as_of"]).dt.date).sort_values("_d")
    last = rows.iloc[-1]
    prev = rows.iloc[-2] if len(rows) > 1 else None
    suffix = "zh" if lang == "zh-CN" else "en"
    profile: dict = {}
    if profiles is not None and not profiles.empty:
        p = profiles[(profiles["account_id"] == account_id)
                     & (pd.to_datetime(profiles["as_of"]).dt.date == last["_d"])]
        if not p.empty:
            profile = {c: _clean(p.iloc[0][c]) for c in PROFILE_COLUMNS if c in p.columns}
    trend = rows.tail(trend_points)[["_d", "health_score", "tier", "churn_probability"]].rename(
        columns={"_d": "as_of"}).reset_index(drop=True)
    return AccountView(
        account_id=str(account_id), as_of=last["_d"], churn_probability=float(last["churn_probability"]),
        health_score=int(last["health_score"]), tier=str(last["tier"]),
        reasons=json.loads(last[f"reasons_{suffix}"] or "[]"),
        strengths=json.loads(last[f"strengths_{suffix}"] or "[]"),
        playbook=playbook_for(last, settings, lang), model_version=str(last["model_version"]), trend=trend,
        previous=None if prev is None else {"as_of": prev["_d"], "health_score": int(prev["health_score"]),
                                            "tier": str(prev["tier"])},
        profile=profile, lang=lang)


def _unknown_message(history: pd.DataFrame, account_id: str) -> str:
    ids = sorted(history["account_id"].unique())
    if not ids:
        return "the score history is empty: run `churnwatch score` first"
    near = [i for i in ids if account_id.lower() in str(i).lower()][:3] or ids[:3]
    return (f"account {account_id!r} has no score in the score history ({len(ids):,} accounts scored); "
            f"for example: {', '.join(map(str, near))}")


# -- the shell: reading the store ---------------------------------------------------------

def read_scores(store: Path) -> pd.DataFrame:
    """The whole score history, or ``ViewError`` telling to run ``churnwatch score`` first."""
    if not Path(store).exists():
        raise ViewError(f"store {store} does not exist: run `churnwatch demo` or `churnwatch features` "
                        "and `churnwatch score` first")
    with connect(Path(store), read_only=True) as con:
        try:
            frame = con.execute("SELECT * FROM score_history ORDER BY as_of, account_id").df()
        except duckdb.CatalogException:
            frame = pd.DataFrame()
    if frame.empty:
        raise ViewError(f"no score history in {store}: run `churnwatch score` first")
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame


def read_profiles(store: Path, settings: Settings | None = None) -> pd.DataFrame:
    """MRR and CRM attributes for every scored (account, as-of): ``account_id, as_of`` + ``PROFILE_COLUMNS``.

    MRR is the snapshot's ``mrr`` feature of the same (account, as-of): the sum of the MRR
    of every subscription term in force at the scoring date, from the contract-checked,
    column-mapped data (``features/timeline.py``), i.e. the figure the model scored. Scores
    whose snapshot row is gone (a full-schedule rebuild drops off-schedule dates) get the
    same figure recomputed from the raw data source (``settings.data``) when there is one.
    """
    with connect(Path(store), read_only=True) as con:
        try:
            frame = con.execute("""
                SELECT h.account_id, h.as_of, s.mrr, s.csm, s.segment, s.industry, s.region,
                       s.account_id IS NOT NULL AS _found
                FROM score_history h LEFT JOIN snapshots s ON s.account_id = h.account_id AND s.as_of = h.as_of
                ORDER BY h.as_of, h.account_id""").df()
        except duckdb.CatalogException:
            frame = pd.DataFrame(columns=["account_id", "as_of", *PROFILE_COLUMNS, "_found"])
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    missing = frame[~frame["_found"].astype(bool)]
    if len(missing) and settings is not None and settings.data:
        dates = sorted(set(missing["as_of"]))
        fresh = profiles_from_source(settings, dates)
        keyed = frame.set_index(["account_id", "as_of"])
        fresh = fresh.set_index(["account_id", "as_of"])
        idx = keyed.index[~keyed["_found"].astype(bool)].intersection(fresh.index)
        for c in PROFILE_COLUMNS:
            keyed[c] = keyed[c].astype(object)
            keyed.loc[idx, c] = fresh.loc[idx, c].astype(object)
        frame = keyed.reset_index()
    return frame.drop(columns="_found")


def profiles_from_source(settings: Settings, dates: list[dt.date]) -> pd.DataFrame:
    """The same MRR (terms in force at each date) and CRM attributes, from the raw data source."""
    from features.pipeline import open_connection, prepare
    from features.timeline import build_spine, build_terms

    con = open_connection()
    try:
        report, _ = prepare(settings.data, settings, con)
        build_terms(con, settings)
        build_spine(con, [d for d in dates if d <= report.data_end], settings, report.data_end)
        return con.execute("""
            SELECT s.account_id, s.as_of, s.mrr, a.csm, a.segment, a.industry, a.region
            FROM spine s LEFT JOIN clean_accounts a USING (account_id)""").df().assign(
            as_of=lambda f: pd.to_datetime(f["as_of"]).dt.date)
    finally:
        con.close()


def load_account_view(store: Path, settings: Settings, account_id: str, lang: str = "en",
                      as_of: dt.date | None = None) -> AccountView:
    """``account_view`` over the store's score history and profiles."""
    history = read_scores(store)
    if account_id not in set(history["account_id"]):
        raise ViewError(_unknown_message(history, account_id))
    profiles = read_profiles(store, settings)
    return account_view(history, account_id, settings, lang, profiles=profiles, as_of=as_of)
