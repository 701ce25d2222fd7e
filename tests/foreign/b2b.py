"""A B2B SaaS company's exports as its tools write them, and the join a user does before loading.

The company (``b2b_exports``) sells seat-based plans, monthly or yearly, billed by Stripe; its CRM
is HubSpot, its support Zendesk and its product analytics Segment. Four tools, three id systems:
HubSpot's ``Record ID`` (a number), Stripe's ``cus_...`` and Zendesk's ``organization_id`` (a long
number); the product's analytics carry HubSpot's record id as the Segment group id. The CRM holds
the other two as company properties (``Stripe Customer ID``, ``Zendesk Organization ID``), which
``crm_ids.csv`` exports, with a few blanks, as a real CRM has them.

The mechanism (its own: not the demo's hidden model nor ``demo/consumer.py``'s): each month an
account's seat utilisation (active users / seats bought) drifts as a noisy AR(1) process; its
champion (the heaviest user) may leave, after which utilisation falls faster; urgent tickets
that stay unsolved for weeks and failed card payments accumulate; at each renewal (monthly, or
the anniversary of a yearly plan) the customer leaves with a probability that rises with low
utilisation, a champion gone in the last 90 days, an open urgent ticket, a failed payment in the
last 60 days and a small company, plus noise no feature sees. The decision to cancel is taken
(``canceled_at``) 5 to 40 days before the period ends (``cancel_at_period_end``), and usage fades
in between.

``b2b_exports(folder, n)`` writes the tools' files; ``b2b_prepare(raw, out, mapping)`` is what a
user writes from the README: re-key every table to HubSpot's record id through ``crm_ids.csv`` and
lay Stripe's one-row-per-subscription export out as churnwatch's ``subscriptions`` either naively
(``created -> start_date``, ``canceled_at -> end_date``: leaks) or as billing periods (per
``docs/exports-with-cancellation-dates.md``). ``B2B_CONFIG`` is the ``churnwatch.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

EXPORT_DAY = pd.Timestamp("2025-06-30")
HISTORY_MONTHS = 18
EVENTS = {"Dashboard Viewed": 2.0, "Report Exported": 0.4, "Seat Invited": 0.05, "Integration Synced": 0.6,
          "Signed In": 1.2}
INDUSTRIES = ["COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "RETAIL", "MARKETING_AND_ADVERTISING",
              "HIGHER_EDUCATION", ""]
COUNTRIES = ["United States", "Germany", "United Kingdom", "France", "China", "Canada", ""]


def _epoch(t: pd.Timestamp) -> int:
    return int(t.timestamp())


def _simulate(i: int, r: np.random.Generator, created: pd.Timestamp, employees: int, yearly: bool,
              seats: int, price: int, out: dict[str, list]) -> None:
    """One account's months from ``created`` to the export day; appends the tools' rows to ``out``."""
    rid, cus, org = out["ids"][i]
    util = float(np.clip(r.beta(5, 2.5), .05, 1))
    champion_left = None
    failed = []       # dates of failed payments
    urgent_open = []  # (opened, solved or None)
    period = pd.DateOffset(years=1) if yearly else pd.DateOffset(months=1)
    start, sub_id = created, f"sub_{r.integers(16 ** 13, 16 ** 14):x}"
    users = [f"usr_{i}_{k}" for k in range(max(seats, 1) + 3)]
    cancel_at = ended = None
    month = created
    end_of_period = start + period
    decided = None  # the renewal already decided
    while month < EXPORT_DAY:
        nxt = month + pd.DateOffset(months=1)
        if ended is not None and ended <= month:
            break
        if month <= end_of_period < nxt and cancel_at is None:  # renewed: a new period and its invoice
            start, end_of_period = end_of_period, end_of_period + period
        if month <= start < nxt:
            fails = r.random() < .03 + .05 * (employees < 20)
            if fails:
                failed.append(start)
            out["invoices"].append((cus, start, price * seats * (12 if yearly else 1), not fails, yearly))
        # the month's state
        util = float(np.clip(0.85 * util + 0.15 * 0.7 + r.normal(0, .07) - (.08 if champion_left else 0), .02, 1))
        if champion_left is None and r.random() < .02:
            champion_left = month + pd.Timedelta(days=int(r.integers(0, 28)))
        if cancel_at is None and decided != end_of_period and end_of_period < nxt + pd.DateOffset(months=1):
            # the renewal falls in the next month: the customer decides now
            renewal = decided = end_of_period
            recent_fail = any(renewal - pd.Timedelta(days=90) <= f <= renewal for f in failed)
            open_urgent = any(o <= month and (s is None or s > month) and (month - o).days > 14
                              for o, s in urgent_open)
            champ = champion_left is not None and (month - champion_left).days <= 120
            logit = (-3.6 + 3.0 * (0.7 - util) + 1.3 * champ + 1.0 * open_urgent + 1.2 * recent_fail
                     + 0.5 * (employees < 20) + (0.9 if yearly else 0) + r.normal(0, .6))
            if r.random() < 1 / (1 + np.exp(-logit)):
                cancel_at = max(renewal - pd.Timedelta(days=int(r.integers(5, 40 if yearly else 25)),
                                                       hours=int(r.integers(0, 24))), start + pd.Timedelta(hours=1))
                ended = renewal
        fade = 1.0 if cancel_at is None else .35
        active = users[1 if champion_left is not None and champion_left < month else 0:
                       max(1, int(round(util * seats * fade))) + 1]
        for name, rate in EVENTS.items():
            for u in active:
                k = r.poisson(rate * (3 if u.endswith("_0") else 1) * fade)
                for t in month + pd.to_timedelta(r.integers(0, 28 * 86400, k), "s"):
                    if t < EXPORT_DAY and (ended is None or t < ended):
                        out["events"].append((u, name, t, rid, int(r.integers(1, 20))))
        # support: urgent tickets, half of which stay open for weeks
        for _ in range(r.poisson(.25 + .6 * (1 - util))):
            opened = month + pd.Timedelta(hours=int(r.integers(0, 27 * 24)))
            prio = r.choice(["low", "normal", "high", "urgent"], p=[.3, .4, .2, .1])
            days = r.exponential(40 if prio == "urgent" and r.random() < .5 else 3)
            solved = opened + pd.Timedelta(hours=float(days * 24 + 1))
            if solved >= EXPORT_DAY:
                solved = None
            if prio == "urgent":
                urgent_open.append((opened, solved))
            if opened < EXPORT_DAY and (ended is None or opened < ended):
                out["tickets"].append((org, opened, solved, prio, util))
        month = nxt
    if cancel_at is not None and cancel_at >= EXPORT_DAY:  # decided after the export: not in it
        cancel_at = ended = None
    if ended is not None and ended > EXPORT_DAY:  # announced, not yet ended at the export
        status, ended_at = "active", None
    elif ended is not None:
        status, ended_at = "canceled", ended
    else:
        status, ended_at = ("past_due" if failed and failed[-1] == start else "active"), None
    cur_start = start if ended is None or ended > EXPORT_DAY else ended - period
    out["subs"].append((sub_id, cus, status, created, cur_start, cur_start + period, cancel_at, ended_at,
                        price * (12 if yearly else 1), seats, "year" if yearly else "month",
                        cancel_at is not None and ended_at is None))
    if champion_left is not None:
        out["champions"].append((rid, champion_left))


def b2b_exports(folder: Path, n: int = 200, seed: int = 0) -> dict[str, Path]:
    """Write ``hubspot_companies.csv``, ``crm_ids.csv``, ``stripe_subscriptions.csv``,
    ``stripe_invoices.csv``, ``zendesk_tickets.csv`` and ``segment_tracks.csv`` under ``folder``
    (about 18 months to 2025-06-30); return their paths by tool name."""
    r = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rids = 5_000_000_000 + r.choice(4_000_000, n, replace=False) * 1000 + r.integers(0, 1000, n)
    ids = [(str(rid), f"cus_{r.integers(16 ** 13, 16 ** 14):x}", str(360_000_000_000 + int(r.integers(1, 9e9))))
           for rid in rids]
    out: dict[str, list] = {"ids": ids, "events": [], "tickets": [], "invoices": [], "subs": [], "champions": []}
    first = EXPORT_DAY - pd.DateOffset(months=HISTORY_MONTHS)
    created = [first + pd.Timedelta(minutes=int(m)) for m in
               r.integers(-365 * 24 * 60, (EXPORT_DAY - first).days * 24 * 60 - 60 * 24 * 60, n)]
    employees = np.clip(np.round(r.lognormal(3.6, 1.2, n)), 2, 20000).astype(int)
    yearly = r.random(n) < .25
    seats = np.clip(np.round(employees * r.uniform(.05, .4, n)), 1, 400).astype(int)
    price = r.choice([1500, 2900, 4900], n, p=[.4, .4, .2])  # cents per seat and month
    for i in range(n):
        _simulate(i, r, created[i], int(employees[i]), bool(yearly[i]), int(seats[i]), int(price[i]), out)
    owner = r.choice(["ana@acme-saas.com", "li.wei@acme-saas.com", "sam@acme-saas.com"], n)
    companies = pd.DataFrame({
        "Record ID": [a for a, _, _ in ids], "Company name": [f"Company {k} GmbH" if k % 7 == 0 else f"Company {k}"
                                                              for k in range(n)],
        "Create Date": [c.strftime("%Y-%m-%d %H:%M") for c in created],
        "Industry": r.choice(INDUSTRIES, n),
        "Number of Employees": [str(e) if r.random() > .08 else "" for e in employees],
        "Annual Revenue": [str(int(e * r.uniform(5e4, 2e5))) if r.random() > .2 else "" for e in employees],
        "Lifecycle Stage": "customer", "Company owner": owner, "Country/Region": r.choice(COUNTRIES, n)})
    # the CRM's copy of the other tools' ids: a few companies were never linked
    crm = pd.DataFrame({"Record ID": companies["Record ID"],
                        "Stripe Customer ID": [c for _, c, _ in ids],
                        "Zendesk Organization ID": [o for _, _, o in ids]})
    crm.loc[r.random(n) < .01, "Zendesk Organization ID"] = ""
    subs = pd.DataFrame(out["subs"], columns=["id", "customer", "status", "created", "current_period_start",
                                              "current_period_end", "canceled_at", "ended_at", "plan.amount",
                                              "quantity", "plan.interval", "cancel_at_period_end"])
    for c in ("created", "current_period_start", "current_period_end", "canceled_at", "ended_at"):
        subs[c] = [("" if pd.isna(t) else _epoch(t)) for t in subs[c]]
    inv = []
    for k, (cus, start, amount, paid, _) in enumerate(out["invoices"]):
        st = "paid" if paid else ("uncollectible" if start < EXPORT_DAY - pd.Timedelta(days=30) else "open")
        inv.append({"id": f"in_{k:08d}", "customer": cus, "amount_due": amount,
                    "amount_paid": amount if paid else 0, "status": st, "created": _epoch(start),
                    "due_date": "", "paid_at": _epoch(start + pd.Timedelta(minutes=3)) if paid else ""})
    tickets = pd.DataFrame([{
        "id": k + 1, "organization_id": org,
        "created_at": o.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "solved_at": "" if s is None else s.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "priority": p, "status": "open" if s is None else "closed",
        "satisfaction_rating": ("unoffered" if s is None else
                                r.choice(["good", "bad", "offered"], p=[.6 * u + .1, .5 - .5 * u, .4 - .1 * u]))}
        for k, (org, o, s, p, u) in enumerate(out["tickets"])])
    ev = pd.DataFrame(out["events"], columns=["user_id", "event", "t", "context_groupId", "rows"])
    ev = ev.sort_values("t", kind="stable").reset_index(drop=True)
    ev["timestamp"] = (ev.pop("t").dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
                       .map(lambda t: t.isoformat(timespec="milliseconds")))
    ev["properties"] = [json.dumps({"rows": int(x), "source": "web"}) for x in ev.pop("rows")]
    paths = {"hubspot": folder / "hubspot_companies.csv", "crm_ids": folder / "crm_ids.csv",
             "stripe_subscriptions": folder / "stripe_subscriptions.csv",
             "stripe_invoices": folder / "stripe_invoices.csv", "zendesk": folder / "zendesk_tickets.csv",
             "segment": folder / "segment_tracks.csv"}
    companies.to_csv(paths["hubspot"], index=False)
    crm.to_csv(paths["crm_ids"], index=False)
    subs.to_csv(paths["stripe_subscriptions"], index=False)
    pd.DataFrame(inv).to_csv(paths["stripe_invoices"], index=False)
    tickets.to_csv(paths["zendesk"], index=False)
    ev[["user_id", "event", "timestamp", "context_groupId", "properties"]].to_csv(paths["segment"], index=False)
    return paths


# --- what a user writes -----------------------------------------------------------------------

def _periods(subs: pd.DataFrame) -> pd.DataFrame:
    """Stripe's one row per subscription as billing periods (docs/exports-with-cancellation-dates.md)."""
    rows = []
    for s in subs.to_dict("records"):
        yearly = s["plan.interval"] == "year"
        last_end = s["ended_at"] if pd.notna(s["ended_at"]) and s["ended_at"] <= EXPORT_DAY else s["current_period_end"]
        start = s["created"]
        while start < last_end:
            end = min(start + (pd.DateOffset(years=1) if yearly else pd.DateOffset(months=1)), last_end)
            rows.append({"account_id": s["account_id"], "start_date": start, "end_date": end,
                         "mrr": s["plan.amount"] * s["quantity"] / 100 / (12 if yearly else 1),  # as the guide
                         "plan": s["plan.interval"], "seats": s["quantity"]})
            start = end
    return pd.DataFrame(rows)


def b2b_prepare(raw: Path, out: Path, mapping: Literal["naive", "periods"] = "periods") -> Path:
    """Re-key the tools' files to HubSpot's record id and write churnwatch's folder ``out``."""
    raw, out = Path(raw), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = pd.read_csv(raw / "crm_ids.csv", dtype=str)
    stripe_to = ids.dropna(subset=["Stripe Customer ID"]).set_index("Stripe Customer ID")["Record ID"]
    zendesk_to = ids.dropna(subset=["Zendesk Organization ID"]).set_index("Zendesk Organization ID")["Record ID"]
    (out / "accounts.csv").write_bytes((raw / "hubspot_companies.csv").read_bytes())
    subs = pd.read_csv(raw / "stripe_subscriptions.csv", dtype={"customer": str})
    subs.insert(0, "account_id", subs["customer"].map(stripe_to))
    if mapping == "naive":
        subs.to_csv(out / "subscriptions.csv", index=False)
    else:
        for c in ("created", "current_period_end", "ended_at"):
            subs[c] = pd.to_datetime(subs[c].astype("Int64"), unit="s")
        _periods(subs).to_csv(out / "subscriptions.csv", index=False)
    inv = pd.read_csv(raw / "stripe_invoices.csv", dtype={"customer": str})
    inv.insert(0, "account_id", inv["customer"].map(stripe_to))
    inv.to_csv(out / "invoices.csv", index=False)
    tickets = pd.read_csv(raw / "zendesk_tickets.csv", dtype={"organization_id": str})
    tickets.insert(0, "account_id", tickets["organization_id"].map(zendesk_to))
    tickets.to_csv(out / "tickets.csv", index=False)
    (out / "events.csv").write_bytes((raw / "segment_tracks.csv").read_bytes())
    return out


#: ``churnwatch.yaml`` as a user writes it from the README ("Bring your data"), for ``mapping``; the
#: README's section "A B2B company's exports from four tools" shows the one for billing periods
def b2b_config(data: str, mapping: Literal["naive", "periods"] = "periods") -> dict:
    columns = {
        "accounts": {"Record ID": "account_id", "Create Date": "signed_at", "Industry": "industry",
                     "Number of Employees": "employees", "Country/Region": "region", "Company owner": "csm"},
        "invoices": {"created": "issued_at", "due_date": "due_at", "amount_due": "amount"},
        "tickets": {"created_at": "opened_at", "solved_at": "resolved_at", "satisfaction_rating": "csat"},
        "events": {"context_groupId": "account_id", "timestamp": "occurred_at", "event": "event_type"},
    }
    if mapping == "naive":
        columns["subscriptions"] = {"created": "start_date", "canceled_at": "end_date", "plan.amount": "mrr",
                                    "quantity": "seats"}
    return {
        "data": data,
        "column_mapping": columns,
        # the periods are written in currency units (as the guide's code); the naive mapping keeps Stripe's cents
        "column_units": {"invoices": {"amount": "cents"}, **({"subscriptions": {"mrr": "cents"}}
                                                             if mapping == "naive" else {})},
        "event_roles": {"login": ["Signed In"], "core_feature": ["Dashboard Viewed", "Report Exported"]},
    }
