"""The service stays up under abuse (issue 13, item 6): slow bodies are cut and their sockets
closed, a worker answers 503 past its cap at once, media types are case-insensitive, gzip
bodies are accepted (a zip bomb is 413), and the log has one line per refused request, with
no traceback and nothing a client can use to start a line of its own.

Three layers: the guard on its own (raw ASGI messages, a clock), the service in-process
(``to_asgi()`` and Starlette's TestClient), and one real server on a free port of 127.0.0.1.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import socket
import subprocess
import time
import zlib
from pathlib import Path

import anyio
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from core.settings import ServingSettings, load_settings
from serving.guard import Guard
from serving.launch import free_port, serve_command, stop_server, wait_ready
from serving.limits import serving_limits
from serving.logs import EscapeControl, escape_control
from serving.problems import PROBLEM_TYPE
from serving.scoring import Scorer
from serving.service import make_service

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"account_id": "acme", "features": {"logins_30d": 3, "days_overdue": 40, "industry": "retail"}}
BODY = json.dumps({"accounts": [GOOD]}).encode()
JSON_HEADERS = {"Content-Type": "application/json"}


# --- the guard on its own ------------------------------------------------------------------

async def _echo(request: Request) -> JSONResponse:
    """What reached the app: the body's length and start, and the headers that describe it."""
    body = await request.body()
    if request.url.path == "/hold":
        await request.app.state.release.wait()
    return JSONResponse({"length": len(body), "head": body[:20].decode("utf-8", "replace"),
                         "type": request.headers.get("content-type"),
                         "encoding": request.headers.get("content-encoding")})


def guarded(**limits) -> Guard:
    app = Starlette(routes=[Route("/echo", _echo, methods=["POST"]), Route("/hold", _echo, methods=["POST"]),
                            Route("/livez", lambda r: JSONResponse("ok"))])
    return Guard(app, limits=ServingSettings(**limits))


async def call(app, path: str = "/echo", body: list[bytes] | None = None, headers: dict | None = None,
               gap_seconds: float = 0, method: str = "POST") -> dict:
    """One request through ``app`` as a server would give it: ``body`` in chunks, ``gap_seconds``
    apart. The answer: status, headers, body, and when it was complete."""
    chunks = list(body if body is not None else [BODY])
    started = time.monotonic()
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or JSON_HEADERS).items()]
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": raw, "client": ("203.0.113.9", 4242), "server": ("127.0.0.1", 3000), "scheme": "http",
             "http_version": "1.1", "root_path": "", "asgi": {"version": "3.0"}}
    answer: dict = {"body": b""}

    async def receive() -> dict:
        if not chunks:
            await anyio.sleep_forever()  # a server delivers a disconnect only when the client goes
        await anyio.sleep(gap_seconds)
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        else:
            answer["body"] += message.get("body", b"")
            answer["seconds"] = time.monotonic() - started

    await app({**scope}, receive, send)
    answer["json"] = json.loads(answer["body"]) if answer["body"] else None
    return answer


def run(coroutine_function, *args, **kwargs):
    return anyio.run(lambda: coroutine_function(*args, **kwargs))


def test_a_slow_body_is_cut_at_the_timeout_and_its_connection_closed():
    guard = guarded(body_timeout_seconds=0.5)
    answer = run(call, guard, body=[b"{" for _ in range(100)], gap_seconds=0.05)
    assert answer["status"] == 408
    assert answer["headers"]["connection"] == "close"
    assert answer["headers"]["content-type"] == PROBLEM_TYPE
    assert "within 0.5 seconds" in answer["json"]["detail"]
    assert 0.5 <= answer["seconds"] < 1.5
    assert guard.slots.taken == 0


def test_a_body_in_time_in_many_chunks_is_read_whole():
    answer = run(call, guarded(body_timeout_seconds=2), body=[BODY[:10], BODY[10:30], BODY[30:]], gap_seconds=0.01)
    assert answer["status"] == 200 and answer["json"]["length"] == len(BODY)


def test_past_the_cap_a_request_is_answered_503_with_retry_after_at_once():
    guard = guarded(max_concurrent_requests=3)
    results: dict[str, dict] = {}

    async def scenario() -> None:
        guard.app.state.release = anyio.Event()
        async with anyio.create_task_group() as group:
            for i in range(3):
                group.start_soon(_store, results, f"held{i}", call(guard, "/hold"))
            await anyio.sleep(0.2)  # the three are in progress, waiting in the app
            assert guard.slots.taken == 3
            results["over"] = await call(guard, "/echo")
            results["health"] = await call(guard, "/livez", body=[b""], method="GET", headers={})
            guard.app.state.release.set()
        results["after"] = await call(guard, "/echo")

    anyio.run(scenario)
    over = results["over"]
    assert over["status"] == 503 and over["headers"]["retry-after"] == "2"
    assert over["headers"]["connection"] == "close" and over["seconds"] < 0.1
    assert "more than 3 requests in progress" in over["json"]["detail"]
    assert results["health"]["status"] == 200, "health probes are not counted"
    assert [results[f"held{i}"]["status"] for i in range(3)] == [200, 200, 200]
    assert results["after"]["status"] == 200 and guard.slots.taken == 0


def test_past_the_cap_the_longest_wait_for_a_body_gives_its_place_to_a_new_request():
    guard = guarded(max_concurrent_requests=3, body_timeout_seconds=1)
    results: dict[str, dict] = {}

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            for i in range(3):
                group.start_soon(_store, results, f"slow{i}", call(guard, body=[b"{"] * 1000, gap_seconds=0.05))
                await anyio.sleep(0.05)
            await anyio.sleep(0.1)
            results["new"] = await call(guard)

    anyio.run(scenario)
    assert results["new"]["status"] == 200 and results["new"]["seconds"] < 0.5
    evicted = results["slow0"]
    assert evicted["status"] == 503 and evicted["headers"]["connection"] == "close"
    assert evicted["headers"]["retry-after"] == "2" and "slowest to arrive" in evicted["json"]["detail"]
    assert evicted["seconds"] < 0.5, "cut when the new request came, not at its timeout"
    assert [results[f"slow{i}"]["status"] for i in (1, 2)] == [408, 408]
    assert guard.slots.taken == 0


async def _store(results: dict, key: str, answer) -> None:
    results[key] = await answer


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "Application/Json; Charset=UTF-8",
                                          'application/json;charset="utf8"', "application/json ; foo=bar"])
def test_media_types_are_case_insensitive_with_parameters(content_type):
    answer = run(call, guarded(), headers={"Content-Type": content_type})
    assert answer["status"] == 200
    assert answer["json"]["type"] == "application/json", "BentoML sees the plain type"


@pytest.mark.parametrize(("content_type", "named"), [("application/json; charset=latin-1", "latin-1"),
                                                      ("text/plain", "text/plain"), ("", "none"),
                                                      ("application/jsonp", "application/jsonp")])
def test_other_media_types_and_charsets_are_415_naming_them(content_type, named):
    answer = run(call, guarded(), headers={"Content-Type": content_type})
    assert answer["status"] == 415 and named in answer["json"]["detail"]


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress), ("GZIP", gzip.compress),
                                                     ("x-gzip", gzip.compress), ("deflate", zlib.compress)])
def test_compressed_bodies_reach_the_app_decompressed(encoding, compress):
    packed = compress(BODY)
    answer = run(call, guarded(), body=[packed[:7], packed[7:]],
                 headers={**JSON_HEADERS, "Content-Encoding": encoding, "Content-Length": str(len(packed))})
    assert answer["status"] == 200
    assert answer["json"] == {"length": len(BODY), "head": BODY[:20].decode(), "type": "application/json",
                              "encoding": None}


def test_two_gzip_members_are_one_body():
    answer = run(call, guarded(), body=[gzip.compress(BODY[:9]) + gzip.compress(BODY[9:])],
                 headers={**JSON_HEADERS, "Content-Encoding": "gzip"})
    assert answer["status"] == 200 and answer["json"]["length"] == len(BODY)


def test_a_zip_bomb_is_413_at_the_body_limit():
    bomb = gzip.compress(b" " * 50_000_000, compresslevel=9)  # 50 MB of spaces in ~50 kB
    assert len(bomb) < 100_000
    started = time.monotonic()
    answer = run(call, guarded(max_body_bytes=1_000_000), body=[bomb],
                 headers={**JSON_HEADERS, "Content-Encoding": "gzip"})
    assert answer["status"] == 413
    assert answer["json"]["detail"] == "request body larger than 1000000 bytes once decompressed (gzip)"
    assert time.monotonic() - started < 2, "decompression stops at the limit"


@pytest.mark.parametrize("length", ["9" * 5000, "8000001"])
def test_a_content_length_past_the_limit_is_413_before_the_body_is_read(length):
    answer = run(call, guarded(), body=[], headers={**JSON_HEADERS, "Content-Length": length})
    assert answer["status"] == 413 and answer["headers"]["connection"] == "close"


@pytest.mark.parametrize(("body", "encoding", "status", "said"), [
    (b"not gzip at all", "gzip", 400, "not valid gzip data"),
    (gzip.compress(BODY, mtime=0)[:-12], "gzip", 400, "ends before the compressed data does"),
    (BODY, "br", 415, "'br' is not supported"),
    (BODY, "gzip, deflate", 415, "'gzip, deflate' is not supported"),
])
def test_bad_or_unknown_encodings_are_named(body, encoding, status, said):
    answer = run(call, guarded(), body=[body], headers={**JSON_HEADERS, "Content-Encoding": encoding})
    assert answer["status"] == status and said in answer["json"]["detail"]


def test_escaping_keeps_every_record_on_one_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(EscapeControl())
    logger = logging.getLogger("tests.abuse.escape")
    logger.addHandler(handler)
    try:
        logger.warning("path %s field %s", "/score\nFORGED 200 OK", "a\r\x1b[2Jb\u2028c\x85")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "path /score\\nFORGED 200 OK field a\\r\\x1b[2Jb\\u2028c\\x85\n"
    assert escape_control("plain text, 中文") == "plain text, 中文"


def test_serving_settings_come_from_churnwatch_yaml(tmp_path):
    (tmp_path / "churnwatch.yaml").write_text(yaml.safe_dump(
        {"serving": {"body_timeout_seconds": 4, "max_concurrent_requests": 10}}), encoding="utf-8")
    serving = load_settings(None, tmp_path).serving
    assert (serving.body_timeout_seconds, serving.max_concurrent_requests, serving.max_body_bytes) == (4, 10, 8_000_000)


def test_serving_limits_read_the_home_and_the_environment_and_name_a_bad_value(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNWATCH_MAX_BODY_BYTES", "123456")
    (tmp_path / "churnwatch.yaml").write_text("serving: {max_concurrent_requests: 7}\n", encoding="utf-8")
    limits = serving_limits(tmp_path)
    assert (limits.max_body_bytes, limits.max_concurrent_requests) == (123_456, 7)
    monkeypatch.setenv("CHURNWATCH_MAX_BODY_BYTES", "lots")
    with pytest.raises(SystemExit, match="CHURNWATCH_MAX_BODY_BYTES='lots'"):
        serving_limits(tmp_path)
    (tmp_path / "churnwatch.yaml").write_text("serving: {body_timeout_seconds: 60}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="serving.body_timeout_seconds"):
        serving_limits(tmp_path)


# --- the service in-process ----------------------------------------------------------------

@pytest.fixture(scope="module")
def client(trained_setup):
    tmp, settings, bundle = trained_setup
    scorer = Scorer(bundle=bundle, settings=settings, model_version="3", store=tmp / "s.duckdb")
    with TestClient(make_service(bundle.catalogue, lambda: scorer).to_asgi()) as c:
        yield c


def test_uppercase_media_type_and_gzip_body_score_like_plain_json(client):
    plain = client.post("/score", content=BODY, headers=JSON_HEADERS)
    assert plain.status_code == 200
    upper = client.post("/score", content=BODY, headers={"Content-Type": "APPLICATION/JSON; Charset=UTF-8"})
    packed = client.post("/score", content=gzip.compress(BODY),
                         headers={**JSON_HEADERS, "Content-Encoding": "gzip"})
    assert upper.status_code == 200 and upper.json() == plain.json()
    assert packed.status_code == 200 and packed.json() == plain.json()


def test_a_gzip_bomb_is_a_413_problem(client):
    bomb = gzip.compress(json.dumps({"accounts": [GOOD] * 200_000}).encode(), compresslevel=9)
    response = client.post("/score", content=bomb, headers={**JSON_HEADERS, "Content-Encoding": "gzip"})
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM_TYPE
    assert "8000000 bytes once decompressed" in response.json()["detail"]


def test_a_client_error_is_one_log_record_without_traceback(client, caplog):
    forged = {"accounts": [{"account_id": "a", "features": {"x\nERROR forged line": 1}}]}
    with caplog.at_level(logging.INFO):
        response = client.post("/score", json=forged)
    assert response.status_code == 422
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in records] == [
        "testclient:50000 POST /score -> 422 Request does not match the schema"]
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client's error"


# --- one real server -----------------------------------------------------------------------

SLOW = 200
EXTRA = 60
CAP = 250
TIMEOUT_SECONDS = 4
MARGIN_SECONDS = 4


def _post(base: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(base + "/score", data=body, headers=headers),
                                    timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _slow_socket(port: int) -> socket.socket:
    """A connection that sends its headers and the first byte of a 1,000-byte body, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{")
    return sock


def _answer_and_close(sock: socket.socket, deadline: float) -> tuple[bytes, float | None]:
    """What the server sent on ``sock``, and when it closed it (None: still open at ``deadline``)."""
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data, time.monotonic()
        if not chunk:
            return data, time.monotonic()
        data += chunk
    return data, None


@pytest.fixture(scope="module")
def server(trained_setup, tmp_path_factory):
    """A real server (``bentoml serve`` via serving/launch.py) with a 4 s body timeout and a cap
    of 250 requests in progress, its log in a file."""
    _, _, bundle = trained_setup
    tmp = tmp_path_factory.mktemp("abuse")
    home = tmp / "home"
    home.mkdir()
    (home / "churnwatch.yaml").write_text(yaml.safe_dump(
        {"serving": {"body_timeout_seconds": TIMEOUT_SECONDS, "max_concurrent_requests": CAP}}), encoding="utf-8")
    port = free_port()
    log_path = tmp / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "true",
           "CHURNWATCH_HOME": str(home), "CHURNWATCH_MODEL": str(bundle.save(tmp / "bundle"))}
    env.pop("CHURNWATCH_MAX_BODY_BYTES", None)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(serve_command(port), cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        assert wait_ready(f"http://127.0.0.1:{port}", 180, proc), log_path.read_text(errors="replace")[-3000:]
        yield port, log_path
    finally:
        stop_server(proc)


def test_a_real_server_cuts_slow_bodies_stays_up_and_logs_one_escaped_line_per_4xx(server):
    """260 connections send headers and one byte of body, then nothing: all are answered (408,
    or 503 when their place went to a newer request past the cap of 250) and closed within the
    4 s body timeout plus a margin, while normal requests are answered 200."""
    port, log_path = server
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    slow = [_slow_socket(port) for _ in range(SLOW)]
    time.sleep(0.5)
    status, body = _post(base, BODY, JSON_HEADERS)
    assert status == 200 and json.loads(body)[0]["account_id"] == "acme", "a normal request is answered meanwhile"
    extra = [_slow_socket(port) for _ in range(EXTRA)]
    time.sleep(0.5)
    status, _ = _post(base, BODY, JSON_HEADERS)
    assert status == 200, "every slot taken by a slow body: a normal request still gets one"
    deadline = started + TIMEOUT_SECONDS + MARGIN_SECONDS
    answers = [_answer_and_close(s, deadline) for s in slow + extra]
    for s in slow + extra:
        s.close()
    still_open = sum(closed is None for _, closed in answers)
    assert still_open == 0, f"{still_open} slow connections still open {TIMEOUT_SECONDS + MARGIN_SECONDS} s on"
    statuses = [int(data.split(b" ", 2)[1]) for data, _ in answers if data.startswith(b"HTTP/1.1 ")]
    assert len(statuses) == SLOW + EXTRA, "every slow connection got an answer before it was closed"
    assert set(statuses) <= {408, 503}
    assert 1 <= statuses.count(503) <= SLOW + EXTRA + 1 - CAP, "past the cap: the longest waits are cut"
    assert all(b"retry-after: 2" in data.lower() for data, _ in answers if b" 503 " in data[:13])

    # still up, and the other checks over the wire
    assert _post(base, BODY, JSON_HEADERS)[0] == 200
    assert _post(base, BODY, {"Content-Type": "APPLICATION/JSON; Charset=UTF-8"})[0] == 200
    assert _post(base, gzip.compress(BODY), {**JSON_HEADERS, "Content-Encoding": "gzip"})[0] == 200
    bomb = gzip.compress(b" " * 20_000_000, compresslevel=9)
    assert _post(base, bomb, {**JSON_HEADERS, "Content-Encoding": "gzip"})[0] == 413
    forged = json.dumps({"accounts": [{"account_id": "a", "features": {"x\nFORGED-FIELD 1": 1}}]}).encode()
    assert _post(base, forged, JSON_HEADERS)[0] == 422
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # a newline in the path
        sock.sendall(b"GET /nowhere%0AFORGED-PATH%0D%0A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b" 404 " in sock.recv(4096)[:13]

    time.sleep(1)  # the log is written after the answer
    lines = log_path.read_text(errors="replace").splitlines()
    assert not [line for line in lines if line.startswith("FORGED") or "Traceback" in line]
    refused = [line for line in lines if "/score -> 422" in line]
    assert len(refused) == 1 and "Request does not match the schema" in refused[0]
    assert len([line for line in lines if "status=422" in line]) == 0, "no second (access) line for the 422"
    [path_line] = [line for line in lines if "FORGED-PATH" in line]
    assert "GET /nowhere\\nFORGED-PATH\\r\\n -> 404 Not found" in path_line
    assert len([line for line in lines if "-> 408 Request body not received in time" in line]) == statuses.count(408)
