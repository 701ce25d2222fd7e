"""``GET /scores`` (bulk read) and ``GET /accounts/{account_id}/history`` from the published scores.

An ASGI middleware inside the request guard (so the token applies): it answers these two
paths from ``PublishedScores`` and passes everything else on. The bulk read pages through the
current scores ordered by account id; the cursor is opaque (base64 of the last id returned), so
a page boundary stays where it was when a new scoring run lands between two pages.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.responses import Response

from core.vocabulary import TIER_KEYS
from serving.problems import problem_response
from serving.published import PublishedScores, Snapshot

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
RETRY_AFTER_SECONDS = "30"
PARAMETERS = ("tier", "csm", "changed_since", "cursor", "limit", "lang")


class ParameterError(ValueError):
    """A query parameter that cannot be used; the message names it."""


class SyncRoutes:
    """ASGI middleware answering the bulk read and the history (module docstring)."""

    def __init__(self, app: Any, published: PublishedScores) -> None:
        self.app = app
        self.published = published

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        route = _route(path)
        if route is None:
            await self.app(scope, receive, send)
            return
        await self._answer(route, scope)(scope, receive, send)

    def _answer(self, route: tuple[str, str | None], scope: dict) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return problem_response(405, f"{scope['path']} answers GET only", headers={"Allow": "GET"})
        snap = self.published.current()
        if snap is None:
            return problem_response(503, "no scores published yet: run `churnwatch score`",
                                    headers={"Retry-After": RETRY_AFTER_SECONDS})
        kind, account_id = route
        if kind == "history":
            return self._history(account_id or "")
        try:
            query = _query(scope)
            return _json(page(snap, **query))
        except ParameterError as exc:
            return problem_response(422, str(exc))

    def _history(self, account_id: str) -> Response:
        scores = self.published.history(account_id)
        if scores is None:
            return problem_response(404, f"unknown account {account_id!r}: no published score")
        return _json(json.dumps({"account_id": account_id, "scores": scores}, ensure_ascii=False).encode())


def _route(path: str) -> tuple[str, str | None] | None:
    if path in ("/scores", "/scores/"):
        return "scores", None
    if path.startswith("/accounts/") and path.endswith("/history"):
        account_id = unquote(path[len("/accounts/"):-len("/history")])
        if account_id and "/" not in account_id:
            return "history", account_id
    return None


def _query(scope: dict) -> dict:
    """The bulk read's parameters, checked (``ParameterError`` names the first bad one)."""
    raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    unknown = sorted(set(raw) - set(PARAMETERS))
    if unknown:
        raise ParameterError(f"unknown query parameter(s) {', '.join(unknown)} (known: {', '.join(PARAMETERS)})")
    one = {k: v[-1] for k, v in raw.items()}
    empty = sorted(k for k in ("tier", "changed_since", "limit", "lang") if one.get(k) == "")
    if empty:  # given without a value: not the same as not given
        raise ParameterError(f"{', '.join(empty)}: empty value (leave the parameter out instead)")
    tier = one.get("tier") or None
    if tier is not None and tier not in (*TIER_KEYS, "churned"):
        raise ParameterError(f"tier: {tier!r} is not one of {', '.join((*TIER_KEYS, 'churned'))}")
    lang = one.get("lang") or "en"
    if lang not in ("en", "zh-CN"):
        raise ParameterError(f"lang: {lang!r} is not en or zh-CN")
    limit_text = one.get("limit") or str(DEFAULT_LIMIT)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise ParameterError(f"limit: {limit_text!r} is not a whole number from 1 to {MAX_LIMIT}")
    since = None
    if one.get("changed_since"):
        try:
            since = dt.date.fromisoformat(one["changed_since"])
        except ValueError as exc:
            raise ParameterError(f"changed_since: {one['changed_since']!r} is not a date (YYYY-MM-DD)") from exc
    return {"tier": tier, "csm": one.get("csm") or None, "changed_since": since,
            "after": decode_cursor(one["cursor"]) if one.get("cursor") else None,
            "limit": int(limit_text), "lang": lang}


def encode_cursor(account_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": account_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ParameterError("cursor: not a cursor returned by GET /scores") from exc
    if not isinstance(after, str):
        raise ParameterError("cursor: not a cursor returned by GET /scores")
    return after


def page(snap: Snapshot, *, tier: str | None, csm: str | None, changed_since: dt.date | None, after: str | None,
         limit: int, lang: str) -> bytes:
    """One page of ``snap``'s scores as JSON (``ScoresPage``): ids after ``after``, filtered."""
    start = bisect.bisect_right(snap.ids, after) if after is not None else 0
    chosen: list[str] = []
    more = False
    for row in snap.rows[start:]:
        if not _matches(row, tier, csm, changed_since):
            continue
        if len(chosen) == limit:
            more = True
            break
        chosen.append(row["account_id"])
    answers = snap.answers[lang]
    head = {"run_id": snap.run_id, "as_of": snap.run_as_of.isoformat() if snap.run_as_of else None,
            "next_cursor": encode_cursor(chosen[-1]) if more else None}
    body = json.dumps(head, ensure_ascii=False).encode()[:-1]
    return body + b', "scores": [' + b", ".join(answers[a] for a in chosen) + b"]}"


def _matches(row: dict, tier: str | None, csm: str | None, since: dt.date | None) -> bool:
    if tier is not None and (row["tier"] or "churned") != tier:
        return False
    if csm is not None and row["csm"] != csm:
        return False
    return since is None or row["as_of"] >= since


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")
