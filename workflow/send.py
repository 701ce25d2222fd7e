"""Delivering one webhook message: httpx for the request, tenacity for the retries.

``post`` sends a ``Message`` and says what became of it (``Outcome``), never raising for what
the network or the receiver does:

* ``delivered``: a 2xx answer (for DingTalk and WeCom also ``errcode`` 0 in the answer);
* ``failed`` for good, at once and with the reason: a 4xx other than 408 and 429 (e.g.
  ``404 Not Found from hooks.example.com``), a redirect (not followed), a URL that cannot be
  sent to, a DingTalk/WeCom error code other than their rate limits;
* ``pending`` after the attempts are spent: timeouts, refused or dropped connections, truncated
  or non-HTTP answers, 408, 429, 5xx, DingTalk/WeCom rate-limit codes. Worth another try later
  (the caller keeps it; the same ``Idempotency-Key`` lets the receiver drop a copy).

Retries: ``webhook.retries`` more attempts, waiting exponentially longer with jitter between
them, or what the receiver's ``Retry-After`` asks (seconds or an HTTP date, at most
``RETRY_AFTER_CAP_SECONDS``). No attempt starts unless it can end within
``webhook.max_wait_seconds`` of the first (each attempt waits at most ``timeout_seconds``), so a
message takes at most about that long. Signatures are made afresh at every attempt.

Rate limits: a token bucket per webhook (``RateLimiters``, one per run, shared by every message
of the run), spacing requests to ``webhook.rate_per_minute`` or the platform's default (Slack
one a second, DingTalk and WeCom 20 a minute). The wait for the bucket comes before the first
attempt and does not count against ``max_wait_seconds``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt, stop_before_delay
from tenacity.wait import wait_base, wait_exponential_jitter

from core.settings import Webhook
from workflow.channels import signed
from workflow.messages import Message, Outcome

__all__ = ["DEFAULT_RATE_PER_MINUTE", "RETRY_AFTER_CAP_SECONDS", "RateLimiters", "TokenBucket", "post",
           "retry_after_seconds"]

#: Requests a minute per webhook when ``rate_per_minute`` is not set.
DEFAULT_RATE_PER_MINUTE = {"slack": 60.0, "dingtalk": 20.0, "wecom": 20.0, "generic": 600.0}
RETRY_AFTER_CAP_SECONDS = 60.0
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
#: DingTalk "send too fast" and WeCom "api freq out of limit": wait and retry; other codes fail.
RATE_LIMIT_ERRCODES = {"dingtalk": {130101}, "wecom": {45009, 45033}}


class TokenBucket:
    """Requests spaced to ``rate_per_minute`` (``capacity`` may go at once after a quiet spell).

    ``clock`` (seconds, monotonic) and ``sleep`` can be injected; safe across threads (a waiter
    holds the bucket while it sleeps, so waiters go one after the other).
    """

    def __init__(self, rate_per_minute: float, capacity: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if rate_per_minute <= 0 or capacity < 1:
            raise ValueError(f"a token bucket needs a positive rate and a capacity of at least 1, "
                             f"got {rate_per_minute}/min and {capacity}")
        self.rate_per_second = rate_per_minute / 60.0
        self.capacity = capacity
        self._clock, self._sleep = clock, sleep
        self._tokens = capacity
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until there is one; returns the seconds slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate_per_second)
            self._last = now
            wait = 0.0
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate_per_second
                self._sleep(wait)
                self._tokens, self._last = 1.0, now + wait
            self._tokens -= 1
            return wait


class RateLimiters:
    """One run's token buckets, one per webhook name, made on first use."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def for_webhook(self, webhook: Webhook) -> TokenBucket:
        with self._lock:
            if webhook.name not in self._buckets:
                rate = webhook.rate_per_minute or DEFAULT_RATE_PER_MINUTE[webhook.format]
                self._buckets[webhook.name] = TokenBucket(rate, clock=self._clock, sleep=self._sleep)
            return self._buckets[webhook.name]


@dataclass(frozen=True)
class _Try:
    """One attempt: delivered (``ok``), worth retrying (``retry``) or failed for good (neither)."""

    ok: bool
    retry: bool
    http_status: int | None = None
    reason: str | None = None
    retry_after: float | None = None


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta seconds or an HTTP date); None when absent
    or unreadable; never negative."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _where(url: str) -> str:
    """The host of ``url`` (with its port), for reasons: never a password or the query (DingTalk's sign,
    WeCom's key)."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or url.split("?")[0].split("@")[-1]
    return f"{host}:{port}" if port else host


def _status_words(resp: httpx.Response) -> str:
    phrase = resp.reason_phrase
    if not phrase:
        try:
            phrase = http.HTTPStatus(resp.status_code).phrase
        except ValueError:
            phrase = "(unknown status)"
    return f"{resp.status_code} {phrase}"


def _snippet(resp: httpx.Response) -> str:
    body = " ".join(resp.text.split())[:200]
    return f": {body}" if body else ""


def _judge(resp: httpx.Response, webhook: Webhook) -> _Try:
    """An answer's meaning: delivered, worth retrying or failed for good."""
    where = _where(str(resp.request.url))
    status = resp.status_code
    if 200 <= status < 300:
        if webhook.format in RATE_LIMIT_ERRCODES:
            try:
                answer = json.loads(resp.content or b"{}")
            except (ValueError, UnicodeDecodeError):
                answer = {}
            code = answer.get("errcode") if isinstance(answer, dict) else None
            if code not in (None, 0, "0"):
                words = f"{webhook.format} errcode {code} from {where}: {str(answer.get('errmsg', ''))[:200]}"
                return _Try(False, code in RATE_LIMIT_ERRCODES[webhook.format], status, words)
        return _Try(True, False, status)
    words = f"{_status_words(resp)} from {where}"
    if status in (408, 429) or status >= 500:
        return _Try(False, True, status, words, retry_after_seconds(resp.headers.get("Retry-After")))
    if 300 <= status < 400:
        return _Try(False, False, status, f"{words} (redirects are not followed: configure the final URL)")
    return _Try(False, False, status, words + _snippet(resp))


def _attempt(client: httpx.Client, message: Message, webhook: Webhook) -> _Try:
    url, headers = signed(message, webhook, time.time())
    where = _where(url)
    try:
        resp = client.post(url, content=message.body, headers=headers, timeout=webhook.timeout_seconds)
    except httpx.TimeoutException:
        return _Try(False, True, reason=f"no answer from {where} within {webhook.timeout_seconds:g} s")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return _Try(False, False, reason=f"cannot send to {url.split('?')[0].split('@')[-1]}: {exc}")
    except httpx.RemoteProtocolError as exc:
        return _Try(False, True, reason=f"malformed or truncated answer from {where}: {exc}")
    except (httpx.HTTPError, OSError, ValueError) as exc:  # refused, reset, DNS, TLS, ...
        return _Try(False, True, reason=f"{type(exc).__name__} talking to {where}: {exc}")
    return _judge(resp, webhook)


class _Wait(wait_base):
    """What the receiver asked (``Retry-After``, capped), else exponential backoff with jitter."""

    def __init__(self, initial: float):
        self.backoff = wait_exponential_jitter(initial=initial, max=BACKOFF_MAX_SECONDS, jitter=initial)

    def __call__(self, retry_state: RetryCallState) -> float:
        last = retry_state.outcome.result() if retry_state.outcome and not retry_state.outcome.failed else None
        if last is not None and last.retry_after is not None:
            return min(last.retry_after, RETRY_AFTER_CAP_SECONDS)
        return self.backoff(retry_state)


def post(message: Message, webhook: Webhook, *, client: httpx.Client | None = None,
         sleep: Callable[[float], None] = time.sleep, limiters: RateLimiters | None = None,
         backoff_initial: float = BACKOFF_INITIAL_SECONDS) -> Outcome:
    """Send ``message`` to ``webhook`` with retries; see the module's docstring. ``client``: an httpx
    client to reuse (default: one for this message; pass one when sending many); ``sleep``: how
    to wait between attempts; ``limiters``: the run's rate limiters, which space every request
    (retries too) to a webhook (without them nothing is spaced)."""
    bucket = limiters.for_webhook(webhook) if limiters is not None else None
    own = client is None
    http_client = client or httpx.Client(follow_redirects=False)
    attempts = 0

    def once() -> _Try:
        nonlocal attempts
        if attempts and bucket is not None:
            bucket.acquire()
        attempts += 1
        return _attempt(http_client, message, webhook)

    retrying = Retrying(
        sleep=sleep, wait=_Wait(backoff_initial), retry=retry_if_result(lambda t: t.retry),
        stop=stop_after_attempt(webhook.retries + 1)
        | stop_before_delay(max(0.0, webhook.max_wait_seconds - webhook.timeout_seconds)),
        retry_error_callback=lambda state: state.outcome.result())
    try:
        if bucket is not None:
            bucket.acquire()
        last: _Try = retrying(once)
    finally:
        if own:
            http_client.close()
    if last.ok:
        return Outcome("delivered", attempts, last.http_status)
    status = "pending" if last.retry else "failed"
    return Outcome(status, attempts, last.http_status, last.reason, last.retry_after)
