"""The scores a scoring run publishes for the service (issue 14 items 1-2).

``churnwatch score`` writes, after its run commits, two read-only Parquet files beside the
store, each replaced whole (``core.files.atomic_path``) so a reader sees the old run or the new
one, never half of one:

* ``serving/<store>-scores.parquet``: the latest score of every account ever scored, with both
  languages' reasons, the playbook, ``as_of``, ``model_version``, MRR, expected MRR loss
  (MRR x probability), the CSM, the previous score and its date, the health and tier change,
  ``respond_within_hours``, ``due_at`` (scored at + respond within), ``churned_on`` for an
  account the latest run no longer scored (not active on its date), and ``waterfall``: that
  score's SHAP waterfall as JSON (``serving.waterfalls``; NULL when it was made without one),
  which the workspace's account page draws and the API does not answer;
* ``serving/<store>-history.parquet``: every score (account, as_of, probability, health, tier,
  model version), oldest first per account.

The latest-scores file carries the stamp of the history it was made from (rows, latest as-of,
latest scoring time). A run killed between its commit and its publication leaves the file one
run behind; ``republish_if_behind`` (each service worker at start, and every ``churnwatch
score`` after its commit) compares the stamps and publishes again from the committed history.

The service reads them with pyarrow (``PublishedScores``), never the DuckDB store, so a scoring
run, ``features`` or ``alerts`` write while it answers. It notices a new run by the file's
modification time and size on each request (one ``stat``) and loads it whole, once.

Staleness is measured on the data's clock: a score is stale when it is more than
``serving.max_score_age_days`` older than the latest run's as-of date (the newest ``as_of`` in
the file), or when the account churned (then it has no live tier and no playbook).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.files import atomic_path
from core.lapse import churn_days, lapsed
from core.scores import history_has_rows
from core.settings import Settings
from core.store import HISTORY, SNAPSHOTS, connect, has_table
from core.vocabulary import TIER_KEYS, owner_label, respond_label
from serving.scoring import public_reason
from serving.waterfalls import waterfall_join

log = logging.getLogger(__name__)

SNAPSHOT_EXTRAS = ("mrr", "csm", "days_to_term_end")
STAMP_KEY = b"churnwatch.history_stamp"


def published_paths(store: Path) -> tuple[Path, Path]:
    """``(latest scores, score history)`` files published for ``store``."""
    folder = Path(store).parent / "serving"
    return folder / f"{Path(store).stem}-scores.parquet", folder / f"{Path(store).stem}-history.parquet"


# --- publishing (the scorer's side) -----------------------------------------------------------

def publish_scores(store: Path, settings: Settings) -> Path | None:
    """Write the latest-scores and history files of ``store`` (module docstring); ``None`` when
    the store holds no score yet. Reads the store read-only, after the run committed."""
    with connect(store, read_only=True) as con:
        if not history_has_rows(con):
            return None
        latest = _latest_rows(con)
        history = con.execute(f"SELECT account_id, as_of, churn_probability, health_score, tier, model_version "
                              f"FROM {HISTORY} ORDER BY account_id, as_of").df()
        stamp = history_stamp(con)
    history["as_of"] = pd.to_datetime(history["as_of"]).dt.date
    frame = derive_fields(latest, settings)
    scores_path, history_path = published_paths(store)
    with atomic_path(history_path, ".parquet") as tmp:
        history.to_parquet(tmp, index=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), STAMP_KEY: stamp.encode()})
    with atomic_path(scores_path, ".parquet") as tmp:
        pq.write_table(table, tmp)
    log.info("published %d latest scores to %s", len(frame), scores_path)
    return scores_path


def history_stamp(con) -> str:
    """What identifies the committed score history (rows, latest as-of, latest scoring time): a
    publication made from another history is out of date."""
    rows, as_of, scored_at = con.execute(f"SELECT count(*), max(as_of), max(scored_at) FROM {HISTORY}").fetchone()
    return json.dumps([rows, str(as_of), str(scored_at)])


def published_stamp(store: Path) -> str | None:
    """The history stamp the published scores of ``store`` were made from (None: no file, or a file
    written before stamps)."""
    try:
        meta = pq.read_schema(published_paths(store)[0]).metadata or {}
    except (OSError, ValueError):
        return None
    stamp = meta.get(STAMP_KEY)
    return stamp.decode() if stamp else None


def republish_if_behind(store: Path, settings: Settings) -> Path | None:
    """Publish again when the published scores were not made from the committed history (a run
    killed between its commit and its publication, or a file deleted); returns the file written,
    or None when it was up to date, there is no score, or the store cannot be read now (a writer
    holds it: that writer publishes when it is done)."""
    try:
        with connect(store, read_only=True, wait_seconds=0) as con:
            if not history_has_rows(con):
                return None
            stamp = history_stamp(con)
    except Exception as exc:  # noqa: BLE001 - missing, locked or unreadable store: nothing to do here
        log.info("published scores not checked against %s (%s)", store, exc)
        return None
    if published_stamp(store) == stamp:
        return None
    log.warning("published scores of %s are behind its score history: publishing again", store)
    try:
        return publish_scores(store, settings)
    except Exception as exc:  # noqa: BLE001 - a full disk or a writer that came in between: the next run publishes
        log.warning("could not publish the scores of %s again (%s); serving the previous publication", store, exc)
        return None


def _latest_rows(con) -> pd.DataFrame:
    """Each account's latest score with its previous one and the snapshot's MRR, CSM, term end."""
    snap_cols = set()
    if has_table(con, SNAPSHOTS):
        snap_cols = {r[0] for r in con.execute(f"DESCRIBE {SNAPSHOTS}").fetchall()}
    extras = ", ".join(f"s.{c}" if c in snap_cols else f"NULL AS {c}" for c in SNAPSHOT_EXTRAS)
    join = (f"LEFT JOIN {SNAPSHOTS} s ON s.account_id = h.account_id AND s.as_of = h.as_of" if snap_cols else "")
    # the term end an account that left was last seen with: its latest snapshot up to the newest scored date
    # (built date by date by `features`), not the one of its latest score: scored dates can be months
    # apart, renewals in between (a probe: churn dated 150 to 395 days early after one old date scored)
    last = ("ls.last_seen, ls.last_days_to_term_end" if "days_to_term_end" in snap_cols
            else "NULL AS last_seen, NULL AS last_days_to_term_end")
    last_join = (f"""LEFT JOIN (SELECT account_id, as_of AS last_seen, days_to_term_end AS last_days_to_term_end
                               FROM {SNAPSHOTS} WHERE as_of <= (SELECT max(as_of) FROM {HISTORY})
                               QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC) = 1
                               ) ls ON ls.account_id = h.account_id"""
                 if "days_to_term_end" in snap_cols else "")
    waterfall, waterfall_join_clause = waterfall_join(con)
    return con.execute(f"""
        WITH h AS (
            SELECT *, lag(as_of) OVER w AS previous_as_of, lag(churn_probability) OVER w AS previous_probability,
                   lag(health_score) OVER w AS previous_health_score, lag(tier) OVER w AS previous_tier,
                   row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC) AS newest
            FROM {HISTORY} WINDOW w AS (PARTITION BY account_id ORDER BY as_of))
        SELECT h.* EXCLUDE (newest), {extras}, {last}, {waterfall} FROM h {join} {last_join} {waterfall_join_clause}
        WHERE newest = 1 ORDER BY h.account_id""").df()


def derive_fields(latest: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The sync fields of the latest scores (pure): changes, MRR loss, due time, churn, staleness."""
    out = latest.copy()
    for col in ("as_of", "previous_as_of"):
        out[col] = pd.to_datetime(out[col]).dt.date.where(out[col].notna(), None)
    run_as_of = max(out["as_of"])
    rank = {t: i for i, t in enumerate(TIER_KEYS)}  # best first: a higher rank is worse
    now_rank, before_rank = out["tier"].map(rank), out["previous_tier"].map(rank)
    out["tier_change"] = np.select([before_rank.isna(), now_rank > before_rank, now_rank < before_rank],
                                   [None, "worse", "better"], "unchanged")
    out["health_change"] = (out["health_score"] - out["previous_health_score"]).astype("Int64")
    out["mrr"] = pd.to_numeric(out["mrr"], errors="coerce")
    out["expected_mrr_loss"] = out["mrr"] * out["churn_probability"]
    hours = out["tier"].map({t: p.respond_within_hours for t, p in settings.playbooks.items()})
    out["respond_within_hours"] = pd.to_numeric(hours, errors="coerce")
    out["due_at"] = pd.to_datetime(out["scored_at"]) + pd.to_timedelta(out["respond_within_hours"], unit="h")
    seen = (pd.to_datetime(out["last_seen"]) if "last_seen" in out.columns
            else pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]"))
    later = seen.notna() & (seen >= pd.to_datetime(out["as_of"]))  # the latest snapshot, else the score's own
    when = pd.Series(np.where(later, seen.dt.date, out["as_of"]), index=out.index, dtype=object)
    left = out["last_days_to_term_end"].where(later, out["days_to_term_end"]) if "last_seen" in out.columns \
        else out["days_to_term_end"]
    out["churned_on"] = churn_days(when, left, run_as_of)
    out.loc[out["churned_on"].notna(), "due_at"] = pd.NaT
    out["run_as_of"] = run_as_of
    out["run_id"] = f"{run_as_of}/{uuid.uuid4().hex[:12]}"
    return out.drop(columns=[c for c in ("days_to_term_end", "last_seen", "last_days_to_term_end") if c in out])


def stale_reason(as_of: dt.date, run_as_of: dt.date, churned_on: dt.date | None, max_age: dt.timedelta,
                 grace: dt.timedelta | None = None) -> str | None:
    """Why a score as of ``as_of`` is stale against the latest run's as-of date (None: it is not):
    the account churned, or the score is more than ``max_age`` older. A term that ended less than
    ``grace`` (the labels' grace period) before the run is a lapse that a late renewal (a payment
    retried, an invoice paid late) still undoes: said so, not "churned" (a probe's app subscribers in
    the app store's billing retry)."""
    # a known term end before the run (one unknown, or after the run, reads as the run's date: no lapse)
    if lapsed(churned_on, run_as_of, grace) and churned_on is not None and grace is not None:
        return (f"lapsed: its term ended on {churned_on} and no term has started since (not active on "
                f"{run_as_of}); a renewal within the {grace.days}-day grace period would keep it a customer")
    if churned_on is not None:
        return f"no longer a customer: churned on {churned_on} (not active on {run_as_of})"
    if run_as_of - as_of > max_age:
        return f"scored as of {as_of}, more than {max_age.days} days before the latest run"
    return None


# --- reading (the service's side) -------------------------------------------------------------

@dataclass
class Snapshot:
    """One loaded publication: answers per language as JSON bytes, the rows for the bulk read."""

    run_id: str
    run_as_of: dt.date | None
    answers: dict[str, dict[str, bytes]]
    rows: list[dict]  # sorted by account_id: account_id, tier, csm, as_of (filters of GET /scores)
    history_path: Path
    history: dict[str, list[dict]] | None = None
    ids: list[str] = field(default_factory=list)  # the rows' account ids, in order (for bisect)
    waterfalls: dict[str, str] = field(default_factory=dict)  # account -> its latest score's waterfall JSON

    def __post_init__(self) -> None:
        self.ids = [r["account_id"] for r in self.rows]


@dataclass
class PublishedScores:
    """The published scores of one store, loaded once per worker and reloaded when a run lands.

    ``path`` and ``settings`` are set when the worker starts (the service's ``__init__``).
    """

    path: Path | None = None
    settings: Settings | None = None
    _stamp: tuple[int, int, int] | None = None
    _loaded: Snapshot | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bind(self, store: Path, settings: Settings) -> None:
        self.path, self.settings = published_paths(store)[0], settings

    def use_settings(self, settings: Settings) -> None:
        """New settings (a saved settings version): the answers are rebuilt on the next request."""
        with self._lock:
            self.settings, self._stamp = settings, None

    def current(self) -> Snapshot | None:
        """The latest publication (``None`` before the first scoring run)."""
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError:  # the folder is not one, or cannot be read: no publication to answer from
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # a new run is a new file (renamed over)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self._loaded = load_snapshot(self.path, self.settings or Settings())
                    except (OSError, ValueError, KeyError, TypeError) as exc:  # pyarrow's errors are ValueErrors
                        # keep answering the previous run (or live) rather than failing every request
                        log.warning("cannot read published scores %s (%s); keeping the previous run", self.path,
                                    exc)
        return self._loaded

    def history(self, account_id: str) -> list[dict] | None:
        """An account's scores, oldest first; ``None`` for an account never scored."""
        snap = self.current()
        if snap is None:
            return None
        if snap.history is None:
            with self._lock:
                if snap.history is None:
                    snap.history = _load_history(snap.history_path)
        return snap.history.get(account_id)


def load_snapshot(path: Path, settings: Settings) -> Snapshot:
    """Read a latest-scores file into ready answers (both languages)."""
    records = pq.read_table(path).to_pylist()
    max_age, grace = (dt.timedelta(days=settings.serving.max_score_age_days),
                      dt.timedelta(days=int(settings.grace_days)))
    zh_actions = {p.action_en: p.action_zh for p in settings.playbooks.values()}
    answers: dict[str, dict[str, bytes]] = {"en": {}, "zh-CN": {}}
    rows = []
    for rec in records:
        for lang in answers:
            said = answer(rec, lang, max_age, zh_actions, grace)
            answers[lang][rec["account_id"]] = json.dumps(said, ensure_ascii=False, allow_nan=False,
                                                          default=str).encode()
        rows.append({"account_id": rec["account_id"], "tier": None if rec["churned_on"] else rec["tier"],
                     "csm": rec["csm"], "as_of": rec["as_of"]})
    rows.sort(key=lambda r: r["account_id"])  # the bulk read's order (Python's, whatever the file's)
    first = records[0] if records else {}
    waterfalls = {rec["account_id"]: rec["waterfall"] for rec in records if rec.get("waterfall")}
    return Snapshot(run_id=first.get("run_id", ""), run_as_of=first.get("run_as_of"), answers=answers,
                    rows=rows, history_path=published_paths_of_scores(path), waterfalls=waterfalls)


def published_paths_of_scores(scores_path: Path) -> Path:
    return scores_path.with_name(scores_path.name.replace("-scores.parquet", "-history.parquet"))


def _load_history(path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    if not path.exists():
        return out
    for rec in pq.read_table(path).to_pylist():
        rec["as_of"] = rec["as_of"].isoformat()
        out.setdefault(rec.pop("account_id"), []).append(rec)
    return out


def answer(rec: dict, lang: str, max_age: dt.timedelta, zh_actions: dict[str, str],
           grace: dt.timedelta | None = None) -> dict:
    """The ``/score_accounts`` answer of one published row in ``lang`` (``serving/api.py``
    ``AccountScore``); ``zh_actions``: English playbook action -> Chinese."""
    zh = lang == "zh-CN"
    churned = rec["churned_on"] is not None
    why_stale = stale_reason(rec["as_of"], rec["run_as_of"], rec["churned_on"], max_age, grace)
    previous = None if rec["previous_as_of"] is None else {
        "as_of": rec["previous_as_of"].isoformat(), "churn_probability": rec["previous_probability"],
        "health_score": int(rec["previous_health_score"]), "tier": rec["previous_tier"]}
    playbook = None if churned else {
        "action": zh_actions.get(rec["playbook_action"], rec["playbook_action"]) if zh else rec["playbook_action"],
        "owner": owner_label(rec["playbook_owner"], lang),
        "respond_within": respond_label(rec["respond_within"], lang, _number(rec.get("respond_within_hours")))}
    return {
        "account_id": rec["account_id"],
        "churn_probability": float(rec["churn_probability"]),
        "health_score": int(rec["health_score"]),
        "tier": None if churned else rec["tier"],
        "reasons": [public_reason(r) for r in json.loads(rec["reasons_zh" if zh else "reasons_en"])],
        "strengths": [public_reason(r) for r in json.loads(rec["strengths_zh" if zh else "strengths_en"])],
        "playbook": playbook,
        "model_version": rec["model_version"],
        "warnings": [],
        "source": "published",
        "as_of": rec["as_of"].isoformat(),
        "stale": why_stale is not None,
        "stale_reason": why_stale,
        "churned_on": rec["churned_on"].isoformat() if churned else None,
        "mrr": _number(rec["mrr"]),
        "expected_mrr_loss": _number(rec["expected_mrr_loss"]),
        "csm": rec["csm"],
        "previous": previous,
        "health_change": rec["health_change"],
        "tier_change": rec["tier_change"],
        "respond_within_hours": None if churned else _number(rec["respond_within_hours"]),
        "due_at": rec["due_at"].isoformat() if rec["due_at"] is not None else None,
    }


def _number(value: object) -> float | None:
    return None if value is None or value != value else round(float(value), 6)
