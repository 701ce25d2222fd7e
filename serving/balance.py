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
the accepting changes (not the listen backlog, nor anything else of the loop). BentoML's worker
runs uvicorn's default loop, which is uvloop when uvloop is installed (it is, with uvicorn's
extras): uvloop accepts in C and this change did nothing there (a py-spy profile of a worker shows
no asyncio loop frames; the workers' c8 CPU split 0.83-0.98 on one in three runs of five), so a
sharing worker runs asyncio's loop instead (``use_asyncio_loop``; 0.50-0.59 in four runs of five).
Installed only when there is more than one worker (``serving/service.py``).
"""

from __future__ import annotations

import asyncio.selector_events
from typing import Any

#: How long a worker leaves the listening socket to the others after accepting a connection.
PAUSE_SECONDS = 0.005

_LOOP = asyncio.selector_events.BaseSelectorEventLoop
_PLAIN = _LOOP._accept_connection  # noqa: SLF001 - the one asyncio method this module changes


def _one_connection(self: Any, protocol_factory: Any, sock: Any, sslcontext: Any = None, server: Any = None,
                    backlog: int = 100, *args: Any) -> None:
    """``_accept_connection`` taking at most one waiting connection, then pausing (module docstring)."""
    _PLAIN(self, protocol_factory, sock, sslcontext, server, 1, *args)
    if server is None or _open_connections(server) < 1:  # holding no other connection: no pause
        return
    fd = sock.fileno()
    if fd == -1 or not self._remove_reader(fd):  # closed, or asyncio paused it itself (out of file descriptors)
        return
    self.call_later(PAUSE_SECONDS, _resume, self, protocol_factory, sock, sslcontext, server, backlog, *args)


def _open_connections(server: Any) -> int:
    """The connections ``server`` holds: ``_active_count`` up to Python 3.12, the ``_clients`` set from 3.13."""
    clients = getattr(server, "_clients", None)
    return len(clients) if clients is not None else getattr(server, "_active_count", 0)


def _resume(loop: Any, protocol_factory: Any, sock: Any, sslcontext: Any, server: Any, backlog: int,
            *args: Any) -> None:
    if sock.fileno() == -1 or (server is not None and not server.is_serving()):  # closed during the pause
        return
    loop._start_serving(protocol_factory, sock, sslcontext, server, backlog, *args)  # noqa: SLF001


def accept_one_at_a_time() -> None:
    """From now on, asyncio's selector loops in this process accept one connection per wake-up
    and pause (call it before the server starts listening: a loop already serving keeps its method),
    and uvicorn's default loop is asyncio's (``use_asyncio_loop``)."""
    _LOOP._accept_connection = _one_connection  # noqa: SLF001
    use_asyncio_loop()


def use_asyncio_loop() -> None:
    """uvicorn's ``auto`` loop (BentoML's workers take the default) is uvloop whenever uvloop is
    installed, and uvloop accepts in C (libuv takes every waiting connection), beyond this module's
    reach: the bursts went to one worker as before. From now on ``auto`` means asyncio's loop in this
    process (before uvicorn starts)."""
    try:
        import uvicorn.config
    except ImportError:  # no uvicorn: nothing to choose
        return
    uvicorn.config.LOOP_FACTORIES["auto"] = uvicorn.config.LOOP_FACTORIES["asyncio"]


def accepting_one_at_a_time() -> bool:
    """Whether ``accept_one_at_a_time`` is in force in this process."""
    return _LOOP._accept_connection is _one_connection  # noqa: SLF001
