"""One small monitored setup shared by the monitoring tests.

Demo data (300 accounts x 24 months, behaviour drifting from 2025-10-15), snapshots, one
trained bundle registered in a sqlite MLflow store as version 1 and made champion, and
the score history of one matured date (2025-09-01) and the data end (2026-01-01).
"""

from __future__ import annotations

import pytest

from core.settings import load_settings
from demo.generator import write_demo_data
from features.pipeline import build_snapshots
from serving.batch import score_as_of
from tests.monitoring.helpers import DRIFT_FROM, SCORED
from training.registry import set_champion, setup
from training.train import log_run, params_of, train_on_snapshots


class Setup:
    def __init__(self, tmp):
        self.tmp = tmp
        self.data = tmp / "d"
        self.home = tmp / "home"
        self.store = self.home / "store.duckdb"
        self.uri = f"sqlite:///{self.home / 'mlflow.db'}"
        self.artifacts = self.home / "mlartifacts"


@pytest.fixture(scope="package")
def monitored(tmp_path_factory):
    s = Setup(tmp_path_factory.mktemp("monitoring"))
    write_demo_data(s.data, accounts=300, months=24, seed=6, drift_from=DRIFT_FROM)
    s.settings = load_settings(s.data / "churnwatch.yaml")
    build_snapshots(s.data, s.settings, s.store)
    s.result = train_on_snapshots(s.store, s.tmp / "train")
    s.client = setup(s.uri, s.artifacts)
    log_run(s.result, s.uri, s.artifacts, params_of(s.result))
    set_champion(s.client, 1, "test setup")
    s.bundle = s.result.bundle
    for day in SCORED:
        score_as_of(s.data, s.settings, s.store, s.bundle, day, "1")
    return s
