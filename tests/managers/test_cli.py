"""`churnwatch explain` and `churnwatch report` as a person types them (real processes, exit codes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb


def run(*args, home, timeout=300):
    cmd = [sys.executable, "-m", "churnwatch", *args, "--home", str(home.root)]
    env = {**os.environ, "COLUMNS": "200"}  # Rich wraps table cells to the terminal width
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _riskiest(home) -> tuple[str, str, list[dict], list[dict]]:
    with duckdb.connect(str(home.store), read_only=True) as con:
        acc, tier, en, zh = con.execute("SELECT account_id, tier, reasons_en, reasons_zh FROM score_history "
                                        "WHERE as_of = ? ORDER BY health_score, account_id LIMIT 1",
                                        [home.dates[1]]).fetchone()
    return acc, tier, json.loads(en), json.loads(zh)


def test_explain_an_unknown_account_exits_2_with_a_clear_message(home):
    r = run("explain", "ACC-NOPE", home=home)
    assert r.returncode == 2
    assert "'ACC-NOPE' has no score in the score history" in r.stderr and "for example" in r.stderr
    assert "Traceback" not in r.stderr


def test_explain_shows_health_trend_reasons_and_playbook_in_both_languages(home):
    acc, tier, en, zh = _riskiest(home)
    r = run("explain", acc, home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    out = " ".join(r.stdout.split())
    assert acc in out and "health trend (2 scores)" in out and "playbook" in out
    assert en[0]["feature"] in out
    assert home.settings.playbooks[tier].respond_within in out
    r = run("explain", acc, "--lang", "zh-CN", home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    out = "".join(r.stdout.split())
    assert "健康分趋势" in out and "应对方案" in out
    assert "".join(zh[0]["text"].split())[:8] in out


def test_report_command_writes_the_file_and_refuses_bad_input(home, tmp_path):
    out = tmp_path / "r.html"
    r = run("report", "--tier", "high", "--lang", "zh", "--top", "2", "--out", str(out),
            "--model", str(home.bundle_dir), home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.exists() and "高风险" in out.read_text(encoding="utf-8") and "2 account pages" in r.stdout
    bad = run("report", "--tier", "extreme", home=home)
    assert bad.returncode == 2 and "healthy, low_risk, medium_risk, high_risk" in bad.stderr
    bad = run("report", "--account", "ACC-NOPE", home=home)
    assert bad.returncode == 2 and "'ACC-NOPE' has no score" in bad.stderr
    bad = run("report", "--lang", "fr", home=home)
    assert bad.returncode == 2 and "en, zh-CN" in bad.stderr
