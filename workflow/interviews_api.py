"""The exit interviews and the churn review's findings over HTTP: FastAPI ``APIRouter`` s that
``workflow.http`` includes (``interviews_router``, ``findings_router``).

* ``POST /interviews``: record (or replace) one interview (``workflow.interviews.InterviewIn``);
  201 with the record, its suggested category and flag, and the confirmed ones when given.
* ``GET /interviews``: every interview (``?since=&until=`` churn dates, YYYY-MM-DD).
* ``GET /interviews/{account}``: the account's interviews, latest first; 404 when none.
* ``POST /interviews/{account}/confirm``: the interviewer confirms or changes the category and
  flag of the account's latest interview (``{"category": ..., "avoidable": ..., "by": ...}``).

Findings (``workflow.review``): ``GET /findings`` (``?status=``), ``POST /findings``
(title, owner, detail, change_date, metric, add_owner; 201), ``PATCH /findings/{id}`` (any of
status, owner, title, detail, change_date, metric). A rule broken (unknown owner, metric or
status; change date without metric) is a 422 naming it; an unknown finding a 404.

Bad input is a 422 naming the field (pydantic); an unknown account a 404. The acting person is
the ``X-Churnwatch-User`` header when sent, else the interviewer (``anonymous`` for findings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import APIRouter, Header, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Engine

from core.vocabulary import REASON_BY_KEY, REASON_KEYS
from workflow import interviews, review
from workflow.interviews import InterviewError, InterviewIn
from workflow.review import FindingError


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


class FindingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=300)
    owner: str = Field(min_length=1, max_length=200)
    detail: str | None = Field(None, max_length=10_000)
    change_date: dt.date | None = None
    metric: str | None = None
    add_owner: bool = False


class FindingChange(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: str | None = None
    owner: str | None = Field(None, min_length=1, max_length=200)
    title: str | None = Field(None, min_length=1, max_length=300)
    detail: str | None = Field(None, max_length=10_000)
    change_date: dt.date | None = None
    metric: str | None = None
    add_owner: bool = False


def findings_router(engine: Callable[[], Engine]) -> APIRouter:
    """The findings router; ``engine()`` returns the operational store's engine."""
    router = APIRouter(tags=["churn review"])

    def rule(exc: FindingError) -> HTTPException:
        missing = str(exc).startswith("no finding ")
        return HTTPException(status.HTTP_404_NOT_FOUND if missing else 422, str(exc))

    @router.get("/findings")
    def get_findings(status_: str | None = Query(None, alias="status")) -> list[dict]:
        try:
            return review.list_findings(engine(), status_)
        except FindingError as exc:
            raise rule(exc) from exc

    @router.post("/findings", status_code=status.HTTP_201_CREATED)
    def post_finding(body: FindingIn, x_churnwatch_user: str | None = Header(None)) -> dict:
        try:
            return review.add(engine(), body.title, body.owner, x_churnwatch_user or "anonymous", body.detail,
                              body.change_date, body.metric, body.add_owner)
        except FindingError as exc:
            raise rule(exc) from exc

    @router.patch("/findings/{finding_id}")
    def patch_finding(finding_id: int, body: FindingChange, x_churnwatch_user: str | None = Header(None)) -> dict:
        try:
            return review.update(engine(), finding_id, x_churnwatch_user or "anonymous",
                                 **body.model_dump(exclude_none=True))
        except FindingError as exc:
            raise rule(exc) from exc

    return router
