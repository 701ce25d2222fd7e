"""A flat churn table shaped like a telecom customer export (one row per customer).

About 7,000 customers, ~20 columns of mixed types (categories, yes/no text, numbers, a
date), an id and a ``Churn`` label (Yes/No) at a ~26% base rate. The label comes from a
logistic model with **interactions and non-linear terms** (contract x tenure, fibre
without tech support, senior on month-to-month, electronic check x paperless billing,
log tenure, charges relative to the services taken), so a linear model on the raw
columns is not automatically the best one. ``leaky=True`` adds ``exit_survey_score``,
filled almost only for churners (an answer given when leaving): a leakage-guard test.
Deterministic with a seed; vectorised numpy.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

SNAPSHOT = date(2025, 6, 30)  # the day the table was exported
ADD_ONS = ("online_security", "online_backup", "device_protection", "tech_support",
           "streaming_tv", "streaming_movies")
BASE_LOGIT = -0.1  # settles the base rate near 26%


def _yes(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, "Yes", "No").astype(object)


def _pick(rng: np.random.Generator, names: tuple[str, ...], p: tuple[float, ...], n: int) -> np.ndarray:
    return np.asarray(names, dtype=object)[rng.choice(len(names), n, p=p)]


def _churn_logit(c: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """The hidden model: additive terms plus interactions; a latent mood adds noise."""
    m2m, two = c["contract"] == "Month-to-month", c["contract"] == "Two year"
    fiber = c["internet_service"] == "Fiber optic"
    no_net = c["internet_service"] == "No"
    tech = c["tech_support"] == "Yes"
    security = c["online_security"] == "Yes"
    echeck = c["payment_method"] == "Electronic check"
    paperless = c["paperless_billing"] == "Yes"
    tenure = c["tenure_months"]
    return (BASE_LOGIT
            + 1.2 * m2m - 1.4 * two
            - 0.55 * np.log1p(tenure) * (1 + 0.6 * m2m)
            + 1.0 * fiber * (1 - 0.7 * tech) - 0.5 * security * fiber
            - 0.9 * no_net
            + 0.5 * c["senior_citizen"] * m2m
            + 0.35 * echeck * (1 + paperless)
            - 0.3 * (c["partner"] == "Yes") - 0.25 * (c["dependents"] == "Yes")
            + 0.018 * c["charge_gap"]
            + 0.28 * np.minimum(c["support_calls"], 5) * (1 + 0.5 * (tenure < 12))
            - 0.35 * (c["satisfaction"] - 3)
            + rng.normal(0, 0.6, tenure.size))


def generate_flat(rows: int = 7000, seed: int = 5, leaky: bool = False) -> pd.DataFrame:
    """The flat churn table (see the module docstring).

    Args:
        rows: customers.
        seed: random seed; the same arguments give the same table.
        leaky: add ``exit_survey_score`` (1-10, present for ~90% of churners, ~1% of others).

    Raises:
        ValueError: fewer than 50 rows.
    """
    if rows < 50:
        raise ValueError(f"rows must be at least 50, got {rows}")
    rng = np.random.default_rng(seed)
    c: dict[str, np.ndarray] = {}
    c["gender"] = _pick(rng, ("Female", "Male"), (0.5, 0.5), rows)
    c["senior_citizen"] = (rng.random(rows) < 0.16).astype(np.int64)
    c["partner"] = _yes(rng.random(rows) < 0.48)
    c["dependents"] = _yes(rng.random(rows) < np.where(c["partner"] == "Yes", 0.5, 0.1))
    c["contract"] = _pick(rng, ("Month-to-month", "One year", "Two year"), (0.55, 0.21, 0.24), rows)
    long_term = np.select([c["contract"] == "One year", c["contract"] == "Two year"], [14.0, 30.0], 0.0)
    c["tenure_months"] = np.clip(np.rint(rng.gamma(1.1, 18, rows) + long_term), 0, 72).astype(np.int64)
    c["phone_service"] = _yes(rng.random(rows) < 0.9)
    c["multiple_lines"] = np.where(c["phone_service"] == "Yes", _yes(rng.random(rows) < 0.47),
                                   "No phone service").astype(object)
    c["internet_service"] = _pick(rng, ("DSL", "Fiber optic", "No"), (0.34, 0.44, 0.22), rows)
    net = c["internet_service"] != "No"
    for name, share in zip(ADD_ONS, (0.33, 0.39, 0.39, 0.34, 0.49, 0.5), strict=True):
        c[name] = np.where(net, _yes(rng.random(rows) < share), "No internet service").astype(object)
    c["paperless_billing"] = _yes(rng.random(rows) < 0.59)
    c["payment_method"] = _pick(rng, ("Electronic check", "Mailed check", "Bank transfer (automatic)",
                                      "Credit card (automatic)"), (0.34, 0.23, 0.22, 0.21), rows)
    services = sum((c[a] == "Yes").astype(float) for a in ADD_ONS)
    fair = (20.0 + 5 * (c["phone_service"] == "Yes") + 5 * (c["multiple_lines"] == "Yes")
            + np.select([c["internet_service"] == "Fiber optic", c["internet_service"] == "DSL"], [45.0, 25.0], 0)
            + 6.5 * services)
    c["monthly_charges"] = np.round(fair + rng.normal(0, 6, rows), 2)
    c["charge_gap"] = c["monthly_charges"] - fair  # hidden: paying more than the bundle is worth
    c["total_charges"] = np.round(c["monthly_charges"] * np.maximum(c["tenure_months"], 1)
                                  * rng.uniform(0.97, 1.02, rows), 2)
    c["support_calls"] = rng.poisson(0.8 + 0.6 * (c["internet_service"] == "Fiber optic"), rows)
    c["satisfaction"] = np.clip(np.rint(rng.normal(3.4 - 0.25 * c["support_calls"], 1.0)), 1, 5)
    logit = _churn_logit(c, rng)
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    signup = pd.Timestamp(SNAPSHOT) - pd.to_timedelta(c["tenure_months"] * 30.44
                                                      + rng.integers(0, 28, rows), unit="D")
    df = pd.DataFrame({"customer_id": [f"{i:04d}-{s}" for i, s in enumerate(
        rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ"), rows), start=1)]})
    for name in ("gender", "senior_citizen", "partner", "dependents", "tenure_months", "phone_service",
                 "multiple_lines", "internet_service", *ADD_ONS, "contract", "paperless_billing",
                 "payment_method", "monthly_charges", "total_charges", "support_calls"):
        df[name] = c[name]
    df["satisfaction_score"] = c["satisfaction"].astype(np.int64)
    df["signup_date"] = signup.normalize().date
    df["Churn"] = np.where(churn, "Yes", "No")
    if leaky:
        present = rng.random(rows) < np.where(churn, 0.9, 0.01)
        score = np.clip(np.rint(rng.normal(np.where(churn, 3.0, 7.0), 1.5)), 1, 10)
        df.insert(len(df.columns) - 1, "exit_survey_score", np.where(present, score, np.nan))
    return df


def write_flat_table(path: Path, rows: int = 7000, seed: int = 5, leaky: bool = False) -> Path:
    """Write the table as CSV (``.csv``) or Parquet (``.parquet``) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = generate_flat(rows, seed, leaky)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path
