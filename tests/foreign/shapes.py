"""Two exports shaped exactly as public churn data sets are, generated here (no data is shipped).

``telco_exact``: IBM's "Telco Customer Churn" CSV column for column and quirk for quirk:
``customerID`` like ``7590-VHVEG``, ``SeniorCitizen`` 0/1 while every other flag is Yes/No,
"No phone service" / "No internet service" as third values, ``TotalCharges`` as text with a
single space " " for the customers of tenure 0, ``Churn`` Yes/No, no date column at all.
Churn follows the relations published for that data set (month-to-month contracts, fibre,
electronic checks and short tenure churn more), so a user's model has something real to find.

``streaming_log``: a music-streaming subscription log in the layout of a well-known public one
(members / transactions / user_logs): dates as YYYYMMDD integers, ``bd`` (age) with 0 for
unknown and absurd values (-7, 1051), ``gender`` often blank, daily listening counts per
member. ``streaming_mapped`` turns it into the contract's tables the way the README says a
user should (``churnwatch.yaml``'s ``column_mapping``; the daily counts melted into events).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TELCO_COLUMNS = ["customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
                 "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
                 "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
                 "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn"]
_ADDONS = ["OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV", "StreamingMovies"]


def _telco_id(r: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    ids = {f"{d:04d}-{''.join(w)}" for d, w in zip(r.integers(0, 10000, 3 * n), r.choice(letters, (3 * n, 5)))}
    return sorted(ids)[:n] if len(ids) >= n else _telco_id(r, n)


def telco_exact(n: int = 7043, seed: int = 0, blank_tenure_zero: int = 11) -> pd.DataFrame:
    """The Telco table; ``blank_tenure_zero`` customers have tenure 0 and TotalCharges " "."""
    r = np.random.default_rng(seed)
    yes = lambda p: np.where(r.random(n) < p, "Yes", "No")  # noqa: E731
    contract = r.choice(["Month-to-month", "One year", "Two year"], n, p=[.55, .21, .24])
    base_tenure = {"Month-to-month": 18, "One year": 42, "Two year": 57}
    tenure = np.clip(np.round(r.normal([base_tenure[c] for c in contract], 17)), 1, 72).astype(int)
    tenure[r.choice(n, blank_tenure_zero, replace=False)] = 0
    phone = yes(.9)
    multiple = np.where(phone == "No", "No phone service", yes(.47))
    internet = r.choice(["DSL", "Fiber optic", "No"], n, p=[.34, .44, .22])
    addons = {c: np.where(internet == "No", "No internet service", yes(p))
              for c, p in zip(_ADDONS, [.37, .44, .44, .37, .49, .5])}
    monthly = (20 + 5 * (phone == "Yes") * (1 + (multiple == "Yes")) + 25 * (internet == "DSL")
               + 50 * (internet == "Fiber optic") + sum(5.0 * (addons[c] == "Yes") for c in _ADDONS)
               + r.normal(0, 2, n))
    monthly = np.round(np.clip(monthly, 18.25, 118.75), 2)
    payment = r.choice(["Electronic check", "Mailed check", "Bank transfer (automatic)",
                        "Credit card (automatic)"], n, p=[.34, .23, .22, .21])
    senior = (r.random(n) < .16).astype(int)
    partner, paperless = yes(.48), yes(.59)
    dependents = np.where(partner == "Yes", yes(.5), yes(.1))
    logit = (-1.2 + 1.4 * (contract == "Month-to-month") - 1.3 * (contract == "Two year")
             - 0.9 * np.log1p(tenure) / np.log(73) * 2 + 0.9 * (internet == "Fiber optic")
             - 0.6 * (addons["OnlineSecurity"] == "Yes") - 0.5 * (addons["TechSupport"] == "Yes")
             + 0.6 * (payment == "Electronic check") + 0.35 * senior + 0.3 * (paperless == "Yes")
             - 0.3 * (dependents == "Yes") + 0.012 * (monthly - 65) + 0.25 * (addons["StreamingTV"] == "Yes"))
    churn = r.random(n) < 1 / (1 + np.exp(-logit))
    total = np.round(monthly * tenure * r.uniform(.9, 1.05, n), 2)
    df = pd.DataFrame({
        "customerID": _telco_id(r, n), "gender": r.choice(["Female", "Male"], n), "SeniorCitizen": senior,
        "Partner": partner, "Dependents": dependents, "tenure": tenure, "PhoneService": phone,
        "MultipleLines": multiple, "InternetService": internet, **addons, "Contract": contract,
        "PaperlessBilling": paperless, "PaymentMethod": payment, "MonthlyCharges": monthly,
        "TotalCharges": np.where(tenure == 0, " ", [f"{v:g}" for v in total]),
        "Churn": np.where(churn, "Yes", "No")})
    return df[TELCO_COLUMNS]


# --- the streaming log -------------------------------------------------------------------------

def _ymd(days: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    d = pd.DatetimeIndex(pd.to_datetime(days))
    return (d.year * 10000 + d.month * 100 + d.day).to_numpy().astype("int64")


def streaming_log(n: int = 4000, months: int = 12, seed: int = 0,
                  start: str = "2016-01-01") -> dict[str, pd.DataFrame]:
    """``members``, ``transactions`` and ``user_logs`` as the public log has them.

    Each member renews a 30-day plan every 30 days until a renewal fails; the monthly hazard
    (2-3%) rises with low listening, a manual (not auto-renewing) plan, youth and a discount;
    listening decays for some weeks before a churn. Members join throughout the period and some
    a year or more before it. Ages: 0 for about a third (unknown), a few absurd values.
    """
    r = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    end = t0 + pd.DateOffset(months=months)
    span = (end - t0).days
    ids = [f"{h:x}" for h in r.integers(16 ** 11, 16 ** 12, n)]
    # a third were members before the export's window, the rest join during it
    joined = np.where(r.random(n) < .35, -r.integers(30, 900, n), r.integers(0, span - 30, n))
    age = np.clip(np.round(r.gamma(6, 4.8, n) + 12), 14, 80).astype(int)
    bd = np.where(r.random(n) < .35, 0, age)
    odd = r.choice(n, max(3, n // 400), replace=False)
    bd[odd] = r.choice([-7, -3011, 1051, 931, 2016, 117], len(odd))
    gender = np.where(bd == 0, np.where(r.random(n) < .8, "", r.choice(["male", "female"], n)),
                      np.where(r.random(n) < .15, "", r.choice(["male", "female"], n)))
    city = np.where(bd == 0, 1, r.choice([1, 4, 5, 13, 15, 22], n, p=[.3, .15, .15, .15, .15, .1]))
    via = r.choice([3, 4, 7, 9, 13], n, p=[.2, .15, .35, .25, .05])
    auto = r.random(n) < np.where(via == 7, .95, .7)
    price = r.choice([99, 129, 149, 180], n, p=[.3, .15, .5, .05])
    discount = r.random(n) < .12
    taste = r.gamma(2, 1, n)
    members = pd.DataFrame({"msno": ids, "city": city, "bd": bd, "gender": gender, "registered_via": via,
                            "registration_init_time": _ymd(t0 + pd.to_timedelta(joined, "D"))})
    tx, logs = [], []
    for i in range(n):
        day = int(joined[i])
        engagement = taste[i]
        while day < span:
            listen_until = min(day + 30, span)
            decay = False
            # monthly renewal hazard, decided at the start of the period for the listening before it
            logit = (-3.3 + 1.4 * (not auto[i]) - 0.9 * np.log1p(engagement) + 0.7 * discount[i]
                     + (0.5 if 14 < age[i] < 25 else 0) + (0.6 if day - joined[i] < 60 else 0))
            churns = r.random() < 1 / (1 + np.exp(-logit))
            paid = price[i] * (0.5 if discount[i] else 1.0)
            if day >= -30:
                tx.append((ids[i], r.choice([38, 39, 41]), 30, price[i], paid, int(auto[i]), day, day + 30, 0))
            if churns:
                decay = True
            lo = max(day, 0)
            for d in range(lo, listen_until):
                fade = max(0.05, (listen_until - d) / 30) if decay else 1.0
                if r.random() < min(.95, .25 + .2 * engagement) * fade:
                    unq = int(r.poisson(6 * engagement * fade) + 1)
                    logs.append((ids[i], d, *r.poisson([unq * .6, unq * .1, unq * .05, unq * .05]), unq * 2, unq,
                                 round(float(unq * 2 * r.uniform(150, 260)), 3)))
            engagement = max(0.02, engagement * r.uniform(.85, 1.12) + r.normal(0, .1))
            if churns:
                if not auto[i] or r.random() < .5:  # an explicit cancellation row now and then
                    if day + 30 < span:
                        tx.append((ids[i], 41, 30, price[i], 0, int(auto[i]), day + 20, day + 30, 1))
                break
            day += 30
    tx = pd.DataFrame(tx, columns=["msno", "payment_method_id", "payment_plan_days", "plan_list_price",
                                   "actual_amount_paid", "is_auto_renew", "transaction_date",
                                   "membership_expire_date", "is_cancel"])
    tx = tx[tx.transaction_date < span]
    for c in ("transaction_date", "membership_expire_date"):
        tx[c] = _ymd(t0 + pd.to_timedelta(tx[c], "D"))
    logs = pd.DataFrame(logs, columns=["msno", "date", "num_25", "num_50", "num_75", "num_985", "num_100",
                                       "num_unq", "total_secs"])
    logs["date"] = _ymd(t0 + pd.to_timedelta(logs["date"], "D"))
    return {"members": members, "transactions": tx.reset_index(drop=True), "user_logs": logs}


#: ``churnwatch.yaml``'s mapping a user writes for the streaming log (files renamed to the contract's
#: table names; the README's "Bring your data" and "Data we did not generate" say how)
STREAMING_MAPPING = {
    "accounts": {"msno": "account_id", "registration_init_time": "signed_at"},
    "subscriptions": {"msno": "account_id", "transaction_date": "start_date",
                      "membership_expire_date": "end_date", "actual_amount_paid": "mrr"},
    "events": {"msno": "account_id", "date": "occurred_at"},
}


def streaming_files(log: dict[str, pd.DataFrame], iso_dates: bool = False) -> dict[str, pd.DataFrame]:
    """The log as a user lays it out for churnwatch: ``members`` -> ``accounts``, ``transactions``
    -> ``subscriptions`` as they are, and the daily ``user_logs`` (no event type: one row of counts
    per member and day) melted into events, one type per count column kept, its count as
    ``quantity`` (a day with a count of 0 has no event). ``iso_dates``: the contract's date columns
    written as ISO dates, as the README asked before YYYYMMDD integers were read."""
    logs = log["user_logs"]
    events = logs.melt(id_vars=["msno", "date"], value_vars=["num_unq", "num_100", "num_25"],
                       var_name="event_type", value_name="quantity")
    events = events[events.quantity > 0].replace({"event_type": {"num_unq": "song_played",
                                                                  "num_100": "song_completed",
                                                                  "num_25": "song_skipped"}})
    out = {"accounts": log["members"].copy(), "subscriptions": log["transactions"].copy(),
           "events": events.sort_values(["date", "msno"]).reset_index(drop=True)}
    if iso_dates:
        for table, columns in (("accounts", ["registration_init_time"]), ("events", ["date"]),
                               ("subscriptions", ["transaction_date", "membership_expire_date"])):
            for c in columns:
                out[table][c] = pd.to_datetime(out[table][c].astype(str), format="%Y%m%d").dt.strftime("%Y-%m-%d")
    return out
