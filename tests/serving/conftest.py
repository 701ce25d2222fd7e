"""A small trained setup shared by the serving tests: demo data, snapshots, a bundle."""

from __future__ import annotations

import pytest

from core.settings import load_settings
from demo.generator import write_demo_data
from features.pipeline import build_snapshots
from training.train import train_on_snapshots


@pytest.fixture(scope="package")
def trained_setup(tmp_path_factory):
    """(folder, settings, bundle): 300 accounts x 24 months, snapshots in folder/s.duckdb."""
    tmp = tmp_path_factory.mktemp("serving")
    write_demo_data(tmp / "d", accounts=300, months=24, seed=6)
    settings = load_settings(tmp / "d" / "churnwatch.yaml")
    build_snapshots(tmp / "d", settings, tmp / "s.duckdb")
    return tmp, settings, train_on_snapshots(tmp / "s.duckdb", tmp / "out").bundle

