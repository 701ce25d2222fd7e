"""What the e-mail and sequence tests share: a real SMTP server on 127.0.0.1 (aiosmtpd), a tiny
snapshot store with scores and usage numbers, and a data folder whose accounts table carries
names, contacts and languages."""

from __future__ import annotations

import datetime as dt
import email
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

import duckdb
import pandas as pd
from aiosmtpd.controller import Controller

from core.store import HISTORY, HISTORY_DDL, SNAPSHOTS


@dataclass
class Inbox:
    """What the server received: envelopes (sender, recipients) and the parsed messages."""

    host: str
    port: int
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)


class _Handler:
    def __init__(self, inbox: Inbox, refuse: str | None) -> None:
        self.inbox, self.refuse = inbox, refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.inbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.inbox.raw.append(envelope.original_content)
        self.inbox.messages.append(email.message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_server(refuse: str | None = None) -> Iterator[Inbox]:
    """A real SMTP server on a free port; ``refuse``: the answer to every RCPT (e.g. ``550 ...``)."""
    inbox = Inbox("127.0.0.1", free_port())
    controller = Controller(_Handler(inbox, refuse), hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def parts(msg: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML parts, decoded."""
    return tuple(msg.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))


def reasons(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"signal": "x", "text": text, "contribution": 0.1, "feature": feature, "value": 1}
                       for feature, text in pairs], ensure_ascii=False)


def write_store(path: Path, scores: list[dict], snapshots: list[dict]) -> Path:
    """A store with these score-history rows (missing columns filled) and snapshot rows."""
    base = {"churn_probability": 0.3, "reasons_en": "[]", "strengths_en": "[]", "reasons_zh": "[]",
            "strengths_zh": "[]", "playbook_action": "", "playbook_owner": "CSM", "respond_within": "24 hours",
            "model_version": "1", "scored_at": dt.datetime(2026, 1, 1)}
    history = pd.DataFrame([{**base, **s} for s in scores])
    with duckdb.connect(str(path)) as con:
        con.execute(HISTORY_DDL)
        con.register("h", history)
        con.execute(f"INSERT INTO {HISTORY} BY NAME SELECT * FROM h")
        con.register("s", pd.DataFrame(snapshots))
        con.execute(f"CREATE TABLE {SNAPSHOTS} AS SELECT * FROM s")
    return path


def write_accounts(folder: Path, rows: list[dict]) -> Path:
    """``accounts.csv`` in ``folder`` (the data source's accounts table)."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "accounts.csv", index=False)
    return folder
