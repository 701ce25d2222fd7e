"""Errors of the training stage (the CLI prints them in one or two lines, exit 2)."""

from __future__ import annotations

from features.errors import ChurnwatchError


class TrainingError(ChurnwatchError):
    """The data cannot train a model (no positives, too few rows, a feature missing...)."""


class ModelBundleError(ChurnwatchError):
    """A model bundle is missing, incomplete or inconsistent; the message names the path."""


class RegistryError(ChurnwatchError):
    """The MLflow registry does not hold what was asked for (no champion, no version N...)."""
