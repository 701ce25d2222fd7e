"""A tiny workspace home for the tests: a DuckDB store with a score history and snapshots, its
published scores, users with passwords (two CSMs in two teams, a lead, an admin), tasks raised by
real alerts, and hostile text in account ids, a CSM's name and a reason."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd

from core.settings import AlertRule, Settings
from core.store import HISTORY_COLUMNS, HISTORY_DDL
from serving.published import publish_scores
from workflow.alerts import raise_alerts
from workflow.db import store_for, write
from workflow.people import add_user
from workspace.auth import set_password

DAY0 = dt.date(2026, 11, 1)
NOW = dt.datetime(2026, 11, 12, 9, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"
SCRIPT_ID = "<script>alert('id')</script>"
IMG_ID = '"><img src=x onerror=alert(1)>'
EVIL_CSM = '"><img src=y onerror=alert(2)>'
EVIL_EVENT = "<script>alert('event')</script>"
#: account -> (CSM, MRR, health per day; None = not scored that day: churned)
ACCOUNTS = {
    "acme": ("Ana Li", 900.0, [72, 70, 66, 60, 55, 50, 44, 38, 34, 30]),
    "beta": ("Ana Li", 120.0, [75, 74, 70, 66, 62, 58, 56, 55, 55, 54]),
    SCRIPT_ID: ("Ana Li", 50.0, [90, 90, 88, 86, 85, 85, 84, 84, 83, 83]),
    "gone": ("Ana Li", 300.0, [50, 45, 40, 35, None, None, None, None, None, None]),
    "bolt": (EVIL_CSM, 800.0, [70, 65, 60, 50, 45, 40, 35, 30, 28, 25]),
    IMG_ID: (EVIL_CSM, 40.0, [85, 85, 85, 84, 84, 84, 83, 83, 82, 82]),
}
USERS = {  # login -> (name, role, team, crm_name)
    "ana@example.com": ("Ana Li", "csm", "East", "Ana Li"),
    "bo@example.com": (EVIL_CSM, "csm", "West", EVIL_CSM),
    "lee@example.com": ("Lee Wu", "lead", "East", None),
    "root@example.com": ("Root Admin", "admin", None, None),
}
RULES = [AlertRule(name="below 60 for 3 days", kind="below_for", threshold=60, days=3, min_scores=2),
         AlertRule(name="entered high risk", kind="entered_high_risk")]


def tier(h: int) -> str:
    return "healthy" if h >= 80 else "low_risk" if h >= 60 else "medium_risk" if h >= 40 else "high_risk"


def reasons(lang: str) -> str:
    text = {"en": ["Logins per week fell to 3", f"{EVIL_EVENT} events stopped"],
            "zh": ["每周登录降至 3", f"{EVIL_EVENT} 事件停止"]}[lang]
    return json.dumps([{"signal": "logins_per_week", "text": text[0], "contribution": 0.2,
                        "feature": "logins_per_week", "value": 3.0},
                       {"signal": "event_count", "text": text[1], "contribution": 0.1, "feature": "event_count",
                        "value": 0.0}], ensure_ascii=False)


def strengths(lang: str) -> str:
    text = "Invoices paid on time" if lang == "en" else "发票按时支付"
    return json.dumps([{"signal": "invoices_overdue", "text": text, "contribution": -0.05,
                        "feature": "invoices_overdue", "value": 0.0}], ensure_ascii=False)


def write_store(store: Path) -> None:
    history, snaps = [], []
    for account, (csm, mrr, healths) in ACCOUNTS.items():
        for i, h in enumerate(healths):
            if h is None:
                continue
            day = DAY0 + dt.timedelta(days=i)
            history.append({"account_id": account, "as_of": day, "churn_probability": round((100 - h) / 100, 2),
                            "health_score": h, "tier": tier(h), "reasons_en": reasons("en"),
                            "strengths_en": strengths("en"), "reasons_zh": reasons("zh"),
                            "strengths_zh": strengths("zh"), "playbook_action": "Call the sponsor",
                            "playbook_owner": "CSM", "respond_within": "24 hours", "model_version": "1",
                            "scored_at": dt.datetime.combine(day, dt.time(6))})
            snaps.append({"account_id": account, "as_of": day, "segment": "SMB", "mrr": mrr, "csm": csm,
                          "days_to_term_end": 2 if account == "gone" else 200, "logins_per_week": 3.0 + i,
                          "active_days_30d": 10 - i % 3, "tickets_open": i % 4, "invoices_overdue": 0})
    with duckdb.connect(str(store)) as con:
        con.execute(HISTORY_DDL)
        con.register("h", pd.DataFrame(history)[list(HISTORY_COLUMNS)])
        con.execute("INSERT INTO score_history SELECT * FROM h")
        con.register("s", pd.DataFrame(snaps))
        con.execute("CREATE OR REPLACE TABLE snapshots AS SELECT * FROM s")
        con.execute("CREATE TABLE snapshot_meta (built_at TIMESTAMP, catalogue VARCHAR, data_start DATE, "
                    "data_end DATE, horizon_days INTEGER, grace_days INTEGER, source VARCHAR, input_hash VARCHAR)")
        con.execute("INSERT INTO snapshot_meta VALUES (?, '[]', ?, ?, 90, 14, 'tiny', 'x')",
                    [dt.datetime.combine(DAY0, dt.time(6)), DAY0, DAY0 + dt.timedelta(days=9)])


def build_home(root: Path) -> Path:
    """Write the tiny home into ``root`` (an empty folder); returns it."""
    root.mkdir(parents=True, exist_ok=True)
    store = root / "store.duckdb"
    write_store(store)
    publish_scores(store, Settings())
    engine = store_for(root)
    with write(engine) as conn:
        for login, (name, role, team, crm) in USERS.items():
            add_user(conn, name=name, actor="test", email=login, crm_name=crm, role=role, team=team)
    for login in USERS:
        set_password(engine, login, PASSWORD, "test")
    raise_alerts(store, Settings(alert_rules=RULES), engine, now=NOW)
    return root


if __name__ == "__main__":
    import sys

    build_home(Path(sys.argv[1]))
