"""Sign-in: argon2 password hashes on the operational store's users, sign-in attempts and their
rate limit, and the signed session cookie.

* ``set_password`` stores an argon2id hash (argon2-cffi's defaults) on a user, audited (the
  hash itself never enters the audit log).
* ``sign_in`` checks a user (e-mail, CRM name or name) and password. ``MAX_FAILURES`` failed
  attempts for one user name from one address within ``WINDOW`` refuse further attempts
  (``RateLimited``, HTTP 429) until the oldest of them leaves the window; a success clears the
  failures of that name and address. Every attempt is a row of ``login_attempts``.
* The session is a cookie signed with itsdangerous (``SessionCodec``) holding the user id, the
  CSRF token and when it was issued; it is HttpOnly, SameSite=Lax and Secure when the request
  came over HTTPS (directly or ``X-Forwarded-Proto: https``) or ``operations.link_base`` is https.
  The key is ``CHURNWATCH_WORKSPACE_SECRET`` or a random one kept in ``<home>/workspace.secret``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Engine

from core.errors import ChurnwatchError
from workflow.audit import record
from workflow.db import METADATA, write
from workflow.people import USERS, PeopleError, find_user

SECRET_ENV = "CHURNWATCH_WORKSPACE_SECRET"
SECRET_FILE = "workspace.secret"
MAX_FAILURES = 5
WINDOW = dt.timedelta(minutes=15)
SESSION_SECONDS = 12 * 3600
MIN_PASSWORD = 8

LOGIN_ATTEMPTS = sa.Table(
    "login_attempts", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(320), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Index("ix_login_attempts_username", "username", "ip", "at"),
)

HASHER = PasswordHasher()


class AuthError(ChurnwatchError):
    """A password that cannot be set, or a sign-in refused."""


class RateLimited(AuthError):
    """Too many failed sign-ins; ``retry_after`` seconds until the next attempt is heard."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


def set_password(engine: Engine, who: str, password: str, actor: str) -> dict[str, Any]:
    """Hash and store ``who``'s password (audited without the hash); returns the user.

    Raises:
        AuthError: an unknown user, or a password shorter than ``MIN_PASSWORD``.
    """
    if len(password or "") < MIN_PASSWORD:
        raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")
    with write(engine) as conn:
        try:
            user = find_user(conn, who)
        except PeopleError as exc:
            raise AuthError(str(exc)) from exc
        conn.execute(USERS.update().where(USERS.c.id == user["id"]).values(password_hash=HASHER.hash(password)))
        record(conn, actor=actor, entity="user", entity_id=user["id"], action="password",
               after={"password": "changed"})
    return user


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def sign_in(engine: Engine, username: str, password: str, ip: str, now: dt.datetime | None = None) -> dict:
    """The user ``username`` names when ``password`` is theirs, else None; each attempt recorded.

    Raises:
        RateLimited: ``MAX_FAILURES`` failures of this name from ``ip`` within ``WINDOW``.
    """
    now = now or _now()
    name = (username or "").strip()[:320]
    with write(engine) as conn:
        failures = conn.execute(sa.select(LOGIN_ATTEMPTS.c.at).where(
            LOGIN_ATTEMPTS.c.username == name.lower(), LOGIN_ATTEMPTS.c.ip == ip, LOGIN_ATTEMPTS.c.ok.is_(False),
            LOGIN_ATTEMPTS.c.at > now - WINDOW).order_by(LOGIN_ATTEMPTS.c.at)).scalars().all()
        if len(failures) >= MAX_FAILURES:
            retry = _aware(failures[-MAX_FAILURES]) + WINDOW - now
            raise RateLimited(max(1, int(retry.total_seconds())))
        user = None
        try:
            found = find_user(conn, name) if name else None
        except PeopleError:
            found = None
        if found and found["active"] and found.get("password_hash"):
            try:
                HASHER.verify(found["password_hash"], password or "")
                user = found
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                user = None
        else:
            HASHER.hash(password or "")  # the same work whether or not the user exists
        conn.execute(LOGIN_ATTEMPTS.insert().values(username=name.lower(), ip=ip, at=now, ok=user is not None))
        if user is not None:
            conn.execute(LOGIN_ATTEMPTS.delete().where(LOGIN_ATTEMPTS.c.username == name.lower(),
                                                       LOGIN_ATTEMPTS.c.ip == ip, LOGIN_ATTEMPTS.c.ok.is_(False)))
            record(conn, actor=user["name"], entity="user", entity_id=user["id"], action="sign_in",
                   after={"ip": ip})
    if user is None:
        return None
    return {k: v for k, v in user.items() if k != "password_hash"}


def secret_key(home: Path) -> str:
    """The key that signs sessions: the environment's, else ``<home>/workspace.secret`` (created, 0600)."""
    explicit = os.environ.get(SECRET_ENV)
    if explicit:
        return explicit
    path = Path(home) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class SessionCodec:
    """Signs and reads the session cookie's value (a dict)."""

    def __init__(self, key: str) -> None:
        self._s = URLSafeTimedSerializer(key, salt="churnwatch-workspace-session")

    def dumps(self, data: dict) -> str:
        return self._s.dumps(data)

    def loads(self, value: str | None) -> dict:
        """The session, or an empty one for a missing, forged or expired cookie."""
        if not value:
            return {}
        try:
            data = self._s.loads(value, max_age=SESSION_SECONDS)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}
