"""How the model's ROC-AUC stands against a baseline, in words. A probe's Stripe export printed "met"
for a model 0.0015 below its logistic baseline (inside the interval): the acceptance bar is "at least
the best baseline's", so the words say whether the point estimate is at least the baseline's or below
it within the interval (a tie, not a lead)."""

from __future__ import annotations

import numpy as np
import pytest

from training.bootstrap import gap, paired_bootstrap, standing


@pytest.mark.parametrize("diff, lo, hi, verdict, words", [
    (-0.0015, -0.0096, 0.0064, "met",
     "below it by 0.0015 within the interval: a tie, not a lead (at least its ROC-AUC: not met)"),
    (0.0080, -0.0100, 0.0230, "met", "at least its ROC-AUC, within the interval"),
    (0.0263, 0.0103, 0.0383, "met", "ahead of it beyond the interval"),
    (-0.0270, -0.0500, -0.0040, "not met", "below it by 0.0270 beyond the interval"),
    # probe p58: a tie the four decimals hid ("below it by 0.0000 ... not met")
    (-0.0000042, -0.0031, 0.0030, "met",
     "below it by 4.2e-06 within the interval: a tie, not a lead (at least its ROC-AUC: not met)"),
])
def test_the_words_follow_the_point_estimate_and_the_interval(diff, lo, hi, verdict, words):
    assert standing({"roc_auc_diff": diff, "roc_auc_lo": lo, "roc_auc_hi": hi}) == {"verdict": verdict,
                                                                                  "standing": words}


def test_a_model_worse_than_its_baseline_is_said_to_be_below_it():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.2
    good = y + rng.normal(0, 0.8, 2000)
    worse = y + rng.normal(0, 1.6, 2000)
    said = standing(paired_bootstrap(y, worse, good, n_boot=200))
    assert said["verdict"] == "not met" and said["standing"].endswith("beyond the interval")
    assert said["standing"].startswith("below it by ")


def test_a_gap_hidden_by_four_decimals_is_shown():
    assert gap(-0.0000042) == "-4.2e-06" and gap(0.00003, sign=False) == "3.0e-05"
    assert gap(0.0) == "+0.0000" and gap(-0.0123) == "-0.0123" and gap(0.0123, sign=False) == "0.0123"
