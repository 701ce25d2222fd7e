"""The admin's settings pages in a real headless Chromium against a real `churnwatch app` process:
an invalid threshold is shown next to its field, a changed alert rule is saved as a version and
used by the next real `churnwatch alerts` run, the history restores a version, and in Chinese no
English label is left on the settings pages."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.workspace.test_browser import CHROMIUM, ROOT, server, sign_in, sync_api, visible_texts  # noqa: F401
from workspace.texts import TEXTS

pytestmark = [pytest.mark.slow]


def test_an_admin_changes_an_alert_rule_in_a_real_browser_and_the_next_run_uses_it(server):  # noqa: F811
    base, home = server
    english = {en for en, zh in TEXTS.values() if en != zh}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            sign_in(page, base, "root@example.com")
            page.click("a[data-nav=settings]")
            page.wait_for_url(base + "/admin/settings")
            page.click("#alert_rules summary")
            page.fill("[id='f-alert_rules.0.threshold']", "500")
            page.click("form[data-section=alert_rules] button.save-section")
            error = page.wait_for_selector("span.field-error[data-field='alert_rules.0.threshold']")
            assert error.inner_text() == "Input should be less than or equal to 100"
            page.fill("[id='f-alert_rules.0.name']", "below 75 for 3 days")
            page.fill("[id='f-alert_rules.0.threshold']", "75")
            page.fill("[id='f-alert_rules.0.days']", "3")
            page.fill("form[data-section=alert_rules] input[name=comment]", "earlier warning")
            page.click("form[data-section=alert_rules] button.save-section")
            assert page.inner_text("p.flash") == "Saved as version 1 (3 value(s) changed)."
            ran = subprocess.run([sys.executable, "-m", "churnwatch", "alerts", "--home", str(home)],
                                 capture_output=True, text=True, timeout=180, cwd=ROOT)
            assert ran.returncode == 0, ran.stderr
            assert re.search(r"alerts: \d+ new \(below 75 for 3 days", ran.stdout), ran.stdout
            page.click("#settings-history")
            assert page.inner_text("tr[data-version='1'] td.actor") == "Root Admin"
            page.select_option("select[name=lang]", "zh-CN")
            page.click("#lang-switch")
            page.wait_for_selector("html[lang=zh-CN]")
            for url in ("/admin/settings", "/admin/settings/history"):
                page.goto(base + url)
                left = sorted({t for t in visible_texts(page) if t in english or t.rstrip(":") in english})
                assert left == [], (url, left)
            assert page.locator("text=设置历史").count() >= 1
        finally:
            browser.close()
