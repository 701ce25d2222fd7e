"""Tiny hand-built datasets for tests: a few accounts, a few rows, written as files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from core.settings import EventRoles, Settings
from features.contract import TABLES

D = dt.date
T = dt.datetime


def frame(table: str, rows: list[dict]) -> pd.DataFrame:
    """A contract table from dicts; missing columns become nulls, types follow the contract."""
    cols = TABLES[table].column_names
    df = pd.DataFrame(rows, columns=cols)
    for c in TABLES[table].columns:
        if c.type == "timestamp":
            df[c.name] = pd.to_datetime(df[c.name])
        elif c.type == "date":
            df[c.name] = pd.to_datetime(df[c.name]).dt.date
        elif c.type == "double":
            df[c.name] = df[c.name].astype("float64")
        elif c.type == "bigint":
            df[c.name] = df[c.name].astype("Int64")
        elif c.type == "boolean":
            df[c.name] = df[c.name].astype("boolean")
        else:
            df[c.name] = df[c.name].astype("string")
    return df


def write_tables(folder: Path, tables: dict[str, list[dict] | pd.DataFrame], fmt: str = "parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        df = rows if isinstance(rows, pd.DataFrame) else frame(name, rows)
        if fmt == "parquet":
            df.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            df.to_csv(folder / f"{name}.csv", index=False)
    return folder


ROLES = EventRoles(
    login=["login"],
    core_feature=["report_build", "dashboard_view"],
    new_feature={"ai_assistant": D(2024, 3, 1)},
    training=["webinar_attended"],
    marketing_sent=["email_sent"],
    marketing_open=["email_opened"],
    contact_left=["key_contact_left"],
)


def settings(**kw) -> Settings:
    return Settings(event_roles=ROLES, **kw)


def accounts_plan(accounts: pd.DataFrame, kept=None, **kw):
    """``features.profile.discover_profile`` of an accounts frame loaded as ``raw_accounts`` (``kw``: settings;
    ``kept``: a stored plan)."""
    import duckdb

    from features.profile import discover_profile

    with duckdb.connect(":memory:") as con:
        con.register("accounts_df", accounts)
        con.execute("CREATE TABLE raw_accounts AS SELECT * FROM accounts_df")
        return discover_profile(con, ["accounts"], settings(**kw), taken=set(), kept=kept)
