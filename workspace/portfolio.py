"""What the pages read: the published scores (``serving.published``), the latest snapshot, the
operational store's tasks, e-mails, tags, sequences, interventions and exit interviews, and who
may see which account.

No page computes TreeSHAP or builds features: the scores, reasons and strengths come worded from
the scoring run's publication (the API's wording), the signals from the stored snapshot.

Who sees what (``Scope``): a CSM the accounts whose CSM (``accounts.csm``) is their CRM name or
e-mail; a lead those of every user of their team (and their own); an admin every account.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.errors import ChurnwatchError
from core.settings import Settings
from core.store import SNAPSHOTS, connect, has_table, snapshot_columns
from serving.published import PublishedScores
from workflow import interviews
from workflow.email import emails_of
from workflow.interventions import interventions_of
from workflow.people import USERS
from workflow.sequences import ACCOUNT_TAGS, ENROLMENTS
from workflow.tasks import ACTIVE, list_tasks

#: snapshot columns shown as the account's raw signals (logins and activity, tickets, invoices)
SIGNAL = re.compile(r"login|active_day|session|ticket|invoice|payment|seat|usage|nps", re.IGNORECASE)
MAX_SIGNALS = 24
SIGNAL_CACHE = 5000


@dataclass(frozen=True)
class Scope:
    """The CSM names (CRM names and e-mails) a user may see; ``everything`` for an admin."""

    everything: bool
    csms: frozenset[str]  # in Unicode's composed form (NFC)

    def allows(self, csm: str | None) -> bool:
        # composed either way: a CRM export written on macOS may decompose "Zoë" (NFD), and a probe's lead
        # then saw nothing of that CSM's book
        return self.everything or (csm is not None and unicodedata.normalize("NFC", csm) in self.csms)


def scope_of(engine: Engine, user: dict[str, Any]) -> Scope:
    """What ``user`` may see (module docstring)."""
    if user["role"] == "admin":
        return Scope(True, frozenset())
    query = sa.select(USERS.c.crm_name, USERS.c.email)
    if user["role"] == "lead" and user.get("team_id") is not None:
        query = query.where(sa.or_(USERS.c.team_id == user["team_id"], USERS.c.id == user["id"]))
    else:
        query = query.where(USERS.c.id == user["id"])
    with engine.connect() as conn:
        names = {unicodedata.normalize("NFC", n) for row in conn.execute(query) for n in row if n}
    return Scope(False, frozenset(names))


class Scores:
    """The home's published scores, parsed once per scoring run and language."""

    def __init__(self, store: Path, settings: Settings) -> None:
        self.published = PublishedScores()
        self.published.bind(store, settings)
        self._parsed: dict[tuple[str, str], list[dict]] = {}
        self._signals: dict[tuple[str, str], tuple[str | None, list]] = {}
        self._has_mrr: dict[str, bool] = {}  # run id -> any published MRR
        self._lock = threading.Lock()

    def all(self, lang: str) -> list[dict]:
        """Every account's latest answer (the API's ``AccountScore`` fields) in ``lang``."""
        snap = self.published.current()
        if snap is None:
            return []
        key = (snap.run_id, lang)
        rows = self._parsed.get(key)
        if rows is None:
            with self._lock:
                rows = [json.loads(v) for v in snap.answers[lang].values()]
                self._parsed = {key: rows, **{k: v for k, v in self._parsed.items() if k[0] == snap.run_id}}
        return rows

    def has_mrr(self, lang: str) -> bool:
        """Whether any published score has an MRR. None at all (a flat table's scores, a store with no
        MRR column) means there is no MRR, not an unknown one: the pages leave MRR out then."""
        snap = self.published.current()
        if snap is None:
            return False
        found = self._has_mrr.get(snap.run_id)
        if found is None:
            found = any(r.get("mrr") is not None for r in self.all(lang))
            self._has_mrr = {snap.run_id: found}
        return found

    def one(self, account_id: str, lang: str) -> dict | None:
        snap = self.published.current()
        if snap is None:
            return None
        raw = snap.answers[lang].get(account_id)
        return json.loads(raw) if raw else None

    def signals(self, store: Path, account_id: str) -> tuple[str | None, list[tuple[str, Any]]]:
        """``signals`` of one account, kept until the next scoring run lands (the snapshots a run
        scored do not change under it); at most ``SIGNAL_CACHE`` accounts."""
        snap = self.published.current()
        run = snap.run_id if snap else ""
        key = (run, account_id)
        found = self._signals.get(key)
        if found is None:
            found = signals(store, account_id)
            with self._lock:
                if len(self._signals) >= SIGNAL_CACHE or any(k[0] != run for k in list(self._signals)[:1]):
                    self._signals.clear()
                self._signals[key] = found
        return found

    def history(self, account_id: str) -> list[dict]:
        return self.published.history(account_id) or []


def by_expected_loss(rows: list[dict]) -> list[dict]:
    """Largest expected MRR loss first (unknown last), then lowest health, then id."""
    return sorted(rows, key=lambda r: (r["expected_mrr_loss"] is None, -(r["expected_mrr_loss"] or 0),
                                       r["health_score"], r["account_id"]))


def my_accounts(scores: Scores, scope: Scope, lang: str) -> list[dict]:
    """The accounts ``scope`` may see, still customers, riskiest (expected MRR loss) first."""
    return by_expected_loss([r for r in scores.all(lang) if r["churned_on"] is None and scope.allows(r["csm"])])


def tasks_in_scope(engine: Engine, scope: Scope, scores: Scores, lang: str, **filters: Any) -> list[dict]:
    """Tasks (``workflow.tasks.list_tasks`` filters) on accounts ``scope`` may see, overdue first
    then by due time."""
    csm_of = {r["account_id"]: r["csm"] for r in scores.all(lang)}
    rows = [r for r in list_tasks(engine, **filters)
            if scope.allows(csm_of.get(r["account_id"])) or scope.allows(r.get("assignee_email"))]
    return sorted(rows, key=lambda r: (not r["overdue"], r["due_at"] is None, r["due_at"] or "", r["id"]))


def signals(store: Path, account_id: str) -> tuple[str | None, list[tuple[str, Any]]]:
    """The latest snapshot's date and its signal columns (``SIGNAL``) for one account (only those
    columns are read; the store is opened read-only for the query and closed again)."""
    try:
        with connect(store, read_only=True) as con:
            if not has_table(con, SNAPSHOTS):
                return None, []
            cols = [c for c in snapshot_columns(con) if SIGNAL.search(c)][:MAX_SIGNALS]
            pick = ", ".join(f'"{c}"' for c in ["as_of", *cols])
            row = con.execute(f"SELECT {pick} FROM {SNAPSHOTS} WHERE account_id = ? ORDER BY as_of DESC LIMIT 1",
                              [account_id]).fetchone()
    except (ChurnwatchError, OSError, duckdb.Error):
        return None, []
    if row is None:
        return None, []
    return str(row[0]), [(c, _plain(v)) for c, v in zip(cols, row[1:], strict=True)]


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float):
        return round(value, 2)
    return value.item() if hasattr(value, "item") else value


def account_records(engine: Engine, account_id: str) -> dict[str, Any]:
    """The operational store's records of one account."""
    with engine.connect() as conn:
        tags = conn.execute(sa.select(ACCOUNT_TAGS).where(ACCOUNT_TAGS.c.account_id == account_id)
                            .order_by(ACCOUNT_TAGS.c.since.desc())).mappings().all()
        enrolments = conn.execute(sa.select(ENROLMENTS).where(ENROLMENTS.c.account_id == account_id)
                                  .order_by(ENROLMENTS.c.enrolled_at.desc())).mappings().all()
    all_tasks = [t for t in list_tasks(engine, status="all") if t["account_id"] == account_id]  # one query
    return {"tags": [dict(r) for r in tags], "enrolments": [dict(r) for r in enrolments],
            "tasks": all_tasks, "emails": emails_of(engine, account_id, limit=50),
            "interventions": interventions_of(engine, account_id), "interviews": interviews.get(engine, account_id)}


def is_active(status: str) -> bool:
    return status in ACTIVE


def health_points(history: list[dict], width: int = 520, height: int = 160, pad: int = 28) -> dict[str, Any]:
    """Coordinates of the health-trend chart (inline SVG): a polyline over 0-100."""
    if not history:
        return {"points": "", "dots": [], "width": width, "height": height, "pad": pad, "first": None, "last": None}
    n = len(history)
    step = (width - 2 * pad) / max(1, n - 1)
    dots = []
    for i, h in enumerate(history):
        x = pad + i * step
        y = pad + (100 - float(h["health_score"])) / 100 * (height - 2 * pad)
        dots.append({"x": round(x, 1), "y": round(y, 1), "health": int(h["health_score"]), "as_of": h["as_of"],
                     "tier": h["tier"]})
    return {"points": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots, "width": width,
            "height": height, "pad": pad, "first": history[0]["as_of"], "last": history[-1]["as_of"]}


def fmt_time(value: Any) -> str:
    """A stored time as ``YYYY-MM-DD HH:MM`` UTC (ISO text or datetime)."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M") + " UTC"
    return str(value)
