"""The exit interviews over HTTP: a FastAPI ``APIRouter`` that ``workflow.http`` includes.

* ``POST /interviews``: record (or replace) one interview (``workflow.interviews.InterviewIn``);
  201 with the record, its suggested category and flag, and the confirmed ones when given.
* ``GET /interviews``: every interview (``?since=&until=`` churn dates, YYYY-MM-DD).
* ``GET /interviews/{account}``: the account's interviews, latest first; 404 when none.
* ``POST /interviews/{account}/confirm``: the interviewer confirms or changes the category and
  flag of the account's latest interview (``{"category": ..., "avoidable": ..., "by": ...}``).

Bad input is a 422 naming the field (pydantic); an unknown account a 404. The acting person is
the ``X-Churnwatch-User`` header when sent, else the interviewer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import APIRouter, Header, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Engine

from core.vocabulary import REASON_BY_KEY, REASON_KEYS
from workflow import interviews
from workflow.interviews import InterviewError, InterviewIn


class Confirmation(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: str
    avoidable: bool | None = None
    by: str = Field(min_length=1, max_length=200)
    churned_at: dt.date | None = None

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in REASON_BY_KEY:
            raise ValueError(f"unknown reason category {value!r} (categories: {', '.join(REASON_KEYS)})")
        return value


def interviews_router(engine: Callable[[], Engine]) -> APIRouter:
    """The router; ``engine()`` returns the operational store's engine (called per request)."""
    router = APIRouter(tags=["exit interviews"])

    @router.post("/interviews", status_code=status.HTTP_201_CREATED)
    def post_interview(body: InterviewIn, x_churnwatch_user: str | None = Header(None)) -> dict:
        return interviews.record(engine(), body, actor=x_churnwatch_user)

    @router.get("/interviews")
    def get_interviews(since: dt.date | None = None, until: dt.date | None = None) -> list[dict]:
        return interviews.list_interviews(engine(), since, until)

    @router.get("/interviews/{account}")
    def get_account(account: str) -> list[dict]:
        found = interviews.get(engine(), account)
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no exit interview recorded for account {account!r}")
        return found

    @router.post("/interviews/{account}/confirm")
    def post_confirm(account: str, body: Confirmation, x_churnwatch_user: str | None = Header(None)) -> dict:
        try:
            return interviews.confirm(engine(), account, body.category, body.avoidable, x_churnwatch_user or body.by,
                                      body.churned_at)
        except InterviewError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc

    return router
