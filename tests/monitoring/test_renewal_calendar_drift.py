"""`drift` on a book of long terms (a probe's annual-contract export: "ALARM: the predicted churn
probability drifted (... 0.131, threshold 0.1; mean 0.032 -> 0.025)" while only the share of accounts
near renewal had changed, and nothing said so): the alarm stays, and the output says the renewal
calendar moved, with the share near renewal on each side (Evidently's verdict on it)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pytest

from core.settings import MonitoringSettings
from features.spec import build_catalogue
from monitoring.drift import calendar_line, drift_report
from monitoring.reference import PREDICTION
from monitoring.runs import FEATURES_ONLY, drift_banner, renewal_lines
from training.model import FeatureFrame

NAMES = ["days_to_term_end", "logins_30d"]


def _book(n: int, near_share: float, seed: int) -> pd.DataFrame:
    """Annual terms: ``near_share`` of the rows end within 60 days; churn risk only there, the
    same behaviour on both sides."""
    rng = np.random.default_rng(seed)
    near = rng.random(n) < near_share
    days = np.where(near, rng.integers(1, 61, n), rng.integers(61, 366, n)).astype(float)
    logins = rng.poisson(20, n).astype(float)
    p = np.where(near, 0.12, 0.01) * rng.uniform(0.8, 1.2, n)
    return pd.DataFrame({"account_id": [f"a{k}" for k in range(n)], "days_to_term_end": days,
                         "logins_30d": logins, PREDICTION: p})


@pytest.fixture(scope="module")
def parts():
    catalogue = build_catalogue([])
    catalogue = type(catalogue)(features=tuple(f for f in catalogue.features if f.name in NAMES), event_types=())
    return catalogue, FeatureFrame(names=NAMES, categorical=[], categories={})


def _summary(parts, current: pd.DataFrame, reference: pd.DataFrame, horizon_days: int | None = 60) -> dict:
    catalogue, frame = parts
    return drift_report(reference, current, catalogue, frame, MonitoringSettings(), model_version="1",
                        current_as_of="2026-11-02", reference_block=["2026-05-05", "2026-08-03"],
                        horizon_days=horizon_days).summary


def test_a_seasonal_calendar_keeps_the_alarm_and_says_the_calendar_moved(parts):
    s = _summary(parts, current=_book(2000, 0.15, 1), reference=_book(4000, 0.35, 2))
    assert s["alarm"] and s["probability"]["drifted"]  # not silenced
    c = s["renewal_calendar"]
    assert c["feature"] == "days_to_term_end" and c["horizon_days"] == 60
    assert c["share_reference"] == pytest.approx(0.35, abs=0.03) and c["share_current"] == pytest.approx(0.15, abs=0.03)
    assert c["drifted"] and c["moved"]
    assert c["mean_near_reference"] == pytest.approx(0.12, abs=0.01) and c["mean_near_current"] == pytest.approx(
        0.12, abs=0.01)
    line = calendar_line(c)
    assert line.startswith(f"the renewal calendar moved: {c['share_reference']:.1%} of the reference rows had a term "
                           f"ending within 60 days, {c['share_current']:.1%} of the current ones (")
    assert "in a book of long terms this share moves with the season, and the predicted probability with it" in line
    assert renewal_lines(s) == [line]
    s["files"] = {}
    assert html.escape(line, quote=False) in drift_banner(s)  # the HTML report's banner says it too
    assert FEATURES_ONLY not in drift_banner(s)  # the probabilities drifted too: no such note
    quiet = {**s, "probability": {**s["probability"], "drifted": False}}  # the features' share alone (p53)
    assert html.escape(f"note: {FEATURES_ONLY}") in drift_banner(quiet)
    assert FEATURES_ONLY not in drift_banner({**quiet, "alarm": False})


def test_a_share_evidently_does_not_flag_is_named_when_it_carries_the_probability_drift(parts):
    """The probe's book: 333 current rows, 24% near renewal against 31% of 4,422 reference rows."""
    s = _summary(parts, current=_book(333, 0.24, 7), reference=_book(4422, 0.31, 8))
    c = s["renewal_calendar"]
    assert s["alarm"] and s["probability"]["drifted"]
    assert not c["drifted"] and not c["among_most_drifted"]  # Evidently's verdict on the share: no drift
    assert c["explains_probability_drift"] and c["moved"]
    assert c["mean_change_from_share"] / c["mean_change"] > 0.8  # what moved the mean: the calendar
    line = renewal_lines(s)[0]
    assert ": no drift); that share alone moves the mean probability by " in line


def test_no_calendar_line_when_the_share_near_renewal_holds(parts):
    s = _summary(parts, current=_book(2000, 0.30, 3), reference=_book(4000, 0.30, 4))
    c = s["renewal_calendar"]
    assert not c["drifted"] and not c["moved"] and renewal_lines(s) == []
    assert _summary(parts, current=_book(500, 0.3, 5), reference=_book(500, 0.3, 6),
                    horizon_days=None)["renewal_calendar"] is None  # a model without a horizon (a flat table)
