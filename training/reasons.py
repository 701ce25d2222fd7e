"""Reason codes from exact per-feature contributions (LightGBM's TreeSHAP), DESIGN §4, issue 12.

Contributions are in raw log-odds units, shape ``(n_rows, n_features + 1)`` with the bias last,
and sum to the raw score. A reason names one feature and reports that feature's own numbers:

* each signal group's direction is the sign of its summed contribution: a group that raises
  the risk can give a reason, one that lowers it a strength, never both;
* the group's text comes from its member with the largest contribution in the group's
  direction that can be worded honestly (``training.reason_text.word``; a missing value is
  worded as missing), filled with that member's own value;
* the item reports that member as ``feature``, its value as ``value`` and its own contribution
  as ``contribution`` (exactly the bar the SHAP waterfall shows for it); the group's sum is
  ``group_contribution``;
* a contribution below ``min_contribution`` (default 0.05 log-odds) is no reason or strength;
* up to three reasons and two strengths, one per group, largest contribution first.

``fit_references`` learns, on the training rows, what a value is worded against (typical
counts of accounts that stayed, churn per category, the side of a value and of a blank); the
bundle keeps it as plain JSON. The module is over 400 lines because those sides are learned by one
test (``learned_side``) that the builder's rules rely on, and kept beside the builder that reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from features.spec import GROUP_LABELS, Catalogue
from training.blend import as_matrix
from training.leakage import TERM_END
from training.model import FeatureRows
from training.reason_text import (
    NO_REFERENCES,
    References,
    Row,
    WordCache,
    is_own_date,
    is_own_number,
    missing,
    render,
    render_value,
)
from training.rounding import round6
from training.treeshap import tree_contributions

__all__ = ["ReasonBuilder", "contributions", "fit_references", "reason_builder", "render", "render_value",
           "threads_for"]

#: Smallest |contribution| (log-odds) a reason or strength may have: below it, filler.
MIN_CONTRIBUTION = 0.05
#: Fewest churned accounts (rows where there are no accounts) with a value for the references to
#: learn a feature's direction.
MIN_DIRECTION_ROWS = 30
#: Two-sided p-value below which the churned and retained values differ enough for a side to be
#: learned (about three standard errors: many features are tried, and a side learned from noise words
#: "123 'Report Created' events; a typical active account has 25" as a risk).
DIRECTION_P = 0.0027


# Below this many rows LightGBM predicts on one thread: OpenMP's thread team costs more than
# it saves on a few rows, and under concurrent requests the teams of several threads fight
# over the same cores (the service got slower, not faster, with more clients). Above the
# service's largest request (1,000 accounts): on 1,000 rows the team's waiting threads cost
# 8.8 ms of CPU against 2.3 ms on one thread, and the wall time was no shorter (9.0 against
# 6.3 ms median, on a shared 2-core machine, interleaved in one process).
PARALLEL_MIN_ROWS = 1024


def threads_for(n_rows: int) -> int:
    """LightGBM ``num_threads`` for a prediction over ``n_rows`` (0 = OpenMP's default)."""
    return 1 if n_rows < PARALLEL_MIN_ROWS else 0


def contributions(booster: lgb.Booster, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """(n_rows, n_features + 1): per-feature SHAP values, bias last (raw log-odds).

    A LightGBM model's are exact TreeSHAP from per-leaf tables (``training.treeshap``: the
    values of ``pred_contrib``, about ten times faster); a blend adds its linear part's.
    """
    if isinstance(booster, lgb.Booster):
        return tree_contributions(booster, as_matrix(X), num_threads=threads_for(len(X)))
    return np.asarray(booster.predict(X, pred_contrib=True, num_threads=threads_for(len(X))))


def learned_side(lost: pd.Series, kept: pd.Series, lost_accounts: pd.Series | np.ndarray | None = None,
                 kept_accounts: pd.Series | np.ndarray | None = None) -> int:
    """+1 when the rows that churned (``lost``) lie above those that stayed (``kept``), -1 below,
    0 unknown: by a Mann-Whitney test (ties, as in a sparse count that is 0 for most rows, are
    ranked as ties) at ``DIRECTION_P``. With the rows' account ids each account counts once (its
    mean): rows of one account on several dates are not independent, and 139 churned rows of 25
    accounts learned a side from the accounts' sizes. 0 with fewer than ``MIN_DIRECTION_ROWS``
    churned accounts (rows) with a value."""
    lost, kept = (_account_means(pd.to_numeric(v, errors="coerce").to_numpy(dtype=float), a)
                  for v, a in ((lost, lost_accounts), (kept, kept_accounts)))
    if len(lost) < MIN_DIRECTION_ROWS or len(kept) < 2:
        return 0
    if np.ptp(np.r_[lost, kept]) == 0:
        return 0  # one value everywhere: nothing to compare
    u, p = mannwhitneyu(lost, kept, alternative="two-sided")
    return 0 if not p < DIRECTION_P else (1 if u > len(lost) * len(kept) / 2 else -1)


def _account_means(values: np.ndarray, accounts: pd.Series | np.ndarray | None) -> np.ndarray:
    """The non-missing ``values``, one mean per account when ``accounts`` is given (codes or ids)."""
    present = ~np.isnan(values)
    if accounts is None:
        return values[present]
    codes = pd.factorize(np.asarray(accounts))[0]
    counts = np.bincount(codes[present])
    sums = np.bincount(codes[present], weights=values[present], minlength=counts.size)
    return sums[counts > 0] / counts[counts > 0]


def missing_side(lost: pd.Series, kept: pd.Series, lost_accounts: pd.Series | np.ndarray | None = None,
                 kept_accounts: pd.Series | np.ndarray | None = None) -> int:
    """+1 when a value is missing more often for the rows that churned (``lost``) than for those that
    stayed (``kept``), -1 less often, 0 unknown: ``learned_side`` of the rows' blanks (each account
    once: its share of blank rows), and 0 unless ``MIN_DIRECTION_ROWS`` churned accounts (rows) have
    the value and as many lack it (random blanks of a flat table gave "No data on Class Bookings")."""
    blank = lost.isna().to_numpy()
    ids = np.arange(blank.size) if lost_accounts is None else np.asarray(lost_accounts)
    if min(np.unique(ids[blank]).size, np.unique(ids[~blank]).size) < MIN_DIRECTION_ROWS:
        return 0
    return learned_side(pd.Series(blank, dtype=float), kept.isna().astype(float), lost_accounts, kept_accounts)


def _never_due(rows: pd.DataFrame, catalogue: Catalogue, horizon_days: int | None) -> dict[str, set[str]]:
    """Per categorical feature, the categories none of whose training rows had a term ending within the
    horizon (nor an open-ended one): their churn rate is 0 by the calendar, not by the customers (a
    probe's 18-month export: no annual term came up for renewal in the training dates, and "churn
    within 90 days is lower in team-annual: 0.0% vs 2.4% overall" was a strength 230 times while its
    annual renewals churned 20%). Such a rate is not quoted."""
    if not horizon_days or "days_to_term_end" not in rows.columns:
        return {}
    ends = pd.to_numeric(rows["days_to_term_end"], errors="coerce")
    due = (ends.isna() | (ends <= horizon_days)).to_numpy()
    out = {}
    for f in catalogue.features:
        if f.type == "category" and f.name in rows.columns:
            keys = rows[f.name].astype("string")
            seen = pd.Series(due, index=rows.index).groupby(keys, dropna=True).any()
            out[f.name] = {str(k) for k, v in seen.items() if not v}
    return out


def _clustered_se(y: pd.Series, keys: pd.Series, accounts: pd.Series, overall: float) -> dict[str, float]:
    """Per category, the standard error of its churn rate were it the overall rate, clustered by account
    (an account's rows share much of one fate, but not all of it: 60-day labels at dates weeks apart):
    sqrt(sum over the category's accounts of (churned rows - overall x rows)^2) / rows."""
    frame = pd.DataFrame({"k": keys, "a": accounts.astype("string"), "r": y.to_numpy() - overall}).dropna(subset=["k"])
    per_account = frame.groupby(["k", "a"], observed=True)["r"].sum()
    sums = (per_account ** 2).groupby(level=0, observed=True).sum()
    rows = frame.groupby("k", observed=True).size()
    return {str(k): float(np.sqrt(sums[k]) / rows[k]) for k in sums.index if rows[k]}


def fit_references(rows: pd.DataFrame, catalogue: Catalogue, label: str = "churn_label",
                   min_contribution: float = MIN_CONTRIBUTION, horizon_days: int | None = None) -> dict:
    """What reasons are worded against, from labelled training rows, as plain JSON.

    Returns:
        ``{"min_contribution": ..., "overall_churn": rate of all rows, "typical": {feature:
        median among rows that did not churn} for numeric features, "stayed_present": {feature:
        share of those rows with a value}, "category_churn": {feature: {category: [churn rate, rows,
        accounts, clustered standard error]}}, "direction": {feature: +1 or -1}, "missing": {feature: +1 or -1}}``
        (direction: for a numeric feature without one in the catalogue, the side of the rows that
        churned against the rows that stayed, ``learned_side``; missing: the side of a feature's
        blanks, ``missing_side``; accounts: the distinct ``account_id`` values of the category's
        rows, when ``rows`` has that column, and the standard error of the category's rate clustered
        by account (``_clustered_se``); a category's rate is quoted as a reason only when it stands
        out by that error, see ``training.reason_text``); ``horizon_days``: the labels'
        horizon of snapshot rows ("churn within 60 days is higher in ..."), None for a flat table's label.
    """
    y = pd.to_numeric(rows[label], errors="raise").astype(float)
    stayed, churned = rows[y == 0], rows[y == 1]
    accounts = ((pd.factorize(churned["account_id"])[0], pd.factorize(stayed["account_id"])[0])
                if "account_id" in rows.columns else (None, None))
    typical, present, by_category, direction, gone = {}, {}, {}, {}, {}
    never_due = _never_due(rows, catalogue, horizon_days)
    for f in catalogue.features:
        if f.name not in rows.columns:
            continue
        if side := missing_side(churned[f.name], stayed[f.name], *accounts):
            gone[f.name] = side
        if f.type == "category":
            keys = rows[f.name].astype("string")
            grouped = y.groupby(keys, dropna=True).agg(["mean", "size"])
            if "account_id" in rows.columns:
                grouped["accounts"] = rows["account_id"].groupby(keys, dropna=True).nunique()
            by_category[f.name] = {str(k): [float(r["mean"]), *(int(v) for v in r.iloc[1:])]
                                   for k, r in grouped.iterrows() if str(k) not in never_due.get(f.name, set())}
            if "account_id" in rows.columns and len(y):
                for k, se in _clustered_se(y, keys, rows["account_id"], float(y.mean())).items():
                    if str(k) in by_category[f.name]:
                        by_category[f.name][str(k)].append(se)
        else:
            kept = pd.to_numeric(stayed[f.name], errors="coerce")
            if not missing(median := kept.median()):
                typical[f.name], present[f.name] = float(median), float(kept.notna().mean())
                side = 0 if f.direction else learned_side(churned[f.name], stayed[f.name], *accounts)
                if side:
                    direction[f.name] = side
    own = [f.name for f in catalogue.features if f.name in rows.columns and (is_own_number(f) or is_own_date(f))]
    binned = {name: churn_by_value(rows[name], y, rows.get("account_id")) for name in own}
    if TERM_END in rows.columns:  # the renewal calendar: a reason where a term ending that soon churns more
        binned[TERM_END] = churn_by_value(rows[TERM_END], y, rows.get("account_id"), TERM_EDGES)
    if "mrr" in rows.columns:  # "MRR of 21", an annual plan's month, was the first reason of its renewals
        binned["mrr"] = churn_by_value(rows["mrr"], y, rows.get("account_id"))
    paused = next((f.params.get("paused_plans", []) for f in catalogue.features if f.name == "plan"), [])
    return {"min_contribution": float(min_contribution), "overall_churn": float(y.mean()) if len(y) else None,
            "typical": typical, "stayed_present": present, "category_churn": by_category, "direction": direction,
            "missing": gone, "horizon_days": horizon_days, "number_churn": binned, "paused_plans": list(paused)}


#: The bins of ``days_to_term_end`` (``churn_by_value``): a week, two, a month, two, three, half a year, a year.
#: On a book of monthly plans every term ends within a month, so "Term ends in 12 days" told a CSM nothing (the
#: first reason of 1,197 of 1,199 healthy monthly accounts of a probe's Stripe export, of 88% of a probe's
#: pet-food boxes); an annual term two months from renewal is in a bin of its own kind.
TERM_EDGES = (7.5, 14.5, 31.5, 61.5, 92.5, 183.5, 366.5)


#: A company's own number with at most this many distinct values is judged value by value (pets in a
#: household: 1, 2, 3, 4), one with more by its quintiles (``churn_by_value``).
FEW_VALUES = 8


def churn_by_value(values: pd.Series, y: pd.Series, accounts: pd.Series | None = None,
                   edges: Sequence[float] | None = None) -> dict[str, list]:
    """The churn of the training rows by a number's value, for ``reason_text.number_disagrees``: ``edges`` (a
    value ``v`` lies in bin ``bisect_right(edges, v)``) and per bin ``[churn rate, rows, standard error]``,
    the error of the overall rate over the bin's rows, clustered by account when ``accounts`` is given
    (``_clustered_se``). Bins: ``edges`` when given, else each value of a column of at most ``FEW_VALUES``, else
    quintiles; a bin of fewer than ``MIN_BIN_ROWS`` rows joins its neighbour (the review: the flat demo's 4 to 7
    support calls, 10, 5, 1 and 1 rows, the riskiest customers, were each too few to judge)."""
    x = pd.to_numeric(values, errors="coerce").astype("float64")
    present = x.notna()
    distinct = np.unique(x[present].to_numpy())
    if distinct.size == 0:
        return {"edges": list(edges or []), "bins": [[None, 0, 0.0]] * (len(edges or []) + 1)}
    if edges is None:
        edges = ((distinct[:-1] + distinct[1:]) / 2 if distinct.size <= FEW_VALUES
                 else np.unique(np.quantile(x[present], [0.2, 0.4, 0.6, 0.8]))).tolist()
    edges = _merged([float(e) for e in edges], x[present].to_numpy())
    keys = pd.Series(np.searchsorted(np.asarray(edges), x.to_numpy(), side="right"), index=x.index).where(present)
    overall = float(y.mean())
    grouped = y[present].groupby(keys[present].astype(int)).agg(["mean", "size"])
    if accounts is not None:
        se = _clustered_se(y[present], keys[present].astype(int).astype(str), accounts[present], overall)
    else:
        se = {str(k): (overall * (1 - overall) / n) ** 0.5 for k, n in grouped["size"].items()}
    bins = [[float(grouped.loc[k, "mean"]), int(grouped.loc[k, "size"]), float(se[str(k)])] if k in grouped.index
            else [None, 0, 0.0] for k in range(len(edges) + 1)]
    return {"edges": edges, "bins": bins}


#: Fewest training rows of a bin of ``churn_by_value``: a smaller one joins its neighbour (the fewer-row side).
MIN_BIN_ROWS = 30


def _merged(edges: list[float], x: np.ndarray) -> list[float]:
    """``edges`` without those that leave a bin of fewer than ``MIN_BIN_ROWS`` of the values ``x``: from the
    smallest bin on, each joins its smaller neighbour, until every bin has enough rows (or one bin is left)."""
    edges = list(edges)
    while edges:
        counts = np.bincount(np.searchsorted(np.asarray(edges), x, side="right"), minlength=len(edges) + 1)
        k = int(np.argmin(counts))
        if counts[k] >= MIN_BIN_ROWS:
            break
        if k == 0:
            edges.pop(0)  # the first bin joins the second
        elif k == len(edges) or counts[k - 1] <= counts[k + 1]:
            edges.pop(k - 1)  # joins the bin before it
        else:
            edges.pop(k)  # joins the bin after it
    return edges


def reason_builder(catalogue: Catalogue, references: dict | None = None) -> ReasonBuilder:
    """A fitted ``ReasonBuilder`` from a bundle's references JSON (None: an older bundle)."""
    refs = references or {}
    return ReasonBuilder(min_contribution=float(refs.get("min_contribution", MIN_CONTRIBUTION))).fit(
        catalogue, references)


class ReasonBuilder:
    """Turns contribution rows into reasons and strengths (sklearn-like: fit learns groups)."""

    def __init__(self, max_reasons: int = 3, max_strengths: int = 2,
                 min_contribution: float = MIN_CONTRIBUTION) -> None:
        self.max_reasons = max_reasons
        self.max_strengths = max_strengths
        self.min_contribution = min_contribution

    def fit(self, catalogue: Catalogue, references: dict | None = None) -> ReasonBuilder:
        """Learn the groups of ``catalogue``; ``references`` from ``fit_references`` (optional)."""
        self.catalogue_ = catalogue
        self.references_ = References.from_dict(references) if references else NO_REFERENCES
        self.groups_ = sorted({f.group for f in catalogue.features})
        index = {g: i for i, g in enumerate(self.groups_)}
        self.group_of_ = np.array([index[f.group] for f in catalogue.features], dtype=int)
        self.member_ = np.zeros((len(catalogue.features), len(self.groups_)))
        self.member_[np.arange(len(catalogue.features)), self.group_of_] = 1.0
        self.group_list_ = self.group_of_.tolist()
        self.words_: dict[str, WordCache] = {}
        return self

    def _words(self, lang: str) -> WordCache:
        """The remembered wording of this catalogue in ``lang`` (``training.reason_text.WordCache``)."""
        cache = self.words_.get(lang)
        if cache is None:
            cache = self.words_[lang] = WordCache(self.catalogue_.features, self.references_, lang)
        return cache

    def explain(self, contribs: np.ndarray, raw: pd.DataFrame | FeatureRows, lang: str = "en",
                public: bool = False) -> list[dict]:
        """One ``{"reasons": [...], "strengths": [...]}`` per row.

        ``raw`` holds the rows' actual feature values (before encoding), in catalogue order.
        Each item: ``signal`` (group), ``label``, ``text``, ``contribution`` (the feature's own,
        log-odds), ``group_contribution``, ``feature`` and ``value``. ``public``: the API's items
        instead (``serving``): ``signal``, ``text``, ``contribution`` rounded to six decimals as
        ``round`` does (``training.rounding.round6``), ``feature`` and ``value``.

        Only the language asked for is worded, each distinct case once (``WordCache``); the
        candidates of every row are ranked with arrays, so the rows' loop visits few features.
        """
        names = [f.name for f in self.catalogue_.features]
        per_feature = np.ascontiguousarray(np.asarray(contribs)[:, :-1])
        per_group = per_feature @ self.member_
        n = len(per_feature)
        (risk_order, n_up), (safe_order, n_down) = self._ranked(per_feature, per_group)
        if not n_up.any() and not n_down.any():
            return [{"reasons": [], "strengths": []} for _ in range(n)]
        values = _value_rows(raw, names)
        position = {name: j for j, name in enumerate(names)}
        rows: list[tuple[Row, float | None] | None] = [None] * n  # each row's context, made when needed
        context = (per_feature, per_group, values, position, rows,
                   [GROUP_LABELS.get(g, (g, g))[0 if lang == "en" else 1] for g in self.groups_], self._words(lang),
                   public)
        reasons = self._pick(risk_order, n_up, +1, self.max_reasons, *context)
        strengths = self._pick(safe_order, n_down, -1, self.max_strengths, *context)
        return [{"reasons": r, "strengths": s} for r, s in zip(reasons, strengths)]

    def _ranked(self, per_feature: np.ndarray,
                per_group: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Per row, the features that may give a reason (contribution >= the minimum, their group's
        sum positive; largest first, ties by position) and a strength (the mirror image; ties by
        position from the end): ``(order, count)`` per side, the first ``count[i]`` of ``order[i]``."""
        width = per_feature.shape[1]
        group_sum = per_group[:, self.group_of_]
        up = (per_feature >= self.min_contribution) & (group_sum > 0)
        down = (-per_feature >= self.min_contribution) & (group_sum < 0)
        risk_order = np.argsort(np.where(up, -per_feature, np.inf), axis=1, kind="stable")
        flipped = np.where(down, per_feature, np.inf)[:, ::-1]
        safe_order = width - 1 - np.argsort(flipped, axis=1, kind="stable")
        n_up, n_down = up.sum(axis=1), down.sum(axis=1)
        return ((risk_order[:, :int(n_up.max(initial=0))], n_up),
                (safe_order[:, :int(n_down.max(initial=0))], n_down))

    def _pick(self, order: np.ndarray, counts: np.ndarray, side: int, limit: int, per_feature: np.ndarray,
              per_group: np.ndarray, values: Sequence, position: dict[str, int], rows: list,
              labels: list[str], words: WordCache, public: bool = False) -> list[list[dict]]:
        """Each row's reasons (side +1) or strengths (-1): one per group, the first candidate of
        the group whose value can be worded, up to ``limit``, largest ``side * contribution`` first.

        With arrays: each row's first candidate of each group, the first ``limit`` of those;
        when all of them can be worded they are the answer (a later member of a group is only
        ever tried when the group's first cannot be worded). A row where one cannot goes through
        the candidates one by one (``_side``)."""
        n, width = order.shape
        out: list[list[dict]] = [[] for _ in range(n)]
        if width == 0 or limit <= 0:
            return out
        valid = np.arange(width) < counts[:, None]
        n_groups = len(self.groups_)
        key = np.where(valid, np.arange(n)[:, None] * n_groups + self.group_of_[order], -1).ravel()
        first = np.zeros(key.size, dtype=bool)
        first[np.unique(key, return_index=True)[1]] = True  # the first place of each (row, group)
        first = first.reshape(n, width) & valid
        take = first & (np.cumsum(first, axis=1) <= limit)
        at_row, at_col = np.nonzero(take)
        at_feature = order[at_row, at_col]
        at_group = self.group_of_[at_feature]
        group_names, features = self.groups_, words.features
        picked = values.take(at_row, at_feature)  # the picked values, plain, gathered column-wise
        contributions = per_feature[at_row, at_feature].tolist()
        redo: set[int] = set()
        word, names = words.word, [f.name for f in features]

        def worded():
            """(k, row, feature, group, value, text) of each picked place whose row still words."""
            for k, (i, j, g, value) in enumerate(zip(at_row.tolist(), at_feature.tolist(), at_group.tolist(), picked)):
                if i in redo:
                    continue
                row = rows[i]
                if row is None:
                    row = rows[i] = self._row(values, i, position)
                text = word(j, value, side, row[0], row[1])
                if text is None:
                    redo.add(i)
                    continue
                yield k, i, j, g, value, text

        if public:  # the API's items: rounded contributions, no label nor group sum
            rounded = round6(contributions)
            for k, i, j, g, value, text in worded():
                out[i].append({"signal": group_names[g], "text": text, "contribution": rounded[k],
                               "feature": names[j], "value": value})
        else:
            group_sums = per_group[at_row, at_group].tolist()
            for k, i, j, g, value, text in worded():
                out[i].append({"signal": group_names[g], "label": labels[g], "text": text,
                               "contribution": contributions[k], "group_contribution": group_sums[k],
                               "feature": names[j], "value": value})
        for i in redo:
            row = rows[i]
            out[i] = self._side(order[i, :counts[i]].tolist(), side, limit, per_feature[i], per_group[i],
                                row[2], row[0], row[1], labels, words, public)
        return out

    @staticmethod
    def _row(values: Sequence, i: int, position: dict[str, int]) -> tuple[Row, float | None, Sequence]:
        """Row ``i``'s context for the wording: its values by name, its tenure, its values."""
        line = values[i]
        r = Row(line, position)
        return r, r.tenure_days(), line

    def _side(self, candidates: list[int], side: int, limit: int, contrib: np.ndarray, group_sum: np.ndarray,
              values: Sequence, row: Row, tenure: float | None, labels: list[str],
              words: WordCache, public: bool = False) -> list[dict]:
        """The reasons (side +1) or strengths (-1) of one row from its ``candidates`` (largest
        ``side * contribution`` first): one per group, the first whose value can be worded."""
        items: list[dict] = []
        used: set[int] = set()
        group_of = self.group_list_
        for j in candidates:
            if len(items) == limit:
                break
            g = group_of[j]
            if g in used:
                continue
            value = _plain(values[j])
            text = words.word(j, value, side, row, tenure)
            if text is None:
                continue
            used.add(g)
            if public:
                items.append({"signal": self.groups_[g], "text": text, "contribution": round(float(contrib[j]), 6),
                              "feature": words.features[j].name, "value": value})
            else:
                items.append({"signal": self.groups_[g], "label": labels[g], "text": text,
                              "contribution": float(contrib[j]), "group_contribution": float(group_sum[g]),
                              "feature": words.features[j].name, "value": value})
        return items


def _value_rows(raw: pd.DataFrame | FeatureRows, names: list[str]) -> _FrameValues | _RequestValues:
    """Each row's actual values of ``names``, indexable by row then position, and ``take``: the
    plain values at (row, position) pairs at once. An object array for a frame; for request rows,
    values read from the float block on demand (a batch reads a few values per row: no Python
    object for every value)."""
    if isinstance(raw, pd.DataFrame):
        return _FrameValues(raw[names].to_numpy(dtype=object))
    return _RequestValues(raw, names)


class _FrameValues:
    """A frame's values as an object array (``_value_rows``)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[i]

    def take(self, rows: np.ndarray, positions: np.ndarray) -> list:
        """``_plain`` of the value at each ``(rows[k], positions[k])``."""
        return [_plain(v) for v in self.values[rows, positions].tolist()]


class _RequestValues:
    """``FeatureRows`` by row then position in ``names`` (``_value_rows``)."""

    def __init__(self, raw: FeatureRows, names: list[str]) -> None:
        where = {n: k for k, n in enumerate(raw.numeric_names)}
        self.labels = {j: raw[n] for j, n in enumerate(names) if n in raw.labels}
        self.numbers = (raw.numeric[:, [0 if n in raw.labels else where[n] for n in names]] if where
                        else np.full((len(raw), len(names)), np.nan))

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, i: int) -> _RowValues:
        return _RowValues(self, i)

    def take(self, rows: np.ndarray, positions: np.ndarray) -> list:
        """``_plain`` of the value at each ``(rows[k], positions[k])``: the numbers with one gather
        (NaN: None), then the categories' labels where a position is a category."""
        out = [None if v != v else v for v in self.numbers[rows, positions].tolist()]
        labels = self.labels
        if labels:
            where = (np.flatnonzero(np.isin(positions, list(labels))).tolist() if len(positions) > 64
                     else [k for k, j in enumerate(positions.tolist()) if j in labels])
            for k in where:
                out[k] = _plain(labels[int(positions[k])][rows[k]])
        return out


class _RowValues:
    """One request row's values by position: a category's label, else the number (NaN: missing)."""

    __slots__ = ("i", "owner")

    def __init__(self, owner: _RequestValues, i: int) -> None:
        self.owner, self.i = owner, i

    def __getitem__(self, j: int) -> object:
        column = self.owner.labels.get(j)
        return column[self.i] if column is not None else float(self.owner.numbers[self.i, j])


def _plain(value: object) -> object:
    """A plain Python value (None when missing) for JSON and the API."""
    if type(value) is float:
        return None if value != value else value
    if isinstance(value, np.generic):
        value = value.item()
    return None if missing(value) else value
