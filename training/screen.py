"""A company's own columns that add nothing are left out: categories with no link to churn in the training
accounts, and numbers or dates in the same order as another feature.

LightGBM picks the best partition of a category's values at every split, so a column of pure noise
(a probe's ``favourite_color``, drawn independently of everything) finds a difference somewhere: it
was the model's 5th most important feature, above a column that truly mattered, and 185 accounts were
told "Favourite color: yellow; churn within 60 days is lower in yellow: 3.0% vs 4.7% overall". The
row rates looked solid because each account recurs on every weekly as-of date; counted once per
account the yellow group's 36 churned accounts against ~52 expected was the kind of minimum one sees
among six random groups. Leaving the three noise columns out kept the ROC-AUC (0.8016 vs 0.8023) and
improved calibration (ECE 0.0127 vs 0.0141) and the order of the tiers.

``unlinked_categories`` tests each own category column (``template`` ``extra_profile``, or a flat
table's ``table_column``; type ``category``) for independence from churn with each account counted
once: the account's value on its latest training row against whether any of its training rows is
labelled churned (a flat table's customer: its one row), by a chi-square
test, values with fewer than ``MIN_EXPECTED`` expected churned accounts pooled (a blank is a value of
its own: "has a promo code" can matter). A column with p >= ``ALPHA`` is left out and listed, unless
the config keeps it (``profile.columns.<column>.keep: true``). Built-in categories (plan, industry,
...) are not screened: their meaning is known and a reason about them is worded against the data. A
one-column test cannot see a column that matters only together with another (the flat generator's
``paperless_billing``, a risk only with an electronic check: p = 0.17 on 5,600 customers): ``keep``.

``duplicate_columns``: an own number or date column whose values on the training rows are in the same (or
the reverse) order as another feature's (Spearman's rank correlation at least ``SAME_ORDER``, on the rows
where both have a value, with values on the same rows) is left out and listed with the feature it repeats,
unless the config keeps it. A probe's gym export had ``Signup Date`` beside ``Tenure (Months)`` (0.9999):
the model split one signal between the two with opposite signs, and the members read a reason from one
half and a strength from the other. So is an event type's count or change equal to a role's of the same window
(``repeated_event_counts``: an event role whose one type it is; ``login: [login]`` made ``logins_30d`` and
``evt_login_30d``, equal on 99.5% of a probe's rows, and 103 of 1,979 accounts read "9 logins in the last 30 days"
twice).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from core.settings import ProfileSettings
from features.profile import column_config, config_key
from features.spec import Catalogue

#: A column is kept when independence from churn is rejected at this level (per column; about 1% of
#: pure-noise columns pass).
ALPHA = 0.01
#: Values expected to hold fewer churned accounts than this are pooled into one (the chi-square
#: approximation needs about 5 per cell).
MIN_EXPECTED = 5.0
BLANK = "\0blank"
#: Two number columns whose ranks correlate at least this much (either sign) are the same signal.
SAME_ORDER = 0.995
#: Rows the rank correlation is measured on (a uniform sample of the training rows above it).
SAME_ORDER_ROWS = 20_000
#: A number column whose most common value covers more than this share of its values is not judged a repeat.
MOST_COMMON = 0.5
#: The company's own columns: of an event log's accounts / subscriptions, and of a flat table.
OWN_TEMPLATES = ("extra_profile", "table_column")


def with_config_keep(catalogue: Catalogue, profile: ProfileSettings | None) -> Catalogue:
    """The catalogue with each own column's ``keep`` and ``profile.exclude`` as the config says now: the
    store's catalogue holds the flags of its last ``features`` build. ``keep`` is a training choice that needs
    no rebuild; an exclusion changes the store's columns, so an excluded column gets ``params["excluded"]`` and
    ``train`` says to rebuild (a probe excluded a column the leakage guard had refused, and ``train`` refused
    it again, word for word, until ``features`` was run)."""
    if profile is None:
        return catalogue
    specs = []
    for f in catalogue.features:
        if f.template in OWN_TEMPLATES:
            excluded, cfg = column_config(profile, str(f.params.get("table", "accounts")), str(f.params.get("column")))
            params = {k: v for k, v in f.params.items() if k not in ("keep", "excluded")}
            f = dataclasses.replace(f, params={**params, **({"keep": True} if cfg is not None and cfg.keep else {}),
                                               **({"excluded": True} if excluded else {})})
        specs.append(f)
    return dataclasses.replace(catalogue, features=tuple(specs))


def excluded_since_build(catalogue: Catalogue) -> list[str]:
    """The features of own columns the store holds that the config excludes now (``with_config_keep``)."""
    return [f.name for f in catalogue.features if f.params.get("excluded")]


def config_name(f) -> str:
    """An own column as ``profile.columns`` names it (``features.profile.config_key``)."""
    return config_key(str(f.params.get("table", "accounts")), str(f.params.get("column", f.name)))


def own_categories(catalogue: Catalogue) -> list[str]:
    """The screened features: the company's own category columns the config does not keep."""
    return [f.name for f in catalogue.features if f.template in OWN_TEMPLATES and f.type == "category"
            and not f.params.get("keep")]


def _pooled(table: pd.DataFrame, base_rate: float) -> np.ndarray:
    """The values' (churned, retained) account counts, the smallest values pooled until each holds
    ``MIN_EXPECTED`` expected churned accounts (rows: values or pools)."""
    rows = table.sort_values("accounts").to_numpy(dtype=float)
    out, pool = [], np.zeros(2)
    for churned, retained, _ in rows:
        pool += (churned, retained)
        if pool.sum() * base_rate >= MIN_EXPECTED:
            out.append(pool.copy())
            pool[:] = 0
    if pool.sum() and out:
        out[-1] = out[-1] + pool
    elif pool.sum():
        out.append(pool.copy())
    return np.array(out)


def category_link(values: pd.Series, churned: pd.Series) -> tuple[float | None, int]:
    """Chi-square p-value of a category column's independence from churn, one row per account
    (None: fewer than two pools to compare, or one outcome only), and the number of distinct values."""
    v = values.astype(object).where(values.notna(), BLANK).astype(str)
    y = churned.astype(int)
    if y.nunique() < 2:
        return None, v.nunique()
    table = pd.DataFrame({"v": v, "y": y}).groupby("v")["y"].agg(churned="sum", accounts="size")
    table["retained"] = table["accounts"] - table["churned"]
    counts = _pooled(table[["churned", "retained", "accounts"]], float(y.mean()))
    if len(counts) < 2:
        return None, v.nunique()
    return float(chi2_contingency(counts, correction=False)[1]), v.nunique()


def unlinked_categories(train: pd.DataFrame, catalogue: Catalogue,
                        skip: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """Own category features (``own_categories``, less ``skip``) with no link to churn in the training
    accounts: name -> why left out (the test, its p-value, the accounts)."""
    names = [n for n in own_categories(catalogue) if n not in skip and n in train.columns]
    if not names or "account_id" not in train.columns:
        return {}
    order = ["account_id", "as_of"] if "as_of" in train.columns else ["account_id"]
    latest = train.sort_values(order).groupby("account_id", sort=False).tail(1).set_index("account_id")
    churned = train.groupby("account_id")["churn_label"].max().reindex(latest.index)
    column = {f.name: config_name(f) for f in catalogue.features}
    table = {f.name for f in catalogue.features if f.template == "table_column"}  # a flat table's: customers
    out = {}
    for name in names:
        p, n_values = category_link(latest[name], churned)
        if p is not None and p >= ALPHA:
            who = "customers" if name in table else "accounts"
            counted = "" if name in table else " each counted once"
            out[name] = (f"own category with no link to churn in the training {who}: chi-square p = {p:.2f} "
                         f"over {n_values} values, {len(latest):,} {who}{counted} "
                         f"({int(churned.sum()):,} churned; kept at p < {ALPHA}, or with "
                         f"profile.columns.{column[name]}.keep: true)")
    return out


#: An event type's feature and the role feature of the same kind it may repeat (``repeated_event_counts``).
ROLE_OF_EVENT = {"event_count": "role_count", "event_change": "role_change"}
#: Share of the training rows on which an event type's feature must equal a role's to be the same count.
SAME_COUNT_SHARE = 0.99


def repeated_event_counts(train: pd.DataFrame, catalogue: Catalogue,
                          skip: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """An event type's count or change equal, on ``SAME_COUNT_SHARE`` of the training rows (both blank or the same
    value), to a role's count or change of the same window (``logins_30d`` and ``evt_login_30d`` when the login
    role is that one type): name -> why left out. Only such pairs are compared (a type's distinct users are not
    an account's active users, however alike), and by equality, so a count that is mostly 0 is judged too."""
    feats = [f for f in catalogue.features if f.name not in skip and f.name in train]
    values = {f.name: pd.to_numeric(train[f.name], errors="coerce").to_numpy(dtype="float64") for f in feats
              if f.template in ROLE_OF_EVENT.values() or (f.template in ROLE_OF_EVENT and "event_type" in f.params)}
    roles: dict[tuple[str, object], list[str]] = {}
    for f in feats:
        if f.template in ROLE_OF_EVENT.values():
            roles.setdefault((f.template, f.params.get("window")), []).append(f.name)
    out: dict[str, str] = {}
    for f in feats:
        if f.template not in ROLE_OF_EVENT or "event_type" not in f.params:
            continue
        mine = values[f.name]
        for other in roles.get((ROLE_OF_EVENT[f.template], f.params.get("window")), []):
            theirs = values[other]
            same = float(np.mean((np.abs(mine - theirs) < 1e-9) | (np.isnan(mine) & np.isnan(theirs))))
            if same >= SAME_COUNT_SHARE and not np.isnan(mine).all():
                out[f.name] = (f"equal to {other} on {same:.1%} of the training rows: the same events counted "
                               "twice (an event role counts this type), whose contributions would split")
                break
    return out


def duplicate_columns(train: pd.DataFrame, catalogue: Catalogue,
                      skip: set[str] | frozenset[str] = frozenset(), seed: int = 0) -> dict[str, str]:
    """Own number and date features (not kept by the config, less ``skip``) in the same order as another
    number feature on the training rows: name -> why left out; and the event types' counts a role repeats
    (``repeated_event_counts``). The catalogue's own features come first as the one kept, then the own columns in
    their order (the later of two own columns is the one left out).

    A column one value of which covers more than ``MOST_COMMON`` of its values (counts that are mostly 0) is
    not judged: two such columns correlate through their shared ties whatever their other values (a review's
    two unrelated counts, zero on the same 98% of rows, at 0.996). All pairs are screened at once on mean-filled
    ranks (exact where two columns have values on the same rows), each candidate then measured on its own."""
    out = repeated_event_counts(train, catalogue, skip)
    skip = set(skip) | set(out)
    numbers = [f for f in catalogue.features if f.type != "category" and f.name not in skip and f.name in train]
    own = {f.name for f in numbers if f.template in OWN_TEMPLATES and not f.params.get("keep")}
    if not own:
        return out
    rows = train if len(train) <= SAME_ORDER_ROWS else train.sample(SAME_ORDER_ROWS, random_state=seed)
    order = [f.name for f in numbers if f.template not in OWN_TEMPLATES] + [f.name for f in numbers
                                                                           if f.template in OWN_TEMPLATES]
    values = rows[order].apply(pd.to_numeric, errors="coerce")
    judged = [n for n in order if values[n].nunique() >= 3
              and values[n].value_counts(normalize=True).iloc[0] <= MOST_COMMON]
    if not own & set(judged):
        return out
    ranks = values[judged].rank()
    present = ranks.notna().to_numpy()
    filled = ranks.fillna(ranks.mean()).to_numpy(dtype="float64")
    filled -= filled.mean(axis=0)
    norm = np.sqrt((filled ** 2).sum(axis=0))
    rough = (filled.T @ filled) / np.outer(norm, norm)
    at = {n: j for j, n in enumerate(judged)}
    kept: list[str] = []
    for name in judged:
        i = at[name]
        for other in kept if name in own else ():
            j = at[other]
            both = present[:, i] & present[:, j]
            apart = (present[:, i] != present[:, j]).mean()  # rows where only one has a value
            if abs(rough[i, j]) < SAME_ORDER - 0.02 or both.sum() < 50 or apart > 0.01:
                continue
            rho = float(np.corrcoef(pd.Series(filled[both, i]).rank(), pd.Series(filled[both, j]).rank())[0, 1])
            if abs(rho) >= SAME_ORDER:
                column = config_name(next(f for f in numbers if f.name == name))
                out[name] = (f"in the same order as {other} on the training rows (rank correlation {rho:+.4f}): "
                             f"one signal in two columns, whose contributions would split with opposite signs; "
                             f"kept with profile.columns.{column}.keep: true")
                break
        if name not in out:
            kept.append(name)
    return out
