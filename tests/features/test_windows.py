"""The grid path (regular schedules) and the general path give identical features."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from core.store import read_snapshots
from demo.generator import generate_tables
from features.pipeline import build_snapshots
from features.windows import Grid, regular_grid

TABLES = ("accounts", "subscriptions", "events", "tickets", "invoices")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    demo = generate_tables(accounts=30, months=10, seed=5)
    folder = tmp_path_factory.mktemp("win")
    for name in TABLES:
        getattr(demo, name).to_parquet(folder / f"{name}.parquet", index=False)
    return folder, demo.settings


def test_regular_grid_detection():
    assert regular_grid([10, 17, 24, 31]) == Grid(t0=10, step=7, k_max=3)
    assert regular_grid([31, 10, 24, 17, 17]) == Grid(t0=10, step=7, k_max=3)
    assert regular_grid([10, 17, 25]) is None
    assert regular_grid([10, 17]) is None


@pytest.mark.parametrize("step", [7, 30, 1, 45])
def test_grid_and_general_paths_agree(data_dir, tmp_path, step):
    folder, settings = data_dir
    start = dt.date(2024, 4, 3)
    count = {7: 20, 30: 6, 1: 12, 45: 4}[step]
    as_of = [start + dt.timedelta(days=step * k) for k in range(count)]
    frames = []
    for general in (False, True):
        store = tmp_path / f"s{general}.duckdb"
        build_snapshots(folder, settings, store, as_of=as_of, general_windows=general)
        frames.append(read_snapshots(store))
    grid, general = frames
    assert len(grid) > 20 * (count // 2)
    assert grid["logins_30d"].sum() > 0 and grid["active_users_30d"].sum() > 0
    pd.testing.assert_frame_equal(grid, general)
