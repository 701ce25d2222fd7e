"""What monitoring compares: the champion's test block (reference) and the latest scores (current).

* **Reference**: the champion bundle's out-of-sample test predictions
  (``test_predictions.csv``) joined on ``(account_id, as_of)`` with the snapshot rows the
  bundle's pointer names (store, table, test-block dates). Prediction drift is real
  because these probabilities were never seen in training.
* **Current**: the snapshot rows of the latest ``as_of`` in ``score_history`` (or a
  chosen date) joined with the ``churn_probability`` scored for them.
* **Matured scores**: score-history rows of dates with ``as_of + horizon + grace <= data
  end``, labelled from the current data: ``relabel_matured`` rebuilds the snapshots of
  scored dates that lack a labelled snapshot row (scored before their horizon passed, or
  dropped by a full ``churnwatch features`` rebuild) with today's data before the labels
  are read; matured scores still without a label are counted and reported, not hidden.

Only the model's own features (the bundle's feature list) are kept.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from core.store import HISTORY, SNAPSHOTS, connect, read_meta
from features.pipeline import build_snapshots, open_connection, prepare
from monitoring.errors import MonitoringError
from training.bundle import ModelBundle
from training.errors import ModelBundleError
from training.registry import champion_version, load_version

KEYS = ["account_id", "as_of"]
PREDICTION = "churn_probability"
LABEL = "churn_label"


def champion_bundle(client) -> ModelBundle:
    """The champion's bundle (with ``meta['model_version']``).

    Raises:
        MonitoringError: no champion alias in the registry.
    """
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


#: Fewer of the test block's rows found in the store than this share: refuse (the store is
#: not the one the champion was trained on, or its rows were rebuilt differently).
MIN_REFERENCE_MATCH = 0.5


def reference_store(bundle: ModelBundle, store: Path | None = None, fallback: Path | None = None) -> tuple[Path, str]:
    """Where the champion's test block lives: ``(store, table)`` (``ModelBundle.test_block_source``)."""
    try:
        path, table, _, _ = bundle.test_block_source(store, fallback)
    except ModelBundleError as exc:
        raise MonitoringError(str(exc).replace("the bundle's", "the champion's")) from exc
    return path, table


def reference_rows(bundle: ModelBundle, store: Path | None = None, fallback: Path | None = None,
                   info: dict | None = None) -> pd.DataFrame:
    """The champion's test block: keys, model features, ``churn_probability``, ``churn_label``, ``tier``.

    Snapshot rows come from ``reference_store``. ``info`` (when given) receives ``store``,
    ``table``, ``predictions`` (rows in ``test_predictions.csv``), ``matched`` and, when
    some rows were not found, a ``warning``.

    Raises:
        MonitoringError: a bundle without a snapshot pointer or test predictions, no such
            store or table, or fewer than half of the test block's rows found in it.
    """
    pointer = bundle.meta.get("snapshots")
    preds = bundle.test_predictions
    if not pointer or preds is None or preds.empty:
        raise MonitoringError("the champion bundle has no snapshot test block (trained on a flat table, or "
                              "without test_predictions.csv): no reference to compare with")
    path, table = reference_store(bundle, store, fallback)
    lo, hi = (dt.date.fromisoformat(d) for d in pointer["test_block"])  # checked by test_block_source
    names = bundle.frame.names
    with connect(path, read_only=True) as con:
        snaps = _select(con, names, "WHERE as_of BETWEEN ? AND ?", [lo, hi], f"{path} ({table})", table)
    keys = preds.assign(as_of=pd.to_datetime(preds["as_of"]), account_id=preds["account_id"].astype(str))
    snaps["as_of"] = pd.to_datetime(snaps["as_of"])
    snaps["account_id"] = snaps["account_id"].astype(str)
    rows = keys.merge(snaps, on=KEYS, how="inner", suffixes=("", "_snapshot"))
    found = {"store": str(path), "table": table, "predictions": len(preds), "matched": len(rows)}
    if len(rows) < MIN_REFERENCE_MATCH * len(preds):
        raise MonitoringError(f"{path} ({table}): only {len(rows):,} of the champion's {len(preds):,} test-block "
                              f"rows ({lo} .. {hi}) are in this store (at least {MIN_REFERENCE_MATCH:.0%} needed); "
                              "pass --store with the store the champion was trained on")
    if len(rows) < len(preds):
        found["warning"] = (f"{len(preds) - len(rows):,} of the champion's {len(preds):,} test-block rows are not "
                            f"in {path} ({table}); the reference has {len(rows):,}")
    if info is not None:
        info.update(found)
    return rows[[*KEYS, *names, PREDICTION, LABEL, "tier"]].reset_index(drop=True)


def _select(con: duckdb.DuckDBPyConnection, names: list[str], where: str, params: list, what: str,
            table: str = SNAPSHOTS) -> pd.DataFrame:
    read_meta(con)
    try:
        columns = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
    except duckdb.CatalogException as exc:
        raise MonitoringError(f"{what}: no table {table}") from exc
    _require(columns, names, what)
    chosen = ", ".join(f'"{c}"' for c in [*KEYS, *names])
    return con.execute(f'SELECT {chosen} FROM "{table}" {where} ORDER BY as_of, account_id', params).df()


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


def champion_probabilities(current: pd.DataFrame, bundle: ModelBundle, version: str) -> tuple[pd.DataFrame, dict]:
    """``current`` with probabilities of the champion ``version``: rows the score history
    holds from another model version (scored before a promotion) are re-scored with the
    champion's bundle (``bundle.predict`` on their snapshot rows), so the comparison with
    the champion's own test block is of one model.

    Returns:
        ``(rows, info)``: ``info`` with ``scored_by`` (version -> rows in the history),
        ``probabilities_from`` (the version whose probabilities are compared) and
        ``rescored`` (rows re-scored here).
    """
    by = current["model_version"].astype(str)
    info = {"scored_by": {str(k): int(v) for k, v in by.value_counts().sort_index().items()},
            "probabilities_from": str(version), "rescored": 0}
    other = by != str(version)
    if other.any():
        current = current.copy()
        fresh = bundle.predict(current.loc[other])
        current.loc[other, PREDICTION] = fresh["churn_probability"].to_numpy()
        current.loc[other, "tier"] = fresh["tier"].to_numpy()
        current.loc[other, "model_version"] = str(version)
        info["rescored"] = int(other.sum())
    return current, info


def _lag(meta) -> dt.timedelta:
    return meta.horizon.lag


def unlabelled_matured(store: Path) -> tuple[dict[dt.date, int], dt.date]:
    """Scored dates matured by the store's data end whose history rows lack a labelled
    snapshot row (date -> rows), and that data end."""
    with connect(store, read_only=True) as con:
        meta = read_meta(con)
        _history_dates(con, store)
        found = con.execute(
            f"SELECT h.as_of, count(*) FROM {HISTORY} h LEFT JOIN {SNAPSHOTS} s USING (account_id, as_of) "
            f"WHERE h.as_of + INTERVAL (?) DAY <= ? AND s.{LABEL} IS NULL GROUP BY h.as_of ORDER BY h.as_of",
            [_lag(meta).days, meta.data_end]).fetchall()
    return {r[0]: int(r[1]) for r in found}, meta.data_end


def relabel_matured(source, settings, store: Path, progress=None) -> dict:
    """Label the scored dates whose horizon has passed in the CURRENT data.

    Rows of scored dates without a labelled snapshot (scored when their label was still
    unknown, or no longer in the store after a full ``churnwatch features`` rebuild) are
    rebuilt with ``features.pipeline.build_snapshots(..., as_of=dates)``: that date's
    features and labels from today's data, the data end from the data itself. Only dates
    that mature by the current data end are rebuilt (the data is loaded once to find it).

    Returns:
        ``{"data_end", "rebuilt": [dates]}``.
    """
    with connect(store, read_only=True) as con:
        meta = read_meta(con)
        dates = _history_dates(con, store)
        have = {r[0] for r in con.execute(
            f"SELECT DISTINCT h.as_of FROM {HISTORY} h LEFT JOIN {SNAPSHOTS} s USING (account_id, as_of) "
            f"WHERE s.{LABEL} IS NULL").fetchall()}
    todo = [d for d in dates if d in have]
    if not todo:
        return {"data_end": meta.data_end.isoformat(), "rebuilt": []}
    con = open_connection()
    try:
        report, _ = prepare(source, settings, con)
    finally:
        con.close()
    due = [d for d in todo if d + _lag(meta) <= report.data_end]
    if due:  # a date before the current data's start too: its label comes from the subscriptions
        build_snapshots(source, settings, store, as_of=due, progress=progress)
    return {"data_end": report.data_end.isoformat(), "rebuilt": [d.isoformat() for d in due]}


def matured_rows(store: Path) -> tuple[pd.DataFrame, dict]:
    """Score-history rows whose horizon has passed (``as_of + horizon + grace <= data
    end``, the store's latest build), with their observed label.

    Returns:
        ``(rows, info)``: rows with ``account_id, as_of, churn_probability, tier,
        model_version, churn_label``; ``info`` with ``data_end``, ``horizon_days``,
        ``grace_days``, ``scored_dates``, ``matured_dates``, ``unlabelled`` (matured date
        -> scores without a label: not counted, reported) and ``next_maturity`` (the first
        unmatured scored date's maturity, or None).

    Raises:
        MonitoringError: no score history.
    """
    with connect(store, read_only=True) as con:
        meta = read_meta(con)
        dates = _history_dates(con, store)
        lag = _lag(meta)
        rows = con.execute(
            f"SELECT h.account_id, h.as_of, h.{PREDICTION}, h.tier, h.model_version, s.{LABEL} "
            f"FROM {HISTORY} h JOIN {SNAPSHOTS} s USING (account_id, as_of) "
            f"WHERE s.{LABEL} IS NOT NULL AND h.as_of + INTERVAL (?) DAY <= ? "
            "ORDER BY h.as_of, h.account_id", [lag.days, meta.data_end]).df()
    unlabelled, _ = unlabelled_matured(store)
    matured = [d for d in dates if d + lag <= meta.data_end]
    pending = [d for d in dates if d + lag > meta.data_end]
    info = {"data_end": meta.data_end.isoformat(), "horizon_days": meta.horizon_days,
            "grace_days": meta.grace_days, "scored_dates": [d.isoformat() for d in dates],
            "matured_dates": [d.isoformat() for d in matured],
            "unlabelled": {d.isoformat(): n for d, n in unlabelled.items()},
            "next_maturity": (pending[0] + lag).isoformat() if pending else None}
    rows[LABEL] = rows[LABEL].astype(int)
    return rows, info
