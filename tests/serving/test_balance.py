"""serving/balance.py: workers sharing one listening socket share a burst of connections out.

Each case runs in child processes (the change is process-wide: it must not reach the test
process's own event loops). Real sockets on 127.0.0.1; each server answers a connection with
its process id."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from serving.launch import free_port, start_server, stop_server
from tests.stores import copy_home

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import asyncio, os, socket, sys
    from serving.balance import accept_one_at_a_time, accepting_one_at_a_time
    if sys.argv[2] == "one":
        accept_one_at_a_time()
        assert accepting_one_at_a_time()
    sock = socket.socket(fileno=int(sys.argv[1]))

    async def answer(reader, writer):
        writer.write(str(os.getpid()).encode() + b"\\n")
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    async def main():
        server = await asyncio.start_server(answer, sock=sock)
        print("ready", flush=True)
        await asyncio.sleep(30)
        server.close()

    asyncio.run(main())
""")


def _workers(n: int, mode: str) -> tuple[socket.socket, list[subprocess.Popen]]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    listener.set_inheritable(True)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(listener.fileno()), mode],
                              pass_fds=[listener.fileno()], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(n)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    return listener, procs


def _burst(port: int, n: int) -> list[int]:
    """Opens ``n`` connections at once (as wrk does), then reads which process answered each."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    try:
        return [int(c.makefile().readline()) for c in conns]
    finally:
        for c in conns:
            c.close()


def test_two_workers_share_a_burst_of_connections() -> None:
    listener, procs = _workers(2, "one")
    try:
        time.sleep(0.2)  # both loops waiting on the socket
        answered = _burst(listener.getsockname()[1], 8)
        assert set(answered) == {p.pid for p in procs}  # both workers took connections
        assert max(answered.count(p.pid) for p in procs) <= 6
    finally:
        for p in procs:
            p.kill()
            p.wait()
        listener.close()


def test_one_worker_still_accepts_every_connection_of_a_burst_promptly() -> None:
    listener, procs = _workers(1, "one")
    try:
        t = time.perf_counter()
        answered = _burst(listener.getsockname()[1], 20)
        assert answered == [procs[0].pid] * 20
        assert time.perf_counter() - t < 2.0  # 20 pauses of 5 ms, not a stall
    finally:
        procs[0].kill()
        procs[0].wait()
        listener.close()


def test_a_connection_per_request_is_not_held_up_by_the_pause() -> None:
    """A client opening one connection per request (each closed before the next) is accepted
    without a pause: 200 of them take well under the 1 s that 200 pauses of 5 ms would."""
    listener, procs = _workers(1, "one")
    try:
        port = listener.getsockname()[1]
        _burst(port, 1)  # warm
        t = time.perf_counter()
        for _ in range(200):
            assert _burst(port, 1) == [procs[0].pid]
        assert time.perf_counter() - t < 0.8
    finally:
        procs[0].kill()
        procs[0].wait()
        listener.close()


def test_a_worker_that_shares_runs_uvicorns_default_loop_on_asyncio_not_uvloop() -> None:
    """uvloop accepts in C, where this module cannot reach: with it, bursts went to one worker as
    before. After ``accept_one_at_a_time`` uvicorn's ``auto`` loop (what BentoML's workers use) is
    asyncio's, whose accepting is shared out; without the call it is uvloop when installed."""
    probe = textwrap.dedent("""
        import sys, uvicorn
        from serving.balance import accept_one_at_a_time
        if sys.argv[1] == "one":
            accept_one_at_a_time()
        loop = uvicorn.Config(app=None).get_loop_factory()()
        print(type(loop).__module__)
        loop.close()
    """)

    def loop_module(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()

    assert loop_module("one") == "asyncio.unix_events"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return
    assert loop_module("plain").startswith("uvloop")
def _held_connections(workers: list[psutil.Process], port: int) -> list[int]:
    """How many established connections to ``port`` each worker process holds."""
    return [sum(1 for c in w.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED and c.laddr
                and c.laddr.port == port) for w in workers]


def _connect_at_once(port: int, n: int) -> list[socket.socket]:
    """``n`` connections started within microseconds of each other (non-blocking, as wrk does),
    then made blocking once established."""
    conns = [socket.socket() for _ in range(n)]
    for c in conns:
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
    for c in conns:
        select.select([], [c], [], 10)
        c.settimeout(10)
    return conns


@pytest.mark.slow
def test_the_real_server_s_two_workers_share_every_burst(demo_home, tmp_path) -> None:
    """The real BentoML server with two workers (which run uvicorn, under uvloop unless
    serving/balance.py says otherwise): once both workers are up, each of six bursts of 8 keep-alive
    connections, opened as wrk opens them, is held by both workers (before the uvloop fix: 8/0 in
    about a third of bursts)."""
    home = copy_home(demo_home(150, 12, 3), tmp_path / "home")
    port = free_port()
    proc, base = start_server(port, {"CHURNWATCH_HOME": str(home), "BENTOML_HOME": str(tmp_path / "bentoml"),
                                     "CHURNWATCH_WORKERS": "2"}, timeout_seconds=180)
    try:
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if any("_bentoml_impl.worker" in a for a in p.cmdline())]
        assert len(workers) == 2, [p.cmdline() for p in psutil.Process(proc.pid).children(recursive=True)]

        def burst() -> list[int]:
            time.sleep(0.3)  # both workers idle on the socket
            conns = _connect_at_once(port, 8)
            try:
                for c in conns:
                    c.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                for c in conns:
                    assert c.recv(4096).startswith(b"HTTP/1.1 200")
                return sorted(_held_connections(workers, port))
            finally:
                for c in conns:
                    c.close()

        deadline = time.monotonic() + 120  # /readyz answers once ONE worker is up: wait for the second
        while burst()[0] == 0:
            assert time.monotonic() < deadline, "the second worker never took a connection"
        splits = [burst() for _ in range(6)]
        assert all(sum(s) == 8 and s[0] >= 1 for s in splits), splits
    finally:
        stop_server(proc)
