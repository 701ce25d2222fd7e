"""A small home folder for the managers' views: demo data, snapshots, a trained bundle,
two scoring dates, alerts and retention tasks (all real: DuckDB, LightGBM, the score history)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings, dump_settings, load_settings
from core.store import connect, read_meta
from serving.batch import score_as_of
from training.bundle import ModelBundle
from workflow.alerts import raise_alerts


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
def home(tmp_path_factory, trained_demo) -> Home:
    """300 accounts x 24 months, scored on two dates four weeks apart (the later = the data end)."""
    root = tmp_path_factory.mktemp("managers")
    demo = trained_demo(300, 24, 6)  # the session's shared build (tests/conftest.py), copied here
    data, store = demo.copy_to(root / "demo-data", root / "store.duckdb")
    settings = load_settings(data / "churnwatch.yaml")
    dump_settings(settings, root / "churnwatch.yaml")  # data: is absolute, so the home's config finds it
    bundle = demo.bundle
    bundle_dir = bundle.save(root / "bundle")
    with connect(store, read_only=True) as con:
        end = read_meta(con).data_end
    dates = (end - dt.timedelta(days=28), end)
    for day in dates:
        score_as_of(data, settings, store, bundle, day, "1")
    raise_alerts(store, settings)
    return Home(root=root, data=data, store=store, bundle_dir=bundle_dir, settings=settings, bundle=bundle,
                dates=dates)


@dataclass(frozen=True)
class AlteredHome:
    """A copy of ``home`` (own store, data and config) with the awkward cases a real CRM has."""

    root: Path
    data: Path
    store: Path
    settings: Settings
    gone: str  # its snapshot row of the latest date is gone; CSM "[Team A] [/x]"; 32 scores
    no_mrr: tuple[str, str]  # snapshot MRR unknown on the latest date; the first also has no segment
    csm: str = "[Team A] [/x]"  # the CSM of ``gone`` in the raw accounts table


@pytest.fixture(scope="package")
def altered(home, tmp_path_factory) -> AlteredHome:
    import shutil

    import pandas as pd

    root = tmp_path_factory.mktemp("altered")
    data = root / "demo-data"
    shutil.copytree(home.data, data)
    store = root / "store.duckdb"
    shutil.copy(home.store, store)
    settings = home.settings.model_copy(update={"data": str(data)})
    dump_settings(settings, root / "churnwatch.yaml")
    day, before = home.dates[1], home.dates[0]
    with connect(store) as con:
        ids = [r[0] for r in con.execute("SELECT account_id FROM score_history WHERE as_of = ? "
                                         "ORDER BY health_score, account_id LIMIT 3", [day]).fetchall()]
        gone, no_mrr = ids[0], (ids[1], ids[2])
        con.execute("DELETE FROM snapshots WHERE account_id = ? AND as_of = ?", [gone, day])
        con.execute("UPDATE snapshots SET mrr = NULL WHERE as_of = ? AND account_id IN (?, ?)", [day, *no_mrr])
        con.execute("UPDATE snapshots SET segment = NULL WHERE as_of = ? AND account_id = ?", [day, no_mrr[0]])
        for k in range(1, 31):  # 30 weekly scores before the first date (no snapshots for them)
            con.execute("INSERT INTO score_history SELECT * REPLACE (CAST(? AS DATE) AS as_of) FROM score_history "
                        "WHERE account_id = ? AND as_of = ?", [before - dt.timedelta(days=7 * k), gone, before])
    accounts = pd.read_parquet(data / "accounts.parquet")
    accounts.loc[accounts["account_id"] == gone, "csm"] = AlteredHome.csm
    accounts.to_parquet(data / "accounts.parquet", index=False)
    return AlteredHome(root=root, data=data, store=store, settings=settings, gone=gone, no_mrr=no_mrr)
