"""churnwatch's own exception types. The CLI prints them in one or two lines, exit 2."""

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
