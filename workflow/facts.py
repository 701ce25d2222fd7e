"""What an e-mail and a tag rule know about an account (``AccountFacts``): its latest score with
the worded reasons (score history), the numbers of the snapshot it was scored on (usage, MRR,
CSM, key contacts who left) and its contact (the data source's ``accounts`` table).

The name, contact person, e-mail address and language come from columns of the ``accounts``
table named in ``email:`` (``name``, ``contact_name``, ``contact_email``, ``language`` by
default); the data contract does not require them, so each may be missing: the e-mail then
greets without a name and cannot be sent without an address.

An account is ``churned`` when the latest scoring run no longer scored it (its latest score is
older than the newest date of the score history), as the published scores say.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.errors import StoreError
from core.settings import Settings
from core.store import HISTORY, SNAPSHOTS, connect, has_table

#: Snapshot numbers an e-mail's value reminder may quote, in the order it quotes them.
USAGE_FEATURES = ("logins_90d", "active_days_90d", "active_users_30d", "core_events_30d")


@dataclass(frozen=True)
class AccountFacts:
    """One account as of its latest score."""

    account_id: str
    as_of: dt.date
    health_score: int
    tier: str
    churn_probability: float
    churned: bool = False
    reasons_en: tuple[str, ...] = ()
    reasons_zh: tuple[str, ...] = ()
    reason_features: tuple[str, ...] = ()
    numbers: dict[str, float] = field(default_factory=dict)  # the snapshot's numeric features
    name: str | None = None
    contact: str | None = None
    email: str | None = None
    lang: str | None = None
    csm: str | None = None
    mrr: float | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.account_id


def _reasons(raw: object) -> list[dict]:
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return []
    items = json.loads(raw) if isinstance(raw, str) else raw
    return [r for r in items if isinstance(r, dict)]


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def latest_facts(store: Path, settings: Settings, accounts: list[str] | None = None,
                 contacts: dict[str, dict] | None = None) -> list[AccountFacts]:
    """Every scored account's (or the given accounts') facts, sorted by id. ``contacts`` (id ->
    name/contact/email/lang) defaults to ``read_contacts(settings)``.

    Raises:
        StoreError: the store has no score history (or does not exist).
    """
    with connect(store, read_only=True) as con:
        if not has_table(con, HISTORY):
            raise StoreError(f"store {store} has no score history: run `churnwatch score` first")
        run_as_of = con.execute(f"SELECT max(as_of) FROM {HISTORY}").fetchone()[0]
        where, params = "", []
        if accounts is not None:
            where, params = "WHERE account_id IN (SELECT unnest(?::VARCHAR[]))", [[str(a) for a in accounts]]
        latest = f"""SELECT * FROM {HISTORY} {where}
                     QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC) = 1"""
        if has_table(con, SNAPSHOTS):
            frame = con.execute(f"""SELECT h.*, s.* EXCLUDE (account_id, as_of) FROM ({latest}) h
                LEFT JOIN {SNAPSHOTS} s ON s.account_id = h.account_id AND s.as_of = h.as_of
                ORDER BY h.account_id""", params).df()
        else:
            frame = con.execute(f"SELECT * FROM ({latest}) ORDER BY account_id", params).df()
    if contacts is None:
        contacts = read_contacts(settings, [str(a) for a in frame["account_id"]])
    history_cols = {"account_id", "as_of", "churn_probability", "health_score", "tier", "reasons_en",
                    "strengths_en", "reasons_zh", "strengths_zh", "model_version", "scored_at"}
    numeric = frame.drop(columns=[c for c in history_cols if c in frame.columns]).select_dtypes(include="number")
    numeric = numeric.astype("float64").replace([np.inf, -np.inf], np.nan)
    number_rows = [{k: v for k, v in row.items() if v == v}
                   for row in numeric.to_dict("records")]  # NaN != NaN: a missing number is left out
    csm = frame["csm"] if "csm" in frame.columns else pd.Series([None] * len(frame))
    out = []
    for row, numbers, csm_name in zip(frame[list(history_cols & set(frame.columns))].to_dict("records"),
                                      number_rows, csm, strict=True):
        account = str(row["account_id"])
        reasons_en, reasons_zh = _reasons(row.get("reasons_en")), _reasons(row.get("reasons_zh"))
        contact = contacts.get(account, {})
        as_of = pd.Timestamp(row["as_of"]).date()
        out.append(AccountFacts(
            account_id=account, as_of=as_of, health_score=int(row["health_score"]), tier=str(row["tier"]),
            churn_probability=float(row["churn_probability"]), churned=as_of < pd.Timestamp(run_as_of).date(),
            reasons_en=tuple(r["text"] for r in reasons_en if r.get("text")),
            reasons_zh=tuple(r["text"] for r in reasons_zh if r.get("text")),
            reason_features=tuple(str(r["feature"]) for r in reasons_en if r.get("feature")),
            numbers=numbers, name=contact.get("name"), contact=contact.get("contact"), email=contact.get("email"),
            lang=contact.get("lang"), csm=_text(csm_name), mrr=numbers.get("mrr")))
    return out


def account_facts(store: Path, settings: Settings, account_id: str) -> AccountFacts:
    """One account's facts.

    Raises:
        StoreError: the account has no score (named).
    """
    found = latest_facts(store, settings, [account_id])
    if not found:
        raise StoreError(f"account {account_id!r} has no score in {store}: check the id, or run `churnwatch score`")
    return found[0]


def read_contacts(settings: Settings, accounts: list[str] | None = None) -> dict[str, dict]:
    """Account id -> ``{name, contact, email, lang}`` from the data source's ``accounts`` table
    (the columns ``email:`` names; a missing column or table gives nothing). Empty without a
    data source."""
    from features.sources import open_source

    if not settings.data:
        return {}
    source = open_source(settings.data)
    with duckdb.connect(":memory:") as con:
        if not source.load(con, "accounts"):
            return {}
        columns = [r[0] for r in con.execute("DESCRIBE raw_accounts").fetchall()]
        mapping = settings.column_mapping.get("accounts", {})
        id_col = next((theirs for theirs, ours in mapping.items() if ours == "account_id"), "account_id")
        if id_col not in columns:
            return {}
        es = settings.email
        wanted = {"name": es.name_column, "contact": es.contact_column, "email": es.email_column,
                  "lang": es.lang_column}
        present = {key: col for key, col in wanted.items() if col in columns}
        if not present:
            return {}
        select = ", ".join(f'CAST("{col}" AS VARCHAR) AS {key}' for key, col in present.items())
        where, params = "", []
        if accounts is not None:
            where, params = f'WHERE CAST("{id_col}" AS VARCHAR) IN (SELECT unnest(?::VARCHAR[]))', [accounts]
        rows = con.execute(f'SELECT CAST("{id_col}" AS VARCHAR) AS id, {select} FROM raw_accounts {where}',
                           params).fetchall()
    keys = ["id", *present]
    return {r[0]: {k: _text(v) for k, v in zip(keys[1:], r[1:], strict=True)} for r in rows}


#: How long ``display_name`` keeps the names it read (a new export's names show within this many seconds)
NAMES_TTL_SECONDS = 60.0
_NAMES: dict[tuple, tuple[float, dict[str, str | None]]] = {}


def display_name(settings: Settings, account_id: str) -> str | None:
    """One account's display name from the data source's ``accounts`` (``email.name_column``: a company's
    name in B2B, ``name`` by default), or None: no source, no such column or a source that does not load
    (the surfaces then show the id alone; a probe's CSMs saw only 10-digit HubSpot ids). Every account's
    name is read at once and kept ``NAMES_TTL_SECONDS`` per source and column: the workspace asks on each
    account page, and a CSV source is read whole each time it is opened."""
    from core.errors import ChurnwatchError

    if not settings.data:
        return None
    key = (str(settings.data), settings.email.name_column,
           json.dumps(settings.column_mapping.get("accounts", {}), sort_keys=True))
    now = time.monotonic()
    kept = _NAMES.get(key)
    if kept is None or now - kept[0] > NAMES_TTL_SECONDS:
        try:
            names = {k: v.get("name") for k, v in read_contacts(settings).items()}
        except (ChurnwatchError, duckdb.Error, OSError):
            names = {}
        kept = _NAMES[key] = (now, names)
    return kept[1].get(account_id)
