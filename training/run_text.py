"""How a training run is worded in the terminal: an out-of-time test block of accounts x
dates (snapshots) or the test rows of a random split of customers (``train --table``), and
the "next:" line that fits the version (issue 12, item 7)."""

from __future__ import annotations

from core.vocabulary import TIER_KEYS
from features.spec import OWN_TEMPLATES
from training.leakage import leaky_features, where_to_look


def is_table(meta: dict) -> bool:
    return meta.get("kind") == "table"


def split_words(meta: dict) -> dict[str, str]:
    """``test`` (what the model is evaluated on) and ``unit`` (what a row is)."""
    if is_table(meta):
        return {"test": "the test rows (a random split of customers)", "short": "test rows", "unit": "customers"}
    if (meta.get("split") or {}).get("mode") == "account_holdout":
        return {"test": "the out-of-time test block of held-out accounts", "short": "test block",
                "unit": "held-out accounts x dates"}
    return {"test": "the out-of-time test block", "short": "test block", "unit": "accounts x dates"}


def next_line(meta: dict, version: int | None) -> str:
    """What to run after ``train``: promote (or why not automatically), then score."""
    leaky = leaky_features(meta)
    if leaky:
        return (f"next: check {', '.join(leaky)} ({where_to_look(meta)}); this version is never "
                f"promoted automatically: churnwatch promote --version {version} --force --reason TEXT")
    if is_table(meta):
        return (f"next: churnwatch promote --version {version}, then churnwatch score --table FILE "
                f"(the columns of {meta.get('file', 'the training table')}, id column {meta.get('id')!r})")
    return f"next: churnwatch promote --version {version}, then churnwatch score"


def unmet_bars(meta: dict) -> list[str]:
    """What a version's own evaluation says it does not meet (issue 12's bars): its ROC-AUC below its best
    baseline beyond the interval, calibration outside the target where it can be judged, churn not rising
    across the tiers; each said with where it was measured. A flat table's cross-validated figures (all its
    customers) stand in for its test rows' where they exist. A probe's leaking Stripe mapping was registered
    and promoted with all three said only among 25 lines."""
    metrics = meta.get("metrics") or {}
    cv = metrics.get("cross_validation") or {}
    judged, where = (cv, "cross-validated over all customers") if cv.get("ece_verdict") else (
        metrics, f"on the {split_words(meta)['short']}")
    out = []
    best = (cv.get("vs_logistic") and {**cv["vs_logistic"], "baseline": "logistic"}) if judged is cv else \
        (metrics.get("vs_baselines") or {}).get("best baseline")
    if (best or {}).get("verdict") == "not met":
        out.append(f"ROC-AUC against the {best.get('baseline')} baseline: {best.get('standing')}")
    if judged.get("ece_verdict") == "not met":
        out.append(f"calibration: ECE {judged['ece']:.4f} above the target {judged['ece_target']:.4f}")
    tiers = judged.get("per_tier") or {}
    rates = [(k, tiers[k]["churn_rate"]) for k in TIER_KEYS if (tiers.get(k) or {}).get("churn_rate") is not None]
    if len(rates) > 1 and not all(a[1] < b[1] for a, b in zip(rates, rates[1:])):
        out.append("churn does not rise across the tiers (" + " / ".join(f"{k} {r:.1%}" for k, r in rates) + ")")
    return [f"{u} ({where})" for u in out]


#: A column whose mean absolute contribution is at least this many times the next one's, in a model whose test
#: ROC-AUC is at least ``LEAD_AUC``, is said as a possible leak (``possible_leak``).
LEAD_RATIO = 4.0
LEAD_AUC = 0.9


def possible_leak(meta: dict, templates: dict[str, str]) -> str | None:
    """A company's own column that carries most of a too-good model, said at `train` and `promote` (not refused:
    honest columns can lead). A probe's flat table with a "Retention Offer Sent" flag renamed "Desk Flag" passed
    the guard (0.93 alone, under 0.95), reached ROC-AUC 0.951 with that column at 6.9 times the next one's
    contribution, and was promoted; its honest tables lead by 1.2 to 1.7 times at 0.74 to 0.82. First, a column the
    guard found nearly as telling alone as a refused one (``meta["leakage"]["near"]``: a vendor score at 0.947,
    not the lead of its model: the table's other columns carried a third of it).
    ``templates``: feature -> catalogue template."""
    near = (meta.get("leakage") or {}).get("near") or []
    said = []
    if near:  # a company's own column nearly as telling alone as a refused one
        top = max(near, key=lambda f: f["value"])
        said.append(f"possible leak: column {top['feature']!r} {top['detail']}: a column written from the outcome (a "
                    "vendor's churn or risk score computed later, a retention offer, a closing status) looks so; "
                    "check that it is known before a customer leaves, or leave it out (profile: exclude in "
                    "churnwatch.yaml)")
    lead = _leading_column(meta, templates)
    if lead is not None and not (near and f"column {top['feature']!r} " in lead):  # a second column, said too
        said.append(lead)
    return "; ".join(said) or None


def _leading_column(meta: dict, templates: dict[str, str]) -> str | None:
    """``possible_leak``'s lead: an own column at ``LEAD_RATIO`` times the next one's contribution in a model of
    ROC-AUC ``LEAD_AUC`` or more."""
    facts = (meta.get("training") or {}).get("feature_facts") or {}
    ranked = sorted(((float(v.get("importance") or 0.0), k) for k, v in facts.items()), reverse=True)
    auc = (meta.get("metrics") or {}).get("roc_auc")
    if len(ranked) < 2 or not ranked[0][0] or auc is None or not auc >= LEAD_AUC:  # NaN: not judged
        return None
    (top, name), (second, other) = ranked[0], ranked[1]
    if top < LEAD_RATIO * second or templates.get(name) not in OWN_TEMPLATES:
        return None
    times = f"{top / second:.1f} times the contribution of" if second else "all the contribution, nothing for"
    return (f"possible leak: column {name!r} carries {times} the next one "
            f"({other!r}) in a model of ROC-AUC {auc:.3f} on the {split_words(meta)['short']}: a column written "
            "from the outcome (a retention offer, a closing status) looks so; check that it is known before a "
            "customer leaves, or leave it out (profile: exclude in churnwatch.yaml)")


def few(items: list[str], n: int) -> str:
    """The first ``n`` of ``items`` joined by ", ", then " and K more" (a line of terminal output)."""
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
