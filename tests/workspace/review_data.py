"""A stored churn diagnosis for the review page's tests: synthetic relationships, accounts,
feedback, scores and interventions run through the insights functions themselves
(``diagnose_frames`` + ``write_diagnosis``, ``closed_loop`` + ``write_closed_loop``) into
``<home>/reports/diagnosis``, as ``churnwatch diagnose`` stores them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from insights.closed_loop import ClosedLoop, closed_loop, write_closed_loop
from insights.diagnosis import Diagnosis, Window, diagnose_frames, write_diagnosis

DATA_START, DATA_END, GRACE = dt.date(2023, 1, 1), dt.date(2026, 1, 1), 30
WINDOW = Window(dt.date(2025, 1, 1), dt.date(2025, 12, 1))
N = 240


def frames(seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"a{i:03d}" for i in range(N)]
    industry = np.where(np.arange(N) % 3 == 0, "retail", np.where(np.arange(N) % 3 == 1, "finance", "health"))
    accounts = pd.DataFrame({"account_id": ids, "industry": industry,
                             "employees": rng.choice([10, 120, 600, 3000], N), "region": rng.choice(["EU", "APAC"], N),
                             "channel": "direct", "csm": rng.choice(["Ana Li", "Lee Wu"], N), "segment": "SMB"})
    start = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, N), unit="D")
    churns = rng.random(N) < np.where(industry == "retail", 0.55, 0.08)
    end = pd.Series(pd.Timestamp("2025-01-05") + pd.to_timedelta(rng.integers(0, 320, N), unit="D"))
    end = end.where(churns, pd.NaT)
    rel = pd.DataFrame({"account_id": ids, "rel_no": 1, "rel_start": start, "rel_end": end})
    for c in ("rel_start", "rel_end"):
        rel[c] = pd.to_datetime(rel[c]).astype("datetime64[ns]")
    terms = rel.rename(columns={"rel_start": "start", "rel_end": "end"})
    gone = rel[rel["rel_end"].notna()]
    cats = np.array(["price", "competitor", "product", "business_change"])
    feedback = pd.DataFrame({"account_id": gone["account_id"], "churned_at": gone["rel_end"].dt.date,
                             "reason_category": cats[np.arange(len(gone)) % 4],
                             "avoidable": [c != "business_change" for c in cats[np.arange(len(gone)) % 4]],
                             "notes": "", "source": "import"})
    months = pd.date_range("2024-01-01", "2025-11-01", freq="MS")
    monthly = pd.DataFrame({"month": months, "customer_churn_rate": 0.02, "gross_mrr_churn_rate": 0.02,
                            "net_mrr_churn_rate": 0.01, "provisional": False})
    dates = pd.date_range("2025-02-01", "2025-08-01", freq="MS")
    health = rng.choice([35, 55, 75, 85], (len(dates), N))
    tiers = {35: "high_risk", 55: "medium_risk", 75: "low_risk", 85: "healthy"}
    scores = pd.DataFrame([{"account_id": a, "as_of": d, "health_score": int(health[i, j]),
                            "tier": tiers[int(health[i, j])]} for i, d in enumerate(dates) for j, a in enumerate(ids)])
    treated = rng.choice(ids, 60, replace=False)
    interventions = pd.DataFrame({"account_id": treated, "occurred_at": [
        dates[k % len(dates)] + pd.Timedelta(days=2) for k in range(len(treated))],
        "playbook": np.where(np.arange(len(treated)) % 2 == 0, "csm_call", "care_email")})
    return {"accounts": accounts, "relationships": rel, "terms": terms, "feedback": feedback, "monthly": monthly,
            "scores": scores, "interventions": interventions}


def write_stored_diagnosis(home: Path, seed: int = 7) -> tuple[Diagnosis, ClosedLoop, dict[str, pd.DataFrame]]:
    """Diagnose the synthetic frames and store the results as ``churnwatch diagnose`` does."""
    f = frames(seed)
    diag = diagnose_frames(f["relationships"], f["terms"], f["accounts"], f["feedback"], f["monthly"], WINDOW,
                           DATA_START, DATA_END, GRACE)
    folder = Path(home) / "reports" / "diagnosis"
    folder.mkdir(parents=True, exist_ok=True)
    write_diagnosis(diag, folder)
    loop = closed_loop(f["scores"], f["interventions"], f["relationships"], DATA_END, 60, GRACE)
    write_closed_loop(loop, folder)
    return diag, loop, f
