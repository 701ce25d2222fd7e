"""An unpaid invoice belongs to the relationship it was issued in. A probe's Paddle export: customers
who left owing one invoice, came back months later and paid every renewal since were first on the
report's call list with "An invoice is 502 days overdue". An invoice issued before the current
relationship started (less the grace period) is not its debt; an invoice Paddle or Zuora marks
``canceled`` is never owed, like Stripe's ``void``."""

from __future__ import annotations

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, settings, write_tables

AS_OF = [D(2024, 3, 1), D(2024, 11, 1)]


def test_a_returning_customer_does_not_owe_its_earlier_relationships_invoice(tmp_path):
    write_tables(tmp_path / "data", {
        "accounts": [dict(account_id=a, industry="retail") for a in ("back", "stayed")],
        "subscriptions": [
            # 'back' leaves on 2024-04-01 owing the March invoice, returns on 2024-08-01 (a new relationship)
            dict(account_id="back", start_date=D(2024, 1, 1), end_date=D(2024, 4, 1), mrr=50.0, plan="m", seats=1),
            dict(account_id="back", start_date=D(2024, 8, 1), end_date=D(2025, 2, 1), mrr=50.0, plan="m", seats=1),
            # 'stayed' owes the same invoice and never left: still its debt in November
            dict(account_id="stayed", start_date=D(2024, 1, 1), end_date=D(2025, 2, 1), mrr=50.0, plan="m",
                 seats=1),
        ],
        "events": [dict(account_id=a, user_id="u", occurred_at=D(2024, 1, 5), event_type="login", quantity=1.0)
                   for a in ("back", "stayed")],
        "invoices": [
            *[dict(account_id=a, issued_at=D(2024, 2, 1), due_at=D(2024, 2, 10), paid_at=None, amount=50.0)
              for a in ("back", "stayed")],
            dict(account_id="back", issued_at=D(2024, 8, 1), due_at=D(2024, 8, 10), paid_at=D(2024, 8, 9), amount=50.0),
            # canceled by the billing system before it was charged: never owed
            dict(account_id="back", issued_at=D(2024, 9, 1), due_at=D(2024, 9, 10), paid_at=None, amount=50.0,
                 status="canceled"),
        ],
    })
    build_snapshots(tmp_path / "data", settings(data_end=D(2025, 1, 31)), tmp_path / "s.duckdb", as_of=AS_OF)
    rows = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"]).sort_index()
    overdue = {(a, str(t)[:10]): v for (a, t), v in rows["days_overdue"].items()}
    assert overdue[("back", "2024-03-01")] == 20  # in its first relationship the unpaid invoice counts
    assert overdue[("stayed", "2024-03-01")] == 20
    assert overdue[("back", "2024-11-01")] == 0  # came back and paid: no debt (was 265 days overdue)
    assert overdue[("stayed", "2024-11-01")] == (D(2024, 11, 1) - D(2024, 2, 10)).days  # still owed
