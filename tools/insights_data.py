"""Generated conversations for the staff console's Insights, and the page's benchmark.

``python -m tools.insights_data generate --tracker-url URL --clinic-url URL`` writes
``--conversations`` (100,000) conversations over ``--days`` (90) days ending ``--end`` into a
tracker store (Rasa's ``events`` rows, as Rasa writes them) and the matching escalations, staff
replies and bookings into a migrated clinic database: FAQ questions, bookings, reschedules and
cancellations, medical questions and requests for a person handed to staff (who answer, mostly
in business hours, and resolve), crises, safety check-ins, fallbacks and "that's not what I
asked". Random but reproducible (``--seed``). Every name and message is made up.

``python -m tools.insights_data bench`` (``make insights-bench``) generates that data once under
``var/insights-bench/`` (SQLite), then times the Insights page of the 90 days as an admin sees
it, in the console's own process (sign-in excluded), and prints the timings: the goal is 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from clinic.hours import is_open, next_opening
from clinic.profile import ClinicProfile, load_profile
from clinic.settings import VAR_DIR

FAQ_QUESTIONS = {
    "faq_cost_insurance": ("how much is an infusion", "does insurance cover ketamine", "what does it cost"),
    "faq_what_is_ketamine": ("what is ketamine", "what is ketamine therapy"),
    "faq_side_effects": ("what are the side effects", "will i feel sick after"),
    "faq_clinic_info": ("where are you located", "what are your hours", "is there parking"),
    "faq_how_fast": ("how fast does it work", "when will i feel better"),
    "faq_safety": ("is ketamine safe", "is it dangerous"),
    "faq_treatment_process": ("what happens during a treatment", "how long is a session"),
    "faq_conditions_treated": ("do you treat ptsd", "can it help anxiety"),
    "faq_consultation": ("is the consultation free", "how long is the consultation"),
    "faq_preparation": ("can i eat before", "how do i prepare"),
    "faq_aftercare": ("can i drive after", "what do i do after a treatment"),
    "faq_addiction": ("is ketamine addictive",),
    "faq_esketamine": ("what is spravato",),
    "faq_administration": ("is it an iv or a shot",),
    "faq_candidacy": ("who can get ketamine",),
    "faq_how_it_works": ("how does ketamine work",),
}
FALLBACK_TEXTS = (
    "do you validate parking tickets from the garage", "can my dog come to the appointment",
    "do you have wifi in the waiting room", "is there a discount for veterans", "do you sell gift cards",
    "can i bring my own blanket", "do you take apple pay", "are you hiring nurses",
)
NOT_WHAT_I_ASKED = ("that's not what i asked", "no, that's not what i meant", "you didn't answer my question")
# (script, weight): what a generated conversation is about
SCRIPTS = (
    ("faq", 55), ("booking", 12), ("medical", 8), ("person", 4), ("fallback", 7), ("not_what", 2),
    ("crisis", 0.6), ("checkin", 0.6), ("reschedule", 2), ("cancel", 2), ("smalltalk", 6.8),
)
SMS_SHARE = 0.3
BENCH_DIR = VAR_DIR / "insights-bench"
BENCH_PASSWORD = "insights bench password 2026"


@dataclass
class Rows:
    """Rows to insert, per table."""

    events: list[dict[str, Any]] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    bookings: list[dict[str, Any]] = field(default_factory=list)


class Conversation:
    """Writes one conversation's events as Rasa's tracker store stores them."""

    def __init__(self, rows: Rows, sender: str, start: float, rng: random.Random) -> None:
        self.rows, self.sender, self.now, self.rng = rows, sender, start, rng
        self.channel = "twilio" if sender.startswith("+") else "socketio"
        self._event("action", {"name": "action_session_start"}, action="action_session_start")
        self._event("session_started", {})
        self._event("action", {"name": "action_listen"}, action="action_listen")

    def _event(self, type_name: str, data: dict[str, Any], *, intent: str | None = None,
               action: str | None = None) -> None:
        self.rows.events.append({
            "sender_id": self.sender, "type_name": type_name, "timestamp": self.now, "intent_name": intent,
            "action_name": action, "data": json.dumps({"event": type_name, "timestamp": self.now, **data}),
        })
        self.now += 0.05

    def turn(self, text: str, intent: str, actions: tuple[str, ...], confidence: float | None = None) -> None:
        """A patient message and the assistant's actions (each ``utter_*`` also sends a bot message)."""
        self.now += self.rng.uniform(5, 90)
        score = confidence if confidence is not None else round(self.rng.uniform(0.55, 0.99), 3)
        self._event("user", {"text": text, "parse_data": {"intent": {"name": intent, "confidence": score},
                                                          "entities": [], "text": text},
                             "input_channel": self.channel, "message_id": f"{self.sender}-{self.now:.2f}"},
                    intent=intent)
        for action in actions:
            self._event("action", {"name": action, "policy": "RulePolicy", "confidence": 1.0}, action=action)
            if action.startswith("utter_") or action.startswith("action_"):
                self._event("bot", {"text": "Generated answer.", "data": {}, "metadata": {}})
        self._event("action", {"name": "action_listen"}, action="action_listen")

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.now, timezone.utc)


def _faq(conversation: Conversation, rng: random.Random) -> None:
    intent = rng.choices(list(FAQ_QUESTIONS), weights=range(len(FAQ_QUESTIONS) + 4, 4, -1))[0]
    confidence = round(rng.uniform(0.31, 0.49), 3) if rng.random() < 0.04 else None
    conversation.turn(rng.choice(FAQ_QUESTIONS[intent]), intent, (f"utter_{intent}",), confidence)


class Generator:
    """Builds the rows of ``count`` conversations over ``days`` days ending ``end``."""

    def __init__(self, profile: ClinicProfile, count: int, days: int, end: date, seed: int) -> None:
        self.profile, self.count, self.days, self.end = profile, count, days, end
        self.rng = random.Random(seed)
        self.escalation_id = 0
        self.reply_id = 0
        self.booking_id = 0

    def _start(self) -> float:
        day = self.end - timedelta(days=self.rng.randrange(self.days))
        hour = self.rng.uniform(8, 20) if self.rng.random() < 0.75 else self.rng.uniform(0, 24)
        local = datetime.combine(day, datetime.min.time(), tzinfo=self.profile.tz) + timedelta(hours=hour)
        return local.astimezone(timezone.utc).timestamp()

    def _escalate(self, rows: Rows, conversation: Conversation, reason: str) -> None:
        self.escalation_id += 1
        rng, created = self.rng, conversation.at
        urgent = reason in ("crisis", "emergency")
        if is_open(self.profile, created) or urgent:
            first = created + timedelta(minutes=rng.lognormvariate(3.0, 0.8))
        else:
            opening = next_opening(self.profile, created) or created
            first = opening + timedelta(minutes=rng.uniform(5, 60))
        replied = rng.random() > 0.03
        resolved = first + timedelta(minutes=rng.uniform(10, 120)) if replied and rng.random() < 0.9 else None
        rows.escalations.append({
            "id": self.escalation_id, "conversation_id": conversation.sender, "channel": conversation.channel,
            "reason": reason, "urgency": "urgent" if urgent else "normal", "status": "resolved" if resolved else "open",
            "trigger_message_id": "generated", "language": "en", "created_at": created, "updated_at": created,
            "resolved_at": resolved,
        })
        if not replied:
            return
        if rng.random() < 0.02:
            self.reply_id += 1
            rows.replies.append({"id": self.reply_id, "escalation_id": self.escalation_id, "text": "Generated reply.",
                                 "status": "failed", "error": "generated", "created_at": first, "delivered_at": None})
            first += timedelta(minutes=2)
        self.reply_id += 1
        rows.replies.append({"id": self.reply_id, "escalation_id": self.escalation_id, "text": "Generated reply.",
                             "status": "delivered", "error": None, "created_at": first, "delivered_at": first})

    def _book(self, rows: Rows, conversation: Conversation, number: int) -> None:
        self.booking_id += 1
        starts = conversation.at + timedelta(days=self.rng.randint(1, 20))
        cancelled = self.rng.random() < 0.1
        rows.bookings.append({
            "id": self.booking_id, "code": f"G{number:07d}", "conversation_id": conversation.sender,
            "channel": conversation.channel, "backend": "builtin", "full_name": "Generated Patient",
            "phone": f"+1555{number:07d}", "starts_at": starts, "ends_at": starts + timedelta(minutes=30),
            "chair": None, "status": "cancelled" if cancelled else "booked", "created_at": conversation.at,
            "updated_at": conversation.at, "sms_consent": False,
            "cancelled_at": conversation.at + timedelta(hours=2) if cancelled else None,
        })

    def conversation(self, rows: Rows, number: int) -> None:
        rng = self.rng
        sender = f"+1555{number:07d}" if rng.random() < SMS_SHARE else f"web-{number:08x}"
        conversation = Conversation(rows, sender, self._start(), rng)
        script = rng.choices([s for s, _w in SCRIPTS], weights=[w for _s, w in SCRIPTS])[0]
        if script == "faq":
            for _ in range(rng.randint(1, 3)):
                _faq(conversation, rng)
        elif script == "booking":
            conversation.turn("i want to book a consultation", "book_consultation", ("booking_form",))
            if rng.random() < 0.7:
                conversation.turn("yes", "affirm", ("action_submit_booking",))
                self._book(rows, conversation, number)
        elif script == "medical":
            conversation.turn("i take lithium, is ketamine ok for me", "medical_question",
                              ("utter_medical_handoff", "action_escalate_to_staff"))
            self._escalate(rows, conversation, "medical_question")
        elif script == "person":
            _faq(conversation, rng)
            conversation.turn("can i talk to a real person", "request_human", ("action_escalate_to_staff",))
            self._escalate(rows, conversation, "asked_for_staff")
        elif script == "fallback":
            confidence = round(rng.uniform(0.1, 0.29), 3)
            conversation.turn(rng.choice(FALLBACK_TEXTS), "nlu_fallback", ("utter_default",), confidence)
        elif script == "not_what":
            _faq(conversation, rng)
            conversation.turn(rng.choice(NOT_WHAT_I_ASKED), "deny", ("utter_default",))
        elif script == "crisis":
            conversation.turn("generated crisis message", "crisis",
                              ("utter_crisis_resources", "action_crisis_protocol"))
            self._escalate(rows, conversation, "crisis")
        elif script == "checkin":
            conversation.turn("generated possible crisis message", "faq_safety", ("action_safety_checkin",))
            self._escalate(rows, conversation, "safety_checkin")
        elif script == "reschedule":
            conversation.turn("i need to reschedule", "reschedule_booking", ("reschedule_form",))
            conversation.turn("yes", "affirm", ("action_submit_reschedule",))
        elif script == "cancel":
            conversation.turn("cancel my appointment", "cancel_booking", ("cancel_form",))
            conversation.turn("yes", "affirm", ("action_submit_cancel",))
        else:
            conversation.turn("hello", "greet", ("utter_greet",))

    def batches(self, size: int = 5000) -> Iterator[Rows]:
        """The conversations' rows, ``size`` conversations at a time."""
        for start in range(0, self.count, size):
            rows = Rows()
            for number in range(start, min(start + size, self.count)):
                self.conversation(rows, number)
            yield rows


def _tracker_table(engine: sa.engine.Engine) -> sa.Table:
    from rasa.core.tracker_store import SQLTrackerStore

    table = SQLTrackerStore.SQLEvent.__table__
    table.metadata.create_all(engine, tables=[table])
    return table


def generate(tracker_url: str, clinic_url: str, *, conversations: int, days: int, end: date, seed: int,
             profile: ClinicProfile) -> dict[str, int]:
    """Writes the generated data; returns the rows written per table."""
    from clinic.db import Booking, Escalation, StaffReply, get_engine, migrate
    from clinic.insights.indexes import ensure_tracker_indexes

    migrate(clinic_url)
    tracker = get_engine(tracker_url)
    events = _tracker_table(tracker)
    clinic = get_engine(clinic_url)
    counts = {"conversations": conversations, "events": 0, "escalations": 0, "staff_replies": 0, "bookings": 0}
    for rows in Generator(profile, conversations, days, end, seed).batches():
        with tracker.begin() as connection:
            connection.execute(events.insert(), rows.events)
        with clinic.begin() as connection:
            for model, items in ((Escalation, rows.escalations), (StaffReply, rows.replies), (Booking, rows.bookings)):
                if items:
                    connection.execute(sa.insert(model.__table__), items)
        counts["events"] += len(rows.events)
        counts["escalations"] += len(rows.escalations)
        counts["staff_replies"] += len(rows.replies)
        counts["bookings"] += len(rows.bookings)
    ensure_tracker_indexes(tracker_url)
    for engine in (tracker, clinic):
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE"))
    return counts


# ------------------------------------------------------------------ benchmark


def _signed_in_client(clinic_url: str, profile: ClinicProfile) -> Any:
    from argon2 import PasswordHasher
    from starlette.testclient import TestClient

    from clinic.staff.accounts import StaffError, create_user
    from clinic.staff.console.app import create_app

    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with contextlib.suppress(StaffError):  # made by an earlier run
        create_user("bench-admin", BENCH_PASSWORD, is_admin=True, database_url=clinic_url, hasher=hasher)
    client = TestClient(create_app(clinic_url, password_hasher=hasher, profile=profile), base_url="https://testserver")
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"username": "bench-admin", "password": BENCH_PASSWORD, "csrf_token": token})
    return client


def bench(directory: Path, *, conversations: int, days: int, runs: int, seed: int) -> int:
    """Generates the data once under ``directory``, then times the Insights page of ``days`` days."""
    profile = load_profile()
    end = datetime.now(profile.tz).date()
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / "generated.json"
    tracker_url, clinic_url = f"sqlite:///{directory / 'tracker.db'}", f"sqlite:///{directory / 'clinic.db'}"
    if marker.exists() and json.loads(marker.read_text()).get("conversations") == conversations:
        end = date.fromisoformat(json.loads(marker.read_text())["end"])
    else:
        for name in ("tracker.db", "clinic.db"):
            (directory / name).unlink(missing_ok=True)
        started = time.perf_counter()
        counts = generate(tracker_url, clinic_url, conversations=conversations, days=days, end=end, seed=seed,
                          profile=profile)
        print(f"generated in {time.perf_counter() - started:.0f} s: {counts}")
        marker.write_text(json.dumps({**counts, "end": end.isoformat()}))
    os.environ["TRACKER_STORE_URL"] = tracker_url
    client = _signed_in_client(clinic_url, profile)
    query = {"from": (end - timedelta(days=days - 1)).isoformat(), "to": end.isoformat()}
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get("/insights", params=query)
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            print(f"the page answered {response.status_code}", file=sys.stderr)
            return 1
    print(f"Insights page, {days} days, {conversations:,} conversations ({query['from']} to {query['to']}), "
          f"{runs} runs: median {statistics.median(timings):.3f} s, best {min(timings):.3f} s, "
          f"worst {max(timings):.3f} s (goal: 1 s)")
    return 0 if statistics.median(timings) <= 1.0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.insights_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write generated conversations")
    gen.add_argument("--tracker-url", required=True)
    gen.add_argument("--clinic-url", required=True)
    gen.add_argument("--end", type=date.fromisoformat, help="the last day (default: today in the clinic)")
    run = sub.add_parser("bench", help="time the Insights page on generated data")
    run.add_argument("--dir", type=Path, default=BENCH_DIR)
    run.add_argument("--runs", type=int, default=5)
    for command in (gen, run):
        command.add_argument("--conversations", type=int, default=100_000)
        command.add_argument("--days", type=int, default=90)
        command.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return bench(args.dir, conversations=args.conversations, days=args.days, runs=args.runs, seed=args.seed)
    profile = load_profile()
    end = args.end or datetime.now(profile.tz).date()
    counts = generate(args.tracker_url, args.clinic_url, conversations=args.conversations, days=args.days, end=end,
                      seed=args.seed, profile=profile)
    print(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
