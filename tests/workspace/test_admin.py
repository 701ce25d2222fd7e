"""The admin's settings pages (issue 16, item 8) over the real app (FastAPI's TestClient) and the tiny
home's real operational store: forms validated by the same ``Settings`` model as churnwatch.yaml
(an invalid value shown next to its field, nothing saved), versions with who and when, "restore
this version", secrets never shown, admin only (403 for a CSM and a lead), CSRF on every form
(403 without it), a version saved elsewhere used on the next request, and an alert rule changed
on the page used by the next real ``churnwatch alerts`` run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.workspace.home import PASSWORD, build_home
from workflow import db
from workflow.audit import AUDIT
from workflow.config_versions import current_version, get, save
from workspace.app import build_app

ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture()
def home(tmp_path):
    root = build_home(tmp_path / "home")
    yield root
    db.dispose_all()


@pytest.fixture()
def client(home):
    return TestClient(build_app(home))


def sign_in(client: TestClient, login: str) -> str:
    """Sign ``login`` in; returns the session's CSRF token."""
    client.cookies.clear()
    token = TOKEN.search(client.get("/login").text).group(1)
    done = client.post("/login", data={"username": login, "password": PASSWORD, "csrf_token": token, "next": "/"},
                       follow_redirects=False)
    assert done.status_code == 303
    return TOKEN.search(client.get("/").text).group(1)


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'class="field-error" role="alert" data-field="([^"]+)">([^<]*)', html))


def test_only_an_admin_may_see_or_change_settings_and_every_form_needs_csrf(client, home):
    for login in ("ana@example.com", "lee@example.com"):  # a CSM, a lead
        token = sign_in(client, login)
        assert client.get("/admin/settings").status_code == 403
        assert client.get("/admin/settings/history").status_code == 403
        refused = client.post("/admin/settings/alert_rules", data={"csrf_token": token, "based_on": "0",
                                                                   "f:alert_rules.0.threshold": "50"})
        assert refused.status_code == 403
        assert client.post("/admin/settings/restore/1", data={"csrf_token": token}).status_code == 403
        assert 'href="/admin/settings"' not in client.get("/").text
    token = sign_in(client, "root@example.com")
    assert 'href="/admin/settings"' in client.get("/").text
    page = client.get("/admin/settings")
    assert page.status_code == 200
    forms = re.findall(r'<form method="post" action="/admin/settings/([a-z_]+)"(.*?)</form>', page.text, re.S)
    assert [name for name, _ in forms] == ["alert_rules", "playbooks", "email", "webhooks", "tags", "sequences",
                                           "tasks", "monitoring"]
    assert all(f'name="csrf_token" value="{token}"' in body for _, body in forms)
    for data in ({"based_on": "0", "f:alert_rules.0.threshold": "50"},
                 {"based_on": "0", "f:alert_rules.0.threshold": "50", "csrf_token": "forged"}):
        assert client.post("/admin/settings/alert_rules", data=data).status_code == 403
    assert client.post("/admin/settings/restore/1", data={}).status_code == 403
    assert current_version(db.store_for(home)) == 0


def test_an_invalid_value_is_shown_next_to_its_field_and_nothing_is_saved(client, home):
    token = sign_in(client, "root@example.com")
    bad = client.post("/admin/settings/alert_rules", data={
        "csrf_token": token, "based_on": "0", "f:alert_rules.0.threshold": "500", "f:alert_rules.0.days": "soon",
        "f:alert_rules.0.name": "renamed"})
    assert bad.status_code == 422
    assert field_errors(bad.text) == {"alert_rules.0.threshold": "Input should be less than or equal to 100",
                                      "alert_rules.0.days": "Input should be a valid integer, unable to parse "
                                                            "string as an integer"}
    assert 'value="renamed"' in bad.text and 'value="500"' in bad.text  # what was typed is kept
    bad_yaml = client.post("/admin/settings/webhooks", data={
        "csrf_token": token, "based_on": "0", "yaml": "- name: ops\n  url: http://127.0.0.1:9/x\n  format: fax\n"})
    assert bad_yaml.status_code == 422
    assert "webhooks.0.format: Input should be &#39;generic&#39;, &#39;slack&#39;" in bad_yaml.text
    assert current_version(db.store_for(home)) == 0


def test_save_history_restore_and_secrets_never_shown(client, home):
    token = sign_in(client, "root@example.com")
    saved = client.post("/admin/settings/playbooks", data={
        "csrf_token": token, "based_on": "0", "f:playbooks.high_risk.respond_within": "2 hours",
        "f:playbooks.high_risk.respond_within_hours": "2", "comment": "faster"}, follow_redirects=False)
    assert saved.status_code == 303
    page = client.get("/admin/settings")
    assert "Saved as version 1 (2 value(s) changed)." in page.text and "Version 1 in effect" in page.text
    assert client.app.state.settings.playbooks["high_risk"].respond_within_hours == 2
    hook = client.post("/admin/settings/webhooks", data={
        "csrf_token": token, "based_on": "1",
        "yaml": "- name: ops\n  url: http://127.0.0.1:9/x\n  secret: hush-hush\n"}, follow_redirects=False)
    assert hook.status_code == 303
    engine = db.store_for(home)
    assert get(engine, 2)["document"]["webhooks"][0]["secret"] == "hush-hush"
    page = client.get("/admin/settings")
    assert "hush-hush" not in page.text
    kept = client.post("/admin/settings/webhooks", data={
        "csrf_token": token, "based_on": "2", "f:webhooks.0.secret": "", "f:webhooks.0.url": "http://127.0.0.1:9/y",
        "f:webhooks.0.name": "ops"}, follow_redirects=False)
    assert kept.status_code == 303
    assert get(engine, 3)["document"]["webhooks"][0] == {**get(engine, 2)["document"]["webhooks"][0],
                                                         "url": "http://127.0.0.1:9/y"}
    stale = client.post("/admin/settings/alert_rules", data={"csrf_token": token, "based_on": "1",
                                                             "f:alert_rules.0.threshold": "50"})
    assert stale.status_code == 409 and "saved as version 3 by Root Admin after version 1" in stale.text

    history = client.get("/admin/settings/history").text
    rows = re.findall(r'<tr data-version="(\d+)">.*?class="actor">([^<]*)<.*?</tr>', history, re.S)
    assert rows == [("3", "Root Admin"), ("2", "Root Admin"), ("1", "Root Admin")]
    assert history.count('class="restore"') == 2  # not on the version in effect
    restored = client.post("/admin/settings/restore/1", data={"csrf_token": token}, follow_redirects=False)
    assert restored.status_code == 303
    assert get(engine, 4)["document"] == get(engine, 1)["document"]
    assert client.app.state.settings.webhooks == []
    assert "Version 1 restored as version 4." in client.get("/admin/settings/history").text
    with engine.connect() as conn:
        audit = conn.execute(sa.select(AUDIT.c.actor, AUDIT.c.action, AUDIT.c.after)
                             .where(AUDIT.c.entity == "settings").order_by(AUDIT.c.id)).all()
    assert [(a, b) for a, b, _ in audit] == [("Root Admin", "save")] * 3 + [("Root Admin", "rollback")]
    assert "hush-hush" not in " ".join(after for *_, after in audit)
    assert client.post("/admin/settings/restore/99", data={"csrf_token": token}).status_code == 404


def test_a_version_saved_elsewhere_is_used_on_the_next_request_and_pages_speak_chinese(client, home):
    token = sign_in(client, "root@example.com")
    assert client.get("/admin/settings").status_code == 200
    save(db.store_for(home), "cli-user", {"alert_rules.0.threshold": 42}, base=client.app.state.settings)
    page = client.get("/admin/settings")  # no restart
    assert 'value="42"' in page.text and "Version 1 in effect" in page.text
    assert client.app.state.settings.alert_rules[0].threshold == 42
    client.post("/lang", data={"csrf_token": token, "lang": "zh-CN", "next": "/admin/settings"})
    zh = client.get("/admin/settings").text
    for label in ("预警规则", "各风险等级的应对方案", "监控阈值", "保存为新版本", "当前生效：版本 1"):
        assert label in zh
    for english in ("Alert rules", "Save a new version", "Settings history", "in effect"):
        assert english not in zh


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "churnwatch", *args, "--home", str(home)], capture_output=True,
                          text=True, timeout=180, cwd=ROOT)


@pytest.mark.slow
def test_an_alert_rule_changed_on_the_page_is_used_by_the_next_alerts_run(client, home):
    before = cli(home, "alerts")
    assert before.returncode == 0, before.stderr
    assert "below 75" not in before.stdout
    token = sign_in(client, "root@example.com")
    changed = client.post("/admin/settings/alert_rules", data={
        "csrf_token": token, "based_on": "0", "f:alert_rules.0.name": "below 75 for 3 days",
        "f:alert_rules.0.threshold": "75", "f:alert_rules.0.days": "3"}, follow_redirects=False)
    assert changed.status_code == 303
    after = cli(home, "alerts")  # a new process, churnwatch.yaml untouched
    assert after.returncode == 0, after.stderr
    assert re.search(r"alerts: \d+ new \(below 75 for 3 days", after.stdout), after.stdout


def test_a_form_sent_whole_as_a_browser_does_saves_the_changed_field(client, home):
    token = sign_in(client, "root@example.com")

    def form_as_sent(version: int) -> dict[str, str]:
        page = client.get("/admin/settings").text
        form = re.search(r'data-section="alert_rules">(.*?)</form>', page, re.S).group(1)
        data = dict(re.findall(r'<input type="text" id="[^"]+" name="([^"]+)" value="([^"]*)"', form))
        box = re.search(r'<textarea name="yaml"[^>]*>(.*?)</textarea>', form, re.S).group(1)
        return {**data, "csrf_token": token, "based_on": str(version),
                "yaml": box.replace("\n", "\r\n").replace("&#39;", "'").replace("&#34;", '"')}

    data = {**form_as_sent(0), "f:alert_rules.0.threshold": "45"}
    assert client.post("/admin/settings/alert_rules", data=data, follow_redirects=False).status_code == 303
    engine = db.store_for(home)
    assert get(engine, 1)["document"]["alert_rules"][0]["threshold"] == 45 and current_version(engine) == 1
    again = client.post("/admin/settings/alert_rules", data=form_as_sent(1))  # the same values: no new version
    assert "Nothing changed: no version saved." in again.text and current_version(engine) == 1


def test_the_first_version_is_saved_over_churnwatch_yaml_as_it_is_then(home):
    """Probe p31: an `email:` block added to churnwatch.yaml after `churnwatch app` started; saving only
    the playbooks on this page wrote a version from the start-up copy, and e-mail was off for every command."""
    from core.settings import EmailSettings, Settings

    started = Settings()
    now = {"settings": started}
    client = TestClient(build_app(home, started, file_settings=lambda: now["settings"]))
    token = sign_in(client, "root@example.com")
    now["settings"] = started.model_copy(update={"email": EmailSettings(enabled=True, port=2525,
                                                                        sender="care@vendor.example")})
    saved = client.post("/admin/settings/playbooks", data={
        "csrf_token": token, "based_on": "0", "f:playbooks.high_risk.respond_within": "2 hours"},
        follow_redirects=False)
    assert saved.status_code == 303
    document = get(db.store_for(home))["document"]
    assert document["email"]["enabled"] is True and document["email"]["port"] == 2525
    assert document["email"]["sender"] == "care@vendor.example"
    assert document["playbooks"]["high_risk"]["respond_within"] == "2 hours"
