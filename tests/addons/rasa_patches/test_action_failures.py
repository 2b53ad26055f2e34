"""addons.rasa_patches.action_failures: a custom action that cannot run answers with a safe message, and a
form whose validation cannot run lets other rules (the crisis rule) handle non-answers.

The action server is a closed port (connection refused), as when it was killed, or a port that
accepts connections and never answers, as when it hangs (with ``ACTION_TIMEOUT_SECONDS`` short).
(End to end: tests/integration/test_faults.py and tests/integration/test_hung_action_server.py.)
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.actions.forms import FormAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActiveLoop, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from addons.clinic_nlg import ClinicNLG
from addons.rasa_patches import action_failures

PROJECT_DIR = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_DIR / "domain.yml"))


@pytest.fixture
def nlg(domain: Domain) -> ClinicNLG:
    return ClinicNLG(domain=domain)


@pytest.fixture
def dead_action_server() -> EndpointConfig:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return EndpointConfig(url=f"http://127.0.0.1:{port}/webhook")


@pytest.fixture
def hung_action_server() -> Iterator[EndpointConfig]:
    with socket.socket() as s:  # connections are accepted (the backlog) but nothing is ever answered
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield EndpointConfig(url=f"http://127.0.0.1:{s.getsockname()[1]}/webhook")


@pytest.fixture
def short_timeout(nlg: ClinicNLG, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both patches, with ``ACTION_TIMEOUT_SECONDS`` of half a second (read when installed)."""
    from addons.rasa_patches import action_server_sessions

    monkeypatch.setenv("ACTION_TIMEOUT_SECONDS", "0.5")
    action_server_sessions.PATCH.uninstall()
    action_server_sessions.PATCH.install()
    action_failures.PATCH.install()


@pytest.fixture
def installed() -> Iterator[None]:
    was = action_failures.PATCH.installed
    action_failures.PATCH.install()
    yield
    if not was:
        action_failures.PATCH.uninstall()


@pytest.fixture
def uninstalled(nlg: ClinicNLG) -> Iterator[None]:  # after the NLG, which installs it
    was = action_failures.PATCH.installed
    action_failures.PATCH.uninstall()
    yield
    if was:
        action_failures.PATCH.install()


def _run(coroutine):
    return asyncio.run(coroutine)


def _tracker(domain: Domain, text: str, intent: str, message_id: str = "m1", *events) -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events(f"conv-{message_id}", [*events], domain.slots)
    tracker.update(UserUttered(text, {"name": intent, "confidence": 1.0}, message_id=message_id))
    return tracker


def test_without_it_rasa_fails_the_action(uninstalled: None, domain, nlg, dead_action_server) -> None:
    with pytest.raises(RasaException):
        _run(RemoteAction("action_escalate_to_staff", dead_action_server).run(
            CollectingOutputChannel(), nlg, _tracker(domain, "am I safe on lithium?", "medical_question"), domain))


def test_a_failed_action_answers_with_the_safe_message_once_per_patient_message(
    installed: None, domain, nlg, dead_action_server
) -> None:
    tracker = _tracker(domain, "am I safe on lithium?", "medical_question")
    action = RemoteAction("action_escalate_to_staff", dead_action_server)

    events = _run(action.run(CollectingOutputChannel(), nlg, tracker, domain))
    again = _run(RemoteAction("action_crisis_protocol", dead_action_server).run(
        CollectingOutputChannel(), nlg, tracker, domain))

    [said] = events
    assert isinstance(said, BotUttered) and "Please call us at (555) 010-4200" in said.text and "911" in said.text
    assert again == []  # the same patient message is told once
    later = _tracker(domain, "hello?", "greet", "m2")
    assert len(_run(action.run(CollectingOutputChannel(), nlg, later, domain))) == 1


def test_a_form_validation_failure_is_left_to_the_form(installed: None, domain, nlg, dead_action_server) -> None:
    with pytest.raises(RasaException):
        _run(RemoteAction("validate_booking_form", dead_action_server).run(
            CollectingOutputChannel(), nlg, _tracker(domain, "Ana Diaz", "inform"), domain))


def test_a_form_answer_that_cannot_be_validated_is_dropped_and_the_patient_told(
    installed: None, domain, nlg, dead_action_server
) -> None:
    form = FormAction("booking_form", dead_action_server)
    tracker = _tracker(domain, "312-555-0187", "inform", "m3", ActiveLoop("booking_form"),
                       SlotSet("requested_slot", "phone"))

    events = _run(form.validate_slots({"phone": "312-555-0187"}, tracker, domain, CollectingOutputChannel(), nlg))

    assert events[0] == SlotSet("phone", None)
    assert isinstance(events[1], BotUttered) and "Please call us" in events[1].text


def test_a_form_message_that_answers_nothing_rejects_the_form_so_the_crisis_rule_runs(
    installed: None, domain, nlg, dead_action_server
) -> None:
    from rasa.core.actions.action import ActionExecutionRejection

    form = FormAction("booking_form", dead_action_server)
    tracker = _tracker(domain, "i want to kill myself", "crisis", "m4", ActiveLoop("booking_form"),
                       SlotSet("requested_slot", "phone"))

    assert _run(form.validate_slots({}, tracker, domain, CollectingOutputChannel(), nlg)) == []
    with pytest.raises(ActionExecutionRejection):  # Rasa's own path once nothing was validated
        _run(form.validate(tracker, domain, CollectingOutputChannel(), nlg))


def test_install_is_idempotent_and_uninstall_restores(uninstalled: None) -> None:
    original = RemoteAction.run
    action_failures.PATCH.install()
    action_failures.PATCH.install()
    assert RemoteAction.run is not original
    action_failures.PATCH.uninstall()
    assert RemoteAction.run is original


def test_an_action_server_that_hangs_gets_the_safe_message_within_the_timeout(
    short_timeout: None, domain, nlg, hung_action_server
) -> None:
    import time

    tracker = _tracker(domain, "i want to end it all", "crisis", "m5")
    started = time.monotonic()

    events = _run(RemoteAction("action_crisis_protocol", hung_action_server).run(
        CollectingOutputChannel(), nlg, tracker, domain))

    assert time.monotonic() - started < 3  # not Rasa's 300 s
    [said] = events
    assert isinstance(said, BotUttered) and "Please call us" in said.text and "911" in said.text


def test_a_form_answer_whose_validation_hangs_is_dropped_and_the_patient_told(
    short_timeout: None, domain, nlg, hung_action_server
) -> None:
    form = FormAction("booking_form", hung_action_server)
    tracker = _tracker(domain, "312-555-0187", "inform", "m6", ActiveLoop("booking_form"),
                       SlotSet("requested_slot", "phone"))

    events = _run(form.validate_slots({"phone": "312-555-0187"}, tracker, domain, CollectingOutputChannel(), nlg))

    assert events[0] == SlotSet("phone", None)
    assert isinstance(events[1], BotUttered) and "Please call us" in events[1].text
