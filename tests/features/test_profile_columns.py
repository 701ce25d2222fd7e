"""A company's own columns become profile features (issue 12, item 2).

As-of dates 2024-02-01 and 2024-06-01. Accounts carry a number (``nps``), a category
(``plan_family``), a date (``founded_on``), a boolean (``is_partner``), a column whose name
collides with a feature (``mrr``) and columns that must not be used: free text, an id, an
all-null one and an export-time status. Subscriptions carry ``contract_type``, which
changes with the term.
"""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import ConfigError
from core.settings import ProfileColumn, ProfileSettings
from core.store import connect, read_meta, read_snapshots
from features.pipeline import build_snapshots
from features.spec import Catalogue
from tests.tiny import D, T, frame, settings, write_tables

AS_OF = [D(2024, 2, 1), D(2024, 6, 1)]
IDS = ["a1", "a2", "a3", "a4"]
NOTES = ["Met the buyer at the spring fair, asked about the API and the SSO roadmap again",
         "Champion moved teams in March; new owner prefers email and monthly check-ins",
         "Long procurement cycle, legal reviewed the DPA twice before signing the order",
         "Small team, very price sensitive, considered a competitor before renewing last year"]


def accounts() -> pd.DataFrame:
    df = frame("accounts", [dict(account_id=a, industry="retail") for a in IDS])
    df["nps"] = [9.0, 3.0, None, 7.0]
    df["plan_family"] = ["pro", "basic", "pro", "team"]
    df["founded_on"] = [D(2020, 1, 1), D(2024, 4, 1), None, D(2019, 6, 30)]
    df["is_partner"] = [True, False, False, True]
    df["mrr"] = [100.0, 200.0, 300.0, 400.0]
    df["notes"] = NOTES
    df["crm_id"] = ["c-1", "c-2", "c-3", "c-4"]
    df["empty_col"] = pd.Series([None] * 4, dtype="string")
    df["status"] = ["active", "churned", "active", "active"]
    return df


def subscriptions() -> pd.DataFrame:
    rows = [dict(account_id="a1", start_date=D(2023, 1, 1), end_date=D(2024, 3, 1), mrr=50.0),
            dict(account_id="a1", start_date=D(2024, 3, 1), end_date=None, mrr=60.0)]
    rows += [dict(account_id=a, start_date=D(2023, 1, 1), end_date=None, mrr=10.0) for a in IDS[1:]]
    df = frame("subscriptions", rows)
    df["contract_type"] = ["monthly", "annual", "monthly", "monthly", "annual"]
    df["subscription_id"] = ["s1", "s2", "s3", "s4", "s5"]
    return df


def events() -> list[dict]:
    return [dict(account_id=a, user_id="u", occurred_at=T(2024, m, 3, 9), event_type="login", quantity=1.0)
            for a in IDS for m in range(1, 8)]


def build(tmp, fmt="parquet", **kw):
    data = write_tables(tmp / f"data-{fmt}", {"accounts": accounts(), "subscriptions": subscriptions(),
                                              "events": events()}, fmt=fmt)
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31), **kw), tmp / f"{fmt}.duckdb", as_of=AS_OF)
    df = read_snapshots(tmp / f"{fmt}.duckdb").set_index(["account_id", "as_of"])
    return result, df


@pytest.fixture(scope="module", params=["parquet", "csv"])
def built(request, tmp_path_factory):
    return build(tmp_path_factory.mktemp("profile"), request.param)


def at(df, account, day):
    return df.loc[(account, pd.Timestamp(day))]


def test_numbers_categories_and_booleans_reach_the_snapshots(built):
    _, df = built
    assert at(df, "a1", AS_OF[1])["nps"] == 9.0 and pd.isna(at(df, "a3", AS_OF[1])["nps"])
    assert at(df, "a4", AS_OF[0])["plan_family"] == "team"
    assert at(df, "a1", AS_OF[0])["is_partner"] == 1 and at(df, "a2", AS_OF[0])["is_partner"] == 0
    # a column named like an existing feature gets the accounts prefix; the feature is untouched
    assert at(df, "a2", AS_OF[1])["acct_mrr"] == 200.0 and at(df, "a2", AS_OF[1])["mrr"] == 10.0


def test_dates_are_days_since_and_null_before_they_happen(built):
    _, df = built
    assert at(df, "a1", AS_OF[1])["founded_on"] == (AS_OF[1] - D(2020, 1, 1)).days
    assert pd.isna(at(df, "a2", AS_OF[0])["founded_on"])  # founded 2024-04-01: not yet at 02-01
    assert at(df, "a2", AS_OF[1])["founded_on"] == (AS_OF[1] - D(2024, 4, 1)).days
    assert pd.isna(at(df, "a3", AS_OF[1])["founded_on"])


def test_subscription_columns_take_the_latest_term_at_the_as_of_date(built):
    _, df = built
    assert at(df, "a1", AS_OF[0])["contract_type"] == "monthly"
    assert at(df, "a1", AS_OF[1])["contract_type"] == "annual"
    assert at(df, "a4", AS_OF[1])["contract_type"] == "annual"


def test_catalogue_entries_with_both_languages(built):
    result, _ = built
    cat = result.catalogue
    kinds = {"nps": ("float", "value"), "plan_family": ("category", "category"),
             "founded_on": ("int", "days"), "is_partner": ("int", "flag"), "contract_type": ("category", "category")}
    for name, (ftype, unit) in kinds.items():
        f = cat[name]
        assert (f.group, f.type, f.unit, f.direction) == ("profile", ftype, unit, 0)
        assert "{value}" in f.reason_en and "{value}" in f.reason_zh
        assert any("\u4e00" <= ch <= "\u9fff" for ch in f.reason_zh)
    assert cat["founded_on"].reason_en.format(value="12") == "Founded on: 12 days ago"
    assert cat.names[-1] in {"contract_type", "is_partner"}  # own columns follow the built-in features


def test_unused_columns_are_listed_with_reasons_and_stored(built, tmp_path):
    result, _ = built
    reasons = {(c.table, c.column): c.reason for c in result.profile.unused}
    assert reasons[("accounts", "notes")].startswith("free text")
    assert reasons[("accounts", "crm_id")].startswith("id-like")
    assert reasons[("subscriptions", "subscription_id")].startswith("id-like")
    assert reasons[("accounts", "empty_col")] == "all null"
    assert reasons[("accounts", "status")].startswith("export-time state")
    assert reasons[("accounts", "industry")] == "contract column 'industry'"
    summary = result.summary()["profile_columns"]
    assert {"table": "accounts", "column": "notes", "reason": reasons[("accounts", "notes")]} in summary["unused"]


def test_unused_columns_are_in_the_store_metadata(tmp_path):
    result, _ = build(tmp_path)
    store = tmp_path / "parquet.duckdb"
    with connect(store, read_only=True) as con:
        meta = read_meta(con)
    assert meta.profile == result.profile.to_dict()
    assert any(c["column"] == "notes" for c in meta.profile["unused"])
    assert any(c["feature"] == "nps" for c in meta.profile["used"])


def test_config_excludes_renames_and_sets_direction_and_unit(tmp_path):
    profile = ProfileSettings(exclude=["nps", "subscriptions.contract_type"],
                              columns={"plan_family": ProfileColumn(name="family"),
                                       "founded_on": ProfileColumn(direction=-1, unit="days since founding"),
                                       "status": ProfileColumn(kind="category")})
    result, df = build(tmp_path, profile=profile)
    names = result.catalogue.names
    assert "nps" not in names and "contract_type" not in names and "plan_family" not in names
    assert at(df, "a4", AS_OF[0])["family"] == "team"
    f = result.catalogue["founded_on"]
    assert (f.direction, f.unit) == (-1, "days since founding")
    assert at(df, "a2", AS_OF[0])["status"] == "churned"  # opted in by the config
    reasons = {c.column: c.reason for c in result.profile.unused}
    assert reasons["nps"].startswith("excluded") and reasons["contract_type"].startswith("excluded")


def test_a_configured_name_that_collides_is_a_config_error(tmp_path):
    profile = ProfileSettings(columns={"nps": ProfileColumn(name="mrr")})
    with pytest.raises(ConfigError, match="profile.columns.nps.name: 'mrr'"):
        build(tmp_path, profile=profile)


def test_catalogue_roundtrips_through_the_store(tmp_path):
    result, _ = build(tmp_path)
    with connect(tmp_path / "parquet.duckdb", read_only=True) as con:
        assert Catalogue.from_json(read_meta(con).catalogue_json) == result.catalogue


def test_profile_queries_transpile_to_spark_sql():
    import sqlglot

    from features.profile import ExtraColumn, ProfilePlan, profile_specs, profile_stages
    from features.snapshots import final_query
    from features.spec import Catalogue, build_catalogue

    plan = ProfilePlan(used=[ExtraColumn("accounts", "NPS score", "number", "nps_score", "x0"),
                             ExtraColumn("accounts", "founded", "date", "founded", "x1"),
                             ExtraColumn("subscriptions", "contract", "category", "contract", "x2"),
                             ExtraColumn("subscriptions", "auto_renew", "boolean", "auto_renew", "x3"),
                             # a number written as text with a decimal comma (features/numbers.py)
                             ExtraColumn("accounts", "Annual Revenue", "number", "annual_revenue", "x4", decimal=",")])
    s = settings()
    base = build_catalogue(["login"])
    cat = Catalogue(features=base.features + tuple(profile_specs(plan, s)), event_types=base.event_types)
    for stage, sql in [*profile_stages(plan, s), ("final", final_query(cat, s))]:
        out = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
        assert len(out) == 1 and out[0].upper().startswith(("SELECT", "WITH"))
        # sqlglot passes an unknown function through: the number's pattern must be one Spark has
        assert "REGEXP_FULL_MATCH" not in out[0].upper()
        assert stage != "xa" or " RLIKE " in out[0].upper()


def test_a_config_key_naming_no_column_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="profile.exclude: 'npss' is not a column of accounts"):
        build(tmp_path, profile=ProfileSettings(exclude=["npss"]))


def _epoch(day: T | D, unit: str = "s") -> int:
    moment = day if isinstance(day, T) else T(day.year, day.month, day.day)
    return int(pd.Timestamp(moment, tz="UTC").timestamp()) * (1000 if unit == "ms" else 1)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_own_columns_in_epoch_time_become_days_since_only_when_name_and_values_say_date(tmp_path, fmt):
    """A date given in Unix epoch seconds or milliseconds (a billing or analytics export) is "days
    since" like an ISO date; a number stays a number unless its name AND every value say date."""
    acc = accounts()
    acc["signup_ts"] = [_epoch(D(2021, 5, 1)), _epoch(T(2023, 12, 31, 12)), _epoch(D(2024, 3, 15)), None]
    acc["firstOrderAt"] = [_epoch(D(2022, 1, 1), "ms"), _epoch(D(2022, 6, 1), "ms"),
                           _epoch(D(2023, 1, 1), "ms"), _epoch(D(2024, 1, 15), "ms")]
    acc["household_size"] = [2, 4, 1, 3]
    acc["ref_code"] = [1_500_000_000, 1_600_000_000, 1_650_000_000, 1_700_000_000]  # epoch-like, not a date
    acc["signup_year"] = [2019, 2020, 2021, 2022]  # a date word, but not epoch values
    acc["session_seconds"] = [1_600_000_000, 1_600_000_100, 1_600_000_200, 1_600_000_300]  # a duration's name
    acc["first_login_at"] = [_epoch(D(2024, 1, 2)), 0, _epoch(D(2024, 1, 9)), _epoch(D(2023, 11, 5))]  # one is no date
    sub = subscriptions()
    sub["signed_at_ms"] = [_epoch(D(2022, 12, 20), "ms"), _epoch(D(2024, 2, 25), "ms"),
                           *[_epoch(D(2022, 12, 1), "ms")] * 3]
    data = write_tables(tmp_path / "data", {"accounts": acc, "subscriptions": sub, "events": events()}, fmt=fmt)
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31)), tmp_path / "s.duckdb", as_of=AS_OF)
    df = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"])

    kinds = {c.column: (c.kind, c.epoch) for c in result.profile.used}
    assert kinds["signup_ts"] == ("date", "s") and kinds["firstOrderAt"] == ("date", "ms")
    assert kinds["signed_at_ms"] == ("date", "ms")
    for plain in ("household_size", "ref_code", "signup_year", "session_seconds", "first_login_at", "nps"):
        assert kinds[plain] == ("number", None), plain
    assert at(df, "a1", AS_OF[1])["signup_ts"] == (AS_OF[1] - D(2021, 5, 1)).days
    assert at(df, "a2", AS_OF[0])["signup_ts"] == (AS_OF[0] - D(2023, 12, 31)).days  # 12:00 UTC: that day
    assert pd.isna(at(df, "a3", AS_OF[0])["signup_ts"])  # 2024-03-15: not yet
    assert at(df, "a3", AS_OF[1])["signup_ts"] == (AS_OF[1] - D(2024, 3, 15)).days
    assert pd.isna(at(df, "a4", AS_OF[1])["signup_ts"])
    assert at(df, "a4", AS_OF[0])["firstorderat"] == (AS_OF[0] - D(2024, 1, 15)).days
    assert at(df, "a1", AS_OF[0])["signed_at_ms"] == (AS_OF[0] - D(2022, 12, 20)).days  # the term started 2023-01
    assert at(df, "a1", AS_OF[1])["signed_at_ms"] == (AS_OF[1] - D(2024, 2, 25)).days  # the term started 2024-03
    assert at(df, "a2", AS_OF[1])["household_size"] == 4 and at(df, "a4", AS_OF[1])["ref_code"] == 1_700_000_000
    assert result.catalogue["signup_ts"].unit == "days"

    # the decision is what `features` prints about own columns
    notes = {c["column"]: c["note"] for c in result.summary()["profile_columns"]["used"]}
    assert notes["signup_ts"] == "from epoch seconds: its name and every value say date"
    assert notes["firstOrderAt"] == "from epoch milliseconds: its name and every value say date"
    for looks_like in ("ref_code", "session_seconds"):
        assert notes[looks_like].startswith("kept a number: its values look like epoch seconds but its name does "
                                            "not say date"), looks_like
    assert notes["first_login_at"] == "kept a number: its name says date but only 3 of 4 values are epoch seconds " \
                                     "of a date in 1973-2099"
    assert notes["household_size"] == notes["signup_year"] == notes["nps"] == ""


def test_a_configured_kind_overrides_the_epoch_decision(tmp_path):
    acc = accounts()
    acc["ref_code"] = [_epoch(D(2021, 5, 1)), _epoch(D(2022, 5, 1)), _epoch(D(2023, 5, 1)), _epoch(D(2020, 5, 1))]
    acc["created_at"] = [_epoch(D(2021, 5, 1))] * 4
    data = write_tables(tmp_path / "data", {"accounts": acc, "subscriptions": subscriptions(), "events": events()})
    profile = ProfileSettings(columns={"ref_code": ProfileColumn(kind="date"),
                                       "created_at": ProfileColumn(kind="number")})
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31), profile=profile), tmp_path / "s.duckdb",
                             as_of=AS_OF)
    df = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"])
    assert at(df, "a2", AS_OF[1])["ref_code"] == (AS_OF[1] - D(2022, 5, 1)).days
    assert at(df, "a2", AS_OF[1])["created_at"] == _epoch(D(2021, 5, 1))
    notes = {c.column: c.note for c in result.profile.used}
    assert notes["ref_code"] == "date as configured (profile.columns)"
    assert notes["created_at"] == "number as configured (profile.columns)"


def test_later_builds_keep_the_kinds_the_stored_plan_decided(tmp_path):
    """A model is fed the kinds it was trained with: a build into a store that holds a plan (``score
    --data``, a later ``features``) keeps each own column's stored kind, says when this data alone would
    decide otherwise, and adds no new column to stored snapshots; ``from_scratch`` decides again."""
    from features.profile import KEPT

    s = settings(data_end=D(2024, 12, 31), profile=ProfileSettings(max_categories=3))
    first = accounts()
    first["signup_ts"] = [_epoch(D(2021, 5, 1)), _epoch(D(2022, 5, 1)), _epoch(D(2023, 5, 1)), _epoch(D(2020, 5, 1))]
    later = first.copy()
    later["plan_family"] = ["pro", "basic", "team", "enterprise"]  # 4 values > 3: alone, not a category
    later["signup_ts"] = [_epoch(D(2021, 5, 1)), 7, _epoch(D(2023, 5, 1)), _epoch(D(2020, 5, 1))]  # one odd value
    later["loyalty_points"] = [1.0, 2.0, 3.0, 4.0]  # a column the stored snapshots do not have
    tables = {"subscriptions": subscriptions(), "events": events()}
    data1 = write_tables(tmp_path / "d1", {"accounts": first, **tables})
    data2 = write_tables(tmp_path / "d2", {"accounts": later, **tables})
    store = tmp_path / "s.duckdb"
    trained = build_snapshots(data1, s, store, as_of=[AS_OF[0]])
    kinds = {c.column: (c.kind, c.epoch) for c in trained.profile.used}
    assert kinds["plan_family"] == ("category", None) and kinds["signup_ts"] == ("date", "s")

    scored = build_snapshots(data2, s, store, as_of=[AS_OF[1]])
    used = {c.column: c for c in scored.profile.used}
    assert (used["plan_family"].kind, used["signup_ts"].kind, used["signup_ts"].epoch) == ("category", "date", "s")
    assert used["plan_family"].note.startswith(KEPT) and "would make it not used (id-like" in used["plan_family"].note
    assert used["signup_ts"].note == (f"{KEPT}: date (epoch seconds); this data alone would make it number; "
                                      "`churnwatch features --from-scratch` decides again")
    assert "nps" in used and used["nps"].note == ""  # decided the same: nothing to say
    assert [line.split(":")[0] for line in scored.profile.changed()] == ["accounts.plan_family", "accounts.signup_ts"]
    reasons = {c.column: c.reason for c in scored.profile.unused}
    assert reasons["loyalty_points"].startswith("not a column of the stored snapshots")
    assert [c.name for c in scored.catalogue.features] == [c.name for c in trained.catalogue.features]
    df = read_snapshots(store).set_index(["account_id", "as_of"])
    assert at(df, "a4", AS_OF[1])["plan_family"] == "enterprise"
    assert at(df, "a3", AS_OF[1])["signup_ts"] == (AS_OF[1] - D(2023, 5, 1)).days
    assert pd.isna(at(df, "a2", AS_OF[1])["signup_ts"])  # 7 is no date: unknown, not 7 days or 7
    with connect(store, read_only=True) as con:
        assert read_meta(con).profile == scored.profile.to_dict()

    full = build_snapshots(data2, s, store)  # a later `features`: the kinds stay, a new column is added
    kinds = {c.column: c.kind for c in full.profile.used}
    assert kinds["plan_family"] == "category" and kinds["signup_ts"] == "date" and kinds["loyalty_points"] == "number"

    again = build_snapshots(data2, s, store, from_scratch=True)
    kinds = {c.column: (c.kind, c.epoch) for c in again.profile.used}
    assert "plan_family" not in kinds and kinds["signup_ts"] == ("number", None)
    assert again.profile.changed() == []

    # a stored "not used" decided by the values stays so; the config's word is taken at once
    back = build_snapshots(data1, s, store)
    reasons = {c.column: c.reason for c in back.profile.unused}
    assert reasons["plan_family"].startswith("id-like (a different value on every row); " + KEPT)
    configured = settings(data_end=D(2024, 12, 31), profile=ProfileSettings(
        max_categories=3, columns={"signup_ts": ProfileColumn(kind="date")}))
    told = build_snapshots(data2, configured, store)
    assert {c.column: c.kind for c in told.profile.used}["signup_ts"] == "date"


def test_billing_tools_state_at_export_is_not_a_feature(tmp_path):
    """Chargebee's Current Term Start / End (only subscriptions still alive at export have them: 0 of 632
    churn rows did), Next Billing At and dunning columns, Paddle's next_bill_date and Recurly's expires_at
    describe the subscription when it was exported, as Stripe's current_period_* do."""
    sub = subscriptions()
    names = ["Current Term Start", "Current Term End", "Next Billing At", "Due Since", "Total Dues",
             "next_bill_date", "expires_at", "delinquent", "dunning_status",  # Stripe's customer flag (a probe)
             "auto_renew", "Auto-Renew Status", "will_renew", "is_auto_renew"]  # a renewal setting (p55)
    flags = ("delinquent", "dunning_status", "auto_renew", "Auto-Renew Status", "will_renew", "is_auto_renew")
    for name in names:
        sub[name] = [D(2024, 12, 1)] * len(sub) if "Dues" not in name and name not in flags else [0.0] * len(sub)
    sub["Activated At"] = [D(2023, 1, 1)] * len(sub)  # a moment of the subscription's history: kept
    kept = ["auto_renewed_orders", "auto_renew_count", "num_auto_renewals", "累计自动续费"]  # histories, not a setting
    for name in kept:
        sub[name] = [float(k) for k in range(len(sub))]
    sub["自动续费状态"] = [1.0] * len(sub)
    data = write_tables(tmp_path / "data", {"accounts": accounts(), "subscriptions": sub, "events": events()})
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31)), tmp_path / "s.duckdb", as_of=AS_OF)
    reasons = {c.column: c.reason for c in result.profile.unused if c.table == "subscriptions"}
    assert all(reasons.get(n, "").startswith("export-time state") for n in [*names, "自动续费状态"]), reasons
    assert {"Activated At", *kept} <= {c.column for c in result.profile.used}


def test_a_ticket_category_mapped_from_a_tag_is_listed_as_read_by_no_feature(tmp_path):
    """Intercom's tag mapped to tickets.category: accepted, shown in the report, but no feature counts
    tickets per category; it is listed, so the user does not expect bug tickets to count on their own."""
    tickets = [dict(account_id=a, opened_at=T(2024, 1, 10, 9), resolved_at=T(2024, 1, 11, 9), tag=tag)
               for a, tag in zip(IDS, ["bug", "billing", "how-to", "bug"])]
    data = write_tables(tmp_path / "data", {"accounts": accounts(), "subscriptions": subscriptions(),
                                           "events": events(), "tickets": pd.DataFrame(tickets)})
    s = settings(data_end=D(2024, 12, 31), column_mapping={"tickets": {"tag": "category"}})
    result = build_snapshots(data, s, tmp_path / "s.duckdb", as_of=AS_OF)
    reasons = {(c.table, c.column): c.reason for c in result.profile.unused}
    assert reasons[("tickets", "tag")].startswith("no feature reads it (the report's ticket list shows it)")
    assert ("tickets", "opened_at") not in reasons


def test_stripe_moments_named_without_a_date_word_are_read_as_dates(tmp_path):
    """Stripe's ``trial_start`` and ``trial_end`` in epoch seconds stayed raw numbers (1.7 billion) in a
    probe's export: their names had no date word; a count named like them stays a number."""
    acc = accounts()
    acc["trial_start"] = [1704067200 + 86400 * k for k in range(len(acc))]  # 2024-01-01 on
    acc["trial_end_count"] = [1704067200 + 86400 * k for k in range(len(acc))]  # a count: never a date
    data = write_tables(tmp_path / "data", {"accounts": acc, "subscriptions": subscriptions(), "events": events()})
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31)), tmp_path / "s.duckdb", as_of=AS_OF)
    kinds = {c.column: c.kind for c in result.profile.used}
    assert kinds["trial_start"] == "date" and kinds.get("trial_end_count", "number") == "number"



def test_a_number_or_date_column_with_na_words_is_read_with_them_missing_and_says_so(tmp_path):
    """A probe's HubSpot companies export: "NPS Score" held 0-10, blanks, 'n/a' and 227 'NA' (which the CSV
    reader keeps as text: a region code as often); it became a 12-value category, ROC-AUC 0.763 -> 0.730,
    with only the word "(category)" to show it. A region column's 'NA' stays a value."""
    acc = frame("accounts", [dict(account_id=a, industry="retail") for a in IDS])
    acc["NPS Score"] = ["9", "NA", "nan", "unknown"]
    acc["Customer Since"] = ["2020-01-05", "NA", "2021-03-01", ""]
    acc["Sales Region"] = ["NA", "EMEA", "NA", "APAC"]
    # the review of 2026-12-06: 'nan' beside dates (pandas' text of a missing value) and 'NA' beside money or a
    # decimal comma made categories
    acc["Renewed On"] = ["2023-01-05", "nan", "2023-03-01", "NaN"]
    acc["ARR"] = ["$1,200.50", "NA", "$30.00", "$4.00"]
    acc["Usage"] = ["1,5", "unknown", "2,25", "3,75"]
    data = write_tables(tmp_path / "d", {"accounts": acc, "subscriptions": subscriptions(), "events": events()},
                        fmt="csv")
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31)), tmp_path / "s.duckdb", as_of=AS_OF)
    used = {c.column: c for c in result.profile.used}
    assert used["NPS Score"].kind == "number"
    assert used["NPS Score"].note == "1 'NA', 1 'nan', 1 'unknown' read as missing"
    assert used["Customer Since"].kind == "date" and used["Customer Since"].note == "1 'NA' read as missing"
    assert used["Sales Region"].kind == "category" and used["Sales Region"].note == ""
    assert used["Renewed On"].kind == "date" and used["Renewed On"].note == "1 'NaN', 1 'nan' read as missing"
    assert (used["ARR"].kind, used["Usage"].kind) == ("number", "number")
    assert used["ARR"].note.endswith("read with a decimal point; 1 'NA' read as missing")
    assert used["Usage"].note.endswith("read with a decimal comma; 1 'unknown' read as missing")
    df = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"])
    nps, since, region = (used[c].feature for c in ("NPS Score", "Customer Since", "Sales Region"))
    assert at(df, "a1", AS_OF[0])[nps] == 9 and pd.isna(at(df, "a2", AS_OF[0])[nps])
    assert at(df, "a1", AS_OF[0])[since] == (AS_OF[0] - D(2020, 1, 5)).days and pd.isna(at(df, "a2", AS_OF[0])[since])
    assert at(df, "a1", AS_OF[0])[region] == "NA"
    arr, usage = used["ARR"].feature, used["Usage"].feature
    assert [at(df, a, AS_OF[0])[arr] for a in ("a1", "a3")] == [1200.5, 30.0] and pd.isna(at(df, "a2", AS_OF[0])[arr])
    assert at(df, "a3", AS_OF[0])[usage] == 2.25 and pd.isna(at(df, "a2", AS_OF[0])[usage])
    with connect(tmp_path / "s.duckdb", read_only=True) as con:  # missing as NULL, not NaN ('nan' casts to NaN)
        [(nulls, nans)] = con.execute(f'SELECT count_if("{nps}" IS NULL), count_if(isnan("{nps}")) '
                                      "FROM snapshots WHERE as_of = ?", [AS_OF[0]]).fetchall()
    assert (nulls, nans) == (3, 0)


def test_chinese_money_in_an_event_log_s_account_columns_reads_as_numbers(tmp_path):
    """A Chinese company's accounts export (the review of p52's fixes: the flat-table path read ``1658.31元`` and
    ``人民币 120``, an event log's account columns dropped them as id-like or free text); a plan named "100元套餐"
    stays a category."""
    acc = frame("accounts", [dict(account_id=a, industry="retail") for a in IDS])
    acc["累计消费"] = ["1658.31元", "20.5元", "", "100元"]
    acc["年费"] = ["人民币 1,200", "人民币 88.5", "人民币 30", "人民币 4"]
    acc["月费"] = ["￥119.00", "￥1,234.50", "￥9", "￥59.90"]
    acc["套餐名"] = ["100元套餐", "200元套餐", "100元套餐", "200元套餐"]
    acc["开户日期"] = ["2020年1月5日", "2021年3月1日", "", "2019年12月31日"]  # read with its declared format
    data = write_tables(tmp_path / "d", {"accounts": acc, "subscriptions": subscriptions(), "events": events()},
                        fmt="csv")
    s = settings(data_end=D(2024, 12, 31), date_formats={"accounts": {"开户日期": "%Y年%m月%d日"}})
    result = build_snapshots(data, s, tmp_path / "s.duckdb", as_of=AS_OF)
    used = {c.column: c for c in result.profile.used}
    assert {c: used[c].kind for c in ("累计消费", "年费", "月费", "套餐名", "开户日期")} == {
        "累计消费": "number", "年费": "number", "月费": "number", "套餐名": "category", "开户日期": "date"}
    df = read_snapshots(tmp_path / "s.duckdb").set_index(["account_id", "as_of"])
    spent, fee, month = (used[c].feature for c in ("累计消费", "年费", "月费"))
    assert [at(df, a, AS_OF[0])[spent] for a in ("a1", "a2", "a4")] == [1658.31, 20.5, 100.0]
    assert pd.isna(at(df, "a3", AS_OF[0])[spent])
    assert [at(df, a, AS_OF[0])[fee] for a in IDS] == [1200.0, 88.5, 30.0, 4.0]
    assert [at(df, a, AS_OF[0])[month] for a in IDS] == [119.0, 1234.5, 9.0, 59.9]
    opened = used["开户日期"].feature
    assert at(df, "a1", AS_OF[0])[opened] == (AS_OF[0] - D(2020, 1, 5)).days and pd.isna(at(df, "a3", AS_OF[0])[opened])
