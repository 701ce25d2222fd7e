"""Errors of the monitoring stage (the CLI prints them in one or two lines, exit 2)."""

from __future__ import annotations

from features.errors import ChurnwatchError


class MonitoringError(ChurnwatchError):
    """Monitoring cannot run on this input: no champion, no scores, features missing, empty data."""
