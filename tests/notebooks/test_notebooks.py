"""Both notebooks execute without error on a small demo home (built here: data, snapshots,
a trained model registered in a sqlite MLflow store and made champion)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from core.home import Home
from core.settings import dump_settings, load_settings
from training.registry import set_champion, setup
from training.train import log_run, params_of

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory, trained_demo):
    """300 accounts x 24 months: demo data, churnwatch.yaml, snapshots, champion model (the session's build)."""
    h = Home(tmp_path_factory.mktemp("nb") / "home")
    demo = trained_demo(300, 24, 6)  # the session's shared build (tests/conftest.py), copied here
    demo.copy_to(h.root / "demo-data", h.store)
    settings = load_settings(h.root / "demo-data" / "churnwatch.yaml")
    settings = settings.model_copy(update={"data": str(h.root / "demo-data")})
    dump_settings(settings, h.root / "churnwatch.yaml")
    result = demo.result()
    result = log_run(result, h.tracking_uri, h.mlflow_artifacts, params_of(result))
    set_champion(setup(h.tracking_uri, h.mlflow_artifacts), result.version, "notebook tests")
    return h


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_churn_diagnosis.ipynb", "02_model_report.ipynb"])
def test_notebook_runs_on_demo_data(name, demo_home, monkeypatch, tmp_path):
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "stored with outputs"
    monkeypatch.setenv("CHURNWATCH_HOME", str(demo_home.root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 3


def test_backfilled_scores_stay_in_the_champions_out_of_sample_block(demo_home):
    """Back-filled closed-loop scores: only matured dates of the champion's test block, keys + features read."""
    import datetime as dt

    import pandas as pd

    from core.store import connect, read_meta
    from insights.closed_loop import load_scores
    from training.registry import load_model

    bundle = load_model(setup(demo_home.tracking_uri, demo_home.mlflow_artifacts))
    with connect(demo_home.store, read_only=True) as con:
        meta = read_meta(con)
    first = dt.date.fromisoformat(bundle.meta["split"]["test"][0])
    cut = meta.data_end - dt.timedelta(days=meta.horizon_days + meta.grace_days)
    scores, source = load_scores(demo_home.store, meta.data_end, meta.horizon_days, meta.grace_days, bundle,
                                 "backfill")
    dates = pd.to_datetime(scores["as_of"]).dt.date
    assert dates.min() >= first and dates.max() <= cut
    assert f"{dates.nunique()} matured snapshot date(s) {first}..{cut}" in source and "out-of-sample" in source
    assert str(scores["as_of"].dtype) == "datetime64[ns]"
