"""The workspace app: ``build_app(home, settings)`` (served by ``churnwatch app``).

Sign-in, sign-out and the language switch are here; the pages are routers of their own modules
(``workspace.pages``) included by ``build_app``. Every route runs ``csrf_protect`` first (an
app-wide dependency). Errors are pages in the user's language: 403 (a page of another's
account, a role that may not, a bad CSRF token), 404, 409, 422 (bad input, named), 429 (sign-in
rate limit); never a 5xx for bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.settings import Settings
from workflow.audit import record
from workflow.db import store_for, write
from workflow.people import USERS
from workspace.auth import SESSION_SECONDS, RateLimited, SessionCodec, secret_key, sign_in
from workspace.texts import lang_of
from workspace.web import (
    COOKIE,
    STATIC,
    SignInRequired,
    csrf_protect,
    current_user,
    engine_of,
    environment,
    redirect,
    render,
    request_lang,
    session,
)

ERROR_KEYS = {403: "forbidden", 404: "not_found"}


def _is_https(request: Request, settings: Settings) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https" or settings.operations.link_base.startswith("https")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def build_app(home: Path, settings: Settings | None = None,
              file_settings: Callable[[], Settings] | None = None) -> FastAPI:
    """The workspace over ``home`` (its published scores, store and operational store). ``file_settings``
    reads churnwatch.yaml again: the admin pages save a version over the file as it is then, not as it
    was when the app started (default: ``settings``)."""
    settings = settings or Settings()
    app = FastAPI(title="churnwatch workspace", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(csrf_protect)])
    app.state.home = Path(home)
    app.state.settings = settings
    app.state.file_settings = file_settings or (lambda: settings)
    app.state.engine = store_for(Path(home), settings.operations.url)
    app.state.templates = environment()
    codec = SessionCodec(secret_key(Path(home)))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def sessions(request: Request, call_next):
        raw = request.cookies.get(COOKIE)
        data = codec.loads(raw)
        before = json.dumps(data, sort_keys=True)
        request.state.session = data
        response = await call_next(request)
        if json.dumps(data, sort_keys=True) != before or raw is None:
            response.set_cookie(COOKIE, codec.dumps(data), max_age=SESSION_SECONDS, httponly=True, samesite="lax",
                                secure=_is_https(request, settings), path="/")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                    "style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        return response

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, _exc: SignInRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return redirect(f"/login?next={quote(target, safe='')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        key, message = None, str(exc.detail)
        if exc.detail in ("csrf_failed", "forbidden", "not_found"):
            key = exc.detail
        elif exc.detail == HTTPStatus(exc.status_code).phrase:  # Starlette's own (an unknown path: 404)
            key = ERROR_KEYS.get(exc.status_code)
        return render(request, "error.html.j2", status_code=exc.status_code, code=exc.status_code, key=key,
                      message=message)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError):
        words = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'input'}: {e['msg']}" for e in exc.errors())
        return render(request, "error.html.j2", status_code=422, code=422, key=None, message=words)

    @app.get("/login")
    def login_page(request: Request, next: str | None = None):
        return render(request, "login.html.j2", next=safe_next(next), failed=None)

    @app.post("/login")
    def login(request: Request, username: Annotated[str, Form(max_length=320)] = "",
              password: Annotated[str, Form(max_length=1024)] = "", next: Annotated[str, Form()] = "/"):
        try:
            user = sign_in(engine_of(request), username, password, client_ip(request))
        except RateLimited as exc:
            minutes = max(1, round(exc.retry_after / 60))
            response = render(request, "login.html.j2", status_code=429, next=safe_next(next),
                              failed=("rate_limited", {"minutes": minutes}))
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        if user is None:
            return render(request, "login.html.j2", status_code=401, next=safe_next(next), failed=("bad_login", {}))
        data = session(request)
        data.clear()  # a new session (and CSRF token) at every sign-in
        data["uid"] = user["id"]
        return redirect(safe_next(next))

    @app.post("/logout")
    def logout(request: Request):
        session(request).clear()
        return redirect("/login")

    @app.post("/lang")
    def switch_language(request: Request, lang: Annotated[str, Form()], next: Annotated[str, Form()] = "/"):
        chosen = lang_of(lang)
        session(request)["lang"] = chosen
        try:
            user = current_user(request)
        except SignInRequired:
            return redirect(safe_next(next))
        if user["lang"] != chosen:
            with write(engine_of(request)) as conn:
                conn.execute(USERS.update().where(USERS.c.id == user["id"]).values(lang=chosen))
                record(conn, actor=user["name"], entity="user", entity_id=user["id"], action="update",
                       before={"lang": user["lang"]}, after={"lang": chosen})
            user["lang"] = chosen
        return redirect(safe_next(next))

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    from workspace.review_pages import router as review_pages

    app.include_router(review_pages)  # before the pages: /accounts/{id}/exit-interview is not an account id
    from workspace.pages import router as pages

    app.include_router(pages)
    from workspace.portfolio_page import router as portfolio_page

    app.include_router(portfolio_page)  # GET /portfolio (leads and admins)
    from workspace.admin import install as install_admin

    install_admin(app)  # /admin/settings; the app follows the saved settings versions
    app.state.request_lang = request_lang
    return app


def forbid() -> HTTPException:
    """The 403 a page raises for what the user's role may not see."""
    return HTTPException(status_code=403, detail="forbidden")
