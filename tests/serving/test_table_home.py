"""The service on a flat-table home (``train --table``, ``promote``, ``score --table``): by-id
answers never depend on a snapshot store, which such a home does not have.

A user probe (h3, finding 1) got HTTP 503 "snapshot store ... unavailable: the store has no
snapshots: run `churnwatch features` first" for ``/score_accounts`` as soon as one id was
unknown: an id without a published score fell back to a live score from the snapshots. Built
here as a user would: a generated table of 600 customers whose ids have leading zeros, the real
CLI in-process, the scorer ``churnwatch serve`` loads from the home, BentoML's ASGI app.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from core.scores import read_history
from demo.flat import write_flat_table
from serving.api import UNKNOWN_TABLE_ACCOUNT
from serving.service import LIVE_TABLE_MODEL, load_scorer, make_service
from tests.foreign.inprocess import run_cli

pytestmark = pytest.mark.slow  # a module fixture of three CLI runs (about 15 s)

AS_OF = "2026-03-31"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A table home scored as of ``AS_OF``; ids ``030001`` .. ``030600`` (text with a leading zero)."""
    work = tmp_path_factory.mktemp("table_home")
    table = write_flat_table(work / "customers.csv", rows=600, seed=7)
    frame = pd.read_csv(table, dtype=str)
    frame["customer_id"] = [f"{30_000 + i:06d}" for i in range(1, len(frame) + 1)]
    frame["Zip Code"] = [str(90_001 + i % 400) for i in range(len(frame))]  # a place: not used, said by /model
    frame.to_csv(table, index=False)
    current = work / "current.csv"
    frame.drop(columns=["Churn"]).to_csv(current, index=False)
    home = work / "home"
    for step, args in (("train", ("--table", table, "--label", "Churn", "--id", "customer_id")), ("promote", ()),
                       ("score", ("--table", current, "--as-of", AS_OF))):
        done = run_cli(step, *args, home=home)
        assert done.returncode == 0, f"{step} exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}"
    return home


@pytest.fixture(scope="module")
def customers(home) -> pd.DataFrame:
    """The scored table (``current.csv``), by id."""
    return pd.read_csv(home.parent / "current.csv", dtype={"customer_id": str}).set_index("customer_id")


@pytest.fixture(scope="module")
def client(home):
    """The service ``churnwatch serve --home HOME`` runs, in-process."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHURNWATCH_HOME", str(home))
        mp.delenv("CHURNWATCH_STORE", raising=False)
        mp.delenv("CHURNWATCH_MODEL", raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)  # restored after: the loader sets it
        scorer = load_scorer()
    assert scorer.bundle.meta.get("kind") == "table" and scorer.store == home / "store.duckdb"
    with TestClient(make_service(scorer.catalogue, lambda: scorer).to_asgi()) as c:
        yield c


@pytest.fixture(scope="module")
def scored(home) -> pd.DataFrame:
    return read_history(home / "store.duckdb").set_index("account_id")


def answer_schema(client, path: str) -> Draft202012Validator:
    """The published OpenAPI document's 200 schema of ``POST path``."""
    document = client.get("/docs.json").json()
    schema = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": document["components"]})


def test_the_probes_request_is_200_with_the_unknown_ids_marked_in_place(client, scored):
    response = client.post("/score_accounts", json={"account_ids": ["030144", "30144", "nobody"]})
    assert response.status_code == 200, response.text
    known, stripped, nobody = response.json()
    assert known["account_id"] == "030144" and known["source"] == "published" and known["as_of"] == AS_OF
    assert known["churn_probability"] == pytest.approx(scored.loc["030144", "churn_probability"], abs=1e-6)
    assert known["tier"] == scored.loc["030144", "tier"]
    # an id is text: "30144" is not "030144", and is answered as unknown, not scored from anything
    assert stripped == {"account_id": "30144", "error": UNKNOWN_TABLE_ACCOUNT["en"]}
    assert nobody == {"account_id": "nobody", "error": UNKNOWN_TABLE_ACCOUNT["en"]}
    assert UNKNOWN_TABLE_ACCOUNT["en"] == "unknown account: no score published by `churnwatch score --table`"


@pytest.mark.parametrize("ids", [["40819"], ["nobody", "nobody"], ["30144"]])
def test_unknown_ids_alone_are_200_in_both_languages(client, ids):
    for lang in ("en", "zh-CN"):
        response = client.post("/score_accounts", json={"account_ids": ids, "lang": lang})
        assert response.status_code == 200, response.text
        assert response.json() == [{"account_id": i, "error": UNKNOWN_TABLE_ACCOUNT[lang]} for i in ids]
    assert not UNKNOWN_TABLE_ACCOUNT["zh-CN"].isascii()


def test_known_ids_alone_are_the_published_scores(client, scored):
    ids = ["030001", "030600", "030300"]
    body = client.post("/score_accounts", json={"account_ids": ids}).json()
    assert [a["account_id"] for a in body] == ids
    assert [a["churn_probability"] for a in body] == pytest.approx(list(scored.loc[ids, "churn_probability"]),
                                                                   abs=1e-6)


def test_the_model_endpoint_lists_the_tables_columns_not_used_with_the_reason(client):
    """A probe's /model of a table model said "left_out_features": {} while 8 columns were not used."""
    from features.profile import PLACE_CODE

    left = client.get("/model").json()["left_out_features"]
    assert left["Zip Code"] == f"column not used: {PLACE_CODE}"


def test_live_is_422_naming_the_table_model_for_known_and_unknown_ids(client):
    for ids in (["030001"], ["030001", "nobody"]):
        response = client.post("/score_accounts", json={"account_ids": ids, "live": True})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == LIVE_TABLE_MODEL
    assert "flat table" in LIVE_TABLE_MODEL and "`live`" in LIVE_TABLE_MODEL and "POST /score" in LIVE_TABLE_MODEL


def test_history_by_id_is_200_for_a_scored_id_and_404_for_others(client, scored):
    response = client.get("/accounts/030144/history")
    assert response.status_code == 200, response.text
    assert response.json()["scores"][0]["as_of"] == AS_OF
    assert response.json()["scores"][0]["tier"] == scored.loc["030144", "tier"]
    for unknown in ("30144", "nobody"):
        missing = client.get(f"/accounts/{unknown}/history")
        assert missing.status_code == 404 and repr(unknown) in missing.json()["detail"]


def test_bulk_read_lists_every_scored_customer(client, scored):
    response = client.get("/scores", params={"limit": 1000})
    assert response.status_code == 200, response.text
    assert [s["account_id"] for s in response.json()["scores"]] == sorted(scored.index)
    assert response.json()["as_of"] == AS_OF and response.json()["next_cursor"] is None


def test_the_store_holds_no_snapshots(home):
    """What made the old code answer 503: the table home's store has scores, not snapshots."""
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "score_history" in tables and "snapshots" not in tables


def test_the_readme_quotes_the_table_homes_answers():
    """README "Scoring, the HTTP service and alerts" shows both answers of a table home."""
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8").split())
    assert f'"error": "{UNKNOWN_TABLE_ACCOUNT["en"]}"' in readme and UNKNOWN_TABLE_ACCOUNT["zh-CN"] in readme
    assert f'"detail": "{LIVE_TABLE_MODEL}"' in readme


def test_answers_match_the_published_schema_with_columns_as_signals(client, customers):
    """A table model's reasons name its columns as their signal; the schema listed only the
    snapshot catalogue's groups (activity, support, ...), so every answer with a reason broke it."""
    body = client.post("/score_accounts", json={"account_ids": ["030144", "030002", "nobody"]}).json()
    answer_schema(client, "/score_accounts").validate(body)
    signals = {r["signal"] for a in body[:2] for r in a["reasons"] + a["strengths"]}
    assert signals and signals <= set(customers.columns)
    catalogue = client.get("/model").json()["feature_spec"]["features"]
    row = customers.loc["030144"]
    features = {f["name"]: (str(row[f["name"]]) if f["type"] == "category" else float(row[f["name"]]))
                for f in catalogue if f["name"] in row.index and pd.notna(row[f["name"]])
                and f["name"] != "signup_date"}
    scored = client.post("/score", json={"accounts": [{"account_id": "030144", "features": features}]})
    assert scored.status_code == 200, scored.text
    answer_schema(client, "/score").validate(scored.json())
    assert scored.json()[0]["reasons"] and {r["signal"] for r in scored.json()[0]["reasons"]} <= set(customers.columns)


def test_a_row_as_the_table_writes_it_scores_as_its_numbers(client, customers):
    """A flat table's number and date columns sent to ``/score`` as text, as the export writes them, are read as
    training read the column (dates counted to the day of the request); earlier the client had to send the
    numbers and the days since each date itself (a probe's "$88.54" and "2024-01-19" were 422)."""
    row = customers.loc["030144"]
    catalogue = {f["name"]: f for f in client.get("/model").json()["feature_spec"]["features"]}
    numbers = {name: (str(row[name]) if catalogue[name]["type"] == "category" else float(row[name]))
               for name in catalogue if name in row.index and pd.notna(row[name]) and name != "signup_date"}
    today = dt.datetime.now(dt.UTC).date()
    signup = dt.date.fromisoformat(str(row["signup_date"]))
    numbers["signup_date"] = (today - signup).days
    text = {**numbers, "monthly_charges": f"${row['monthly_charges']:,.2f}",
            "total_charges": f"{row['total_charges']:,.2f}", "tenure_months": f" {int(row['tenure_months'])} ",
            "signup_date": signup.isoformat()}
    answers = [client.post("/score", json={"accounts": [{"account_id": "030144", "features": f}]})
               for f in (numbers, text)]
    assert [a.status_code for a in answers] == [200, 200], answers[1].text
    assert answers[1].json()[0]["churn_probability"] == answers[0].json()[0]["churn_probability"]
    assert answers[1].json()[0]["reasons"] == answers[0].json()[0]["reasons"]
    # a category in another case than training saw it (a re-exported yes/no, p37's true/false) is that category
    cased = {**text, "partner": str(row["partner"]).lower(), "contract": str(row["contract"]).upper()}
    respelled = client.post("/score", json={"accounts": [{"account_id": "030144", "features": cased}]}).json()[0]
    assert respelled["churn_probability"] == answers[0].json()[0]["churn_probability"]
    assert respelled["coverage"]["unknown"] == [] and respelled["warnings"] == answers[0].json()[0]["warnings"]
    # as_of: the dates counted to the day the row was exported, as `score --table --as-of` does (a probe's CRM rows
    # scored days after their export were other probabilities than the file's)
    exported = today - dt.timedelta(days=40)
    then = {**numbers, "signup_date": (exported - signup).days}
    by_numbers, by_day = (client.post("/score", json=body).json()[0] for body in (
        {"accounts": [{"account_id": "030144", "features": then}]},
        {"accounts": [{"account_id": "030144", "features": text}], "as_of": exported.isoformat()}))
    assert by_day["churn_probability"] == by_numbers["churn_probability"] and by_day["reasons"] == by_numbers["reasons"]
    for wrong in ("someday", 0, "0", "1728000000", "2026-02-30"):  # no number is a day (pydantic: seconds since 1970)
        late = client.post("/score", json={"accounts": [{"account_id": "030144", "features": text}], "as_of": wrong})
        assert late.status_code == 422 and "as_of" in late.text, wrong
    schema = client.get("/docs.json").json()["components"]["schemas"]["ScoreRequest"]["properties"]["as_of"]
    assert "the day a flat-table model counts the dates sent as text to" in schema["description"]
    bad = client.post("/score", json={"accounts": [{"account_id": "030144", "features": {
        **text, "monthly_charges": "about 90", "signup_date": "19.01.2024"}}]})
    assert bad.status_code == 422 and "Traceback" not in bad.text
    said = bad.json()["detail"]
    assert "accounts[0].features.monthly_charges: 'about 90' does not read as a number" in said
    assert "signup_date" not in said  # a column the model does not read (a repeat of tenure_months): not read here
    blank = client.post("/score", json={"accounts": [{"account_id": "030144",
                                                      "features": {**text, "monthly_charges": "N/A"}}]})
    assert blank.status_code == 200 and "monthly_charges" in blank.json()[0]["coverage"]["missing"]
    schema = client.get("/docs.json").json()["components"]["schemas"]["Features"]["properties"]["monthly_charges"]
    assert {"type": "string", "maxLength": 200} in schema["anyOf"] and "table's text" in schema["description"]


def test_the_exports_row_as_it_is_scores_with_the_columns_the_model_does_not_read_ignored(client, customers):
    """The CRM's row as the export has it: its id column, a place code the model does not read, every value as
    text (p37: "Extra inputs are not permitted" for an e-mail and a record id). Only a name the table never had
    is refused."""
    row = customers.loc["030144"]
    whole = {"customer_id": "030144", **{c: (None if pd.isna(v) else str(v)) for c, v in row.items()}}
    assert "Zip Code" in whole and "signup_date" in whole
    features = {c: v for c, v in whole.items() if c not in ("customer_id", "Zip Code")}
    answers = [client.post("/score", json={"accounts": [{"account_id": "030144", "features": f}]})
               for f in (features, whole, {**whole, "Churn": "No"})]
    assert [a.status_code for a in answers] == [200, 200, 200], answers[1].text
    assert answers[1].json() == answers[0].json() == answers[2].json()
    unknown = client.post("/score", json={"accounts": [{"account_id": "030144", "features": {**whole, "Zip": "1"}}]})
    assert unknown.status_code == 422 and "accounts[0].features.Zip" in unknown.text
    props = client.get("/docs.json").json()["components"]["schemas"]["Features"]["properties"]
    assert "accepted and ignored" in props["Zip Code"]["description"]
    assert "the id column" in props["customer_id"]["description"]


@pytest.mark.parametrize("unreadable", ["2025年8月5日", "19.01.2024"])
def test_a_column_the_model_left_out_is_ignored_unread_and_a_used_one_still_checked(client, customers, unreadable):
    """A tester's CRM row with a sign-up date column training left out of the model (a repeat of another feature)
    written "2025年8月5日" was a 422 "does not read as a date as training read this column": ``/score`` read every
    typed column of the table, not the model's features. Such a column is accepted and ignored, unread, as the
    table's other unused columns; the same text in a column the model reads is still a 422 naming it."""
    import json

    from serving.fastpath import SMALL_BODY_BYTES

    left = client.get("/model").json()["left_out_features"]
    assert left["signup_date"].startswith("in the same order as tenure_months")  # left out: a repeat
    row = customers.loc["030144"]
    base = {c: (None if pd.isna(v) else str(v)) for c, v in row.items() if c != "signup_date"}
    answers = [client.post("/score", json={"accounts": [{"account_id": "030144", "features": f}]})
               for f in (base, {**base, "signup_date": unreadable})]
    assert [a.status_code for a in answers] == [200, 200], answers[1].text
    assert answers[1].json()[0]["churn_probability"] == answers[0].json()[0]["churn_probability"]
    assert answers[1].json() == answers[0].json()
    props = client.get("/docs.json").json()["components"]["schemas"]["Features"]["properties"]
    assert "accepted and ignored" in props["signup_date"]["description"]
    # a large batch (the array path, ``serving.scoring.plain_rows``) ignores it too
    catalogue = {f["name"]: f for f in client.get("/model").json()["feature_spec"]["features"]}
    numbers = {c: (v if catalogue.get(c, {}).get("type") == "category" or v is None else float(v))
               for c, v in base.items() if c in catalogue}
    accounts = [{"account_id": f"c{i}", "features": {**numbers, "signup_date": unreadable}} for i in range(300)]
    assert len(json.dumps({"accounts": accounts})) > SMALL_BODY_BYTES
    batch = client.post("/score", json={"accounts": accounts})
    assert batch.status_code == 200, batch.text
    assert {a["churn_probability"] for a in batch.json()} == {answers[0].json()[0]["churn_probability"]}
    # in a column the model reads: a 422 naming it, as before
    bad = client.post("/score", json={"accounts": [{"account_id": "030144", "features": {
        **base, "signup_date": unreadable, "monthly_charges": unreadable}}]})
    assert bad.status_code == 422, bad.text
    said = bad.json()["detail"]
    assert f"accounts[0].features.monthly_charges: {unreadable!r} does not read as a number as training read this " \
           "column" in said
    assert "signup_date" not in said


def test_score_table_reads_categories_in_another_case_for_scores_warnings_and_stored_rows(home, tmp_path):
    """The second review: `score --table` fixed the case of categories for the scores only; the stored rows (the
    waterfalls, `explain`) and the warnings read the file's spelling (10 false "not seen in training" lines)."""
    import shutil

    from core.settings import Settings
    from core.store import feature_rows
    from serving.batch import score_table_rows
    from serving.service import load_scorer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHURNWATCH_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        bundle = load_scorer().bundle
    frame = pd.read_csv(home.parent / "current.csv", dtype=str)
    cased = frame.assign(**{c: frame[c].str.upper() for c in ("contract", "partner", "payment_method")})
    runs = {}
    for name, table in (("as is", frame), ("cased", cased)):
        path, store = tmp_path / f"{name}.csv", tmp_path / f"{name}.duckdb"
        table.to_csv(path, index=False)
        shutil.copy(home / "store.duckdb", store)
        said: list[str] = []
        day, history, _ = score_table_rows(path, "customer_id", Settings(), store, bundle, "1", dt.date(2026, 3, 31),
                                           warn=said.append)
        stored = feature_rows(store, True, day, ["030144"])
        runs[name] = (history.set_index("account_id")["churn_probability"], said, stored)
    pd.testing.assert_series_equal(runs["as is"][0], runs["cased"][0])
    assert not [w for w in runs["cased"][1] if "not seen in training" in w]
    assert runs["cased"][2]["contract"].tolist() == runs["as is"][2]["contract"].tolist()  # the trained spelling


def test_score_table_reads_the_model_s_columns_and_ignores_a_left_out_one(home, monkeypatch):
    """``score --table`` as ``/score`` (the review of p52's fix): the sign-up date training left out as a repeat
    may be absent from next month's file or unreadable there; the model's own columns are read as before."""
    from training.own_table import TableError, read_scoring_table

    for key in ("CHURNWATCH_STORE", "CHURNWATCH_MODEL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CHURNWATCH_HOME", str(home))
    bundle = load_scorer().bundle
    assert "signup_date" in bundle.catalogue.names and "signup_date" not in bundle.frame.names
    current = pd.read_csv(home.parent / "current.csv", dtype=str)
    as_of = dt.date.fromisoformat(AS_OF)

    def read(frame, name):
        frame.to_csv(home.parent / name, index=False)
        return read_scoring_table(home.parent / name, "customer_id", bundle.catalogue, as_of=as_of,
                                  used=bundle.frame.names).rows

    base = read(current, "as_is.csv")
    for variant in (current.drop(columns=["signup_date"]), current.assign(signup_date="2025年13月45日")):
        rows = read(variant, "variant.csv")
        pd.testing.assert_frame_equal(rows[["account_id", *bundle.frame.names]],
                                      base[["account_id", *bundle.frame.names]])
        assert rows["signup_date"].isna().all()
    with pytest.raises(TableError, match="the model needs column"):  # a column the model reads is still needed
        read(current.drop(columns=[bundle.frame.names[0]]), "variant.csv")
