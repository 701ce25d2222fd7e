"""What the service accepts from a client, checked before BentoML parses a request (issue 13, item 6).

- **Media type**: ``application/json`` in any letter case, with an optional ``charset``
  parameter that must be UTF-8 (RFC 8259: JSON on the wire is UTF-8).
- **Content encoding**: ``identity``, ``gzip`` (or ``x-gzip``) or ``deflate``; a compressed
  body is decompressed here, and the decompressed size is held to the same limit as the
  body (a zip bomb stops at ``max_body_bytes`` + 1 bytes of output).
- **Body size and time**: the body is read in full, at most ``max_body_bytes``, within
  ``body_timeout_seconds`` of the request's headers; a slow body is answered 408 and its
  connection closed.
- **Requests in progress** per worker: at most ``max_concurrent_requests``. One more takes
  the place of the request that has waited longest for its body (which is answered 503 and
  its connection closed); when none is waiting for a body, the new one is answered 503 with
  ``Retry-After`` at once.

The limits are ``ServingSettings`` (``churnwatch.yaml``, section ``serving``).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from email.utils import collapse_rfc2231_value

import anyio

from core.errors import ChurnwatchError, ConfigError
from core.settings import ServingSettings

RETRY_AFTER_SECONDS = 2
JSON = "application/json"
CHARSETS = ("utf-8", "utf8")
#: Content-Encoding -> zlib ``wbits`` of its format.
ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
CHUNK_BYTES = 64 * 1024

Receive = Callable[[], Awaitable[dict]]


class Refused(ChurnwatchError):
    """A request refused before it reaches the app: its status and what is wrong.

    ``close`` says whether the connection is to be closed with the answer (the body was not
    read in full, so what remains of it must not be taken for the next request).
    """

    def __init__(self, status: int, detail: str, close: bool = True, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.close = close
        self.headers = headers or {}


class ClientGone(ChurnwatchError):
    """The client disconnected before its body arrived: nothing to answer."""


def serving_limits(home: str | os.PathLike[str] | None = None) -> ServingSettings:
    """The limits of the service's settings (``serve --config``, else the ``churnwatch.yaml`` of
    ``home`` or ``CHURNWATCH_HOME``), with
    ``CHURNWATCH_MAX_BODY_BYTES`` from the environment over ``max_body_bytes``.

    Raises:
        SystemExit: the settings file or the variable is wrong (the message names it); the
            server stops instead of starting with limits nobody chose.
    """
    from core.settings import resolve_home, service_settings

    try:
        limits = service_settings(resolve_home(home)).serving
    except ConfigError as exc:
        raise SystemExit(str(exc)) from exc
    raw = os.environ.get("CHURNWATCH_MAX_BODY_BYTES", "").strip()
    if not raw:
        return limits
    if not raw.isdigit() or int(raw) < 1_000:
        raise SystemExit(f"CHURNWATCH_MAX_BODY_BYTES={raw!r}: expected a whole number of bytes >= 1000")
    return limits.model_copy(update={"max_body_bytes": int(raw)})


class Slot:
    """One request's place among the requests in progress; ``evicted`` once given to another."""

    def __init__(self) -> None:
        self.held = True
        self.evicted = False
        self.cancel_scope: anyio.CancelScope | None = None

    def evict(self) -> None:
        self.held, self.evicted = False, True
        if self.cancel_scope is not None:
            self.cancel_scope.cancel()


class Slots:
    """Requests in progress in this worker, at most ``size`` (one event loop: no lock needed).

    When every slot is taken, a new request takes the slot of the request that has waited
    longest for its body (that one is cut, see ``Guard``): a client that opens slow
    connections cannot keep the others out. Only when no request is waiting for its body is
    the new one refused.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0
        self._waiting: dict[int, Slot] = {}  # by arrival: the first has waited longest

    def take(self) -> Slot | None:
        """A slot, possibly one taken from the longest wait for a body; None when all are busy."""
        if self.taken < self.size:
            self.taken += 1
            return Slot()
        if not self._waiting:
            return None
        oldest = next(iter(self._waiting))
        self._waiting.pop(oldest).evict()
        return Slot()

    def give_back(self, slot: Slot) -> None:
        self._waiting.pop(id(slot), None)
        if slot.held:
            slot.held = False
            self.taken -= 1

    @contextmanager
    def waiting_for_body(self, slot: Slot) -> Iterator[None]:
        """While the body of ``slot``'s request arrives, the slot may be given to a new request:
        the block is then cancelled and ``slot.evicted`` is True."""
        with anyio.CancelScope() as scope:
            slot.cancel_scope = scope
            self._waiting[id(slot)] = slot
            try:
                yield
            finally:
                self._waiting.pop(id(slot), None)
                slot.cancel_scope = None


def check_media_type(content_type: str) -> None:
    """``Content-Type`` must be JSON in UTF-8: letter case and parameter order do not matter.

    Raises:
        Refused: 415 naming the type or charset sent.
    """
    message = Message()
    message["content-type"] = content_type
    media_type = message.get_content_type() if content_type.strip() else ""
    if media_type != JSON or "/" not in content_type:
        shown = content_type.split(";")[0].strip().lower() or "none"
        raise Refused(415, f"content type must be {JSON}, not {shown!r}")
    charset = message.get_param("charset")
    if isinstance(charset, tuple):  # an RFC 2231 value
        charset = collapse_rfc2231_value(charset)
    if charset is not None and str(charset).strip().lower() not in CHARSETS:
        raise Refused(415, f"charset {charset!r} is not supported: a JSON body is UTF-8 (RFC 8259)")


def check_encoding(content_encoding: str) -> str | None:
    """The one compression of ``Content-Encoding`` (None: not compressed).

    Raises:
        Refused: 415 naming the encoding and the ones accepted.
    """
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ENCODINGS:
        return codings[0]
    raise Refused(415, f"Content-Encoding {content_encoding.strip()!r} is not supported: "
                       "send the body as is, gzip or deflate")


async def read_body(receive: Receive, max_bytes: int, timeout_seconds: float) -> bytes:
    """The whole request body: at most ``max_bytes``, received within ``timeout_seconds``.

    Raises:
        Refused: 413 (larger) or 408 (slower); the connection is to be closed.
        ClientGone: the client disconnected first.
    """
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(timeout_seconds) as deadline:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone("the client disconnected before sending its body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise Refused(413, f"request body larger than {max_bytes} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
    if deadline.cancelled_caught:
        raise Refused(408, f"request body not received within {timeout_seconds:g} seconds "
                           f"({size} bytes arrived); the connection is closed")
    return b"".join(chunks)


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """``body`` decompressed from ``encoding`` (every gzip member), at most ``max_bytes``.

    Raises:
        Refused: 413 when the output would pass ``max_bytes`` (decompression stops there);
            400 when the body is not valid data of that encoding.
    """
    out: list[bytes] = []
    size = 0
    rest = body
    while rest:
        engine = zlib.decompressobj(ENCODINGS[encoding])
        try:
            chunk = engine.decompress(rest, max_bytes - size + 1)
            while True:
                size += len(chunk)
                if size > max_bytes:
                    raise Refused(413, f"request body larger than {max_bytes} bytes once decompressed "
                                       f"({encoding})", close=False)
                out.append(chunk)
                if not engine.unconsumed_tail:
                    break
                chunk = engine.decompress(engine.unconsumed_tail, max_bytes - size + 1)
        except zlib.error as exc:
            raise Refused(400, f"Content-Encoding {encoding}: the body is not valid {encoding} data ({exc})",
                          close=False) from exc
        if not engine.eof:
            raise Refused(400, f"Content-Encoding {encoding}: the body ends before the compressed data does",
                          close=False)
        rest = engine.unused_data if encoding != "deflate" else b""
    return b"".join(out)
