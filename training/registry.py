"""MLflow: tracking runs, the model registry, the ``champion`` alias and promotion.

The bundle is logged as plain artefacts and registered as a model version whose source
is the run's ``bundle`` folder; loading downloads those files into a temporary folder, reads
them with ``ModelBundle.load`` (checksums first; no MLflow flavour, no pickle) and removes the
folder: no download outlives the command.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from core.home import Home, absolute_in, home_of_tracking, relative_to
from training.bundle import ModelBundle
from training.errors import ModelBundleError, RegistryError

log = logging.getLogger(__name__)

MODEL_NAME = "churnwatch"
EXPERIMENT = "churnwatch"
CHAMPION = "champion"
# Where MLflow's sqlite store keeps artefact URIs (tables of MLflow 2 and 3; absent ones are skipped).
ARTIFACT_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"), ("model_versions", "source"),
                    ("model_versions", "storage_location"), ("logged_models", "artifact_location"))


def use_tracking_uri(tracking_uri: str) -> None:
    """``mlflow.set_tracking_uri`` without its side effect on the environment.

    MLflow also writes the URI into ``MLFLOW_TRACKING_URI`` (for subprocesses), and
    ``Home.tracking_uri`` reads that variable as the user's choice: a process that used one
    home's store would then send every other home to it. The variable is put back as the
    user left it; we always pass the URI explicitly.
    """
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def setup(tracking_uri: str, artifact_root: Path) -> MlflowClient:
    """Point MLflow at the store; create the experiment with its artefact root if needed, or
    move its recorded artefact URIs to ``artifact_root`` when the home was copied or moved."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    use_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    root_uri = artifact_root.resolve().as_uri()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        client.create_experiment(EXPERIMENT, artifact_location=root_uri)
    elif experiment.artifact_location != root_uri and _own_store(tracking_uri, artifact_root):
        rebase_artifacts(tracking_uri, experiment.artifact_location, root_uri)
    if not os.environ.get("MLFLOW_RUN_ID"):  # under `mlflow run`, log into the run it started
        mlflow.set_experiment(EXPERIMENT)
    return client


def _own_store(tracking_uri: str, artifact_root: Path) -> bool:
    """Whether the tracking store is the sqlite file of the home that holds ``artifact_root``."""
    home = home_of_tracking(tracking_uri)
    return home is not None and home == artifact_root.resolve().parent


def rebase_artifacts(tracking_uri: str, old_root: str, new_root: str) -> int:
    """Rewrite every artefact URI under ``old_root`` to lie under ``new_root`` in a sqlite
    tracking store (MLflow cannot change an experiment's artefact location); returns the rows.

    MLflow stores absolute ``file://`` URIs; a home that was copied elsewhere would otherwise
    read its models from, and log new runs into, the folder it was copied from.
    """
    db = tracking_uri[len("sqlite:///"):]
    changed = 0
    with sqlite3.connect(db) as con:
        for table, column in ARTIFACT_COLUMNS:
            if column not in {row[1] for row in con.execute(f"PRAGMA table_info({table})")}:
                continue
            cur = con.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608 - fixed names
                              f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                              (new_root, len(old_root) + 1, old_root, len(old_root) + 1, old_root + "/"))
            changed += cur.rowcount
    log.info("home moved: %d artefact URIs rebased from %s to %s", changed, old_root, new_root)
    return changed


def relocatable_pointer(meta: dict, home: Path) -> dict:
    """``meta`` with the training-store pointer relative to ``home`` when the store is inside it."""
    pointer = meta.get("snapshots")
    if not pointer or not pointer.get("store"):
        return meta
    return {**meta, "snapshots": {**pointer, "store": relative_to(pointer["store"], home)}}


def _anchor_pointer(bundle: ModelBundle, client: MlflowClient) -> ModelBundle:
    """Resolve a home-relative training-store pointer against the home of ``client``'s store."""
    pointer = bundle.meta.get("snapshots")
    home = home_of_tracking(client.tracking_uri)
    if pointer and pointer.get("store") and home is not None:
        pointer["store"] = str(absolute_in(pointer["store"], home))
    return bundle


def register(client: MlflowClient, run_id: str, description: str = "", tags: dict[str, str] | None = None) -> int:
    """Register the run's ``bundle`` artefact folder as a new version (with ``tags``, e.g. the
    leakage guard's); returns its number."""
    try:
        client.get_registered_model(MODEL_NAME)
    except MlflowException:
        client.create_registered_model(MODEL_NAME, description="churnwatch model bundles")
    source = f"{client.get_run(run_id).info.artifact_uri}/bundle"
    mv = client.create_model_version(MODEL_NAME, source=source, run_id=run_id, description=description,
                                     tags=tags or None)
    return int(mv.version)


def champion_version(client: MlflowClient) -> int | None:
    try:
        return int(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None


def latest_version(client: MlflowClient) -> int:
    try:
        versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    except MlflowException:
        versions = []
    if not versions:
        raise RegistryError("no registered model versions: run `churnwatch train` first")
    return max(int(v.version) for v in versions)


def load_version(client: MlflowClient, version: int) -> ModelBundle:
    """Download version ``version``'s files into a temporary folder, load them, remove the folder.

    The loaded bundle holds everything in memory, so no copy outlives the call.

    Raises:
        RegistryError: no such version.
        ModelBundleError: its files cannot be downloaded, or are missing, damaged or altered
            (the message names the file at its registry source).
    """
    try:
        mv = client.get_model_version(MODEL_NAME, str(version))
    except MlflowException as exc:
        raise RegistryError(f"model version {version} of '{MODEL_NAME}' does not exist") from exc
    with tempfile.TemporaryDirectory(prefix=f"churnwatch-v{version}-") as dst:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=dst)
            bundle = _anchor_pointer(ModelBundle.load(path, origin=mv.source), client)
        except (MlflowException, OSError) as exc:
            raise ModelBundleError(f"model version {version}: its files at {mv.source} cannot be downloaded "
                                   f"({_first_line(exc)})") from exc
        except ModelBundleError as exc:
            raise ModelBundleError(f"model version {version}: {exc}") from exc
    bundle.meta["model_version"] = version
    return bundle


def load_model(client: MlflowClient, uri: str | None = None) -> ModelBundle:
    """A bundle from a folder, a ``models:/churnwatch@alias`` or ``models:/churnwatch/N`` URI,
    or (``uri`` None) the champion.

    Raises:
        RegistryError: an unknown alias or version, a malformed URI, or no champion.
        ModelBundleError: the folder does not exist or its files are missing or damaged.
    """
    if uri and not uri.startswith("models:/"):
        # a path: never fall back to another model when it does not exist
        bundle = _anchor_pointer(ModelBundle.load(uri), client)
        version = _version_of_folder(client, Path(uri))
        if version is not None:  # a registered version's own folder: scored under its number, not the path
            bundle.meta["model_version"] = version
        return bundle
    version = resolve_version(client, uri)
    return load_version(client, version)


def _version_of_folder(client: MlflowClient, folder: Path) -> int | None:
    """The registered version whose run's artefacts hold ``folder`` (``mlartifacts/<experiment>/<run id>/artifacts/
    bundle`` of the home's store), or None: a probe's ``score --model .../artifacts/bundle`` stored and published
    the path as the model version."""
    home = home_of_tracking(client.tracking_uri)
    if home is None or not folder.resolve().is_relative_to(Home(home).mlflow_artifacts.resolve()):
        return None  # a folder elsewhere: the registry is not asked (nor an unreachable server waited for)
    parts = set(folder.resolve().parts)
    try:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    except MlflowException:
        return None
    found = [int(v.version) for v in versions if v.run_id and v.run_id in parts]
    return max(found) if found else None


def resolve_version(client: MlflowClient, uri: str | None = None) -> int:
    """The version number a ``models:/`` URI (or, for None, the champion alias) names now.

    Raises:
        RegistryError: a malformed URI, another model's name, an unknown alias, or no champion.
    """
    if not uri:
        version = champion_version(client)
        if version is None:
            raise RegistryError("no champion model: run `churnwatch train` and `churnwatch promote`")
        return version
    ref = uri[len("models:/"):]
    name, sep, alias = ref.partition("@")
    if not sep:
        name, _, alias = ref.partition("/")
    if name != MODEL_NAME or not alias:
        raise RegistryError(f"{uri}: expected models:/{MODEL_NAME}@ALIAS or models:/{MODEL_NAME}/VERSION")
    if not sep:
        if not alias.isdigit():
            raise RegistryError(f"{uri}: the version must be a whole number")
        return int(alias)
    try:
        return int(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException as exc:
        raise RegistryError(f"{uri}: no such alias") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    candidate: dict
    champion: dict | None
    blocked: bool = False  # refused before any comparison (the leakage guard): `promote` exits 3
    unmet: list[str] = field(default_factory=list)  # what it did not meet at training (``run_text.unmet_bars``)


def decide(candidate: dict, champion: dict | None, min_pr_auc_gain: float = 0.005,
           max_brier_loss: float = 0.01) -> PromotionDecision:
    """DESIGN §4: promote when PR-AUC rises by >= 0.005 and Brier is not worse by > 1%.

    ``candidate`` and ``champion`` are metrics of both models on the candidate's test block.
    """
    if champion is None:
        return PromotionDecision(True, "no champion yet: the first model becomes champion", candidate, None)
    gain = candidate["pr_auc"] - champion["pr_auc"]
    brier_limit = champion["brier"] * (1 + max_brier_loss)
    if gain < min_pr_auc_gain:
        return PromotionDecision(False, f"PR-AUC {candidate['pr_auc']:.4f} vs champion {champion['pr_auc']:.4f}: "
                                        f"gain {gain:+.4f} < {min_pr_auc_gain}", candidate, champion)
    if candidate["brier"] > brier_limit:
        return PromotionDecision(False, f"Brier {candidate['brier']:.5f} worse than champion "
                                        f"{champion['brier']:.5f} by more than {max_brier_loss:.0%}",
                                 candidate, champion)
    return PromotionDecision(True, f"PR-AUC {candidate['pr_auc']:.4f} vs {champion['pr_auc']:.4f} (gain "
                                   f"{gain:+.4f}); Brier {candidate['brier']:.5f} vs {champion['brier']:.5f}",
                             candidate, champion)


def set_champion(client: MlflowClient, version: int, reason: str) -> None:
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    client.set_model_version_tag(MODEL_NAME, str(version), "promotion_reason", reason)
