"""Issue 12 item 6: the model choice is noise-aware (one-standard-error rule), so a flexible
candidate that wins the validation rows by chance does not displace a simpler one."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from training.selection import noise_aware_choice, simplicity


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.random(n) < expit(-2.5 + 1.2 * signal)).astype(int)
    return signal, y, np.arange(n) // 3  # three rows per account


def test_simplicity_orders_logistic_then_blends_by_weight_then_trees():
    names = ["lgbm_default", "blend_w0.5", "lgbm_shallow", "blend_w0", "lgbm_regularised", "blend_w0.9"]
    assert sorted(names, key=simplicity) == ["blend_w0", "blend_w0.5", "blend_w0.9", "lgbm_shallow",
                                             "lgbm_regularised", "lgbm_default"]


def test_a_chance_win_of_the_trees_goes_to_the_simpler_candidate():
    """Two candidates equally good in truth: whenever the trees win the validation rows by less
    than a standard error, the logistic regression is chosen; most of their wins are such."""
    signal, y, groups = _rows(2000, seed=1)
    simple = signal + np.random.default_rng(100).normal(size=signal.size)
    outcomes = []
    for k in range(16):
        trees = signal + np.random.default_rng(k).normal(size=signal.size)
        raws = {"blend_w0": simple, "lgbm_default": trees}
        chosen, best, noise = noise_aware_choice(y, raws, list(raws), groups, seed=0, n_boot=100)
        assert noise[best] == {"gap": 0.0, "se": 0.0}
        if best != "lgbm_default":
            assert chosen == "blend_w0"
            continue
        within = noise["blend_w0"]["gap"] <= noise["blend_w0"]["se"]
        assert chosen == ("blend_w0" if within else "lgbm_default")
        outcomes.append(within)
    assert len(outcomes) >= 3 and sum(outcomes) > len(outcomes) / 2, outcomes


def test_a_real_gain_of_the_trees_is_kept():
    signal, y, groups = _rows(3000, seed=2)
    rng = np.random.default_rng(3)
    raws = {"blend_w0": signal + rng.normal(scale=2.0, size=signal.size),  # a much weaker ranking
            "blend_w0.5": signal + rng.normal(scale=1.0, size=signal.size),
            "lgbm_shallow": signal + rng.normal(scale=0.2, size=signal.size)}
    chosen, best, noise = noise_aware_choice(y, raws, list(raws), groups, seed=0)
    assert chosen == best == "lgbm_shallow"
    assert noise["blend_w0"]["gap"] > noise["blend_w0"]["se"] > 0
    assert noise["blend_w0.5"]["gap"] > noise["blend_w0.5"]["se"] > 0


def test_the_rule_width_decides_between_close_candidates():
    signal, y, groups = _rows(2000, seed=4)
    rng = np.random.default_rng(5)
    raws = {"blend_w0": signal + rng.normal(scale=1.2, size=signal.size),
            "lgbm_default": signal + rng.normal(scale=0.9, size=signal.size)}
    _, best, noise = noise_aware_choice(y, raws, list(raws), groups, seed=0)
    assert best == "lgbm_default"
    ratio = noise["blend_w0"]["gap"] / noise["blend_w0"]["se"]
    wide, _, _ = noise_aware_choice(y, raws, list(raws), groups, seed=0, se_rule=ratio + 0.5)
    narrow, _, _ = noise_aware_choice(y, raws, list(raws), groups, seed=0, se_rule=max(ratio - 0.5, 0.0))
    assert (wide, narrow) == ("blend_w0", "lgbm_default")
