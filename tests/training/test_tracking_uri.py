"""Pointing MLflow at one home's store does not redirect other home folders."""

from __future__ import annotations

import os

from core.home import Home
from training.registry import setup


def test_setup_leaves_the_environment_as_the_user_set_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, second = Home(tmp_path / "a"), Home(tmp_path / "b")
    setup(first.tracking_uri, first.mlflow_artifacts)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert second.tracking_uri == f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'chosen.db'}")
    setup(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "art")
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'chosen.db'}"
