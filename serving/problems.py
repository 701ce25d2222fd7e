"""One error shape for every 4xx (and 5xx): RFC 9457 problem details, and the request guard.

Every error answer is ``application/problem+json``::

    {"type": "urn:churnwatch:problem:invalid-request", "title": "Request does not match the schema",
     "status": 422, "detail": "1 invalid field",
     "errors": [{"loc": "accounts[0].features.logins_30d", "msg": "Input should be greater than or equal to 0"}]}

BentoML and pydantic validate the body against the models of ``serving/api.py``; BentoML
answers their errors in its own shape, which ``Guard`` rewrites into a problem (the field
path joined as ``accounts[0].features.logins_30d``; invalid JSON is 400, a body that breaks
the schema 422). The guard itself checks only what BentoML and pydantic cannot, before the
body is parsed:

- the bearer token (BentoML has no authentication of its own outside BentoCloud): 401;
- the content type (BentoML parses any other type as JSON): 415;
- the body size, from ``Content-Length`` and while the body streams in (nothing limits it
  otherwise, and the whole body would be held in memory before parsing): 413.

Header values are decoded as latin-1 (RFC 9110), so a non-UTF-8 header is never a 500. JSON
nesting is limited by pydantic's parser (a 400 naming the recursion limit).
"""

from __future__ import annotations

import hmac
import json
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import Response

from serving.scoring import field_path

PROBLEM_TYPE = "application/problem+json"
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs", "/docs.json")

#: status -> (type slug, title): the problems this service answers.
PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("malformed-request", "Malformed request body"),
    401: ("unauthorized", "Missing or wrong bearer token"),
    404: ("not-found", "No such endpoint"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-request", "Request does not match the schema"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Service temporarily unavailable"),
}


class FieldError(BaseModel):
    """One offending field."""

    loc: str = Field(description="path of the field, e.g. accounts[0].features.logins_30d")
    msg: str = Field(description="what is wrong with it")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="a URI naming the kind of problem")
    title: str = Field(description="short summary of the kind of problem")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what is wrong with this request")
    errors: list[FieldError] = Field(default_factory=list, description="offending fields, if any")


def problem(status: int, detail: str, errors: list[dict] | None = None) -> dict:
    """A problem-details body for ``status``."""
    slug, title = PROBLEMS.get(status, ("error", HTTPStatus(status).phrase))
    return {"type": f"urn:churnwatch:problem:{slug}", "title": title, "status": status, "detail": detail,
            "errors": errors or []}


def problem_response(status: int, detail: str, errors: list[dict] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    """A Starlette response carrying ``problem(status, detail, errors)``."""
    body = json.dumps(problem(status, detail, errors), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def from_bentoml(status: int, body: bytes) -> dict:
    """BentoML's error body (``{"error", "detail": [pydantic errors]}``, ``[{"error"}]`` or
    plain text) as a problem; a pydantic error list becomes 400 (invalid JSON) or 422."""
    try:
        raw: Any = json.loads(body)
    except ValueError:
        return problem(status, body.decode("utf-8", "replace").strip() or HTTPStatus(status).phrase)
    if isinstance(raw, list) and raw:
        raw = raw[0]
    if not isinstance(raw, dict):
        return problem(status, str(raw))
    details = raw.get("detail")
    if isinstance(details, list) and details and all(isinstance(d, dict) and "loc" in d for d in details):
        if any(d.get("type") == "json_invalid" for d in details):
            return problem(400, "; ".join(d.get("msg", "") for d in details))
        errors = [{"loc": field_path(d["loc"]) or "body", "msg": str(d.get("msg", ""))} for d in details]
        return problem(422, f"{len(errors)} invalid field(s): {', '.join(e['loc'] for e in errors[:10])}", errors)
    return problem(status, str(raw.get("error") or raw.get("detail") or HTTPStatus(status).phrase))


class Guard:
    """ASGI middleware: token, content type and body size before BentoML parses a request;
    every error answer rewritten as problem details (module docstring)."""

    def __init__(self, app: Any, token: str | None = None, max_bytes: int = 8_000_000) -> None:
        self.app = app
        self.token = token or None
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/model":  # the mounted app's root
            scope = {**scope, "path": "/model/", "raw_path": b"/model/"}
        refusal = None if scope["path"].startswith(OPEN_PATHS) or scope["path"] == "/" else self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope["method"] == "POST":
            receive = await self._limited_body(receive)
            if isinstance(receive, Response):
                await receive(scope, _nothing, send)
                return
        await self.app(scope, receive, _as_problems(send))

    def _refusal(self, scope: dict) -> Response | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is not None:
            given = headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(given, f"Bearer {self.token}".encode("latin-1", "replace")):
                return problem_response(401, "send the token as 'Authorization: Bearer <token>'",
                                        headers={"WWW-Authenticate": 'Bearer realm="churnwatch"'})
        if scope["method"] != "POST":
            return None
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return problem_response(415, f"content type must be application/json, not {media_type or 'none'!r}")
        length = headers.get("content-length", "0").strip() or "0"
        if not length.isdigit():
            return problem_response(400, f"Content-Length {length!r} is not a whole number")
        if int(length) > self.max_bytes:
            return problem_response(413, f"request body larger than {self.max_bytes} bytes")
        return None

    async def _limited_body(self, receive: Any) -> Any:
        """The whole body, read here (at most ``max_bytes``), replayed to the app; or a 413."""
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return receive
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return problem_response(413, f"request body larger than {self.max_bytes} bytes")
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay


async def _nothing() -> dict:
    return {"type": "http.disconnect"}


def _as_problems(send: Any) -> Any:
    """``send`` that rewrites an error answer (status >= 400, not already a problem) as one."""
    start: dict | None = None
    chunks: list[bytes] = []

    async def wrapped(message: dict) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            is_problem = headers.get(b"content-type", b"").startswith(PROBLEM_TYPE.encode())
            if message["status"] < 400 or is_problem:
                await send(message)
                return
            start = message
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        answer = from_bentoml(start["status"], b"".join(chunks))
        body = json.dumps(answer, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": answer["status"],
                    "headers": [(b"content-type", PROBLEM_TYPE.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return wrapped
