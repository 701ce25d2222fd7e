"""Time as every stage sees it: as-of dates as one type and the label horizon.

An **as-of date** is a ``datetime.date`` everywhere in Python (``as_date`` turns the text,
timestamps and numpy datetimes met at the edges into one). The **horizon** says when a
churn label is known: an account scored on ``as_of`` churns if its relationship ends within
``horizon_days`` after it, and that outcome is final once ``grace_days`` more have passed (a
lapsed term may still be renewed within the grace period). So a date is labelled / matured
when ``as_of + horizon_days + grace_days <= data_end``.

The horizon used to build the snapshots is stored in the store's snapshot metadata and in each
model bundle; readers take it from there, never from the current config.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

#: The one Python type of an as-of date.
AsOf = dt.date


def as_date(value: object) -> AsOf:
    """An as-of date from a ``date``, a ``datetime``/``pandas.Timestamp``, a ``numpy.datetime64``
    or ISO text (``YYYY-MM-DD``, a time part is dropped).

    Raises:
        ValueError: the value is not a date in one of those forms.
    """
    if isinstance(value, dt.datetime):  # pandas.Timestamp is a datetime
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip()[:10])
    if hasattr(value, "astype") and "datetime64" in str(getattr(value, "dtype", "")):
        return dt.date.fromisoformat(str(value.astype("datetime64[D]")))
    raise ValueError(f"not a date: {value!r} ({type(value).__name__})")


class _HasHorizon(Protocol):
    horizon_days: int
    grace_days: int


@dataclass(frozen=True)
class Horizon:
    """The label horizon and the grace period, in days.

    Attributes:
        horizon_days: churn within this many days after the as-of date is the label.
        grace_days: a relationship whose last term ended is churned only after this many days
            without a renewal.
    """

    horizon_days: int
    grace_days: int

    @classmethod
    def of(cls, source: _HasHorizon) -> Horizon:
        """The horizon of anything with ``horizon_days`` and ``grace_days`` (snapshot metadata)."""
        return cls(int(source.horizon_days), int(source.grace_days))

    @classmethod
    def from_dict(cls, meta: dict) -> Horizon:
        """The horizon stored in a bundle's metadata (``horizon_days``, ``grace_days``)."""
        return cls(int(meta["horizon_days"]), int(meta["grace_days"]))

    @property
    def lag(self) -> dt.timedelta:
        """Days from an as-of date until its label is final: horizon + grace."""
        return dt.timedelta(days=self.horizon_days + self.grace_days)

    def last_matured(self, data_end: dt.date) -> dt.date:
        """The latest as-of date whose label is final by ``data_end``."""
        return data_end - self.lag

    def matured(self, as_of: dt.date, data_end: dt.date) -> bool:
        """True when the outcome of a score made on ``as_of`` is known by ``data_end``."""
        return as_of + self.lag <= data_end

    def labelled(self, as_of: dt.date, data_end: dt.date) -> bool:
        """True when a snapshot of ``as_of`` gets a churn label from data ending ``data_end``
        (the same rule as ``matured``, read from the snapshot side)."""
        return self.matured(as_of, data_end)
