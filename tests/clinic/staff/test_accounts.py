"""clinic.staff.accounts: accounts, argon2id passwords, lock-out, sessions and API tokens.

Every test gets a fresh database (``database_url``): SQLite, and PostgreSQL when reachable.
Passwords are hashed with a cheap argon2id hasher; one test checks the production default.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import select

from clinic.clock import utcnow
from clinic.db import ApiToken, StaffSession, StaffUser, session_scope
from clinic.staff import accounts as staff

PASSWORD = "correct horse battery staple"


class CountingHasher(PasswordHasher):
    """A cheap hasher that counts verifications (to check unknown users cost the same)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 - argon2's name
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def sam(database_url: str, hasher: CountingHasher) -> staff.StaffMember:
    return staff.create_user("Sam", PASSWORD, display_name="Sam Staff", database_url=database_url, hasher=hasher)


def _row(url: str, username: str) -> StaffUser:
    with session_scope(url) as session:
        return session.execute(select(StaffUser).where(StaffUser.username == username)).scalar_one()


def _login(url: str, hasher: PasswordHasher, password: str = PASSWORD, username: str = "sam",
           **kw: object) -> staff.LoginResult:
    return staff.verify_login(username, password, database_url=url, hasher=hasher, **kw)


# ------------------------------------------------------------------ accounts


def test_a_new_account_stores_an_argon2id_hash_not_the_password(database_url: str, sam: staff.StaffMember) -> None:
    row = _row(database_url, "sam")

    assert (sam.username, sam.display_name, sam.is_admin, sam.is_active) == ("sam", "Sam Staff", False, True)
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    assert row.failed_logins == 0 and row.locked_until is None


def test_the_production_hasher_is_argon2id_with_the_library_defaults() -> None:
    production = staff.default_hasher()

    assert production.type is Type.ID
    assert production.time_cost >= 3 and production.memory_cost >= 64 * 1024 and production.parallelism >= 1


def test_display_name_defaults_to_the_username(database_url: str, hasher: PasswordHasher) -> None:
    user = staff.create_user("nurse.jo", PASSWORD, is_admin=True, database_url=database_url, hasher=hasher)

    assert (user.display_name, user.is_admin) == ("nurse.jo", True)


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("sam", "short", "at least 12"),
        ("sam", "x" * 1025, "at most 1024"),
        ("a", PASSWORD, "2 to 64"),
        ("no spaces", PASSWORD, "2 to 64"),
        ("<script>", PASSWORD, "2 to 64"),
    ],
)
def test_invalid_accounts_are_refused(
    database_url: str, hasher: PasswordHasher, username: str, password: str, message: str
) -> None:
    with pytest.raises(staff.StaffError, match=message):
        staff.create_user(username, password, database_url=database_url, hasher=hasher)


def test_usernames_are_unique_whatever_the_case(database_url: str, sam: staff.StaffMember,
                                                hasher: PasswordHasher) -> None:
    with pytest.raises(staff.StaffError, match="already exists"):
        staff.create_user("SAM", PASSWORD, database_url=database_url, hasher=hasher)


def test_list_and_get_users(database_url: str, sam: staff.StaffMember, hasher: PasswordHasher) -> None:
    staff.create_user("ada", PASSWORD, is_admin=True, database_url=database_url, hasher=hasher)

    assert [u.username for u in staff.list_users(database_url=database_url)] == ["ada", "sam"]
    assert staff.get_user(sam.id, database_url=database_url) == sam
    assert staff.get_user(999, database_url=database_url) is None


@pytest.mark.parametrize("call", [staff.unlock, staff.deactivate], ids=["unlock", "deactivate"])
def test_unknown_accounts_raise_unknown_user(database_url: str, call: Callable[..., object]) -> None:
    with pytest.raises(staff.UnknownUser):
        call("nobody", database_url=database_url)


# ------------------------------------------------------------------ sign-in and lock-out


def test_the_right_password_signs_in(database_url: str, sam: staff.StaffMember, hasher: CountingHasher) -> None:
    result = _login(database_url, hasher, username=" SAM ")

    assert result.ok and result.user.id == sam.id
    assert _row(database_url, "sam").last_login_at is not None


def test_a_wrong_password_is_counted(database_url: str, sam: staff.StaffMember, hasher: CountingHasher) -> None:
    result = _login(database_url, hasher, "wrong password!")

    assert (result.ok, result.outcome, result.user.id) == (False, "bad_password", sam.id)
    assert _row(database_url, "sam").failed_logins == 1


def test_an_unknown_username_costs_a_hash_verification_too(database_url: str, hasher: CountingHasher) -> None:
    staff.warm_up(hasher)
    before = hasher.verified
    result = _login(database_url, hasher, username="nobody")
    long_one = _login(database_url, hasher, "p" * 5000, username="nobody")

    assert (result.outcome, result.user, long_one.outcome) == ("unknown_user", None, "unknown_user")
    assert hasher.verified == before + 2


def test_five_failures_lock_the_account_even_for_the_right_password(
    database_url: str, sam: staff.StaffMember, hasher: CountingHasher
) -> None:
    outcomes = [_login(database_url, hasher, "wrong password!") for _ in range(staff.MAX_FAILED_LOGINS)]

    assert [r.locked_now for r in outcomes] == [False] * 4 + [True]
    locked = _login(database_url, hasher)
    assert (locked.ok, locked.outcome) == (False, "locked")
    later = utcnow() + staff.LOCKOUT + timedelta(seconds=1)
    assert _login(database_url, hasher, now=later).ok


def test_failures_that_do_not_count_never_lock_the_account(
    database_url: str, sam: staff.StaffMember, hasher: CountingHasher
) -> None:
    outcomes = [_login(database_url, hasher, "wrong password!", counts_toward_lockout=False) for _ in range(20)]

    assert {r.outcome for r in outcomes} == {"bad_password"} and not any(r.locked_now for r in outcomes)
    assert _login(database_url, hasher).ok


def test_a_success_resets_the_failure_count(database_url: str, sam: staff.StaffMember, hasher: CountingHasher) -> None:
    for _ in range(staff.MAX_FAILED_LOGINS - 1):
        _login(database_url, hasher, "wrong password!")
    assert _login(database_url, hasher).ok

    assert _row(database_url, "sam").failed_logins == 0
    assert not _login(database_url, hasher, "wrong password!").locked_now


def test_unlock_lifts_a_lock_out(database_url: str, sam: staff.StaffMember, hasher: CountingHasher) -> None:
    for _ in range(staff.MAX_FAILED_LOGINS):
        _login(database_url, hasher, "wrong password!")

    staff.unlock("sam", database_url=database_url)

    assert _login(database_url, hasher).ok


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(
    database_url: str, sam: staff.StaffMember, hasher: CountingHasher
) -> None:
    new = staff.create_session(sam.id, database_url=database_url)

    staff.deactivate("sam", database_url=database_url)

    assert _login(database_url, hasher).outcome == "disabled"
    assert staff.lookup_session(new.token, database_url=database_url) is None


def test_a_new_password_replaces_the_old_one_and_ends_sessions(
    database_url: str, sam: staff.StaffMember, hasher: CountingHasher
) -> None:
    new = staff.create_session(sam.id, database_url=database_url)

    staff.set_password("sam", "another long passphrase", database_url=database_url, hasher=hasher)

    assert not _login(database_url, hasher).ok
    assert _login(database_url, hasher, "another long passphrase").ok
    assert staff.lookup_session(new.token, database_url=database_url) is None
    with pytest.raises(staff.StaffError):
        staff.set_password("sam", "short", database_url=database_url, hasher=hasher)


def test_an_outdated_hash_is_upgraded_at_sign_in(database_url: str, hasher: CountingHasher) -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, salt_len=8)
    staff.create_user("old", PASSWORD, database_url=database_url, hasher=weaker)
    before = _row(database_url, "old").password_hash

    assert _login(database_url, hasher, username="old").ok

    after = _row(database_url, "old").password_hash
    assert after != before and not hasher.check_needs_rehash(after)


# ------------------------------------------------------------------ sessions


def test_a_session_is_stored_as_a_hash_with_its_csrf_token(database_url: str, sam: staff.StaffMember) -> None:
    new = staff.create_session(sam.id, database_url=database_url)

    with session_scope(database_url) as session:
        row = session.execute(select(StaffSession)).scalar_one()
        assert row.token_hash == staff.token_hash(new.token) and row.token_hash != new.token
        assert row.csrf_token == new.csrf_token
    found = staff.lookup_session(new.token, database_url=database_url)
    assert found.user.id == sam.id and found.csrf_token == new.csrf_token
    assert staff.lookup_session("not-a-token", database_url=database_url) is None
    assert staff.lookup_session("", database_url=database_url) is None
    assert staff.lookup_session("x" * 10_000, database_url=database_url) is None


def test_an_idle_session_expires_after_30_minutes(database_url: str, sam: staff.StaffMember) -> None:
    start = utcnow()
    new = staff.create_session(sam.id, database_url=database_url, now=start)

    assert staff.lookup_session(new.token, database_url=database_url, now=start + timedelta(minutes=29),
                                touch=False) is not None
    ended = staff.check_session(new.token, database_url=database_url, now=start + timedelta(minutes=30))
    assert ended.session is None and ended.ended == "idle"
    with session_scope(database_url) as session:
        assert session.execute(select(StaffSession)).first() is None


def test_the_idle_timeout_is_configurable(database_url: str, sam: staff.StaffMember,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_IDLE_TIMEOUT_MINUTES", "5")
    start = utcnow()
    new = staff.create_session(sam.id, database_url=database_url, now=start)

    assert staff.idle_timeout() == timedelta(minutes=5)
    assert staff.check_session(new.token, database_url=database_url, now=start + timedelta(minutes=5)).ended == "idle"


def test_a_shorter_idle_timeout_applies_to_open_sessions(database_url: str, sam: staff.StaffMember) -> None:
    start = utcnow()
    new = staff.create_session(sam.id, database_url=database_url, idle=timedelta(hours=12), now=start)

    later = start + timedelta(minutes=45)
    assert staff.lookup_session(new.token, database_url=database_url, idle=timedelta(minutes=30), now=later) is None


def test_activity_extends_a_session_but_polling_does_not(database_url: str, sam: staff.StaffMember) -> None:
    start = utcnow()
    active = staff.create_session(sam.id, database_url=database_url, now=start)
    polled = staff.create_session(sam.id, database_url=database_url, now=start)
    midway = start + timedelta(minutes=20)
    after_idle = start + timedelta(minutes=45)

    staff.lookup_session(active.token, database_url=database_url, now=midway)
    staff.lookup_session(polled.token, database_url=database_url, now=midway, touch=False)

    assert staff.lookup_session(active.token, database_url=database_url, now=after_idle) is not None
    assert staff.lookup_session(polled.token, database_url=database_url, now=after_idle) is None


def test_a_session_ends_after_its_maximum_age_even_when_active(database_url: str, sam: staff.StaffMember) -> None:
    start = utcnow()
    new = staff.create_session(sam.id, database_url=database_url, now=start)
    moment = start
    while moment < start + staff.SESSION_MAX_AGE - timedelta(minutes=25):
        moment += timedelta(minutes=25)
        assert staff.lookup_session(new.token, database_url=database_url, now=moment) is not None

    ended = staff.check_session(new.token, database_url=database_url, now=start + staff.SESSION_MAX_AGE)
    assert ended.session is None and ended.ended == "max_age"


def test_deleting_a_session_signs_out(database_url: str, sam: staff.StaffMember) -> None:
    new = staff.create_session(sam.id, database_url=database_url)

    assert staff.delete_session(new.token, database_url=database_url)
    assert staff.lookup_session(new.token, database_url=database_url) is None
    assert not staff.delete_session(new.token, database_url=database_url)
    assert not staff.delete_session(None, database_url=database_url)


# ------------------------------------------------------------------ API tokens


def test_an_api_token_is_shown_once_and_stored_as_its_sha256(database_url: str, sam: staff.StaffMember) -> None:
    new = staff.create_api_token("sam", "ehr-sync", database_url=database_url)

    with session_scope(database_url) as session:
        row = session.execute(select(ApiToken)).scalar_one()
        assert row.token_hash == staff.token_hash(new.token) and new.token not in row.token_hash
    credential = staff.lookup_api_token(new.token, database_url=database_url)
    assert (credential.token_id, credential.token_name, credential.user.id) == (new.info.id, "ehr-sync", sam.id)
    assert staff.list_api_tokens("sam", database_url=database_url)[0].last_used_at is not None


def test_wrong_revoked_and_disabled_tokens_are_refused(database_url: str, sam: staff.StaffMember) -> None:
    revoked = staff.create_api_token("sam", "old", database_url=database_url)
    kept = staff.create_api_token("sam", "kept", database_url=database_url)

    assert staff.revoke_api_token(revoked.info.id, database_url=database_url)
    assert not staff.revoke_api_token(revoked.info.id, database_url=database_url)
    assert not staff.revoke_api_token(12345, database_url=database_url)
    assert staff.lookup_api_token(revoked.token, database_url=database_url) is None
    assert staff.lookup_api_token(kept.token + "x", database_url=database_url) is None
    assert staff.lookup_api_token(None, database_url=database_url) is None
    staff.deactivate("sam", database_url=database_url)
    assert staff.lookup_api_token(kept.token, database_url=database_url) is None
    tokens = staff.list_api_tokens(database_url=database_url)
    assert [(t.name, t.revoked_at is not None) for t in tokens] == [("old", True), ("kept", False)]


def test_token_names_and_owners_are_checked(database_url: str, sam: staff.StaffMember) -> None:
    with pytest.raises(staff.StaffError):
        staff.create_api_token("sam", " ", database_url=database_url)
    with pytest.raises(staff.UnknownUser):
        staff.create_api_token("nobody", "x", database_url=database_url)
    staff.deactivate("sam", database_url=database_url)
    with pytest.raises(staff.StaffError, match="disabled"):
        staff.create_api_token("sam", "x", database_url=database_url)
