"""Fixtures of the workspace tests: the tiny home (built once per module) and signed-in clients."""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.workspace.home import PASSWORD, build_home
from workflow import db
from workspace.app import build_app

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def template_home(tmp_path_factory):
    home = build_home(tmp_path_factory.mktemp("workspace") / "home")
    db.dispose_all()
    return home


@pytest.fixture
def home(template_home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(template_home, copy)
    yield copy
    db.dispose_all()


@pytest.fixture
def app(home):
    return build_app(home, Settings())


def token_of(html: str) -> str:
    return TOKEN.search(html).group(1)


def sign_in(client: TestClient, login: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"username": login, "password": password, "csrf_token": token_of(page.text)},
                       follow_redirects=False)


@pytest.fixture
def as_user(app):
    """``as_user(login)``: a TestClient signed in as that user."""
    clients = []

    def make(login: str) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        answer = sign_in(client, login)
        assert answer.status_code == 303, answer.text
        return client

    yield make
    for c in clients:
        c.close()
