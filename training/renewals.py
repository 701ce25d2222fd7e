"""Long terms whose renewal the training rows never show (a probe's 12-month app export).

In an export shorter than a term, every long term (annual, half-yearly, multi-year) that
started within the data ends after it: no labelled as-of date has such a term ending within
its horizon, so every labelled row of those accounts is 0 and the model never sees one renew
or lapse. Their risk near renewal is then extrapolated from shorter terms (on the probe's
12-month app export, annual terms ending within 60 days got a mean predicted 0.226 against a
true 0.429). Nothing in the run measures this, so ``train`` says so (``unseen_renewals``). The
same holds when the export reaches a renewal season only after the training dates.

A term is identified in the snapshot rows by its end day ``E = as_of + days_to_term_end`` (the
current term's end, the latest end of the terms in force; ``features.timeline.build_spine``).
Its length, in days: ``E`` minus the account's previous term end when the rows show one up to
``RENEWAL_GAP_DAYS`` before the term's first as-of date (a renewal), else ``E`` minus that first
as-of date: a lower bound, within a week of the length for a term that started inside the rows'
weekly dates, and raised to the length of the term that renews it when the rows show one (a renewal
usually repeats the term: an annual term that started before the rows and renewed is annual), but
never longer than from the relationship's start (``as_of - tenure_days``: a 7-day trial seen on the
first date, two days before its end, and followed by an annual term stays a 7-day term). A term is **long** from
``LONG_TERM_DAYS`` days. A term was **seen to end** when some labelled row has it ending within
the label's horizon (``0 < days_to_term_end <= horizon``) **in a training row**: that row's label
says whether it renewed or lapsed, and the model learns only from training rows (in the purged
layout the calibration block after them maps every account's score alike; it cannot learn how
annual renewals differ).
An account is flagged when its current term (at its last training row) is long and no term of a
similar length (within ``SIMILAR_LENGTH`` of its own) was seen to end. Ends seen only in the test
block do not count (a probe's 18-month Chargebee export: the first annual renewals fell in the
test block, the check read every labelled row and said nothing, and the model, trained without one,
predicted 3.0% on rows that churned 6.3%); the test rows of long terms (any long length) ending
within the horizon are counted (``later_long_term_ends``), as the test block's calibration then
measures that extrapolation.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

#: A term of at least this many days is long (longer than any monthly or quarterly term).
LONG_TERM_DAYS = 150
#: Two term lengths are "of that length" when they differ by at most this share of the longer.
SIMILAR_LENGTH = 0.25
#: A term starting at most this many days after the previous end (by its first as-of date) renews it.
RENEWAL_GAP_DAYS = 31
#: The warning is given from this share of the training accounts.
MIN_SHARE = 0.05


def term_lengths(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per snapshot row of ``rows`` (``account_id``, ``as_of``, ``days_to_term_end``, and
    ``tenure_days`` when there) with an end: ``account_id``, ``as_of``, ``days_to_term_end``,
    ``term_end`` (a date) and ``term_days`` (the term's length, see the module docstring).
    Open-ended terms (null) are left out."""
    days = pd.to_numeric(rows["days_to_term_end"], errors="coerce")
    keep = days.notna().to_numpy()
    tenure = pd.to_numeric(rows["tenure_days"], errors="coerce") if "tenure_days" in rows.columns \
        else pd.Series(np.nan, index=rows.index)
    out = pd.DataFrame({"account_id": rows["account_id"].to_numpy()[keep],
                        "as_of": pd.to_datetime(rows["as_of"]).to_numpy()[keep],
                        "days_to_term_end": days.to_numpy()[keep]})
    out["term_end"] = out["as_of"] + pd.to_timedelta(out["days_to_term_end"], unit="D")
    # the relationship's start: no term of it starts earlier
    out["relationship_start"] = out["as_of"] - pd.to_timedelta(tenure.to_numpy()[keep], unit="D")
    terms = (out.groupby(["account_id", "term_end"], as_index=False)
             .agg(as_of=("as_of", "min"), relationship_start=("relationship_start", "min"))
             .sort_values(["account_id", "term_end"]))
    previous = terms.groupby("account_id")["term_end"].shift(1)
    renews = (terms["as_of"] - previous).dt.days.between(0, RENEWAL_GAP_DAYS)  # else a new relationship
    terms["term_days"] = (terms["term_end"] - previous.where(renews, terms["as_of"])).dt.days
    # a term that started before the rows show it: as long as the term renewing it, if longer
    renewal_days = terms.groupby("account_id")["term_days"].shift(-1).where(renews.shift(-1, fill_value=False))
    unknown_start = ~renews
    longest = (terms["term_end"] - terms["relationship_start"]).dt.days  # NaN without tenure_days
    raised = np.fmin(np.fmax(terms["term_days"], renewal_days), longest).clip(lower=terms["term_days"])
    terms["term_days"] = terms["term_days"].where(~unknown_start, raised)
    return out.merge(terms[["account_id", "term_end", "term_days"]], on=["account_id", "term_end"], how="left")


def unseen_renewals(train: pd.DataFrame, labelled: pd.DataFrame, horizon_days: int,
                    test: pd.DataFrame | None = None) -> dict | None:
    """The training accounts on long terms of which the labelled rows never show one end (renew or
    lapse) within the horizon: ``None`` when they are fewer than ``MIN_SHARE`` of the training
    accounts, else ``{"accounts", "training_accounts", "share", "term_days" (median length of their
    terms), "training_from", "training_to" (the training rows' first and last as-of dates, ISO),
    "horizon_days", "seen_long_term_ends" (training rows of long terms ending within the horizon),
    "later_long_term_ends" (test rows of long terms ending within the horizon)}``.

    Args:
        train: the training rows (``account_id``, ``as_of``, ``days_to_term_end``): the only labels
            that count as seeing a term end.
        labelled: every labelled row of the run (training, calibration, test), the training rows'
            own history included: the terms' lengths are read from them.
        horizon_days: the label's horizon (a term ending later than ``as_of + horizon`` is not
            in that row's label).
        test: the test rows, whose long terms ending within the horizon are counted
            (``later_long_term_ends``; 0 without them).
    """
    if "days_to_term_end" not in labelled.columns or train.empty:
        return None
    terms = term_lengths(labelled)
    if terms.empty:
        return None
    long_ending = terms[(terms["days_to_term_end"] > 0) & (terms["days_to_term_end"] <= horizon_days)
                        & (terms["term_days"] >= LONG_TERM_DAYS)]
    training_keys = pd.MultiIndex.from_arrays([train["account_id"].to_numpy(), pd.to_datetime(train["as_of"])])
    in_training = pd.MultiIndex.from_arrays([long_ending["account_id"].to_numpy(),
                                             pd.to_datetime(long_ending["as_of"])]).isin(training_keys)
    ending = long_ending[in_training]  # only the training rows' labels teach the model
    in_test = np.zeros(len(long_ending), dtype=bool) if test is None else pd.MultiIndex.from_arrays(
        [long_ending["account_id"].to_numpy(), pd.to_datetime(long_ending["as_of"])]).isin(
        pd.MultiIndex.from_arrays([test["account_id"].to_numpy(), pd.to_datetime(test["as_of"])]))
    seen = np.unique(ending["term_days"].to_numpy(dtype=float))  # sorted
    accounts = train["account_id"].unique()
    last = pd.to_datetime(train["as_of"]).groupby(train["account_id"].to_numpy()).max()
    # each training account's term at its last training row (none when open-ended)
    current = terms.merge(last.rename("last").rename_axis("account_id").reset_index(), on="account_id")
    current = current[current["as_of"] == current["last"]]
    long = current[current["term_days"] >= LONG_TERM_DAYS]
    lengths = long["term_days"].to_numpy(dtype=float)
    # a seen length S is similar to L when |L - S| <= SIMILAR_LENGTH * max(L, S): S in [L(1-s), L/(1-s)]
    lo = np.searchsorted(seen, lengths * (1 - SIMILAR_LENGTH), side="left")
    hi = np.searchsorted(seen, lengths / (1 - SIMILAR_LENGTH), side="right")
    unseen = long[hi <= lo]
    share = unseen["account_id"].nunique() / len(accounts)
    if share < MIN_SHARE:
        return None
    dates = pd.to_datetime(train["as_of"])
    return {"accounts": int(unseen["account_id"].nunique()), "training_accounts": int(len(accounts)),
            "share": float(share), "term_days": int(np.median(unseen["term_days"])),
            "training_from": dates.min().date().isoformat(), "training_to": dates.max().date().isoformat(),
            "horizon_days": int(horizon_days), "seen_long_term_ends": int(len(ending)),
            "later_long_term_ends": int(in_test.sum())}


def unseen_renewals_text(record: dict) -> str:
    """The warning ``train`` prints (one line)."""
    last_reach = dt.date.fromisoformat(record["training_to"]) + dt.timedelta(days=record["horizon_days"])
    later = record.get("later_long_term_ends", 0)
    measured = (f"; {later:,} test rows have such a term ending within the horizon, so the test block's "
                "calibration measures that extrapolation" if later else "")
    return (f"warning: {record['accounts']:,} of {record['training_accounts']:,} training accounts "
            f"({record['share']:.1%}) are on long terms (typically {record['term_days']} days) of which none "
            f"renewed or lapsed within the training dates {record['training_from']} to {record['training_to']} "
            f"and their {record['horizon_days']}-day horizon (to {last_reach.isoformat()}): the model never saw "
            "such a term renew or lapse: their risk near renewal is extrapolated from shorter terms; judge it on "
            f"them only after a renewal season is in the training dates{measured}")


def unseen_renewals_param(record: dict | None) -> str:
    """The MLflow param ``unseen_renewals``: "none" or a short summary of ``record``."""
    if not record:
        return "none"
    return (f"{record['accounts']} of {record['training_accounts']} training accounts ({record['share']:.1%}) on "
            f"~{record['term_days']}-day terms never seen to renew or lapse in {record['training_from']}.."
            f"{record['training_to']} + {record['horizon_days']} days")
