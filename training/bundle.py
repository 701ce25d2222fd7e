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
  the pointer to the training snapshots (store, table, as-of range), and per feature its
  share of training rows with a value and its mean absolute SHAP contribution
  (``training.feature_facts``: what ``churnwatch score`` checks its rows against);
* ``test_predictions.csv`` — the test block's out-of-sample predictions (monitoring's
  reference);
* ``reasons.json`` — what reasons are worded against (``training.reasons.fit_references``;
  optional: older bundles word reasons without references);
* ``checksums.json`` — size and SHA-256 of every other file, written last (``training.manifest``).

``ModelBundle.load`` verifies the files against ``checksums.json`` before parsing any of them,
then reads them with json, pandas and LightGBM's text parser only (``training.bundle_read``,
each file's shape checked): nothing is unpickled and no model code is run. Any problem is a
``ModelBundleError`` naming the file. Bundles without ``checksums.json`` (saved before it
existed) load with a warning.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

from core.files import atomic_path, atomic_write_text
from core.store import SNAPSHOTS
from features.spec import Catalogue
from training.blend import BlendedModel
from training.bundle_read import (
    PARSE_ERRORS,
    json_object,
    parsed,
    read_blend,
    read_booster,
    read_calibrator,
    read_features,
    read_health_map,
    read_predictions,
)
from training.calibration import IsotonicCalibrator
from training.errors import ModelBundleError
from training.health import HealthMap
from training.manifest import MANIFEST, BundleFiles, write_manifest
from training.model import FeatureFrame, FeatureRows, booster_names
from training.reasons import contributions, reason_builder, threads_for
from training.score_calibration import ScoreCalibrator

FILES = ("model.txt", "calibrator.json", "health_map.json", "features.json", "bundle.json")
OPTIONAL_FILES = ("blend.json", "reasons.json", "test_predictions.csv")


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
        report = self.meta.get("table_report") if self.meta.get("kind") == "table" else None
        if report and not self.catalogue.ignored:  # a table model saved before the catalogue said them
            from training.table_columns import table_ignored

            self.catalogue = dataclasses.replace(self.catalogue, ignored=table_ignored(report))
        # the catalogue stays whole (requests may carry every feature); reasons follow the model's
        # columns, which leave out features that were null or constant in the training rows
        kept = set(self.frame.names)
        model_catalogue = dataclasses.replace(
            self.catalogue, features=tuple(f for f in self.catalogue.features if f.name in kept))
        self.reasons = reason_builder(model_catalogue, self.reason_references)

    # -- scoring ---------------------------------------------------------------------
    def score_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(churn_probability, health_score, tier)`` arrays of the model matrix ``X`` (no frame:
        the service's path, where a frame costs more than scoring one row)."""
        raw = np.asarray(self.booster.predict(X, raw_score=True, num_threads=threads_for(len(X))))
        p = self.calibrator.predict(raw if self.calibrator.input_scale == "log_odds" else expit(raw))
        health = self.health_map.health_score(p)
        return p, health, self.health_map.tier(health)

    def _scored(self, X: np.ndarray, index: pd.Index) -> pd.DataFrame:
        p, health, tier = self.score_matrix(X)
        return pd.DataFrame({"churn_probability": p, "health_score": health, "tier": tier}, index=index)

    def predict(self, rows: pd.DataFrame | FeatureRows) -> pd.DataFrame:
        """churn_probability (calibrated), health_score and tier for each row."""
        return self._scored(self.frame.matrix(self.frame.respelled(rows)), rows.index)

    def score(self, rows: pd.DataFrame | FeatureRows, lang: str = "en") -> tuple[pd.DataFrame, list[dict]]:
        """``predict`` and ``explain`` from one input matrix (serving's path)."""
        scored, explained = self.score_in(rows, (lang,))
        return scored, explained[lang]

    def score_in(self, rows: pd.DataFrame | FeatureRows,
                 langs: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
        """``predict``, and ``explain`` in each of ``langs``, from one matrix and one TreeSHAP
        pass (the contributions, most of the cost, do not depend on the language)."""
        rows = self.frame.respelled(rows)  # a category in another case than training saw it
        X = self.frame.matrix(rows)
        contrib = contributions(self.booster, X)
        return self._scored(X, rows.index), {lang: self.reasons.explain(contrib, rows, lang=lang) for lang in langs}

    def explain(self, rows: pd.DataFrame, lang: str = "en") -> list[dict]:
        rows = self.frame.respelled(rows)
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
        """Write the bundle's files into ``folder``, each whole or not at all, then the manifest
        (``checksums.json``: size and SHA-256 of each file) last.

        Raises:
            StorageError: a file cannot be written (disk full, read-only...), naming it.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        texts = {"model.txt": self.booster.model_to_string(),
                 "calibrator.json": _json(self.calibrator.to_dict()),
                 "health_map.json": _json(self.health_map.to_dict()),
                 "features.json": _json({"catalogue": json.loads(self.catalogue.to_json()),
                                         "frame": self.frame.to_dict()}),
                 "bundle.json": _json(self.meta)}
        if isinstance(self.booster, BlendedModel):
            texts["blend.json"] = _json(self.booster.to_dict())
        if self.reason_references is not None:
            texts["reasons.json"] = _json(self.reason_references)
        (folder / MANIFEST).unlink(missing_ok=True)  # a folder being rewritten is not a verified bundle
        for name, text in texts.items():
            atomic_write_text(folder / name, text)
        written = list(texts)
        if self.test_predictions is not None:
            with atomic_path(folder / "test_predictions.csv", suffix=".csv") as tmp:
                self.test_predictions.to_csv(tmp, index=False)
            written.append("test_predictions.csv")
        write_manifest(folder, written)
        _share(folder, [*written, MANIFEST])
        return folder

    @classmethod
    def load(cls, folder: Path | str, origin: str | None = None) -> ModelBundle:
        """Read a bundle folder: its manifest is checked first (every listed file present, of its
        size and checksum), then each file is parsed and checked for shape.

        Bundles saved before manifests existed load with a warning (``training.manifest``).

        Args:
            folder: the bundle folder.
            origin: what error messages call the bundle (default: the folder), e.g. the
                registry source a temporary copy was downloaded from.

        Raises:
            ModelBundleError: naming the file and what is wrong with it.
        """
        files = BundleFiles.open(Path(folder), FILES, OPTIONAL_FILES, origin)
        booster = parsed(files, "model.txt", read_booster)
        catalogue, frame = parsed(files, "features.json", read_features)
        if files.exists("blend.json"):
            booster = parsed(files, "blend.json", read_blend(booster))
        parts = {"calibrator": parsed(files, "calibrator.json", read_calibrator),
                 "health_map": parsed(files, "health_map.json", read_health_map),
                 "meta": parsed(files, "bundle.json", lambda b: json_object(b, "training metadata")),
                 "reason_references": parsed(files, "reasons.json", lambda b: json_object(b, "reason references"))
                 if files.exists("reasons.json") else None}
        try:  # the reason builder reads the catalogue and the references together
            bundle = cls(booster=booster, catalogue=catalogue, frame=frame, **parts)
        except PARSE_ERRORS as exc:
            raise ModelBundleError(f"{files.where('reasons.json')} does not fit features.json ({exc})") from exc
        if booster.feature_name() != booster_names(bundle.frame.names):
            raise ModelBundleError(f"{files.where('model.txt')} and features.json disagree on the feature order")
        if files.exists("test_predictions.csv"):
            bundle.test_predictions = parsed(files, "test_predictions.csv", read_predictions)
        return bundle


def _share(folder: Path, names: list[str]) -> None:
    """Give the files the permissions a plain write would (atomic writes create them owner-only)."""
    mask = os.umask(0)
    os.umask(mask)
    for name in names:
        os.chmod(folder / name, 0o666 & ~mask)


def _json(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)
