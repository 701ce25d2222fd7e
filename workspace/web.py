"""The workspace's foundation that every page uses: the session, the signed-in user, roles, CSRF
and rendering (``render``) through one Jinja2 environment with autoescape on.

* ``current_user`` (a FastAPI dependency): the signed-in, active user (``dict``, no password
  hash), else a redirect to ``/login``. ``require_role("lead", "admin")`` adds a role check (403).
* CSRF: the session holds a random token; ``csrf_field()`` in a template writes it as a hidden
  input. ``csrf_protect`` runs before every route of the app (it is an app-wide dependency):
  a POST, PUT, PATCH or DELETE whose ``csrf_token`` form field (or ``X-CSRF-Token`` header)
  does not match is refused with 403.
* ``render(request, "page.html.j2", **context)``: the page in the user's language; templates get
  ``t(key, **values)`` (``workspace.texts``), ``user``, ``lang``, ``csrf_field``, ``tier_label`` and
  ``account_name(id)`` (the data source's display name, ``workflow.facts.display_name``, or None).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.engine import Engine

from core.vocabulary import TIER_BY_KEY, probability_text, tier_label
from training.reason_text import category_words
from workflow.facts import display_name
from workflow.people import user_row
from workspace.texts import lang_of, t

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
COOKIE = "churnwatch_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class SignInRequired(Exception):
    """Raised by ``current_user`` for a request without a valid session."""


def environment() -> Environment:
    """The workspace's Jinja2 environment: autoescape on for every template; the filter ``words``
    words a category as the reasons do (``COMPUTER_SOFTWARE`` -> "computer software")."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True,
                      default_for_string=True), trim_blocks=True, lstrip_blocks=True)
    env.filters["words"] = category_words
    env.filters["probability"] = probability_text
    return env


def session(request: Request) -> dict:
    """The request's session (set by the app's middleware; changes are saved in the response)."""
    return request.state.session


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


def request_lang(request: Request) -> str:
    """The signed-in user's language, else the session's, else English."""
    user = getattr(request.state, "user", None)
    if user:
        return lang_of(user.get("lang"))
    return lang_of(session(request).get("lang"))


def current_user(request: Request) -> dict[str, Any]:
    """The signed-in user (active), else ``SignInRequired`` (the app redirects to /login)."""
    cached = getattr(request.state, "user", None)
    if cached:
        return cached
    uid = session(request).get("uid")
    if uid is None:
        raise SignInRequired
    with engine_of(request).connect() as conn:
        user = user_row(conn, int(uid))
    if not user or not user["active"] or not user.get("password_hash"):
        session(request).pop("uid", None)
        raise SignInRequired
    user = {k: v for k, v in user.items() if k != "password_hash"}
    request.state.user = user
    return user


#: ``user: CurrentUser`` in a route's parameters: the signed-in user (or a redirect to /login)
CurrentUser = Annotated[dict[str, Any], Depends(current_user)]


def require_role(*roles: str) -> Callable[..., dict[str, Any]]:
    """A dependency: the current user when their role is one of ``roles``, else 403."""

    def check(user: CurrentUser) -> dict[str, Any]:
        if user["role"] not in roles:
            raise HTTPException(status_code=403, detail="forbidden")
        return user

    return check


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    data = session(request)
    if not data.get("csrf"):
        data["csrf"] = secrets.token_urlsafe(32)
    return data["csrf"]


async def csrf_protect(request: Request) -> None:
    """Refuse (403) an unsafe request whose CSRF token is missing or wrong (app-wide dependency)."""
    if request.method not in UNSAFE:
        return
    expected = session(request).get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(status_code=403, detail="csrf_failed")


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered in the request's language with the shared context."""
    lang = request_lang(request)
    token = csrf_token(request)

    def text(key: str, **values: Any) -> str:
        return t(key, lang, **values)

    page = request.app.state.templates.get_template(template).render(
        request=request, user=getattr(request.state, "user", None), lang=lang, t=text,
        csrf_field=lambda: Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">'),
        csrf_token=token, tier_label=lambda key: tier_label(key, lang) if key else "",
        tier_colour=lambda key: TIER_BY_KEY[key].colour if key in TIER_BY_KEY else "#999999",
        account_name=lambda aid: display_name(request.app.state.settings, aid),
        flash=take_flash(request), **context)
    return HTMLResponse(page, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    """A 303 to ``url`` (after a form's POST)."""
    return RedirectResponse(url, status_code=303)


def flash(request: Request, key: str, **values: Any) -> None:
    """A message for the next page (a label key and its values)."""
    session(request)["flash"] = [key, {k: str(v) for k, v in values.items()}]


def take_flash(request: Request) -> str | None:
    item = session(request).pop("flash", None)
    if not item:
        return None
    return t(item[0], request_lang(request), **item[1])
