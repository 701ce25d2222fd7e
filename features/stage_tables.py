"""Which feature stages DuckDB materialises, and when each stage table is dropped.

``build_feature_tables`` (``features/snapshots.py``) runs the stages as ``CREATE TEMP TABLE``
statements in one connection; a stage read once becomes a view instead (``read_once``), and a
table no later statement reads is dropped as soon as its last reader has run (``spent_after``:
memory back). Both read the stages' SQL text for the names of the tables they read.
"""

from __future__ import annotations

import re


def read_once(stages: list[tuple[str, str]], final: str, inputs: tuple[str, ...] = ()) -> set[str]:
    """The stage tables that one later statement (a stage or the final query) reads, once (one
    ``FROM``/``JOIN`` of the name), and that read none of ``inputs`` (the keyed events: a view would
    keep them until its reader runs). DuckDB makes them views: its planner inlines a view into the
    statement that reads it, so the stage is never materialised (at the benchmark's 1x ``ev_wide``,
    543,472 rows x 84 columns; ``udelta``, ``tk``, ``inv``, ``nf``), and the values are the same."""
    out = set()
    for j, (table, sql) in enumerate(stages):
        read = re.compile(rf"\b(?:FROM|JOIN)\s+{re.escape(table)}\b", re.I)
        once = sum(len(read.findall(later)) for later in [s for _, s in stages[j + 1:]] + [final]) == 1
        if once and not any(re.search(rf"\b{re.escape(t)}\b", sql) for t in inputs):
            out.add(table)
    return out


def spent_after(stages: list[tuple[str, str]], final: str, inputs: tuple[str, ...] = (),
                views: set[str] | frozenset[str] = frozenset()) -> dict[int, list[str]]:
    """stage index -> the stage tables (and tables ``inputs`` made before the stages) no later
    stage and not the final query read. A statement that reads one of the ``views`` (stages made
    views) reads what that view reads: the tables under a view live as long as its readers."""
    def word(table: str) -> re.Pattern[str]:
        return re.compile(rf"\b{re.escape(table)}\b")

    texts: dict[str, str] = {}  # a view -> its SQL with the SQL of the views it reads
    expanded = []
    for table, sql in stages:
        text = sql + "".join(texts[v] for v in texts if word(v).search(sql))
        expanded.append(text)
        if table in views:
            texts[table] = text
    final = final + "".join(texts[v] for v in texts if word(v).search(final))
    out: dict[int, list[str]] = {}
    for j, table in [(-1, t) for t in inputs] + [(j, t) for j, (t, _) in enumerate(stages)]:
        readers = [i for i, text in enumerate(expanded) if i > j and word(table).search(text)]
        if readers and not word(table).search(final):
            out.setdefault(max(readers), []).append(table)
    return out
