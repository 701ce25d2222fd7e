"""``term_days``: the current term's length, calendar terms read as one length, and the wording of
the days to the term's end with it."""

from __future__ import annotations

import math

from core.store import read_snapshots
from features.pipeline import build_snapshots
from features.spec import CORE_FEATURES
from tests.tiny import D, T, settings, write_tables
from training.reason_text import NO_REFERENCES, Row, WordCache, word

SPECS = {f.name: f for f in CORE_FEATURES}


def _sub(account, start, end, mrr=10.0, plan="p"):
    return dict(account_id=account, start_date=start, end_date=end, mrr=mrr, plan=plan, seats=1)


def test_term_length_of_calendar_trial_annual_and_open_ended_terms(tmp_path):
    accounts = ["feb", "mar", "trial", "year", "leap", "addon", "open", "odd"]
    write_tables(tmp_path / "data", {
        "accounts": [dict(account_id=a) for a in accounts],
        "subscriptions": [
            _sub("feb", D(2024, 2, 1), D(2024, 3, 1)),    # 29 days (2024 is a leap year)
            _sub("mar", D(2024, 2, 10), D(2024, 3, 10)),  # 29 days
            _sub("mar", D(2024, 1, 10), D(2024, 2, 10)),  # 31 days, ended before t
            _sub("trial", D(2024, 2, 12), D(2024, 2, 19), mrr=0.0),
            _sub("year", D(2023, 6, 1), D(2024, 6, 1)),   # 366 days: a year
            _sub("leap", D(2024, 1, 1), D(2025, 1, 1)),   # 366 days
            # an add-on in force with the main term: the term ending last gives the length
            _sub("addon", D(2023, 9, 1), D(2024, 9, 1)), _sub("addon", D(2024, 2, 1), D(2024, 3, 1)),
            _sub("open", D(2023, 1, 1), None),
            _sub("odd", D(2024, 2, 1), D(2024, 2, 25)),  # 24 days: no calendar term, as it is
        ],
        "events": [dict(account_id="feb", user_id="u", occurred_at=T(2024, 2, 2, 9), event_type="login",
                        quantity=1.0)],
    })
    build_snapshots(tmp_path / "data", settings(data_end=D(2024, 12, 31)), tmp_path / "s.duckdb",
                    as_of=[D(2024, 2, 15)])
    df = read_snapshots(tmp_path / "s.duckdb").set_index("account_id")
    got = {a: df.loc[a, "term_days"] for a in accounts}
    assert {a: v for a, v in got.items() if a != "open"} == {
        "feb": 30, "mar": 30, "trial": 7, "year": 365, "leap": 365, "addon": 365, "odd": 24}
    assert math.isnan(got["open"])
    assert df.loc["trial", "days_to_term_end"] == 4


def test_days_to_term_end_are_worded_with_the_term_length():
    spec, term = SPECS["days_to_term_end"], SPECS["term_days"]
    assert word(spec, 29.0, +1, Row({"term_days": 30.0}), NO_REFERENCES, "en") == "Term ends in 29 days (a 30-day term)"
    assert word(spec, 29.0, +1, Row({"term_days": 30.0}), NO_REFERENCES, "zh") == "合同29天后到期（合同期30天）"
    assert word(spec, 200.0, -1, Row({"term_days": 365.0}), NO_REFERENCES, "en") == \
        "Term ends in 200 days (a 365-day term)"
    # without the term's length (an older bundle, a request that leaves it out): as before
    assert word(spec, 1.0, +1, Row({}), NO_REFERENCES, "en") == "Term ends in 1 day"
    assert word(term, 7.0, +1, Row({}), NO_REFERENCES, "en") == "On a 7-day term"
    assert word(term, 7.0, +1, Row({}), NO_REFERENCES, "zh") == "当前合同期7天"
    # an open-ended term: what the null means, where the row shows a term in force
    assert word(term, None, -1, Row({"mrr": 5.0}), NO_REFERENCES, "en") == "No end date on the current term"


def test_the_word_cache_keeps_the_term_length_apart():
    features = [SPECS["days_to_term_end"], SPECS["term_days"], SPECS["mrr"]]
    cache = WordCache(features, NO_REFERENCES, "en")
    texts = [cache.word(0, 29.0, +1, Row({"term_days": t})) for t in (30.0, 365.0, None, 30.0)]
    assert texts == ["Term ends in 29 days (a 30-day term)", "Term ends in 29 days (a 365-day term)",
                     "Term ends in 29 days", "Term ends in 29 days (a 30-day term)"]


def test_a_value_near_its_typical_one_is_no_reason():
    from training.reason_text import near_typical

    assert near_typical(228.0, 229.0, 1.0) and near_typical(6_100_000.0, 6_061_000.0)
    assert not near_typical(3.0, 2.0) and not near_typical(322.0, 229.0, 1.0)
    assert near_typical(30.0, 31.0) and not near_typical(30.0, 33.0)
