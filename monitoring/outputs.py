"""Where a monitoring run's results go: an HTML report with a summary banner, a JSON
summary, and an MLflow run (experiment ``monitoring.experiment``) holding both."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from core.files import atomic_path, atomic_write_text
from monitoring.safe_html import insert_after_body, safe_report_html
from training.registry import use_tracking_uri

BANNER_ID = "churnwatch-summary"


def banner(title: str, alarm: bool, lines: list[str], table: list[list[str]] | None = None) -> str:
    """A small self-contained HTML block (inline styles) put above Evidently's report."""
    colour, verdict = ("#b3261e", "ALARM") if alarm else ("#1e6b35", "OK")
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    rows = ""
    if table:
        head, *body = table
        rows = ("<table style='border-collapse:collapse;margin-top:8px'>"
                + "<tr>" + "".join(f"<th style='text-align:left;padding:2px 12px 2px 0'>{html.escape(c)}</th>"
                                   for c in head) + "</tr>"
                + "".join("<tr>" + "".join(f"<td style='padding:2px 12px 2px 0'>{html.escape(c)}</td>" for c in r)
                          + "</tr>" for r in body) + "</table>")
    return (f"<div id='{BANNER_ID}' style='font-family:Roboto,Helvetica,Arial,sans-serif;margin:16px 24px;"
            f"padding:12px 16px;border-left:6px solid {colour};background:#fafafa'>"
            f"<div style='font-size:20px;font-weight:600'>{html.escape(title)} "
            f"<span style='color:{colour}'>{verdict}</span></div>"
            f"<ul style='margin:6px 0 0 0;padding-left:18px'>{items}</ul>{rows}</div>")


def write_outputs(out: Path, stem: str, snapshot, summary: dict, header: str) -> list[Path]:
    """``<out>/<stem>.html`` (Evidently's report with its data block made script-safe by
    ``monitoring.safe_html``, ``header`` first; none without a ``snapshot``) and
    ``<out>/<stem>.json``; returns the files written."""
    page, data = out / f"{stem}.html", out / f"{stem}.json"
    files = []
    if snapshot is not None:
        text = safe_report_html(snapshot.get_html_str(as_iframe=False))
        atomic_write_text(page, insert_after_body(text, header))
        files.append(page)
    atomic_write_text(data, json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return [*files, data]


def publish(out: Path, stem: str, snapshot, summary: dict, header: str,
            log: Callable[[list[Path]], str]) -> tuple[dict[str, str], str]:
    """Write the outputs into a temporary folder, ``log`` them (MLflow; returns the run id),
    and only then move them into ``out``: a failed MLflow run leaves no partial output.

    Returns:
        ``({"html"?: path, "json": path}, run_id)``.
    """
    with tempfile.TemporaryDirectory(prefix="churnwatch-monitoring-") as tmp:
        files = write_outputs(Path(tmp), stem, snapshot, summary, header)
        run_id = log(files)
        moved = {f.suffix.lstrip("."): str(_copy_whole(f, out / f.name)) for f in files}
    stale = out / f"{stem}.html"
    if "html" not in moved and stale.exists():
        stale.unlink()  # an earlier run's report would contradict this summary
    return moved, run_id


def _copy_whole(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` whole or not at all (the temporary folder may be on another disk)."""
    with atomic_path(target) as tmp:  # an OSError inside becomes a StorageError naming ``target``
        shutil.copyfile(source, tmp)
    return target


def log_monitoring_run(tracking_uri: str, artifact_root: Path, experiment: str, kind: str, model_version: str,
                       metrics: dict[str, float], files: list[Path], alarm: bool,
                       tags: dict[str, str] | None = None) -> str:
    """One MLflow run tagged ``kind`` and ``model_version`` with ``metrics`` and ``files``
    (under ``monitoring/``); under ``mlflow run`` it logs into the run the entry point
    started. Returns the run id."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    use_tracking_uri(tracking_uri)
    kwargs: dict = {}
    if not os.environ.get("MLFLOW_RUN_ID"):
        client = MlflowClient(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            root = artifact_root / experiment
            root.mkdir(parents=True, exist_ok=True)
            exp_id = client.create_experiment(experiment, artifact_location=root.resolve().as_uri())
        else:
            exp_id = found.experiment_id
        kwargs = {"experiment_id": exp_id, "run_name": f"{kind}-{dt.datetime.now():%Y%m%d-%H%M%S}"}
    with mlflow.start_run(**kwargs) as run:
        mlflow.set_tags({"kind": kind, "model_version": str(model_version), "alarm": str(alarm).lower(),
                         "churnwatch.kind": f"monitoring-{kind}", **(tags or {})})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        for f in files:
            mlflow.log_artifact(str(f), artifact_path="monitoring")
    return run.info.run_id
