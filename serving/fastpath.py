"""The hot endpoints answered in front of BentoML's API machinery (issue 14, speed).

``POST /score_accounts`` (a lookup in the published scores) and ``POST /score`` with a few
accounts cost less to answer than BentoML's request handling around them (its request
object, the validation of the arguments into a model and back into keyword arguments, the
thread hop, the response wrapping). ``FastRoutes`` is an ASGI middleware inside the request
guard (``serving/guard.py``: the token, the limits on bodies and requests in progress still
apply; the guard has read the body by then) that answers these two paths itself when it can:

* the body is valid for the endpoint's request model (pydantic's JSON validation, the models
  BentoML validates against, so what is accepted is the same);
* ``/score_accounts``: not ``live`` and every id has a published score: the answer is joined
  from the per-account JSON bytes prebuilt per language (``serving/published.py``; the file's
  ``stat`` is checked on each request, a few microseconds, and a new run is picked up then);
* ``/score``: at most ``INLINE_MAX_ACCOUNTS`` accounts: scored here on the event loop; a large
  body (over ``SMALL_BODY_BYTES``) that is plainly valid (``serving.scoring.plain_rows``: the
  request model's rules checked with arrays, about three times faster than building 1,000
  pydantic models) is scored in a worker thread, one batch at a time per worker, and its answer
  written by orjson (a tenth of the json module's time for 1,000 results).

Anything else (an invalid body, whose error BentoML words; an id without a published score,
scored live in a thread; a large batch) goes on to BentoML's endpoint unchanged, so the
endpoints, their answers and the OpenAPI document (``serving/openapi.py``) stay one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import anyio
import orjson
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from core.errors import ChurnwatchError
from core.vocabulary import Lang
from serving.api import MAX_ACCOUNTS
from serving.problems import problem_response
from serving.scoring import paused_collector, plain_rows
from training.model import FeatureRows

#: ``/score`` requests of at most this many accounts are scored on the event loop.
INLINE_MAX_ACCOUNTS = 16
#: ``/score`` bodies above this size are parsed and checked with arrays (``Hot.batch``), not a model.
SMALL_BODY_BYTES = 64 * 1024
LANGS = frozenset(get_args(Lang))
JSON_HEADERS = [(b"content-type", b"application/json")]


class Hot:
    """What the fast path answers from, set by each worker when it starts (``ChurnService.__init__``)."""

    scorer: Any = None
    published: Any = None
    results: Callable[[list, str], bytes] | None = None
    batches: anyio.CapacityLimiter | None = None  # one batch at a time per worker


class FastRoutes:
    """ASGI middleware answering ``/score_accounts`` lookups and small ``/score`` requests
    (module docstring); everything else goes on to ``app``."""

    def __init__(self, app: Any, hot: Hot, score_request: type[BaseModel],
                 score_accounts_request: type[BaseModel]) -> None:
        self.app = app
        self.hot = hot
        self.score_request = score_request
        self.score_accounts_request = score_accounts_request

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope["path"] if scope["type"] == "http" and scope["method"] == "POST" else ""
        if path not in ("/score_accounts", "/score") or self.hot.scorer is None:
            await self.app(scope, receive, send)
            return
        body, receive = await _whole_body(receive)
        if path == "/score_accounts":
            answer = self._score_accounts(body)
        elif len(body) > SMALL_BODY_BYTES and (batch := self._batch(body)) is not None:
            answer = await anyio.to_thread.run_sync(self._score_rows, *batch, limiter=self.hot.batches)
        else:
            answer = self._score(body)
        if answer is None:
            await self.app(scope, receive, send)
            return
        await _send(send, answer)

    def _score_accounts(self, body: bytes) -> bytes | None:
        try:
            request = self.score_accounts_request.model_validate_json(body)
        except ValidationError:
            return None
        if request.live:
            return None
        snap = self.hot.published.current()
        if snap is None:
            return None
        answers = snap.answers[request.lang]
        try:
            return b"[" + b", ".join([answers[a] for a in request.account_ids]) + b"]"
        except KeyError:  # an id without a published score: scored live by the endpoint
            return None

    def _batch(self, body: bytes) -> tuple[FeatureRows, str] | None:
        """A large ``/score`` body as rows checked with arrays (``serving.scoring.plain_rows``,
        the request model's rules) and its language; None when it is not plainly valid."""
        try:
            request = orjson.loads(body)
        except (ValueError, RecursionError):  # not JSON (or NaN, a lone surrogate, nested too deep): pydantic words it
            return None
        if type(request) is not dict or not request.keys() <= {"accounts", "lang"} or "accounts" not in request:
            return None
        accounts, lang = request["accounts"], request.get("lang", "en")
        if type(lang) is not str or lang not in LANGS:
            return None
        if type(accounts) is not list or not 0 < len(accounts) <= MAX_ACCOUNTS:
            return None
        rows = plain_rows(accounts, self.hot.scorer.catalogue)
        return None if rows is None else (rows, lang)

    def _score_rows(self, rows: FeatureRows, lang: str) -> bytes | Response:
        """The batch's answer; the garbage collector stays paused until the results are written
        and freed (``serving.scoring.paused_collector``), so no pass walks them."""
        try:
            with paused_collector():
                return orjson.dumps(self.hot.scorer.results(rows, lang), option=orjson.OPT_SERIALIZE_NUMPY)
        except ChurnwatchError as exc:
            return problem_response(422, str(exc))

    def _score(self, body: bytes) -> bytes | Response | None:
        try:
            request = self.score_request.model_validate_json(body)
        except ValidationError:
            return None
        if len(request.accounts) > INLINE_MAX_ACCOUNTS:
            return None
        try:
            return self.hot.results(request.accounts, request.lang, request.as_of)
        except ChurnwatchError as exc:
            return problem_response(422, str(exc))


async def _whole_body(receive: Any) -> tuple[bytes, Any]:
    """The request body and a ``receive`` that gives it again (the guard has read it already,
    so this is one message)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


async def _send(send: Any, answer: bytes | Response) -> None:
    if isinstance(answer, Response):
        await answer({"type": "http"}, _nothing, send)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


async def _nothing() -> dict:
    return {"type": "http.disconnect"}
