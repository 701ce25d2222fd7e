"""The workspace in a real headless Chromium (Debian's, driven by Playwright with its executable
path) against a real `churnwatch app` process on 127.0.0.1 over the tiny home: a CSM signs in,
sees only their accounts, opens the riskiest, logs an intervention and drafts the plan of its
task; the lead signs in and approves; the CSM switches to Chinese and no English label is left."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.workspace.home import ACCOUNTS, EVIL_CSM, PASSWORD, build_home
from workflow import db
from workspace.texts import TEXTS

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHURNWATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    home = build_home(tmp_path / "home")
    db.dispose_all()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "churnwatch", "app", "--home", str(home), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"churnwatch app did not start: {proc.communicate()[0]}")
    yield base, home
    proc.terminate()
    proc.wait(timeout=10)


def sign_in(page, base: str, login: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(base + "/")


def visible_texts(page) -> list[str]:
    return page.evaluate("""() => {
        const out = [];
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) { const t = walker.currentNode.textContent.trim(); if (t) out.push(t); }
        return out;
    }""")


def test_a_csm_and_a_lead_work_a_task_in_a_real_browser(server):
    base, home = server
    english = {en for en, zh in TEXTS.values() if en != zh}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            sign_in(page, base, "ana@example.com")
            shown = page.eval_on_selector_all("#accounts tbody tr", "rows => rows.map(r => r.dataset.account)")
            own = [a for a, (csm, _, healths) in ACCOUNTS.items() if csm == "Ana Li" and healths[-1] is not None]
            assert sorted(shown) == sorted(own) and shown[0] == "acme"  # only hers, the riskiest first
            assert EVIL_CSM not in page.content()
            page.click("#accounts tbody tr:first-child a.account-link")
            page.wait_for_url(base + "/accounts/acme")
            page.fill("#log-intervention textarea[name=note]", "called the sponsor")
            page.click("#log-intervention-submit")
            page.wait_for_selector("tr.intervention")
            assert "called the sponsor" in page.inner_text("#interventions")
            page.fill("#tasks textarea[name=text]", "exec call on Friday")
            page.click("#tasks button.move-plan")
            page.wait_for_selector("tr[data-status=plan_drafted]")
            assert page.query_selector("button.move-approve") is None  # a CSM cannot approve
            # the lead approves
            lead = browser.new_context().new_page()
            sign_in(lead, base, "lee@example.com")
            lead.goto(base + "/tasks?status=plan_drafted")
            lead.click("button.move-approve")
            assert lead.inner_text("p.flash").endswith(": approved.")
            lead.goto(base + "/tasks?status=approved")
            assert lead.eval_on_selector_all("a.account-link", "links => links.map(a => a.textContent)") == ["acme"]
            # the CSM switches to Chinese: no English label on her pages
            page.select_option("select[name=lang]", "zh-CN")
            page.click("#lang-switch")
            page.wait_for_selector("html[lang=zh-CN]")
            for url in ("/", "/accounts/acme", "/tasks?status=all"):
                page.goto(base + url)
                left = sorted({t for t in visible_texts(page) if t in english or t.rstrip(":") in english})
                assert left == [], (url, left)
                assert page.locator("text=我的一天").count() >= 1
            assert dialogs == []  # no hostile text ran
        finally:
            browser.close()
