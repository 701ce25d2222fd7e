"""The feature catalogue holds every feature DESIGN §3 requires, and the SQL is portable."""

from __future__ import annotations

import sqlglot

from core.settings import Settings
from features.pipeline import build_snapshots
from features.snapshots import final_query, stage_queries
from features.spec import CORE_FEATURES, build_catalogue, slug
from tests.tiny import ROLES

REQUIRED = {
    "activity": ["active_days_7d", "active_days_30d", "active_days_90d", "logins_7d", "logins_30d", "logins_90d",
                 "logins_7d_change", "logins_30d_change", "active_days_30d_change", "days_since_last_login",
                 "active_users_30d", "active_users_per_seat"],
    "core_usage": ["core_events_per_active_user_30d", "core_features_used_30d", "core_user_share_30d",
                   "core_events_30d_change", "core_features_used_30d_change"],
    "support": ["tickets_30d", "tickets_30d_vs_baseline", "high_priority_tickets_30d", "open_tickets",
                "mean_resolution_hours_90d", "worst_csat_90d", "mean_csat_90d", "ticket_silence"],
    "new_feature": ["new_features_tried_30d", "training_attended_90d"],
    "renewal_payment": ["days_to_term_end", "days_overdue", "late_payments_90d", "payment_delay_change"],
    "cancellation": ["cancel_request_standing"],
    "commercial": ["mrr", "mrr_change_90d", "tenure_days", "plan", "seats"],
    "relationship_marketing": ["contact_left_90d", "email_open_rate_90d", "email_open_rate_change"],
    "profile": ["industry", "size_band", "region", "channel", "csm", "segment"],
}


def test_every_required_feature_is_declared_in_its_group():
    by_name = {f.name: f for f in CORE_FEATURES}
    for group, names in REQUIRED.items():
        for name in names:
            assert name in by_name, name
            assert by_name[name].group == group, name


def test_every_feature_is_fully_declared():
    for f in CORE_FEATURES:
        assert f.definition and f.unit and f.reason_en and f.reason_zh, f.name
        assert f.direction in (-1, 0, 1)
        assert ("{value}" in f.reason_en) or ("{change}" in f.reason_en) or f.unit == "flag", f.name
        lo, hi = f.valid_range
        assert lo is None or hi is None or lo <= hi


def test_every_event_type_gets_its_family_with_unique_columns():
    cat = build_catalogue(["Page View", "page-view", "login"])
    names = cat.names
    assert len(names) == len(set(names))
    for et in ("login",):
        for suffix in ("7d", "30d", "90d", "30d_change", "users_30d"):
            assert f"evt_{slug(et)}_{suffix}" in names
    assert "evt_page_view_30d" in names and "evt_page_view2_30d" in names
    assert cat.event_types == ("Page View", "login", "page-view")
    assert type(cat).from_json(cat.to_json()) == cat


def test_an_unconfigured_event_log_still_gets_features(tmp_path):
    from tests.tiny import D, T, write_tables

    # the account begins with the log (one that began before it would have a day of data for 30-day
    # windows: unknown, features.spec.MIN_COVERED_DAYS)
    subs = [dict(account_id="a", start_date=D(2024, 2, 1), end_date=None, mrr=10.0)]
    events = [dict(account_id="a", user_id="u", occurred_at=T(2024, 2, 1), event_type="Clicked Export")]
    folder = write_tables(tmp_path / "d", {"subscriptions": subs, "events": events})
    r = build_snapshots(folder, Settings(), tmp_path / "s.duckdb", as_of=[D(2024, 2, 2)])
    from core.store import read_snapshots

    row = read_snapshots(tmp_path / "s.duckdb").iloc[0]
    assert row["evt_clicked_export_30d"] == 1 and row["evt_clicked_export_users_30d"] == 1
    assert row["active_days_30d"] == 1
    # no login role configured: login features are missing, not a misleading zero
    assert row.isna()["logins_30d"] and row.isna()["days_since_last_login"]
    assert r.catalogue.event_types == ("Clicked Export",)


def test_every_query_transpiles_to_spark_sql():
    settings = Settings(event_roles=ROLES)
    cat = build_catalogue(["login", "report_build", "it's quoted"])
    statements = [sql for _, sql in stage_queries(settings, list(cat.event_types))] + [final_query(cat, settings)]
    for sql in statements:
        out = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
        assert len(out) == 1 and out[0].upper().startswith(("SELECT", "WITH"))
