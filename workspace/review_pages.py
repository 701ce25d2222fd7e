"""The exit-interview form and the churn review pages (issue 16 items 6 and 7).

* ``GET /accounts/{id}/exit-interview``: the five questions (``workflow.interviews.QUESTIONS``),
  with the churn date (the account's, when its scores ended) and the interview date; for an
  account with a recorded interview, its answers, suggestion and current category and flag.
  ``POST`` with ``step=suggest`` shows the suggested category and avoidable flag
  (``workflow.interviews.suggest``, the keyword rules' one home) pre-selected, with the keywords
  that decided them; ``step=save`` stores the answers with the interviewer's confirmed (or
  changed) category and flag (``workflow.interviews.record``, audit-logged) and returns to the
  account page. A CSM only for their own accounts (403); the form carries the CSRF token.
* ``GET /interviews``: the recorded interviews of the accounts the user may see.
* ``GET /review`` (lead, admin; a CSM gets 403): the diagnosis **as stored** by
  ``churnwatch diagnose`` (``<home>/reports/diagnosis``: segments with Wilson intervals and
  q-values, exit reasons and the avoidable share, Kaplan-Meier survival by company size drawn as
  inline SVG) and the closed loop's playbook comparison stored beside it; then the findings
  (``workflow.review``, live from the operational store) with the before/after measurement stored
  by the last ``churnwatch review`` (``insights.review_store``). The parsed diagnosis is cached per
  stored run (its files' modification times), so no request reads the source data, builds
  features or computes SHAP.
* ``POST /review/findings`` (add) and ``POST /review/findings/{id}/status`` (move): lead or
  admin, CSRF, through ``workflow.review.add`` / ``update`` (audit-logged); a rule broken is a
  422 page naming it, an unknown finding a 404.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from pydantic import ValidationError

from core.home import Home
from core.vocabulary import REASON_BY_KEY, REASON_KEYS, reason_label, tier_label
from insights.closed_loop import ALL_TIERS
from insights.diagnosis import DIMENSIONS
from insights.review import BEFORE_AFTER_CAVEAT
from insights.review_store import (
    StoredResultError,
    diagnosis_stamp,
    measurement_of,
    read_diagnosis,
    read_measurements,
)
from workflow import interviews, review
from workflow.people import list_users
from workspace import portfolio
from workspace.pages import account_in_scope, scores_of
from workspace.texts import t
from workspace.web import CurrentUser, engine_of, flash, redirect, render, request_lang, require_role

router = APIRouter()
Reviewer = Annotated[dict[str, Any], Depends(require_role("lead", "admin"))]
AVOIDABLE_CHOICES = ("yes", "no", "unknown")
TENURE_KEYS = {"0-3 months": "rv_tenure_0_3m", "3-12 months": "rv_tenure_3_12m", "1-2 years": "rv_tenure_1_2y",
               "2+ years": "rv_tenure_2y"}
VERDICT_KEYS = {"improved": "rv_verdict_improved", "worsened": "rv_verdict_worsened",
                "no detectable change": "rv_verdict_no_change", "not measurable yet": "rv_verdict_not_measurable"}
RATE_METRICS = ("retention_90d_new", "churn_rate")
COLOURS = ("#1f3a5f", "#8e24aa", "#00897b", "#6d4c41", "#5c6bc0", "#d81b60", "#757575")  # not the tier colours
#: points of one survival curve at most (the stored curve has one per day)
MAX_POINTS = 160


# -- formatting ----------------------------------------------------------------------------

def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x: Any) -> str:
    return "–" if _missing(x) else f"{x:.1%}"


def interval(lo: Any, hi: Any) -> str:
    return "–" if _missing(lo) or _missing(hi) else f"[{lo:.1%}, {hi:.1%}]"


def points(x: Any, lang: str) -> str:
    """A difference of two rates in percentage points."""
    return "–" if _missing(x) else t("pp_value", lang, v=f"{x * 100:+.1f}")


def number(x: Any, digits: int = 1, signed: bool = False) -> str:
    return "–" if _missing(x) else (f"{x:+,.{digits}f}" if signed else f"{x:,.{digits}f}")


def _parse_date(value: str, label: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"{label}: {value!r} is not a date YYYY-MM-DD") from None


def _avoidable_choice(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


# -- exit interviews -----------------------------------------------------------------------

def account_url(account_id: str) -> str:
    return f"/accounts/{quote(account_id, safe='')}"


def _form(request: Request, rec: dict, answers: dict, churned_at: str, interviewed_on: str,
          suggestion: interviews.Suggestion | None = None, category: str | None = None,
          avoidable: str = "unknown", errors: dict[str, str] | None = None, status_code: int = 200):
    lang = request_lang(request)
    existing = interviews.get(engine_of(request), rec["account_id"])
    questions = [{"field": f, "n": i + 1, "text": zh if lang == "zh-CN" else en}
                 for i, (f, en, zh) in enumerate(interviews.QUESTIONS)]
    return render(request, "exit_interview.html.j2", status_code=status_code, rec=rec, questions=questions,
                  answers=answers, churned_at=churned_at, interviewed_on=interviewed_on, suggestion=suggestion,
                  category=category, avoidable=avoidable, errors=errors or {}, existing=existing,
                  categories=[(k, reason_label(k, lang)) for k in REASON_KEYS], choices=AVOIDABLE_CHOICES,
                  reason_label=lambda k: reason_label(k, lang), action=account_url(rec["account_id"])
                  + "/exit-interview", back=account_url(rec["account_id"]))


@router.get("/accounts/{account_id:path}/exit-interview")
def interview_form(request: Request, account_id: str, user: CurrentUser):
    rec = account_in_scope(request, user, account_id)
    found = interviews.get(engine_of(request), account_id)
    latest = found[0] if found else None
    answers = {f: (latest or {}).get(f) or "" for f in interviews.ANSWER_FIELDS}
    churned = latest["churned_at"] if latest else (rec.get("churned_on") or dt.date.today().isoformat())
    if latest is None:
        return _form(request, rec, answers, str(churned), dt.date.today().isoformat())
    # a recorded interview: its suggestion again, with the category and flag it has now selected
    suggestion = interviews.suggest(interviews.Answers(**{k: v or None for k, v in answers.items()}))
    return _form(request, rec, answers, str(churned), latest["interviewed_on"], suggestion=suggestion,
                 category=latest["reason_category"], avoidable=_avoidable_choice(latest["reason_avoidable"]))


@router.post("/accounts/{account_id:path}/exit-interview")
def interview_submit(request: Request, account_id: str, user: CurrentUser,
                     main_reason: Annotated[str, Form(max_length=5000)] = "",
                     asked_for_help: Annotated[str, Form(max_length=5000)] = "",
                     do_better: Annotated[str, Form(max_length=5000)] = "",
                     instead: Annotated[str, Form(max_length=5000)] = "",
                     come_back: Annotated[str, Form(max_length=5000)] = "",
                     churned_at: Annotated[str, Form(max_length=20)] = "",
                     interviewed_on: Annotated[str, Form(max_length=20)] = "",
                     step: Annotated[str, Form(max_length=20)] = "suggest",
                     category: Annotated[str, Form(max_length=40)] = "",
                     avoidable: Annotated[str, Form(max_length=10)] = "unknown"):
    rec = account_in_scope(request, user, account_id)
    lang = request_lang(request)
    given = {"main_reason": main_reason, "asked_for_help": asked_for_help, "do_better": do_better,
             "instead": instead, "come_back": come_back}
    if step not in ("suggest", "save"):
        raise HTTPException(status_code=422, detail=f"step {step!r}: one of suggest, save")
    churned = _parse_date(churned_at, t("ri_churned_at", lang))
    held = _parse_date(interviewed_on, t("ri_interviewed_on", lang))
    try:
        answers = interviews.Answers(**{k: (v.strip() or None) if k != "main_reason" else v for k, v in given.items()})
    except ValidationError:
        return _form(request, rec, given, churned_at, interviewed_on, errors={"main_reason": t("ri_required", lang)},
                     status_code=422)
    suggestion = interviews.suggest(answers)
    if step == "suggest":
        return _form(request, rec, given, churned_at, interviewed_on, suggestion=suggestion,
                     category=suggestion.category, avoidable=_avoidable_choice(suggestion.avoidable))
    if category not in REASON_BY_KEY or avoidable not in AVOIDABLE_CHOICES:
        return _form(request, rec, given, churned_at, interviewed_on, suggestion=suggestion,
                     category=suggestion.category, avoidable=_avoidable_choice(suggestion.avoidable),
                     errors={"category": t("ri_choose", lang)}, status_code=422)
    flag = None if avoidable == "unknown" else avoidable == "yes"
    interviews.record(engine_of(request), interviews.InterviewIn(
        account_id=account_id, interviewer=user["name"], answers=answers, interviewed_on=held, churned_at=churned,
        lang=lang, category=category, avoidable=flag), actor=user["name"])
    flash(request, "ri_saved", category=reason_label(category, lang))
    return redirect(account_url(account_id) + "#exit-interview")


@router.get("/interviews")
def interview_list(request: Request, user: CurrentUser):
    lang = request_lang(request)
    scope = portfolio.scope_of(engine_of(request), user)
    scores = scores_of(request)
    rows = []
    for row in reversed(interviews.list_interviews(engine_of(request))):  # latest churn first
        rec = scores.one(row["account_id"], lang)
        if scope.everything or (rec is not None and scope.allows(rec["csm"])):
            rows.append({**row, "url": account_url(row["account_id"]) if rec else None})
    return render(request, "interviews.html.j2", rows=rows, reason_label=lambda k: reason_label(k, lang))


# -- the churn review ----------------------------------------------------------------------

def _curves(rows: list[dict], lang: str, width: int = 560, height: int = 260, pad: int = 34) -> dict | None:
    """Kaplan-Meier step curves (survival 0-1 over days) as SVG polylines, one per group."""
    if not rows:
        return None
    groups: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if not _missing(r.get("survival")) and not _missing(r.get("days")):
            groups.setdefault(str(r["group"]), []).append((float(r["days"]), float(r["survival"])))
    top = max((d for g in groups.values() for d, _ in g), default=0.0) or 1.0

    def xy(d: float, s: float) -> str:
        return f"{pad + d / top * (width - 2 * pad):.1f},{pad + (1 - s) * (height - 2 * pad):.1f}"

    lines = []
    for i, (name, pts) in enumerate(groups.items()):
        pts.sort()
        kept = [p for j, p in enumerate(pts) if j == 0 or j == len(pts) - 1 or p[1] != pts[j - 1][1]]
        if len(kept) > MAX_POINTS:
            step = math.ceil(len(kept) / MAX_POINTS)
            kept = kept[::step] + [kept[-1]]
        path, last = [], None
        for d, s in kept:
            if last is not None:
                path.append(xy(d, last))
            path.append(xy(d, s))
            last = s
        end = kept[-1]
        lines.append({"name": t("unknown", lang) if name == "unknown" else name, "colour": COLOURS[i % len(COLOURS)],
                      "points": " ".join(path), "last": f"{end[1]:.0%}"})
    years = [y for y in range(0, int(top) + 1, 365)]
    return {"width": width, "height": height, "pad": pad, "lines": lines,
            "yticks": [{"label": f"{v:.0%}", "y": pad + (1 - v) * (height - 2 * pad)} for v in (0, .25, .5, .75, 1)],
            "xticks": [{"label": str(d), "x": pad + d / top * (width - 2 * pad)} for d in years]}


def segment_label(dimension: str, value: str, lang: str) -> str:
    if value == "unknown":
        return t("unknown", lang)
    if dimension == "tenure_band" and value in TENURE_KEYS:
        return t(TENURE_KEYS[value], lang)
    return value


def diagnosis_view(request: Request, lang: str) -> dict | None:
    """The stored diagnosis made ready for the page, cached per stored run and language."""
    folder = Home(request.app.state.home).reports / "diagnosis"
    stamp = diagnosis_stamp(folder)
    if stamp is None:
        return None
    cache = getattr(request.app.state, "review_cache", None)
    if cache is None or cache[0] != stamp:
        cache = (stamp, read_diagnosis(folder), {})
        request.app.state.review_cache = cache
    stored, views = cache[1], cache[2]
    if lang in views:
        return views[lang]
    d = stored.definitions
    order = {k: i for i, k in enumerate(DIMENSIONS)}
    segments = [{**s, "label": segment_label(s["dimension"], str(s["value"]), lang),
                 "dimension_label": t(f"rv_dim_{s['dimension']}", lang) if s["dimension"] in order else s["dimension"]}
                for s in stored.segments]
    differ = sorted([s for s in segments if s.get("differs")], key=lambda s: s["q_value"])
    lowest = sorted([s for s in segments if not _missing(s.get("q_value"))], key=lambda s: s["q_value"])[:5]
    every = sorted(segments, key=lambda s: (order.get(s["dimension"], 99), -(s.get("churn_rate") or 0)))
    avoidable = {a["flag"]: a for a in stored.avoidable}
    loop = sorted([r for r in stored.loop_rows], key=lambda r: (r["tier"] != ALL_TIERS, _missing(r.get("difference")),
                                                                 -(r.get("difference") or 0)))
    caveat = stored.loop_definitions.get("caveat", {})
    view = {
        "written_at": stored.written_at, "window": d.get("window", {}), "accounts": d.get("accounts"),
        "churned": d.get("churned"), "overall_rate": d.get("overall_rate"),
        "overall_ci": d.get("overall_ci") or [None, None],
        "coverage": d.get("interview_coverage"), "differ": differ, "lowest": lowest, "segments": every,
        "reasons": stored.reasons, "avoidable": avoidable.get("avoidable"),
        "survival": _curves(stored.survival_size, lang), "survival_summary": stored.survival_size_summary,
        "loop": [{**r, "tier_label": t("all_tiers", lang) if r["tier"] == ALL_TIERS else tier_label(r["tier"], lang)}
                 for r in loop],
        "loop_caveat": caveat.get(lang) or caveat.get("en"),
    }
    views[lang] = view
    return view


def findings_view(request: Request, lang: str, measured: bool = True) -> tuple[list[dict], dict]:
    """The findings (live) with their stored measurements (``measured``), formatted."""
    measurements = read_measurements(Home(request.app.state.home).reports) if measured else {}
    out = []
    for f in review.list_findings(engine_of(request)):
        m = measurement_of(measurements, f) if f["metric"] else None
        row = {**f, "metric_label": review.METRICS[f["metric"]][1 if lang == "zh-CN" else 0] if f["metric"] else "",
               "m": None}
        if m is not None:
            rate = f["metric"] in RATE_METRICS
            fmt = pct if rate else number
            row["m"] = {**m, "before_text": fmt(m["before"]), "after_text": fmt(m["after"]),
                        "difference_text": points(m["difference"], lang) if rate else number(m["difference"], 2, True),
                        "interval_text": "–" if _missing(m["ci_low"]) else (
                            f"[{points(m['ci_low'], lang)}, {points(m['ci_high'], lang)}]" if rate else
                            f"[{number(m['ci_low'], 2, True)}, {number(m['ci_high'], 2, True)}]"),
                        "verdict_text": t(VERDICT_KEYS.get(m["verdict"], "rv_verdict_not_measurable"), lang)}
        out.append(row)
    return out, measurements


@router.get("/review")
def review_page(request: Request, user: Reviewer):
    lang = request_lang(request)
    unreadable = []  # stored files broken by hand or by a full disk: named on the page
    try:
        view = diagnosis_view(request, lang)
    except StoredResultError as exc:
        view = None
        unreadable.append(str(exc))
    try:
        findings, measurements = findings_view(request, lang)
    except StoredResultError as exc:
        findings, measurements = findings_view(request, lang, measured=False)
        unreadable.append(str(exc))
    engine = engine_of(request)
    with engine.connect() as conn:
        owners = [u for u in list_users(conn) if u["active"]]
    fresh = 0
    if view is not None:
        since = view["written_at"].isoformat()
        fresh = sum(1 for i in interviews.list_interviews(engine) if i["updated_at"] > since)
    return render(request, "review.html.j2", v=view, unreadable=unreadable, findings=findings,
                  measured_at=measurements.get("measured_at"),
                  owners=owners, statuses=review.STATUSES, metrics=review.METRICS, fresh_interviews=fresh,
                  pct=pct, interval=interval, points=lambda x: points(x, lang), number=number,
                  reason_label=lambda k: reason_label(k, lang), before_after_caveat=BEFORE_AFTER_CAVEAT[lang])


def _finding_error(exc: review.FindingError) -> HTTPException:
    return HTTPException(status_code=404 if str(exc).startswith("no finding ") else 422, detail=str(exc))


@router.post("/review/findings")
def add_finding(request: Request, user: Reviewer, title: Annotated[str, Form(max_length=300)] = "",
                owner: Annotated[str, Form(max_length=320)] = "",
                detail: Annotated[str, Form(max_length=10_000)] = "",
                change_date: Annotated[str, Form(max_length=20)] = "",
                metric: Annotated[str, Form(max_length=40)] = ""):
    lang = request_lang(request)
    try:
        found = review.add(engine_of(request), title, owner, user["name"], detail.strip() or None,
                           _parse_date(change_date, t("rv_change_date", lang)), metric or None)
    except review.FindingError as exc:
        raise _finding_error(exc) from None
    flash(request, "rv_finding_added", id=found["id"])
    return redirect("/review#findings")


@router.post("/review/findings/{finding_id}/status")
def move_finding(request: Request, finding_id: int, user: Reviewer, status: Annotated[str, Form(max_length=20)]):
    lang = request_lang(request)
    try:
        moved = review.update(engine_of(request), finding_id, user["name"], status=status)
    except review.FindingError as exc:
        raise _finding_error(exc) from None
    flash(request, "rv_finding_moved", id=finding_id, status=t(f"rv_status_{moved['status']}", lang))
    return redirect("/review#findings")
