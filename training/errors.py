"""Errors of the training stage; they live in :mod:`core.errors` and are re-exported here."""

from __future__ import annotations

from core.errors import ModelBundleError, RegistryError, TrainingError

__all__ = ["ModelBundleError", "RegistryError", "TrainingError"]
