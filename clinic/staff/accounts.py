"""Staff accounts, console sessions and API tokens.

Accounts are created with ``python -m clinic.cli staff add``; passwords are hashed with
argon2id (:class:`argon2.PasswordHasher`'s defaults, RFC 9106's low-memory profile) and must
pass :mod:`clinic.staff.passwords` (long enough, not trivial, not common, not the user's name).
:data:`MAX_FAILED_LOGINS` counted failures lock an account for 15 minutes; the console counts
one failure per client address (:mod:`clinic.staff.console.throttle`), so no single address
can lock anyone out. An unknown username costs the same hash verification as a known one, so
neither the answer nor its timing tells whether it exists.

A browser session is a random token in a cookie; the table keeps only its SHA-256, the CSRF
token of the session and when it expires (after ``STAFF_IDLE_TIMEOUT_MINUTES`` without
activity, 30 by default, and 24 hours after signing in at the latest). API tokens are random
bearer tokens, shown once and stored as their SHA-256.

Every account has a role (:data:`ROLES`) and may do what :data:`PERMISSIONS` grants it: staff
work the inbox and bookings; admins also read the audit log, clinic insights and the messages the
assistant could not answer; managers read clinic insights only (numbers, never a conversation).

Every function returns plain frozen dataclasses, never ORM rows bound to a closed session.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic import clock
from clinic.clock import as_utc
from clinic.db import ApiToken, StaffSession, StaffUser, session_scope
from clinic.settings import staff_idle_timeout_minutes
from clinic.staff import passwords

logger = logging.getLogger(__name__)

PASSWORD_MIN_LENGTH = passwords.MIN_LENGTH
PASSWORD_MAX_LENGTH = passwords.MAX_LENGTH
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_MAX_AGE = timedelta(hours=24)
TOUCH_EVERY = timedelta(seconds=60)  # write last-seen at most once a minute per session
TOKEN_MAX_LENGTH = 256
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

ROLES = ("staff", "admin", "manager")
# What each role may do; a page or API route checks one of these with :func:`has_permission`.
CONVERSATIONS = "conversations"  # the inbox, transcripts, replies, bookings with patient details
AUDIT = "audit"  # the audit log
INSIGHTS = "insights"  # aggregate numbers about conversations (no patient text)
UNANSWERED = "unanswered"  # the messages the assistant could not answer, and marking their intent
PERMISSIONS: dict[str, frozenset[str]] = {
    "staff": frozenset({CONVERSATIONS}),
    "admin": frozenset({CONVERSATIONS, AUDIT, INSIGHTS, UNANSWERED}),
    "manager": frozenset({INSIGHTS}),
}

_default_hasher: PasswordHasher | None = None
_dummy_hashes: dict[tuple[object, ...], str] = {}


class StaffError(ValueError):
    """A staff-account operation that cannot be done (the message says why, for people)."""


class UnknownUser(StaffError):
    """No account has this username."""


@dataclass(frozen=True)
class StaffMember:
    """A staff account as the rest of the code sees it (no password hash)."""

    id: int
    username: str
    display_name: str
    is_admin: bool = False
    is_active: bool = True
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    role: str = "staff"  # one of ROLES; an admin's is "admin"

    @property
    def effective_role(self) -> str:
        """The role that decides permissions (``is_admin`` alone still means admin)."""
        return "admin" if self.is_admin else self.role


def has_permission(member: StaffMember, permission: str) -> bool:
    """Whether the account's role grants ``permission`` (see :data:`PERMISSIONS`)."""
    return permission in PERMISSIONS.get(member.effective_role, frozenset())


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a sign-in attempt.

    Attributes:
        outcome: ``ok``, ``unknown_user``, ``bad_password``, ``locked`` or ``disabled``.
        user: the account when the username exists (also on failure, for the audit log).
        locked_now: this failure locked the account.
    """

    outcome: str
    user: StaffMember | None = None
    locked_now: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class NewSession:
    """A session just created: ``token`` goes in the cookie and is never stored."""

    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class ActiveSession:
    """A valid session found by its cookie token (``signed_in_at``: when the password was typed)."""

    id: int
    user: StaffMember
    csrf_token: str
    expires_at: datetime
    signed_in_at: datetime


@dataclass(frozen=True)
class SessionCheck:
    """What a cookie token is worth: the session, or why there is none.

    Attributes:
        session: the valid session, or None.
        ended: ``idle`` (no activity for the idle timeout) or ``max_age`` (24 hours after signing
            in) when the session just ran out; None when it is valid, unknown or its account disabled.
    """

    session: ActiveSession | None
    ended: str | None = None


@dataclass(frozen=True)
class ApiTokenInfo:
    """An API token's record (never the token itself)."""

    id: int
    name: str
    username: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewApiToken:
    """An API token just created: ``token`` is shown once and never stored."""

    info: ApiTokenInfo
    token: str


@dataclass(frozen=True)
class ApiCredential:
    """A valid bearer token and its owner."""

    token_id: int
    token_name: str
    user: StaffMember


# ------------------------------------------------------------------ helpers


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a session or API token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def default_hasher() -> PasswordHasher:
    """The production password hasher (argon2id with the library's defaults), built on first use."""
    global _default_hasher
    if _default_hasher is None:
        _default_hasher = PasswordHasher()
    return _default_hasher


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up in lower case."""
    return (username or "").strip().lower()


def _valid_username(username: str) -> str:
    name = normalize_username(username)
    if not _USERNAME.match(name):
        raise StaffError(
            "A username has 2 to 64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


def check_password(password: str, username: str = "", display_name: str = "") -> None:
    """Checks a new password against :mod:`clinic.staff.passwords`' rules.

    Raises:
        StaffError: the password is too short or too long, trivial, common, or the user's name
            (the message says which, for the person choosing it).
    """
    message = passwords.problem(password, (username, display_name))
    if message is not None:
        raise StaffError(message)


def idle_timeout() -> timedelta:
    """How long a console session lasts without activity (``STAFF_IDLE_TIMEOUT_MINUTES``)."""
    return timedelta(minutes=staff_idle_timeout_minutes())


def _member(user: StaffUser) -> StaffMember:
    return StaffMember(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        is_admin=bool(user.is_admin),
        is_active=bool(user.is_active),
        locked_until=as_utc(user.locked_until),
        last_login_at=as_utc(user.last_login_at),
        role=user.role or ("admin" if user.is_admin else "staff"),
    )


def _role(role: str | None, is_admin: bool) -> str:
    """The role to store: ``role`` when given (checked), else admin or staff by ``is_admin``."""
    if role is None:
        return "admin" if is_admin else "staff"
    if role not in ROLES:
        raise StaffError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    if is_admin and role != "admin":
        raise StaffError("An admin account has the role admin.")
    return role


def _by_username(session: Session, username: str, *, for_update: bool = False) -> StaffUser | None:
    query = select(StaffUser).where(StaffUser.username == normalize_username(username))
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def _require(session: Session, username: str) -> StaffUser:
    user = _by_username(session, username, for_update=True)
    if user is None:
        raise UnknownUser(f"No staff account is named {normalize_username(username)!r}.")
    return user


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash with the hasher's parameters, verified for unknown usernames (same cost)."""
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len, hasher.salt_len, hasher.type)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(secrets.token_urlsafe(24))
    return _dummy_hashes[key]


def warm_up(hasher: PasswordHasher | None = None) -> None:
    """Computes the dummy hash now, so the first sign-in with an unknown username is not slower."""
    _dummy_hash(hasher or default_hasher())


# ------------------------------------------------------------------ accounts


def create_user(
    username: str,
    password: str,
    *,
    display_name: str | None = None,
    is_admin: bool = False,
    role: str | None = None,
    database_url: str | None = None,
    hasher: PasswordHasher | None = None,
) -> StaffMember:
    """Creates a staff account.

    Args:
        username: 2-64 characters (letters, digits, ``._-``); stored in lower case.
        password: passes :func:`check_password` (12 characters or more, not common...).
        display_name: the name patients and colleagues see (default: the username).
        is_admin: admins may also read the audit log (the same as ``role="admin"``).
        role: one of :data:`ROLES` (default: admin or staff, by ``is_admin``).
        database_url: overrides ``CLINIC_DATABASE_URL``.
        hasher: the password hasher (tests pass a cheap one).

    Raises:
        StaffError: invalid username, password or role, or the username is taken.
    """
    name = _valid_username(username)
    role = _role(role, is_admin)
    shown = (display_name or "").strip() or name
    if len(shown) > 120:
        raise StaffError("The display name must have at most 120 characters.")
    check_password(password, name, shown)
    password_hash = (hasher or default_hasher()).hash(password)
    try:
        with session_scope(database_url) as session:
            user = StaffUser(
                username=name,
                display_name=shown,
                password_hash=password_hash,
                is_admin=role == "admin",
                role=role,
                is_active=True,
                failed_logins=0,
            )
            session.add(user)
            session.flush()
            member = _member(user)
    except IntegrityError:
        raise StaffError(f"A staff account named {name!r} already exists.") from None
    logger.info("staff account %s created (role %s)", name, role)
    return member


def set_role(username: str, role: str, *, database_url: str | None = None) -> StaffMember:
    """Gives an account another role; its sessions end, so the new role applies at once.

    Raises:
        UnknownUser: no such account.
        StaffError: unknown role.
    """
    role = _role(role, False)
    with session_scope(database_url) as session:
        user = _require(session, username)
        user.role = role
        user.is_admin = role == "admin"
        session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        member = _member(user)
    logger.info("staff account %s: role %s, sessions ended", member.username, role)
    return member


def set_password(
    username: str, password: str, *, database_url: str | None = None, hasher: PasswordHasher | None = None
) -> None:
    """Sets a new password, unlocks the account and signs it out everywhere.

    Raises:
        UnknownUser: no such account.
        StaffError: the password does not pass :func:`check_password`.
    """
    with session_scope(database_url) as session:
        user = _require(session, username)
        check_password(password, user.username, user.display_name)
    password_hash = (hasher or default_hasher()).hash(password)
    with session_scope(database_url) as session:
        user = _require(session, username)
        user.password_hash = password_hash
        user.failed_logins = 0
        user.locked_until = None
        session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    logger.info("staff account %s: password changed, sessions ended", normalize_username(username))


def unlock(username: str, *, database_url: str | None = None) -> None:
    """Lifts a lock-out and forgets failed sign-ins.

    Raises:
        UnknownUser: no such account.
    """
    with session_scope(database_url) as session:
        user = _require(session, username)
        user.failed_logins = 0
        user.locked_until = None


def deactivate(username: str, *, database_url: str | None = None) -> None:
    """Disables an account: it can no longer sign in, its sessions end and its API tokens stop working.

    Raises:
        UnknownUser: no such account.
    """
    with session_scope(database_url) as session:
        user = _require(session, username)
        user.is_active = False
        session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    logger.info("staff account %s disabled", normalize_username(username))


def get_user(user_id: int, *, database_url: str | None = None) -> StaffMember | None:
    """The account with this id, or None."""
    with session_scope(database_url) as session:
        user = session.get(StaffUser, user_id)
        return _member(user) if user is not None else None


def list_users(*, database_url: str | None = None) -> list[StaffMember]:
    """Every account, by username."""
    with session_scope(database_url) as session:
        rows = session.execute(select(StaffUser).order_by(StaffUser.username)).scalars()
        return [_member(user) for user in rows]


def verify_login(
    username: str,
    password: str,
    *,
    database_url: str | None = None,
    hasher: PasswordHasher | None = None,
    counts_toward_lockout: bool = True,
    now: datetime | None = None,
) -> LoginResult:
    """Checks a sign-in attempt and counts failures.

    The password is verified in every case (an unknown username against a dummy hash), so a
    failure takes the same time whatever its cause. :data:`MAX_FAILED_LOGINS` counted wrong
    passwords without a success between them lock the account for :data:`LOCKOUT`; while
    locked, even the right password fails and attempts do not extend the lock. A success on an
    outdated hash rehashes the password.

    Args:
        username: as typed (case-insensitive).
        password: as typed.
        database_url: overrides ``CLINIC_DATABASE_URL``.
        hasher: the password hasher (tests pass a cheap one).
        counts_toward_lockout: a wrong password adds to the account's count of failures (the
            console counts only the first one from each client address).
        now: the current time (tests).

    Returns:
        The outcome; callers must show the same message for every failure.
    """
    hasher = hasher or default_hasher()
    now = now or clock.utcnow()
    if len(password) > PASSWORD_MAX_LENGTH or len(username) > 256:
        _verify(hasher, _dummy_hash(hasher), password[:PASSWORD_MAX_LENGTH])
        return LoginResult("unknown_user")
    with session_scope(database_url) as session:
        user = _by_username(session, username, for_update=True)
        if user is None:
            _verify(hasher, _dummy_hash(hasher), password)
            return LoginResult("unknown_user")
        matches = _verify(hasher, user.password_hash, password)
        if not user.is_active:
            return LoginResult("disabled", _member(user))
        locked_until = as_utc(user.locked_until)
        if locked_until is not None and locked_until > now:
            return LoginResult("locked", _member(user))
        if not matches:
            if not counts_toward_lockout:
                return LoginResult("bad_password", _member(user))
            user.failed_logins = (user.failed_logins or 0) + 1
            locked_now = user.failed_logins >= MAX_FAILED_LOGINS
            if locked_now:
                user.locked_until = now + LOCKOUT
                user.failed_logins = 0
                logger.warning("staff account %s locked after %s counted failed sign-ins", user.username,
                               MAX_FAILED_LOGINS)
            return LoginResult("bad_password", _member(user), locked_now=locked_now)
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        if hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hasher.hash(password)
        return LoginResult("ok", _member(user))


# ------------------------------------------------------------------ sessions


def create_session(
    user_id: int, *, database_url: str | None = None, idle: timedelta | None = None, now: datetime | None = None
) -> NewSession:
    """Starts a browser session for an account (and clears expired sessions).

    Args:
        user_id: the account that signed in.
        database_url: overrides ``CLINIC_DATABASE_URL``.
        idle: the idle timeout (default :func:`idle_timeout`).
        now: the current time (tests).
    """
    now = now or clock.utcnow()
    token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    expires_at = min(now + (idle or idle_timeout()), now + SESSION_MAX_AGE)
    with session_scope(database_url) as session:
        session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
        session.add(
            StaffSession(
                token_hash=token_hash(token),
                user_id=user_id,
                csrf_token=csrf_token,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
            )
        )
    return NewSession(token, csrf_token, expires_at)


def check_session(
    token: str | None,
    *,
    database_url: str | None = None,
    touch: bool = True,
    idle: timedelta | None = None,
    now: datetime | None = None,
) -> SessionCheck:
    """The session of a cookie token, or why there is none.

    A session ends ``idle`` after its last activity (activity is recorded at most once a
    minute, so it may end up to a minute early) and :data:`SESSION_MAX_AGE` after signing in,
    whatever the activity. Both are worked out from the current idle timeout, so shortening it
    applies to sessions already open.

    Args:
        token: the cookie's value.
        database_url: overrides ``CLINIC_DATABASE_URL``.
        touch: count this request as activity (extends the idle expiry); automatic polling
            passes False so an unattended tab still expires.
        idle: the idle timeout (default :func:`idle_timeout`).
        now: the current time (tests).
    """
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return SessionCheck(None)
    now = now or clock.utcnow()
    idle = idle or idle_timeout()
    with session_scope(database_url) as session:
        row = session.execute(
            select(StaffSession).where(StaffSession.token_hash == token_hash(token))
        ).scalar_one_or_none()
        if row is None:
            return SessionCheck(None)
        signed_in_at = as_utc(row.created_at)
        if now >= signed_in_at + SESSION_MAX_AGE:
            session.delete(row)
            return SessionCheck(None, "max_age")
        if now >= as_utc(row.last_seen_at) + idle:
            session.delete(row)
            return SessionCheck(None, "idle")
        user = row.user
        if user is None or not user.is_active:
            return SessionCheck(None)
        if touch and now - as_utc(row.last_seen_at) >= TOUCH_EVERY:
            row.last_seen_at = now
        expires_at = min(as_utc(row.last_seen_at) + idle, signed_in_at + SESSION_MAX_AGE)
        if as_utc(row.expires_at) != expires_at:  # kept for clearing expired rows; written only when it moves
            row.expires_at = expires_at
        return SessionCheck(ActiveSession(row.id, _member(user), row.csrf_token, expires_at, signed_in_at))


def lookup_session(
    token: str | None,
    *,
    database_url: str | None = None,
    touch: bool = True,
    idle: timedelta | None = None,
    now: datetime | None = None,
) -> ActiveSession | None:
    """The valid session of a cookie token, or None (unknown, expired, or the account is disabled).

    Same arguments as :func:`check_session`.
    """
    return check_session(token, database_url=database_url, touch=touch, idle=idle, now=now).session


def delete_session(token: str | None, *, database_url: str | None = None) -> bool:
    """Ends a session (sign-out); returns whether there was one."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return False
    with session_scope(database_url) as session:
        result = session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))
        return bool(result.rowcount)


# ------------------------------------------------------------------ API tokens


def _token_info(row: ApiToken) -> ApiTokenInfo:
    return ApiTokenInfo(
        id=row.id,
        name=row.name,
        username=row.user.username,
        created_at=as_utc(row.created_at),
        last_used_at=as_utc(row.last_used_at),
        revoked_at=as_utc(row.revoked_at),
    )


def create_api_token(username: str, name: str, *, database_url: str | None = None) -> NewApiToken:
    """Creates a bearer token for the JSON API, acting as ``username``.

    Args:
        username: the account the integration acts as.
        name: what the token is for (1-64 characters), e.g. ``"ehr-sync"``.
        database_url: overrides ``CLINIC_DATABASE_URL``.

    Returns:
        The token's record and the token itself, which is not stored and cannot be shown again.

    Raises:
        UnknownUser: no such account.
        StaffError: the name is empty or too long, or the account is disabled.
    """
    label = (name or "").strip()
    if not label or len(label) > 64:
        raise StaffError("A token name has 1 to 64 characters.")
    token = "kcs_" + secrets.token_urlsafe(32)
    with session_scope(database_url) as session:
        user = _require(session, username)
        if not user.is_active:
            raise StaffError(f"The account {user.username!r} is disabled.")
        row = ApiToken(user_id=user.id, name=label, token_hash=token_hash(token))
        session.add(row)
        session.flush()
        info = _token_info(row)
    logger.info("API token %s (%s) created for %s", info.id, label, info.username)
    return NewApiToken(info, token)


def lookup_api_token(
    token: str | None, *, database_url: str | None = None, now: datetime | None = None
) -> ApiCredential | None:
    """The valid credential of a bearer token, or None (unknown, revoked, or the account is disabled)."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    now = now or clock.utcnow()
    with session_scope(database_url) as session:
        row = session.execute(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).scalar_one_or_none()
        if row is None or row.revoked_at is not None or row.user is None or not row.user.is_active:
            return None
        last_used = as_utc(row.last_used_at)
        if last_used is None or now - last_used >= TOUCH_EVERY:
            row.last_used_at = now
        return ApiCredential(row.id, row.name, _member(row.user))


def revoke_api_token(token_id: int, *, database_url: str | None = None) -> bool:
    """Revokes an API token; returns False when there is no such token or it was revoked already."""
    with session_scope(database_url) as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = clock.utcnow()
    logger.info("API token %s revoked", token_id)
    return True


def list_api_tokens(username: str | None = None, *, database_url: str | None = None) -> list[ApiTokenInfo]:
    """API tokens (revoked ones too), optionally of one account, oldest first."""
    with session_scope(database_url) as session:
        query = select(ApiToken).join(StaffUser, ApiToken.user_id == StaffUser.id).order_by(ApiToken.id)
        if username is not None:
            query = query.where(StaffUser.username == normalize_username(username))
        return [_token_info(row) for row in session.execute(query).scalars()]
