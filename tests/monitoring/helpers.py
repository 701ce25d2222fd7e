"""Helpers of the monitoring tests."""

from __future__ import annotations

import datetime as dt
import sys

import pytest

DRIFT_FROM = dt.date(2025, 10, 15)
SCORED = (dt.date(2025, 9, 1), dt.date(2026, 1, 1))
#: 30 of the model's features, every kind: counts, ratios, changes, days, money, categories.
SUBSET = ["active_days_30d", "logins_7d", "logins_30d", "logins_30d_change", "days_since_last_login",
          "active_users_per_seat", "core_events_30d", "core_features_used_30d", "core_user_share_30d",
          "tickets_30d", "tickets_30d_vs_baseline", "open_tickets", "mean_resolution_hours_90d", "mean_csat_90d",
          "ticket_silence", "days_to_term_end", "days_overdue", "payment_delay_90d", "mrr", "mrr_change_90d",
          "tenure_days", "seats", "email_open_rate_90d", "evt_help_center_view_30d", "plan", "industry",
          "size_band", "region", "channel", "segment"]


def run_cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """``churnwatch ARGS`` in this process (through ``main``, so exit codes are the real ones)."""
    from churnwatch.cli import main

    capsys.readouterr()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri sets it in-process
    monkeypatch.setattr(sys, "argv", ["churnwatch", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    code = exc.value.code if isinstance(exc.value.code, int) else (0 if exc.value.code is None else 1)
    return code, out.out, out.err
