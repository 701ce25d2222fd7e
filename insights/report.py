"""The portfolio report for customer-success managers (ARTICLE §3–§4, DESIGN §8 ``report``).

One self-contained HTML file: CSS inline, charts as inline SVG (the SHAP waterfalls the scoring run kept drawn
as the workspace draws them, ``insights.waterfall_chart``; a base64 PNG of ``shap.plots.waterfall`` for a score
kept without one), no external URL. A portfolio page (accounts, MRR and MRR at risk per tier, CSM and
segment; the top accounts by expected MRR loss; tier movements since the previous
scoring; open retention tasks) and a page per account (health trend, SHAP waterfall,
reasons with their actual values, recent raw signals, playbook).

Definitions:

* ``mrr``: MRR of the subscription terms in force at the scoring date (see
  ``insights.explain.read_profiles``).
* ``expected_mrr_loss = mrr x churn_probability`` (calibrated probability of churning
  within the model's horizon); **MRR at risk** of a group is the sum over its accounts.

The figures are pure functions over frames (``portfolio_frame``, ``mrr_by``,
``top_accounts``, ``tier_movements``); ``build_report`` is the shell that reads the store
and the raw data and writes the file.

Over 400 lines: the report's figures, its two inline chart renderers and the Chinese
wording of the raw signals belong to this one page; a next split would move the charts
(``trend_svg``, ``bars_svg``, ``waterfall_png``) to their own module.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

import insights.waterfall_chart as charts
from core.files import atomic_write_text
from core.plotfonts import plot_fonts
from core.progress import Reporter, StepCallback, track
from core.settings import Settings
from core.store import HISTORY, META, SNAPSHOTS, connect, feature_rows, has_table, read_horizon, snapshot_columns
from core.vocabulary import (
    TIER_COLOURS,
    TIER_KEYS,
    TIER_RANK,
    owner_label,
    probability_text,
    tier_bands,
    tier_label,
)
from features.pipeline import open_connection
from features.spec import STANDING_REQUEST, family_key, passive_types
from features.subset import load_clean_subset
from features.timeline import owed
from insights.explain import (
    PORTFOLIO_COLUMNS,
    AccountView,
    ViewError,
    account_view,
    normalise_lang,
    normalise_tier,
    read_profiles,
    read_scores,
    scored_from_table,
    scoring_dates,
)
from serving.waterfalls import waterfall_join
from training.reason_text import category_words
from training.reasons import contributions
from workflow.facts import display_name

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


# -- the figures: pure functions over frames ----------------------------------------------

def portfolio_frame(history: pd.DataFrame, profiles: pd.DataFrame, as_of: dt.date,
                    placeholder: str = "(none)") -> pd.DataFrame:
    """Scores of ``as_of`` with MRR, CRM attributes and ``expected_mrr_loss`` (one row per account).

    A missing CSM, segment, industry or region reads ``placeholder`` (the report passes its
    language's word); an unknown MRR stays NaN, so it is left out of every MRR sum.
    """
    day = history[history["as_of"] == as_of]
    prof = profiles[profiles["as_of"] == as_of].drop(columns="as_of")
    frame = day.merge(prof, on="account_id", how="left")
    frame["mrr"] = pd.to_numeric(frame["mrr"], errors="coerce")
    frame["expected_mrr_loss"] = frame["mrr"] * frame["churn_probability"]
    for c in ("csm", "segment", "industry", "region"):
        frame[c] = frame[c].astype(object).where(frame[c].notna(), placeholder)
    return frame.reset_index(drop=True)


def asked_to_cancel(store: Path, as_of: dt.date, frame: pd.DataFrame) -> pd.DataFrame:
    """The accounts of ``frame`` (``portfolio_frame``) whose cancellation request stands on ``as_of``, the
    soonest term end first, with ``days_to_term_end``: empty where the store has no such feature (no
    ``cancel_request`` role) or no snapshot of that date.

    Their risk within the horizon is what the model says; one whose term ends after the horizon can score
    healthy (it leaves later than the label looks), yet it asked to leave, and the save call is due before
    its term ends (a probe's Stripe export, 2026-12-06: 94 of 139 such accounts healthy on the data end)."""
    with connect(store, read_only=True) as con:
        columns = snapshot_columns(con) if has_table(con, SNAPSHOTS) else []
        if STANDING_REQUEST not in columns:
            return frame.iloc[:0].assign(days_to_term_end=pd.Series(dtype="float64"))
        end = "days_to_term_end" if "days_to_term_end" in columns else "CAST(NULL AS INTEGER) AS days_to_term_end"
        rows = con.execute(f"SELECT account_id, {end} FROM {SNAPSHOTS} WHERE as_of = ? AND {STANDING_REQUEST} = 1",
                           [as_of]).df()
    out = frame.merge(rows, on="account_id", how="inner")
    out["days_to_term_end"] = pd.to_numeric(out["days_to_term_end"], errors="coerce")
    return out.sort_values(["days_to_term_end", "account_id"], na_position="last").reset_index(drop=True)


def mrr_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per value of ``column``: accounts, mrr, mrr_at_risk, share_at_risk, high_risk accounts.

    Tiers come in tier order with every tier present; other columns by MRR at risk, largest first.
    """
    g = frame.groupby(column, dropna=False)
    out = pd.DataFrame({
        "accounts": g.size(),
        "mrr": g["mrr"].sum(),
        "mrr_at_risk": g["expected_mrr_loss"].sum(),
        "high_risk": g["tier"].apply(lambda t: int((t == "high_risk").sum())),
        "mean_health": g["health_score"].mean(),
    })
    if column == "tier":
        out = out.reindex(list(TIER_KEYS)).fillna({"accounts": 0, "mrr": 0.0, "mrr_at_risk": 0.0, "high_risk": 0})
    else:
        out = out.sort_values("mrr_at_risk", ascending=False)
    out["accounts"] = out["accounts"].astype(int)
    out["high_risk"] = out["high_risk"].astype(int)
    out["share_at_risk"] = np.where(out["mrr"] > 0, out["mrr_at_risk"] / out["mrr"].where(out["mrr"] > 0), 0.0)
    return out.reset_index().rename(columns={"index": column})


def top_accounts(frame: pd.DataFrame, n: int, tier: str | None = None) -> pd.DataFrame:
    """The ``n`` accounts with the largest expected MRR loss (ties: lower health first); with no
    MRR known at all (a flat table's scores), the ``n`` with the highest churn probability."""
    rows = frame if tier is None else frame[frame["tier"] == tier]
    if not frame["expected_mrr_loss"].notna().any():
        return rows.sort_values(["churn_probability", "account_id"], ascending=[False, True]).head(n) \
            .reset_index(drop=True)
    return rows.sort_values(["expected_mrr_loss", "health_score", "account_id"],
                            ascending=[False, True, True], na_position="last").head(n).reset_index(drop=True)


@dataclass
class Movements:
    """Tier changes between the previous scoring date and ``as_of``.

    ``matrix``: previous tier (rows, plus ``new``) x current tier (columns) account counts;
    ``changes``: one row per account whose tier changed: account_id, from_tier, to_tier,
    worse (bool), health_before, health_now; ``gone``: accounts scored before, not now.
    """

    previous_as_of: dt.date | None
    matrix: pd.DataFrame | None = None
    changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    gone: int = 0


def tier_movements(history: pd.DataFrame, as_of: dt.date) -> Movements:
    """``Movements`` from the latest scoring date before ``as_of`` (none: ``previous_as_of`` None)."""
    dates = sorted(d for d in set(history["as_of"]) if d < as_of)
    if not dates:
        return Movements(previous_as_of=None)
    prev_day = dates[-1]
    now = history[history["as_of"] == as_of][["account_id", "tier", "health_score"]]
    before = history[history["as_of"] == prev_day][["account_id", "tier", "health_score"]]
    both = now.merge(before, on="account_id", how="left", suffixes=("", "_before"))
    both["tier_before"] = both["tier_before"].fillna("new")
    matrix = pd.crosstab(both["tier_before"], both["tier"]).reindex(
        index=[*TIER_KEYS, "new"], columns=list(TIER_KEYS), fill_value=0)
    changed = both[(both["tier_before"] != "new") & (both["tier_before"] != both["tier"])].copy()
    changed["worse"] = changed["tier"].map(TIER_RANK) > changed["tier_before"].map(TIER_RANK)
    changes = changed.rename(columns={"tier_before": "from_tier", "tier": "to_tier",
                                      "health_score_before": "health_before", "health_score": "health_now"})
    changes = changes[["account_id", "from_tier", "to_tier", "worse", "health_before", "health_now"]]
    gone = int((~before["account_id"].isin(now["account_id"])).sum())
    return Movements(previous_as_of=prev_day, matrix=matrix, changes=changes.reset_index(drop=True), gone=gone)


# -- charts: inline SVG and base64 PNG ------------------------------------------------------

def trend_svg(trend: pd.DataFrame, width: int = 560, height: int = 170) -> Markup:
    """Health over the scoring dates, on the fixed 0–100 scale with the tier bands shaded
    (SVG markup built here, every text in it escaped: the template needs no ``|safe``)."""
    left, right, top, bottom = 34, 12, 10, 26
    w, h = width - left - right, height - top - bottom

    def y(v: float) -> float:
        return top + h * (1 - v / 100)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    for lo, hi, tier in tier_bands():
        parts.append(f'<rect x="{left}" y="{y(hi):.1f}" width="{w}" height="{y(lo) - y(hi):.1f}" '
                     f'fill="{TIER_COLOURS[tier]}" fill-opacity="0.08"/>')
    for v in (0, 40, 60, 80, 100):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ccc" '
                     f'stroke-width="0.6"/><text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                     f'class="axis">{v}</text>')
    n = len(trend)
    xs = [left + (w / 2 if n == 1 else w * i / (n - 1)) for i in range(n)]
    pts = [(x, y(float(v))) for x, v in zip(xs, trend["health_score"])]
    if n > 1:
        parts.append('<polyline fill="none" stroke="#37474f" stroke-width="1.8" points="'
                     + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
    for (a, b), r in zip(pts, trend.itertuples()):
        parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.2" fill="{TIER_COLOURS.get(r.tier, "#555")}">'
                     f'<title>{html.escape(str(r.as_of))}: {int(r.health_score)}</title></circle>')
    labels = {0, n - 1} | ({n // 2} if n > 4 else set())
    for i in sorted(labels):
        if 0 <= i < n:
            anchor = "start" if i == 0 and n > 1 else ("end" if i == n - 1 and n > 1 else "middle")
            parts.append(f'<text x="{xs[i]:.1f}" y="{height - 8}" text-anchor="{anchor}" class="axis">'
                         f'{html.escape(str(trend["as_of"].iloc[i]))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bars_svg(labels: list[str], values: list[float], width: int = 560, height: int = 120,
             colour: str = "#1565c0") -> Markup:
    """A small bar chart (e.g. logins per week), values printed over the bars (escaped SVG markup)."""
    left, top, bottom = 8, 14, 22
    n = max(len(values), 1)
    w = (width - 2 * left) / n
    vmax = max([*values, 1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    for i, (lab, v) in enumerate(zip(labels, values)):
        bh = (height - top - bottom) * v / vmax
        x = left + i * w
        parts.append(f'<rect x="{x + 2:.1f}" y="{height - bottom - bh:.1f}" width="{w - 4:.1f}" '
                     f'height="{bh:.1f}" fill="{colour}" rx="2"/>')
        parts.append(f'<text x="{x + w / 2:.1f}" y="{height - bottom - bh - 3:.1f}" text-anchor="middle" '
                     f'class="axis">{int(v)}</text>')
        if i % 2 == 0 or n <= 8:
            parts.append(f'<text x="{x + w / 2:.1f}" y="{height - 6}" text-anchor="middle" class="axis">'
                         f'{html.escape(lab)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def waterfall_png(contrib: np.ndarray, names: list[str], values: list[object], max_display: int = 10,
                  dpi: int = 72) -> str:
    """``shap.plots.waterfall`` of one row's LightGBM ``pred_contrib`` (log-odds; bias last), base64 PNG.

    (PNG rather than SVG: matplotlib's SVG writes text as paths, twice the bytes and slower.)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    data = np.array(["n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values],
                    dtype=object)
    explanation = shap.Explanation(values=np.asarray(contrib[:-1], dtype=float), base_values=float(contrib[-1]),
                                   data=data, feature_names=list(names))
    with plt.rc_context(plot_fonts()):
        shap.plots.waterfall(explanation, max_display=max_display, show=False)
        fig = plt.gcf()
        fig.set_size_inches(7.6, 0.42 * (max_display + 1) + 0.9)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# -- raw signals ----------------------------------------------------------------------------

def raw_signals(settings: Settings, account_ids: list[str], as_of: dt.date, weeks: int = 12,
                recent: int = 5) -> dict[str, dict[str, pd.DataFrame]] | None:
    """Per account: ``logins`` (per week, last ``weeks`` weeks before ``as_of``), the latest
    ``recent`` ``tickets`` and ``invoices`` opened / issued before ``as_of``, and ``absent``: which of
    the three tables the source lacks; None without a data source.

    Logins are events of the ``login`` role (all product events when no role is configured).
    """
    if not settings.data or not account_ids:
        return None

    logins = list(settings.event_roles.login)
    start = as_of - dt.timedelta(days=7 * weeks)
    con = open_connection()
    try:
        # only these accounts' rows, events of the last `weeks` weeks: not the whole source
        present = load_clean_subset(con, settings, list(account_ids), {
            "events": (start, as_of), "tickets": (None, as_of), "invoices": (None, as_of)})
        kind = "event_type IN (SELECT unnest(?))" if logins else "TRUE"
        params = [list(logins)] if logins else []
        ev = con.execute(f"""
            SELECT account_id, CAST(floor(date_diff('day', CAST(occurred_at AS DATE), ?::DATE - 1) / 7) AS INTEGER)
                   AS weeks_ago, event_type, count(*) AS n
            FROM clean_events WHERE account_id IN (SELECT account_id FROM wanted) AND {kind}
              AND occurred_at < ?::DATE AND occurred_at >= ?::DATE GROUP BY ALL""",
                         [as_of, *params, as_of, start]).df()
        # the product's events: a cancellation request or a marketing e-mail is no use of it (PASSIVE_ROLES; a
        # probe's billing-only export plotted a customer's one cancellation request as product activity)
        passive = {family_key(t) for t in passive_types(settings.event_roles)}
        if passive and len(ev):
            ev = ev[np.array([family_key(str(t)) not in passive for t in ev["event_type"]], dtype=bool)]
        ev = ev.groupby(["account_id", "weeks_ago"], as_index=False)["n"].sum()
        tickets = con.execute("""
            SELECT account_id, opened_at, resolved_at, priority, csat, category FROM clean_tickets
            WHERE account_id IN (SELECT account_id FROM wanted) AND opened_at < ?::DATE
            QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY opened_at DESC) <= ?
            ORDER BY account_id, opened_at DESC""", [as_of, recent]).df()
        invoices = con.execute(f"""
            SELECT account_id, issued_at, due_at, CASE WHEN paid_at < ?::DATE THEN paid_at END AS paid_at,
                   CASE WHEN written_off_at < ?::DATE THEN written_off_at END AS written_off_at, amount
            FROM clean_invoices WHERE account_id IN (SELECT account_id FROM wanted) AND issued_at < ?::DATE
              AND {owed()}  -- a correction voided at issue: never owed, not listed as unpaid
            QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY issued_at DESC) <= ?
            ORDER BY account_id, issued_at DESC""", [as_of, as_of, as_of, recent]).df()
    finally:
        con.close()
    for c in ("issued_at", "due_at", "paid_at", "written_off_at"):
        invoices[c] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in invoices[c]]
    ev_by, tickets_by, invoices_by = (dict(tuple(f.groupby("account_id"))) for f in (ev, tickets, invoices))
    week_start = [as_of - dt.timedelta(days=7 * (k + 1)) for k in range(weeks)]
    out = {}
    for acc in account_ids:
        mine = ev_by.get(acc, ev.iloc[:0])
        counts = mine.set_index("weeks_ago")["n"].reindex(range(weeks), fill_value=0)
        frame = pd.DataFrame({"week_start": week_start, "logins": counts.to_numpy()}).iloc[::-1]
        out[acc] = {"logins": frame.reset_index(drop=True),
                    "tickets": tickets_by.get(acc, tickets.iloc[:0]).reset_index(drop=True),
                    "invoices": invoices_by.get(acc, invoices.iloc[:0]).reset_index(drop=True),
                    "login_role": bool(logins),
                    # a table the source lacks is "not in the source", not "none"
                    "absent": {t for t in ("events", "tickets", "invoices") if t not in present}}
    return out


# -- the report -----------------------------------------------------------------------------

@dataclass
class ReportResult:
    """What ``build_report`` wrote and how long it took."""

    path: Path
    as_of: dt.date
    previous_as_of: dt.date | None
    accounts: int
    pages: int
    mrr_at_risk: float
    seconds: float
    bytes: int
    tier: str | None = None
    waterfalls: int = 0
    from_table: bool = False  # scored from a flat table (``score --table``): customers, not accounts
    mrr_known: int = 0  # scores with a known MRR; 0: no MRR at all, MRR at risk not computed
    asked: int = 0  # accounts whose cancellation request stands (``asked_to_cancel``)
    asked_later: int = 0  # of them, those whose term ends after the horizon


def _fmt_money(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:,.0f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = _fmt_money
    env.filters["pct"] = lambda v, d=1: "–" if v is None or v != v else f"{v:.{d}%}"
    env.filters["probability"] = probability_text
    env.filters["num"] = lambda v: "–" if v is None or v != v else f"{v:,.0f}"
    env.filters["words"] = category_words  # a category as the reasons word it (COMPUTER_SOFTWARE)
    return env


def _account_page(view: AccountView, signals: dict | None, waterfall: str | Markup | None) -> dict:
    """``waterfall``: the kept waterfall drawn as SVG (``Markup``), or matplotlib's base64 PNG, or None."""
    return {"view": view, "trend_svg": trend_svg(view.trend),
            "waterfall_svg": waterfall if isinstance(waterfall, Markup) else None,
            "waterfall": None if isinstance(waterfall, Markup) else waterfall,
            "signals": signals,
            "logins_svg": None if signals is None or "events" in signals["absent"] else bars_svg(
                [f"{d:%m-%d}" for d in signals["logins"]["week_start"]], list(signals["logins"]["logins"]))}


def build_report(store: Path, settings: Settings, out: Path, *, lang: str = "en", tier: str | None = None,
                 top: int = 50, accounts: list[str] | None = None, as_of: dt.date | None = None,
                 bundle=None, open_tasks: pd.DataFrame | None = None, generated_at: dt.datetime | None = None,
                 progress: Reporter | StepCallback | None = None) -> ReportResult:
    """Render the report to ``out`` (one self-contained HTML file).

    Args:
        store: the DuckDB store with ``score_history`` (and ``snapshots``).
        tier: limit the top list and the account pages to one tier (any spelling
            ``normalise_tier`` accepts); the portfolio totals stay whole.
        top: account pages for the ``top`` accounts by expected MRR loss; ``accounts`` adds more.
        as_of: the scoring date (default: the latest in the history).
        bundle: the ``ModelBundle`` that scored ``as_of`` (for the SHAP waterfalls); None: no waterfalls.
        open_tasks: open retention tasks (``workflow.tasks.open_tasks_frame``); None: none shown.
        progress: counts the SHAP waterfalls drawn (``core.progress``).

    Raises:
        ViewError: no score history, an unknown account, tier, language or date.
    """
    t0 = time.perf_counter()
    lang = normalise_lang(lang)
    tier = normalise_tier(tier) if tier else None
    strings = STRINGS[lang]
    out = Path(out)
    if out.is_dir():
        raise ViewError(f"--out {out} is a folder: give a file name, e.g. {out / 'churn-report.html'}")
    dates = scoring_dates(store)
    if as_of is None:
        as_of = dates[-1]
    elif as_of not in dates:
        raise ViewError(f"no scores as of {as_of}; scored dates: {', '.join(map(str, dates[-5:]))}")
    before = [d for d in dates if d < as_of]
    # the portfolio: this date and the previous one (tier movements), without the reason columns
    history = read_scores(store, dates=[*before[-1:], as_of], columns=PORTFOLIO_COLUMNS)
    profiles = read_profiles(store, settings, dates=[as_of])
    none = strings["no_value"]
    frame = portfolio_frame(history, profiles, as_of, placeholder=none)
    from_table, has_mrr = scored_from_table(store, as_of), bool(frame["mrr"].notna().any())
    if from_table:
        strings = {**strings, **TABLE_STRINGS[lang]}
    unknown = [a for a in accounts or [] if a not in set(frame["account_id"])]
    if unknown:
        raise ViewError(f"--account {unknown[0]!r} has no score as of {as_of} "
                        f"({len(frame):,} accounts scored then)")
    ranked = top_accounts(frame, top, tier)
    page_ids = list(dict.fromkeys([*ranked["account_id"], *(accounts or [])]))
    # the account pages: each page account's latest scores up to as_of, grouped once
    trend_points = 26
    trends = read_scores(store, accounts=page_ids, until=as_of, last=trend_points) if page_ids else history
    by_account = dict(tuple(trends.groupby("account_id")))
    profile_of = dict(tuple(profiles.groupby("account_id")))
    views = [account_view(by_account[a], a, settings, lang, profiles=profile_of.get(a), as_of=as_of,
                          trend_points=trend_points, from_table=from_table) for a in page_ids]
    log.info("report: %d account pages", len(views))
    signals = raw_signals(settings, page_ids, as_of) if page_ids else None
    # the waterfalls the scoring run kept, drawn as the workspace draws them; a PNG for a score kept without one
    kept = kept_waterfalls(store, as_of, page_ids)
    waterfalls: dict[str, str | Markup] = {
        v.account_id: charts.waterfall_svg(charts.waterfall_chart(kept[v.account_id], lang, v.reasons + v.strengths),
                                           lang) for v in views if v.account_id in kept}
    waterfalls.update(_waterfalls(store, bundle, [a for a in page_ids if a not in kept], as_of, progress))
    movements = tier_movements(history, as_of)
    asked = pd.DataFrame() if from_table else asked_to_cancel(store, as_of, frame)
    horizon = _horizon_days(store)
    asked_later = int((asked["days_to_term_end"] > horizon).sum()) if len(asked) and horizon else 0
    tasks = open_tasks if open_tasks is not None else pd.DataFrame()
    views_by_id = {v.account_id: v for v in views}
    context = {
        "t": strings, "lang": lang, "as_of": as_of, "tier": tier,
        "tier_filter": tier_label(tier, lang) if tier else None,
        "generated_at": (generated_at or dt.datetime.now()).strftime("%Y-%m-%d %H:%M"),
        "model_version": ", ".join(sorted(set(frame["model_version"].astype(str)), key=version_key)),
        "horizon_days": horizon, "totals": _totals(frame),
        "asked": asked.head(100).to_dict(orient="records"), "asked_total": len(asked),
        "asked_later": asked_later,
        "by_tier": mrr_by(frame, "tier").to_dict(orient="records"),
        # a CRM column the data does not have gets no section (a consumer export's "By customer-success manager"
        # held one row, blank)
        "by_csm": mrr_by(frame, "csm").to_dict(orient="records") if (frame["csm"] != none).any() else [],
        "by_segment": mrr_by(frame, "segment").to_dict(orient="records") if (frame["segment"] != none).any() else [],
        "top": [{**r, "view": views_by_id[r["account_id"]]} for r in ranked.head(25).to_dict(orient="records")],
        "top_count": len(ranked), "movements": movements,
        "worse": movements.changes[movements.changes["worse"]].merge(
            frame[["account_id", "expected_mrr_loss"]], on="account_id", how="left").sort_values(
            "expected_mrr_loss", ascending=False).head(15).to_dict(orient="records") if len(movements.changes) else [],
        "tasks": tasks.head(20).to_dict(orient="records"), "tasks_total": len(tasks),
        "pages": [_account_page(v, None if signals is None else signals.get(v.account_id),
                                waterfalls.get(v.account_id)) for v in views],
        "tiers": TIER_KEYS, "colours": TIER_COLOURS, "tier_label": lambda k: tier_label(k, lang),
        "owner_label": lambda o: owner_label(o, lang),
        "priority_label": lambda p: _label(p, PRIORITY_ZH if lang == "zh-CN" else {}),
        "category_label": lambda c: _label(c, CATEGORY_ZH if lang == "zh-CN" else {}),
        "page_ids": set(page_ids), "has_bundle": bundle is not None, "has_data": signals is not None,
        "has_mrr": has_mrr,
        # the data source's display name beside each id (email.name_column; None: the id alone)
        "account_name": lambda a: display_name(settings, a),
        # CSM, segment, industry and region: none known (a flat table's scores) -> their columns are left out
        "has_crm": bool(frame[["csm", "segment", "industry", "region"]].ne(strings["no_value"]).any().any()),
    }
    text = _environment().get_template("report.html.j2").render(**context)
    atomic_write_text(out, text)  # whole or not at all: StorageError naming the file
    return ReportResult(path=out, as_of=as_of, previous_as_of=movements.previous_as_of, accounts=len(frame),
                        pages=len(views), mrr_at_risk=float(frame["expected_mrr_loss"].sum()),
                        seconds=time.perf_counter() - t0, bytes=out.stat().st_size, tier=tier,
                        waterfalls=len(waterfalls), from_table=from_table,
                        mrr_known=int(frame["mrr"].notna().sum()), asked=len(asked), asked_later=asked_later)


def version_key(version: str) -> tuple:
    """Model versions in numeric order ("9" before "10"); non-numbers after, alphabetically."""
    return (0, int(version), "") if str(version).isdigit() else (1, 0, str(version))


def _label(value: object, labels: dict[str, str]) -> str:
    """A ticket field for display: ``–`` when missing (None, NaN, empty), the translation when known."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or str(value).strip() == "":
        return "–"
    return labels.get(str(value).strip().lower(), str(value))


def _totals(frame: pd.DataFrame) -> dict:
    return {"accounts": len(frame), "mrr": float(frame["mrr"].sum()),
            "mrr_at_risk": float(frame["expected_mrr_loss"].sum()),
            "at_risk_accounts": int(frame["tier"].isin(["medium_risk", "high_risk"]).sum()),
            "high_risk": int((frame["tier"] == "high_risk").sum()),
            "mean_health": float(frame["health_score"].mean()),
            "no_mrr": int(frame["mrr"].isna().sum())}


def _horizon_days(store: Path) -> int | None:
    """The store's labelling horizon; None for a store scored only from a flat table (no snapshots)."""
    with connect(store, read_only=True) as con:
        if not has_table(con, META):
            return None
    return read_horizon(store).horizon_days


def kept_waterfalls(store: Path, as_of: dt.date, account_ids: list[str]) -> dict[str, dict]:
    """The waterfalls (``serving.waterfalls``) the scoring run kept for these accounts' scores of ``as_of``:
    only one whose probability is that score's (``insights.waterfall_chart.matches``)."""
    if not account_ids:
        return {}
    with connect(Path(store), read_only=True) as con:
        select, join = waterfall_join(con)
        rows = con.execute(f"SELECT h.account_id, h.churn_probability, {select} FROM {HISTORY} h {join} "
                           "WHERE h.as_of = ? AND h.account_id IN (SELECT unnest(?))",
                           [as_of, list(account_ids)]).fetchall()
    out = {}
    for account, probability, raw in rows:
        data = charts.parse(raw)
        if data is not None and charts.matches(data, {"churn_probability": probability}):
            out[account] = data
    return out


def _waterfalls(store: Path, bundle, account_ids: list[str], as_of: dt.date,
                progress: Reporter | StepCallback | None = None) -> dict[str, str]:
    """SHAP waterfalls (base64 PNG, ``shap.plots.waterfall``) for the accounts' snapshot rows of ``as_of``: for
    scores kept without their waterfall (``kept_waterfalls``: scored before the runs kept them)."""
    if bundle is None or not account_ids:
        return {}
    rows = feature_rows(Path(store), bundle.meta.get("kind") == "table", as_of, list(account_ids))
    if rows.empty:
        return {}
    names = bundle.frame.names
    contrib = contributions(bundle.booster, bundle.frame.matrix(rows))
    values = rows[names].to_numpy(dtype=object)
    pages = track(progress, list(enumerate(rows["account_id"])), f"SHAP waterfalls for {len(rows):,} account pages")
    return {acc: waterfall_png(contrib[i], names, list(values[i])) for i, acc in pages}


#: Ticket priorities (contract: low / normal / high / urgent) and the demo's categories, in Chinese;
#: other values are shown as they are.
PRIORITY_ZH = {"low": "低", "normal": "普通", "medium": "中", "high": "高", "urgent": "紧急"}
CATEGORY_ZH = {"billing": "账单", "bug": "缺陷", "feature_request": "功能需求", "how_to": "使用咨询",
               "integration": "集成", "performance": "性能"}

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Churn early warning: portfolio report", "as_of": "Scores as of", "model": "model version",
        "generated": "generated", "portfolio": "Portfolio", "accounts": "Accounts", "mrr": "MRR",
        "mrr_at_risk": "MRR at risk", "share_at_risk": "share at risk", "high_risk_accounts": "High-risk accounts",
        "mean_health": "mean health", "at_risk_note": "MRR at risk = Σ MRR × probability of churning within "
        "{h} days (calibrated). MRR: terms in force on the scoring date.",
        "at_risk_note_table": "MRR at risk = Σ MRR × calibrated probability of the churn label the table model was "
        "trained on.",
        "by_tier": "By tier", "by_csm": "By customer-success manager", "by_segment": "By segment",
        "tier": "Tier", "csm": "CSM", "segment": "Segment", "industry": "Industry", "region": "Region",
        "top": "Who to call first: top accounts by expected MRR loss",
        "expected_loss": "Expected MRR loss", "health": "Health", "probability": "Churn probability",
        "reasons": "Why (risk signals)", "strengths": "Strengths", "playbook": "Playbook", "owner": "Owner",
        "respond_within": "Respond within", "account": "Account", "movements": "Tier movements since the "
        "previous scoring", "no_previous": "No previous scoring: tier movements need two scoring dates "
        "(run `churnwatch score --as-of` for an earlier date).", "from_to": "previous tier → current tier",
        "new": "new", "gone": "accounts scored last time and not now (ended or inactive)",
        "worse": "Moved to a worse tier", "before": "before", "now": "now",
        "tasks": "Open retention tasks", "no_tasks": "No open retention tasks.", "task": "Task",
        "due": "Due", "action": "Action", "filtered": "Top list and account pages filtered to tier",
        "pages": "Account pages", "trend": "Health trend", "waterfall": "SHAP waterfall (log-odds, before "
        "calibration): how each feature moves this account's score from the average",
        "no_waterfall": "No SHAP waterfall: the model or this date's snapshot is not available.",
        "signals": "Recent raw signals", "logins_week": "Logins per week (last 12 weeks)",
        "events_week": "Product events per week (last 12 weeks; no login role configured)",
        "tickets": "Latest tickets", "invoices": "Latest invoices", "opened": "Opened", "resolved": "Resolved",
        "priority": "Priority", "csat": "CSAT", "category": "Category", "issued": "Issued", "due_date": "Due",
        "paid": "Paid", "amount": "Amount", "unpaid": "unpaid", "written_off": "written off", "open": "open",
        "none": "none",
        "not_in_source": "not in this data source (no {table} table)",
        "no_data": "Raw data source not available (set `data:` in churnwatch.yaml).",
        "previous": "previous score", "change": "change", "back": "back to the portfolio",
        "contribution": "contribution", "value": "value", "signal": "signal", "shown": "shown",
        "of": "of", "pages_note": "one page per account below; click an id to jump to it",
        "none_reasons": "No risk signal above the average.", "no_value": "(none)", "log_odds": "log-odds",
        "mixed_reasons": "No signal stands out on its own: the risk comes from several together.",
        "no_mrr": "{n} of {total} accounts have no known MRR (no subscription term in force on the scoring "
                  "date): they count in the account numbers but not in MRR or MRR at risk, which are "
                  "understated by their revenue.",
        "no_mrr_column": "No MRR: no column of the scored data is mapped to MRR (a flat table's scores carry "
                         "none), so MRR at risk is not computed; the lists are ordered by churn probability.",
        "top_no_mrr": "Who to call first: top accounts by churn probability",
        "asked": "Asked to cancel at the end of their term",
        "asked_note": "A cancellation request stands until the term ends or renews. Their risk is the churn "
                      "probability within {h} days: {later} of them leave after that and can score healthy; the "
                      "save call is due before their term ends.",
        "term_ends": "Term ends in (days)",
    },
    "zh-CN": {
        "title": "客户流失预警：客户组合报告", "as_of": "评分日期", "model": "模型版本", "generated": "生成时间",
        "portfolio": "客户组合", "accounts": "客户数", "mrr": "MRR", "mrr_at_risk": "风险 MRR",
        "share_at_risk": "风险占比", "high_risk_accounts": "高风险客户", "mean_health": "平均健康分",
        "at_risk_note": "风险 MRR = Σ MRR × {h}天内流失概率（已校准）。"
                        "MRR：评分日有效的订阅。",
        "at_risk_note_table": "风险 MRR = Σ MRR × 表格模型所训练的流失标签的校准概率。",
        "by_tier": "按风险等级", "by_csm": "按客户成功经理", "by_segment": "按客户分级",
        "tier": "风险等级", "csm": "客户成功经理", "segment": "客户分级", "industry": "行业", "region": "地区",
        "top": "优先联系：预期 MRR 损失最高的客户", "expected_loss": "预期收入损失", "health": "健康分",
        "probability": "流失概率", "reasons": "原因（风险信号）", "strengths": "优势", "playbook": "应对方案",
        "owner": "负责人", "respond_within": "响应时限", "account": "客户",
        "movements": "与上次评分相比的等级变化",
        "no_previous": "没有上一次评分：等级变化需要两个评分日期（请对更早的日期运行 `churnwatch score --as-of`）。",
        "from_to": "上次等级 → 本次等级", "new": "新客户", "gone": "上次有评分、本次没有的客户（已结束或不活跃）",
        "worse": "等级变差的客户", "before": "之前", "now": "现在", "tasks": "未完成的挽留任务",
        "no_tasks": "没有未完成的挽留任务。", "task": "任务", "due": "截止时间", "action": "动作",
        "filtered": "优先列表和客户页面仅显示等级", "pages": "客户详情页", "trend": "健康分趋势",
        "waterfall": "SHAP 瀑布图（对数几率，校准前）：各特征如何将该客户的分数从平均值推高或拉低",
        "no_waterfall": "无 SHAP 瀑布图：模型或该日期的快照不可用。", "signals": "近期原始信号",
        "logins_week": "每周登录次数（近12周）", "events_week": "每周产品事件数（近12周；未配置登录事件）",
        "tickets": "最近的工单", "invoices": "最近的发票", "opened": "提交时间", "resolved": "解决时间",
        "priority": "优先级", "csat": "满意度", "category": "类别", "issued": "开票日", "due_date": "到期日",
        "paid": "付款日", "amount": "金额", "unpaid": "未付", "written_off": "已核销", "open": "未解决", "none": "无",
        "not_in_source": "此数据源没有 {table} 表",
        "no_data": "原始数据源不可用（请在 churnwatch.yaml 中设置 `data:`）。", "previous": "上次评分",
        "change": "变化", "back": "返回客户组合", "contribution": "贡献", "value": "数值", "signal": "信号",
        "shown": "显示", "of": "/", "pages_note": "下方每个客户一页；点击客户编号跳转",
        "none_reasons": "没有高于平均水平的风险信号。", "no_value": "（无）", "log_odds": "对数几率",
        "mixed_reasons": "没有单独突出的信号：风险来自多个信号的共同作用。",
        "no_mrr": "{total} 个客户中有 {n} 个没有已知的 MRR（评分日没有有效的订阅）：它们计入客户数，"
                  "但不计入 MRR 和风险 MRR，因此这两项少算了这些客户的收入。",
        "no_mrr_column": "没有 MRR：评分数据中没有映射为 MRR 的列（表格模型的评分不含该列），"
                         "因此不计算风险 MRR；列表按流失概率排序。",
        "top_no_mrr": "优先联系：流失概率最高的客户",
        "asked": "已申请在订阅期末取消的客户",
        "asked_note": "取消申请在订阅期结束或续订之前一直有效。其风险为{h}天内的流失概率："
                      "其中{later}个客户在此之后才离开，可能显示为健康；挽留沟通应在订阅期结束前完成。",
        "term_ends": "订阅期到期（天）",
    },
}

#: Wording for scores of a flat table (``score --table``): a random split of customers, not accounts
#: followed over as-of dates (Chinese 客户 already says both).
TABLE_STRINGS: dict[str, dict[str, str]] = {
    "en": {"accounts": "Customers", "account": "Customer", "high_risk_accounts": "High-risk customers",
           "top": "Who to call first: top customers by expected MRR loss",
           "top_no_mrr": "Who to call first: top customers by churn probability",
           "gone": "customers scored last time and not now", "pages": "Customer pages",
           "pages_note": "one page per customer below; click an id to jump to it",
           "no_previous": "No previous scoring: tier movements need two scoring dates (score an older export "
                          "of the table with `churnwatch score --table OLDER.csv --as-of DATE`).",
           "waterfall": "SHAP waterfall (log-odds, before calibration): how each column moves this customer's "
                        "score from the average",
           "no_data": "A flat table carries no raw usage, ticket or invoice history: the signals above are its "
                      "columns."},
    "zh-CN": {"no_data": "扁平表没有原始使用、工单或账单记录：以上信号即表中的列。",
              "no_previous": "没有上一次评分：等级变化需要两个评分日期（请用 `churnwatch score --table OLDER.csv "
                             "--as-of DATE` 为表格的较早导出评分）。"},
}
