"""The service log: one line per refused request, no traceback for a client's error, and no
value that can start a line of its own (issue 13, item 6).

- ``log_refusal`` writes the line: client, method, path, status and the problem's title.
- ``EscapeControl`` (on every handler of the server's loggers) writes newlines and other
  control characters of a message as ``\\n`` / ``\\x1b`` / ``\\u2028``: a path or a field name
  sent by a client cannot forge a line.
- ``ClientErrorTraceback`` drops BentoML's ``Exception on /score [POST]`` record with its
  traceback when the exception is the client's (a validation error, a 4xx), and
  ``AccessOfRefusal`` drops BentoML's access line of a 4xx: ``log_refusal`` wrote that one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

log = logging.getLogger("churnwatch.requests")

#: C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
SERVER_LOGGERS = ("", "bentoml", "uvicorn.error", "uvicorn.access")
TRACEBACK_LOGGER = "bentoml._internal.server.http_app"
ACCESS_LOGGER = "bentoml.access"


def escape_control(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x00``, ``\\u2028``)."""
    return CONTROL.sub(lambda m: NAMED.get(m.group(), m.group().encode("unicode_escape").decode("ascii")), text)


def log_refusal(scope: dict, status: int, title: str) -> None:
    """One line for an answer of ``status`` >= 400: who, what, the status and its title."""
    client = scope.get("client") or ("-", 0)
    log.warning("%s:%s %s %s -> %d %s", client[0], client[1], escape_control(str(scope.get("method", "-"))),
                escape_control(str(scope.get("path", "-"))), status, title)


class EscapeControl(logging.Filter):
    """Writes the record's message with its control characters escaped (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if CONTROL.search(message):
            record.msg, record.args = escape_control(message), ()
        return True


class ClientErrorTraceback(logging.Filter):
    """Drops a traceback record whose exception is a client's error (a 4xx)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _is_client_error(record.exc_info[1]))


class AccessOfRefusal(logging.Filter):
    """Drops BentoML's access line of a 4xx answer (``log_refusal`` wrote the request's line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(a, str) and re.match(r"status=4\d\d\b", a) for a in args)


def _is_client_error(exc: BaseException | None) -> bool:
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return True
    return isinstance(exc, BentoMLException) and int(getattr(exc.error_code, "value", 500)) < 500


def install_log_filters() -> None:
    """Puts the filters in place (again is harmless): ``EscapeControl`` on every handler of the
    server's loggers, the two others on BentoML's traceback and access loggers."""
    handlers = {id(h): h for name in SERVER_LOGGERS for h in logging.getLogger(name).handlers}
    _add(EscapeControl, handlers.values())
    _add(ClientErrorTraceback, [logging.getLogger(TRACEBACK_LOGGER)])
    _add(AccessOfRefusal, [logging.getLogger(ACCESS_LOGGER)])


def _add(kind: type[logging.Filter], targets: Iterable[logging.Filterer]) -> None:
    for target in targets:
        if not any(isinstance(f, kind) for f in target.filters):
            target.addFilter(kind())
