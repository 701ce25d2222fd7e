"""Three flat churn tables as companies and public data sets export them (no data is shipped).

Written from a mechanism of its own, not the demo's or ``shapes.py``'s: each customer has a
latent *attachment* (a normal draw) that every observed column leans on a little, and churn is a
Bernoulli draw from a logistic of that attachment plus a few direct effects of the shape's own
columns (the relations the public sets are known for). So no column alone gives the label away,
and a model that reads the columns as numbers finds something a logistic regression finds too.

* ``bank_table``: the bank's table as it is published (``RowNumber`` 1..n, 8-digit ``CustomerId``,
  ``Surname``, ``Balance`` exactly 0.0 for about a third, ``Exited`` 0/1, ~20% churn; older,
  inactive, German and 3-4-product customers leave more);
* ``ecommerce_table``: an e-commerce retailer's table (``Churn`` 0/1, ``Tenure`` blank for ~5%,
  ``PreferredLoginDevice`` with "Mobile Phone" and "Phone" for the same thing, ``CityTier`` 1-3,
  blanks in the app and order columns, ~17% churn; short tenure and complaints leave more);
* ``spreadsheet_table``: a subscription list saved from a European Excel: ``write_spreadsheet``
  writes it with a UTF-8 BOM, ``;`` between fields and a decimal comma; money as ``$1,234.50``
  and ``1.234,50 EUR``, ``12%``, ``TRUE``/``FALSE`` and ``Yes``/``No``, ``Churned`` Yes/No,
  ``N/A`` and ``-`` as blanks, ISO dates and an Excel serial date column, free-text ``Notes``,
  ``monthly``/``Monthly`` in one column; ~26% churn.

``write_all(folder, n)`` writes the three (``n`` rows each: small for tests, 7,000 for the harness).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SURNAMES = ["Smith", "Chen", "Okafor", "Müller", "García", "Rossi", "Nguyen", "Kowalski", "Dubois", "Ivanova",
            "O'Brien", "Hargrave", "Hill", "Onio", "Boni", "Mitchell", "Chu", "Bartlett", "Obinna", "Bellucci"]
NOTES = ["called about invoice", "asked for discount", "", "happy with service", "moved to new office",
         "complained about app, twice", "renewal discussed; no decision", "VIP", "paid late again",
         "wants annual plan"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _churn(r: np.random.Generator, logit: np.ndarray, rate: float) -> np.ndarray:
    """0/1 draws from ``logit`` shifted so that the mean probability is ``rate``."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _sigmoid(logit + mid).mean() < rate else (lo, mid)
    return (r.random(len(logit)) < _sigmoid(logit + lo)).astype(int)


def bank_table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The bank's table, its column names and types as published; ~20% ``Exited``."""
    r = np.random.default_rng(seed)
    attach = r.normal(0, 1, n)
    geography = r.choice(["France", "Spain", "Germany"], n, p=[0.5, 0.25, 0.25])
    gender = r.choice(["Male", "Female"], n, p=[0.55, 0.45])
    age = np.clip(np.round(r.gamma(9, 4.3, n) + 2 * attach), 18, 92).astype(int)
    tenure = r.integers(0, 11, n)
    zero = r.random(n) < np.where(geography == "Germany", 0.0, 0.48)
    balance = np.where(zero, 0.0, np.round(np.clip(r.normal(119_000, 30_000, n), 3_000, 250_000), 2))
    products = r.choice([1, 2, 3, 4], n, p=[0.5, 0.46, 0.03, 0.01])
    active = (r.random(n) < _sigmoid(0.6 * attach)).astype(int)
    card = (r.random(n) < 0.7).astype(int)
    score = np.clip(np.round(r.normal(650, 96, n) + 8 * attach), 350, 850).astype(int)
    salary = np.round(r.uniform(11.58, 199_992.48, n), 2)
    logit = (-0.9 * attach + 0.07 * (age - 38) - 0.0009 * np.maximum(age - 55, 0) ** 2
             - 0.9 * active + 0.75 * (geography == "Germany") + 0.45 * (gender == "Female")
             - 0.9 * (products == 2) + 2.3 * (products >= 3) + 0.2 * (balance > 0) - 0.0008 * (score - 650))
    ids = r.choice(np.arange(15_565_701, 15_815_690), n, replace=False)
    return pd.DataFrame({
        "RowNumber": np.arange(1, n + 1), "CustomerId": ids, "Surname": r.choice(SURNAMES, n) + "-"
        + pd.Series(r.integers(1, 400, n)).astype(str).to_numpy(dtype=object),
        "CreditScore": score, "Geography": geography, "Gender": gender, "Age": age, "Tenure": tenure,
        "Balance": balance, "NumOfProducts": products, "HasCrCard": card, "IsActiveMember": active,
        "EstimatedSalary": salary, "Exited": _churn(r, logit, 0.20)})


def ecommerce_table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The retailer's table; blanks as empty cells; ~17% ``Churn``."""
    r = np.random.default_rng(seed + 1)
    attach = r.normal(0, 1, n)
    tenure = np.clip(np.round(r.exponential(10, n) + 2 * attach), 0, 61)
    device = r.choice(["Mobile Phone", "Phone", "Computer"], n, p=[0.5, 0.21, 0.29])
    tier = r.choice([1, 2, 3], n, p=[0.65, 0.05, 0.3])
    hours = np.clip(np.round(r.normal(3 + 0.3 * attach, 0.7)), 0, 5)
    hike = np.round(r.uniform(11, 26, n))
    coupons = r.poisson(np.exp(0.3 * attach + 0.4), n).astype(float)
    days_since = np.clip(np.round(r.exponential(4.5, n) - attach), 0, 46) + 0.0
    cashback = np.round(np.clip(r.normal(160 + 4 * tenure + 10 * attach, 40), 0, 325), 2)
    complain = (r.random(n) < _sigmoid(-1 - 0.4 * attach)).astype(int)
    satisfaction = r.integers(1, 6, n)
    marital = r.choice(["Single", "Married", "Divorced"], n, p=[0.32, 0.53, 0.15])
    payment = r.choice(["Debit Card", "Credit Card", "CC", "E wallet", "UPI", "COD", "Cash on Delivery"], n,
                       p=[0.41, 0.2, 0.06, 0.11, 0.07, 0.06, 0.09])
    logit = (-0.7 * attach - 0.16 * np.minimum(tenure, 20) + 1.5 * complain + 0.5 * (tier == 3)
             + 0.6 * (marital == "Single") - 0.08 * days_since + 0.15 * (satisfaction - 3)
             + 0.3 * np.isin(payment, ["COD", "Cash on Delivery"]) - 0.004 * (cashback - 160))
    churn = _churn(r, logit, 0.17)
    frame = pd.DataFrame({
        "CustomerID": np.arange(50_001, 50_001 + n), "Churn": churn, "Tenure": tenure,
        "PreferredLoginDevice": device, "CityTier": tier, "WarehouseToHome": np.round(r.gamma(3, 5, n) + 5),
        "PreferredPaymentMode": payment, "Gender": r.choice(["Male", "Female"], n, p=[0.6, 0.4]),
        "HourSpendOnApp": hours, "NumberOfDeviceRegistered": r.integers(1, 7, n),
        "PreferedOrderCat": r.choice(["Laptop & Accessory", "Mobile Phone", "Fashion", "Grocery", "Others"], n),
        "SatisfactionScore": satisfaction, "MaritalStatus": marital, "NumberOfAddress": r.integers(1, 12, n),
        "Complain": complain, "OrderAmountHikeFromlastYear": hike, "CouponUsed": coupons,
        "OrderCount": np.clip(coupons + r.poisson(1.5, n), 1, 16), "DaySinceLastOrder": days_since,
        "CashbackAmount": cashback})
    for col, share in (("Tenure", 0.047), ("HourSpendOnApp", 0.045), ("OrderAmountHikeFromlastYear", 0.047),
                       ("CouponUsed", 0.045), ("DaySinceLastOrder", 0.055)):
        frame[col] = frame[col].astype("Float64").mask(r.random(n) < share)
    return frame


def _euro(x: float) -> str:
    """``1.234,50 EUR``."""
    return f"{x:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".") + " EUR"


def spreadsheet_table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The European spreadsheet's subscription list, every cell as the text Excel writes; ~26% churn."""
    r = np.random.default_rng(seed + 2)
    attach = r.normal(0, 1, n)
    export = pd.Timestamp("2026-11-30")
    signup = export - pd.to_timedelta(np.round(r.gamma(2, 250, n) + 40 * attach + 30).clip(20, 2500), "D")
    months = ((export - signup).days / 30.4).to_numpy()
    plan = r.choice(["monthly", "annual"], n, p=[0.6, 0.4])
    fee = np.where(plan == "monthly", 1.0, 0.8) * r.choice([29.0, 79.0, 249.0, 1290.0], n, p=[.4, .3, .2, .1])
    fee = np.round(fee * r.uniform(0.9, 1.1, n), 2)
    spend = np.round(fee * months * r.uniform(0.85, 1.0, n), 2)
    discount = r.choice([0, 5, 10, 12, 15, 20, 25], n)
    usage = np.round(np.clip(r.normal(12 + 4 * attach, 4), 0, None), 1)
    tickets = r.poisson(np.exp(0.3 - 0.3 * attach), n)
    auto = r.random(n) < _sigmoid(0.8 + 0.5 * attach)
    last_pay = export - pd.to_timedelta(np.clip(np.round(r.exponential(12, n) - 5 * attach), 0, 200), "D")
    region = r.choice(["North", "South", "East", "West", "Central"], n)
    logit = (-0.8 * attach + 0.9 * (plan == "monthly") - 0.45 * np.log1p(months) - 0.06 * (usage - 12)
             + 0.25 * tickets - 1.0 * auto + 0.03 * discount + 0.006 * (export - last_pay).days.to_numpy()
             + 0.25 * np.log(fee / 79))
    churn = _churn(r, logit, 0.26)
    mixed_case = r.random(n) < 0.35
    blank = r.random(n)
    serial = (last_pay - pd.Timestamp("1899-12-30")).days.to_numpy()
    tickets_text = tickets.astype(str).astype(object)
    tickets_text[blank < 0.03] = "N/A"
    tickets_text[(blank >= 0.03) & (blank < 0.05)] = "-"
    nps = r.integers(0, 11, n).astype(str).astype(object)
    nps[r.random(n) < 0.2] = "N/A"
    return pd.DataFrame({
        "Customer ID": [f"CUST-{i:06d}" for i in r.choice(999_999, n, replace=False)],
        "Company": [f"{r.choice(SURNAMES)} {k} GmbH" for k in r.integers(1, 5000, n)],
        "Region": region,
        "Plan": np.where(mixed_case, np.char.capitalize(plan.astype(str)), plan),
        "Signup Date": signup.strftime("%Y-%m-%d"),
        "Last Payment Date": serial,
        "Monthly Fee": [_euro(x) for x in fee],
        "Total Spend": [f"${x:,.2f}" for x in spend],
        "Discount": [f"{d}%" for d in discount],
        "Usage Hours": [f"{u:.1f}".replace(".", ",") for u in usage],
        "Support Tickets": tickets_text,
        "NPS": nps,
        "Auto Renew": np.where(auto, "TRUE", "FALSE"),
        "Newsletter": np.where(r.random(n) < 0.4, "Yes", "No"),
        "Seats": r.integers(1, 40, n),
        "Notes": [NOTES[k] + (f" ({d:%d %b})" if k % 3 == 0 and NOTES[k] else "") for k, d in
                  zip(r.integers(0, len(NOTES), n), signup, strict=True)],
        "Churned": np.where(churn == 1, "Yes", "No")})


def write_spreadsheet(frame: pd.DataFrame, path: Path) -> Path:
    """The spreadsheet as European Excel saves it: UTF-8 with a BOM, ``;`` between fields."""
    frame.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    return path


def write_all(folder: Path, n: int = 2000, seed: int = 0) -> dict[str, tuple[Path, str, str]]:
    """The three tables as CSV files in ``folder``: name -> (file, label column, id column)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bank, shop = folder / "bank_churn.csv", folder / "ecommerce_churn.csv"
    bank_table(n, seed).to_csv(bank, index=False)
    ecommerce_table(n, seed).to_csv(shop, index=False)
    sheet = write_spreadsheet(spreadsheet_table(n, seed), folder / "subscriptions_export.csv")
    return {"bank": (bank, "Exited", "CustomerId"), "ecommerce": (shop, "Churn", "CustomerID"),
            "spreadsheet": (sheet, "Churned", "Customer ID")}


if __name__ == "__main__":  # python tests/foreign/company_tables.py FOLDER [ROWS]
    import sys

    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 7000
    for name, (file, label, key) in write_all(Path(sys.argv[1]), rows).items():
        print(f"{name}: {file} --label {label!r} --id {key!r}")
