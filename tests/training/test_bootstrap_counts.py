"""The bootstrap's resamples as row counts (``training.bootstrap``): a resample's ROC-AUC and PR-AUC from
counts over the distinct scores are scikit-learn's values on the resampled rows themselves, ties included,
and the counts are the draws of the index resamples (same generator, same resamples)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from training.bootstrap import Ranked, resample_counts, resamples


@pytest.mark.parametrize("grouped", [False, True])
def test_counts_give_sklearn_s_values_on_the_resampled_rows(grouped):
    rng = np.random.default_rng(5)
    n = 400
    y = (rng.random(n) < 0.15).astype(float)
    s = np.round(rng.normal(size=n) + y, 1)  # many ties
    groups = np.repeat(np.arange(n // 4), 4).astype(str)[rng.permutation(n)] if grouped else None
    ranked = Ranked(s)
    draws = zip(resamples(n, groups, 40, np.random.default_rng(9)),
                resample_counts(n, groups, 40, np.random.default_rng(9)), strict=True)
    checked = 0
    for idx, counts in draws:
        assert (np.bincount(idx, minlength=n) == counts).all()  # the same resample
        if not 0 < y[idx].sum() < idx.size:
            continue
        assert ranked.roc_auc(y, counts) == pytest.approx(roc_auc_score(y[idx], s[idx]), abs=1e-12)
        assert ranked.average_precision(y, counts) == pytest.approx(average_precision_score(y[idx], s[idx]),
                                                                    abs=1e-12)
        checked += 1
    assert checked >= 35


def test_a_score_absent_from_the_resample_is_no_threshold():
    y = np.array([1.0, 0.0, 1.0, 0.0])
    s = np.array([0.9, 0.8, 0.3, 0.1])
    counts = np.array([0, 2, 1, 1])  # the top score not drawn: the first threshold is 0.8, all retained
    idx = np.repeat(np.arange(4), counts)
    assert Ranked(s).average_precision(y, counts) == pytest.approx(average_precision_score(y[idx], s[idx]))
    assert Ranked(s).roc_auc(y, counts) == pytest.approx(roc_auc_score(y[idx], s[idx]))
