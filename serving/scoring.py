"""Request validation against the feature spec and result assembly (no HTTP here).

The service (``serving/service.py``) and any in-process caller use the same functions, so
HTTP and in-process scoring give identical results.

Over 400 lines: one ``Scorer`` for the service and the in-process callers (a request's categories read as
training read them, coverage, TreeSHAP reasons), so the two paths cannot part.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, compress
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError
from threadpoolctl import threadpool_limits

from core.errors import ChurnwatchError
from core.settings import Settings
from core.vocabulary import number_text, owner_label, respond_label
from features.spec import Catalogue
from serving.api import MAX_CATEGORY_LENGTH, MAX_ID_LENGTH, field_path, merged_errors, request_models, served_catalogue
from serving.coverage import CoverageCheck, model_gains, table_blanks, training_ranges_of
from training.blend import BLAS_THREADS
from training.bundle import ModelBundle
from training.model import FeatureRows
from training.own_table import BLANK_TOKENS, case_folded, categories_as_trained, read_sent_cells, yes_no_folded
from training.reasons import contributions
from training.treeshap import prepare

MAX_BATCH = 1000
#: Requests of at least this many accounts are scored with the garbage collector paused
#: (``paused_collector``).
PAUSE_COLLECTOR_ROWS = 64


class RequestError(ChurnwatchError):
    """A request that breaks the feature spec; ``problems`` lists ``(field, reason)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"invalid request: {'; '.join(f'{f}: {r}' for f, r in problems[:20])}{more}")


def validate_features(items: list[dict], catalogue: Catalogue, where: str = "accounts") -> FeatureRows:
    """Validate request items against the catalogue's request model (``serving/api.py``) and return one row
    per account. In-process callers get the checks the service gets (types, ranges, finite values, no unknown
    names); missing optional features are allowed and treated as missing.

    Raises:
        RequestError: naming each offending field, e.g. ``accounts[0].features.logins_30d``.
    """
    fast = plain_rows(items, catalogue)
    if fast is not None:
        return fast
    adapter = _accounts_adapter(request_models(catalogue).account)
    try:
        accounts = adapter.validate_python(items)
    except ValidationError as exc:
        raise RequestError(merged_errors([(field_path(e["loc"], where), e["msg"]) for e in exc.errors()])) from exc
    return feature_rows(accounts, catalogue)


class _Checks:
    """The request model's checks of one catalogue as arrays (``plain_rows``), and the shapes seen (``shape``)."""

    #: Shapes remembered before the memory starts afresh (a shape and its names ~2 KB: 4 MB at most).
    MAX_SHAPES = 2048

    def __init__(self, catalogue: Catalogue) -> None:
        numeric = [f for f in catalogue.features if f.type != "category"]
        self.numeric = [f.name for f in numeric]
        self.categorical = list(catalogue.categorical)
        self.allowed = frozenset([f.name for f in catalogue.features] + list(catalogue.ignored))
        self.required = frozenset(f.name for f in catalogue.features if not f.optional)
        bound = [f.valid_range for f in numeric]
        self.lo = np.array([-np.inf if lo is None else lo for lo, _ in bound], dtype=float)
        self.hi = np.array([np.inf if hi is None else hi for _, hi in bound], dtype=float)
        self.whole = np.array([f.type == "int" for f in numeric], dtype=bool)
        self.column = {name: j for j, name in enumerate(self.numeric)}
        self.category = {name: j for j, name in enumerate(self.categorical)}
        self.required_columns = [self.column[n] for n in self.numeric if n in self.required]
        self.required_categories = [n for n in self.categorical if n in self.required]
        self.shapes: dict[tuple, _Shape | None] = {}

    def shape(self, names: tuple) -> _Shape | None:
        """The ``_Shape`` of a feature object whose names are ``names`` in order (None: a name the
        catalogue does not know, or a required feature left out)."""
        try:
            return self.shapes[names]
        except KeyError:
            pass
        if not self.allowed.issuperset(names):  # not remembered: the names are the client's, of any size
            return None
        shape = _Shape(names, self.column, self.category) if self.required.issubset(names) else None
        if len(self.shapes) >= self.MAX_SHAPES:
            self.shapes = {}
        self.shapes[names] = shape
        return shape


class _Shape:
    """Where the values of a feature object with these names, in this order, go: which are numbers
    and their matrix columns, where the categories are and their label columns."""

    __slots__ = ("numeric", "columns", "width", "label_at", "label_columns")

    def __init__(self, names: tuple, column: dict[str, int], category: dict[str, int]) -> None:
        self.numeric = [name in column for name in names]
        self.columns = np.array([column[n] for n in names if n in column], dtype=np.intp)
        self.width = len(names)
        self.label_at = np.array([k for k, n in enumerate(names) if n in category], dtype=np.intp)
        self.label_columns = np.array([category[n] for n in names if n in category], dtype=np.intp)


_CHECKS: dict[int, tuple[Catalogue, _Checks]] = {}
_ITEM_KEYS = frozenset({"account_id", "features"})
_NO_FEATURES: dict = {}
_UNSEEN = object()
_NUMBER_TYPES = frozenset({float, int, type(None)})
_LABEL_TYPES = frozenset({str, type(None)})


def _checks(catalogue: Catalogue) -> _Checks:
    built = _CHECKS.get(id(catalogue))
    if built is None or built[0] is not catalogue:
        if len(_CHECKS) >= 8:
            _CHECKS.clear()
        built = _CHECKS[id(catalogue)] = (catalogue, _Checks(catalogue))
    return built[1]


def plain_rows(items: object, catalogue: Catalogue) -> FeatureRows | None:
    """``FeatureRows`` of request items checked column by column with arrays, when every item is plainly valid
    (the request model's rules: no unknown name, account ids of 1-200 characters, numbers that are ints or
    floats (not booleans or strings: a flat table's text goes pydantic's way), finite, within their range, whole
    for an ``int`` feature, categories strings of at most 200 characters); ``None`` for anything else, which
    pydantic then checks and words. Same rows as pydantic's path (``feature_rows``).

    Every value is read once, in C loops: all feature objects' values in one list (``dict.values()``), split
    into numbers and categories by a mask per *shape* (the names of a feature object in order, ``tuple(dict)``:
    a batch has a few hundred, remembered across requests), numbers converted at once and put in their matrix
    columns by one scatter."""
    if not isinstance(items, list) or not items:
        return None
    checks = _checks(catalogue)
    feats, ids, shapes = [], [], []
    known = checks.shapes
    for item in items:
        if type(item) is not dict or not item.keys() <= _ITEM_KEYS:
            return None
        account_id, f = item.get("account_id"), item.get("features", _NO_FEATURES)
        if type(account_id) is not str or not 1 <= len(account_id) <= MAX_ID_LENGTH or type(f) is not dict:
            return None
        names = tuple(f)
        shape = known.get(names, _UNSEEN)
        if shape is _UNSEEN:
            shape = checks.shape(names)
        if shape is None:
            return None
        ids.append(account_id)
        feats.append(f)
        shapes.append(shape)
    n, width = len(feats), len(checks.numeric)
    flat = list(chain.from_iterable(map(dict.values, feats)))
    numbers = list(compress(flat, chain.from_iterable([s.numeric for s in shapes])))
    if not set(map(type, numbers)) <= _NUMBER_TYPES:
        return None
    try:
        given = np.array(numbers, dtype=float)  # null -> NaN
    except OverflowError:  # an int beyond a float: pydantic words it
        return None
    at = np.flatnonzero(np.isnan(given)).tolist()  # every NaN must come from a null, not a NaN sent as a number
    if at and any(numbers[k] is not None for k in at):
        return None
    counts = [len(s.columns) for s in shapes]
    values = np.full(n * width, np.nan)
    if width:  # a model of categories alone (a flat table's) has no numbers: arange's step would be 0
        values[np.concatenate([s.columns for s in shapes]) + np.repeat(np.arange(0, n * width, width), counts)] = given
    values = values.reshape(n, width)
    labels = _labels(flat, shapes, n, checks)
    if labels is None:
        return None
    return _checked(ids, values, labels, checks)


def _labels(flat: list, shapes: list[_Shape], n: int, checks: _Checks) -> dict[str, list] | None:
    """The categories' columns of ``plain_rows`` (None: a value that is not a string of at most
    ``MAX_CATEGORY_LENGTH`` characters, nor null): a few values per row, gathered by position."""
    width = len(checks.categorical)
    counts = [len(s.label_at) for s in shapes]
    table = np.full(n * width, None, dtype=object)
    if sum(counts):
        starts = np.cumsum([0] + [s.width for s in shapes[:-1]])  # each row's first value in ``flat``
        at = np.concatenate([s.label_at for s in shapes]) + np.repeat(starts, counts)
        given = [flat[k] for k in at.tolist()]
        if not set(map(type, given)) <= _LABEL_TYPES or max(map(len, filter(None, given)),
                                                            default=0) > MAX_CATEGORY_LENGTH:
            return None
        rows = np.repeat(np.arange(0, n * width, width), counts)
        table[np.concatenate([s.label_columns for s in shapes]) + rows] = given
    return dict(zip(checks.categorical, table.reshape(n, width).T.tolist()))


def _checked(ids: list[str], values: np.ndarray, labels: dict[str, list], checks: _Checks) -> FeatureRows | None:
    """The rows, when the numbers are finite, in their ranges, whole where they must be, and every
    required feature is not null (a shape has them all); else None."""
    given = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (values >= checks.lo) & (values <= checks.hi)
        ok &= ~checks.whole | (np.floor(values) == values)
    if not np.all(ok | ~given):
        return None
    if checks.required_columns and not given[:, checks.required_columns].all():
        return None
    if any(v is None for c in checks.required_categories for v in labels[c]):
        return None
    return FeatureRows(ids, checks.numeric, values, labels)


@lru_cache(maxsize=8)
def _accounts_adapter(model: type[BaseModel]) -> TypeAdapter:
    return TypeAdapter(list[model])


def feature_rows(accounts: list[BaseModel], catalogue: Catalogue, as_of: dt.date | None = None) -> FeatureRows:
    """Validated request accounts as ``FeatureRows``: numeric features straight into one float
    matrix (null -> NaN; no pandas frame: building one costs more than scoring one row), a flat
    table's columns sent as its export writes them read as training read them (a RequestError where
    they do not read; its dates counted to ``as_of``, default today in UTC), categories as labels."""
    numeric = [f for f in catalogue.features if f.type != "category"]
    keys = request_models(catalogue).keys  # a name pydantic refuses as a field (``_id``) is held under an alias
    feats = [a.features.__dict__ for a in accounts]  # every field, None where not given
    cells = [[f[keys[spec.name]] for spec in numeric] for f in feats]
    if any(type(v) is str for row in cells for v in row) and (
            problems := read_sent_cells(cells, numeric, as_of or dt.datetime.now(dt.UTC).date())):
        raise RequestError([(f"accounts[{i}].features.{name}", why) for i, name, why in problems])
    values = np.array(cells, dtype=float).reshape(len(feats), len(numeric))
    labels: dict[str, list[object]] = {c: [f[keys[c]] for f in feats] for c in catalogue.categorical}
    return FeatureRows([a.account_id for a in accounts], [spec.name for spec in numeric], values, labels)


@dataclass
class Scorer:
    """A loaded bundle plus the playbooks: scores rows into API results. ``catalogue``: what a request is read
    against (``serving.api.served_catalogue``: a flat table's columns the model does not read, ignored)."""

    bundle: ModelBundle
    settings: Settings
    model_version: str
    store: Path | None = None
    extra: dict = field(default_factory=dict)
    catalogue: Catalogue = field(init=False, repr=False, compare=False)
    _coverage: CoverageCheck | None = field(default=None, init=False, repr=False, compare=False)
    _folded: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)
    _blanks: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _ranges: tuple[tuple[int, str, float, float], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # a flat table's categories read in lower case (``_folded``)
        self._folded = case_folded(self.bundle.catalogue)
        self._yes_no = yes_no_folded(self.bundle.catalogue)
        self.catalogue = served_catalogue(self.bundle.catalogue, self.bundle.frame.names,
                                          (self.bundle.meta.get("training") or {}).get("dropped_features"))
        self._blanks = BLANK_TOKENS if self.bundle.meta.get("kind") == "table" else frozenset()  # "N/A", "-"
        self._ranges = training_ranges(self.bundle)
        prepare(self.bundle.booster)  # TreeSHAP tables built before the first request, not during it
        # One BLAS thread for this process from now on: scoring's matrix products are small (the reasons' sums
        # per group, the blend's linear part), and BLAS's thread team cost 8 ms of a 1,000-row batch's 80 on a
        # shared machine for a 0.1 ms product; workers are one per core anyway (same floats, checked bitwise).
        threadpool_limits(limits=BLAS_THREADS, user_api="blas")

    @property
    def coverage(self) -> CoverageCheck:
        """The coverage check of the served model (``serving/coverage.py``), built once."""
        if self._coverage is None:
            frame = self.bundle.frame
            self._coverage = CoverageCheck(frame, model_gains(self.bundle.booster, frame.names),
                                           self.settings.serving.min_coverage, table_blanks(self.bundle))
        return self._coverage

    def results(self, rows: pd.DataFrame | FeatureRows, lang: str = "en",
                check_coverage: bool | None = None) -> list[dict]:
        """One API result per row, in order.

        ``check_coverage`` (default: for request rows, i.e. ``FeatureRows``, not store
        snapshots) adds each account's ``coverage`` and answers an account below the minimum
        coverage with ``{"account_id", "error", "coverage"}`` instead of a score.
        """
        if rows.empty:
            return []
        with paused_collector(len(rows) >= PAUSE_COLLECTOR_ROWS):
            return self._results(rows, lang, check_coverage)

    def _results(self, rows: pd.DataFrame | FeatureRows, lang: str, check_coverage: bool | None) -> list[dict]:
        if check_coverage is None:
            check_coverage = isinstance(rows, FeatureRows)
        rows = self.bundle.frame.respelled(categories_as_trained(rows, self._folded, self._blanks, self._yes_no))
        X = self.bundle.frame.matrix(rows)
        out = self._scored(rows, lang, X)
        if not check_coverage:
            return out
        check = self.coverage
        outside = outside_training(X, self._ranges, lang)
        for i, cov in enumerate(check.measure(rows, X)):
            error = check.error(cov, lang)
            if error:
                out[i] = {"account_id": out[i]["account_id"], "error": error, "coverage": cov}
            else:
                out[i]["warnings"].extend(outside.get(i, ()))
                out[i]["coverage"] = cov  # the last key, as in ``{**result, "coverage": cov}``
        return out

    def _scored(self, rows: pd.DataFrame | FeatureRows, lang: str, X: np.ndarray) -> list[dict]:
        """``bundle.score``'s probability, tier and reasons from the model matrix ``X`` (one TreeSHAP pass, the
        asked language only) as API results, without a frame in between."""
        bundle = self.bundle
        p, health, tiers = bundle.score_matrix(X)
        explained = bundle.reasons.explain(contributions(bundle.booster, X), rows,
                                           "zh-CN" if lang == "zh-CN" else "en", public=True)
        unseen = bundle.frame.unseen_categories(rows)
        unseen_rows = {c: np.asarray(rows[c]) for c in unseen}
        tiers = tiers.tolist()
        version, zh = self.model_version, lang == "zh-CN"
        playbooks = {tier: {"action": b.action_zh if zh else b.action_en, "owner": owner_label(b.owner, lang),
                            "respond_within": respond_label(b.respond_within, lang, b.respond_within_hours)}
                     for tier, b in ((t, self.settings.playbooks[t]) for t in set(tiers))}
        out = []
        for i, (acc, prob, h, tier, e) in enumerate(zip(rows["account_id"], p.tolist(), health.tolist(), tiers,
                                                        explained)):
            warnings = [(f"{c}：训练数据中没有'{unseen_rows[c][i]}'，按缺失值评分" if zh else
                         f"{c}: '{unseen_rows[c][i]}' was not seen in training; scored as missing")
                        for c, values in unseen.items() if unseen_rows[c][i] in values] if unseen else []
            out.append({
                "account_id": str(acc),
                "churn_probability": prob,
                "health_score": int(h),
                "tier": str(tier),
                "reasons": e["reasons"],
                "strengths": e["strengths"],
                "playbook": dict(playbooks[tier]),
                "model_version": version,
                "warnings": warnings,
            })
        return out


def training_ranges(bundle: ModelBundle) -> tuple[tuple[int, str, float, float], ...]:
    """(column of the model matrix, feature, training min, training max) of each number feature whose range
    the bundle keeps (``training.model.feature_facts``; none in bundles saved before)."""
    ranges = training_ranges_of(bundle)
    return tuple((j, name, *ranges[name]) for j, name in enumerate(bundle.frame.names) if name in ranges)


def outside_training(X: np.ndarray, ranges: tuple[tuple[int, str, float, float], ...],
                     lang: str = "en") -> dict[int, list[str]]:
    """Row -> a warning per value outside the training rows' range (a probe's request with "Tenure Months" -5 and
    a 1-5 rating of 9 was scored and worded as reasons without a word): the trees and the linear part (whose
    values are clipped to the training range) score such a value as the nearest one they saw; no training row
    backs it."""
    out: dict[int, list[str]] = {}
    for j, name, lo, hi in ranges:
        col = X[:, j]
        for i in np.flatnonzero((col < lo) | (col > hi)):
            out.setdefault(int(i), []).append(
                f"{name}：{number_text(col[i])}超出训练数据的取值范围（{number_text(lo)}至{number_text(hi)}），"
                "按模型见过的最接近的值评分" if lang == "zh-CN" else
                f"{name}: {number_text(col[i])} is outside the values of the training rows "
                f"({number_text(lo)} to {number_text(hi)}): it is scored as the nearest value the model saw")
    return out


@contextmanager
def paused_collector(pause: bool = True) -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (``gc.disable``), on again after it.

    A batch of 1,000 results allocates tens of thousands of lists and dicts (the results, their reasons, the
    coverage) and no reference cycle; with the collector on, a young-generation pass runs every 700 allocations
    and walks the new objects still alive (most of these), about 30 passes per batch that free nothing. Paused,
    the objects are freed by reference counting as ever, and the objects still alive at the end are walked once
    by the next pass. Nothing changes when the collector is already off (another thread's batch, or the
    caller's choice); a thread that ends its block while another's runs turns it back on (costs it a pass)."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def public_reason(item: dict) -> dict:
    """The API's reason fields (values are already plain Python in ``ReasonBuilder``)."""
    return {"signal": item["signal"], "text": item["text"], "contribution": round(item["contribution"], 6),
            "feature": item["feature"], "value": item["value"]}
