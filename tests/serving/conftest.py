"""A small trained setup shared by the serving tests: demo data, snapshots, a bundle."""

from __future__ import annotations

import pytest

from core.settings import load_settings
from serving.scoring import Scorer


@pytest.fixture(scope="package")
def trained_setup(tmp_path_factory, trained_demo):
    """(folder, settings, bundle): 300 accounts x 24 months, snapshots in folder/s.duckdb (a copy of the
    session's shared build, tests/conftest.py: the serving tests write into this store)."""
    tmp = tmp_path_factory.mktemp("serving")
    demo = trained_demo(300, 24, 6)
    demo.copy_to(tmp / "d", tmp / "s.duckdb")
    settings = load_settings(tmp / "d" / "churnwatch.yaml")
    return tmp, settings, demo.bundle


@pytest.fixture(scope="module")
def store_scorer(trained_setup):
    """A ``Scorer`` of the shared bundle reading the shared store (model version "3")."""
    tmp, settings, bundle = trained_setup
    return Scorer(bundle=bundle, settings=settings, model_version="3", store=tmp / "s.duckdb")
