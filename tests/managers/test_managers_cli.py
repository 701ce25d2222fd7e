"""`churnwatch explain` and `churnwatch report` as a person types them (exit codes, output).

One check runs the real console entry point in a child process; the others call the same
``churnwatch.cli.main`` in this process (``run_cli``, tests/conftest.py): the same exit codes and
output without importing the whole stack again for each command.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import duckdb
import pandas as pd
import pytest


def real_run(*args, home, timeout=300):
    cmd = [sys.executable, "-m", "churnwatch", *args, "--home", str(home.root)]
    env = {**os.environ, "COLUMNS": "200"}  # Rich wraps table cells to the terminal width
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def run(run_cli):
    """``run(*args, home=...)``: ``churnwatch ARGS --home HOME`` in this process."""
    return lambda *args, home: run_cli(*args, "--home", home.root)


def _riskiest(home) -> tuple[str, str, list[dict], list[dict]]:
    with duckdb.connect(str(home.store), read_only=True) as con:
        acc, tier, en, zh = con.execute("SELECT account_id, tier, reasons_en, reasons_zh FROM score_history "
                                        "WHERE as_of = ? ORDER BY health_score, account_id LIMIT 1",
                                        [home.dates[1]]).fetchone()
    return acc, tier, json.loads(en), json.loads(zh)


def test_explain_says_an_account_the_newest_run_did_not_score_is_no_longer_a_customer_or_lapsed(home, run,
                                                                                             tmp_path):
    """Its latest score is of the earlier date: it left before the newest run. A probe's `explain` said
    "High risk ... respond within 4 hours" of such an account, churned months before. One whose term ended
    within the grace period before the run is a lapse, as the API's ``stale_reason`` says (it said
    "churned" where the API said "lapsed")."""
    import datetime as dt

    from core.lapse import churn_days

    grace = home.settings.grace_days
    with duckdb.connect(str(home.store), read_only=True) as con:
        left_ids = [r[0] for r in con.execute(
            "SELECT account_id FROM score_history GROUP BY account_id HAVING max(as_of) = ? ORDER BY account_id",
            [home.dates[0]]).fetchall()]
        kept = con.execute("SELECT account_id FROM score_history WHERE as_of = ? ORDER BY account_id LIMIT 1",
                           [home.dates[1]]).fetchone()[0]
        # where each was last seen (its latest snapshot up to the newest run), not its last score (probe p28)
        seen = con.execute("SELECT account_id, as_of, days_to_term_end FROM snapshots WHERE as_of <= ? "
                           "QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY as_of DESC) = 1",
                           [home.dates[1]]).df().set_index("account_id").loc[left_ids]
    days = churn_days(seen["as_of"], seen["days_to_term_end"].astype("float64"), home.dates[1])
    within = [(a, d) for a, d in days.items() if (home.dates[1] - d) < dt.timedelta(days=grace)]
    assert within, "no account of the fixture lapsed within the grace period before the newest run"
    account, day = within[0]
    run_day = home.dates[1]
    # the same account with a grace period that has passed (a config of 1 day): no longer a customer
    from core.settings import dump_settings

    short = tmp_path / "short-grace.yaml"
    dump_settings(home.settings.model_copy(update={"grace_days": 1}), short)
    cases = [([], f"lapsed: its term ended on {day} and no term has started since (not scored by the run of "
                  f"{run_day}); a renewal within the {grace}-day grace period would keep it a customer; no playbook"),
             (["--config", str(short)], f"no longer a customer: churned on {day} (not scored by the run of {run_day}); "
                                        "no playbook")]
    for extra, words in cases:
        r = run("explain", account, *extra, home=home)
        assert r.returncode == 0, r.stderr[-2000:]
        out = " ".join(r.stdout.split())
        assert words in out, (account, out[-600:])
        assert "respond within" not in out and "[bold red]" not in out and "[/]" not in out  # styled, not markup
    zh = "".join(run("explain", account, "--lang", "zh-CN", home=home).stdout.split())
    assert f"续订中断：其订阅期于{day}结束" in zh and f"在{grace}天宽限期内续订" in zh and "响应时限" not in zh
    zh = "".join(run("explain", account, "--lang", "zh-CN", "--config", str(short), home=home).stdout.split())
    assert f"已不再是客户：于{day}流失" in zh and "响应时限" not in zh
    assert "no longer a customer" not in run("explain", kept, home=home).stdout  # still scored: as before


def test_explain_an_unknown_account_exits_2_with_a_clear_message(home):
    r = real_run("explain", "ACC-NOPE", home=home)  # the console entry point in a real process
    assert r.returncode == 2
    assert "'ACC-NOPE' has no score in the score history" in r.stderr and "for example" in r.stderr
    assert "Traceback" not in r.stderr


def test_explain_shows_health_trend_reasons_and_playbook_in_both_languages(home, run, monkeypatch):
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
    # MRR as the rest of the product writes it ("无月经常性收入" read as "no menstruation"), full-width colons
    assert "MRR" in out and "月经" not in out
    assert "负责人：" in out and "响应时限：" in out and "负责人:" not in out and "响应时限:" not in out
    monkeypatch.setenv("COLUMNS", "80")  # a probe's terminal: Chinese reasons were cut with "…", not wrapped
    narrow = run("explain", acc, "--lang", "zh-CN", home=home)
    assert narrow.returncode == 0 and "…" not in narrow.stdout, narrow.stdout


def test_a_risky_account_without_a_risk_signal_of_its_own_is_told_so(home, run, tmp_path, monkeypatch):
    """Probe p55: 19% of a consumer app's high-risk accounts read "Why: risk signals ... none" (their score rested
    on an annual renewal near, the month's MRR and an age, none worded on its own). A risky account without a
    risk reason is told where the risk comes from; a healthy one still reads "none"."""
    import shutil
    from types import SimpleNamespace

    root = tmp_path / "home"
    root.mkdir()
    shutil.copy(home.store, root / "store.duckdb")
    shutil.copy(home.root / "churnwatch.yaml", root / "churnwatch.yaml")
    if not (root / "demo-data").exists():
        (root / "demo-data").symlink_to(home.data)  # the data source, where the config says
    acc, tier, _, _ = _riskiest(home)
    assert tier in ("medium_risk", "high_risk")
    with duckdb.connect(str(root / "store.duckdb")) as con:
        con.execute("UPDATE score_history SET reasons_en = '[]', reasons_zh = '[]' WHERE account_id = ?", [acc])
        healthy = con.execute("SELECT account_id FROM score_history WHERE as_of = ? AND tier = 'healthy' "
                              "ORDER BY account_id LIMIT 1", [home.dates[1]]).fetchone()[0]
        con.execute("UPDATE score_history SET reasons_en = '[]', reasons_zh = '[]' WHERE account_id = ?", [healthy])
    copy = SimpleNamespace(root=root)
    monkeypatch.setenv("COLUMNS", "400")  # the sentence on one line of the table
    out = " ".join(run("explain", acc, home=copy).stdout.split())
    assert ("none stands out on its own: the risk comes from several signals together, each too small or too "
            f"typical to word (each one's share: churnwatch report --account {acc})") in out
    zh = "".join(run("explain", acc, "--lang", "zh-CN", home=copy).stdout.split())
    assert "没有单独突出的信号" in zh and f"churnwatchreport--account{acc}" in zh
    calm = " ".join(run("explain", healthy, home=copy).stdout.split())
    assert "none stands out" not in calm and " none " in calm
    r = run("report", "--account", acc, "--account", healthy, "--out", str(tmp_path / "r.html"), home=copy)
    assert r.returncode == 0, r.stderr[-2000:]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    risky, calm_page = (html.split(f'id="acct-{a}"')[1].split('id="acct-')[0] for a in (acc, healthy))
    assert "No signal stands out on its own: the risk comes from several together" in risky
    assert "No risk signal above the average." in calm_page and "No signal stands out" not in calm_page


def test_no_chinese_text_of_explain_the_report_the_workspace_or_the_reasons_reads_as_menstruation():
    """MRR was "月经常性收入": "无月经常性收入" / "没有月经常性收入" read "无月经" / "没有月经" ("no
    menstruation"). Every Chinese wording table that explain, the report, the workspace, the messages and
    the reasons are built from says "MRR" instead."""
    from churnwatch.commands.insights import _EXPLAIN_ZH
    from features.spec import CORE_FEATURES, GROUP_LABELS, NULL_REASONS
    from insights.report import STRINGS, TABLE_STRINGS
    from workflow.texts import TEXTS as MESSAGE_TEXTS
    from workspace.texts import TEXTS as PAGE_TEXTS
    from workspace.texts import VALIDATION_ZH

    texts = {**{f"explain.{k}": v for k, v in _EXPLAIN_ZH.items()},
             **{f"report.{k}": v for k, v in STRINGS["zh-CN"].items()},
             **{f"report.table.{k}": v for k, v in TABLE_STRINGS["zh-CN"].items()},
             **{f"messages.{k}": v for k, v in MESSAGE_TEXTS["zh-CN"].items()},
             **{f"workspace.{k}": v[1] for k, v in PAGE_TEXTS.items()},
             **{f"validation.{k}": v for k, v in VALIDATION_ZH.items()},
             **{f"reason.{f.name}": f.reason_zh for f in CORE_FEATURES},
             **{f"null.{k}": v[1] for k, v in NULL_REASONS.items()},
             **{f"group.{k}": v[1] for k, v in GROUP_LABELS.items()}}
    assert len(texts) > 300
    assert {k: v for k, v in texts.items() if "月经" in str(v)} == {}


def test_report_command_writes_the_file_and_refuses_bad_input(home, run, tmp_path):
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


def _mrr_from_raw(data, account_id, day) -> float:
    """MRR of the account's subscription terms in force on ``day``, from the raw file."""
    subs = pd.read_parquet(data / "subscriptions.parquet")
    subs = subs[subs["account_id"] == account_id]
    start, end = pd.to_datetime(subs["start_date"]), pd.to_datetime(subs["end_date"])
    t = pd.Timestamp(day)
    return float(subs.loc[(start <= t) & (end.isna() | (end > t)), "mrr"].sum())


def test_explain_prints_each_signals_actual_value(home, run):
    acc, _tier, en, _zh = _riskiest(home)
    with duckdb.connect(str(home.store), read_only=True) as con:
        row = con.execute("SELECT * FROM snapshots WHERE account_id = ? AND as_of = ?",
                          [acc, home.dates[1]]).df().iloc[0]
    r = run("explain", acc, home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    out = " ".join(r.stdout.split())
    for item in en:
        value = float(row[item["feature"]])  # the snapshot's value of the feature, read independently
        shown = f"{value:,.0f}" if value.is_integer() else f"{value:,.3g}"
        assert f"{item['feature']} = {shown}" in out, (item, out)
        assert item["text"] in out


def test_explain_prints_brackets_literally_recomputes_a_gone_snapshot_and_honours_points(altered, run):
    acc = altered.gone
    with duckdb.connect(str(altered.store), read_only=True) as con:
        day, n_scores = con.execute("SELECT max(as_of), count(*) FROM score_history WHERE account_id = ?",
                                    [acc]).fetchone()
    assert n_scores == 32
    r = run("explain", acc, "--points", "40", home=altered)
    assert r.returncode == 0, r.stderr[-2000:]
    out = " ".join(r.stdout.split())
    assert altered.csm == "[Team A] [/x]" and altered.csm in out  # a name, not Rich markup
    assert "health trend (32 scores)" in out  # --points above 26 is honoured
    # the snapshot of the latest date is gone: MRR recomputed from the raw source
    assert f"MRR {_mrr_from_raw(altered.data, acc, day):,.0f} " in out
    assert "health trend (12 scores)" in " ".join(run("explain", acc, home=altered).stdout.split())
    r = run("explain", acc, "--as-of", "2000-01-01", home=altered)
    assert r.returncode == 2 and f"'{acc}' has no score on or before 2000-01-01" in r.stderr


def test_report_out_folder_and_a_model_that_does_not_load(home, run, tmp_path):
    r = run("report", "--top", "1", "--out", str(tmp_path), "--model", str(home.bundle_dir), home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / f"churn-report-{home.dates[1]}.html").is_file()  # the default name inside the folder
    bad = run("report", "--top", "1", "--out", str(tmp_path / "x.html"), "--model", str(tmp_path / "nope"),
              home=home)
    assert bad.returncode == 2 and "--model" in bad.stderr and "cannot load" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "x.html").exists()


def test_explain_shows_the_display_name_from_the_data_source(altered, run, tmp_path):
    """``email.name_column`` names the accounts column shown beside the id (as on the workspace's account
    page); here the CSM column, whose "[Team A] [/x]" must come out as text, not Rich markup."""
    from core.settings import EmailSettings, dump_settings

    config = tmp_path / "named.yaml"
    dump_settings(altered.settings.model_copy(update={"email": EmailSettings(name_column="csm")}), config)
    r = run("explain", altered.gone, "--config", str(config), home=altered)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{altered.gone} · [Team A] [/x]" in " ".join(r.stdout.split())
    plain = run("explain", altered.gone, home=altered)  # no such column configured ("name"): the id alone
    assert f"{altered.gone} · " not in plain.stdout



def test_score_shows_the_display_name_beside_each_id(home, run, tmp_path):
    """The README says names are shown beside the ids in `score`; its table showed the ids alone (probe
    p29: 10-digit HubSpot ids). Here the CSM column stands in for a company name."""
    import shutil
    from types import SimpleNamespace

    from core.settings import EmailSettings, dump_settings

    root = tmp_path / "copy"
    shutil.copytree(home.root, root)
    config = root / "named.yaml"
    dump_settings(home.settings.model_copy(update={"email": EmailSettings(name_column="csm")}), config)
    r = run("score", "--as-of", str(home.dates[1]), "--config", str(config), "--model", str(home.bundle_dir),
            home=SimpleNamespace(root=root))
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [line for line in r.stdout.split("highest risk as of")[1].splitlines() if "│" in line]
    with duckdb.connect(str(root / "store.duckdb"), read_only=True) as con:
        csm = dict(con.execute("SELECT account_id, csm FROM snapshots WHERE as_of = ?", [home.dates[1]]).fetchall())
    shown = [line.split("│")[1].strip() for line in rows if line.split("│")[1].strip().startswith(tuple(csm))]
    assert len(shown) == 10
    # the ten highest churn probabilities, highest first (the integer health ties; a probe saw 99.0% above 98.6%
    # above 98.3% above 98.8%)
    shown_p = [float(line.split("│")[4].strip().lstrip("<>").rstrip("%")) for line in rows if "%" in line.split("│")[4]]
    with duckdb.connect(str(root / "store.duckdb"), read_only=True) as con:
        top = con.execute("SELECT churn_probability FROM score_history WHERE as_of = ? ORDER BY 1 DESC LIMIT 10",
                          [home.dates[1]]).fetchall()
    assert shown_p == sorted(shown_p, reverse=True) and len(shown_p) == 10
    assert shown_p[0] == pytest.approx(100 * top[0][0], abs=0.06) and shown_p[-1] == pytest.approx(100 * top[-1][0],
                                                                                                   abs=0.06)
    for cell in shown:
        account, _, name = cell.partition(" · ")
        assert name and csm[account].startswith(name.rstrip("…")), cell


def test_score_without_as_of_scores_the_data_end_of_the_source_read_now(home, run, tmp_path):
    """Probe p31's weekly run: `score --data NEW_EXPORT` scored (and replaced) last week's date, the store's
    data end, instead of the new export's. Here the newer export is the same data with its end a week on."""
    import shutil
    from types import SimpleNamespace

    from core.settings import dump_settings

    root = tmp_path / "copy"
    shutil.copytree(home.root, root)
    week_on = home.dates[1] + dt.timedelta(days=7)
    dump_settings(home.settings.model_copy(update={"data_end": week_on}), root / "churnwatch.yaml")
    r = run("score", "--model", str(home.bundle_dir), home=SimpleNamespace(root=root))
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"as of {week_on} with model version" in " ".join(r.stdout.split())
    with duckdb.connect(str(root / "store.duckdb"), read_only=True) as con:
        dates = [d for (d,) in con.execute("SELECT DISTINCT as_of FROM score_history ORDER BY 1").fetchall()]
        before = con.execute("SELECT count(*) FROM score_history WHERE as_of = ?", [home.dates[1]]).fetchone()[0]
    assert dates[-1] == week_on and home.dates[1] in dates  # last week's scores kept as they were
    with duckdb.connect(str(home.store), read_only=True) as con:
        assert before == con.execute("SELECT count(*) FROM score_history WHERE as_of = ?",
                                     [home.dates[1]]).fetchone()[0]
