"""Training runs: snapshots (or a flat table) -> model bundle, baselines, evaluation, MLflow.

Why over 400 lines: one run's steps in order (model choice, calibration, leakage guard,
baselines, bootstrap, plots, MLflow logging) for its three entry points (snapshots, rows
already read, a flat table); the pieces themselves live in their own modules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata as md
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from core.errors import ChurnwatchError
from core.settings import ProfileSettings, TrainingSettings
from core.store import SNAPSHOTS, connect, latest_presence, latest_rows, read_meta
from features.spec import OWN_TEMPLATES, Catalogue, scaled
from training.baselines import (
    BaselineError,
    fit_logistic_baseline,
    renewal_calendar,
    rule_churn_probability,
    rule_health_score,
)
from training.bootstrap import gap, paired_bootstrap, standing
from training.bundle import ModelBundle
from training.coverage import begun_later, keep_partial_windows, partial_reason, partial_window_features, rare_flags
from training.errors import TrainingError
from training.evaluation import brier, ece, evaluate, measurement_notes, pr_auc, roc_auc, top_decile
from training.health import HealthMap
from training.leakage import TERM_END, guard, leakage_tags, screen_features
from training.model import FeatureFrame, check_labels, feature_facts, monotone_constraints
from training.plots import lift_plot, reliability_plot, roc_pr_plot, shap_summary_plot
from training.reasons import contributions, fit_references
from training.registry import EXPERIMENT, register, setup
from training.renewals import unseen_renewals, unseen_renewals_param, unseen_renewals_text
from training.run_text import few
from training.score_calibration import choose_calibrator
from training.screen import (
    config_name,
    duplicate_columns,
    excluded_since_build,
    unlinked_categories,
    with_config_keep,
)
from training.selection import (
    CANDIDATES,
    SE_RULE,
    Selection,
    chosen_out_of_fold,
    cross_fit_folds,
    describe,
    fit_chosen,
    fold_directions,
    grouped_folds,
    holdout_folds,
    learned_directions,
    select_model,
)
from training.split import purged_split
from training.table_cv import check_folds, cross_validate_table, cv_metrics, cv_record

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class TrainResult:
    bundle: ModelBundle
    comparison: pd.DataFrame  # one row per model: roc_auc, pr_auc, brier, ece, lift, capture
    metrics: dict
    plots: dict[str, Path] = field(default_factory=dict)
    version: int | None = None
    run_id: str | None = None
    training: dict = field(default_factory=dict)  # dropped features, model choice, calibration method
    started_at: float | None = None  # epoch seconds: the MLflow run starts here
    leakage: dict = field(default_factory=dict)  # training/leakage.py: allowed leaks and findings
    test_scores: dict = field(default_factory=dict)  # per test row: churn_probability, tier, logistic


def _model_row(name: str, y: np.ndarray, p: np.ndarray, calibrated: bool, registered: bool = False) -> dict:
    """A row of the comparison table (``model_vs_baselines.csv``): ``registered`` marks the model trained
    here (its ``model`` names the candidate chosen, ``selection.describe``), the others are baselines."""
    lift = top_decile(y, p)
    return {"model": name, "registered": registered, "roc_auc": roc_auc(y, p), "pr_auc": pr_auc(y, p),
            "brier": brier(y, p) if calibrated else np.nan, "ece": ece(y, p) if calibrated else np.nan,
            "top_decile_lift": lift.lift, "top_decile_capture": lift.capture}


def load_labelled(store: Path) -> tuple[pd.DataFrame, Catalogue, dict]:
    with connect(store, read_only=True) as con:
        meta = read_meta(con)
        rows = con.execute(f"SELECT * FROM {SNAPSHOTS} WHERE labelled ORDER BY as_of, account_id").df()
    if rows.empty:
        raise TrainingError(f"{store}: no labelled snapshots (all as-of dates are within horizon + grace "
                            "of the data end)")
    info = {"data_start": meta.data_start.isoformat(), "data_end": meta.data_end.isoformat(),
            "horizon_days": meta.horizon_days, "grace_days": meta.grace_days,
            "input_hash": meta.input_hash, "source": meta.source}
    return rows, Catalogue.from_json(meta.catalogue_json), info


def unusable_features(train: pd.DataFrame, catalogue: Catalogue) -> dict[str, str]:
    """Features entirely null or constant in the training rows: name -> why left out."""
    out = {}
    for name in catalogue.names:
        values = train[name].dropna() if name in train.columns else pd.Series(dtype=float)
        if values.empty:
            out[name] = "entirely null in the training rows"
        elif values.nunique() == 1 and values.size == len(train):
            out[name] = f"constant in the training rows ({values.iloc[0]})"
        elif values.nunique() == 1:
            out[name] = f"constant where present ({values.iloc[0]}), otherwise null"
    return out


def _model_frame(catalogue: Catalogue, dropped: dict[str, str]) -> tuple[FeatureFrame, Catalogue]:
    kept = tuple(f for f in catalogue.features if f.name not in dropped)
    if not kept:
        raise TrainingError("every feature is null or constant in the training rows: nothing to learn from")
    model_catalogue = dataclasses.replace(catalogue, features=kept)
    return FeatureFrame.from_catalogue(model_catalogue), model_catalogue


def _check_blocks(blocks: dict[str, pd.DataFrame | None]) -> None:
    for name, block in blocks.items():
        if block is None:
            continue
        big = name == "training block"
        check_labels(block["churn_label"].to_numpy(dtype=int), name, min_rows=200 if big else 100,
                     min_positives=20 if big else 5)


def _calibrate(model, frame: FeatureFrame, cal: pd.DataFrame | None, train: pd.DataFrame, selection: Selection,
               seed: int, purge_days: int = 0, oof: np.ndarray | None = None):
    """The calibrator chosen by out-of-fold log loss on the calibration block, or, when
    cross-fitting, on the chosen candidate's out-of-fold scores of the training rows (equal or
    recent-date weights by a purged forward check); also the calibrated probabilities of those
    held-out rows (the health map's reference rows) and their observed churn rate."""
    if cal is not None:
        scores = model.predict(frame.transform(cal), raw_score=True)
        rows, y = cal, cal["churn_label"].to_numpy(dtype=int)
    else:
        scores = selection.val_raw if oof is None else oof  # oof: the training rows' cross-fitted scores
        rows, y = train, (selection.val_y if oof is None else train["churn_label"].to_numpy(dtype=int))
    dates = rows["as_of"].to_numpy() if "as_of" in rows.columns and rows["as_of"].nunique() > 1 else None
    calibrator, losses = choose_calibrator(scores, y, groups=rows["account_id"].to_numpy(), seed=seed, dates=dates,
                                           purge_days=purge_days)
    return calibrator, losses, calibrator.predict(scores), float(np.mean(y))


def fit_and_evaluate(train: pd.DataFrame, fit: pd.DataFrame | None, es: pd.DataFrame | None,
                     cal: pd.DataFrame | None, test: pd.DataFrame, catalogue: Catalogue, out: Path, seed: int = 0,
                     constrained: bool = True, rule_baseline: bool = True,
                     progress: Progress | None = None, folds: int = 4,
                     allow_leaky: tuple[str, ...] = (), purge_days: int = 0,
                     data_start: dt.date | None = None, draw: bool = True,
                     horizon_days: int | None = None, latest: tuple[dt.date, int, int] | None = None,
                     end_rows: pd.DataFrame | None = None) -> TrainResult:
    """Model choice, calibration, health map, baselines and evaluation on ``test``.

    With ``fit``, ``es`` and ``cal`` the purged layout: candidates fitted on ``fit`` and judged
    on ``es``, calibration on ``cal``. With them ``None``, cross-fitting: account-grouped
    folds of ``train`` for both (``training.selection``). ``test`` is only for reporting.
    ``data_start``: the export's first day; when cross-fitting, features whose window reaches before
    it on the training dates are left out if the validation folds do not need them
    (``training.coverage``). ``draw``: write the plots (``False`` for a cross-validation fold).
    ``horizon_days``: the labels' horizon (snapshot rows), quoted by the category reasons. ``latest``: the
    store's latest date, its rows and those with a term end (the leakage guard's end-date check);
    ``end_rows``: the company's own columns on that date (its check of values written once a customer left).
    """
    started = time.time()
    say = progress or (lambda _m: None)
    _check_blocks({"training block": train, "calibration block": cal, "test block": test})
    dropped = unusable_features(train, catalogue)
    if dropped:
        say(f"left out {len(dropped)} feature(s) null or constant in the training rows: "
            + few([f"{n} ({why})" for n, why in dropped.items()], 8))
        named, differs = begun_later(dropped, test, catalogue)
        if named:  # what they read began after the training dates
            accounts = f" ({test.loc[differs, 'account_id'].nunique():,} accounts)" if "account_id" in test else ""
            say("warning: " + few(named, 6) + f": none (or one value) in the training rows, but {int(differs.sum()):,} "
                f"test rows{accounts} differ in them: they begin after the training dates, so the model cannot use "
                "them and those accounts are scored without them (a feature launched since: train again once it "
                "has history; an export of the current state only, such as open cancellation schedules: export "
                "their history)")
    unlinked = unlinked_categories(train, catalogue, skip=set(dropped))
    if unlinked:  # noise a category's best partition would find (training/screen.py)
        who = "customers" if any(f.template == "table_column" for f in catalogue.features) else "accounts"
        say(f"left out {len(unlinked)} own category column(s) with no link to churn in the training {who}: "
            + few([f"{n} ({why})" for n, why in unlinked.items()], 8))
        dropped.update(unlinked)
    for name, n_train, n_test in rare_flags(train, test, catalogue, dropped):  # learned from a handful of rows
        say(f"warning: {name} is set on {n_train:,} training rows but on {n_test:,} test rows: the model can hardly "
            "have learned it (an export of the current state only, such as the cancellations scheduled at the "
            "export: export their history)")
    frame, model_catalogue = _model_frame(catalogue, dropped)
    frame.fit(train)
    y_train, y_test = (b["churn_label"].to_numpy(dtype=int) for b in (train, test))
    partial_record: dict = {}  # the partial-window features' judgement (training/coverage.py)
    if fit is None and data_start is not None and "as_of" in train.columns:  # cross-fitting: a short export
        partial, partial_record = _partial_windows(train, y_train, frame, model_catalogue, data_start, folds, seed,
                                                   constrained, say)
        if partial:
            dropped.update(partial)
            frame, model_catalogue = _model_frame(catalogue, dropped)
            frame.fit(train)
    # after the partial windows: the feature a repeat is measured against must stay in the model
    repeated = duplicate_columns(train, catalogue, skip=set(dropped), seed=seed)
    if repeated:  # one signal in two columns (training/screen.py)
        say(f"left out {len(repeated)} feature(s) that repeat another: "
            + few([f"{n} ({why})" for n, why in repeated.items()], 8))
        dropped.update(repeated)
        frame, model_catalogue = _model_frame(catalogue, dropped)
        frame.fit(train)
    say("checking the features for label leakage")
    own = [f.name for f in model_catalogue.features  # a company's own columns, but a date that looks ahead
           if f.template in OWN_TEMPLATES and f.params.get("as_of_column") != "no"]  # (a contract's end)
    # the account columns as the export holds them today (own and the contract's CRM columns: csm, segment, ...)
    # and the terms' amount, seats and plan (a subscriptions export expanded into periods copies today's back)
    terms = [f.name for f in model_catalogue.features if f.template in TERM_TEMPLATES]
    exported = [*own, *(f.name for f in model_catalogue.features if f.template == "profile"), *terms]
    dated = [f.name for f in model_catalogue.features if f.name in own and f.params.get("kind") == "date"]
    screen_features(train, y_train, frame.names, frame.categorical, allow_leaky, latest=latest,
                    horizon_days=horizon_days, own=own, end_rows=end_rows, exported=exported, terms=terms, dated=dated)
    constraints = monotone_constraints(model_catalogue) if constrained else [0] * len(frame.names)
    directions = {f.name: int(f.direction) for f in model_catalogue.features if f.type != "category"} \
        if constrained else {}
    X_train = frame.transform(train)
    learned: dict[str, int] = {}
    judging: list[dict[str, int]] = []
    cal_directions: list[dict[str, int]] = []  # the same, per calibration fold
    if fit is not None and es is not None:
        folds_ = holdout_folds(frame.transform(fit), fit["churn_label"].to_numpy(dtype=int),
                               frame.transform(es), es["churn_label"].to_numpy(dtype=int))
        n_val, val_groups, val_rows = len(es), es["account_id"].to_numpy(), es
        say(f"choosing the model: {len(CANDIDATES)} LightGBM candidates and a logistic regression, fitted on "
            f"{len(fit):,} rows, judged on the {len(es):,} rows of the early-stopping block")
        validation = "early-stopping block"
    else:  # cross-fitting: time-split, account-grouped folds when the training rows span several dates
        accounts = train["account_id"].to_numpy()
        folds_, positions, validation = cross_fit_folds(
            X_train, y_train, accounts, train["as_of"].to_numpy() if "as_of" in train.columns else None, k=folds)
        n_val, val_groups, val_rows = len(positions), accounts[positions], train.iloc[positions]
        if constrained and n_val < len(train):  # a short history: the choice cannot see across the purge gap
            # judged with directions from each fold's own fitting rows (earlier dates, other accounts),
            # so they never saw a judged label; the final fit takes them from all training rows
            judging = fold_directions(folds_, accounts, frame.names, frame.categorical, directions, constraints)
            open_constraints = constraints  # the catalogue's, before the learned directions: for calibration's folds
            learned = learned_directions(X_train, y_train, accounts, frame.names, frame.categorical, directions)
            constraints = [learned.get(n, c) for n, c in zip(frame.names, constraints)]
            say(_directions_text(learned, judging))
        say(f"choosing the model: {len(CANDIDATES)} LightGBM candidates and a logistic regression, judged "
            f"out-of-fold on {n_val:,} of {len(train):,} training rows: {validation}")
    # a flat table's columns: their blanks are gaps in an export, an indicator of them kept only where they go with
    # churn (``training.blend.MISSING_Z``, a test of independent rows: one per customer; an event log's rows repeat
    # each account on every date, and its catalogue's nulls have meanings)
    screened = frozenset() if "as_of" in train.columns else frozenset(
        f.name for f in model_catalogue.features if f.template in OWN_TEMPLATES)
    selection = select_model(folds_, n_val, frame.names, frame.categorical, directions, constraints, seed, say,
                             groups=val_groups, screened=screened)
    oof = None
    if cal is None and n_val < len(train):  # calibration keeps cross-fitting on every training row
        grouped = "account-grouped folds" if "as_of" in train.columns else "folds of customers"
        say(f"cross-fitting {selection.chosen} on {folds} {grouped} of all training rows for calibration")
        cal_folds = grouped_folds(X_train, y_train, train["account_id"].to_numpy(), k=folds)
        if judging:  # cross-fitted like the final model: directions learned on each fold's own fitting rows,
            # not on all training rows (those include the held-out fold's labels)
            cal_directions = fold_directions(cal_folds, train["account_id"].to_numpy(), frame.names,
                                             frame.categorical, directions, open_constraints)
        oof = chosen_out_of_fold(selection, cal_folds, len(train), frame.names, frame.categorical, directions,
                                 screened)
    if "as_of" in train.columns:  # rows are accounts x dates: a churner is labelled on every date of its horizon
        churned = train.loc[y_train == 1, "account_id"].nunique()
        who = (f"{len(train):,} rows of {train['account_id'].nunique():,} accounts ({y_train.sum():,} churned rows "
               f"of {churned:,} accounts)")
    else:
        who = f"{len(train):,} customers ({y_train.sum():,} churned)"
    say(f"training {selection.chosen} on {who}, {selection.rounds} trees")
    model = fit_chosen(selection, X_train, y_train, frame.names, frame.categorical, directions, screened)
    calibrator, cal_losses, reference, cal_rate = _calibrate(model, frame, cal, train, selection, seed, purge_days,
                                                             oof)
    methods = {m: v for m, v in cal_losses.items() if not m.startswith("forward_")}
    forward = "" if "forward_equal" not in cal_losses else (
        f" (recent weeks weighted more or not, judged forward: log loss {cal_losses['forward_recent']:.4f} against "
        f"{cal_losses['forward_equal']:.4f}, standard error {cal_losses.get('forward_gain_se', float('nan')):.4f})")
    say("calibration by out-of-fold log loss: " + ", ".join(f"{m} {v:.4f}" for m, v in methods.items())
        + f" -> {getattr(calibrator, 'choice_', calibrator.method)}; {calibrator.weighting_} weights{forward}")
    health_map = HealthMap.from_reference(reference)  # pins from the calibrated base rate and tier shares
    say("health pins (p80, p60, p40): " + ", ".join(f"{v:.4f}" for v in health_map.pins_)
        + f" (calibrated base rate {health_map.base_rate_:.4f}; each tier at least "
          f"{health_map.min_share_:.0%} of the {len(reference):,} held-out rows)")
    bundle = ModelBundle(booster=model, calibrator=calibrator, health_map=health_map,
                         catalogue=catalogue, frame=frame,
                         reason_references=fit_references(train, model_catalogue, horizon_days=horizon_days))
    scored = bundle.predict(test)
    p = scored["churn_probability"].to_numpy()
    metrics = evaluate(y_test, p, scored["tier"].to_numpy(), groups=test["account_id"].to_numpy())
    metrics["calibration_base_rate"] = cal_rate  # against the test rows' base rate: did the level move?
    for note in measurement_notes(metrics, dated="as_of" in test.columns):  # what the test rows can measure
        say(note)
    metrics.update(trees=selection.rounds, model=selection.chosen, calibration=calibrator.method,
                   distinct_probabilities=int(np.unique(p).size))
    say("checking the model for label leakage")
    sample = train.sample(min(len(train), 2000), random_state=seed)
    importance = np.abs(contributions(model, frame.transform(sample))[:, :-1]).mean(axis=0)
    def without_term_end() -> float:  # the log-odds less the end date's contribution (TreeSHAP + linear part)
        rows = np.random.default_rng(seed).permutation(len(test))[:LEAK_CHECK_ROWS]  # bounded memory
        c = contributions(model, frame.transform(test.iloc[rows]))
        return roc_auc(y_test[rows], c.sum(axis=1) - c[:, frame.names.index(TERM_END)])

    leakage = guard(train, y_train, frame.names, frame.categorical, metrics["roc_auc"],
                    dict(zip(frame.names, importance.tolist())), allow_leaky, latest=latest,
                    horizon_days=horizon_days, without_term_end=without_term_end, own=own, end_rows=end_rows,
                    exported=exported, terms=terms, dated=dated)
    if leakage.get("calendar"):
        say(f"leakage guard: {leakage['calendar']}")
    for finding in leakage["findings"]:  # what --allow-leaky-feature let through, said where it was measured
        if finding["feature"] in leakage["allowed"]:
            say(f"warning: allowed as leaky (--allow-leaky-feature): feature {finding['feature']!r} "
                f"{finding['detail']}; this version is never promoted automatically")

    rule_val = None
    if rule_baseline:  # a reference on the choice's own rows: would the fixed rule have won there?
        rule_val = _rule_roc_auc(val_rows)
        if rule_val is not None:
            say(f"rule-weighted health score on the same validation rows: ROC-AUC {rule_val:.4f} (a reference, "
                f"not a candidate; chosen {selection.chosen} {selection.scores[selection.chosen]:.4f})")
    p_rule = rule_churn_probability(rule_health_score(test)) if rule_baseline else None
    if p_rule is not None and np.ptp(p_rule) == 0:  # no indicator varies: a coin, not a baseline
        say("rule-weighted health score: left out of the baselines, it is constant on the test rows (none of its "
            "indicators varies in this data: logins, core-feature use, tickets, payments, engagement; "
            "event_roles in churnwatch.yaml give it some)")
        p_rule = None
    say("baselines: logistic regression" + (" and the rule-weighted health score" if p_rule is not None else ""))
    chosen_name = f"model: {describe(selection.chosen)}"
    rows = [_model_row(chosen_name, y_test, p, True, registered=True)]
    logistic = fit_logistic_baseline(train, y_train, model_catalogue)
    p_lr = logistic.predict_proba(test)
    rows.append(_model_row("logistic regression", y_test, p_lr, True))
    curves = {"logistic": p_lr}  # the baselines' scores, each compared with the model's
    if p_rule is not None:
        rows.append(_model_row("rule health score", y_test, p_rule, False))
        curves["rule health"] = p_rule
    p_calendar = renewal_calendar(test) if "as_of" in test.columns else None  # a flat table has no terms
    if p_calendar is not None:
        say("baseline: the renewal calendar (accounts ranked by how soon their term ends)")
        rows.append(_model_row("renewal calendar", y_test, p_calendar, False))
        curves["renewal calendar"] = p_calendar
        metrics["renewal_window"] = _renewal_window(y_test, p, test, purge_days, say)
    comparison = pd.DataFrame(rows)
    metrics["vs_baselines"] = _versus(y_test, p, curves, test["account_id"].to_numpy(), seed, say)
    curves = {chosen_name: p, **curves}

    out.mkdir(parents=True, exist_ok=True)
    plots = {}
    if draw:
        say("plots: reliability, ROC/PR, lift, SHAP summary")
        sample = test.sample(min(len(test), 4000), random_state=seed)
        Xs = frame.transform(sample)
        plots = {
            "reliability": reliability_plot(y_test, p, out / "reliability.png"),
            "roc_pr": roc_pr_plot(y_test, curves, out / "roc_pr.png"),
            "lift": lift_plot(y_test, p, out / "lift.png"),
            "shap_summary": shap_summary_plot(contributions(model, Xs)[:, :-1], Xs, out / "shap_summary.png"),
        }
    comparison.to_csv(out / "model_vs_baselines.csv", index=False)
    facts = feature_facts(train, frame.names, importance, frame.categorical)  # what scoring checks its rows against
    training_info = {"dropped_features": dropped, "feature_facts": facts, "selection": {
        "chosen": selection.chosen, "best_on_validation": selection.best,
        "rule": f"simplest within {SE_RULE:g} standard error of the best", "noise": selection.noise,
        "tree_weight": selection.tree_weight, "rounds": selection.rounds,
        "logistic_C": selection.linear_c, "logistic_log_terms": selection.linear_log_terms,
        "validation_roc_auc": selection.scores, "rounds_by_candidate": selection.rounds_by_candidate,
        "params": {k: v for k, v in selection.params.items() if k != "monotone_constraints"},
        "validation": validation, "learned_directions": learned, "judging_directions": judging,
        "calibration_directions": cal_directions, "partial_windows": partial_record,
        "rule_validation_roc_auc": rule_val},
        "calibration": {"method": calibrator.method, "weighting": calibrator.weighting_,
                        "choice": getattr(calibrator, "choice_", calibrator.method),
                        "out_of_fold_log_loss": cal_losses}, "health_map": health_map.to_dict()}
    return TrainResult(bundle=bundle, comparison=comparison, metrics=metrics, plots=plots,
                       training=training_info, started_at=started, leakage=leakage,
                       test_scores={"churn_probability": p, "tier": scored["tier"].to_numpy(), "logistic": p_lr})


def _partial_windows(train: pd.DataFrame, y: np.ndarray, frame: FeatureFrame, catalogue: Catalogue,
                     data_start: dt.date, k: int, seed: int, constrained: bool,
                     say: Progress) -> tuple[dict[str, str], dict]:
    """The features to leave out because their window reaches before ``data_start`` on most training
    dates and the logistic regression does better without them on the model-choice folds
    (``training.coverage.keep_partial_windows``): (name -> reason, empty when they stay; the
    record for the run: the partial features' lookback days, both ROC-AUCs and the outcome)."""
    partial = partial_window_features(catalogue, train["as_of"], data_start)
    if not partial:
        return {}, {}
    accounts = train["account_id"].to_numpy()
    X = frame.transform(train)
    folds_, positions, _ = cross_fit_folds(X, y, accounts, train["as_of"].to_numpy(), k=k)
    directions = {f.name: int(f.direction) for f in catalogue.features if f.type != "category"} \
        if constrained else {}
    keep, scores, se = keep_partial_windows(folds_, len(positions), frame.names, frame.categorical, directions,
                                            partial, accounts[positions], seed)
    if not scores:  # every model feature, or none of them, is partial: nothing to compare, all stay
        say(f"{len(partial)} feature(s) with a window reaching before the data start ({data_start}) on most "
            "training dates: kept (no other features to judge them against): " + few(list(partial), 8))
        return {}, {"data_start": data_start.isoformat(), "lookback_days": partial, "validation_roc_auc": {},
                    "left_out": False}
    say(f"{len(partial)} feature(s) with a window reaching before the data start ({data_start}) on most training "
        f"dates: logistic regression on the validation folds ROC-AUC {scores['with']:.4f} with them, "
        f"{scores['without']:.4f} without (standard error of the difference {se:.4f}) -> "
        + (("kept: " + few(list(partial), 8) + _kept_partial_text(partial, catalogue)) if keep
           else "left out: " + few(list(partial), 8)))
    record = {"data_start": data_start.isoformat(), "lookback_days": partial, "validation_roc_auc": scores,
              "gap_se": se, "left_out": not keep}
    return ({} if keep else {n: partial_reason(d, data_start, scores) for n, d in partial.items()}), record


def _kept_partial_text(partial: dict[str, int], catalogue: Catalogue) -> str:
    """What follows from keeping the partial features: counts scaled to their whole window
    (``features.spec.scaled``) keep their level as the windows fill; the others do not."""
    rising = [n for n in partial if not scaled(catalogue[n])]
    if not rising:
        return ("; the counts among them were scaled to their whole windows where the data starts inside them "
                "(estimates on those dates)")
    return (f"; {'the windows of ' + few(rising, 4) if len(rising) < len(partial) else 'their windows'} are "
            "whole on later dates, where the same use counts more than on these: train again as the export grows")


def _directions_text(final: dict[str, int], judging: list[dict[str, int]]) -> str:
    """One line: the directions the trees were judged with (per fold) and those of the final fit."""
    counts: dict[tuple[str, int], int] = {}
    for fold in judging:
        for n, v in fold.items():
            counts[n, v] = counts.get((n, v), 0) + 1
    judged = few([f"{n} {'+' if v > 0 else '-'} ({c}/{len(judging)})" for (n, v), c in counts.items()], 12)
    same = all(fold == final for fold in judging)
    final_text = few([f"{n} {'+' if v > 0 else '-'}" for n, v in final.items()], 12) or "none"
    return ("directions from the training rows for the features the catalogue leaves open (monotone constraints "
            f"of the trees): for the final fit, from all training rows: {final_text}; "
            + ("the same in every fold while judging" if same else
               f"while judging, each fold's from its own fitting rows: {judged or 'none'}"))


def _rule_roc_auc(rows: pd.DataFrame) -> float | None:
    """ROC-AUC of the rule-weighted health score on ``rows`` (ranked within each as-of date);
    ``None`` when the rows lack its indicators, none of them varies, or they hold one class only."""
    y = rows["churn_label"].to_numpy(dtype=int)
    if not 0 < y.sum() < len(y):
        return None
    try:
        p = rule_churn_probability(rule_health_score(rows))
    except BaselineError:
        return None
    return None if np.ptp(p) == 0 else roc_auc(y, p)


#: The features of the terms' values as a subscriptions export holds them: MRR, seats, plan (``features.spec``).
TERM_TEMPLATES = ("term_value", "term_plan")
#: The features read from the account columns as exported (the company's own and the contract's CRM columns) and
#: the terms' values: the leakage guard compares them at the data end with the training rows.
ACCOUNT_TEMPLATES = (*OWN_TEMPLATES, "profile", *TERM_TEMPLATES)

#: Test rows the leakage guard's second look at the model (without the renewal calendar) reads at most.
LEAK_CHECK_ROWS = 50_000
#: The renewal window is the whole test block (monthly plans) when this share of the rows is in it.
WHOLE_BOOK_SHARE = 0.95


def _renewal_window(y: np.ndarray, p: np.ndarray, test: pd.DataFrame, days: int, say: Progress) -> dict | None:
    """The model's ROC-AUC among the test rows whose term ends within ``days`` (horizon + grace: the
    renewals a label can see): what the model adds to the calendar where churn can happen. ``None``
    when there are no such rows of both classes."""
    if days <= 0:
        return None
    ends = pd.to_numeric(test["days_to_term_end"], errors="coerce").to_numpy(dtype="float64")
    inside = ends <= days  # NaN (open-ended) is never inside
    churned = int(y[inside].sum())
    if churned == 0 or churned == int(inside.sum()):
        return None
    out = {"days": int(days), "rows": int(inside.sum()), "churned": churned, "roc_auc": roc_auc(y[inside], p[inside]),
           "churned_outside": int(y[~inside].sum())}
    if inside.mean() < WHOLE_BOOK_SHARE:  # monthly plans: every row is in the window, the line would repeat the test's
        say(f"within the renewal window (term ends within {days} days: {out['rows']:,} test rows, {churned:,} churned; "
            f"{out['churned_outside']:,} churned outside it): model ROC-AUC {out['roc_auc']:.4f}")
    later = float((ends > days).mean())  # open-ended (NaN) terms are not "later"
    if out["churned_outside"] == 0 and later >= LATE_RENEWALS_SHARE:
        say(f"warning: every churn of the test rows came where a term ends within {days} days, and {later:.0%} of "
            "the rows have their term's end later: their churn probability reads near 0 whatever their signals "
            "until the renewal comes within the horizon. For contracts of a year or more, a longer horizon_days "
            "in churnwatch.yaml (120 to 180, then `churnwatch features` again) warns while there is time to act")
    return out


#: ``_renewal_window`` advises a longer horizon when churn comes only at term ends and at least this share of
#: the test rows have their term's end beyond the window (a probe's annual contracts at 60 days: 78%; another's
#: book of 60% annual contracts, 49.8%, got no advice at 0.5 and scored every account more than 90 days from its
#: renewal healthy, Red CSM sentiment and 29% of seats in use included).
LATE_RENEWALS_SHARE = 0.25


def _versus(y: np.ndarray, p: np.ndarray, curves: dict[str, np.ndarray], groups: np.ndarray, seed: int,
            say: Progress) -> dict[str, dict]:
    """Paired (account-resampled) bootstrap of the ROC-AUC / PR-AUC difference per baseline."""
    out = {}
    for name, other in curves.items():
        d = paired_bootstrap(y, p, other, groups=groups, seed=seed)
        out[name] = d
        say(f"model - {name}: ROC-AUC {gap(d['roc_auc_diff'])} (95% {d['roc_auc_lo']:+.4f} to "
            f"{d['roc_auc_hi']:+.4f}), PR-AUC {d['pr_auc_diff']:+.4f} (95% {d['pr_auc_lo']:+.4f} to "
            f"{d['pr_auc_hi']:+.4f})")
    if out:  # the bar of issue 12: not below the best baseline beyond the interval
        best = min(out, key=lambda n: out[n]["roc_auc_diff"])
        d = out[best]
        where = standing(d)
        say(f"against the best baseline ({best}): ROC-AUC {gap(d['roc_auc_diff'])} (95% {d['roc_auc_lo']:+.4f} to "
            f"{d['roc_auc_hi']:+.4f}); {where['standing']}; not below it beyond the interval: {where['verdict']}")
        out["best baseline"] = {**d, "baseline": best, **where}
    return out


def train_on_snapshots(store: Path, out: Path, seed: int = 0, progress: Progress | None = None,
                       options: TrainingSettings | None = None, allow_leaky: tuple[str, ...] = (),
                       profile: ProfileSettings | None = None) -> TrainResult:
    """DESIGN §2/§4: out-of-time, purged split of the store's labelled snapshots (``training.split``:
    purged calibration / early-stopping blocks where the history allows, else cross-fitting).

    Args:
        options: block lengths and folds (``churnwatch.yaml``'s ``training:`` and the CLI);
            horizon and grace always come from the store's metadata.
        profile: the config's ``profile:``, for its ``keep`` flags (``training.screen.with_config_keep``).
    """
    started = time.time()
    rows, catalogue, info = load_labelled(store)
    catalogue = with_config_keep(catalogue, profile)
    excluded = excluded_since_build(catalogue)
    if excluded:  # the store's columns change with a rebuild only; a model without them could not score it
        names = [config_name(f) for f in catalogue.features if f.name in excluded]
        raise TrainingError(f"churnwatch.yaml excludes {few(names, 8)} (profile.exclude), which the store's "
                            "snapshots still hold: run `churnwatch features` (it rebuilds them without "
                            f"{'it' if len(names) == 1 else 'them'}), then `churnwatch train`")
    result = train_on_labelled(rows, catalogue, info, store, out, seed=seed, progress=progress, options=options,
                               allow_leaky=allow_leaky)
    result.started_at = started
    return result


def train_on_labelled(rows: pd.DataFrame, catalogue: Catalogue, info: dict, store: Path, out: Path, seed: int = 0,
                      progress: Progress | None = None, options: TrainingSettings | None = None,
                      allow_leaky: tuple[str, ...] = ()) -> TrainResult:
    """``train_on_snapshots`` on labelled rows already read from ``store`` (``load_labelled``)."""
    started = time.time()
    say = progress or (lambda _m: None)
    opts = options or TrainingSettings()
    dates = sorted(pd.to_datetime(rows["as_of"]).dt.date.unique())
    split = purged_split(dates, info["horizon_days"], info["grace_days"], test_days=opts.test_days,
                         calibration_days=opts.calibration_days, early_stopping_days=opts.early_stopping_days,
                         min_train_days=opts.min_train_days, seed=seed,
                         export=_export(info))
    say(f"split ({split.mode}): training {split.train[0]} to {split.train[1]}, test {split.test[0]} to "
        f"{split.test[1]} (horizon {info['horizon_days']}, grace {info['grace_days']}); {split.describe_test()}")
    names = ("train", "fit", "early_stopping", "calibration", "test")
    blocks = {b: split.rows(rows, b) for b in names}
    unseen = unseen_renewals(blocks["train"], rows, info["horizon_days"], blocks["test"])  # long terms no label saw end
    if unseen:
        say(unseen_renewals_text(unseen))
    result = fit_and_evaluate(blocks["train"], blocks["fit"], blocks["early_stopping"], blocks["calibration"],
                              blocks["test"], catalogue, out, seed=seed, progress=progress, folds=opts.folds,
                              allow_leaky=allow_leaky, purge_days=info["horizon_days"] + info["grace_days"],
                              data_start=dt.date.fromisoformat(info["data_start"]) if info.get("data_start") else None,
                              horizon_days=info["horizon_days"], latest=latest_presence(store, TERM_END),
                              end_rows=latest_rows(store, [f.name for f in catalogue.features
                                                           if f.template in ACCOUNT_TEMPLATES]))
    result.started_at = started
    result.training["unseen_renewals"] = unseen
    test = blocks["test"]
    scored = result.bundle.predict(test)
    result.bundle.test_predictions = pd.DataFrame({
        "account_id": test["account_id"].to_numpy(), "as_of": test["as_of"].to_numpy(),
        "churn_label": test["churn_label"].to_numpy(), **{c: scored[c].to_numpy() for c in scored.columns}})
    result.bundle.meta = {
        "kind": "snapshots", "created_at": dt.datetime.now().isoformat(timespec="seconds"),
        "split": split.to_dict(), **info, "seed": seed,
        "training_window": {"first_as_of": split.train[0].isoformat(), "last_as_of": split.train[1].isoformat()},
        "snapshots": {"store": str(store.resolve()), "table": SNAPSHOTS,
                      "as_of_first": dates[0].isoformat(), "as_of_last": dates[-1].isoformat(),
                      "test_block": [split.test[0].isoformat(), split.test[1].isoformat()]},
        "metrics": result.metrics, "baselines": json.loads(result.comparison.to_json(orient="records")),
        "training": {**result.training, "options": opts.model_dump()}, "versions": _versions(),
        "leakage": result.leakage,
    }
    return result


def _export(info: dict) -> tuple[dt.date, dt.date] | None:
    if not info.get("data_start") or not info.get("data_end"):
        return None
    return dt.date.fromisoformat(info["data_start"]), dt.date.fromisoformat(info["data_end"])


#: A flat table of ``AUTO_CV_ROWS`` customers is cross-validated on ``AUTO_CV_FOLDS`` folds without being asked when
#: its test split does not meet the calibration target: a probe's 7,000 customers at 27% churn gave ECE 0.042 on
#: their 1,400 test rows, where chance alone gives about 0.026 (above the 0.02 target), and 0.011 on all of them.
#: Below it too few rows per fold; above it the test split is larger and the folds cost more.
AUTO_CV_ROWS = (2_000, 50_000)
AUTO_CV_FOLDS = 5
#: ... and when each class has at least this many customers (100 churners: 20 a fold).
AUTO_CV_MIN_CLASS = 100


def auto_cross_validation(metrics: dict, y: np.ndarray) -> bool:
    """Whether ``train --table`` cross-validates without being asked: its test rows do not meet the calibration
    target (``ece_verdict`` not met or not measurable), the table has ``AUTO_CV_ROWS`` customers (``y``) and each
    class ``AUTO_CV_MIN_CLASS``."""
    return (metrics.get("ece_verdict") not in (None, "met") and AUTO_CV_ROWS[0] <= len(y) <= AUTO_CV_ROWS[1]
            and min(int(y.sum()), int((1 - y).sum())) >= AUTO_CV_MIN_CLASS)


def train_on_table(path: Path, label: str, id_col: str, out: Path, seed: int = 0,
                   progress: Progress | None = None, allow_leaky: tuple[str, ...] = (),
                   as_of: dt.date | None = None, date_format: str | None = None,
                   profile: ProfileSettings | None = None, cross_validate: int | None = 0) -> TrainResult:
    """Bring your own table: a flat churn table, stratified split, same calibration, tiers
    and reasons (each column is its own signal, so reasons are at feature level). Date columns
    count days to ``as_of`` (``--as-of``; default: the table's latest date not after today in its
    past-looking columns) and text dates that are not ISO read with ``date_format`` (``training.table_dates``).
    ``cross_validate``: K > 0 also runs the whole procedure on K folds of all customers
    (``training.table_cv``); the figures go to ``metrics["cross_validation"]``; None (the CLI's default): on
    ``AUTO_CV_FOLDS`` folds when the test split does not meet the calibration target (``AUTO_CV_ROWS``)."""
    from training.own_table import describe_table, load_own_table, stratified_split, table_rows, table_test_predictions

    table = load_own_table(path, label=label, id_col=id_col, as_of=as_of, date_format=date_format, profile=profile)
    day = dt.date.fromisoformat(table.report["as_of"]) if table.report.get("as_of") else None
    for line in describe_table(table.report) if progress else ():
        progress(line)
    rows, catalogue = table_rows(table)
    catalogue = with_config_keep(catalogue, profile)  # profile.columns.<c>.keep: screened categories kept
    if cross_validate:
        check_folds(cross_validate, np.asarray(table.y, dtype=int))
    train_idx, cal_idx, test_idx = stratified_split(table.y, seed=seed)
    train = rows.iloc[np.sort(np.r_[train_idx, cal_idx])]
    # model choice, early stopping and calibration on out-of-fold scores of all non-test rows (a 20%
    # slice of a few thousand customers is too noisy to choose or calibrate on, and costs the model data)
    result = fit_and_evaluate(train, None, None, None, rows.iloc[test_idx], catalogue, out,
                              seed=seed, rule_baseline=False, progress=progress, allow_leaky=allow_leaky)
    result.bundle.test_predictions = table_test_predictions(result.bundle, rows.iloc[test_idx], as_of=day)
    say = progress or (lambda _m: None)
    m = result.metrics
    auto = cross_validate is None and auto_cross_validation(m, np.asarray(table.y, dtype=int))
    if auto:
        say(f"calibration on the {len(test_idx):,} test rows: ECE {m['ece']:.4f} against the target "
            f"{m['ece_target']:.4f}, where a perfectly calibrated model would show about {m['ece_noise']:.4f} by "
            f"chance: cross-validating the same procedure on all {len(rows):,} customers ({AUTO_CV_FOLDS} folds; "
            "--cross-validate 0 skips it)")
        cross_validate = AUTO_CV_FOLDS
    if cross_validate:
        try:
            result.metrics["cross_validation"] = cv_record(cross_validate_table(
                rows, catalogue, cross_validate, fit_and_evaluate, seed=seed, allow_leaky=allow_leaky, say=say))
        except ChurnwatchError as exc:  # a fold's calibration, evaluation, baseline or training
            if not auto:
                raise
            say(f"cross-validation skipped (not requested; the model is trained): {exc}")
    elif result.metrics.get("ece_verdict") == "not measurable":
        say(f"the {len(test_idx):,} test rows cannot resolve the calibration target: --cross-validate 5 judges "
            f"the same procedure on all {len(rows):,} customers")
    result.bundle.meta = {"kind": "table", "created_at": dt.datetime.now().isoformat(timespec="seconds"),
                          "file": str(Path(path).resolve()), "label": label, "id": id_col, "seed": seed,
                          "as_of": table.report.get("as_of"), "as_of_source": table.report.get("as_of_source"),
                          "table_report": table.report, "metrics": result.metrics,
                          "baselines": json.loads(result.comparison.to_json(orient="records")),
                          "training": result.training, "versions": _versions(),
                          "leakage": result.leakage}
    return result


def _versions() -> dict:
    return {p: md.version(p) for p in ("churnwatch", "lightgbm", "scikit-learn", "pandas", "duckdb", "mlflow")}


def flat_metrics(result: TrainResult) -> dict[str, float]:
    """Every figure as one MLflow metric (model_*, logistic_*, rule_*, tier_*)."""
    out: dict[str, float] = {}
    for k, v in result.metrics.items():
        if isinstance(v, int | float) and v is not None and np.isfinite(v):
            out[f"model_{k}"] = float(v)
    for tier, d in result.metrics.get("per_tier", {}).items():
        out[f"tier_{tier}_count"] = float(d["count"])
        if d["churn_rate"] is not None:
            out[f"tier_{tier}_churn_rate"] = float(d["churn_rate"])
    prefixes = {"logistic regression": "logistic", "rule health score": "rule", "renewal calendar": "calendar"}
    for row in result.comparison.to_dict(orient="records"):
        # the registered model's row under model_* beside its other figures (MLflow said lightgbm_* before, whatever
        # was chosen); a figure the metrics already hold is theirs
        prefix = "model" if row.get("registered") else prefixes[row["model"]]
        for k in ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "top_decile_capture"):
            if row.get(k) is not None and np.isfinite(row[k]):
                out.setdefault(f"{prefix}_{k}", float(row[k]))
    for name, d in result.metrics.get("vs_baselines", {}).items():
        key = name.split()[0]
        for k in ("roc_auc_diff", "roc_auc_lo", "roc_auc_hi", "pr_auc_diff", "pr_auc_lo", "pr_auc_hi"):
            if np.isfinite(d[k]):
                out[f"vs_{key}_{k}"] = float(d[k])
    selection = result.training.get("selection", {})
    for name, v in selection.get("validation_roc_auc", {}).items():
        if np.isfinite(v):
            out[f"validation_roc_auc_{name}"] = float(v)
    if selection.get("rule_validation_roc_auc") is not None:  # the rule on the same rows: a reference
        out["validation_roc_auc_rule_health"] = float(selection["rule_validation_roc_auc"])
    for name, d in selection.get("noise", {}).items():  # the one-standard-error rule's inputs
        out[f"validation_gap_{name}"], out[f"validation_gap_se_{name}"] = float(d["gap"]), float(d["se"])
    for name, v in (selection.get("partial_windows") or {}).get("validation_roc_auc", {}).items():
        out[f"validation_roc_auc_logistic_{name}_partial_windows"] = float(v)  # with / without them
    if (selection.get("partial_windows") or {}).get("validation_roc_auc"):
        out["validation_gap_se_partial_windows"] = float(selection["partial_windows"]["gap_se"])
    for method, v in result.training.get("calibration", {}).get("out_of_fold_log_loss", {}).items():
        out[f"calibration_log_loss_{method}"] = float(v)
    if result.metrics.get("cross_validation"):
        out.update(cv_metrics(result.metrics["cross_validation"]))
    window = result.metrics.get("renewal_window")
    if window:  # the model among the accounts whose term ends within the label's reach
        out.update({f"renewal_window_{k}": float(window[k]) for k in ("roc_auc", "rows", "churned", "days")})
    return out


def _start_run(client, started_at: float | None):
    """The MLflow run, started when training started (its duration is the real one); under
    ``mlflow run`` the run that command started."""
    import os

    name = f"train-{dt.datetime.now():%Y%m%d-%H%M%S}"
    if os.environ.get("MLFLOW_RUN_ID") or started_at is None:
        return mlflow.start_run(run_name=name)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    run = client.create_run(experiment.experiment_id, start_time=int(started_at * 1000), run_name=name)
    return mlflow.start_run(run_id=run.info.run_id)


def log_run(result: TrainResult, tracking_uri: str, artifact_root: Path, params: dict) -> TrainResult:
    """One MLflow run: params, metrics, bundle, plots, comparison; registers a version."""
    client = setup(tracking_uri, artifact_root)
    with _start_run(client, result.started_at) as run:
        mlflow.log_params({k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in params.items()
                           if v is not None})
        mlflow.log_metrics(flat_metrics(result))
        info = result.training
        mlflow.set_tags({"churnwatch.kind": result.bundle.meta.get("kind", ""),
                         "churnwatch.input_hash": str(result.bundle.meta.get("input_hash", "")),
                         "churnwatch.model": info.get("selection", {}).get("chosen", ""),
                         "churnwatch.calibration": info.get("calibration", {}).get("method", ""),
                         "churnwatch.dropped_features": ", ".join(info.get("dropped_features", {}))[:4000],
                         **leakage_tags(result.bundle.meta)})
        mlflow.log_dict(info, "training/selection_calibration_dropped.json")
        with tempfile.TemporaryDirectory() as tmp:
            folder = result.bundle.save(Path(tmp) / "bundle")
            mlflow.log_artifacts(str(folder), artifact_path="bundle")
        for path in result.plots.values():
            mlflow.log_artifact(str(path), artifact_path="plots")
        mlflow.log_text(result.comparison.to_csv(index=False), "evaluation/model_vs_baselines.csv")
        mlflow.log_dict(result.metrics, "evaluation/metrics.json")
    result.run_id = run.info.run_id
    result.version = register(client, run.info.run_id, description=json.dumps(
        {k: result.bundle.meta.get(k) for k in ("kind", "training_window")}, default=str),
        tags=leakage_tags(result.bundle.meta))
    return result


def params_of(result: TrainResult) -> dict:
    meta = result.bundle.meta
    keep = ("kind", "seed", "horizon_days", "grace_days", "input_hash", "data_start", "data_end", "split",
            "training_window", "versions", "label", "id", "file", "as_of", "as_of_source")
    out: dict = {k: meta[k] for k in keep if k in meta}
    out["trees"] = result.metrics.get("trees")
    out["features"] = len(result.bundle.frame.names)
    info = result.training
    selection = info.get("selection", {})
    out["model"] = selection.get("chosen")
    out["best_on_validation"] = selection.get("best_on_validation")
    out["selection_rule"] = selection.get("rule")
    out["blend_tree_weight"] = selection.get("tree_weight")
    out["logistic_C"] = selection.get("logistic_C")
    out["ece_verdict"] = result.metrics.get("ece_verdict")  # met / not met / not measurable
    out["validation"] = selection.get("validation")
    out.update(_direction_params(selection.get("learned_directions") or {}, selection.get("judging_directions") or []))
    for k, v in selection.get("params", {}).items():  # every hyperparameter of the chosen model
        out[f"lgbm_{k}"] = v
    out["candidates"] = {name: {k: v for k, v in CANDIDATES[name].items()} for name in CANDIDATES}
    out["calibration"] = info.get("calibration", {}).get("method")
    out["dropped_features"] = capped_list(sorted(info.get("dropped_features", {})))
    partial = selection.get("partial_windows") or {}
    out["partial_windows"] = (f"{'left out' if partial['left_out'] else 'kept'}: {len(partial['lookback_days'])} "
                              "feature(s) partial on most training dates" if partial else "none")
    if meta.get("kind") == "snapshots":  # long terms the labels never saw renew or lapse (training/renewals.py)
        out["unseen_renewals"] = unseen_renewals_param(info.get("unseen_renewals"))
    if "training" in meta and "options" in meta["training"]:
        out["training_options"] = meta["training"]["options"]
    return out


def _direction_params(final: dict[str, int], judging: list[dict[str, int]]) -> dict[str, str]:
    """MLflow params: the trees' learned directions of the final fit, and the features whose
    direction while judging (one sign per fold: + - or 0) differs from it."""
    if not final and not judging:
        return {}

    def sign(v: int | None) -> str:
        return {1: "+", -1: "-"}.get(v or 0, "0")

    differ = sorted({n for fold in judging for n in set(fold) | set(final) if fold.get(n) != final.get(n)})
    return {"directions_final": capped_list([f"{n} {sign(v)}" for n, v in final.items()]),
            "directions_judging_differ": capped_list([f"{n} {''.join(sign(f.get(n)) for f in judging)}"
                                                      for n in differ])}


#: An MLflow param holds 6,000 characters; the full lists are in the logged training info.
PARAM_CAP = 5000


def capped_list(items: list[str], cap: int = PARAM_CAP) -> str:
    """``items`` joined by ", " for an MLflow param, cut at a whole item with "... and N more
    (training/selection_calibration_dropped.json)" when longer than ``cap``; "none" when empty."""
    if not items:
        return "none"
    text, kept = "", 0
    for item in items:
        nxt = f"{text}, {item}" if text else item
        if len(nxt) > cap - 80:
            break
        text, kept = nxt, kept + 1
    if kept == len(items):
        return text
    return f"{text} ... and {len(items) - kept} more (training/selection_calibration_dropped.json)"
