"""The Portfolio page in a real headless Chromium (Debian's, through Playwright) against a real
`churnwatch app` on 127.0.0.1 over the tiny home: the lead opens it from the navigation, sees only
the team's CSM, the chart is drawn, the segment form works, and in Chinese no English label is
left; a CSM who types the address gets the 403 page."""

from __future__ import annotations

from tests.workspace.home import EVIL_CSM
from tests.workspace.test_browser import CHROMIUM, server, sign_in, sync_api, visible_texts  # noqa: F401
from tests.workspace.test_browser import pytestmark as browser_marks
from workspace.texts import TEXTS

pytestmark = browser_marks


def test_a_lead_opens_the_portfolio_in_a_real_browser(server):  # noqa: F811
    base, _home = server
    english = {en for en, zh in TEXTS.values() if en != zh}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            lead = browser.new_page()
            dialogs = []
            lead.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            sign_in(lead, base, "lee@example.com")
            lead.click("a[data-nav=portfolio]")
            lead.wait_for_url(base + "/portfolio")
            csms = lead.eval_on_selector_all("#by-csm tbody tr", "rows => rows.map(r => r.dataset.csm)")
            assert csms == ["Ana Li"]
            assert EVIL_CSM not in lead.content()
            bars = lead.eval_on_selector_all("#health-history rect", "rs => rs.map(r => r.getBBox().height)")
            assert len(bars) >= 10 and all(h > 0 for h in bars)  # drawn, one or more tiers per date
            lead.select_option("select[name=by]", "segment")
            lead.click("form.filters button")
            lead.wait_for_url(base + "/portfolio?by=segment")
            assert lead.eval_on_selector_all("#by-segment tbody tr", "rows => rows.map(r => r.dataset.segment)") \
                == ["SMB"]
            lead.select_option("select[name=lang]", "zh-CN")
            lead.click("#lang-switch")
            lead.wait_for_selector("html[lang=zh-CN]")
            left = sorted({t for t in visible_texts(lead) if t in english or t.rstrip(":") in english})
            assert left == []
            assert lead.locator("h1").inner_text() == "客户组合"
            csm = browser.new_context().new_page()
            sign_in(csm, base, "ana@example.com")
            assert csm.locator("a[data-nav=portfolio]").count() == 0
            answer = csm.goto(base + "/portfolio")
            assert answer.status == 403 and "You may not see this page." in csm.inner_text("main")
            assert dialogs == []
        finally:
            browser.close()
