"""Features left out as constant in the training rows that vary in later rows began after the training
dates: `train` warns where the test rows show them, naming the event type (a probe's Chargebee
export held only the open cancellation schedules, all after the training dates; its 9 churners with one
scored on usage alone)."""

from __future__ import annotations

import pandas as pd

from features.spec import build_catalogue
from training.coverage import begun_later
from training.train import unusable_features


def test_an_event_type_that_begins_after_the_training_dates_is_warned_about():
    catalogue = build_catalogue(["cancellation_scheduled", "login"])
    train = pd.DataFrame({"account_id": ["a", "b", "c"], "evt_cancellation_scheduled_30d": [0.0, 0.0, 0.0],
                          "evt_login_30d": [0.0, 0.0, 0.0], "logins_30d": [1.0, 5.0, 2.0]})
    test = pd.DataFrame({"account_id": ["a", "a", "b", "c"], "evt_cancellation_scheduled_30d": [0.0, 1.0, 1.0, 0.0],
                         "evt_login_30d": [0.0, 0.0, 0.0, 0.0], "logins_30d": [1.0, 2.0, 3.0, 4.0]})
    dropped = {n: why for n, why in unusable_features(train, catalogue).items() if n in train.columns}
    assert set(dropped) == {"evt_cancellation_scheduled_30d", "evt_login_30d"}
    named, differs = begun_later(dropped, test, catalogue)
    assert named == ["'cancellation_scheduled' events"]  # login: constant in the test rows too
    assert list(differs) == [False, True, True, False]
    assert begun_later({"evt_login_30d": "constant"}, test, catalogue)[0] == []


def test_a_feature_of_an_event_type_whose_other_features_were_kept_is_named_itself():
    """Probe p57: "'refund_issued' events: none (or one value) in the training rows" while 28 training rows had a
    refund: only the type's change was left out, and the warning named the whole type."""
    catalogue = build_catalogue(["refund_issued"])
    train = pd.DataFrame({"account_id": ["a", "b", "c"], "evt_refund_issued_30d": [0.0, 1.0, 0.0],
                          "evt_refund_issued_30d_change": [None, None, None]})
    test = pd.DataFrame({"account_id": ["a", "b"], "evt_refund_issued_30d": [1.0, 0.0],
                         "evt_refund_issued_30d_change": [0.5, -1.0]})
    dropped = {n: why for n, why in unusable_features(train, catalogue).items() if n in train.columns}
    assert set(dropped) == {"evt_refund_issued_30d_change"}
    assert begun_later(dropped, test, catalogue)[0] == ["evt_refund_issued_30d_change"]
