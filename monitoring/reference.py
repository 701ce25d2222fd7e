"""What monitoring compares: the champion's test block (reference) and the latest scores (current).

* **Reference**: the champion bundle's out-of-sample test predictions
  (``test_predictions.csv``) joined on ``(account_id, as_of)`` with the snapshot rows the
  bundle's pointer names (store, table, test-block dates). Prediction drift is real
  because these probabilities were never seen in training.
* **Current**: the snapshot rows of the latest ``as_of`` in ``score_history`` (or a
  chosen date) joined with the ``churn_probability`` scored for them.
* **Matured scores**: score-history rows whose label is known, i.e. ``as_of + horizon +
  grace <= data end`` (the snapshots' ``labelled`` flag), with that label.

Only the model's own features (the bundle's feature list) are kept.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from features.store import SNAPSHOTS, connect, read_meta
from monitoring.errors import MonitoringError
from serving.batch import HISTORY
from training.bundle import ModelBundle

KEYS = ["account_id", "as_of"]
PREDICTION = "churn_probability"
LABEL = "churn_label"


def champion_bundle(client) -> ModelBundle:
    """The champion's bundle (with ``meta['model_version']``).

    Raises:
        MonitoringError: no champion alias in the registry.
    """
    from training.registry import champion_version, load_version

    version = champion_version(client)
    if version is None:
        raise MonitoringError("no champion model to monitor: train one (`churnwatch train`) and make it the "
                              "champion (`churnwatch promote`)")
    return load_version(client, version)


def _require(columns, names: list[str], what: str) -> None:
    missing = [n for n in names if n not in set(columns)]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise MonitoringError(f"{what} lacks {len(missing)} of the model's {len(names)} features: "
                              f"{', '.join(missing[:5])}{more}")


def check_features(rows: pd.DataFrame, names: list[str], what: str) -> None:
    """Raise MonitoringError naming the model features ``rows`` lacks, or when it is empty."""
    _require(rows.columns, names, what)
    if rows.empty:
        raise MonitoringError(f"{what} is empty: nothing to compare")


def reference_rows(bundle: ModelBundle, store: Path | None = None) -> pd.DataFrame:
    """The champion's test block: keys, model features, ``churn_probability``, ``churn_label``, ``tier``.

    Snapshot rows come from the store the bundle's pointer names; when that file no longer
    exists, from ``store``.

    Raises:
        MonitoringError: a bundle without a snapshot pointer or test predictions, no such
            store, or none of the test block's rows found in it.
    """
    pointer = bundle.meta.get("snapshots")
    preds = bundle.test_predictions
    if not pointer or preds is None or preds.empty:
        raise MonitoringError("the champion bundle has no snapshot test block (trained on a flat table, or "
                              "without test_predictions.csv): no reference to compare with")
    path = Path(pointer["store"])
    if not path.exists() and store is not None:
        path = Path(store)
    if not path.exists():
        raise MonitoringError(f"the champion's training store {pointer['store']} does not exist; pass --store "
                              "with a store holding its test block")
    lo, hi = (dt.date.fromisoformat(d) for d in pointer["test_block"])
    names = bundle.frame.names
    with connect(path, read_only=True) as con:
        snaps = _select(con, names, "WHERE as_of BETWEEN ? AND ?", [lo, hi], f"{path} ({pointer['table']})")
    keys = preds.assign(as_of=pd.to_datetime(preds["as_of"]))
    keys["account_id"] = keys["account_id"].astype(str)
    snaps["as_of"] = pd.to_datetime(snaps["as_of"])
    rows = keys.merge(snaps, on=KEYS, how="inner", suffixes=("", "_snapshot"))
    if rows.empty:
        raise MonitoringError(f"{path}: none of the {len(preds):,} test-block rows ({lo} .. {hi}) of the champion "
                              "are in this store")
    return rows[[*KEYS, *names, PREDICTION, LABEL, "tier"]].reset_index(drop=True)


def _select(con: duckdb.DuckDBPyConnection, names: list[str], where: str, params: list, what: str) -> pd.DataFrame:
    read_meta(con)
    _require([r[0] for r in con.execute(f"DESCRIBE {SNAPSHOTS}").fetchall()], names, what)
    chosen = ", ".join(f'"{c}"' for c in [*KEYS, *names])
    return con.execute(f"SELECT {chosen} FROM {SNAPSHOTS} {where} ORDER BY as_of, account_id", params).df()


def _history_dates(con: duckdb.DuckDBPyConnection, store: Path) -> list[dt.date]:
    try:
        dates = [r[0] for r in con.execute(f"SELECT DISTINCT as_of FROM {HISTORY} ORDER BY as_of").fetchall()]
    except duckdb.CatalogException as exc:
        raise MonitoringError(f"{store}: no score history yet: run `churnwatch score` first") from exc
    if not dates:
        raise MonitoringError(f"{store}: the score history is empty: run `churnwatch score` first")
    return dates


def current_rows(store: Path, names: list[str], as_of: dt.date | None = None) -> pd.DataFrame:
    """The scored snapshots of one date (default: the latest scored ``as_of``): keys, model
    features, ``churn_probability``, ``tier``, ``model_version``.

    Raises:
        MonitoringError: no score history, the date was never scored, features missing
            from the snapshots, or no snapshot rows for the scored accounts.
    """
    with connect(store, read_only=True) as con:
        dates = _history_dates(con, store)
        day = as_of or dates[-1]
        if day not in dates:
            raise MonitoringError(f"{store}: {day} was never scored (scored dates: {dates[0]} .. {dates[-1]})")
        snaps = _select(con, names, "WHERE as_of = ?", [day], f"{store} snapshots of {day}")
        scores = con.execute(f"SELECT account_id, as_of, {PREDICTION}, tier, model_version FROM {HISTORY} "
                             "WHERE as_of = ?", [day]).df()
    rows = scores.merge(snaps, on=KEYS, how="inner")
    check_features(rows, names, f"{store}: the scored snapshots of {day}")
    return rows[[*KEYS, *names, PREDICTION, "tier", "model_version"]].reset_index(drop=True)


def matured_rows(store: Path) -> tuple[pd.DataFrame, dict]:
    """Score-history rows whose horizon has passed, with their observed label.

    Returns:
        ``(rows, info)``: rows with ``account_id, as_of, churn_probability, tier,
        model_version, churn_label``; ``info`` with ``data_end``, ``horizon_days``,
        ``grace_days``, ``scored_dates``, ``matured_dates`` and ``next_maturity`` (the
        first unmatured scored date's maturity, or None).

    Raises:
        MonitoringError: no score history.
    """
    with connect(store, read_only=True) as con:
        meta = read_meta(con)
        dates = _history_dates(con, store)
        rows = con.execute(
            f"SELECT h.account_id, h.as_of, h.{PREDICTION}, h.tier, h.model_version, s.{LABEL} "
            f"FROM {HISTORY} h JOIN {SNAPSHOTS} s USING (account_id, as_of) "
            f"WHERE s.labelled AND s.{LABEL} IS NOT NULL ORDER BY h.as_of, h.account_id").df()
    lag = dt.timedelta(days=meta.horizon_days + meta.grace_days)
    matured = sorted({d.date() for d in pd.to_datetime(rows["as_of"])})
    pending = [d for d in dates if d + lag > meta.data_end]
    info = {"data_end": meta.data_end.isoformat(), "horizon_days": meta.horizon_days,
            "grace_days": meta.grace_days, "scored_dates": [d.isoformat() for d in dates],
            "matured_dates": [d.isoformat() for d in matured],
            "next_maturity": (pending[0] + lag).isoformat() if pending else None}
    rows[LABEL] = rows[LABEL].astype(int)
    return rows, info
