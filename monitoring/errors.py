"""Errors of the monitoring stage; they live in :mod:`core.errors` and are re-exported here."""

from __future__ import annotations

from core.errors import MonitoringError

__all__ = ["MonitoringError"]
