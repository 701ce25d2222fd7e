"""Connections shared out between the server's workers (issue 14, the saturated figures).

BentoML's workers all listen on the one socket the arbiter opened. asyncio's event loop, when
that socket is readable, accepts up to ``backlog`` (BentoML: 2,048) waiting connections in one
go (``BaseSelectorEventLoop._accept_connection``), so a client opening its 8 keep-alive
connections at once had all of them served by whichever worker woke first: the other worker
sat idle (measured: one worker 2.8 CPU seconds, the other 0.01, in 6 s of wrk at concurrency
8), ``/score`` was held to one core and every request waited behind the others of its worker.
Accepting one connection per wake-up alone did not change that (the first worker's loop turns
again before the other is scheduled).

``accept_one_at_a_time`` makes this process's loop accept one connection per wake-up, then,
when the worker already holds another open connection, leave the listening socket to the
other workers for ``PAUSE_SECONDS``: a burst of keep-alive connections is shared out, each
worker taking one in turn; a worker alone takes the next one after the pause (the kernel has
completed the connection by then; only its first request waits). The pause caps how fast a
worker holding connections accepts new ones (200 a second each): clients that open a
connection per request at a higher rate than that would be slowed (not measured here). Only
the accepting changes (not the listen backlog, nor anything else of the loop).

**uvloop.** BentoML's worker runs ``uvicorn`` with ``loop="auto"``, which takes uvloop when it is
installed, and it is (a dependency of ``uvicorn[standard]``/BentoML). uvloop accepts in libuv's C
code, which this module cannot change, so until 2026-12-03 the change above did nothing in the
real server: the split of a burst was left to chance (measured: a c8 burst went 8/0 to one worker
in 2 of 6 and 3 of 8 runs; ``/score`` c8 on one core, 880 req/s). ``accept_one_at_a_time``
therefore also points uvicorn's ``"auto"`` loop at asyncio's own loop in this process (uvicorn's
``LOOP_FACTORIES`` table; BentoML passes no loop option through): 8 of 8 bursts split after it.
The price is asyncio's pure-Python transport instead of uvloop's: about +0.03 ms of server CPU
per ``/score_accounts`` lookup measured under load (0.26-0.32 against 0.23-0.25 ms), small
beside a second core. Installed only when there is more than one worker (``serving/service.py``).
"""

from __future__ import annotations

import asyncio.selector_events
from typing import Any

from uvicorn.config import LOOP_FACTORIES

#: How long a worker leaves the listening socket to the others after accepting a connection.
PAUSE_SECONDS = 0.005

_LOOP = asyncio.selector_events.BaseSelectorEventLoop
_PLAIN = _LOOP._accept_connection  # noqa: SLF001 - the one asyncio method this module changes


def _one_connection(self: Any, protocol_factory: Any, sock: Any, sslcontext: Any = None, server: Any = None,
                    backlog: int = 100, *args: Any) -> None:
    """``_accept_connection`` taking at most one waiting connection, then pausing (module docstring)."""
    _PLAIN(self, protocol_factory, sock, sslcontext, server, 1, *args)
    if server is None or getattr(server, "_active_count", 0) < 1:  # holding no other connection: no pause
        return
    fd = sock.fileno()
    if fd == -1 or not self._remove_reader(fd):  # closed, or asyncio paused it itself (out of file descriptors)
        return
    self.call_later(PAUSE_SECONDS, _resume, self, protocol_factory, sock, sslcontext, server, backlog, *args)


def _resume(loop: Any, protocol_factory: Any, sock: Any, sslcontext: Any, server: Any, backlog: int,
            *args: Any) -> None:
    if sock.fileno() == -1 or (server is not None and not server.is_serving()):  # closed during the pause
        return
    loop._start_serving(protocol_factory, sock, sslcontext, server, backlog, *args)  # noqa: SLF001


def accept_one_at_a_time() -> None:
    """From now on, asyncio's selector loops in this process accept one connection per wake-up
    and pause (call it before the server starts listening: a loop already serving keeps its method)."""
    _LOOP._accept_connection = _one_connection  # noqa: SLF001
    LOOP_FACTORIES["auto"] = LOOP_FACTORIES["asyncio"]  # uvicorn in a BentoML worker: not uvloop (docstring)


def accepting_one_at_a_time() -> bool:
    """Whether ``accept_one_at_a_time`` is in force in this process."""
    return _LOOP._accept_connection is _one_connection and LOOP_FACTORIES["auto"] == LOOP_FACTORIES["asyncio"]  # noqa: SLF001
