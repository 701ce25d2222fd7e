"""The renewal calendar as a baseline (a probe's annual-contract export: "term ends within 60 days" alone
ranked the test block at ROC-AUC 0.853, above the logistic baseline churnwatch showed, 0.837, and nothing
said so): accounts ranked by how soon their term ends, beside the model's ROC-AUC within the renewal
window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.training.books import train_two_feature_book
from training.baselines import renewal_calendar


def test_sooner_renewals_rank_higher_and_open_ended_terms_last():
    rows = pd.DataFrame({"days_to_term_end": [300.0, 5.0, None, 40.0, 0.0]})
    score = renewal_calendar(rows)
    assert list(np.argsort(-score)) == [4, 1, 3, 0, 2]
    assert score[2] == 0.0 and ((score > 0) & (score <= 1)).sum() == 4


def test_no_calendar_without_term_ends_or_with_one_for_all():
    assert renewal_calendar(pd.DataFrame({"x": [1.0, 2.0]})) is None
    assert renewal_calendar(pd.DataFrame({"days_to_term_end": [None, None]})) is None
    assert renewal_calendar(pd.DataFrame({"days_to_term_end": [12.0, 12.0, 12.0]})) is None


@pytest.fixture(scope="module")
def annual(tmp_path_factory):
    """Annual contracts: churn only at a renewal within 60 days, more so for falling use."""
    rng = np.random.default_rng(3)
    accounts, dates = 500, pd.date_range("2024-01-01", periods=60, freq="W-MON")
    frames = []
    for i, day in enumerate(dates):
        phase = (np.arange(accounts) * 7 + i * 7) % 365
        days_left = 365 - phase
        use = rng.normal(0, 1, accounts)
        churn = (days_left <= 60) & (rng.random(accounts) < 1 / (1 + np.exp(1.5 + 1.2 * use)))
        frames.append(pd.DataFrame({"account_id": [f"a{k}" for k in range(accounts)], "as_of": day,
                                    "days_to_term_end": days_left.astype(float), "logins_30d": np.exp(use + 2),
                                    "churn_label": churn.astype(int), "labelled": True}))
    rows = pd.concat(frames, ignore_index=True)
    return train_two_feature_book(rows, "2023-10-01", "2025-06-01", tmp_path_factory.mktemp("annual"))


def test_training_compares_the_model_with_the_calendar_and_inside_the_window(annual):
    result, said = annual
    table = result.comparison.set_index("model")
    assert "renewal calendar" in table.index and np.isnan(table.loc["renewal calendar", "ece"])
    assert "renewal calendar" in result.metrics["vs_baselines"]
    window = result.metrics["renewal_window"]
    assert window["days"] == 90 and window["churned_outside"] == 0 and window["churned"] > 0
    assert any(m.startswith("within the renewal window (term ends within 90 days: ") for m in said)
    assert "baseline: the renewal calendar (accounts ranked by how soon their term ends)" in said
    assert result.training["unseen_renewals"] is None  # every annual term ends within the labelled dates
    assert not any("long terms" in m for m in said)
    model = result.comparison.loc[result.comparison["registered"], "roc_auc"].item()
    assert model > table.loc["renewal calendar", "roc_auc"] > 0.6
    assert 0.5 < window["roc_auc"] < model  # the calendar carries part of it
    from training.train import flat_metrics

    logged = flat_metrics(result)
    assert logged["calendar_roc_auc"] == table.loc["renewal calendar", "roc_auc"]
    assert logged["renewal_window_roc_auc"] == window["roc_auc"]
    assert logged["rule_roc_auc"] == table.loc["rule health score", "roc_auc"]  # each row under its own prefix
