"""The home folder (DESIGN §8): store, MLflow store, reports, config.

A home is relocatable: what churnwatch records about files inside it (the data source, the
bundle's pointer to its training store) is relative to the home, and is resolved against the
home a command runs in. MLflow records absolute artefact URIs in its sqlite store; those are
moved to the current home when it is opened (``training.registry.setup``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.settings import resolve_home

MLFLOW_DB = "mlflow.db"
SQLITE_PREFIX = "sqlite:///"


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
        return self.root / MLFLOW_DB

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI`` if set, else the sqlite file in the home folder."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"{SQLITE_PREFIX}{self.mlflow_db}"

    def relative(self, path: str | os.PathLike[str]) -> str:
        """How a path is recorded: relative to the home (POSIX) when inside it, else absolute."""
        return relative_to(path, self.root)

    def absolute(self, recorded: str) -> Path:
        """The inverse of ``relative``: a relative path is taken inside this home."""
        return absolute_in(recorded, self.root)


def relative_to(path: str | os.PathLike[str], root: Path) -> str:
    """``path`` relative to ``root`` (POSIX separators) when inside it, else absolute."""
    full = Path(path).expanduser().resolve()
    try:
        return full.relative_to(Path(root).resolve()).as_posix() or "."
    except ValueError:
        return str(full)


def absolute_in(recorded: str, root: Path) -> Path:
    """A recorded path: absolute as it is, relative taken inside ``root``."""
    path = Path(recorded)
    return path if path.is_absolute() else (Path(root) / path).resolve()


def home_of_tracking(tracking_uri: str) -> Path | None:
    """The home folder whose own MLflow sqlite file ``tracking_uri`` names, or None (a
    tracking server, or a sqlite file shared by several homes)."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    db = Path(tracking_uri[len(SQLITE_PREFIX):])
    return db.parent.resolve() if db.name == MLFLOW_DB else None
