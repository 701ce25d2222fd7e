"""How a training run is worded in the terminal: an out-of-time test block of accounts x
dates (snapshots) or the test rows of a random split of customers (``train --table``), and
the "next:" line that fits the version (issue 12, item 7)."""

from __future__ import annotations

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


def few(items: list[str], n: int) -> str:
    """The first ``n`` of ``items`` joined by ", ", then " and K more" (a line of terminal output)."""
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
