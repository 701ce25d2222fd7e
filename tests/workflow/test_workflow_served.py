"""The workflow API mounted in the real BentoML service (``/workflow``, behind the service's token):
a task listed, moved, refused with 409 naming the allowed steps, 404 for an unknown one."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from core.settings import Settings
from serving.launch import start_server, stop_server
from tests.services import free_port
from tests.workflow.test_tasks import BELOW, NOW, write_store
from workflow import db
from workflow.alerts import raise_alerts

pytestmark = pytest.mark.slow
TOKEN = "wf-token"


def call(base: str, path: str, body: dict | None = None, token: str | None = TOKEN) -> tuple[int, object]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@pytest.fixture(scope="module")
def served(tmp_path_factory, trained_demo):
    tmp = tmp_path_factory.mktemp("served")
    demo = trained_demo(150, 12, 3)  # the session's shared build (tests/conftest.py), copied here
    demo.copy_to(tmp / "d", tmp / "s.duckdb")
    demo.bundle.save(tmp / "bundle")
    home = tmp / "home"
    home.mkdir()
    write_store(home / "scores.duckdb", {"a1": [70] + [50] * 8})
    raise_alerts(home / "scores.duckdb", Settings(alert_rules=[BELOW]), db.store_for(home), now=NOW)
    db.dispose_all()
    env = {"CHURNWATCH_HOME": str(home), "CHURNWATCH_MODEL": str(tmp / "bundle"),
           "CHURNWATCH_STORE": str(tmp / "s.duckdb"), "CHURNWATCH_API_TOKEN": TOKEN,
           "BENTOML_HOME": str(tmp / "bentoml")}
    proc, base = start_server(free_port(), env, timeout_seconds=90)
    try:
        yield base
    finally:
        stop_server(proc)


def test_the_service_serves_the_workflow_api_behind_its_token(served):
    assert call(served, "/workflow/tasks", token=None)[0] == 401
    status, tasks = call(served, "/workflow/tasks")
    assert status == 200 and [(t["account_id"], t["status"]) for t in tasks] == [("a1", "open")]
    tid = tasks[0]["id"]
    status, refused = call(served, f"/workflow/tasks/{tid}/transition", {"action": "done", "actor": "x"})
    assert status == 409 and "allowed: plan_drafted (plan), cancelled (cancel)" in refused["detail"]
    status, moved = call(served, f"/workflow/tasks/{tid}/transition", {"action": "plan", "actor": "Ana Li",
                                                                       "text": "call"})
    assert status == 200 and moved["status"] == "plan_drafted"
    assert call(served, "/workflow/tasks/424242")[0] == 404
    assert call(served, f"/workflow/tasks/{tid}/transition", {"action": "plan"})[0] == 422
    status, shown = call(served, f"/workflow/tasks/{tid}")
    assert [e["action"] for e in shown["history"]] == ["create", "plan"]
