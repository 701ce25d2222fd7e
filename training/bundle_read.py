"""Defensive readers of a bundle's files: each checks the shape of what it reads and turns any
problem into a :class:`core.errors.ModelBundleError` naming the file and what is wrong.

The bytes come from :class:`training.manifest.BundleFiles` (verified against the manifest where
there is one). ``model.txt`` is also checked for completeness before LightGBM sees it: LightGBM's
parser aborts the whole process (``terminate called``) on a truncated model text, and bundles
saved before checksums cannot be verified any other way.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import lightgbm as lgb
import pandas as pd

from core.errors import ModelBundleError
from features.spec import Catalogue
from training.blend import BlendedModel
from training.calibration import IsotonicCalibrator
from training.health import HealthMap
from training.manifest import BundleFiles
from training.model import FeatureFrame
from training.score_calibration import ScoreCalibrator, load_calibrator

T = TypeVar("T")
PREDICTION_COLUMNS = ("account_id", "as_of", "churn_label", "churn_probability")
# what a damaged JSON document or model text raises inside the parsers we call
PARSE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError, lgb.basic.LightGBMError)
_TREE_SIZES = re.compile(rb"^tree_sizes=([0-9 ]*)$", re.MULTILINE)


def parsed(files: BundleFiles, name: str, parse: Callable[[bytes], T]) -> T:
    """``parse(bytes of name)``; any parsing error becomes a ModelBundleError naming the file."""
    data = files.read(name)
    try:
        return parse(data)
    except ModelBundleError as exc:
        raise ModelBundleError(f"{files.where(name)}: {exc}") from exc
    except PARSE_ERRORS as exc:
        raise ModelBundleError(f"{files.where(name)}: {_first_line(exc)}") from exc


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object (not ``null``, a list or a number)."""
    if not data.strip():
        raise ModelBundleError(f"empty file (expected the {what} as a JSON object)")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelBundleError(f"not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise ModelBundleError(f"expected the {what} as a JSON object, found {_json_kind(obj)}")
    return obj


def read_booster(data: bytes) -> lgb.Booster:
    """LightGBM's text model, after checking that every tree its header announces is there."""
    check_model_text(data)
    return lgb.Booster(model_str=data.decode("utf-8"))


def check_model_text(data: bytes) -> None:
    """Raise ModelBundleError unless ``data`` is a whole LightGBM text model.

    The header's ``tree_sizes`` gives each tree's length in bytes; the trees must follow the
    header back to back, each starting with ``Tree=``, and ``end of trees`` after the last.
    """
    if not data.startswith(b"tree\n"):
        raise ModelBundleError("not a LightGBM text model (it does not start with 'tree')")
    sizes = _TREE_SIZES.search(data)
    start = data.find(b"\nTree=")
    if sizes is None or start < 0:
        raise ModelBundleError("incomplete LightGBM model: no tree_sizes header or no trees (truncated?)")
    pos = start + 1
    for i, size in enumerate(int(s) for s in sizes.group(1).split()):
        if not data.startswith(b"Tree=", pos) or len(data) < pos + size:
            raise ModelBundleError(f"incomplete LightGBM model: tree {i} is cut off (truncated?)")
        pos += size
    if not data[pos:].lstrip(b"\n").startswith(b"end of trees"):
        raise ModelBundleError("incomplete LightGBM model: no 'end of trees' after the last tree (truncated?)")


def read_features(data: bytes) -> tuple[Catalogue, FeatureFrame]:
    """The catalogue and the model's column frame from ``features.json``."""
    feats = json_object(data, "feature catalogue")
    for key in ("catalogue", "frame"):
        if not isinstance(feats.get(key), dict):
            raise ModelBundleError(f"no {key!r} object in it")
    return Catalogue.from_json(json.dumps(feats["catalogue"])), FeatureFrame.from_dict(feats["frame"])


def read_calibrator(data: bytes) -> ScoreCalibrator | IsotonicCalibrator:
    """The calibrator: ``{"kind": ..., ...}`` as ``training.score_calibration`` writes it."""
    return load_calibrator(json_object(data, "calibrator"))


def read_health_map(data: bytes) -> HealthMap:
    return HealthMap.from_dict(json_object(data, "health map"))


def read_blend(booster: lgb.Booster) -> Callable[[bytes], BlendedModel]:
    return lambda data: BlendedModel.from_dict(booster, json_object(data, "blend weights"))


def read_predictions(data: bytes) -> pd.DataFrame:
    """``test_predictions.csv``: at least one row with account, as-of, label and probability."""
    if not data.strip():
        raise ModelBundleError("empty file (expected the test block's predictions as CSV with a header row)")
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"account_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ModelBundleError(f"not a readable CSV ({_first_line(exc)})") from exc
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ModelBundleError(f"missing column(s) {', '.join(missing)} (has {', '.join(map(str, frame.columns))})")
    if frame.empty:
        raise ModelBundleError("no rows (the test block's predictions are the monitoring reference)")
    frame["as_of"] = pd.to_datetime(frame["as_of"], errors="coerce")
    probability = pd.to_numeric(frame["churn_probability"], errors="coerce")
    bad = frame["as_of"].isna() | probability.isna() | ~probability.between(0, 1)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ModelBundleError(f"row {row + 2} has an unreadable as_of or a churn_probability outside [0, 1]")
    frame["churn_probability"] = probability
    return frame


def _json_kind(obj: object) -> str:
    return "null" if obj is None else {list: "a list", str: "a string", bool: "a boolean"}.get(type(obj), "a number")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
