"""The home folder (DESIGN §8): store, MLflow store, reports, config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.settings import resolve_home


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Home:
        return cls(resolve_home(home))

    @property
    def store(self) -> Path:
        return self.root / "store.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def run_summary(self) -> Path:
        return self.reports / "run-summary.json"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI`` if set, else the sqlite file in the home folder."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db}"
