"""Each signal group's features against values computed by hand on a tiny case.

As-of t = 2024-06-01. Windows: 7d = [05-25, 06-01), 30d = [05-02, 06-01),
previous 30d = [04-02, 05-02), 90d = [03-03, 06-01), previous 90d = [2023-12-04, 03-03).
"""

from __future__ import annotations

import pytest

from core.store import read_snapshots
from features.pipeline import build_snapshots
from tests.tiny import D, T, settings, write_tables

AS_OF = D(2024, 6, 1)


def ev(day, etype, user="u1", hour=10, qty=1.0):
    return dict(account_id="a", user_id=user, occurred_at=T(2024, day[0], day[1], hour), event_type=etype,
                quantity=qty)


EVENTS = [
    *[ev(d, "login", u) for d, u in [((4, 15), "u3"), ((4, 16), "u3"), ((4, 20), "u1"), ((4, 21), "u2"),
                                     ((5, 20), "u1"), ((5, 30), "u1"), ((5, 31), "u2"), ((6, 1), "u1")]],
    ev((4, 10), "report_build", "u1"), ev((4, 11), "dashboard_view", "u1"), ev((4, 12), "report_build", "u3"),
    ev((5, 10), "dashboard_view", "u2"), ev((5, 30), "report_build", "u1"),
    ev((5, 15), "help_center_view", "u4"),
    ev((3, 20), "ai_assistant", "u1"), ev((5, 25), "ai_assistant", "u1"),
    ev((4, 5), "webinar_attended", "u1"),
    *[ev(d, "email_sent", None) for d in [(1, 10), (2, 10), (3, 10), (4, 10), (5, 10)]],
    *[ev(d, "email_opened", None) for d in [(1, 11), (4, 11), (5, 11)]],
    ev((5, 1), "key_contact_left", None),
    dict(account_id="quiet", user_id="q1", occurred_at=T(2024, 5, 1, 9), event_type="login", quantity=1.0),
]
TICKETS = [
    dict(account_id="a", opened_at=T(2024, 5, 20, 10), resolved_at=T(2024, 5, 21, 10), priority="high", csat=2.0),
    dict(account_id="a", opened_at=T(2024, 5, 28, 10), resolved_at=None, priority="normal", csat=None),
    dict(account_id="a", opened_at=T(2024, 4, 1, 10), resolved_at=T(2024, 4, 3, 10), priority="low", csat=4.0),
    dict(account_id="a", opened_at=T(2024, 1, 15, 10), resolved_at=T(2024, 1, 16, 10), priority="normal", csat=5.0),
    # resolved after t: open at t, its CSAT unknown at t
    dict(account_id="a", opened_at=T(2024, 5, 30, 0), resolved_at=T(2024, 6, 2, 10), priority="urgent", csat=1.0),
    *[dict(account_id="quiet", opened_at=T(2024, m, 5, 9), resolved_at=T(2024, m, 5, 17), priority="normal",
           csat=4.0) for m in (1, 2, 3)],
]
INVOICES = [
    dict(account_id="a", issued_at=D(2024, 1, 1), due_at=D(2024, 1, 15), paid_at=D(2024, 1, 20), amount=200.0),
    dict(account_id="a", issued_at=D(2024, 4, 1), due_at=D(2024, 4, 15), paid_at=D(2024, 4, 15), amount=150.0),
    dict(account_id="a", issued_at=D(2024, 5, 1), due_at=D(2024, 5, 15), paid_at=D(2024, 5, 25), amount=150.0),
    dict(account_id="a", issued_at=D(2024, 5, 10), due_at=D(2024, 5, 20), paid_at=None, amount=150.0),
    dict(account_id="a", issued_at=D(2024, 3, 1), due_at=D(2024, 3, 10), paid_at=D(2024, 6, 5), amount=200.0),
]


@pytest.fixture(scope="module")
def row(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("values")
    write_tables(tmp / "data", {
        "accounts": [dict(account_id="a", industry="retail", employees=30, region="EU", channel="web",
                          csm="Lin", segment="B"),
                     dict(account_id="quiet", industry="media", employees=2000, region="US", channel="partner",
                          csm="Ada", segment="A")],
        "subscriptions": [
            dict(account_id="a", start_date=D(2024, 1, 1), end_date=D(2024, 4, 1), mrr=200.0, plan="basic", seats=10),
            dict(account_id="a", start_date=D(2024, 4, 1), end_date=D(2024, 7, 1), mrr=150.0, plan="pro", seats=8),
            dict(account_id="quiet", start_date=D(2023, 1, 1), end_date=None, mrr=900.0, plan="ent", seats=50),
        ],
        "events": EVENTS, "tickets": TICKETS, "invoices": INVOICES,
    })
    build_snapshots(tmp / "data", settings(data_end=D(2024, 12, 31)), tmp / "s.duckdb", as_of=[AS_OF])
    df = read_snapshots(tmp / "s.duckdb").set_index("account_id")
    return df.loc["a"], df.loc["quiet"]


def check(r, expected: dict):
    got = {k: r[k] for k in expected}
    for k, v in expected.items():
        assert got[k] == pytest.approx(v), f"{k}: got {got[k]}, expected {v}"


def test_activity(row):
    check(row[0], dict(logins_7d=2, logins_30d=3, logins_90d=7, logins_7d_change=1.0, logins_30d_change=-0.25,
                       days_since_last_login=1, active_days_7d=3, active_days_30d=6, active_days_90d=15,
                       active_days_30d_change=-0.25, active_users_30d=3, active_users_per_seat=3 / 8))


def test_core_usage(row):
    check(row[0], dict(core_events_30d=2, core_events_30d_change=-1 / 3, core_features_used_30d=2,
                       core_features_used_30d_change=0, core_user_share_30d=2 / 3,
                       core_events_per_active_user_30d=2 / 3))


def test_support(row):
    check(row[0], dict(tickets_30d=3, tickets_30d_vs_baseline=3.6, high_priority_tickets_30d=2, open_tickets=2,
                       mean_resolution_hours_90d=36.0, worst_csat_90d=2.0, mean_csat_90d=3.0,
                       days_since_last_ticket=2, ticket_silence=0))
    # three tickets in Jan-Mar, none in the 45 days before t: a regular writer gone silent
    check(row[1], dict(ticket_silence=1, tickets_30d=0, open_tickets=0))


def test_new_feature_engagement(row):
    check(row[0], dict(new_features_tried_30d=1, new_feature_events_30d=1, training_attended_90d=1))
    check(row[1], dict(new_features_tried_30d=0))


def test_renewal_and_payment(row):
    check(row[0], dict(days_to_term_end=30, days_overdue=83, late_payments_90d=3, payment_delay_90d=5.0,
                       payment_delay_change=0.0))


def test_commercial(row):
    check(row[0], dict(mrr=150.0, mrr_change_90d=-0.25, tenure_days=152, seats=8))
    assert row[0]["plan"] == "pro"


def test_relationship_and_marketing(row):
    check(row[0], dict(contact_left_90d=1, email_open_rate_90d=2 / 3, email_open_rate_change=2 / 3 - 1 / 2))


def test_profile(row):
    a, quiet = row
    assert (a["industry"], a["size_band"], a["region"], a["channel"], a["csm"], a["segment"]) == \
        ("retail", "1-49", "EU", "web", "Lin", "B")
    assert quiet["size_band"] == "1000+"


def test_per_event_type_family(row):
    check(row[0], dict(evt_login_7d=2, evt_login_30d=3, evt_login_90d=7, evt_login_30d_change=-0.25,
                       evt_login_users_30d=2, evt_email_sent_90d=3, evt_email_sent_users_30d=0,
                       evt_help_center_view_30d=1, evt_help_center_view_users_30d=1))
    check(row[1], dict(evt_help_center_view_30d=0, evt_login_30d=0, evt_login_90d=1))  # login on 05-01
