"""The churn review's stored results, read back by the workspace's review page (no page
recomputes them): what ``churnwatch diagnose`` writes (``insights.diagnosis.write_diagnosis``
and ``insights.closed_loop.write_closed_loop``, JSON files in ``<home>/reports/diagnosis``) and
the findings' before/after measurements of the last ``churnwatch review``
(``save_measurements``: ``<home>/reports/review-measurements.json``).

* ``read_diagnosis(folder)``: the stored diagnosis as plain data (``StoredDiagnosis``), or
  ``None`` when ``folder`` has no ``diagnosis.json``; a table not written (no interviews, no
  interventions) is an empty list.
* ``save_measurements(review, folder)`` / ``read_measurements(folder)``: finding id -> its
  measurement, with the metric and change date it was measured for (a finding changed since is
  "not measured yet" until the next review).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ChurnwatchError
from core.files import atomic_write_text

MEASUREMENTS_FILE = "review-measurements.json"
#: file stem -> attribute of ``StoredDiagnosis``
TABLES = {"churn-by-segment": "segments", "exit-reasons": "reasons", "exit-avoidable": "avoidable",
          "survival-size": "survival_size", "survival-size-summary": "survival_size_summary",
          "survival-cohort-summary": "survival_cohort_summary"}


class StoredResultError(ChurnwatchError):
    """A stored result file cannot be read (named)."""


@dataclass
class StoredDiagnosis:
    """The JSON files of one ``churnwatch diagnose`` run."""

    folder: Path
    written_at: dt.datetime
    definitions: dict[str, Any]
    segments: list[dict] = field(default_factory=list)
    reasons: list[dict] = field(default_factory=list)
    avoidable: list[dict] = field(default_factory=list)
    survival_size: list[dict] = field(default_factory=list)
    survival_size_summary: list[dict] = field(default_factory=list)
    survival_cohort_summary: list[dict] = field(default_factory=list)
    loop_definitions: dict[str, Any] = field(default_factory=dict)
    loop_rows: list[dict] = field(default_factory=list)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoredResultError(f"cannot read the stored result {path}: {exc}") from exc


def diagnosis_stamp(folder: Path) -> tuple[int, ...] | None:
    """What changes when ``churnwatch diagnose`` writes ``folder`` again (modification times), or
    ``None`` when nothing is stored there."""
    folder = Path(folder)
    marker = folder / "diagnosis.json"
    if not marker.exists():
        return None
    names = ["diagnosis.json", "closed-loop.json", *(f"{stem}.json" for stem in TABLES)]
    return tuple((folder / n).stat().st_mtime_ns if (folder / n).exists() else 0 for n in names)


def read_diagnosis(folder: Path) -> StoredDiagnosis | None:
    """The diagnosis stored in ``folder`` (``churnwatch diagnose``), or ``None`` when there is none."""
    folder = Path(folder)
    marker = folder / "diagnosis.json"
    if not marker.exists():
        return None
    out = StoredDiagnosis(folder=folder, definitions=_load(marker),
                          written_at=dt.datetime.fromtimestamp(marker.stat().st_mtime, dt.UTC))
    for stem, attr in TABLES.items():
        path = folder / f"{stem}.json"
        if path.exists():
            setattr(out, attr, _load(path))
    loop = folder / "closed-loop.json"
    if loop.exists():
        data = _load(loop)
        out.loop_definitions, out.loop_rows = data.get("definitions", {}), data.get("rows", [])
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def save_measurements(review, folder: Path) -> Path:
    """The findings' measurements of ``review`` (``insights.review.Review``) as
    ``folder/review-measurements.json``; returns the path."""
    findings = {}
    for f in review.findings:
        m = f.get("measurement")
        if m is not None:
            findings[str(f["id"])] = {k: _plain(v) for k, v in asdict(m).items()}
    data = {"period": {"start": review.window.start.isoformat(), "end": review.window.end.isoformat()},
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "findings": findings}
    path = Path(folder) / MEASUREMENTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False))
    return path


def read_measurements(folder: Path) -> dict[str, Any]:
    """``{"period": ..., "measured_at": ..., "findings": {id: measurement}}``; empty findings when
    no review was stored yet."""
    path = Path(folder) / MEASUREMENTS_FILE
    if not path.exists():
        return {"period": None, "measured_at": None, "findings": {}}
    return _load(path)


def measurement_of(measurements: dict[str, Any], finding: dict[str, Any]) -> dict[str, Any] | None:
    """The stored measurement of ``finding`` when it was measured for its current metric and
    change date, else ``None``."""
    m = measurements.get("findings", {}).get(str(finding["id"]))
    if m is None or m.get("metric") != finding.get("metric") or m.get("change_date") != finding.get("change_date"):
        return None
    return m
