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
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from core.errors import ChurnwatchError
from core.lapse import ended_on, lapsed
from core.scores import history_accounts, history_dates, history_has_rows, history_profiles, history_rows
from core.settings import Settings
from core.store import TABLE_ROWS, connect, has_table
from core.vocabulary import LANGS, TIER_KEYS, TIERS, owner_label, respond_label, tier_label
from features.pipeline import open_connection
from features.subset import load_clean_subset
from features.timeline import build_spine, build_terms
from training.reason_text import category_words

PROFILE_COLUMNS = ("mrr", "csm", "segment", "industry", "region")
#: The profile's categories, worded in the header as reasons word a category (``header_profile``)
HEADER_CATEGORIES = ("segment", "industry", "region")

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
    for t in TIERS:
        if v in (t.key, t.key.removesuffix("_risk"), t.en.lower().replace(" ", "_")) or value.strip() == t.zh:
            return t.key
    raise ViewError(f"--tier {value!r}: use one of {', '.join(TIER_KEYS)} (or high, medium, low)")


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
        from_table: scored from a flat table (``score --table``): there is no MRR column, so
            MRR and the expected MRR loss are not "unknown" but not there at all.
        churned_on / not_active_on: for the account's latest score when a later scoring run did not
            score it (no longer a customer), the day it stopped being one and that run's date, by
            the published answers' rule (``core.lapse.churn_days``); else None.
        grace_days: set when that day is within the labels' grace period before the run
            (``core.lapse.lapsed``): a lapse a late renewal still undoes, as the API says.
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
    from_table: bool = False
    churned_on: dt.date | None = None
    not_active_on: dt.date | None = None
    grace_days: int | None = None

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
    def header(self) -> dict:
        """``profile`` as the header shows it (``header_profile``)."""
        return header_profile(self.profile)

    @property
    def health_change(self) -> int | None:
        return None if self.previous is None else int(self.health_score) - int(self.previous["health_score"])


def header_profile(profile: dict) -> dict:
    """The profile as an account's header shows it, in either language: a category of
    ``HEADER_CATEGORIES`` as reasons word it (an export's code ``COMPUTER_SOFTWARE`` is "computer
    software", ``training.reason_text.category_words``; ``EMEA`` stays), the CSM's name and MRR as
    stored. ``AccountView.profile`` keeps the stored values."""
    return {k: category_words(v) if k in HEADER_CATEGORIES and v not in (None, "") else v
            for k, v in profile.items()}


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
            "respond_within": respond_label(row["respond_within"], lang,
                                            None if book is None else book.respond_within_hours)}


def _dates(values: pd.Series) -> pd.Series:
    """``values`` as ``datetime.date`` objects; no conversion when they already are (``read_scores``)."""
    first = values.iloc[0] if len(values) else None
    if isinstance(first, dt.date) and not isinstance(first, dt.datetime):
        return values
    return pd.to_datetime(values).dt.date


def account_view(history: pd.DataFrame, account_id: str, settings: Settings, lang: str = "en",
                 profiles: pd.DataFrame | None = None, as_of: dt.date | None = None,
                 trend_points: int = 26, from_table: bool = False) -> AccountView:
    """The view of ``account_id`` on ``as_of`` (default: its latest score); pure.

    Args:
        history: score-history rows (any accounts; see ``serving/batch.py``). Callers that
            build many views pass each account's own rows (``read_scores(accounts=...)``
            grouped by account), so no call scans every account's rows.
        profiles: optional rows ``account_id, as_of`` + ``PROFILE_COLUMNS`` (``read_profiles``).
        trend_points: how many of the latest scores the trend keeps.
        from_table: the score came from a flat table (``scored_from_table``): no MRR column.

    Raises:
        ViewError: the account has no score (on or before ``as_of``).
    """
    lang = normalise_lang(lang)
    rows = history[history["account_id"] == account_id]
    rows = rows.assign(_d=_dates(rows["as_of"]))
    if as_of is not None:
        rows = rows[rows["_d"] <= as_of]
    if rows.empty:
        ids = sorted(history["account_id"].unique())
        raise ViewError(_unknown_message(ids, account_id, as_of if account_id in ids else None))
    rows = rows.sort_values("_d")
    last = rows.iloc[-1]
    prev = rows.iloc[-2] if len(rows) > 1 else None
    suffix = "zh" if lang == "zh-CN" else "en"
    profile: dict = {}
    if profiles is not None and not profiles.empty:
        p = profiles[profiles["account_id"] == account_id]
        p = p[_dates(p["as_of"]) == last["_d"]] if len(p) else p
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
        profile=profile, lang=lang, from_table=from_table)


def _unknown_message(ids: list[str], account_id: str, as_of: dt.date | None = None) -> str:
    """Why ``account_id`` has no view: not scored at all (with examples), or not on or before ``as_of``."""
    if not ids:
        return "the score history is empty: run `churnwatch score` first"
    if as_of is not None and account_id in ids:
        return f"account {account_id!r} has no score on or before {as_of}"
    near = [i for i in ids if account_id.lower() in str(i).lower()][:3] or ids[:3]
    return (f"account {account_id!r} has no score in the score history ({len(ids):,} accounts scored); "
            f"for example: {', '.join(map(str, near))}")


# -- the shell: reading the store ---------------------------------------------------------

#: The score-history columns the portfolio figures need (no JSON reason columns).
PORTFOLIO_COLUMNS = ("account_id", "as_of", "churn_probability", "health_score", "tier", "model_version")


def _open_scores(store: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to ``store`` with a non-empty ``score_history``, or ``ViewError``."""
    if not Path(store).exists():
        raise ViewError(f"store {store} does not exist: run `churnwatch demo` or `churnwatch features` "
                        "and `churnwatch score` first")
    con = connect(Path(store), read_only=True)
    scored = history_has_rows(con)
    if not scored:
        con.close()
        raise ViewError(f"no score history in {store}: run `churnwatch score` first")
    return con


def scoring_dates(store: Path) -> list[dt.date]:
    """The dates with scores, oldest first (``ViewError`` when there are none)."""
    with _open_scores(store) as con:
        return history_dates(con)


def scored_from_table(store: Path, as_of: dt.date, account_id: str | None = None) -> bool:
    """True when the scores of ``as_of`` (of ``account_id`` only, when given) came from a flat table:
    ``score --table`` keeps their feature values in ``table_rows``, and a table has no MRR column."""
    with connect(Path(store), read_only=True) as con:
        if not has_table(con, TABLE_ROWS):
            return False
        cond, params = ("as_of = ?", [as_of]) if account_id is None else (
            "as_of = ? AND account_id = ?", [as_of, str(account_id)])
        return con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {TABLE_ROWS} WHERE {cond} LIMIT 1)",
                           params).fetchone()[0] > 0


def read_scores(store: Path, *, accounts: list[str] | None = None, dates: list[dt.date] | None = None,
                until: dt.date | None = None, last: int | None = None,
                columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Score-history rows, filtered in SQL (all of them without filters; ``as_of`` as ``datetime.date``).

    Args:
        accounts / dates: only these accounts / scoring dates.
        until: only scores on or before this date.
        last: only each account's ``last`` latest scores (after the other filters).
        columns: only these columns (default: all, including the four JSON reason columns).

    Raises:
        ViewError: no store or no score history (an empty result of the filters is no error).
    """
    with _open_scores(store) as con:
        frame = history_rows(con, accounts=accounts, dates=dates, until=until, last=last, columns=columns)
    if "as_of" in frame.columns:
        frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame


def read_profiles(store: Path, settings: Settings | None = None, *, accounts: list[str] | None = None,
                  dates: list[dt.date] | None = None) -> pd.DataFrame:
    """MRR and CRM attributes for scored (account, as-of) pairs: ``account_id, as_of`` + ``PROFILE_COLUMNS``.

    ``accounts`` / ``dates`` restrict the pairs (filtered in SQL, on both tables). MRR is
    the snapshot's ``mrr`` feature of the same (account, as-of): the sum of the MRR of
    every subscription term in force at the scoring date, from the contract-checked,
    column-mapped data (``features/timeline.py``), i.e. the figure the model scored.
    Scores whose snapshot row is gone (a full-schedule rebuild drops off-schedule dates)
    get the same figure recomputed from the raw data source (``settings.data``) when there
    is one, reading only those accounts (``profiles_from_source``).
    """
    with _open_scores(store) as con:
        frame = history_profiles(con, PROFILE_COLUMNS, accounts=accounts, dates=dates)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    found = frame["_found"].astype(bool)
    if (~found).any() and settings is not None and settings.data:
        missing = frame[~found]
        fresh = profiles_from_source(settings, sorted(set(missing["account_id"])), sorted(set(missing["as_of"])))
        keyed = frame.set_index(["account_id", "as_of"])
        fresh = fresh.set_index(["account_id", "as_of"])
        idx = keyed.index[~keyed["_found"].astype(bool)].intersection(fresh.index)
        for c in PROFILE_COLUMNS:
            keyed[c] = keyed[c].astype(object)
            keyed.loc[idx, c] = fresh.loc[idx, c].astype(object)
        frame = keyed.reset_index()
    return frame.drop(columns="_found")


def profiles_from_source(settings: Settings, accounts: list[str], dates: list[dt.date]) -> pd.DataFrame:
    """The same MRR (terms in force at each date) and CRM attributes, from the raw data source,
    for ``accounts`` only (their subscriptions and accounts rows; the event log is not read)."""
    con = open_connection()
    try:
        load_clean_subset(con, settings, accounts, {"accounts": (None, None), "subscriptions": (None, None)})
        build_terms(con, settings)
        build_spine(con, list(dates), settings, max(dates))  # the data end only sets labels, unused here
        return con.execute("""
            SELECT s.account_id, s.as_of, s.mrr, a.csm, a.segment, a.industry, a.region
            FROM spine s LEFT JOIN clean_accounts a USING (account_id)""").df().assign(
            as_of=lambda f: pd.to_datetime(f["as_of"]).dt.date)
    finally:
        con.close()


def load_account_view(store: Path, settings: Settings, account_id: str, lang: str = "en",
                      as_of: dt.date | None = None, trend_points: int = 26) -> AccountView:
    """``account_view`` of one account: reads only its latest ``trend_points`` scores (on or before
    ``as_of``) and the profile of the view's date."""
    history = read_scores(store, accounts=[account_id], until=as_of, last=max(int(trend_points), 2))
    if history.empty:
        with _open_scores(store) as con:
            ids = history_accounts(con)
        raise ViewError(_unknown_message(ids, account_id, as_of))
    day = max(history["as_of"])
    profiles = read_profiles(store, settings, accounts=[account_id], dates=[day])
    view = account_view(history, account_id, settings, lang, profiles=profiles, as_of=as_of,
                        trend_points=trend_points, from_table=scored_from_table(store, day, account_id))
    if as_of is None and not view.from_table:  # its latest score: is it still a customer?
        view.churned_on, view.not_active_on = _no_longer_active(store, account_id, view.as_of)
        grace = dt.timedelta(days=int(settings.grace_days))
        if lapsed(view.churned_on, view.not_active_on, grace):
            view.grace_days = grace.days
    return view


def _no_longer_active(store: Path, account_id: str, day: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """(the day the account stopped being a customer, the newest scoring date) when the newest scoring
    run did not score it; else (None, None). A probe's ``explain`` said "High risk, respond within 4
    hours" of an account that had churned three months before the newest run."""
    with _open_scores(store) as con:
        newest = history_dates(con)[-1]
    if day >= newest:
        return None, None
    return ended_on(store, {account_id: day}, newest)[account_id], newest
