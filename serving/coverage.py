"""How much of the model a ``/score`` request actually feeds (issue 14 item 3: no silent guesses).

Per account: the features given (a non-null value), the model's features missing (null, absent,
or a category training never saw, which the model scores as missing) and the unknown category
values, plus ``share``: the given features' part of the model's total split gain. Below the
configured minimum share (``serving.min_coverage`` in ``churnwatch.yaml``, default 0.5) the
account gets an error naming the missing features instead of a tier; an account with no
feature at all always does.

A batch (``churnwatch score``, on snapshots or ``--table``) is checked per column instead
(``batch_warnings``): a feature the model uses that is blank on (nearly) all the scored rows, and
the category values training never saw, each said in one line. Scoring goes on: a blank column
is often an export that changed, and the user decides.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.store import connect, snapshots_of
from core.vocabulary import number_text
from features.spec import scaled
from features.sql import q
from training.bundle import ModelBundle
from training.leakage import leaky_features
from training.model import FeatureFrame, FeatureRows
from training.rounding import round6
from training.run_text import few

#: Missing features named in an error's text (all of them are in ``coverage.missing``).
SHOWN_MISSING = 10
#: A batch warns about a model feature blank (or an unseen category) on at least this share of its rows ...
BLANK_SHARE = 0.99
#: ... that had a value in at least this share of the training rows (a column filled for one customer in
#: twenty at training and for none now has changed, and the model, which used it, reads it as unknown). A
#: feature allowed as leaky (``train --allow-leaky-feature``) is warned about whenever it had a value at all:
#: a column recorded only when a customer cancels is blank on most training rows, and on every row scored.
PRESENT_AT_TRAINING = 0.05
#: Unseen category values quoted per column in a batch warning.
SHOWN_VALUES = 5


def model_gains(booster: object, names: list[str]) -> np.ndarray:
    """Each model feature's share of the total split gain (equal shares without trees or gain)."""
    trees = getattr(booster, "booster", booster)  # a BlendedModel's trees
    gain = np.asarray(trees.feature_importance("gain"), dtype=float) if trees.num_trees() else np.zeros(len(names))
    if len(gain) != len(names) or not np.isfinite(gain).all() or gain.sum() <= 0:
        gain = np.ones(len(names))
    return gain / gain.sum()


@dataclass(frozen=True)
class CoverageCheck:
    """The coverage of request rows against one model (fitted from its frame and gains)."""

    frame: FeatureFrame
    gain: np.ndarray  # share of the total gain, in frame.names order
    min_share: float
    #: per feature (frame.names order): the part of its gain a blank counts toward the share, as a value the model
    #: was trained on (a flat table's column: its blank share in the training rows, ``table_blanks``); None: none
    blank_ok: np.ndarray | None = None

    def measure(self, rows: FeatureRows, X: np.ndarray) -> list[dict]:
        """One ``{"given", "missing", "unknown", "share"}`` per row; ``X`` is ``frame.matrix(rows)``.

        ``given`` is in the request model's order (numbers, then categories); ``missing`` most
        important first.
        """
        by_gain, gain, missing_names = self._by_gain
        missing = np.isnan(X[:, by_gain])
        credit = 0.0 if self.blank_ok is None else missing * self.blank_ok[by_gain]
        shares = ((~missing) + credit) @ gain
        labels = list(rows.labels)
        given_names = np.array([*rows.numeric_names, *labels], dtype=object)
        given = np.column_stack([~np.isnan(rows.numeric), *(_given(rows.labels[c]) for c in labels)]) \
            if len(given_names) else np.zeros((len(X), 0), dtype=bool)
        unknown = self._unknown(rows)
        shares = round6(shares.tolist())
        return [{"given": g, "missing": m, "unknown": u, "share": s}
                for g, m, u, s in zip(names_of(given, given_names), names_of(missing, missing_names), unknown, shares)]

    @cached_property
    def _by_gain(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's features most important first: their positions, gains and names (once)."""
        by_gain = np.argsort(-self.gain, kind="stable")
        return by_gain, self.gain[by_gain], np.array(self.frame.names, dtype=object)[by_gain]

    def _unknown(self, rows: FeatureRows) -> list[list[dict]]:
        out: list[list[dict]] = [[] for _ in range(len(rows))]
        for c, values in self.frame.unseen_categories(rows).items():
            unseen = set(values)
            for i, v in enumerate(rows[c]):
                if v is not None and v == v and str(v) in unseen:
                    out[i].append({"feature": c, "value": str(v)})
        return out

    def error(self, coverage: dict, lang: str = "en") -> str | None:
        """The error text of a row below the minimum, in ``lang`` (``zh-CN`` or English; None: it is
        scored). Feature names stay as the request spells them."""
        if coverage["given"] and coverage["share"] >= self.min_share:
            return None
        missing = coverage["missing"]
        zh = lang == "zh-CN"
        more = len(missing) - SHOWN_MISSING
        shown = ", ".join(missing[:SHOWN_MISSING]) + (
            "" if more <= 0 else f" 等另外 {more} 个" if zh else f" and {more} more")
        if not coverage["given"]:
            return (f"未提供任何特征，无法评分；模型需要例如 {shown}" if zh
                    else f"no features given: cannot score; the model needs e.g. {shown}")
        share = _below(coverage["share"], self.min_share)
        if zh:
            return (f"特征太少，无法评分：所给特征只占模型增益的 {share}"
                    f"（最低 {self.min_share:.0%}）；缺少：{shown}")
        return (f"too few features to score: the given features carry {share} of the model's "
                f"gain (minimum {self.min_share:.0%}); missing: {shown}")


def table_blanks(bundle: ModelBundle) -> np.ndarray | None:
    """``CoverageCheck.blank_ok`` of a flat table's model: each column's blank share in the training rows, the
    part of its gain a blank in a request counts for (a blank the model saw on 35% of its rows is that much a
    value it was trained on: a probe's CRM had rows with a blank NPS and discount unscored by ``/score`` that
    ``score --table`` scored; counted in full, one column given covered nearly any table, the review). None for
    a snapshot model, or without facts."""
    facts = ((bundle.meta.get("training") or {}).get("feature_facts") or {})
    if bundle.meta.get("kind") != "table" or not facts:
        return None
    return np.array([1.0 - float((facts.get(n) or {}).get("present_share", 1.0)) for n in bundle.frame.names])


def _below(share: float, minimum: float) -> str:
    """A share under ``minimum`` as a percentage that reads under it (0.4998 against 0.5: "49.9%", not "50%")."""
    whole = f"{share:.0%}"
    return whole if share >= minimum or whole != f"{minimum:.0%}" else f"{np.floor(share * 1000) / 10:.1f}%"


def names_of(mask: np.ndarray, names: np.ndarray) -> list[list]:
    """``names[mask[i]].tolist()`` for each row ``i`` of a boolean matrix: each distinct row worked
    out once (rows are keyed by their packed bits), a copy of its list per row."""
    if len(mask) < 8 or not mask.shape[1]:
        return [names[row].tolist() for row in mask]
    packed = np.ascontiguousarray(np.packbits(mask, axis=1))
    seen: dict[bytes, list] = {}
    out = []
    for i, key in enumerate(packed.view(f"V{packed.shape[1]}").ravel().tolist()):
        found = seen.get(key)
        if found is None:
            found = seen[key] = names[mask[i]].tolist()
        out.append(found.copy())
    return out


def _given(values: np.ndarray) -> np.ndarray:
    """Non-null labels of one request column (None or NaN: not given)."""
    return np.array([v is not None and v == v for v in values], dtype=bool)


@dataclass(frozen=True)
class BatchStats:
    """What ``batch_warnings`` reads of a batch: its row count, per model feature the rows where it is
    blank (null, or a category training never saw: both score as missing), and per categorical column
    the rows of each value training never saw."""

    rows: int
    blank: dict[str, int]
    unseen: dict[str, dict[str, int]]
    #: per number feature with a training range (``ranges``), the rows outside it by more than ``FAR_OUTSIDE`` of
    #: its span
    outside: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of_frame(cls, rows: pd.DataFrame, frame: FeatureFrame,
                 ranges: dict[str, tuple[float, float]] | None = None) -> BatchStats:
        """The counts of rows in memory (a table's customers, a date's snapshots); ``ranges``: feature ->
        the training rows' (min, max) (``training_ranges_of``)."""
        with duckdb.connect(":memory:") as con:
            con.register("batch", rows[frame.names])
            return cls._counted(con, "batch", frame, ranges)

    @classmethod
    def of_store(cls, store: Path, as_of: dt.date, frame: FeatureFrame,
                 ranges: dict[str, tuple[float, float]] | None = None) -> BatchStats:
        """The counts of one as-of date's snapshots, taken in the store (no row leaves it: the Spark
        path scores elsewhere and needs only these)."""
        with connect(store, read_only=True) as con:
            return cls._counted(con, snapshots_of(as_of), frame, ranges)

    @classmethod
    def _counted(cls, con: duckdb.DuckDBPyConnection, relation: str, frame: FeatureFrame,
                 ranges: dict[str, tuple[float, float]] | None = None) -> BatchStats:
        present = ", ".join(f"count({q(n)})" for n in frame.names)
        ranges = {n: r for n, r in (ranges or {}).items() if n in frame.names and n not in frame.categorical}
        far = {n: (lo - FAR_OUTSIDE * (hi - lo), hi + FAR_OUTSIDE * (hi - lo)) for n, (lo, hi) in ranges.items()}
        beyond = "".join(f", count_if(TRY_CAST({q(n)} AS DOUBLE) NOT BETWEEN CAST({lo!r} AS DOUBLE) "
                         f"AND CAST({hi!r} AS DOUBLE))" for n, (lo, hi) in far.items())  # a date as text: none
        n, *given = con.execute(f"SELECT count(*), {present}{beyond} FROM {relation}").fetchone()
        given, past = given[:len(frame.names)], given[len(frame.names):]
        outside = {name: int(k) for name, k in zip(ranges, past) if k}
        unseen = {}
        for c in frame.categorical:
            seen = set(frame.categories.get(c, []))
            counts = con.execute(f"SELECT CAST({q(c)} AS VARCHAR), count(*) FROM {relation} WHERE {q(c)} IS NOT NULL "
                                 "GROUP BY 1 ORDER BY 1").fetchall()
            new = {str(v): int(k) for v, k in counts if str(v) not in seen}
            if new:
                unseen[c] = new
        blank = {name: int(n - g) + sum(unseen.get(name, {}).values()) for name, g in zip(frame.names, given)}
        return cls(int(n), blank, unseen, outside)


def training_ranges_of(bundle: ModelBundle) -> dict[str, tuple[float, float]]:
    """Feature -> the training rows' (min, max) for the number features whose range the bundle keeps
    (``training.model.feature_facts``; none in bundles saved before)."""
    facts = (bundle.meta.get("training") or {}).get("feature_facts") or {}
    return {name: (float(f["min"]), float(f["max"])) for name, f in facts.items()
            if isinstance(f, dict) and "min" in f and "max" in f}


#: ``batch_warnings`` says a feature lies outside the training rows' values from this share of the batch: one
#: old customer's tenure is an outlier; a young company's (a probe: 8 months of data, 41% of the accounts scored
#: older than any training row, which `/score` warned of per account and `score` not at all) is the model's
#: present.
OUTSIDE_SHARE = 0.10
#: ... outside it by more than this share of the training span: the demo's 12-month home, scored at its data
#: end, has 20% of its accounts older than any training row by a few months (a tree reads them as the oldest it
#: saw, which they resemble); the probe's young company had tenures of 232 days against 0 to 111.
FAR_OUTSIDE = 0.5


def batch_warnings(bundle: ModelBundle, rows: pd.DataFrame | BatchStats, as_of: dt.date,
                   unit: str = "rows") -> list[str]:
    """What ``churnwatch score`` says about a batch of rows (the snapshots of one as-of date, or a
    table's customers; or their ``BatchStats``): one line per model feature blank on at least
    ``BLANK_SHARE`` of the rows (null, or a category training never saw: the model scores both as
    missing) although the model uses it (its ``importance`` at training is not 0) and it had a value
    in at least ``PRESENT_AT_TRAINING`` of the training rows (any, for a feature allowed as leaky); then one
    line per categorical column with values training never saw (rows, and up to ``SHOWN_VALUES``
    values).

    The leaky features come first and start with ``WARNING:``, the others with ``warning:``; among
    the blank ones, the most important first. Values and names are quoted with ``repr`` (control
    characters escaped). A bundle without ``training.feature_facts`` (saved before them) gets only
    the category lines: the training shares are unknown.
    """
    ranges = training_ranges_of(bundle)
    stats = rows if isinstance(rows, BatchStats) else BatchStats.of_frame(rows, bundle.frame, ranges)
    n = stats.rows
    if not n:
        return []
    facts = (bundle.meta.get("training") or {}).get("feature_facts") or {}
    leaky = set(leaky_features(bundle.meta))
    scored = f"{n:,} {unit} scored as of {as_of}"
    blank = []
    for name in bundle.frame.names:
        fact = facts.get(name) or {}
        trained, importance = float(fact.get("present_share", 0.0)), float(fact.get("importance", 0.0))
        if importance <= 0 or trained <= 0 or (trained < PRESENT_AT_TRAINING and name not in leaky):
            continue
        share = stats.blank[name] / n
        if share >= BLANK_SHARE:
            blank.append((name in leaky, importance, name, share, 1.0 - trained))
    out = []
    for is_leaky, _, name, share, blank_at_training in sorted(blank, key=lambda b: (not b[0], -b[1])):
        said = (f"is blank on {_percent(share)} of the {scored}, against {_percent(blank_at_training)} of the "
                "training rows")
        out.append(f"WARNING: feature {name!r}, allowed as leaky at training (--allow-leaky-feature), {said}: "
                   "the model relies on it, so these scores are not to be trusted" if is_leaky else
                   f"warning: feature {name!r} {said}: the model uses it and scores these {unit} as if it were "
                   "unknown; check that the data still carries it")
    whole = whole_windows_now(bundle, as_of)
    weight = _importance_share(facts, whole)
    if whole and weight >= WHOLE_WINDOWS_SHARE:
        start = (bundle.meta["training"]["selection"]["partial_windows"])["data_start"]
        out.append(f"warning: {len(whole)} feature(s) the model kept although their windows reached before the "
                   f"data start ({start}) on most training dates ({few(whole, 5)}; {weight:.0%} of what the model "
                   f"draws on) have whole windows on {as_of}: their values are not those the model learned from, "
                   "so its probabilities can be off; train again on the export as it is now")
    for name, k in sorted(stats.outside.items(), key=lambda kv: -float((facts.get(kv[0]) or {}).get("importance", 0))):
        if k / n >= OUTSIDE_SHARE and float((facts.get(name) or {}).get("importance", 0.0)) > 0:
            lo, hi = ranges[name]
            out.append(f"warning: feature {name!r} is far outside the values of the training rows "
                       f"({number_text(lo)} to {number_text(hi)}, by more than half their span) on {_percent(k / n)} "
                       f"of the {scored}: the model scores such a value as the nearest it saw (trees and the linear "
                       "part alike), and no training row backs it; train again once the data covers them")
    for c, counts in stats.unseen.items():
        values = sorted(counts)
        more = len(values) - SHOWN_VALUES
        shown = ", ".join(repr(v) for v in values[:SHOWN_VALUES]) + (f" and {more} more" if more > 0 else "")
        out.append(f"warning: {c!r}: {sum(counts.values()):,} of the {scored} have a value not seen in "
                   f"training, scored as missing: {shown}")
    return out


def whole_windows_now(bundle: ModelBundle, as_of: dt.date) -> list[str]:
    """The model features kept at training although partial (their window reached before the data
    start on most training dates: ``training.coverage``) whose window is whole on ``as_of``, in model
    order; empty when none were kept (or the bundle predates the record). On a probe's 7-month meal-kit
    export, before counts were scaled, the kept 90-day counts rose as their windows filled (menu views
    14.5 on the training dates, 22.6 at the data end) and moved the mean log-odds by -0.51, the mean
    probability from 10.5% to 7.0%. A count the pipeline scaled to its whole window
    (``features.spec.scaled``) is not named: its level did not grow with the coverage."""
    record = ((bundle.meta.get("training") or {}).get("selection") or {}).get("partial_windows") or {}
    if not record or record.get("left_out") or not record.get("lookback_days") or not record.get("data_start"):
        return []
    covered = (as_of - dt.date.fromisoformat(record["data_start"])).days
    kept = set(bundle.frame.names)
    specs = {f.name: f for f in bundle.catalogue.features}
    return [n for n, days in record["lookback_days"].items()
            if n in kept and days <= covered and not (n in specs and scaled(specs[n]))]


#: Least share of the model's mean absolute contribution (``feature_facts`` importance) the kept partial
#: features must carry for ``batch_warnings`` to say that their windows are whole now: on the probe's
#: meal-kit model they carried 35% (and moved the mean probability by a third); on the tests' 12-month
#: home four ticket and payment features with long baselines carry under 10%.
WHOLE_WINDOWS_SHARE = 0.10


def _importance_share(facts: dict, names: list[str]) -> float:
    """The share of the model's summed mean absolute contribution that ``names`` carry (0 without facts)."""
    total = sum(float((f or {}).get("importance", 0.0)) for f in facts.values())
    part = sum(float((facts.get(n) or {}).get("importance", 0.0)) for n in names)
    return part / total if total > 0 else 0.0


def _percent(share: float) -> str:
    """A share as a percentage with one decimal, never rounded up to 100% or down to 0%."""
    if share >= 1 or share <= 0:
        return f"{share:.0%}"
    return f"{min(max(share, 0.001), 0.999):.1%}"
