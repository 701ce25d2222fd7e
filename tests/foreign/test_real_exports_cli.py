"""The whole CLI path on exports in the tools' own shapes, mapped only by ``churnwatch.yaml``
(issue 12): a HubSpot companies export, Stripe billing periods and invoices in the dashboard's
spelling, Zendesk tickets and an Amplitude-like event log, as CSV files a user downloads.
features -> train -> promote -> score -> explain, on 240 accounts over two years."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.foreign.inprocess import run_cli
from tests.foreign.inprocess import step_ok as _ok

END = pd.Timestamp("2024-12-31")


def write_exports(folder, n=240, seed=5):
    """The tools' files; churn follows a hidden health that drives usage, tickets and late payment."""
    rng = np.random.default_rng(seed)
    ids = [str(7_000_000 + i) for i in range(n)]
    health = rng.normal(0, 1, n)
    start = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 240, n), "D")
    periods, invoices, tickets, events = [], [], [], []
    for i, a in enumerate(ids):
        p, amount = start[i], float(rng.choice([29, 49, 99]))
        while p < END:
            e = p + pd.DateOffset(months=1)
            periods.append([a, p.strftime("%Y-%m-%d %H:%M"), e.strftime("%Y-%m-%d %H:%M"), f"{amount:.2f}",
                            "price_pro", 1])
            late = rng.random() < 1 / (1 + np.exp(2.5 + health[i]))
            paid = p + pd.Timedelta(days=int(25 if late else 0), hours=2)
            invoices.append([f"in_{len(invoices)}", a, f"{amount:.2f}", "paid" if paid < END else "open",
                             p.strftime("%Y-%m-%d %H:%M"), "", paid.strftime("%Y-%m-%d %H:%M") if paid < END else ""])
            for _ in range(rng.poisson(np.exp(1.5 + 0.7 * health[i]))):
                ts = p + pd.Timedelta(seconds=int(rng.integers(0, 86400 * 28)),
                                      microseconds=int(rng.integers(0, 10**6)))
                events.append([ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), f"u{i}-{rng.integers(3)}",
                               a if rng.random() > .02 else "", rng.choice(["Viewed Dashboard", "viewed dashboard",
                                                                           "Exported Report", "Login"]), "{}"])
            if rng.random() < 0.15 * np.exp(-health[i]):
                op = p + pd.Timedelta(days=int(rng.integers(0, 25)), hours=9)
                tickets.append([len(tickets) + 1, a, op.strftime("%Y-%m-%dT%H:%M:%S+01:00"),
                                (op + pd.Timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%S+01:00"), "solved",
                                rng.choice(["low", "normal", "high", "urgent"]),
                                rng.choice(["good", "bad", "offered", "unoffered"])])
            if rng.random() < 1 / (1 + np.exp(3.3 + 1.3 * health[i])):
                break
            p = e
    folder.mkdir(parents=True)
    pd.DataFrame({"Record ID": ids, "Company name": [f"Co {i}" for i in range(n)],
                  "Create Date": [s.strftime("%Y-%m-%d %H:%M") for s in start],
                  "Industry": rng.choice(["COMPUTER_SOFTWARE", "RETAIL", ""], n),
                  "Number of Employees": rng.choice(["12", "1,200", "N/A", "85"], n),
                  "Annual Revenue": rng.choice(["$1,234.50", "$90,000", "-", "$2,500,000"], n),
                  "Lifecycle Stage": "customer", "Twitter Handle": ""}
                 ).to_csv(folder / "accounts.csv", index=False, encoding="utf-8-sig")
    pd.DataFrame(periods, columns=["Customer ID", "Current Period Start (UTC)", "Current Period End (UTC)",
                                   "Amount", "Plan", "Quantity"]).to_csv(folder / "subscriptions.csv", index=False)
    pd.DataFrame(invoices, columns=["id", "Customer", "Amount Due", "Status", "Date (UTC)", "Due Date (UTC)",
                                    "Paid At (UTC)"]).to_csv(folder / "invoices.csv", index=False)
    pd.DataFrame(tickets, columns=["Id", "Organization", "Created at", "Solved at", "Status", "Priority",
                                   "Satisfaction Score"]).to_csv(folder / "tickets.csv", index=False)
    pd.DataFrame(events, columns=["event_time", "user_id", "groups.account", "event_type", "event_properties"]
                 ).to_csv(folder / "events.csv", index=False)


CONFIG = {
    "data": "../exports",
    "column_mapping": {
        "accounts": {"Record ID": "account_id", "Create Date": "signed_at", "Industry": "industry",
                     "Number of Employees": "employees"},
        "subscriptions": {"Customer ID": "account_id", "Current Period Start (UTC)": "start_date",
                          "Current Period End (UTC)": "end_date", "Amount": "mrr", "Plan": "plan",
                          "Quantity": "seats"},
        "invoices": {"Customer": "account_id", "Date (UTC)": "issued_at", "Due Date (UTC)": "due_at",
                     "Paid At (UTC)": "paid_at", "Amount Due": "amount", "Status": "status"},
        "tickets": {"Organization": "account_id", "Created at": "opened_at", "Solved at": "resolved_at",
                    "Priority": "priority", "Satisfaction Score": "csat"},
        "events": {"event_time": "occurred_at", "groups.account": "account_id"},
    },
    "event_roles": {"login": ["Login"], "core_feature": ["Viewed Dashboard", "Exported Report"]},
}


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    work = tmp_path_factory.mktemp("real")
    write_exports(work / "exports")
    home = work / "home"
    home.mkdir()
    (home / "churnwatch.yaml").write_text(yaml.safe_dump(CONFIG))
    steps = {"features": run_cli("features", home=home)}
    steps["train"] = run_cli("train", home=home)
    if steps["train"].returncode == 0:
        steps["promote"] = run_cli("promote", home=home)
        steps["score"] = run_cli("score", home=home)
    return {"home": home, "steps": steps}


def test_every_step_runs_and_nothing_is_misread(path):
    for step in ("features", "train", "promote", "score"):
        _ok(path, step)
    summary = json.loads((path["home"] / "reports" / "run-summary.json").read_text())
    tables = summary["validation"]["tables"] if "validation" in summary else summary["tables"]
    # only the events without a group id are set aside; every invoice and term is read
    assert {t: r["set_aside"] for t, r in tables.items() if r["set_aside"]} == \
        {"events": {"missing_account_id": tables["events"]["set_aside"]["missing_account_id"]}}
    import duckdb

    con = duckdb.connect(str(path["home"] / "store.duckdb"), read_only=True)
    n, csat, overdue, revenue, mrr = con.execute(
        "SELECT count(*), count(mean_csat_90d), max(days_overdue), count(annual_revenue), min(mrr) "
        "FROM snapshots").fetchone()
    assert csat > 0 and overdue > 0 and revenue > 0 and mrr in (29.0, 49.0, 99.0)
    scored = con.execute("SELECT account_id FROM score_history ORDER BY churn_probability DESC LIMIT 1").fetchone()[0]
    con.close()
    r = run_cli("explain", scored, home=path["home"])
    assert r.returncode == 0, r.stderr[-1500:]
    assert scored in r.stdout
