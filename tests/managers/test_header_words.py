"""An account's header words its categories as its reasons do (issue 12 leftovers): an export's
code ``COMPUTER_SOFTWARE`` is "computer software" in ``explain`` and in the report, in both
languages, while the stored value stays where raw values are shown."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import duckdb
import pytest

from core.settings import Settings
from insights.explain import account_view
from insights.report import build_report
from tests.managers.test_figures import _history, _profiles
from training.reason_text import category_words


def _coded_profiles():
    p = _profiles()
    p.loc[p["account_id"] == "A", ["csm", "segment", "industry", "region"]] = \
        ["ANN_LEE", "MID_MARKET", "COMPUTER_SOFTWARE", "EMEA"]
    return p


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_header_words_category_codes_as_reasons_do_and_keeps_the_stored_values(lang):
    view = account_view(_history(), "A", Settings(), lang, profiles=_coded_profiles())
    assert view.header == {"mrr": 1000.0, "csm": "ANN_LEE", "segment": "mid market",
                           "industry": "computer software", "region": "EMEA"}
    assert view.header["industry"] == category_words("COMPUTER_SOFTWARE")  # the reasons' one wording
    assert view.profile["industry"] == "COMPUTER_SOFTWARE" and view.profile["segment"] == "MID_MARKET"
    assert account_view(_history(), "B", Settings(), lang, profiles=_coded_profiles()).header["industry"] == "retail"


@pytest.fixture(scope="module")
def coded(home, tmp_path_factory):
    """A copy of ``home`` whose riskiest account of the latest date has coded categories in its snapshot,
    and a segment with markup in it (escaped, never HTML)."""
    root = tmp_path_factory.mktemp("coded")
    shutil.copy(home.root / "churnwatch.yaml", root / "churnwatch.yaml")
    store = root / "store.duckdb"
    shutil.copy(home.store, store)
    with duckdb.connect(str(store)) as con:
        acc = con.execute("SELECT account_id FROM score_history WHERE as_of = ? ORDER BY health_score, account_id "
                          "LIMIT 1", [home.dates[1]]).fetchone()[0]
        con.execute("UPDATE snapshots SET industry = 'COMPUTER_SOFTWARE', region = 'NORTH_AMERICA', "
                    "segment = '<b>MID_MARKET</b>' WHERE account_id = ?", [acc])
    return SimpleNamespace(root=root, store=store, account=acc, settings=home.settings, day=home.dates[1])


@pytest.mark.parametrize(("lang", "industry"), [("en", "industry"), ("zh-CN", "行业")])
def test_explain_prints_the_worded_categories(coded, run_cli, lang, industry):
    r = run_cli("explain", coded.account, "--lang", lang, "--home", coded.root)
    assert r.returncode == 0, r.stderr[-2000:]
    out = " ".join(r.stdout.split())
    assert f"{industry} computer software" in out and "north america" in out
    assert "COMPUTER_SOFTWARE" not in out and "NORTH_AMERICA" not in out
    assert "<b>MID_MARKET</b>" in out  # not a code: as stored, and printed literally (not markup)


def test_the_report_words_them_and_escapes_them(coded, tmp_path):
    path = build_report(coded.store, coded.settings, tmp_path / "r.html", top=3, accounts=[coded.account]).path
    html = path.read_text()
    page = html.split(f'id="acct-{coded.account}"')[1].split("</section>")[0]
    assert "Industry: computer software" in page and "Region: north america" in page
    assert "&lt;b&gt;MID_MARKET&lt;/b&gt;" in page and "<b>MID_MARKET</b>" not in html
    assert "COMPUTER_SOFTWARE" not in html  # the top-accounts table words it too
