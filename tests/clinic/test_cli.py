"""clinic.cli: migrate, list escalations, reconcile (the database comes from the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinic.cli import main
from clinic.db import get_engine
from clinic.escalation import escalate, resolve


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
    resolve(done.escalation_id)

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
