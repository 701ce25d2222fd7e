"""Delivery (issue 15 item 3) against a real local HTTP receiver: Retry-After, backoff, giving up on
4xx, malformed and slow answers, DingTalk/WeCom error codes, and the per-channel rate limiter."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import socket
import time

import httpx
import pytest

from core.settings import Webhook
from tests.workflow.receiver import Receiver
from workflow.channels import digest
from workflow.messages import ActionItem
from workflow.send import RateLimiters, TokenBucket, post, retry_after_seconds
from workflow.signing import verify

NOW = dt.datetime(2025, 12, 24, 9, 0)
ITEMS = [ActionItem("acct-1", 20, "high_risk", dt.date(2025, 12, 22), "Logins fell", mrr=100.0, expected_loss=80.0)]


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(*script) -> Receiver:
        made.append(Receiver(list(script)))
        return made[-1]

    yield make
    for r in made:
        r.close()


def hook(url: str, fmt: str = "generic", **kw) -> Webhook:
    return Webhook(name="h", url=url, format=fmt, **kw)


def message(h: Webhook, run: str = "run-1"):
    return digest(h, ITEMS, None, "https://cw.example.com", run, NOW)


class FakeTime:
    """A clock that only moves when slept on; records the sleeps."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_429_with_retry_after_then_500_then_200_is_delivered_once_after_the_wait(receiver):
    r = receiver((429, {"Retry-After": "1"}, b"slow down"), (500, {}, b"oops"), (200, {}, b"ok"))
    h = hook(r.url, secret="k", retries=2)
    msg = message(h)
    outcome = post(msg, h, backoff_initial=0.05)
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("delivered", 3, 200)
    assert len(r.requests) == 3
    assert r.requests[1].at - r.requests[0].at >= 1.0  # Retry-After honoured
    assert {q.headers["Idempotency-Key"] for q in r.requests} == {msg.idempotency_key}
    assert all(verify("k", q.headers, q.body) for q in r.requests)  # signed afresh, still valid


def test_a_404_fails_at_once_with_the_reason(receiver):
    r = receiver((404, {}, b"no_service"))
    h = hook(r.url, fmt="slack", retries=5)
    outcome = post(message(h), h, sleep=lambda s: pytest.fail("a 404 must not be retried"))
    port = r.server.server_address[1]
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("failed", 1, 404)
    assert outcome.reason == f"404 Not Found from 127.0.0.1:{port}: no_service"
    assert len(r.requests) == 1


@pytest.mark.parametrize("code", [408, 429, 500, 503])
def test_retryable_statuses_end_pending_after_the_retries(receiver, code):
    r = receiver((code, {}, b""))
    fake = FakeTime()
    h = hook(r.url, retries=3)
    outcome = post(message(h), h, sleep=fake.sleep, backoff_initial=0.5)
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("pending", 4, code)
    assert outcome.reason.startswith(f"{code} ") and len(r.requests) == 4
    backoff = [s for s in fake.sleeps]
    assert len(backoff) == 3
    for k, s in enumerate(backoff):  # exponential with jitter: initial * 2**k plus up to initial
        assert 0.5 * 2 ** k <= s <= 0.5 * 2 ** k + 0.5


@pytest.mark.parametrize("step", ["truncated", "garbage"])
def test_a_malformed_answer_is_a_failed_attempt_not_an_exception(receiver, step):
    r = receiver(step)
    h = hook(r.url, retries=1)
    outcome = post(message(h), h, sleep=lambda s: None)
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("pending", 2, None)
    assert "malformed or truncated answer from 127.0.0.1" in outcome.reason
    assert len(r.requests) == 2


def test_a_receiver_slower_than_the_timeout_leaves_the_message_pending(receiver):
    r = receiver(("slow", 2.0))
    h = hook(r.url, retries=0, timeout_seconds=0.3)
    started = time.monotonic()
    outcome = post(message(h), h)
    assert time.monotonic() - started < 1.5
    assert (outcome.status, outcome.attempts) == ("pending", 1)
    assert outcome.reason == f"no answer from 127.0.0.1:{r.server.server_address[1]} within 0.3 s"


def test_nobody_listening_is_pending_and_a_bad_url_fails():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    h = hook(f"http://127.0.0.1:{port}/hook", retries=1)
    outcome = post(message(h), h, sleep=lambda s: None)
    assert (outcome.status, outcome.attempts) == ("pending", 2) and "ConnectError" in outcome.reason
    bad = hook("ftp://example.invalid/hook", retries=3)
    outcome = post(message(bad), bad, sleep=lambda s: pytest.fail("not worth retrying"))
    assert (outcome.status, outcome.attempts) == ("failed", 1) and outcome.reason.startswith("cannot send to ftp://")


def test_a_redirect_is_not_followed(receiver):
    r = receiver((301, {"Location": "http://elsewhere.example/"}, b""))
    h = hook(r.url)
    outcome = post(message(h), h)
    assert outcome.status == "failed" and "301 Moved Permanently" in outcome.reason and len(r.requests) == 1


def test_retry_after_longer_than_the_budget_stays_pending_and_says_so(receiver):
    r = receiver((429, {"Retry-After": "3600"}, b""))
    h = hook(r.url, retries=5, max_wait_seconds=30, timeout_seconds=1)
    outcome = post(message(h), h, sleep=lambda s: pytest.fail(f"should not wait {s} s past the budget"))
    assert (outcome.status, outcome.attempts, outcome.retry_after) == ("pending", 1, 3600.0)


def test_total_time_per_message_is_bounded(receiver):
    r = receiver((503, {}, b""))
    h = hook(r.url, retries=10, max_wait_seconds=1.5, timeout_seconds=0.5)
    started = time.monotonic()
    outcome = post(message(h), h, backoff_initial=0.2)
    assert time.monotonic() - started <= 1.6
    assert outcome.status == "pending" and 2 <= outcome.attempts < 11


@pytest.mark.parametrize(("fmt", "answer", "status", "attempts"), [
    ("dingtalk", {"errcode": 0, "errmsg": "ok"}, "delivered", 1),
    ("dingtalk", {"errcode": 310000, "errmsg": "keywords not in content"}, "failed", 1),
    ("dingtalk", {"errcode": 130101, "errmsg": "send too fast"}, "pending", 2),
    ("wecom", {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}, "failed", 1),
    ("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"}, "pending", 2),
])
def test_dingtalk_and_wecom_error_codes(receiver, fmt, answer, status, attempts):
    r = receiver((200, {"Content-Type": "application/json"}, json.dumps(answer).encode()))
    h = hook(r.url, fmt=fmt, retries=1)
    outcome = post(message(h), h, sleep=lambda s: None)
    assert (outcome.status, outcome.attempts) == (status, attempts)
    if status != "delivered":
        assert f"{fmt} errcode {answer['errcode']}" in outcome.reason and answer["errmsg"] in outcome.reason


def test_retry_after_as_seconds_or_http_date():
    now = dt.datetime(2025, 12, 24, 9, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(email.utils.format_datetime(now + dt.timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds(email.utils.format_datetime(now - dt.timedelta(seconds=90), usegmt=True), now) == 0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None) is None
    assert retry_after_seconds("-5", now) == 0


@pytest.mark.parametrize(("fmt", "rate", "gap"), [("slack", None, 1.0), ("dingtalk", None, 3.0),
                                                  ("wecom", None, 3.0), ("generic", None, 0.1),
                                                  ("slack", 120.0, 0.5)])
def test_the_rate_limiter_spaces_the_messages_of_a_run(receiver, fmt, rate, gap):
    r = receiver((200, {}, b"{}"))
    fake = FakeTime()
    limiters = RateLimiters(clock=fake.clock, sleep=fake.sleep)
    h = hook(r.url, fmt=fmt, rate_per_minute=rate)
    with httpx.Client() as client:  # one client for the run's messages
        for k in range(4):
            outcome = post(message(h, f"run-{k}"), h, client=client, limiters=limiters, sleep=fake.sleep)
            assert outcome.status == "delivered"
        assert len(r.requests) == 4
        assert fake.sleeps == pytest.approx([gap] * 3)
        other = hook(r.url, fmt=fmt).model_copy(update={"name": "another"})
        post(message(other), other, client=client, limiters=limiters, sleep=fake.sleep)  # its own bucket
    assert len(fake.sleeps) == 3


def test_token_bucket_refills_with_time():
    fake = FakeTime()
    bucket = TokenBucket(60, capacity=2, clock=fake.clock, sleep=fake.sleep)
    assert [bucket.acquire(), bucket.acquire()] == [0, 0]  # the burst
    assert bucket.acquire() == pytest.approx(1.0)
    fake.now += 10  # a quiet spell fills it up to its capacity only
    assert [bucket.acquire(), bucket.acquire(), bucket.acquire()] == pytest.approx([0, 0, 1.0])
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(0)


def test_reasons_never_show_secrets_from_the_url(receiver):
    r = receiver((403, {}, b""))
    port = r.server.server_address[1]
    h = hook(f"http://user:pa55word@127.0.0.1:{port}/hook?key=SECRETKEY", fmt="wecom")
    outcome = post(message(h), h)
    assert outcome.reason == f"403 Forbidden from 127.0.0.1:{port}"
    assert r.requests[0].path == "/hook?key=SECRETKEY"
