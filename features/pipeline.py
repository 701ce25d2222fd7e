"""``build_snapshots``: source -> contract checks -> spine and labels -> features -> store.

Over 400 lines: one build's steps in order (load and check, the dates asked for and what refuses them,
spine, features, the write) share one connection, its clean-up and its timings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.engine import store_error, while_held
from core.errors import ChurnwatchError, ConfigError, DataContractError, StoreError
from core.settings import Settings
from core.store import (
    SNAPSHOTS,
    SNAPSHOTS_STAGED,
    SnapshotMeta,
    connect,
    read_meta,
    source_for_store,
    stored_horizon,
    write_snapshots,
)
from features.contract import TABLES
from features.profile import PROFILE_TABLES, ProfilePlan, discover_profile
from features.snapshots import build_feature_tables, event_types
from features.sources import FolderSource, Source, first_line, load_raw_tables, open_source, source_spec, spark_reads
from features.spec import Catalogue, build_catalogue
from features.timeline import build_spine, build_terms, default_schedule, subscriptions_cut
from features.validate import ValidationReport, account_key, validate_tables

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class BuildResult:
    """What one build produced."""

    rows: int
    labelled_rows: int
    positive_rows: int
    accounts: int
    as_of: list[dt.date]
    catalogue: Catalogue
    validation: ValidationReport
    input_hash: str
    seconds: dict[str, float] = field(default_factory=dict)
    #: this process's CPU seconds per stage (all its threads; on a shared machine the work done, where
    #: ``seconds`` also counts other processes' turns; a Spark build's JVM is not in it)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)
    events: int = 0
    profile: ProfilePlan = field(default_factory=ProfilePlan)
    data_source: str | None = None

    def summary(self) -> dict:
        return {
            "snapshots": {"rows": self.rows, "labelled_rows": self.labelled_rows,
                          "positive_rows": self.positive_rows, "accounts": self.accounts,
                          "as_of_first": self.as_of[0].isoformat() if self.as_of else None,
                          "as_of_last": self.as_of[-1].isoformat() if self.as_of else None,
                          "as_of_dates": len(self.as_of), "features": len(self.catalogue.features),
                          "event_types": list(self.catalogue.event_types)},
            "input_hash": self.input_hash,
            "data_source": self.data_source,
            "profile_columns": self.profile.to_dict(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            **self.validation.to_dict(),
        }


#: what a build reports of its rows (``BuildResult``): rows, labelled, positive (of the labelled: a row whose
#: renewal was due on its date has its outcome for monitoring but is no training row), accounts
STATS = ("SELECT count(*), COALESCE(count_if(labelled), 0), COALESCE(count_if(labelled AND churn_label = 1), 0), "
         "count(DISTINCT account_id) FROM {rows}")


def open_connection(threads: int | None = None, memory_limit: str = "6GB") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    # bounded memory: large builds spill to the system temp folder, never the working tree
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET temp_directory = ?", [str(Path(tempfile.gettempdir()) / f"churnwatch-duckdb-{os.getpid()}")])
    return con


#: kept events per account partition of a DuckDB build with more than twice as many (below that one pass
#: is cheaper than the partitions' slices of ``event_keys``, about 1.2 CPU s each at 92 M events). The keyed
#: events (``event_keys``, about 40 bytes an event) stay whole beside one partition's slice and stage
#: tables: at 4x the benchmark (92 M events) 6 partitions of 15 M stay under ``open_connection``'s 6 GB
#: (peak 5.9 GB RSS, nothing spilled) and cost 0.89 CPU s per million events, against 0.82 at 1x;
#: 4 partitions of 23 M spilled (0.5 GB) and cost 1.0; unpartitioned, 1.08 (docs/benchmarks.md)
EVENTS_PER_PARTITION = 16_000_000


def account_partitions(events: int, per_partition: int | None = None) -> int:
    """How many account partitions a build of ``events`` kept events is made in (1: not partitioned):
    none up to twice ``per_partition`` (default ``EVENTS_PER_PARTITION``), else ``per_partition`` or fewer each."""
    per = per_partition or EVENTS_PER_PARTITION
    return 1 if events <= 2 * per else -(-events // per)


def key_range(key: str, p: int, parts: int) -> str:
    """SQL: account key ``key`` (a 64-bit hash, ``account_key``) is in the ``p``-th of ``parts`` equal
    ranges (a comparison DuckDB evaluates in the scan: half the CPU of a modulo over 92 M keys)."""
    step = 2 ** 64 // parts
    lo = f"{key} >= CAST({p * step} AS UBIGINT)" if p else ""
    hi = f"{key} < CAST({(p + 1) * step} AS UBIGINT)" if p < parts - 1 else ""
    return " AND ".join(c for c in (lo, hi) if c) or "TRUE"


def build_in_partitions(con: duckdb.DuckDBPyConnection, parts: int, build: Callable[[], tuple],
                        write: Callable[[int], None], say: Progress) -> tuple:
    """Run ``build`` (which leaves ``snapshot_rows``) once per account partition, ``write(p)`` after each.

    Every stage and the final projection read accounts only through ``spine`` and ``event_keys``
    (``ids`` is made from the spine), and no feature compares accounts: so each partition is
    ``spine`` and ``event_keys`` narrowed to the accounts whose key (``account_key``) is in its range
    (``key_range``), the same SQL run on them, its rows the same. The keyed events stay whole; a partition's
    slice of them is a table of its own (one scan; dropped after its last stage reads it) and its stage
    tables are dropped before the next partition. The rows of the partitions follow one another in the
    store (each in as-of, account order); readers order them. With ``parts`` 1 this is ``build()``
    alone: the caller reads ``snapshot_rows`` itself."""
    if parts == 1:
        return build()
    def temp_objects() -> list[tuple[str, str]]:  # (TABLE or VIEW, name) of the connection's temp objects
        return con.execute("SELECT 'TABLE', table_name FROM duckdb_tables() WHERE temporary UNION ALL "
                           "SELECT 'VIEW', view_name FROM duckdb_views() WHERE temporary").fetchall()

    before = {name for _kind, name in temp_objects()}
    con.execute("ALTER TABLE event_keys DROP COLUMN IF EXISTS h")  # the row hashes: the checks' report is made
    con.execute("ALTER TABLE event_keys RENAME TO event_keys_all")
    con.execute("ALTER TABLE spine RENAME TO spine_all")
    for p in range(parts):
        say(f"account partition {p + 1} of {parts}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE event_keys AS SELECT * FROM event_keys_all "
                    f"WHERE {key_range('aid', p, parts)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE spine AS SELECT * FROM spine_all "
                    f"WHERE {key_range(account_key('account_id'), p, parts)}")
        out = build()
        write(p)
        for kind, name in temp_objects():
            if name not in before and name not in ("event_keys_all", "spine_all"):
                con.execute(f"DROP {kind} IF EXISTS {name}")
    con.execute("DROP TABLE IF EXISTS event_keys")
    con.execute("DROP TABLE spine")
    con.execute("ALTER TABLE spine_all RENAME TO spine")  # the caller counts this build's dates from it
    con.execute("DROP TABLE event_keys_all")
    return out


def input_hash(report: ValidationReport) -> str:
    """An order-independent hash of the cleaned inputs (row hashes summed per table).

    The row hashes are the checking engine's (DuckDB's ``hash``, Spark's ``xxhash64``), so the
    same input checked on Spark has another hash: the engine is part of it (DuckDB's as before)."""
    h = hashlib.sha256()
    if report.engine != "duckdb":
        h.update(f"engine:{report.engine}:".encode())
    for name in sorted(report.tables):
        t = report.tables[name]
        h.update(f"{name}:{t.rows_kept}:{t.content_hash}".encode())
    return h.hexdigest()[:16]


def prepare(source: Source | str | Path, settings: Settings, con: duckdb.DuckDBPyConnection,
            keyed_events: bool = False) -> tuple[ValidationReport, list[str]]:
    """Load and check the source into ``con`` (``clean_*`` tables). Shared by features and metrics.

    ``keyed_events``: keep table ``event_keys`` (the checked events as integer keys, which the
    DuckDB feature stages read); else it is dropped (memory back: 37 bytes an event).
    ``con`` may be a ``features.spark.SparkConnection`` (a source Spark reads itself,
    ``features.sources.spark_reads``): the tables are read and checked there, ``clean_*`` left in Spark."""
    src = source if not isinstance(source, str | Path) else open_source(source)
    unread = src.unread() if isinstance(src, FolderSource) else []
    meant = src.meant_for_absent_tables() if isinstance(src, FolderSource) else []
    if meant:  # said before any check: an absent table's file in another format is why later checks fail
        raise DataContractError(f"{src.describe()}: " + "; ".join(meant) + " (nothing was built: a table left "
                                "unread would leave its features unknown for every account; to build without it, "
                                "move the file out of the folder)")
    for line in unread:  # said first: a check below may stop the build
        log.warning(line)
    try:
        loaded = load_raw_tables(src, con)
        report = validate_tables(con, loaded, settings)
        report.warnings.extend(unread)
        if not keyed_events and report.engine == "duckdb":
            con.execute("DROP TABLE IF EXISTS event_keys")
    except duckdb.Error as exc:
        raise DataContractError(f"{src.describe()}: the contract checks failed in the query engine: "
                                f"{first_line(exc)}") from exc
    return report, loaded


def stored_plan(store: Path) -> ProfilePlan | None:
    """The own-column plan of the store's latest build; None for a new store or one built before plans."""
    if not store.exists():
        return None
    try:
        with connect(store, read_only=True) as con:
            profile = read_meta(con).profile
    except StoreError:
        return None
    return ProfilePlan.from_dict(profile) if profile else None


def start_words(report: ValidationReport) -> str:
    """What the data start is, in words: the event log's first day, the start of its bulk when a few early
    events come before it (``features.validate``), else the first ticket, invoice or term."""
    events = report.tables.get("events")
    if events is None:
        return "the first day of the activity the source holds"
    first = events.first_at
    first = first.date() if isinstance(first, dt.datetime) else first
    if first is not None and first < report.data_start:
        return f"where the bulk of the event log begins; a few events go back to {first}"
    return "the first day of the event log"


def same_horizon(store: Path, settings: Settings) -> None:
    """A build of some dates (``score``, monitoring's matured dates) adds rows to the stored ones: it
    must label them with the store's horizon and grace. A probe changed ``horizon_days`` to 30 in
    churnwatch.yaml; the next ``score`` wrote that date's labels at 30 days beside every other date's
    60, recorded 30 as the store's, and the next model was trained on 60-day labels called 30-day.

    Raises:
        ConfigError: the settings' horizon or grace differ from the store's latest build's.
    """
    stored = stored_horizon(store)
    if stored is not None and stored != (int(settings.horizon_days), int(settings.grace_days)):
        raise ConfigError(
            f"churnwatch.yaml says horizon_days {settings.horizon_days}, grace_days {settings.grace_days}, but the "
            f"store's labels are of horizon_days {stored[0]}, grace_days {stored[1]}: a build of some dates would mix "
            "two horizons in one store. Run `churnwatch features` to rebuild every date with the new setting (then "
            "`churnwatch train`), or set them back")


def unsubscribed(con) -> str | None:
    """A line naming how many accounts (``clean_accounts``) have no subscription term at all: never scored
    (free users, prospects); None when every account has one."""
    total, none = con.execute(
        "SELECT count(*), SUM(CASE WHEN t.account_id IS NULL THEN 1 ELSE 0 END) FROM (SELECT DISTINCT account_id "
        "FROM clean_accounts) a LEFT JOIN (SELECT DISTINCT account_id FROM terms) t ON t.account_id = a.account_id"
    ).fetchone()
    if not none:
        return None
    return (f"accounts: {none:,} of {total:,} have no subscription term (free users, prospects, or terms not "
            "exported): they are never scored; send their terms to score them")


#: Accounts that came back after a gap longer than the grace period are said from this share of the accounts on
#: (and ``RETURNS_MIN`` accounts): a win-back is ordinary, a pause exported as a gap is not a churn.
RETURNS_SHARE = 0.02
RETURNS_MIN = 5


def returns_line(con, grace_days: int, paused: list[str]) -> str | None:
    """A line naming how many accounts' terms resume after a gap longer than ``grace_days`` (``relationships``
    after the first): each gap is labelled a churn and the return starts a new customer. A probe's Paddle export
    with its pauses left as gaps: churned rows 2,743 against 1,740, monthly churn 1.34% against 0.84%, no word.
    None below ``RETURNS_SHARE``."""
    total, back, gaps = con.execute(
        "SELECT count(DISTINCT account_id), count(DISTINCT CASE WHEN rel_no > 1 THEN account_id END), "
        "SUM(CASE WHEN rel_no > 1 THEN 1 ELSE 0 END) FROM relationships").fetchone()
    total, back, gaps = int(total or 0), int(back or 0), int(gaps or 0)
    if not total or back < max(RETURNS_MIN, RETURNS_SHARE * total):
        return None
    plans = "/".join(paused) if paused else "paused"
    return (f"subscriptions: {back:,} of {total:,} accounts ({back / total:.0%}) have terms that resume after a gap "
            f"longer than the grace period ({grace_days} days; {gaps:,} gaps): each gap is labelled a churn and the "
            "return counts as a new customer. Customers who left and came back are that; a pause exported as a gap "
            f"is not: send each pause as a term of its own (plan '{plans}', at the MRR it resumes at; see "
            "docs/exports-with-cancellation-dates.md)")


def build_snapshots(source: Source | str | Path, settings: Settings, store: Path,
                    as_of: list[dt.date] | None = None, progress: Progress | None = None,
                    threads: int | None = None, general_windows: bool = False,
                    home: Path | None = None, engine: str = "duckdb", master: str | None = None,
                    parquet: Path | None = None, from_scratch: bool = False,
                    partition_events: int | None = None, config: Path | None = None,
                    refuse_before_start: bool = False) -> BuildResult:
    """Build snapshots for ``as_of`` (default: the weekly schedule; an empty list: the source's data end, as
    ``score`` without ``--as-of`` asks of a newer export) and write them to ``store``.

    ``general_windows`` forces the general event-window path (tests compare the two).
    The source is remembered in the store's metadata, relative to ``home`` (default: the
    store's folder) when it lies inside it, and so is ``config``, the ``--config`` file given.

    ``engine="spark"`` computes terms, spine and features with PySpark (``master``, default
    ``local[*]``) from the same SQL (``features/spark.py``) and writes them as Parquet
    partitioned by as-of date into ``parquet`` (default ``<store>.snapshots/``) as well as
    into the store. A source Spark reads itself (a Parquet folder, a Spark catalog) is loaded and
    checked there too (the same SQL, ``features/validate.py``); only the raw accounts and
    subscriptions come to the driver (Arrow), for the own-column discovery. Another source (CSV
    files, a DuckDB file, a database) is loaded and checked here and its checked tables handed over.

    The kinds of the company's own columns the store's plan decided are kept (a model is fed
    the kinds it was trained with, ``features.profile``) unless ``from_scratch``; a build of
    some dates (``as_of``) adds no new own column to the stored snapshots.

    On DuckDB a source of many kept events is built in account partitions of at most ``partition_events``
    (default ``EVENTS_PER_PARTITION``; ``account_partitions``, ``build_in_partitions``): the same rows.

    Raises:
        DataContractError: bad input (see ``features/validate.py``), or an as-of date
            after the data end (its features would need data that does not exist) or, with
            ``refuse_before_start`` (dates a person asked for: ``score``, ``features --as-of``), before the
            data start (windows with little or no activity; monitoring's relabelling of old scored dates
            reads their labels from the subscriptions and builds them).
    """
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    src = source if not isinstance(source, str | Path) else open_source(source)
    recorded = source_for_store(source_spec(source), home or store.parent)
    config_recorded = source_for_store(config, home or store.parent) if config is not None else None
    kept = None if from_scratch else stored_plan(store)
    if as_of is not None:
        same_horizon(store, settings)
    con = open_connection(threads)
    run = con  # where terms, spine and features are computed: DuckDB itself, or Spark
    staging_s = [0.0, 0.0]  # wall and CPU seconds of writing the partitions' rows (the write stage's)
    staging = store.with_name(store.stem + ".spark-staging")
    try:
        driver = spark_reads(src) if engine == "spark" else ""
        if engine == "spark" and driver is None:  # read and checked by Spark; clean_* stay there
            from features.spark import open_spark

            say(f"loading and checking {src.describe()} in Spark ({master or 'local[*]'})")
            run = open_spark(master, staging=staging)
            report, loaded = prepare(src, settings, run)
            for name in loaded:  # small: the driver discovers the company's own columns in them; of the
                if name in PROFILE_TABLES:  # other tables only the columns, to list those nothing reads
                    run.to_driver(con, f"raw_{name}")
                elif name in TABLES:
                    run.to_driver(con, f"raw_{name}", rows=False)
        else:
            if driver:
                log.info("the contract checks run in DuckDB on the driver: %s", driver)
            say(f"loading {src.describe()}")
            report, loaded = prepare(src, settings, con, keyed_events=engine != "spark")
        timings["load_and_check"], cpu["load_and_check"] = time.perf_counter() - t0, time.process_time() - c0
        dates = sorted(set(as_of)) if as_of else [report.data_end] if as_of is not None else default_schedule(
            report.data_start, report.data_end, settings.snapshot_every_days, lag_days=settings.horizon.lag.days)
        late = [d for d in dates if d > report.data_end]
        if late:
            raise DataContractError(
                f"as-of date {late[0]} is after the data end {report.data_end}: "
                "features there would need data that does not exist")
        early = [d for d in dates if d < report.data_start] if refuse_before_start else []
        if early:  # windows (nearly) empty: activity would read as none, and the rows would train the next model
            raise DataContractError(f"as-of date {early[0]} is before the data start {report.data_start} "
                                    f"({start_words(report)}): its windows would read little or no activity; choose "
                                    "a date from the data start on")
        t1, c1 = time.perf_counter(), time.process_time()
        if engine == "spark" and run is con:
            from features.spark import start_spark

            say(f"handing the checked tables to Spark ({master or 'local[*]'})")
            run = start_spark(con, loaded, master, staging=staging)
        say(f"building the spine and labels for {len(dates)} as-of dates")
        build_terms(run, settings)
        cut = subscriptions_cut(run, report.data_start, report.data_end)
        if cut:
            log.warning(cut.warning())
            report.warnings.append(cut.warning())
        termless = unsubscribed(run)
        if termless:  # said, not silent (a probe's app: 400 free users of 4,400 passed without a word)
            report.warnings.append(termless)
        back = returns_line(run, settings.grace_days, settings.paused_plans)
        if back:
            log.warning(back)
            report.warnings.append(back)
        build_spine(run, dates, settings, report.data_end)
        say("computing features")
        # the event types (as families: features.spec.event_families) the contract checks counted, unless
        # they set events aside: then those of the kept events (from event_keys; on Spark a pass)
        ev_rep = report.tables.get("events")
        if run is con and ev_rep:
            types = list(report.event_families) if not ev_rep.set_aside else event_types(
                con, "(SELECT t.event_type FROM event_key_types t WHERE t.fid IN "
                     "(SELECT DISTINCT fid FROM event_keys WHERE r IS NULL))")
        else:
            types = event_types(run, "clean_events")
        taken = set(build_catalogue(types).names)
        plan = discover_profile(con, loaded, settings, taken, kept, add_new=as_of is None)
        for c in plan.unused:
            log.info("%s.%s not used as a feature: %s", c.table, c.column, c.reason)
        for line in plan.changed():
            log.warning("own column %s", line)
            say(f"own column {line}")
        events = report.tables["events"].rows_kept if "events" in report.tables else 0  # = rows of clean_events
        parts = account_partitions(events, partition_events) if run is con else 1

        def stage_rows(p: int) -> None:  # a partition's rows into the store's staging table
            w, c = time.perf_counter(), time.process_time()
            if p == 0:  # attached until the build's end: each detach would checkpoint the store
                while_held(lambda: con.execute("ATTACH ? AS store_db", [str(store)]), store)
            verb = f"CREATE OR REPLACE TABLE store_db.main.{SNAPSHOTS_STAGED} AS" if p == 0 else \
                f"INSERT INTO store_db.main.{SNAPSHOTS_STAGED}"
            con.execute(f"{verb} SELECT * FROM snapshot_rows")
            staging_s[0] += time.perf_counter() - w
            staging_s[1] += time.process_time() - c

        store.parent.mkdir(parents=True, exist_ok=True)
        catalogue, statements = build_in_partitions(
            con, parts, lambda: build_feature_tables(run, settings, general=general_windows,
                                                     profile=plan, absent=report.absent_inputs(),
                                                     progress=progress, types=types,
                                                     spellings=report.event_spellings,
                                                     final_view=run is con,
                                                     data_start=report.data_start, cut=cut is not None),
            stage_rows, say)
        timings["features"] = time.perf_counter() - t1 - staging_s[0]
        cpu["features"] = time.process_time() - c1 - staging_s[1]
        t2, c2 = time.perf_counter() - staging_s[0], time.process_time() - staging_s[1]
        digest = input_hash(report)
        stats = None  # DuckDB: counted in the store, where the final projection (a view) is written
        if run is not con:
            from features.spark import default_parquet_folder, write_parquet_snapshots

            stats = run.execute(STATS.format(rows="snapshot_rows")).fetchone()
            folder = parquet or default_parquet_folder(store)
            say(f"writing {stats[0]:,} snapshot rows as Parquet partitioned by as-of date to {folder}")
            write_parquet_snapshots(run, con, folder, replace_all=as_of is None)
        say(f"writing {stats[0]:,} snapshot rows to {store}" if stats else
            f"writing the snapshot rows to {store}" if parts == 1 else
            f"the {parts} partitions' rows become the snapshots of {store}")
        meta = SnapshotMeta(catalogue_json=catalogue.to_json(), data_start=report.data_start,
                            data_end=report.data_end, horizon_days=settings.horizon_days,
                            grace_days=settings.grace_days, source=src.describe(),
                            input_hash=digest, built_at=dt.datetime.now(), data_source=recorded,
                            profile=plan.to_dict(), config_source=config_recorded)
        if parts == 1:
            while_held(lambda: con.execute("ATTACH ? AS store_db", [str(store)]), store)  # waits for a reader or writer
        con.execute("USE store_db")
        write_snapshots(con, "snapshot_rows" if parts == 1 else SNAPSHOTS_STAGED, meta, replace_all=as_of is None)
        if stats is None:  # the rows of this build's dates: every row of the view has a date of the spine
            stats = con.execute(STATS.format(rows=f"{SNAPSHOTS} WHERE as_of IN (SELECT DISTINCT as_of "
                                                  "FROM temp.main.spine)")).fetchone()
        con.execute("USE memory")
        con.execute("DETACH store_db")
        timings["write"], cpu["write"] = time.perf_counter() - t2, time.process_time() - c2
        timings["total"], cpu["total"] = time.perf_counter() - t0, time.process_time() - c0
    except duckdb.Error as exc:  # a full disk, a read-only store or a lock is said as such
        if staging_s[0]:  # partitions staged in the store: the stored snapshots stay, the parts go
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DROP TABLE IF EXISTS store_db.main.{SNAPSHOTS_STAGED}")
        # otherwise one line: DuckDB appends the failing SQL, whose column names (n8_c7) mean nothing to a user
        raise store_error(exc, store) or ChurnwatchError(
            f"snapshot build failed in the query engine: {first_line(exc)} (a value the contract checks of "
            f"features/rules.py let through)") from exc
    finally:
        if run is not con:
            run.close()
        con.close()
    return BuildResult(rows=stats[0], labelled_rows=stats[1], positive_rows=stats[2], accounts=stats[3],
                       as_of=dates, catalogue=catalogue, validation=report, input_hash=digest,
                       seconds=timings, cpu_seconds=cpu, statements=statements, events=events, profile=plan,
                       data_source=recorded)
