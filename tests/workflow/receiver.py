"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread that answers from a
script (one step per request, the last step repeated) and records every request it got.

Steps: ``(status, headers, body)`` answers normally; ``"truncated"`` sends headers promising 100
bytes, 10 of them, and closes; ``"garbage"`` answers bytes that are not HTTP; ``("slow", s)``
waits ``s`` seconds before answering 200.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the body was read


@dataclass
class Receiver:
    script: list = field(default_factory=lambda: [(200, {}, b"ok")])
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body, time.monotonic()))
                    n = len(receiver.requests)
                    step = receiver.script[min(n, len(receiver.script)) - 1]
                if step == "truncated":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if step == "garbage":
                    self.wfile.write(b"\x00\x01this is not HTTP at all\r\n\r\n")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if isinstance(step, tuple) and step[0] == "slow":
                    time.sleep(step[1])
                    step = (200, {}, b"ok")
                status, headers, payload = step
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
