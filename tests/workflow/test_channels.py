"""Digests per channel (issue 15 item 3): one message per channel for 400 accounts, received by a
real local HTTP server; each platform's format and limits; Chinese when configured; the generic
webhook's signature; escaping of user text; idempotency keys."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import random
import re
import urllib.parse
from pathlib import Path

import pytest

from core.settings import Webhook
from tests.workflow.receiver import Receiver
from workflow import channels
from workflow.channels import GenericMessage, digest, ordered, per_account
from workflow.messages import ActionItem
from workflow.send import post
from workflow.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

NOW = dt.datetime(2025, 12, 24, 9, 0)
LINK = "https://cw.example.com"
FORMATS = ("slack", "dingtalk", "wecom", "generic")


def make_items(n: int = 400, seed: int = 0) -> list[ActionItem]:
    rng = random.Random(seed)
    return [ActionItem(
        account_id=f"acct-{k:03d}", health_score=rng.randint(5, 59),
        tier=rng.choice(["high_risk", "medium_risk", "low_risk"]), as_of=dt.date(2025, 12, 22),
        top_reason="Logins fell 62% over 30 days", top_reason_zh="近 30 天登录次数下降 62%",
        mrr=rng.choice([None, 500.0, 1200.0]), expected_loss=round(rng.random() * 2000, 2),
        owner=rng.choice([None, "Li Lei"]), due_at=NOW + dt.timedelta(hours=rng.randint(-10, 72)),
        alert_ids=(f"alert{k}",)) for k in range(n)]


def hook(fmt: str, url: str = "http://127.0.0.1:9/hook", **kw) -> Webhook:
    return Webhook(name=f"{fmt}-hook", url=url, format=fmt, **kw)


def markdown_of(body: bytes) -> str:
    md = json.loads(body)["markdown"]
    return md.get("text") or md["content"]


def slack_text(body: bytes) -> str:
    return "\n".join(json.dumps(b, ensure_ascii=False) for b in json.loads(body)["blocks"])


@pytest.fixture
def receivers():
    made = {fmt: Receiver() for fmt in FORMATS}
    yield made
    for r in made.values():
        r.close()


def test_400_alerts_become_one_digest_per_channel(receivers):
    items = make_items()
    hooks = [hook(fmt, receivers[fmt].url, secret="s3cret" if fmt in ("generic", "dingtalk") else None)
             for fmt in FORMATS]
    for h in hooks:
        outcome = post(digest(h, items, None, LINK, "run-7", NOW), h)
        assert (outcome.status, outcome.attempts) == ("delivered", 1)
    assert {fmt: len(r.requests) for fmt, r in receivers.items()} == dict.fromkeys(FORMATS, 1)
    got = {fmt: r.requests[0] for fmt, r in receivers.items()}
    loss_order = [i.account_id for i in ordered(items)]

    slack = json.loads(got["slack"].body)
    assert len(slack["blocks"]) <= channels.SLACK_MAX_BLOCKS
    assert "###" not in got["slack"].body.decode()
    assert slack["blocks"][0] == {"type": "header", "text": {"type": "plain_text",
                                                             "text": "churnwatch: 400 accounts need action"}}
    assert all(len(b["text"]["text"]) <= 3000 for b in slack["blocks"] if b["type"] == "section")
    shown = re.findall(r"\|(acct-\d{3})>", slack_text(got["slack"].body))
    assert shown == loss_order[: len(shown)] and 20 <= len(shown) < 400
    assert f"… and {400 - len(shown)} more" in slack["blocks"][-1]["elements"][0]["text"]
    assert "<https://cw.example.com/tasks|full list>" in slack["blocks"][-1]["elements"][0]["text"]

    for fmt in ("dingtalk", "wecom"):
        md = markdown_of(got[fmt].body)
        assert len(md.encode()) <= 4096
        assert md.startswith("### churnwatch: 400 accounts need action")
        listed = re.findall(r"\[(acct-\d{3})\]", md)
        assert listed == loss_order[: len(listed)] and len(listed) >= 8
        assert f"… and {400 - len(listed)} more · [full list](https://cw.example.com/tasks)" in md

    sent = GenericMessage.model_validate_json(got["generic"].body)
    assert (sent.type, sent.count, sent.more, len(sent.items)) == ("digest", 400, 0, 400)
    assert [i.account_id for i in sent.items] == loss_order
    raw = json.loads(got["generic"].body)
    assert raw["schema"] == "churnwatch.webhook/v1"
    assert raw["items"][0]["as_of"] == "2025-12-22" and raw["generated_at"] == "2025-12-24T09:00:00Z"
    assert re.fullmatch(r"2025-12-\d\dT\d\d:00:00Z", raw["items"][0]["due_at"])
    assert sum(raw["by_tier"].values()) == 400
    assert raw["mrr_at_risk"] == pytest.approx(sum(i.mrr or 0 for i in items))


def test_header_counts_mrr_and_due_times_are_dates():
    items = [
        ActionItem("a1", 20, "high_risk", dt.date(2025, 12, 22), "Logins fell", mrr=1000.0, expected_loss=800.0,
                   owner="Li Lei", due_at=dt.datetime(2025, 12, 25, 0, 0)),
        ActionItem("a2", 45, "medium_risk", dt.date(2025, 12, 22), "Tickets rose", mrr=2500.5, expected_loss=900.0,
                   due_at=dt.datetime(2025, 12, 24, 8, 30, tzinfo=dt.UTC)),
        ActionItem("a3", 30, "high_risk", dt.date(2025, 12, 22), None, mrr=None, expected_loss=None),
    ]
    md = markdown_of(digest(hook("wecom"), items, "en", LINK, "r1", NOW).body)
    assert "**High risk 2 · Medium risk 1**" in md
    assert "MRR at risk 3,500 · expected loss 1,700 · scored 2025-12-22" in md
    assert "due 2025-12-25 00:00 UTC" in md and "00:00:00" not in md
    assert "due 2025-12-24 08:30 UTC (overdue)" in md  # before NOW (09:00 UTC)
    assert "owner unassigned" in md and "no deadline" in md
    assert [m for m in re.findall(r"\[(a\d)\]", md)] == ["a2", "a1", "a3"]  # by expected loss, unknown last
    assert "- **High risk** (2): Retention squad" in md and "(respond within 4 hours)" in md


def test_order_breaks_ties_on_health():
    base = dict(tier="high_risk", as_of=dt.date(2025, 1, 1), expected_loss=100.0)
    items = [ActionItem("b", 30, **base), ActionItem("a", 10, **base), ActionItem("c", 5, **{**base,
                                                                                          "expected_loss": 50.0})]
    assert [i.account_id for i in ordered(items)] == ["a", "b", "c"]


@pytest.mark.parametrize("fmt", ["dingtalk", "wecom"])
def test_chinese_channels_get_chinese(fmt):
    items = make_items(30)
    md = markdown_of(digest(hook(fmt, lang="zh-CN"), items, None, LINK, "r1", NOW).body)
    assert md.startswith("### churnwatch：30 个客户需要跟进")
    assert "高风险" in md and "中风险" in md and "健康分" in md and "预计损失" in md
    assert "主要原因：近 30 天登录次数下降 62%" in md and "截止 2025-12-" in md
    assert "成立挽留小组（客户成功、销售、产品、高管）" in md and "（4 小时内响应）" in md
    assert "3 个工作日内响应" in md
    assert "……另有" in md and "[查看完整列表](https://cw.example.com/tasks)" in md
    for english in ("need action", "High risk", "health ", "reason:", "due ", "Logins fell", "Retention squad"):
        assert english not in md
    one = markdown_of(per_account(hook(fmt, lang="zh-CN"), items[0], None, LINK, "r1", NOW).body)
    assert "客户 acct-000 需要跟进" in one and "处理方式：" in one and "查看客户" in one


def test_english_channel_stays_english_and_lang_argument_wins():
    items = make_items(5)
    assert "need action" in markdown_of(digest(hook("wecom"), items, None, LINK, "r", NOW).body)
    assert "个客户需要跟进" in markdown_of(digest(hook("wecom"), items, "zh-CN", LINK, "r", NOW).body)
    slack = json.loads(digest(hook("slack", lang="zh-CN"), items, None, LINK, "r", NOW).body)
    assert slack["blocks"][0]["text"]["text"] == "churnwatch：5 个客户需要跟进"


def test_generic_signature_verifies_and_a_tampered_body_does_not(receivers):
    h = hook("generic", receivers["generic"].url, secret="s3cret")
    assert post(digest(h, make_items(3), None, LINK, "r1", NOW), h).status == "delivered"
    got = receivers["generic"].requests[0]
    ts = int(got.headers[TIMESTAMP_HEADER])
    assert got.headers[SIGNATURE_HEADER] == "v1=" + hmac.new(b"s3cret", f"{ts}.".encode() + got.body,
                                                             hashlib.sha256).hexdigest()
    assert verify("s3cret", got.headers, got.body)
    lower = {k.lower(): v for k, v in got.headers.items()}
    assert verify("s3cret", lower, got.body)  # header names in any case
    assert not verify("s3cret", got.headers, got.body.replace(b"acct-", b"acct_"))
    assert not verify("other", got.headers, got.body)
    assert not verify("s3cret", got.headers, got.body, tolerance=300, now=ts + 301)  # replayed too late
    assert not verify("s3cret", {TIMESTAMP_HEADER: "x", SIGNATURE_HEADER: "v1=00"}, got.body)
    assert not verify("s3cret", {}, got.body)
    unsigned = digest(hook("generic"), make_items(3), None, LINK, "r1", NOW)
    assert SIGNATURE_HEADER not in unsigned.headers


def test_dingtalk_url_is_signed_when_a_secret_is_set(receivers):
    h = hook("dingtalk", receivers["dingtalk"].url + "?access_token=abc", secret="SECxyz")
    assert post(digest(h, make_items(3), None, LINK, "r1", NOW), h).status == "delivered"
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(receivers["dingtalk"].requests[0].path).query))
    assert query["access_token"] == "abc"
    expected = base64.b64encode(hmac.new(b"SECxyz", f"{query['timestamp']}\nSECxyz".encode(),
                                         hashlib.sha256).digest()).decode()
    assert query["sign"] == expected
    assert "sign=" not in digest(hook("dingtalk"), make_items(3), None, LINK, "r1", NOW).url


EVIL_ID = "<script>alert(1)</script>&[x](http://evil.example)"
EVIL_REASON = "**bold** [click](http://evil.example) <b>x</b> & more\n### heading"


def evil_items() -> list[ActionItem]:
    return [ActionItem(EVIL_ID, 10, "high_risk", dt.date(2025, 12, 22), EVIL_REASON, EVIL_REASON,
                       mrr=10.0, expected_loss=5.0, owner="<@all> _x_", name=None)]


@pytest.mark.parametrize("fmt", ["dingtalk", "wecom"])
@pytest.mark.parametrize("one", [False, True])
def test_markdown_escapes_user_text(fmt, one):
    make = (lambda h: per_account(h, evil_items()[0], None, LINK, "r", NOW)) if one else \
        (lambda h: digest(h, evil_items(), None, LINK, "r", NOW))
    md = markdown_of(make(hook(fmt)).body)
    assert "<script>" not in md and "<b>" not in md and "<@all>" not in md
    assert "&lt;script&gt;" in md and "&amp;" in md and "&lt;@all&gt;" in md
    assert re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(http://evil", md) is None  # no link to the evil site
    assert r"\[click\]" in md and r"\*\*bold\*\*" in md
    assert not re.search(r"^### heading", md, re.MULTILINE)  # a newline in a reason starts nothing
    assert "https://cw.example.com/accounts/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%26%5Bx%5D%28http" in md


@pytest.mark.parametrize("one", [False, True])
def test_slack_escapes_user_text(one):
    h = hook("slack")
    msg = per_account(h, evil_items()[0], None, LINK, "r", NOW) if one else digest(h, evil_items(), None, LINK, "r",
                                                                                 NOW)
    blocks = json.loads(msg.body)["blocks"]
    texts = " ".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert "<script>" not in texts and "<b>" not in texts and "<@all>" not in texts
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;[x](http://evil.example)" in texts
    assert "&lt;b&gt;x&lt;/b&gt; &amp; more ### heading" in texts
    links = re.findall(r"<([^|>]+)\|", texts)
    assert links and all(u.startswith("https://cw.example.com/accounts/%3Cscript") for u in links)


def test_generic_keeps_user_text_as_data():
    sent = GenericMessage.model_validate_json(digest(hook("generic"), evil_items(), None, LINK, "r", NOW).body)
    assert sent.items[0].account_id == EVIL_ID and sent.items[0].top_reason == EVIL_REASON


def test_idempotency_keys():
    items = make_items(4)
    a, b = hook("slack"), Webhook(name="other", url="http://127.0.0.1:9/x", format="slack")
    key = digest(a, items, None, LINK, "run-1", NOW).idempotency_key
    assert key == digest(a, items[:2], None, LINK, "run-1", NOW + dt.timedelta(hours=1)).headers["Idempotency-Key"]
    assert key != digest(a, items, None, LINK, "run-2", NOW).idempotency_key
    assert key != digest(b, items, None, LINK, "run-1", NOW).idempotency_key
    one = per_account(a, items[0], None, LINK, "run-1", NOW)
    assert one.idempotency_key == per_account(a, items[0], None, LINK, "run-9", NOW).idempotency_key
    assert one.idempotency_key == f"alert0-{hashlib.sha256(b'slack-hook').hexdigest()[:8]}"  # as before
    assert one.idempotency_key != per_account(b, items[0], None, LINK, "run-1", NOW).idempotency_key
    assert one.headers["Idempotency-Key"] == one.idempotency_key


def test_per_account_message_in_each_format():
    item = make_items(1)[0]
    for fmt in FORMATS:
        msg = per_account(hook(fmt), item, None, LINK, "r1", NOW)
        text = msg.body.decode()
        assert "acct-000" in text and "https://cw.example.com/accounts/acct-000" in text
    sent = GenericMessage.model_validate_json(per_account(hook("generic"), item, "en", LINK, "r1", NOW).body)
    assert (sent.type, sent.count, sent.title) == ("account", 1, "churnwatch: acct-000 needs action")
    assert sent.items[0].action.startswith("Retention squad") or sent.items[0].tier != "high_risk"


def test_the_readme_examples_are_what_is_sent():
    """README "Digests and delivery" shows a WeCom digest in both languages: it must stay true."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Digests and delivery", 1)[1].split("\n## ", 1)[0]
    shown = re.findall(r"```\n(.*?)\n```", section, re.DOTALL)
    items = [
        ActionItem("acme-co", 23, "high_risk", dt.date(2025, 12, 22), "Logins fell 62% in 30 days",
                   "近 30 天登录次数下降 62%", mrr=3400.0, expected_loss=2516.0, owner="Li Lei",
                   due_at=dt.datetime(2025, 12, 24, 13, 0)),
        ActionItem("globex", 41, "medium_risk", dt.date(2025, 12, 22), "3 open high-priority tickets",
                   "3 个未解决的高优先级工单", mrr=1200.0, expected_loss=540.0, owner=None,
                   due_at=dt.datetime(2025, 12, 25, 9, 0)),
    ]
    sent = [markdown_of(digest(hook("wecom", lang=lang), items, None, "https://churnwatch.example.com", "2025-12-22",
                               NOW).body) for lang in ("en", "zh-CN")]
    assert shown[:2] == sent


def test_no_accounts_no_digest():
    with pytest.raises(ValueError, match="'slack-hook' needs at least one account"):
        digest(hook("slack"), [], None, LINK, "r", NOW)


@pytest.mark.parametrize("fmt", FORMATS[:3])
def test_a_very_long_reason_is_cut_not_the_digest(fmt):
    items = [dataclasses.replace(i, top_reason="x" * 5000) for i in make_items(40)]
    body = digest(hook(fmt), items, None, LINK, "r", NOW).body.decode()
    assert "x" * 199 + "…" in body and "x" * 201 not in body
    assert len(re.findall(r"acct-\d{3}", body)) >= 5


def test_run_id_and_now_may_be_left_out():
    item = dataclasses.replace(make_items(1)[0], due_at=dt.datetime(2000, 1, 1, 12, 0))
    md = markdown_of(digest(hook("wecom"), [item], "en", LINK).body)
    assert "(overdue)" in md and "[full list](https://cw.example.com/tasks)" in md
    signed_now = digest(hook("generic", secret="k"), [item], "en", LINK)
    assert verify("k", signed_now.headers, signed_now.body)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_digest_without_any_mrr_counts_customers_in_both_languages(fmt):
    """Scores with no MRR at all (a flat table's, a store with no MRR column): no "MRR at risk 0"
    and no "MRR –" per line, but the number of customers; lowest health first."""
    items = [dataclasses.replace(i, mrr=None, expected_loss=None) for i in make_items(12)]
    for lang, words, gone in (
            ("en", "no MRR known: 12 customers, lowest health first · scored 2025-12-22",
             ("MRR at risk", "MRR –", "expected loss")),
            ("zh-CN", "无已知 MRR：12 个客户，健康分最低的在前 · 评分日期 2025-12-22",
             ("风险 MRR", "MRR –", "预计损失"))):
        body = digest(hook(fmt, lang=lang), items, None, LINK, "r1", NOW).body
        if fmt == "generic":
            raw = json.loads(body)
            assert raw["mrr_at_risk"] is None and raw["expected_loss"] is None and raw["count"] == 12
            continue
        text = markdown_of(body) if fmt != "slack" else slack_text(body)
        assert words in text
        assert not [w for w in gone if w in text], text
        healths = [float(h) for h in re.findall(r"(?:health|健康分) (\d+)", text)]
        assert healths == sorted(healths) and len(healths) >= 5
    one = markdown_of(per_account(hook("wecom"), items[0], "en", LINK, "r1", NOW).body)
    assert "MRR" not in one and "expected loss" not in one
    with_mrr = markdown_of(digest(hook("wecom"), make_items(12), "en", LINK, "r1", NOW).body)
    assert "MRR at risk" in with_mrr and "no MRR known" not in with_mrr
