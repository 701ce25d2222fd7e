"""Daily rollups as events with a quantity (an API's requests per day): ``event_units`` words the type's
counts with its unit ("12,000 '/v1/models' requests"), in both languages, and a unit naming no event type
of the data is warned about."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import DataContractError
from core.settings import Settings
from features.pipeline import build_snapshots
from features.spec import build_catalogue
from tests.tiny import D, settings, write_tables
from training.reason_text import References, Row, word

REFS = References(typical={"evt_v1_models_90d": 20_884.5, "evt_api_error_7d": 3.0}, category_churn={},
                  overall_churn=0.1)


def _specs(units):
    return {f.name: f for f in build_catalogue(["/v1/models", "api_error", "login"], units=units).features}


def test_a_unit_words_the_counts_and_the_change():
    specs = _specs({"/V1/Models": {"en": "requests", "zh-CN": "请求"}, "api_error": "errors"})
    count = specs["evt_v1_models_90d"]
    assert word(count, 11_956.0, +1, Row({}), REFS, "en") == (
        "Only 11,956 '/v1/models' requests in the last 90 days; a typical active account has 20,885")
    assert word(count, 11_956.0, +1, Row({}), REFS, "zh-CN") == "近90天'/v1/models'请求共11,956；典型活跃客户为20,885"
    assert "requests (the events' quantity summed)" in count.definition
    errors = specs["evt_api_error_30d"]
    assert errors.reason_en == "{value} 'api_error' errors in the last 30 days"
    assert errors.reason_zh == "近30天'api_error'共{value}"  # no Chinese word given: "in total"
    assert specs["evt_api_error_30d_change"].reason_en == "'api_error' errors {change} vs the previous 30 days"
    assert specs["evt_login_30d"].reason_en == "{value} 'login' events in the last 30 days"  # no unit: events
    # a unit's braces are text, not template fields
    braces = {f.name: f for f in build_catalogue(["call"], units={"call": {"en": "m{x}", "zh-CN": "{c}"}}).features}
    assert braces["evt_call_30d"].reason_zh.format(value=5) == "近30天'call'{c}共5"
    assert braces["evt_call_30d"].reason_en.format(value=5) == "5 'call' m{x} in the last 30 days"


def test_an_event_units_entry_that_names_no_event_type_is_warned_about(tmp_path):
    data = write_tables(tmp_path / "data", {
        "accounts": [dict(account_id="a")],
        "subscriptions": [dict(account_id="a", start_date=D(2024, 1, 1), end_date=None, mrr=10.0)],
        "events": pd.DataFrame({"account_id": "a", "user_id": "u", "event_type": "requests", "quantity": 1200.0,
                                "occurred_at": pd.date_range("2024-01-02", periods=60)})})
    s = settings(data_end=D(2024, 4, 1)).model_copy(update={"event_units": {"requests": "requests", "reqests": "x"}})
    result = build_snapshots(data, s, tmp_path / "s.duckdb", as_of=[D(2024, 3, 1)])
    said = [w for w in result.validation.warnings if w.startswith("event_units:")]
    assert said == ["event_units: 'reqests' is not an event type of the data (types: 'requests'); its counts keep "
                    "the word 'events'"]
    spec = {f.name: f for f in result.catalogue.features}["evt_requests_30d"]
    assert spec.reason_en == "{value} 'requests' requests in the last 30 days"


def test_event_units_validate_in_the_config():
    units = Settings(event_units={"requests": {"en": "requests", "zh-CN": "请求"}}).event_units
    assert units["requests"]["zh-CN"] == "请求"


def test_files_no_table_is_read_from_and_roles_naming_no_event_type_are_said(tmp_path):
    """A probe's API company: its daily usage rollup put in the folder as ``usage_daily.csv`` gave '0 event
    types' and not a word, and ``cancel_request: [cancellation_scheduled]`` named a type of no file read."""
    data = write_tables(tmp_path / "data", {
        "accounts": [dict(account_id="a")],
        "subscriptions": [dict(account_id="a", start_date=D(2024, 1, 1), end_date=None, mrr=10.0)],
        "events": pd.DataFrame({"account_id": "a", "user_id": "u", "event_type": "requests", "quantity": 1200.0,
                                "occurred_at": pd.date_range("2024-01-02", periods=60)})})
    (data / "usage_daily.csv").write_text("account_id,day,api_calls\na,2024-01-02,5\n")
    (data / "events.csv.gz").write_bytes(b"\x1f\x8b")  # beside the events.csv read: said, not refused
    (data / "README.md").write_text("notes")  # not data: not said
    (data / "~$accounts.xlsx").write_bytes(b"lock")  # a spreadsheet's lock file: not said
    (data / "Events.xlsx").write_bytes(b"PK")
    (data / "events.2024.csv").write_text("event_id\n")  # the review: was told to be named as it is
    (data / "manifest.json").write_text("{}")  # not a table's name: not said
    (data / "export.zip").write_bytes(b"PK")
    s = Settings(event_roles={"login": ["requests"], "cancel_request": ["cancellation_scheduled", "Cancel"]})
    s = s.model_copy(update={"data_end": D(2024, 4, 1)})
    result = build_snapshots(data, s, tmp_path / "s.duckdb", as_of=[D(2024, 3, 1)])
    said = [w for w in result.validation.warnings if "not read" in w or w.startswith("event_roles")]
    assert said == [
        "event_roles.cancel_request: 'cancellation_scheduled', 'Cancel' are not event types of the data (types: "
        "'requests'); the role's features read nothing from them",
        "Events.xlsx: not read: a table is read from events.csv or events.parquet; save it as CSV or Parquet",
        "events.2024.csv: not read: a table is read from events.csv or events.parquet; name it events.csv",
        "events.csv.gz: not read: a table is read from events.csv or events.parquet; unpack it",
        "export.zip: not read: churnwatch reads the tables accounts, subscriptions, events, tickets, invoices, "
        "churn_feedback, interventions (<table>.csv, <table>.parquet or a <table>/ folder of Parquet); unpack it; "
        "usage counts per day or per period become events (README, \"Bring your data\")",
        "usage_daily.csv: not read: churnwatch reads the tables accounts, subscriptions, events, tickets, invoices, "
        "churn_feedback, interventions (<table>.csv, <table>.parquet or a <table>/ folder of Parquet); usage counts "
        "per day or per period become events (README, \"Bring your data\")"]


def test_a_file_named_after_a_table_that_has_no_file_read_stops_the_build_first(tmp_path, caplog):
    """A probe's Mixpanel export as ``events.jsonl`` (and no events.csv): "no plausible timestamps ... set
    data_end" named no file, and with data_end set the build ended 0 with 0 events and one warning."""
    data = write_tables(tmp_path / "data", {
        "accounts": [dict(account_id="a")],
        "subscriptions": [dict(account_id="a", start_date=D(2024, 1, 1), end_date=None, mrr=10.0)]})
    (data / "events.jsonl").write_text('{"event": "Search", "properties": {"time": 1704153600, "distinct_id": "a"}}\n')
    (data / "tickets.csv.gz").write_bytes(b"\x1f\x8b")
    (data / "Invoices.xlsx").write_bytes(b"PK")
    (data / "churn_feedback.json").write_text("[]")
    (data / "usage_daily.csv").write_text("account_id,day,api_calls\na,2024-01-02,5\n")  # no table's name
    s = Settings().model_copy(update={"data_end": D(2024, 4, 1)})
    with pytest.raises(DataContractError) as err:
        build_snapshots(data, s, tmp_path / "s.duckdb", as_of=[D(2024, 3, 1)])
    assert str(err.value) == (
        f"folder {data}: Invoices.xlsx: not read: a table is read from invoices.csv or invoices.parquet; save it "
        "as CSV or Parquet; churn_feedback.json: not read: a table is read from churn_feedback.csv or "
        "churn_feedback.parquet; save it as CSV or Parquet (JSON lines as Mixpanel exports them: README, \"Bring "
        "your data\"); events.jsonl: not read: a table is read from events.csv or events.parquet; save it as CSV or "
        "Parquet (JSON lines as Mixpanel exports them: README, \"Bring your data\"); tickets.csv.gz: not read: a "
        "table is read from tickets.csv "
        "or tickets.parquet; unpack it (nothing was built: a table left unread would leave its features unknown "
        "for every account; to build without it, move the file out of the folder)")
    assert not (tmp_path / "s.duckdb").exists()
    (data / "events.jsonl").unlink(), (data / "tickets.csv.gz").unlink(), (data / "Invoices.xlsx").unlink()
    (data / "churn_feedback.json").unlink()
    with caplog.at_level("WARNING"):  # a check that fails: the unread file was said before it
        with pytest.raises(DataContractError, match="cannot tell the data end"):
            build_snapshots(data, Settings(), tmp_path / "s.duckdb")
    assert "usage_daily.csv: not read" in caplog.text
