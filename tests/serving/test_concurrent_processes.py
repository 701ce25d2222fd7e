"""Readers never block writers (issue 14, items 1 and 5), with real processes.

A tiny home (demo data, snapshots, a champion in the home's MLflow store, scores published); the
real BentoML server serves it while a load generator (httpx, in threads of this process) calls
``/score_accounts`` for published scores and, at the same time, live from the store; meanwhile
``churnwatch score``, ``churnwatch features`` and ``churnwatch alerts`` run to completion on the
same home (exit 0, no traceback). The published answers stay 200 throughout; a live answer is 200,
or 503 with ``Retry-After`` (documented) while a command holds the store for writing; nothing else.

And a command that needs the store another process holds waits, saying so and who holds it, and
goes on when the store is let go of (``core.engine.while_held``), here ``churnwatch features``
whose snapshot build attaches the store.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest

from core.settings import load_settings
from serving.batch import score_dates
from serving.launch import start_server, stop_server
from serving.published import publish_scores, published_paths
from tests.services import free_port
from tests.stores import copy_home

LOAD_SECONDS_MAX = 240  # the load generator stops by then whatever happens


@pytest.fixture(scope="module")
def home(tmp_path_factory, demo_home, trained_demo) -> Path:
    """A tiny home (a copy of the session's shared one, tests/conftest.py: 150 accounts x 12 months,
    snapshots, champion) with the scores of its last date published."""
    root = copy_home(demo_home(150, 12, 3), tmp_path_factory.mktemp("concurrent") / "home")
    settings = load_settings(root / "churnwatch.yaml")
    store = root / "store.duckdb"
    with duckdb.connect(str(store), read_only=True) as con:
        last = con.execute("SELECT max(as_of) FROM snapshots").fetchone()[0]
    bundle = trained_demo(150, 12, 3).bundle  # the champion of the home
    score_dates(root / "d", settings, store, bundle, [last - dt.timedelta(days=7), last], "1")
    publish_scores(store, settings)
    return root


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "churnwatch", *args, "--home", str(home)], capture_output=True,
                          text=True, timeout=300)


class Load:
    """Threads calling ``/score_accounts`` until stopped; each answer's status and Retry-After kept."""

    def __init__(self, base: str, published: list[str], live: list[str]) -> None:
        self.stop = threading.Event()
        self.answers: dict[str, list[tuple[int, str | None]]] = {"published": [], "live": []}
        bodies = {"published": {"account_ids": published}, "live": {"account_ids": live, "live": True}}
        self.threads = [threading.Thread(target=self._call, args=(base, kind, body), daemon=True)
                        for kind, body in bodies.items()]

    def _call(self, base: str, kind: str, body: dict) -> None:
        deadline = time.monotonic() + LOAD_SECONDS_MAX
        with httpx.Client(base_url=base, timeout=30) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    resp = client.post("/score_accounts", json=body)
                    answer = (resp.status_code, resp.headers.get("retry-after"))
                    if resp.status_code == 200:
                        assert [a["account_id"] for a in resp.json()] == body["account_ids"]
                        assert all("error" not in a for a in resp.json()), resp.text[:500]
                except (httpx.HTTPError, AssertionError) as exc:
                    answer = (0, repr(exc)[:300])
                self.answers[kind].append(answer)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


@pytest.mark.slow
def test_score_features_and_alerts_complete_while_the_service_answers(home, tmp_path):
    published = pq.read_table(published_paths(home / "store.duckdb")[0], columns=["account_id", "churned_on"])
    active = sorted(r["account_id"] for r in published.to_pylist() if r["churned_on"] is None)
    env = {"CHURNWATCH_HOME": str(home), "BENTOML_HOME": str(tmp_path / "bentoml"), "CHURNWATCH_WORKERS": "1"}
    proc, base = start_server(free_port(), env, timeout_seconds=120)
    runs, seconds = {}, {}
    try:
        with Load(base, active[:3], active[3:5]) as load:
            time.sleep(1)  # answers before the first command
            for command in ("score", "features", "alerts"):
                started = time.monotonic()
                runs[command] = cli(home, command)
                seconds[command] = round(time.monotonic() - started, 1)
            time.sleep(1)  # answers after the last
    finally:
        stop_server(proc)
    print(f"commands: {seconds}; answers: " + ", ".join(f"{kind} {dict(Counter(s for s, _ in answers))}"
                                                        for kind, answers in load.answers.items()))
    for command, done in runs.items():
        text = done.stdout + done.stderr
        assert done.returncode == 0 and "Traceback" not in text, f"{command}: {text[-3000:]}"
    assert "published for the service" in runs["score"].stdout
    statuses = Counter(s for s, _ in load.answers["published"])
    assert set(statuses) == {200} and statuses[200] > 50, load.answers["published"][:5]
    live = load.answers["live"]
    assert {s for s, _ in live} <= {200, 503}, [a for a in live if a[0] not in (200, 503)][:5]
    assert all(retry and retry.isdigit() for s, retry in live if s == 503)
    assert sum(s == 200 for s, _ in live) > 10


def holder(store: Path, seconds: float) -> subprocess.Popen:
    """Another process holding ``store`` open for writing for ``seconds``, then letting go."""
    child = subprocess.Popen([sys.executable, "-c", "import duckdb, time\n"
                              f"con = duckdb.connect({str(store)!r})\nprint('held', flush=True)\n"
                              f"time.sleep({seconds})\ncon.close()"], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


@pytest.mark.slow
def test_features_waits_for_the_store_another_process_holds_then_builds(home):
    """The holder lets go once ``features`` says it waits: ``features`` then builds (exit 0)."""
    store = home / "store.duckdb"
    child = holder(store, 120)
    features = subprocess.Popen([sys.executable, "-m", "churnwatch", "features", "--home", str(home)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = []
    try:
        for line in features.stderr:  # until it says it waits (or ends)
            said.append(line)
            if "held by another process" in line:
                break
    finally:
        child.kill()
        child.wait()
    out, rest = features.communicate(timeout=300)
    text = out + "".join(said) + rest
    assert features.returncode == 0 and "Traceback" not in text, text[-3000:]
    assert f"{store} is held by another process (PID {child.pid}" in said[-1] and "waiting up to 5 s" in said[-1]
    assert "snapshot rows" in text


@pytest.mark.slow
def test_features_names_the_holder_when_the_store_stays_held(home):
    store = home / "store.duckdb"
    child = holder(store, 60)
    try:
        done = cli(home, "features")
    finally:
        child.kill()
        child.wait()
    text = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in text, text[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot open {store}: another process holds it (PID {child.pid}" in errors[0]
