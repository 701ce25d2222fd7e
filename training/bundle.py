"""The model bundle: plain files, no pickle (DESIGN §4).

A bundle folder holds:

* ``model.txt`` — the LightGBM booster in its text format;
* ``calibrator.json`` — the strictly increasing map from raw log-odds to probability
  (``training.score_calibration``; older bundles: isotonic thresholds on probabilities);
* ``blend.json`` — only for a blend of the trees with a logistic regression: the tree
  weight and the linear coefficients (``training.blend``);
* ``health_map.json`` — the pins of the probability -> health map;
* ``features.json`` — the feature catalogue (order, directions, ranges, reason templates)
  and the categorical columns' categories;
* ``bundle.json`` — training window and split, horizon and grace, metrics, input hash,
  and the pointer to the training snapshots (store, table, as-of range);
* ``test_predictions.csv`` — the test block's out-of-sample predictions (monitoring's
  reference);
* ``reasons.json`` — what reasons are worded against (``training.reasons.fit_references``;
  optional: older bundles word reasons without references).

``ModelBundle.load`` reads these with json and LightGBM's text parser only: nothing is
unpickled and no model code is run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

from core.store import SNAPSHOTS
from features.spec import Catalogue
from training.blend import BlendedModel
from training.calibration import IsotonicCalibrator
from training.errors import ModelBundleError
from training.health import HealthMap
from training.model import FeatureFrame, FeatureRows
from training.reasons import contributions, reason_builder, threads_for
from training.score_calibration import ScoreCalibrator, load_calibrator

FILES = ("model.txt", "calibrator.json", "health_map.json", "features.json", "bundle.json")


@dataclass
class ModelBundle:
    booster: lgb.Booster | BlendedModel  # raw log-odds, probability and contributions alike
    calibrator: ScoreCalibrator | IsotonicCalibrator
    health_map: HealthMap
    catalogue: Catalogue
    frame: FeatureFrame
    meta: dict = field(default_factory=dict)
    test_predictions: pd.DataFrame | None = None
    reason_references: dict | None = None

    def __post_init__(self) -> None:
        # the catalogue stays whole (requests may carry every feature); reasons follow the model's
        # columns, which leave out features that were null or constant in the training rows
        kept = set(self.frame.names)
        model_catalogue = dataclasses.replace(
            self.catalogue, features=tuple(f for f in self.catalogue.features if f.name in kept))
        self.reasons = reason_builder(model_catalogue, self.reason_references)

    # -- scoring ---------------------------------------------------------------------
    def _scored(self, X: np.ndarray, index: pd.Index) -> pd.DataFrame:
        raw = np.asarray(self.booster.predict(X, raw_score=True, num_threads=threads_for(len(X))))
        p = self.calibrator.predict(raw if self.calibrator.input_scale == "log_odds" else expit(raw))
        health = self.health_map.health_score(p)
        return pd.DataFrame({"churn_probability": p, "health_score": health,
                             "tier": self.health_map.tier(health)}, index=index)

    def predict(self, rows: pd.DataFrame | FeatureRows) -> pd.DataFrame:
        """churn_probability (calibrated), health_score and tier for each row."""
        return self._scored(self.frame.matrix(rows), rows.index)

    def score(self, rows: pd.DataFrame | FeatureRows, lang: str = "en") -> tuple[pd.DataFrame, list[dict]]:
        """``predict`` and ``explain`` from one input matrix (serving's path)."""
        scored, explained = self.score_in(rows, (lang,))
        return scored, explained[lang]

    def score_in(self, rows: pd.DataFrame | FeatureRows,
                 langs: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
        """``predict``, and ``explain`` in each of ``langs``, from one matrix and one TreeSHAP
        pass (the contributions, most of the cost, do not depend on the language)."""
        X = self.frame.matrix(rows)
        contrib = contributions(self.booster, X)
        return self._scored(X, rows.index), {lang: self.reasons.explain(contrib, rows, lang=lang) for lang in langs}

    def explain(self, rows: pd.DataFrame, lang: str = "en") -> list[dict]:
        return self.reasons.explain(contributions(self.booster, self.frame.matrix(rows)), rows, lang=lang)

    # -- the test block --------------------------------------------------------------
    def test_block_source(self, store: Path | None = None,
                          fallback: Path | None = None) -> tuple[Path, str, dt.date, dt.date]:
        """Where this bundle's test block lives: ``(store, table, first as-of, last as-of)``.

        An explicitly given ``store`` first, else the store the pointer names; ``fallback``
        only when the pointer's file no longer exists. Promotion, evaluation and monitoring
        all resolve it here.

        Raises:
            ModelBundleError: trained on a flat table (no pointer), or no such store.
        """
        pointer = self.meta.get("snapshots")
        if not pointer:
            raise ModelBundleError("this bundle was trained on a flat table: it has no snapshot test block")
        path = Path(store) if store is not None else Path(pointer.get("store", ""))
        if store is None and not path.exists() and fallback is not None:
            path = Path(fallback)
        if not path.exists():
            raise ModelBundleError(f"the bundle's training store {pointer.get('store')} does not exist; pass --store "
                                   "with a store holding its test block")
        lo, hi = (dt.date.fromisoformat(d) for d in pointer["test_block"])
        return path, str(pointer.get("table") or SNAPSHOTS), lo, hi

    # -- files -----------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.txt").write_text(self.booster.model_to_string(), encoding="utf-8")
        _dump(folder / "calibrator.json", self.calibrator.to_dict())
        _dump(folder / "health_map.json", self.health_map.to_dict())
        _dump(folder / "features.json", {"catalogue": json.loads(self.catalogue.to_json()),
                                         "frame": self.frame.to_dict()})
        _dump(folder / "bundle.json", self.meta)
        if isinstance(self.booster, BlendedModel):
            _dump(folder / "blend.json", self.booster.to_dict())
        if self.test_predictions is not None:
            self.test_predictions.to_csv(folder / "test_predictions.csv", index=False)
        if self.reason_references is not None:
            _dump(folder / "reasons.json", self.reason_references)
        return folder

    @classmethod
    def load(cls, folder: Path | str) -> ModelBundle:
        folder = Path(folder)
        missing = [f for f in FILES if not (folder / f).exists()]
        if missing:
            raise ModelBundleError(f"{folder}: not a model bundle (missing {', '.join(missing)})")
        try:
            booster = lgb.Booster(model_str=(folder / "model.txt").read_text(encoding="utf-8"))
            feats = json.loads((folder / "features.json").read_text(encoding="utf-8"))
            catalogue = Catalogue.from_json(json.dumps(feats["catalogue"]))
            if (folder / "blend.json").exists():
                booster = BlendedModel.from_dict(booster, _read(folder / "blend.json"))
            bundle = cls(booster=booster,
                         calibrator=load_calibrator(_read(folder / "calibrator.json")),
                         health_map=HealthMap.from_dict(_read(folder / "health_map.json")),
                         catalogue=catalogue, frame=FeatureFrame.from_dict(feats["frame"]),
                         meta=_read(folder / "bundle.json"),
                         reason_references=_read(folder / "reasons.json") if (folder / "reasons.json").exists()
                         else None)
        except (ValueError, KeyError, lgb.basic.LightGBMError) as exc:
            raise ModelBundleError(f"{folder}: unreadable model bundle ({exc})") from exc
        if booster.feature_name() != bundle.frame.names:
            raise ModelBundleError(f"{folder}: model.txt and features.json disagree on the feature order")
        preds = folder / "test_predictions.csv"
        if preds.exists():
            bundle.test_predictions = pd.read_csv(preds, parse_dates=["as_of"], dtype={"account_id": str})
        return bundle


def _dump(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
