"""churnwatch's own exception types, every stage's in one place. The CLI prints them in one or two lines, exit 2."""

from __future__ import annotations


class ChurnwatchError(Exception):
    """Base of every error churnwatch raises on purpose (bad input, bad config)."""


class ConfigError(ChurnwatchError):
    """The configuration file or a setting is wrong."""


class DataContractError(ChurnwatchError):
    """Input data breaks the contract; the message names table, column and a row."""

    def __init__(self, message: str, *, table: str | None = None, column: str | None = None,
                 example: dict | None = None) -> None:
        self.table = table
        self.column = column
        self.example = example
        parts = [message]
        if example is not None:
            parts.append(f"example row: {example}")
        super().__init__("\n  ".join(parts))


class StoreError(ChurnwatchError):
    """The snapshot store is missing, empty or does not hold what was asked for."""


class StorageError(ChurnwatchError):
    """A file or store cannot be written or opened: disk full, read-only, no permission, locked.

    The message names the path and the cause in one line.
    """


class TrainingError(ChurnwatchError):
    """The data cannot train a model (no positives, too few rows, a feature missing...)."""


class ModelBundleError(ChurnwatchError):
    """A model bundle is missing, incomplete or inconsistent; the message names the path."""


class RegistryError(ChurnwatchError):
    """The MLflow registry does not hold what was asked for (no champion, no version N...)."""


class MonitoringError(ChurnwatchError):
    """Monitoring cannot run on this input: no champion, no scores, features missing, empty data."""
