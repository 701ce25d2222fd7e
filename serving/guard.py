"""The request guard: ASGI middleware in front of BentoML's endpoints.

It checks what BentoML and pydantic cannot, before a body is parsed, and answers every error
as RFC 9457 problem details (``serving/problems.py``):

- the method: a path the service answers with another method gets 405 with ``Allow``
  (RFC 9110), before the token and the body are looked at (the routes are public: ``/docs.json``);
- requests in progress in this worker, at most ``max_concurrent_requests`` (health probes
  and metrics are not counted): past it, the request that has waited longest for its body
  gives its place to the new one, or, when none is waiting for a body, the new one is
  answered 503 with ``Retry-After``;
- the bearer token (BentoML has no authentication of its own outside BentoCloud): 401;
- the media type and the content encoding (``serving/limits.py``): 415;
- the body's size, from ``Content-Length`` and while it streams in, also once decompressed
  (nothing limits it otherwise): 413; the time it takes to arrive: 408.

A refusal sent before the whole body was read closes the connection (``Connection: close``):
the rest of the body must not be read as the next request, and a slow client must not keep
its socket. Every answer of 400 or more is logged in one line (``serving/logs.py``).

Header values are decoded as latin-1 (RFC 9110), so a non-UTF-8 header is never a 500.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from core.settings import ServingSettings
from serving.limits import (
    JSON,
    RETRY_AFTER_SECONDS,
    ClientGone,
    Refused,
    Slot,
    Slots,
    check_encoding,
    check_media_type,
    decompress,
    read_body,
)
from serving.logs import log_refusal
from serving.problems import PROBLEM_TYPE, from_bentoml, problem_response, slug_and_title

OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs", "/docs.json")
UNCOUNTED_PATHS = ("/livez", "/readyz", "/healthz", "/metrics")
BODY_METHODS = ("POST",)  # the only method with a body that an endpoint takes
READ = ("GET", "HEAD")
#: path -> the methods its endpoint answers (``/accounts/{account_id}/history``: ``history_path``)
ROUTES: dict[str, tuple[str, ...]] = {
    "/score": ("POST",), "/score_accounts": ("POST",), "/scores": READ, "/scores/": READ, "/model/": READ,
    "/livez": READ, "/readyz": READ, "/healthz": READ, "/metrics": READ, "/docs.json": READ, "/": READ,
    "/docs": READ, "/docs/": READ,
}


class Guard:
    """ASGI middleware: slots, token, media type, encoding, body size and time before BentoML
    parses a request; every error answer rewritten as problem details and logged (module docstring)."""

    def __init__(self, app: Any, token: str | None = None, limits: ServingSettings | None = None) -> None:
        self.app = app
        self.token = token or None
        self.limits = limits or ServingSettings()
        self.slots = Slots(self.limits.max_concurrent_requests)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/model":  # the mounted app's root
            scope = {**scope, "path": "/model/", "raw_path": b"/model/"}
        send = _logged(scope, send)
        allowed = allowed_methods(scope["path"])
        if allowed is not None and scope["method"] not in allowed:
            await _refuse(Refused(405, f"{scope['path']} answers {' and '.join(allowed)} only, not {scope['method']}",
                                  headers={"Allow": ", ".join(allowed)}), scope, send)
            return
        if scope["path"].startswith(UNCOUNTED_PATHS):
            await self.app(scope, receive, send)
            return
        slot = self.slots.take()
        if slot is None:
            await _refuse(_busy(f"more than {self.slots.size} requests in progress"), scope, send)
            return
        try:
            await self._checked(scope, receive, send, slot)
        finally:
            self.slots.give_back(slot)

    async def _checked(self, scope: dict, receive: Any, send: Any, slot: Slot) -> None:
        try:
            if not scope["path"].startswith(OPEN_PATHS) and scope["path"] != "/":
                self._check_token(scope)
            if scope["method"] in BODY_METHODS:
                scope, receive = await self._with_body(scope, receive, slot)
        except Refused as refused:
            await _refuse(refused, scope, send)
            return
        except ClientGone:
            return
        await self.app(scope, receive, _as_problems(send))

    def _check_token(self, scope: dict) -> None:
        if self.token is None:
            return
        given = _headers(scope).get("authorization", "").encode("latin-1")
        if not hmac.compare_digest(given, f"Bearer {self.token}".encode("latin-1", "replace")):
            raise Refused(401, "send the token as 'Authorization: Bearer <token>'",
                          headers={"WWW-Authenticate": 'Bearer realm="churnwatch"'})

    async def _with_body(self, scope: dict, receive: Any, slot: Slot) -> tuple[dict, Any]:
        """The scope and a ``receive`` replaying the checked, decompressed body (limits in the
        module docstring); the scope's headers then describe that body as plain JSON."""
        headers = _headers(scope)
        check_media_type(headers.get("content-type", ""))
        encoding = check_encoding(headers.get("content-encoding", ""))
        length = headers.get("content-length", "0").strip() or "0"
        if not length.isdigit():
            raise Refused(400, f"Content-Length {length!r} is not a whole number")
        max_bytes = self.limits.max_body_bytes
        if len(length) > len(str(max_bytes)) or int(length) > max_bytes:  # no int() of 5,000 digits
            raise Refused(413, f"request body larger than {max_bytes} bytes")
        body = None
        with self.slots.waiting_for_body(slot):
            body = await read_body(receive, max_bytes, self.limits.body_timeout_seconds)
        if body is None:  # its slot went to a new request
            raise _busy("the server is full and this request's body was the slowest to arrive")
        if encoding is not None:
            body = decompress(body, encoding, max_bytes)
        kept = [(k, v) for k, v in scope["headers"]
                if k.lower() not in (b"content-type", b"content-encoding", b"content-length")]
        scope = {**scope, "headers": [*kept, (b"content-type", JSON.encode()),
                                      (b"content-length", str(len(body)).encode())]}
        return scope, _replay(body, receive)


def allowed_methods(path: str) -> tuple[str, ...] | None:
    """The methods the endpoint at ``path`` answers; None for a path that is not an endpoint (404)."""
    if path in ROUTES:
        return ROUTES[path]
    if path.startswith("/accounts/") and path.endswith("/history") and len(path) > len("/accounts//history"):
        return READ
    return None


def _headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that gives ``body`` once, then what the server says (a disconnect)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _busy(why: str) -> Refused:
    return Refused(503, f"{why}; retry later", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _refuse(refused: Refused, scope: dict, send: Any) -> None:
    headers = {**refused.headers, **({"Connection": "close"} if refused.close else {})}
    await problem_response(refused.status, refused.detail, headers=headers)(scope, _nothing, send)


async def _nothing() -> dict:
    return {"type": "http.disconnect"}


def _logged(scope: dict, send: Any) -> Any:
    """``send`` that logs one line when an answer of 400 or more is complete."""
    status = 0

    async def logged(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)
        if status >= 400 and message["type"] == "http.response.body" and not message.get("more_body", False):
            log_refusal(scope, status, slug_and_title(status)[1])

    return logged


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
