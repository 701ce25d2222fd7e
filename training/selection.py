"""Choosing the model on validation rows inside the training dates (issue 12 item 6).

Over 400 lines: the candidate set, the three kinds of validation folds (a block, account-grouped,
split in time and by account) and the directions learned for the trees belong to one decision
and are read together.

The candidate set (``CANDIDATES``), all LightGBM with the catalogue's monotone constraints:

* ``lgbm_default``: ``model.DEFAULT_PARAMS`` (31 leaves, 100 rows per leaf);
* ``lgbm_regularised``: 15 leaves, 200 rows per leaf, L2 10, 70% of features per tree;
* ``lgbm_shallow``: depth-2 trees (4 leaves), 300 rows per leaf, L2 30: close to additive;
* ``lgbm_linear_tree``: LightGBM's ``linear_tree`` (a linear model in each of 8 leaves).
  LightGBM cannot compute TreeSHAP for linear trees, so it is a *probe* for a linear
  signal and is never registered;
* the logistic regression (``LinearPart``: standardised values, missing indicators, one-hot
  categoricals) at each L2 strength of ``LOGISTIC_C``, then the best of them with ``log1p``
  terms of the non-negative numerics (a concave shape such as tenure's); the best on the
  validation rows is the linear part of every blend;
* the blend of the best plain trees with that logistic regression at tree
  weights 0 (the logistic regression alone) / 0.1 / 0.25 / 0.5 / 0.75 / 0.9, always tried:
  the validation rows decide, so a linear signal is never lost to the trees;
* ``blend_w<weight>``: ``training.blend.BlendedModel`` (exact contributions).

Rows per leaf shrink with small data (at most 1/40 of the fitting rows, at least 20).

**The choice is noise-aware** (the one-standard-error rule, Hastie et al., *Elements of
Statistical Learning* §7.10): the registrable candidates are ordered from the simplest
(``SIMPLICITY``: the logistic regression alone, then blends by rising tree weight, then the
shallow, regularised and default trees) and the simplest whose validation ROC-AUC is within
``SE_RULE`` standard errors of the best is chosen. The standard error is that of the paired
difference to the best, over ``NOISE_RESAMPLES`` bootstrap resamples of the validation rows
that draw whole accounts (``training.bootstrap.resamples``). On a few hundred churners the
validation ranking of close candidates is mostly noise, and a more flexible model that wins
it by chance loses out of time; a simpler one loses little where the trees are really better,
because then the gap exceeds the noise. ``Selection.noise`` records each candidate's gap and
standard error.

Validation rows: in the purged layout the early-stopping block (candidates are fitted on the
rows a purge gap before it). When cross-fitting (the ``cross_fit`` and ``account_holdout``
layouts of ``training.split``), folds split in time AND by account (``forward_folds``): the
accounts fall into ``k`` groups (``GroupKFold`` on ``account_id``) and the training as-of dates
at a cut (the latest ``FORWARD_VAL_SHARE`` of them are judged); fold ``j`` is fitted on the
other groups' rows on the dates before the cut and judged on group ``j``'s rows from the cut
on, each fold's trees early-stopped on its judged rows. Why: judged on account-grouped folds
over the SAME dates as their fitting rows, whatever the trees learn about those dates (a
cohort told apart by its tenure on them, a campaign's weeks) is confirmed by other accounts on
the same dates, yet it does not carry forward to the later, purged test block
(tests/training/test_time_split_choice.py). No purge gap fits between fitting and judged
dates of a short training block: with no account on both sides no judged label is seen in
fitting, but a market-wide change in the judged weeks does reach the fitting labels. Rows on
fewer than ``MIN_FORWARD_DATES`` as-of dates (a flat table has none) keep account-grouped
folds over every row (``cross_fit_folds``).

**Directions from the training rows** (short histories only): a drift that begins after the
training block cannot be seen by any fold inside it. On a 12-month consumer log (9 weekly
training dates, test 13 weeks later) the trees led the logistic regression by 0.03 on
grouped AND on time-split folds, and lost to it by 0.02-0.04 on the test block: their free
shapes in the features the catalogue gives no direction (every event type of a foreign log,
the company's own columns: a bump of churn at ages 40-50 in the training weeks) did not carry
forward. So when the choice is time-split, each such numeric feature whose Spearman
correlation with churn on the training rows is at least ``DIRECTION_Z`` standard errors from
zero (each account counted once) gets that direction as a monotone constraint of the trees
(``learned_directions``). There the test ROC-AUC went from 0.610 (blend, tree weight 0.75;
-0.025 against the logistic baseline's 0.634, 95% -0.047 to -0.001) to 0.631 (shallow trees;
-0.003, 95% -0.025 to +0.018). The linear part keeps its coefficients free (constraining it
by univariate signs cost 0.008 on validation on our consumer log: correlated counts). The
purged layout judges on a purged early-stopping block: there the choice does see a gap.

The directions the trees are *judged* with come only from rows their fold may fit on: each
fold's from its own fitting rows (the other accounts' rows on the dates before the cut;
``fold_directions``). Learned on all training rows they had seen the judged rows' labels: a
relation present only on the later, judged dates handed its direction to the trees and
flattered them on exactly those rows (tests/training/test_judging_directions.py: the default
trees' validation ROC-AUC 0.796 with it, 0.742 without). The refit on all training rows takes
the directions learned on all of them; the run records both (``learned_directions``,
``judging_directions`` per fold). Calibration's cross-fitted scores (``chosen_out_of_fold``)
are made the same way as the final model: each account-grouped fold's trees take the directions of
that fold's own fitting rows (``calibration_directions``), not those of all rows, which include
the held-out fold's labels. On our generated sets judging so changed
the choice on the Stripe-shaped export (blend, tree weight 0.25 -> the logistic regression alone;
test ROC-AUC 0.697 -> 0.696) and on the 9-month consumer log (blend 0.25 -> 0.5; 0.783 -> 0.782).

The measure is ROC-AUC on the judged rows (the ranking is
what a CS team acts on; calibration comes after). The number of trees is the early-stopping
round (median over folds); the winner is refitted on all training rows. Calibration still
cross-fits every training row: the chosen candidate's out-of-fold scores on account-grouped
folds (``chosen_out_of_fold``). The test block plays no part.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.model_selection import GroupKFold

from core.progress import track
from training.blend import BlendedModel, LinearPart, as_matrix
from training.bootstrap import Ranked, rank_roc_auc, two_class_counts
from training.errors import TrainingError
from training.model import DEFAULT_PARAMS

log = logging.getLogger(__name__)

CANDIDATES: dict[str, dict] = {
    "lgbm_default": {},
    "lgbm_regularised": {"num_leaves": 15, "min_data_in_leaf": 200, "lambda_l2": 10.0, "feature_fraction": 0.7},
    "lgbm_shallow": {"num_leaves": 4, "max_depth": 2, "min_data_in_leaf": 300, "lambda_l2": 30.0},
    "lgbm_linear_tree": {"linear_tree": True, "num_leaves": 8, "min_data_in_leaf": 200, "linear_lambda": 1.0},
}
#: Candidates that cannot give exact contributions: judged, never registered.
PROBES = ("lgbm_linear_tree",)
BLEND_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)
#: Inverse L2 strengths tried for the logistic regression (on standardised columns).
LOGISTIC_C = (0.05, 0.5)
MAX_ROUNDS = 2000
#: Below this many fitting rows LightGBM trains on one thread (on a shared machine many times
#: faster: 3.7 s instead of 54 s for one fit of 1,500 rows measured under load).
SINGLE_THREAD_ROWS = 50_000
PATIENCE = 100
#: The one-standard-error rule: a simpler candidate within this many standard errors of the best wins.
SE_RULE = 1.0
#: Bootstrap resamples (whole accounts) of the validation rows for the standard errors.
NOISE_RESAMPLES = 100


def simplicity(name: str) -> tuple[int, float]:
    """Sort key from the simplest registrable candidate to the most flexible: the blends by
    tree weight (weight 0: the logistic regression alone), then shallow, regularised and
    default trees."""
    if name.startswith("blend_w"):
        return 0, float(name[len("blend_w"):])
    order = ("lgbm_shallow", "lgbm_regularised", "lgbm_default")
    return 1, float(order.index(name) if name in order else len(order))


def describe(chosen: str | None) -> str:
    """A candidate as a reader names it: ``blend_w0`` is the logistic regression alone, ``blend_wX`` a blend
    with tree weight X, ``lgbm_*`` LightGBM alone (the comparison table, its CSV, the ROC/PR plot and the
    terminal all name the registered model so; a probe read "lightgbm" losing to "logistic" in the plot of a
    run that had registered a logistic regression)."""
    if not chosen:
        return "the chosen model"
    if chosen.startswith("blend_w"):
        weight = chosen.removeprefix("blend_w")
        return ("logistic regression (sign-constrained, chosen C)" if float(weight) == 0
                else f"blend, tree weight {weight}")
    if chosen.startswith("lgbm_"):
        return f"LightGBM ({chosen.removeprefix('lgbm_').replace('_', ' ')})"
    return chosen


@dataclass
class Fold:
    """One (fit rows -> validation rows) pair, as positions into the training rows or frames."""

    X_fit: pd.DataFrame
    y_fit: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    val_index: np.ndarray  # positions of the validation rows in the pooled validation vector
    fit_rows: np.ndarray | None = None  # positions of the fitting rows in the training rows
    constraints: list[int] | None = None  # the trees' monotone constraints while judged on this fold


@dataclass
class Selection:
    """The outcome: which candidate, its parameters and its validation scores."""

    chosen: str
    params: dict
    rounds: int
    tree_weight: float | None
    scores: dict[str, float]  # candidate -> validation ROC-AUC
    val_raw: np.ndarray  # the chosen model's validation log-odds (pooled)
    val_y: np.ndarray
    rounds_by_candidate: dict[str, int] = field(default_factory=dict)
    linear_c: float = 1.0  # the logistic regression's C (the linear part of a blend)
    linear_log_terms: bool = False  # whether it has log1p terms (``LinearPart``)
    best: str = ""  # the candidate with the highest validation ROC-AUC (``chosen`` if no simpler one ties)
    noise: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate -> gap to best, its SE


def noise_aware_choice(y: np.ndarray, raws: dict[str, np.ndarray], names: list[str],
                       groups: np.ndarray | None = None, seed: int = 0,
                       se_rule: float = SE_RULE, n_boot: int = NOISE_RESAMPLES,
                       order: Callable[[str], object] = simplicity) -> tuple[str, str, dict]:
    """The one-standard-error rule over ``names`` (registrable candidates' validation scores);
    ``order``: sort key from the simplest to the most flexible (default ``simplicity``).

    Returns:
        (chosen, best, {candidate: {"gap": best's ROC-AUC minus its, "se": bootstrap SE of the gap}}).
    """
    scores = {n: _auc(y, raws[n]) for n in names}
    best = max(names, key=lambda n: scores[n])
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = {n: [] for n in names}
    ranked, labels = {n: Ranked(raws[n]) for n in names}, np.asarray(y, dtype=np.float64)
    for counts in two_class_counts(labels, groups, n_boot, rng):
        top = ranked[best].roc_auc(labels, counts)
        for n in names:
            boot[n].append(top - ranked[n].roc_auc(labels, counts) if n != best else 0.0)
    noise = {n: {"gap": scores[best] - scores[n], "se": float(np.std(boot[n])) if boot[n] else 0.0} for n in names}
    for n in sorted(names, key=order):
        if noise[n]["gap"] <= se_rule * noise[n]["se"]:
            return n, best, noise
    return best, best, noise


def candidate_params(name: str, n_rows: int, constraints: list[int], seed: int) -> dict:
    """Full LightGBM parameters of a candidate for ``n_rows`` fitting rows."""
    p = {**DEFAULT_PARAMS, **CANDIDATES[name], "seed": seed, "monotone_constraints": constraints}
    p["min_data_in_leaf"] = int(min(p["min_data_in_leaf"], max(20, n_rows // 40)))
    if n_rows < SINGLE_THREAD_ROWS:  # OpenMP's thread team costs more than it saves on small data
        p["num_threads"] = 1
    return p


def holdout_folds(X_fit: pd.DataFrame, y_fit: np.ndarray, X_val: pd.DataFrame, y_val: np.ndarray) -> list[Fold]:
    return [Fold(X_fit, y_fit, X_val, y_val, np.arange(len(y_val)))]


def grouped_folds(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, k: int = 4) -> list[Fold]:
    """Account-grouped folds: no account is in both a fold's fitting and validation rows."""
    k = int(min(k, len(np.unique(groups))))
    out = []
    for tr, va in GroupKFold(n_splits=k).split(X, y, groups):
        out.append(Fold(X.iloc[tr], y[tr], X.iloc[va], y[va], va, fit_rows=tr))
    return out


#: Fewest distinct as-of dates in the training rows for time-split folds (else account-grouped only).
MIN_FORWARD_DATES = 4
#: Share of the training as-of dates (the latest) whose rows are judged in the time-split folds.
FORWARD_VAL_SHARE = 0.5


def forward_folds(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, as_of: np.ndarray, k: int = 4,
                  val_share: float = FORWARD_VAL_SHARE, gap_share: float = 0.0) -> tuple[list[Fold], np.ndarray]:
    """Folds split in time AND by account (forward-chaining): the accounts in ``k`` groups
    (``GroupKFold``) and the as-of dates at a cut, the latest ``val_share`` of the dates judged;
    fold ``j`` is fitted on the rows of the other groups' accounts on the dates before the cut
    (``gap_share`` of the dates just before it left out) and judged on group ``j``'s rows on the
    dates from the cut on. No account is on both sides and every judged row is later than every
    fitting row, so a pattern tied to the training dates themselves (a cohort's tenure on those
    dates, a week's campaign) earns nothing on validation.

    Returns:
        (folds, positions): ``positions`` are the training-row positions of the pooled validation
        rows (each judged row once, in training-row order).
    """
    dates = pd.to_datetime(pd.Series(as_of)).dt.normalize().to_numpy()
    unique = np.unique(dates)
    n = len(unique)
    n_val = int(min(n - 1, max(1, round(n * val_share))))
    n_gap = int(min(n - n_val - 1, round(n * gap_share)))
    cut, fit_last = unique[n - n_val], unique[n - n_val - n_gap - 1]
    groups = np.asarray(groups)
    k = int(min(k, len(np.unique(groups))))
    part = np.empty(len(y), dtype=int)
    for j, (_, va) in enumerate(GroupKFold(n_splits=k).split(X, y, groups)):
        part[va] = j
    judged, fitted = dates >= cut, dates <= fit_last
    positions = np.flatnonzero(judged)
    pooled = np.full(len(y), -1)
    pooled[positions] = np.arange(len(positions))
    out = []
    for j in range(k):
        fit = np.flatnonzero(fitted & (part != j))
        val = np.flatnonzero(judged & (part == j))
        out.append(Fold(X.iloc[fit], y[fit], X.iloc[val], y[val], pooled[val], fit_rows=fit))
    return out, positions


def cross_fit_folds(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, as_of: np.ndarray | None,
                    k: int = 4) -> tuple[list[Fold], np.ndarray, str]:
    """The model-choice folds when there is no separate early-stopping block: time-split and
    account-grouped (``forward_folds``) when the training rows span at least
    ``MIN_FORWARD_DATES`` as-of dates, else account-grouped over all rows (``grouped_folds``;
    a flat table has no dates). Returns (folds, validation-row positions, a description)."""
    if as_of is not None and len(np.unique(pd.to_datetime(pd.Series(as_of)).dt.normalize())) >= MIN_FORWARD_DATES:
        folds, positions = forward_folds(X, y, groups, as_of, k)
        if _judgeable(folds):
            first = pd.to_datetime(pd.Series(as_of)).iloc[positions].min().date()
            return folds, positions, (f"{len(folds)} account-grouped folds split in time (fitted on the dates before "
                                      f"{first}, judged on the other accounts' rows from {first} on)")
        folds = grouped_folds(X, y, groups, k)
        return folds, np.arange(len(y)), (f"{len(folds)} account-grouped folds (split in time, the later dates held "
                                          f"fewer than {MIN_JUDGED_CHURNERS} churners or a fold had none to fit on)")
    folds = grouped_folds(X, y, groups, k)
    if as_of is None:  # a flat table: one row per customer
        return folds, np.arange(len(y)), f"{len(folds)} folds of customers"
    return folds, np.arange(len(y)), f"{len(folds)} account-grouped folds"


#: Fewest churners among the judged rows of the time-split folds (fewer: account-grouped folds instead).
MIN_JUDGED_CHURNERS = 20


def _judgeable(folds: list[Fold]) -> bool:
    """Whether time-split folds can rank the candidates: every fold has rows of both classes to fit
    on and rows to judge, and the judged rows hold ``MIN_JUDGED_CHURNERS`` churners or more."""
    return (all(len(f.y_val) and 0 < f.y_fit.sum() < len(f.y_fit) for f in folds)
            and sum(int(f.y_val.sum()) for f in folds) >= MIN_JUDGED_CHURNERS)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return rank_roc_auc(y, s) if 0 < y.sum() < len(y) else float("nan")


def _trees_on(params: dict, folds: list[Fold], n_val: int) -> tuple[np.ndarray, int]:
    raw, rounds = np.empty(n_val), []
    for f in folds:
        cat = [c for c in f.X_fit.columns if isinstance(f.X_fit[c].dtype, pd.CategoricalDtype)]
        dfit = lgb.Dataset(f.X_fit, f.y_fit, categorical_feature=cat, free_raw_data=False)
        dval = lgb.Dataset(f.X_val, f.y_val, categorical_feature=cat, reference=dfit, free_raw_data=False)
        fold_params = params if f.constraints is None else {**params, "monotone_constraints": f.constraints}
        probe = lgb.train(fold_params, dfit, num_boost_round=MAX_ROUNDS, valid_sets=[dval],
                          callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])
        best = int(probe.best_iteration or MAX_ROUNDS)
        raw[f.val_index] = probe.predict(f.X_val, raw_score=True, num_iteration=best)
        rounds.append(best)
    return raw, max(int(np.median(rounds)), 20)


def linear_on(folds: list[Fold], n_val: int, names: list[str], categorical: list[str],
              directions: dict[str, int], C: float, log_terms: bool, screened: Collection[str] = ()) -> np.ndarray:
    """The logistic regression's (``LinearPart``) out-of-fold log-odds on the folds' validation rows."""
    raw = np.empty(n_val)
    for f in folds:
        part = LinearPart(names, categorical, directions, C=C, log_terms=log_terms,
                          screened=screened).fit(as_matrix(f.X_fit), f.y_fit)
        raw[f.val_index] = part.raw(as_matrix(f.X_val))
    return raw


def select_model(folds: list[Fold], n_val: int, names: list[str], categorical: list[str],
                 directions: dict[str, int], constraints: list[int], seed: int = 0,
                 say: Callable[[str], None] | None = None, groups: np.ndarray | None = None,
                 screened: Collection[str] = ()) -> Selection:
    """Judge every candidate on the folds' validation rows; return the simplest registrable one
    within the noise of the best (``noise_aware_choice``; ``groups``: the validation rows'
    account ids, resampled together). ``constraints`` are the trees' monotone constraints in the
    returned parameters (the final fit); a fold's own ``Fold.constraints`` replace them while
    its trees are fitted and judged (``fold_directions``)."""
    say = say or (lambda _m: None)
    y_val = np.empty(n_val)
    for f in folds:
        y_val[f.val_index] = f.y_val
    n_fit = min(len(f.y_fit) for f in folds)
    raws, rounds, scores, params, failed = {}, {}, {}, {}, {}
    for name in track(say, CANDIDATES, f"LightGBM candidates on {len(folds)} fold(s)"):
        params[name] = candidate_params(name, n_fit, constraints, seed)
        try:
            raws[name], rounds[name] = _trees_on(params[name], folds, n_val)
        except lgb.basic.LightGBMError as exc:  # e.g. linear_tree on a feature set it cannot take
            log.warning("candidate %s skipped: %s", name, exc)
            failed[name] = str(exc).splitlines()[0]
            continue
        scores[name] = _auc(y_val, raws[name])
    say(f"logistic regression (C {', '.join(f'{c:g}' for c in LOGISTIC_C)}, then with log terms) on "
        f"{len(folds)} fold(s)")
    for c in LOGISTIC_C:
        raws[f"logistic_C{c:g}"] = linear_on(folds, n_val, names, categorical, directions, c, False, screened)
        scores[f"logistic_C{c:g}"] = _auc(y_val, raws[f"logistic_C{c:g}"])
    linear_c = max(LOGISTIC_C, key=lambda c: scores[f"logistic_C{c:g}"])
    best = f"logistic_C{linear_c:g}"
    raws[best + "_log"] = linear_on(folds, n_val, names, categorical, directions, linear_c, True, screened)
    scores[best + "_log"] = _auc(y_val, raws[best + "_log"])
    log_terms = scores[best + "_log"] > scores[best]
    best += "_log" if log_terms else ""
    raws["logistic"], scores["logistic"] = raws[best], scores[best]
    plain = [n for n in scores if n in CANDIDATES and n not in PROBES]
    if not plain:  # every tree candidate refused by LightGBM: say why, not max() of nothing
        raise TrainingError("LightGBM could not train any candidate: " + "; ".join(
            f"{name}: {why}" for name, why in failed.items()))
    best_tree = max(plain, key=lambda n: scores[n])
    weights: dict[str, float] = {}
    for w in BLEND_WEIGHTS:  # weight 0: the logistic regression alone (its contributions are exact too)
        name = f"blend_w{w:g}"
        raws[name] = w * raws[best_tree] + (1 - w) * raws["logistic"]
        scores[name] = _auc(y_val, raws[name])
        weights[name] = w
    registrable = plain + list(weights)
    chosen, top, noise = noise_aware_choice(y_val, raws, registrable, groups, seed)
    why = "" if chosen == top else (f" (the simplest within {SE_RULE:g} standard error of the best, {top}: "
                                    f"{noise[chosen]['gap']:+.4f} vs SE {noise[chosen]['se']:.4f})")
    say("validation ROC-AUC: " + ", ".join(f"{n} {s:.4f}" for n, s in scores.items()) + f" -> {chosen}{why}")
    base = chosen if chosen in CANDIDATES else best_tree
    return Selection(chosen=chosen, params=params[base], rounds=rounds[base], tree_weight=weights.get(chosen),
                     scores=scores, val_raw=raws[chosen], val_y=y_val, rounds_by_candidate=rounds,
                     linear_c=linear_c, linear_log_terms=log_terms, best=top, noise=noise)


def chosen_out_of_fold(selection: Selection, folds: list[Fold], n_val: int, names: list[str],
                       categorical: list[str], directions: dict[str, int], screened: Collection[str] = ()
                       ) -> np.ndarray:
    """The chosen candidate's out-of-fold log-odds on ``folds`` (its trees early-stopped on each
    held-out fold, as in ``select_model``): the cross-fitted calibration rows when the model-choice
    folds judge only the later training dates (``forward_folds``)."""
    w = selection.tree_weight
    trees = _trees_on(selection.params, folds, n_val)[0] if w is None or w > 0 else 0.0
    if w is None:
        return trees
    linear = linear_on(folds, n_val, names, categorical, directions, selection.linear_c,
                       selection.linear_log_terms, screened)
    return w * trees + (1 - w) * linear


def fit_chosen(selection: Selection, X: pd.DataFrame, y: np.ndarray, names: list[str], categorical: list[str],
               directions: dict[str, int], screened: Collection[str] = ()) -> lgb.Booster | BlendedModel:
    """The chosen candidate refitted on all training rows with its number of trees."""
    cat = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    full = lgb.Dataset(X, y, categorical_feature=cat, free_raw_data=False)
    booster = lgb.train(selection.params, full, num_boost_round=selection.rounds)
    if selection.tree_weight is None:
        return booster
    linear = LinearPart(names, categorical, directions, C=selection.linear_c,
                        log_terms=selection.linear_log_terms, screened=screened).fit(as_matrix(X), y)
    return BlendedModel(booster, linear, selection.tree_weight)


#: A direction is taken from the training rows for a feature the catalogue leaves open when its
#: rank correlation with churn there is this many standard errors from zero (each account counted
#: once: its rows on several as-of dates are not independent).
DIRECTION_Z = 3.0


def learned_directions(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, names: list[str],
                       categorical: list[str], directions: dict[str, int]) -> dict[str, int]:
    """Directions (+1 more means more risk, -1 less) for the numeric features without one in
    ``directions``: the sign of their Spearman correlation with churn on the training rows, where it
    is at least ``DIRECTION_Z`` standard errors (``1 / sqrt(accounts - 1)``) from zero. Only the
    features given a direction are returned."""
    n = len(np.unique(groups))
    out: dict[str, int] = {}
    for name in names:
        if name in categorical or directions.get(name, 0) != 0 or n < 3:
            continue
        x = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=float)
        ok = ~np.isnan(x)
        if ok.sum() < 50 or np.unique(x[ok]).size < 2 or not 0 < y[ok].sum() < ok.sum():
            continue
        rho = float(spearmanr(x[ok], y[ok])[0])
        if np.isfinite(rho) and abs(rho) * np.sqrt(n - 1) >= DIRECTION_Z:
            out[name] = 1 if rho > 0 else -1
    return out


def fold_directions(folds: list[Fold], groups: np.ndarray, names: list[str], categorical: list[str],
                    directions: dict[str, int], constraints: list[int]) -> list[dict[str, int]]:
    """``learned_directions`` per fold from that fold's fitting rows only, set as the fold's
    ``constraints`` (``constraints`` with the learned directions in place): the directions the
    trees are judged with never saw a judged row's label. ``groups``: the training rows'
    account ids. Returns each fold's learned directions."""
    out = []
    for f in folds:
        if f.fit_rows is None:
            raise ValueError("fold_directions needs folds that know their fitting rows (fit_rows)")
        learned = learned_directions(f.X_fit, f.y_fit, np.asarray(groups)[f.fit_rows], names, categorical,
                                     directions)
        f.constraints = [learned.get(n, c) for n, c in zip(names, constraints)]
        out.append(learned)
    return out
