"""`bentoml build` from serving/bentofile.yaml, and the built Bento served on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from serving.launch import start_server, stop_server
from serving.scoring import Scorer, validate_features
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_bento_builds_and_serves_the_same_scores(trained_setup, tmp_path):
    tmp, settings, bundle = trained_setup
    bundle_dir = bundle.save(tmp_path / "bundle")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    built = subprocess.run([sys.executable, "-m", "bentoml", "build", "-f", "serving/bentofile.yaml", "."],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [bento] = [p for p in (tmp_path / "bentoml" / "bentos" / "churnwatch").iterdir() if p.name != "latest"]
    meta = yaml.safe_load((bento / "bento.yaml").read_text())
    assert meta["service"] == "serving.service:ChurnService"
    assert {"/score", "/score_accounts"} <= {api["route"] for api in meta["schema"]["routes"]}
    for source in ("serving/service.py", "serving/scoring.py", "training/bundle.py", "features/spec.py"):
        assert (bento / "src" / source).is_file(), source

    # Served by tag from outside the repository: BentoML runs it from the Bento's src folder.
    # The account gives three features: scored whatever share of the gain they carry (test_coverage.py).
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "churnwatch.yaml").write_text("serving:\n  min_coverage: 0\n", encoding="utf-8")
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(update={"min_coverage": 0.0})})
    proc, base = start_server(free_port(), {"BENTOML_HOME": str(tmp_path / "bentoml"),
                                            "CHURNWATCH_HOME": str(tmp_path / "home"),
                                            "CHURNWATCH_MODEL": str(bundle_dir), "PYTHONPATH": ""},
                              target="churnwatch:latest", cwd=tmp_path, timeout_seconds=120)
    try:
        account = {"account_id": "acme", "features": {"logins_30d": 3, "days_overdue": 40, "industry": "retail"}}
        req = urllib.request.Request(base + "/score", data=json.dumps({"accounts": [account]}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            [served] = json.loads(resp.read())
    finally:
        stop_server(proc)
    scorer = Scorer(bundle=bundle, settings=settings, model_version=str(bundle_dir))
    [expected] = scorer.results(validate_features([account], bundle.catalogue))
    assert served["churn_probability"] == expected["churn_probability"]
    assert served["tier"] == expected["tier"] and served["reasons"] == expected["reasons"]
