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
    assert cache.word(j, 1.0, +1, young) == "1 'message' event in the last 90 days (a customer for 25 days)"
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


def _reference(builder, contribs: np.ndarray, values: list[list[object]], lang: str) -> list[dict]:
    """The rule of ``training/reasons.py`` written out one candidate at a time with ``word``."""
    out = []
    names = [f.name for f in builder.catalogue_.features]
    group_of = [builder.groups_.index(f.group) for f in builder.catalogue_.features]
    for c, vals in zip(contribs[:, :-1], values):
        sums = {g: sum(c[j] for j in range(len(names)) if group_of[j] == g) for g in set(group_of)}
        row = Row(vals, POSITION)
        answer = {}
        for key, side, limit in (("reasons", +1, builder.max_reasons), ("strengths", -1, builder.max_strengths)):
            ranked = sorted((j for j in range(len(names)) if side * c[j] >= builder.min_contribution
                             and side * sums[group_of[j]] > 0), key=lambda j: -side * c[j])
            if side < 0:  # ties by position from the end
                ranked = sorted(sorted(ranked, reverse=True), key=lambda j: -side * c[j])
            items, used = [], set()
            for j in ranked:
                if len(items) == limit:
                    break
                v = None if vals[j] is None or vals[j] != vals[j] else vals[j]
                text = None if group_of[j] in used else word(builder.catalogue_.features[j], v, side, row, REFS, lang)
                if text is not None:
                    used.add(group_of[j])
                    items.append((names[j], text, float(c[j]), v))
            answer[key] = items
        out.append(answer)
    return out


def _same_kind(v: object) -> object:
    """A number as a float (a frame keeps ints, request rows floats), anything else as it is."""
    return v if v is None or isinstance(v, str) else float(v)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_explain_picks_what_the_rule_picks_from_frames_and_request_rows(lang):
    """Random contributions over rows whose leading features often cannot be worded (zero changes,
    typical counts, unseen categories): the array picking and its one-by-one fallback give the
    rule's items, from a frame and from request rows alike."""
    import pandas as pd

    from training.model import FeatureRows
    from training.reasons import ReasonBuilder

    refs = {"typical": dict(REFS.typical), "category_churn": REFS.category_churn, "overall_churn": 0.08}
    builder = ReasonBuilder().fit(CATALOGUE, refs)
    values = _rows(400, seed=5)
    rng = np.random.default_rng(9)
    contribs = rng.normal(0, 0.15, (len(values), len(NAMES) + 1)) * (rng.random((len(values), len(NAMES) + 1)) < 0.3)
    expected = _reference(builder, contribs, values, lang)
    frame = pd.DataFrame(values, columns=NAMES).astype(object)
    numeric = [n for n in NAMES if n not in CATALOGUE.categorical]
    request = FeatureRows([f"a{i}" for i in range(len(values))], numeric,
                          np.array([[np.nan if v[POSITION[n]] is None else float(v[POSITION[n]]) for n in numeric]
                                    for v in values]),
                          {c: [v[POSITION[c]] for v in values] for c in CATALOGUE.categorical})
    for raw in (frame, request):
        got = builder.explain(contribs, raw, lang)
        simple = [{k: [(r["feature"], r["text"], r["contribution"], _same_kind(r["value"])) for r in e[k]]
                   for k in ("reasons", "strengths")} for e in got]
        want = [{k: [(f, t, c, _same_kind(v)) for f, t, c, v in e[k]] for k in ("reasons", "strengths")}
                for e in expected]
        assert simple == want
    assert sum(len(e["reasons"]) for e in expected) > len(values)  # plenty of reasons were picked
