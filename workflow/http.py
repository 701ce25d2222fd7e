"""The workflow's HTTP API: a FastAPI app, one router per module, mounted in the BentoML service
at ``/workflow`` (``serving/service.py``). Everything the CLI does with tasks and users.

* ``GET /tasks`` (``owner``, ``tier``, ``status``, ``overdue``), ``GET /tasks/{id}``,
  ``POST /tasks/{id}/transition`` (``{"action": "plan" | "approve" | "assign" | "done" |
  "cancel", "actor": ..., "text" | "to" + "next_action" | "reason", "version"}``);
  ``GET /users``, ``POST /users``.
* Errors: 404 an unknown task, 409 an illegal transition (naming the allowed ones) or a stale
  ``version``, 422 a malformed body or a bad value; never a 5xx for bad input.
* The bearer token: the service's guard checks it in front of every route; the app checks it
  too (``token``, default ``CHURNWATCH_API_TOKEN``), so it is safe on its own as well.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from core.errors import ChurnwatchError
from workflow import tasks as task_store
from workflow.db import write
from workflow.interviews_api import findings_router, interviews_router
from workflow.people import ROLES, add_user, list_users

TOKEN_ENV = "CHURNWATCH_API_TOKEN"


class Transition(BaseModel):
    """One step of a task's lifecycle."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="plan, approve, assign, done or cancel (or the status to move to)")
    actor: str = Field(min_length=1, max_length=200, description="who does it (recorded in the audit log)")
    text: str | None = Field(None, max_length=20_000, description="plan: the retention plan")
    to: str | None = Field(None, max_length=320, description="assign: the user (id, e-mail, CRM name or name)")
    next_action: str | None = Field(None, max_length=2_000, description="assign: the next action")
    reason: str | None = Field(None, max_length=2_000, description="cancel: why")
    version: int | None = Field(None, ge=1, description="the version read; a newer one answers 409")


class NewUser(BaseModel):
    """A user to add."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    actor: str = Field(min_length=1, max_length=200)
    email: str | None = Field(None, max_length=320)
    crm_name: str | None = Field(None, max_length=200)
    role: str = Field("csm", description=f"one of {', '.join(ROLES)}")
    team: str | None = Field(None, max_length=200)
    manager: str | None = Field(None, max_length=320)
    lang: str = Field("en", pattern=r"^(en|zh-CN)$")


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def make_app(engine: Engine | Callable[[], Engine], token: str | None = None) -> FastAPI:
    """The workflow API over ``engine`` (or a function returning it, called on first use)."""
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    cache: dict[str, Engine] = {}

    def store() -> Engine:
        if "engine" not in cache:
            cache["engine"] = engine() if callable(engine) else engine
        return cache["engine"]

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is None:
            return
        if not hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "send the token as 'Authorization: Bearer <token>'")

    app = FastAPI(title="churnwatch workflow", dependencies=[Depends(authorised)])

    @app.exception_handler(task_store.TaskError)
    async def task_error(_request: Request, exc: task_store.TaskError) -> JSONResponse:
        return _problem(exc.status_code, str(exc))

    @app.exception_handler(ChurnwatchError)
    async def bad_value(_request: Request, exc: ChurnwatchError) -> JSONResponse:
        return _problem(422, str(exc))

    app.include_router(task_router(store))
    app.include_router(user_router(store))
    app.include_router(interviews_router(store))
    app.include_router(findings_router(store))
    return app


def task_router(store: Callable[[], Engine]) -> APIRouter:
    """``/tasks``: list, read, move."""
    router = APIRouter(prefix="/tasks", tags=["tasks"])

    @router.get("")
    def list_tasks(owner: str | None = None, tier: str | None = None,
                   status: Annotated[str | None, Query(description="a status, active (default) or all")] = None,
                   overdue: bool = False,
                   limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000) -> list[dict[str, Any]]:
        return task_store.list_tasks(store(), owner=owner, tier=tier, status=status, overdue=overdue, limit=limit)

    @router.get("/{task_id}")
    def get_task(task_id: int) -> dict[str, Any]:
        task = task_store.get_task(store(), task_id)
        with store().connect() as conn:
            from workflow.audit import history

            task["history"] = history(conn, "task", str(task_id))
        return task

    @router.post("/{task_id}/transition")
    def transition(task_id: int, body: Transition) -> dict[str, Any]:
        return task_store.transition(store(), task_id, body.action, body.actor, text=body.text, to=body.to,
                                     next_action=body.next_action, reason=body.reason, version=body.version)

    return router


def user_router(store: Callable[[], Engine]) -> APIRouter:
    """``/users``: list, add."""
    router = APIRouter(prefix="/users", tags=["users"])

    @router.get("")
    def users() -> list[dict[str, Any]]:
        with store().connect() as conn:
            return list_users(conn)

    @router.post("", status_code=201)
    def new_user(body: NewUser) -> dict[str, Any]:
        with write(store()) as conn:
            return add_user(conn, **body.model_dump())

    return router


def service_app() -> FastAPI:
    """The app the service mounts: the operational store of ``CHURNWATCH_HOME``'s home, opened on
    the first request (a worker that never gets one never opens it)."""

    def engine() -> Engine:
        from core.home import Home
        from core.settings import load_settings
        from workflow.db import store_for

        home = Home.resolve(os.environ.get("CHURNWATCH_HOME"))
        return store_for(home.root, load_settings(None, home.root).operations.url)

    return make_app(engine)
