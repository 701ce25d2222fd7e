"""Training from a Parquet snapshot set: the folder a Spark build writes (issue 17, item 3).

``churnwatch features --engine spark`` writes the snapshots as Parquet partitioned by as-of
date (``<folder>/as_of=YYYY-MM-DD/*.parquet``) and records the build's metadata (catalogue,
horizon, grace, data start and end) in the store. ``train --snapshots FOLDER`` reads the
labelled rows from that folder with DuckDB (streamed, never the whole set in Spark's or
pandas' memory at once) and the metadata from the store, then trains exactly as from the
store: the same rows give the same model and metrics.

**Sample when larger than memory.** The labelled rows are estimated at
``rows x columns x 8 bytes x 4`` (the frame, the model's matrices, the fold copies). When
that exceeds the memory budget (``--memory-budget-mb``, default half the memory available)
or ``--sample-accounts N`` is given, training uses a sample of *accounts*, not rows: every
kept account keeps its whole history (all its as-of dates, so the out-of-time split and the
account-grouped folds stay honest), drawn by a hash of the account id and the seed
(reproducible, no state), stratified by whether the account ever churned in the labelled
rows, so the churn rate of the rows stays close to the full set's. The sample (accounts and
rows kept out of how many, label rate before and after, seed, why) is printed and logged
with the run's MLflow parameters (``sample_*``) and kept in the bundle's metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pandas as pd

from core.settings import TrainingSettings
from core.store import SNAPSHOTS, connect, read_meta
from features.spec import Catalogue
from training.errors import TrainingError
from training.train import TrainResult, train_on_labelled

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

#: bytes per labelled value while training: the frame, the model's matrices and fold copies
BYTES_PER_VALUE = 8 * 4


@dataclass(frozen=True)
class Sample:
    """What ``load_snapshot_set`` kept of the labelled rows."""

    accounts: int
    accounts_kept: int
    rows: int
    rows_kept: int
    label_rate: float
    label_rate_kept: float
    seed: int
    reason: str  # "all rows", "--sample-accounts N", "memory budget ..."

    @property
    def sampled(self) -> bool:
        return self.accounts_kept < self.accounts

    def params(self) -> dict:
        """MLflow parameters (``sample_*``)."""
        return {f"sample_{k}": (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def describe(self) -> str:
        if not self.sampled:
            return (f"all {self.rows:,} labelled rows of {self.accounts:,} accounts "
                    f"(churn rate {self.label_rate:.2%})")
        return (f"sample ({self.reason}): {self.accounts_kept:,} of {self.accounts:,} accounts, whole histories "
                f"(hash of account id, seed {self.seed}, stratified by churned/not), {self.rows_kept:,} of "
                f"{self.rows:,} labelled rows; churn rate {self.label_rate_kept:.2%} (full set "
                f"{self.label_rate:.2%})")


def _glob(folder: Path) -> str:
    return str(folder / "as_of=*" / "*.parquet").replace("'", "''")


def open_snapshot_set(con: duckdb.DuckDBPyConnection, folder: Path, view: str = "snapshot_set") -> list[str]:
    """``view`` over the Parquet snapshot set in ``folder``; its column names.

    Raises:
        TrainingError: the folder does not exist or holds no ``as_of=*/`` Parquet partitions.
    """
    if not folder.is_dir() or not any(folder.glob("as_of=*/*.parquet")):
        raise TrainingError(f"{folder}: not a Parquet snapshot set (expected as_of=YYYY-MM-DD/*.parquet "
                            "folders, as `churnwatch features --engine spark` writes)")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM read_parquet('{_glob(folder)}', "
                "hive_partitioning = true, hive_types = {'as_of': DATE})")
    cols = [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()]
    missing = [c for c in ("account_id", "as_of", "labelled", "churn_label") if c not in cols]
    if missing:
        raise TrainingError(f"{folder}: the snapshot set has no column {missing[0]}")
    return cols


def choose_accounts(con: duckdb.DuckDBPyConnection, view: str, keep: int | None, seed: int = 0,
                    reason: str = "") -> Sample:
    """Temp table ``kept_accounts``: ``keep`` accounts of the labelled rows of ``view`` (all when
    None or not fewer than there are), whole histories, by hash of the account id and ``seed``,
    stratified by ever-churned; returns the sample's figures."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE labelled_accounts AS
        SELECT account_id, count(*) AS n_rows, sum(churn_label) AS positives,
               COALESCE(max(churn_label), 0) AS ever
        FROM {view} WHERE labelled GROUP BY account_id""")
    accounts, rows, positives = con.execute(
        "SELECT count(*), COALESCE(sum(n_rows), 0), COALESCE(sum(positives), 0) FROM labelled_accounts").fetchone()
    if accounts == 0:
        raise TrainingError("the snapshot set has no labelled rows (all as-of dates are within horizon + grace "
                            "of the data end)")
    share = 1.0 if keep is None or keep >= accounts else keep / accounts
    con.execute(f"""CREATE OR REPLACE TEMP TABLE kept_accounts AS
        SELECT account_id FROM (
            SELECT account_id, ever,
                   row_number() OVER (PARTITION BY ever ORDER BY hash(account_id || ':{int(seed)}'), account_id) AS r,
                   count(*) OVER (PARTITION BY ever) AS n
            FROM labelled_accounts)
        WHERE r <= greatest(1, round(n * {share!r}))""")
    kept, kept_rows, kept_pos = con.execute(
        "SELECT count(*), COALESCE(sum(n_rows), 0), COALESCE(sum(positives), 0) FROM labelled_accounts "
        "WHERE account_id IN (SELECT account_id FROM kept_accounts)").fetchone()
    return Sample(accounts=accounts, accounts_kept=kept, rows=int(rows), rows_kept=int(kept_rows),
                  label_rate=float(positives) / rows, label_rate_kept=float(kept_pos) / max(kept_rows, 1),
                  seed=seed, reason=reason if kept < accounts else "all rows")


def _budget_mb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**20 / 2


def load_snapshot_set(folder: Path, store: Path, sample_accounts: int | None = None,
                      memory_budget_mb: float | None = None, seed: int = 0
                      ) -> tuple[pd.DataFrame, Catalogue, dict, Sample]:
    """The labelled rows of the Parquet snapshot set (ordered by as_of, account_id, in the
    store's column order), the catalogue and metadata of the store's build, and the sample.

    Raises:
        TrainingError: not a snapshot set, a catalogue feature missing from it, no labelled rows,
            or ``sample_accounts`` below 1.
        StoreError: the store has no build (its metadata says what the columns mean).
    """
    if sample_accounts is not None and sample_accounts < 1:
        raise TrainingError(f"--sample-accounts must be at least 1 (got {sample_accounts})")
    with connect(store, read_only=True) as store_con:
        meta = read_meta(store_con)
        tables = {r[0] for r in store_con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        order = [r[0] for r in store_con.execute(f"DESCRIBE {SNAPSHOTS}").fetchall()] if SNAPSHOTS in tables else []
    catalogue = Catalogue.from_json(meta.catalogue_json)
    with duckdb.connect(":memory:") as con:
        cols = open_snapshot_set(con, folder)
        missing = [f.name for f in catalogue.features if f.name not in cols]
        if missing:
            raise TrainingError(f"{folder}: feature {missing[0]} of the store's catalogue is not in the snapshot set "
                                f"(built by another run? rebuild with `churnwatch features --engine spark`)")
        full = choose_accounts(con, "snapshot_set", None, seed)
        estimate_mb = full.rows * len(cols) * BYTES_PER_VALUE / 2**20
        budget = memory_budget_mb if memory_budget_mb is not None else _budget_mb()
        keep, reason = sample_accounts, f"--sample-accounts {sample_accounts}"
        if keep is None and estimate_mb > budget:
            keep = max(1, int(full.accounts * budget / estimate_mb))
            reason = f"memory budget {budget:,.0f} MB < about {estimate_mb:,.0f} MB for all rows"
        sample = choose_accounts(con, "snapshot_set", keep, seed, reason) if keep is not None else full
        select = ", ".join(c for c in order if c in cols) if order else "*"
        rows = con.execute(f"SELECT {select} FROM snapshot_set WHERE labelled AND account_id IN "
                           "(SELECT account_id FROM kept_accounts) ORDER BY as_of, account_id").df()
    info = {"data_start": meta.data_start.isoformat(), "data_end": meta.data_end.isoformat(),
            "horizon_days": meta.horizon_days, "grace_days": meta.grace_days,
            "input_hash": meta.input_hash, "source": meta.source}
    return rows, catalogue, info, sample


def train_on_snapshot_set(folder: Path, store: Path, out: Path, seed: int = 0, progress: Progress | None = None,
                          options: TrainingSettings | None = None, allow_leaky: tuple[str, ...] = (),
                          sample_accounts: int | None = None, memory_budget_mb: float | None = None
                          ) -> tuple[TrainResult, Sample]:
    """``train_on_snapshots`` reading the rows from the Parquet snapshot set ``folder`` (and the
    metadata from ``store``), on a sample of whole accounts when asked or when larger than the
    memory budget (module docstring)."""
    say = progress or (lambda _m: None)
    rows, catalogue, info, sample = load_snapshot_set(folder, store, sample_accounts, memory_budget_mb, seed)
    say(f"snapshot set {folder}: {sample.describe()}")
    log.info("snapshot set %s: %s", folder, sample.describe())
    result = train_on_labelled(rows, catalogue, info, store, out, seed=seed, progress=progress, options=options,
                               allow_leaky=allow_leaky)
    meta = result.bundle.meta
    meta["snapshots"] = {**meta.get("snapshots", {}), "parquet": str(folder.resolve())}
    meta["sample"] = asdict(sample)
    return result, sample
