"""The guide's code that expands a Stripe dashboard subscriptions CSV into billing periods
(docs/exports-with-cancellation-dates.md, after ``<!-- stripe-dashboard-periods -->``) does what it
says on such a file: trials and never-started subscriptions give no period, a cancelled one ends at
its ``Ended At``, a running one at its current period's end, a yearly plan's MRR is a twelfth."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

DOC = Path(__file__).resolve().parents[2] / "docs" / "exports-with-cancellation-dates.md"
COLUMNS = ["id", "Customer ID", "Customer Email", "Plan", "Product", "Quantity", "Interval", "Amount", "Status",
           "Created (UTC)", "Start (UTC)", "Current Period Start (UTC)", "Current Period End (UTC)",
           "Trial Start (UTC)", "Trial End (UTC)", "Canceled At (UTC)", "Ended At (UTC)", "Cancel At Period End"]


def _code() -> str:
    text = DOC.read_text()
    return re.search(r"<!-- stripe-dashboard-periods -->\s*```python\n(.*?)```", text, re.S).group(1)


def test_the_guides_dashboard_code_gives_billing_periods(tmp_path, monkeypatch):
    rows = [
        # running monthly, started 2024-10-05
        ["sub_1", "cus_A", "a@x.com", "price_pro", "Pro", 2, "month", "49.00", "active", "2024-10-05 14:22",
         "2024-10-05 14:22", "2024-12-05 14:22", "2025-01-05 14:22", "", "", "", "", "false"],
        # cancelled at period end: served until 2024-12-01
        ["sub_2", "cus_B", "b@x.com", "price_pro", "Pro", 1, "month", "49.00", "canceled", "2024-09-01 08:00",
         "2024-09-01 08:00", "2024-11-01 08:00", "2024-12-01 08:00", "", "", "2024-11-20 10:00",
         "2024-12-01 08:00", "true"],
        # a 14-day trial, then paid from 2024-11-15
        ["sub_3", "cus_C", "c@x.com", "price_pro", "Pro", 1, "month", "49.00", "trialing", "2024-11-01 00:00",
         "2024-11-01 00:00", "2024-12-15 00:00", "2025-01-15 00:00", "2024-11-01 00:00", "2024-11-15 00:00",
         "", "", "false"],
        # never paid
        ["sub_4", "cus_D", "d@x.com", "price_pro", "Pro", 1, "month", "49.00", "incomplete_expired",
         "2024-11-03 00:00", "2024-11-03 00:00", "2024-11-03 00:00", "2024-12-03 00:00", "", "", "", "", "false"],
        # yearly
        ["sub_5", "cus_E", "e@x.com", "price_team", "Team", 1, "year", "1200.00", "past_due", "2024-02-01 00:00",
         "2024-02-01 00:00", "2024-02-01 00:00", "2025-02-01 00:00", "", "", "", "", "false"],
        # cancelled at once on a renewal day, hours after the period began: no empty period (a probe's 239 rows
        # with start equal to end, counted by `features` as ending before they start)
        ["sub_6", "cus_F", "f@x.com", "price_pro", "Pro", 1, "month", "49.00", "canceled", "2024-10-10 08:00",
         "2024-10-10 08:00", "2024-11-10 08:00", "2024-12-10 08:00", "", "", "2024-11-10 17:00",
         "2024-11-10 17:00", "false"],
    ]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "subscriptions.csv", index=False)
    (tmp_path / "exports").mkdir()
    monkeypatch.chdir(tmp_path)
    exec(compile(_code(), str(DOC), "exec"), {})  # noqa: S102 - the guide's own code, run as a user would
    out = pd.read_csv(tmp_path / "exports" / "subscriptions.csv")
    got = {a: list(zip(g.start_date, g.end_date, g.mrr)) for a, g in out.groupby("account_id")}
    assert got == {
        "cus_A": [("2024-10-05", "2024-11-05", 98.0), ("2024-11-05", "2024-12-05", 98.0),
                  ("2024-12-05", "2025-01-05", 98.0)],
        "cus_B": [("2024-09-01", "2024-10-01", 49.0), ("2024-10-01", "2024-11-01", 49.0),
                  ("2024-11-01", "2024-12-01", 49.0)],
        "cus_C": [("2024-11-15", "2024-12-15", 49.0), ("2024-12-15", "2025-01-15", 49.0)],
        "cus_E": [("2024-02-01", "2025-02-01", 100.0)],
        "cus_F": [("2024-10-10", "2024-11-10", 49.0)],
    }
