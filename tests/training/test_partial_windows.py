"""Features whose window reaches before a short export's start on the training dates
(``training.coverage``): found from the catalogue, judged on the model-choice folds, left out
and listed when the logistic regression does not need them, kept when it does."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

import numpy as np
import pandas as pd
from scipy.special import expit

from features.spec import (
    CORE_FEATURES,
    DAYS_SINCE_HISTORY,
    SCALED_NOTE,
    Catalogue,
    FeatureSpec,
    build_catalogue,
    lookback_days,
)
from training.coverage import keep_partial_windows, partial_window_features
from training.selection import cross_fit_folds
from training.train import fit_and_evaluate, flat_metrics, params_of

DATA_START = dt.date(2025, 1, 1)
FIRST = DATA_START + dt.timedelta(days=35)  # a 6-month export's short warm-up: 28 days and a schedule step


def _spec(name: str, template: str = "event_count", window: int | None = None, direction: int = 0) -> FeatureSpec:
    return FeatureSpec(name=name, group="event_type", type="float", unit="count", definition=name,
                       direction=direction, reason_en=name, reason_zh=name, template=template,
                       params={} if window is None else {"window": window})


def test_lookback_days_follow_the_catalogue_parameters():
    core = {f.name: f for f in CORE_FEATURES}
    assert lookback_days(core["logins_30d"]) == 30
    assert lookback_days(core["logins_90d"]) == 90
    assert lookback_days(core["logins_30d_change"]) == 60  # the window and the one before it
    assert lookback_days(core["mrr_change_90d"]) == 90  # the value now against 90 days ago
    assert lookback_days(core["tickets_30d_vs_baseline"]) == 180  # a 180-day baseline
    assert lookback_days(core["new_features_tried_30d"]) == 210  # 30 days, unused in the 180 before
    assert lookback_days(core["ticket_silence"]) == 180  # >= 3 tickets in the 180 days before the silence
    assert lookback_days(core["tenure_days"]) == 0 and lookback_days(core["plan"]) == 0


def test_a_ratio_reads_what_its_inputs_read_and_a_days_since_is_capped_by_the_history():
    core = {f.name: f for f in CORE_FEATURES}
    assert lookback_days(core["active_users_per_seat"], core) == 30  # active_users_30d / seats
    assert lookback_days(core["core_events_per_active_user_30d"], core) == 30
    assert lookback_days(core["active_users_per_seat"]) == 0  # without the catalogue its inputs are unknown
    ratio_90 = FeatureSpec(name="r", group="event_type", type="float", unit="ratio", definition="r", direction=0,
                           reason_en="r", reason_zh="r", template="ratio", params={"num": "logins_90d", "den": "seats"})
    assert lookback_days(ratio_90, core) == 90
    assert lookback_days(core["days_since_last_login"]) == DAYS_SINCE_HISTORY == 90
    assert lookback_days(core["days_since_last_ticket"]) == DAYS_SINCE_HISTORY


def test_ratios_and_days_since_are_judged_partial_on_a_short_export():
    catalogue = Catalogue(features=tuple(CORE_FEATURES), event_types=())
    # 5 weekly dates covering 35 to 63 days (a 6-month export): a 30-day ratio is whole, a days-since is not
    partial = partial_window_features(catalogue, _weekly(FIRST, 5), DATA_START)
    assert partial["days_since_last_login"] == 90 and partial["days_since_last_ticket"] == 90
    assert "active_users_per_seat" not in partial and "core_events_per_active_user_30d" not in partial
    # dates covering 14 to 42 days: the 30-day ratios are short on 3 of 5
    partial = partial_window_features(catalogue, _weekly(DATA_START + dt.timedelta(days=14), 5), DATA_START)
    assert partial["active_users_per_seat"] == 30 and partial["core_events_per_active_user_30d"] == 30
    assert "seats" not in partial and "tenure_days" not in partial
    # 100 days and more: a days-since sees every idle spell the 90-day windows do
    assert "days_since_last_login" not in partial_window_features(
        catalogue, _weekly(DATA_START + dt.timedelta(days=100), 5), DATA_START)


def _weekly(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=7 * i) for i in range(n)]


def test_partial_features_are_those_reaching_before_the_data_start_on_most_dates():
    catalogue = Catalogue(features=(_spec("a_7d", window=7), _spec("a_30d", window=30),
                                    _spec("a_30d_change", "event_change", 30), _spec("a_90d", window=90),
                                    _spec("age", "extra_profile")), event_types=())
    # 5 dates covering 35 to 63 days: the 60-day change is short on 4 of them, the 90-day count on all
    assert partial_window_features(catalogue, _weekly(FIRST, 5), DATA_START) == {"a_30d_change": 60, "a_90d": 90}
    # 15 dates from 28 days: the 30-day window is short on the first only, the 90-day one on 9 of 15
    assert partial_window_features(catalogue, _weekly(DATA_START + dt.timedelta(days=28), 15), DATA_START) == \
        {"a_90d": 90}
    assert partial_window_features(catalogue, _weekly(DATA_START + dt.timedelta(days=90), 5), DATA_START) == {}
    # an as-of date before the data start (`features --as-of` allows one) covers nothing: partial, not an error
    assert partial_window_features(catalogue, [DATA_START - dt.timedelta(days=1)], DATA_START) == \
        {"a_7d": 7, "a_30d": 30, "a_30d_change": 60, "a_90d": 90}


def test_counts_scaled_to_their_whole_window_are_still_judged_and_said_to_keep_their_level():
    """A scaled count (``features.spec.SCALED_NOTE``) is an estimate on the dates its window is cut: still
    judged on the folds (on the 6-month consumer log the logistic regression did better without them);
    when kept, train does not say that the same use will count more later, as it does for the others."""
    from training.train import _kept_partial_text

    catalogue = build_catalogue(["menu_viewed"])
    partial = partial_window_features(catalogue, _weekly(FIRST, 5), DATA_START)
    assert {"evt_menu_viewed_90d", "logins_90d", "active_days_90d", "logins_30d_change",
            "days_since_last_login", "late_payments_90d"} <= set(partial)
    assert _kept_partial_text({"evt_menu_viewed_90d": 90, "logins_90d": 90}, catalogue) == (
        "; the counts among them were scaled to their whole windows where the data starts inside them "
        "(estimates on those dates)")
    assert _kept_partial_text({"evt_menu_viewed_90d": 90, "days_since_last_login": 90}, catalogue) == (
        "; the windows of days_since_last_login are whole on later dates, where the same use counts more than "
        "on these: train again as the export grows")
    old = Catalogue(features=tuple(FeatureSpec(**{**asdict(f), "definition": f.definition.removesuffix(SCALED_NOTE)})
                                   for f in catalogue.features), event_types=catalogue.event_types)
    assert _kept_partial_text({"evt_menu_viewed_90d": 90}, old).startswith("; their windows are whole on later dates")


def _rows(partial_signal: bool, accounts: int = 600, seed: int = 4) -> pd.DataFrame:
    """8 weekly dates from ``FIRST``; churn follows a 30-day usage count and a second cause. Two
    90-day counts cover only the days since ``DATA_START`` (35 to 84 of 90). With
    ``partial_signal`` the first of them carries the second cause on every date (a lasting
    relation). Without, they carry it as a window that fills up can: on the first dates, while the
    window holds only the last weeks, one way, and the other way once it reaches back to the weeks
    before (the relation turns with coverage and does not carry forward)."""
    rng = np.random.default_rng(seed)
    level, other = rng.normal(size=accounts), rng.normal(size=accounts)
    parts = []
    for day in _weekly(FIRST, 8):
        coverage = min(1.0, (day - DATA_START).days / 90)
        usage = level + rng.normal(scale=0.5, size=accounts)
        logit = -3.0 - 0.9 * usage + 1.2 * other
        frame = {"account_id": [f"a{j:04d}" for j in range(accounts)], "as_of": pd.Timestamp(day),
                 "usage_30d": np.round(np.exp(1.5 + 0.5 * usage))}
        for k in range(2):
            turning = (0.6 - coverage) * 4.0 * other + rng.normal(scale=0.5, size=accounts)
            base = other + rng.normal(scale=0.5, size=accounts) if (partial_signal and k == 0) else turning
            frame[f"x{k}_90d"] = np.round(coverage * np.exp(2.5 + 0.5 * base))
        frame["churn_label"] = (rng.random(accounts) < expit(logit)).astype(int)
        parts.append(pd.DataFrame(frame))
    return pd.concat(parts, ignore_index=True)


def _catalogue() -> Catalogue:
    return Catalogue(features=(_spec("usage_30d", window=30, direction=-1),
                               *(_spec(f"x{k}_90d", window=90) for k in range(2))), event_types=())


def _judge(rows: pd.DataFrame) -> tuple[bool, dict[str, float], float]:
    names = _catalogue().names
    y = rows["churn_label"].to_numpy()
    folds, positions, _ = cross_fit_folds(rows[names], y, rows["account_id"].to_numpy(), rows["as_of"].to_numpy())
    partial = partial_window_features(_catalogue(), rows["as_of"], DATA_START)
    return keep_partial_windows(folds, len(positions), names, [], {"usage_30d": -1}, partial,
                                rows["account_id"].to_numpy()[positions])


def test_partial_counts_whose_relation_turns_with_coverage_are_left_out():
    keep, scores, se = _judge(_rows(partial_signal=False))
    assert not keep and scores["without"] - scores["with"] > se > 0


def test_partial_counts_with_a_lasting_relation_to_churn_stay():
    keep, scores, _se = _judge(_rows(partial_signal=True))
    assert keep and scores["with"] > scores["without"] + 0.03


def _short_run(tmp_path, partial_signal: bool) -> tuple[pd.DataFrame, pd.DataFrame, object, list[str]]:
    """A run on 400 accounts' first 35 days (training) and the rest (test): (train, test, result, said)."""
    rows = _rows(partial_signal=partial_signal, accounts=400)
    train = rows[rows["as_of"] < pd.Timestamp(FIRST + dt.timedelta(days=35))]
    test = rows[rows["as_of"] >= pd.Timestamp(FIRST + dt.timedelta(days=35))]
    said: list[str] = []
    result = fit_and_evaluate(train, None, None, None, test, _catalogue(), tmp_path / "a", folds=2,
                              rule_baseline=False, progress=said.append, data_start=DATA_START)
    return train, test, result, said


def test_a_run_on_a_short_export_lists_the_partial_features_it_left_out(tmp_path):
    train, test, result, said = _short_run(tmp_path, partial_signal=False)
    dropped = result.training["dropped_features"]
    assert set(dropped) == {"x0_90d", "x1_90d"}
    assert "90-day window reaches before the data start (2025-01-01) on most training" in dropped["x0_90d"]
    assert result.bundle.frame.names == ["usage_30d"]
    assert any("left out: x0_90d" in m for m in said)
    record = result.training["selection"]["partial_windows"]  # in the bundle and MLflow's training JSON
    assert record["left_out"] and record["lookback_days"] == {"x0_90d": 90, "x1_90d": 90}
    assert record["validation_roc_auc"]["without"] > record["validation_roc_auc"]["with"]
    metrics = flat_metrics(result)
    assert metrics["validation_roc_auc_logistic_without_partial_windows"] == record["validation_roc_auc"]["without"]
    assert metrics["validation_gap_se_partial_windows"] == record["gap_se"] > 0
    assert params_of(result)["partial_windows"] == "left out: 2 feature(s) partial on most training dates"
    # without the data start (a flat table, or an export that does not say) nothing is judged
    same = fit_and_evaluate(train, None, None, None, test, _catalogue(), tmp_path / "b", folds=2,
                            rule_baseline=False)
    assert same.training["dropped_features"] == {} and len(same.bundle.frame.names) == 3
    assert same.training["selection"]["partial_windows"] == {} and params_of(same)["partial_windows"] == "none"


def test_when_every_model_feature_is_partial_they_all_stay(tmp_path):
    """Nothing to judge them against: kept, said so (a KeyError before)."""
    rows = _rows(partial_signal=False, accounts=300)[["account_id", "as_of", "x0_90d", "x1_90d", "churn_label"]]
    catalogue = Catalogue(features=tuple(_spec(f"x{k}_90d", window=90) for k in range(2)), event_types=())
    train = rows[rows["as_of"] < pd.Timestamp(FIRST + dt.timedelta(days=35))]
    test = rows[rows["as_of"] >= pd.Timestamp(FIRST + dt.timedelta(days=35))]
    said: list[str] = []
    result = fit_and_evaluate(train, None, None, None, test, catalogue, tmp_path / "a", folds=2,
                              rule_baseline=False, progress=said.append, data_start=DATA_START)
    assert result.bundle.frame.names == ["x0_90d", "x1_90d"]
    assert any(m.endswith("kept (no other features to judge them against): x0_90d, x1_90d") for m in said)
    assert not result.training["selection"]["partial_windows"]["left_out"]


def test_a_run_that_keeps_the_partial_features_names_them(tmp_path):
    """A probe's meal-kit export kept 5 of them and `train` only counted them (named in bundle.json)."""
    _train, _test, result, said = _short_run(tmp_path, partial_signal=True)
    assert not result.training["selection"]["partial_windows"]["left_out"]
    line = next(m for m in said if "window reaching before the data start" in m)
    assert line.endswith("-> kept: x0_90d, x1_90d; their windows are whole on later dates, where the same use "
                         "counts more than on these: train again as the export grows")
