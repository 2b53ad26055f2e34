"""Hand-built conversations for the insights tests, written as Rasa's tracker store writes them.

One Tuesday (2026-11-10) at the sample clinic in Chicago (open 08:00-18:00; the response-time
promise is "within 1 business hour"):

- ``web-faq``: a FAQ question at 10:00, answered;
- ``+15550100001`` (SMS): a medical question at 20:00 (outside hours), escalated; staff's first
  reply fails at 08:20, the next is delivered at 08:30 next day (12 h 30 min, 30 business
  minutes), resolved at 09:00;
- ``web-book``: asks to book at 11:00, completes the form, booked;
- ``web-crisis``: a crisis at 12:00: the crisis protocol, an urgent escalation, a staff reply at
  12:05, resolved at 12:30;
- ``web-fallback``: a message the assistant did not understand at 13:00;
- ``web-person``: a FAQ question at 14:00, then asks for a person: escalated, no reply yet;
- ``web-missed``: a FAQ question at 15:00 answered with low confidence, then "that's not what I asked".
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, UserUttered

from addons.tracker_store import _row
from clinic.db import Booking, Escalation, StaffReply, get_engine, session_scope
from clinic.insights.indexes import ensure_tracker_indexes

CHICAGO = ZoneInfo("America/Chicago")
DAY = datetime(2026, 11, 10, tzinfo=CHICAGO)


def at(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    """A moment of the scenario's day (or ``days`` later), in UTC."""
    return (DAY + timedelta(days=days, hours=hour, minutes=minute)).astimezone(timezone.utc)


class Writer:
    """Collects one conversation's events with explicit times."""

    def __init__(self, sender: str, start: datetime) -> None:
        self.sender, self.now = sender, start.timestamp()
        self.events: list[Event] = [
            ActionExecuted("action_session_start", timestamp=self.now), SessionStarted(timestamp=self.now),
            ActionExecuted("action_listen", timestamp=self.now)]

    def say(self, text: str, intent: str, confidence: float, *actions: str) -> None:
        self.now += 1
        channel = "twilio" if self.sender.startswith("+") else "socketio"
        self.events.append(UserUttered(text, {"name": intent, "confidence": confidence}, timestamp=self.now,
                                       input_channel=channel, parse_data={
                                           "intent": {"name": intent, "confidence": confidence}, "entities": [],
                                           "text": text}))
        for action in actions:
            self.now += 0.1
            self.events.append(ActionExecuted(action, timestamp=self.now))
            self.events.append(BotUttered("an answer", timestamp=self.now))
        self.events.append(ActionExecuted("action_listen", timestamp=self.now))


def conversations() -> list[Writer]:
    faq = Writer("web-faq", at(10))
    faq.say("how much is an infusion?", "faq_cost_insurance", 0.93, "utter_faq_cost_insurance")
    sms = Writer("+15550100001", at(20))
    sms.say("i take lithium, is ketamine ok for me?", "medical_question", 0.97, "action_escalate_to_staff")
    book = Writer("web-book", at(11))
    book.say("i want to book a consultation", "book_consultation", 0.95, "booking_form")
    book.say("yes", "affirm", 0.99, "action_submit_booking")
    crisis = Writer("web-crisis", at(12))
    crisis.say("generated crisis message", "crisis", 0.99, "utter_crisis_resources", "action_crisis_protocol")
    fallback = Writer("web-fallback", at(13))
    fallback.say("can my dog come to the appointment", "nlu_fallback", 0.21, "utter_default")
    person = Writer("web-person", at(14))
    person.say("what are the side effects?", "faq_side_effects", 0.9, "utter_faq_side_effects")
    person.say("can i talk to a real person", "request_human", 0.96, "action_escalate_to_staff")
    missed = Writer("web-missed", at(15))
    missed.say("does it help with migraines", "faq_conditions_treated", 0.41, "utter_faq_conditions_treated")
    missed.say("that's not what I asked", "deny", 0.7, "utter_default")
    return [faq, sms, book, crisis, fallback, person, missed]


def write_tracker(url: str) -> None:
    """Writes the conversations into the tracker store at ``url`` (creating Rasa's table)."""
    engine = get_engine(url)
    table = SQLTrackerStore.SQLEvent.__table__
    table.metadata.create_all(engine, tables=[table])
    rows = [_row(writer.sender, event) for writer in conversations() for event in writer.events]
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    ensure_tracker_indexes(url)


def write_clinic(url: str) -> None:
    """The escalations, staff replies and booking of the conversations."""
    with session_scope(url) as session:
        sms = Escalation(conversation_id="+15550100001", channel="twilio", reason="medical_question", urgency="normal",
                         status="resolved", created_at=at(20), updated_at=at(9, days=1), resolved_at=at(9, days=1))
        crisis = Escalation(conversation_id="web-crisis", channel="socketio", reason="crisis", urgency="urgent",
                            status="resolved", created_at=at(12), updated_at=at(12, 30), resolved_at=at(12, 30))
        person = Escalation(conversation_id="web-person", channel="socketio", reason="asked_for_staff",
                            urgency="normal", status="open", created_at=at(14), updated_at=at(14))
        session.add_all([sms, crisis, person])
        session.flush()
        session.add_all([
            StaffReply(escalation_id=sms.id, text="a reply", status="failed", created_at=at(8, 20, days=1)),
            StaffReply(escalation_id=sms.id, text="a reply", status="delivered", created_at=at(8, 30, days=1),
                       delivered_at=at(8, 30, days=1)),
            StaffReply(escalation_id=crisis.id, text="a reply", status="delivered", created_at=at(12, 5),
                       delivered_at=at(12, 5)),
            Booking(code="SCEN0001", conversation_id="web-book", channel="socketio", backend="builtin",
                    full_name="Test Patient", phone="+13125550123", starts_at=at(10, days=7),
                    ends_at=at(10, 30, days=7), chair=1, status="booked", created_at=at(11, 1), updated_at=at(11, 1)),
        ])
