"""Booking end to end: the real assistant over REST, booking, rescheduling and cancelling."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from clinic.booking import service as booking

CODE_RE = re.compile(r"code is ([A-Z2-9]{6})")


class RestPatient:
    """A patient on Rasa's REST channel (replies come back with the request)."""

    def __init__(self, rasa_port: int) -> None:
        self.url = f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
        self.sender = f"rest-{uuid.uuid4().hex[:12]}"
        self.last: list[dict[str, Any]] = []

    def say(self, text: str) -> str:
        response = httpx.post(self.url, json={"sender": self.sender, "message": text}, timeout=60)
        response.raise_for_status()
        self.last = response.json()
        return " ".join(m.get("text") or "" for m in self.last)

    @property
    def buttons(self) -> list[dict[str, str]]:
        return [b for m in self.last for b in m.get("buttons") or []]

    def press(self, index: int) -> str:
        return self.say(self.buttons[index]["payload"])


def book_up_to_the_offers(patient: RestPatient, name: str = "Maria Lopez") -> str:
    """Answers every booking question until the open times are offered; returns that reply."""
    assert "full name" in patient.say("I'd like to book a consultation")
    assert "mobile number" in patient.say(name)
    assert "email" in patient.say("312-555-0123")
    assert "help with" in patient.say("skip")
    assert [b["title"] for b in patient.buttons][-1] == "Something else"
    assert "first visit" in patient.say("anxiety")
    assert "reminders" in patient.say("yes")
    assert "When would you like to come in" in patient.say("no")
    return patient.say("next Tuesday at 10am")


def test_booking_then_rescheduling_then_cancelling(running_stack) -> None:
    url = running_stack.env["CLINIC_DATABASE_URL"]
    patient = RestPatient(running_stack.rasa_port)

    offers = book_up_to_the_offers(patient)
    assert "closest to" in offers and len(patient.buttons) == 4 and patient.buttons[-1]["title"] == "Other times"
    summary = patient.press(1)
    assert "Please check your booking" in summary and "Maria Lopez" in summary and "anxiety" in summary
    confirmed = patient.say("yes")
    assert "You're booked" in confirmed
    code = CODE_RE.search(confirmed).group(1)
    [made] = booking.list_bookings(database_url=url)
    assert (made.code, made.full_name, made.phone, made.email, made.visit_reason, made.patient_type,
            made.sms_consent, made.channel) == (code, "Maria Lopez", "+13125550123", None, "anxiety", "new",
                                                 False, "rest")

    assert "booking code" in patient.say("I need to reschedule my appointment")
    assert "booking code" in patient.say("312-555-0123")
    found = patient.say(code.lower())
    assert "I found your consultation" in found and "When would you like to come in" in found
    patient.say("next Wednesday afternoon")
    moving = patient.press(0)
    assert "Move your consultation" in moving and "24 hours" in moving  # the cancellation policy
    assert f"Your booking code stays {code}" in patient.say("yes")
    [moved] = booking.list_bookings(database_url=url)
    assert moved.id == made.id and moved.start != made.start and moved.start.astimezone().strftime("%A")

    patient.say("cancel my booking")
    patient.say("(312) 555-0123")
    question = patient.say(code)
    assert "Do you want to cancel it?" in question and "$100 fee" in question
    assert "is cancelled" in patient.say("yes")
    assert booking.list_bookings(database_url=url) == []


def test_a_slot_someone_else_just_took_is_offered_again(running_stack) -> None:
    first, second = RestPatient(running_stack.rasa_port), RestPatient(running_stack.rasa_port)
    book_up_to_the_offers(first, "Ann Lee")
    book_up_to_the_offers(second, "Bo Park")
    assert first.buttons[0]["payload"] == second.buttons[0]["payload"]  # both were offered the same time

    first.press(0)
    assert "You're booked" in first.say("yes")
    second.press(0)
    taken = second.say("yes")

    assert "was just booked by someone else" in taken and "closest to" in taken
    assert first.buttons == [] and len(second.buttons) >= 2
    second.press(0)
    assert "You're booked" in second.say("yes")
    starts = [b.start for b in booking.list_bookings(database_url=running_stack.env["CLINIC_DATABASE_URL"])
              if b.full_name in ("Ann Lee", "Bo Park")]
    assert len(starts) == len(set(starts)) == 2


def test_questions_inside_the_booking_are_answered_and_the_booking_goes_on(running_stack) -> None:
    patient = RestPatient(running_stack.rasa_port)
    patient.say("can I make an appointment")
    patient.say("Lee Chen")
    patient.say("773 555 0199")

    answer = patient.say("how much does an infusion cost?")  # asked at the optional email question

    assert "$" in answer and "email" in answer
    assert "help with" in patient.say("lee.park@example.com")


@pytest.mark.parametrize("stop", ["never mind", "stop"])
def test_never_mind_leaves_the_booking_cleanly(running_stack, stop: str) -> None:
    patient = RestPatient(running_stack.rasa_port)
    patient.say("book me in")
    patient.say("Sam Carter")

    stopped = patient.say(stop)

    assert "stopped the booking" in stopped
    assert "$" in patient.say("how much does an infusion cost?")


def test_a_crisis_at_the_summary_gets_the_crisis_resources(running_stack) -> None:
    patient = RestPatient(running_stack.rasa_port)
    book_up_to_the_offers(patient, "Jo Kim")
    patient.press(0)

    reply = patient.say("i don't want to be alive anymore")

    assert "988" in reply and "911" in reply
    assert "Jo Kim" not in " ".join(r.full_name for r in booking.list_bookings(
        database_url=running_stack.env["CLINIC_DATABASE_URL"]))
