"""New staff passwords: trivial, common and own-name passwords are refused wherever they are set."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from clinic.cli import main
from clinic.db import get_engine
from clinic.staff import accounts, passwords

TRIVIAL = [
    ("short pass", passwords.TOO_SHORT),
    ("aaaaaaaaaaaa", passwords.REPEATED),
    ("abcabcabcabc", passwords.REPEATED),
    ("123456789012", passwords.RUN),
    ("qwertyuiop12", passwords.RUN),
    ("abcd12345678", passwords.RUN),
    ("password1234", passwords.COMMON),
    ("Password123!", passwords.COMMON),
    ("P@ssw0rd-2024", passwords.COMMON),
    ("iloveyou2024", passwords.COMMON),
    ("Summer2024!!", passwords.COMMON),
    ("sunshine sunshine", passwords.COMMON),
    ("Ketamine2024!", passwords.COMMON),
    ("dana.ruiz2024!", passwords.OWN_NAME),
    ("DanaRuiz!!!!", passwords.OWN_NAME),
]


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.mark.parametrize(("password", "message"), TRIVIAL, ids=[p for p, _ in TRIVIAL])
def test_a_trivial_or_common_password_is_refused_with_the_reason(
    sqlite_url: str, hasher: PasswordHasher, password: str, message: str
) -> None:
    with pytest.raises(accounts.StaffError) as refused:
        accounts.create_user("dana.ruiz", password, display_name="Dana Ruiz", database_url=sqlite_url, hasher=hasher)

    assert str(refused.value) == message
    assert accounts.list_users(database_url=sqlite_url) == []


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "dana-is-on-call-today", "4 horses ran home", "314159265358", "Tr0ub4dor&3xy"],
)
def test_long_uncommon_passwords_pass(password: str) -> None:
    assert passwords.problem(password, ["dana.ruiz", "Dana Ruiz"]) is None


def test_a_new_password_is_checked_against_the_accounts_name(sqlite_url: str, hasher: PasswordHasher) -> None:
    accounts.create_user("dana.ruiz", "dana-is-on-call-today", display_name="Dana Ruiz", database_url=sqlite_url,
                         hasher=hasher)

    with pytest.raises(accounts.StaffError, match="your user name or name"):
        accounts.set_password("dana.ruiz", "ruiz.dana.2024", database_url=sqlite_url, hasher=hasher)
    with pytest.raises(accounts.StaffError, match="too common"):
        accounts.set_password("dana.ruiz", "welcome123456", database_url=sqlite_url, hasher=hasher)


def test_the_list_of_common_passwords_is_a_few_thousand_lower_case_entries() -> None:
    listed = passwords.common_passwords()

    assert len(listed) > 3000
    assert all(entry == entry.lower() and entry.strip() == entry for entry in listed)


@pytest.mark.parametrize("command", ["add", "passwd"])
def test_the_command_line_refuses_a_common_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], hasher: PasswordHasher,
    command: str,
) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    monkeypatch.setenv("CLINIC_DATABASE_URL", url)
    monkeypatch.setattr(accounts, "_default_hasher", hasher)
    if command == "passwd":
        monkeypatch.setattr("sys.stdin", io.StringIO("dana-is-on-call-today\n"))
        assert main(["staff", "add", "dana", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("Password123!\n"))

    code = main(["staff", command, "dana", "--password-stdin"])

    assert code == 1 and passwords.COMMON in capsys.readouterr().err
    assert accounts.verify_login("dana", "Password123!", database_url=url, hasher=hasher).outcome != "ok"
    get_engine(url).dispose()
