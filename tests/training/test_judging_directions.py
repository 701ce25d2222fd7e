"""Issue 12 item 6: the directions the trees are judged with come only from rows a fold may fit on.

On a short history the trees get monotone directions learned from the training rows for the
features the catalogue leaves open (``learned_directions``). Learned on ALL training rows they
have seen the labels of the rows the time-split folds judge (the later dates), so a relation
that exists only on those dates hands the trees its direction and their validation ROC-AUC is
optimistic. Here ``late`` relates to churn only on the judged (later) training dates; on the
earlier dates churn is U-shaped in it (no direction). The trees must be judged without that
direction (each fold's from its own fitting rows), and the final fit may take it from all rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from features.spec import Catalogue, FeatureSpec
from training.model import FeatureFrame
from training.selection import cross_fit_folds, fold_directions, grouped_folds, learned_directions, select_model
from training.train import PARAM_CAP, capped_list, fit_and_evaluate, params_of

FIRST = dt.date(2025, 9, 1)


def _catalogue() -> Catalogue:
    def spec(name: str, direction: int) -> FeatureSpec:
        return FeatureSpec(name=name, group=name, type="float", unit="count", definition=name,
                           direction=direction, reason_en=name, reason_zh=name)

    return Catalogue(features=(spec("usage_30d", -1), spec("late", 0)), event_types=())


def _rows(accounts: int = 600, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """8 weekly training dates (the time-split folds judge the latest 4), 3 test dates 13 weeks on.
    ``late``: U-shaped churn on the first 4 dates, rising churn from the 5th on (and on the test dates)."""
    rng = np.random.default_rng(seed)
    level = rng.normal(size=accounts)
    dates = [FIRST + dt.timedelta(days=7 * i) for i in (*range(8), 21, 22, 23)]
    parts = []
    for i, day in enumerate(dates):
        usage = level + rng.normal(scale=0.5, size=accounts)
        late = rng.normal(size=accounts)
        shape = 1.2 * (late**2 - 1) if i < 4 else 1.6 * late
        logit = -2.6 - 1.0 * usage + shape
        parts.append(pd.DataFrame({
            "account_id": [f"a{j:04d}" for j in range(accounts)], "as_of": pd.Timestamp(day),
            "usage_30d": np.round(np.exp(1.5 + 0.5 * usage)), "late": late,
            "churn_label": (rng.random(accounts) < expit(logit)).astype(int), "training": i < 8}))
    rows = pd.concat(parts, ignore_index=True)
    return rows[rows["training"]].drop(columns="training"), rows[~rows["training"]].drop(columns="training")


def test_fold_directions_come_from_the_fitting_rows_only():
    train, _ = _rows()
    X, y, acc = train[["usage_30d", "late"]], train["churn_label"].to_numpy(), train["account_id"].to_numpy()
    folds, positions, _ = cross_fit_folds(X, y, acc, train["as_of"].to_numpy(), k=4)
    assert len(positions) < len(y)  # time-split: only the later dates are judged
    # on all training rows the later dates' relation is clear: a learned direction
    assert learned_directions(X, y, acc, ["usage_30d", "late"], [], {"usage_30d": -1}) == {"late": 1}
    per_fold = fold_directions(folds, acc, ["usage_30d", "late"], [], {"usage_30d": -1}, [-1, 0])
    assert per_fold == [{}] * len(folds)  # the earlier dates show no direction: none while judging
    assert all(f.constraints == [-1, 0] for f in folds)
    # a direction clear on a fold's own fitting rows is taken (the contract is unchanged)
    both = fold_directions(folds, acc, ["usage_30d", "late"], [], {}, [0, 0])
    assert all(d == {"usage_30d": -1} for d in both) and all(f.constraints == [-1, 0] for f in folds)


@pytest.mark.slow
def test_the_trees_are_judged_without_directions_learned_from_the_judged_rows(tmp_path):
    train, test = _rows()
    said: list[str] = []
    result = fit_and_evaluate(train, None, None, None, test, _catalogue(), tmp_path, seed=0, rule_baseline=False,
                              progress=said.append)
    selection = result.training["selection"]
    assert selection["validation"].startswith("4 account-grouped folds split in time"), selection["validation"]
    assert selection["learned_directions"] == {"late": 1}  # the final fit: from all training rows
    assert selection["judging_directions"] == [{}, {}, {}, {}]  # judging: from each fold's fitting rows
    assert any("while judging, each fold's from its own fitting rows: none" in m for m in said), said
    params = params_of(result)
    assert (params["directions_final"], params["directions_judging_differ"]) == ("late +", "late 0000")  # MLflow

    # the trees' validation scores are those of trees judged without the direction of `late`, not
    # those of trees given the direction learned on every training row (judged rows included)
    frame = FeatureFrame.from_catalogue(_catalogue()).fit(train)
    X, y, acc = frame.transform(train), train["churn_label"].to_numpy(), train["account_id"].to_numpy()
    scores = {}
    for kind, constraints in (("honest", [-1, 0]), ("peeked", [-1, 1])):
        folds, positions, _ = cross_fit_folds(X, y, acc, train["as_of"].to_numpy(), k=4)
        scores[kind] = select_model(folds, len(positions), frame.names, [], {"usage_30d": -1, "late": 0},
                                    constraints, seed=0, groups=acc[positions]).scores
    trees = ("lgbm_default", "lgbm_regularised", "lgbm_shallow")
    for name in trees:
        assert selection["validation_roc_auc"][name] == pytest.approx(scores["honest"][name], abs=1e-9), name
    # the direction from the judged rows would have flattered the trees on them
    assert scores["peeked"]["lgbm_default"] - scores["honest"]["lgbm_default"] > 0.03, scores  # 0.796 vs 0.742
    # calibration's cross-fitted scores are made like the final model: each account-grouped fold's trees
    # take the directions of that fold's own fitting rows, not those of all rows (held-out labels included)
    cal_folds = grouped_folds(X, y, acc, k=4)
    expected = [learned_directions(f.X_fit, f.y_fit, acc[f.fit_rows], frame.names, [], {"usage_30d": -1, "late": 0})
                for f in cal_folds]
    assert result.training["selection"]["calibration_directions"] == expected
    # the registered trees keep the direction learned from all training rows
    trees_of = getattr(result.bundle.booster, "booster", result.bundle.booster)
    assert list(trees_of.params["monotone_constraints"]) == [-1, 1]


def test_mlflow_lists_are_cut_at_a_whole_item_and_say_how_many_more():
    assert capped_list([]) == "none"
    assert capped_list(["a +", "b -"]) == "a +, b -"
    items = [f"feature_with_a_long_name_{i:04d} +" for i in range(400)]  # ~12,000 characters
    text = capped_list(items)
    assert len(text) <= PARAM_CAP
    kept, rest = text.split(" ... and ")
    assert kept.split(", ") == items[:len(kept.split(", "))]  # whole items, in order
    assert rest == f"{400 - len(kept.split(', '))} more (training/selection_calibration_dropped.json)"
