"""Calibration that keeps the ranking: raw model log-odds -> churn probability (issue 12 item 5).

Every method here is a *strictly increasing* map of the model's raw score (log-odds) that
never returns exactly 0 or 1, so distinct scores stay distinct (ties only where the model
ties) and "who to call first" is never a tie broken by account id:

* ``platt``: ``p = sigmoid(a * s + b)`` with ``a > 0``;
* ``beta`` (Kull et al. 2017) on ``q = sigmoid(s)``: ``logit p = a ln q - b ln(1 - q) + c`` with
  ``a, b > 0``. A fit that would need a coefficient of 0 or below is refused (``DegenerateMap``), not
  refitted without it: ``a = 0`` floors every low score at ``sigmoid(c)`` (a probe's 8-month API export:
  90% of the accounts between 4.8% and 5.4%, the tiers 0.16 points apart, the test ECE 0.025 before
  calibration and 0.039 after), ``b = 0`` caps the high ones alike;
* ``isotonic``: scikit-learn's isotonic regression, made strictly increasing: one knot per
  isotonic block at the block's mean score, the block rates shrunk into
  ``[eps, 1 - eps]`` (``eps = 1 / (2 (n + 1))``, an affine map, so their order stays strict),
  joined linearly in logit space;
* ``isotonic_smooth``: the same with neighbouring blocks merged until each holds at least
  ``max(30, n / 25)`` rows: fewer, smoother steps.

Beyond the first / last knot the isotonic maps continue in logit space with the Platt slope,
so they stay strictly increasing there too. The logit is bounded to ``±LOGIT_BOUND``
(probabilities within 1e-13 of 0 and 1), the only place ties can appear.

``choose_calibrator`` fits each method on ``k`` folds of the calibration rows and keeps the
simplest (Platt, beta, smoothed isotonic, isotonic) whose out-of-fold log loss is within one
account-clustered standard error of the lowest, refitted on all rows: with equal weights, or with
weights halving every ``RECENCY_HALF_LIFE_DAYS`` back from the latest as-of date when that
calibrates the latest dates better, by more than a standard error, in a purged forward check
(``forward_check``: the base rate drifts over time, and only a drift that carries forward is
worth following). The state is plain JSON
(``to_dict``); ``ScoreCalibrator.from_dict`` rebuilds it without pickle or scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold

from training.calibration import CalibrationError, as_1d_finite

KIND = "score"
METHODS = ("platt", "beta", "isotonic", "isotonic_smooth")
#: The order of simplicity for the one-standard-error rule of ``choose_calibrator`` (fewest parameters first).
SIMPLEST_FIRST = ("platt", "beta", "isotonic_smooth", "isotonic")
LOGIT_BOUND = 30.0
#: Half-life (days) of the recent-date weighting tried against equal weights (``choose_calibrator``).
RECENCY_HALF_LIFE_DAYS = 60
#: The latest share of as-of dates that ``forward_check`` judges on, and the churners it needs per side.
FORWARD_SHARE = 0.25
FORWARD_MIN_CHURNERS = 20


class DegenerateMap(CalibrationError):
    """A method's fit on these rows has no strictly increasing shape of its own (``beta`` needing a
    coefficient of 0): ``choose_calibrator`` leaves the method out and says so."""


def _check_xy(scores: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s, labels = as_1d_finite(scores, "scores"), as_1d_finite(y, "y")
    if s.shape != labels.shape:
        raise CalibrationError(f"scores and y differ in length: {s.size} scores vs {labels.size} labels")
    if not np.isin(labels, (0.0, 1.0)).all() or np.unique(labels).size < 2:
        raise CalibrationError("y must hold 0/1 labels of both classes (churned and retained)")
    return s, labels


def _logistic(features: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """An (almost) unregularised logistic fit (``w``: row weights): coefficients and intercept."""
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(features, y, sample_weight=w)
    return lr.coef_[0].astype(float), float(lr.intercept_[0])


def _beta_features(s: np.ndarray) -> np.ndarray:
    # ln q and -ln(1 - q) for q = sigmoid(s), without overflow; both increase with s
    return np.column_stack([-np.logaddexp(0.0, -s), np.logaddexp(0.0, s)])


def _blocks(s: np.ndarray, y: np.ndarray, min_rows: int, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic blocks (merged to ``min_rows``): (weighted) mean score and churn rate of each,
    both strictly increasing."""
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    w_sorted = np.ones_like(s_sorted) if w is None else w[order]
    fitted = IsotonicRegression(out_of_bounds="clip").fit_transform(s_sorted, y_sorted, sample_weight=w_sorted)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
    bounds = list(starts) + [len(s)]
    groups: list[list[int]] = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if groups and (groups[-1][1] - groups[-1][0] < min_rows):
            groups[-1][1] = hi
        else:
            groups.append([lo, hi])
    if len(groups) > 1 and groups[-1][1] - groups[-1][0] < min_rows:
        last = groups.pop()  # merged into the block before it
        groups[-1][1] = last[1]
    xs = np.array([np.average(s_sorted[lo:hi], weights=w_sorted[lo:hi]) for lo, hi in groups])
    ys = np.array([np.average(y_sorted[lo:hi], weights=w_sorted[lo:hi]) for lo, hi in groups])
    keep = np.r_[True, (np.diff(xs) > 0) & (np.diff(ys) > 0)]  # merged blocks stay increasing; guard anyway
    return xs[keep], ys[keep]


class ScoreCalibrator:
    """Strictly increasing map from raw log-odds to churn probability in (0, 1).

    Args:
        method: one of ``METHODS``.

    Attributes (after ``fit`` or ``from_dict``):
        params_: the method's parameters (JSON-ready floats and lists).
    """

    input_scale = "log_odds"

    def __init__(self, method: str = "platt") -> None:
        if method not in METHODS:
            raise CalibrationError(f"unknown calibration method {method!r} (one of {', '.join(METHODS)})")
        self.method = method

    def fit(self, scores: ArrayLike, y: ArrayLike, weight: ArrayLike | None = None) -> ScoreCalibrator:
        """Fit on raw scores (log-odds) and 0/1 labels (``weight``: positive row weights, e.g.
        ``recency_weights``).

        Raises:
            CalibrationError: empty, NaN, lengths differ, labels not 0/1 or of one class, or
                weights not positive.
        """
        s, labels = _check_xy(scores, y)
        w = None
        if weight is not None:
            w = as_1d_finite(weight, "weight")
            if w.shape != s.shape or (w <= 0).any():
                raise CalibrationError(f"weight must hold one positive number per row ({s.size})")
        (a,), b = _logistic(s[:, None], labels, w)
        slope = a if a > 0 else 1.0  # a ranking model with no signal: keep the order anyway
        if self.method == "platt":
            self.params_ = {"a": slope, "b": b if a > 0 else float(logit(np.average(labels, weights=w)))}
        elif self.method == "beta":
            self.params_ = self._fit_beta(s, labels, w)
        else:
            n = len(s)
            min_rows = 1 if self.method == "isotonic" else max(30, n // 25)
            xs, ys = _blocks(s, labels, min_rows, w)
            eps = 1.0 / (2.0 * (n + 1))
            self.params_ = {"x": xs.tolist(), "logit": logit(eps + (1 - 2 * eps) * ys).tolist(), "tail_slope": slope}
        return self

    @staticmethod
    def _fit_beta(s: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
        coef, c = _logistic(_beta_features(s), y, w)
        if (coef <= 0).any():
            j = 0 if coef[0] <= 0 else 1
            bound = "floor" if j == 0 else "ceiling"
            raise DegenerateMap(f"beta: the fit needs {'ab'[j]} = {coef[j]:.3g} <= 0, a map with a {bound} that "
                                "would give most scores one probability")
        return {"a": float(coef[0]), "b": float(coef[1]), "c": float(c)}

    def _logit(self, s: np.ndarray) -> np.ndarray:
        p = self.params_
        if self.method == "platt":
            z = p["a"] * s + p["b"]
        elif self.method == "beta":
            z = _beta_features(s) @ np.array([p["a"], p["b"]]) + p["c"]
        else:
            xs, zs, k = np.asarray(p["x"]), np.asarray(p["logit"]), p["tail_slope"]
            z = np.interp(s, xs, zs)
            z = np.where(s < xs[0], zs[0] + k * (s - xs[0]), z)
            z = np.where(s > xs[-1], zs[-1] + k * (s - xs[-1]), z)
        return np.clip(z, -LOGIT_BOUND, LOGIT_BOUND)

    def predict(self, scores: ArrayLike) -> np.ndarray:
        """Churn probabilities strictly inside (0, 1), strictly increasing in the score."""
        if not hasattr(self, "params_"):
            raise CalibrationError("ScoreCalibrator is not fitted: call fit(scores, y) or from_dict(d) first")
        return expit(self._logit(as_1d_finite(scores, "scores")))

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": KIND, "input": self.input_scale, "method": self.method, "params": self.params_}
        if getattr(self, "weighting_", None):  # informational: how the rows were weighted in the fit
            out["weighting"] = self.weighting_
        if getattr(self, "choice_", None):  # informational: why this method
            out["choice"] = self.choice_
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScoreCalibrator:
        """Rebuild from ``to_dict``'s output; checks that the map is strictly increasing.

        Raises:
            CalibrationError: wrong kind or method, missing parameters, or a map that is not
                strictly increasing.
        """
        if d.get("kind") != KIND:
            raise CalibrationError(f"calibrator kind {d.get('kind')!r} is not {KIND!r}")
        cal = cls(str(d.get("method")))
        need = {"platt": ("a", "b"), "beta": ("a", "b", "c")}.get(cal.method, ("x", "logit", "tail_slope"))
        params = d.get("params") or {}
        missing = [k for k in need if k not in params]
        if missing:
            raise CalibrationError(f"{cal.method} calibrator lacks parameter(s) {missing}")
        cal.params_ = params
        if d.get("weighting"):
            cal.weighting_ = str(d["weighting"])
        if d.get("choice"):
            cal.choice_ = str(d["choice"])
        ok = {"platt": lambda: params["a"] > 0,
              "beta": lambda: params["a"] >= 0 and params["b"] >= 0 and params["a"] + params["b"] > 0}.get(
            cal.method, lambda: params["tail_slope"] > 0 and np.all(np.diff(params["x"]) > 0)
            and np.all(np.diff(params["logit"]) > 0))
        if not ok():
            raise CalibrationError(f"{cal.method} calibrator parameters do not give a strictly increasing map")
        return cal

    def __repr__(self) -> str:
        return f"ScoreCalibrator(method={self.method!r})"


def _row_losses(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(_row_losses(y, p)))


def recency_weights(dates: ArrayLike, half_life_days: float = RECENCY_HALF_LIFE_DAYS) -> np.ndarray:
    """Row weights halving every ``half_life_days`` back from the latest date (1 there)."""
    d = pd.to_datetime(pd.Series(np.asarray(dates))).to_numpy("datetime64[D]")
    age = (d.max() - d).astype(np.int64)
    return 0.5 ** (age / float(half_life_days))


def forward_check(scores: np.ndarray, y: np.ndarray, dates: ArrayLike, method: str,
                  purge_days: int = 0) -> dict[str, float]:
    """Does weighting recent dates calibrate the *next* dates better? ``method`` fitted on the
    rows at least ``purge_days`` before the latest ``FORWARD_SHARE`` of the as-of dates, with
    equal and with ``recency_weights``, judged by log loss on those latest dates (as the final
    calibrator is judged on a test block after a purge gap).

    Returns:
        ``{"forward_equal": loss, "forward_recent": loss, "forward_gain_se": SE}`` (SE: the
        standard error of the mean per-row gain of the recent weights), or ``{}`` when there are
        too few dates or churners on either side to tell.
    """
    d = pd.to_datetime(pd.Series(np.asarray(dates))).to_numpy("datetime64[D]")
    days = np.unique(d)
    if days.size < 4:
        return {}
    cut = days[int(np.floor(days.size * (1 - FORWARD_SHARE)))]
    late, early = d >= cut, d <= cut - np.timedelta64(int(purge_days), "D")
    if min(y[late].sum(), y[early].sum()) < FORWARD_MIN_CHURNERS or y[early].all() or y[late].all():
        return {}
    rows = {}
    for name, w in (("forward_equal", None), ("forward_recent", recency_weights(d[early]))):
        try:
            cal = ScoreCalibrator(method).fit(scores[early], y[early], w)
        except CalibrationError:
            return {}
        rows[name] = _row_losses(y[late], cal.predict(scores[late]))
    gain = rows["forward_equal"] - rows["forward_recent"]
    return {**{k: float(v.mean()) for k, v in rows.items()},
            "forward_gain_se": float(gain.std(ddof=1) / np.sqrt(gain.size))}


def choose_calibrator(scores: ArrayLike, y: ArrayLike, groups: ArrayLike | None = None, folds: int = 5,
                      seed: int = 0, dates: ArrayLike | None = None,
                      purge_days: int = 0) -> tuple[ScoreCalibrator, dict[str, float]]:
    """Each method's out-of-fold log loss on the calibration rows; the simplest within one standard
    error of the best (``SIMPLEST_FIRST``; its reason in ``choice_``), refitted on all rows.

    With ``dates`` (the rows' as-of dates) the winner is then refitted with ``recency_weights``
    when they lower the log loss in ``forward_check`` by more than one standard error of the
    gain (the base rate drifts over time; the check tells whether the drift carries forward;
    within the noise the equal weights, which use the rows best, are kept). The calibrator's
    ``weighting_`` says which (``"equal"`` or ``"recent (half-life N days)"``).

    Args:
        scores: raw scores (log-odds) of held-out rows (a calibration block or out-of-fold).
        y: their 0/1 labels.
        groups: account ids: folds never split an account (optional).
        folds: number of folds (fewer when there are few churners).
        dates: as-of date per row (optional).
        purge_days: gap between the fitting and the judged dates in the forward check
            (horizon + grace: no fitting label overlaps a judged one).

    Returns:
        The fitted winner and ``{method: out-of-fold log loss}`` plus, with ``dates``, the
        forward check's ``forward_equal`` / ``forward_recent`` log losses.
    """
    s, labels = _check_xy(scores, y)
    k = int(min(folds, labels.sum(), (1 - labels).sum()))
    if k < 2:
        platt = ScoreCalibrator("platt").fit(s, labels)
        platt.weighting_ = "equal"
        platt.choice_ = "platt: too few churners (or retained rows) for out-of-fold folds"
        return platt, {}
    if groups is not None and len(np.unique(groups)) >= k:
        splits = list(GroupKFold(n_splits=k).split(s, labels, np.asarray(groups)))
    else:
        splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(s, labels))
    losses: dict[str, float] = {}
    rows: dict[str, np.ndarray] = {}
    left_out: list[str] = []
    for method in METHODS:
        oof = np.empty_like(s)
        try:
            ScoreCalibrator(method).fit(s, labels)  # on all rows: a degenerate map is no candidate
            for tr, va in splits:
                oof[va] = ScoreCalibrator(method).fit(s[tr], labels[tr]).predict(s[va])
        except DegenerateMap as exc:
            left_out.append(str(exc))
            continue
        except CalibrationError:  # a fold with one class: this method cannot be judged
            continue
        rows[method] = _row_losses(labels, oof)
        losses[method] = float(rows[method].mean())
    best, choice = _simplest_within_one_se(rows, groups)
    if left_out:
        choice += "; left out: " + "; ".join(left_out)
    forward = forward_check(s, labels, dates, best, purge_days) if dates is not None else {}
    recent = bool(forward) and forward["forward_equal"] - forward["forward_recent"] > forward["forward_gain_se"]
    try:
        chosen = ScoreCalibrator(best).fit(s, labels, recency_weights(dates) if recent else None)
    except DegenerateMap:  # the recent rows alone would floor or cap the map: equal weights
        recent, chosen = False, ScoreCalibrator(best).fit(s, labels)
    chosen.weighting_ = f"recent (half-life {RECENCY_HALF_LIFE_DAYS} days)" if recent else "equal"
    chosen.choice_ = choice
    return chosen, {**losses, **forward}


def _simplest_within_one_se(rows: dict[str, np.ndarray], groups: ArrayLike | None) -> tuple[str, str]:
    """The simplest method (``SIMPLEST_FIRST``) whose out-of-fold log loss is within one standard
    error of the best's, and a sentence saying so. The SE is that of the mean paired per-row loss
    difference, with the rows of one account summed first (an account's rows on several as-of
    dates are not independent). Isotonic maps fit many steps: on the demo they won by 0.0002 (a
    fraction of that SE) and over-predicted the top decile of the test rows (ECE 0.0054 against
    0.0037 for beta); the rule keeps a parametric map unless the steps really help."""
    if not rows:
        return "platt", "platt: no method could be judged out of fold"
    best = min(rows, key=lambda m: rows[m].mean())
    for method in (m for m in SIMPLEST_FIRST if m in rows):
        diff = rows[method] - rows[best]
        se = _clustered_se(diff, groups)
        if diff.mean() <= se:
            note = (f"{method}: the simplest within one standard error of the best ({best}, "
                    f"+{diff.mean():.5f} vs SE {se:.5f})" if method != best else f"{method}: the best")
            return method, note
    return best, f"{best}: the best"


def _clustered_se(values: np.ndarray, groups: ArrayLike | None) -> float:
    """Standard error of ``values.mean()``; rows of one group summed first (cluster-robust)."""
    n = values.size
    if n < 2:
        return 0.0
    centred = values - values.mean()
    sums = centred if groups is None else pd.Series(centred).groupby(np.asarray(groups)).sum().to_numpy()
    return float(np.sqrt((sums ** 2).sum()) / n)


def load_calibrator(d: dict[str, Any]):
    """A calibrator from its JSON dict: ``ScoreCalibrator`` or the older ``IsotonicCalibrator``."""
    from training.calibration import IsotonicCalibrator

    return ScoreCalibrator.from_dict(d) if d.get("kind") == KIND else IsotonicCalibrator.from_dict(d)
