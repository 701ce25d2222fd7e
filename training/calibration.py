"""Isotonic calibration of the model's churn probabilities (DESIGN §4).

The calibrator is fitted on the calibration block's raw model probabilities and labels
with scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``; only the fitted
thresholds are kept. Applying them is a plain ``np.interp`` (flat beyond the first and
last threshold, which is exactly what ``out_of_bounds="clip"`` does), so a bundle loaded
from JSON needs no scikit-learn object and runs no pickled code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.isotonic import IsotonicRegression

from core.errors import ChurnwatchError

#: The ``kind`` written by ``to_dict`` and checked by ``from_dict``.
CALIBRATOR_KIND = "isotonic"


class CalibrationError(ChurnwatchError, ValueError):
    """The calibrator got input it cannot use (empty, NaN, one class) or a bad JSON dict."""


def as_1d_finite(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise CalibrationError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise CalibrationError(f"{name} is empty: the calibrator needs at least one row")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CalibrationError(
            f"{name} holds {int(bad.sum())} NaN or infinite value(s); first at position {i}"
        )
    return arr


class IsotonicCalibrator:
    """Monotone map from raw model probability to calibrated churn probability.

    Parameters: none (scikit-learn estimator shape: ``__init__`` sets nothing else).

    Attributes (after ``fit`` or ``from_dict``):
        thresholds_x_: raw-probability knots, strictly increasing (float64 array).
        thresholds_y_: calibrated probability at each knot, non-decreasing, in [0, 1].
    """

    #: What ``predict`` takes: raw model probabilities (``ScoreCalibrator`` takes log-odds).
    input_scale = "probability"

    def __init__(self) -> None:
        pass

    def fit(self, scores: ArrayLike, y: ArrayLike) -> IsotonicCalibrator:
        """Fit on the calibration block.

        Args:
            scores: raw model churn probabilities in [0, 1], one per row.
            y: observed churn labels (0/1), same length.

        Returns:
            ``self``, fitted.

        Raises:
            CalibrationError: empty input, NaN/inf, lengths differ, labels not 0/1, or
                only one class present.
        """
        x = as_1d_finite(scores, "scores")
        labels = as_1d_finite(y, "y")
        if x.shape != labels.shape:
            raise CalibrationError(
                f"scores and y differ in length: {x.size} scores vs {labels.size} labels"
            )
        if not np.isin(labels, (0.0, 1.0)).all():
            raise CalibrationError(f"y must hold 0/1 labels, got values {np.unique(labels)[:5]}")
        if np.unique(labels).size < 2:
            raise CalibrationError(
                f"y holds a single class ({int(labels[0])}) in all {labels.size} rows: "
                "calibration needs both churned and retained accounts"
            )
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(x, labels)
        self.thresholds_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.thresholds_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "thresholds_x_"):
            raise CalibrationError(
                "IsotonicCalibrator is not fitted: call fit(scores, y) or from_dict(d) first"
            )

    def predict(self, scores: ArrayLike) -> np.ndarray:
        """Calibrated churn probabilities in [0, 1] (float64 array, same length as ``scores``).

        Scores below the first knot or above the last take that knot's value (clip).

        Raises:
            CalibrationError: not fitted, empty input, or NaN/inf.
        """
        self._check_fitted()
        x = as_1d_finite(scores, "scores")
        return np.interp(x, self.thresholds_x_, self.thresholds_y_)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: ``kind`` ("isotonic"), ``thresholds_x``, ``thresholds_y``."""
        self._check_fitted()
        return {
            "kind": CALIBRATOR_KIND,
            "thresholds_x": [float(v) for v in self.thresholds_x_],
            "thresholds_y": [float(v) for v in self.thresholds_y_],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IsotonicCalibrator:
        """Rebuild a fitted calibrator from ``to_dict``'s output.

        Raises:
            CalibrationError: wrong kind, missing keys, lengths differ, knots not increasing,
                values not finite or outside [0, 1].
        """
        if d.get("kind", CALIBRATOR_KIND) != CALIBRATOR_KIND:
            raise CalibrationError(f"calibrator kind {d.get('kind')!r} is not {CALIBRATOR_KIND!r}")
        missing = [k for k in ("thresholds_x", "thresholds_y") if k not in d]
        if missing:
            raise CalibrationError(f"calibrator dict lacks key(s) {missing}; got {sorted(d)}")
        x = as_1d_finite(d["thresholds_x"], "thresholds_x")
        y = as_1d_finite(d["thresholds_y"], "thresholds_y")
        if x.shape != y.shape:
            raise CalibrationError(
                f"thresholds_x and thresholds_y differ in length: {x.size} vs {y.size}"
            )
        if np.any(np.diff(x) <= 0):
            raise CalibrationError("thresholds_x must be strictly increasing")
        if np.any(np.diff(y) < 0):
            raise CalibrationError("thresholds_y must be non-decreasing")
        if y.min() < 0.0 or y.max() > 1.0:
            raise CalibrationError("thresholds_y must lie in [0, 1]")
        cal = cls()
        cal.thresholds_x_ = x
        cal.thresholds_y_ = y
        return cal

    def __repr__(self) -> str:
        n = len(self.thresholds_x_) if hasattr(self, "thresholds_x_") else None
        return f"IsotonicCalibrator(knots={n})" if n is not None else "IsotonicCalibrator()"


def fit_calibrator(scores: ArrayLike, y: ArrayLike) -> IsotonicCalibrator:
    """Fit an ``IsotonicCalibrator`` on the calibration block's raw probabilities and labels."""
    return IsotonicCalibrator().fit(scores, y)
