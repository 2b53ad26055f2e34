"""clinic.cli: migrate, list escalations, reconcile (the database comes from the environment)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clinic.cli import main
from clinic.db import get_engine
from clinic.staff.escalation import escalate
from tests.clinic.staff import mark_resolved


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    monkeypatch.setenv("CLINIC_DATABASE_URL", url)
    monkeypatch.setenv("TRACKER_STORE_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    assert main(["migrate"]) == 0
    yield url
    get_engine(url).dispose()
    get_engine(f"sqlite:///{tmp_path / 'tracker.db'}").dispose()


def test_no_escalations(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["escalations"]) == 0
    assert capsys.readouterr().out.strip() == "No open escalations."


def test_escalations_are_listed_urgent_first(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    escalate(conversation_id="conv-normal", channel="rest", reason="asked_for_staff", message_id="m1", text="hi")
    escalate(conversation_id="conv-urgent", channel="twilio", reason="crisis", message_id="m1", text="i want to end it",
             guard_reason={"rule": "self_harm"})
    done = escalate(conversation_id="conv-done", channel="rest", reason="medical_question", message_id="m1", text="?")
    mark_resolved(database, done.escalation_id)

    main(["escalations"])
    open_rows = capsys.readouterr().out.splitlines()[1:]
    main(["escalations", "--all"])
    all_rows = capsys.readouterr().out.splitlines()[1:]

    assert [r.split("conversation=")[1] for r in open_rows] == ["conv-urgent", "conv-normal"]
    assert "urgent" in open_rows[0] and "self_harm" in open_rows[0]
    assert not any("end it" in r for r in all_rows)  # patient words stay out of the terminal
    assert len(all_rows) == 3 and any("resolved" in r for r in all_rows)


def test_reconcile_without_conversations(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile"]) == 0
    assert capsys.readouterr().out.strip() == "Recorded 0 missed escalation(s)."


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])

    assert exit_.value.code == 2


# ------------------------------------------------------------------ staff accounts and API tokens


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI hashes with the production hasher; tests swap in a cheap argon2id one."""
    from argon2 import PasswordHasher

    import clinic.staff.accounts

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(clinic.staff.accounts, "_default_hasher", cheap)


def _staff(capsys: pytest.CaptureFixture[str], *args: str, stdin: str | None = None,
           monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        import io

        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["staff", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_staff_add_list_and_sign_in(database: str, cheap_hashing: None, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.staff.accounts import verify_login

    code, out, _ = _staff(capsys, "add", "Ana", "--name", "Ana Admin", "--admin", "--password-stdin",
                          stdin="a long enough password\n", monkeypatch=monkeypatch)
    assert code == 0 and "Created admin account 'ana' (Ana Admin)" in out
    code, out, _ = _staff(capsys, "add", "sam", "--password-stdin", stdin="another long password\n",
                          monkeypatch=monkeypatch)
    assert code == 0 and "staff account 'sam'" in out

    code, out, _ = _staff(capsys, "list")

    lines = out.splitlines()
    assert code == 0 and "ana" in lines[1] and "admin" in lines[1] and "active" in lines[1]
    assert "sam" in lines[2] and "staff" in lines[2]
    assert "long enough" not in out
    assert verify_login("ana", "a long enough password").ok


def test_staff_add_prompts_twice(database: str, cheap_hashing: None, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["first long password", "second long password", "same long password", "same long password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))

    mismatch = _staff(capsys, "add", "kim")
    created = _staff(capsys, "add", "kim")

    assert mismatch[0] == 1 and "differ" in mismatch[2]
    assert created[0] == 0


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "sam", "--password-stdin"), "short\n", "at least 12"),
        (("add", "bad name", "--password-stdin"), "a long enough password\n", "2 to 64"),
        (("passwd", "nobody", "--password-stdin"), "a long enough password\n", "No staff account"),
        (("unlock", "nobody"), None, "No staff account"),
        (("disable", "nobody"), None, "No staff account"),
        (("token", "nobody", "--name", "x"), None, "No staff account"),
        (("revoke-token", "99"), None, "No active API token #99"),
    ],
)
def test_staff_errors_exit_1(database: str, cheap_hashing: None, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], stdin: str | None,
                             message: str) -> None:
    code, _out, err = _staff(capsys, *args, stdin=stdin, monkeypatch=monkeypatch)

    assert code == 1 and message in err


def test_staff_passwd_unlock_and_disable(database: str, cheap_hashing: None, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.staff.accounts import MAX_FAILED_LOGINS, verify_login

    _staff(capsys, "add", "sam", "--password-stdin", stdin="first long password\n", monkeypatch=monkeypatch)
    for _ in range(MAX_FAILED_LOGINS):
        verify_login("sam", "wrong password!")
    assert "locked" in _staff(capsys, "list")[1]

    assert _staff(capsys, "unlock", "sam")[0] == 0
    assert verify_login("sam", "first long password").ok
    assert _staff(capsys, "passwd", "sam", "--password-stdin", stdin="second long password\n",
                  monkeypatch=monkeypatch)[0] == 0
    assert not verify_login("sam", "first long password").ok and verify_login("sam", "second long password").ok
    assert _staff(capsys, "disable", "sam")[0] == 0
    assert verify_login("sam", "second long password").outcome == "disabled"
    assert "disabled" in _staff(capsys, "list")[1]


def test_staff_tokens_are_printed_once_and_can_be_revoked(
    database: str, cheap_hashing: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinic.staff.accounts import lookup_api_token

    _staff(capsys, "add", "sam", "--password-stdin", stdin="first long password\n", monkeypatch=monkeypatch)

    code, out, _ = _staff(capsys, "token", "sam", "--name", "ehr-sync")
    token = out.strip().splitlines()[-1]
    listing = _staff(capsys, "tokens")[1]

    assert code == 0 and "API token #1 (ehr-sync) for sam" in out
    assert lookup_api_token(token).user.username == "sam"
    assert "ehr-sync" in listing and token not in listing
    assert _staff(capsys, "revoke-token", "1")[0] == 0
    assert lookup_api_token(token) is None
    assert not _staff(capsys, "tokens", "sam")[1].splitlines()[1].endswith(" no")  # shows when it was revoked


def test_no_staff_yet(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _staff(capsys, "list")
    assert code == 0 and out.startswith("No staff accounts. Create one: python -m clinic.cli staff add")
    assert _staff(capsys, "tokens")[1].strip() == "No API tokens."


# ------------------------------------------------------------------ retention purge


def test_purge_dry_run_reports_counts_and_deletes_nothing(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from clinic.clock import utcnow
    from clinic.db import Escalation, session_scope

    old = escalate(conversation_id="conv-old", channel="rest", reason="medical_question", message_id="m1",
                   text="am I safe on lithium?")
    mark_resolved(database, old.escalation_id)
    with session_scope(database) as session:
        session.execute(update(Escalation).values(resolved_at=utcnow() - timedelta(days=400)))

    assert main(["purge", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "Retention 365 days" in dry and "Dry run: nothing was deleted" in dry
    assert re.search(r"escalations\s+1\n", dry) and re.search(r"escalation_messages\s+1\n", dry)
    assert "lithium" not in dry and "conv-old" not in dry
    main(["escalations", "--all"])
    assert "conv-old" in capsys.readouterr().out

    assert main(["purge", "--days", "500"]) == 0  # kept: resolved 400 days ago
    assert re.search(r"escalations\s+0\n", capsys.readouterr().out)
    assert main(["purge"]) == 0
    assert "Rows deleted:" in capsys.readouterr().out
    main(["escalations", "--all"])
    assert capsys.readouterr().out.strip() == "No escalations."


@pytest.mark.parametrize("days", ["0", "-3", "a year"])
def test_purge_refuses_a_period_that_is_not_a_positive_number_of_days(
    database: str, capsys: pytest.CaptureFixture[str], days: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["purge", f"--days={days}"])

    assert exit_.value.code == 2 and "--days" in capsys.readouterr().err


def test_purge_with_an_invalid_profile_says_so(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CLINIC_PROFILE", str(tmp_path / "missing.yml"))

    assert main(["purge", "--dry-run"]) == 2
    assert "Cannot purge" in capsys.readouterr().err
