"""Model files are checked before they are used (issue 13, item 3).

A bundle carries ``checksums.json`` (size and SHA-256 of each file) written at save time and
verified at load, before anything is parsed; each file is then parsed defensively. A truncated,
altered, null, empty or missing file is a ``ModelBundleError`` naming the file, and ``score``,
``evaluate`` and ``report --model`` exit 2 with it (never an abort inside LightGBM). Registry
downloads go to a temporary folder that is removed when loading ends.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest

from core.errors import ModelBundleError
from core.home import Home
from core.store import HISTORY, connect
from training.bundle import ModelBundle
from training.manifest import MANIFEST, digest
from training.registry import load_version, register, set_champion, setup
from training.train import log_run, params_of

ROOT = Path(__file__).resolve().parents[2]


# -- corruptions: each takes a saved bundle folder and damages it in place -----------------------
def truncate_model(folder: Path) -> None:
    data = (folder / "model.txt").read_bytes()
    (folder / "model.txt").write_bytes(data[: len(data) // 2])


def alter_model_byte(folder: Path) -> None:
    """One digit of a leaf value changed: same size, still parseable, different model."""
    data = bytearray((folder / "model.txt").read_bytes())
    at = data.index(b"leaf_value=") + len(b"leaf_value=") + 3
    data[at] = ord("7") if data[at] != ord("7") else ord("3")
    (folder / "model.txt").write_bytes(bytes(data))


def null_calibrator(folder: Path) -> None:
    (folder / "calibrator.json").write_text("null")


def empty_predictions(folder: Path) -> None:
    (folder / "test_predictions.csv").write_text("")


def remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def rewrite_manifest(folder: Path) -> None:
    """Make the manifest agree with the damaged files: what a bad save would have produced."""
    manifest = json.loads((folder / MANIFEST).read_text())
    for name in list(manifest["files"]):
        if not (folder / name).exists():
            del manifest["files"][name]
            continue
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": digest(data)}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def resealed(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    def both(folder: Path) -> None:
        damage(folder)
        rewrite_manifest(folder)
    return both


# (id, damage, file the error must name, words the error must contain)
VARIANTS = [
    ("truncated-model", truncate_model, "model.txt", "truncated"),
    ("altered-byte", alter_model_byte, "model.txt", "checksum mismatch"),
    ("null-calibrator", null_calibrator, "calibrator.json", "bytes where"),
    ("null-calibrator-resealed", resealed(null_calibrator), "calibrator.json", "found null"),
    ("empty-predictions", empty_predictions, "test_predictions.csv", "bytes where"),
    ("empty-predictions-resealed", resealed(empty_predictions), "test_predictions.csv", "empty file"),
    ("missing-model", remove("model.txt"), "model.txt", "missing"),
    ("missing-features", remove("features.json"), "features.json", "missing"),
    ("missing-features-resealed", resealed(remove("features.json")), "features.json", "not listed"),
    ("garbled-manifest", lambda f: (f / MANIFEST).write_text("{"), MANIFEST, "unreadable"),
]
CLI_VARIANTS = ["truncated-model", "altered-byte", "null-calibrator-resealed", "empty-predictions-resealed",
                "missing-model"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, trained_demo):
    """(home, data folder, saved good bundle folder): a tiny home with features, one trained version as
    champion (the session's shared 150 x 12 build of tests/conftest.py, copied here; its model logged)."""
    tmp = tmp_path_factory.mktemp("integrity")
    home = Home.resolve(tmp / "home")
    demo = trained_demo(150, 12, 3)
    demo.copy_to(tmp / "data", home.store)
    result = demo.result()
    client = setup(home.tracking_uri, home.mlflow_artifacts)
    log_run(result, home.tracking_uri, home.mlflow_artifacts, params_of(result))
    set_champion(client, 1, "test setup")
    return home, tmp / "data", result.bundle.save(tmp / "good")


def damaged(good: Path, tmp_path: Path, variant: str) -> Path:
    _, damage, _, _ = next(v for v in VARIANTS if v[0] == variant)
    folder = tmp_path / variant
    shutil.copytree(good, folder)
    damage(folder)
    return folder


def register_folder(home: Home, folder: Path) -> int:
    """Register a bundle folder as a new model version (as `train` would, without training)."""
    client = setup(home.tracking_uri, home.mlflow_artifacts)
    with mlflow.start_run(run_name=f"damaged-{folder.name}") as run:
        mlflow.log_artifacts(str(folder), artifact_path="bundle")
    return register(client, run.info.run_id)


def test_save_writes_a_manifest_of_every_file(trained):
    _, _, good = trained
    manifest = json.loads((good / MANIFEST).read_text())
    files = sorted(p.name for p in good.iterdir() if p.name != MANIFEST)
    assert sorted(manifest["files"]) == files and "model.txt" in files and "test_predictions.csv" in files
    for name, entry in manifest["files"].items():
        data = (good / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": digest(data)}
    assert not [p for p in good.iterdir() if p.name.startswith(".")], "no temporary file left by atomic writes"
    assert (good / "model.txt").stat().st_mode & 0o044, "bundle files are readable like plain writes"


@pytest.mark.parametrize("variant", [v[0] for v in VARIANTS])
def test_a_damaged_bundle_is_an_error_naming_the_file(trained, tmp_path, variant):
    _, _, good = trained
    _, _, name, words = next(v for v in VARIANTS if v[0] == variant)
    folder = damaged(good, tmp_path, variant)
    with pytest.raises(ModelBundleError) as caught:
        ModelBundle.load(folder)
    message = str(caught.value)
    assert f"{folder}/{name}" in message and words in message, message
    assert "\n" not in message


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(ModelBundleError, match=f"{tmp_path / 'nope'} does not exist"):
        ModelBundle.load(tmp_path / "nope")


def test_a_bundle_without_manifest_loads_with_a_warning_and_is_still_checked(trained, tmp_path, caplog):
    _, _, good = trained
    old = shutil.copytree(good, tmp_path / "old")
    (old / MANIFEST).unlink()
    with caplog.at_level(logging.WARNING, logger="training.manifest"):
        bundle = ModelBundle.load(old)
    assert "no checksums.json" in caplog.text
    assert bundle.frame.names == ModelBundle.load(good).frame.names
    truncate_model(old)  # unverifiable, but LightGBM never sees a cut-off model text
    with pytest.raises(ModelBundleError, match=r"old/model.txt: incomplete LightGBM model.*truncated"):
        ModelBundle.load(old)
    null_calibrator(old)
    (old / "model.txt").write_bytes((good / "model.txt").read_bytes())
    with pytest.raises(ModelBundleError, match=r"old/calibrator.json: expected the calibrator as a JSON object, "
                                               "found null"):
        ModelBundle.load(old)


def test_a_truncated_model_exits_2_in_a_real_process_not_134(trained, tmp_path):
    home, _, good = trained
    folder = damaged(good, tmp_path, "truncated-model")
    (folder / MANIFEST).unlink()  # the structural check alone must keep LightGBM from aborting
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-m", "churnwatch", "score", "--home", str(home.root),
                           "--model", str(folder)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{folder}/model.txt" in done.stderr and "Traceback" not in done.stderr


def test_a_registry_download_is_removed_after_loading(trained, tmp_path, monkeypatch):
    home, _, _ = trained
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    bundle = load_version(setup(home.tracking_uri, home.mlflow_artifacts), 1)
    assert bundle.meta["model_version"] == 1 and bundle.test_predictions is not None
    assert list(tmp_path.iterdir()) == []


def test_cli_exits_2_naming_the_file_for_every_damaged_bundle(trained, tmp_path, cli, monkeypatch):
    home, data, good = trained
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", None)
    (tmp_path / "tmp").mkdir()
    scored = cli(home.root, "score", "--data", str(data))  # the champion, downloaded from the registry
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("churnwatch-")] == []
    for variant in CLI_VARIANTS:
        folder = damaged(good, tmp_path, variant)
        name = next(v[2] for v in VARIANTS if v[0] == variant)
        version = register_folder(home, folder)
        runs = {"score": cli(home.root, "score", "--data", str(data), "--model", str(folder)),
                "score-registry": cli(home.root, "score", "--data", str(data),
                                      "--model", f"models:/churnwatch/{version}"),
                "evaluate": cli(home.root, "evaluate", "--version", str(version)),
                "report": cli(home.root, "report", "--model", str(folder), "--out", str(tmp_path / "r.html"))}
        for command, run in runs.items():
            assert run.returncode == 2, f"{variant} {command}: {run.returncode} {run.stderr[-1500:]}"
            assert f"/{name}" in run.stderr and "Traceback" not in run.stderr, f"{variant} {command}: {run.stderr}"
        assert f"model version {version}" in runs["evaluate"].stderr
    assert not (tmp_path / "r.html").exists()
    assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("churnwatch-")] == []
    missing = cli(home.root, "score", "--data", str(data), "--model", str(tmp_path / "no-such-bundle"))
    assert missing.returncode == 2 and "no-such-bundle does not exist" in missing.stderr
    # a damaged champion: explain needs no model (it reads the score history) and still works
    set_champion(setup(home.tracking_uri, home.mlflow_artifacts), version, "damaged on purpose")
    champion = cli(home.root, "evaluate")
    assert champion.returncode == 2 and f"model version {version}" in champion.stderr
    with connect(home.store, read_only=True) as con:
        account = con.execute(f"SELECT min(account_id) FROM {HISTORY}").fetchone()[0]
    explained = cli(home.root, "explain", account)
    assert explained.returncode == 0, explained.stderr
    # a damaged champion cannot be compared with: promote says how to replace it, --force does
    refused = cli(home.root, "promote", "--version", "1")
    assert refused.returncode == 2 and "--force" in refused.stderr and f"model version {version}" in refused.stderr
    replaced = cli(home.root, "promote", "--version", "1", "--force", "--reason", "champion damaged")
    assert replaced.returncode == 0 and "version 1: promoted" in replaced.stdout, replaced.stderr
    assert cli(home.root, "evaluate").returncode == 0


def test_a_feature_the_model_needs_and_a_build_left_out_is_named_with_what_to_do():
    """A model trained with a column the tool now leaves out by its name (probe p55's ``auto_renew``, an export-time
    setting): scoring names the feature and says to train without it or add the column back."""
    import pandas as pd

    from core.errors import TrainingError
    from training.model import FeatureFrame

    frame = FeatureFrame(names=["logins_30d", "auto_renew"], categorical=[])
    with pytest.raises(TrainingError) as info:
        frame.transform(pd.DataFrame({"logins_30d": [3.0]}))
    text = str(info.value)
    assert text.startswith("feature(s) missing from the data: auto_renew: the model was trained with them")
    assert "`churnwatch features` lists why" in text and "profile.columns" in text
