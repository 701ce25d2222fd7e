"""The table TreeSHAP (``training/treeshap.py``) gives LightGBM's ``pred_contrib`` values, so the
reasons built on it are the same (issue 14 item 4): random models with every kind of split, a
blend, the fallbacks, and the shared demo model's test block."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from training import treeshap
from training.blend import BlendedModel, LinearPart
from training.reasons import contributions
from training.treeshap import TreeTables, tables_for, tree_contributions

PARAMS = [
    {"num_leaves": 31, "min_data_in_leaf": 5, "max_cat_to_onehot": 4},  # category sets (bitsets)
    {"num_leaves": 15, "zero_as_missing": True, "max_cat_to_onehot": 64},  # zero = missing, one-hot categories
    {"num_leaves": 63, "min_data_in_leaf": 2, "max_depth": 15},  # deep trees, one feature split many times
    {"num_leaves": 7, "use_missing": False},  # missing type None: NaN goes as 0
]


def _data(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 6))
    X[:, 3] = rng.integers(0, 40, n)
    X[::7, 0] = np.nan
    X[::5, 3] = np.nan
    X[::11, 4] = 0.0
    signal = X[:, 1] + np.isin(X[:, 3], [2, 5, 33]) + np.nan_to_num(X[:, 0]) + X[:, 4] * (X[:, 5] > 0.5)
    return X, (signal + rng.normal(0, 0.3, n) > 1.3).astype(int)


def _edge_rows(X: np.ndarray) -> np.ndarray:
    """Rows with unseen, negative, huge and missing categories, NaN and exact zeros."""
    out = X[:8].copy()
    out[:6, 3] = [-1, 100, np.nan, 7, 1e6, 39]
    out[6] = np.nan
    out[7] = 0.0
    return out


@pytest.mark.parametrize("params", PARAMS)
def test_values_equal_pred_contrib_for_every_kind_of_split(params):
    X, y = _data()
    booster = lgb.train({"verbose": -1, "seed": 1, **params}, lgb.Dataset(X, y, categorical_feature=[3]), 25)
    rows = np.vstack([X, _edge_rows(X)])
    expected = booster.predict(rows, pred_contrib=True)
    got = TreeTables(booster).contributions(rows)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.sum(axis=1), booster.predict(rows, raw_score=True), rtol=0, atol=1e-9)
    np.testing.assert_allclose(TreeTables(booster).contributions(rows[:1]), expected[:1], rtol=0, atol=1e-9)


def test_a_model_read_back_from_its_text_and_single_leaf_trees():
    X, y = _data(seed=3)
    booster = lgb.train({"verbose": -1, "num_leaves": 4, "min_data_in_leaf": 400}, lgb.Dataset(X, y), 6)
    again = lgb.Booster(model_str=booster.model_to_string())
    np.testing.assert_allclose(tree_contributions(again, X), again.predict(X, pred_contrib=True), atol=1e-9)
    stumps = lgb.train({"verbose": -1, "min_data_in_leaf": 10_000}, lgb.Dataset(X, y), 3)  # leaves only
    np.testing.assert_allclose(tree_contributions(stumps, X), stumps.predict(X, pred_contrib=True), atol=1e-12)


def test_the_blend_adds_its_linear_part_to_the_same_tree_values():
    X, y = _data(seed=5)
    booster = lgb.train({"verbose": -1, "num_leaves": 15}, lgb.Dataset(X, y, categorical_feature=[3]), 20)
    names = [f"x{j}" for j in range(6)]
    linear = LinearPart(names, ["x3"], {"x1": 1}).fit(X, y)
    blend = BlendedModel(booster, linear, 0.6)
    expected = 0.6 * booster.predict(X, pred_contrib=True) + 0.4 * linear.contributions(X)
    np.testing.assert_allclose(blend.predict(X, pred_contrib=True), expected, rtol=0, atol=1e-9)


def test_tables_too_large_or_several_classes_fall_back_to_pred_contrib(monkeypatch):
    X, y = _data(seed=7)
    booster = lgb.train({"verbose": -1, "num_leaves": 15}, lgb.Dataset(X, y), 5)
    monkeypatch.setattr(treeshap, "MAX_TABLE", 8)
    assert tables_for(booster) is None
    np.testing.assert_array_equal(tree_contributions(booster, X), booster.predict(X, pred_contrib=True))
    three = lgb.train({"verbose": -1, "objective": "multiclass", "num_class": 3, "num_leaves": 4},
                      lgb.Dataset(X, (X[:, 1] * 3).astype(int)), 3)
    assert tables_for(three) is None


def test_a_matrix_of_the_wrong_width_is_refused():
    X, y = _data(seed=8)
    booster = lgb.train({"verbose": -1, "num_leaves": 4}, lgb.Dataset(X, y), 2)
    with pytest.raises(ValueError, match="6 features"):
        TreeTables(booster).contributions(X[:, :5])


@pytest.fixture(scope="module")
def demo(trained_demo):
    """A small demo model and its test block: the session's shared 300 x 24 build (tests/conftest.py), read only."""
    from training.promotion import test_block

    bundle = trained_demo(300, 24, 6).bundle
    return bundle, test_block(bundle).reset_index(drop=True)


def test_demo_test_block_same_values_and_same_reasons(demo):
    bundle, rows = demo
    X = bundle.frame.matrix(rows)
    model = bundle.booster
    trees = model.booster if isinstance(model, BlendedModel) else model
    assert tables_for(trees) is not None
    if isinstance(model, BlendedModel):  # LightGBM's own values for the trees, plus the linear part
        reference = model.weight * trees.predict(X, pred_contrib=True) + (1 - model.weight) * \
            model.linear.contributions(X)
    else:
        reference = model.predict(X, pred_contrib=True)
    fast = contributions(model, X)
    assert np.abs(fast - reference).max() <= 1e-6
    for lang in ("en", "zh-CN"):
        old = bundle.reasons.explain(reference, rows, lang=lang)
        new = bundle.reasons.explain(fast, rows, lang=lang)
        for a, b in zip(old, new):
            for side in ("reasons", "strengths"):
                assert [(r["feature"], r["signal"], r["text"]) for r in a[side]] == \
                       [(r["feature"], r["signal"], r["text"]) for r in b[side]]
                np.testing.assert_allclose([r["contribution"] for r in a[side]],
                                           [r["contribution"] for r in b[side]], rtol=0, atol=1e-6)
    assert sum(len(e["reasons"]) for e in new) > 0
