"""Issue 12 item 6 on short histories: the model is chosen on folds split in time AND by account.

A short export is cross-fitted (no separate early-stopping block). Judged on account-grouped
folds over the same as-of dates as their fitting rows, a pattern tied to those dates looks
like signal: here a promotion cohort (signed up in one week) churns when its discount ends,
inside the label window of every training date. The trees find the cohort by its tenure on
each date (a band that moves a week per as-of date), other accounts of the same cohort on the
same dates confirm it, and the trees win the grouped folds by a wide margin; on the later test
dates the discount is over and the tenure band holds other accounts. Time-split folds (fit on
the earlier dates of some accounts, judge the later dates of the others) see the band move
away, so the simpler model with the stable usage signal is chosen.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from features.spec import Catalogue, FeatureSpec
from training.selection import cross_fit_folds, forward_folds, grouped_folds, learned_directions, select_model
from training.train import fit_and_evaluate

FIRST = dt.date(2025, 9, 1)


def _catalogue() -> Catalogue:
    def spec(name: str, unit: str, direction: int) -> FeatureSpec:
        return FeatureSpec(name=name, group="usage" if name.startswith("usage") else "profile", type="float",
                           unit=unit, definition=name, direction=direction, reason_en=name, reason_zh=name)

    return Catalogue(features=(spec("usage_30d", "count", -1), spec("tenure_days", "days", 0)), event_types=())


def _rows(accounts: int = 500, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows on 8 weekly dates, test rows on 4 weekly dates 13 weeks later; the promotion
    cohort (10% of accounts, signed up in one week) churns heavily on the training dates only."""
    rng = np.random.default_rng(seed)
    promo = rng.random(accounts) < 0.10
    signup = np.where(promo, -200 + rng.integers(0, 7, accounts), rng.integers(-400, -20, accounts))
    level = rng.normal(size=accounts)
    dates = [FIRST + dt.timedelta(days=7 * i) for i in range(8)] + \
            [FIRST + dt.timedelta(days=7 * i) for i in range(20, 24)]
    parts = []
    for i, day in enumerate(dates):
        usage = level + rng.normal(scale=0.5, size=accounts)
        training = i < 8
        logit = -3.2 - 0.9 * usage + (3.0 * promo if training else 0.0)
        parts.append(pd.DataFrame({
            "account_id": [f"a{j:04d}" for j in range(accounts)], "as_of": pd.Timestamp(day),
            "usage_30d": np.round(np.exp(1.5 + 0.5 * usage)), "tenure_days": (day - FIRST).days - signup,
            "churn_label": (rng.random(accounts) < expit(logit)).astype(int), "training": training}))
    rows = pd.concat(parts, ignore_index=True)
    return rows[rows["training"]].drop(columns="training"), rows[~rows["training"]].drop(columns="training")


def test_time_split_folds_are_account_disjoint_and_judge_only_later_dates():
    train, _ = _rows(accounts=120)
    X, y, acc = train[["usage_30d", "tenure_days"]], train["churn_label"].to_numpy(), train["account_id"].to_numpy()
    folds, positions = forward_folds(X, y, acc, train["as_of"].to_numpy(), k=4)
    as_of = train["as_of"].to_numpy()
    later = as_of >= np.datetime64("2025-09-29")  # the latest 4 of the 8 dates
    assert np.array_equal(positions, np.flatnonzero(later))
    judged = []
    for f in folds:
        fit_acc, val_acc = set(acc[f.X_fit.index]), set(acc[f.X_val.index])
        assert fit_acc and val_acc and not fit_acc & val_acc
        assert as_of[f.X_fit.index].max() < as_of[f.X_val.index].min()
        judged.append(f.val_index)
    pooled = np.sort(np.concatenate(judged))
    assert np.array_equal(pooled, np.arange(len(positions)))  # each later row judged exactly once
    assert set(acc[positions]) == set(acc)


def test_rows_without_dates_keep_account_grouped_folds_over_every_row():
    train, _ = _rows(accounts=120)
    X, y, acc = train[["usage_30d", "tenure_days"]], train["churn_label"].to_numpy(), train["account_id"].to_numpy()
    folds, positions, what = cross_fit_folds(X, y, acc, None, k=3)
    assert what == "3 folds of customers" and np.array_equal(positions, np.arange(len(y)))  # a flat table
    expected = grouped_folds(X, y, acc, k=3)
    assert [list(f.val_index) for f in folds] == [list(f.val_index) for f in expected]
    one_date = np.full(len(y), np.datetime64("2025-09-01"))  # a single date: no time split possible
    assert cross_fit_folds(X, y, acc, one_date, k=3)[2] == "3 account-grouped folds"
    _, _, timed = cross_fit_folds(X, y, acc, train["as_of"].to_numpy(), k=3)
    assert timed.startswith("3 account-grouped folds split in time")


def test_grouped_folds_fall_for_the_pattern_and_time_split_folds_do_not():
    train, _ = _rows(accounts=300)
    names = ["usage_30d", "tenure_days"]
    X, y, acc = train[names], train["churn_label"].to_numpy(), train["account_id"].to_numpy()
    chosen = {}
    for kind in ("grouped", "time split"):
        if kind == "grouped":
            folds, positions = grouped_folds(X, y, acc, k=4), np.arange(len(y))
        else:
            folds, positions, _ = cross_fit_folds(X, y, acc, train["as_of"].to_numpy(), k=4)
        selection = select_model(folds, len(positions), names, [], {}, [0, 0], seed=0, groups=acc[positions])
        chosen[kind] = (selection.chosen, selection.tree_weight, selection.scores)
    grouped, timed = chosen["grouped"], chosen["time split"]
    # grouped: the trees "see" the cohort (well above the logistic regression), so a tree-heavy blend wins
    assert grouped[2]["lgbm_shallow"] > grouped[2]["blend_w0"] + 0.015 and grouped[1] >= 0.5, grouped
    # time split: on the later dates the tenure band holds other accounts; the linear signal is chosen
    assert timed[2]["lgbm_shallow"] < timed[2]["blend_w0"] and timed[1] is not None and timed[1] <= 0.25, timed


@pytest.mark.slow
def test_a_pattern_of_the_training_dates_does_not_choose_the_trees(tmp_path):
    train, test = _rows(accounts=300)
    said: list[str] = []
    result = fit_and_evaluate(train, None, None, None, test, _catalogue(), tmp_path, seed=0, constrained=False,
                              rule_baseline=False, progress=said.append)
    selection = result.training["selection"]
    assert selection["validation"].startswith("4 account-grouped folds split in time"), selection["validation"]
    assert selection["tree_weight"] is not None and selection["tree_weight"] <= 0.25, selection
    scores = selection["validation_roc_auc"]
    assert scores["blend_w0"] >= max(scores["lgbm_default"], scores["lgbm_regularised"]) - 0.01, scores
    # the test dates: the chosen model does not lose to the run's logistic regression
    versus = result.metrics["vs_baselines"]["logistic"]
    assert versus["roc_auc_hi"] >= 0, versus
    assert any("for calibration" in m for m in said)  # calibration still cross-fits every training row


def test_directions_from_the_training_rows_only_where_clear_and_open():
    rng = np.random.default_rng(7)
    n = 3000
    groups = np.arange(n) // 3  # 1,000 accounts, three rows each
    age = rng.uniform(16, 70, n)
    y = (rng.random(n) < expit(-2.5 - 0.04 * (age - 40))).astype(int)
    X = pd.DataFrame({"age_days": age * 365, "noise": rng.normal(size=n), "logins": rng.poisson(3, n) + 0.0,
                      "tiers": pd.Categorical(rng.choice(["a", "b"], n))})
    learned = learned_directions(X, y, groups, list(X.columns), ["tiers"], {"logins": -1})
    assert learned == {"age_days": -1}  # noise stays open, logins keeps the catalogue's, tiers is a category
    few = learned_directions(X.iloc[:60], y[:60], groups[:60], list(X.columns), ["tiers"], {})
    assert "noise" not in few  # 20 accounts: nothing is clear


def test_time_split_folds_with_too_few_later_churners_fall_back_to_grouped_folds():
    """Judged rows with fewer than MIN_JUDGED_CHURNERS churners cannot rank the candidates (an AUC
    of a handful of positives, or none): the choice uses account-grouped folds and says why."""
    train, _ = _rows(accounts=120)
    X, acc = train[["usage_30d", "tenure_days"]], train["account_id"].to_numpy()
    as_of = train["as_of"].to_numpy()
    y = train["churn_label"].to_numpy().copy()
    y[as_of >= np.datetime64("2025-09-29")] = 0  # no churner on the later dates
    y[np.flatnonzero(as_of < np.datetime64("2025-09-29"))[:40]] = 1
    folds, positions, what = cross_fit_folds(X, y, acc, as_of, k=3)
    assert what.startswith("3 account-grouped folds (split in time, the later dates held fewer than 20 churners")
    assert np.array_equal(positions, np.arange(len(y)))
    assert [list(f.val_index) for f in folds] == [list(f.val_index) for f in grouped_folds(X, y, acc, k=3)]
