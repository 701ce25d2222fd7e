"""The batch's faster paths (issue 14, the batch of 1,000 in-process) give the answers of the plain ones:
request checks read per shape of the feature objects, the API's reasons built by ``explain(public=True)``,
the coverage's names per distinct row, and the garbage collector paused around a batch."""

from __future__ import annotations

import gc
import math

import numpy as np
import pandas as pd
import pytest

from features.spec import build_catalogue
from serving.api import request_models
from serving.coverage import names_of
from serving.scoring import (
    PAUSE_COLLECTOR_ROWS,
    RequestError,
    _accounts_adapter,
    _checks,
    feature_rows,
    paused_collector,
    plain_rows,
    public_reason,
    validate_features,
)

CATALOGUE = build_catalogue(["login", "export"])
NUMBERS = [f for f in CATALOGUE.features if f.type != "category"]


def shaped_items(n: int = 60) -> list[dict]:
    """Accounts as a platform sends them: a few shapes (the same names in the same order), some
    values null, every category given, one shape in another order, one account with no features."""
    rng = np.random.default_rng(5)
    left_out = [set(), {NUMBERS[0].name, NUMBERS[3].name}, {NUMBERS[5].name}]
    out = []
    for i in range(n):
        feats: dict[str, object] = {}
        for f in CATALOGUE.features:
            if f.name in left_out[i % 3]:
                continue
            if f.type == "category":
                feats[f.name] = ["a", "b", "中文", None][i % 4]
            elif i % 5 == 0 and f is NUMBERS[2]:
                feats[f.name] = None
            else:
                lo, hi = f.valid_range
                lo = 0.0 if lo is None else lo
                v = float(rng.uniform(lo, lo + 50 if hi is None else hi))
                feats[f.name] = int(round(v)) if f.type == "int" else v
        if i % 7 == 3:
            feats = dict(reversed(list(feats.items())))
        out.append({"account_id": f"acc-{i}", "features": feats})
    out.append({"account_id": "empty", "features": {}})
    out.append({"account_id": "absent"})
    return out


def slow_rows(items: list[dict]):
    return feature_rows(_accounts_adapter(request_models(CATALOGUE).account).validate_python(items), CATALOGUE)


def same_rows(fast, slow) -> None:
    assert list(fast.account_ids) == list(slow.account_ids)
    assert fast.numeric_names == slow.numeric_names
    assert np.array_equal(fast.numeric, slow.numeric, equal_nan=True)
    assert {c: list(v) for c, v in fast.labels.items()} == {c: list(v) for c, v in slow.labels.items()}


def test_shaped_items_give_the_rows_pydantic_gives_and_their_shapes_are_remembered():
    items = shaped_items()
    fast = plain_rows(items, CATALOGUE)
    assert fast is not None
    same_rows(fast, slow_rows(items))
    assert len({tuple(it.get("features", {})) for it in items}) <= len(_checks(CATALOGUE).shapes)
    same_rows(plain_rows(items, CATALOGUE), slow_rows(items))  # again, from the remembered shapes
    assert validate_features(items[:1], CATALOGUE).numeric.shape == (1, len(NUMBERS))


@pytest.mark.parametrize("change", [
    lambda f: f.__setitem__(NUMBERS[1].name, True),  # a boolean is no number
    lambda f: f.__setitem__(NUMBERS[1].name, "3"),  # nor a string
    lambda f: f.__setitem__(NUMBERS[1].name, math.nan),  # a NaN sent as a number, not a null
    lambda f: f.__setitem__(NUMBERS[1].name, 10 ** 400),  # beyond a float
    lambda f: f.__setitem__(NUMBERS[1].name, -1e9),  # below its range
    lambda f: f.__setitem__(CATALOGUE.categorical[0], 3),  # a category is a string
    lambda f: f.__setitem__(CATALOGUE.categorical[0], "x" * 201),
    lambda f: f.__setitem__("no_such_feature", 1.0),
])
def test_one_bad_value_among_shaped_items_is_refused_with_pydantics_words(change):
    items = shaped_items(30)
    change(items[12]["features"])
    assert plain_rows(items, CATALOGUE) is None
    with pytest.raises(RequestError) as err:
        validate_features(items, CATALOGUE)
    assert "accounts[12]" in str(err.value)


def test_names_of_each_row_are_its_own_list():
    rng = np.random.default_rng(1)
    mask = rng.random((50, 13)) < 0.5
    mask[10:30] = mask[0]  # repeated rows share a pattern
    names = np.array([f"f{j}" for j in range(13)], dtype=object)
    got = names_of(mask, names)
    assert got == [names[row].tolist() for row in mask]
    got[10].append("changed")
    assert got[11] == names[mask[11]].tolist()  # a copy per row: changing one changes no other
    assert names_of(mask[:3], names) == [names[row].tolist() for row in mask[:3]]
    assert names_of(np.zeros((20, 0), dtype=bool), names[:0]) == [[] for _ in range(20)]


def test_the_collector_is_paused_inside_and_on_again_after_even_after_an_error():
    assert gc.isenabled()
    with paused_collector():
        assert not gc.isenabled()
        with paused_collector():  # nested: the outer block turns it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), paused_collector():
        raise ValueError("boom")
    assert gc.isenabled()
    with paused_collector(pause=False):
        assert gc.isenabled()
    gc.disable()
    try:
        with paused_collector():
            pass
        assert not gc.isenabled()  # off before: left off
    finally:
        gc.enable()


@pytest.fixture(scope="module")
def scorer(store_scorer):
    return store_scorer


@pytest.fixture(scope="module")
def snapshot_rows(scorer):
    from core.store import read_snapshots

    rows = read_snapshots(scorer.store)
    return rows[rows["as_of"] == rows["as_of"].max()].head(120).reset_index(drop=True)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_public_reasons_are_the_reasons_of_explain_as_the_api_words_them(scorer, snapshot_rows, lang):
    from training.reasons import contributions

    bundle = scorer.bundle
    contribs = contributions(bundle.booster, bundle.frame.matrix(snapshot_rows))
    plain = bundle.reasons.explain(contribs, snapshot_rows, lang)
    public = bundle.reasons.explain(contribs, snapshot_rows, lang, public=True)
    assert sum(len(e["reasons"]) + len(e["strengths"]) for e in plain) > len(plain)  # something to compare
    for p, q in zip(plain, public):
        for side in ("reasons", "strengths"):
            assert q[side] == [public_reason(item) for item in p[side]]
            assert [list(item) for item in q[side]] == [["signal", "text", "contribution", "feature", "value"]] * len(
                q[side])


def test_a_batch_gives_each_accounts_answer_alone_and_leaves_the_collector_on(scorer, snapshot_rows):
    names = scorer.bundle.catalogue.names
    accounts = []
    for _, r in snapshot_rows.iterrows():
        feats = {n: (r[n] if isinstance(r[n], str) else float(r[n])) for n in names
                 if not pd.isna(r[n])}
        accounts.append({"account_id": r["account_id"], "features": feats})
    assert len(accounts) >= PAUSE_COLLECTOR_ROWS
    batch = scorer.results(validate_features(accounts, scorer.bundle.catalogue), "zh-CN")
    assert gc.isenabled()
    alone = [scorer.results(validate_features([a], scorer.bundle.catalogue), "zh-CN")[0] for a in accounts]
    # the probability may differ in its last bit between one row and many (so it did before these paths)
    assert [r["churn_probability"] for r in batch] == pytest.approx([r["churn_probability"] for r in alone],
                                                                    rel=1e-12)
    assert [{**r, "churn_probability": 0} for r in batch] == [{**r, "churn_probability": 0} for r in alone]
    assert any(r.get("reasons") for r in batch)


def test_a_feature_object_with_names_the_catalogue_does_not_know_is_not_remembered():
    """The remembered shapes hold catalogue names only: a client's own keys (up to the body limit
    in size) are refused and forgotten, so 2,048 such requests cannot pin their bodies in memory."""
    checks = _checks(CATALOGUE)
    big = "k" * 100_000
    for i in range(5):
        items = [{"account_id": "a", "features": {NUMBERS[0].name: 1.0, f"{big}{i}": 1.0}}]
        assert plain_rows(items, CATALOGUE) is None
        with pytest.raises(RequestError):
            validate_features(items, CATALOGUE)
    assert all(set(names) <= set(CATALOGUE.names) for names in checks.shapes)
    assert not any(big in n for names in checks.shapes for n in names)
