"""The remembered wording (``training.reason_text.WordCache``, issue 14 speed) gives ``word``'s
text for every feature kind, value, side and row context, however often a case repeats and in
whichever order the cases come: young accounts (the text names their age), changes on small
bases, nulls with and without their evidence, zero and minus zero, categories."""

from __future__ import annotations

import numpy as np
import pytest

from features.spec import build_catalogue
from training.reason_text import References, Row, WordCache, word

CATALOGUE = build_catalogue(["message", "key_contact_left"])
FEATURES = list(CATALOGUE.features)
NAMES = [f.name for f in FEATURES]
POSITION = {n: j for j, n in enumerate(NAMES)}
REFS = References(typical={"evt_message_90d": 14.0, "logins_30d": 9.0, "tickets_30d": 0.0, "seats": 20.0},
                  category_churn={"industry": {"software": [0.12, 400], "retail": [0.05, 300], "mining": [0.5, 4]}},
                  overall_churn=0.08)
INDUSTRIES = ["software", "retail", "mining", "unseen"]


def _value(spec, rng: np.random.Generator) -> object:
    """A value of ``spec`` drawn so that cases repeat: small whole numbers, a few ratios, nulls, zeros."""
    roll = rng.random()
    if roll < 0.12:
        return None
    if spec.type == "category":
        return INDUSTRIES[rng.integers(len(INDUSTRIES))]
    if roll < 0.2:
        return [0.0, -0.0, 1.0, 0][rng.integers(4)]
    if spec.unit == "ratio":
        return float(rng.choice([-1.0, -0.62, -0.004, 0.2, 0.5, 1.0, 1.7, 0.87]))
    return float(rng.integers(0, 40)) if rng.random() < 0.5 else int(rng.integers(0, 40))


def _rows(n: int, seed: int) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        row = [_value(f, rng) for f in FEATURES]
        row[POSITION["tenure_days"]] = [None, 3.0, 6, 25.0, 45.0, 61.0, 400.0][rng.integers(7)]
        rows.append(row)
    return rows


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_cache_words_every_case_as_word_does(lang):
    cache = WordCache(FEATURES, REFS, lang)
    checked = worded = 0
    for values in _rows(300, seed=11) * 2:  # every row twice: the second pass answers from the cache
        row = Row(values, POSITION)
        for j, spec in enumerate(FEATURES):
            for side in (+1, -1):
                expected = word(spec, values[j], side, row, REFS, lang)
                assert cache.word(j, values[j], side, row) == expected, (spec.name, values[j], side)
                assert cache.word(j, values[j], side, row, row.tenure_days()) == expected
                checked += 1
                worded += expected is not None
    assert checked == 2 * 300 * len(FEATURES) * 2
    assert worded > checked // 10  # the cases include plenty of worded ones, not only refusals


def test_the_row_context_is_part_of_the_case():
    cache = WordCache(FEATURES, REFS, "en")
    j = POSITION["evt_message_90d"]
    young, old = Row({"tenure_days": 25.0}), Row({"tenure_days": 400.0})
    assert cache.word(j, 1.0, +1, old) == "Only 1 'message' event in the last 90 days; a typical active account has 14"
    assert cache.word(j, 1.0, +1, young) == "1 'message' event in its first 25 days"
    assert cache.word(j, 1.0, +1, old).startswith("Only 1")  # the young account's text did not stick
    change = POSITION["evt_message_30d_change"]
    assert cache.word(change, -1.0, +1, Row({"evt_message_30d": 0, "evt_message_90d": 40})) == (
        "'message' events down 100% vs the previous 30 days")
    assert cache.word(change, -1.0, +1, Row({"evt_message_30d": 0, "evt_message_90d": 1})) is None  # tiny base
    null = POSITION["days_since_last_login"]
    assert cache.word(null, None, +1, old) == word(FEATURES[null], None, +1, old, REFS, "en")


def test_minus_zero_is_not_worded_as_zero():
    j = POSITION["payment_delay_change"]
    cache = WordCache(FEATURES, REFS, "en")
    row = Row({"tenure_days": 400.0})
    for value in (0.0, -0.0, 0, -0.0, 0.0):
        assert cache.word(j, value, -1, row) == word(FEATURES[j], value, -1, row, REFS, "en")
    seats = POSITION["seats"]
    for value in (0.0, -0.0):
        assert cache.word(seats, value, +1, row) == word(FEATURES[seats], value, +1, row, REFS, "en")


def test_the_cache_starts_afresh_when_full(monkeypatch):
    monkeypatch.setattr(WordCache, "MAX_ENTRIES", 5)
    cache = WordCache(FEATURES, REFS, "en")
    j = POSITION["logins_30d"]
    row = Row({"tenure_days": 400.0})
    for v in range(20):
        assert cache.word(j, float(v), -1, row) == word(FEATURES[j], float(v), -1, row, REFS, "en")
        assert len(cache._seen) <= 5
