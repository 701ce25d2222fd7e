"""Missing means missing (issue 12, item 3): features of a table the source lacks, of an
optional column it lacks, or of a role with no event types are null, never 0. With the
table present, an account without rows there still gets 0 (it wrote no tickets)."""

from __future__ import annotations

import pandas as pd

from core.settings import EventRoles, Settings
from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, T, frame, write_tables

AS_OF = D(2024, 6, 1)
TICKET_FEATURES = ["tickets_30d", "tickets_30d_vs_baseline", "high_priority_tickets_30d", "open_tickets",
                   "mean_resolution_hours_90d", "worst_csat_90d", "mean_csat_90d", "days_since_last_ticket",
                   "ticket_silence"]
INVOICE_FEATURES = ["days_overdue", "late_payments_90d", "payment_delay_90d", "payment_delay_change"]
EMAIL_FEATURES = ["email_open_rate_90d", "email_open_rate_change"]


def tables(with_tickets: bool, with_invoices: bool, user_ids: bool = True) -> dict:
    events = frame("events", [dict(account_id=a, user_id="u1", occurred_at=T(2024, m, 2, 9), event_type="login",
                                   quantity=1.0) for a in ("a", "b") for m in range(1, 7)])
    if not user_ids:
        events = events.drop(columns=["user_id"])
    out = {"subscriptions": [dict(account_id=a, start_date=D(2023, 1, 1), end_date=None, mrr=100.0)
                             for a in ("a", "b")],
           "events": events}
    if with_tickets:  # only account a wrote a ticket
        tickets = frame("tickets", [dict(account_id="a", opened_at=T(2024, 5, 20, 9), resolved_at=None)])
        out["tickets"] = tickets.drop(columns=["priority", "csat"])
    if with_invoices:
        out["invoices"] = [dict(account_id="a", issued_at=D(2024, 5, 1), due_at=D(2024, 5, 10), paid_at=None,
                                amount=10.0)]
    return out


def snapshot(tmp, name, roles: EventRoles | None = None, **kw) -> pd.DataFrame:
    data = write_tables(tmp / name, tables(**kw))
    s = Settings(data_end=D(2024, 12, 31), event_roles=roles or EventRoles(login=["login"]))
    build_snapshots(data, s, tmp / f"{name}.duckdb", as_of=[AS_OF])
    return read_snapshots(tmp / f"{name}.duckdb").set_index("account_id")


def test_without_tickets_and_invoices_their_features_are_null(tmp_path):
    df = snapshot(tmp_path, "bare", with_tickets=False, with_invoices=False)
    assert df[TICKET_FEATURES + INVOICE_FEATURES].isna().all().all()
    assert df["logins_30d"].notna().all()  # what the data has stays


def test_with_the_tables_an_account_without_rows_counts_zero(tmp_path):
    df = snapshot(tmp_path, "full", with_tickets=True, with_invoices=True)
    assert df.loc["a", "tickets_30d"] == 1 and df.loc["a", "open_tickets"] == 1
    assert df.loc["b", "tickets_30d"] == 0 and df.loc["b", "open_tickets"] == 0 and df.loc["b", "ticket_silence"] == 0
    assert df.loc["a", "days_overdue"] == (AS_OF - D(2024, 5, 10)).days
    assert df.loc["b", "days_overdue"] == 0 and df.loc["b", "late_payments_90d"] == 0


def test_optional_columns_the_source_lacks_give_null(tmp_path):
    df = snapshot(tmp_path, "nocols", with_tickets=True, with_invoices=False, user_ids=False)
    # tickets without priority / csat columns: those features are unknown; the count is known
    assert df["high_priority_tickets_30d"].isna().all() and df["worst_csat_90d"].isna().all()
    assert df.loc["a", "tickets_30d"] == 1
    # events without user_id: no distinct-user counts
    assert df["active_users_30d"].isna().all() and df["evt_login_users_30d"].isna().all()


def test_unconfigured_roles_give_null(tmp_path):
    df = snapshot(tmp_path, "roles", with_tickets=False, with_invoices=False)
    assert df[EMAIL_FEATURES + ["new_features_tried_30d", "training_attended_90d", "contact_left_90d",
                                "core_events_30d"]].isna().all().all()
    configured = snapshot(tmp_path, "roles2", roles=EventRoles(login=["login"], new_feature={"x": D(2024, 5, 1)}),
                          with_tickets=False, with_invoices=False)
    assert (configured["new_features_tried_30d"] == 0).all()
