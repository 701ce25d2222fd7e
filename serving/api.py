"""The API contract, generated from the feature catalogue (DESIGN §5, issue 11).

The catalogue is per store (the per-event-type family follows the event types in the data),
so the request models are built from the loaded bundle's catalogue when the service starts:
every feature is a typed, range-checked, documented, nullable field and unknown names are
rejected (``extra="forbid"``). The response models are fixed.

Numbers are strict (``true`` is not ``1.0``, ``"3"`` is not ``3``) and finite. An ``int``
feature accepts a whole number written as ``3`` or ``3.0`` (JSON Schema's ``integer`` means
exactly that), so a client that exports counts as floats is not refused. A flat table's model
(``train --table``) also takes its number and date columns as the table writes them ("1.290,00 EUR",
"12%", "2026-03-15"), read as training read the column, a JSON ``true``/``false`` for a category (the text, so
``TRUE`` as training read it), and the table's columns it does not read (its id and label columns, an e-mail,
free text: ``Catalogue.ignored``; the columns training left out of the model: ``served_catalogue``), ignored,
unparsed, so the export's row can be sent as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    create_model,
)

from core.vocabulary import TIER_KEYS
from features.spec import Catalogue, FeatureSpec

MAX_ACCOUNTS = 1000
MAX_ID_LENGTH = 200
MAX_CATEGORY_LENGTH = 200
AccountId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, description="the account's id")]


def _number_type(spec: FeatureSpec) -> Any:
    """The value type of a numeric feature: strict, finite, within ``valid_range`` (inclusive)."""
    lo, hi = spec.valid_range
    bounds = {k: v for k, v in (("minimum", lo), ("maximum", hi)) if v is not None}
    whole = spec.type == "int"
    schema = {"type": "integer" if whole else "number", **bounds}
    checks = [AfterValidator(_whole)] if whole else []
    return Annotated[float, Strict(), Field(ge=lo, le=hi, allow_inf_nan=False), *checks, WithJsonSchema(schema)]


def _whole(value: float) -> float:
    """An ``int`` feature's value: a whole number (pydantic's ``multiple_of=1`` lets 2.5e-42 pass)."""
    if not float(value).is_integer():
        raise ValueError(f"Input should be a whole number, not {value!r}")
    return value


def sent_as_text(spec: FeatureSpec) -> bool:
    """Whether ``/score`` takes this feature's value as the export writes it (text): a flat table's number,
    0/1 flag or date column (``training.own_table``'s ``table_column`` template; a category is text anyway, a
    snapshot model's features are numbers)."""
    return spec.template == "table_column" and spec.type != "category"


def feature_field(spec: FeatureSpec) -> tuple[Any, Any]:
    """``(annotation, FieldInfo)`` of one feature: described by its definition and unit. A flat table's
    number and date columns also take the export's text (``sent_as_text``), read as
    training read the column (``serving.scoring.feature_rows``)."""
    text = Annotated[StrictStr, Field(max_length=MAX_CATEGORY_LENGTH)]
    if spec.type == "category" and spec.template == "table_column":  # a JSON true/false: the text (TRUE reads so)
        value = text | Annotated[StrictBool, AfterValidator(lambda b: "true" if b else "false"),
                                 WithJsonSchema({"type": "boolean"})]
    elif spec.type == "category":
        value = text
    else:
        value = _number_type(spec) | text if sent_as_text(spec) else _number_type(spec)
        if sent_as_text(spec) and spec.unit == "flag":  # a table's 0/1 flag: a JSON true/false is 1/0
            value = value | Annotated[StrictBool, AfterValidator(float), WithJsonSchema({"type": "boolean"})]
    lo, hi = spec.valid_range
    shown = "" if spec.type == "category" else f"; range [{_bound(lo, '-inf')}, {_bound(hi, 'inf')}]"
    if sent_as_text(spec):
        shown += ("; or the table's text, read as training read the column: " + (
            "a date, counted in days to the day of the request" if spec.params.get("kind") == "date" else
            "decimal comma, e.g. '1.290,50 EUR', '12,5%'" if spec.params.get("decimal") == "comma" else
            "e.g. '$1,290.50', '12.5%'"))
    description = f"{spec.definition} (unit: {spec.unit}; type: {spec.type}{shown}); null or absent: missing"
    if spec.optional:
        return value | None, Field(None, description=description)
    return value, Field(..., description=description)


def _bound(v: float | None, open_end: str) -> str:
    return open_end if v is None else f"{v:g}"


def _field_key(name: str, taken: set[str]) -> str:
    """The model field holding the request's ``name``: the name itself, or a safe one with ``name`` as its
    alias where pydantic refuses it as a field (``_id``, ``_fivetran_synced``: a leading underscore; a
    ``BaseModel`` attribute such as ``model_config`` or ``copy``)."""
    if not name.startswith("_") and name not in _RESERVED:
        return name
    key, n = "aliased_field", 0
    while key in taken:
        n += 1
        key = f"aliased_field_{n}"
    return key


_RESERVED = frozenset(dir(BaseModel))


class RequestModels:
    """The generated request models of one catalogue. ``keys``: the model field of each request name (the
    name itself, or an aliased safe one: ``_field_key``)."""

    def __init__(self, catalogue: Catalogue) -> None:
        fields: dict[str, tuple[Any, Any]] = {}
        self.keys: dict[str, str] = {}
        plain = {f.name for f in catalogue.features} | set(catalogue.ignored)
        ignored = {name: (Any, Field(None, description=f"not read by the model ({why}); accepted and ignored"))
                   for name, why in catalogue.ignored.items() if name not in catalogue.names}
        for name, (annotation, info) in [*((f.name, feature_field(f)) for f in catalogue.features),
                                         *ignored.items()]:
            key = self.keys[name] = _field_key(name, plain | set(fields))
            if key != name:
                info = Field(info.default, description=info.description, alias=name)  # a default or required
            fields[key] = (annotation, info)
        self.features = create_model("Features", __config__=ConfigDict(extra="forbid", populate_by_name=False),
                                     __doc__="The account's features as of one date; every field is "
                                             "a feature of the model's catalogue.", **fields)
        self.account = create_model(
            "AccountFeatures", __config__=ConfigDict(extra="forbid"),
            __doc__="One account to score.",
            account_id=(AccountId, ...),
            features=(self.features, Field(default_factory=self.features, description="missing: all missing")),
        )


def served_catalogue(catalogue: Catalogue, model_names: Iterable[str],
                     left_out: dict[str, str] | None = None) -> Catalogue:
    """The catalogue a request is read against: a flat table's columns the model does not read (``table_column``
    features not among ``model_names``, the model's own: left out at training as a repeat of another feature, with
    no link to churn, null or constant) join ``ignored`` with the reason (``left_out``: the training's
    ``dropped_features``), so ``/score`` accepts and ignores them, unparsed, as the table's other unused columns (a
    left-out sign-up date sent as "2025年8月5日" was a 422); ``catalogue`` itself when none is (a snapshot model)."""
    used = set(model_names)
    unread = [f.name for f in catalogue.features if f.template == "table_column" and f.name not in used]
    if not unread:
        return catalogue
    return dataclasses.replace(catalogue, features=tuple(f for f in catalogue.features if f.name not in unread),
                               ignored={**catalogue.ignored, **{n: (left_out or {}).get(n, "left out at training")
                                                                for n in unread}})


_BUILT: dict[int, tuple[Catalogue, RequestModels]] = {}


def request_models(catalogue: Catalogue) -> RequestModels:
    """The request models of ``catalogue``, built once per catalogue object."""
    built = _BUILT.get(id(catalogue))
    if built is None or built[0] is not catalogue:
        if len(_BUILT) >= 8:  # a few catalogues per process (tests, benchmarks); a cache, not state
            _BUILT.clear()
        built = _BUILT[id(catalogue)] = (catalogue, RequestModels(catalogue))
    return built[1]


def field_path(loc: tuple | list, root: str = "") -> str:
    """``("accounts", 0, "features", "mrr")`` -> ``accounts[0].features.mrr`` (``root`` first). A feature's
    value may take several forms (a number or the export's text): pydantic's names of them after the feature
    (``constrained-float``, ``function-after[<lambda>(), bool]``) are left out, the field is what the client
    sent (``merged_errors`` joins their messages)."""
    parts = list(loc)
    if "features" in parts:
        parts = parts[:parts.index("features") + 2]
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def merged_errors(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(field, message)`` pairs with one entry per field: the messages of a value's several forms joined
    ("Input should be a valid number, or Input should be a valid string"), in first-seen order."""
    out: dict[str, list[str]] = {}
    for path, message in pairs:
        said = out.setdefault(path, [])
        if message not in said:
            said.append(message)
    return [(path, ", or ".join(messages)) for path, messages in out.items()]


class Reason(BaseModel):
    """A signal group that raises (reason) or lowers (strength) the risk."""

    # Text, not the snapshot catalogue's groups: a flat-table model's signals are its columns.
    signal: str = Field(description="the signal group the reason sums (a snapshot model's group, e.g. activity; "
                                    "a flat-table model's column)")
    text: str = Field(description="the reason in the requested language")
    contribution: float = Field(description="the group's summed SHAP contribution (log-odds)")
    value: int | float | str | None = Field(description="the value of the feature the text is about")


class PlaybookOut(BaseModel):
    """What the customer-success team does for this tier."""

    action: str = Field(description="the action in the requested language")
    owner: str
    respond_within: str = Field(description="as said to people, e.g. '4 hours'")


class UnknownCategory(BaseModel):
    """A category value training never saw (scored as missing)."""

    feature: str
    value: str


class Coverage(BaseModel):
    """What of the model a ``/score`` request fed for one account."""

    given: list[str] = Field(description="features given a value, in catalogue order")
    missing: list[str] = Field(description="the model's features without a usable value, most important first")
    unknown: list[UnknownCategory] = Field(description="category values not seen in training (scored as missing)")
    share: float = Field(ge=0, le=1, description="the given features' share of the model's total split gain")


class ScoreResult(BaseModel):
    """The score of one account."""

    account_id: str
    churn_probability: float = Field(ge=0, le=1, description="calibrated probability of churn within the horizon")
    health_score: int = Field(ge=0, le=100, description="0-100, higher is healthier")
    tier: Literal[TIER_KEYS] = Field(description="the health tier, best first: " + ", ".join(TIER_KEYS))
    reasons: list[Reason]
    strengths: list[Reason]
    playbook: PlaybookOut
    model_version: str
    warnings: list[str] = Field(default_factory=list, description="e.g. a category not seen in training")
    coverage: Coverage | None = Field(None, description="/score: the features given, missing and unknown")


class PreviousScore(BaseModel):
    """The account's score before this one."""

    as_of: str = Field(description="YYYY-MM-DD")
    churn_probability: float = Field(ge=0, le=1)
    health_score: int = Field(ge=0, le=100)
    tier: Literal[TIER_KEYS]


class AccountScore(ScoreResult):
    """``/score_accounts``: an account's latest published score (or a live one) with what a
    customer-success platform syncs. A churned account has no tier and no playbook."""

    tier: Literal[TIER_KEYS] | None = Field(description="null when the account is no longer a customer")
    playbook: PlaybookOut | None
    source: Literal["published", "live"] = Field(description="published: the latest scoring run's score; "
                                                 "live: scored now from the latest snapshot")
    as_of: str = Field(description="YYYY-MM-DD: the date the features (and the score) are as of")
    stale: bool = Field(description="true when older than serving.max_score_age_days or churned")
    stale_reason: str | None
    churned_on: str | None = Field(description="YYYY-MM-DD when the account is no longer a customer")
    mrr: float | None = Field(description="monthly recurring revenue as of as_of")
    expected_mrr_loss: float | None = Field(description="mrr x churn_probability")
    csm: str | None
    previous: PreviousScore | None
    health_change: int | None = Field(description="health_score minus the previous score's")
    tier_change: Literal["better", "worse", "unchanged"] | None
    respond_within_hours: float | None = Field(description="the playbook's deadline in hours; null: none")
    due_at: str | None = Field(description="ISO date-time: scored at + respond_within_hours")


class ScoresPage(BaseModel):
    """``GET /scores``: one page of the current scores, ordered by account id."""

    run_id: str = Field(description="the scoring run the page comes from")
    as_of: str | None = Field(description="YYYY-MM-DD: the latest run's as-of date")
    scores: list[AccountScore]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")


class HistoryEntry(BaseModel):
    """One score of an account."""

    as_of: str
    churn_probability: float = Field(ge=0, le=1)
    health_score: int = Field(ge=0, le=100)
    tier: Literal[TIER_KEYS]
    model_version: str


class AccountHistory(BaseModel):
    """``GET /accounts/{account_id}/history``: every score of the account, oldest first."""

    account_id: str
    scores: list[HistoryEntry]


#: The error of an id of ``/score_accounts`` with neither a published score nor a snapshot, per language.
UNKNOWN_ACCOUNT = {"en": "unknown account: no snapshot in the store", "zh-CN": "未知客户：存储中没有该客户的快照"}
#: The same for a flat-table model (``train --table``): it scores only the rows of ``score --table``,
#: and its home has no snapshots to score an id live from.
UNKNOWN_TABLE_ACCOUNT = {"en": "unknown account: no score published by `churnwatch score --table`",
                         "zh-CN": "未知客户：`churnwatch score --table` 没有发布该客户的评分"}


class AccountError(BaseModel):
    """An id of ``/score_accounts`` that could not be scored (the other ids still are)."""

    model_config = ConfigDict(extra="forbid")

    account_id: str
    error: str


class CoverageError(BaseModel):
    """An account of ``/score`` with too few features to score (the other accounts still are)."""

    model_config = ConfigDict(extra="forbid")

    account_id: str
    error: str = Field(description="names the missing features, most important first")
    coverage: Coverage


class FeatureInfo(BaseModel):
    """One feature of the model's catalogue."""

    name: str
    type: Literal["float", "int", "category"]
    unit: str
    definition: str
    group: str
    valid_range: tuple[float | None, float | None]
    optional: bool


class CatalogueInfo(BaseModel):
    """The model's feature catalogue: the request's feature names, types and ranges."""

    event_types: list[str]
    features: list[FeatureInfo]


class ModelInfo(BaseModel):
    """``GET /model``: the served model."""

    model_version: str
    training_window: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    horizon_days: int | None = None
    feature_spec: CatalogueInfo
    chosen_model: str | None = Field(None, description="The candidate the training run chose on validation rows")
    calibration: str | None = Field(None, description="The calibration map chosen by out-of-fold log loss")
    left_out_features: dict[str, str] = Field(
        default_factory=dict, description="Features of feature_spec the model does not read (accepted in a request, "
                                          "ignored), with the reason: null or constant in the training rows, "
                                          "a window the export only partly covers, ...; for a table model also "
                                          "the table's columns not used (\"column not used: ...\")")


def model_info(scorer: Any) -> dict:
    """The ``GET /model`` body of a loaded ``Scorer``."""
    from training.table_columns import unused_columns

    meta = scorer.bundle.meta
    training = meta.get("training") or {}
    catalogue = scorer.bundle.catalogue
    feats = [FeatureInfo(name=f.name, type=f.type, unit=f.unit, definition=f.definition, group=f.group,
                         valid_range=f.valid_range, optional=f.optional) for f in catalogue.features]
    info = ModelInfo(model_version=scorer.model_version, training_window=meta.get("training_window"),
                     split=meta.get("split"), metrics=meta.get("metrics"), horizon_days=meta.get("horizon_days"),
                     feature_spec=CatalogueInfo(event_types=list(catalogue.event_types), features=feats),
                     chosen_model=training.get("selection", {}).get("chosen"),
                     calibration=training.get("calibration", {}).get("method"),
                     left_out_features={**(training.get("dropped_features") or {}),  # a table's own unused columns:
                                        **{c: f"column not used: {why}"  # accepted in a request, ignored
                                           for c, why in unused_columns(meta.get("table_report") or {}).items()}})
    return info.model_dump(mode="json")
