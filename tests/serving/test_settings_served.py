"""The real BentoML service follows the saved settings versions (issue 16, item 8): a playbook changed
with ``churnwatch settings set`` (a version saved in the operational store by another process) is
in the service's next answer, without a restart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from serving.launch import start_server, stop_server
from tests.services import free_port
from tests.workflow.test_workflow_served import TOKEN, call

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory, trained_demo):
    demo = trained_demo(150, 12, 3)  # the session's shared build (tests/conftest.py), its store copied here
    tmp = tmp_path_factory.mktemp("settings-served")
    demo.copy_to(tmp / "d", tmp / "s.duckdb")
    demo.bundle.save(tmp / "bundle")
    home = tmp / "home"
    home.mkdir()
    env = {"CHURNWATCH_HOME": str(home), "CHURNWATCH_MODEL": str(tmp / "bundle"),
           "CHURNWATCH_STORE": str(tmp / "s.duckdb"), "CHURNWATCH_API_TOKEN": TOKEN,
           "BENTOML_HOME": str(tmp / "bentoml")}
    proc, base = start_server(free_port(), env, timeout_seconds=90)
    try:
        yield base, home, tmp / "s.duckdb"
    finally:
        stop_server(proc)


def test_a_saved_playbook_is_in_the_next_answer_without_restart(served):
    base, home, store = served
    with duckdb.connect(str(store), read_only=True) as con:
        account = con.execute("SELECT account_id FROM snapshots ORDER BY account_id LIMIT 1").fetchone()[0]
    body = {"account_ids": [account], "live": True}
    status, answer = call(base, "/score_accounts", body)
    assert status == 200, answer
    tier = answer[0]["tier"]
    assert answer[0]["playbook"]["respond_within"] != "90 minutes"
    saved = subprocess.run([sys.executable, "-m", "churnwatch", "settings", "set",
                            f"playbooks.{tier}.respond_within=90 minutes", f"playbooks.{tier}.action_en=Call today",
                            "--as", "admin", "--home", str(home)], capture_output=True, text=True, timeout=180,
                           cwd=ROOT)
    assert saved.returncode == 0, saved.stderr
    status, answer = call(base, "/score_accounts", body)
    assert status == 200, answer
    assert answer[0]["playbook"] == {**answer[0]["playbook"], "action": "Call today", "respond_within": "90 minutes"}
