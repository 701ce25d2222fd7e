"""A small home folder for the managers' views: demo data, snapshots, a trained bundle,
two scoring dates, alerts and retention tasks (all real: DuckDB, LightGBM, the score history)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from features.config import Settings, dump_settings, load_settings
from features.demo import write_demo_data
from features.pipeline import build_snapshots
from features.store import connect, read_meta
from serving.alerts import raise_alerts
from serving.batch import score_as_of
from training.bundle import ModelBundle
from training.train import train_on_snapshots


@dataclass(frozen=True)
class Home:
    root: Path
    data: Path
    store: Path
    bundle_dir: Path
    settings: Settings
    bundle: ModelBundle
    dates: tuple[dt.date, dt.date]


@pytest.fixture(scope="package")
def home(tmp_path_factory) -> Home:
    """300 accounts x 24 months, scored on two dates four weeks apart (the later = the data end)."""
    root = tmp_path_factory.mktemp("managers")
    data = root / "demo-data"
    write_demo_data(data, accounts=300, months=24, seed=6)
    settings = load_settings(data / "churnwatch.yaml")
    dump_settings(settings, root / "churnwatch.yaml")  # data: is absolute, so the home's config finds it
    store = root / "store.duckdb"
    build_snapshots(data, settings, store)
    bundle = train_on_snapshots(store, root / "training").bundle
    bundle_dir = bundle.save(root / "bundle")
    with connect(store, read_only=True) as con:
        end = read_meta(con).data_end
    dates = (end - dt.timedelta(days=28), end)
    for day in dates:
        score_as_of(data, settings, store, bundle, day, "1")
    raise_alerts(store, settings)
    return Home(root=root, data=data, store=store, bundle_dir=bundle_dir, settings=settings, bundle=bundle,
                dates=dates)
