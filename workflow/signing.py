"""Signatures and idempotency keys of webhook messages.

* Generic webhooks with a ``secret``: two headers, ``X-Churnwatch-Timestamp`` (Unix seconds) and
  ``X-Churnwatch-Signature: v1=<hex>``, the hex HMAC-SHA256, keyed by the secret, of the bytes
  ``<timestamp>.<body>``. A receiver checks them with ``verify`` (signature and age), so a body
  changed on the way or a message replayed later than the tolerance is refused.
* DingTalk robots with a ``secret`` (the "加签" mode): ``timestamp`` (Unix milliseconds) and
  ``sign`` (base64 HMAC-SHA256 of ``timestamp\\nsecret``, URL-encoded) in the URL's query.

Both are made again at every attempt (``workflow.send``): a retry minutes later still carries
a fresh timestamp.

The ``Idempotency-Key`` of a message is the same on every attempt and every run that sends it
again, and differs per webhook, so a receiver can drop a copy it already has.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Churnwatch-Timestamp"
SIGNATURE_HEADER = "X-Churnwatch-Signature"
SIGNATURE_VERSION = "v1"
#: A receiver refuses signatures older (or newer) than this many seconds by default.
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` keyed by ``secret``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def signature_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two signature headers of a generic webhook's ``body`` at ``now`` (Unix seconds)."""
    ts = int(now if now is not None else time.time())
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret, ts, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes,
           tolerance: float = DEFAULT_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """Whether ``body`` and ``headers`` (any letter case) carry a valid churnwatch signature made with
    ``secret`` no more than ``tolerance`` seconds from ``now`` (Unix seconds, default the clock).

    For receivers: call it with the raw body bytes as received, before parsing them. Several
    ``v1=`` values separated by commas are accepted (one of them must match).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ts, given = lower.get(TIMESTAMP_HEADER.lower()), lower.get(SIGNATURE_HEADER.lower())
    if not raw_ts or not given or not raw_ts.strip().isdigit():
        return False
    ts = int(raw_ts.strip())
    if abs((now if now is not None else time.time()) - ts) > tolerance:
        return False
    expected = signature(secret, ts, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in given.split(","))


def dingtalk_signed_url(url: str, secret: str | None, now_ms: int | None = None) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign`` added (unchanged without a secret); an older
    ``timestamp``/``sign`` pair in the URL is replaced."""
    if not secret:
        return url
    ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("timestamp", "sign")]
    query += [("timestamp", ts), ("sign", base64.b64encode(digest).decode())]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _short(text: str, n: int = 32) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def digest_key(run_id: str, webhook: str) -> str:
    """The ``Idempotency-Key`` of a run's digest to a webhook."""
    return f"cw-digest-{_short(f'digest|{run_id}|{webhook}')}"


def alert_key(alert_ids: tuple[str, ...] | list[str], webhook: str, fallback: str = "") -> str:
    """The ``Idempotency-Key`` of a per-account message to a webhook: from its alerts (one alert keeps
    the key churnwatch has always sent for it: ``<alert_id>-<8 hex of the webhook>``), else from
    ``fallback`` (e.g. run and account)."""
    ids = sorted(set(alert_ids))
    if len(ids) == 1:
        return f"{ids[0]}-{_short(webhook, 8)}"
    base = "|".join(ids) if ids else f"none|{fallback}"
    return f"cw-account-{_short(f'account|{base}|{webhook}')}"
