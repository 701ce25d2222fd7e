"""Request items checked with arrays (``serving.scoring.plain_rows``): the same rows as pydantic's
path for valid items, and every item pydantic refuses still refused with pydantic's words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.spec import build_catalogue
from serving.api import request_models
from serving.scoring import RequestError, _accounts_adapter, feature_rows, plain_rows, validate_features

CATALOGUE = build_catalogue(["login", "export"])


def valid_items(n: int = 40) -> list[dict]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        feats: dict[str, object] = {}
        for f in CATALOGUE.features:
            if rng.random() < 0.3:
                continue  # absent: missing
            if rng.random() < 0.1:
                feats[f.name] = None
            elif f.type == "category":
                feats[f.name] = ["a", "b", "中文"][i % 3]
            else:
                lo, hi = f.valid_range
                lo = 0.0 if lo is None else lo
                hi = lo + 50 if hi is None else hi
                v = float(rng.uniform(lo, hi))
                feats[f.name] = int(round(v)) if f.type == "int" and i % 2 else (float(round(v)) if f.type == "int"
                                                                                 else v)
        out.append({"account_id": f"acc-{i}", "features": feats} if i % 7 else {"account_id": f"acc-{i}"})
    return out


def test_valid_items_give_the_rows_pydantic_gives():
    items = valid_items()
    fast = plain_rows(items, CATALOGUE)
    assert fast is not None
    slow = feature_rows(_accounts_adapter(request_models(CATALOGUE).account).validate_python(items), CATALOGUE)
    assert list(fast.account_ids) == list(slow.account_ids)
    assert fast.numeric_names == slow.numeric_names
    assert np.array_equal(fast.numeric, slow.numeric, equal_nan=True)
    assert {c: list(v) for c, v in fast.labels.items()} == {c: list(v) for c, v in slow.labels.items()}
    assert validate_features(items, CATALOGUE).numeric.shape == (len(items), len(slow.numeric_names))


NUMERIC = next(f for f in CATALOGUE.features if f.type == "float" and f.valid_range[0] == 0)
WHOLE = next(f for f in CATALOGUE.features if f.type == "int" and f.valid_range[1] is not None)
CATEGORY = CATALOGUE.categorical[0]


@pytest.mark.parametrize("change, where", [
    (lambda it: it["features"].__setitem__(NUMERIC.name, -1.0), NUMERIC.name),  # below the range
    (lambda it: it["features"].__setitem__(WHOLE.name, WHOLE.valid_range[1] + 1), WHOLE.name),  # above
    (lambda it: it["features"].__setitem__(WHOLE.name, 1.5), WHOLE.name),  # not whole
    (lambda it: it["features"].__setitem__(NUMERIC.name, math.nan), NUMERIC.name),  # NaN, not null
    (lambda it: it["features"].__setitem__(NUMERIC.name, math.inf), NUMERIC.name),
    (lambda it: it["features"].__setitem__(NUMERIC.name, True), NUMERIC.name),  # a boolean is no number
    (lambda it: it["features"].__setitem__(NUMERIC.name, "3"), NUMERIC.name),  # nor a string
    (lambda it: it["features"].__setitem__(NUMERIC.name, 10 ** 400), NUMERIC.name),  # beyond a float
    (lambda it: it["features"].__setitem__(CATEGORY, 3), CATEGORY),  # a category is a string
    (lambda it: it["features"].__setitem__(CATEGORY, "x" * 201), CATEGORY),
    (lambda it: it["features"].__setitem__("no_such_feature", 1.0), "no_such_feature"),
    (lambda it: it.__setitem__("account_id", ""), "account_id"),
    (lambda it: it.__setitem__("account_id", 7), "account_id"),
    (lambda it: it.__setitem__("extra", 1), "extra"),
    (lambda it: it.__setitem__("features", None), "features"),
])
def test_every_invalid_item_is_refused_naming_the_field(change, where):
    items = valid_items(10)
    items[4] = {"account_id": "acc-4", "features": {}}
    change(items[4])
    assert plain_rows(items, CATALOGUE) is None
    with pytest.raises(RequestError) as err:
        validate_features(items, CATALOGUE)
    assert f"accounts[4].{where}" in str(err.value) or "accounts[4]" in str(err.value) and where in str(err.value)


def test_not_a_list_of_objects_goes_to_pydantic():
    for items in ([], [1], ["a"], [{"features": {}}]):
        assert plain_rows(items, CATALOGUE) is None
    with pytest.raises(RequestError):
        validate_features([{"features": {}}], CATALOGUE)


def test_a_table_models_ignored_columns_pass_both_paths_and_a_json_boolean_is_its_text():
    """A flat table's columns the model does not read (``Catalogue.ignored``) may be sent and are ignored, on the
    array path and pydantic's; a JSON ``true`` for a table's category is the text ``"true"`` (training's ``TRUE``
    reads so); a name the table never had is still refused, and a boolean is no number."""
    from dataclasses import replace

    from features.spec import Catalogue, FeatureSpec

    def spec(name: str, type_: str) -> FeatureSpec:
        return FeatureSpec(name=name, group=name, type=type_, unit="", definition=name, direction=0,
                           valid_range=(None, None) if type_ == "category" else (0.0, None), reason_en="",
                           reason_zh="", template="table_column", params={})

    table = Catalogue(features=(spec("Monthly Fee", "float"), spec("Autopay", "category")), event_types=(),
                      ignored={"Email": "personal data", "Customer ID": "the id column"})
    sent = [{"account_id": "c1", "features": {"Monthly Fee": 12.5, "Autopay": "TRUE", "Email": "a@b.c",
                                              "Customer ID": 7}}]
    fast = plain_rows(sent, table)
    assert fast is not None and fast.numeric.tolist() == [[12.5]] and fast.labels["Autopay"].tolist() == ["TRUE"]
    slow = feature_rows(_accounts_adapter(request_models(table).account).validate_python(sent), table)
    assert slow.numeric.tolist() == [[12.5]] and slow.labels["Autopay"].tolist() == ["TRUE"]
    as_bool = [{"account_id": "c1", "features": {"Monthly Fee": 12.5, "Autopay": True, "Email": None}}]
    assert plain_rows(as_bool, table) is None  # not the array path's: pydantic's turns it into the text
    assert validate_features(as_bool, table).labels["Autopay"].tolist() == ["true"]
    for bad, field in (({"Autopay": "TRUE", "Phone": "1"}, "Phone"), ({"Monthly Fee": True}, "Monthly Fee")):
        with pytest.raises(RequestError) as caught:
            validate_features([{"account_id": "c1", "features": bad}], table)
        assert f"accounts[0].features.{field}" in str(caught.value)
    snapshot = replace(table.features[1], template="profile")  # a snapshot model's category stays text only
    only = Catalogue(features=(snapshot,), event_types=())  # categories alone: no number column at all
    with pytest.raises(RequestError, match="features.Autopay"):
        validate_features([{"account_id": "c1", "features": {"Autopay": True}}], only)
    rows = plain_rows([{"account_id": "c1", "features": {"Autopay": "no"}}], only)  # was a ZeroDivisionError
    assert rows is not None and rows.numeric.shape == (1, 0) and rows.labels["Autopay"].tolist() == ["no"]


def test_names_pydantic_refuses_as_fields_are_held_under_an_alias():
    """A column such as ``_id`` or ``_fivetran_synced`` (Fivetran adds them to every synced table), or one named
    like a ``BaseModel`` attribute, as a feature or ignored: the request model builds, both paths read the row, and
    errors name the column as sent (the review of 2026-12-06: the service could not start)."""
    from features.spec import Catalogue, FeatureSpec

    def spec(name: str) -> FeatureSpec:
        return FeatureSpec(name=name, group=name, type="float", unit="", definition=name, direction=0,
                           valid_range=(0.0, None), reason_en="", reason_zh="", template="table_column", params={})

    table = Catalogue(features=(spec("fee"), spec("_score"), spec("copy")), event_types=(),
                      ignored={"_id": "the id column", "model_config": "free text", "_fivetran_synced": "one value"})
    row = {"fee": 1.5, "_score": 2.0, "copy": 3.0, "_id": "q", "model_config": "z", "_fivetran_synced": "2026"}
    assert plain_rows([{"account_id": "a", "features": row}], table).numeric.tolist() == [[1.5, 2.0, 3.0]]
    as_text = {**row, "_score": "2.0"}
    assert validate_features([{"account_id": "a", "features": as_text}], table).numeric.tolist() == [[1.5, 2.0, 3.0]]
    with pytest.raises(RequestError, match=r"features\._score: 'abc' does not read as a number"):
        validate_features([{"account_id": "a", "features": {**row, "_score": "abc"}}], table)
    with pytest.raises(RequestError, match=r"features\.aliased_field: Extra inputs"):  # the alias's own key is no name
        validate_features([{"account_id": "a", "features": {"aliased_field": 1.0}}], table)
    schema = request_models(table).features.model_json_schema()["properties"]
    assert {"fee", "_score", "copy", "_id", "model_config", "_fivetran_synced"} <= set(schema)


def test_a_table_rows_infinity_is_a_422_a_flags_boolean_is_1_and_errors_name_the_field_once():
    """p42 (2026-12-06): "Infinity" in a CRM row's number column was a 500 losing the batch; a JSON true for a 0/1
    flag was refused; a wrong type's error named pydantic's forms of the value ("Plan.function-after[...]")."""
    from features.spec import Catalogue, FeatureSpec

    def spec(name: str, unit: str = "value", type_: str = "float") -> FeatureSpec:
        return FeatureSpec(name=name, group=name, type=type_, unit=unit, definition=name, direction=0,
                           valid_range=(None, None), reason_en="", reason_zh="", template="table_column",
                           params={} if type_ == "category" else {"decimal": "point"})

    table = Catalogue(features=(spec("Seats Used"), spec("Autopay", "flag"), spec("Plan", type_="category")),
                      event_types=())
    for text in ("Infinity", "inf", "1e999", "-Infinity"):
        with pytest.raises(RequestError, match=rf"features\.Seats Used: '{text}' reads as -?inf: not a finite"):
            validate_features([{"account_id": "a", "features": {"Seats Used": text}}], table)
    rows = validate_features([{"account_id": "a", "features": {"Autopay": True, "Plan": False}},
                              {"account_id": "b", "features": {"Autopay": False, "Seats Used": "7"}}], table)
    assert np.allclose(rows.numeric, [[np.nan, 1.0], [7.0, 0.0]], equal_nan=True)
    assert rows.labels["Plan"].tolist() == ["false", None]
    with pytest.raises(RequestError) as caught:
        validate_features([{"account_id": "a", "features": {"Plan": 3, "Seats Used": [1]}}], table)
    said = str(caught.value)
    assert "features.Plan: Input should be a valid string, or Input should be a valid boolean" in said
    assert "function-after" not in said and "constrained" not in said and said.count("features.Seats Used:") == 1
