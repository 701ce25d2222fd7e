"""The CSM's and the lead's pages: my day, the account page, the tasks board.

* ``GET /``: my day: the accounts the user may see (``portfolio.Scope``), largest expected MRR
  loss first, with health, tier, the change since the last score and the top reason; the
  user's tasks, overdue first, with due times.
* ``GET /accounts/{id}``: health trend (inline SVG), reasons and strengths with values (the
  published wording), the SHAP waterfall the scoring run published (``insights.waterfall_chart``, inline
  SVG; its bar of each reason is that reason's contribution), the latest snapshot's signals,
  tasks, e-mails, tags, sequences, interventions and notes, the "log an intervention" form and,
  for a churned account, its exit interview. 403 for an account outside the user's scope, 404 for one never scored.
* ``POST /interventions``: log an intervention (``workflow.interventions``; the closed loop's).
* ``GET /tasks``: the board (filters: status, tier, overdue), escalations shown.
* ``POST /tasks/{id}/move``: one lifecycle step (``workflow.tasks.transition``); approving is
  for a lead or an admin; an illegal step is a 409 page naming the allowed ones.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request

import insights.waterfall_chart as charts
from core.errors import ChurnwatchError
from core.lapse import lapsed
from core.vocabulary import TIER_KEYS, reason_label
from workflow.facts import display_name
from workflow.interventions import InterventionError, log_intervention
from workflow.interviews import QUESTIONS
from workflow.tasks import ACTIONS, STATUSES, IllegalTransition, TaskError, get_task, transition
from workspace import portfolio
from workspace.texts import t
from workspace.web import CurrentUser, engine_of, flash, redirect, render, request_lang

router = APIRouter()
APPROVERS = ("lead", "admin")
#: rows of a list on my day (the riskiest; a lead's or an admin's portfolio is longer)
MAX_ROWS = 100


def scores_of(request: Request) -> portfolio.Scores:
    state = request.app.state
    if getattr(state, "scores", None) is None:
        from core.home import Home

        state.scores = portfolio.Scores(Home(state.home).store, state.settings)
    return state.scores


def account_in_scope(request: Request, user: dict, account_id: str) -> dict:
    """The account's published record; 404 when never scored, 403 outside the user's scope."""
    rec = scores_of(request).one(account_id, request_lang(request))
    if rec is None:
        raise HTTPException(status_code=404, detail="not_found")
    if not portfolio.scope_of(engine_of(request), user).allows(rec["csm"]):
        raise HTTPException(status_code=403, detail="forbidden")
    return rec


@router.get("/")
def my_day(request: Request, user: CurrentUser):
    lang = request_lang(request)
    engine = engine_of(request)
    scope = portfolio.scope_of(engine, user)
    scores = scores_of(request)
    every = portfolio.my_accounts(scores, scope, lang)
    accounts = every[:MAX_ROWS]
    tasks = portfolio.tasks_in_scope(engine, scope, scores, lang)
    heading = {"csm": "my_accounts", "lead": "team_accounts", "admin": "all_accounts"}[user["role"]]
    return render(request, "my_day.html.j2", accounts=accounts, total=len(every), tasks=tasks[:MAX_ROWS],
                  total_tasks=len(tasks), heading=heading, has_mrr=scores.has_mrr(lang),
                  published=scores.published.current() is not None, fmt_time=portfolio.fmt_time)


@router.get("/accounts/{account_id:path}")
def account_page(request: Request, account_id: str, user: CurrentUser):
    rec = account_in_scope(request, user, account_id)
    engine = engine_of(request)
    from core.home import Home

    snapshot_as_of, signals = scores_of(request).signals(Home(request.app.state.home).store, account_id)
    chart = portfolio.health_points(scores_of(request).history(account_id))
    published = scores_of(request).published.current()
    waterfall = charts.parse(published.waterfalls.get(account_id) if published else None)
    if waterfall is not None and not charts.matches(waterfall, rec):
        waterfall = None  # kept by a run whose scores did not commit: not this score's waterfall
    if waterfall is not None:
        waterfall = charts.waterfall_chart(waterfall, request_lang(request), rec["reasons"] + rec["strengths"])
        waterfall["svg"] = charts.waterfall_svg(waterfall, request_lang(request))
    name = display_name(request.app.state.settings, account_id)  # the data source's name for it, or None
    return render(request, "account.html.j2", rec=rec, name=name, chart=chart, signals=signals,
                  lapse_grace=_lapse_grace(request, rec, published),
                  snapshot_as_of=snapshot_as_of,
                  waterfall=waterfall, has_mrr=scores_of(request).has_mrr(request_lang(request)),
                  records=portfolio.account_records(engine, account_id), fmt_time=portfolio.fmt_time,
                  questions=QUESTIONS, reason_label=lambda key: reason_label(key, request_lang(request)) if key else "")


def _lapse_grace(request: Request, rec: dict, published: Any) -> int | None:
    """The grace period's days when the account's published "churn" is a lapse a late renewal still undoes
    (``core.lapse.lapsed``, the rule the API's ``stale_reason`` says), else None."""
    if not rec.get("churned_on") or published is None:
        return None
    grace = dt.timedelta(days=int(request.app.state.settings.grace_days))
    return grace.days if lapsed(dt.date.fromisoformat(rec["churned_on"]), published.run_as_of, grace) else None


@router.post("/interventions")
def add_intervention(request: Request, user: CurrentUser, account_id: Annotated[str, Form(max_length=200)],
                     playbook: Annotated[str, Form(max_length=200)] = "",
                     note: Annotated[str, Form(max_length=4000)] = ""):
    rec = account_in_scope(request, user, account_id)
    try:
        log_intervention(engine_of(request), account_id=account_id, actor=user["name"], playbook=playbook or None,
                         tier=rec["tier"], note=note)
    except InterventionError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    flash(request, "logged")
    from urllib.parse import quote

    return redirect(f"/accounts/{quote(account_id, safe='')}")


@router.get("/tasks")
def tasks_board(request: Request, user: CurrentUser,
                status: Annotated[str, Query(max_length=20)] = "active",
                tier: Annotated[str, Query(max_length=20)] = "",
                overdue: Annotated[bool, Query()] = False):
    lang = request_lang(request)
    if status not in ("active", "all", *STATUSES):
        raise HTTPException(status_code=422, detail=f"status {status!r}: one of active, all, {', '.join(STATUSES)}")
    if tier and tier not in TIER_KEYS:
        raise HTTPException(status_code=422, detail=f"tier {tier!r}: one of {', '.join(TIER_KEYS)}")
    engine = engine_of(request)
    scope = portfolio.scope_of(engine, user)
    rows = portfolio.tasks_in_scope(engine, scope, scores_of(request), lang, status=status, tier=tier or None,
                                    overdue=overdue)
    return render(request, "tasks.html.j2", tasks=rows, status=status, tier=tier, overdue=overdue,
                  statuses=STATUSES, tiers=TIER_KEYS, fmt_time=portfolio.fmt_time,
                  can_approve=user["role"] in APPROVERS)


@router.post("/tasks/{task_id}/move")
def move_task(request: Request, task_id: int, user: CurrentUser, action: Annotated[str, Form(max_length=20)],
              text: Annotated[str, Form(max_length=4000)] = "", to: Annotated[str, Form(max_length=320)] = "",
              next_action: Annotated[str, Form(max_length=4000)] = "",
              reason: Annotated[str, Form(max_length=4000)] = "", version: Annotated[int | None, Form()] = None,
              back: Annotated[str, Form(max_length=500)] = "/tasks"):
    lang = request_lang(request)
    if action not in ACTIONS:
        raise HTTPException(status_code=422, detail=f"action {action!r}: one of {', '.join(ACTIONS)}")
    engine = engine_of(request)
    try:
        task = get_task(engine, task_id)
    except TaskError as exc:
        raise HTTPException(status_code=exc.status_code, detail=str(exc)) from None
    scope = portfolio.scope_of(engine, user)
    csm = (scores_of(request).one(task["account_id"], lang) or {}).get("csm")
    if not (scope.allows(csm) or scope.allows(task.get("assignee_email"))):
        raise HTTPException(status_code=403, detail="forbidden")
    if action == "approve" and user["role"] not in APPROVERS:
        raise HTTPException(status_code=403, detail=t("approve_lead_only", lang))
    try:
        moved = transition(engine, task_id, action, user["name"], text=text or None, to=to or None,
                           next_action=next_action or None, reason=reason or None, version=version)
    except IllegalTransition:
        allowed = ", ".join(t(f"status_{s}", lang) for s in task["allowed"]) or t("none_final", lang)
        raise HTTPException(status_code=409, detail=t("illegal_move", lang, status=t(f"status_{task['status']}", lang),
                                                      allowed=allowed)) from None
    except (TaskError, ChurnwatchError) as exc:
        raise HTTPException(status_code=getattr(exc, "status_code", 422), detail=str(exc)) from None
    flash(request, "moved", id=task_id, status=t(f"status_{moved['status']}", lang))
    return redirect(back if back.startswith("/") and not back.startswith("//") else "/tasks")
