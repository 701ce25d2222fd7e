"""Sign-in, sessions, CSRF on every form, the sign-in rate limit, roles and the audit log, by
HTTP through FastAPI's TestClient over the real app, a real SQLite operational store and a real
DuckDB store with published scores (tests/workspace/home.py)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.workspace.conftest import sign_in, token_of
from tests.workspace.home import EVIL_CSM, PASSWORD
from workflow.audit import AUDIT
from workflow.db import store_for
from workflow.people import USERS, list_users
from workspace.auth import MAX_FAILURES, WINDOW, RateLimited
from workspace.auth import sign_in as check_sign_in

ROOT = Path(__file__).resolve().parents[2]


def test_pages_need_a_session_and_a_right_password(app, home):
    client = TestClient(app)
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=%2F"
    assert sign_in(client, "ana@example.com", "wrong password").status_code == 401
    assert sign_in(client, "nobody@example.com").status_code == 401
    ok = sign_in(client, "ana@example.com")
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert client.get("/").status_code == 200
    # a forged cookie is no session
    forged = TestClient(app, cookies={"churnwatch_session": "eyJ1aWQiOjF9.forged.sig"})
    assert forged.get("/", follow_redirects=False).status_code == 303
    # the stored hash is argon2 and never listed
    engine = store_for(home)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(USERS.c.password_hash).where(USERS.c.email == "ana@example.com")).scalar()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert all("password_hash" not in u for u in list_users(conn))
        signed = conn.execute(sa.select(AUDIT.c.actor).where(AUDIT.c.action == "sign_in")).scalars().all()
    assert signed == ["Ana Li"]


def test_the_cookie_is_secure_behind_https(app):
    behind = TestClient(app, headers={"X-Forwarded-Proto": "https"}).get("/login")
    assert "secure" in behind.headers["set-cookie"].lower()
    client = TestClient(app, base_url="https://testserver")
    answer = sign_in(client, "ana@example.com")
    assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()


def test_signing_out_ends_the_session(as_user):
    client = as_user("ana@example.com")
    page = client.get("/")
    assert client.post("/logout", data={"csrf_token": token_of(page.text)}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def post_routes(app) -> list[str]:
    """Every POST path of the app, included routers' too (FastAPI wraps those; prefix kept)."""
    found = set()

    def walk(routes, prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes, prefix + getattr(route.include_context, "prefix", ""))
            elif "POST" in (getattr(route, "methods", None) or set()):
                found.add(prefix + route.path)

    walk(app.routes, "")
    return sorted(found)


def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(app, as_user):
    routes = post_routes(app)
    assert {"/login", "/logout", "/lang", "/interventions", "/tasks/{task_id}/move"} <= set(routes)
    client = as_user("lee@example.com")
    for path in routes:
        url = re.sub(r"\{[^}]+\}", "3", path)
        form = {"username": "ana@example.com", "password": PASSWORD, "lang": "zh-CN", "account_id": "acme",
                "action": "plan", "text": "x", "note": "n"}
        assert client.post(url, data=form, follow_redirects=False).status_code == 403, url
        assert client.post(url, data={**form, "csrf_token": "forged"}, follow_redirects=False).status_code == 403, url
    # nothing happened: still signed in as the lead, language English, task 3 still open, no intervention
    assert 'lang="en"' in client.get("/").text
    assert 'data-task="3" data-status="open"' in client.get("/tasks").text
    assert "intervention" not in client.get("/accounts/acme").text.split('id="interventions"')[1].split("<h3>")[0]


def test_a_csm_sees_only_their_accounts_a_lead_the_team_an_admin_all(as_user):
    ana = as_user("ana@example.com")
    day = ana.get("/").text
    assert 'data-account="acme"' in day and 'data-account="bolt"' not in day
    assert 'data-account="gone"' not in day  # churned: not on my day
    # riskiest first: acme (900 x 0.70) before beta (120 x 0.46)
    assert day.index('data-account="acme"') < day.index('data-account="beta"')
    assert ana.get("/accounts/acme").status_code == 200
    other = ana.get("/accounts/bolt")
    assert other.status_code == 403 and "bolt" not in other.text.split("<main>")[1]
    assert ana.get("/accounts/no-such").status_code == 404
    lead = as_user("lee@example.com")
    assert lead.get("/accounts/acme").status_code == 200 and lead.get("/accounts/bolt").status_code == 403
    admin = as_user("root@example.com")
    assert admin.get("/accounts/bolt").status_code == 200


def test_a_csm_cannot_move_or_log_on_another_csms_account(as_user):
    ana = as_user("ana@example.com")
    token = token_of(ana.get("/").text)
    bolt_task = [t for t in as_user("root@example.com").get("/tasks").text.split('data-task="')[1:]
                 if "/accounts/bolt" in t.split("</tr>")[0]]
    tid = bolt_task[0].split('"')[0]
    assert ana.post(f"/tasks/{tid}/move", data={"action": "plan", "text": "x", "csrf_token": token}).status_code == 403
    assert ana.post("/interventions", data={"account_id": "bolt", "note": "x", "csrf_token": token}).status_code == 403


def test_wrong_passwords_are_rate_limited_per_user_and_address(app, home):
    client = TestClient(app)
    for _ in range(MAX_FAILURES):
        assert sign_in(client, "ana@example.com", "wrong password").status_code == 401
    limited = sign_in(client, "ana@example.com")  # even the right password waits
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in limited.text
    assert sign_in(client, "lee@example.com").status_code == 303  # another user is not held up
    engine = store_for(home)
    later = dt.datetime.now(dt.UTC) + WINDOW + dt.timedelta(seconds=1)
    assert check_sign_in(engine, "ana@example.com", PASSWORD, "testclient", now=later)["name"] == "Ana Li"
    with pytest.raises(RateLimited):
        for _ in range(MAX_FAILURES + 1):
            check_sign_in(engine, "ana@example.com", "nope", "10.0.0.9")


def test_the_language_is_switched_and_remembered_for_the_user(app, as_user, home):
    ana = as_user("ana@example.com")
    token = token_of(ana.get("/").text)
    assert ana.post("/lang", data={"lang": "zh-CN", "next": "/tasks", "csrf_token": token},
                    follow_redirects=False).headers["location"] == "/tasks"
    assert "任务看板" in ana.get("/tasks").text
    again = TestClient(app)  # a new session, a new browser: the user's language
    sign_in(again, "ana@example.com")
    assert '<html lang="zh-CN">' in again.get("/").text
    with store_for(home).connect() as conn:
        assert conn.execute(sa.select(USERS.c.lang).where(USERS.c.email == "ana@example.com")).scalar() == "zh-CN"
        change = conn.execute(sa.select(AUDIT.c.after).where(AUDIT.c.entity == "user", AUDIT.c.action == "update"))
        assert '"zh-CN"' in change.scalar()
    # an off-site "next" is not followed
    assert ana.post("/lang", data={"lang": "en", "next": "//evil.example", "csrf_token": token},
                    follow_redirects=False).headers["location"] == "/"


def test_bad_input_is_a_named_4xx_never_a_5xx(as_user):
    ana = as_user("ana@example.com")
    token = token_of(ana.get("/").text)
    assert ana.get("/tasks", params={"status": "nonsense"}).status_code == 422
    assert "nonsense" in ana.get("/tasks", params={"tier": "nonsense"}).text
    assert ana.post("/tasks/abc/move", data={"action": "plan", "csrf_token": token}).status_code == 422
    assert ana.post("/tasks/999/move", data={"action": "plan", "csrf_token": token}).status_code == 404
    assert ana.post("/tasks/3/move", data={"action": "fly", "csrf_token": token}).status_code == 422
    assert ana.post("/interventions", data={"csrf_token": token}).status_code == 422


@pytest.mark.slow
def test_users_password_by_the_command_line(home):
    env = {"PYTHONPATH": str(ROOT), "NEW_PW": "a new long password", "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "churnwatch", "users", "password", "--home", str(home)]
    ok = subprocess.run([*run, "lee@example.com", "--password-env", "NEW_PW"], capture_output=True, text=True,
                        env=env, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "password set for user 3: Lee Wu (lead)" in ok.stdout
    assert check_sign_in(store_for(home), "lee@example.com", "a new long password", "cli")["role"] == "lead"
    for args, words in (([EVIL_CSM + "x", "--password-env", "NEW_PW"], "unknown user"),
                        (["lee@example.com", "--password-env", "UNSET_VAR"], "UNSET_VAR"),):
        bad = subprocess.run([*run, *args], capture_output=True, text=True, env=env, cwd=ROOT)
        assert bad.returncode == 2 and words in bad.stderr + bad.stdout and "Traceback" not in bad.stderr
    short = subprocess.run([*run, "lee@example.com", "--password-env", "SHORT"], capture_output=True, text=True,
                           env={**env, "SHORT": "abc"}, cwd=ROOT)
    assert short.returncode == 2 and "at least 8 characters" in short.stderr + short.stdout
