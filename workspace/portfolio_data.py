"""What the manager's Portfolio page (``workspace.portfolio_page``) shows, computed from the
published scores, the score history, the latest snapshots' account columns and the operational
store's tasks, for one ``portfolio.Scope``.

* MRR and MRR at risk (expected MRR loss = MRR x churn probability, as published) by tier, by CSM
  and by a segment column; only accounts that are still customers (``churned_on`` empty) count.
* Tier movements since the previous score: previous tier (or "new": no previous score) x current
  tier, from the published ``previous`` score.
* The health distribution over time: accounts per tier at each as-of date of the score history
  (an account belongs to the scope by its latest CSM).
* Open and overdue tasks per CSM (the account's CSM, else the task's assignee): read live.

Segment columns are the text columns of the store's snapshots (``segment``, ``plan``,
``industry``, ``region`` ...; not ``account_id`` nor ``csm``) with at most ``MAX_SEGMENT_VALUES``
values, each account's value taken from its latest snapshot. They are read once per scoring
run (read-only, without waiting for a writer: while one holds the store the page shows no
segments and tries again after ``RETRY_SECONDS``).

Nothing here is computed per request except the tasks: the rest is cached per publication
(its ``run_id``), scope and segment column (``PortfolioData``), so a page costs a dictionary
look-up and the tasks query.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.engine import Engine

from core.errors import ChurnwatchError
from core.store import SNAPSHOTS, connect, has_table
from core.vocabulary import TIER_COLOURS, TIER_KEYS, TIER_RANK
from workspace.portfolio import Scope, Scores, tasks_in_scope

MAX_SEGMENT_VALUES = 50
#: preferred default segment columns, in order (else the first text column of the snapshots)
DEFAULT_SEGMENTS = ("segment", "plan", "industry", "region", "size_band", "channel")
NOT_SEGMENTS = {"account_id", "csm", "as_of"}
RETRY_SECONDS = 60.0
CACHE_SIZE = 64
NEW = "new"  # the movement row of accounts without a previous score


def segment_columns(store: Path) -> dict[str, dict[str, Any]]:
    """Column -> {account id: value in its latest snapshot} for the snapshots' text columns with
    at most ``MAX_SEGMENT_VALUES`` values (module docstring).

    Raises:
        ChurnwatchError, OSError, duckdb.Error: the store cannot be read now.
    """
    with connect(store, read_only=True, wait_seconds=0) as con:
        if not has_table(con, SNAPSHOTS):
            return {}
        kinds = con.execute(f"DESCRIBE {SNAPSHOTS}").fetchall()
        cols = [name for name, kind, *_ in kinds if name not in NOT_SEGMENTS and kind == "VARCHAR"]
        if not cols:
            return {}
        picks = ", ".join(f'arg_max("{c}", as_of) AS "{c}"' for c in cols)
        rows = con.execute(f"SELECT account_id, {picks} FROM {SNAPSHOTS} GROUP BY account_id").fetchall()
    out = {}
    for i, col in enumerate(cols, start=1):
        values = {r[0]: r[i] for r in rows}
        if len(set(values.values())) <= MAX_SEGMENT_VALUES:
            out[col] = values
    return out


def default_segment(columns: list[str]) -> str | None:
    for name in DEFAULT_SEGMENTS:
        if name in columns:
            return name
    return columns[0] if columns else None


def group_mrr(rows: list[dict], key: Any) -> list[dict]:
    """Accounts, MRR, MRR at risk and the at-risk share per ``key(row)``; largest at risk first (most
    accounts first among equals, e.g. every group when there is no MRR)."""
    groups: dict[Any, dict] = {}
    for r in rows:
        g = groups.setdefault(key(r), {"key": key(r), "accounts": 0, "mrr": 0.0, "at_risk": 0.0})
        g["accounts"] += 1
        g["mrr"] += r["mrr"] or 0.0
        g["at_risk"] += r["expected_mrr_loss"] or 0.0
    for g in groups.values():
        g["share"] = g["at_risk"] / g["mrr"] if g["mrr"] else 0.0
    return sorted(groups.values(), key=lambda g: (-g["at_risk"], -g["mrr"], -g["accounts"], str(g["key"])))


def by_tier(rows: list[dict]) -> list[dict]:
    """``group_mrr`` by tier, best tier first (every tier, also an empty one)."""
    found = {g["key"]: g for g in group_mrr(rows, lambda r: r["tier"])}
    return [found.get(k, {"key": k, "accounts": 0, "mrr": 0.0, "at_risk": 0.0, "share": 0.0}) for k in TIER_KEYS]


def movements(rows: list[dict]) -> dict[str, Any]:
    """The previous tier x current tier matrix of live accounts, with the worse/better/unchanged
    counts (the published ``tier_change``)."""
    cells: Counter = Counter()
    for r in rows:
        before = (r.get("previous") or {}).get("tier") or NEW
        cells[(before, r["tier"])] += 1
    rows_keys = [k for k in (*TIER_KEYS, NEW) if any(cells[(k, c)] for c in TIER_KEYS)]
    matrix = [{"from": k, "cells": [{"to": c, "count": cells[(k, c)],
                                     "kind": _kind(k, c)} for c in TIER_KEYS],
               "total": sum(cells[(k, c)] for c in TIER_KEYS)} for k in rows_keys]
    changes = Counter(r["tier_change"] or NEW for r in rows)
    return {"rows": matrix, "worse": changes["worse"], "better": changes["better"],
            "unchanged": changes["unchanged"], "new": changes[NEW]}


def _kind(before: str, now: str) -> str:
    if before == NEW:
        return NEW
    diff = TIER_RANK[now] - TIER_RANK.get(before, TIER_RANK[now])
    return "worse" if diff > 0 else "better" if diff < 0 else "unchanged"


def health_over_time(scores: Scores, account_ids: list[str]) -> list[dict]:
    """Per as-of date of the score history (oldest first): accounts per tier among ``account_ids``."""
    per_day: dict[str, Counter] = {}
    for aid in account_ids:
        for h in scores.history(aid):
            per_day.setdefault(h["as_of"], Counter())[h["tier"]] += 1
    return [{"as_of": day, "counts": [(k, per_day[day][k]) for k in TIER_KEYS], "total": sum(per_day[day].values())}
            for day in sorted(per_day)]


def stacked_bars(days: list[dict], width: int = 1100, height: int = 260) -> dict[str, Any]:
    """Geometry of the inline-SVG chart of ``health_over_time``: one stacked bar per date (best
    tier on top), a y axis in accounts, every date labelled when they fit (else every k-th)."""
    left, right, top, bottom = 48, 12, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    most = max((d["total"] for d in days), default=0) or 1
    slot = plot_w / max(1, len(days))
    bar = max(2.0, min(56.0, slot * 0.7))
    every = max(1, round(len(days) / (plot_w / 80)))  # a label every ~80 px at least
    bars = []
    for i, d in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        rects = []
        for key, count in reversed(d["counts"]):  # worst at the bottom
            h = count / most * plot_h
            y -= h
            if count:
                rects.append({"tier": key, "count": count, "x": round(x, 1), "y": round(y, 1), "w": round(bar, 1),
                              "h": round(h, 1), "fill": TIER_COLOURS[key]})
        bars.append({"as_of": d["as_of"], "total": d["total"], "rects": rects, "label_x": round(x + bar / 2, 1),
                     "label": i % every == 0 or i == len(days) - 1})
    ticks = [{"value": v, "y": round(top + plot_h - v / most * plot_h, 1)} for v in axis_ticks(most)]
    return {"width": width, "height": height, "left": left, "top": top, "bottom_y": top + plot_h,
            "right_x": width - right, "bars": bars, "ticks": ticks, "label_y": top + plot_h + 18}


def axis_ticks(most: int) -> list[int]:
    """0 and round steps (1, 2 or 5 x 10^k) up to ``most``, at most 6 marks."""
    step = 1
    while most / step > 5:
        for factor in (2, 2.5, 2):  # 1, 2, 5, 10, 20, 50 ...
            step = int(step * factor)
            if most / step <= 5:
                break
    return list(range(0, most + 1, step))


def tasks_per_csm(engine: Engine, scope: Scope, scores: Scores) -> list[dict]:
    """Active and overdue tasks per CSM (the account's CSM, else the assignee), most overdue first."""
    csm_of = {r["account_id"]: r["csm"] for r in scores.all("en")}
    counts: dict[str | None, dict] = {}
    for task in tasks_in_scope(engine, scope, scores, "en", status="active"):
        name = csm_of.get(task["account_id"]) or task.get("assignee")
        c = counts.setdefault(name, {"csm": name, "active": 0, "overdue": 0})
        c["active"] += 1
        c["overdue"] += int(task["overdue"])
    return sorted(counts.values(), key=lambda c: (-c["overdue"], -c["active"], c["csm"] or ""))


class PortfolioData:
    """The page's figures per publication, scope and segment column (module docstring)."""

    def __init__(self, store: Path) -> None:
        self.store = Path(store)
        self._segments: tuple[str, dict[str, dict[str, Any]]] | None = None  # (run id, columns)
        self._segments_failed_at = 0.0
        self._cache: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()

    def segments(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The segment columns of ``run_id``'s snapshots (read once; ``{}`` while unreadable)."""
        if self._segments is not None and self._segments[0] == run_id:
            return self._segments[1]
        if time.monotonic() - self._segments_failed_at < RETRY_SECONDS:
            return {}
        try:
            found = segment_columns(self.store)
        except (ChurnwatchError, OSError, duckdb.Error):
            self._segments_failed_at = time.monotonic()
            return {}
        self._segments = (run_id, found)
        return found

    def summary(self, scores: Scores, scope: Scope, segment: str | None) -> dict[str, Any] | None:
        """Everything but the tasks for ``scope`` (``None`` before the first publication)."""
        snap = scores.published.current()
        if snap is None:
            return None
        columns = self.segments(snap.run_id)
        key = (snap.run_id, scope, segment, bool(columns))
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        found = self._compute(scores, scope, segment, columns, snap.run_as_of)
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return found

    def _compute(self, scores: Scores, scope: Scope, segment: str | None, columns: dict[str, dict[str, Any]],
                 run_as_of: Any) -> dict[str, Any]:
        every = [r for r in scores.all("en") if scope.allows(r["csm"])]
        live = [r for r in every if r["churned_on"] is None]
        values = columns.get(segment or "", {})
        total = group_mrr(live, lambda r: None)
        return {
            "run_as_of": run_as_of, "accounts": len(live), "churned": len(every) - len(live),
            "mrr": total[0]["mrr"] if total else 0.0, "at_risk": total[0]["at_risk"] if total else 0.0,
            "share": total[0]["share"] if total else 0.0,
            "by_tier": by_tier(live), "by_csm": group_mrr(live, lambda r: r["csm"]),
            "by_segment": group_mrr(live, lambda r: values.get(r["account_id"])) if segment in columns else [],
            "segments": sorted(columns), "movements": movements(live),
            "history": stacked_bars(health_over_time(scores, [r["account_id"] for r in every])),
        }
