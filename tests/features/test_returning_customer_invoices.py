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


def test_an_invoice_written_off_after_going_unpaid_is_overdue_until_then(tmp_path):
    """A probe's Stripe export (2026-12-06): a renewal invoice left unpaid, retried for 21 days, then voided
    or marked uncollectible as Stripe cancelled the subscription. By its status on the export day a void
    invoice was never owed and was set aside, so no past customer ever showed a dunning episode (a
    days_overdue of 22+ churned 0% in training) and every customer in dunning at the data end scored
    healthy or low. With the day it was voided (``written_off_at``) it is owed until then."""
    subs = [dict(account_id=a, start_date=D(2024, 1, 1), end_date=D(2025, 2, 1), mrr=50.0, plan="m", seats=1)
            for a in ("dunned", "plain")]
    write_tables(tmp_path / "data", {
        "accounts": [dict(account_id=a, industry="retail") for a in ("dunned", "plain")],
        "subscriptions": subs,
        "events": [dict(account_id=a, user_id="u", occurred_at=D(2024, 1, 5), event_type="login", quantity=1.0)
                   for a in ("dunned", "plain")],
        "invoices": [
            dict(account_id="dunned", issued_at=D(2024, 6, 1), due_at=D(2024, 6, 1), paid_at=None, amount=50.0,
                 status="void", written_off_at=D(2024, 6, 22)),
            dict(account_id="plain", issued_at=D(2024, 6, 1), due_at=D(2024, 6, 1), paid_at=None, amount=50.0,
                 status="void", written_off_at=None),  # voided with no day given: never owed, set aside
            # a correction voided the day it was issued (Stripe gives every void invoice its voided_at):
            # never owed, no late payment either (the review: it counted as one for 90 days)
            dict(account_id="plain", issued_at=D(2024, 6, 10), due_at=D(2024, 6, 10), paid_at=None, amount=50.0,
                 status="void", written_off_at=D(2024, 6, 10)),
        ],
    })
    days = [D(2024, 6, 15), D(2024, 6, 22), D(2024, 6, 23), D(2024, 7, 1)]
    built = build_snapshots(tmp_path / "data", settings(data_end=D(2025, 1, 31)), tmp_path / "s.duckdb", as_of=days)
    assert built.validation.tables["invoices"].set_aside == {"void_invoice": 1}
    rows = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"]).sort_index()
    overdue = {(a, str(t)[:10]): v for (a, t), v in rows["days_overdue"].items()}
    assert [overdue[("dunned", str(d))] for d in days] == [14, 21, 0, 0]
    assert [overdue[("plain", str(d))] for d in days] == [0, 0, 0, 0]
    late = {(a, str(t)[:10]): v for (a, t), v in rows["late_payments_90d"].items()}
    assert [late[("plain", str(d))] for d in days] == [0, 0, 0, 0]
    assert [late[("dunned", str(d))] for d in days] == [1, 1, 1, 1]  # due and not paid: late, written off or not
    # the report's account page lists what was owed: the correction not at all (it read "unpaid" in red), the
    # dunned invoice as written off on its day once that day is past
    from insights.report import raw_signals

    s = settings(data_end=D(2025, 1, 31)).model_copy(update={"data": str(tmp_path / "data")})
    signals = raw_signals(s, ["dunned", "plain"], D(2024, 8, 1))
    assert signals["plain"]["invoices"].empty  # the correction, never owed
    dunned = signals["dunned"]["invoices"]
    assert len(dunned) == 1 and dunned.iloc[0]["written_off_at"] == D(2024, 6, 22) and dunned.iloc[0]["paid_at"] is None
    before = raw_signals(s, ["dunned"], D(2024, 6, 15))["dunned"]["invoices"]
    assert before.iloc[0]["written_off_at"] is None  # not yet written off on that day: unpaid
