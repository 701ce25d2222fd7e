"""The BentoML prediction service (DESIGN §5): thin; the contract is ``serving/api.py``,
scoring ``serving/scoring.py``, errors and the request guard ``serving/problems.py``, the
OpenAPI document and docs page ``serving/openapi.py``.

The request model is generated from the served bundle's feature catalogue, so the service
class is made from it (``make_service``) when the module is imported, i.e. when a worker
starts: the module-level ``ChurnService`` loads the model named by the environment. Where no
model can be loaded (``bentoml build`` on a machine without a home) it is made from the core
catalogue and the model is loaded, with its error, when the service starts. A model that is
named (or reachable) but does not load stops a server process (``bentoml serve``, its
workers) with exit code 2, and a worker that
cannot load its model stops the whole server (``serving.launch.model_unloadable``): BentoML
would otherwise restart it for ever.

Configured by environment (``churnwatch serve`` sets them): ``CHURNWATCH_HOME`` (home
folder), ``CHURNWATCH_MODEL`` (bundle folder or ``models:/churnwatch@alias``; default the
champion), ``CHURNWATCH_STORE`` (the store whose published scores ``/score_accounts``,
``GET /scores`` and ``GET /accounts/{id}/history`` answer, ``serving/published.py``; its
snapshots score an account live), ``CHURNWATCH_CONFIG`` (the settings file ``serve --config``
named; default the home's ``churnwatch.yaml``),
``CHURNWATCH_API_TOKEN`` (bearer token; health, metrics and docs stay open),
``CHURNWATCH_MAX_BODY_BYTES`` (over the settings' ``serving.max_body_bytes``, default 8 MB:
1,000 accounts with every feature), ``CHURNWATCH_WORKERS`` (worker processes, default 1; one
per core is the fastest when the machine serves nothing else). The limits on bodies, their
time and the requests in progress are the ``serving`` section of ``churnwatch.yaml``
(``serving/limits.py``); the guard in front of the endpoints applies them (``serving/guard.py``).

``/score_accounts`` is a lookup in the scores the latest ``churnwatch score`` published (a
Parquet file read once per worker and again when a new run replaces it; the DuckDB store is not
opened, except once when a worker starts, to publish again a run whose publication was cut off),
answered before BentoML's API machinery (``serving/fastpath.py``), as are ``/score`` requests of
a few accounts. ``"live": true``, or an account without a published score,
scores from the latest snapshot in the store (opened read-only for that request). A flat-table
model (``train --table``) has no snapshots: an id without a published score is unknown (an error
entry, never the store's 503) and ``"live": true`` is a 422.

The endpoints are ``async``: a request of a few accounts (about a millisecond of CPU) is
scored on the event loop, which saves the hop to a thread pool; larger batches go to a
worker thread so they do not hold up the small requests behind them.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
import bentoml
import duckdb
import pandas as pd
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, create_model
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import ChurnwatchError
from core.settings import ServingSettings, Settings
from core.time import AsOf, as_date
from core.vocabulary import Lang
from features.spec import Catalogue, build_catalogue
from serving.api import (
    MAX_ACCOUNTS,
    UNKNOWN_ACCOUNT,
    UNKNOWN_TABLE_ACCOUNT,
    AccountError,
    AccountId,
    AccountScore,
    ScoreResult,
    model_info,
    request_models,
)
from serving.balance import accept_one_at_a_time
from serving.fastpath import INLINE_MAX_ACCOUNTS, FastRoutes, Hot
from serving.guard import Guard
from serving.launch import exit_2_after_failed_worker, in_bentoml_server, in_bentoml_worker, model_unloadable
from serving.limits import serving_limits
from serving.logs import install_log_filters
from serving.openapi import Docs
from serving.problems import problem_response
from serving.published import PublishedScores, republish_if_behind
from serving.scoring import Scorer, feature_rows
from serving.sync import SyncRoutes
from training.run_text import is_table
from workflow.config_versions import LiveSettings
from workflow.http import service_app

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "5"
#: Not traced by BentoML's OpenTelemetry middleware: its spans (created even with no exporter)
#: cost more CPU than answering a lookup. Regular expressions searched in the request's URL.
HOT_PATHS = [r"/score_accounts(\?|$)", r"/score(\?|$)"]
#: ``"live": true`` for a flat-table model: there is no snapshot to score an account from.
LIVE_TABLE_MODEL = ("`live` scores an account from its latest snapshot, and this model was trained on a flat table "
                    "(`train --table`), which has none: leave `live` out for the scores the latest "
                    "`churnwatch score --table` published, or send the customer's columns to POST /score")


def _workers() -> int:
    """``CHURNWATCH_WORKERS`` (default 1), checked: a bad value stops the server with its name."""
    raw = os.environ.get("CHURNWATCH_WORKERS", "").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"CHURNWATCH_WORKERS={raw!r}: expected a whole number >= 1")
    return int(raw)


def load_scorer() -> Scorer:
    """The scorer named by the environment (module docstring)."""
    from core.home import Home
    from core.settings import service_settings
    from training.registry import load_model, setup

    home = Home.resolve(os.environ.get("CHURNWATCH_HOME"))
    live = live_settings(home.root, service_settings(home.root))
    settings = live.get()
    client = setup(home.tracking_uri, home.mlflow_artifacts)
    bundle = load_model(client, os.environ.get("CHURNWATCH_MODEL") or None)
    version = str(bundle.meta.get("model_version", os.environ.get("CHURNWATCH_MODEL", "bundle")))
    store = Path(os.environ.get("CHURNWATCH_STORE") or home.store)
    return Scorer(bundle=bundle, settings=settings, model_version=version, store=store, extra={"live": live})


def live_settings(root: Path, base: Settings) -> LiveSettings:
    """The home's settings as saved in its operational store over churnwatch.yaml (``base``),
    re-read when a new version is saved (``workflow.config_versions.LiveSettings``)."""
    from workflow.db import store_for

    return LiveSettings(base, store_for(root, base.operations.url))


#: ``/score``'s ``as_of``: what it changes (a probe sent a CRM table's rows as exported days before and
#: got other probabilities than ``score --table``, the dates counted to another day)
AS_OF_FIELD = ("the day a flat-table model counts the dates sent as text to (\"2026-03-15\" as days before it), "
               "as `churnwatch score --table FILE --as-of DAY` does; default: the day of the request (UTC). "
               "Features sent as numbers are taken as they are")


def _day_text(value: object) -> object:
    """``as_of`` as the document says it: an ISO date, YYYY-MM-DD (pydantic alone would read the number 0, or the
    text "1728000000", as seconds since 1970)."""
    if value is None or isinstance(value, dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return as_date(value)  # 2026-02-30: its own error, named by pydantic
    raise ValueError("a date as text, YYYY-MM-DD")


#: ``/score``'s ``as_of``: an as-of date (``core.time.AsOf``) written as text, or null
AsOfDay = Annotated[AsOf | None, BeforeValidator(_day_text)]


def _score_request(catalogue: Catalogue) -> type:
    """The ``/score`` body: accounts (1..1000) with the catalogue's features, a language and the day a flat
    table's dates are counted to."""
    account = request_models(catalogue).account
    return create_model("ScoreRequest", __config__=ConfigDict(extra="forbid"),
                        accounts=(Annotated[list[account], Field(min_length=1, max_length=MAX_ACCOUNTS)], ...),
                        lang=(Lang, "en"),
                        as_of=(AsOfDay, Field(None, description=AS_OF_FIELD)))


def _score_accounts_request() -> type:
    """The ``/score_accounts`` body: account ids (1..1000), a language, and ``live``."""
    return create_model("ScoreAccountsRequest", __config__=ConfigDict(extra="forbid"),
                        account_ids=(Annotated[list[AccountId], Field(min_length=1, max_length=MAX_ACCOUNTS)], ...),
                        lang=(Lang, "en"),
                        live=(StrictBool, Field(False, description="score now from the latest snapshot in the store "
                                                             "instead of answering the latest published score (a "
                                                             "flat-table model has no snapshots: 422)")))


def make_service(catalogue: Catalogue, scorer: Callable[[], Scorer], token: str | None = None,
                 workers: int = 1, limits: ServingSettings | None = None) -> Any:
    """A BentoML service whose request model is ``catalogue``'s (a loaded scorer's ``Scorer.catalogue``: a flat
    table's columns its model does not read, ignored); ``scorer()`` is called once per worker when it starts.
    ``limits``: the guard's (default ``ServingSettings()``)."""
    score_request, score_accounts_request = _score_request(catalogue), _score_accounts_request()
    model_app = Starlette(routes=[Route("/", _model_endpoint, methods=["GET"])])
    published = PublishedScores()
    hot = Hot()

    @bentoml.asgi_app(model_app, path="/model")
    @bentoml.asgi_app(service_app(), path="/workflow")
    @bentoml.service(name="churnwatch", traffic={"timeout": 30}, workers=workers, tracing={"excluded_urls": HOT_PATHS})
    class ChurnService:
        """Churn risk, health, tier, reasons and playbook for accounts."""

        def __init__(self) -> None:
            install_log_filters()  # the server's logging is configured by now
            try:
                self.scorer = scorer()
            except Exception as exc:  # noqa: BLE001 - any failure: restarting the worker cannot help
                model_unloadable(exc)
            # Batches are scored one at a time per worker (LightGBM already uses every core on
            # a batch): more in parallel would only oversubscribe the cores and hold more bodies.
            self.batches = anyio.CapacityLimiter(1)
            model_app.state.scorer = self.scorer
            self.published = published
            if self.scorer.store is not None:
                # a scoring run killed between its commit and its publication: publish it now
                republish_if_behind(self.scorer.store, self.scorer.settings)
                published.bind(self.scorer.store, self.scorer.settings)
                published.current()  # the first request does not wait for the file
            hot.scorer, hot.published, hot.batches = self.scorer, published, self.batches
            hot.results = lambda accounts, lang, as_of=None: scored_json(self.scorer, accounts, lang, as_of)
            # Everything loaded so far (libraries, model, catalogue) lives as long as the
            # process: keep it out of the garbage collector's full passes, which otherwise walk
            # millions of objects and stall a request now and then (the p99 tail).
            gc.collect()
            gc.freeze()

        def _current_settings(self) -> None:
            """A settings version saved since the last request is used from this one on (one cheap
            version query; the published answers are rebuilt with the new playbooks)."""
            live = self.scorer.extra.get("live")
            if live is None:
                return
            try:
                settings = live.get()
            except Exception as exc:  # noqa: BLE001 - the store is down: keep answering with what we have
                log.warning("cannot check the saved settings (%s); keeping the current ones", exc)
                return
            if settings is not self.scorer.settings:
                self.scorer.settings = settings
                self.published.use_settings(settings)

        @bentoml.api(route="/score", input_spec=score_request)
        async def score(self, accounts: list, lang: Lang = "en", as_of: AsOf | None = None) -> list[ScoreResult]:
            """Score accounts from the features in the request."""
            self._current_settings()
            if len(accounts) <= INLINE_MAX_ACCOUNTS:
                return self._score_features(accounts, lang, as_of)
            return await anyio.to_thread.run_sync(self._score_features, accounts, lang, as_of, limiter=self.batches)

        def _score_features(self, accounts: list, lang: str, as_of: dt.date | None = None) -> Response:
            try:
                return Response(scored_json(self.scorer, accounts, lang, as_of), media_type="application/json")
            except ChurnwatchError as exc:
                return problem_response(422, str(exc))

        @bentoml.api(route="/score_accounts", input_spec=score_accounts_request)
        async def score_accounts(self, account_ids: list[str], lang: Lang = "en",
                                 live: bool = False) -> list[AccountScore | AccountError]:
            """The latest published score of each account (``live``: scored now from its latest
            snapshot; an account without a published score is scored live); unknown ids get an
            error entry. A flat-table model (``train --table``) has no snapshots: its ids are
            looked up only, and ``live`` is a 422."""
            self._current_settings()
            table_model = is_table(self.scorer.bundle.meta)
            if live and table_model:
                return problem_response(422, LIVE_TABLE_MODEL)
            snap = None if live else self.published.current()
            answers = snap.answers[lang] if snap is not None else {}
            missing = [a for a in dict.fromkeys(account_ids) if a not in answers]
            if not missing:  # a lookup: answered on the event loop, the store is not opened
                return _joined([answers[a] for a in account_ids])
            if table_model:  # no snapshots to score from: an id without a published score is unknown
                scored: dict[str, bytes] | Response = {}
            else:
                scored = await anyio.to_thread.run_sync(self._score_stored, missing, lang, limiter=self.batches)
            if isinstance(scored, Response):
                return scored
            unknown = {"error": (UNKNOWN_TABLE_ACCOUNT if table_model else UNKNOWN_ACCOUNT)[lang]}
            return _joined([answers.get(a) or scored.get(a) or _dumps({"account_id": a, **unknown})
                            for a in account_ids])

        def _score_stored(self, account_ids: list[str], lang: str) -> dict[str, bytes] | Response:
            from core.store import latest_snapshot_and_end

            try:
                rows, built = latest_snapshot_and_end(self.scorer.store, account_ids)
            except (ChurnwatchError, duckdb.Error) as exc:
                # The request is fine; the store is missing, locked by a writer or unreadable.
                return problem_response(503, f"snapshot store {self.scorer.store} unavailable: {exc}",
                                        headers={"Retry-After": RETRY_AFTER_SECONDS})
            run = self.published.current()  # staleness on the data's clock: the latest date scored or built
            dates = [d for d in (built, run.run_as_of if run is not None else None) if d is not None]
            return {r["account_id"]: _dumps(r) for r in live_results(self.scorer, rows, lang,
                                                                     max(dates) if dates else None)}

    ChurnService.add_asgi_middleware(Guard, token=token, limits=limits or ServingSettings())
    ChurnService.add_asgi_middleware(Docs, score_request=score_request, score_accounts_request=score_accounts_request)
    ChurnService.add_asgi_middleware(SyncRoutes, published=published)
    ChurnService.add_asgi_middleware(FastRoutes, hot=hot, score_request=score_request,
                                     score_accounts_request=score_accounts_request)
    # Further ASGI apps and middleware (e.g. the tasks API) are added here, after the guard:
    # middleware added later sits inside the ones added before it.
    return ChurnService


def scored_json(scorer: Scorer, accounts: list, lang: str, as_of: dt.date | None = None) -> bytes:
    """Validated request accounts scored, as the JSON answer, written directly: the results are
    built to the response models (``serving/api.py``, checked by the schema tests), and
    validating 1,000 results again costs more than scoring them is worth waiting for. ``as_of``: the
    day a flat table's dates sent as text are counted to (default: today, UTC)."""
    results = scorer.results(feature_rows(accounts, scorer.catalogue, as_of), lang)
    return json.dumps(results, ensure_ascii=False, allow_nan=False).encode()


def live_results(scorer: Scorer, rows: Any, lang: str, run_as_of: dt.date | None = None) -> list[dict]:
    """Scores of snapshot rows as ``AccountScore`` answers (``source: live``): what the snapshot
    says of MRR and CSM; no previous score. Against ``run_as_of`` (the latest date scored or built)
    an account whose latest snapshot is older is no longer active: it churned when its term ended
    (``churned_on``; no tier, no playbook), and a score more than ``serving.max_score_age_days``
    older is stale, by the rules of the published answers (``serving.published``)."""
    from core.lapse import churn_days
    from serving.published import stale_reason

    columns = [c for c in ("account_id", "as_of", "mrr", "csm") if c in rows.columns]
    extra = {r["account_id"]: r for r in rows[columns].to_dict("records")}
    churned_on: dict[str, dt.date | None] = {}
    if run_as_of is not None and len(rows):
        days = rows["days_to_term_end"] if "days_to_term_end" in rows.columns else pd.Series(float("nan"), rows.index)
        churned_on = dict(zip(rows["account_id"], churn_days(rows["as_of"], days, run_as_of), strict=True))
    max_age = dt.timedelta(days=scorer.settings.serving.max_score_age_days)
    grace = dt.timedelta(days=int(scorer.settings.grace_days))
    out = []
    for result in scorer.results(rows, lang):
        snap = extra[result["account_id"]]
        as_of = pd.Timestamp(snap["as_of"]).date()
        ended = churned_on.get(result["account_id"])
        why_stale = None if run_as_of is None else stale_reason(as_of, run_as_of, ended, max_age, grace)
        mrr = snap.get("mrr")
        mrr = None if mrr is None or mrr != mrr else float(mrr)
        hours = None if ended else scorer.settings.playbooks[result["tier"]].respond_within_hours
        out.append({**result, "tier": None if ended else result["tier"],
                    "playbook": None if ended else result["playbook"], "source": "live",
                    "as_of": as_of.isoformat(), "stale": why_stale is not None, "stale_reason": why_stale,
                    "churned_on": ended.isoformat() if ended else None, "mrr": mrr,
                    "expected_mrr_loss": None if mrr is None else round(mrr * result["churn_probability"], 6),
                    "csm": snap.get("csm"), "previous": None, "health_change": None, "tier_change": None,
                    "respond_within_hours": hours, "due_at": None})
    return out


def _dumps(result: dict) -> bytes:
    return json.dumps(result, ensure_ascii=False, allow_nan=False, default=str).encode()


def _joined(parts: list[bytes]) -> Response:
    """A JSON array of already-encoded answers."""
    return Response(b"[" + b", ".join(parts) + b"]", media_type="application/json")


async def _model_endpoint(request: Request) -> JSONResponse:
    return JSONResponse(model_info(request.app.state.scorer))


def _model_reachable() -> bool:
    """Whether the environment names a model that can be loaded without creating anything
    (a bundle folder, or a home or tracking server that already exists)."""
    from core.home import Home

    model = os.environ.get("CHURNWATCH_MODEL") or ""
    if model and Path(model).exists():
        return True
    home = Home.resolve(os.environ.get("CHURNWATCH_HOME"))
    return bool(os.environ.get("MLFLOW_TRACKING_URI")) or home.mlflow_db.exists()


def _from_environment() -> Any:
    """``ChurnService`` for the model named by the environment (module docstring)."""
    loaded = None
    exit_2_after_failed_worker()
    if in_bentoml_worker() and _workers() > 1:  # before uvicorn listens: the workers share the connections
        accept_one_at_a_time()
    if _model_reachable():
        try:
            loaded = load_scorer()
        except Exception as exc:  # noqa: BLE001 - a named model that does not load stops a server (exit 2)
            if in_bentoml_server():
                model_unloadable(exc)
            log.warning("no model loaded at import (%s); the request schema lists the core features only", exc)
    catalogue = loaded.catalogue if loaded is not None else build_catalogue([])
    return make_service(catalogue, (lambda: loaded) if loaded is not None else load_scorer,
                        token=os.environ.get("CHURNWATCH_API_TOKEN") or None,
                        limits=serving_limits(),
                        workers=_workers())


ChurnService = _from_environment()
