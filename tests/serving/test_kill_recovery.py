"""Fault injection (issue 13, item 4): `churnwatch alerts` and `churnwatch score` killed with SIGKILL
at random points, then run again to completion, leave the same stores as a clean run on a copy of
the same home: no duplicate score rows, no alert missing, every alert with its retention task (one
open task per account) and one digest delivery per webhook, and each message received at most
once more per kill (a kill between the receiver's answer and the delivery's mark resends that one
message, see ``workflow.notify``). Scores are in DuckDB, alerts, tasks and deliveries in the
operational store (``operations.sqlite`` in the home): a kill between the two commits is made
good by the next run (``workflow.alerts``).

A tiny demo home (150 accounts x 12 months, a champion in its MLflow store, five weekly scoring
dates without alerts yet, three alert rules, two webhooks) is copied for every series of runs;
the webhooks point at a real ``http.server`` in a thread that counts messages by their
``Idempotency-Key``.
Kill delays are drawn from a seeded RNG over the duration of the clean run of the same command
(for `alerts`, the part after 80% of the duration of a run with nothing to do: Python and the
libraries take most of a run; an older version that stored an alert and its task apart failed
this test).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from core.settings import AlertRule, Webhook, default_alert_rules, dump_settings, load_settings
from core.store import read_meta
from serving.batch import score_dates
from tests.services import free_port
from tests.stores import copy_home as copy_shared_home

SEED = 13
ALERT_KILLS = 20  # kills of `alerts`
SCORE_KILLS = 3  # kills of `score`, one after the other on one copy
RECEIVER_SECONDS = 0.5  # each message (a digest per webhook) takes the receiver this long: a kill-able window
HOOKS = ("generic", "slack")
RULES = [*default_alert_rules(), AlertRule(name="tier drop", kind="tier_drop")]


class Receiver(BaseHTTPRequestHandler):
    """Counts every message it received in full by (path, Idempotency-Key), then answers 200."""

    received: Counter = Counter()
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        with Receiver.lock:
            Receiver.received[(self.path, self.headers["Idempotency-Key"])] += 1
        time.sleep(RECEIVER_SECONDS)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errcode": 0}')
        except OSError:  # the sender was killed while waiting for the answer
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received = Counter()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@dataclass(frozen=True)
class Base:
    root: Path
    data_end: dt.date


@pytest.fixture(scope="module")
def base(tmp_path_factory, demo_home, trained_demo) -> Base:
    """A tiny home (a copy of the session's shared one, tests/conftest.py: demo data, snapshots, a
    champion registered in the home's MLflow store) with the score history of five weekly dates
    before the data end (no alerts raised yet)."""
    root = copy_shared_home(demo_home(150, 12, 3), tmp_path_factory.mktemp("kill") / "base")
    settings = load_settings(root / "churnwatch.yaml")
    store = root / "store.duckdb"
    with duckdb.connect(str(store), read_only=True) as con:
        end = read_meta(con).data_end
    bundle = trained_demo(150, 12, 3).bundle  # the champion of the home
    score_dates(root / "d", settings, store, bundle, [end - dt.timedelta(days=d) for d in range(14, 43, 7)], "1")
    return Base(root=root, data_end=end)


def copy_home(base: Base, name: str, url: str, parent: Path) -> Path:
    """A copy of the base home (the raw data shared) whose webhooks post to ``url/name/<hook>``."""
    home = parent / name
    shutil.copytree(base.root, home)
    settings = load_settings(home / "churnwatch.yaml")
    hooks = [Webhook(name=h, url=f"{url}/{name}/{h}", format=h, retries=0, timeout_seconds=10) for h in HOOKS]
    dump_settings(settings.model_copy(update={"alert_rules": RULES, "webhooks": hooks}), home / "churnwatch.yaml")
    return home


def command(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "churnwatch", *args, "--home", str(home)]


def run(home: Path, *args: str) -> float:
    """Run a command to completion (exit 0); returns its duration in seconds."""
    started = time.monotonic()
    done = subprocess.run(command(home, *args), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    seconds = time.monotonic() - started
    print(f"{home.name}: {' '.join(args)} ran in {seconds:.2f}s")
    return seconds


ENDED: list[float] = []  # how long each run that ended before its kill took


def killed(home: Path, delay: float, *args: str) -> bool:
    """Start a command and SIGKILL it after ``delay`` seconds; False when it ended before (its
    duration is appended to ``ENDED``)."""
    started = time.monotonic()
    proc = subprocess.Popen(command(home, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=delay)
        ENDED.append(time.monotonic() - started)
        assert proc.returncode == 0, f"{' '.join(args)} on {home.name} exited {proc.returncode}"
        print(f"{home.name}: ended before {delay:.2f}s")
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"{home.name}: killed at {delay:.2f}s")
        return True


def state(home: Path) -> dict:
    """What the stores hold, for comparison with a clean run."""
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        out = {
            "history": sorted(q("SELECT account_id, as_of, model_version FROM score_history")),
            "duplicate_history": q("SELECT count(*) FROM (SELECT account_id, as_of FROM score_history "
                                   "GROUP BY ALL HAVING count(*) > 1)")[0][0],
        }
    ops = home / "operations.sqlite"
    if not ops.exists():
        return {**out, "alerts": [], "alert_tasks": [], "tasks": [], "deliveries": []}
    engine = sa.create_engine(f"sqlite:///{ops}")
    try:
        with engine.connect() as conn:
            q = lambda sql: [tuple(r) for r in conn.exec_driver_sql(sql).all()]  # noqa: E731
            out.update(
                alerts=sorted(r[0] for r in q("SELECT id FROM alerts")),
                alert_tasks=sorted(q("SELECT a.id, t.account_id FROM alerts a LEFT JOIN tasks t ON t.id = a.task_id")),
                tasks=sorted(q("SELECT account_id, status FROM tasks")),
                deliveries=sorted(q("SELECT webhook, kind, idempotency_key, status FROM deliveries")))
    finally:
        engine.dispose()
    return out


def messages(name: str) -> dict[tuple[str, str], int]:
    """Messages received for a home: (webhook, idempotency key) -> count."""
    with Receiver.lock:
        return {(path.split("/")[-1], key): n for (path, key), n in Receiver.received.items()
                if path.split("/")[1] == name}


def assert_recovered(home: Path, clean: dict, kills: int) -> None:
    """The killed-then-completed home holds what the clean run wrote, each message arrived, and at
    most one extra copy per kill."""
    got = state(home)
    assert got["duplicate_history"] == 0
    assert got["history"] == clean["history"]
    assert got["alerts"] == clean["alerts"] and got["alerts"]
    assert got["alert_tasks"] == clean["alert_tasks"]  # every alert has its task, of its account
    assert all(account is not None for _, account in got["alert_tasks"])
    assert got["tasks"] == clean["tasks"]
    assert len({a for a, _ in got["tasks"]}) == len(got["tasks"])  # one task per account
    assert got["deliveries"] == clean["deliveries"]  # the same digests, under the same keys
    assert {d[3] for d in got["deliveries"]} == {"delivered"}
    assert sorted(d[0] for d in got["deliveries"]) == sorted(HOOKS)  # one digest per webhook and run
    counts = messages(home.name)
    expected = {(hook, key) for hook, _, key, _ in got["deliveries"]}
    assert set(counts) == expected  # every message arrived, no other message
    extra = sum(n - 1 for n in counts.values())
    assert extra <= kills, f"{extra} messages received twice after {kills} kills"


def test_alerts_killed_at_random_points_then_rerun_lose_and_repeat_nothing(base, receiver, tmp_path):
    clean_home = copy_home(base, "alerts-clean", receiver, tmp_path)
    duration = run(clean_home, "alerts")
    clean = state(clean_home)
    assert len(clean["alerts"]) >= 10 and all(n == 1 for n in messages("alerts-clean").values())
    assert len(messages("alerts-clean")) == len(HOOKS)  # one digest per webhook
    idle = run(clean_home, "alerts")  # nothing left to do: no alert, no message again
    assert state(clean_home) == clean and all(n == 1 for n in messages("alerts-clean").values())
    rng = random.Random(SEED)
    # kill one copy again and again; a run that ends before its kill has finished the work: check that
    # copy and go on with a fresh one
    kills, copies, runs = Counter(), 0, 0
    home = copy_home(base, "alerts-0", receiver, tmp_path)
    while sum(kills.values()) < ALERT_KILLS and runs < 3 * ALERT_KILLS:
        runs += 1
        # over the part of the run that works on the store (the rest is starting Python)
        if killed(home, rng.uniform(0.8 * idle, max(duration, idle)), "alerts"):
            kills[home.name] += 1
            continue
        assert_recovered(home, clean, kills[home.name])
        # the machine is faster (or less loaded) than during the clean runs: the window follows it
        scale = min(1.0, ENDED[-1] / max(duration, idle))
        duration, idle = duration * scale, idle * scale
        copies += 1
        home = copy_home(base, f"alerts-{copies}", receiver, tmp_path)
    assert sum(kills.values()) >= ALERT_KILLS
    run(home, "alerts")
    assert_recovered(home, clean, kills[home.name])


def test_score_killed_at_random_points_then_rerun_completes_exactly_once(base, receiver, tmp_path):
    day = (base.data_end - dt.timedelta(days=7)).isoformat()
    clean_home = copy_home(base, "score-clean", receiver, tmp_path)
    duration = run(clean_home, "score", "--as-of", day)
    clean = state(clean_home)
    assert day in {str(r[1]) for r in clean["history"]}
    rng = random.Random(SEED + 1)
    home = copy_home(base, "score-killed", receiver, tmp_path)
    kills = sum(killed(home, rng.uniform(0, duration), "score", "--as-of", day) for _ in range(SCORE_KILLS))
    run(home, "score", "--as-of", day)
    assert_recovered(home, clean, kills)
