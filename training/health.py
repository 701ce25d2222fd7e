"""Health score (0-100) and tiers from the calibrated churn probability (DESIGN §4, ARTICLE §1).

The score is piecewise linear in the calibrated probability ``p`` through the pins
``(0, 100)``, ``(p80, 80)``, ``(p60, 60)``, ``(p40, 40)``, ``(1, 0)`` and rounded to an
integer; the tier is read from that integer. So the tier boundaries fall exactly on the
pins: ``p == p60`` gives health 60, which is ``low_risk``.

Rounding never crosses a pin: a probability above ``p40`` by a hair gives 39 (``high_risk``), not
40, so the tiers are exactly ``p <= p80`` healthy, ``p80 < p <= p60`` low, ``p60 < p <= p40``
medium and ``p > p40`` high risk.

**Pins anchored to the base rate and to the reference rows** (issue 12: tiers never empty when
the model ranks). ``anchored_pins`` starts from ``(b, 2b, 4b)`` with ``b`` the *calibrated* base
rate (the mean calibrated probability of held-out reference rows: the calibration block, or the
out-of-fold rows when cross-fitting) and lowers a pin only where its tier would otherwise hold
too few reference rows: at least ``MIN_TIER_SHARE`` of them are ``high_risk``, at least twice
that ``medium_risk`` or higher, three times ``low_risk`` or higher, and ``healthy`` keeps at
least ``MIN_TIER_SHARE`` (``p80`` raised if need be, staying below ``p60``). So a model whose
probabilities never reach ``4b`` (a compressed blend on a 3% base rate) still fills every tier
with its riskiest rows, and a model that does reach them keeps the absolute pins. At a high base
rate the pins are clipped as in ``default_pins`` (26% gives ``0.26, 0.52, 0.76``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from core.errors import ChurnwatchError
from core.vocabulary import TIER_KEYS, TIERS

#: Smallest default pin: a base rate of 0 still gives usable, strictly increasing pins.
MIN_PIN = 1e-6
#: Smallest share of the reference rows in each risk tier (cumulative from the top, see the module doc).
MIN_TIER_SHARE = 0.05


class HealthMapError(ChurnwatchError, ValueError):
    """Pins or inputs of the health map are invalid (not 0 < p80 < p60 < p40 < 1, NaN...)."""


def default_pins(base_rate: float) -> tuple[float, float, float]:
    """Default pins ``(p80, p60, p40) = (b, 2b, 4b)`` from the training base rate ``b``.

    Clipping, so that ``0 < p80 < p60 < p40 < 1`` always holds strictly:

    - ``p80 = b`` clipped to ``[MIN_PIN, 1 - MIN_PIN]`` (a base rate of 0 or 1 still works);
    - each next pin doubles the previous one but goes at most halfway from it to 1:
      ``p60 = min(2 * p80, (p80 + 1) / 2)``, ``p40 = min(2 * p60, (p60 + 1) / 2)``.

    For any ``b <= 0.25`` (every realistic churn base rate) this is exactly ``(b, 2b, 4b)``;
    e.g. ``b = 0.3`` gives ``(0.3, 0.6, 0.8)`` and ``b = 0.5`` gives ``(0.5, 0.75, 0.875)``.

    Args:
        base_rate: share of churned rows in the training block, in [0, 1].

    Raises:
        HealthMapError: base rate not finite or outside [0, 1].
    """
    b = float(base_rate)
    if not np.isfinite(b) or not 0.0 <= b <= 1.0:
        raise HealthMapError(f"base rate must be a probability in [0, 1], got {base_rate!r}")
    p80 = min(max(b, MIN_PIN), 1.0 - MIN_PIN)
    p60 = min(2.0 * p80, (p80 + 1.0) / 2.0)
    p40 = min(2.0 * p60, (p60 + 1.0) / 2.0)
    return p80, p60, p40


def _cut_above(p_desc: np.ndarray, share: float) -> float:
    """A probability with (at least) ``share`` of the rows strictly above it: between the
    ``ceil(share n)``-th largest value and the next smaller distinct one (ties stay together)."""
    k = min(max(int(np.ceil(share * p_desc.size)), 1), p_desc.size)
    v = p_desc[k - 1]
    lower = p_desc[p_desc < v]
    return float((v + lower[0]) / 2.0) if lower.size else float(np.nextafter(v, 0.0))


def anchored_pins(base_rate: float, reference: ArrayLike,
                  min_share: float = MIN_TIER_SHARE) -> tuple[float, float, float]:
    """Pins ``(p80, p60, p40)``: ``default_pins(base_rate)``, each lowered only as far as needed
    so that at least ``min_share`` of ``reference`` is ``high_risk`` (``p > p40``), ``2 min_share``
    ``medium_risk`` or higher (``p > p60``) and ``3 min_share`` ``low_risk`` or higher (``p > p80``);
    then ``p80`` raised, if need be and while below ``p60``, so that ``min_share`` is ``healthy``.

    Args:
        base_rate: the calibrated base rate (probability in [0, 1]).
        reference: calibrated probabilities of held-out rows (not the training rows: in-sample
            scores are over-confident).
        min_share: smallest share per tier, in [0, 1/4].

    Raises:
        HealthMapError: base rate or share out of range, or ``reference`` not probabilities.
    """
    if not 0.0 <= min_share <= 0.25:
        raise HealthMapError(f"min_share must be in [0, 1/4], got {min_share!r}")
    p = np.asarray(reference, dtype=np.float64).ravel()
    if p.size == 0 or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise HealthMapError("the reference rows must be a non-empty array of probabilities in [0, 1]")
    pins = list(default_pins(base_rate))  # p80, p60, p40
    if min_share == 0:
        return _check_pins(*pins)
    desc = np.sort(p)[::-1]
    for i, share in ((2, min_share), (1, 2 * min_share), (0, 3 * min_share)):
        pins[i] = min(pins[i], _cut_above(desc, share))
        if i < 2 and pins[i] >= pins[i + 1]:  # ties across the cut: keep the pins strictly increasing
            pins[i] = float(np.nextafter(pins[i + 1], 0.0))
        pins[i] = max(pins[i], (i + 1) * MIN_PIN)
    k = min(max(int(np.ceil(min_share * desc.size)), 1), desc.size)
    floor = float(desc[::-1][k - 1])  # healthy (p <= p80) holds at least k rows from here up
    if pins[0] < floor:
        pins[0] = max(pins[0], min(floor, float(np.nextafter(pins[1], 0.0))))
    return _check_pins(*pins)


def _check_pins(p80: float, p60: float, p40: float) -> tuple[float, float, float]:
    pins = (float(p80), float(p60), float(p40))
    if not all(np.isfinite(pins)) or not 0.0 < pins[0] < pins[1] < pins[2] < 1.0:
        raise HealthMapError(
            "health pins must satisfy 0 < p80 < p60 < p40 < 1 (absolute churn probabilities), "
            f"got p80={p80!r}, p60={p60!r}, p40={p40!r}"
        )
    return pins


def tier(health: ArrayLike) -> np.ndarray:
    """Tier key per integer health score: 80-100 healthy, 60-79 low_risk, 40-59 medium_risk,
    0-39 high_risk.

    Args:
        health: integer health scores in [0, 100] (e.g. ``HealthMap.health_score`` output).

    Returns:
        Array of tier keys (dtype object, same shape as ``health``; a ``str`` for a scalar).

    Raises:
        HealthMapError: a value is not an integer in [0, 100].
    """
    h = np.asarray(health)
    if h.size and (
        not np.issubdtype(h.dtype, np.number)
        or not np.all(np.isfinite(h))
        or np.any(h != np.round(h))
        or h.min() < 0
        or h.max() > 100
    ):
        raise HealthMapError(
            f"health scores must be integers in [0, 100], got e.g. {h.ravel()[:5]}"
        )
    bounds = np.array([t.min_health for t in reversed(TIERS)])  # 0, 40, 60, 80
    keys = np.array(list(reversed(TIER_KEYS)), dtype=object)
    return keys[np.searchsorted(bounds, h, side="right") - 1]


class HealthMap:
    """Calibrated churn probability -> integer health score (0-100) -> tier.

    Args:
        p80: churn probability that maps to health 80 (absolute, optional).
        p60: churn probability that maps to health 60 (absolute, optional).
        p40: churn probability that maps to health 40 (absolute, optional).
            Give all three (strictly ``0 < p80 < p60 < p40 < 1``) or none; with none,
            ``fit`` derives them from the base rate (``default_pins``).

    Attributes (after ``fit`` or ``from_dict``):
        pins_: ``(p80, p60, p40)`` used by ``health_score``.
        base_rate_: the training base rate seen by ``fit`` (``None`` if not given).
    """

    def __init__(
        self, p80: float | None = None, p60: float | None = None, p40: float | None = None
    ) -> None:
        self.p80 = p80
        self.p60 = p60
        self.p40 = p40

    @property
    def explicit(self) -> bool:
        """True when the pins were given as absolute probabilities."""
        return self.p80 is not None or self.p60 is not None or self.p40 is not None

    def fit(self, y: ArrayLike | None = None, *, base_rate: float | None = None,
            reference: ArrayLike | None = None, min_share: float = MIN_TIER_SHARE) -> HealthMap:
        """Set the pins: explicit ones as given, else ``default_pins`` of the base rate, or with
        ``reference`` ``anchored_pins`` (every risk tier holds at least ``min_share`` of it).

        Args:
            y: training labels (0/1); their mean is the base rate. Ignored if ``base_rate``
                is given.
            base_rate: the (calibrated) base rate, if known directly.
            reference: calibrated probabilities of held-out rows (optional).
            min_share: smallest share of ``reference`` per risk tier.

        Raises:
            HealthMapError: only some pins given, pins not strictly increasing in (0, 1),
                or no base rate available when the pins are not explicit.
        """
        b = self._base_rate(y, base_rate)
        if self.explicit:
            if None in (self.p80, self.p60, self.p40):
                raise HealthMapError(
                    "give all three health pins (p80, p60, p40) or none, got "
                    f"p80={self.p80!r}, p60={self.p60!r}, p40={self.p40!r}"
                )
            self.pins_ = _check_pins(self.p80, self.p60, self.p40)
        else:
            if b is None:
                raise HealthMapError(
                    "HealthMap without explicit pins needs the training labels y or base_rate"
                )
            self.pins_ = default_pins(b) if reference is None else anchored_pins(b, reference, min_share)
        self.base_rate_ = b
        self.min_share_ = None if self.explicit or reference is None else float(min_share)
        return self

    @staticmethod
    def _base_rate(y: ArrayLike | None, base_rate: float | None) -> float | None:
        if base_rate is not None:
            b = float(base_rate)
            if not np.isfinite(b) or not 0.0 <= b <= 1.0:
                raise HealthMapError(f"base rate must be in [0, 1], got {base_rate!r}")
            return b
        if y is None:
            return None
        labels = np.asarray(y, dtype=np.float64)
        if labels.size == 0 or not np.isin(labels, (0.0, 1.0)).all():
            raise HealthMapError("y must be a non-empty array of 0/1 churn labels")
        return float(labels.mean())

    @classmethod
    def from_base_rate(cls, base_rate: float) -> HealthMap:
        """A fitted map with the default pins ``(b, 2b, 4b)`` (clipped, see ``default_pins``)."""
        return cls().fit(base_rate=base_rate)

    @classmethod
    def from_reference(cls, reference: ArrayLike, min_share: float = MIN_TIER_SHARE) -> HealthMap:
        """A fitted map anchored to held-out calibrated probabilities: their mean is the base
        rate, and every risk tier holds at least ``min_share`` of them (``anchored_pins``)."""
        p = np.asarray(reference, dtype=np.float64)
        base = float(p.mean()) if p.size and np.all(np.isfinite(p)) else float("nan")
        return cls().fit(base_rate=base, reference=p, min_share=min_share)

    def _check_fitted(self) -> tuple[float, float, float]:
        if not hasattr(self, "pins_"):
            raise HealthMapError("HealthMap is not fitted: call fit(...) or from_dict(d) first")
        return self.pins_

    def health_score(self, p: ArrayLike) -> np.ndarray:
        """Integer health score (0 = about to churn, 100 = safest) per calibrated probability.

        Piecewise linear through ``(0, 100), (p80, 80), (p60, 60), (p40, 40), (1, 0)``, then
        ``np.rint`` (round half to even), except that a probability above a pin never rounds up
        onto it (79.7 -> 79, not 80: the tier follows the pins exactly). Monotone non-increasing
        in ``p``.

        Args:
            p: calibrated churn probabilities in [0, 1] (over the model's horizon).

        Returns:
            int64 array, same shape as ``p``.

        Raises:
            HealthMapError: not fitted, or a probability is NaN or outside [0, 1].
        """
        p80, p60, p40 = self._check_fitted()
        prob = np.asarray(p, dtype=np.float64)
        if prob.size and (not np.all(np.isfinite(prob)) or prob.min() < 0 or prob.max() > 1):
            raise HealthMapError(
                f"churn probabilities must be finite and in [0, 1], got e.g. {prob.ravel()[:5]}"
            )
        raw = np.interp(prob, [0.0, p80, p60, p40, 1.0], [100.0, 80.0, 60.0, 40.0, 0.0])
        health = np.rint(raw)
        for pin, bound in ((p80, 80.0), (p60, 60.0), (p40, 40.0)):  # above a pin by a hair: the next tier
            health = np.where((prob > pin) & (health >= bound), bound - 1.0, health)
        return health.astype(np.int64)

    def tier(self, health: ArrayLike) -> np.ndarray:
        """Tier key per integer health score (see module function ``tier``)."""
        return tier(health)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: the pins, the base rate, where the pins came from (``explicit``,
        ``base_rate`` or ``base_rate_and_reference``) and the minimum tier share used."""
        p80, p60, p40 = self._check_fitted()
        return {
            "p80": p80,
            "p60": p60,
            "p40": p40,
            "base_rate": self.base_rate_,
            "pins_from": "explicit" if self.explicit else (
                "base_rate" if getattr(self, "min_share_", None) is None else "base_rate_and_reference"),
            **({} if getattr(self, "min_share_", None) is None else {"min_tier_share": self.min_share_}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HealthMap:
        """Rebuild a fitted map from ``to_dict``'s output.

        Raises:
            HealthMapError: a pin is missing or the pins are not ``0 < p80 < p60 < p40 < 1``.
        """
        missing = [k for k in ("p80", "p60", "p40") if k not in d]
        if missing:
            raise HealthMapError(f"health map dict lacks key(s) {missing}; got {sorted(d)}")
        pins = _check_pins(d["p80"], d["p60"], d["p40"])
        hm = cls(*pins) if d.get("pins_from", "explicit") == "explicit" else cls()
        hm.pins_ = pins
        b = d.get("base_rate")
        hm.base_rate_ = None if b is None else float(b)
        hm.min_share_ = None if d.get("min_tier_share") is None else float(d["min_tier_share"])
        return hm

    def __repr__(self) -> str:
        if hasattr(self, "pins_"):
            p80, p60, p40 = self.pins_
            return f"HealthMap(pins_=(p80={p80:.4g}, p60={p60:.4g}, p40={p40:.4g}))"
        return f"HealthMap(p80={self.p80!r}, p60={self.p60!r}, p40={self.p40!r})"
