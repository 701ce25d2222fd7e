"""E-mails to accounts (issue 15 item 4): rendered from the account's own facts in English and
Chinese, received by a real SMTP server, recorded against the account; failures recorded."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.options import ExitError
from core.errors import ConfigError
from core.settings import EmailSettings, Settings
from tests.workflow.outreach_helpers import parts, reasons, smtp_server, write_accounts, write_store
from workflow import db
from workflow.audit import history
from workflow.email import EMAILS, emails_of, render, send_email, value_reminder
from workflow.facts import account_facts

HOSTILE = '<script>alert("x")</script> & Sons'
NOW = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def home(tmp_path):
    """A store with two accounts scored on 2026-01-01 (A1 medium risk, hostile name, Chinese contact)."""
    write_store(tmp_path / "store.duckdb", scores=[
        {"account_id": "A1", "as_of": dt.date(2026, 1, 1), "health_score": 45, "tier": "medium_risk",
         "reasons_en": reasons(("days_since_last_login", "No login for 30 days"),
                               ("logins_30d_change", "Logins down 62% vs the previous 30 days")),
         "reasons_zh": reasons(("days_since_last_login", "已30天未登录"),
                               ("logins_30d_change", "近30天登录次数较前30天下降62%"))},
        {"account_id": "B2", "as_of": dt.date(2026, 1, 1), "health_score": 85, "tier": "healthy"}],
        snapshots=[
        {"account_id": "A1", "as_of": dt.date(2026, 1, 1), "logins_90d": 1240.0, "active_users_30d": 12,
         "core_events_30d": 0.0, "evt_report_run_90d": 310.0, "mrr": 990.0, "csm": "Ana Li"},
        {"account_id": "B2", "as_of": dt.date(2026, 1, 1), "logins_90d": 5.0, "active_users_30d": 1,
         "core_events_30d": 3.0, "evt_report_run_90d": 0.0, "mrr": 10.0, "csm": "Ana Li"}])
    write_accounts(tmp_path / "data", [
        {"account_id": "A1", "name": HOSTILE, "contact_name": "李雷", "contact_email": "li.lei@example.com",
         "language": "zh"},
        {"account_id": "B2", "name": "Beta Ltd", "contact_name": "Bo", "contact_email": "bo@example.com",
         "language": ""}])
    return tmp_path


def settings_for(home, port: int | None = None, **email) -> Settings:
    cfg = {"enabled": port is not None, "host": "127.0.0.1", "port": port or 1, "sender": "care@vendor.example",
           "reply_to": "csm@vendor.example", "timeout_seconds": 5, **email}
    return Settings(data=str(home / "data"), email=EmailSettings(**cfg))


@pytest.fixture
def engine(home):
    eng = db.open_store(db.operations_url(home))
    yield eng
    db.dispose_all()


def test_facts_come_from_the_score_the_snapshot_and_the_accounts_table(home):
    facts = account_facts(home / "store.duckdb", settings_for(home), "A1")
    assert (facts.name, facts.contact, facts.email, facts.lang) == (HOSTILE, "李雷", "li.lei@example.com", "zh")
    assert (facts.tier, facts.health_score, facts.csm, facts.mrr) == ("medium_risk", 45, "Ana Li", 990.0)
    assert facts.reasons_en[0] == "No login for 30 days" and facts.reasons_zh[1].endswith("下降62%")
    assert facts.reason_features == ("days_since_last_login", "logins_30d_change")
    assert facts.numbers["logins_90d"] == 1240 and not facts.churned
    with pytest.raises(Exception, match="'ZZ' has no score"):
        account_facts(home / "store.duckdb", settings_for(home), "ZZ")


def test_value_reminder_quotes_the_accounts_own_numbers():
    numbers = {"logins_90d": 1240.0, "active_users_30d": 12.0, "core_events_30d": 0.0, "evt_report_run_90d": 310.0,
               "evt_export_90d": 20.0}
    assert value_reminder(numbers, "en") == [
        "Your team logged in 1,240 times in the last 90 days.", "12 people on your team used it in the last 30 days.",
        "Your team recorded 310 “report run” events in the last 90 days."]
    assert value_reminder(numbers, "zh-CN")[0] == "过去 90 天，您的团队共登录 1,240 次。"
    assert value_reminder({}, "en") == []
    assert value_reminder(numbers, "en", skip_events=["report run"])[-1] == \
        "Your team recorded 20 “export” events in the last 90 days."  # logins are said already


def test_email_arrives_in_both_languages_with_the_accounts_details(home, engine):
    with smtp_server() as inbox:
        settings = settings_for(home, inbox.port)
        facts = account_facts(home / "store.duckdb", settings, "A1")
        zh = send_email(engine, settings, facts, now=NOW)  # the contact's language: zh -> zh-CN
        en = send_email(engine, settings, facts, lang="en", now=NOW, actor="ana")
    assert zh["status"] == en["status"] == "sent" and zh["error"] is None
    assert [m["To"].addresses[0].addr_spec for m in inbox.messages] == ["li.lei@example.com"] * 2
    assert inbox.envelopes[0] == ("care@vendor.example", ["li.lei@example.com"])
    msg_zh, msg_en = inbox.messages
    assert max(len(line) for line in inbox.raw[0].splitlines() if not line.startswith(b"Subject:")) <= 998
    body_lines = inbox.raw[0].split(b"\r\n\r\n", 1)[1].splitlines()
    assert max(len(line) for line in body_lines) <= 76  # quoted-printable lines (RFC 2045)
    assert msg_zh["Subject"] == f"{HOSTILE}：我们能为您的团队做些什么？电话沟通或培训，由您选择"
    assert msg_en["Subject"] == f"{HOSTILE}: can we help your team? A call or a training session, your choice"
    assert msg_zh["Message-ID"] == zh["message_id"] and msg_en["Reply-To"] == "csm@vendor.example"
    assert msg_zh["To"].addresses[0].display_name == "李雷"
    text_zh, html_zh = parts(msg_zh)
    assert text_zh.startswith("李雷，您好：") and "- 已30天未登录" in text_zh
    assert "- 过去 90 天，您的团队共登录 1,240 次。" in text_zh and "核心功能" not in text_zh  # zero: left out
    assert msg_zh.get_body(("plain",)).get_content_charset() == "utf-8"
    text_en, html_en = parts(msg_en)
    assert "- No login for 30 days\n- Logins down 62% vs the previous 30 days" in text_en
    assert "Your team recorded 310 “report run” events in the last 90 days." in text_en
    assert f"make sure it still does what {HOSTILE} needs" in text_en  # the plain part is not escaped
    for html in (html_zh, html_en):
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Sons" in html
    assert "<li>已30天未登录</li>" in html_zh and "<li>No login for 30 days</li>" in html_en
    rows = emails_of(engine, "A1")
    assert [(r["lang"], r["status"], r["template"], r["to_addr"]) for r in rows] == [
        ("en", "sent", "medium_risk", "li.lei@example.com"), ("zh-CN", "sent", "medium_risk", "li.lei@example.com")]
    with engine.connect() as conn:
        entries = history(conn, "account", "A1")
    assert [(e["action"], e["actor"]) for e in entries] == [("email sent", "churnwatch"), ("email sent", "ana")]
    assert entries[1]["after"]["subject"] == msg_en["Subject"]


def test_refused_and_unreachable_servers_are_recorded_failed_with_the_reason(home, engine):
    facts = account_facts(home / "store.duckdb", settings_for(home), "A1")
    with smtp_server(refuse="550 5.1.1 mailbox unavailable") as inbox:
        refused = send_email(engine, settings_for(home, inbox.port), facts, now=NOW)
    assert inbox.messages == []
    assert refused["status"] == "failed"
    assert "refused the recipient" in refused["error"] and "550 5.1.1 mailbox unavailable" in refused["error"]
    with smtp_server() as inbox:
        port = inbox.port
    down = send_email(engine, settings_for(home, port), facts, now=NOW)  # nothing listens there any more
    assert down["status"] == "failed" and down["error"].startswith(f"cannot reach 127.0.0.1:{port}")
    no_password = send_email(engine, settings_for(home, port, username="u", password_env="CW_TEST_NO_SUCH_VAR"),
                             facts, now=NOW)
    assert "CW_TEST_NO_SUCH_VAR" in no_password["error"]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(EMAILS.c.status, EMAILS.c.error).order_by(EMAILS.c.id)).all()
    assert [s for s, _ in stored] == ["failed"] * 3 and stored[0][1] == refused["error"]


def test_disabled_is_skipped_and_a_bad_template_is_refused(home, engine):
    settings = settings_for(home)  # enabled: false
    facts = account_facts(home / "store.duckdb", settings, "A1")
    row = send_email(engine, settings, facts, now=NOW)
    assert row["status"] == "skipped" and "email.enabled" in row["error"]
    with pytest.raises(ConfigError, match=r"no e-mail template 'nope' in en \(templates: high_risk, low_risk, "):
        render(facts, settings, "en", "nope")
    with pytest.raises(ConfigError, match="language 'fr': expected one of en, zh-CN"):
        render(facts, settings, "fr")
    healthy = account_facts(home / "store.duckdb", settings, "B2")
    with pytest.raises(ConfigError, match="no e-mail template 'healthy'"):
        render(healthy, settings)
    assert render(healthy, settings, template="low_risk").lang == "en"  # no language in the data: email.lang


def test_templates_folder_overrides_a_builtin_template(home, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "low_risk.en.j2").write_text("{% block subject %}Hi {{ name }} ({{ tier_label }}){% endblock %}\n"
                                           "{% block greeting %}Dear {{ contact }},{% endblock %}", encoding="utf-8")
    settings = settings_for(home, templates=str(folder))
    rendered = render(account_facts(home / "store.duckdb", settings, "B2"), settings, "en", "low_risk")
    assert rendered.subject == "Hi Beta Ltd (Healthy)"
    assert rendered.text.startswith("Dear Bo,\n")


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_preview_and_send(home):
    with smtp_server() as inbox:
        cfg = {"data": str(home / "data"), "email": {"enabled": True, "port": inbox.port, "sender": "c@v.example"}}
        (home / "churnwatch.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        shown = cli("email", "preview", "A1", "--lang", "en", "--out", str(home / "a1"), "--home", str(home))
        assert shown.exit_code == 0, shown.output
        assert "To: li.lei@example.com" in shown.output and "Subject: <script>" in shown.output
        assert "&lt;script&gt;" in (home / "a1.html").read_text(encoding="utf-8")
        sent = cli("email", "send", "A1", "--home", str(home))
        assert sent.exit_code == 0, sent.output
        assert "sent:" in sent.output and len(inbox.messages) == 1
        bad = cli("email", "send", "A1", "--lang", "fr", "--home", str(home))
        assert isinstance(bad.exception, ExitError) and bad.exception.code == 2  # cli.main: one line, exit 2
        assert str(bad.exception) == "--lang 'fr': expected en or zh-CN" and len(inbox.messages) == 1
    db.dispose_all()


def test_a_sender_with_an_accented_name_is_sent_with_its_name_and_address(home, engine):
    """Probe p31: "Équipe Succès Client <care@example.com>" failed every e-mail (an ascii codec error), and
    "Customer Success <care@example.com>" was sent with a From holding no address."""
    with smtp_server() as inbox:
        settings = settings_for(home, inbox.port, sender="Équipe Succès Client <care@example.com>")
        facts = account_facts(home / "store.duckdb", settings, "A1")
        sent = send_email(engine, settings, facts, lang="en", now=NOW)
    assert sent["status"] == "sent", sent["error"]
    [msg] = inbox.messages
    sender = msg["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Équipe Succès Client", "care@example.com")
    assert inbox.envelopes[0][0] == "care@example.com"
    # a bare address takes the signature as its name, as before
    assert settings_for(home, 1).email.sender == "care@vendor.example"
    # no address at all is a config error, named when churnwatch.yaml is read
    with pytest.raises(ValueError, match=r"'Customer Success' has no e-mail address: give care@example.com or "
                                         r"\"Name <care@example.com>\""):
        settings_for(home, 1, sender="Customer Success")
