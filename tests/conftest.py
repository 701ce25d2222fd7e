"""Shared fixtures. Services (PostgreSQL) are started by the session itself.

``trained_demo`` builds a demo data folder, its snapshots and a model trained on them ONCE per
test session for each size asked (packages that used to build the same 300 x 24 setup each now
share one); ``run_cli`` is ``churnwatch`` in this process (the fast layer; a few tests keep a real
child process for the console entry point itself).
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pickle
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import postgres_server


@pytest.fixture(scope="session")
def pg_url():
    """A real PostgreSQL server on a free port of 127.0.0.1 (skipped, or failed in CI, if absent)."""
    yield from postgres_server()


@pytest.fixture(autouse=True)
def _no_tracking_uri_leak():
    """Each test leaves MLFLOW_TRACKING_URI as it found it (unset in CI): a test that points
    MLflow somewhere must not send later tests' home folders there."""
    import os

    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(autouse=True, scope="module")
def _fresh_bentoml_metrics():
    """An in-process BentoML app registers its request metrics in prometheus_client's default
    registry when it starts; a second app in the same process (another test module) would find
    them taken (DuplicateTimeseries). Each module leaves the registry as it found it."""
    from prometheus_client import REGISTRY

    before = set(REGISTRY._collector_to_names)  # noqa: SLF001 - prometheus_client has no public listing
    yield
    for collector in set(REGISTRY._collector_to_names) - before:  # noqa: SLF001
        REGISTRY.unregister(collector)


@dataclass(frozen=True)
class TrainedDemo:
    """Demo data (``root/d``), its snapshots (``root/s.duckdb``) and the model trained on them.

    Shared by the whole session: READ ONLY. ``copy_to`` gives a caller its own data folder and
    store to write into; ``result()`` its own ``TrainResult`` (``log_run`` sets version and run
    id on it). The bundle itself is one object, used read-only (predictions, explanations)."""

    root: Path
    trained: object  # training.train.TrainResult

    @property
    def data(self) -> Path:
        return self.root / "d"

    @property
    def store(self) -> Path:
        return self.root / "s.duckdb"

    @property
    def bundle(self):
        return self.trained.bundle

    def result(self):
        return dataclasses.replace(self.trained)

    def copy_to(self, data: Path, store: Path) -> tuple[Path, Path]:
        """The data folder copied to ``data`` (its churnwatch.yaml finds its own tables) and the
        snapshot store to ``store``."""
        shutil.copytree(self.data, data)
        store.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.store, store)
        return data, store


def _shared_temp(tmp_path_factory) -> Path:
    """The session's temporary folder; under pytest-xdist the run's folder all workers share."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory):
    """``trained_demo(accounts, months, seed)`` -> :class:`TrainedDemo`, built on first use only (under
    pytest-xdist by the first worker that asks, under a file lock; the others load its pickled result)."""
    built: dict[tuple[int, int, int], TrainedDemo] = {}

    def get(accounts: int, months: int, seed: int) -> TrainedDemo:
        key = (accounts, months, seed)
        if key not in built:
            root = _shared_temp(tmp_path_factory) / f"demo-{accounts}x{months}-seed{seed}"
            with open(f"{root}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                saved = root / "result.pickle"
                if saved.is_file():
                    result = pickle.loads(saved.read_bytes())
                else:
                    result = _build_demo(root, accounts, months, seed)
                    saved.write_bytes(pickle.dumps(result))
            built[key] = TrainedDemo(root, result)
        return built[key]

    return get


@pytest.fixture(scope="session")
def demo_home(trained_demo, tmp_path_factory):
    """``demo_home(accounts, months, seed)`` -> the folder of a home built ONCE per session on the shared
    :func:`trained_demo` build: its data (``d``), ``churnwatch.yaml`` (the demo's, ``data: d``),
    ``store.duckdb`` (the snapshots, nothing scored) and its MLflow store with the model as version 1,
    the champion. READ ONLY: ``tests.stores.copy_home(demo_home(...), dest)`` gives a test its own home (the first
    command rebases the copied MLflow store, as for any copied home)."""
    built: dict[tuple[int, int, int], Path] = {}

    def get(accounts: int, months: int, seed: int) -> Path:
        key = (accounts, months, seed)
        if key not in built:
            demo = trained_demo(accounts, months, seed)
            root = _shared_temp(tmp_path_factory) / f"home-{accounts}x{months}-seed{seed}"
            with open(f"{root}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not (root / "ready").is_file():
                    _build_home(root / "home", demo)
                    (root / "ready").touch()
            built[key] = root / "home"
        return built[key]

    return get


def _build_home(home: Path, demo: TrainedDemo) -> None:
    from core.settings import dump_settings, load_settings
    from training.registry import set_champion, setup
    from training.train import log_run, params_of

    shutil.rmtree(home, ignore_errors=True)  # a build cut off half-way
    home.mkdir(parents=True)
    # the data inside the home, where the store says it is (``d``, relative): a copied home is whole
    demo.copy_to(home / "d", home / "store.duckdb")
    settings = load_settings(home / "d" / "churnwatch.yaml")
    dump_settings(settings.model_copy(update={"data": "d"}), home / "churnwatch.yaml")
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        uri = f"sqlite:///{home / 'mlflow.db'}"
        log_run(demo.result(), uri, home / "mlartifacts", params_of(demo.trained))
        set_champion(setup(uri, home / "mlartifacts"), 1, "the tests' shared home")
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def _build_demo(root: Path, accounts: int, months: int, seed: int):
    from core.settings import load_settings
    from demo.generator import write_demo_data
    from features.pipeline import build_snapshots
    from training.train import train_on_snapshots

    shutil.rmtree(root, ignore_errors=True)  # a build cut off half-way
    write_demo_data(root / "d", accounts=accounts, months=months, seed=seed)
    build_snapshots(root / "d", load_settings(root / "d" / "churnwatch.yaml"), root / "s.duckdb")
    return train_on_snapshots(root / "s.duckdb", root / "training")


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli(*args)``: ``churnwatch ARGS`` through ``churnwatch.cli.main`` in this process (real
    exit codes, ``COLUMNS=200``); returns a :class:`CliRun`."""
    from churnwatch import options
    from churnwatch.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri sets it in-process
    monkeypatch.setenv("COLUMNS", "200")  # Rich reads it on each print

    def run(*args: object) -> CliRun:
        monkeypatch.setattr(sys, "argv", ["churnwatch", *map(str, args)])
        # Rich fixes a console's width at its creation when COLUMNS is set then (an import of
        # churnwatch.options under another test's COLUMNS): this call's COLUMNS is set on both
        # consoles (their private width; monkeypatch restores it afterwards)
        width = int(os.environ.get("COLUMNS", "200"))
        for console in (options.console, options.err):
            monkeypatch.setattr(console, "_width", width)
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliRun(code, out.out, out.err)

    yield run
    if "workflow.db" in sys.modules:  # the commands' operational-store engines: closed, as at a process's exit
        sys.modules["workflow.db"].dispose_all()


#: Packages whose expensive fixture is package- or session-scoped and not shared across processes:
#: under pytest-xdist one worker runs the whole package (every other test file is its own group).
WHOLE_PACKAGES = {"managers", "monitoring", "spark"}
#: The groups that take longest, longest first (their seconds in a full run of 2026-12-04 on 2 cores
#: at load 7-12, 47 min: spark 711, demo_auc 598, monitoring 558, cli 456, disk faults 246, kill
#: recovery 211, foreign consumer 200, managers 159, short history 147, foreign stripe 142, tiers 119,
#: concurrent processes 109; the whole run 5,510 s of tests): under pytest-xdist they start first, so
#: that the run does not end with one worker on a long group and the other idle (that run's workers
#: finished 7 s apart). Every other group follows in collection order; a long group missing here
#: costs balance, never a result.
LONGEST_FIRST = (
    "spark", "features/test_demo_auc.py", "monitoring", "cli/test_cli.py", "test_disk_faults.py",
    "serving/test_kill_recovery.py", "foreign/test_foreign_consumer_cli.py", "managers",
    "training/test_short_history.py", "foreign/test_foreign_stripe.py", "training/test_tiers_on_generators.py",
    "serving/test_concurrent_processes.py",
)


def work_group(nodeid: str) -> str:
    """A test's unit of work under pytest-xdist: its file below ``tests/`` (``cli/test_cli.py``), or
    its package for the packages of :data:`WHOLE_PACKAGES` (``managers``)."""
    parts = Path(nodeid.split("::")[0]).parts
    parts = parts[1:] if parts[:1] == ("tests",) else parts
    return parts[0] if parts[0] in WHOLE_PACKAGES and len(parts) > 1 else "/".join(parts)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup``: each :func:`work_group` one unit of work, in collection order (see
    :func:`pytest_collection_modifyitems`), so that a file's module fixtures (and a whole package's)
    are built once, by one worker.

    Our own scheduler because pytest-xdist 3.8's ``loadgroup`` groups nothing under pytest 9: it
    marks a group by appending ``@group`` to each node id, which pytest 9's structured node ids
    ignore (pytest-dev/pytest-xdist#1386), so each test went to whichever worker was free and most
    files' module fixtures were built twice."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_group(nodeid)

    config.option.loadscopereorder = False  # xdist would order the units by their number of tests
    return FileGroups(config, log)


def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup`` (each worker collects; the scheduler takes the order it sees): the
    groups of :data:`LONGEST_FIRST` first, each group's tests together and in their own order."""
    if not getattr(config.option, "loadgroup", False):  # set on pytest-xdist's workers
        return
    groups = {item.nodeid: work_group(item.nodeid) for item in items}
    first_seen = {group: n for n, group in enumerate(dict.fromkeys(groups.values()))}
    rank = {group: n for n, group in enumerate(LONGEST_FIRST)}

    def order(pair):
        index, item = pair
        group = groups[item.nodeid]
        return rank.get(group, len(rank)), first_seen[group], index

    items[:] = [item for _, item in sorted(enumerate(items), key=order)]
