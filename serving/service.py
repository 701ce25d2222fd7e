"""The BentoML prediction service (DESIGN §5): thin; validation and scoring live in
``serving/scoring.py``.

Configured by environment (``churnwatch serve`` sets them): ``CHURNWATCH_HOME`` (home
folder), ``CHURNWATCH_MODEL`` (bundle folder or ``models:/churnwatch@alias``; default the
champion), ``CHURNWATCH_STORE`` (snapshot store for ``/score_accounts``),
``CHURNWATCH_API_TOKEN`` (bearer token; health and metrics stay open),
``CHURNWATCH_MAX_BODY_BYTES`` (default 8 MB: 1,000 accounts with every feature),
``CHURNWATCH_WORKERS`` (worker processes, default 1; one per core is the fastest when the
machine serves nothing else).

The endpoints are ``async``: a request of a few accounts (a few milliseconds of CPU) is
scored on the event loop, which saves the hop to a thread pool; larger batches go to a
worker thread so they do not hold up the small requests behind them.
"""

from __future__ import annotations

import gc
import hmac
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import bentoml
import duckdb
from bentoml.exceptions import InvalidArgument, ServiceUnavailable
from pydantic import BaseModel, ConfigDict, Field, Strict, StrictStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.errors import ChurnwatchError

Lang = Literal["en", "zh-CN"]
FeatureValue = Annotated[float, Strict(), Field(allow_inf_nan=False)] | StrictStr | None  # true is not 1.0
TOP_LEVEL_FIELDS = {"/score": {"accounts", "lang"}, "/score_accounts": {"account_ids", "lang"}}
INLINE_MAX_ACCOUNTS = 16  # scored on the event loop; larger batches in a worker thread
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs", "/docs.json", "/schema.json")


class AccountFeatures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=200)
    features: dict[str, FeatureValue] = Field(default_factory=dict)


class GuardMiddleware:
    """Bearer token, body size, content type and JSON syntax, before BentoML sees a request:
    a malformed request gets a 4xx naming what is wrong, never a 5xx."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.token = os.environ.get("CHURNWATCH_API_TOKEN") or None
        self.max_bytes = int(os.environ.get("CHURNWATCH_MAX_BODY_BYTES", 8_000_000))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/model":  # the mounted app's root
            scope = {**scope, "path": "/model/", "raw_path": b"/model/"}
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        # HTTP header bytes are latin-1 (RFC 9110); a non-UTF-8 value must not become a 500
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is not None:
            given = headers.get("authorization", "")
            expected = f"Bearer {self.token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                await _reply(send, 401, "missing or wrong bearer token (Authorization: Bearer <token>)")
                return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not headers.get("content-type", "").split(";")[0].strip() == "application/json":
            await _reply(send, 415, "content type must be application/json")
            return
        if int(headers.get("content-length", "0") or 0) > self.max_bytes:
            await _reply(send, 413, f"request body larger than {self.max_bytes} bytes")
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await _reply(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
        try:
            payload = json.loads(body or b"null", parse_constant=_reject_constant)
        except ValueError as exc:
            await _reply(send, 400, f"invalid JSON: {exc}")
            return
        except RecursionError:
            await _reply(send, 400, "invalid JSON: nested too deeply")
            return
        allowed = TOP_LEVEL_FIELDS.get(scope["path"].rstrip("/"))
        if allowed is not None:
            if not isinstance(payload, dict):
                await _reply(send, 400, f"body: expected a JSON object with {', '.join(sorted(allowed))}")
                return
            unknown = sorted(set(payload) - allowed)
            if unknown:
                await _reply(send, 400, f"unknown field(s): {', '.join(unknown)} "
                                        f"(allowed: {', '.join(sorted(allowed))})")
                return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


async def _reply(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _workers() -> int:
    """``CHURNWATCH_WORKERS`` (default 1), checked: a bad value stops the server with its name."""
    raw = os.environ.get("CHURNWATCH_WORKERS", "").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"CHURNWATCH_WORKERS={raw!r}: expected a whole number >= 1")
    return int(raw)


def _load_scorer():
    from core.home import Home
    from core.settings import load_settings
    from serving.scoring import Scorer
    from training.registry import load_model, setup

    home = Home.resolve(os.environ.get("CHURNWATCH_HOME"))
    settings = load_settings(None, home.root)
    client = setup(home.tracking_uri, home.mlflow_artifacts)
    bundle = load_model(client, os.environ.get("CHURNWATCH_MODEL") or None)
    version = str(bundle.meta.get("model_version", os.environ.get("CHURNWATCH_MODEL", "bundle")))
    store = Path(os.environ.get("CHURNWATCH_STORE") or home.store)
    return Scorer(bundle=bundle, settings=settings, model_version=version, store=store)


async def _model_info(request: Request) -> JSONResponse:
    scorer = request.app.state.scorer
    meta = scorer.bundle.meta
    return JSONResponse({
        "model_version": scorer.model_version,
        "training_window": meta.get("training_window"), "split": meta.get("split"),
        "metrics": meta.get("metrics"), "horizon_days": meta.get("horizon_days"),
        "feature_spec": json.loads(scorer.bundle.catalogue.to_json()),
    })


model_app = Starlette(routes=[Route("/", _model_info, methods=["GET"])])


@bentoml.asgi_app(model_app, path="/model")
@bentoml.service(name="churnwatch", traffic={"timeout": 30},
                 workers=_workers())
class ChurnService:
    """Churn risk, health, tier, reasons and playbook for accounts."""

    def __init__(self) -> None:
        self.scorer = _load_scorer()
        # Batches are scored one at a time per worker (LightGBM already uses every core on a
        # batch): more in parallel would only oversubscribe the cores and hold more bodies.
        self.batches = anyio.CapacityLimiter(1)
        model_app.state.scorer = self.scorer
        # Everything loaded so far (libraries, model, catalogue) lives as long as the
        # process: keep it out of the garbage collector's full passes, which otherwise walk
        # millions of objects and stall a request now and then (the p99 tail).
        gc.collect()
        gc.freeze()

    @bentoml.api(route="/score")
    async def score(self, accounts: Annotated[list[AccountFeatures], Field(min_length=1, max_length=1000)],
                    lang: Lang = "en") -> list[dict]:
        """Score accounts from the features in the request."""
        if len(accounts) <= INLINE_MAX_ACCOUNTS:
            return self._score_features(accounts, lang)
        return await anyio.to_thread.run_sync(self._score_features, accounts, lang, limiter=self.batches)

    def _score_features(self, accounts: list[AccountFeatures], lang: str) -> list[dict]:
        from serving.scoring import validate_features

        items = [a.model_dump() for a in accounts]
        try:
            rows = validate_features(items, self.scorer.bundle.catalogue)
            return self.scorer.results(rows, lang)
        except ChurnwatchError as exc:
            raise InvalidArgument(str(exc)) from exc

    @bentoml.api(route="/score_accounts")
    async def score_accounts(self, account_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                                                          Field(min_length=1, max_length=1000)],
                             lang: Lang = "en") -> list[dict]:
        """Score accounts from their latest snapshot in the store; unknown ids get an error entry."""
        return await anyio.to_thread.run_sync(self._score_stored, account_ids, lang, limiter=self.batches)

    def _score_stored(self, account_ids: list[str], lang: str) -> list[dict]:
        from core.store import latest_snapshot

        try:
            rows = latest_snapshot(self.scorer.store, list(dict.fromkeys(account_ids)))
        except (ChurnwatchError, duckdb.Error) as exc:
            # The request is fine; the store is missing, locked by a writer or unreadable.
            raise ServiceUnavailable(f"snapshot store {self.scorer.store} unavailable: {exc}") from exc
        found = {r["account_id"]: r for r in self.scorer.results(rows, lang)}
        return [found.get(a, {"account_id": a, "error": "unknown account: no snapshot in the store"})
                for a in account_ids]


ChurnService.add_asgi_middleware(GuardMiddleware)
