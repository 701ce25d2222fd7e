"""The manager's Portfolio page: ``GET /portfolio[?by=COLUMN]`` for a lead (the team's accounts)
or an admin (every account); a CSM gets 403 (their accounts are on "My day").

MRR and MRR at risk by tier, by CSM and by a segment column (``by``: one of the snapshots' text
columns, default ``segment``, else ``plan`` ...; an unknown one is a 422 naming those there are),
the tier movements since the previous score, the health distribution over the score history
(inline SVG) and the open and overdue tasks per CSM. Scores with no MRR at all (a flat table's, a
store with no MRR column) leave MRR, MRR at risk and the share out and say "no MRR column": the
groups are then accounts, most first. The figures come from
``workspace.portfolio_data``, cached per publication; only the tasks are read per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from core.home import Home
from core.vocabulary import TIER_KEYS
from workspace import portfolio
from workspace.pages import scores_of
from workspace.portfolio_data import NEW, PortfolioData, default_segment, tasks_per_csm
from workspace.texts import TEXTS
from workspace.web import engine_of, render, request_lang, require_role

router = APIRouter()
Manager = Annotated[dict, Depends(require_role("lead", "admin"))]


def data_of(request: Request) -> PortfolioData:
    state = request.app.state
    if getattr(state, "portfolio_data", None) is None:
        state.portfolio_data = PortfolioData(Home(state.home).store)
    return state.portfolio_data


def segment_label(column: str) -> str:
    """The label key of a segment column, or ``""`` for a column without one (shown as named)."""
    key = f"pf_dim_{column}"
    return key if key in TEXTS else ""


@router.get("/portfolio")
def portfolio_page(request: Request, user: Manager, by: Annotated[str, Query(max_length=100)] = ""):
    engine = engine_of(request)
    scope = portfolio.scope_of(engine, user)
    scores = scores_of(request)
    data = data_of(request)
    snap = scores.published.current()
    columns = sorted(data.segments(snap.run_id)) if snap is not None else []
    if by and by not in columns:
        raise HTTPException(status_code=422, detail=f"by {by!r}: one of {', '.join(columns) or '(no segment column)'}")
    segment = by or default_segment(columns)
    summary = data.summary(scores, scope, segment)
    heading = "team_accounts" if user["role"] == "lead" else "all_accounts"
    return render(request, "portfolio.html.j2", summary=summary, segment=segment, heading=heading,
                  tasks=tasks_per_csm(engine, scope, scores) if summary is not None else [],
                  segment_label=segment_label, new_key=NEW, tier_keys=TIER_KEYS,
                  has_mrr=scores.has_mrr(request_lang(request)))
