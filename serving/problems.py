"""One error shape for every 4xx (and 5xx): RFC 9457 problem details.

Every error answer is ``application/problem+json``::

    {"type": "urn:churnwatch:problem:invalid-request", "title": "Request does not match the schema",
     "status": 422, "detail": "1 invalid field",
     "errors": [{"loc": "accounts[0].features.logins_30d", "msg": "Input should be greater than or equal to 0"}]}

BentoML and pydantic validate the body against the models of ``serving/api.py``; BentoML
answers their errors in its own shape, which the guard (``serving/guard.py``) rewrites with
``from_bentoml`` into a problem (the field path joined as ``accounts[0].features.logins_30d``;
invalid JSON is 400, a body that breaks the schema 422). JSON nesting is limited by
pydantic's parser (a 400 naming the recursion limit).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import Response

from serving.api import field_path, merged_errors

PROBLEM_TYPE = "application/problem+json"

#: status -> (type slug, title): the problems this service answers.
PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("malformed-request", "Malformed request body"),
    401: ("unauthorized", "Missing or wrong bearer token"),
    404: ("not-found", "Not found"),  # an endpoint, or an account it names
    405: ("method-not-allowed", "Method not allowed"),
    408: ("request-timeout", "Request body not received in time"),
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


def slug_and_title(status: int) -> tuple[str, str]:
    """The problem type's slug and title of ``status`` (HTTP's reason phrase for one we do not list)."""
    if status in PROBLEMS:
        return PROBLEMS[status]
    try:
        return "error", HTTPStatus(status).phrase
    except ValueError:
        return "error", f"HTTP {status}"


def problem(status: int, detail: str, errors: list[dict] | None = None) -> dict:
    """A problem-details body for ``status``."""
    slug, title = slug_and_title(status)
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
        errors = [{"loc": loc, "msg": msg} for loc, msg in merged_errors(
            [(field_path(d["loc"]) or "body", str(d.get("msg", ""))) for d in details])]
        return problem(422, f"{len(errors)} invalid field(s): {', '.join(e['loc'] for e in errors[:10])}", errors)
    return problem(status, str(raw.get("error") or raw.get("detail") or HTTPStatus(status).phrase))
