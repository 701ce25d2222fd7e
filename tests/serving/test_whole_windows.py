"""``churnwatch score`` says when the model kept features whose windows were partial on its training
dates (a short export, ``training.coverage``) and are whole on the scored date: the same use counts
more than the model learned from. A probe's 7-month meal-kit export kept five 90-day counts; menu
views averaged 14.5 on the training dates and 22.6 at the data end, and the mean probability fell
from 10.5% to 7.0% with nothing said."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from types import SimpleNamespace

import pandas as pd

from features.spec import SCALED_NOTE, Catalogue, FeatureSpec, build_catalogue
from serving.coverage import batch_warnings, whole_windows_now
from training.model import FeatureFrame

START = "2026-05-01"
NAMES = ["evt_menu_viewed_90d", "active_days_90d", "evt_menu_viewed_30d_change", "logins_30d"]


IMPORTANCE = {"evt_menu_viewed_90d": 0.30, "active_days_90d": 0.10, "evt_menu_viewed_30d_change": 0.05,
              "logins_30d": 0.55}


#: a store built before counts were scaled to their whole window (features.spec.SCALED_NOTE)
SCALED = build_catalogue(["menu_viewed"])
UNSCALED = Catalogue(features=tuple(FeatureSpec(**{**asdict(f), "definition": f.definition.removesuffix(SCALED_NOTE)})
                                    for f in SCALED.features), event_types=SCALED.event_types)


def bundle(left_out: bool = False, record: bool = True, importance: dict | None = None) -> SimpleNamespace:
    partial = {"data_start": START, "left_out": left_out, "validation_roc_auc": {"with": 0.818, "without": 0.811},
               "lookback_days": {"evt_menu_viewed_90d": 90, "active_days_90d": 90, "evt_menu_viewed_30d_change": 60,
                                 "gone_90d": 90}}  # gone_90d: not among the model's features
    facts = {n: {"present_share": 1.0, "importance": v} for n, v in (importance or IMPORTANCE).items()}
    meta = {"training": {"selection": {"partial_windows": partial if record else {}}, "feature_facts": facts}}
    return SimpleNamespace(meta=meta, frame=FeatureFrame(names=NAMES, categorical=[]), catalogue=UNSCALED)


def test_the_kept_features_whose_windows_are_whole_on_the_scored_date():
    assert whole_windows_now(bundle(), dt.date(2026, 6, 20)) == []  # 50 days: all still partial
    assert whole_windows_now(bundle(), dt.date(2026, 7, 10)) == ["evt_menu_viewed_30d_change"]  # 70 days
    assert whole_windows_now(bundle(), dt.date(2026, 12, 1)) == ["evt_menu_viewed_90d", "active_days_90d",
                                                                  "evt_menu_viewed_30d_change"]
    assert whole_windows_now(bundle(left_out=True), dt.date(2026, 12, 1)) == []  # left out: nothing to say
    assert whole_windows_now(bundle(record=False), dt.date(2026, 12, 1)) == []  # a long export, or an old bundle


def test_score_says_it_once_with_the_features_named_when_they_carry_weight():
    rows = pd.DataFrame({n: [1.0, 2.0] for n in NAMES})
    said = batch_warnings(bundle(), rows, dt.date(2026, 12, 1), "accounts")
    assert said == [
        "warning: 3 feature(s) the model kept although their windows reached before the data start (2026-05-01) "
        "on most training dates (evt_menu_viewed_90d, active_days_90d, evt_menu_viewed_30d_change; 45% of what "
        "the model draws on) have whole windows on 2026-12-01: their values are not those the model learned "
        "from, so its probabilities can be off; train again on the export as it is now"]
    assert batch_warnings(bundle(), rows, dt.date(2026, 6, 20), "accounts") == []  # still partial then
    # features the model hardly draws on (under 10% of its mean absolute contribution): nothing said
    light = {"evt_menu_viewed_90d": 0.04, "active_days_90d": 0.03, "evt_menu_viewed_30d_change": 0.02,
             "logins_30d": 0.91}
    assert batch_warnings(bundle(importance=light), rows, dt.date(2026, 12, 1), "accounts") == []


def test_counts_scaled_to_their_whole_window_are_not_named():
    """Since counts are scaled to their whole window where the data starts inside it, their level does not
    grow as the windows fill: only the others (a days-since, a ticket baseline) can be named."""
    scaled_bundle = bundle()
    scaled_bundle.catalogue = SCALED
    assert whole_windows_now(scaled_bundle, dt.date(2026, 12, 1)) == []
    rows = pd.DataFrame({n: [1.0, 2.0] for n in NAMES})
    assert batch_warnings(scaled_bundle, rows, dt.date(2026, 12, 1), "accounts") == []
