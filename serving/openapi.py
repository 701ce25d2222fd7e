"""The service's OpenAPI document and docs page, built from our own models.

BentoML's document is its template (title "churnwatch:dev", version ``None``, BentoML's
badges, untyped errors, a union answer shown as its first member) and its Swagger page loads
a tag-manager script. ``Docs`` answers ``GET /docs.json`` with a document built from the
models of ``serving/api.py`` and ``serving/problems.py`` (OpenAPI 3.1, whose schemas are
JSON Schema 2020-12, what pydantic writes), and ``GET /`` and ``/docs`` with a self-contained
page (no external script, style or URL) that lists the endpoints from that document.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.responses import HTMLResponse, JSONResponse

from core.vocabulary import TIER_KEYS
from serving.api import AccountError, AccountHistory, AccountScore, CoverageError, ModelInfo, ScoreResult, ScoresPage
from serving.problems import PROBLEM_TYPE, PROBLEMS, Problem

REF = "#/components/schemas/{model}"
DESCRIPTION = ("Early-warning service for customer churn: calibrated risk, health score, tier, reasons "
               "and playbook per account. `POST /score` scores the features in the request (every feature "
               "of the served model's catalogue is a typed, range-checked field; each answer reports the "
               "features given, missing and unknown, and an account whose features carry too little of the "
               "model gets an error naming the missing ones); `POST /score_accounts` "
               "answers each account's latest published score (scored by `churnwatch score`, with what a "
               "platform syncs: as-of date, staleness, MRR, CSM, previous score, due time) or scores it live "
               "from its latest snapshot; `GET /scores` pages through every current score; "
               "`GET /accounts/{account_id}/history` lists an account's scores; `GET /model` describes the served "
               "model. Every error is RFC 9457 problem details (`application/problem+json`). A request body is "
               "JSON in UTF-8 (`Content-Type: application/json`, any letter case), sent as is or compressed "
               "(`Content-Encoding: gzip` or `deflate`); it is held to the server's body limit (8 MB by "
               "default) also once decompressed, and must arrive within the server's body timeout (15 s by "
               "default, then 408 and the connection is closed). A worker busy with more requests than its "
               "limit answers 503 with `Retry-After`; a method an endpoint does not answer is 405 with `Allow`.")
SECURED_STATUSES = (400, 401, 408, 413, 415, 422, 500, 503)
BODY = ("JSON in UTF-8; `Content-Encoding: gzip` or `deflate` accepted (the size limit applies to the "
        "decompressed body too)")


def package_version() -> str:
    """The installed churnwatch version (``0+unknown`` where the package is not installed)."""
    try:
        return metadata.version("churnwatch")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _problem_responses(statuses: tuple[int, ...]) -> dict:
    return {str(s): {"description": PROBLEMS[s][1],
                     "content": {PROBLEM_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}}}
            for s in statuses}


def _ok(schema: dict, description: str) -> dict:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


def _post(name: str, summary: str, request: str, answer: dict, statuses: tuple[int, ...]) -> dict:
    return {"post": {
        "operationId": name, "summary": summary, "tags": ["Scoring"], "security": [{"bearer": []}],
        "requestBody": {"required": True, "description": BODY,
                        "content": {"application/json": {"schema": {"$ref": REF.format(model=request)}}}},
        "responses": {**_ok(answer, "one answer per account, in request order"), **_problem_responses(statuses)},
    }}


_TEXT = {"type": "string"}
BULK_PARAMETERS = [
    {"name": "tier", "in": "query", "required": False, "description": "only this tier ('churned': accounts no "
     "longer customers)", "schema": {"type": "string", "enum": [*TIER_KEYS, "churned"]}},
    {"name": "csm", "in": "query", "required": False, "description": "only this CSM", "schema": _TEXT},
    {"name": "changed_since", "in": "query", "required": False, "description": "only scores as of this date "
     "(YYYY-MM-DD) or later", "schema": {"type": "string", "format": "date"}},
    {"name": "cursor", "in": "query", "required": False, "description": "next_cursor of the previous page",
     "schema": _TEXT},
    {"name": "limit", "in": "query", "required": False, "description": "scores per page (default 100)",
     "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "lang", "in": "query", "required": False, "schema": {"type": "string", "enum": ["en", "zh-CN"]}},
]


def _get(name: str, summary: str, answer: str, parameters: list[dict], statuses: tuple[int, ...]) -> dict:
    return {"get": {"operationId": name, "summary": summary, "tags": ["Sync"], "security": [{"bearer": []}],
                    "parameters": parameters,
                    "responses": {**_ok({"$ref": REF.format(model=answer)}, summary),
                                  **_problem_responses(statuses)}}}


def _health(path: str, summary: str) -> dict:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {"get": {"operationId": path.strip("/"), "summary": summary, "tags": ["Health"], "security": [],
                    "responses": {"200": {"description": "OK", "content": text}}}}


def build_document(score_request: type[BaseModel], score_accounts_request: type[BaseModel]) -> dict:
    """The OpenAPI 3.1 document of the service whose request models are the two given."""
    models = [score_request, score_accounts_request, ScoreResult, AccountScore, AccountError, CoverageError, ScoresPage,
              AccountHistory, ModelInfo, Problem]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    item = lambda m: {"$ref": REF.format(model=m)}  # noqa: E731
    paths = {
        "/score": _post("score", "Score accounts from the features in the request", score_request.__name__,
                        {"type": "array", "items": {"anyOf": [item("ScoreResult"), item("CoverageError")]}},
                        SECURED_STATUSES),
        "/score_accounts": _post(
            "score_accounts", "Each account's latest published score (or live from its latest snapshot); "
            "an unknown id gets an error entry", score_accounts_request.__name__,
            {"type": "array", "items": {"anyOf": [item("AccountScore"), item("AccountError")]}},
            SECURED_STATUSES),
        "/scores": _get("scores", "Page through every current score, ordered by account id", "ScoresPage",
                        BULK_PARAMETERS, (401, 422, 503)),
        "/accounts/{account_id}/history": _get(
            "account_history", "An account's scores, oldest first", "AccountHistory",
            [{"name": "account_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}],
            (401, 404, 503)),
        "/model": {"get": {"operationId": "model", "summary": "The served model: version, training window, "
                           "metrics and feature spec", "tags": ["Model"], "security": [{"bearer": []}],
                           "responses": {**_ok(item("ModelInfo"), "the served model"),
                                         **_problem_responses((401, 503))}}},
        "/livez": _health("/livez", "Liveness"),
        "/readyz": _health("/readyz", "Readiness: the model is loaded"),
        "/metrics": _health("/metrics", "Prometheus metrics"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "churnwatch", "version": package_version(), "description": DESCRIPTION,
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": "/"}],
        "tags": [{"name": "Scoring"}, {"name": "Sync"}, {"name": "Model"}, {"name": "Health"}],
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description":
                                           "required when the server sets CHURNWATCH_API_TOKEN"}},
        },
    }


class Docs:
    """ASGI middleware answering ``GET /docs.json``, ``/`` and ``/docs`` (module docstring)."""

    def __init__(self, app: Any, score_request: type[BaseModel], score_accounts_request: type[BaseModel]) -> None:
        self.app = app
        self.document = json.dumps(build_document(score_request, score_accounts_request), ensure_ascii=False)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            if scope["path"] == "/docs.json":
                response = JSONResponse(json.loads(self.document))
                await response(scope, receive, send)
                return
            if scope["path"] in ("/", "/docs", "/docs/"):
                await HTMLResponse(DOCS_PAGE)(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: A self-contained page listing the endpoints and schemas of ``/docs.json``.
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>churnwatch API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:.6rem;overflow:auto;max-height:30rem}
h2{border-bottom:1px solid #ddd}.m{font-weight:bold;color:#075}</style></head>
<body><h1>churnwatch API</h1><p id="info"></p>
<p>Machine-readable document: <a href="docs.json">docs.json</a> (OpenAPI 3.1).</p>
<div id="paths"></div><h2>Schemas</h2><div id="schemas"></div>
<script>
fetch("docs.json").then(r => r.json()).then(doc => {
  const esc = s => String(s).replace(/[&<>]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;"}[c]));
  document.getElementById("info").textContent = doc.info.description + " (version " + doc.info.version + ")";
  let html = "<h2>Endpoints</h2>";
  for (const [path, ops] of Object.entries(doc.paths)) for (const [m, op] of Object.entries(ops)) {
    html += "<h3><span class=m>" + m.toUpperCase() + "</span> <code>" + esc(path) + "</code></h3><p>" +
      esc(op.summary || "") + "</p><p>Answers: " + Object.keys(op.responses).join(", ") + "</p>";
  }
  document.getElementById("paths").innerHTML = html;
  let s = "";
  for (const [name, schema] of Object.entries(doc.components.schemas))
    s += "<details><summary><code>" + esc(name) + "</code></summary><pre>" +
         esc(JSON.stringify(schema, null, 2)) + "</pre></details>";
  document.getElementById("schemas").innerHTML = s;
});
</script></body></html>
"""
